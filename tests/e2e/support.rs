//! Test support: a per-run PKI, dockgate started in-process on an ephemeral port, and runners
//! for the real docker CLI, the Python Docker SDK and raw TLS requests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dockgate::certs::{write, write_client_dir, Ca, Subject};
use dockgate::config::{Config, Overrides};
use rcgen::ExtendedKeyUsagePurpose;
use time::OffsetDateTime;

/// The test PKI, generated once per test process.
pub struct Pki {
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

/// Client certificate directories (DOCKER_CERT_PATH layout) in the test PKI.
pub const ADMIN: &str = "admin";
pub const DEV: &str = "dev";
pub const MONITOR: &str = "monitor";
pub const NOBODY: &str = "nobody";
pub const OTHER_CA: &str = "other-ca";
pub const EXPIRED: &str = "expired";
pub const NOT_YET_VALID: &str = "not-yet-valid";
pub const NO_CLIENT_AUTH: &str = "no-client-auth";
pub const NO_EKU: &str = "no-eku";
/// A certificate whose SAN URI would make the `{*}` role template produce "admin".
pub const TEAM_ADMIN: &str = "team-admin";

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let ca = Ca::generate("dockgate test CA").expect("CA");
        write(&dir.join("ca.pem"), &ca.pem.cert).unwrap();
        // For certificates a test issues itself (see `Pki::issue`).
        write(&dir.join("ca-key.pem"), &ca.pem.key).unwrap();
        let server = ca.issue(&Subject::server_localhost()).unwrap();
        write(&dir.join("server/cert.pem"), &server.cert).unwrap();
        write(&dir.join("server/key.pem"), &server.key).unwrap();
        let client = |name: &str, subject: Subject| {
            let pem = ca.issue(&subject).unwrap();
            write_client_dir(&dir.join(name), &ca, &pem).unwrap();
        };
        client(ADMIN, Subject::client("admin").ou("admins"));
        client(
            DEV,
            Subject::client("dev")
                .ou("developers")
                .uri("spiffe://test/team/dev"),
        );
        client(MONITOR, Subject::client("monitor").ou("monitoring"));
        client(NOBODY, Subject::client("nobody").ou("visitors"));
        client(
            TEAM_ADMIN,
            Subject::client("mallory").uri("spiffe://test/team/admin"),
        );
        let now = OffsetDateTime::now_utc();
        let mut expired = Subject::client("admin").ou("admins");
        expired.not_before = now - time::Duration::days(30);
        expired.not_after = now - time::Duration::days(1);
        client(EXPIRED, expired);
        let mut future = Subject::client("admin").ou("admins");
        future.not_before = now + time::Duration::days(1);
        future.not_after = now + time::Duration::days(30);
        client(NOT_YET_VALID, future);
        let mut server_only = Subject::client("admin").ou("admins");
        server_only.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        client(NO_CLIENT_AUTH, server_only);
        let mut no_eku = Subject::client("admin").ou("admins");
        no_eku.extended_key_usages = Vec::new();
        client(NO_EKU, no_eku);
        let other = Ca::generate("some other CA").unwrap();
        let pem = other.issue(&Subject::client("admin").ou("admins")).unwrap();
        // The directory's ca.pem is the real one so the client trusts the server.
        write_client_dir(&dir.join(OTHER_CA), &ca, &pem).unwrap();
        // For gates that trust both (see `Gate::start_trusting_other_ca`).
        write(&dir.join("other-ca.pem"), &other.pem.cert).unwrap();
        Pki { dir, _tmp: tmp }
    })
}

impl Pki {
    pub fn client_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Issues a client certificate from the test CA into a new client directory; returns its
    /// name for `Gate::tls` and friends.
    pub fn issue(&self, subject: &Subject) -> String {
        let ca = Ca::load(&self.dir.join("ca.pem"), &self.dir.join("ca-key.pem")).unwrap();
        let name = unique("issued");
        let pem = ca.issue(subject).unwrap();
        write_client_dir(&self.dir.join(&name), &ca, &pem).unwrap();
        name
    }

