//! Raw requests over TLS: the body-reading and framing cases the docker CLI never sends, each
//! read exactly as dockerd would read it or refused.

use crate::require_docker;
use crate::support::*;
use std::io::Write;

fn post(path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

fn create(body: &str) -> Vec<u8> {
    post(
        "/v1.41/containers/create",
        "Content-Type: application/json\r\n",
        body.as_bytes(),
    )
}

/// A JSON container create sent chunked, one chunk per item of `chunks`.
fn create_chunked<C: AsRef<[u8]>>(chunks: impl IntoIterator<Item = C>) -> Vec<u8> {
    let mut req = b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
        Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for chunk in chunks {
        let chunk = chunk.as_ref();
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

fn status(resp: &str) -> u16 {
    resp.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Sends `req` as dev and asserts the status and a fragment of the response.
fn expect(gate: &Gate, req: &[u8], want: u16, fragment: &str) -> String {
    expect_as(gate, DEV, req, want, fragment)
}

#[test]
fn lowercase_mixed_case_and_unicode_folded_keys_are_read_as_dockerd_reads_them() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    for body in [
        r#"{"Image":"busybox:local","hostconfig":{"privileged":true}}"#,
        r#"{"Image":"busybox:local","HOSTCONFIG":{"PRIVILEGED":true}}"#,
        r#"{"Image":"busybox:local","HostConfig":{"PrIvIlEgEd":true}}"#,
        "{\"Image\":\"busybox:local\",\"Ho\u{17f}tConfig\":{\"Privileged\":true}}",
        r#"{"Image":"busybox:local","HostConfig":{"\u0050rivileged":true}}"#,
    ] {
        expect(&gate, &create(body), 403, "(rule privileged, role dev)");
    }
    let kelvin = "{\"Image\":\"busybox:local\",\"HostConfig\":{\"NetworKMode\":\"host\"}}"
        .replace('K', "\u{212a}");
    expect(
        &gate,
        &create(&kelvin),
        403,
        "(rule host-network, role dev)",
    );
}

#[test]
fn duplicate_keys_that_dockerd_would_resolve_last_wins_are_refused() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    expect(
        &gate,
        &create(r#"{"Image":"busybox:local","HostConfig":{"Privileged":false,"privileged":true}}"#),
        400,
        "ambiguous",
    );
    expect(
        &gate,
        &create(r#"{"Image":"busybox:local","HostConfig":{"Privileged":false,"Privileged":true}}"#),
        400,
        "duplicate",
    );
}

#[test]
fn host_config_fields_at_the_top_level_are_refused() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    expect(
        &gate,
        &create(r#"{"Image":"busybox:local","Privileged":true}"#),
        400,
        "top level",
    );
    expect(
        &gate,
        &create(r#"{"Image":"busybox:local","binds":["/:/h"]}"#),
        400,
        "top level",
    );
}

#[test]
fn a_host_config_in_the_start_body_is_refused_on_any_version() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let body = br#"{"Privileged":true,"Binds":["/:/host"]}"#;
    for version in ["/v1.23", "/v1.41", ""] {
        let req = post(
            &format!("{version}/containers/x/start"),
            "Content-Type: application/json\r\n",
            body,
        );
        expect(&gate, &req, 400, "start body");
        // Nor for a role without body rules: it would replace what was judged of a container
        // (its namespaces, its mounts) after the fact.
        let resp = gate.raw(ADMIN, &req);
        assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
        assert!(resp.contains("start body"), "{resp}");
        // A role that may not start containers at all is told that first.
        let resp = gate.raw(MONITOR, &req);
        assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
        assert!(!resp.contains("start body"), "{resp}");
    }
    // An empty object is no body to dockerd.
    let req = post(
        "/v1.23/containers/no-such/start",
        "Content-Type: application/json\r\n",
        b"{}",
    );
    let resp = gate.raw(ADMIN, &req);
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
}

#[test]
fn chunked_body_is_read_before_it_is_judged() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let body = r#"{"Image":"busybox:local","HostConfig":{"Privileged":true}}"#;
    let (a, b) = body.split_at(20);
    expect(
        &gate,
        &create_chunked([a, b]),
        403,
        "(rule privileged, role dev)",
    );
}

#[test]
fn bodies_dockgate_cannot_read_with_certainty_are_refused() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let ok = r#"{"Image":"busybox:local"}"#;
    // Trailing data, BOM, invalid UTF-8, wrong types: Go might accept some; we refuse.
    expect(
        &gate,
        &create(&format!("{ok} {{\"HostConfig\":{{\"Privileged\":true}}}}")),
        400,
        "dockgate: request body refused",
    );
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(ok.as_bytes());
    expect(
        &gate,
        &post(
            "/v1.41/containers/create",
            "Content-Type: application/json\r\n",
            &bom,
        ),
        400,
        "dockgate: request body refused",
    );
    expect(
        &gate,
        &post(
            "/v1.41/containers/create",
            "Content-Type: application/json\r\n",
            b"{\"Image\":\"\xff\"}",
        ),
        400,
        "dockgate: request body refused",
    );
    expect(
        &gate,
        &create(r#"{"Image":"busybox:local","HostConfig":{"Privileged":"true"}}"#),
        400,
        "wrong type",
    );
    // Compressed and non-JSON bodies on a route whose body is judged.
    expect(
        &gate,
        &post(
            "/v1.41/containers/create",
            "Content-Type: application/json\r\nContent-Encoding: gzip\r\n",
            b"\x1f\x8b\x08\x00",
        ),
        400,
        "Content-Encoding",
    );
    expect(
        &gate,
        &post(
            "/v1.41/containers/create",
            "Content-Type: text/plain\r\n",
            ok.as_bytes(),
        ),
        400,
        "application/json",
    );
    expect(
        &gate,
        &post("/v1.41/containers/create", "", ok.as_bytes()),
        400,
        "application/json",
    );
}

#[test]
fn body_over_the_limit_is_413_and_never_forwarded() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "limits:\n  max_body_bytes: 1024\n");
    let big = format!(
        r#"{{"Image":"busybox:local","Env":["X={}"]}}"#,
        "a".repeat(2000)
    );
    expect(&gate, &create(&big), 413, "limits.max_body_bytes");
    // The same without a declared length (chunked) is cut off while reading.
    expect(&gate, &create_chunked([&big]), 413, "limits.max_body_bytes");
    // A large chunked upload still sending when the limit is passed: the rest is read and
    // dropped, so the client gets the 413 rather than a reset mid-upload.
    let chunk = vec![b' '; 64 * 1024];
    let req = create_chunked(std::iter::repeat_n(&chunk, 64));
    expect(&gate, &req, 413, "limits.max_body_bytes");
}

#[test]
fn bodies_being_read_share_one_memory_budget_each_certificate_a_share_of_it() {
    use dockgate::certs::Subject;
    let sock = require_docker!();
    // 256 KiB in all; a certificate may hold room for two 64 KiB bodies (and their values).
    let gate = Gate::start(
        &sock,
        "limits:\n  max_body_bytes: 65536\n  max_buffered_body_bytes: 262144\n",
    );
    let team_dev =
        |n: usize| pki().issue(&Subject::client(&format!("dev{n}")).uri("spiffe://test/team/dev"));
    let devs: Vec<String> = (0..5).map(team_dev).collect();
    // A stalled client announces 64 KiB of create body, sends 60,000 bytes of it and stops.
    let head = "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\n\
                Content-Type: application/json\r\nContent-Length: 65536\r\n\r\n";
    let stall = |client: &str| {
        let mut s = gate.tls(client);
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&[b' '; 60_000]).unwrap();
        s.flush().unwrap();
        s
    };
    let body = format!(
        r#"{{"Image":"busybox:no-such-tag","Env":["X={}"]}}"#,
        "a".repeat(30_000)
    );
    // A certificate's share is room for two bodies of the largest size here (128 KiB).
    let mut stalled = vec![stall(&devs[0]), stall(&devs[0])];
    // The first certificate's next body does not fit its share, refused at once.
    let resp = until_status(&gate, &devs[0], &create(&body), 503);
    assert!(
        resp.contains("this client certificate's bodies (its share of the budget) may (limits.max_buffered_body_bytes)"),
        "{resp}"
    );
    assert!(resp.contains("(rule limits"), "{resp}");
    // Others' bodies still fit...
    expect_as(&gate, &devs[4], &create(&body), 404, "No such image");
    // ...until four certificates hold the whole budget.
    stalled.extend(devs[1..4].iter().map(|d| stall(d)));
    let resp = until_status(&gate, &devs[4], &create(&body), 503);
    assert!(
        resp.contains("the 262144 bytes all clients' bodies may"),
        "{resp}"
    );
    // Once the stalled clients are gone, their shares are free again.
    drop(stalled);
    until_status(&gate, &devs[0], &create(&body), 404);
    // What a body holds once parsed counts too: 45 KB of empty arrays hold megabytes, more
    // than a certificate's whole share (refused for good, not as busy).
    let nested = format!(
        r#"{{"Image":"busybox:local","Cmd":[{}"x"]}}"#,
        "[],".repeat(15_000)
    );
    let resp = gate.raw(&devs[0], &create(&nested));
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp:.300}");
    assert!(resp.contains("send fewer values"), "{resp:.300}");
}

