//! dockgate end to end: the real docker CLI, the Python Docker SDK and raw TLS clients against
//! dockgate in front of a real dockerd (scripts/test.sh starts a private one).

mod support;

mod cli;
mod handshake;
mod hardening;
mod lifecycle;
mod policy;
mod proxy;
mod raw;
