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
    /// How long a client may take to send a request's head: from accepting
    /// the connection to its first request, and between requests on a
    /// kept-alive connection (default `30s`). A client that sends half its
    /// headers and stalls would otherwise hold its connection forever.
    #[serde(deserialize_with = "timeout", serialize_with = "human")]
    pub header_timeout: Duration,
    /// How long a request body may pause between two reads before the
    /// request fails (default `60s`). Per pause, not in total, so a slow but
    /// steady upload of any size still completes.
    #[serde(deserialize_with = "timeout", serialize_with = "human")]
    pub body_idle_timeout: Duration,
    /// Upload sessions that may be open at once, registry-wide (default
    /// 1000). Past it, starting one gets 429 `TOOMANYREQUESTS`; finishing or
    /// cancelling one frees its slot. Each session holds a file and a record,
    /// so without a bound a client could open them until the disk is full.
    pub max_open_uploads: usize,
    /// Upload sessions older than this are abandoned: `fsck` reports them
    /// and `gc` removes them (default `24h`).
    #[serde(deserialize_with = "duration", serialize_with = "human")]
    pub upload_expiry: Duration,
    /// Garbage collection keeps unreferenced blobs stored or mounted more
    /// recently than this: a push uploads blobs before its manifest
    /// (default `1h`).
    #[serde(deserialize_with = "duration", serialize_with = "human")]
    pub gc_grace: Duration,
    /// Events the registry-wide event log keeps (default 100000, about
    /// 50 MB on disk); older ones are removed once every webhook has them
    /// queued. 0 keeps every event.
    pub event_retention: u64,
    /// Writes to a local store stop (507) while less than this many bytes
    /// would be left free on its disk (default 32 MiB); deletes may use
    /// half of it; 0 turns the guard off. See `storage/space.rs`.
    pub min_free_bytes: u64,
    /// PEM certificate chain for HTTPS (with `tls_key`); empty: plain HTTP.
    pub tls_cert: PathBuf,
    /// PEM private key of `tls_cert`.
    pub tls_key: PathBuf,
    /// Access control (`[auth]`); off unless `htpasswd` is set.
    pub auth: crate::auth::AuthConfig,
    /// Where metadata, the event log and the webhook queues live: empty for
    /// the embedded store under `data_dir` (the default), or
    /// `postgres://user:password@host:port/database` for PostgreSQL, shared
    /// by replicas.
    pub metadata_url: String,
    /// Where blobs live: empty for files under `data_dir` (the default), or
    /// `s3://bucket/prefix` for S3-compatible object storage, shared by
    /// replicas (endpoint, region and keys from the `AWS_*` variables).
    pub blob_url: String,
    /// The name of this replica's location (`westeurope`): its events carry
    /// it, and webhooks bound to a location receive only its events.
    pub location: String,
    /// Refuse every write (405) for a maintenance window; pulls go on.
    /// `PUT /api/maintenance` turns it on and off at run time too.
    pub read_only: bool,
    /// How often retention runs when there are rules (default `1h`; `0s`:
    /// only on demand, `berth retention`).
    #[serde(deserialize_with = "duration", serialize_with = "human")]
    pub retention_interval: Duration,
    /// Retention rules (`[[retention]]`; see `policy`).
    pub retention: Vec<crate::policy::RetentionRule>,
    /// Immutable-tag rules (`[[immutable]]`).
    pub immutable: Vec<crate::policy::ImmutableRule>,
    /// Upstream registries served as pull-through caches (`[[upstreams]]`).
    pub upstreams: Vec<crate::upstream::UpstreamConfig>,
}

