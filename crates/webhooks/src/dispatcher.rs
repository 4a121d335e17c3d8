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

use serde::{Deserialize, Serialize};

use crate::filter::matches;
use crate::queue::Delivery;
use crate::store::now_ms;
use crate::trouble::Trouble;
use crate::{history, Error, Shared};

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

/// The lease of the replica that dispatches.
pub const LEASE: &str = "webhooks-dispatcher";

/// Runs until shutdown.
pub async fn run(shared: Arc<Shared>) {
    let mut durable = shared.store.events.subscribe();
    let mut released = tokio::time::Instant::now();
    let (mut claiming, mut dispatching, mut releasing) =
        (Trouble::default(), Trouble::default(), Trouble::default());
    loop {
        claiming.note("cannot take the dispatcher's lease", &claim(&shared).await);
        let dispatched = dispatch_pending(&shared).await;
        dispatching.note("cannot dispatch webhook events", &dispatched);
        shared.store.db().release_memory();
        if released.elapsed() >= RELEASE_EVERY && shared.dispatches() {
            released = tokio::time::Instant::now();
            let flushed = shared.store.release().await;
            releasing.note("cannot flush the webhook queues", &flushed);
        }
        tokio::select! {
            changed = durable.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(POLL) => {}
            () = shared.shutdown.cancelled() => return,
        }
        tokio::time::sleep(SETTLE).await;
    }
}

/// Takes the dispatcher's lease unless this replica holds it.
async fn claim(shared: &Shared) -> Result<(), Error> {
    if shared.dispatches() {
        return Ok(());
    }
    let lease = shared.store.db().try_lease(LEASE).await?;
    if lease.is_some() {
        tracing::info!("this replica dispatches webhook events");
    }
    *shared.dispatcher.lock().unwrap_or_else(|p| p.into_inner()) = lease;
    Ok(())
}

/// How long a replica that does not dispatch waits for the one that does
/// to catch up (see [`catch_up`]) before going ahead anyway.
const CATCH_UP: Duration = Duration::from_secs(10);

/// Makes sure every event committed so far has been handed to its
/// webhooks. The admin API calls it before changing a webhook, so that
/// events are matched against the webhooks as they were when the events
/// happened: this replica dispatches them itself if it is the dispatcher,
/// otherwise it waits (up to [`CATCH_UP`]) until the dispatcher has.
pub async fn catch_up(shared: &Shared) -> Result<(), crate::Error> {
    if shared.dispatches() {
        return dispatch_pending(shared).await;
    }
    let committed = shared.store.events.last_committed().await?;
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    while shared.store.cursor().await? < committed {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!("the webhook dispatcher is behind; changing the webhook anyway");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Hands every durable, not yet dispatched event to its webhooks, if this
/// replica dispatches.
pub async fn dispatch_pending(shared: &Shared) -> Result<(), crate::Error> {
    let s = &shared.store;
    let _one_at_a_time = shared.dispatch.lock().await;
    if !shared.dispatches() {
        return Ok(());
    }
    shared.space.admit(0)?;
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
                if !queued.contains_key(hook.name.as_str()) {
                    shared.queue.refresh(&hook.name).await?;
                }
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
            shared.wake(name).await;
        }
    }
}

/// Which events a replay queues again: `since` and `until` are RFC 3339
/// times (inclusive), `after` a sequence number (exclusive).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRange {
    /// Events at or after this time.
    pub since: Option<String>,
    /// Events at or before this time.
    pub until: Option<String>,
    /// Events after this sequence number.
    pub after: Option<u64>,
}

/// What a replay did, and what the event log still holds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    /// Events queued for delivery.
    pub queued: u64,
    /// Matching events already queued (pending delivery): not queued twice.
    pub already_queued: u64,
    /// Matching events refused by a full queue (recorded as dropped).
    pub dropped: u64,
    /// The oldest event the log holds: sequence number and time.
    pub oldest: Option<(u64, String)>,
    /// The newest.
    pub newest: Option<(u64, String)>,
}

