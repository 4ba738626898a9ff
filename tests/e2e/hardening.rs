//! Requests that end unusually still get a clear answer and an audit record: a client that goes
//! away while dockerd works, bytes the HTTP parser refuses, upgrades where none belongs, and
//! hijacked streams that count against the connection limit.

use std::io::{Read, Write};
use std::time::Duration;

use crate::require_docker;
use crate::support::*;

/// An upstream socket path where nothing listens: these refusals never reach it.
fn nowhere() -> std::path::PathBuf {
    std::path::PathBuf::from("/nonexistent/docker.sock")
}

#[test]
fn a_request_whose_client_goes_away_while_dockerd_works_on_it_is_still_audited() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let d = gate.docker(ADMIN);
    let name = d.sleeper("cut");
    let mut s = gate.tls(ADMIN);
    // `sleep` as PID 1 ignores SIGTERM: dockerd answers `stop` only after the 20 s it waits
    // before SIGKILL, and is still on it when the client closes its connection.
    write!(
        s,
        "POST /containers/{name}/stop?t=20 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(s);
    let path = format!("/containers/{name}/stop?t=20");
    let rec = gate.wait_audit(|r| r["path"] == path.as_str());
    assert_eq!(rec["decision"], "allow", "{rec}");
    assert_eq!(rec["rule"], "builtin:admin", "{rec}");
    assert!(rec.get("status").is_none(), "{rec}");
    let reason = rec["reason"].as_str().unwrap();
    assert!(reason.contains("client went away"), "{reason}");
    assert!(reason.contains("dockerd may have acted"), "{reason}");
    d.ok(&["rm", "-f", &name]);
}

#[test]
fn a_request_the_http_parser_refuses_is_answered_400_and_audited() {
    let gate = Gate::start(&nowhere(), "");
    let resp = gate.raw(
        ADMIN,
        b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    let rec = gate.wait_audit(|r| r["rule"] == "http");
    assert_eq!(rec["decision"], "deny", "{rec}");
    assert_eq!(rec["status"], 400, "{rec}");
    assert_eq!(rec["cn"], "admin", "{rec}");
    assert!(
        rec["reason"].as_str().unwrap().contains("HTTP parser"),
        "{rec}"
    );
}

#[test]
fn an_upgrade_is_refused_on_a_route_that_does_not_switch_protocols() {
    let gate = Gate::start(&nowhere(), "");
    let resp = gate.raw(
        ADMIN,
        b"POST /containers/web/stop HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("does not switch protocols"), "{resp}");
    let rec = gate.wait_audit(|r| r["route"] == "POST /containers/{id}/stop");
    assert_eq!(rec["decision"], "deny");
    assert_eq!(rec["rule"], "request");
}

#[test]
fn an_upgrade_over_http_1_0_is_refused_before_it_reaches_dockerd() {
    // hyper can only switch protocols on HTTP/1.1: forwarded, the exec would run in dockerd
    // with nobody attached to it.
    let gate = Gate::start(&nowhere(), "");
    let resp = gate.raw(
        ADMIN,
        b"POST /exec/abc/start HTTP/1.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
          Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    );
    assert!(resp.starts_with("HTTP/1.0 400"), "{resp}");
    assert!(resp.contains("needs HTTP/1.1"), "{resp}");
}

#[test]
fn a_hijacked_stream_keeps_its_connection_slot_until_it_ends() {
    let sock = require_docker!();
    let admin = Gate::start(&sock, "");
    let name = admin.docker(ADMIN).sleeper("slot");
    let gate = Gate::start(&sock, "limits:\n  max_connections: 1\n");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let s = loop {
        let mut s = gate.tls(ADMIN);
        let req = format!(
            "POST /containers/{name}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\
             Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        );
        let mut head = [0u8; 256];
        let n = s
            .write_all(req.as_bytes())
            .and_then(|()| s.read(&mut head))
            .unwrap_or(0);
        if String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 101") {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "no 101 from attach");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The attach stream holds the only slot: a second client is dropped before TLS.
    assert!(handshake(gate.addr, Some(ADMIN)).is_err());
    let rec = gate.wait_audit(|r| r["rule"] == "max-connections");
    assert_eq!(rec["decision"], "deny");
    // Once the stream ends, the slot is free again.
    s.sock.shutdown(std::net::Shutdown::Both).unwrap();
    drop(s);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handshake(gate.addr, Some(ADMIN)).is_err() {
        assert!(std::time::Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(100));
    }
    admin.docker(ADMIN).ok(&["rm", "-f", &name]);
}

/// Sends a request on a new keep-alive connection with `client`'s certificate (answered 200),
/// waits past the certificate's (or its intermediate's) expiry, sends another on the same
/// connection and returns that one's whole response, which must be a 403.
fn a_request_before_and_after_expiry(gate: &Gate, client: &str) -> String {
    let mut s = gate.tls(client);
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // The same connection, once notAfter has passed.
    std::thread::sleep(Duration::from_secs(8));
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let second = String::from_utf8_lossy(&rest).into_owned();
    assert!(second.starts_with("HTTP/1.1 403"), "{second}");
    second
}

#[test]
fn a_certificate_that_expires_during_a_keep_alive_connection_is_refused_from_then_on() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let now = time::OffsetDateTime::now_utc();
    let mut subject = dockgate::certs::Subject::client("admin").ou("admins");
    subject.not_before = now - time::Duration::minutes(1);
    subject.not_after = now + time::Duration::seconds(6);
    let short_lived = pki().issue(&subject);
    let second = a_request_before_and_after_expiry(&gate, &short_lived);
    assert!(
        second.contains("has expired since this connection was opened"),
        "{second}"
    );
    let rec = gate.wait_audit(|r| r["rule"] == "tls" && r["kind"] == "request");
    assert_eq!(rec["decision"], "deny");
}

/// A ustar header for one regular file of `size` bytes.
fn tar_header(name: &str, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

/// Reads from `s` until `done` holds for what came (or the stream ends); returns what came and
/// when the read stopped.
fn read_until(s: &mut impl Read, done: impl Fn(&[u8]) -> bool) -> (Vec<u8>, std::time::Instant) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if done(&seen) {
                    break;
                }
            }
        }
    }
    (seen, std::time::Instant::now())
}

