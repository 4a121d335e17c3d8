//! Registry settings, as read from the `[registry]`-less top level of the
//! TOML file and overridden by command-line flags.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the registry can be configured with. Every field has a default,
/// so an empty configuration is a working one.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on; port 0 picks a free one.
    pub listen: String,
    /// Where blobs, uploads and metadata live.
    pub data_dir: PathBuf,
    /// Largest manifest accepted (the spec asks for at least 4 MiB).
    pub max_manifest_bytes: usize,
    /// Accept manifests and indexes that reference blobs or manifests the
    /// repository does not hold (for sparse mirrors). Off: such a push gets
    /// `MANIFEST_BLOB_UNKNOWN`.
    pub allow_missing_references: bool,
    /// Quarantine mode: a new manifest raises `quarantine` instead of `push`
    /// and cannot be pulled until `PATCH /api/quarantine/{repo}/{digest}`
    /// marks it `Passed` (then `push` fires) or `Failed` (it stays hidden).
    pub quarantine: bool,
    /// PEM certificate chain for HTTPS (with `tls_key`); empty: plain HTTP.
    pub tls_cert: PathBuf,
    /// PEM private key of `tls_cert`.
    pub tls_key: PathBuf,
    /// Access control (`[auth]`); off unless `htpasswd` is set.
    pub auth: crate::auth::AuthConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5000".into(),
            data_dir: PathBuf::from("berth-data"),
            max_manifest_bytes: 4 * 1024 * 1024,
            allow_missing_references: false,
            quarantine: false,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            auth: crate::auth::AuthConfig::default(),
        }
    }
}
