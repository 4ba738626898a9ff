//! The life of one request, top to bottom: role → source network → route → policy (reading the
//! body only when a rule needs it) → forward or upgrade → respond → audit.
//!
//! It must not hold protocol details of its own: classification is `route`, decisions are
//! `policy`, bytes on the wire are `forward`/`upgrade`, error responses are `reject`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use rustls::ServerConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{method_name, Audit, Record, Who};
use crate::config::Config;
use crate::forward::{Returning, Upstream};
use crate::identity::Identity;
use crate::policy::baseline::{Baseline, Unreadable};
use crate::policy::inspect;
use crate::policy::inspect::Json;
use crate::policy::query::Query;
use crate::policy::{self, Decision, RequestView, Target};
use crate::reject::Refusal;
use crate::stall::BodyStall;
use crate::{route, upgrade};
use compact_str::ToCompactString;

/// The body of every response dockgate sends: upstream's stream, or bytes of its own.
pub type Body = Either<Returning, Full<Bytes>>;

/// Everything a request needs, shared by all connections.
pub struct State {
    pub config: Config,
    pub tls: Arc<ServerConfig>,
    /// The Docker socket (worker threads use their own idle lists of it, see `Conn`).
    pub upstream: Upstream,
    pub audit: Audit,
    /// Hijacked streams outlive their HTTP connection; they are tracked so shutdown can wait
    /// for them through the grace period...
    pub hijacks: TaskTracker,
    /// ...and then cut them.
    pub stop_hijacks: CancellationToken,
}

/// What is known about a connection once its handshake is done.
#[derive(Debug)]
pub struct Conn {
    pub peer: SocketAddr,
    pub identity: Identity,
    /// The peer, the identity and the role it maps to (resolved once per connection), as audit
    /// records carry them.
    pub who: Who,
    /// The Docker socket, with the idle upstream connections of this connection's worker.
    pub upstream: Upstream,
    /// The connection's place under the connection limits; a hijacked stream takes it over, so
    /// a stream counts against them for as long as it lives.
    pub slot: std::sync::Mutex<Option<crate::server::Slot>>,
}

/// Serves one request and records it in the audit log, whatever happens: also when the client
/// goes away (or the connection is cut at shutdown) before the response, which drops this
/// future mid-way; the request may already be with dockerd then.
pub async fn handle(state: &Arc<State>, conn: &Conn, req: Request<Incoming>) -> Response<Body> {
    let mut record = Record::about("request", &conn.who);
    record.method = Some(method_name(req.method()));
    record.path = Some(req.uri().to_compact_string());
    let mut audited = Audited::new(&state.audit, record);
    // hyper sends `100 Continue` when the body is first read, and only while no response has
    // started: a client refused before that would never send the body a linger waits for.
    let awaits_continue = req
        .headers()
        .get(hyper::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (parts, body) = req.into_parts();
    let mut unread = Some(body);
    let record = audited.record();
    let mut read_started = false;
    let response = match serve(state, conn, parts, &mut unread, &mut read_started, record).await {
        Ok(resp) => resp,
        Err(refusal) => {
            if let Some(body) = unread.filter(|_| !awaits_continue || read_started) {
                linger(body);
            }
            // A failure after the policy allowed the request (dockerd unreachable, a bad
            // upstream answer, a client that stopped sending its body) keeps the grant that let
            // it through.
            if record.decision == "allow" {
                record.decision = "error";
            } else {
                record.decision = if refusal.status().is_client_error() {
                    "deny"
                } else {
                    "error"
                };
                record.rule = refusal.rule();
            }
            record.reason = Some(refusal.to_string());
            refusal.to_response()
        }
    };
    audited.finish(response.status().as_u16());
    response
}

/// A request's audit record until it is written: by [`Audited::finish`] with the response
/// status, or, when the request's future is dropped first, by `Drop` saying so.
struct Audited<'a> {
    audit: &'a Audit,
    record: Option<Record>,
    started: Instant,
}

impl<'a> Audited<'a> {
    fn new(audit: &'a Audit, record: Record) -> Audited<'a> {
        Audited {
            audit,
            record: Some(record),
            started: Instant::now(),
        }
    }

    fn record(&mut self) -> &mut Record {
        self.record.get_or_insert_with(Record::default)
    }

    fn finish(&mut self, status: u16) {
        if let Some(mut record) = self.record.take() {
            record.status = Some(status);
            record.duration_us = self.started.elapsed().as_micros();
            self.audit.write(record);
        }
    }
}

impl Drop for Audited<'_> {
    fn drop(&mut self) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        record.duration_us = self.started.elapsed().as_micros();
        let cut =
            "the client went away, or the connection was cut at shutdown, before the response";
        record.reason = Some(match (record.decision, record.reason.take()) {
            ("allow", _) => {
                format!("{cut}; the request was forwarded and dockerd may have acted on it")
            }
            (_, Some(reason)) => format!("{cut}; {reason}"),
            (_, None) => cut.to_string(),
        });
        if record.decision != "allow" && record.decision != "deny" {
            record.decision = "cancelled";
        }
        self.audit.write(record);
    }
}

