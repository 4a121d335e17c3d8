//! Response bodies: empty, in-memory, JSON, and streamed from a file.

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::header::{self, HeaderValue};
use hyper::{body::Frame, Response, StatusCode};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

/// The body type of every response.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Read size when streaming a file: large enough that a 1 GiB download is
/// a few thousand writes, small enough to keep memory flat per connection.
const STREAM_CHUNK: usize = 256 * 1024;

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

/// A body streaming everything `reader` yields.
pub fn stream(reader: impl AsyncRead + Send + Sync + 'static) -> Body {
    let frames = ReaderStream::with_capacity(reader, STREAM_CHUNK).map_ok(Frame::data);
    StreamBody::new(frames).boxed()
}

/// How much of an oversized body is read and dropped before the error is
/// sent, so that a client that writes its whole body before reading the
/// response sees our error rather than a broken pipe. A larger body gets a
/// closed connection.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Reads a whole request body of at most `limit` bytes. `Ok(None)` when it
/// is larger (the rest is drained, up to a bound).
pub async fn collect_limited(
    mut body: hyper::body::Incoming,
    limit: usize,
) -> Result<Option<Bytes>, hyper::Error> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            if buf.len() + data.len() > limit {
                let mut seen = buf.len() + data.len();
                while seen <= limit + DRAIN_LIMIT {
                    match body.frame().await {
                        Some(Ok(f)) => seen += f.data_ref().map_or(0, Bytes::len),
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
