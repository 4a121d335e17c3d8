//! The webhooks crate's error, mapped to the admin API's statuses.

use std::fmt;

use hyper::StatusCode;

/// What a webhook operation can fail with.
#[derive(Debug)]
pub enum Error {
    /// A field breaks the contract's rules (400).
    Invalid(&'static str, String),
    /// The request body is not the expected JSON (400).
    BadRequest(String),
    /// No webhook by that name (404).
    NotFound(String),
    /// The name is taken (409).
    Exists(String),
    /// The registry holds its maximum number of webhooks (422).
    Quota(usize),
    /// No such endpoint or method (404/405).
    Route(StatusCode),
    /// Storage failed; the cause is logged, not sent (500).
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
            Self::Internal(_) => "INTERNAL",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(field, why) => write!(f, "invalid {field}: {why}"),
            Self::BadRequest(why) => write!(f, "bad request: {why}"),
            Self::NotFound(name) => write!(f, "no webhook named {name:?}"),
            Self::Exists(name) => write!(f, "a webhook named {name:?} already exists"),
            Self::Quota(max) => write!(
                f,
                "the registry already holds its maximum of {max} webhooks"
            ),
            Self::Route(_) => f.write_str("no such endpoint"),
            Self::Internal(_) => f.write_str("internal error (see the registry log)"),
        }
    }
}

impl std::error::Error for Error {}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Self::Internal(format!("sled: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(format!("json: {e}"))
    }
}

impl From<registry::Error> for Error {
    fn from(e: registry::Error) -> Self {
        Self::Internal(e.to_string())
    }
}