#[test]
fn what_a_certificate_has_under_way_ends_when_it_expires() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let name = gate
        .docker(ADMIN)
        .script("ticker", "while true; do echo tick; sleep 1; done");
    let sink = gate.docker(ADMIN).sleeper("sink");
    let stubborn = gate.docker(ADMIN).sleeper("stubborn");
    let now = time::OffsetDateTime::now_utc();
    let mut subject = dockgate::certs::Subject::client("admin").ou("admins");
    subject.not_before = now - time::Duration::minutes(1);
    subject.not_after = now + time::Duration::seconds(6);
    let short_lived = pki().issue(&subject);
    let expires = std::time::Instant::now() + Duration::from_secs(6);

    // An upload of one 1 MiB file, trickled: still under way when the certificate expires
    // (into another container: dockerd holds a container's lock while it extracts into it).
    let mut upload = gate.tls(&short_lived);
    write!(
        upload,
        "PUT /containers/{sink}/archive?path=/tmp HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        512 + (1 << 20)
    )
    .unwrap();
    upload.write_all(&tar_header("big", 1 << 20)).unwrap();
    upload.flush().unwrap();
    let uploaded = std::thread::spawn(move || {
        upload
            .sock
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..60 {
            if upload.write_all(&[0u8; 512]).is_err() {
                break;
            }
            match upload.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    });

    // A stop that dockerd works on for 60 s (`sleep` as PID 1 ignores SIGTERM).
    let mut stop = gate.tls(&short_lived);
    write!(
        stop,
        "POST /containers/{stubborn}/stop?t=60 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    stop.flush().unwrap();
    // An attach with stdin (a way to write into the container) and a followed log.
    let mut attach = gate.tls(&short_lived);
    write!(
        attach,
        "POST /containers/{name}/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    )
    .unwrap();
    let mut logs = gate.tls(&short_lived);
    write!(
        logs,
        "GET /containers/{name}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    attach
        .sock
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    logs.sock
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();

    // Both stream ticks until notAfter has passed, then are cut: both connections close.
    let (attached, attach_ended) = read_until(&mut attach, |_| false);
    let attached = String::from_utf8_lossy(&attached).into_owned();
    assert!(attached.starts_with("HTTP/1.1 101"), "{attached}");
    assert!(attached.contains("tick"), "{attached}");
    let (logged, logs_ended) = read_until(&mut logs, |_| false);
    let logged = String::from_utf8_lossy(&logged).into_owned();
    assert!(logged.starts_with("HTTP/1.1 200"), "{logged}");
    assert!(logged.contains("tick"), "{logged}");
    // Cut, not ended: no last chunk, so the client cannot take it for a shorter log.
    assert!(!logged.ends_with("0\r\n\r\n"), "{logged}");
    for ended in [attach_ended, logs_ended] {
        assert!(
            ended + Duration::from_secs(1) >= expires,
            "ended before the expiry"
        );
        assert!(
            ended < expires + Duration::from_secs(10),
            "ran on past the expiry"
        );
    }
    // The stop's answer is not waited for past the expiry.
    stop.sock
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (stopped, stop_ended) = read_until(&mut stop, |_| false);
    let stopped = String::from_utf8_lossy(&stopped).into_owned();
    assert!(stopped.starts_with("HTTP/1.1 403"), "{stopped}");
    assert!(
        stopped.contains("expired while dockerd worked on this request"),
        "{stopped}"
    );
    assert!(
        stop_ended < expires + Duration::from_secs(10),
        "waited past the expiry"
    );
    // The upload fails at the expiry; dockerd never gets the rest.
    // (Whichever comes first: the body cut, 400, or the wait for dockerd's answer, 403.)
    let uploaded = uploaded.join().unwrap();
    assert!(
        uploaded.starts_with("HTTP/1.1 400") || uploaded.starts_with("HTTP/1.1 403"),
        "{uploaded}"
    );
    assert!(uploaded.contains("certificate"), "{uploaded}");
    assert!(uploaded.contains("expired while"), "{uploaded}");
    let archive = format!("/containers/{sink}/archive?path=/tmp");
    let rec = gate.wait_audit(|r| r["path"] == archive.as_str());
    let reason = rec["reason"].as_str().unwrap();
    assert!(reason.contains("expired while"), "{rec}");
    // The records of both ends say why.
    let attach_end = gate.wait_audit(|r| {
        r["upgraded"] == true
            && r["reason"]
                .as_str()
                .is_some_and(|s| s.contains("cut when the client certificate expired"))
    });
    assert_eq!(attach_end["cn"], "admin", "{attach_end}");
    let logs_end = gate.wait_audit(|r| {
        r["route"] == "GET /containers/{id}/logs"
            && r["reason"] == "cut when the client certificate expired"
    });
    assert!(logs_end["bytes_out"].as_u64().unwrap() > 0, "{logs_end}");
    gate.docker(ADMIN)
        .ok(&["rm", "-f", &name, &sink, &stubborn]);
}

#[test]
fn an_intermediate_ca_that_expires_during_a_keep_alive_connection_ends_its_service() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let now = time::OffsetDateTime::now_utc();
    // The leaf is good for a year; the intermediate that issued it, for six seconds.
    let client = pki().issue_via_intermediate(
        &dockgate::certs::Subject::client("admin").ou("admins"),
        now + time::Duration::seconds(6),
        true,
    );
    let second = a_request_before_and_after_expiry(&gate, &client);
    assert!(
        second.contains("or an intermediate CA certificate it came with) has expired"),
        "{second}"
    );
    // The chain was remembered as verified at the first handshake; not past its validity.
    let again = handshake(gate.addr, Some(&client)).expect_err("a new handshake is refused");
    assert!(!again.is_empty());
    gate.wait_audit(|r| {
        r["kind"] == "handshake"
            && r["reason"]
                .as_str()
                .is_some_and(|s| s.contains("certificate expired"))
    });
}

#[test]
fn a_flood_of_refused_handshakes_is_one_record_and_a_count_per_source() {
    let gate = Gate::start(&nowhere(), "");
    for _ in 0..30 {
        assert!(handshake(gate.addr, None).is_err());
    }
    let records = gate.stop();
    let refused: Vec<_> = records
        .iter()
        .filter(|r| r["kind"] == "handshake")
        .collect();
    assert_eq!(refused.len(), 2, "{refused:#?}");
    assert!(refused[0].get("repeated").is_none());
    assert_eq!(refused[1]["repeated"], 29, "{:#?}", refused[1]);
    assert_eq!(refused[1]["rule"], "tls");
}

#[test]
fn a_client_that_stops_reading_a_stream_is_cut_after_the_write_stall_limit() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "limits:\n  stall_timeout_secs: 1\n");
    let admin = gate.docker(ADMIN);
    let name = unique("spew");
    admin.ok(&["run", "-d", "--name", &name, "busybox:local", "yes"]);
    let mut s = gate.tls(ADMIN);
    write!(
        s,
        "GET /containers/{name}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    s.flush().unwrap();
    // The log never ends; this client reads none of it, so dockgate's writes stop progressing.
    std::thread::sleep(Duration::from_secs(5));
    // Reading now gets what was buffered, then the end of the stream: dockgate cut it. Were it
    // still open, the log would flow for ever; the deadline only keeps such a failure finite.
    s.sock
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    let ended = loop {
        match s.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => total += n,
            Err(e) => break Err(e),
        }
        if std::time::Instant::now() > deadline {
            panic!("the stream is still open after {total} bytes");
        }
    };
    assert!(
        !matches!(&ended, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "the stream was still open: {ended:?} after {total} bytes"
    );
    // The request's record said 200; the stream's own record says it was cut.
    let end = gate.wait_stream_end("GET /containers/{id}/logs");
    assert_cut(&end);
    admin.ok(&["rm", "-f", &name]);
}

#[test]
fn an_upload_the_client_stops_sending_is_cut_after_the_stall_limit() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "limits:\n  stall_timeout_secs: 1\n");
    let admin = gate.docker(ADMIN);
    let name = admin.sleeper("trickle");
    let mut s = gate.tls(ADMIN);
    // A 1 MiB archive upload (streamed to dockerd as it comes), of which 512 bytes arrive.
    write!(
        s,
        "PUT /containers/{name}/archive?path=/tmp HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-tar\r\nContent-Length: 1048576\r\n\r\n"
    )
    .unwrap();
    s.write_all(&[0u8; 512]).unwrap();
    s.flush().unwrap();
    s.sock
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("sent no request body bytes for 1s"), "{resp}");
    let path = format!("/containers/{name}/archive?path=/tmp");
    let rec = gate.wait_audit(|r| r["path"] == path.as_str());
    assert_eq!(rec["decision"], "error", "{rec}");
    assert_eq!(rec["rule"], "builtin:admin", "{rec}");
    let reason = rec["reason"].as_str().unwrap();
    assert!(
        reason.contains("sent no request body bytes for 1s"),
        "{rec}"
    );
    admin.ok(&["rm", "-f", &name]);
}

