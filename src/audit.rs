//! The audit log: one JSON record per request (and per refused handshake, and per ended hijacked
//! stream) saying who did what, from where, and why it was allowed or refused.
//!
//! It must not decide anything; it writes what the request path hands it, and never drops a
//! record: records are batched for a dedicated writer thread, and the last batch is
//! written before shutdown completes.

use std::borrow::Cow;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

use crate::identity::Identity;
use crate::route::{ApiVersion, Route};

/// Who a connection's records are about: formatted once per connection, shared by every record
/// of it (a clone is a few reference counts, not a few allocations per request).
#[derive(Clone, Debug, Default)]
pub struct Who {
    pub peer: Arc<str>,
    pub cn: Option<Arc<str>>,
    pub fingerprint: Option<Arc<str>>,
    pub serial: Option<Arc<str>>,
    pub role: Option<Arc<str>>,
}

impl Who {
    /// A verified client: its peer address, certificate identity and resolved role (if any).
    pub fn of(peer: SocketAddr, identity: &Identity, role: Option<&str>) -> Who {
        Who {
            peer: peer.to_string().into(),
            cn: identity.cn.as_deref().map(Arc::from),
            fingerprint: Some(identity.fingerprint.as_str().into()),
            serial: Some(identity.serial.as_str().into()),
            role: role.map(Arc::from),
        }
    }
}

/// One audit record. Optional fields are omitted when unknown (e.g. a request refused before
/// its route was classified).
#[derive(Debug, Default, Serialize)]
pub struct Record {
    /// Unix time in milliseconds.
    pub ts_ms: u128,
    pub kind: &'static str,
    pub peer: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "clipped")]
    pub cn: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Arc<str>>,
    /// A client certificate the handshake refused, as presented (its fingerprint, and the
    /// subject, issuer and serial it states): not vouched for by any CA, unlike `cn` and
    /// `fingerprint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presented: Option<Box<crate::tls::Refused>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "clipped")]
    pub method: Option<Cow<'static, str>>,
    /// The request target as received. Copied (short ones inline): a `Uri` would keep hyper's
    /// whole read buffer alive for as long as the exchange lasts.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "target_clipped"
    )]
    pub path: Option<compact_str::CompactString>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "displayed")]
    pub route: Option<&'static Route>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "displayed")]
    pub api_version: Option<ApiVersion>,
    /// `allow`, `deny`, `error`; `cancelled` when the client went away (or the connection was
    /// cut at shutdown) before the request was decided.
    pub decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "clipped")]
    pub reason: Option<String>,
    /// Rules in warn mode (or audit-only) that would have denied.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "each_clipped")]
    pub warnings: Vec<String>,
    /// Changes the policy made to the request (injected defaults).
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "each_clipped")]
    pub mutations: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub upgraded: bool,
    /// On the end of a stream: bytes from the client to dockerd (hijacked streams), and back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// On a summary of refusals before authentication: how many this record stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeated: Option<u64>,
    pub duration_us: u128,
}

/// A request method as records carry it: the standard ones without an allocation.
pub fn method_name(method: &hyper::Method) -> Cow<'static, str> {
    const STANDARD: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    match STANDARD.iter().find(|&&name| name == method.as_str()) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(method.as_str().to_string()),
    }
}

/// The most of one text field a record carries. A peer controls methods, paths and the
/// values a reason quotes (a request head may be hundreds of KiB): one record must not be able
/// to fill the backlog or the disk. What is cut is said, with the full length.
pub const MAX_FIELD_BYTES: usize = 4096;

/// The most of a request target a record carries. Longer targets are refused before they are
/// judged (`proxy`), so every request dockerd sees is recorded with its whole target: a
/// parameter cannot hide behind padding.
pub const MAX_TARGET_BYTES: usize = 16 * 1024;

/// A text cut to `N` bytes (at a character boundary), marked when cut.
struct Clipped<'a, const N: usize>(&'a str);

impl<const N: usize> fmt::Display for Clipped<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= N {
            return f.write_str(self.0);
        }
        let mut end = N;
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        write!(
            f,
            "{}… [cut: {} bytes in all]",
            &self.0[..end],
            self.0.len()
        )
    }
}

impl<const N: usize> Serialize for Clipped<'_, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

pub(crate) fn clipped<T: AsRef<str>, S: Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(&Clipped::<MAX_FIELD_BYTES>(v.as_ref())),
        None => s.serialize_none(),
    }
}

fn target_clipped<S: Serializer>(
    v: &Option<compact_str::CompactString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(&Clipped::<MAX_TARGET_BYTES>(v)),
        None => s.serialize_none(),
    }
}

fn each_clipped<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|t| Clipped::<MAX_FIELD_BYTES>(t)))
}

