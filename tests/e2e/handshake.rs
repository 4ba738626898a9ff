//! Who gets in: client certificates, source networks, roles.

use std::io::{Read, Write};
use std::sync::Arc;

use crate::require_docker;
use crate::support::*;
use dockgate::certs::{Ca, Subject};

/// A socket path nothing listens on: these tests never reach the upstream.
fn nowhere() -> std::path::PathBuf {
    std::path::PathBuf::from("/nonexistent/docker.sock")
}

fn assert_refused(gate: &Gate, client: Option<&str>, reason_fragment: &str) -> serde_json::Value {
    let err = handshake(gate.addr, client).expect_err("handshake should be refused");
    let record = gate.wait_audit(|r| {
        r["kind"] == "handshake"
            && r["decision"] == "deny"
            && r["reason"]
                .as_str()
                .is_some_and(|s| s.contains(reason_fragment))
    });
    assert!(
        record["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{record}"
    );
    assert!(!err.is_empty());
    record
}

/// The SHA-256 of a test client's certificate, as records write fingerprints.
fn fingerprint_of(client: &str) -> String {
    let pem = std::fs::read(pki().client_dir(client).join("cert.pem")).unwrap();
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
    dockgate::identity::fingerprint_of(&der)
}

/// A refused certificate is named in its record as presented, apart from verified names.
fn assert_names_presented(record: &serde_json::Value, client: &str, issuer: &str) {
    let presented = &record["presented"];
    assert!(
        presented["subject"]
            .as_str()
            .unwrap_or_default()
            .starts_with("CN=admin"),
        "{record}"
    );
    assert_eq!(
        presented["issuer"],
        format!("CN={issuer}").as_str(),
        "{record}"
    );
    assert_eq!(
        presented["fingerprint"],
        fingerprint_of(client).as_str(),
        "{record}"
    );
    assert!(record.get("cn").is_none(), "{record}");
    assert!(record.get("fingerprint").is_none(), "{record}");
}

#[test]
fn client_without_certificate_is_refused_at_handshake() {
    let gate = Gate::start(&nowhere(), "");
    let record = assert_refused(&gate, None, "peer sent no certificates");
    assert!(record.get("presented").is_none(), "{record}");
}

#[test]
fn client_from_another_ca_is_refused_at_handshake() {
    let gate = Gate::start(&nowhere(), "");
    let record = assert_refused(&gate, Some(OTHER_CA), "UnknownIssuer");
    assert_names_presented(&record, OTHER_CA, "some other CA");
}

/// A year from now: an intermediate CA that outlives the test.
fn next_year() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(365)
}

#[test]
fn a_certificate_from_an_intermediate_ca_works_when_the_client_presents_the_intermediate() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = Subject::client("admin").ou("admins");
    let client = pki().issue_via_intermediate(&admin, next_year(), true);
    // The docker CLI sends every certificate in its cert.pem, the intermediate included.
    let out = gate
        .docker(&client)
        .ok(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!out.trim().is_empty(), "{out}");
    // A second connection presents the same chain again.
    gate.docker(&client).ok(&["ps", "-q"]);
    let rec = gate.wait_audit(|r| r["route"] == "GET /containers/json");
    assert_eq!(rec["cn"], "admin", "{rec}");
    assert_eq!(rec["role"], "admin", "{rec}");
    assert_eq!(rec["decision"], "allow", "{rec}");
}

#[test]
fn a_certificate_from_an_intermediate_ca_is_refused_without_the_intermediate() {
    let gate = Gate::start(&nowhere(), "");
    let admin = Subject::client("admin").ou("admins");
    let client = pki().issue_via_intermediate(&admin, next_year(), false);
    assert_refused(&gate, Some(&client), "UnknownIssuer");
}

#[test]
fn a_certificate_from_an_expired_intermediate_ca_is_refused() {
    let gate = Gate::start(&nowhere(), "");
    let admin = Subject::client("admin").ou("admins");
    let lapsed = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let client = pki().issue_via_intermediate(&admin, lapsed, true);
    assert_refused(&gate, Some(&client), "certificate expired");
}

