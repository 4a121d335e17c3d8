//! The registry's error type and its mapping onto the spec's error JSON.
//!
//! Every [`Error`] variant maps to exactly one of the spec's 14 codes
//! ([`ErrorCode`]) and one HTTP status. Causes from I/O or sled are logged once
//! with the request id and never appear in a response.

use std::fmt;

use hyper::{header, Response, StatusCode};
use serde_json::json;

use crate::body::{self, Body};

/// The spec's error codes (code-1 .. code-14); the `code` field of an error
/// body MUST be one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// code-1: blob unknown to registry.
    BlobUnknown,
    /// code-2: blob upload invalid.
    BlobUploadInvalid,
    /// code-3: blob upload unknown to registry.
    BlobUploadUnknown,
    /// code-4: provided digest did not match uploaded content.
    DigestInvalid,
    /// code-5: manifest references a manifest or blob unknown to registry.
    ManifestBlobUnknown,
    /// code-6: manifest invalid.
    ManifestInvalid,
    /// code-7: manifest unknown to registry.
    ManifestUnknown,
    /// code-8: invalid repository name.
    NameInvalid,
    /// code-9: repository name not known to registry.
    NameUnknown,
    /// code-10: provided length did not match content length.
    SizeInvalid,
    /// code-11: authentication required.
    Unauthorized,
    /// code-12: requested access to the resource is denied.
    Denied,
    /// code-13: the operation is unsupported.
    Unsupported,
    /// code-14: too many requests.
    TooManyRequests,
}

impl ErrorCode {
    /// The wire form, e.g. `BLOB_UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BlobUnknown => "BLOB_UNKNOWN",
            Self::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Self::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Self::DigestInvalid => "DIGEST_INVALID",
            Self::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Self::ManifestInvalid => "MANIFEST_INVALID",
            Self::ManifestUnknown => "MANIFEST_UNKNOWN",
            Self::NameInvalid => "NAME_INVALID",
            Self::NameUnknown => "NAME_UNKNOWN",
            Self::SizeInvalid => "SIZE_INVALID",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Denied => "DENIED",
            Self::Unsupported => "UNSUPPORTED",
            Self::TooManyRequests => "TOOMANYREQUESTS",
        }
    }

    /// The spec's description of the code, used as the `message`.
    pub fn message(self) -> &'static str {
        match self {
            Self::BlobUnknown => "blob unknown to registry",
            Self::BlobUploadInvalid => "blob upload invalid",
            Self::BlobUploadUnknown => "blob upload unknown to registry",
            Self::DigestInvalid => "provided digest did not match uploaded content",
            Self::ManifestBlobUnknown => {
                "manifest references a manifest or blob unknown to registry"
            }
            Self::ManifestInvalid => "manifest invalid",
            Self::ManifestUnknown => "manifest unknown to registry",
            Self::NameInvalid => "invalid repository name",
            Self::NameUnknown => "repository name not known to registry",
            Self::SizeInvalid => "provided length did not match content length",
            Self::Unauthorized => "authentication required",
            Self::Denied => "requested access to the resource is denied",
            Self::Unsupported => "the operation is unsupported",
            Self::TooManyRequests => "too many requests",
        }
    }
}

/// The `Retry-After` of a 429, in seconds (the spec says a 429 SHOULD
/// carry one). Limits are on things clients finish within seconds (upload
/// sessions), so a short wait is worth it.
const RETRY_AFTER_SECS: u32 = 10;

