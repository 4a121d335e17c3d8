//! Berth's registry: the OCI Distribution API over hyper, its storage, and
//! the event log the webhooks are built on.
//!
//! # Layout
//! - [`server`]: accepts connections, gives each request an id and a span.
//! - [`auth`]: who may do what (htpasswd users and roles).
//! - [`tls`]: the HTTPS acceptor.
//! - [`route`]: parses a path into a typed [`route::Route`].
//! - `handlers`: one async function per endpoint (`get_blob`, `put_manifest`, ...).
//! - [`storage`]: blob bytes behind a trait (filesystem now), metadata in sled,
//!   and the operations handlers call; [`storage::paths`] draws the on-disk tree.
//! - [`manifest`]: what a pushed manifest references.
//! - [`events`]: the event payload and the durable event log.
//! - [`metrics`]: request counts and traffic for `/metrics`.
//! - [`types`]: validated names, tags, digests, ranges and upload ids.
//! - [`error`]: the error enum and its mapping to the spec's codes.
//! - [`extension`]: how other crates (webhooks, the Helm chart repository)
//!   serve their API on our port; [`storage::extension`] lends them storage.
//!
//! A request flows `server` → `route` → `handlers` → `storage`; a manifest
//! change and its event are committed in one sled transaction and flushed
//! before the 2xx.

pub mod auth;
pub mod body;
pub mod config;
pub mod error;
pub mod events;
pub mod extension;
pub mod handlers;
pub mod manifest;
pub mod metrics;
pub mod route;
pub mod server;
pub mod storage;
pub mod tls;
pub mod types;

pub use config::Config;
pub use error::{Error, ErrorCode};

use std::sync::Arc;

use extension::Extension;
use storage::{Store, StoreConfig};

/// A registry: its configuration, its open store, and the extensions
/// served on its port.
pub struct Registry {
    config: Config,
    store: Store,
    extensions: Vec<Arc<dyn Extension>>,
    metrics: metrics::Metrics,
    auth: Option<auth::Auth>,
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
    pub fn open(config: Config) -> Result<Self, Error> {
        let store_config = StoreConfig {
            allow_missing_references: config.allow_missing_references,
            quarantine: config.quarantine,
            max_open_uploads: config.max_open_uploads,
        };
        let auth = auth::Auth::load(&config.auth)?;
        let store = Store::open(&config.data_dir, store_config)?;
        Ok(Self {
            config,
            store,
            extensions: Vec::new(),
            metrics: metrics::Metrics::default(),
            auth,
        })
    }

    /// Serves `extension` under its prefix.
    pub fn mount(&mut self, extension: Arc<dyn Extension>) {
        self.extensions.push(extension);
    }

    /// Collects garbage (see [`storage::gc`]), keeping what extensions
    /// reference; with `dry_run`, only reports.
    pub async fn gc(&self, dry_run: bool) -> Result<storage::gc::GcReport, Error> {
        let mut roots = std::collections::HashSet::new();
        for ext in &self.extensions {
            roots.extend(ext.blob_roots().await?);
        }
        let c = &self.config;
        self.store
            .gc(dry_run, c.gc_grace, c.upload_expiry, roots)
            .await
    }

    /// Checks the store; with `repair`, fixes what is safe to fix.
    pub async fn fsck(&self, repair: bool) -> Result<storage::fsck::Report, Error> {
        self.store.fsck(repair, self.config.upload_expiry).await
    }

    /// Storage for an extension: its own sled trees (named
    /// `{namespace}.{tree}`), the blob store, and transactions that commit
    /// its changes together with their events (see
    /// [`storage::extension::ExtensionStore`]).
    pub fn extension_store(&self, namespace: &str) -> storage::extension::ExtensionStore {
        self.store.extension_store(namespace)
    }

    /// The event log's durable view, for the webhooks dispatcher.
    pub fn event_log(&self) -> Arc<events::EventLog> {
        self.store.meta().log.clone()
    }
}
