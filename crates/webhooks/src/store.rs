//! The webhooks' state, in a database of their own (`<data-dir>/webhooks`
//! with the embedded store), apart from the registry's: delivery work then
//! never contends with manifest transactions, and a manifest PUT's flush
//! never carries delivery records. Only the event log is read from the
//! registry.
//!
//! | tree                 | key                                | value                 |
//! |----------------------|------------------------------------|-----------------------|
//! | `webhooks`           | name                               | [`Webhook`] JSON      |
//! | `webhook_deliveries` | see [`crate::queue`]               |                       |
//! | `webhook_history`    | see [`crate::history`]             |                       |
//! | `counters`           | `webhooks/cursor`                  | u64 BE                |

use std::sync::{Arc, Mutex};

use futures_util::TryStreamExt;
use registry::ext::{decode_u64, Db, EventLog, Hold, Tree};

use crate::webhook::Webhook;
use crate::Error;

/// Every webhook, shared.
pub type Hooks = Arc<[Webhook]>;

/// Key of the dispatcher's cursor: the last event seq turned into deliveries.
const CURSOR: &[u8] = b"webhooks/cursor";

/// Notified when a webhook is created, changed or deleted: every replica
/// then starts or stops its workers.
pub const WEBHOOKS_CHANNEL: &str = "berth_webhooks";

/// Notified with a webhook's name when deliveries are queued for it: its
/// worker wakes, on whichever replica holds its lease.
pub const DELIVERIES_CHANNEL: &str = "berth_deliveries";

/// The webhooks, the history's bookkeeping and the dispatcher's cursor.
#[derive(Debug)]
pub struct Store {
    db: Db,
    webhooks: Tree,
    /// Each webhook's delivery history (see [`crate::history`]).
    pub(crate) history: Tree,
    counters: Tree,
    /// The `webhooks` tree, decoded: read for every event and delivery,
    /// changed only through this store.
    cached: Mutex<Cache>,
    /// The webhooks whose history was trimmed to the limit since start-up;
    /// held while appending, so this process's appends never race each
    /// other (see [`crate::history::append`]).
    pub(crate) trimmed: tokio::sync::Mutex<std::collections::HashSet<String>>,
    /// The registry's event log (its durable view).
    pub(crate) events: Arc<EventLog>,
    /// Keeps the log from trimming events past the cursor.
    hold: Hold,
}

impl Store {
    /// The webhooks' state in `db`, reading events from `events`.
    pub async fn open(db: Db, events: Arc<EventLog>) -> Result<Self, Error> {
        let counters = db.tree("counters")?;
        let cursor = decode_u64(counters.get(CURSOR).await?.as_deref());
        Ok(Self {
            webhooks: db.tree("webhooks")?,
            history: db.tree("webhook_history")?,
            hold: events.hold("webhooks", cursor).await?,
            counters,
            events,
            cached: Mutex::default(),
            trimmed: tokio::sync::Mutex::default(),
            db,
        })
    }

    /// The webhooks' database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Every webhook, by name. Cached, but on a shared database (where
    /// other replicas change webhooks) read afresh.
    pub async fn all(&self) -> Result<Hooks, Error> {
        let version = {
            let cache = self.lock();
            if let Some(hooks) = &cache.hooks {
                return Ok(hooks.clone());
            }
            cache.version
        };
        let hooks: Vec<Webhook> = self
            .webhooks
            .iter(b"")
            .map_err(Error::from)
            .and_then(|(_, v)| async move { Ok(serde_json::from_slice(&v)?) })
            .try_collect()
            .await?;
        let hooks: Hooks = hooks.into();
        let mut cache = self.lock();
        // A change made while we read may be missing from what we read:
        // cache it only if none was.
        if cache.version == version && !self.db.is_shared() {
            cache.hooks = Some(hooks.clone());
        }
        Ok(hooks)
    }

    /// One webhook.
    pub async fn get(&self, name: &str) -> Result<Webhook, Error> {
        self.all()
            .await?
            .iter()
            .find(|h| h.name == name)
            .cloned()
            .ok_or_else(|| Error::NotFound(name.to_owned()))
    }

    /// How many webhooks there are.
    pub async fn count(&self) -> Result<usize, Error> {
        Ok(self.all().await?.len())
    }

