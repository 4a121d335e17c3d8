//! The webhooks' state, in a sled database of their own (`<data-dir>/webhooks`),
//! apart from the registry's: delivery work then never contends with manifest
//! transactions, and a manifest PUT's flush never carries delivery records.
//! Only the event log is read from the registry's database.
//!
//! | tree                 | key                                | value                 |
//! |----------------------|------------------------------------|-----------------------|
//! | `webhooks`           | name                               | [`Webhook`] JSON      |
//! | `webhook_deliveries` | name `\0` event seq (u64 BE)       | [`Delivery`] JSON     |
//! | `webhook_history`    | name `\0` !entry number (u64 BE)   | history entry JSON    |
//! | `counters`           | `webhooks/cursor`                  | u64 BE                |
//!
//! History keys store the bitwise complement of the entry's number (1, 2, 3,
//! ... per webhook), so a prefix scan yields the newest entry first.

use registry::events::Event;
use registry::storage::gate;
use serde::{Deserialize, Serialize};

use crate::webhook::Webhook;
use crate::Error;

/// A pending delivery of one event to one webhook.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    /// The payload.
    pub event: Event,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was queued, unix milliseconds.
    pub queued_ms: u64,
    /// Not before this time, unix milliseconds.
    pub next_attempt_ms: u64,
}

/// The trees.
#[derive(Clone, Debug)]
pub struct Store {
    /// The webhooks' own database.
    pub db: sled::Db,
    /// Group commit for it (see `registry::storage::gate`).
    flusher: std::sync::Arc<gate::Flusher>,
    /// The `webhooks` tree, decoded: read for every event and delivery,
    /// changed only by [`put`](Self::put) and [`remove`](Self::remove).
    cached: std::sync::Arc<std::sync::Mutex<Option<Hooks>>>,
    /// Each webhook's history, as read on its first append.
    histories: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, History>>>,

    /// Webhook definitions.
    pub webhooks: sled::Tree,
    /// Pending deliveries, one ordered queue per webhook.
    pub deliveries: sled::Tree,
    /// Delivery history, newest first per webhook.
    pub history: sled::Tree,
    /// The dispatcher's cursor.
    pub counters: sled::Tree,
    /// The registry's event log (its durable view).
    pub events: std::sync::Arc<registry::events::EventLog>,
    /// Keeps the log from trimming events past the cursor.
    pub hold: std::sync::Arc<registry::events::Hold>,
}

/// Key of the dispatcher's cursor: the last event seq turned into deliveries.
pub const CURSOR: &[u8] = b"webhooks/cursor";

impl Store {
    /// Opens (or creates) the webhooks' database at `path`, reading events
    /// from the registry's `events`.
    pub fn open(
        events: std::sync::Arc<registry::events::EventLog>,
        path: &std::path::Path,
    ) -> Result<Self, Error> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            // sled's default cache (1 GiB) grows with the history; queues
            // and history are read at their ends only.
            .cache_capacity(4 << 20)
            .open()?;
        let counters = db.open_tree("counters")?;
        let hold = events.hold(decode_u64(counters.get(CURSOR)?)).into();
        Ok(Self {
            webhooks: db.open_tree("webhooks")?,
            deliveries: db.open_tree("webhook_deliveries")?,
            history: db.open_tree("webhook_history")?,
            counters,
            events,
            hold,
            flusher: std::sync::Arc::default(),
            cached: std::sync::Arc::default(),
            histories: std::sync::Arc::default(),
            db,
        })
    }

    /// Every webhook, by name.
    pub fn all(&self) -> Result<Hooks, Error> {
        let mut cached = self.lock();
        if let Some(hooks) = &*cached {
            return Ok(hooks.clone());
        }
        // Loaded under the lock: a change made meanwhile clears the cache
        // only after this load has stored it.
        let hooks: Hooks = self
            .webhooks
            .iter()
            .map(|item| Ok(serde_json::from_slice(&item?.1)?))
            .collect::<Result<Vec<_>, Error>>()?
            .into();
        *cached = Some(hooks.clone());
        Ok(hooks)
    }

    /// One webhook.
    pub fn get(&self, name: &str) -> Result<Webhook, Error> {
        self.all()?
            .iter()
            .find(|h| h.name == name)
            .cloned()
            .ok_or_else(|| Error::NotFound(name.to_owned()))
    }

    /// Stores `hook` (create or replace), durably.
    pub async fn put(&self, hook: &Webhook) -> Result<(), Error> {
        self.webhooks
            .insert(hook.name.as_str(), serde_json::to_vec(hook)?)?;
        *self.lock() = None;
        self.flusher.flush(&self.db).await?;
        Ok(())
    }

    /// Makes every change so far durable.
    pub async fn flush(&self) -> Result<(), Error> {
        self.flusher.flush(&self.db).await?;
        Ok(())
    }

    /// Removes a webhook with its queue and history, durably.
    pub async fn remove(&self, name: &str) -> Result<(), Error> {
        self.webhooks
            .remove(name)?
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        *self.lock() = None;
        for tree in [&self.deliveries, &self.history] {
            for key in tree.scan_prefix(prefix(name)).keys() {
                tree.remove(key?)?;
            }
        }
        self.histories().remove(name);
        self.flusher.flush(&self.db).await?;
        Ok(())
    }

    /// Where each webhook's history stands (newest entry number, length), for
    /// [`crate::history::append`]; held while appending, so appends to one
    /// history never interleave.
    pub fn histories(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, History>> {
        self.histories.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Hooks>> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a webhook's history stands.
#[derive(Debug)]
pub struct History {
    /// The number of its newest entry.
    pub newest: u64,
    /// Its entries.
    pub len: usize,
}

/// Every webhook, shared.
pub type Hooks = std::sync::Arc<[Webhook]>;

/// `name \0`.
pub fn prefix(name: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    k
}

/// `name \0 n` with `n` big-endian.
pub fn key(name: &str, n: u64) -> Vec<u8> {
    let mut k = prefix(name);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// Decodes a u64 counter value.
pub fn decode_u64(v: Option<sled::IVec>) -> u64 {
    v.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Frees, on this thread, tree nodes that sled writes replaced: this
/// thread's, and a few batches of any other thread's that are due.
///
/// sled frees a replaced node only once no reader can still hold it
/// (epoch-based reclamation, one collector per process), and the thread
/// that next enters sled does the freeing, a few batches per entry. Without
/// this, the deliveries of one push leave thousands of nodes behind, and
/// the next manifest PUT frees them inside its transaction and flush: at 20
/// PUTs/s with 100 matching webhooks that made PUTs 16-23% slower, against
/// 0-6% with it (`docs/performance.md`). Each call frees a few batches; the
/// delivery workers call it after every attempt, the dispatcher after every
/// dispatch. `sled::pin` is hidden from sled's docs but public; it reaches
/// the very collector sled uses, which a direct crossbeam-epoch dependency
/// would reach only while both resolve to the same version.
pub fn free_replaced_nodes() {
    sled::pin().flush();
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
