//! The results table: one row per metric, one column per front (medians over rounds), dockgate's
//! ratios to the best of nginx/HAProxy, to dockerd's TLS endpoint and to the bare socket, and the
//! issue's targets with whether each is met.
//!
//! It must not measure anything; it only aggregates and prints.

#[derive(Clone, Copy, PartialEq)]
pub enum Better {
    Higher,
    Lower,
}

struct Row {
    name: String,
    unit: &'static str,
    better: Better,
    samples: Vec<Vec<f64>>,
}

pub struct Report {
    columns: Vec<&'static str>,
    rows: Vec<Row>,
}

const DOCKGATE: usize = 1;
const NGINX: usize = 2;
const HAPROXY: usize = 3;
const DOCKERD: usize = 4;
const BARE: usize = 0;

impl Report {
    pub fn new(columns: Vec<&'static str>) -> Report {
        Report {
            columns,
            rows: Vec::new(),
        }
    }

    pub fn record(&mut self, name: &str, unit: &'static str, better: Better, col: usize, v: f64) {
        let n = self.columns.len();
        let row = match self.rows.iter().position(|r| r.name == name) {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push(Row {
                    name: name.to_string(),
                    unit,
                    better,
                    samples: vec![Vec::new(); n],
                });
                self.rows.last_mut().expect("just pushed")
            }
        };
        row.samples[col].push(v);
    }

    pub fn print(&self, notes: &[String], summary: &str) {
        let name_w = self
            .rows
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(10);
        let mut out = String::new();
        out.push_str(&format!("{:<name_w$} {:<5}", "scenario", "unit"));
        for c in &self.columns {
            out.push_str(&format!(" {c:>11}"));
        }
        out.push_str(&format!(
            " {:>9} {:>9} {:>9}  {:<28} {}\n",
            "dg/proxy", "dg/dockd", "dg/bare", "target", "met"
        ));
        let width = out.chars().count();
        out.push_str(&"-".repeat(width.saturating_sub(1)));
        out.push('\n');
        let (mut met, mut missed) = (0, 0);
        for r in &self.rows {
            let m: Vec<Option<f64>> = r.samples.iter().map(|s| median(s)).collect();
            out.push_str(&format!("{:<name_w$} {:<5}", r.name, r.unit));
            for v in &m {
                out.push_str(&format!(" {:>11}", v.map_or("-".into(), fmt)));
            }
            let dg = m[DOCKGATE];
            let best = best_proxy(&m, r.better);
            let ratio = |other: Option<f64>| match (dg, other) {
                (Some(a), Some(b)) if b != 0.0 => format!("{:.2}x", a / b),
                _ => "-".into(),
            };
            out.push_str(&format!(
                " {:>9} {:>9} {:>9}",
                ratio(best),
                ratio(m[DOCKERD]),
                ratio(m[BARE])
            ));
            if let Some((desc, ok)) = target(r, &m) {
                let verdict = match ok {
                    Some(true) => {
                        met += 1;
                        "yes"
                    }
                    Some(false) => {
                        missed += 1;
                        "NO"
                    }
                    None => "n/a",
                };
                out.push_str(&format!("  {desc:<28} {verdict}"));
            }
            out.push('\n');
        }
        out.push_str(&"-".repeat(width.saturating_sub(1)));
        out.push('\n');
        out.push_str(&format!("targets met: {met}, missed: {missed}\n"));
        out.push_str(&format!("{summary}\n"));
        out.push_str(
            "dg/proxy = dockgate / the better of nginx and haproxy on that row; dg/dockd = / dockerd's \
             own TLS endpoint; dg/bare = / the bare Unix socket (no TLS).\n\
             All fronts, the stub upstream and the load generator share this machine's CPUs: \
             throughput is a property of the whole box, compare columns, not absolute numbers.\n\
             New connections are full TLS 1.3 handshakes (client resumption disabled), X25519, ECDSA \
             P-256 certificates on both sides; like wrk and h2load, the load generator does not \
             verify the server's chain. Every connection presents the same client certificate: \
             dockgate remembers a chain it verified and skips its signature check (~50 µs) from \
             the second connection on, the other fronts verify it every time.\n",
        );
        for n in notes {
            out.push_str(&format!("note: {n}\n"));
        }
        print!("{out}");
    }
}

fn median(s: &[f64]) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let mut v = s.to_vec();
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn best_proxy(m: &[Option<f64>], better: Better) -> Option<f64> {
    match (m[NGINX], m[HAPROXY]) {
        (Some(a), Some(b)) => Some(match better {
            Better::Higher => a.max(b),
            Better::Lower => a.min(b),
        }),
        (a, b) => a.or(b),
    }
}

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "nan".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The target for this row, if it has one, and whether dockgate meets it (`None`: a
/// needed column was not measured).
fn target(r: &Row, m: &[Option<f64>]) -> Option<(&'static str, Option<bool>)> {
    let dg = m[DOCKGATE];
    let best = best_proxy(m, r.better);
    let n = r.name.as_str();
    let cmp = |a: Option<f64>, f: &dyn Fn(f64, f64) -> bool, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        _ => None,
    };
    if n.ends_with("keep-alive c=32: req/s") && !n.contains("dockerd") {
        return Some((
            ">= 1.2x best(nginx,haproxy)",
            cmp(dg, &|a, b| a >= 1.2 * b, best),
        ));
    }
    if n.ends_with("keep-alive c=32: p99") && !n.contains("dockerd") {
        return Some(("p99 <= best(nginx,haproxy)", cmp(dg, &|a, b| a <= b, best)));
    }
    if n.starts_with("new conn") && n.ends_with("dockerd: conn/s") {
        let vs_dockerd = cmp(dg, &|a, b| a >= 1.5 * b, m[DOCKERD]);
        let vs_nginx = cmp(dg, &|a, b| a >= 3.0 * b, m[NGINX]);
        let ok = match (vs_dockerd, vs_nginx) {
            (Some(a), Some(b)) => Some(a && b),
            _ => None,
        };
        return Some((">= 1.5x dockerd, >= 3x nginx", ok));
    }
    if n.starts_with("docker ps") {
        return Some((
            "<= 1.10x dockerd-tls",
            cmp(dg, &|a, b| a <= 1.10 * b, m[DOCKERD]),
        ));
    }
    if (n.starts_with("download") || n.starts_with("upload")) && !n.contains("CPU") {
        return Some((
            ">= 1.5x best(nginx,haproxy)",
            cmp(dg, &|a, b| a >= 1.5 * b, best),
        ));
    }
    if n.starts_with("RSS per idle TLS conn") {
        return Some(("<= nginx", cmp(dg, &|a, b| a <= b, m[NGINX])));
    }
    if n == "idle RSS at start" {
        return Some(("<= 20 MiB", dg.map(|v| v <= 20.0)));
    }
    None
}
