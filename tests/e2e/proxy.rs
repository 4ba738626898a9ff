//! Everything a docker user does works through dockgate as if talking to dockerd.

use std::process::Command;
use std::time::Duration;

use crate::require_docker;
use crate::support::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_info_and_ps_work_through_the_proxy() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let d = gate.docker(ADMIN);
    let v = d.ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert!(v.trim().starts_with("1."), "{v}");
    let info = d.ok(&["info", "--format", "{{.ServerVersion}}"]);
    assert!(!info.trim().is_empty());
    d.ok(&["ps", "-a"]);
    let rec = gate.wait_audit(|r| r["route"] == "GET /info");
    assert_eq!(rec["cn"], "admin");
    assert_eq!(rec["role"], "admin");
    assert_eq!(rec["decision"], "allow");
    assert_eq!(rec["status"], 200);
}

#[test]
fn run_rm_prints_container_output() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let out = gate
        .docker(ADMIN)
        .ok(&["run", "--rm", "busybox:local", "echo", "through dockgate"]);
    assert_eq!(out.trim(), "through dockgate");
}

#[test]
fn stdin_half_close_reaches_the_container_and_output_flows_back() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let out = gate
        .docker(ADMIN)
        .run_stdin(&["run", "-i", "--rm", "busybox:local", "cat"], b"hello\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello\n");
}

#[test]
fn large_stdin_stream_round_trips_through_a_hijacked_connection() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let input: Vec<u8> = (0..2_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let out = gate
        .docker(ADMIN)
        .run_stdin(&["run", "-i", "--rm", "busybox:local", "wc", "-c"], &input);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "2000000");
}

#[test]
fn exec_and_interactive_exec_into_a_running_container() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let d = gate.docker(ADMIN);
    let name = d.sleeper("exec");
    let out = d.ok(&["exec", &name, "echo", "from exec"]);
    assert_eq!(out.trim(), "from exec");
    let out = d.run_stdin(
        &["exec", "-i", &name, "sh", "-c", "read x; echo got:$x"],
        b"ping\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "got:ping");
    d.ok(&["rm", "-f", &name]);
    let ps = d.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Names}}",
    ]);
    assert!(ps.trim().is_empty(), "container still there: {ps}");
}

#[test]
fn logs_follow_streams_until_the_container_exits() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let d = gate.docker(ADMIN);
    let name = d.script("logs", "for i in 1 2 3; do echo line$i; sleep 0.3; done");
    let out = d.ok(&["logs", "-f", &name]);
    assert_eq!(out, "line1\nline2\nline3\n");
    d.ok(&["rm", "-f", &name]);
}

#[test]
fn events_stream_while_a_container_starts() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let d = gate.docker(ADMIN);
    let name = unique("events");
    let mut events = d.cmd();
    events.args([
        "events",
        "--filter",
        &format!("container={name}"),
        "--format",
        "{{.Action}}",
    ]);
    events
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = events.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // The events stream must be open before the container starts.
    gate.wait_audit(|r| r["route"] == "GET /events");
    d.ok(&["run", "--rm", "--name", &name, "busybox:local", "true"]);
    let mut seen = Vec::new();
    while !seen.iter().any(|a: &String| a == "start") {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains(&"create".to_string()), "{seen:?}");
    assert!(seen.contains(&"start".to_string()), "{seen:?}");
    // The request's record said 200 when the stream began; its end, cut by the client,
    // is a record of its own.
    let end = gate.wait_stream_end("GET /events");
    assert_eq!(end["cn"], "admin", "{end}");
    assert_eq!(end["status"], 200, "{end}");
    assert_cut(&end);
    assert!(end["bytes_out"].as_u64().unwrap() > 0, "{end}");
    assert!(end.get("upgraded").is_none(), "{end}");
}

#[test]
fn a_streamed_answer_read_to_its_end_is_recorded_complete_with_its_size() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let d = gate.docker(ADMIN);
    let name = unique("logs");
    d.ok(&[
        "run",
        "--name",
        &name,
        "busybox:local",
        "echo",
        "a line to log",
    ]);
    assert_eq!(d.ok(&["logs", &name]), "a line to log\n");
    let end = gate.wait_stream_end("GET /containers/{id}/logs");
    assert_eq!(end["reason"], "complete", "{end}");
    assert_eq!(end["rule"], "builtin:admin", "{end}");
    // One frame of dockerd's log multiplexing: an 8-byte header, then the line.
    assert_eq!(end["bytes_out"], 8 + "a line to log\n".len(), "{end}");
    d.ok(&["rm", "-f", &name]);
}

