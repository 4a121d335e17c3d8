//! Turns the registry's event log into per-webhook deliveries.
//!
//! It tails the registry's event log from a cursor. For a batch of durable
//! events it writes one delivery per matching webhook, then advances the
//! cursor. Deliveries are keyed by (webhook, event sequence number), so a
//! crash between the two re-dispatches the batch onto the same keys: every
//! event is handed over at least once, and no sled transaction is needed
//! (they contend with flushes in sled 0.34; see `registry::storage::gate`).
//! It wakes when the registry publishes a new durable sequence number, so
//! the registry needs no knowledge of webhooks.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::filter::matches;
use crate::store::{self, Delivery, CURSOR};
use crate::{history, Shared};

/// Events handled per transaction.
const BATCH: usize = 256;
/// A safety net: look at the log this often even without a wake-up.
const POLL: Duration = Duration::from_secs(2);
/// How long the dispatcher waits after a wake-up before it reads the log.
/// A wake-up comes from the flush of the request that made an event
/// durable, and that request has yet to send its reply: on a machine with
/// few cores, turning the event into 100 deliveries at once would make it
/// wait for a core. Events that become durable meanwhile are dispatched in
/// the same batch.
const SETTLE: Duration = Duration::from_millis(2);

/// How often the dispatcher lets the registry's log drop what it has
/// dispatched (see [`release`]).
const RELEASE_EVERY: Duration = Duration::from_secs(1);

/// Runs until shutdown.
pub async fn run(shared: Arc<Shared>) {
    let mut durable = shared.store.events.subscribe();
    let mut released = tokio::time::Instant::now();
    loop {
        if let Err(e) = dispatch_pending(&shared).await {
            tracing::error!(error = %e, "webhook dispatch failed; retrying");
        }
        store::free_replaced_nodes();
        if released.elapsed() >= RELEASE_EVERY {
            released = tokio::time::Instant::now();
            if let Err(e) = release(&shared.store).await {
                tracing::error!(error = %e, "cannot flush the webhook queues");
            }
        }
        tokio::select! {
            changed = durable.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(POLL) => {}
            () = shared.shutdown.cancelled() => return,
        }
        tokio::time::sleep(SETTLE).await;
    }
}

/// Flushes the queues and lets the registry's event log drop every event
/// dispatched before the flush. Until then a crash could take the
/// deliveries and the cursor back, and the events must be there to be
/// dispatched again.
async fn release(s: &store::Store) -> Result<(), crate::Error> {
    let cursor = store::decode_u64(s.counters.get(CURSOR)?);
    s.flush().await?;
    s.hold.advance(cursor);
    Ok(())
}

/// Hands every durable, not yet dispatched event to its webhooks. The
/// admin API calls it before changing a webhook, so that events are matched
/// against the webhooks as they were when the events happened.
pub async fn dispatch_pending(shared: &Shared) -> Result<(), crate::Error> {
    let s = &shared.store;
    let _one_at_a_time = shared.dispatch.lock().await;
    loop {
        // Only durable events are read (see `EventLog`): a crash must never
        // deliver an event whose change was rolled back.
        let cursor = store::decode_u64(s.counters.get(CURSOR)?);
        let batch = s.events.read(cursor, BATCH)?;
        let Some(&(last, _)) = batch.last() else {
            return Ok(());
        };
        let hooks = s.all()?;
        let now = store::now_ms();
        let limit = shared.config.queue_limit;
        let mut queued: HashMap<&str, u64> = HashMap::new();
        for (seq, record) in &batch {
            // Every webhook's delivery of this event starts out the same:
            // encoded once, shared by every insert.
            let fresh = sled::IVec::from(serde_json::to_vec(&Delivery {
                event: record.event.clone(),
                attempts: 0,
                queued_ms: now,
                next_attempt_ms: 0,
            })?);
            for hook in hooks.iter().filter(|h| matches(h, record)) {
                let added = queued.get(hook.name.as_str()).copied().unwrap_or(0);
                if shared.workers.pending(&hook.name) + added >= limit {
                    if let Some(tally) = shared.workers.tally(&hook.name) {
                        tally.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    let entry = history::dropped_entry(&record.event, limit)?;
                    history::append(s, &hook.name, entry, shared.config.history_limit)?;
                    continue;
                }
                s.deliveries
                    .insert(store::key(&hook.name, *seq), fresh.clone())?;
                *queued.entry(hook.name.as_str()).or_default() += 1;
            }
        }
        // The cursor moves only after the deliveries are written: a crash in
        // between re-dispatches the batch onto the same keys (at least once).
        s.counters.insert(CURSOR, &last.to_be_bytes())?;
        for (name, n) in queued {
            shared.workers.queued(name, n);
        }
    }
}