/// Sends `req` as `client` until it is answered with `status` (within 10 s); that answer.
fn until_status(gate: &Gate, client: &str, req: &[u8], want: u16) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let resp = gate.raw(client, req);
        if status(&resp) == want || std::time::Instant::now() > deadline {
            assert_eq!(status(&resp), want, "{resp}");
            return resp;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// [`expect`] as `client`.
fn expect_as(gate: &Gate, client: &str, req: &[u8], want: u16, fragment: &str) -> String {
    let resp = gate.raw(client, req);
    assert_eq!(status(&resp), want, "{resp}");
    assert!(resp.contains(fragment), "expected {fragment:?} in:\n{resp}");
    resp
}

#[test]
fn an_empty_create_body_is_judged_not_a_free_pass() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    // An empty create is judged like any other: with no image, it is not one of the role's
    // images (dockerd would make a scratch container).
    let resp = gate.raw(DEV, &post("/v1.41/containers/create", "", b""));
    assert_eq!(status(&resp), 403, "{resp}");
    assert!(resp.contains("(rule images, role dev)"), "{resp}");
}

#[test]
fn form_encoded_bodies_are_refused_where_dockerd_would_read_them_as_parameters() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let req = post(
        "/v1.41/images/create",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        b"fromSrc=http://example.org/x.tar",
    );
    expect(&gate, &req, 400, "query parameters");
}