impl Config {
    /// Checks what reading the file cannot: the listen address, the TLS
    /// pair, access control (the htpasswd file and its users), and the
    /// shared stores' URLs. `berth serve` and `berth config` both run it.
    pub fn validate(&self) -> Result<(), crate::Error> {
        use std::net::ToSocketAddrs;
        let bad = |what: String| Err(crate::Error::Config(what));
        if let Err(e) = self.listen.to_socket_addrs() {
            return bad(format!(
                "listen {:?}: {e} (expected HOST:PORT, such as 0.0.0.0:5000)",
                self.listen
            ));
        }
        if self.tls_cert.as_os_str().is_empty() != self.tls_key.as_os_str().is_empty() {
            return bad("TLS needs both tls_cert and tls_key".into());
        }
        crate::auth::Auth::load(&self.auth)?;
        if !self.metadata_url.is_empty() {
            let postgres = ["postgres://", "postgresql://"];
            if !postgres.iter().any(|p| self.metadata_url.starts_with(p)) {
                return bad("metadata_url: expected postgres://USER:PASSWORD@HOST/DATABASE".into());
            }
            if let Err(e) = self.metadata_url.parse::<tokio_postgres::Config>() {
                return bad(format!("metadata_url: {e}"));
            }
        }
        if !self.blob_url.is_empty() && !self.blob_url.starts_with("s3://") {
            return bad(format!(
                "blob_url {:?}: expected s3://BUCKET/PREFIX",
                self.blob_url
            ));
        }
        crate::upstream::validate(&self.upstreams).map_err(crate::Error::Config)?;
        self.rules().validate().map_err(crate::Error::Config)
    }

    /// The policy rules of the file.
    pub(crate) fn rules(&self) -> crate::policy::Rules {
        crate::policy::Rules {
            retention: self.retention.clone(),
            immutable: self.immutable.clone(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5000".into(),
            data_dir: PathBuf::from("berth-data"),
            max_manifest_bytes: 4 * 1024 * 1024,
            allow_missing_references: false,
            quarantine: false,
            header_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(60),
            max_open_uploads: 1000,
            upload_expiry: Duration::from_secs(24 * 3600),
            gc_grace: Duration::from_secs(3600),
            event_retention: 100_000,
            min_free_bytes: 32 << 20,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            auth: crate::auth::AuthConfig::default(),
            metadata_url: String::new(),
            blob_url: String::new(),
            location: String::new(),
            read_only: false,
            retention_interval: Duration::from_secs(3600),
            retention: Vec::new(),
            immutable: Vec::new(),
            upstreams: Vec::new(),
        }
    }
}

/// Writes a duration the way people do (`1h 30m`), for `serialize_with`.
pub fn human<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

/// Reads a period such as `"24h"` or `"0s"` (zero allowed), for
/// `deserialize_with`; a value that is not one is an error that says how to
/// write it.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| not_a_duration(&s, e))
}

/// [`human`] for an optional duration (absent when `None`).
pub fn human_opt<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => human(d, s),
        None => s.serialize_none(),
    }
}

/// [`duration`] for an optional one.
pub fn duration_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s)
        .map(Some)
        .map_err(|e| not_a_duration(&s, e))
}

fn not_a_duration<E: serde::de::Error>(s: &str, e: humantime::DurationError) -> E {
    E::custom(format!(
        "{s:?} is not a duration ({e}): write it as 30s, 5m, 1h or 2d"
    ))
}

/// Reads `"1s"`, `"250ms"`, `"2m"`; zero is refused, since a zero timeout
/// would fail every request.
fn timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    let d = humantime::parse_duration(&s).map_err(|e| not_a_duration(&s, e))?;
    if d.is_zero() {
        return Err(serde::de::Error::custom("a timeout must be longer than 0s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timeouts_read_and_print_as_humantime() {
        let read = |v: serde_json::Value| serde_json::from_value::<Config>(v);
        let c = read(json!({"header_timeout": "1s", "body_idle_timeout": "250ms"})).unwrap();
        assert_eq!(c.header_timeout, Duration::from_secs(1));
        assert_eq!(c.body_idle_timeout, Duration::from_millis(250));
        assert_eq!(c.max_open_uploads, 1000);
        let printed = serde_json::to_value(&c).unwrap();
        assert_eq!(printed["body_idle_timeout"], "250ms");
        assert_eq!(printed["header_timeout"], "1s");
        assert!(read(json!({"header_timeout": "0s"})).is_err());
        assert!(read(json!({"header_timeout": 5})).is_err());
        assert!(read(json!({"body_idle_timeout": "soon"})).is_err());
    }
}
