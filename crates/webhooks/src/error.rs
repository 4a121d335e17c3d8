//! The webhooks crate's error, mapped to the admin API's statuses.

use hyper::StatusCode;

/// What a webhook operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field breaks the contract's rules (400).
    #[error("invalid {0}: {1}")]
    Invalid(&'static str, String),
    /// The request body is not the expected JSON (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No webhook by that name (404).
    #[error("no webhook named {0:?}")]
    NotFound(String),
    /// The name is taken (409).
    #[error("a webhook named {0:?} already exists")]
    Exists(String),
    /// The registry holds its maximum number of webhooks (422).
    #[error("the registry already holds its maximum of {0} webhooks")]
    Quota(usize),
    /// No such endpoint or method (404/405).
    #[error("no such endpoint")]
    Route(StatusCode),
    /// The disk holding the store is full (507).
    #[error("{0}")]
    StorageFull(String),
    /// Storage failed; the cause is logged, not sent (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status of the admin API's reply.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(..) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Exists(_) => StatusCode::CONFLICT,
            Self::Quota(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Route(s) => *s,
            Self::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(..) => "INVALID_FIELD",
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::NotFound(_) => "WEBHOOK_NOT_FOUND",
            Self::Exists(_) => "WEBHOOK_EXISTS",
            Self::Quota(_) => "QUOTA_REACHED",
            Self::Route(_) => "UNSUPPORTED",
            Self::StorageFull(_) => "INSUFFICIENT_STORAGE",
            Self::Internal(_) => "INTERNAL",
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(format!("json: {e}"))
    }
}

impl From<registry::ext::Error> for Error {
    fn from(e: registry::ext::Error) -> Self {
        match e {
            registry::ext::Error::InsufficientStorage(why) => Self::StorageFull(why),
            e => Self::Internal(e.to_string()),
        }
    }
}
