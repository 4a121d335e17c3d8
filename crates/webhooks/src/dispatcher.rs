//! Turns the registry's event log into per-webhook deliveries.
//!
//! It tails the registry's event log from a cursor. For a batch of durable
//! events it queues one delivery per matching webhook, then advances the
//! cursor. Deliveries are keyed by (webhook, event sequence number), so a
//! crash between the two re-dispatches the batch onto the same keys: every
//! event is handed over at least once, and no transaction is needed. It
//! wakes when the registry publishes a new durable sequence number, so the
//! registry needs no knowledge of webhooks.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::filter::matches;
use crate::queue::Delivery;
use crate::store::now_ms;
use crate::{history, Shared};

/// Events handled per round.
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
/// dispatched (see [`crate::store::Store::release`]).
const RELEASE_EVERY: Duration = Duration::from_secs(1);

/// Runs until shutdown.
pub async fn run(shared: Arc<Shared>) {
    let mut durable = shared.store.events.subscribe();
    let mut released = tokio::time::Instant::now();
    loop {
        if let Err(e) = dispatch_pending(&shared).await {
            tracing::error!(error = %e, "webhook dispatch failed; retrying");
        }
        shared.store.db().release_memory();
        if released.elapsed() >= RELEASE_EVERY {
            released = tokio::time::Instant::now();
            if let Err(e) = shared.store.release().await {
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

/// Hands every durable, not yet dispatched event to its webhooks. The
/// admin API calls it before changing a webhook, so that events are matched
/// against the webhooks as they were when the events happened.
pub async fn dispatch_pending(shared: &Shared) -> Result<(), crate::Error> {
    let s = &shared.store;
    let _one_at_a_time = shared.dispatch.lock().await;
    loop {
        // Only durable events are read (see `EventLog`): a crash must never
        // deliver an event whose change was rolled back.
        let batch = s.events.read(s.cursor().await?, BATCH).await?;
        let Some(&(last, _)) = batch.last() else {
            return Ok(());
        };
        let hooks = s.all().await?;
        let now = now_ms();
        let limit = shared.config.queue_limit;
        let mut queued: HashMap<&str, u64> = HashMap::new();
        for (seq, record) in &batch {
            // Every webhook's delivery of this event starts out the same:
            // encoded once, shared by every push.
            let fresh = serde_json::to_vec(&Delivery {
                event: record.event.clone(),
                attempts: 0,
                queued_ms: now,
                next_attempt_ms: 0,
            })?;
            for hook in hooks.iter().filter(|h| matches(h, record)) {
                shared.queue.load(&hook.name).await?;
                if shared.queue.pending(&hook.name) >= limit {
                    if let Some(tally) = shared.workers.tally(&hook.name) {
                        tally.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    let entry = history::dropped_entry(&record.event, limit)?;
                    history::append(s, &hook.name, entry, shared.config.history_limit).await?;
                    continue;
                }
                shared.queue.push(&hook.name, *seq, &fresh).await?;
                *queued.entry(hook.name.as_str()).or_default() += 1;
            }
        }
        // The cursor moves only after the deliveries are written: a crash in
        // between re-dispatches the batch onto the same keys (at least once).
        s.set_cursor(last).await?;
        for name in queued.keys() {
            shared.workers.wake(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use registry::ext::{Action, Db, Event, EventLog, Request, Target};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::queue::Queue;
    use crate::store::Store;
    use crate::webhook::tests::hook;
    use crate::{client::Client, worker::Workers, Config};

    async fn shared(dir: &std::path::Path, queue_limit: u64) -> (Arc<Shared>, Db) {
        let registry = Db::open(&dir.join("registry")).unwrap();
        let log = Arc::new(EventLog::new(registry.clone()));
        let db = Db::open(&dir.join("hooks")).unwrap();
        let queue = Queue::open(&db).unwrap();
        let store = Store::open(db, log).await.unwrap();
        let config = Config {
            queue_limit,
            ..Config::default()
        };
        let shared = Shared {
            store,
            queue,
            client: Client::new(config.timeout, false).unwrap(),
            config,
            workers: Workers::default(),
            shutdown: CancellationToken::new(),
            dispatch: tokio::sync::Mutex::new(()),
            runtime: tokio::runtime::Handle::current(),
        };
        (Arc::new(shared), registry)
    }

    async fn push(registry: &Db, repo: &str) {
        let target = Target::manifest("m", 1, "sha256:ab", repo);
        let event = Event::new(Action::Push, target, Request::default());
        registry
            .transaction(|tx| {
                let event = event.clone();
                Box::pin(async move { tx.append_event(event) })
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn matching_events_are_queued_once_each_and_the_cursor_moves() {
        let dir = tempfile::tempdir().unwrap();
        let (shared, registry) = shared(dir.path(), 100).await;
        let mut app = hook("app:*");
        app.name = "apphook".into();
        let mut other = hook("other:*");
        other.name = "otherhook".into();
        shared.store.create(&app).await.unwrap();
        shared.store.create(&other).await.unwrap();
        for repo in ["app", "other", "app", "nobody"] {
            push(&registry, repo).await;
        }
        dispatch_pending(&shared).await.unwrap();
        assert_eq!(shared.queue.pending("apphook"), 2);
        assert_eq!(shared.queue.pending("otherhook"), 1);
        assert_eq!(shared.store.cursor().await.unwrap(), 4);
        // Nothing new: nothing queued twice.
        dispatch_pending(&shared).await.unwrap();
        assert_eq!(shared.queue.pending("apphook"), 2);
        let (key, first) = shared.queue.head("apphook").await.unwrap().unwrap();
        assert_eq!(crate::queue::seq_of(&key), 1);
        assert_eq!(first.event.target.repository, "app");
        // A webhook created later gets only later events.
        let mut late = hook("");
        late.name = "latehook".into();
        shared.store.create(&late).await.unwrap();
        push(&registry, "app").await;
        dispatch_pending(&shared).await.unwrap();
        assert_eq!(shared.queue.pending("latehook"), 1);
        assert_eq!(shared.queue.pending("apphook"), 3);
    }

    #[tokio::test]
    async fn a_full_queue_records_the_event_as_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (shared, registry) = shared(dir.path(), 2).await;
        shared.store.create(&hook("")).await.unwrap();
        for _ in 0..3 {
            push(&registry, "app").await;
        }
        dispatch_pending(&shared).await.unwrap();
        assert_eq!(shared.queue.pending("hook01"), 2);
        let listed = history::list(&shared.store, "hook01", 0, 10, 10)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["result"], "dropped");
        assert_eq!(shared.store.cursor().await.unwrap(), 3);
    }
}
