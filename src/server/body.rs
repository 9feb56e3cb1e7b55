//! Reading a request body within a size limit and a time budget.
//!
//! A body over the limit is read and thrown away, up to [`DISCARD_FACTOR`] times the limit, before
//! the 413: the client finishes its upload and reads the answer as it would any other. Answering
//! before the body has arrived makes HTTP/2 end the stream with `RST_STREAM(NO_ERROR)` after the
//! response (RFC 9113 §8.1; hyper and h2 do so), which older clients (curl 7.88, Debian 12's)
//! report as a failed transfer; that is kept only for bodies past the bound.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use axum::body::Bytes;
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

/// Reads `body` whole, if it fits in `limit` bytes and arrives within `budget`. A body already
/// received whole (most are, by the time the request is routed) is taken without arming a timer.
pub async fn read<B>(headers: &HeaderMap, body: B, limit: usize, budget: Duration) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let bound = limit.saturating_mul(DISCARD_FACTOR);
    if declared.is_some_and(|n| n > bound as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = std::pin::pin!(body);
    // A body that arrives in one frame (most do) is kept as it came, without a copy; a second
    // frame starts a buffer sized for the whole.
    let mut first: Option<Bytes> = None;
    let mut bytes: Vec<u8> = Vec::new();
    let mut seen = 0usize;
    let collect = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.to_string())?;
            let Ok(data) = frame.into_data() else { continue };
            seen = seen.saturating_add(data.len());
            if seen > bound {
                break;
            }
            if seen > limit {
                continue;
            }
            match first.take() {
                None if bytes.is_empty() => first = Some(data),
                None => bytes.extend_from_slice(&data),
                Some(head) => {
                    bytes.reserve(declared.unwrap_or(0).min(limit as u64) as usize);
                    bytes.extend_from_slice(&head);
                    bytes.extend_from_slice(&data);
                }
            }
        }
        Ok::<(), String>(())
    };
    let mut collect = std::pin::pin!(collect);
    let ready = std::future::poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await;
    let collected = match ready {
        Poll::Ready(done) => Ok(done),
        Poll::Pending => tokio::time::timeout(budget, collect).await,
    };
    match collected {
        Err(_) => Err(BodyError::Timeout),
        Ok(Err(e)) => Err(BodyError::Read(e)),
        Ok(Ok(())) if seen > limit => Err(BodyError::TooLarge),
        Ok(Ok(())) => Ok(first.unwrap_or_else(|| Bytes::from(bytes))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn streamed(chunks: &[&'static [u8]]) -> Body {
        let frames: Vec<Result<Bytes, std::io::Error>> = chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Body::from_stream(futures::stream::iter(frames))
    }

    #[tokio::test]
    async fn frames_are_joined_in_order_and_a_single_frame_is_kept_whole() {
        let budget = Duration::from_secs(1);
        let joined = read(&HeaderMap::new(), streamed(&[b"ab", b"", b"cd", b"e"]), 100, budget).await.unwrap();
        assert_eq!(&joined[..], b"abcde");
        let leading_empty = read(&HeaderMap::new(), streamed(&[b"", b"xy", b"z"]), 100, budget).await.unwrap();
        assert_eq!(&leading_empty[..], b"xyz");
        let one = read(&HeaderMap::new(), Body::from("whole"), 100, budget).await.unwrap();
        assert_eq!(&one[..], b"whole");
        let over = read(&HeaderMap::new(), streamed(&[b"0123456789", b"0123456789"]), 15, budget).await;
        assert!(matches!(over, Err(BodyError::TooLarge)), "{over:?}");
    }

    /// A body still on its way is waited for within the budget, and no longer.
    #[tokio::test]
    async fn a_late_body_is_waited_for_within_the_budget_only() {
        let late = |after: Duration| {
            let chunk = async move {
                tokio::time::sleep(after).await;
                Ok::<_, std::io::Error>(Bytes::from_static(b"late"))
            };
            Body::from_stream(futures::stream::once(chunk))
        };
        let budget = Duration::from_millis(400);
        let read_late = read(&HeaderMap::new(), late(Duration::from_millis(50)), 100, budget).await.unwrap();
        assert_eq!(&read_late[..], b"late");
        let too_late = read(&HeaderMap::new(), late(Duration::from_secs(30)), 100, budget).await;
        assert!(matches!(too_late, Err(BodyError::Timeout)), "{too_late:?}");
    }
}
