//! Hijacked streams: Docker's `Upgrade: tcp` (attach, exec start) and `Upgrade: h2c` (BuildKit
//! `/session`, `/grpc`) relayed as raw bytes both ways once both sides have switched protocols.
//!
//! It must not look inside the relayed bytes. A half-close from either side is passed on as a
//! write shutdown while the other direction keeps flowing (`echo hi | docker run -i … cat`).

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

/// The `Upgrade` header value when the request asks to switch protocols (`Connection` carries
/// the `upgrade` token). Only `tcp` and `h2c` are relayed; anything else is not an upgrade.
pub fn requested(headers: &HeaderMap) -> Option<HeaderValue> {
    let wants =
        crate::forward::connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"));
    if !wants {
        return None;
    }
    let proto = headers.get(header::UPGRADE)?;
    let p = proto.to_str().ok()?.trim();
    (p.eq_ignore_ascii_case("tcp") || p.eq_ignore_ascii_case("h2c")).then(|| proto.clone())
}

/// Waits for both upgrades, then copies bytes both ways until both directions are done or
/// `stop` fires (shutdown after the grace period). Returns the bytes copied each way.
pub async fn splice(
    client: OnUpgrade,
    upstream: OnUpgrade,
    stop: CancellationToken,
) -> Result<(u64, u64), std::io::Error> {
    let (client, upstream) = tokio::try_join!(client, upstream).map_err(std::io::Error::other)?;
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => r,
        _ = stop.cancelled() => Err(std::io::Error::other("dockgate is shutting down")),
    }
}
