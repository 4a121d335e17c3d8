//! Berth's registry: the OCI Distribution API over hyper, its storage, and
//! the event log the webhooks are built on.
//!
//! # Layout
//! - `server`: accepts connections, gives each request an id and a span.
//! - `route`: the route table; every request is classified there, once,
//!   into a `Route` that says what access it needs and how it is counted.
//! - `auth`: who may do what (htpasswd users and roles; bearer tokens).
//! - `handlers`: one async function per endpoint (`get_blob`,
//!   `put_manifest`, ...), dispatched from the route.
//! - `policy`: retention, immutable tags, read-only mode.
//! - `upstream`: the pull-through cache, which fills the store from other
//!   registries before a pull is served from it.
//! - `storage`: blob bytes (files or S3-compatible object storage),
//!   metadata in the key-value store, and the operations handlers call;
//!   `storage::paths` draws the on-disk tree.
//! - `kv`: the key-value store (named trees, transactions, the event log),
//!   on sled or PostgreSQL.
//! - `events`: the event payload and the durable event log's reader view.
//! - `extension`: how other crates (webhooks, the Helm chart repository)
//!   serve their API on our port; `storage::extension` lends them storage.
//! - `manifest`, `types`, `query`, `body`, `request`, `error`, `metrics`,
//!   `tls`, `config`: what the above share.
//!
//! A request flows `server` → `route` → `auth` → `handlers` → `storage` →
//! `kv`; a manifest change and its event are committed in one transaction
//! and made durable before the 2xx.
//!
//! # Layering
//! - Each layer imports only the layers after it in that flow: storage
//!   never imports handlers or HTTP types, handlers never reach into `kv`.
//! - Other crates use only [`ext`] (extensions) and the items at this
//!   crate's root (the binary that runs a registry).

mod auth;
mod body;
mod config;
mod error;
mod events;
pub mod ext;
mod extension;
mod handlers;
mod kv;
mod manifest;
mod metrics;
mod policy;
mod query;
mod request;
mod route;
mod server;
mod storage;
mod tls;
mod types;
mod upstream;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use auth::{htpasswd_line, AuthConfig, Role};
pub use config::Config;
pub use error::{Error, ErrorCode};
pub use events::EventLog;
pub use policy::{ImmutableRule, RetentionRule, Rules};
pub use server::serve;
pub use storage::fsck::{Problem, Report as FsckReport};
pub use storage::gc::GcReport;
pub use storage::migrate::{migrate, MigrateReport};
pub use tls::{acceptor as tls_acceptor, provider as tls_provider};
pub use upstream::UpstreamConfig;

use std::sync::Arc;

use extension::{Extension, Mount, Mounted};
use storage::{Store, StoreConfig};

/// A registry: its configuration, its open store, and the extensions
/// served on its port.
pub struct Registry {
    config: Config,
    store: Store,
    extensions: Vec<Box<dyn Mounted>>,
    metrics: metrics::Metrics,
    auth: Option<auth::Auth>,
    /// When it was opened, for `/api/status`'s uptime.
    started: std::time::Instant,
    /// The pull-through cache's upstreams.
    upstreams: upstream::Upstreams,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefixes: Vec<_> = self.extensions.iter().map(|e| e.prefix()).collect();
        f.debug_struct("Registry")
            .field("config", &self.config)
            .field("extensions", &prefixes)
            .finish()
    }
}

impl Registry {
    /// Opens the store under `config.data_dir` (creating it if needed).
    pub async fn open(config: Config) -> Result<Self, Error> {
        let store_config = StoreConfig {
            allow_missing_references: config.allow_missing_references,
            quarantine: config.quarantine,
            max_open_uploads: config.max_open_uploads,
            metadata_url: config.metadata_url.clone(),
            blob_url: config.blob_url.clone(),
            location: config.location.clone(),
            min_free_bytes: config.min_free_bytes,
            rules: config.rules(),
            read_only: config.read_only,
        };
        let auth = auth::Auth::load(&config.auth)?;
        let store = Store::open(&config.data_dir, store_config).await?;
        let upstreams = upstream::Upstreams::open(&config.upstreams, &store.meta().db)?;
        Ok(Self {
            config,
            store,
            extensions: Vec::new(),
            metrics: metrics::Metrics::default(),
            auth,
            started: std::time::Instant::now(),
            upstreams,
        })
    }

    /// Serves `extension` under its prefix.
    pub fn mount<E: Extension>(&mut self, extension: Arc<E>) {
        self.extensions.push(Box::new(Mount(extension)));
    }

    /// Collects garbage (see [`storage::gc`]), keeping what extensions
    /// reference; with `dry_run`, only reports.
    pub async fn gc(&self, dry_run: bool) -> Result<GcReport, Error> {
        let mut roots = std::collections::HashSet::new();
        for ext in &self.extensions {
            roots.extend(ext.blob_roots().await?);
        }
        let c = &self.config;
        self.store
            .gc(dry_run, c.gc_grace, c.upload_expiry, roots)
            .await
    }

    /// Whether `dir` holds a store (so that a maintenance command on a
    /// mistyped path says so instead of creating an empty one).
    pub fn holds_store(dir: &std::path::Path) -> bool {
        storage::paths::Paths::new(dir).holds_store()
    }

    /// Why the store stopped working for good, if it did: the embedded
    /// database refuses every write after one the disk refused, until the
    /// process restarts. `/ready` answers 503 with it; `berth serve` exits.
    pub fn failure(&self) -> Option<String> {
        self.store.failure()
    }

    /// Checks the store; with `repair`, fixes what is safe to fix.
    pub async fn fsck(&self, repair: bool) -> Result<FsckReport, Error> {
        self.store.fsck(repair, self.config.upload_expiry).await
    }

    /// Storage for an extension: its own trees (named `{namespace}.{tree}`),
    /// transactions that commit its changes together with their events,
    /// a database of its own, the blob store and the event log (see
    /// [`ext::ExtensionStore`]).
    pub fn extension_store(&self, namespace: &str) -> ext::ExtensionStore {
        self.store.extension_store(namespace)
    }

    /// The event log's durable view.
    pub fn event_log(&self) -> Arc<EventLog> {
        self.store.meta().log.clone()
    }
}
