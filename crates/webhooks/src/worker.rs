//! One worker per webhook: it delivers that webhook's queue in order, one
//! attempt at a time, so a slow, failing or hanging receiver delays only its
//! own queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::history::{self, Outcome as Listed};
use crate::retry::Outcome;
use crate::store::{self, Delivery};
use crate::{Error, Shared};

/// The running workers, by webhook name.
#[derive(Debug, Default)]
pub struct Workers {
    running: Mutex<HashMap<String, Handle>>,
}

#[derive(Debug)]
struct Handle {
    wake: Arc<Notify>,
    stop: CancellationToken,
    /// Deliveries queued and not yet done: kept in memory (counted from the
    /// queue at start-up) so finishing a delivery is a single removal, not
    /// a transaction that would queue registry writes behind it.
    pending: Arc<AtomicU64>,
    /// How its deliveries ended since start-up, for `/metrics`.
    tally: Arc<Tally>,
}

/// Attempts and drops of one webhook since start-up, by outcome.
#[derive(Debug, Default)]
pub struct Tally {
    /// Attempts that got a 2xx.
    pub delivered: AtomicU64,
    /// Failed attempts that will be retried.
    pub retrying: AtomicU64,
    /// Failed attempts after which the delivery was given up.
    pub failed: AtomicU64,
    /// Events refused because the queue was full.
    pub dropped: AtomicU64,
}

/// One webhook's delivery figures, as `/metrics` reports them.
#[derive(Debug)]
pub struct Figures {
    /// The webhook.
    pub name: String,
    /// Deliveries queued and not yet done.
    pub pending: u64,
    /// How attempts ended since start-up.
    pub tally: Arc<Tally>,
}

impl Workers {
    /// Starts the worker of `name` unless it runs already.
    pub fn start(&self, shared: &Arc<Shared>, name: &str) {
        let mut running = self.lock();
        if running.contains_key(name) {
            return;
        }
        let wake = Arc::new(Notify::new());
        let stop = shared.shutdown.child_token();
        let queued = shared
            .store
            .deliveries
            .scan_prefix(store::prefix(name))
            .count() as u64;
        let pending = Arc::new(AtomicU64::new(queued));
        let tally = Arc::<Tally>::default();
        running.insert(
            name.to_owned(),
            Handle {
                wake: wake.clone(),
                stop: stop.clone(),
                pending,
                tally: tally.clone(),
            },
        );
        let worker = Worker {
            name: name.to_owned(),
            wake,
            stop,
            tally,
        };
        shared.runtime.spawn(run(Arc::downgrade(shared), worker));
    }

    /// Deliveries queued for `name` and not yet delivered or given up.
    pub fn pending(&self, name: &str) -> u64 {
        self.lock()
            .get(name)
            .map_or(0, |h| h.pending.load(Ordering::Relaxed))
    }

    /// The tally of `name`'s outcomes, if it runs.
    pub fn tally(&self, name: &str) -> Option<Arc<Tally>> {
        self.lock().get(name).map(|h| h.tally.clone())
    }

