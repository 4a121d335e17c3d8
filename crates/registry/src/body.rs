//! Response bodies: empty, in-memory, JSON, and streamed from a file.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::Body as _;
use hyper::header::{self, HeaderValue};
use hyper::{body::Frame, Response, StatusCode};

use crate::storage::file_io::BlobStream;

/// The body type of every response.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A body sending each piece of `chunks` as it is.
pub fn stream(chunks: BlobStream) -> Body {
    StreamBody::new(chunks.map_ok(Frame::data)).boxed()
}

/// How much of an oversized body is read and dropped before the error is
/// sent, so that a client that writes its whole body before reading the
/// response sees our error rather than a broken pipe. A larger body gets a
/// closed connection.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Why a request body could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The connection failed or the body's framing was broken (a body
    /// shorter than its `Content-Length`, a malformed chunk).
    Http(hyper::Error),
    /// The client sent nothing for this long.
    Idle(Duration),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(e) => e.fmt(f),
            Self::Idle(d) => write!(f, "no data received for {}", humantime::format_duration(*d)),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads a whole request body of at most `limit` bytes, failing when the
/// client pauses for longer than `idle`. `Ok(None)` when it is larger: the
/// rest is drained, up to a bound; a body that announces more than that
/// bound in its `Content-Length` is refused without reading any of it.
pub async fn collect_limited(
    mut body: hyper::body::Incoming,
    limit: usize,
    idle: Duration,
) -> Result<Option<Bytes>, ReadError> {
    let announced = body.size_hint().lower();
    if announced > (limit as u64).saturating_add(DRAIN_LIMIT as u64) {
        return Ok(None);
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = next_frame(&mut body, idle).await? {
        if let Some(data) = frame.data_ref() {
            if buf.len() + data.len() > limit {
                let mut seen = buf.len() + data.len();
                while seen <= limit + DRAIN_LIMIT {
                    match next_frame(&mut body, idle).await {
                        Ok(Some(f)) => seen += f.data_ref().map_or(0, Bytes::len),
                        _ => break,
                    }
                }
                return Ok(None);
            }
            buf.extend_from_slice(data);
        }
    }
    Ok(Some(buf.freeze()))
}

/// The next frame of `body`, waiting at most `idle` for it.
async fn next_frame(
    body: &mut hyper::body::Incoming,
    idle: Duration,
) -> Result<Option<Frame<Bytes>>, ReadError> {
    match tokio::time::timeout(idle, body.frame()).await {
        Ok(frame) => frame.transpose().map_err(ReadError::Http),
        Err(_) => Err(ReadError::Idle(idle)),
    }
}

/// A JSON response with the given status.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A header value from text we built ourselves (digests, numbers, paths of
/// validated names), which is always visible ASCII.
pub fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}