/// Everything a request can fail with.
#[derive(Debug)]
pub enum Error {
    /// No route matches the path.
    RouteUnknown,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The repository name breaks the grammar.
    NameInvalid(String),
    /// The repository has no content.
    NameUnknown,
    /// A digest in the URL or query is malformed or of an unknown algorithm.
    DigestMalformed(String),
    /// A tag in the URL or query is malformed.
    TagInvalid(String),
    /// A query parameter is malformed.
    BadParameter(&'static str),
    /// The blob is not in the repository.
    BlobUnknown,
    /// The upload session does not exist (or has completed).
    UploadUnknown,
    /// The upload request is malformed (e.g. PUT without `digest`).
    UploadInvalid(String),
    /// A chunk does not start where the upload ends (416).
    RangeNotSatisfiable {
        /// Current size of the upload, for the `Range` header of the reply.
        offset: u64,
    },
    /// A blob `Range` request cannot be satisfied (416).
    ReadRangeNotSatisfiable {
        /// Size of the blob, for `Content-Range: bytes */size`.
        size: u64,
    },
    /// The uploaded content does not hash to the digest given.
    DigestMismatch {
        /// The digest the client claimed.
        expected: String,
        /// The digest of what was received.
        actual: String,
    },
    /// `Content-Length` or `Content-Range` disagree with the bytes received.
    SizeInvalid(String),
    /// The manifest is malformed.
    ManifestInvalid(String),
    /// The manifest is larger than the configured limit (413).
    ManifestTooLarge(usize),
    /// The manifest references blobs or manifests not in the repository.
    ManifestBlobUnknown(Vec<String>),
    /// No manifest under that reference.
    ManifestUnknown,
    /// A resource limit was reached.
    TooManyRequests(&'static str),
    /// Credentials are missing or wrong (401 with a Basic challenge).
    Unauthorized(&'static str),
    /// The user's role does not allow this (403).
    Denied,
    /// The configuration cannot be used (reported at start-up).
    Config(String),
    /// The request body could not be read (client went away, bad framing).
    BodyRead(String),
    /// An internal failure; the cause is logged, not sent.
    Internal(String),
}

impl Error {
    /// An internal error from any cause, logged by [`Error::into_response`].
    pub fn internal(cause: impl fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The spec code and the HTTP status this error is answered with.
    pub fn code_and_status(&self) -> (ErrorCode, StatusCode) {
        use ErrorCode as C;
        match self {
            Self::RouteUnknown => (C::Unsupported, StatusCode::NOT_FOUND),
            Self::MethodNotAllowed => (C::Unsupported, StatusCode::METHOD_NOT_ALLOWED),
            Self::NameInvalid(_) => (C::NameInvalid, StatusCode::BAD_REQUEST),
            Self::NameUnknown => (C::NameUnknown, StatusCode::NOT_FOUND),
            Self::DigestMalformed(_) => (C::DigestInvalid, StatusCode::BAD_REQUEST),
            Self::TagInvalid(_) => (C::ManifestInvalid, StatusCode::BAD_REQUEST),
            Self::BadParameter(_) => (C::Unsupported, StatusCode::BAD_REQUEST),
            Self::BlobUnknown => (C::BlobUnknown, StatusCode::NOT_FOUND),
            Self::UploadUnknown => (C::BlobUploadUnknown, StatusCode::NOT_FOUND),
            Self::UploadInvalid(_) => (C::BlobUploadInvalid, StatusCode::BAD_REQUEST),
            Self::RangeNotSatisfiable { .. } => {
                (C::BlobUploadInvalid, StatusCode::RANGE_NOT_SATISFIABLE)
            }
            Self::ReadRangeNotSatisfiable { .. } => {
                (C::BlobUnknown, StatusCode::RANGE_NOT_SATISFIABLE)
            }
            Self::DigestMismatch { .. } => (C::DigestInvalid, StatusCode::BAD_REQUEST),
            Self::SizeInvalid(_) => (C::SizeInvalid, StatusCode::BAD_REQUEST),
            Self::ManifestInvalid(_) => (C::ManifestInvalid, StatusCode::BAD_REQUEST),
            Self::ManifestTooLarge(_) => (C::SizeInvalid, StatusCode::PAYLOAD_TOO_LARGE),
            Self::ManifestBlobUnknown(_) => (C::ManifestBlobUnknown, StatusCode::BAD_REQUEST),
            Self::ManifestUnknown => (C::ManifestUnknown, StatusCode::NOT_FOUND),
            Self::TooManyRequests(_) => (C::TooManyRequests, StatusCode::TOO_MANY_REQUESTS),
            Self::Unauthorized(_) => (C::Unauthorized, StatusCode::UNAUTHORIZED),
            Self::Denied => (C::Denied, StatusCode::FORBIDDEN),
            Self::Config(_) => (C::Unsupported, StatusCode::INTERNAL_SERVER_ERROR),
            Self::BodyRead(_) => (C::SizeInvalid, StatusCode::BAD_REQUEST),
            Self::Internal(_) => (C::Unsupported, StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The spec's error response: `{"errors":[{code, message, detail}]}`,
    /// plus the headers some errors need (`Range` after a 416 on an upload,
    /// `Content-Range` after a 416 on a read, `Retry-After` with a 429). HEAD responses drop the body
    /// in the server layer.
    pub fn into_response(self) -> Response<Body> {
        let (code, status) = self.code_and_status();
        if let Self::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let detail = self.to_string();
        let json = json!({"errors": [{
            "code": code.as_str(),
            "message": code.message(),
            "detail": detail,
        }]});
        let mut resp = body::json(status, &json);
        let headers = resp.headers_mut();
        match self {
            Self::RangeNotSatisfiable { offset } => {
                let end = offset.saturating_sub(1);
                headers.insert(header::RANGE, body::header_value(&format!("0-{end}")));
            }
            Self::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Basic realm=\"berth\""),
                );
            }
            Self::ReadRangeNotSatisfiable { size } => {
                headers.insert(
                    header::CONTENT_RANGE,
                    body::header_value(&format!("bytes */{size}")),
                );
            }
            Self::TooManyRequests(_) => {
                headers.insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
            }
            _ => {}
        }
        resp
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RouteUnknown => f.write_str("no such endpoint"),
            Self::MethodNotAllowed => f.write_str("method not allowed on this endpoint"),
            Self::NameInvalid(n) => write!(f, "invalid repository name {n:?}"),
            Self::NameUnknown => f.write_str("repository not found"),
            Self::DigestMalformed(d) => write!(
                f,
                "invalid digest {d:?}: expected sha256:<64 hex> or sha512:<128 hex>"
            ),
            Self::TagInvalid(t) => write!(f, "invalid tag {t:?}"),
            Self::BadParameter(p) => write!(f, "invalid query parameter {p:?}"),
            Self::BlobUnknown => f.write_str("blob not found in this repository"),
            Self::UploadUnknown => f.write_str("upload session not found"),
            Self::UploadInvalid(why) => write!(f, "{why}"),
            Self::RangeNotSatisfiable { offset } => {
                write!(f, "chunk out of order: the upload holds {offset} bytes, the next chunk must start there")
            }
            Self::ReadRangeNotSatisfiable { size } => {
                write!(f, "range not satisfiable for a blob of {size} bytes")
            }
            Self::DigestMismatch { expected, actual } => {
                write!(f, "content hashes to {actual}, not {expected}")
            }
            Self::SizeInvalid(why) => write!(f, "{why}"),
            Self::ManifestInvalid(why) => write!(f, "{why}"),
            Self::ManifestTooLarge(max) => write!(f, "manifest exceeds the limit of {max} bytes"),
            Self::ManifestBlobUnknown(missing) => {
                write!(f, "not in this repository: {}", missing.join(", "))
            }
            Self::ManifestUnknown => f.write_str("manifest not found"),
            Self::TooManyRequests(what) => write!(f, "limit reached: {what}"),
            Self::Unauthorized(why) => f.write_str(why),
            Self::Denied => f.write_str("your role does not allow this request"),
            Self::Config(why) => f.write_str(why),
            Self::BodyRead(why) => write!(f, "could not read the request body: {why}"),
            Self::Internal(_) => {
                f.write_str("internal error (see the registry log for this request id)")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::internal(format_args!("io: {e}"))
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Self::internal(format_args!("sled: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::internal(format_args!("json: {e}"))
    }
}