    /// Every running webhook's figures, by name.
    pub fn figures(&self) -> Vec<Figures> {
        let mut all: Vec<Figures> = self
            .lock()
            .iter()
            .map(|(name, h)| Figures {
                name: name.clone(),
                pending: h.pending.load(Ordering::Relaxed),
                tally: h.tally.clone(),
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// `n` deliveries were queued for `name`: count them and wake its worker.
    pub fn queued(&self, name: &str, n: u64) {
        if let Some(h) = self.lock().get(name) {
            h.pending.fetch_add(n, Ordering::Relaxed);
            h.wake.notify_one();
        }
    }

    /// One delivery of `name` is done (delivered or given up).
    pub fn finished(&self, name: &str) {
        if let Some(h) = self.lock().get(name) {
            let _ = h
                .pending
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Tells the worker of `name` to look at its queue again.
    pub fn wake(&self, name: &str) {
        if let Some(h) = self.lock().get(name) {
            h.wake.notify_one();
        }
    }

    /// Stops the worker of `name` (its webhook was deleted).
    pub fn stop(&self, name: &str) {
        if let Some(h) = self.lock().remove(name) {
            h.stop.cancel();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Handle>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Waits for `duration`, a wake-up or the stop signal; false on stop.
async fn pause(wake: &Notify, stop: &CancellationToken, duration: Option<Duration>) -> bool {
    let sleep = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = sleep => true,
        () = wake.notified() => true,
        () = stop.cancelled() => false,
    }
}

/// What one worker task owns.
struct Worker {
    name: String,
    wake: Arc<Notify>,
    stop: CancellationToken,
    tally: Arc<Tally>,
}

async fn run(shared: Weak<Shared>, worker: Worker) {
    let Worker {
        name,
        wake,
        stop,
        tally,
    } = worker;
    loop {
        let Some(s) = shared.upgrade() else { return };
        let wait = match step(&s, &name, &tally).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::error!(webhook = %name, error = %e, "webhook worker failed; retrying");
                Some(Duration::from_secs(1))
            }
        };
        store::free_replaced_nodes();
        drop(s);
        if wait != Some(Duration::ZERO) && !pause(&wake, &stop, wait).await {
            return;
        }
        if stop.is_cancelled() {
            return;
        }
    }
}

/// Delivers the head of the queue if it is due. Returns how long to wait
/// before the next step (`None`: until woken; zero: at once).
async fn step(shared: &Shared, name: &str, tally: &Tally) -> Result<Option<Duration>, Error> {
    let s = &shared.store;
    let Some((key, value)) = s
        .deliveries
        .scan_prefix(store::prefix(name))
        .next()
        .transpose()?
    else {
        return Ok(None);
    };
    let mut delivery: Delivery = serde_json::from_slice(&value)?;
    let now = store::now_ms();
    if delivery.next_attempt_ms > now {
        return Ok(Some(Duration::from_millis(delivery.next_attempt_ms - now)));
    }
    let hook = s.get(name)?;
    let event = &delivery.event;
    let attempt = shared
        .client
        .post(&hook, &event.id, serde_json::to_vec(event)?)
        .await;
    delivery.attempts += 1;
    let response = attempt.response.as_ref().ok();
    let retry_after = response
        .and_then(|r| r.headers.get("retry-after"))
        .and_then(|v| crate::retry::parse_retry_after(v));
    let age = Duration::from_millis(store::now_ms().saturating_sub(delivery.queued_ms));
    let outcome = shared.config.policy().classify(
        response.map(|r| r.status),
        retry_after,
        delivery.attempts,
        age,
    );
    let listed = match outcome {
        Outcome::Delivered => Listed::Delivered,
        Outcome::Retry(_) => Listed::Retrying,
        Outcome::GiveUp => Listed::Failed,
    };
    let counter = match listed {
        Listed::Delivered => &tally.delivered,
        Listed::Retrying => &tally.retrying,
        Listed::Failed => &tally.failed,
    };
    let entry = history::attempt_entry(
        &hook,
        (&event.id, event),
        &attempt,
        delivery.attempts,
        listed,
    )?;
    history::append(s, name, entry, shared.config.history_limit)?;
    // The outcome is counted once the queue shows it: whoever sees the
    // count in `/metrics` sees the queue depth that goes with it.
    let wait = match outcome {
        Outcome::Retry(delay) => {
            delivery.next_attempt_ms = store::now_ms() + delay.as_millis() as u64;
            s.deliveries.insert(key, serde_json::to_vec(&delivery)?)?;
            if listed == Listed::Retrying {
                tracing::info!(webhook = %name, event = %delivery.event.id, attempts = delivery.attempts, ?delay, "delivery failed; will retry");
            }
            delay
        }
        Outcome::Delivered | Outcome::GiveUp => {
            if outcome == Outcome::GiveUp {
                tracing::warn!(webhook = %name, event = %delivery.event.id, attempts = delivery.attempts, "delivery failed for good");
            }
            s.deliveries.remove(&key)?;
            shared.workers.finished(name);
            Duration::ZERO
        }
    };
    counter.fetch_add(1, Ordering::Relaxed);
    Ok(Some(wait))
}
