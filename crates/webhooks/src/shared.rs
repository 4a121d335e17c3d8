//! What the dispatcher, the workers and the admin API share, and the
//! runtime delivery work runs on.

use tokio_util::sync::CancellationToken;

use crate::queue::Queue;
use crate::store::Store;
use crate::worker::Workers;
use crate::{client, Config, Error};

/// What the dispatcher, the workers and the API share.
#[derive(Debug)]
pub struct Shared {
    /// The webhooks, their histories and the dispatcher's cursor.
    pub store: Store,
    /// Pending deliveries, one ordered queue per webhook.
    pub queue: Queue,
    /// Delivery settings.
    pub config: Config,
    /// The HTTP client for receivers.
    pub client: client::Client,
    /// The running workers.
    pub workers: Workers,
    /// Cancelled when the registry shuts down.
    pub shutdown: CancellationToken,
    /// Serializes dispatching (the dispatcher task and the admin API).
    pub dispatch: tokio::sync::Mutex<()>,
    /// The dispatcher's lease, while this replica holds it.
    pub dispatcher: std::sync::Mutex<Option<registry::ext::Lease>>,
    /// Where the dispatcher and the workers run (see [`delivery_runtime`]).
    pub runtime: tokio::runtime::Handle,
    /// The registry's own URL (`http://127.0.0.1:5000`): the CloudEvents
    /// `source` of a ping, and the scheme of every other.
    pub registry_url: String,
    /// Admits writes to the webhooks' database while the disk has room.
    pub space: registry::ext::Space,
}

impl Shared {
    /// `http` or `https`, as the registry serves.
    pub fn scheme(&self) -> &str {
        self.registry_url
            .split_once("://")
            .map_or("http", |(s, _)| s)
    }

    /// Whether this replica holds the dispatcher's lease.
    pub fn dispatches(&self) -> bool {
        self.dispatcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|l| l.held())
    }

    /// Wakes `name`'s worker: here, and on the replica holding its lease.
    pub async fn wake(&self, name: &str) {
        self.workers.wake(name);
        let db = self.store.db();
        if db.is_shared() {
            if let Err(e) = db.notify(crate::store::DELIVERIES_CHANNEL, name).await {
                tracing::warn!(error = %e, "cannot wake the other replicas' workers");
            }
        }
    }
}

/// Threads of the delivery runtime.
const DELIVERY_THREADS: usize = 2;

/// A runtime of its own for delivery work, on threads of its own, so that
/// registry requests never wait in a run queue behind deliveries (100
/// webhooks turn one push into 100 POSTs). It stops when `shutdown` is
/// cancelled; its thread owns it, so it is never dropped inside async code.
/// Once the runtime and every task on it are gone, `stopped` is cancelled.
pub fn delivery_runtime(
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