#[test]
fn a_large_json_answer_read_to_its_end_has_only_its_request_record() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let d = gate.docker(ADMIN);
    let name = d.sleeper("inspected");
    // dockerd chunks any answer over 2 KiB, as an inspect is: streamed, but not a stream route.
    let out = d.ok(&["inspect", &name]);
    assert!(out.len() > 4096, "{}", out.len());
    d.ok(&["rm", "-f", &name]);
    // Records are written in order: once the remove is recorded, the inspect's end would be.
    gate.wait_audit(|r| r["route"] == "DELETE /containers/{id}");
    let records = gate.audit();
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "request" && r["route"] == "GET /containers/{id}/json"),
        "{records:#?}"
    );
    assert!(
        !records
            .iter()
            .any(|r| r["kind"] == "stream" && r["route"] == "GET /containers/{id}/json"),
        "{records:#?}"
    );
}

#[test]
fn cp_copies_into_and_out_of_a_container() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let d = gate.docker(ADMIN);
    let name = d.sleeper("cp");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.txt");
    std::fs::write(&src, "copied in\n").unwrap();
    d.ok(&["cp", src.to_str().unwrap(), &format!("{name}:/tmp/in.txt")]);
    assert_eq!(d.ok(&["exec", &name, "cat", "/tmp/in.txt"]), "copied in\n");
    let back = dir.path().join("out.txt");
    d.ok(&["cp", &format!("{name}:/tmp/in.txt"), back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(back).unwrap(), "copied in\n");
    d.ok(&["rm", "-f", &name]);
}

#[test]
fn a_large_upload_arrives_byte_for_byte() {
    // 24 MiB through `docker cp`: the TLS reads below rustls switch to large gulps while it
    // flows (see `gulp`), and the container must still see exactly the bytes sent.
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let d = gate.docker(ADMIN);
    let name = d.sleeper("cp-large");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..24 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&src, &data).unwrap();
    d.ok(&["cp", src.to_str().unwrap(), &format!("{name}:/tmp/big.bin")]);
    let local = Command::new("sha256sum").arg(&src).output().unwrap();
    let local = text(&local.stdout);
    let remote = d.ok(&["exec", &name, "sha256sum", "/tmp/big.bin"]);
    assert_eq!(
        remote.split_whitespace().next(),
        local.split_whitespace().next()
    );
    d.ok(&["rm", "-f", &name]);
}

#[test]
fn docker_host_environment_variables_work_too() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let mut c = Command::new("docker");
    clean_docker_env(&mut c);
    c.env("DOCKER_HOST", format!("tcp://{}", gate.addr))
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", pki().client_dir(ADMIN))
        .args(["run", "--rm", "busybox:local", "echo", "env ok"]);
    let out = run_with_deadline(c, None, Duration::from_secs(120));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "env ok");
}

#[test]
fn python_sdk_runs_a_container_and_reads_its_logs() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let dir = pki().client_dir(ADMIN);
    let script = r#"
import sys, docker
tls = docker.tls.TLSConfig(client_cert=(sys.argv[2] + "/cert.pem", sys.argv[2] + "/key.pem"),
                           ca_cert=sys.argv[2] + "/ca.pem", verify=True)
c = docker.DockerClient(base_url="https://" + sys.argv[1], tls=tls, version="auto")
ct = c.containers.run("busybox:local", ["echo", "hello from sdk"], detach=True)
ct.wait(timeout=60)
sys.stdout.write(ct.logs().decode())
ct.remove(force=True)
"#;
    let mut c = Command::new("python3");
    // requests lets these override the SDK's CA file; the test CA must be the one used.
    c.env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE");
    c.args(["-c", script, &gate.addr.to_string(), dir.to_str().unwrap()]);
    let out = run_with_deadline(c, None, Duration::from_secs(120));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "hello from sdk");
}