/// How much of a refused request's unread body is read and discarded before the connection
/// closes, and for how long: closing with unread data makes the kernel reset the connection,
/// and a client still uploading (`docker build`, `docker cp`) would see the reset instead of
/// the refusal.
const LINGER_BYTES: usize = 16 * 1024 * 1024;
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and discards what is left of a refused request's body, within the linger bounds.
fn linger(body: Incoming) {
    use http_body_util::BodyExt;
    tokio::spawn(async move {
        let mut body = body;
        let mut seen = 0usize;
        let drain = async {
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map_or(0, |d| d.len());
                if seen > LINGER_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    });
}

/// `unread` holds the request body until something reads or forwards it; a body still there
/// when a refusal comes back is drained by [`linger`]. `read_started` is set once the policy
/// starts reading the body (hyper has then asked an `Expect: 100-continue` client for it).
async fn serve(
    state: &Arc<State>,
    conn: &Conn,
    mut parts: hyper::http::request::Parts,
    unread: &mut Option<Incoming>,
    read_started: &mut bool,
    record: &mut Record,
) -> Result<Response<Body>, Refusal> {
    // A keep-alive connection outlives the handshake that checked the certificate's dates.
    if unix_now() > conn.identity.not_after {
        return Err(Refusal::CertificateExpired {
            name: conn.identity.display_name().to_string(),
        });
    }
    let policy = &state.config.policy;
    let role = conn
        .who
        .role
        .as_deref()
        .and_then(|r| policy.role(r))
        .ok_or_else(|| Refusal::NoRole {
            name: conn.identity.display_name().to_string(),
            fingerprint: conn.identity.fingerprint.clone(),
        })?;
    if !role.networks.allows(conn.peer.ip()) {
        return Err(Refusal::Network {
            role: role.name.clone(),
            peer: conn.peer.ip().to_canonical(),
        });
    }
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        return Err(Refusal::BadRequest(
            "absolute-form request targets are not accepted; send the path only".into(),
        ));
    }
    let endpoint = route::classify(parts.method.as_str(), parts.uri.path())?;
    record.route = Some(endpoint.route);
    record.group = Some(endpoint.route.group.as_str());
    record.api_version = endpoint.version;

    let inspects = policy.inspects(role);
    let query = if inspects {
        check_form_encoding(&parts.headers)?;
        Query::parse(parts.uri.query()).map_err(Unreadable::from)?
    } else {
        Query::default()
    };
    let upgrade = upgrade::requested(&parts.headers);
    let client_upgrade = upgrade
        .as_ref()
        .and_then(|_| parts.extensions.remove::<hyper::upgrade::OnUpgrade>());
    if upgrade.is_some() {
        if !endpoint.route.hijacks() {
            return Err(Refusal::BadRequest(format!(
                "{} does not switch protocols; send it without Connection: Upgrade",
                endpoint.route
            )));
        }
        if client_upgrade.is_none() {
            return Err(Refusal::BadRequest(
                "switching protocols needs HTTP/1.1; send the request as HTTP/1.1".into(),
            ));
        }
    }
    // Only bodies a rule must read are buffered (up to the limit); everything else streams.
    let bytes = if policy.reads_body(role, &endpoint) {
        let limits = state.config.limits;
        check_json_headers(&parts, limits.max_body_bytes)?;
        *read_started = true;
        let read = read_json_body(&parts, unread, limits.max_body_bytes);
        let bytes = tokio::time::timeout(limits.body_read_timeout, read)
            .await
            .map_err(|_| {
                Refusal::BadRequest(format!(
                    "the request body did not arrive within {}s (limits.body_read_timeout_secs)",
                    limits.body_read_timeout.as_secs()
                ))
            })??;
        Some(bytes)
    } else {
        None
    };
    let json = match &bytes {
        Some(b) => inspect::parse_optional(b)?,
        None => None,
    };
    let named_volumes = match &json {
        Some(body) if role.has_baseline() && endpoint.route.template == "/containers/create" => {
            Baseline::named_volumes(body)?
        }
        _ => Vec::new(),
    };
    let view = RequestView {
        endpoint: &endpoint,
        query: &query,
        body: json,
    };
    let mut permit = match policy.decide(role, view)? {
        Decision::Allow(permit) => permit,
        Decision::Deny(denial) => return Err(Refusal::Denied(denial)),
    };
    // Nor mounts a named volume created with options it could not have used.
    for name in named_volumes {
        let path = format!(
            "/volumes/{}",
            percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
        );
        let Some(bytes) = conn.upstream.get_json(&path, LOOKUP_LIMIT).await? else {
            continue;
        };
        let inspect = inspect::parse_optional(&bytes)?.unwrap_or(Json::Null);
        match policy.decide_volume(role, &name, &inspect)? {
            Ok(warnings) => permit.warnings.extend(warnings),
            Err(denial) => return Err(Refusal::Denied(denial)),
        }
    }
    // A baseline role acts only on containers it could have created itself.
    if let Some(target) = policy::target_of(&endpoint).filter(|_| role.has_baseline()) {
        if let Some((name, inspect)) = look_up(&conn.upstream, target).await? {
            match policy.decide_target(role, &name, &inspect)? {
                Ok(warnings) => permit.warnings.extend(warnings),
                Err(denial) => return Err(Refusal::Denied(denial)),
            }
        }
    }
    record.decision = "allow";
    record.rule = Some(permit.grant);
    record.warnings = permit.warnings;
    record.mutations = permit.mutations;
    // The bytes forwarded are the bytes evaluated, or the re-serialised evaluated value.
    let upstream_body = match (bytes, permit.rewritten) {
        (Some(_), Some(rewritten)) => Either::Right(Full::new(Bytes::from(rewritten.to_vec()))),
        (Some(bytes), None) => Either::Right(Full::new(bytes)),
        (None, _) => match unread.take() {
            Some(body) => Either::Left(BodyStall::new(body, state.config.limits.stall_timeout)),
            None => Either::Right(Full::new(Bytes::new())),
        },
    };
    let resp = conn.upstream.send(parts, upstream_body, upgrade).await?;
    if resp.status() == hyper::StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(Refusal::UpstreamProtocol(
                "it switched protocols on a request that did not ask to",
            ));
        };
        record.upgraded = true;
        let mut resp = resp;
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        let slot = conn.slot.lock().ok().and_then(|mut slot| slot.take());
        // The stream's end is a record of its own: how long it lasted, what crossed it, and how
        // it ended (the request's record is written when the 101 goes out).
        let mut end = Record::about("stream", &conn.who);
        end.method = record.method.clone();
        end.path = record.path.clone();
        end.route = record.route;
        end.group = record.group;
        end.decision = "allow";
        end.rule = record.rule.clone();
        end.upgraded = true;
        let tracker = state.hijacks.clone();
        let state = state.clone();
        tracker.spawn(async move {
            let _slot = slot;
            let started = Instant::now();
            let stop = state.stop_hijacks.clone();
            match upgrade::splice(client_upgrade, upstream_upgrade, stop).await {
                Ok((up, down)) => {
                    end.bytes_in = Some(up);
                    end.bytes_out = Some(down);
                    end.reason = Some("closed".into());
                }
                Err(e) => end.reason = Some(format!("ended: {e}")),
            }
            end.duration_us = started.elapsed().as_micros();
            state.audit.write(end);
        });
        return Ok(crate::forward::to_client(resp));
    }
    Ok(crate::forward::to_client(resp))
}