#[test]
fn query_parameters_are_read_like_go_reads_them() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    expect(
        &gate,
        &post("/v1.41/images/create?fromSrc=-&repo=x", "", b""),
        403,
        "(rule image-import, role dev)",
    );
    expect(
        &gate,
        &post(
            "/v1.41/images/create?fromImage=busybox&fromImage=evil.example/x",
            "",
            b"",
        ),
        400,
        "more than once",
    );
    expect(
        &gate,
        &post(
            "/v1.41/images/create?fromImage=evil.example%2Fx&tag=1",
            "",
            b"",
        ),
        403,
        "(rule images, role dev)",
    );
    expect(
        &gate,
        &post("/v1.41/images/create?fromImage=busybox;x=1", "", b""),
        400,
        ";",
    );
}

#[test]
fn ambiguous_paths_are_refused_not_normalised() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    for path in [
        "/v1.41/containers/x%2Fy/json",
        "/v1.41//containers/json",
        "/v1.41/containers/../images/json",
        "/v1.41/containers/json/",
        "/v1..41/containers/json",
        "/v1.41/containers/%2e%2e/json",
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let resp = gate.raw(DEV, req.as_bytes());
        assert_eq!(status(&resp), 400, "{path}: {resp}");
        assert!(resp.contains("\"message\":\"dockgate: "), "{path}: {resp}");
    }
    let resp = gate.raw(
        DEV,
        b"GET /v1.41/debug/pprof HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&resp), 403, "{resp}");
}

#[test]
fn sysctls_outside_the_namespaced_allowlist_are_refused() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    expect(
        &gate,
        &create(r#"{"Image":"busybox:local","HostConfig":{"Sysctls":{"kernel.domainname":"x"}}}"#),
        403,
        "(rule sysctls, role dev)",
    );
}