#[test]
fn the_end_of_a_hijacked_stream_is_audited_with_its_bytes_and_duration() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let out = gate
        .docker(ADMIN)
        .run_stdin(&["run", "-i", "--rm", "busybox:local", "cat"], b"hello\n");
    assert!(out.status.success());
    let end = gate.wait_audit(|r| r["kind"] == "stream" && r["upgraded"] == true);
    assert_eq!(end["route"], "POST /containers/{id}/attach", "{end}");
    assert_eq!(end["status"], 101, "{end}");
    assert_eq!(end["cn"], "admin");
    assert_eq!(end["rule"], "builtin:admin");
    assert_eq!(end["reason"], "closed", "{end}");
    // "hello\n" went in; the attach stream carried it back out.
    assert!(end["bytes_in"].as_u64().unwrap() >= 6, "{end}");
    assert!(end["bytes_out"].as_u64().unwrap() >= 6, "{end}");
}

#[test]
fn one_source_address_cannot_hold_more_than_its_share_of_connections() {
    let gate = Gate::start(&nowhere(), "limits:\n  max_connections_per_source: 1\n");
    let mut first = gate.tls(ADMIN);
    first
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 64];
    assert!(first.read(&mut head).unwrap() > 0);
    // 127.0.0.1 holds its one connection: the next is dropped before TLS.
    assert!(handshake(gate.addr, Some(ADMIN)).is_err());
    let rec = gate.wait_audit(|r| r["rule"] == "max-connections-per-source");
    assert_eq!(rec["decision"], "deny");
    // Once it closes, the address may connect again.
    first.sock.shutdown(std::net::Shutdown::Both).unwrap();
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handshake(gate.addr, Some(ADMIN)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the slot was never given back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A small tmpfs mounted for one test, unmounted however the test ends.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(status.success(), "mounting a tmpfs needs root (as CI runs)");
        SmallDisk(dir)
    }

    /// Fills it up; returns the filler's path.
    fn fill(&self) -> std::path::PathBuf {
        let path = self.0.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn nothing_is_served_while_the_audit_file_cannot_be_written_and_serving_resumes_after() {
    let sock = require_docker!();
    let disk = SmallDisk::mount("1m");
    let gate = Gate::start_auditing_in(&sock, "", disk.0.path());
    let ping = || {
        let resp = gate.raw(
            ADMIN,
            b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        (resp.get(9..12).unwrap_or("").to_string(), resp)
    };
    assert_eq!(ping().0, "200");
    let filler = disk.fill();
    // The first request after the disk filled is served (its record is what fails); from
    // then on, nothing is.
    let until = |want: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, resp) = ping();
            if status == want {
                return resp;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {want} within 10 s; last answer: {resp}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let refused = until("503");
    assert!(refused.contains("(rule audit)"), "{refused}");
    std::fs::remove_file(filler).unwrap();
    // The record of the next refusal reaches the file, and serving resumes.
    until("200");
    let records = gate.audit();
    assert!(
        records
            .iter()
            .any(|r| r["rule"] == "audit" && r["status"] == 503),
        "the refusals are in the file once it can be written: {records:?}"
    );
}