#[test]
fn an_intermediate_ca_cannot_delegate_to_another() {
    // The intermediate's path length is 0: a CA it signs is not trusted.
    let gate = Gate::start(&nowhere(), "");
    let pki = pki();
    let root = Ca::load(&pki.dir.join("ca.pem"), &pki.dir.join("ca-key.pem")).unwrap();
    let intermediate = root.intermediate("team CA", next_year()).unwrap();
    let delegated = intermediate
        .intermediate("sub-team CA", next_year())
        .unwrap();
    let mut pem = delegated
        .issue(&Subject::client("admin").ou("admins"))
        .unwrap();
    pem.cert.push_str(&delegated.pem.cert);
    pem.cert.push_str(&intermediate.pem.cert);
    let name = unique("delegated");
    dockgate::certs::write_client_dir(&pki.dir.join(&name), &root, &pem).unwrap();
    assert_refused(&gate, Some(&name), "PathLenConstraintViolated");
}

#[test]
fn an_end_entity_certificate_cannot_issue_client_certificates() {
    // A client holding a valid leaf (and its key) signs a certificate of its own choosing.
    let gate = Gate::start(&nowhere(), "");
    let pki = pki();
    let root = Ca::load(&pki.dir.join("ca.pem"), &pki.dir.join("ca-key.pem")).unwrap();
    let leaf = root
        .issue(&Subject::client("dev").ou("developers"))
        .unwrap();
    let issuer =
        rcgen::Issuer::from_ca_cert_pem(&leaf.cert, rcgen::KeyPair::from_pem(&leaf.key).unwrap())
            .unwrap();
    let forged_key = rcgen::KeyPair::generate().unwrap();
    let mut forged = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    forged
        .distinguished_name
        .push(rcgen::DnType::CommonName, "admin");
    forged
        .distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, "admins");
    forged.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    forged.use_authority_key_identifier_extension = true;
    let forged_cert = forged.signed_by(&forged_key, &issuer).unwrap();
    let name = unique("forged");
    let pem = dockgate::certs::Pem {
        cert: forged_cert.pem() + &leaf.cert,
        key: forged_key.serialize_pem(),
    };
    dockgate::certs::write_client_dir(&pki.dir.join(&name), &root, &pem).unwrap();
    assert_refused(&gate, Some(&name), "EndEntityUsedAsCa");
}