/// Most bytes of an inspect answer read for a target check.
const LOOKUP_LIMIT: usize = 4 << 20;

/// dockerd's inspect of the container `target` names (for an exec, of its container), with the
/// name to give in messages; `None` when there is no such object (dockerd will answer 404 to
/// the request itself).
async fn look_up(
    upstream: &Upstream,
    target: Target<'_>,
) -> Result<Option<(String, Json)>, Refusal> {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let container = match target {
        Target::Container(id) => id.to_string(),
        Target::Exec(id) => {
            let path = format!("/exec/{}/json", utf8_percent_encode(id, NON_ALPHANUMERIC));
            let Some(bytes) = upstream.get_json(&path, LOOKUP_LIMIT).await? else {
                return Ok(None);
            };
            let exec = inspect::parse_optional(&bytes)?.unwrap_or(Json::Null);
            match exec.cursor().field("ContainerID")?.as_str()? {
                Some(c) if !c.is_empty() => c.to_string(),
                _ => {
                    return Err(Refusal::UpstreamProtocol(
                        "its exec inspect names no container",
                    ))
                }
            }
        }
    };
    let path = format!(
        "/containers/{}/json",
        utf8_percent_encode(&container, NON_ALPHANUMERIC)
    );
    let Some(bytes) = upstream.get_json(&path, LOOKUP_LIMIT).await? else {
        return Ok(None);
    };
    let json = inspect::parse_optional(&bytes)?.unwrap_or(Json::Null);
    Ok(Some((container, json)))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// dockerd's `r.FormValue` also reads `application/x-www-form-urlencoded` bodies as query
/// parameters; a request whose parameters the policy reads must not carry one.
fn check_form_encoding(headers: &hyper::HeaderMap) -> Result<(), Refusal> {
    let mut types = headers.get_all(hyper::header::CONTENT_TYPE).iter();
    let first = types.next();
    if types.next().is_some() {
        return Err(Refusal::BadRequest(
            "more than one Content-Type header; send exactly one".into(),
        ));
    }
    let Some(ct) = first else { return Ok(()) };
    // Go's mime.ParseMediaType returns the media type even when the parameters after it are
    // invalid, and dockerd ignores that error: so judge the part before ';' whatever follows,
    // and refuse what cannot be read as text at all.
    let media = media_type(ct).ok_or_else(|| {
        Refusal::BadRequest("Content-Type is not visible ASCII; send a plain media type".into())
    })?;
    if media != "application/x-www-form-urlencoded" && media != "multipart/form-data" {
        return Ok(());
    }
    Err(Refusal::BadRequest(format!(
        "Content-Type {media} is refused: dockerd would read the body as query parameters"
    )))
}

/// The lowercased media type of a Content-Type header (`application/json; charset=utf-8` →
/// `application/json`); `None` when the header is not visible ASCII.
fn media_type(v: &hyper::header::HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    Some(
        s.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// The checks on a JSON body's headers, made before any of it is read (so a refusal leaves the
/// body to [`linger`]): no compression, a declared length within the limit.
fn check_json_headers(parts: &hyper::http::request::Parts, limit: usize) -> Result<(), Refusal> {
    use hyper::header::{CONTENT_ENCODING, CONTENT_LENGTH};
    if let Some(enc) = parts.headers.get(CONTENT_ENCODING) {
        if !enc.as_bytes().eq_ignore_ascii_case(b"identity") {
            return Err(Refusal::BadRequest(format!(
                "Content-Encoding {:?} is refused on a body dockgate must read; send it uncompressed",
                String::from_utf8_lossy(enc.as_bytes())
            )));
        }
    }
    if let Some(len) = parts.headers.get(CONTENT_LENGTH) {
        let declared = std::str::from_utf8(len.as_bytes())
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(Refusal::TooLarge { limit });
        }
    }
    Ok(())
}

/// Buffers a JSON request body the policy must read: refuses non-JSON content types and bodies
/// that grow past the limit. The body stays in `unread` until it has been read whole, so a
/// refusal midway (too large, too slow) leaves the rest to [`linger`] and the client sees the
/// refusal rather than a reset.
async fn read_json_body(
    parts: &hyper::http::request::Parts,
    unread: &mut Option<Incoming>,
    limit: usize,
) -> Result<Bytes, Refusal> {
    use http_body_util::BodyExt;
    use hyper::header::CONTENT_TYPE;
    let Some(body) = unread.as_mut() else {
        return Err(Refusal::BadRequest(
            "the request body was already taken".into(),
        ));
    };
    // Most bodies come in one frame, kept as it is; later frames are appended to a copy.
    let mut first = Bytes::new();
    let mut more = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Refusal::BadRequest(format!(
                "the request body could not be read completely: {e}"
            ))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let held = if more.is_empty() {
            first.len()
        } else {
            more.len()
        };
        if held + data.len() > limit {
            return Err(Refusal::TooLarge { limit });
        }
        if held == 0 {
            first = data;
        } else {
            if more.is_empty() {
                more.extend_from_slice(&std::mem::take(&mut first));
            }
            more.extend_from_slice(&data);
        }
    }
    *unread = None;
    let bytes = if more.is_empty() {
        first
    } else {
        more.freeze()
    };
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        let types: Vec<_> = parts.headers.get_all(CONTENT_TYPE).iter().collect();
        let json = types.len() == 1 && media_type(types[0]).as_deref() == Some("application/json");
        if !json {
            return Err(Refusal::BadRequest(
                "this route takes a JSON body: send exactly one Content-Type: application/json"
                    .into(),
            ));
        }
    }
    Ok(bytes)
}
