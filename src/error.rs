//! What can go wrong starting or watching a Berth.

use std::path::PathBuf;
use std::time::Duration;

/// The library's error.
#[derive(Debug)]
pub enum Error {
    /// The listen address cannot be bound.
    Listen(String, std::io::Error),
    /// The data directory cannot be opened.
    Open(PathBuf, registry::Error),
    /// The TLS certificate or key cannot be used.
    Tls(registry::Error),
    /// The webhooks cannot start.
    Webhooks(webhooks::Error),
    /// The chart repository cannot open.
    Helm(helm::Error),
    /// A temporary directory cannot be created.
    TempDir(std::io::Error),
    /// The event log cannot be read.
    Events(registry::Error),
    /// Fewer events happened than awaited.
    Timeout {
        /// How many were awaited.
        wanted: usize,
        /// How many happened.
        seen: usize,
        /// How long it waited.
        timeout: Duration,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Listen(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            Self::Open(dir, e) => write!(f, "cannot open {}: {e}", dir.display()),
            Self::Webhooks(e) => write!(f, "cannot start webhooks: {e}"),
            Self::Helm(e) => write!(f, "cannot open the chart repository: {e}"),
            Self::Tls(e) => write!(f, "{e}"),
            Self::TempDir(e) => write!(f, "cannot create a temporary directory: {e}"),
            Self::Events(e) => write!(f, "cannot read the event log: {e}"),
            Self::Timeout {
                wanted,
                seen,
                timeout,
            } => write!(
                f,
                "saw {seen} of {wanted} events within {}",
                humantime::format_duration(*timeout)
            ),
        }
    }
}

impl std::error::Error for Error {}
