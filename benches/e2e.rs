//! End-to-end benchmark: dockgate against the bare Docker socket, nginx, HAProxy and dockerd's own
//! `--tlsverify` endpoint, driven by an mTLS HTTP/1.1 load generator, in interleaved rounds.
//!
//! It must not be run by `cargo test` (it takes minutes and starts processes): without `--bench`
//! it prints one line and exits. `scripts/bench.sh` prepares everything and runs it; see
//! `benches/README.md` for what is measured and how.

#[path = "e2e/fronts.rs"]
mod fronts;
#[path = "e2e/loadgen.rs"]
mod loadgen;
#[path = "e2e/report.rs"]
mod report;
#[path = "e2e/stub.rs"]
mod stub;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fronts::{Front, Pki};
use loadgen::Target;
use report::{Better, Report};

/// The docker 28 CLI's body for `docker create -p 8080:80 -v myvol:/data -e FOO=bar -m 256m
/// busybox:local sleep 100` (1.8 KiB).
const CREATE_BODY: &str = include_str!("create-body.json");

const BARE: usize = 0;
const DOCKGATE: usize = 1;
const NGINX: usize = 2;
const HAPROXY: usize = 3;
const DOCKERD_TLS: usize = 4;
const NAMES: [&str; 5] = ["bare-socket", "dockgate", "nginx", "haproxy", "dockerd-tls"];

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "e2e benchmark skipped (run it with `scripts/bench.sh` or `cargo bench --bench e2e`)"
        );
        return;
    }
    let settings = Settings::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building the load generator's runtime");
    if let Err(e) = rt.block_on(run(settings)) {
        eprintln!("e2e benchmark failed: {e}");
        std::process::exit(1);
    }
}

/// Knobs, from the environment (`scripts/bench.sh` sets the paths).
struct Settings {
    rounds: usize,
    secs: Duration,
    stream_bytes: u64,
    idle_conns: usize,
    dockgate_bin: PathBuf,
    pki: Option<PathBuf>,
    dockerd_sock: Option<PathBuf>,
    dockerd_tls: Option<SocketAddr>,
    dockerd_pid: Option<u32>,
    /// Scenario groups to run (`DOCKGATE_BENCH_ONLY`, comma-separated); empty = all.
    only: Vec<String>,
    /// Fronts to start (`DOCKGATE_BENCH_FRONTS`, comma-separated column names); empty = all.
    fronts: Vec<String>,
}

