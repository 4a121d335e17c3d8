//! Berth's webhooks: ACR-compatible subscriptions to registry events, with
//! durable, isolated, observable delivery (`../shared/spec/webhooks.md`).
//!
//! # Layout
//! - [`webhook`]: the webhook object and its validation.
//! - [`filter`]: which events go to which webhook.
//! - [`dispatcher`]: tails the registry's event log into per-webhook queues.
//! - [`worker`]: one worker per webhook delivers its queue in order.
//! - [`client`]: one POST, with the contract's headers and optional signature.
//! - [`retry`]: the pure retry decision and backoff.
//! - [`history`]: per-webhook delivery history (ACR `listEvents`).
//! - [`store`]: the sled trees.
//! - [`api`]: the admin API under `/api/webhooks`.
//!
//! Data flows one way: registry `events` tree → dispatcher → `webhook_deliveries`
//! → worker → receiver, with every attempt in `webhook_history`. The registry
//! does not depend on this crate; it serves [`api`] as an extension.

pub mod api;
pub mod client;
pub mod config;
pub mod dispatcher;
pub mod error;
pub mod filter;
pub mod history;
pub mod retry;
pub mod store;
pub mod webhook;
pub mod worker;

use std::sync::Arc;

pub use config::Config;
pub use error::Error;
use tokio_util::sync::CancellationToken;
pub use webhook::Webhook;

/// What the dispatcher, the workers and the API share.
#[derive(Debug)]
pub struct Shared {
    /// The sled trees.
    pub store: store::Store,
    /// Delivery settings.
    pub config: Config,
    /// The HTTP client for receivers.
    pub client: client::Client,
    /// The running workers.
    pub workers: worker::Workers,
    /// Cancelled when the registry shuts down.
    pub shutdown: CancellationToken,
    /// Serializes dispatching (the dispatcher task and the admin API).
    pub dispatch: tokio::sync::Mutex<()>,
}

/// The running webhooks subsystem.
#[derive(Debug, Clone)]
pub struct Webhooks {
    shared: Arc<Shared>,
}

impl Webhooks {
    /// Opens the webhook trees in `db`, creates or updates the webhooks of the
    /// configuration file, and starts the dispatcher and one worker per
    /// webhook. Everything stops when `shutdown` is cancelled. Call inside a
    /// tokio runtime.
    pub async fn start(
        db: &sled::Db,
        config: Config,
        configured: Vec<Webhook>,
        shutdown: CancellationToken,
    ) -> Result<Self, Error> {
        let client = client::Client::new(config.timeout);
        let store = store::Store::open(db)?;
        for hook in configured {
            hook.validate()?;
            store.put(&hook).await?;
        }
        let shared = Arc::new(Shared {
            store,
            config,
            client,
            workers: worker::Workers::default(),
            shutdown,
            dispatch: tokio::sync::Mutex::new(()),
        });
        for hook in shared.store.all()? {
            shared.workers.start(&shared, &hook.name);
        }
        tokio::spawn(dispatcher::run(shared.clone()));
        Ok(Self { shared })
    }
}
