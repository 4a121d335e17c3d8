//! The registry's error type and its mapping onto the spec's error JSON.
//!
//! Every [`Error`] variant maps to exactly one of the spec's 14 codes
//! ([`ErrorCode`]), or Berth's one code of its own (a full disk, a 5xx the
//! spec's table does not cover), and one HTTP status. An internal error's
//! cause (I/O, sled, PostgreSQL) is in its `Display`, for logs and start-up
//! messages; it is logged once with the request id and never appears in a
//! response.

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
    /// Berth's own: the storage is full (507). The spec's table is for 4xx
    /// answers; this code follows its grammar.
    InsufficientStorage,
    /// Berth's own: an upstream a pull needs cannot be reached (503).
    Unavailable,
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
            Self::InsufficientStorage => "INSUFFICIENT_STORAGE",
            Self::Unavailable => "UNAVAILABLE",
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
            Self::InsufficientStorage => "the registry's storage is full",
            Self::Unavailable => "the upstream registry is unavailable",
        }
    }
}

/// The `Retry-After` of a 429, in seconds (the spec says a 429 SHOULD
/// carry one). Limits are on things clients finish within seconds (upload
/// sessions), so a short wait is worth it.
const RETRY_AFTER_SECS: u32 = 10;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No route matches the path.
    #[error("no such endpoint")]
    RouteUnknown,
    /// The route exists but not for this method.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// The repository name breaks the grammar.
    #[error("invalid repository name {0:?}")]
    NameInvalid(String),
    /// The repository has no content.
    #[error("repository not found")]
    NameUnknown,
    /// A digest in the URL or query is malformed or of an unknown algorithm.
    #[error("invalid digest {0:?}: expected sha256:<64 hex> or sha512:<128 hex>")]
    DigestMalformed(String),
    /// A tag in the URL or query is malformed.
    #[error("invalid tag {0:?}")]
    TagInvalid(String),
    /// A query parameter is malformed.
    #[error("invalid query parameter {0:?}")]
    BadParameter(&'static str),
    /// The blob is not in the repository.
    #[error("blob not found in this repository")]
    BlobUnknown,
    /// The upload session does not exist (or has completed).
    #[error("upload session not found")]
    UploadUnknown,
    /// The upload request is malformed (e.g. PUT without `digest`).
    #[error("{0}")]
    UploadInvalid(String),
    /// A chunk does not start where the upload ends (416).
    #[error(
        "chunk out of order: the upload holds {offset} bytes, the next chunk must start there"
    )]
    RangeNotSatisfiable {
        /// Current size of the upload, for the `Range` header of the reply.
        offset: u64,
    },
    /// A blob `Range` request cannot be satisfied (416).
    #[error("range not satisfiable for a blob of {size} bytes")]
    ReadRangeNotSatisfiable {
        /// Size of the blob, for `Content-Range: bytes */size`.
        size: u64,
    },
    /// The uploaded content does not hash to the digest given.
    #[error("content hashes to {actual}, not {expected}")]
    DigestMismatch {
        /// The digest the client claimed.
        expected: String,
        /// The digest of what was received.
        actual: String,
    },
    /// `Content-Length` or `Content-Range` disagree with the bytes received.
    #[error("{0}")]
    SizeInvalid(String),
    /// The manifest is malformed.
    #[error("{0}")]
    ManifestInvalid(String),
    /// The manifest is larger than the configured limit (413).
    #[error("manifest exceeds the limit of {0} bytes")]
    ManifestTooLarge(usize),
    /// The manifest references blobs or manifests not in the repository.
    #[error("not in this repository: {}", .0.join(", "))]
    ManifestBlobUnknown(Vec<String>),
    /// No manifest under that reference.
    #[error("manifest not found")]
    ManifestUnknown,
    /// A resource limit was reached.
    #[error("limit reached: {0}")]
    TooManyRequests(&'static str),
    /// Credentials are missing or wrong (401 with a Basic challenge).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// No token, or one that is not good enough (401 with a Bearer
    /// challenge naming the scope needed; see `auth::token`).
    #[error("{message}")]
    Challenge {
        /// Why, for the error body.
        message: String,
        /// The `WWW-Authenticate` value.
        header: String,
    },
    /// The user's role does not allow this (403).
    #[error("your role does not allow this request")]
    Denied,
    /// A write the registry's setup refuses (403 `DENIED`), saying why: an
    /// immutable tag would move or go, a push into a pull-through cache.
    #[error("{0}")]
    Refused(String),
    /// A state-changing request another site's page made (403 `DENIED`).
    #[error(
        "refused: a page of another site made this request (its Origin or Sec-Fetch-Site says so)"
    )]
    CrossSite,
    /// The registry is read-only (405 `UNSUPPORTED`).
    #[error(
        "the registry is read-only (maintenance): pulls work, writes are refused until it ends"
    )]
    ReadOnly,
    /// The upstream of a cached repository cannot serve a pull (503).
    #[error("the upstream registry cannot be reached: {0}")]
    Unavailable(String),
    /// A request's content breaks a rule of the admin API (400).
    #[error("{0}")]
    Invalid(String),
    /// The configuration cannot be used (reported at start-up).
    #[error("{0}")]
    Config(String),
    /// The request body could not be read (client went away, bad framing).
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// The disk holding the store is full, or too nearly to write (507).
    #[error("{0}")]
    InsufficientStorage(String),
    /// An internal failure; the cause is logged, not sent.
    #[error("internal error: {0}")]
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
            Self::Unauthorized(_) | Self::Challenge { .. } => {
                (C::Unauthorized, StatusCode::UNAUTHORIZED)
            }
            Self::Denied | Self::Refused(_) | Self::CrossSite => (C::Denied, StatusCode::FORBIDDEN),
            Self::ReadOnly => (C::Unsupported, StatusCode::METHOD_NOT_ALLOWED),
            Self::Unavailable(_) => (C::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            Self::Invalid(_) => (C::Unsupported, StatusCode::BAD_REQUEST),
            Self::Config(_) => (C::Unsupported, StatusCode::INTERNAL_SERVER_ERROR),
            Self::BodyRead(_) => (C::SizeInvalid, StatusCode::BAD_REQUEST),
            Self::InsufficientStorage(_) => {
                (C::InsufficientStorage, StatusCode::INSUFFICIENT_STORAGE)
            }
            Self::Internal(_) => (C::Unsupported, StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The spec's error response: `{"errors":[{code, message, detail}]}`,
    /// plus the headers some errors need (`Range` after a 416 on an upload,
    /// `Content-Range` after a 416 on a read, `Retry-After` with a 429). HEAD responses drop the body
    /// in the server layer.
    pub fn into_response(self) -> Response<Body> {
        let (code, status) = self.code_and_status();
        let detail = match &self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                "internal error (see the registry log for this request id)".to_owned()
            }
            Self::InsufficientStorage(cause) => {
                tracing::warn!(%cause, "storage full");
                self.to_string()
            }
            _ => self.to_string(),
        };
        // Clients show the message (docker prints `code: message`): where
        // the detail is what the user must know, it is the message too.
        let message = match &self {
            Self::Refused(_)
            | Self::ReadOnly
            | Self::InsufficientStorage(_)
            | Self::Unavailable(_) => detail.clone(),
            _ => code.message().to_owned(),
        };
        let json = json!({"errors": [{
            "code": code.as_str(),
            "message": message,
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
            Self::Challenge { header: value, .. } => {
                headers.insert(header::WWW_AUTHENTICATE, body::header_value(&value));
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

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if is_storage_full(&e) {
            return Self::InsufficientStorage(format!("the disk is full: {e}"));
        }
        Self::internal(format_args!("io: {e}"))
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(e) if is_storage_full(&e) => {
                Self::InsufficientStorage(format!("the disk is full: {e}"))
            }
            e => Self::internal(format_args!("sled: {e}")),
        }
    }
}

/// Whether `e` says the disk (or the user's quota on it) is full.
pub(crate) fn is_storage_full(e: &std::io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    use std::io::ErrorKind::{QuotaExceeded, StorageFull};
    matches!(e.kind(), StorageFull | QuotaExceeded)
        || matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::internal(format_args!("json: {e}"))
    }
}
