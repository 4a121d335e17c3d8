//! What a handler knows about the request it serves, besides its path.

use std::time::Duration;

use crate::events;

/// Per-request context, for the registry's handlers and extensions alike.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The request as events record it (id, host, method, user agent).
    pub request: events::Request,
    /// How long the request body may pause between reads
    /// ([`crate::Config::body_idle_timeout`]), for whoever reads it.
    pub body_idle_timeout: Duration,
}
