//! Berth's webhooks: ACR-compatible subscriptions to registry events, with
//! durable, isolated, observable delivery (`../shared/spec/webhooks.md`).
//!
//! # Layout
//! - [`webhook`]: the webhook object and its validation.
//! - [`filter`]: which events go to which webhook.
//! - [`dispatcher`]: tails the registry's event log into per-webhook queues.
//! - [`worker`]: one worker per webhook delivers its queue in order.
//! - [`client`]: one POST, with the contract's headers and optional signature.
//! - [`target`]: the optional refusal of internal receiver addresses.
//! - [`retry`]: the pure retry decision and backoff.
//! - [`history`]: per-webhook delivery history (ACR `listEvents`).
//! - [`metrics`]: queue depth and outcomes for `/metrics`.
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
pub mod metrics;
pub mod retry;
pub mod store;
pub mod target;
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
    /// Where the dispatcher and the workers run (see [`delivery_runtime`]).
    pub runtime: tokio::runtime::Handle,
}

/// Threads of the delivery runtime.
const DELIVERY_THREADS: usize = 2;

/// A runtime of its own for delivery work, on threads of its own, so that
/// registry requests never wait in a run queue behind deliveries (100
/// webhooks turn one push into 100 POSTs). It stops when `shutdown` is
/// cancelled; its thread owns it, so it is never dropped inside async code.
/// Once the runtime and every task on it are gone, `stopped` is cancelled.
fn delivery_runtime(
    shutdown: CancellationToken,
    stopped: CancellationToken,
) -> Result<tokio::runtime::Handle, Error> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("berth-webhooks".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(DELIVERY_THREADS)
                .thread_name("berth-delivery")
                .on_thread_start(yield_to_requests)
                .enable_all()
                .build();
            match runtime {
                Ok(rt) => {
                    let _ = tx.send(Ok(rt.handle().clone()));
                    rt.block_on(shutdown.cancelled());
                    drop(rt);
                    stopped.cancel();
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start the delivery thread: {e}")))?;
    rx.recv()
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(format!("cannot start the delivery runtime: {e}")))
}

/// Nice value of the delivery threads: when the CPU is short, registry
/// requests run first and deliveries take what is left. A delivery is
/// asynchronous anyway; a push waits for its reply.
const DELIVERY_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`DELIVERY_NICE`]
/// (on Linux, `setpriority` on a thread id applies to that thread only).
/// Failing only means deliveries compete with requests as equals.
fn yield_to_requests() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), DELIVERY_NICE) {
        tracing::debug!(error = %e, "cannot lower the delivery threads' priority");
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
    /// Opens the webhooks' database at `dir` (events come from the
    /// registry's log, `events`), creates or updates the webhooks of the
    /// configuration file, and starts the dispatcher and one worker per
    /// webhook. Everything stops when `shutdown` is cancelled. Call inside a
    /// tokio runtime.
    pub async fn start(
        events: Arc<registry::events::EventLog>,
        dir: &std::path::Path,
        config: Config,
        configured: Vec<Webhook>,
        shutdown: CancellationToken,
    ) -> Result<Self, Error> {
        let client = client::Client::new(config.timeout, config.refuse_private_targets)?;
        let store = store::Store::open(events, dir)?;
        for hook in configured {
            hook.validate()?;
            store.put(&hook).await?;
        }
        let stopped = CancellationToken::new();
        let runtime = delivery_runtime(shutdown.clone(), stopped.clone())?;
        let shared = Arc::new(Shared {
            store,
            config,
            client,
            workers: worker::Workers::default(),
            shutdown,
            dispatch: tokio::sync::Mutex::new(()),
            runtime,
        });
        for hook in shared.store.all()?.iter() {
            shared.workers.start(&shared, &hook.name);
        }
        shared.runtime.spawn(dispatcher::run(shared.clone()));
        Ok(Self { shared, stopped })
    }

    /// Completes once `shutdown` was cancelled and the dispatcher and every
    /// worker have stopped, so their database handles are gone.
    pub async fn stopped(&self) {
        self.stopped.cancelled().await;
    }
}
