//! Registry settings, as read from the `[registry]`-less top level of the
//! TOML file and overridden by command-line flags.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    /// Upload sessions older than this are abandoned: `fsck` reports them
    /// and `gc` removes them (default `24h`).
    #[serde(deserialize_with = "duration", serialize_with = "human")]
    pub upload_expiry: Duration,
    /// Garbage collection keeps unreferenced blobs stored or mounted more
    /// recently than this: a push uploads blobs before its manifest
    /// (default `1h`).
    #[serde(deserialize_with = "duration", serialize_with = "human")]
    pub gc_grace: Duration,
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
            upload_expiry: Duration::from_secs(24 * 3600),
            gc_grace: Duration::from_secs(3600),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            auth: crate::auth::AuthConfig::default(),
        }
    }
}

fn human<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(serde::de::Error::custom)
}