#[test]
fn cap_add_given_as_a_string_or_with_folded_letters_is_still_checked() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    expect(
        &gate,
        &create(r#"{"Image":"busybox:local","HostConfig":{"CapAdd":"SYS_ADMIN"}}"#),
        403,
        "(rule capabilities, role dev)",
    );
    let folded = "{\"Image\":\"busybox:local\",\"HostConfig\":{\"CapAdd\":[\"\u{17f}ys_admin\"]}}";
    expect(&gate, &create(folded), 403, "(rule capabilities, role dev)");
}

#[test]
fn form_content_type_with_unreadable_parameters_is_still_refused() {
    // Go's mime.ParseMediaType returns the type even when a parameter is invalid, and dockerd
    // then reads the body as form fields (fromSrc=… would import any image).
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let mut req = b"POST /v1.41/images/create HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded; x=\xc3\xbf\r\nContent-Length: 32\r\n\r\n".to_vec();
    req.extend_from_slice(b"fromSrc=http://127.0.0.1:1/x.tar");
    let resp = gate.raw(DEV, &req);
    assert_eq!(status(&resp), 400, "{resp}");
    assert!(resp.contains("Content-Type"), "{resp}");
}

#[test]
fn a_body_that_trickles_in_is_cut_off_after_the_read_timeout() {
    use std::io::{Read, Write};
    let sock = require_docker!();
    let gate = Gate::start(&sock, "limits:\n  body_read_timeout_secs: 1\n");
    let mut s = gate.tls(DEV);
    s.write_all(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let resp = String::from_utf8_lossy(&out);
    assert_eq!(status(&resp), 400, "{resp}");
    assert!(resp.contains("body_read_timeout_secs"), "{resp}");
}

#[test]
fn connections_past_the_limit_are_dropped_at_accept() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "limits:\n  max_connections: 2\n");
    // Two connections that never finish their handshake hold both slots.
    let a = std::net::TcpStream::connect(gate.addr).unwrap();
    let b = std::net::TcpStream::connect(gate.addr).unwrap();
    let third = handshake(gate.addr, Some(ADMIN));
    let rec = gate.wait_audit(|r| r["rule"] == "max-connections");
    assert_eq!(rec["decision"], "deny");
    if third.is_ok() {
        // The two workers accept at once: on a busy machine the third can take a slot before
        // one of the quiet two has; that one is dropped instead. Either way, two at most.
        let closed = |s: &std::net::TcpStream| {
            use std::io::Read;
            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut byte = [0u8; 1];
            match (&*s).read(&mut byte) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            }
        };
        assert!(closed(&a) || closed(&b), "three connections were served");
    }
}

#[test]
fn a_body_shorter_than_its_declared_length_is_refused_not_forwarded() {
    use std::io::{Read, Write};
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let mut s = gate.tls(DEV);
    // Declares 500 bytes, sends 30, then ends its side of the stream.
    s.write_all(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"Image\":\"busybox:local\"}    ").unwrap();
    s.conn.send_close_notify();
    let _ = s.flush();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let resp = String::from_utf8_lossy(&out);
    assert_eq!(status(&resp), 400, "{resp}");
    let rec = gate.wait_audit(|r| r["route"] == "POST /containers/create");
    assert_eq!(rec["decision"], "deny");
}