/// Queues again, in order, every event the log still holds in `range` that
/// matches webhook `name` as it is now (actions, scope, status), through
/// the normal queue (retries, history and metrics apply). For a receiver
/// back after an outage longer than the retry window, or just created.
pub async fn replay(
    shared: &Shared,
    name: &str,
    range: ReplayRange,
) -> Result<ReplayReport, Error> {
    let time = |field: &'static str, v: &Option<String>| {
        v.as_deref()
            .map(|t| {
                humantime::parse_rfc3339_weak(t)
                    .map_err(|e| Error::Invalid(field, format!("{t:?}: {e} (expected RFC 3339)")))
            })
            .transpose()
    };
    let (since, until) = (time("since", &range.since)?, time("until", &range.until)?);
    let hook = shared.store.get(name).await?;
    // Everything up to the cursor has been dispatched: the replay queues on
    // the same keys, so an event the dispatcher queued is not queued twice.
    catch_up(shared).await?;
    let _one_at_a_time = shared.dispatch.lock().await;
    let s = &shared.store;
    let cursor = s.cursor().await?;
    shared.queue.load(name).await?;
    let mut report = ReplayReport {
        queued: 0,
        already_queued: 0,
        dropped: 0,
        oldest: None,
        newest: None,
    };
    let limit = shared.config.queue_limit;
    let mut after = range.after.unwrap_or(0);
    'log: loop {
        let batch = s.events.read(after, BATCH).await?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        after = last;
        for (seq, record) in batch {
            if seq > cursor {
                break 'log;
            }
            let at = humantime::parse_rfc3339_weak(&record.event.timestamp).ok();
            let in_range = since.is_none_or(|s| at.is_some_and(|t| t >= s))
                && until.is_none_or(|u| at.is_some_and(|t| t <= u));
            if !in_range || !matches(&hook, &record) {
                continue;
            }
            if shared.queue.pending(name) >= limit {
                report.dropped += 1;
                let entry = history::dropped_entry(&record.event, limit)?;
                history::append(s, name, entry, shared.config.history_limit).await?;
                continue;
            }
            let delivery = serde_json::to_vec(&Delivery {
                event: record.event,
                attempts: 0,
                queued_ms: now_ms(),
                next_attempt_ms: 0,
            })?;
            if shared.queue.push(name, seq, &delivery).await? {
                report.queued += 1;
            } else {
                report.already_queued += 1;
            }
        }
    }
    shared.wake(name).await;
    let first = s.events.read(0, 1).await?;
    report.oldest = first
        .first()
        .map(|(seq, r)| (*seq, r.event.timestamp.clone()));
    let newest = s
        .events
        .read(s.events.durable().saturating_sub(1), 1)
        .await?;
    report.newest = newest
        .first()
        .map(|(seq, r)| (*seq, r.event.timestamp.clone()));
    Ok(report)
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
        let log = Arc::new(EventLog::new(registry.clone()).unwrap());
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
            dispatcher: std::sync::Mutex::new(None),
            runtime: tokio::runtime::Handle::current(),
            registry_url: "http://127.0.0.1:5000".into(),
            space: registry::ext::Space::unwatched(),
        };
        claim(&shared).await.unwrap();
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

    #[tokio::test]
    async fn replay_queues_matching_events_again_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let (shared, registry) = shared(dir.path(), 100).await;
        shared.store.create(&hook("app:*")).await.unwrap();
        for repo in ["app", "other", "app", "app"] {
            push(&registry, repo).await;
        }
        dispatch_pending(&shared).await.unwrap();
        // Delivered (or given up): the queue is empty again.
        while let Some((key, _)) = shared.queue.head("hook01").await.unwrap() {
            shared.queue.finish("hook01", &key).await.unwrap();
        }
        let all = replay(&shared, "hook01", ReplayRange::default())
            .await
            .unwrap();
        assert_eq!((all.queued, all.already_queued, all.dropped), (3, 0, 0));
        assert_eq!(all.oldest.as_ref().map(|o| o.0), Some(1));
        assert_eq!(all.newest.as_ref().map(|n| n.0), Some(4));
        let again = replay(&shared, "hook01", ReplayRange::default())
            .await
            .unwrap();
        assert_eq!((again.queued, again.already_queued), (0, 3));
        let mut seqs = Vec::new();
        while let Some((key, _)) = shared.queue.head("hook01").await.unwrap() {
            seqs.push(crate::queue::seq_of(&key));
            shared.queue.finish("hook01", &key).await.unwrap();
        }
        assert_eq!(seqs, [1, 3, 4], "in order, each once");
        let later = ReplayRange {
            after: Some(3),
            ..ReplayRange::default()
        };
        assert_eq!(replay(&shared, "hook01", later).await.unwrap().queued, 1);
        let future = ReplayRange {
            since: Some("2999-01-01T00:00:00Z".into()),
            ..ReplayRange::default()
        };
        assert_eq!(replay(&shared, "hook01", future).await.unwrap().queued, 0);
        let bad = ReplayRange {
            until: Some("yesterday".into()),
            ..ReplayRange::default()
        };
        assert!(matches!(
            replay(&shared, "hook01", bad).await,
            Err(Error::Invalid("until", _))
        ));
    }
}