    /// Issues a client certificate for `subject` from a new intermediate CA (signed by the test
    /// CA, valid until `intermediate_until`) into a new client directory whose `cert.pem` is the
    /// leaf followed by the intermediate when `present_intermediate`, the leaf alone otherwise.
    pub fn issue_via_intermediate(
        &self,
        subject: &Subject,
        intermediate_until: OffsetDateTime,
        present_intermediate: bool,
    ) -> String {
        let root = Ca::load(&self.dir.join("ca.pem"), &self.dir.join("ca-key.pem")).unwrap();
        let intermediate = root
            .intermediate("dockgate test intermediate", intermediate_until)
            .unwrap();
        let mut pem = intermediate.issue(subject).unwrap();
        if present_intermediate {
            pem.cert.push_str(&intermediate.pem.cert);
        }
        let name = unique("via-intermediate");
        write_client_dir(&self.dir.join(&name), &root, &pem).unwrap();
        name
    }
}

/// The private dockerd socket handed over by scripts/test.sh, or `None` (test skipped, or a
/// failure when DOCKGATE_REQUIRE_DOCKERD=1, as under CI).
pub fn docker_socket() -> Option<PathBuf> {
    match std::env::var_os("DOCKGATE_TEST_DOCKER_SOCK") {
        Some(s) => Some(PathBuf::from(s)),
        None => {
            if std::env::var("DOCKGATE_REQUIRE_DOCKERD").as_deref() == Ok("1") {
                panic!("DOCKGATE_REQUIRE_DOCKERD=1 but DOCKGATE_TEST_DOCKER_SOCK is not set");
            }
            eprintln!("SKIPPED: needs a real dockerd; run scripts/test.sh (sets DOCKGATE_TEST_DOCKER_SOCK)");
            None
        }
    }
}

/// Skips the calling test (returning early) when no dockerd is available.
#[macro_export]
macro_rules! require_docker {
    () => {
        match $crate::support::docker_socket() {
            Some(s) => s,
            None => return,
        }
    };
}

/// The default test config; `{upstream}`-style fields are filled by [`Gate::start`].
pub const BASE_CONFIG: &str = r#"
identities:
  - cn: admin
    ou: admins
    role: admin
  - san_uri: "spiffe://test/team/*"
    role: "{*}"
  - ou: monitoring
    role: monitor
roles:
  dev:
    extends: [baseline]
    baseline:
      rules:
        exec-root: enforce
      bind_allowed: [/var/tmp/dockgate-test-binds]
      images: ["docker.io/library/busybox:*"]
      host_ip: 127.0.0.1
      memory_default: 256m
      memory_max: 1g
      pids_default: 128
      pids_max: 1024
      ulimits:
        nofile: { default: { soft: 1024, hard: 2048 }, max: 65536 }
      readonly_rootfs: inject
  monitor:
    extends: [read-only]
"#;

/// [`BASE_CONFIG`] with the role `role` (`dev` or `monitor`) also granted `groups`
/// (e.g. `"build, swarm"`).
pub fn base_config_granting(role: &str, groups: &str) -> String {
    let head = format!("  {role}:\n");
    let at = BASE_CONFIG.find(&head).expect("a role of BASE_CONFIG");
    // After the role's `extends:` line.
    let line_end = at + head.len() + BASE_CONFIG[at + head.len()..].find('\n').unwrap() + 1;
    format!(
        "{}    allow: [{groups}]\n{}",
        &BASE_CONFIG[..line_end],
        &BASE_CONFIG[line_end..]
    )
}

/// A dockgate instance running in-process on an ephemeral port.
pub struct Gate {
    pub addr: SocketAddr,
    pub audit_path: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _tmp: tempfile::TempDir,
}

impl Gate {
    /// Starts dockgate in front of `upstream` with [`BASE_CONFIG`] plus `extra` YAML.
    pub fn start(upstream: &Path, extra: &str) -> Gate {
        Gate::start_with(upstream, &format!("{BASE_CONFIG}{extra}"))
    }

    /// Starts dockgate with `body` as the policy/identity part of the config.
    pub fn start_with(upstream: &Path, body: &str) -> Gate {
        Gate::start_on("127.0.0.1:0", upstream, body)
    }

    /// [`Gate::start_with`] listening on `bind` (e.g. `[::1]:0`).
    pub fn start_on(bind: &'static str, upstream: &Path, body: &str) -> Gate {
        Gate::launch(bind, upstream, body, None, false)
    }

    /// [`Gate::start`] with its audit file in `dir` (a small filesystem, say).
    pub fn start_auditing_in(upstream: &Path, extra: &str, dir: &Path) -> Gate {
        let body = format!("{BASE_CONFIG}{extra}");
        Gate::launch("127.0.0.1:0", upstream, &body, Some(dir), false)
    }