    /// Stores a new webhook, durably; `Exists` when the name is taken, also
    /// by a concurrent create (the insert is a compare-and-swap).
    pub async fn create(&self, hook: &Webhook) -> Result<(), Error> {
        let value = serde_json::to_vec(hook)?;
        let created = self
            .webhooks
            .compare_and_swap(hook.name.as_bytes(), None, Some(&value))
            .await?;
        if !created {
            return Err(Error::Exists(hook.name.clone()));
        }
        self.changed().await
    }

    /// Stores `hook` (create or replace), durably.
    pub async fn put(&self, hook: &Webhook) -> Result<(), Error> {
        self.webhooks
            .insert(hook.name.as_bytes(), &serde_json::to_vec(hook)?)
            .await?;
        self.changed().await
    }

    /// Removes a webhook and its history, durably (its queue is the
    /// caller's to clear).
    pub async fn remove(&self, name: &str) -> Result<(), Error> {
        if !self.webhooks.remove(name.as_bytes()).await? {
            return Err(Error::NotFound(name.to_owned()));
        }
        crate::history::clear(self, name).await?;
        self.changed().await
    }

    /// The last event sequence number turned into deliveries.
    pub async fn cursor(&self) -> Result<u64, Error> {
        Ok(decode_u64(self.counters.get(CURSOR).await?.as_deref()))
    }

    /// Moves the cursor forward to `seq` (not durable until
    /// [`Store::release`]); never back, whoever else moved it meanwhile.
    pub async fn set_cursor(&self, seq: u64) -> Result<(), Error> {
        loop {
            let old = self.counters.get(CURSOR).await?;
            if decode_u64(old.as_deref()) >= seq {
                return Ok(());
            }
            let moved = self
                .counters
                .compare_and_swap(CURSOR, old.as_deref(), Some(&seq.to_be_bytes()))
                .await?;
            if moved {
                return Ok(());
            }
        }
    }

    /// Makes the queues and the cursor durable, then lets the registry's
    /// event log drop every event dispatched before: until then a crash
    /// could take the deliveries and the cursor back, and the events must
    /// be there to be dispatched again.
    pub async fn release(&self) -> Result<(), Error> {
        let cursor = self.cursor().await?;
        self.db.flush().await?;
        self.hold.advance(cursor).await?;
        Ok(())
    }

    /// After a change of the `webhooks` tree: drops the cache, flushes, and
    /// tells the other replicas (see [`WEBHOOKS_CHANNEL`]).
    async fn changed(&self) -> Result<(), Error> {
        {
            let mut cache = self.lock();
            cache.hooks = None;
            cache.version += 1;
        }
        self.db.flush().await?;
        self.db.notify(WEBHOOKS_CHANNEL, "").await?;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The webhooks as last read, and how many changes were made so far (a
/// read that a change overtook is not cached).
#[derive(Debug, Default)]
struct Cache {
    hooks: Option<Hooks>,
    version: u64,
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::tests::hook;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_creates_of_one_name_make_one_webhook() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Db::open(&dir.path().join("registry")).unwrap();
        let log = Arc::new(registry::ext::EventLog::new(registry).unwrap());
        let store = Arc::new(
            Store::open(Db::open(&dir.path().join("hooks")).unwrap(), log)
                .await
                .unwrap(),
        );
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut h = hook("");
                h.service_uri = format!("http://127.0.0.1:1/{i}");
                store.create(&h).await
            }));
        }
        let mut created = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => created += 1,
                Err(Error::Exists(name)) => assert_eq!(name, "hook01"),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(created, 1);
        assert_eq!(store.count().await.unwrap(), 1);
        store.remove("hook01").await.unwrap();
        assert!(matches!(store.get("hook01").await, Err(Error::NotFound(_))));
        assert!(matches!(
            store.remove("hook01").await,
            Err(Error::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn the_cursor_survives_a_restart_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Db::open(&dir.path().join("registry")).unwrap();
        let log = Arc::new(registry::ext::EventLog::new(registry).unwrap());
        let path = dir.path().join("hooks");
        {
            let store = Store::open(Db::open(&path).unwrap(), log.clone())
                .await
                .unwrap();
            store.set_cursor(42).await.unwrap();
            store.release().await.unwrap();
        }
        let store = Store::open(Db::open(&path).unwrap(), log).await.unwrap();
        assert_eq!(store.cursor().await.unwrap(), 42);
    }
}
