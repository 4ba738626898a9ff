//! Micro benchmarks of the request path's pure parts: path classification, route-only policy
//! decisions, the policy path for a real docker CLI create body and a ~64 KiB body, and identity
//! extraction from a certificate.
//!
//! `cargo bench --bench policy`. Targets (issue 4): route-only decision ≤ 1 µs, typical create
//! body (parse + decide) ≤ 20 µs.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use dockgate::config::{Config, Overrides};
use dockgate::identity::Identity;
use dockgate::policy::query::Query;
use dockgate::policy::{inspect, Decision, RequestView};
use dockgate::route;

fn example_config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/dockgate.yaml");
    Config::load(&path, &Overrides::default()).expect("example config")
}

/// The body `docker run -d -p 8080:80 -e FOO=bar -v myvol:/data --name web --memory 256m
/// busybox:local sleep 100` sends (docker CLI 28.2, API 1.41), captured on a Unix socket.
const CREATE_BODY: &[u8] = include_bytes!("create-body.json");

fn large_body() -> Vec<u8> {
    let env: Vec<String> = (0..1750)
        .map(|i| format!("\"VARIABLE_{i:05}=some-value-{i:08}\""))
        .collect();
    let body = format!(
        r#"{{"Image":"busybox:local","Env":[{}],"HostConfig":{{"Memory":268435456}}}}"#,
        env.join(",")
    );
    assert!(body.len() > 60 * 1024, "{}", body.len());
    body.into_bytes()
}

fn benches(c: &mut Criterion) {
    let config = example_config();
    let policy = &config.policy;
    let admin = policy.role("admin").unwrap();
    let dev = policy.role("dev").unwrap();
    let empty = Query::default();

    c.bench_function("classify GET /v1.41/containers/json", |b| {
        b.iter(|| route::classify(black_box("GET"), black_box("/v1.41/containers/json")).unwrap())
    });
    c.bench_function("classify image path with slashes", |b| {
        b.iter(|| {
            route::classify(
                black_box("GET"),
                black_box("/v1.41/images/docker.io/library/busybox:latest/json"),
            )
            .unwrap()
        })
    });

    let ps = route::classify("GET", "/v1.41/containers/json").unwrap();
    c.bench_function("decide route-only (admin, GET /containers/json)", |b| {
        b.iter(|| {
            let view = RequestView {
                endpoint: &ps,
                query: &empty,
                body: None,
            };
            matches!(
                policy.decide(black_box(admin), view),
                Ok(Decision::Allow(_))
            )
        })
    });
    c.bench_function(
        "decide route-only (baseline role, GET /containers/json)",
        |b| {
            b.iter(|| {
                let view = RequestView {
                    endpoint: &ps,
                    query: &empty,
                    body: None,
                };
                matches!(policy.decide(black_box(dev), view), Ok(Decision::Allow(_)))
            })
        },
    );

    let create = route::classify("POST", "/v1.41/containers/create").unwrap();
    let mut typical = CREATE_BODY.to_vec();
    // The example dev role allows only busybox images; keep the captured body otherwise as is.
    assert!(std::str::from_utf8(&typical)
        .unwrap()
        .contains("busybox:local"));
    typical.shrink_to_fit();
    c.bench_function(
        "typical docker run create body: parse + decide + rewrite",
        |b| {
            b.iter(|| {
                let json = inspect::parse_optional(black_box(&typical)).unwrap();
                let view = RequestView {
                    endpoint: &create,
                    query: &empty,
                    body: json,
                };
                match policy.decide(dev, view) {
                    Ok(Decision::Allow(p)) => p.rewritten.map(|j| j.to_vec().len()),
                    other => panic!("{other:?}"),
                }
            })
        },
    );
    c.bench_function("typical docker run create body: parse only", |b| {
        b.iter(|| inspect::parse_optional(black_box(&typical)).unwrap())
    });
    let parsed = inspect::parse_optional(&typical).unwrap();
    c.bench_function(
        "typical docker run create body: decide + rewrite (pre-parsed, incl. clone)",
        |b| {
            b.iter(|| {
                let view = RequestView {
                    endpoint: &create,
                    query: &empty,
                    body: parsed.clone(),
                };
                matches!(policy.decide(dev, view), Ok(Decision::Allow(_)))
            })
        },
    );
    c.bench_function(
        "typical docker run create body: clone of the parsed body",
        |b| b.iter(|| black_box(parsed.clone())),
    );
    let large = large_body();
    c.bench_function("64 KiB create body: parse + decide + rewrite", |b| {
        b.iter(|| {
            let json = inspect::parse_optional(black_box(&large)).unwrap();
            let view = RequestView {
                endpoint: &create,
                query: &empty,
                body: json,
            };
            matches!(policy.decide(dev, view), Ok(Decision::Allow(_)))
        })
    });

    let pem = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-example/clients/dev/cert.pem"),
    )
    .unwrap();
    let der = {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(&pem).unwrap()
    };
    c.bench_function("identity from client certificate", |b| {
        b.iter(|| Identity::from_der(black_box(&der)).unwrap())
    });
}

criterion_group!(policy_benches, benches);
criterion_main!(policy_benches);
