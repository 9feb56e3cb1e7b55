//! Reading a request body within a size limit and a time budget.
//!
//! A body over the limit is read and thrown away, up to [`DISCARD_FACTOR`] times the limit, before
//! the 413: the client finishes its upload and reads the answer as it would any other. Answering
//! before the body has arrived makes HTTP/2 end the stream with `RST_STREAM(NO_ERROR)` after the
//! response (RFC 9113 §8.1; hyper and h2 do so), which older clients (curl 7.88, Debian 12's)
//! report as a failed transfer; that is kept only for bodies past the bound.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;

/// Why a body was not read.
#[derive(Debug)]
pub enum BodyError {
    /// Declared or found larger than the limit.
    TooLarge,
    /// Not received within the budget.
    Timeout,
    /// The connection failed while reading.
    Read(String),
}

/// How far past the limit a body is still read (and thrown away) before the 413.
pub const DISCARD_FACTOR: usize = 2;

/// Reads `body` whole, if it fits in `limit` bytes and arrives within `budget`.
pub async fn read(headers: &HeaderMap, body: Body, limit: usize, budget: Duration) -> Result<Bytes, BodyError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let bound = limit.saturating_mul(DISCARD_FACTOR);
    if declared.is_some_and(|n| n > bound as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = body;
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
    let mut seen = 0usize;
    let collect = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.to_string())?;
            if let Some(data) = frame.data_ref() {
                seen = seen.saturating_add(data.len());
                if seen > bound {
                    break;
                }
                if seen <= limit {
                    bytes.extend_from_slice(data);
                }
            }
        }
        Ok::<(), String>(())
    };
    match tokio::time::timeout(budget, collect).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Err(e)) => Err(BodyError::Read(e)),
        Ok(Ok(())) if seen > limit => Err(BodyError::TooLarge),
        Ok(Ok(())) => Ok(Bytes::from(bytes)),
    }
}
