//! The fronts under test, each a separate process started from a generated configuration:
//! dockgate (the release binary), nginx and HAProxy; and their memory (VmRSS from /proc).
//!
//! It must not measure throughput: it starts, stops and weighs processes.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The PKI `dockgate certs example` writes: `ca.pem`, `server/{cert,key}.pem`,
/// `clients/{admin,dev}/{cert,key}.pem`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
    pub fn read(&self, rel: &str) -> Result<String, String> {
        fs::read_to_string(self.file(rel)).map_err(|e| format!("{}: {e}", self.file(rel).display()))
    }
}

/// A running front process.
pub struct Front {
    pub addr: SocketAddr,
    child: Child,
}

impl Front {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        // SIGTERM first (nginx and HAProxy clean up their pid files and workers), then SIGKILL.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound, read, released: good enough for a benchmark).
pub fn free_addr() -> Result<SocketAddr, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a free port: {e}"))?;
    l.local_addr().map_err(|e| e.to_string())
}

fn spawn(name: &str, dir: &Path, mut cmd: Command, addr: SocketAddr) -> Result<Front, String> {
    let log = fs::File::create(dir.join(format!("{name}.log"))).map_err(|e| e.to_string())?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| format!("starting {name} ({cmd:?}): {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let text = fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
            return Err(format!("{name} exited ({status}) during startup:\n{text}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("{name} did not listen on {addr} within 15 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Front { addr, child })
}

/// dockgate as a separate process: admin (every route) for `clients/admin`, a baseline role for
/// `clients/dev`; audit records appended to a file in `dir` (as deployed).
pub fn dockgate(
    bin: &Path,
    dir: &Path,
    name: &str,
    pki: &Pki,
    upstream: &Path,
) -> Result<Front, String> {
    let addr = free_addr()?;
    let config = format!(
        r#"listen: {addr}
upstream: unix://{upstream}
tls:
  cert: {cert}
  key: {key}
  client_ca: [{ca}]
networks: [127.0.0.0/8]
log: {{ format: text, level: warn }}
limits: {{ handshake_timeout_secs: 30, header_read_timeout_secs: 300, max_connections_per_source: 0 }}
audit: {{ path: {audit} }}
identities:
  - {{ cn: admin, ou: admins, role: admin }}
  - {{ cn: dev, role: dev }}
roles:
  dev:
    extends: [baseline]
"#,
        upstream = upstream.display(),
        cert = pki.file("server/cert.pem").display(),
        key = pki.file("server/key.pem").display(),
        ca = pki.file("ca.pem").display(),
        audit = dir.join(format!("{name}-audit.jsonl")).display(),
    );
    let path = dir.join(format!("{name}.yaml"));
    fs::write(&path, config).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.arg("serve").arg("--config").arg(&path);
    spawn(name, dir, cmd, addr)
}

/// nginx, `worker_processes auto` (2 here, like dockgate's 2 runtime workers), TLS 1.3 only,
/// `ssl_verify_client on`, upstream keep-alive pool, no buffering (streams), access log off.
pub fn nginx(dir: &Path, name: &str, pki: &Pki, upstream: &Path) -> Result<Front, String> {
    let addr = free_addr()?;
    let d = dir.join(name);
    fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    let config = format!(
        r#"worker_processes auto;
# Workers run as the bench's user (root when the sockets are root's), like the other fronts.
user root root;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_max_body_size 0;
  upstream docker {{
    server unix:{upstream};
    keepalive 512;
    keepalive_requests 10000000;
  }}
  server {{
    listen {addr} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_client_certificate {ca};
    ssl_verify_client on;
    ssl_protocols TLSv1.3;
    location / {{
      proxy_pass http://docker;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }}
  }}
}}
"#,
        d = d.display(),
        upstream = upstream.display(),
        cert = pki.file("server/cert.pem").display(),
        key = pki.file("server/key.pem").display(),
        ca = pki.file("ca.pem").display(),
    );
    let path = d.join("nginx.conf");
    fs::write(&path, config).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("nginx");
    cmd.arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(&d)
        .arg("-e")
        .arg(d.join("error.log"));
    spawn(name, dir, cmd, addr)
}

/// HAProxy's connection limit: it reserves two descriptors per connection (client and server
/// side), and cannot raise its limit above the hard `ulimit -n` (20,000 in the bench box).
pub const HAPROXY_MAXCONN: usize = 9_980;

/// HAProxy (threads: one per CPU, its default), the same TLS settings, and the path ACLs of
/// tecnativa/docker-socket-proxy (with CONTAINERS=1 POST=1, and the defaults PING/VERSION/EVENTS).
pub fn haproxy(dir: &Path, name: &str, pki: &Pki, upstream: &Path) -> Result<Front, String> {
    let addr = free_addr()?;
    let d = dir.join(name);
    fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    let pem = format!(
        "{}{}",
        pki.read("server/cert.pem")?,
        pki.read("server/key.pem")?
    );
    fs::write(d.join("server.pem"), pem).map_err(|e| e.to_string())?;
    let config = format!(
        r#"global
  # maxsock = 2 x maxconn + a few must fit under the fd hard limit (20,000 in the bench box).
  maxconn {maxconn}
  tune.ssl.default-dh-param 2048

defaults
  mode http
  timeout connect 10s
  timeout client 1h
  timeout server 1h
  timeout http-keep-alive 1h
  timeout http-request 1h

frontend dockerfrontend
  bind {addr} ssl crt {d}/server.pem ca-file {ca} verify required ssl-min-ver TLSv1.3
  maxconn {maxconn}
  http-request deny unless METH_GET || {{ env(POST) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/containers/[a-zA-Z0-9_.-]+/((stop)|(restart)|(kill)) }} {{ env(ALLOW_RESTARTS) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/auth }} {{ env(AUTH) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/build }} {{ env(BUILD) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/commit }} {{ env(COMMIT) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/configs }} {{ env(CONFIGS) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/containers }} {{ env(CONTAINERS) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/distribution }} {{ env(DISTRIBUTION) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/events }} {{ env(EVENTS) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/exec }} {{ env(EXEC) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/grpc }} {{ env(GRPC) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/images }} {{ env(IMAGES) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/info }} {{ env(INFO) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/networks }} {{ env(NETWORKS) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/nodes }} {{ env(NODES) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/_ping }} {{ env(PING) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/plugins }} {{ env(PLUGINS) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/secrets }} {{ env(SECRETS) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/services }} {{ env(SERVICES) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/session }} {{ env(SESSION) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/swarm }} {{ env(SWARM) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/system }} {{ env(SYSTEM) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/tasks }} {{ env(TASKS) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/version }} {{ env(VERSION) -m bool }}
  http-request allow if {{ path,url_dec -m reg -i ^(/v[\d\.]+)?/volumes }} {{ env(VOLUMES) -m bool }}
  http-request deny
  default_backend dockerbackend

backend dockerbackend
  http-reuse always
  server dockersocket {upstream}
"#,
        d = d.display(),
        ca = pki.file("ca.pem").display(),
        upstream = upstream.display(),
        maxconn = HAPROXY_MAXCONN,
    );
    let path = d.join("haproxy.cfg");
    fs::write(&path, config).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("haproxy");
    cmd.arg("-db").arg("-f").arg(&path);
    for var in ["CONTAINERS", "POST", "PING", "VERSION", "EVENTS", "INFO"] {
        cmd.env(var, "1");
    }
    spawn(name, dir, cmd, addr)
}

/// VmRSS of `pid` and (when `children`) all its descendants, in KiB.
pub fn rss_kib(pid: u32, children: bool) -> u64 {
    let rss = |pid: u32| {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    };
    with_descendants(pid, children).into_iter().map(rss).sum()
}

/// CPU time (user + system) `pid` and (when `children`) its descendants have used, in seconds.
pub fn cpu_secs(pid: u32, children: bool) -> f64 {
    // Fields 14 and 15 of /proc/PID/stat (after the parenthesised command name), in USER_HZ:
    // 1/100 s on every Linux architecture.
    let ticks = |pid: u32| {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let f: Vec<&str> = s.get(s.rfind(')')? + 2..)?.split_whitespace().collect();
                Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
            })
            .unwrap_or(0)
    };
    let total: u64 = with_descendants(pid, children).into_iter().map(ticks).sum();
    total as f64 / 100.0
}

/// `pid`, and when `children` every descendant process (nginx's workers).
fn with_descendants(pid: u32, children: bool) -> Vec<u32> {
    let mut all = vec![pid];
    let mut at = 0;
    while children && at < all.len() {
        let tasks = fs::read_dir(format!("/proc/{}/task", all[at]));
        for t in tasks.into_iter().flatten().flatten() {
            let kids = fs::read_to_string(t.path().join("children")).unwrap_or_default();
            all.extend(
                kids.split_whitespace()
                    .filter_map(|k| k.parse::<u32>().ok()),
            );
        }
        at += 1;
    }
    all
}