impl Settings {
    fn from_env() -> Settings {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let num = |k: &str, d: u64| var(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        let target_dir = var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
        Settings {
            rounds: num("DOCKGATE_BENCH_ROUNDS", 3) as usize,
            secs: Duration::from_secs_f64(
                var("DOCKGATE_BENCH_SECS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(2.0),
            ),
            stream_bytes: num("DOCKGATE_BENCH_STREAM_MIB", 1024) << 20,
            idle_conns: num("DOCKGATE_BENCH_IDLE_CONNS", 10_000) as usize,
            dockgate_bin: var("DOCKGATE_BENCH_DOCKGATE_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| target_dir.join("release/dockgate")),
            pki: var("DOCKGATE_BENCH_PKI").map(PathBuf::from),
            dockerd_sock: var("DOCKGATE_BENCH_DOCKERD_SOCK").map(PathBuf::from),
            dockerd_tls: var("DOCKGATE_BENCH_DOCKERD_TLS").and_then(|v| v.parse().ok()),
            dockerd_pid: var("DOCKGATE_BENCH_DOCKERD_PID").and_then(|v| v.parse().ok()),
            only: var("DOCKGATE_BENCH_ONLY")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_default(),
            fronts: var("DOCKGATE_BENCH_FRONTS")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_default(),
        }
    }

    fn front(&self, name: &str) -> bool {
        self.fronts.is_empty() || self.fronts.iter().any(|f| f == name)
    }

    /// Whether the scenario group `name` (keepalive, create, newconn, dockerd, stream, ps, idle;
    /// `ping32` alone: only `GET /_ping` keep-alive at 32 connections) is to run.
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }
}

/// Distinct client certificates the cold new-connection row rotates through: more than dockgate
/// remembers verified chains for (4,096), so every one of its handshakes verifies the chain, as
/// the other fronts' always do.
const COLD_CERTS: usize = 5_000;

/// Which upstream (and which client certificates) a new-connection row uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upstream {
    Stub,
    StubCold,
    Dockerd,
}

/// [`COLD_CERTS`] client configurations, each with its own certificate for the admin identity
/// (CN admin, OU admins), issued by the bench CA.
fn cold_client_configs(pki: &fronts::Pki) -> Result<Vec<Arc<rustls::ClientConfig>>, String> {
    let ca = dockgate::certs::Ca::load(&pki.file("ca.pem"), &pki.file("ca-key.pem"))
        .map_err(|e| format!("bench CA: {e}"))?;
    let subject = dockgate::certs::Subject::client("admin").ou("admins");
    (0..COLD_CERTS)
        .map(|_| {
            let pem = ca.issue(&subject).map_err(|e| e.to_string())?;
            loadgen::client_config(&pem.cert, &pem.key)
        })
        .collect()
}

/// One column of the table: how to reach a front with each identity, and which process to weigh.
#[derive(Default)]
struct Column {
    stub_admin: Option<Target>,
    stub_dev: Option<Target>,
    /// The admin identity on [`COLD_CERTS`] distinct client certificates, in turn.
    stub_cold: Option<Target>,
    dockerd_admin: Option<Target>,
    /// `-H` and TLS flags for the docker CLI.
    docker_args: Option<Vec<String>>,
    /// The process whose VmRSS is this front's memory (with descendants?), stub instance.
    rss: Option<(u32, bool)>,
    /// Processes kept alive for the run (stopped on drop).
    procs: Vec<Front>,
}

impl Column {
    /// CPU seconds the stub-upstream front has used so far (None: no process to weigh).
    fn cpu(&self) -> Option<f64> {
        self.rss.map(|(pid, kids)| fronts::cpu_secs(pid, kids))
    }
}

/// Records the front's CPU time per request of a load run that started at `cpu0`.
fn record_cpu(
    report: &mut Report,
    row: &str,
    col: usize,
    c: &Column,
    cpu0: Option<f64>,
    load: &loadgen::Load,
) {
    let answered = load.latencies.len() as f64;
    if let (Some(a), Some(b), true) = (cpu0, c.cpu(), answered > 0.0) {
        let per_req = (b - a) * 1e6 / answered;
        report.record(
            &format!("{row}: front CPU/req"),
            "µs",
            Better::Lower,
            col,
            per_req,
        );
    }
}

/// Records the front's CPU time per MB (10^6 bytes) streamed in a run that started at `cpu0`:
/// steadier than MB/s on shared cores, where the load generator's share moves the throughput.
fn record_cpu_per_mb(
    report: &mut Report,
    row: &str,
    col: usize,
    c: &Column,
    cpu0: Option<f64>,
    bytes: u64,
) {
    if let (Some(a), Some(b), true) = (cpu0, c.cpu(), bytes > 0) {
        let per_mb = (b - a) * 1e6 / (bytes as f64 / 1e6);
        report.record(
            &format!("{row}: front CPU/MB"),
            "µs",
            Better::Lower,
            col,
            per_mb,
        );
    }
}

async fn run(s: Settings) -> Result<(), String> {
    let started = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("dockgate-bench.")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let dir = tmp.path().to_path_buf();
    let pki = match &s.pki {
        Some(p) => Pki { dir: p.clone() },
        None => {
            let p = dir.join("pki");
            dockgate::certs::write_example(&p).map_err(|e| format!("generating the PKI: {e}"))?;
            Pki { dir: p }
        }
    };
    let stub_sock = dir.join("stub.sock");
    stub::spawn(&stub_sock).map_err(|e| format!("starting the stub API: {e}"))?;
    if !s.dockgate_bin.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release` (or run scripts/bench.sh)",
            s.dockgate_bin.display()
        ));
    }

    let tls = |who: &str| -> Result<Arc<rustls::ClientConfig>, String> {
        loadgen::client_config(
            &pki.read(&format!("clients/{who}/cert.pem"))?,
            &pki.read(&format!("clients/{who}/key.pem"))?,
        )
    };
    let (admin, dev) = (tls("admin")?, tls("dev")?);
    let cold = if s.wants("newconn") {
        cold_client_configs(&pki)?
    } else {
        Vec::new()
    };
    let cli_tls = |addr: SocketAddr| {
        let f = |rel: &str| pki.file(rel).display().to_string();
        vec![
            "--tlsverify".into(),
            "--tlscacert".into(),
            f("ca.pem"),
            "--tlscert".into(),
            f("clients/admin/cert.pem"),
            "--tlskey".into(),
            f("clients/admin/key.pem"),
            "-H".into(),
            format!("tcp://{addr}"),
        ]
    };
    let dockerd_sock = s.dockerd_sock.clone().filter(|p| p.exists());
    let mut report = Report::new(NAMES.to_vec());
    let mut notes: Vec<String> = Vec::new();

    // Columns. Idle RSS is read right after each front starts, before any traffic.
    let mut cols: Vec<Column> = (0..NAMES.len()).map(|_| Column::default()).collect();
    if s.front("bare-socket") {
        cols[BARE].stub_admin = Some(Target::Unix(stub_sock.clone()));
        cols[BARE].stub_dev = Some(Target::Unix(stub_sock.clone()));
    }
    if let Some(sock) = dockerd_sock.as_ref().filter(|_| s.front("bare-socket")) {
        cols[BARE].dockerd_admin = Some(Target::Unix(sock.clone()));
        cols[BARE].docker_args = Some(vec!["-H".into(), format!("unix://{}", sock.display())]);
    }
    type Start = fn(&Path, &str, &Pki, &Path) -> Result<Front, String>;
    let bin = s.dockgate_bin.clone();
    let starters: [(usize, &str, Option<Start>); 3] = [
        (DOCKGATE, "dockgate", None),
        (NGINX, "nginx", Some(fronts::nginx as Start)),
        (HAPROXY, "haproxy", Some(fronts::haproxy as Start)),
    ];
    for (col, name, start) in starters {
        if !s.front(name) {
            continue;
        }
        if start.is_some() && which(name).is_none() {
            notes.push(format!("{name}: not installed, column skipped"));
            continue;
        }
        let launch = |instance: &str, upstream: &Path| match start {
            None => fronts::dockgate(&bin, &dir, instance, &pki, upstream),
            Some(f) => f(&dir, instance, &pki, upstream),
        };
        let front = launch(&format!("{name}-stub"), &stub_sock)?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pid = front.pid();
        let rss = fronts::rss_kib(pid, true);
        report.record(
            "idle RSS at start",
            "MiB",
            Better::Lower,
            col,
            rss as f64 / 1024.0,
        );
        let c = &mut cols[col];
        c.stub_admin = Some(Target::tls(front.addr, admin.clone()));
        c.stub_dev = Some(Target::tls(front.addr, dev.clone()));
        if !cold.is_empty() {
            c.stub_cold = Some(Target::tls_rotating(front.addr, cold.clone()));
        }
        c.rss = Some((pid, true));
        c.procs.push(front);
        if let Some(sock) = &dockerd_sock {
            let front = launch(&format!("{name}-dockerd"), sock)?;
            c.dockerd_admin = Some(Target::tls(front.addr, admin.clone()));
            c.docker_args = Some(cli_tls(front.addr));
            c.procs.push(front);
        }
    }
    match (&dockerd_sock, s.dockerd_tls.filter(|_| s.front("dockerd-tls"))) {
        (Some(_), Some(addr)) => {
            let c = &mut cols[DOCKERD_TLS];
            c.dockerd_admin = Some(Target::tls(addr, admin.clone()));
            c.docker_args = Some(cli_tls(addr));
            c.rss = s.dockerd_pid.map(|p| (p, false));
            if let Some(pid) = s.dockerd_pid {
                let rss = fronts::rss_kib(pid, false);
                report.record("idle RSS at start", "MiB", Better::Lower, DOCKERD_TLS, rss as f64 / 1024.0);
            }
        }
        (None, _) => notes.push(
            "no DOCKGATE_BENCH_DOCKERD_SOCK: real-dockerd rows skipped (scripts/bench.sh starts one)".into(),
        ),
        (Some(_), None) => notes.push("no DOCKGATE_BENCH_DOCKERD_TLS: dockerd-tls column skipped".into()),
    }

    // Sanity: every front answers, and says which TLS parameters it negotiated.
    for (i, c) in cols.iter().enumerate() {
        for t in [&c.stub_admin, &c.dockerd_admin].into_iter().flatten() {
            let suite = loadgen::negotiated(t)
                .await
                .map_err(|e| format!("{}: first connection failed: {e}", NAMES[i]))?;
            if !notes.iter().any(|n| n.starts_with(NAMES[i])) {
                notes.push(format!("{}: {suite}", NAMES[i]));
            }
        }
    }
    let docker_config = dir.join("docker-config");
    std::fs::create_dir_all(&docker_config).map_err(|e| e.to_string())?;
    std::fs::write(docker_config.join("config.json"), "{}").map_err(|e| e.to_string())?;

    for round in 0..s.rounds {
        eprintln!(
            "round {}/{} ({:.0} s so far)",
            round + 1,
            s.rounds,
            started.elapsed().as_secs_f64()
        );
        // Rotate the order of the fronts every round.
        let order: Vec<usize> = (0..NAMES.len())
            .map(|i| (i + round) % NAMES.len())
            .collect();
        for (path, label) in [("/_ping", "GET /_ping"), ("/v1.41/version", "GET /version")] {
            let ping32 = s.only.iter().any(|o| o == "ping32");
            if !s.wants("keepalive") && !ping32 {
                break;
            }
            let raw = Arc::new(loadgen::get("GET", path, false));
            for conns in [1, 32, 256] {
                if !s.wants("keepalive") && (conns != 32 || path != "/_ping") {
                    continue;
                }
                for &i in &order {
                    let Some(t) = &cols[i].stub_admin else {
                        continue;
                    };
                    let cpu0 = cols[i].cpu();
                    let load = loadgen::keepalive(t, conns, raw.clone(), 200, s.secs)
                        .await
                        .map_err(|e| format!("{label} c={conns} via {}: {e}", NAMES[i]))?;
                    let row = format!("{label} keep-alive c={conns}");
                    record_load(&mut report, &row, i, &load);
                    record_cpu(&mut report, &row, i, &cols[i], cpu0, &load);
                }
            }
        }
        let raw = Arc::new(loadgen::post_json(
            "/v1.41/containers/create?name=bench",
            CREATE_BODY,
        ));
        for &i in order.iter().filter(|_| s.wants("create")) {
            let Some(t) = &cols[i].stub_dev else { continue };
            let cpu0 = cols[i].cpu();
            let load = loadgen::keepalive(t, 32, raw.clone(), 201, s.secs)
                .await
                .map_err(|e| format!("create via {}: {e}", NAMES[i]))?;
            let row = "POST /containers/create (baseline role) c=32";
            record_load(&mut report, row, i, &load);
            record_cpu(&mut report, row, i, &cols[i], cpu0, &load);
        }
        let raw = Arc::new(loadgen::get("GET", "/_ping", true));
        for (row, upstream) in [
            ("new conn per GET /_ping c=8, stub", Upstream::Stub),
            (
                "new conn per GET /_ping c=8, stub, 5,000 client certs",
                Upstream::StubCold,
            ),
            ("new conn per GET /_ping c=8, dockerd", Upstream::Dockerd),
        ] {
            for &i in order.iter().filter(|_| s.wants("newconn")) {
                let t = match upstream {
                    Upstream::Stub => &cols[i].stub_admin,
                    Upstream::StubCold => &cols[i].stub_cold,
                    Upstream::Dockerd => &cols[i].dockerd_admin,
                };
                let Some(t) = t else { continue };
                let dockerd = upstream == Upstream::Dockerd;
                let cpu0 = (!dockerd).then(|| cols[i].cpu()).flatten();
                let load = loadgen::per_connection(t, 8, raw.clone(), s.secs)
                    .await
                    .map_err(|e| format!("{row} via {}: {e}", NAMES[i]))?;
                record_cpu(&mut report, row, i, &cols[i], cpu0, &load);
                report.record(
                    &format!("{row}: conn/s"),
                    "1/s",
                    Better::Higher,
                    i,
                    load.per_sec,
                );
                report.record(
                    &format!("{row}: p50"),
                    "ms",
                    Better::Lower,
                    i,
                    load.percentile_us(0.5) / 1000.0,
                );
            }
        }
        let ping = Arc::new(loadgen::get("GET", "/_ping", false));
        for &i in order.iter().filter(|_| s.wants("dockerd")) {
            let Some(t) = &cols[i].dockerd_admin else {
                continue;
            };
            let load = loadgen::keepalive(t, 32, ping.clone(), 200, s.secs)
                .await
                .map_err(|e| format!("GET /_ping to dockerd via {}: {e}", NAMES[i]))?;
            record_load(&mut report, "GET /_ping keep-alive c=32, dockerd", i, &load);
        }
        let mib = s.stream_bytes >> 20;
        for conns in [1, 4] {
            for &i in order.iter().filter(|_| s.wants("stream")) {
                let Some(t) = &cols[i].stub_admin else {
                    continue;
                };
                let cpu0 = cols[i].cpu();
                let mbs =
                    loadgen::download(t, conns, "/v1.41/containers/bench/export", s.stream_bytes)
                        .await
                        .map_err(|e| format!("download via {}: {e}", NAMES[i]))?;
                let row = format!("download {mib} MiB c={conns}");
                report.record(&row, "MB/s", Better::Higher, i, mbs);
                record_cpu_per_mb(&mut report, &row, i, &cols[i], cpu0, s.stream_bytes);
                let cpu0 = cols[i].cpu();
                let mbs = loadgen::upload(
                    t,
                    conns,
                    "PUT",
                    "/v1.41/containers/bench/archive?path=/tmp",
                    s.stream_bytes,
                )
                .await
                .map_err(|e| format!("upload via {}: {e}", NAMES[i]))?;
                let row = format!("upload {mib} MiB c={conns}");
                report.record(&row, "MB/s", Better::Higher, i, mbs);
                record_cpu_per_mb(&mut report, &row, i, &cols[i], cpu0, s.stream_bytes);
            }
        }
        for &i in order.iter().filter(|_| s.wants("ps")) {
            let Some(args) = &cols[i].docker_args else {
                continue;
            };
            let ms = docker_ps(args, &docker_config, 10)
                .map_err(|e| format!("docker ps via {}: {e}", NAMES[i]))?;
            report.record(
                "docker ps wall time (median of 10)",
                "ms",
                Better::Lower,
                i,
                ms,
            );
        }
    }

    // Idle connections, once per front (they take the longest to set up).
    eprintln!(
        "idle connections ({:.0} s so far)",
        started.elapsed().as_secs_f64()
    );
    let ping = Arc::new(loadgen::get("GET", "/_ping", false));
    for (i, c) in cols.iter().enumerate().filter(|_| s.wants("idle")) {
        let (Some((pid, kids)), Some(t)) =
            (c.rss, c.stub_admin.as_ref().or(c.dockerd_admin.as_ref()))
        else {
            continue;
        };
        let want = if i == HAPROXY {
            s.idle_conns.min(fronts::HAPROXY_MAXCONN - 80)
        } else {
            s.idle_conns
        };
        let before = fronts::rss_kib(pid, kids);
        let t0 = Instant::now();
        let held = loadgen::idle(t, want, ping.clone())
            .await
            .map_err(|e| format!("{want} idle connections via {}: {e}", NAMES[i]))?;
        let opened = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = fronts::rss_kib(pid, kids);
        let n = held.len();
        drop(held);
        let per = (after as f64 - before as f64) / n as f64;
        report.record("RSS per idle TLS conn", "KiB", Better::Lower, i, per);
        report.record(
            "RSS with the idle TLS conns",
            "MiB",
            Better::Lower,
            i,
            after as f64 / 1024.0,
        );
        notes.push(format!(
            "{}: {n} idle connections opened in {:.1} s",
            NAMES[i],
            opened.as_secs_f64()
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let Some((pid, kids)) = cols[DOCKGATE].rss {
        let rss = fronts::rss_kib(pid, kids);
        report.record(
            "RSS after the run",
            "MiB",
            Better::Lower,
            DOCKGATE,
            rss as f64 / 1024.0,
        );
    }

    report.print(&notes, &s_summary(&s, started.elapsed()));
    drop(cols);
    Ok(())
}

fn record_load(report: &mut Report, row: &str, col: usize, load: &loadgen::Load) {
    report.record(
        &format!("{row}: req/s"),
        "1/s",
        Better::Higher,
        col,
        load.per_sec,
    );
    report.record(
        &format!("{row}: p50"),
        "µs",
        Better::Lower,
        col,
        load.percentile_us(0.5),
    );
    report.record(
        &format!("{row}: p99"),
        "µs",
        Better::Lower,
        col,
        load.percentile_us(0.99),
    );
}

fn s_summary(s: &Settings, took: Duration) -> String {
    format!(
        "{} rounds (medians), {:.1} s per load run, streams of {} MiB, {} idle connections; run took {:.0} s",
        s.rounds,
        s.secs.as_secs_f64(),
        s.stream_bytes >> 20,
        s.idle_conns,
        took.as_secs_f64()
    )
}

/// The median wall time of `n` runs of `docker ps` (the CLI negotiates the API version each
/// time, as it does interactively).
fn docker_ps(args: &[String], config: &Path, n: usize) -> Result<f64, String> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let out = Command::new("docker")
            .args(args)
            .arg("ps")
            .env("DOCKER_CONFIG", config)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("DOCKER_API_VERSION")
            .output()
            .map_err(|e| format!("running docker: {e}"))?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[n / 2])
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}