#[test]
fn buildkit_session_h2c_upgrade_is_relayed() {
    use std::io::{Read, Write};
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let mut s = gate.tls(ADMIN);
    s.write_all(
        b"POST /session HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\
          X-Docker-Expose-Session-Uuid: dgtest\r\nX-Docker-Expose-Session-Name: dgtest\r\n\
          X-Docker-Expose-Session-Sharedkey: dgtest\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: h2c"), "{head}");
    let rec = gate.wait_audit(|r| r["route"] == "POST /session");
    assert_eq!(rec["upgraded"], true);
    assert_eq!(rec["group"], "build");
}

/// A stub Docker socket that answers every request with `200 OK` and counts connections.
fn counting_stub() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stub.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            let _ =
                                stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    (dir, path, count)
}

#[test]
fn short_client_connections_reuse_upstream_connections() {
    let (_dir, sock, accepted) = counting_stub();
    let gate = Gate::start(&sock, "");
    for _ in 0..10 {
        let resp = gate.raw(
            ADMIN,
            b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
    // Without reuse every client connection opens its own (10); a connection handed over as a
    // client leaves is picked up by the next one unless that one was faster.
    let opened = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        opened < 10,
        "{opened} upstream connections for 10 short clients"
    );
}

/// A fake dockerd on a Unix socket: answers container and network lookups with fixed inspects
/// and records every other request (`METHOD target` and body), answering `{}`.
fn recording_upstream(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let (sock, seen, _) = recording_upstream_listing(dir);
    (sock, seen)
}

/// How many containers a fake dockerd lists besides `web` (settable), and what it was asked.
#[derive(Clone, Default)]
struct Listing {
    others: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    lists: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    inspects: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Listing {
    fn list(&self) -> String {
        // Counted once the number is read: a test that waits for a list then changes it
        // changes the next one.
        let others = self.others.load(std::sync::atomic::Ordering::SeqCst);
        self.lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut listed = vec![format!(r#"{{"Id":"{}","Names":["/web"]}}"#, "c".repeat(64))];
        listed
            .extend((1..=others).map(|i| format!(r#"{{"Id":"{i:064x}","Names":["/other-{i}"]}}"#)));
        format!("[{}]", listed.join(","))
    }

    fn set_others(&self, n: usize) {
        self.others.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits until dockerd's containers have been listed `n` times.
    fn wait_lists(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.lists.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(std::time::Instant::now() < deadline, "never listed");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// [`recording_upstream`] listing as many containers besides `web` as its [`Listing`] says.
fn recording_upstream_listing(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    Listing,
) {
    let listing = Listing::default();
    let list = listing.clone();
    use std::io::{BufRead, BufReader, Read, Write};
    let sock = dir.join("docker.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let log = log.clone();
            let list = list.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    let target = line.split(' ').nth(1).unwrap_or("").to_string();
                    let answer = if target.starts_with("/containers/json?all=1&filters=") {
                        // Those mounting a volume: none.
                        "[]".to_string()
                    } else if target == "/containers/json?all=1" {
                        list.list()
                    } else if target.starts_with("/containers/") && target.ends_with("/json") {
                        list.inspects
                            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        format!(
                            r#"{{"Id":"{}","Config":{{"Image":"busybox:local"}},"HostConfig":{{"SecurityOpt":["no-new-privileges"]}}}}"#,
                            "c".repeat(64)
                        )
                    } else if let Some(name) = target.strip_prefix("/networks/") {
                        format!(
                            r#"{{"Name":"{name}","Id":"{}","Driver":"bridge","Options":{{}},"ConfigFrom":{{"Network":""}}}}"#,
                            "e".repeat(64)
                        )
                    } else {
                        let method = line.split(' ').next().unwrap_or("");
                        log.lock().unwrap().push(format!(
                            "{method} {target} {}",
                            String::from_utf8_lossy(&body)
                        ));
                        "{}".to_string()
                    };
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                }
            });
        }
    });
    (sock, seen, listing)
}

#[test]
fn containers_not_seen_yet_are_looked_at_a_bounded_number_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let (sock, seen, listing) = recording_upstream_listing(dir.path());
    let gate = Gate::start(&sock, "");
    // Once dockgate has learned the containers there were at start, 600 it has not seen come
    // besides the one an exec goes into.
    listing.wait_lists(1);
    listing.set_others(600);
    let exec = || {
        let body = r#"{"Cmd":["true"],"User":"1000"}"#;
        gate.post_json(DEV, "/v1.41/containers/web/exec", body)
    };
    // The first looks at 512 of them and is refused, saying how many are left...
    let resp = exec();
    assert!(resp.starts_with("HTTP/1.1 503"), "{resp}");
    assert!(
        resp.contains("dockerd has 88 more containers than the 512"),
        "{resp}"
    );
    assert!(resp.contains("(rule limits"), "{resp}");
    assert!(seen.lock().unwrap().is_empty(), "nothing forwarded");
    // ...and the next goes on from there.
    let resp = exec();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let forwarded = seen.lock().unwrap().clone();
    assert_eq!(forwarded.len(), 1, "{forwarded:?}");
    assert!(forwarded[0].starts_with(&format!("POST /v1.41/containers/{}/exec", "c".repeat(64))));
    // Under audit_only the first is not refused: the record says it would have been.
    listing.set_others(0);
    let lists = listing.lists.load(std::sync::atomic::Ordering::SeqCst);
    let audited = Gate::start(&sock, "policy:\n  audit_only: true\n");
    listing.wait_lists(lists + 1);
    listing.set_others(600);
    let resp = audited.post_json(
        DEV,
        "/v1.41/containers/web/exec",
        r#"{"Cmd":["true"],"User":"1000"}"#,
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let record = audited.wait_audit(|r| r["route"].as_str().is_some_and(|t| t.contains("/exec")));
    assert!(
        record
            .to_string()
            .contains("would refuse: dockgate: dockerd has 88 more containers"),
        "{record}"
    );
}

#[test]
fn the_containers_there_at_start_are_learned_before_any_request_needs_them() {
    let dir = tempfile::tempdir().unwrap();
    let (sock, seen, listing) = recording_upstream_listing(dir.path());
    // More than one request looks at.
    listing.set_others(600);
    let gate = Gate::start(&sock, "");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while listing.inspects.load(std::sync::atomic::Ordering::SeqCst) < 601 {
        assert!(std::time::Instant::now() < deadline, "not learned");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first exec is judged at once, without looking at them again.
    let resp = gate.post_json(
        DEV,
        "/v1.41/containers/web/exec",
        r#"{"Cmd":["true"],"User":"1000"}"#,
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert!(listing.inspects.load(std::sync::atomic::Ordering::SeqCst) <= 602);
}

#[test]
fn commit_and_network_connect_reach_dockerd_with_the_judged_containers_full_id() {
    let dir = tempfile::tempdir().unwrap();
    let (sock, seen) = recording_upstream(dir.path());
    let config = base_config_granting("dev", "images-write");
    let gate = Gate::start_with(&sock, &config);
    let full = "c".repeat(64);
    let send = |head: &str, body: &str| {
        let req = format!(
            "{head} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        gate.raw(DEV, req.as_bytes())
    };
    let resp = send("POST /v1.41/commit?container=web&repo=app&tag=v1", "");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let resp = send(
        "POST /v1.41/networks/team-net/connect",
        r#"{"Container":"web","EndpointConfig":{}}"#,
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    // rm --link names a link (parent/child), which stays as sent.
    let resp = send("DELETE /v1.41/containers/web/db?link=1", "");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    // A link names the judged container by its full ID.
    let resp = send(
        "POST /v1.41/containers/create",
        r#"{"Image":"busybox","HostConfig":{"Links":["web:db"]}}"#,
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    // A network named like an ID prefix could be re-pointed in between: refused.
    let resp = send(
        "POST /v1.41/networks/abc123/connect",
        r#"{"Container":"web"}"#,
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("named like an ID prefix"), "{resp}");
    // A repeated container= is refused: dockerd would commit the first, unjudged.
    let resp = send(
        "POST /v1.41/commit?container=admin-box&container=web&repo=app",
        "",
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:#?}");
    assert_eq!(
        seen[..3],
        [
            format!("POST /v1.41/commit?container={full}&repo=app&tag=v1 "),
            format!(
                r#"POST /v1.41/networks/team-net/connect {{"Container":"{full}","EndpointConfig":{{}}}}"#
            ),
            "DELETE /v1.41/containers/web/db?link=1 ".to_string(),
        ]
    );
    assert!(
        seen[3].starts_with("POST /v1.41/containers/create "),
        "{}",
        seen[3]
    );
    assert!(
        seen[3].contains(&format!(r#""Links":["{full}:db"]"#)),
        "{}",
        seen[3]
    );
    // The policy's injected defaults are still there.
    assert!(seen[3].contains(r#""PidsLimit":128"#), "{}", seen[3]);
}
