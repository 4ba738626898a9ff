//! TEMPORARY stub until the body reader lands.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("x")]
    X,
}
