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
use crate::policy::{self, Decision, Existing, RequestView, Target};
use crate::reject::Refusal;
use crate::stall::BodyStall;
use crate::{route, upgrade};
use compact_str::ToCompactString;

/// The body of every response dockgate sends: upstream's stream, or bytes of its own.
pub type Body = Either<Returning, Full<Bytes>>;

/// Everything a request needs, shared by all connections.
pub struct State {
    pub config: Config,
    pub tls: crate::tls::Tls,
    /// The Docker socket (worker threads use their own idle lists of it, see `Conn`).
    pub upstream: Upstream,
    pub audit: Audit,
    /// Hijacked streams outlive their HTTP connection; they are tracked so shutdown can wait
    /// for them through the grace period...
    pub hijacks: TaskTracker,
    /// ...and then cut them.
    pub stop_hijacks: CancellationToken,
    /// The bytes bodies being read for the policy may hold, all connections together, and each
    /// client certificate's share of them.
    pub bodies: crate::budget::BodyBudget,
    /// Which containers join which containers' namespaces, as seen so far.
    pub joins: crate::joins::Joins,
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
            record.reason = Some(refusal.message());
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
    if !state.audit.accepting() {
        return Err(Refusal::AuditUnavailable);
    }
    // A keep-alive connection outlives the handshake that checked the certificate's dates.
    // When the certificate stops being valid: what this request has under way ends then.
    let expiry = conn.identity.expiry();
    if tokio::time::Instant::now() >= expiry {
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
    let target = parts.uri.path_and_query().map_or(0, |t| t.as_str().len());
    if target > crate::audit::MAX_TARGET_BYTES {
        return Err(Refusal::TargetTooLong {
            len: target,
            limit: crate::audit::MAX_TARGET_BYTES,
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

    let query = if policy.reads_query(role, endpoint.route) {
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
    // Their bytes count against the budget all connections share until this request is done.
    let mut body_share = None;
    let bytes = if policy.reads_body(role, &endpoint) {
        let limits = state.config.limits;
        let declared = check_json_headers(&parts, limits.max_body_bytes)?;
        *read_started = true;
        let read = read_json_body(
            &parts,
            unread,
            Sizes {
                declared,
                limit: limits.max_body_bytes,
            },
            &state.bodies,
            body_share.insert(state.bodies.share(certificate_of(conn))),
        );
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
    // What the parsed body holds besides its bytes counts against the budget too.
    if let (Some(parsed), Some(share)) = (&json, body_share.as_mut()) {
        state.bodies.take_parsed(share, parsed.overhead())?;
    }
    // The container a network connect or disconnect names in its body.
    let body_container = match &json {
        Some(body)
            if role.has_baseline()
                && matches!(
                    endpoint.route.template,
                    "/networks/{id}/connect" | "/networks/{id}/disconnect"
                ) =>
        {
            body.cursor()
                .field("Container")
                .and_then(|c| c.as_str())
                .map_err(Unreadable::from)?
                .map(str::to_string)
        }
        _ => None,
    };
    // The existing volumes, networks and linked containers a baseline create (or a network
    // connect) names, judged after the request itself.
    let named = Named::of(json.as_ref(), role, &endpoint)?;
    // Kept to forward with full IDs in place of the names given (connect, links), when the
    // policy does not rewrite the body itself.
    let mut kept_body = (body_container.is_some() || !named.links.is_empty())
        .then(|| json.clone())
        .flatten();
    // The user an exec create asks for ("": none, the container's).
    let exec_user = match (endpoint.route.template, &json) {
        ("/containers/{id}/exec", Some(body)) => Some(
            body.cursor()
                .field("User")
                .and_then(|u| u.as_str())
                .map_err(Unreadable::from)?
                .unwrap_or("")
                .to_string(),
        ),
        ("/containers/{id}/exec", None) => Some(String::new()),
        _ => None,
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
    // dockerd reads a start body (over 7 bytes, or chunked) as a HostConfig that replaces the
    // container's settings (API < 1.24; an error from 1.24): for no role, so that what was
    // judged of a container (its namespaces, mounts) stays what it is. (After the grant: a role
    // that may not start containers at all is told so, 403.)
    if endpoint.route.template == "/containers/{id}/start" && carries_body(&parts.headers) {
        return Err(Refusal::BadRequest(
            "a container start body is a HostConfig on old API versions, which would replace the settings the container was judged by; send no body and put settings in the create request".into(),
        ));
    }
    let judge = Judge {
        policy,
        role,
        upstream: &conn.upstream,
        joins: &state.joins,
        lookup_limit: LOOKUP_LIMIT.max(state.config.limits.max_body_bytes.saturating_mul(8)),
        lookup_timeout: state.config.limits.lookup_timeout,
        lookups: std::sync::atomic::AtomicUsize::new(0),
    };
    // A baseline role mounts only named volumes, joins only networks, and links only to
    // containers it could have created itself; links go on by full ID.
    named.check_counts()?;
    // (A create names them in its body: what is missing there is a 400, not a 404.)
    let (warnings, links) =
        judge
            .named(&named)
            .await
            .map_err(|e| match endpoint.route.template {
                "/containers/create" => e.named_in_body(),
                _ => e,
            })?;
    permit.warnings.extend(warnings);
    if !links.is_empty() {
        let Some(mut body) = permit.rewritten.take().or(kept_body.take()) else {
            return Err(Refusal::BadRequest(
                "the create body could not be re-read".into(),
            ));
        };
        permit.mutations.extend(
            links
                .iter()
                .map(|l| format!("link {:?} named to dockerd as {:?}", l.named, l.by_id)),
        );
        with_links(&mut body, links)?;
        permit.rewritten = Some(body);
    }
    // ...and acts only on containers (and execs) it could have created itself. The request is
    // sent on with the container's full ID wherever it named one (path, `container=`, the
    // connect body), so dockerd acts on the container judged, whatever the name or ID prefix
    // resolves to by then.
    // (A repeated `container=` is refused, as every parameter the policy reads: dockerd would
    // commit the first.)
    let commit = if endpoint.route.template == "/commit" {
        query
            .get("container")
            .map_err(Unreadable::from)?
            .filter(|c| !c.is_empty())
            .map(Target::Container)
    } else {
        None
    };
    let connected = body_container.as_deref().map(Target::Container);
    if let Some(target) = policy::target_of(&endpoint)
        .or(commit)
        .or(connected)
        .filter(|_| role.has_baseline())
    {
        let starts = matches!(
            endpoint.route.template,
            "/containers/{id}/start" | "/containers/{id}/restart"
        );
        // Requests that run or reach processes in the container: they reach the processes of
        // whatever shares its namespaces too.
        let inside = starts
            || matches!(
                endpoint.route.template,
                "/containers/{id}/exec"
                    | "/containers/{id}/attach"
                    | "/containers/{id}/attach/ws"
                    | "/exec/{id}/start"
            );
        // Requests that can write into its volumes (a process in it, a copy into it) judge
        // whoever else mounts them too.
        // (An update can give it a restart policy under which dockerd starts it again, an
        // unpause lets its processes go on.)
        let writes = inside
            || matches!(
                (endpoint.route.method, endpoint.route.template),
                ("PUT", "/containers/{id}/archive")
                    | ("POST", "/containers/{id}/update")
                    | ("POST", "/containers/{id}/unpause")
            );
        let reach = Reach {
            networks: starts,
            namespaces: inside,
            volume_users: writes,
            exec_user: exec_user.as_deref(),
        };
        let (id, warnings) = judge.target(target, reach).await?;
        permit.warnings.extend(warnings);
        if let Target::Container(name) = target {
            let named_by_id = if commit.is_some() {
                parts.uri = with_query_value(&parts.uri, "container", &id)?;
                true
            } else if let Some(mut body) = kept_body.take().filter(|_| connected.is_some()) {
                if let Json::Object(o) = &mut body {
                    o.set_field("Container", Json::String(id.as_str().into()));
                }
                permit.rewritten = Some(body);
                true
            } else if !(endpoint.route.template == "/containers/{id}"
                && query.bool("link").map_err(Unreadable::from)?)
            {
                // (`rm --link` names a link, parent/child, which the full ID would not be.)
                parts.uri = with_container_id(&parts.uri, &endpoint, name, &id)?;
                true
            } else {
                false
            };
            // The audit record says which container a name or ID prefix meant.
            if named_by_id && name != id {
                permit
                    .mutations
                    .push(format!("container {name:?} named to dockerd as {id}"));
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
            Some(body) => Either::Left(
                BodyStall::new(body, state.config.limits.stall_timeout).ending_at(expiry),
            ),
            None => Either::Right(Full::new(Bytes::new())),
        },
    };
    // What the certificate has under way ends when it expires: waiting for dockerd's answer
    // too. (The policy's lookups may have taken it past the expiry: then nothing is sent.)
    if tokio::time::Instant::now() >= expiry {
        return Err(Refusal::CertificateExpired {
            name: conn.identity.display_name().to_string(),
        });
    }
    let forwarded = conn.upstream.send(parts, upstream_body, upgrade);
    let resp = tokio::time::timeout_at(expiry, forwarded)
        .await
        .map_err(|_| Refusal::ExpiredWhileForwarded {
            name: conn.identity.display_name().to_string(),
        })??;
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
        let mut end = end_record(conn, record, resp.status().as_u16());
        end.upgraded = true;
        let tracker = state.hijacks.clone();
        let state = state.clone();
        tracker.spawn(async move {
            let _slot = slot;
            let started = Instant::now();
            let stop = state.stop_hijacks.clone();
            match upgrade::splice(client_upgrade, upstream_upgrade, stop, expiry).await {
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
    let mut resp = resp;
    if is_streamed(&resp) {
        // A body dockerd streams may run for long after the request's record said how it
        // began. The end of a stream route's body (logs, events, exports, progress) gets a
        // record of its own, saying how long it ran, how much went out and whether it was
        // complete; any other streamed answer (a large JSON one) gets one only when it was cut
        // or failed.
        let always = endpoint.route.streams();
        resp.body_mut().end_at(expiry);
        let mut end = end_record(conn, record, resp.status().as_u16());
        let state = state.clone();
        let started = Instant::now();
        resp.body_mut().on_end(move |bytes, ending| {
            if !always && ending == crate::forward::Ending::Complete {
                return;
            }
            end.bytes_out = Some(bytes);
            end.reason = Some(ending.to_string());
            end.duration_us = started.elapsed().as_micros();
            state.audit.write(end);
        });
    }
    Ok(crate::forward::to_client(resp))
}

/// Whether a response's body is streamed: it has one, and its framing does not say how long
/// it is (chunked, or until dockerd closes).
fn is_streamed(resp: &Response<crate::forward::Returning>) -> bool {
    use hyper::body::Body as _;
    !resp.body().is_end_stream() && resp.body().size_hint().exact().is_none()
}

/// The record written when an allowed request's stream ends, naming what the request's own
/// record names.
fn end_record(conn: &Conn, request: &Record, status: u16) -> Record {
    let mut end = Record::about("stream", &conn.who);
    end.method = request.method.clone();
    end.path = request.path.clone();
    end.route = request.route;
    end.group = request.group;
    end.decision = "allow";
    end.rule = request.rule.clone();
    end.status = Some(status);
    end
}

/// Most bytes of an inspect answer read for a target check, at the least (see
/// `Judge::lookup_limit`).
const LOOKUP_LIMIT: usize = 8 << 20;

/// Most bytes read of dockerd's list of containers (about 1 KiB a container, more with long
/// command lines), and of an unseen container's inspect, when looking for containers that
/// share namespaces. Only IDs, names and namespace modes are built from them; one request at a
/// time reads them.
const LIST_LIMIT: usize = 256 << 20;

/// Learns, once at start and in the background, which containers share namespaces: every
/// container dockerd has is looked at, so that the first baseline execs on a host with many
/// containers find them remembered instead of waiting for them (or getting 503 past
/// [`MAX_NEW_CONTAINERS`]). It holds the scan for [`LEARNING_HOLD`] at a time, and one lookup
/// for [`LEARNING_LOOKUP`] at most, so requests' own looks go between. Does nothing when no
/// role is judged on content. A container it cannot read is left for requests to refuse; when
/// dockerd does not answer, it stops (requests look for themselves).
pub async fn learn_joins(state: Arc<State>) {
    if !state.config.policy.roles().any(|r| r.has_baseline()) {
        return;
    }
    let timeout = state.config.limits.lookup_timeout.min(LEARNING_LOOKUP);
    let upstream = &state.upstream;
    let all = {
        let _one_at_a_time = state.joins.scan.lock().await;
        match list_containers(upstream, timeout).await {
            Ok(all) => all,
            Err(e) => {
                tracing::debug!(error = %e, "could not list containers to learn their joins");
                return;
            }
        }
    };
    let (_, unseen) = state.joins.known(&all);
    let mut unseen = unseen.into_iter().peekable();
    let mut learned = 0;
    while unseen.peek().is_some() {
        let _one_at_a_time = state.joins.scan.lock().await;
        let held = Instant::now();
        while held.elapsed() < LEARNING_HOLD {
            let Some(id) = unseen.next() else { break };
            let path = format!("/containers/{id}/json");
            match fetch(upstream, &path, LIST_LIMIT, timeout).await {
                Ok(Some(bytes)) => {
                    if let Ok(found) = crate::joins::parse_joins(&bytes) {
                        state.joins.remember(id, found);
                        learned += 1;
                    }
                }
                // Removed meanwhile, or unreadable (a request will refuse it).
                Ok(None) | Err(Refusal::UpstreamProtocol(_)) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "stopped learning which containers share namespaces");
                    return;
                }
            }
        }
    }
    tracing::info!(
        containers = learned,
        "learned which containers share namespaces"
    );
}

/// How long [`learn_joins`] holds the scan of containers at a time.
const LEARNING_HOLD: std::time::Duration = std::time::Duration::from_millis(250);

/// How long one lookup of [`learn_joins`] may take (or `limits.lookup_timeout`, if shorter).
const LEARNING_LOOKUP: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET path` on the Docker socket (at most `limit` bytes) within `timeout`; `None` on 404.
async fn fetch(
    upstream: &Upstream,
    path: &str,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Option<Bytes>, Refusal> {
    // A wedged daemon must not hold client connections, their slots and bodies for ever.
    tokio::time::timeout(timeout, upstream.get_json(path, limit))
        .await
        .map_err(|_| Refusal::LookupTimeout {
            what: path.to_string(),
            secs: timeout.as_secs(),
        })?
}

/// dockerd's list of containers (IDs and names), within `timeout`.
async fn list_containers(
    upstream: &Upstream,
    timeout: std::time::Duration,
) -> Result<Vec<crate::joins::Listed>, Refusal> {
    list_containers_at(upstream, "/containers/json?all=1", LIST_LIMIT, timeout).await
}

/// A list of containers at `path` (IDs and names), at most `limit` bytes, within `timeout`.
async fn list_containers_at(
    upstream: &Upstream,
    path: &str,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Vec<crate::joins::Listed>, Refusal> {
    let Some(bytes) = fetch(upstream, path, limit, timeout).await? else {
        return Err(Refusal::UpstreamProtocol(
            "its list of containers is not readable",
        ));
    };
    crate::joins::parse_list(&bytes)
        .map_err(|_| Refusal::UpstreamProtocol("its list of containers is not readable"))
}

/// Most containers not seen before that one request looks at, to know which share namespaces
/// with the container it works in; with more, it is refused (503) after looking at these, and
/// the next request goes on from there.
const MAX_NEW_CONTAINERS: usize = 512;

/// Most objects looked up for one request.
const MAX_LOOKUPS: usize = 16;

/// Lookups in dockerd one request may cause for the objects it names and the volumes of those
/// containers (besides the look at unseen containers for namespace sharing, which has a
/// deadline of its own): each may wait up to `limits.lookup_timeout`.
const MAX_REQUEST_LOOKUPS: usize = 64;

/// The existing objects a baseline create names (or, for a network connect, the network):
/// each is looked up in dockerd and judged as if the role were creating it.
#[derive(Default)]
struct Named {
    volumes: Vec<String>,
    /// The volumes are mounted (a create), not removed: whoever else mounts them is judged.
    mounted: bool,
    networks: Vec<String>,
    /// `(container, alias)`, as dockerd's `ParseLink` reads each entry.
    links: Vec<(String, String)>,
}

impl Named {
    fn of(
        json: Option<&Json>,
        role: &crate::policy::Role,
        endpoint: &route::Endpoint,
    ) -> Result<Named, Refusal> {
        if !role.has_baseline() {
            return Ok(Named::default());
        }
        // The network a request names in its path, unless it is one of the daemon's own.
        let the_network = || {
            endpoint
                .param("id")
                .filter(|n| !policy::baseline::is_daemon_network(n))
                .map(str::to_string)
                .into_iter()
                .collect()
        };
        match (endpoint.route.template, json) {
            ("/containers/create", Some(body)) => Ok(Named {
                volumes: Baseline::named_volumes(body)?,
                mounted: true,
                networks: Baseline::named_networks(body)?,
                links: Baseline::linked_containers(body)?,
            }),
            // Removing a volume or a network is acting on it: one the role could not have
            // created (an admin's bind of /etc, its macvlan) is not its to remove.
            ("/volumes/{name}", _) if endpoint.route.method == "DELETE" => Ok(Named {
                volumes: endpoint
                    .param("name")
                    .map(str::to_string)
                    .into_iter()
                    .collect(),
                ..Named::default()
            }),
            ("/networks/{id}", _) if endpoint.route.method == "DELETE" => Ok(Named {
                networks: the_network(),
                ..Named::default()
            }),
            ("/networks/{id}/connect", _) => Ok(Named {
                networks: the_network(),
                ..Named::default()
            }),
            _ => Ok(Named::default()),
        }
    }

    /// The containers the links name, each once (compose writes several entries per
    /// container).
    fn linked_containers(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.links.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Refuses, before any lookup, a request naming more of one kind than are looked up.
    fn check_counts(&self) -> Result<(), Refusal> {
        for (count, what) in [
            (self.volumes.len(), "named volumes"),
            (self.networks.len(), "networks"),
            (self.linked_containers().len(), "linked containers"),
        ] {
            if count > MAX_LOOKUPS {
                return Err(Refusal::BadRequest(format!(
                    "more than {MAX_LOOKUPS} {what} in one request; use fewer"
                )));
            }
        }
        Ok(())
    }
}

/// `body` with its `HostConfig.Links` replaced by `links`.
/// A create body's link, as the client wrote it and with its container's full ID.
struct Link {
    named: String,
    by_id: String,
}

fn with_links(body: &mut Json, links: Vec<Link>) -> Result<(), Refusal> {
    let slot = match body {
        Json::Object(root) => root.field_path_mut(&["HostConfig", "Links"])?,
        _ => None,
    };
    let Some(Json::Array(items)) = slot else {
        return Err(Refusal::BadRequest("HostConfig.Links is not a list".into()));
    };
    *items = links
        .iter()
        .map(|l| Json::String(l.by_id.as_str().into()))
        .collect();
    Ok(())
}

/// What else is judged with a container a request acts on.
#[derive(Debug, Clone, Copy, Default)]
struct Reach<'a> {
    /// The networks it joins when started (dockerd finds them by name then).
    networks: bool,
    /// The containers sharing its namespaces (the request runs or reaches processes in it).
    namespaces: bool,
    /// The other containers mounting its named volumes (the request can write into them).
    volume_users: bool,
    /// The user of an exec created in it (`""`: none given, the container's); for an exec
    /// started, its own.
    exec_user: Option<&'a str>,
}

/// Judges existing objects a baseline role's request uses, from dockerd's inspect of them.
struct Judge<'a> {
    policy: &'a crate::policy::Policy,
    role: &'a crate::policy::Role,
    upstream: &'a Upstream,
    /// Which containers share namespaces, as remembered across requests.
    joins: &'a crate::joins::Joins,
    /// Most bytes of an inspect read to judge it: a container made through the largest create
    /// body allowed has an inspect several times that size (escapes, the command line twice).
    lookup_limit: usize,
    /// `limits.lookup_timeout`, for each lookup.
    lookup_timeout: std::time::Duration,
    /// Lookups made for this request so far (at most [`MAX_REQUEST_LOOKUPS`]).
    lookups: std::sync::atomic::AtomicUsize,
}

impl Judge<'_> {
    /// A named volume the request mounts: warnings, or the denial. One that does not exist yet
    /// is created plain by dockerd.
    /// With `users`, the containers that already mount it are judged too, bar the one named
    /// so (see [`Judge::volume_users`]).
    async fn volume(&self, name: &str, users: Option<&str>) -> Result<Vec<String>, Refusal> {
        let Some(inspect) = self.inspect("volumes", name, "").await? else {
            return Ok(Vec::new());
        };
        let mut warnings = self.settle(Existing::Volume(name), &inspect)?;
        if let Some(besides) = users {
            warnings.extend(self.volume_users(name, besides).await?);
        }
        Ok(warnings)
    }

    /// The containers mounting volume `name`, running or not, each judged as a container the
    /// request acts on: a container of this role that writes to the volume reaches whatever
    /// another one reads or runs from it (a script a privileged job runner runs). At most
    /// [`MAX_REQUEST_LOOKUPS`] of them.
    async fn volume_users(&self, name: &str, besides: &str) -> Result<Vec<String>, Refusal> {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        // dockerd's `volume` filter matches a mount's name or its destination; destinations
        // are absolute paths, which no volume name is. One more than are judged is enough to
        // know there are too many.
        let filters = serde_json::json!({ "volume": [name] }).to_string();
        let path = format!(
            "/containers/json?all=1&limit={}&filters={}",
            // (Besides the container itself, one more than are judged.)
            MAX_REQUEST_LOOKUPS + 2,
            utf8_percent_encode(&filters, NON_ALPHANUMERIC)
        );
        let users =
            list_containers_at(self.upstream, &path, self.lookup_limit, self.lookup_timeout)
                .await?;
        let users: Vec<_> = users.into_iter().filter(|u| u.id != besides).collect();
        if users.len() > MAX_REQUEST_LOOKUPS {
            return Err(self.uninspectable(format!(
                "volume {name:?} is mounted by {} containers, more than the {MAX_REQUEST_LOOKUPS} dockgate judges for one request, so this role may not use it",
                users.len()
            )));
        }
        let mut warnings = Vec::new();
        for user in &users {
            let Some(seen) = self.inspect("containers", &user.id, "/json").await? else {
                continue;
            };
            let object = Existing::VolumeUser {
                name: user.name(),
                volume: name,
            };
            warnings.extend(self.settle(object, &seen)?);
        }
        Ok(warnings)
    }

    /// Judges everything `named` names: the warnings, and the links as the client named them and
    /// as `<full ID>:<alias>` (a link to a container dockerd does not have is refused: whoever
    /// created the name first would get it).
    async fn named(&self, named: &Named) -> Result<(Vec<String>, Vec<Link>), Refusal> {
        let mut warnings = Vec::new();
        for name in &named.volumes {
            // A create mounts them: whoever mounts them already is judged too.
            let users = named.mounted.then_some("");
            warnings.extend(self.volume(name, users).await?);
        }
        for name in &named.networks {
            warnings.extend(self.network(name).await?);
        }
        let mut full_ids = std::collections::HashMap::new();
        for name in named.linked_containers() {
            let (id, more) = self
                .target(Target::Container(name), Reach::default())
                .await?;
            warnings.extend(more);
            full_ids.insert(name, id);
        }
        let links = named
            .links
            .iter()
            .map(|(name, alias)| Link {
                named: format!("{name}:{alias}"),
                by_id: format!("{}:{alias}", full_ids[name.as_str()]),
            })
            .collect();
        Ok((warnings, links))
    }

    /// The existing network `name` a container would join: warnings, or the denial. One that
    /// does not exist is refused (404): dockerd resolves a container's networks again when it
    /// starts it, so a name judged absent could by then be another team's network.
    async fn network(&self, name: &str) -> Result<Vec<String>, Refusal> {
        let Some(inspect) = self.inspect("networks", name, "").await? else {
            return Err(Refusal::NotFound {
                kind: "network",
                name: name.to_string(),
                in_body: false,
            });
        };
        // dockerd finds a network by full ID, then name, then ID prefix, when it acts. A name
        // that could also be an ID prefix would point at another network once this one is
        // removed in between (names are not owned yet): such names are refused.
        let field = |f: &str| {
            let c = inspect.cursor().field(f).ok()?;
            c.as_str().ok().flatten().map(str::to_string)
        };
        let (found, id) = (field("Name"), field("Id"));
        // The daemon's own networks named by their full ID (the Python SDK's Network objects
        // send IDs) are what they are by name: dockerd's own, joined without a judgement. Not by
        // an ID prefix: dockerd resolves a name before a prefix when it acts.
        if id.as_deref() == Some(name)
            && found
                .as_deref()
                .is_some_and(policy::baseline::is_daemon_network)
        {
            return Ok(Vec::new());
        }
        if found.as_deref() == Some(name)
            && id.as_deref() != Some(name)
            && name
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(Refusal::BadRequest(format!(
                "network {name:?} is named like an ID prefix, which dockerd could resolve to another network by the time it acts; use its full ID or a name with a non-hex character"
            )));
        }
        self.settle(Existing::Network(name), &inspect)
    }

    /// The container `target` names (for an exec, the exec and its container), with the
    /// volumes it mounts, and what `reach` asks for: the networks it joins when started, the
    /// containers sharing its namespaces. Its full ID and the warnings, or the denial. An object
    /// that does not exist is refused (404), not sent on by name: dockerd would resolve the name
    /// again, to whatever is created under it in between.
    async fn target(
        &self,
        target: Target<'_>,
        reach: Reach<'_>,
    ) -> Result<(String, Vec<String>), Refusal> {
        let mut warnings = Vec::new();
        let mut exec_user = reach.exec_user.map(str::to_string);
        let container = match target {
            Target::Container(reference) => reference.to_string(),
            Target::Exec(id) => {
                let Some(exec) = self.inspect("exec", id, "/json").await? else {
                    return Err(Refusal::NotFound {
                        kind: "exec instance",
                        name: id.to_string(),
                        in_body: false,
                    });
                };
                warnings.extend(self.settle(Existing::Exec(id), &exec)?);
                // Starting it runs its process as its user (resizing runs nothing).
                if reach.namespaces {
                    let user = exec.cursor().field_path(&["ProcessConfig", "user"]);
                    let user = user.and_then(|u| u.as_str()).map_err(Unreadable::from)?;
                    exec_user = Some(user.unwrap_or("").to_string());
                }
                let field = exec.cursor().field("ContainerID");
                match field.and_then(|c| c.as_str()).ok().flatten() {
                    Some(c) if !c.is_empty() => c.to_string(),
                    _ => {
                        return Err(Refusal::UpstreamProtocol(
                            "its exec inspect names no container",
                        ))
                    }
                }
            }
        };
        let Some(inspect) = self.inspect("containers", &container, "/json").await? else {
            return Err(Refusal::NotFound {
                kind: "container",
                name: container,
                in_body: false,
            });
        };
        warnings.extend(self.settle(Existing::Container(&container), &inspect)?);
        let root = inspect.cursor();
        let id = root
            .field("Id")
            .ok()
            .and_then(|i| i.as_str().ok().flatten());
        let id = match id {
            Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()) => id,
            _ => {
                return Err(Refusal::UpstreamProtocol(
                    "its container inspect gives no hexadecimal Id",
                ))
            }
        };
        // Named volumes it mounts are judged like those of a create.
        let users = reach.volume_users.then_some(id);
        warnings.extend(self.mounted_volumes(&container, &inspect, users).await?);
        let unjudged = |why: String| {
            self.uninspectable(format!(
                "container {container:?} {why}, so this role may not use it"
            ))
        };
        // dockerd finds a container's networks by the names it was created with when it starts
        // it: they are judged again, as they are now.
        if reach.networks {
            let joined: Vec<&str> = root
                .field_path(&["NetworkSettings", "Networks"])
                .and_then(|n| n.entries().map(|e| e.map(|(name, _)| name).collect()))
                .map_err(|e| unjudged(format!("has networks dockgate cannot read ({e})")))?;
            if joined.len() > MAX_LOOKUPS {
                return Err(unjudged(format!(
                    "joins more than {MAX_LOOKUPS} networks, more than dockgate judges for one request"
                )));
            }
            for name in joined
                .into_iter()
                .filter(|n| policy::baseline::joins_by_name(n))
            {
                warnings.extend(self.network(name).await?);
            }
        }
        if reach.namespaces {
            warnings.extend(self.sharing(id, &container, &inspect).await?);
        }
        // Last: the one refusal a client can mend by asking again differently (`-u`).
        if let Some(user) = &exec_user {
            let object = Existing::ExecUser {
                container: &container,
                user,
            };
            warnings.extend(self.settle(object, &inspect)?);
        }
        Ok((id.to_string(), warnings))
    }

    /// The named volumes container `name` (from its `inspect`) mounts, each judged like those
    /// of a create: warnings, or the denial.
    /// With `users` (the container's own full ID, left out), whoever else mounts them is
    /// judged too (see [`Judge::volume_users`]).
    async fn mounted_volumes(
        &self,
        name: &str,
        inspect: &Json,
        users: Option<&str>,
    ) -> Result<Vec<String>, Refusal> {
        let unjudged = |why: String| {
            self.uninspectable(format!(
                "container {name:?} {why}, so this role may not use it"
            ))
        };
        let mounts = inspect
            .cursor()
            .field("Mounts")
            .and_then(|m| m.items().map(|i| i.collect::<Vec<_>>()))
            .map_err(|e| unjudged(format!("has mounts dockgate cannot read ({e})")))?;
        let volumes: Vec<&str> = mounts
            .iter()
            .filter(|m| {
                m.field("Type").ok().and_then(|t| t.as_str().ok().flatten()) == Some("volume")
            })
            .filter_map(|m| m.field("Name").ok().and_then(|n| n.as_str().ok().flatten()))
            .filter(|name| !name.is_empty())
            .collect();
        if volumes.len() > MAX_LOOKUPS {
            return Err(unjudged(format!(
                "mounts more than {MAX_LOOKUPS} named volumes, more than dockgate judges for one request"
            )));
        }
        let mut warnings = Vec::new();
        for volume in volumes {
            warnings.extend(self.volume(volume, users).await?);
        }
        Ok(warnings)
    }

    /// The containers that share namespaces with container `id` (named `name` in the request,
    /// `inspect` its inspect), each judged as that one is, with the volumes it mounts: warnings,
    /// or the denial. Stopped ones count: they may be started while the request's process runs.
    /// Looking at containers not seen before has one `limits.lookup_timeout` in all.
    async fn sharing(&self, id: &str, name: &str, inspect: &Json) -> Result<Vec<String>, Refusal> {
        let unjudged = |why: String| {
            self.uninspectable(format!(
                "container {name:?} {why}, so this role may not work in it"
            ))
        };
        let refs = |c: &str, seen: &Json| {
            crate::joins::refs_of(seen).map_err(|e| {
                unjudged(format!(
                    "or container {c:?} has namespace settings dockgate cannot read ({e})"
                ))
            })
        };
        // The whole look at containers not seen before has one deadline, as one lookup has.
        let looked = tokio::time::timeout(self.lookup_timeout, async {
            let came = std::time::Instant::now();
            let _one_at_a_time = self.joins.scan.lock().await;
            // A list asked for after this request came (by one it waited behind) will do.
            let all = match self.joins.listed_since(came) {
                Some(all) => all,
                None => {
                    let asked = std::time::Instant::now();
                    let all = std::sync::Arc::new(self.containers().await?);
                    self.joins.listed(asked, all.clone());
                    all
                }
            };
            let (mut known, unseen) = self.joins.known(&all);
            let found = refs(id, inspect)?;
            self.joins.remember(id, found.clone());
            known.insert(id.to_string(), found);
            let unseen: Vec<String> = unseen
                .into_iter()
                .filter(|u| *u != id)
                .map(str::to_string)
                .collect();
            let mut warnings = Vec::new();
            // Under audit_only nothing is refused: it is said, and the rest judged.
            let mut refuse = |refusal: Refusal| {
                if self.policy.audit_only() {
                    warnings.push(format!("would refuse: {refusal}"));
                    Ok(())
                } else {
                    Err(refusal)
                }
            };
            // Each container is looked at once (its joins never change), at most so many per
            // request.
            for other in unseen.iter().take(MAX_NEW_CONTAINERS) {
                let path = format!("/containers/{other}/json");
                // One removed in between shares nothing any more. Its inspect may be far
                // larger than its create (dockerd escapes, and repeats the command line): its
                // namespace modes are all that is read of it.
                let unreadable = |why: String| {
                    unjudged(format!(
                        "cannot be judged: container {other}, which dockgate reads to know which containers share namespaces with it, {why}"
                    ))
                };
                let bytes = match self.fetch(&path, LIST_LIMIT).await {
                    Ok(bytes) => bytes,
                    Err(Refusal::UpstreamProtocol(why)) => {
                        refuse(unreadable(format!("could not be read ({why})")))?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if let Some(bytes) = bytes {
                    match crate::joins::parse_joins(&bytes) {
                        Ok(found) => {
                            self.joins.remember(other, found.clone());
                            known.insert(other.clone(), found);
                        }
                        Err(e) => refuse(unreadable(format!(
                            "has an inspect dockgate cannot read ({e})"
                        )))?,
                    }
                }
            }
            if unseen.len() > MAX_NEW_CONTAINERS {
                refuse(Refusal::ContainersUnseen {
                    left: unseen.len() - MAX_NEW_CONTAINERS,
                    per_request: MAX_NEW_CONTAINERS,
                })?;
            }
            self.joins.forget_others(&all);
            Ok((all, known, warnings))
        })
        .await
        .map_err(|_| Refusal::LookupTimeout {
            what: format!("the containers sharing namespaces with {name:?}"),
            secs: self.lookup_timeout.as_secs(),
        })?;
        let (all, known, mut warnings) = looked?;
        let group = crate::joins::sharing_with(id, &all, &known);
        if group.is_empty() {
            return Ok(warnings);
        }
        if group.len() > MAX_LOOKUPS {
            return Err(unjudged(format!(
                "shares namespaces with more than {MAX_LOOKUPS} containers, more than dockgate judges for one request"
            )));
        }
        let members: Vec<crate::joins::Listed> = all
            .iter()
            .filter(|c| c.id == id || group.iter().any(|g| g.id == c.id))
            .cloned()
            .collect();
        for joiner in group {
            let Some(seen) = self.inspect("containers", &joiner.id, "/json").await? else {
                continue;
            };
            let object = Existing::Joiner {
                name: joiner.name(),
                of: name,
                group: &members,
            };
            warnings.extend(self.settle(object, &seen)?);
            // A denial of one of its volumes says whose it is.
            let volumes = self
                .mounted_volumes(joiner.name(), &seen, Some(&joiner.id))
                .await;
            warnings.extend(volumes.map_err(|refusal| match refusal {
                Refusal::Denied(mut d) => {
                    d.reason = format!(
                        "{} (it is mounted by container {:?}, which shares namespaces with {name:?})",
                        d.reason,
                        joiner.name()
                    );
                    Refusal::Denied(d)
                }
                other => other,
            })?);
        }
        Ok(warnings)
    }

    /// Every container dockerd has, running or not.
    async fn containers(&self) -> Result<Vec<crate::joins::Listed>, Refusal> {
        list_containers(self.upstream, self.lookup_timeout).await
    }

    /// `GET path` on the Docker socket (at most `limit` bytes) within the lookup timeout;
    /// `None` on 404.
    async fn fetch(&self, path: &str, limit: usize) -> Result<Option<Bytes>, Refusal> {
        fetch(self.upstream, path, limit, self.lookup_timeout).await
    }

    /// [`Judge::fetch`], parsed.
    async fn lookup(&self, path: &str, limit: usize) -> Result<Option<Json>, Refusal> {
        let Some(bytes) = self.fetch(path, limit).await? else {
            return Ok(None);
        };
        match inspect::parse_optional(&bytes) {
            Ok(json) => Ok(Some(json.unwrap_or(Json::Null))),
            Err(_) => Err(Refusal::UpstreamProtocol(
                "its answer to a lookup of what the request uses is not readable JSON",
            )),
        }
    }

    /// dockerd's inspect (`GET /{kind}/{name}{tail}`), parsed; `None` on 404.
    async fn inspect(&self, kind: &str, name: &str, tail: &str) -> Result<Option<Json>, Refusal> {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        // dockerd keeps container names with a leading `/` and finds `/web` by that name only
        // (never as an ID or ID prefix): looked up as `web`, it must come back named `/web`.
        let slashed = kind == "containers" && name.starts_with('/');
        let name = if slashed { &name[1..] } else { name };
        if cleaned_by_router(&format!("/{kind}/{name}{tail}")) {
            return Err(Refusal::BadRequest(format!(
                "{} name {name:?} has \".\", \"..\" or empty path segments, which dockerd's router cleans away before it looks anything up; name the object without them",
                kind.trim_end_matches('s')
            )));
        }
        let path = format!(
            "/{kind}/{}{tail}",
            utf8_percent_encode(name, NON_ALPHANUMERIC)
        );
        let made = 1 + self
            .lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if made > MAX_REQUEST_LOOKUPS {
            return Err(Refusal::BadRequest(format!(
                "this request names more objects (containers, their volumes, networks) than the {MAX_REQUEST_LOOKUPS} dockgate looks up for one request; split it"
            )));
        }
        let Some(json) = self.lookup(&path, self.lookup_limit).await? else {
            return Ok(None);
        };
        if slashed {
            let found = json
                .cursor()
                .field("Name")
                .ok()
                .and_then(|n| n.as_str().ok().flatten());
            if found.and_then(|n| n.strip_prefix('/')) != Some(name) {
                return Ok(None);
            }
        }
        Ok(Some(json))
    }

    /// The policy's verdict on an existing object from its inspect: warnings, or the refusal.
    /// An object whose own settings cannot be judged is refused (rule uninspectable), not
    /// blamed on the request.
    fn settle(&self, object: Existing<'_>, inspect: &Json) -> Result<Vec<String>, Refusal> {
        match self.policy.decide_existing(self.role, object, inspect) {
            Ok(Ok(warnings)) => Ok(warnings),
            Ok(Err(denial)) => Err(Refusal::Denied(denial)),
            Err(e) => Err(self.uninspectable(format!(
                "{object} has settings dockgate cannot judge ({e}), so this role may not use it"
            ))),
        }
    }

    /// A refusal for an object whose settings dockgate cannot read or judge (rule
    /// uninspectable): the object's doing, not the request's.
    fn uninspectable(&self, reason: String) -> Refusal {
        Refusal::Denied(crate::policy::Denial {
            rule: "uninspectable".into(),
            reason,
            role: self.role.name.clone(),
        })
    }
}

/// Whether dockerd's router answers a (decoded) request path with a redirect to its cleaned
/// form, as gorilla/mux's `cleanPath` decides: a `.` or `..` segment, or an empty one other than
/// a single trailing slash.
fn cleaned_by_router(path: &str) -> bool {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let last = segments.len() - 1;
    segments
        .iter()
        .enumerate()
        .any(|(i, s)| matches!(*s, "." | "..") || (s.is_empty() && i != last))
}

/// The request target with its container reference (`name`, as the path gave it) replaced by
/// the container's full ID: the version prefix, the rest of the path as sent and the query kept.
fn with_container_id(
    uri: &hyper::Uri,
    endpoint: &route::Endpoint,
    name: &str,
    id: &str,
) -> Result<hyper::Uri, Refusal> {
    let version = endpoint
        .version
        .map(|v| format!("/v{v}"))
        .unwrap_or_default();
    let tail = uri
        .path()
        .strip_prefix(version.as_str())
        .and_then(|p| p.strip_prefix("/containers/"))
        .and_then(|p| p.strip_prefix(name))
        .filter(|t| t.is_empty() || t.starts_with('/'))
        .ok_or_else(|| {
            Refusal::BadRequest(
                "the container reference in the path is written in a way dockgate cannot put the container's full ID in place of; name the container plainly".into(),
            )
        })?;
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    format!("{version}/containers/{id}{tail}{query}")
        .parse()
        .map_err(|_| Refusal::UpstreamProtocol("it gave a container ID that is not a path segment"))
}

/// The request target with the query parameter `key` set to `id` (a full container ID).
fn with_query_value(uri: &hyper::Uri, key: &str, id: &str) -> Result<hyper::Uri, Refusal> {
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Refusal::UpstreamProtocol(
            "it gave a container ID that is not alphanumeric",
        ));
    }
    let query = policy::query::with_value(uri.query().unwrap_or(""), key, id)
        .map_err(|e| Refusal::BadRequest(e.to_string()))?;
    format!("{}?{query}", uri.path())
        .parse()
        .map_err(|_| Refusal::UpstreamProtocol("it gave a container ID that is not a query value"))
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

/// Whether a request has a body dockerd reads as one: a declared length over 7 bytes (the
/// shortest JSON object it would decode, as its start handler counts), or chunked framing.
fn carries_body(headers: &hyper::HeaderMap) -> bool {
    headers.contains_key(hyper::header::TRANSFER_ENCODING)
        || declared_length(headers).is_some_and(|n| n > 7)
}

/// The `Content-Length` a request declares (hyper has refused one that is not one decimal
/// number, or several that differ).
fn declared_length(headers: &hyper::HeaderMap) -> Option<u64> {
    headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The certificate a connection's body shares are counted for (its fingerprint, shared with
/// its audit records rather than copied per request).
fn certificate_of(conn: &Conn) -> std::sync::Arc<str> {
    conn.who
        .fingerprint
        .clone()
        .unwrap_or_else(|| conn.identity.fingerprint.as_str().into())
}

/// The checks on a JSON body's headers, made before any of it is read (so a refusal leaves the
/// body to [`linger`]): no compression, a declared length within the limit. Gives that length.
fn check_json_headers(
    parts: &hyper::http::request::Parts,
    limit: usize,
) -> Result<Option<usize>, Refusal> {
    use hyper::header::CONTENT_ENCODING;
    if let Some(enc) = parts.headers.get(CONTENT_ENCODING) {
        if !enc.as_bytes().eq_ignore_ascii_case(b"identity") {
            return Err(Refusal::BadRequest(format!(
                "Content-Encoding {:?} is refused on a body dockgate must read; send it uncompressed",
                String::from_utf8_lossy(enc.as_bytes())
            )));
        }
    }
    match declared_length(&parts.headers) {
        Some(n) if n > limit as u64 => Err(Refusal::TooLarge { limit }),
        Some(n) => Ok(Some(n as usize)),
        None => Ok(None),
    }
}

/// A body's declared length (within the limit) and the limit.
struct Sizes {
    declared: Option<usize>,
    limit: usize,
}

/// Buffers a JSON request body the policy must read, taking what it holds from `budget` into
/// `share` (503 when that does not fit): refuses non-JSON content types and bodies that grow
/// past the limit. The body stays in `unread` until it has been read whole, so a
/// refusal midway (too large, too slow) leaves the rest to [`linger`] and the client sees the
/// refusal rather than a reset.
async fn read_json_body(
    parts: &hyper::http::request::Parts,
    unread: &mut Option<Incoming>,
    Sizes { declared, limit }: Sizes,
    budget: &crate::budget::BodyBudget,
    share: &mut crate::budget::Share,
) -> Result<Bytes, Refusal> {
    use http_body_util::BodyExt;
    use hyper::header::CONTENT_TYPE;
    let Some(body) = unread.as_mut() else {
        return Err(Refusal::BadRequest(
            "the request body was already taken".into(),
        ));
    };
    // Most bodies come in one frame, kept as it is; later frames are appended to a copy that
    // grows by doubling, up to the declared length (or the limit), taking from the budget
    // before it grows: what a body holds is at most twice what has arrived (and the copy it
    // leaves, for the moment it grows).
    let mut first = Bytes::new();
    let mut more = bytes::BytesMut::new();
    // What the body holds, as counted against the budget: its bytes, or the copy's capacity.
    let mut charged = 0;
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
            budget.take(share, data.len())?;
            charged = data.len();
            first = data;
            continue;
        }
        let needed = held + data.len();
        if more.is_empty() || needed > more.capacity() {
            let size = (2 * more.capacity().max(held))
                .min(declared.unwrap_or(limit))
                .max(needed);
            budget.take(share, size.saturating_sub(charged))?;
            charged = charged.max(size);
            let mut bigger = bytes::BytesMut::with_capacity(size);
            if more.is_empty() {
                bigger.extend_from_slice(&std::mem::take(&mut first));
            } else {
                bigger.extend_from_slice(&more);
            }
            more = bigger;
        }
        more.extend_from_slice(&data);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_the_router_would_clean_are_told_apart_from_plain_ones() {
        for name in [".", "..", "./data", "a/../b", "a//b", "a//", "/abs", "a/."] {
            assert!(cleaned_by_router(&format!("/volumes/{name}")), "{name:?}");
            assert!(
                cleaned_by_router(&format!("/containers/{name}/json")),
                "{name:?}"
            );
        }
        for name in ["data", ".hidden", "a.b", "..x", "a/b", "my-vol_1.2"] {
            assert!(!cleaned_by_router(&format!("/volumes/{name}")), "{name:?}");
            assert!(
                !cleaned_by_router(&format!("/containers/{name}/json")),
                "{name:?}"
            );
        }
        // gorilla/mux keeps one trailing slash.
        assert!(!cleaned_by_router("/volumes/a/"));
        assert!(
            cleaned_by_router("/containers//json"),
            "an empty container name"
        );
    }

    #[test]
    fn a_container_reference_is_replaced_by_the_full_id_keeping_version_route_and_query() {
        let id = "3f2a".repeat(16);
        for (method, path, want) in [
            (
                "GET",
                "/v1.41/containers/web/archive?path=%2Ftmp",
                format!("/v1.41/containers/{id}/archive?path=%2Ftmp"),
            ),
            (
                "POST",
                "/containers/3f2a/exec",
                format!("/containers/{id}/exec"),
            ),
            (
                "DELETE",
                "/v1.41/containers/web",
                format!("/v1.41/containers/{id}"),
            ),
            (
                "DELETE",
                "/v1.41/containers/web/checkpoints/cp1?dir=x",
                format!("/v1.41/containers/{id}/checkpoints/cp1?dir=x"),
            ),
            (
                "POST",
                "/containers/web/db/stop",
                format!("/containers/{id}/stop"),
            ),
        ] {
            let uri: hyper::Uri = path.parse().unwrap();
            let endpoint = route::classify(method, uri.path()).unwrap();
            let name = endpoint.param("id").unwrap().to_string();
            assert_eq!(
                with_container_id(&uri, &endpoint, &name, &id)
                    .unwrap()
                    .to_string(),
                want
            );
        }
    }

    #[test]
    fn a_commit_names_the_full_id_in_its_container_parameter_other_bytes_as_sent() {
        let id = "3f2a".repeat(16);
        for (target, want) in [
            (
                "/v1.41/commit?container=web&repo=app&tag=v1",
                format!("/v1.41/commit?container={id}&repo=app&tag=v1"),
            ),
            (
                "/commit?repo=a%2Fb&%63ontainer=3f2&changes=CMD+x",
                format!("/commit?repo=a%2Fb&%63ontainer={id}&changes=CMD+x"),
            ),
        ] {
            let uri: hyper::Uri = target.parse().unwrap();
            assert_eq!(
                with_query_value(&uri, "container", &id)
                    .unwrap()
                    .to_string(),
                want
            );
        }
    }
}
