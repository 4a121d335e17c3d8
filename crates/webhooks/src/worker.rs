//! One worker per webhook: it delivers that webhook's queue in order, one
//! attempt at a time, so a slow, failing or hanging receiver delays only its
//! own queue.
//!
//! A step is single-purpose stages, each testable alone: [`next_due`] (the
//! queue's head, if due) → [`format::event`] (the body) →
//! [`crate::client::Client::post`] (one POST) → [`decide`] (delivered, retry, give up,
//! refused) → the history → [`settle`] (the queue) → the tally.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::client::Attempt;
use crate::format;
use crate::queue::{Delivery, Head, Queue};
use crate::retry::{parse_retry_after, Outcome, Policy};
use crate::store::now_ms;
use crate::trouble::Trouble;
use crate::{history, Error, Shared};

/// The running workers, by webhook name.
#[derive(Debug, Default)]
pub struct Workers {
    running: Mutex<HashMap<String, Handle>>,
}

#[derive(Debug)]
struct Handle {
    wake: Arc<Notify>,
    stop: CancellationToken,
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
    /// Attempts the receiver refused for good (a 4xx that is not retried).
    pub refused: AtomicU64,
    /// Events refused because the queue was full.
    pub dropped: AtomicU64,
}

impl Tally {
    /// The counter of `outcome`.
    fn of(&self, outcome: &Outcome) -> &AtomicU64 {
        match outcome {
            Outcome::Delivered => &self.delivered,
            Outcome::Retry(_) => &self.retrying,
            Outcome::GiveUp => &self.failed,
            Outcome::Refused => &self.refused,
        }
    }
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
        let tally = Arc::<Tally>::default();
        running.insert(
            name.to_owned(),
            Handle {
                wake: wake.clone(),
                stop: stop.clone(),
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

    /// The tally of `name`'s outcomes, if it runs.
    pub fn tally(&self, name: &str) -> Option<Arc<Tally>> {
        self.lock().get(name).map(|h| h.tally.clone())
    }

    /// Every running webhook's name and tally, by name.
    pub fn tallies(&self) -> Vec<(String, Arc<Tally>)> {
        let mut all: Vec<_> = self
            .lock()
            .iter()
            .map(|(name, h)| (name.clone(), h.tally.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
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

/// How often a worker without its webhook's lease asks again (another
/// replica delivers meanwhile; when that one dies, its lease ends).
const LEASE_POLL: Duration = Duration::from_secs(2);

async fn run(shared: Weak<Shared>, worker: Worker) {
    let Worker {
        name,
        wake,
        stop,
        tally,
    } = worker;
    // One replica at a time delivers a webhook's queue, so it stays in order.
    let mut lease: Option<registry::ext::Lease> = None;
    let mut trouble = Trouble::default();
    loop {
        let Some(s) = shared.upgrade() else { return };
        if lease.as_ref().is_none_or(|l| !l.held()) {
            lease = match s.store.db().try_lease(&format!("webhook:{name}")).await {
                Ok(lease) => lease,
                Err(e) => {
                    tracing::warn!(webhook = %name, error = %e, "cannot take the webhook's lease");
                    None
                }
            };
        }
        let wait = match &lease {
            Some(_) => {
                let stepped = step(&s, &name, &tally).await;
                trouble.note(&format!("webhook {name}: cannot deliver"), &stepped);
                stepped.unwrap_or(Some(Duration::from_secs(1)))
            }
            None => {
                if let Err(e) = s.queue.refresh(&name).await {
                    tracing::warn!(webhook = %name, error = %e, "cannot count the queue");
                }
                Some(LEASE_POLL)
            }
        };
        s.store.db().release_memory();
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
    let (key, mut delivery) = match next_due(&shared.queue, name, now_ms()).await? {
        Due::Ready(head) => *head,
        Due::Wait(wait) => return Ok(Some(wait)),
        Due::Empty => return Ok(None),
    };
    // An attempt is recorded: while the disk is full, deliveries wait.
    shared.space.admit(0)?;
    let hook = shared.store.get(name).await?;
    let body = format::event(hook.format, &delivery.event, shared.scheme())?;
    let attempt = shared
        .client
        .post(&hook, &delivery.event.id, body.clone())
        .await;
    delivery.attempts += 1;
    let outcome = decide(&shared.config.policy(), &attempt, &delivery, now_ms());
    let entry = history::attempt_entry(
        &hook,
        &delivery.event.id,
        &body,
        &attempt,
        delivery.attempts,
        &outcome,
    )?;
    history::append(&shared.store, name, entry, shared.config.history_limit).await?;
    let wait = settle(&shared.queue, name, &key, delivery, &outcome).await?;
    // Counted once the queue shows it: whoever sees the count in `/metrics`
    // sees the queue depth that goes with it.
    tally.of(&outcome).fetch_add(1, Ordering::Relaxed);
    Ok(Some(wait))
}

/// The state of a queue's head.
#[derive(Debug)]
enum Due {
    /// Due now.
    Ready(Box<Head>),
    /// Due after this long.
    Wait(Duration),
    /// Nothing queued.
    Empty,
}

/// The head of `name`'s queue, if it is due at `now` (unix milliseconds).
async fn next_due(queue: &Queue, name: &str, now: u64) -> Result<Due, Error> {
    Ok(match queue.head(name).await? {
        None => Due::Empty,
        Some((_, d)) if d.next_attempt_ms > now => {
            Due::Wait(Duration::from_millis(d.next_attempt_ms - now))
        }
        Some(head) => Due::Ready(Box::new(head)),
    })
}

/// What an attempt means for a delivery that has now had
/// `delivery.attempts` of them, at `now` (unix milliseconds).
fn decide(policy: &Policy, attempt: &Attempt, delivery: &Delivery, now: u64) -> Outcome {
    let response = attempt.response.as_ref().ok();
    let retry_after = response
        .and_then(|r| r.headers.get("retry-after"))
        .and_then(|v| parse_retry_after(v));
    let age = Duration::from_millis(now.saturating_sub(delivery.queued_ms));
    policy.classify(
        response.map(|r| r.status),
        retry_after,
        delivery.attempts,
        age,
    )
}

/// Moves the queue on after an attempt: a retry is rescheduled, a
/// delivery that ended is removed. Returns how long to wait before the next
/// step.
async fn settle(
    queue: &Queue,
    name: &str,
    key: &[u8],
    mut delivery: Delivery,
    outcome: &Outcome,
) -> Result<Duration, Error> {
    let id = &delivery.event.id;
    match outcome {
        Outcome::Retry(delay) => {
            tracing::info!(webhook = %name, event = %id, attempts = delivery.attempts, ?delay, "delivery failed; will retry");
            delivery.next_attempt_ms = now_ms() + delay.as_millis() as u64;
            queue.reschedule(key, &delivery).await?;
            Ok(*delay)
        }
        Outcome::Delivered | Outcome::GiveUp | Outcome::Refused => {
            if *outcome != Outcome::Delivered {
                tracing::warn!(webhook = %name, event = %id, attempts = delivery.attempts, outcome = outcome.counted(), "delivery failed for good");
            }
            queue.finish(name, key).await?;
            Ok(Duration::ZERO)
        }
    }
}

#[cfg(test)]
mod tests;