/// Presents `cert_of`'s certificate, signing the handshake with `key_of`'s key.
#[derive(Debug)]
struct Mismatched(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Mismatched {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[test]
fn a_certificate_presented_without_its_key_is_refused_and_named_in_the_record() {
    presented_without_its_key(&rustls::version::TLS13);
}

#[test]
fn a_certificate_presented_without_its_key_over_tls_1_2_is_refused_and_named_in_the_record() {
    presented_without_its_key(&rustls::version::TLS12);
}

/// Presents the admin's certificate signed for with another key, over TLS `version`: the
/// handshake is refused and its record names the certificate presented.
fn presented_without_its_key(version: &'static rustls::SupportedProtocolVersion) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let gate = Gate::start(&nowhere(), "");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = CertificateDer::pem_file_iter(pki().client_dir(ADMIN).join("cert.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(pki().client_dir(MONITOR).join("key.pem")).unwrap();
    let signer = provider.key_provider.load_private_key(key).unwrap();
    let resolver = Mismatched(Arc::new(rustls::sign::CertifiedKey::new(certs, signer)));
    let mut config = tls_config_versions(None, provider, &[version]);
    config.client_auth_cert_resolver = Arc::new(resolver);
    let mut s = tls_connect_config(gate.addr, Arc::new(config));
    let _ = s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        !out.starts_with(b"HTTP/1.1"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let record = gate.wait_audit(|r| r["kind"] == "handshake" && r["decision"] == "deny");
    assert!(
        record["reason"].as_str().unwrap().contains("BadSignature"),
        "{record}"
    );
    assert_eq!(
        record["presented"]["fingerprint"],
        fingerprint_of(ADMIN).as_str(),
        "{record}"
    );
}

#[test]
fn expired_client_certificate_is_refused_at_handshake() {
    let gate = Gate::start(&nowhere(), "");
    let record = assert_refused(&gate, Some(EXPIRED), "certificate expired");
    assert_names_presented(&record, EXPIRED, "dockgate test CA");
}

#[test]
fn not_yet_valid_client_certificate_is_refused_at_handshake() {
    let gate = Gate::start(&nowhere(), "");
    assert_refused(&gate, Some(NOT_YET_VALID), "not valid yet");
}

#[test]
fn client_certificate_without_client_auth_usage_is_refused_at_handshake() {
    let gate = Gate::start(&nowhere(), "");
    assert_refused(&gate, Some(NO_CLIENT_AUTH), "extended key usage");
}

#[test]
fn client_certificate_without_any_extended_key_usage_is_refused_at_handshake() {
    let gate = Gate::start(&nowhere(), "");
    assert_refused(&gate, Some(NO_EKU), "InvalidPurpose");
}

#[test]
fn a_verified_certificate_whose_names_cannot_be_read_is_refused_and_recorded_by_fingerprint() {
    let gate = Gate::start(&nowhere(), "");
    let mut subject = Subject::client("alice");
    let bmp = rcgen::DnValue::BmpString(rcgen::string::BmpString::try_from("admins").unwrap());
    subject
        .names
        .push((rcgen::DnType::OrganizationalUnitName, bmp));
    let client = pki().issue(&subject);
    let _ = handshake(gate.addr, Some(&client));
    let record = gate.wait_audit(|r| {
        r["kind"] == "handshake"
            && r["reason"]
                .as_str()
                .is_some_and(|s| s.contains("OU is not readable"))
    });
    // Recorded in full with the certificate's fingerprint (not folded into a tally).
    let fingerprint = record["fingerprint"].as_str().unwrap_or_default();
    assert_eq!(fingerprint.len(), 64, "{record}");
    assert!(record["repeated"].is_null(), "{record}");
    // And no request is ever served on such a connection.
    let mut s = gate.tls(&client);
    let _ = s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
}

#[test]
fn certificate_mapping_to_no_role_gets_403_naming_it() {
    let gate = Gate::start(&nowhere(), "");
    let resp = gate.raw(
        NOBODY,
        b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(
        resp.contains(r#""message":"dockgate: certificate \"nobody\""#),
        "{resp}"
    );
    assert!(resp.contains("maps to no role"), "{resp}");
}

#[test]
fn names_that_would_show_as_something_else_are_escaped_in_the_audit_file() {
    let gate = Gate::start(&nowhere(), "");
    // A right-to-left override makes "dev\u{202e}nimda" show as "devadmin" in a terminal.
    let spoof = pki().issue(&Subject::client("dev\u{202e}nimda").ou("developers"));
    let resp = gate.raw(
        &spoof,
        b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 4"), "{resp}");
    let rec = gate.wait_audit(|r| r["cn"] == "dev\u{202e}nimda");
    assert_eq!(rec["decision"], "deny", "{rec}");
    let text = std::fs::read_to_string(&gate.audit_path).unwrap();
    assert!(text.contains(r#""cn":"dev\u202enimda""#), "{text}");
    assert!(!text.contains('\u{202e}'), "{text}");
}

#[test]
fn unreachable_docker_socket_is_a_502_naming_the_socket() {
    let gate = Gate::start(&nowhere(), "");
    let resp = gate.raw(
        ADMIN,
        b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
    assert!(resp.contains("/nonexistent/docker.sock"), "{resp}");
    assert!(resp.contains("application/json"), "{resp}");
}

#[test]
fn docker_cli_shows_the_502_as_a_daemon_error() {
    let gate = Gate::start(&nowhere(), "");
    let err = gate.docker(ADMIN).fails(&["--log-level", "error", "info"]);
    assert!(err.contains("/nonexistent/docker.sock"), "{err}");
}

#[test]
fn peer_outside_listener_networks_is_dropped_before_tls() {
    let gate = Gate::start(&nowhere(), "networks: [10.0.0.0/8]\n");
    let err = handshake(gate.addr, Some(ADMIN)).expect_err("must be dropped");
    assert!(!err.is_empty());
    let r = gate.wait_audit(|r| r["kind"] == "connection");
    assert_eq!(r["decision"], "deny");
}

#[test]
fn peer_outside_every_role_network_is_dropped_before_tls() {
    let body = "identities:\n  - cn: admin\n    role: ops\nroles:\n  ops:\n    extends: [admin]\n    networks: [192.0.2.0/24]\n";
    let gate = Gate::start_with(&nowhere(), body);
    assert!(handshake(gate.addr, Some(ADMIN)).is_err());
    gate.wait_audit(|r| r["kind"] == "connection" && r["decision"] == "deny");
}

#[test]
fn role_network_is_checked_after_identity() {
    // The listener accepts loopback (admin may connect from anywhere), but dev may not.
    let extra = "  devnet:\n    extends: [baseline]\n    networks: [192.0.2.0/24]\n";
    let body = BASE_CONFIG
        .replace("role: \"{*}\"", "role: devnet")
        .to_string()
        + extra;
    let gate = Gate::start_with(&nowhere(), &body);
    let resp = gate.raw(
        DEV,
        b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(resp.contains("role-networks"), "{resp}");
}

#[test]
fn malformed_request_gets_400_not_a_hang() {
    let gate = Gate::start(&nowhere(), "");
    let resp = gate.raw(ADMIN, b"GARBAGE\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
}

#[test]
fn role_template_cannot_produce_a_built_in_role() {
    let gate = Gate::start(&nowhere(), "");
    let resp = gate.raw(
        TEAM_ADMIN,
        b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(resp.contains("maps to no role"), "{resp}");
}

#[test]
fn a_client_that_never_sends_a_request_is_closed_after_the_header_timeout() {
    use std::io::Read;
    let gate = Gate::start(&nowhere(), "limits:\n  header_read_timeout_secs: 1\n");
    let mut s = gate.tls(ADMIN);
    let started = std::time::Instant::now();
    // Completes the handshake, then idles: the read ends when dockgate closes the connection.
    let mut buf = [0u8; 16];
    let _ = s.read(&mut buf);
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "closed after {waited:?}"
    );
    assert!(
        waited < std::time::Duration::from_secs(10),
        "still open after {waited:?}"
    );
    // Nothing was asked, and the audit says who connected anyway.
    let record = gate.wait_audit(|r| r["kind"] == "connection");
    assert_eq!(record["cn"], "admin", "{record}");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("closed without a request"),
        "{record}"
    );
}

/// Completes a handshake and one request with a client built from `provider`; returns the
/// connection to read what was negotiated.
fn negotiate(
    gate: &Gate,
    provider: rustls::crypto::CryptoProvider,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    negotiate_with(
        gate,
        Arc::new(tls_config_with(Some(ADMIN), Arc::new(provider))),
    )
}

fn negotiate_with(
    gate: &Gate,
    config: Arc<rustls::ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    use std::io::{Read, Write};
    let mut s = tls_connect_config(gate.addr, config);
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    s
}

#[test]
fn the_server_picks_aes_128_gcm_even_when_the_client_prefers_aes_256() {
    let gate = Gate::start(&nowhere(), "");
    // rustls' own default order puts AES-256-GCM first.
    let s = negotiate(&gate, rustls::crypto::aws_lc_rs::default_provider());
    let suite = s.conn.negotiated_cipher_suite().unwrap().suite();
    assert_eq!(suite, rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
}

#[test]
fn sessions_are_not_resumed_every_connection_is_a_full_handshake() {
    let gate = Gate::start(&nowhere(), "");
    // The default rustls client keeps tickets and offers them on its next connection.
    let config = Arc::new(tls_config_with(Some(ADMIN), dockgate::tls::provider()));
    for _ in 0..2 {
        let s = negotiate_with(&gate, config.clone());
        assert_eq!(s.conn.handshake_kind(), Some(rustls::HandshakeKind::Full));
    }
}

#[test]
fn a_client_preferring_the_post_quantum_hybrid_gets_it_and_others_get_x25519() {
    use rustls::crypto::aws_lc_rs::{default_provider, kx_group};
    let gate = Gate::start(&nowhere(), "");
    let group = |kx_groups| {
        let provider = rustls::crypto::CryptoProvider {
            kx_groups,
            ..default_provider()
        };
        negotiate(&gate, provider)
            .conn
            .negotiated_key_exchange_group()
            .unwrap()
            .name()
    };
    // As the Go 1.24 docker CLI offers them.
    assert_eq!(
        group(vec![kx_group::X25519MLKEM768, kx_group::X25519]),
        rustls::NamedGroup::X25519MLKEM768
    );
    // As OpenSSL 3.0 (the Python SDK, curl) offers them.
    assert_eq!(
        group(vec![kx_group::X25519, kx_group::SECP256R1]),
        rustls::NamedGroup::X25519
    );
}

#[test]
fn ipv6_peers_are_judged_by_ipv6_networks() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: this machine has no IPv6 loopback");
        return;
    }
    let body = "networks: [\"::1/128\"]\n";
    let gate = Gate::start_on("[::1]:0", &nowhere(), &format!("{BASE_CONFIG}{body}"));
    let resp = gate.raw(
        ADMIN,
        b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    // Through to the (unreachable) upstream: the IPv6 peer was let in.
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
    let rec = gate.wait_audit(|r| r["kind"] == "request");
    assert!(rec["peer"].as_str().unwrap().starts_with("[::1]:"), "{rec}");
    // An IPv4-only allowlist drops the same peer before TLS.
    let v4only = Gate::start_on(
        "[::1]:0",
        &nowhere(),
        &format!("{BASE_CONFIG}networks: [127.0.0.0/8]\n"),
    );
    assert!(handshake(v4only.addr, Some(ADMIN)).is_err());
    v4only.wait_audit(|r| r["kind"] == "connection" && r["decision"] == "deny");
}

#[test]
fn a_request_sent_with_a_large_certificate_flight_is_answered() {
    // The client's certificate flight (its chain padded with unrelated certificates to over
    // 8 KiB) and its first request leave in one write, so the server reads the request together
    // with the end of the handshake (in rustls, or read ahead below it: see `gulp`). It must
    // answer, not wait for more bytes from a client that is waiting for it.
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::{Read, Write};
    let gate = Gate::start(&nowhere(), "");
    let dir = pki().client_dir(ADMIN);
    let mut chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("cert.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let pad = dockgate::certs::Ca::generate("padding CA").unwrap();
    for n in 0..32 {
        let pem = pad
            .issue(&dockgate::certs::Subject::client(&format!("padding {n}")))
            .unwrap();
        chain.push(CertificateDer::from_pem_slice(pem.cert.as_bytes()).unwrap());
    }
    assert!(chain.iter().map(|c| c.len()).sum::<usize>() > 8 * 1024);
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(pki().dir.join("ca.pem")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(dockgate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            chain,
            PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap(),
        )
        .unwrap();
    let mut conn = rustls::ClientConnection::new(
        Arc::new(config),
        rustls_pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    // Written before the handshake: rustls sends it right after the client's Finished.
    conn.writer()
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let tcp = std::net::TcpStream::connect(gate.addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    // `nowhere()` is no socket, so the answer is a 502; what matters is that there is one
    // before the client's read gives up.
    assert!(out.starts_with("HTTP/1.1 "), "no response: {out:?}");
}

#[test]
fn a_lookup_dockerd_never_answers_is_given_up_with_504_and_audited() {
    // An upstream that accepts and reads but never answers: a wedged dockerd.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let gate = Gate::start(&sock, "limits:\n  lookup_timeout_secs: 1\n");
    let started = std::time::Instant::now();
    let resp = gate.raw(
        DEV,
        b"POST /v1.41/containers/web/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 504"), "{resp}");
    assert!(
        resp.contains("did not answer the lookup of /containers/web/json within 1s"),
        "{resp}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let record = gate.wait_audit(|r| r["kind"] == "request" && r["status"] == 504);
    assert_eq!(record["decision"], "error", "{record}");
}

#[test]
fn an_identity_rule_can_require_the_client_ca_bundle_a_certificate_comes_from() {
    let sock = require_docker!();
    // Two trusted CAs; both have issued a certificate for CN=admin, OU=admins. Only the
    // corporate one's maps to admin; the partner's gets what its rule says.
    let gate = Gate::start_trusting_other_ca(
        &sock,
        "identities:\n\
         - {cn: admin, ou: admins, client_ca: ca.pem, role: admin}\n\
         - {cn: admin, client_ca: other-ca.pem, role: partner}\n\
         roles:\n  partner: {extends: [read-only]}\n",
    );
    gate.docker(ADMIN)
        .ok(&["run", "--rm", "busybox:local", "true"]);
    let partner = gate.docker(OTHER_CA);
    partner.ok(&["ps"]);
    let err = partner.fails(&["run", "--rm", "busybox:local", "true"]);
    assert!(err.contains("role partner)"), "{err}");
    let records = gate.audit();
    let roles: std::collections::BTreeSet<&str> = records
        .iter()
        .filter(|r| r["cn"] == "admin")
        .filter_map(|r| r["role"].as_str())
        .collect();
    assert_eq!(roles, ["admin", "partner"].into(), "{records:?}");
}

#[test]
fn an_identity_rule_naming_a_bundle_that_is_not_trusted_is_a_config_error() {
    let pki = pki();
    let yaml = "listen: 127.0.0.1:0\nupstream: unix:///nonexistent.sock\n\
         tls:\n  cert: server/cert.pem\n  key: server/key.pem\n  client_ca: [ca.pem]\n\
         identities:\n  - {cn: admin, client_ca: other-ca.pem, role: admin}\n\
         roles: {}\n";
    let err = dockgate::config::Config::from_yaml(
        yaml,
        &pki.dir.join("dockgate.yaml"),
        &Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("identities[0].client_ca") && err.contains("is not one of tls.client_ca"),
        "{err}"
    );
}

#[test]
fn a_client_that_closes_without_a_request_is_still_recorded() {
    let gate = Gate::start(&nowhere(), "");
    for (n, clean) in [(1, true), (2, false)] {
        let mut s = gate.tls(ADMIN);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).unwrap();
        }
        if clean {
            s.conn.send_close_notify();
            s.conn.complete_io(&mut s.sock).unwrap();
        }
        drop(s);
        // The n-th connection record is this connection's.
        gate.wait_audit(|_| connection_records(&gate).len() == n);
        let record = &connection_records(&gate)[n - 1];
        assert_eq!(record["cn"], "admin", "{record}");
        let reason = record["reason"].as_str().unwrap();
        assert!(
            reason.contains("closed without a request"),
            "clean close: {clean}: {record}"
        );
        if clean {
            assert!(reason.contains("the client closed it"), "{record}");
        }
    }
}

fn connection_records(gate: &Gate) -> Vec<serde_json::Value> {
    gate.audit()
        .into_iter()
        .filter(|r| r["kind"] == "connection")
        .collect()
}