/// Writes a field by its `Display` form, straight into the output.
fn displayed<T: fmt::Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

impl Record {
    /// A record about a peer with no identity yet (a refused connection or handshake).
    pub fn new(kind: &'static str, peer: SocketAddr) -> Record {
        Record::about(
            kind,
            &Who {
                peer: peer.to_string().into(),
                ..Who::default()
            },
        )
    }

    /// A record about a connection's identity.
    pub fn about(kind: &'static str, who: &Who) -> Record {
        Record {
            ts_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            kind,
            peer: who.peer.clone(),
            cn: who.cn.clone(),
            fingerprint: who.fingerprint.clone(),
            serial: who.serial.clone(),
            role: who.role.clone(),
            decision: "error",
            ..Record::default()
        }
    }
}

/// Where audit records go.
pub struct Audit {
    sink: Sink,
    unauthenticated: Mutex<Unauthenticated>,
}

/// Refusals before authentication (a source network not allowed, the connection limit, a
/// failed handshake) cost a peer nothing to cause, so they are recorded per source and kind of
/// refusal (an IPv6 source by its /64; the kind is the rule and the reason's fixed head, before
/// any detail a peer could vary, such as an alert code): the first in each
/// [`UNAUTHENTICATED_WINDOW`] in full, the rest counted and recorded as one summary record
/// (`repeated`, carrying the latest refusal) when the window closes. A flood then writes two
/// records per source and kind per window instead of one per connection; another kind of
/// refusal (a certificate problem among junk) is never folded into another's count; and every
/// refusal is still accounted for. Past [`MAX_FULL_PER_WINDOW`] full records in a window, or
/// [`MAX_TALLIED`] tallies, refusals are tallied together under the unspecified address: a
/// bounded log under a flood from many sources.
#[derive(Default)]
struct Unauthenticated {
    tallies: std::collections::HashMap<TallyKey, Tally>,
    /// Full records written in the current window, and when it began.
    full: (Option<std::time::Instant>, usize),
}

/// A source (an IPv6 address cut to its /64) and a kind of refusal (rule, reason head).
type TallyKey = (std::net::IpAddr, Option<String>, Option<String>);

/// The fixed head of a refusal's reason: up to its second ':' or its first '(' (rustls and
/// dockgate put the details a peer controls after those). Two segments, so that rustls'
/// `invalid peer certificate: <why>` kinds (expired, unknown issuer, …) stay apart: one
/// source's self-signed attempts must not fold an expired real certificate out of sight.
fn reason_kind(reason: Option<&str>) -> Option<String> {
    // The alert a peer sends is its own choice (three dozen names): one kind for them all.
    const ALERT: &str = "received fatal alert";
    reason.map(|r| {
        if r.starts_with(ALERT) {
            return ALERT.to_string();
        }
        let head = r.split('(').next().unwrap_or(r);
        let end = head
            .match_indices(':')
            .nth(1)
            .map_or(head.len(), |(i, _)| i);
        head[..end].trim().to_string()
    })
}

struct Tally {
    since: std::time::Instant,
    /// Refusals after the first, and the latest of them.
    repeated: u64,
    latest: Option<Record>,
}

/// How long the refusals of one source and kind before authentication are summed up.
pub const UNAUTHENTICATED_WINDOW: Duration = Duration::from_secs(10);

/// Tallies kept at most.
const MAX_TALLIED: usize = 10_000;

/// Full records of refusals before authentication written at most per window.
const MAX_FULL_PER_WINDOW: usize = 1_000;

enum Sink {
    /// Through `tracing`, target `dockgate::audit`.
    Log,
    /// JSON lines appended to a file by a writer thread.
    File {
        shared: Arc<Shared>,
        thread: Mutex<Option<JoinHandle<()>>>,
    },
}

