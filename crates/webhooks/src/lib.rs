//! Berth's webhooks: ACR-compatible subscriptions to registry events, with
//! durable, isolated, observable delivery (the contract: `docs/webhooks.md`).
//!
//! # Layout
//! - [`webhook`]: the webhook object and its validation.
//! - [`filter`]: which events go to which webhook.
//! - [`dispatcher`]: tails the registry's event log into per-webhook queues.
//! - [`queue`]: the delivery queues and their pending counts.
//! - [`worker`]: one worker per webhook delivers its queue in order.
//! - [`format`]: a delivery's body: ACR's payload, or a CloudEvent around it.
//! - [`trouble`]: a failure that repeats on every retry, logged once.
//! - [`client`]: one POST, with the contract's headers and optional signature.
//! - [`target`]: the optional refusal of internal receiver addresses.
//! - [`retry`]: the pure retry decision and backoff.
//! - [`history`]: per-webhook delivery history (ACR `listEvents`).
//! - [`metrics`]: queue depth and outcomes for `/metrics`.
//! - [`store`]: the webhooks, the history's bookkeeping, the cursor.
//! - [`shared`]: what the parts above share, and the delivery runtime.
//! - [`api`]: the admin API under `/api/webhooks`.
//!
//! Data flows one way: registry event log → dispatcher → [`queue`] →
//! worker → receiver, with every attempt in [`history`]. The registry does
//! not depend on this crate; it serves [`api`] as an extension, and this
//! crate uses only `registry::ext`.

pub mod api;
pub mod client;
pub mod config;
pub mod dispatcher;
pub mod error;
pub mod filter;
pub mod format;
pub mod history;
pub mod metrics;
pub mod queue;
pub mod retry;
pub mod shared;
pub mod store;
pub mod target;
pub mod trouble;
pub mod webhook;
pub mod worker;

use std::sync::Arc;

pub use config::Config;
pub use error::Error;
use registry::ext::ExtensionStore;
pub use shared::Shared;
use tokio_util::sync::CancellationToken;
pub use webhook::Webhook;

/// Starts a worker for every webhook without one, and stops the workers of
/// webhooks that are gone (deleted on another replica).
async fn reconcile(shared: &Arc<Shared>) -> Result<(), Error> {
    let hooks = shared.store.all().await?;
    for hook in hooks.iter() {
        shared.queue.load(&hook.name).await?;
        shared.workers.start(shared, &hook.name);
    }
    for (name, _) in shared.workers.tallies() {
        if !hooks.iter().any(|h| h.name == name) {
            shared.workers.stop(&name);
        }
    }
    Ok(())
}

/// Follows the notices of the other replicas until shutdown: webhooks
/// changed (reconcile the workers), deliveries queued (wake a worker).
/// `notices` was subscribed before the first reconcile read the webhooks,
/// so a change committed after that read is always noticed.
async fn follow(
    shared: Arc<Shared>,
    mut notices: tokio::sync::broadcast::Receiver<registry::ext::Notice>,
) {
    loop {
        let notice = tokio::select! {
            notice = notices.recv() => notice,
            () = shared.shutdown.cancelled() => return,
        };
        let changed = match notice {
            Ok((channel, name)) if channel == store::DELIVERIES_CHANNEL => {
                shared.workers.wake(&name);
                false
            }
            Ok((channel, _)) => channel == store::WEBHOOKS_CHANNEL || channel.is_empty(),
            // Some were missed: look again.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        if changed {
            if let Err(e) = reconcile(&shared).await {
                tracing::warn!(error = %e, "cannot follow the webhooks' changes");
            }
        }
    }
}

/// The running webhooks subsystem.
#[derive(Debug, Clone)]
pub struct Webhooks {
    shared: Arc<Shared>,
    /// Cancelled once delivery has stopped (see [`Webhooks::stopped`]).
    stopped: CancellationToken,
}

impl Webhooks {
    /// Opens the webhooks' state in the registry's `storage` (a database of
    /// their own; events come from the registry's log), creates or updates
    /// the webhooks of the configuration file, and starts the dispatcher and
    /// one worker per webhook. `registry_url` is the registry's own
    /// (`http://127.0.0.1:5000`). Everything stops when `shutdown` is
    /// cancelled. Call inside a tokio runtime.
    pub async fn start(
        storage: &ExtensionStore,
        registry_url: String,
        config: Config,
        configured: Vec<Webhook>,
        shutdown: CancellationToken,
    ) -> Result<Self, Error> {
        let client = client::Client::new(config.timeout, config.refuse_private_targets)?;
        let db = storage.own_db()?;
        let queue = queue::Queue::open(&db)?;
        let store = store::Store::open(db, storage.event_log()).await?;
        for hook in configured {
            hook.validate()?;
            store.put(&hook).await?;
        }
        let stopped = CancellationToken::new();
        let runtime = shared::delivery_runtime(shutdown.clone(), stopped.clone())?;
        let shared = Arc::new(Shared {
            store,
            queue,
            config,
            client,
            workers: worker::Workers::default(),
            shutdown,
            dispatch: tokio::sync::Mutex::new(()),
            dispatcher: std::sync::Mutex::new(None),
            runtime,
            registry_url,
            space: storage.space(),
        });
        let notices = shared.store.db().subscribe();
        reconcile(&shared).await?;
        shared.runtime.spawn(follow(shared.clone(), notices));
        shared.runtime.spawn(dispatcher::run(shared.clone()));
        Ok(Self { shared, stopped })
    }

    /// Completes once `shutdown` was cancelled and the dispatcher and every
    /// worker have stopped, so their database handles are gone.
    pub async fn stopped(&self) {
        self.stopped.cancelled().await;
    }
}
