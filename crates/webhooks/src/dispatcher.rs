//! Turns the registry's event log into per-webhook deliveries.
//!
//! It tails the `events` tree from a cursor. For a batch of durable events it
//! creates one delivery per matching webhook and advances the cursor in one
//! transaction, so every event is handed over exactly once, across crashes.
//! It waits on a sled subscription to the event log, so the registry needs
//! no knowledge of webhooks.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sled::transaction::ConflictableTransactionError as Abortable;
use sled::Transactional;

use crate::filter::matches;
use crate::store::{self, Delivery, CURSOR};
use crate::{history, Shared};

/// Events handled per transaction.
const BATCH: usize = 256;
/// A safety net: look at the log this often even without a wake-up.
const POLL: Duration = Duration::from_secs(2);

/// Runs until shutdown.
pub async fn run(shared: Arc<Shared>) {
    loop {
        let subscription = shared.store.events.watch_prefix(Vec::<u8>::new());
        if let Err(e) = dispatch_pending(&shared).await {
            tracing::error!(error = %e, "webhook dispatch failed; retrying");
        }
        tokio::select! {
            _ = subscription => {}
            () = tokio::time::sleep(POLL) => {}
            () = shared.shutdown.cancelled() => return,
        }
    }
}

/// Hands every durable, not yet dispatched event to its webhooks. The
/// admin API calls it before changing a webhook, so that events are matched
/// against the webhooks as they were when the events happened.
pub async fn dispatch_pending(shared: &Shared) -> Result<(), crate::Error> {
    let s = &shared.store;
    let _one_at_a_time = shared.dispatch.lock().await;
    loop {
        // Only events that are on disk may go out: a crash must never deliver
        // an event whose change was rolled back.
        s.db.flush_async().await?;
        let cursor = store::decode_u64(s.counters.get(CURSOR)?);
        let batch = registry::events::read(&s.events, cursor, BATCH)?;
        let Some(&(last, _)) = batch.last() else {
            return Ok(());
        };
        let hooks = s.all()?;
        let now = store::now_ms();
        let limit = shared.config.queue_limit;
        let woken =
            (&s.deliveries, &s.counters, &s.history).transaction(|(deliveries, counters, hist)| {
                let mut woken = HashSet::new();
                for (seq, record) in &batch {
                    let payload = serde_json::to_value(&record.event).map_err(abort)?;
                    for hook in hooks.iter().filter(|h| matches(h, record)) {
                        let queue = store::queue_key(&hook.name);
                        let len = store::decode_u64(counters.get(&queue)?);
                        if len >= limit {
                            let entry = history::dropped_entry(&payload, limit);
                            let id = hist.generate_id()?;
                            hist.insert(
                                store::key(&hook.name, !id),
                                serde_json::to_vec(&entry).map_err(abort)?,
                            )?;
                            continue;
                        }
                        let delivery = Delivery {
                            event: record.event.clone(),
                            attempts: 0,
                            queued_ms: now,
                            next_attempt_ms: 0,
                        };
                        deliveries.insert(
                            store::key(&hook.name, *seq),
                            serde_json::to_vec(&delivery).map_err(abort)?,
                        )?;
                        counters.insert(queue, &(len + 1).to_be_bytes())?;
                        woken.insert(hook.name.clone());
                    }
                }
                counters.insert(CURSOR, &last.to_be_bytes())?;
                Ok(woken)
            });
        let woken =
            woken.map_err(|e| crate::Error::Internal(format!("dispatch transaction: {e:?}")))?;
        for name in woken {
            shared.workers.wake(&name);
        }
    }
}

fn abort(e: serde_json::Error) -> Abortable<serde_json::Error> {
    Abortable::Abort(e)
}