#[test]
fn audit_only_mode_allows_and_records_what_it_would_deny() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "policy:\n  audit_only: true\n");
    let resp = gate.raw(
        DEV,
        &create(r#"{"Image":"busybox:local","HostConfig":{"CgroupParent":"/dgtest-audit-only"}}"#),
    );
    // Allowed through to dockerd (which creates it), and recorded as a would-be denial.
    assert_eq!(status(&resp), 201, "{resp}");
    let rec = gate.wait_audit(|r| r["route"] == "POST /containers/create");
    assert_eq!(rec["decision"], "allow");
    assert!(
        rec["warnings"][0].as_str().unwrap().contains("would deny")
            && rec["warnings"][0]
                .as_str()
                .unwrap()
                .contains("cgroup-parent"),
        "{rec}"
    );
    let id = resp
        .split("\"Id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    gate.raw(ADMIN, format!("DELETE /v1.41/containers/{id}?force=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
}

/// Longer than the listener's quiet time before it takes hyper's buffers away (100 ms), so the
/// next bytes reach a fresh HTTP connection. Not a timing assertion: the tests pass either way.
const QUIET: std::time::Duration = std::time::Duration::from_millis(300);

fn responses(text: &str) -> usize {
    text.matches("HTTP/1.1 ").count()
}

/// Everything the server sends until it closes the connection.
fn read_rest(s: &mut rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>) -> String {
    use std::io::Read;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_quiet_keep_alive_connection_serves_its_next_and_its_pipelined_requests() {
    use std::io::Write;
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let mut s = gate.tls(ADMIN);
    let ping = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(ping).unwrap();
    std::thread::sleep(QUIET);
    s.write_all(ping).unwrap();
    // A second request split across a quiet pause: its first half was read with the first.
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\nGET /v1.41/ver")
        .unwrap();
    std::thread::sleep(QUIET);
    s.write_all(b"sion HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let text = read_rest(&mut s);
    assert_eq!(responses(&text), 4, "{text}");
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 4, "{text}");
    assert!(text.contains("\"ApiVersion\""), "{text}");
}

#[test]
fn body_bytes_of_a_refused_request_are_never_read_as_a_request_after_a_pause() {
    use std::io::Write;
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let mut s = gate.tls(DEV);
    // The dev role may not init a swarm: refused before its body is read. The body's second
    // half looks like a request; it must stay body.
    let smuggled = b"GET /v1.41/info HTTP/1.1\r\nHost: x\r\n\r\n";
    let first = b"{\"ListenAddr\":\"0.0.0.0\",\"x\":\"";
    let length = first.len() + smuggled.len();
    let head = format!(
        "POST /v1.41/swarm/init HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(first).unwrap();
    std::thread::sleep(QUIET);
    s.write_all(smuggled).unwrap();
    std::thread::sleep(QUIET);
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let text = read_rest(&mut s);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert_eq!(responses(&text), 2, "{text}");
    assert!(!text.contains("ServerVersion"), "{text}");
    let audit = gate.wait_audit(|r| r["path"] == "/_ping");
    assert_eq!(audit["decision"], "allow");
    assert!(
        !gate.audit().iter().any(|r| r["path"] == "/v1.41/info"),
        "smuggled request was served"
    );
}

#[test]
fn a_request_head_trickled_after_a_quiet_pause_still_meets_the_header_timeout() {
    use std::io::Write;
    let sock = require_docker!();
    let gate = Gate::start(&sock, "limits:\n  header_read_timeout_secs: 1\n");
    let mut s = gate.tls(ADMIN);
    first_ping(&mut s);
    std::thread::sleep(QUIET);
    // Five pieces 300 ms apart take at least 1.5 s: past the 1 s header timeout, however the
    // listener takes the connection apart between pieces.
    for piece in [
        "GET /_ping ",
        "HTTP/1.1\r\n",
        "Host: x\r\n",
        "Connection: close\r\n",
        "\r\n",
    ] {
        if s.write_all(piece.as_bytes()).is_err() {
            break;
        }
        std::thread::sleep(QUIET);
    }
    let text = read_rest(&mut s);
    assert_eq!(responses(&text), 0, "{text}");
}

/// Sends `GET /_ping` and reads its whole response, leaving the connection open.
fn first_ping(s: &mut rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>) {
    use std::io::{Read, Write};
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.ends_with(b"\r\n\r\nOK") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the first response");
        seen.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn tls_bytes_that_never_make_a_request_do_not_keep_a_quiet_connection_open() {
    use std::io::{Read, Write};
    let sock = require_docker!();
    let gate = Gate::start(&sock, "limits:\n  header_read_timeout_secs: 1\n");
    let mut s = gate.tls(ADMIN);
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.ends_with(b"\r\n\r\nOK") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the first response");
        seen.extend_from_slice(&buf[..n]);
    }
    // The start of a TLS record that is never finished, a byte every 300 ms for 3.6 s: each
    // byte wakes the connection, none decrypts to a request. The connection must close 1 s
    // after it went quiet, not 1 s after the latest byte.
    let record = [0x17, 0x03, 0x03, 0x40, 0x00, 1, 2, 3, 4, 5, 6, 7];
    for byte in record {
        if s.sock.write_all(&[byte]).is_err() {
            return;
        }
        std::thread::sleep(QUIET);
    }
    s.sock.set_nonblocking(true).unwrap();
    match s.sock.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {}
        other => panic!("connection still open 3.6 s into a 1 s header timeout: {other:?}"),
    }
}

#[test]
fn a_body_in_many_frames_just_under_the_limit_is_read_not_refused() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "limits:\n  max_body_bytes: 1024\n");
    // 1,000 bytes of JSON in chunks of 600, 300 and 100: each chunk counted once.
    let body = format!(
        r#"{{"Image":"busybox:local","Env":["X={}"]}}"#,
        "a".repeat(1000 - 38)
    );
    assert_eq!(body.len(), 1000);
    let req = create_chunked([&body[..600], &body[600..900], &body[900..]]);
    let resp = gate.raw(DEV, &req);
    assert!(!resp.contains("limits.max_body_bytes"), "{resp}");
    assert_eq!(status(&resp), 201, "{resp}");
    let id: serde_json::Value =
        serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap_or("").trim())
            .unwrap_or_default();
    if let Some(id) = id["Id"].as_str() {
        gate.docker(ADMIN).ok(&["rm", "-f", id]);
    }
}

