//! What can go wrong starting or watching a Berth.

use std::path::PathBuf;
use std::time::Duration;

/// The library's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is not usable (see [`crate::config::File::validate`]).
    #[error("{0}")]
    Invalid(String),
    /// The listen address cannot be bound.
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
    /// The store cannot be opened.
    #[error("cannot open the store in {dir}: {1}", dir = .0.display())]
    Open(PathBuf, registry::Error),
    /// The TLS certificate or key cannot be used.
    #[error("{0}")]
    Tls(registry::Error),
    /// The webhooks cannot start.
    #[error("cannot start webhooks: {0}")]
    Webhooks(webhooks::Error),
    /// The chart repository cannot open.
    #[error("cannot open the chart repository: {0}")]
    Helm(helm::Error),
    /// A temporary directory cannot be created.
    #[error("cannot create a temporary directory: {0}")]
    TempDir(std::io::Error),
    /// The event log cannot be read.
    #[error("cannot read the event log: {0}")]
    Events(registry::Error),
    /// Fewer events happened than awaited.
    #[error("saw {seen} of {wanted} events within {}", humantime::format_duration(*.timeout))]
    Timeout {
        /// How many were awaited.
        wanted: usize,
        /// How many happened.
        seen: usize,
        /// How long it waited.
        timeout: Duration,
    },
}
