//! Starting, stopping and the audit trail across a shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::require_docker;
use crate::support::*;

#[test]
fn every_request_is_in_the_audit_log_after_shutdown() {
    let gate = Gate::start(std::path::Path::new("/nonexistent/docker.sock"), "");
    for _ in 0..50 {
        let resp = gate.raw(
            ADMIN,
            b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
    }
    let records = gate.stop();
    let requests = records.iter().filter(|r| r["kind"] == "request").count();
    assert_eq!(requests, 50);
}

/// Writes a config file for the dockgate binary and returns (dir, config path).
fn binary_config(
    upstream: &std::path::Path,
    grace_secs: u32,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dockgate.yaml");
    let yaml = format!(
        "listen: 127.0.0.1:0\nupstream: unix://{up}\nshutdown_grace_secs: {grace_secs}\n\
         tls:\n  cert: {d}/server/cert.pem\n  key: {d}/server/key.pem\n  client_ca: [{d}/ca.pem]\n\
         audit:\n  path: {audit}\n{BASE_CONFIG}",
        up = upstream.display(),
        d = pki.dir.display(),
        audit = dir.path().join("audit.jsonl").display(),
    );
    std::fs::write(&path, yaml).unwrap();
    (dir, path)
}

/// Starts the dockgate binary on a free port and returns it with its address.
fn spawn_binary(config: &std::path::Path) -> (std::process::Child, std::net::SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dockgate"))
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &addr.to_string(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("dockgate did not start");
        if line.contains("dockgate listening") {
            break;
        }
    }
    (child, addr)
}

/// Waits (with a deadline) until the binary's audit log has a record matching `pred`.
fn wait_binary_audit(dir: &std::path::Path, pred: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default();
        if text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|r| pred(&r))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no matching audit record in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigterm(child: &std::process::Child) {
    assert!(Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success());
}

fn wait_exit(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "dockgate did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_and_exits_zero() {
    let sock = require_docker!();
    let (dir, config) = binary_config(&sock, 10);
    let (mut child, addr) = spawn_binary(&config);
    let docker = Docker {
        addr,
        cert_dir: pki().client_dir(ADMIN),
    };
    let mut cmd = docker.cmd();
    cmd.args([
        "run",
        "--rm",
        "busybox:local",
        "sh",
        "-c",
        "sleep 5; echo finished",
    ]);
    let run = std::thread::spawn(move || run_with_deadline(cmd, None, Duration::from_secs(60)));
    // Once the container has started (so the CLI is attached and waiting), ask dockgate to stop.
    wait_binary_audit(dir.path(), |r| {
        r["route"] == "POST /containers/{id}/start" && r["status"] == 204
    });
    sigterm(&child);
    // Draining: the port is closed to new clients at once, while the request in flight goes
    // on (the container sleeps for 5 s, and dockgate stays up until its attach ends).
    let closing = Instant::now() + Duration::from_secs(2);
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(
            Instant::now() < closing,
            "dockgate still accepts connections 2 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "dockgate exited before its in-flight request finished"
    );
    let out = run.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "finished");
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
}

#[test]
fn sigterm_cuts_hijacked_streams_after_the_grace_period() {
    let sock = require_docker!();
    let (dir, config) = binary_config(&sock, 1);
    let (mut child, addr) = spawn_binary(&config);
    let docker = Docker {
        addr,
        cert_dir: pki().client_dir(ADMIN),
    };
    let name = unique("grace");
    let mut cmd = docker.cmd();
    // stdin stays open: the attach stream lives until dockgate cuts it.
    cmd.args(["run", "-i", "--rm", "--name", &name, "busybox:local", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut client = cmd.spawn().unwrap();
    // Once the attach stream is hijacked, ask dockgate to stop.
    wait_binary_audit(dir.path(), |r| {
        r["route"] == "POST /containers/{id}/attach" && r["upgraded"] == true
    });
    sigterm(&child);
    let started = Instant::now();
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "exited before the grace period"
    );
    let _ = client.kill();
    let _ = client.wait();
    let _ = Command::new("docker")
        .args([
            "-H",
            &format!("unix://{}", sock.display()),
            "rm",
            "-f",
            &name,
        ])
        .output();
}
