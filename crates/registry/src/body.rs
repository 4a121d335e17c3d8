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