#[test]
fn an_oversized_head_is_431_and_no_record_carries_more_than_a_few_kib_of_a_peers_text() {
    use std::io::{Read, Write};
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    // A head well past the read buffer (hyper checks as its buffer fills, so a head up to
    // about twice the limit can get through): hyper answers 431, and the refusal is recorded.
    let big_header = format!(
        "GET /v1.41/_ping HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\nConnection: close\r\n\r\n",
        "f".repeat(1_000_000)
    );
    // The server stops reading at its limit and closes: the rest of the write, and even the
    // 431 on its way back, may meet a reset. The record is the proof; the answer, if any
    // arrives, is the 431.
    let mut s = gate.tls(DEV);
    s.sock
        .set_write_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let _ = s.write_all(big_header.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let resp = String::from_utf8_lossy(&out);
    assert!(resp.is_empty() || status(&resp) == 431, "{resp:.300}");
    gate.wait_audit(|r| r["status"] == 431 && r["rule"] == "http" && r["cn"] == "dev");
    // A head under that limit with a 40 KB method and path: refused, and its record carries
    // each text cut (the method to 4 KiB, the target to 16 KiB), saying how long it was.
    let path = format!("/v1.41/nothing/{}", "p".repeat(40_000));
    let method = "M".repeat(20_000);
    let resp = gate.raw(
        DEV,
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert!(
        matches!(status(&resp), 400 | 403 | 405 | 414),
        "{resp:.300}"
    );
    let record = gate.wait_audit(|r| r["path"].as_str().is_some_and(|p| p.contains("/nothing/")));
    let line = record.to_string();
    assert!(line.len() < 32 * 1024, "a {} byte record", line.len());
    let cut = format!("[cut: {} bytes in all]", path.len());
    assert!(
        record["path"].as_str().unwrap().ends_with(&cut),
        "{line:.300}"
    );
    assert!(
        record["method"].as_str().unwrap().contains("[cut: "),
        "{line:.300}"
    );
}

#[test]
fn every_forwarded_request_is_recorded_with_its_whole_target_and_longer_ones_are_refused() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let name = admin.sleeper("padded");
    let _cleanup = Cleanup::new(&admin).container(&name);
    // Padding before the parameter that matters does not push it out of the record.
    let target = format!(
        "/v1.41/containers/{name}/archive?pad={}&path=/etc/hostname",
        "a".repeat(8_000)
    );
    let get = |target: &str| {
        gate.raw(
            DEV,
            format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    };
    let resp = get(&target);
    assert_eq!(status(&resp), 200, "{resp:.300}");
    let record = gate.wait_audit(|r| r["path"] == target.as_str());
    assert_eq!(record["decision"], "allow");
    // A target longer than a record keeps is refused before it is judged or forwarded.
    let long = format!(
        "/v1.41/containers/{name}/archive?pad={}&path=/etc/hostname",
        "a".repeat(17_000)
    );
    let resp = get(&long);
    assert_eq!(status(&resp), 414, "{resp:.300}");
    assert!(
        resp.contains("more than the 16384 the audit log records whole"),
        "{resp:.300}"
    );
    let record = gate.wait_audit(|r| r["status"] == 414);
    assert_eq!(record["rule"], "request");
    assert_eq!(record["decision"], "deny");
}

#[test]
fn a_body_still_trickling_to_dockerd_after_its_answer_does_not_hold_up_other_clients() {
    use std::io::{Read, Write};
    let sock = require_docker!();
    // One worker: every connection shares its idle list of dockerd connections.
    let gate = Gate::start(&sock, "workers: 1\n");
    // dockerd answers a /_ping at once, whatever body comes with it, then waits for the rest
    // of that body, which never comes.
    // (dockerd's Go server first discards up to 256 KiB of an unread body, then answers, and
    // then goes on reading the rest at the client's pace.)
    let mut trickler = gate.tls(MONITOR);
    let mut req =
        b"GET /_ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n40001\r\n".to_vec();
    req.extend_from_slice(&[b'a'; 0x40001]);
    req.extend_from_slice(b"\r\n1\r\na\r\n");
    trickler.write_all(&req).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.ends_with(b"\r\n\r\nOK") {
        let n = trickler.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the answer");
        seen.extend_from_slice(&buf[..n]);
    }
    // Other clients' requests go to dockerd on other connections, not behind that body.
    for client in [MONITOR, DEV, ADMIN] {
        let mut s = gate.tls(client);
        s.sock
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let resp = String::from_utf8_lossy(&out);
        assert_eq!(status(&resp), 200, "{client}: {resp}");
    }
    drop(trickler);
}

/// Everything the server sends until it closes; with `clean`, panics if that close came without
/// a close_notify. Panics if the stream stays open past `limit`.
fn read_to_close(
    s: &mut rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    limit: std::time::Duration,
    clean: bool,
) -> String {
    use std::io::Read;
    s.sock.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    // rustls reports a cut (no close_notify) as UnexpectedEof.
    match s.read_to_end(&mut out) {
        Err(e) if clean || e.kind() != std::io::ErrorKind::UnexpectedEof => {
            panic!("{e} after: {}", String::from_utf8_lossy(&out))
        }
        _ => String::from_utf8_lossy(&out).into_owned(),
    }
}

/// A response's whole body: as long as its Content-Length says, or every chunk up to the last.
fn whole_body(resp: &str) -> String {
    let (head, mut body) = resp.split_once("\r\n\r\n").expect("a response head");
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    if let Some(length) = header("content-length") {
        assert_eq!(body.len(), length.parse::<usize>().unwrap(), "{resp}");
        return body.to_string();
    }
    assert_eq!(
        header("transfer-encoding").as_deref(),
        Some("chunked"),
        "{resp}"
    );
    let mut out = String::new();
    loop {
        let (size, rest) = body
            .split_once("\r\n")
            .unwrap_or_else(|| panic!("cut: {resp}"));
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            assert_eq!(rest, "\r\n", "{resp}");
            return out;
        }
        out.push_str(&rest[..size]);
        body = rest[size..]
            .strip_prefix("\r\n")
            .unwrap_or_else(|| panic!("cut: {resp}"));
    }
}

#[test]
fn a_response_to_connection_close_ends_whole_with_a_clean_tls_close() {
    use std::io::Write;
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = "Host: x\r\nConnection: close\r\n";
    let cases = [
        (
            ADMIN,
            format!("GET /_ping HTTP/1.1\r\n{admin}\r\n"),
            "200 OK",
            "OK",
        ),
        (
            ADMIN,
            format!("HEAD /_ping HTTP/1.1\r\n{admin}\r\n"),
            "200 OK",
            "",
        ),
        (
            ADMIN,
            format!("GET /v1.41/version HTTP/1.1\r\n{admin}\r\n"),
            "200 OK",
            "ApiVersion",
        ),
        // Refusals, and answers to requests that asked to switch protocols but got no 101:
        // hyper hands such a stream on rather than shutting it down (so it ends without a
        // close_notify), and nothing may wait for that shutdown.
        (
            DEV,
            format!("POST /v1.41/swarm/init HTTP/1.1\r\n{admin}Content-Length: 0\r\n\r\n"),
            "403",
            "(rule ",
        ),
        (
            ADMIN,
            "GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close, Upgrade\r\nUpgrade: foo\r\n\r\n"
                .into(),
            "200 OK",
            "OK",
        ),
        (
            ADMIN,
            "POST /v1.41/containers/no-such-container-here/attach?stream=1&stdout=1 HTTP/1.1\r\n\
             Host: x\r\nConnection: Upgrade, close\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
                .into(),
            "404",
            "No such container",
        ),
    ];
    for (client, req, status, fragment) in cases {
        let mut s = gate.tls(client);
        s.write_all(req.as_bytes()).unwrap();
        let clean = !req.contains("Upgrade");
        let resp = read_to_close(&mut s, std::time::Duration::from_secs(30), clean);
        assert!(
            resp.starts_with(&format!("HTTP/1.1 {status}")),
            "{req}: {resp}"
        );
        if req.starts_with("HEAD") {
            assert!(resp.ends_with("\r\n\r\n"), "{resp}");
        } else {
            assert!(whole_body(&resp).contains(fragment), "{req}: {resp}");
        }
    }
}

#[test]
fn a_refusal_reaches_a_client_still_sending_its_body_on_a_closing_connection() {
    use std::io::Write;
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let mut s = gate.tls(DEV);
    // A body that never finishes: the refusal must not wait for it.
    s.write_all(
        b"POST /v1.41/swarm/init HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
          Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"ListenAddr\"",
    )
    .unwrap();
    // Not a speed check: dockgate keeps reading an unwanted body for up to 5 s before it
    // closes; the answer must come before that, while the client is still sending.
    use std::io::Read;
    s.sock
        .set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).expect("the refusal, before the body ends");
    let resp = String::from_utf8_lossy(&buf[..n]);
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
}

