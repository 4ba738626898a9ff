//! The command line: `check` reports every problem with its file and field, the example config
//! stays valid, and `policy explain` tells the decision without a daemon.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::*;

fn dockgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dockgate"))
        .args(args)
        .output()
        .unwrap()
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn example_config_passes_check() {
    let out = dockgate(&[
        "check",
        "--config",
        repo("config/dockgate.yaml").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).ends_with(": ok\n"), "{}", stdout(&out));
}

fn write_config(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("dockgate.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn tls_block(cert: &str, key: &str, ca: &str) -> String {
    format!("listen: 127.0.0.1:0\ntls:\n  cert: {cert}\n  key: {key}\n  client_ca: [{ca}]\n")
}

#[test]
fn unknown_field_is_reported_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = pki().dir.display().to_string();
    let yaml = format!(
        "{}roles:\n  dev:\n    extends: [baseline]\n    colour: blue\n",
        tls_block(
            &format!("{d}/server/cert.pem"),
            &format!("{d}/server/key.pem"),
            &format!("{d}/ca.pem")
        )
    );
    let out = dockgate(&[
        "check",
        "--config",
        write_config(dir.path(), &yaml).to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("unknown field `colour`") && text.contains("line 9 column 5"),
        "{text}"
    );
}

#[test]
fn check_lists_every_problem_one_line_each_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = pki().dir.display().to_string();
    // A client certificate's key with the server certificate, a missing CA file, a bad CIDR,
    // an unknown rule and an unknown role.
    let yaml = format!(
        "{}workers: 5000\nshutdown_grace_secs: 18446744073709551615\nlimits:\n  max_connections: 99999999999\n  header_read_timeout_secs: 86401\n  max_body_bytes: 4096\n  max_buffered_body_bytes: 1024\nnetworks: [10.0.0.0/33]\nidentities:\n  - cn: x\n    role: nosuch\nroles:\n  dev:\n    extends: [baseline]\n    baseline:\n      rules: {{ no-such-rule: warn }}\n",
        tls_block(&format!("{d}/server/cert.pem"), &format!("{d}/admin/key.pem"), &format!("{d}/missing-ca.pem"))
    );
    let path = write_config(dir.path(), &yaml);
    let out = dockgate(&["check", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().all(|l| l.starts_with(path.to_str().unwrap())),
        "{text}"
    );
    assert!(
        text.contains("networks[0]: invalid CIDR \"10.0.0.0/33\""),
        "{text}"
    );
    assert!(
        text.contains("workers: 5000 is more than 1024; use 0 for one per CPU"),
        "{text}"
    );
    for line in [
        "shutdown_grace_secs: 18446744073709551615 is more than 86400 (a day)",
        "limits.header_read_timeout_secs: 86401 is more than 86400 (a day)",
        "limits.max_connections: 99999999999 is more than 1000000",
        "limits.max_buffered_body_bytes: 1024 is less than limits.max_body_bytes (4096): one body of the largest size must fit",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    assert!(
        text.contains("roles.dev.baseline.rules.no-such-rule: unknown rule"),
        "{text}"
    );
    assert!(
        text.contains("identities[0].role: unknown role \"nosuch\""),
        "{text}"
    );
    // The config errors stop the TLS checks; fix them and the file problems show.
    let yaml = tls_block(
        &format!("{d}/server/cert.pem"),
        &format!("{d}/admin/key.pem"),
        &format!("{d}/missing-ca.pem"),
    );
    let out = dockgate(&[
        "check",
        "--config",
        write_config(dir.path(), &yaml).to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("tls.client_ca: cannot read") && text.contains("missing-ca.pem"),
        "{text}"
    );
    assert!(
        text.contains("tls.key:") && text.contains("does not match the certificate"),
        "{text}"
    );
}

#[test]
fn check_refuses_an_expired_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = pki().dir.display().to_string();
    let yaml = tls_block(
        &format!("{d}/{EXPIRED}/cert.pem"),
        &format!("{d}/{EXPIRED}/key.pem"),
        &format!("{d}/ca.pem"),
    );
    let out = dockgate(&[
        "check",
        "--config",
        write_config(dir.path(), &yaml).to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("tls.cert:") && stdout(&out).contains("not valid now"),
        "{}",
        stdout(&out)
    );
}

/// `dockgate policy explain` on the example config: `who` is `["--cert", path]` or
/// `["--role", name]`; `body` a file to judge.
fn explain(who: [&str; 2], method: &str, path: &str, body: Option<&Path>) -> Output {
    let config = repo("config/dockgate.yaml");
    let mut args = vec![
        "policy",
        "explain",
        "--config",
        config.to_str().unwrap(),
        who[0],
        who[1],
        "--method",
        method,
        "--path",
        path,
    ];
    if let Some(body) = body {
        args.extend(["--body", body.to_str().unwrap()]);
    }
    dockgate(&args)
}

#[test]
fn policy_explain_refuses_a_certificate_no_client_ca_bundle_verifies() {
    // CN=admin, OU=admins, from a CA the example config does not trust.
    let stranger = pki().client_dir(OTHER_CA).join("cert.pem");
    let out = explain(
        ["--cert", stranger.to_str().unwrap()],
        "GET",
        "/_ping",
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("decision: DENY (rule tls)")
            && stdout(&out).contains("UnknownIssuer"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn policy_explain_shows_denial_and_mutations() {
    let dev_cert = repo("certs-example/clients/dev/cert.pem");
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(
        &body,
        r#"{"Image":"busybox","HostConfig":{"privileged":true}}"#,
    )
    .unwrap();
    let out = explain(
        ["--cert", dev_cert.to_str().unwrap()],
        "POST",
        "/v1.41/containers/create",
        Some(&body),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    // The chain is verified against the client CA bundles, as a handshake would.
    assert!(
        stdout(&out).contains("client_ca: ") && stdout(&out).contains("certs-example/ca.pem"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("decision: DENY 403: dockgate: privileged containers are not allowed (--privileged) (rule privileged, role dev)"), "{}", stdout(&out));
    std::fs::write(&body, r#"{"Image":"busybox"}"#).unwrap();
    let out = explain(["--role", "dev"], "POST", "/containers/create", Some(&body));
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("mutation: HostConfig.PidsLimit=512"),
        "{text}"
    );
    assert!(
        text.contains("forwarded body: {\"Image\":\"busybox\",\"HostConfig\":{"),
        "{text}"
    );
}