    /// [`Gate::start_with`] trusting, after the test CA (`ca.pem`), the CA that issued
    /// [`OTHER_CA`]'s certificate (`other-ca.pem`); the config's directory is the PKI's.
    pub fn start_trusting_other_ca(upstream: &Path, body: &str) -> Gate {
        Gate::launch("127.0.0.1:0", upstream, body, None, true)
    }

    fn launch(
        bind: &'static str,
        upstream: &Path,
        body: &str,
        audit_dir: Option<&Path>,
        other_ca: bool,
    ) -> Gate {
        let pki = pki();
        let tmp = tempfile::tempdir().unwrap();
        let audit_path = audit_dir.unwrap_or(tmp.path()).join("audit.jsonl");
        let client_ca = if other_ca {
            "[ca.pem, other-ca.pem]"
        } else {
            "[ca.pem]"
        };
        let yaml = format!(
            "listen: 127.0.0.1:0\nupstream: unix://{up}\nshutdown_grace_secs: 2\n\
             tls:\n  cert: {d}/server/cert.pem\n  key: {d}/server/key.pem\n  client_ca: {client_ca}\n\
             audit:\n  path: {audit}\n{body}",
            up = upstream.display(),
            d = pki.dir.display(),
            audit = audit_path.display(),
        );
        // Relative paths (the client CA bundles, an identity rule's client_ca) are the PKI's.
        let config =
            Config::from_yaml(&yaml, &pki.dir.join("dockgate.yaml"), &Overrides::default())
                .unwrap_or_else(|e| panic!("test config invalid:\n{e}\n---\n{yaml}"));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let state = dockgate::build_state(config).unwrap_or_else(|e| panic!("{e}"));
                let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                dockgate::server::run(listener, state, async {
                    let _ = stop_rx.await;
                })
                .await;
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("dockgate did not start");
        Gate {
            addr,
            audit_path,
            shutdown: Some(stop_tx),
            thread: Some(thread),
            _tmp: tmp,
        }
    }

    /// The docker CLI pointed at this gate with the named client certificate.
    pub fn docker(&self, client: &str) -> Docker {
        Docker {
            addr: self.addr,
            cert_dir: pki().client_dir(client),
        }
    }

    /// Stops the gate (waiting for the drain) and returns the audit records written.
    pub fn stop(mut self) -> Vec<serde_json::Value> {
        self.shutdown_now();
        self.audit()
    }

