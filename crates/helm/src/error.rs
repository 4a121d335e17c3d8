//! The chart repository's error, answered as ChartMuseum does:
//! `{"error": "message"}` with the status that fits.

use hyper::{Response, StatusCode};
use registry::ext::body::{self, Body};

/// What a chart repository request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not a valid chart, provenance file or request (400).
    #[error("{0}")]
    BadRequest(String),
    /// No such chart, version or file (404).
    #[error("{0}")]
    NotFound(String),
    /// The version (or its provenance file) is already stored and `?force`
    /// was not given (409).
    #[error("{0}")]
    Conflict(String),
    /// The request body exceeds the upload limit, in bytes (413).
    #[error("the upload exceeds the limit of {0} bytes")]
    TooLarge(usize),
    /// No such endpoint (404) or not for this method (405).
    #[error("{}", if *.0 == StatusCode::METHOD_NOT_ALLOWED { "method not allowed on this endpoint" } else { "not found" })]
    Route(StatusCode),
    /// The disk holding the store is full (507).
    #[error("{0}")]
    StorageFull(String),
    /// Storage failed; the cause is logged, never sent (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status of the reply.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Route(s) => *s,
            Self::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// `{"error": "..."}` with [`Error::status`]; HEAD gets the status alone.
    pub fn into_response(self, head: bool) -> Response<Body> {
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "chart repository");
                "internal error (see the registry log for this request id)".to_owned()
            }
            e => e.to_string(),
        };
        let mut resp = body::json(self.status(), &serde_json::json!({"error": message}));
        if head {
            *resp.body_mut() = body::empty();
        }
        resp
    }
}

impl From<registry::ext::Error> for Error {
    fn from(e: registry::ext::Error) -> Self {
        match e {
            registry::ext::Error::InsufficientStorage(why) => Self::StorageFull(why),
            e => Self::Internal(format!("registry: {e}")),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(format!("json: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        registry::ext::Error::from(e).into()
    }
}