#[test]
fn a_stream_asked_to_close_still_streams_as_it_comes() {
    use std::io::{Read, Write};
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let name = admin.script("ticker", "while :; do echo tick; sleep 1; done");
    let _cleanup = Cleanup::new(&admin).container(&name);
    // A followed log and an attach session, each on a connection that asked to close: their
    // output must arrive while they run, not be held for the end.
    let requests = [
        format!("GET /v1.41/containers/{name}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        format!(
            "POST /v1.41/containers/{name}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\
             Connection: Upgrade, close\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        ),
    ];
    for req in requests {
        let mut s = gate.tls(ADMIN);
        s.write_all(req.as_bytes()).unwrap();
        // The deadline only keeps a failure finite; a tick comes every second.
        s.sock
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("tick") {
            match s.read(&mut buf) {
                Ok(0) => panic!(
                    "closed before any output: {}",
                    String::from_utf8_lossy(&seen)
                ),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) => panic!("{e} after: {}", String::from_utf8_lossy(&seen)),
            }
        }
    }
}

#[test]
fn an_http_1_0_keep_alive_client_gets_every_answer_on_one_connection() {
    use std::io::{Read, Write};
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let mut s = gate.tls(ADMIN);
    // The deadline only keeps a failure finite.
    s.sock
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    for round in 0..3 {
        s.write_all(b"GET /_ping HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        // hyper answers HTTP/1.0 keep-alive with a Content-Length: read up to the body "OK".
        while !seen.ends_with(b"\r\n\r\nOK") {
            match s.read(&mut buf) {
                Ok(0) => panic!(
                    "round {round}: closed after {}",
                    String::from_utf8_lossy(&seen)
                ),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) => panic!(
                    "round {round}: {e} after {}",
                    String::from_utf8_lossy(&seen)
                ),
            }
        }
        let text = String::from_utf8_lossy(&seen);
        assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
        // Quiet for longer than the listener waits before taking hyper apart.
        std::thread::sleep(QUIET);
    }
}
