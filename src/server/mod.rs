//! The I/O shell around the decisions: routes, TLS, the accept loop.

pub mod body;
pub mod router;
pub mod serve;
pub mod tls;