    /// Audit records written so far (the writer flushes after each batch). A read can catch the
    /// writer mid-batch: the unfinished last line (no newline yet) is left for the next read.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.audit_path).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    /// Waits (with a deadline) until an audit record satisfies `pred`.
    pub fn wait_audit(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(r) = self.audit().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no matching audit record; have: {:#?}",
                self.audit()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the record of the end of a stream (not a hijacked one) on `route`.
    pub fn wait_stream_end(&self, route: &str) -> serde_json::Value {
        self.wait_audit(|r| r["kind"] == "stream" && r["route"] == route && r["upgraded"].is_null())
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Sends a JSON `body` to `POST path` as `client` on a connection of its own, asking for
    /// `Connection: close`; returns the whole response.
    pub fn post_json(&self, client: &str, path: &str, body: &str) -> String {
        self.raw(
            client,
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    }

    /// A raw TLS connection with the named client certificate.
    pub fn tls(&self, client: &str) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        tls_connect(self.addr, Some(client))
    }

    /// Sends raw request bytes over TLS and returns the whole response (the request should ask
    /// for `Connection: close`).
    pub fn raw(&self, client: &str, request: &[u8]) -> String {
        let mut s = self.tls(client);
        s.write_all(request).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// Opens a TLS connection to `addr` trusting the test CA, presenting `client`'s certificate.
pub fn tls_connect(
    addr: SocketAddr,
    client: Option<&str>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let config = tls_config_with(client, dockgate::tls::provider());
    tls_connect_config(addr, Arc::new(config))
}

/// Attempts a full handshake; returns the error text if it fails.
pub fn handshake(addr: SocketAddr, client: Option<&str>) -> Result<(), String> {
    let mut s = tls_connect(addr, client);
    // TLS 1.3 reports a client-certificate rejection only once we read.
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) if out.starts_with(b"HTTP/1.1") => Ok(()),
        Ok(_) => Err(format!(
            "connection closed: {}",
            String::from_utf8_lossy(&out)
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    tcp
}

/// A client configuration trusting the test CA, with `client`'s certificate (if any).
pub fn tls_config_with(
    client: Option<&str>,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> rustls::ClientConfig {
    tls_config_versions(client, provider, rustls::DEFAULT_VERSIONS)
}

/// [`tls_config_with`], speaking only the TLS `versions` given.
pub fn tls_config_versions(
    client: Option<&str>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let pki = pki();
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(pki.dir.join("ca.pem")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    match client {
        Some(name) => {
            let dir = pki.client_dir(name);
            let certs = CertificateDer::pem_file_iter(dir.join("cert.pem"))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    }
}

/// Opens a TLS connection with `config`.
pub fn tls_connect_config(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let conn = rustls::ClientConnection::new(
        config,
        rustls_pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    rustls::StreamOwned::new(conn, tcp_connect(addr))
}

/// Removes the containers and networks a test made when it ends, passed or failed.
pub struct Cleanup<'a> {
    docker: &'a Docker,
    containers: Vec<String>,
    networks: Vec<String>,
}

impl<'a> Cleanup<'a> {
    pub fn new(docker: &'a Docker) -> Self {
        Cleanup {
            docker,
            containers: Vec::new(),
            networks: Vec::new(),
        }
    }

    pub fn container(mut self, name: &str) -> Self {
        self.containers.push(name.to_string());
        self
    }

    pub fn network(mut self, name: &str) -> Self {
        self.networks.push(name.to_string());
        self
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = self.docker.run(&["rm", "-f", c]);
        }
        for n in &self.networks {
            let _ = self.docker.run(&["network", "rm", n]);
        }
    }
}

/// The real docker CLI, talking mTLS to a gate.
pub struct Docker {
    pub addr: SocketAddr,
    pub cert_dir: PathBuf,
}

impl Docker {
    /// A `docker` command with the TLS flags set and a clean environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("docker");
        clean_docker_env(&mut c);
        c.arg("--tlsverify")
            .arg("--tlscacert")
            .arg(self.cert_dir.join("ca.pem"))
            .arg("--tlscert")
            .arg(self.cert_dir.join("cert.pem"))
            .arg("--tlskey")
            .arg(self.cert_dir.join("key.pem"))
            .arg("-H")
            .arg(format!("tcp://{}", self.addr));
        c
    }

    /// Runs `docker ARGS` with a deadline and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        run_with_deadline(c, None, Duration::from_secs(120))
    }

    /// Runs `docker ARGS` feeding `stdin`.
    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        run_with_deadline(c, Some(stdin), Duration::from_secs(120))
    }

    /// Runs `docker ARGS` and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a detached busybox container that sleeps for five minutes; returns its name.
    pub fn sleeper(&self, prefix: &str) -> String {
        self.script(prefix, "exec sleep 300")
    }

    /// Starts a detached busybox container running the shell `script`; returns its name.
    /// (With no-new-privileges, which a baseline role's containers get anyway, and without
    /// which exec-root keeps it from exec'ing in an admin's.)
    pub fn script(&self, prefix: &str, script: &str) -> String {
        let name = unique(prefix);
        self.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--security-opt",
            "no-new-privileges",
            "busybox:local",
            "sh",
            "-c",
            script,
        ]);
        name
    }

    /// Starts a sleeping container with the host's root mounted read-only (one no baseline role
    /// could have created); returns its name.
    pub fn host_agent(&self) -> String {
        let name = unique("agent");
        self.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "-v",
            "/:/host:ro",
            "busybox:local",
            "sleep",
            "300",
        ]);
        name
    }

    /// Runs `docker ARGS`, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "docker {args:?} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Removes the caller's docker settings so only the flags we pass count.
pub fn clean_docker_env(c: &mut Command) {
    for var in [
        "DOCKER_HOST",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "DOCKER_CONTEXT",
        "DOCKER_API_VERSION",
    ] {
        c.env_remove(var);
    }
    c.env("DOCKER_CONFIG", docker_config_dir());
}

fn docker_config_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// Runs a command with an optional stdin and a deadline (killed after it).
pub fn run_with_deadline(mut c: Command, stdin: Option<&[u8]>, deadline: Duration) -> Output {
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(deadline).is_err() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    });
    let out = child.wait_with_output().expect("wait");
    let _ = done_tx.send(());
    let _ = watchdog.join();
    out
}

/// A unique name for containers and volumes made by one test.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "dgt-{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Asserts that a stream end record says the stream was cut before its end.
pub fn assert_cut(end: &serde_json::Value) {
    let reason = end["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("cut before the end"), "{end}");
}
