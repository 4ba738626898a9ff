//! The audit log: one JSON record per request (and per refused handshake) saying who did what,
//! from where, and why it was allowed or refused.
//!
//! It must not decide anything; it writes what the request path hands it, and never drops a
//! record: writes go to a dedicated thread through an unbounded channel that is drained and
//! flushed before shutdown completes.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// One audit record. Optional fields are omitted when unknown (e.g. a request refused before
/// its route was classified).
#[derive(Debug, Default, Serialize)]
pub struct Record {
    /// Unix time in milliseconds.
    pub ts_ms: u128,
    pub kind: &'static str,
    pub peer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `allow`, `deny`, `error`.
    pub decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Rules in warn mode (or audit-only) that would have denied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Changes the policy made to the request (injected defaults).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mutations: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub upgraded: bool,
    pub duration_us: u128,
}

impl Record {
    pub fn new(kind: &'static str, peer: SocketAddr) -> Record {
        Record {
            ts_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            kind,
            peer: peer.to_string(),
            decision: "error",
            ..Record::default()
        }
    }
}

/// Where audit records go.
pub struct Audit {
    sink: Sink,
}

enum Sink {
    /// Through `tracing`, target `dockgate::audit`.
    Log,
    /// JSON lines appended to a file by a writer thread.
    File {
        tx: Mutex<Option<mpsc::Sender<Record>>>,
        thread: Mutex<Option<JoinHandle<()>>>,
    },
}

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
            return Ok(Audit { sink: Sink::Log });
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| AuditError {
                path: path.to_path_buf(),
                source,
            })?;
        let (tx, rx) = mpsc::channel::<Record>();
        let thread = std::thread::Builder::new()
            .name("dockgate-audit".into())
            .spawn(move || write_loop(rx, BufWriter::new(file)))
            .map_err(|source| AuditError {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Audit {
            sink: Sink::File {
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
            },
        })
    }

    /// Records one event. Never blocks on disk.
    pub fn write(&self, record: Record) {
        match &self.sink {
            Sink::Log => log_record(&record),
            Sink::File { tx, .. } => {
                let sent = match tx.lock() {
                    Ok(guard) => match guard.as_ref() {
                        Some(tx) => tx.send(record).map_err(|e| e.0),
                        None => Err(record),
                    },
                    Err(_) => Err(record),
                };
                // The writer is gone (shutdown, or a disk error): keep the record in the log.
                if let Err(record) = sent {
                    log_record(&record);
                }
            }
        }
    }

    /// Drains and flushes every pending record; later records go to the log.
    pub fn close(&self) {
        if let Sink::File { tx, thread } = &self.sink {
            if let Ok(mut tx) = tx.lock() {
                tx.take();
            }
            if let Some(handle) = thread.lock().ok().and_then(|mut t| t.take()) {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_loop(rx: mpsc::Receiver<Record>, mut out: BufWriter<std::fs::File>) {
    while let Ok(first) = rx.recv() {
        let mut pending = Some(first);
        // Write everything queued, then flush once.
        while let Some(record) = pending.take().or_else(|| rx.try_recv().ok()) {
            if let Err(e) = write_line(&mut out, &record) {
                tracing::error!(target: "dockgate::audit", error = %e, "audit file write failed; record follows in the log");
                log_record(&record);
            }
        }
        if let Err(e) = out.flush() {
            tracing::error!(target: "dockgate::audit", error = %e, "audit file flush failed");
        }
    }
}

fn write_line(out: &mut impl Write, record: &Record) -> io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")
}

fn log_record(record: &Record) {
    match serde_json::to_string(record) {
        Ok(json) => tracing::info!(target: "dockgate::audit", "{json}"),
        Err(e) => {
            tracing::error!(target: "dockgate::audit", error = %e, "audit record not serialisable")
        }
    }
}
