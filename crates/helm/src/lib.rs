//! Berth's Helm chart repository: ChartMuseum's multi-tenant HTTP API under
//! `/helm` on the registry's port, an `index.yaml` kept incrementally, and
//! `chart_push`/`chart_delete` events in the registry's event log (so the
//! webhooks deliver them like any other event).
//!
//! # Layout
//! - [`route`]: requests under `/helm` into a typed [`route::Route`], which
//!   says what access each needs.
//! - [`api`]: one handler per endpoint, and the [`registry::ext::Extension`]
//!   that mounts them.
//! - [`chart`]: reading and checking an uploaded `.tgz`.
//! - [`metadata`]: `Chart.yaml`, reduced to the keys Helm knows.
//! - [`prov`]: provenance files.
//! - [`store`]: chart records in the registry's store, archives in its blob
//!   store, each change committed with its event.
//! - [`index`]: `index.yaml`, one pre-rendered fragment per version.
//! - [`yaml`]: the YAML emitter that keeps Helm's YAML 1.1 parser exact.
//! - [`error`]: the error enum, answered as `{"error": "..."}`.
//!
//! A request flows `api` → `route` → `chart`/`prov` (uploads) → `store` →
//! `index`. Helm charts pushed as OCI artifacts are the registry's own
//! business; this crate is the HTTP repository.

pub mod api;
pub mod chart;
pub mod error;
pub mod index;
pub mod metadata;
pub mod prov;
pub mod route;
pub mod store;
pub mod yaml;

pub use error::Error;

/// The chart repository, served as an extension of the registry.
#[derive(Debug)]
pub struct Helm {
    store: store::Store,
}

impl Helm {
    /// Opens the chart repository in the registry's storage (its trees are
    /// `helm.*` in the registry's store).
    pub fn open(storage: registry::ext::ExtensionStore) -> Result<Self, Error> {
        Ok(Self {
            store: store::Store::open(storage)?,
        })
    }
}