/// The batch between request tasks and the writer thread.
///
/// Request tasks serialise their record straight into `pending.bytes` under the lock and wake
/// the writer only when the batch was empty, so a busy proxy costs one wake-up per batch, not
/// per request. The writer waits a moment to let a batch fill, swaps the buffer out and writes
/// it with one `write` call.
struct Shared {
    pending: Mutex<Batch>,
    wake: Condvar,
    /// The queued bytes plus the batch being written, for [`Audit::accepting`] without the lock.
    backlog: std::sync::atomic::AtomicUsize,
    /// The last write to the file failed (a full disk, an I/O error): its batch went to the
    /// log, and requests are refused until a write succeeds again.
    failing: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Makes the batch's backlog readable without the lock (see [`Audit::accepting`]).
    fn publish_backlog(&self, batch: &Batch) {
        self.backlog
            .store(batch.backlog(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// How long closing waits for the writer to finish the file.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Records queued or being written past which the writer is taken to be stuck: later records
/// go to the log and requests are refused until it catches up.
pub const MAX_BACKLOG: usize = 64 << 20;

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// The size of the batch the writer has taken and not yet written.
    in_flight: usize,
    /// Set by `close`: the writer drains what is left and stops; later records go to the log.
    closed: bool,
}

impl Batch {
    fn backlog(&self) -> usize {
        self.bytes.len() + self.in_flight
    }
}

thread_local! {
    /// Each request thread's buffer for serialising one record.
    static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How long the writer lets a batch fill after the first record arrives.
const BATCH_WINDOW: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
#[error("audit.path: cannot open {path} for appending: {source}")]
pub struct AuditError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl Audit {
    /// Opens the audit sink: a file when `path` is set, else the log.
    pub fn open(path: Option<&Path>) -> Result<Audit, AuditError> {
        let Some(path) = path else {
            return Ok(Audit {
                sink: Sink::Log,
                unauthenticated: Mutex::default(),
            });
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| AuditError {
                path: path.to_path_buf(),
                source,
            })?;
        Audit::with_writer(file, path)
    }

    /// Records to `file` (opened from `path`, named in errors) from a writer thread.
    fn with_writer(file: impl Write + Send + 'static, path: &Path) -> Result<Audit, AuditError> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Batch::default()),
            wake: Condvar::new(),
            backlog: std::sync::atomic::AtomicUsize::new(0),
            failing: std::sync::atomic::AtomicBool::new(false),
        });
        let writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("dockgate-audit".into())
            .spawn(move || write_loop(&writer, file))
            .map_err(|source| AuditError {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Audit {
            sink: Sink::File {
                shared,
                thread: Mutex::new(Some(thread)),
            },
            unauthenticated: Mutex::default(),
        })
    }

    /// Whether records are reaching the audit file: false while it has fallen
    /// [`MAX_BACKLOG`] behind (a disk or mount that stopped taking writes), or while its last
    /// write failed (a full disk). Requests are then refused (503) instead of being served
    /// with no record in the file; the records of those refusals keep trying it, so serving
    /// resumes with the first write that succeeds.
    pub fn accepting(&self) -> bool {
        let Sink::File { shared, .. } = &self.sink else {
            return true;
        };
        shared.backlog.load(std::sync::atomic::Ordering::Relaxed) < MAX_BACKLOG
            && !shared.failing.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records one event. Never blocks on disk: past [`MAX_BACKLOG`] of records the writer has
    /// not taken, a record goes to the log instead.
    pub fn write(&self, record: Record) {
        let Sink::File { shared, .. } = &self.sink else {
            return log_record(&record);
        };
        // Serialised before taking the lock (into this thread's reusable line buffer), so the
        // lock is held only for a copy.
        LINE.with_borrow_mut(|line| {
            line.clear();
            if encode(&mut *line, &record).is_err() {
                return log_record(&record);
            }
            line.push(b'\n');
            let Ok(mut batch) = shared.pending.lock() else {
                return log_record(&record);
            };
            if batch.closed || batch.backlog() >= MAX_BACKLOG {
                drop(batch);
                return log_record(&record);
            }
            let was_empty = batch.bytes.is_empty();
            batch.bytes.extend_from_slice(line);
            shared.publish_backlog(&batch);
            drop(batch);
            if was_empty {
                shared.wake.notify_one();
            }
        });
    }

    /// Records a refusal before authentication from `source` (see [`Unauthenticated`]).
    pub fn write_unauthenticated(&self, source: std::net::IpAddr, record: Record) {
        let now = std::time::Instant::now();
        let Ok(mut guard) = self.unauthenticated.lock() else {
            return self.write(record);
        };
        // Each refused certificate is a kind of its own, not folded in with decoys refused for
        // the same reason (until the full-record budget is spent: then all are counted).
        let kind = reason_kind(record.reason.as_deref()).map(|k| match &record.presented {
            Some(p) => format!("{k} sha256 {}", p.fingerprint),
            None => k,
        });
        let mut key = (crate::net::source_of(source), record.rule.clone(), kind);
        let tallies = &mut *guard;
        let (window, full) = &mut tallies.full;
        if window.is_none_or(|w| now.duration_since(w) >= UNAUTHENTICATED_WINDOW) {
            *window = Some(now);
            *full = 0;
        }
        // A key whose window has closed starts afresh, so it is capped like a new one.
        let fresh = tallies
            .tallies
            .get(&key)
            .is_none_or(|t| now.duration_since(t.since) >= UNAUTHENTICATED_WINDOW);
        let mut closed = None;
        if fresh && (tallies.tallies.len() >= MAX_TALLIED || *full >= MAX_FULL_PER_WINDOW) {
            closed = tallies
                .tallies
                .remove(&key)
                .and_then(|mut t| summary_of(key.0, &mut t));
            key = (
                std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                None,
                None,
            );
        }
        // Written once the lock is let go: the summary of a closed window, then this refusal
        // in full when it opens a new window.
        let mut out = Vec::from_iter(closed);
        match tallies.tallies.get_mut(&key) {
            Some(t) if now.duration_since(t.since) < UNAUTHENTICATED_WINDOW => {
                t.repeated += 1;
                t.latest = Some(record);
            }
            open => {
                out.extend(open.and_then(|t| summary_of(key.0, t)));
                out.push(record);
                tallies.tallies.insert(
                    key,
                    Tally {
                        since: now,
                        repeated: 0,
                        latest: None,
                    },
                );
                *full += 1;
            }
        }
        drop(guard);
        for record in out {
            self.write(record);
        }
    }

    /// Writes the summaries of windows that have closed (all of them when `all`), and forgets
    /// those tallies.
    pub fn flush_unauthenticated(&self, all: bool) {
        let now = std::time::Instant::now();
        let done: Vec<Record> = {
            let Ok(mut tallies) = self.unauthenticated.lock() else {
                return;
            };
            let mut done = Vec::new();
            tallies.tallies.retain(|(source, _, _), t| {
                if !all && now.duration_since(t.since) < UNAUTHENTICATED_WINDOW {
                    return true;
                }
                done.extend(summary_of(*source, t));
                false
            });
            done
        };
        for record in done {
            self.write(record);
        }
    }

    /// Drains and flushes every pending record (tallies included); later records go to the log.
    pub fn close(&self) {
        self.flush_unauthenticated(true);
        if let Sink::File { shared, thread } = &self.sink {
            if let Ok(mut batch) = shared.pending.lock() {
                batch.closed = true;
            }
            shared.wake.notify_one();
            if let Some(handle) = thread.lock().ok().and_then(|mut t| t.take()) {
                // A writer stuck in a write that never returns (a hung mount) must not keep the
                // process from exiting: what it has not taken goes to the log instead.
                let deadline = std::time::Instant::now() + CLOSE_WAIT;
                while !handle.is_finished() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if handle.is_finished() {
                    let _ = handle.join();
                } else if let Ok(mut batch) = shared.pending.lock() {
                    tracing::error!(target: "dockgate::audit", in_flight = batch.in_flight, "audit file write has not returned in {CLOSE_WAIT:?}; exiting without it, the queued records follow in the log");
                    for line in String::from_utf8_lossy(&std::mem::take(&mut batch.bytes)).lines() {
                        tracing::info!(target: "dockgate::audit", "{line}");
                    }
                }
            }
        }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_loop(shared: &Shared, mut file: impl Write) {
    let mut out = Vec::new();
    // A failed write may have left part of a line in the file: the next write ends it first,
    // so every later record stays a line of its own.
    let mut torn = false;
    loop {
        let closed = {
            let Ok(mut batch) = shared.pending.lock() else {
                return;
            };
            while batch.bytes.is_empty() && !batch.closed {
                batch = match shared.wake.wait(batch) {
                    Ok(b) => b,
                    Err(_) => return,
                };
            }
            if !batch.closed {
                // Let the batch fill a little before taking it.
                drop(batch);
                std::thread::sleep(BATCH_WINDOW);
                batch = match shared.pending.lock() {
                    Ok(b) => b,
                    Err(_) => return,
                };
            }
            std::mem::swap(&mut out, &mut batch.bytes);
            // Until this batch is on disk it still counts: a write that hangs keeps it.
            batch.in_flight = out.len();
            shared.publish_backlog(&batch);
            batch.closed
        };
        if !out.is_empty() {
            // A failed write may have left part of a line: the next batch starts on a new one.
            let mut written = if torn { file.write_all(b"\n") } else { Ok(()) };
            if written.is_ok() {
                let (wrote, result) = write_counting(&mut file, &out);
                torn = wrote > 0 && result.is_err();
                written = result;
            }
            shared
                .failing
                .store(written.is_err(), std::sync::atomic::Ordering::Relaxed);
            if let Err(e) = written {
                tracing::error!(target: "dockgate::audit", error = %e, "audit file write failed; the batch follows in the log");
                for line in String::from_utf8_lossy(&out).lines() {
                    tracing::info!(target: "dockgate::audit", "{line}");
                }
            }
            out.clear();
            if let Ok(mut batch) = shared.pending.lock() {
                batch.in_flight = 0;
                shared.publish_backlog(&batch);
            }
            // A backlog that grew while the disk was slow is not kept at its largest size.
            if out.capacity() > MAX_BACKLOG / 8 {
                out = Vec::new();
            }
        }
        if closed {
            let _ = file.flush();
            return;
        }
    }
}

/// `write_all` that says how much was written when it fails.
fn write_counting(file: &mut impl Write, buf: &[u8]) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < buf.len() {
        match file.write(&buf[done..]) {
            Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

/// The record of a source's refusals after the first in its window: the latest one, with the
/// count of them all.
fn summary_of(source: std::net::IpAddr, t: &mut Tally) -> Option<Record> {
    let mut r = t.latest.take()?;
    r.repeated = Some(t.repeated);
    let from = match source {
        s if s.is_unspecified() => {
            "from sources past the audit's limits (1,000 full records per window, 10,000 tallies)"
                .to_string()
        }
        std::net::IpAddr::V6(_) => format!("like this one from {source}/64"),
        _ => format!("like this one from {source}"),
    };
    r.reason = Some(format!(
        "{} more refusals before authentication {from} within {}s, this the latest: {}",
        t.repeated,
        UNAUTHENTICATED_WINDOW.as_secs(),
        r.reason.as_deref().unwrap_or("-")
    ));
    t.repeated = 0;
    Some(r)
}

fn log_record(record: &Record) {
    let mut json = Vec::new();
    match encode(&mut json, record) {
        Ok(()) => tracing::info!(target: "dockgate::audit", "{}", String::from_utf8_lossy(&json)),
        Err(e) => {
            tracing::error!(target: "dockgate::audit", error = %e, "audit record not serialisable")
        }
    }
}

/// A record as one line of JSON. Characters a reader's screen would not show as themselves
/// are written as `\u` escapes of four hex digits (the parsed text is the same): controls
/// (DEL and C1, which some terminals obey), format characters (bidirectional overrides and
/// isolates, which reorder what is shown as in "Trojan Source", zero-width and tag
/// characters), the other default ignorable code points (fillers, variation selectors), spaces
/// other than U+0020 and the Unicode line and paragraph separators. A CN, a path or a container name cannot make a line
/// read as something else.
pub fn encode(out: &mut Vec<u8>, record: &Record) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, Shown);
    record.serialize(&mut ser)
}

/// serde_json's compact formatter, escaping what [`encode`] says.
struct Shown;

/// Whether `c` is written escaped (see [`encode`]): Unicode 15's `Cc` past ASCII's, `Cf`, `Zl`,
/// `Zp`, `Zs` but the space, and `Default_Ignorable_Code_Point`, plus the blank braille
/// pattern.
fn unshown(c: char) -> bool {
    matches!(c,
        '\u{7f}'..='\u{a0}'
        | '\u{ad}'
        | '\u{34f}'
        | '\u{600}'..='\u{605}'
        | '\u{61c}'
        | '\u{6dd}'
        | '\u{70f}'
        | '\u{890}'..='\u{891}'
        | '\u{8e2}'
        | '\u{115f}'..='\u{1160}'
        | '\u{1680}'
        | '\u{17b4}'..='\u{17b5}'
        | '\u{180b}'..='\u{180f}'
        | '\u{2000}'..='\u{200f}'
        | '\u{2028}'..='\u{202f}'
        | '\u{205f}'..='\u{206f}'
        | '\u{2800}'
        | '\u{3000}'
        | '\u{3164}'
        | '\u{fe00}'..='\u{fe0f}'
        | '\u{feff}'
        | '\u{ffa0}'
        | '\u{fff0}'..='\u{fffb}'
        | '\u{110bd}'
        | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}'
        | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0000}'..='\u{e0fff}')
}

impl serde_json::ser::Formatter for Shown {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json has escaped the controls below U+0020 already.
        if fragment.bytes().all(|b| b < 0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if unshown(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Who {
        let mut who = Who {
            peer: "10.0.0.7:40000".into(),
            ..Who::default()
        };
        who.cn = Some("alice".into());
        who.fingerprint = Some("ab12".into());
        who.serial = Some("01".into());
        who.role = Some("dev".into());
        who
    }

    /// A file that takes `ok` writes, then takes half of one and fails every write after, until
    /// `healed` is set; everything taken is shared for the test to read.
    #[derive(Clone, Default)]
    struct Flaky {
        taken: Arc<Mutex<Vec<u8>>>,
        ok: Arc<std::sync::atomic::AtomicUsize>,
        healed: Arc<std::sync::atomic::AtomicBool>,
        partial: Arc<std::sync::atomic::AtomicBool>,
        failed: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            use std::sync::atomic::Ordering::SeqCst;
            let failing = self.ok.load(SeqCst) == 0 && !self.healed.load(SeqCst);
            if failing {
                // Half of the first write lands, then the disk is full.
                if self.partial.swap(true, SeqCst) {
                    self.failed.store(true, SeqCst);
                    return Err(io::Error::other("disk full"));
                }
                let half = buf.len() / 2;
                self.taken.lock().unwrap().extend_from_slice(&buf[..half]);
                return Ok(half);
            }
            let _ = self.ok.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
            self.taken.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn request_record(path: &str) -> Record {
        let mut r = Record::new("request", "10.0.0.7:40000".parse().unwrap());
        r.path = Some(path.into());
        r
    }

    #[test]
    fn a_record_carries_at_most_a_few_kib_of_each_text_a_peer_controls() {
        let long = format!("/containers/{}é/json", "a".repeat(300_000));
        let mut r = Record::new("request", "127.0.0.1:1".parse().unwrap());
        r.method = Some(Cow::Owned("A".repeat(400_000)));
        r.path = Some(long.as_str().into());
        r.reason = Some(format!("unknown route {long}"));
        r.warnings = vec![long.clone()];
        let line = serde_json::to_string(&r).unwrap();
        assert!(
            line.len() < 4 * MAX_FIELD_BYTES + MAX_TARGET_BYTES,
            "{} bytes",
            line.len()
        );
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        let path = back["path"].as_str().unwrap();
        assert!(path.starts_with("/containers/aaa"), "{path:.40}");
        assert!(path.ends_with(&format!("… [cut: {} bytes in all]", long.len())));
        // Short texts are untouched.
        r.path = Some("/_ping".into());
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains(r#""path":"/_ping""#), "{line:.200}");
    }

    #[test]
    fn refusal_kinds_keep_rustls_certificate_errors_apart_and_drop_peer_details() {
        for (reason, kind) in [
            ("peer sent no certificates", "peer sent no certificates"),
            (
                "invalid peer certificate: UnknownIssuer",
                "invalid peer certificate: UnknownIssuer",
            ),
            (
                "invalid peer certificate: certificate expired: verification time 1 (UNIX), but certificate is not valid after 0",
                "invalid peer certificate: certificate expired",
            ),
            (
                "invalid peer certificate: Other(OtherError(\"x\"))",
                "invalid peer certificate: Other",
            ),
            ("received fatal alert: BadCertificate", "received fatal alert"),
            ("received fatal alert: UnknownPSKIdentity", "received fatal alert"),
        ] {
            assert_eq!(reason_kind(Some(reason)).as_deref(), Some(kind), "{reason}");
        }
    }

    #[test]
    fn a_failed_write_leaves_no_torn_line_in_front_of_the_next_record() {
        use std::sync::atomic::Ordering::SeqCst;
        let file = Flaky::default();
        file.ok.store(1, SeqCst);
        let audit = Audit::with_writer(file.clone(), Path::new("flaky")).unwrap();
        let until = |done: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !done() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the writer did not get there"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        audit.write(request_record("/first"));
        until(&|| file.ok.load(SeqCst) == 0);
        audit.write(request_record("/torn"));
        until(&|| file.failed.load(SeqCst));
        // Nothing is served while the file fails…
        until(&|| !audit.accepting());
        file.healed.store(true, SeqCst);
        // …and the next record (a refusal's) that reaches it opens the gate again.
        audit.write(request_record("/after"));
        until(&|| audit.accepting());
        audit.close();
        let taken = String::from_utf8(file.taken.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = taken.lines().collect();
        assert_eq!(lines.len(), 3, "{taken}");
        assert!(lines[0].contains("/first"), "{taken}");
        assert!(
            serde_json::from_str::<serde_json::Value>(lines[1]).is_err(),
            "{taken}"
        );
        let after: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(after["path"], "/after");
    }

    /// A file whose writes block until released.
    struct Stuck(Arc<(Mutex<bool>, Condvar)>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, cv) = &*self.0;
            let mut released = lock.lock().unwrap();
            while !*released {
                released = cv.wait(released).unwrap();
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_audit_file_stops_accepting_at_the_backlog_limit_and_recovers() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let audit = Audit::with_writer(Stuck(gate.clone()), Path::new("stuck")).unwrap();
        assert!(audit.accepting());
        // About 1 MiB a record: many mutations of the most a field may carry.
        let big = || {
            let mut r = request_record("/big");
            r.mutations = vec!["x".repeat(MAX_FIELD_BYTES); 256];
            r
        };
        let mut sent = 0;
        while audit.accepting() {
            audit.write(big());
            sent += 1;
            assert!(sent < 1000, "never stopped accepting");
        }
        // The queue is bounded: the limit counts the batch being written too.
        assert!(sent <= MAX_BACKLOG / (256 * MAX_FIELD_BYTES) + 2, "{sent}");
        // The record of a refused request does not reopen the gate.
        audit.write(request_record("/refused"));
        assert!(!audit.accepting());
        let (lock, cv) = &*gate;
        *lock.lock().unwrap() = true;
        cv.notify_all();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !audit.accepting() {
            assert!(std::time::Instant::now() < deadline, "did not recover");
            audit.write(request_record("/probe"));
            std::thread::sleep(BATCH_WINDOW);
        }
        audit.close();
    }

    #[test]
    fn refusals_before_authentication_are_one_record_per_source_and_kind_plus_a_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(Some(&path)).unwrap();
        let refusal = |peer: &str| {
            let mut r = Record::new("handshake", peer.parse().unwrap());
            r.decision = "deny";
            r.rule = Some("tls".into());
            r.reason = Some("peer sent no certificates".into());
            r
        };
        let from = |ip: &str, r: Record| audit.write_unauthenticated(ip.parse().unwrap(), r);
        for port in 1000..1050 {
            from("10.0.0.1", refusal(&format!("10.0.0.1:{port}")));
        }
        from("10.0.0.2", refusal("10.0.0.2:1"));
        // Another kind of refusal from the same source is not folded into the first's count...
        let mut other = refusal("10.0.0.1:2");
        other.rule = Some("max-connections".into());
        from("10.0.0.1", other);
        // ...but a detail after the reason's head (an alert code) does not make a new kind.
        for (port, code) in [(3, 77), (4, 78)] {
            let mut alert = refusal(&format!("10.0.0.1:{port}"));
            alert.reason = Some(format!("received fatal alert: Unknown({code})"));
            from("10.0.0.1", alert);
        }
        // An IPv6 source is tallied by its /64.
        from("2001:db8::1", refusal("[2001:db8::1]:1"));
        from("2001:db8::2:3", refusal("[2001:db8::2:3]:1"));
        audit.close();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let full: Vec<_> = lines
            .iter()
            .filter(|l| l.get("repeated").is_none())
            .collect();
        let peers: Vec<_> = full.iter().map(|l| l["peer"].as_str().unwrap()).collect();
        let want = [
            "10.0.0.1:1000",
            "10.0.0.2:1",
            "10.0.0.1:2",
            "10.0.0.1:3",
            "[2001:db8::1]:1",
        ];
        assert_eq!(peers, want);
        assert_eq!(full[2]["rule"], "max-connections");
        let summaries: Vec<_> = lines
            .iter()
            .filter(|l| l.get("repeated").is_some())
            .collect();
        assert_eq!(summaries.len(), 3, "{lines:#?}");
        // A summary carries the latest refusal it counts.
        let of = |peer: &str| *summaries.iter().find(|l| l["peer"] == peer).unwrap();
        assert_eq!(of("10.0.0.1:1049")["repeated"], 49);
        assert_eq!(of("10.0.0.1:4")["repeated"], 1);
        assert_eq!(of("[2001:db8::2:3]:1")["repeated"], 1);
        let v6 = of("[2001:db8::2:3]:1")["reason"].as_str().unwrap();
        assert!(v6.contains("from 2001:db8::/64"), "{v6}");
        let reason = of("10.0.0.1:1049")["reason"].as_str().unwrap();
        assert!(
            reason
                .starts_with("49 more refusals before authentication like this one from 10.0.0.1"),
            "{reason}"
        );
    }

    #[test]
    fn each_refused_certificate_from_a_source_gets_a_full_record_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(Some(&path)).unwrap();
        let refusal = |port: u16, fingerprint: &str| {
            let mut r = Record::new("handshake", format!("10.0.0.1:{port}").parse().unwrap());
            r.decision = "deny";
            r.rule = Some("tls".into());
            r.reason = Some("invalid peer certificate: UnknownIssuer".into());
            r.presented = Some(Box::new(crate::tls::Refused {
                fingerprint: fingerprint.into(),
                subject: Some("CN=admin".into()),
                issuer: None,
                serial: None,
            }));
            r
        };
        // A forged admin certificate between decoys refused for the same reason.
        for (port, fingerprint) in [(1, "decoy"), (2, "forged"), (3, "decoy")] {
            audit.write_unauthenticated("10.0.0.1".parse().unwrap(), refusal(port, fingerprint));
        }
        audit.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let full: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|l| l.get("repeated").is_none())
            .collect();
        let seen: Vec<_> = full
            .iter()
            .map(|l| l["presented"]["fingerprint"].clone())
            .collect();
        assert_eq!(seen, ["decoy", "forged"], "{text}");
    }

    #[test]
    fn past_the_full_record_budget_refusals_are_counted_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(Some(&path)).unwrap();
        for n in 0..(MAX_FULL_PER_WINDOW as u32 + 100) {
            let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            let mut r = Record::new("connection", std::net::SocketAddr::new(ip, 1));
            r.decision = "deny";
            r.rule = Some("networks".into());
            r.reason = Some("source network not allowed".into());
            audit.write_unauthenticated(ip, r);
        }
        audit.close();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // The budget, the first refusal past it, and one summary of the other 99.
        assert_eq!(lines.len(), MAX_FULL_PER_WINDOW + 2);
        let summary = lines.last().unwrap();
        assert_eq!(summary["repeated"], 99);
        let reason = summary["reason"].as_str().unwrap();
        assert!(reason.contains("past the audit's limits"), "{reason}");
        assert_eq!(summary["peer"], "10.0.4.75:1");
    }

    /// The line `Audit::write` appends, with the clock fields zeroed.
    fn line(mut r: Record) -> String {
        r.ts_ms = 0;
        r.duration_us = 0;
        let mut out = Vec::new();
        encode(&mut out, &r).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn characters_that_would_show_as_something_else_are_escaped_and_read_back_the_same() {
        let mut r = Record::about("request", &alice());
        let path = "/containers/\u{202e}txt.exe/json?\u{9b}31m=\u{2028}é\u{200b}ok\u{7f}\u{3164}\u{e0041}\u{fe0f}\u{a0}";
        r.path = Some(path.into());
        let written = line(r);
        let escaped = r#"/containers/\u202etxt.exe/json?\u009b31m=\u2028é\u200bok\u007f\u3164\udb40\udc41\ufe0f\u00a0"#;
        assert!(
            written.contains(&format!(r#""path":"{escaped}""#)),
            "{written}"
        );
        assert!(!written.chars().any(unshown), "{written}");
        let back: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(back["path"], path);
    }

    #[test]
    fn a_request_record_says_who_what_and_where_in_plain_json_fields() {
        let endpoint = crate::route::classify("POST", "/v1.41/containers/create").unwrap();
        let mut r = Record::about("request", &alice());
        r.method = Some(method_name(&hyper::Method::POST));
        r.path = Some("/v1.41/containers/create?name=\"é\\".into());
        r.route = Some(endpoint.route);
        r.group = Some(endpoint.route.group.as_str());
        r.api_version = endpoint.version;
        r.decision = "allow";
        r.status = Some(201);
        assert_eq!(
            line(r),
            r#"{"ts_ms":0,"kind":"request","peer":"10.0.0.7:40000","cn":"alice","fingerprint":"ab12","serial":"01","role":"dev","method":"POST","path":"/v1.41/containers/create?name=\"é\\","route":"POST /containers/create","group":"containers-write","api_version":"1.41","decision":"allow","status":201,"duration_us":0}"#
        );
    }

    #[test]
    fn a_request_refused_before_routing_has_no_route_fields() {
        let mut r = Record::about("request", &alice());
        r.method = Some(method_name(&hyper::Method::GET));
        r.path = Some("/../etc".into());
        r.decision = "deny";
        r.rule = Some("path".into());
        r.status = Some(400);
        assert_eq!(
            line(r),
            r#"{"ts_ms":0,"kind":"request","peer":"10.0.0.7:40000","cn":"alice","fingerprint":"ab12","serial":"01","role":"dev","method":"GET","path":"/../etc","decision":"deny","rule":"path","status":400,"duration_us":0}"#
        );
    }

    #[test]
    fn a_handshake_record_names_only_the_peer() {
        let mut r = Record::new("handshake", "[::1]:5000".parse().unwrap());
        r.decision = "deny";
        r.rule = Some("tls".into());
        r.reason = Some("no client certificate".into());
        assert_eq!(
            line(r),
            r#"{"ts_ms":0,"kind":"handshake","peer":"[::1]:5000","decision":"deny","rule":"tls","reason":"no client certificate","duration_us":0}"#
        );
    }

    #[test]
    fn who_leaves_out_what_the_certificate_and_policy_do_not_give() {
        let identity = Identity {
            cn: None,
            o: Vec::new(),
            ou: Vec::new(),
            san_dns: Vec::new(),
            san_email: Vec::new(),
            san_uri: Vec::new(),
            serial: "0a".into(),
            fingerprint: "ff00".into(),
            not_after: 0,
            client_ca: Vec::new(),
        };
        let who = Who::of("127.0.0.1:1".parse().unwrap(), &identity, None);
        let mut r = Record::about("request", &who);
        r.decision = "deny";
        assert_eq!(
            line(r),
            r#"{"ts_ms":0,"kind":"request","peer":"127.0.0.1:1","fingerprint":"ff00","serial":"0a","decision":"deny","duration_us":0}"#
        );
    }

    #[test]
    fn a_nonstandard_method_is_recorded_as_sent() {
        let m = hyper::Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_name(&m), "PURGE");
        assert!(matches!(
            method_name(&hyper::Method::GET),
            Cow::Borrowed("GET")
        ));
    }
}
