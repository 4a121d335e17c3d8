//! Ordered key-value storage: named trees of byte keys and values, atomic
//! transactions across trees, and the append-only event log, over one of
//! two engines: sled (embedded, the zero-configuration default) or
//! PostgreSQL (shared by replicas).
//!
//! Everything the registry and its extensions keep about content lives in
//! [`Tree`]s of a [`Db`]. A change that must be atomic runs as
//! [`Db::transaction`]: its reads see a consistent state, its writes and the
//! events it appends commit together, and the change is durable when the
//! call returns.
//!
//! # How a transaction runs
//! The closure reads through the [`Tx`]; its writes and events are buffered
//! in the `Tx` (reads see them) and applied in one atomic batch at the end.
//! With sled, transactions run one at a time (see [`embedded`]); with
//! PostgreSQL they run at `SERIALIZABLE` and run again when a concurrent
//! one wins (see [`postgres`]). Either way a transaction's reads cannot be
//! invalidated before its batch lands.
//!
//! Single-key writes outside a transaction ([`Tree::insert`],
//! [`Tree::remove`], [`Tree::compare_and_swap`]) are for keys no transaction
//! decides on (upload sessions, blob links that only ever get added, delivery
//! queues), or re-check their own condition (compare-and-swap).
//!
//! # Between replicas
//! [`Db::try_lease`] elects one holder of a piece of work (the webhook
//! dispatcher, one webhook's deliveries, garbage collection), [`Db::notify`]
//! and [`Db::subscribe`] wake the others. With sled there is one process,
//! so leases are always granted and notices stay in it.

mod copy;
mod embedded;
mod lease;
mod postgres;
mod tx;

use std::ops::Bound;
use std::sync::Arc;

use futures_util::Stream;
use serde::de::DeserializeOwned;

pub use copy::Copied;
pub use lease::{Exclusive, Lease};
#[cfg(test)]
pub(crate) use postgres::testing;
pub use tx::Tx;
use tx::{TxBackend, Write};

use crate::events::Record;
use crate::Error;

/// A boxed future, what a transaction's closure returns.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A notification: its channel and payload.
pub type Notice = (String, String);

/// Entries read per round when walking a tree ([`Tree::iter`]).
const PAGE: usize = 512;

/// A database; cloning shares it.
#[derive(Clone, Debug)]
pub struct Db {
    backend: Backend,
    /// Prefix of this view's tree names (an extension's own database on a
    /// shared engine).
    prefix: Arc<str>,
    /// The location of this replica, stamped on every event it appends.
    location: Option<Arc<str>>,
}

#[derive(Clone, Debug)]
enum Backend {
    Sled(Arc<embedded::SledDb>),
    Pg(Arc<postgres::PgDb>),
}

/// One named tree of a [`Db`]; cloning shares it.
#[derive(Clone, Debug)]
pub struct Tree {
    name: Arc<str>,
    backend: TreeBackend,
}

#[derive(Clone, Debug)]
enum TreeBackend {
    Sled(sled::Tree),
    Pg(Arc<postgres::PgDb>),
}

impl Db {
    /// Opens (or creates) an embedded database in the directory `path`.
    pub fn open(path: &std::path::Path) -> Result<Self, Error> {
        Ok(Self::new(Backend::Sled(Arc::new(embedded::SledDb::open(
            path,
        )?))))
    }

    /// Connects to a PostgreSQL database (`postgres://user:pw@host/db`),
    /// creating or migrating its schema.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Ok(Self::new(Backend::Pg(postgres::PgDb::connect(url).await?)))
    }

    fn new(backend: Backend) -> Self {
        Self {
            backend,
            prefix: "".into(),
            location: None,
        }
    }

    /// This database, stamping `location` on the events it appends.
    pub(crate) fn located(mut self, location: Option<&str>) -> Self {
        self.location = location.filter(|l| !l.is_empty()).map(Into::into);
        self
    }

    /// Why the database stopped working for good, if it did: sled refuses
    /// every write after one the disk refused, until the process restarts.
    /// (PostgreSQL recovers by itself; its errors are per request.)
    pub fn failure(&self) -> Option<String> {
        match &self.backend {
            Backend::Sled(db) => db.failure(),
            Backend::Pg(_) => None,
        }
    }

    /// Whether other processes share this database (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Pg(_))
    }

    /// A view whose trees are named `{prefix}.{name}`: an extension's own
    /// database on a shared engine.
    pub fn scoped(&self, prefix: &str) -> Self {
        Self {
            prefix: format!("{}{prefix}.", self.prefix).into(),
            ..self.clone()
        }
    }

    /// The tree `name`, created when absent.
    pub fn tree(&self, name: &str) -> Result<Tree, Error> {
        let full: Arc<str> = format!("{}{name}", self.prefix).into();
        let backend = match &self.backend {
            Backend::Sled(db) => TreeBackend::Sled(db.tree(&full)?),
            Backend::Pg(db) => TreeBackend::Pg(db.clone()),
        };
        Ok(Tree {
            name: full,
            backend,
        })
    }

    /// Makes every change so far durable (sled syncs in the background
    /// otherwise; PostgreSQL commits durably); [`Db::transaction`] does this
    /// itself.
    pub async fn flush(&self) -> Result<(), Error> {
        match &self.backend {
            Backend::Sled(db) => db.flush().await,
            Backend::Pg(_) => Ok(()),
        }
    }

    /// Runs `f` as one atomic transaction and makes its effects durable.
    ///
    /// `f` may run more than once, so it must have no effects outside the
    /// [`Tx`]. When it fails, nothing it wrote or appended is kept. Write it
    /// as `|tx| Box::pin(async move { ... })`.
    pub async fn transaction<'a, T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: for<'t> Fn(&'t Tx<'a>) -> BoxFuture<'t, Result<T, E>>,
        E: From<Error>,
    {
        let location = self.location.clone();
        match &self.backend {
            Backend::Sled(db) => {
                let value = db.transaction(&f, location).await?;
                db.flush().await?;
                Ok(value)
            }
            Backend::Pg(db) => db.transaction(&f, location).await,
        }
    }

    /// Up to `limit` entries of the event log after sequence number `after`,
    /// oldest first: only durable ones, or (`committed`) every committed
    /// one, which the embedded engine may not have flushed yet.
    pub(crate) async fn log_after(
        &self,
        after: u64,
        limit: usize,
        committed: bool,
    ) -> Result<Vec<(u64, Record)>, Error> {
        let mut raw = self.log_raw_after(after, limit).await?;
        if let (Backend::Sled(db), false) = (&self.backend, committed) {
            let durable = *db.durable.borrow();
            raw.retain(|(seq, _)| *seq <= durable);
        }
        raw.into_iter()
            .map(|(seq, bytes)| Ok((seq, serde_json::from_slice(&bytes)?)))
            .collect()
    }

    /// Up to `limit` committed entries of the event log after `after`, as
    /// stored.
    async fn log_raw_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        match &self.backend {
            Backend::Sled(db) => db.log_after(after, limit),
            Backend::Pg(db) => db.log_after(after, limit).await,
        }
    }

    /// Removes the log's entries up to and including `upto`; returns how
    /// many went.
    pub(crate) async fn log_trim(&self, upto: u64) -> Result<usize, Error> {
        match &self.backend {
            Backend::Sled(db) => db.log_trim(upto),
            Backend::Pg(db) => db.log_trim(upto).await,
        }
    }

    /// The sequence number of the last event committed, durable or not.
    pub(crate) async fn log_last(&self) -> Result<u64, Error> {
        match &self.backend {
            Backend::Sled(db) => db.log_last(),
            Backend::Pg(db) => db.log_last().await,
        }
    }

    /// The sequence number of the last durable event.
    pub(crate) async fn log_durable(&self) -> Result<u64, Error> {
        match &self.backend {
            Backend::Sled(db) => Ok(*db.durable.borrow()),
            Backend::Pg(db) => db.log_last().await,
        }
    }

    /// Notified whenever events become durable (here or, on a shared
    /// engine, on another replica).
    pub(crate) fn watch_durable(&self) -> tokio::sync::watch::Receiver<u64> {
        match &self.backend {
            Backend::Sled(db) => db.durable.subscribe(),
            Backend::Pg(db) => db.durable.subscribe(),
        }
    }

    /// Sends `payload` on `channel` to every subscriber, on every replica.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), Error> {
        match &self.backend {
            Backend::Sled(db) => {
                let _ = db.notices.send((channel.to_owned(), payload.to_owned()));
                Ok(())
            }
            Backend::Pg(db) => db.notify(channel, payload).await,
        }
    }

    /// Every notice from now on. (A notice with an empty channel means some
    /// may have been missed: re-read what you watch.)
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Notice> {
        match &self.backend {
            Backend::Sled(db) => db.notices.subscribe(),
            Backend::Pg(db) => db.notices.subscribe(),
        }
    }

    /// Takes the lease `name` unless someone holds it (another replica, or
    /// another task here); see [`Lease`].
    pub async fn try_lease(&self, name: &str) -> Result<Option<Lease>, Error> {
        match &self.backend {
            Backend::Sled(db) => Ok(Lease::local(&db.leases, name)),
            Backend::Pg(db) => Lease::shared(db, name).await,
        }
    }

    /// Waits until nobody holds the lock `name`, even shared
    /// ([`Tx::shared_lock`]), across replicas, and holds it until dropped.
    /// The embedded engine has one process: its callers lock in memory.
    pub async fn exclusive(&self, name: &str) -> Result<Exclusive, Error> {
        match &self.backend {
            Backend::Sled(_) => Ok(Exclusive::local()),
            Backend::Pg(db) => Exclusive::shared(db, name).await,
        }
    }

    /// Statements sent to a shared engine so far (0 for the embedded one).
    pub fn round_trips(&self) -> u64 {
        match &self.backend {
            Backend::Sled(_) => 0,
            Backend::Pg(db) => db.round_trips(),
        }
    }

    /// Frees memory the engine holds for replaced entries (sled: tree nodes
    /// its writes replaced, freed by whichever thread next enters it; see
    /// `docs/performance.md`). Cheap; call it after a burst of writes on a
    /// thread that is not serving requests.
    pub fn release_memory(&self) {
        if let Backend::Sled(_) = self.backend {
            embedded::release_memory();
        }
    }
}

impl Tree {
    /// The tree's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key`.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        match &self.backend {
            TreeBackend::Sled(t) => Ok(t.get(key)?.map(|v| v.to_vec())),
            TreeBackend::Pg(db) => db.get(&self.name, key).await,
        }
    }

    /// The value of `key`, decoded from JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, Error> {
        self.get(key).await?.map(|v| decode(&v)).transpose()
    }

    /// Whether `key` is present.
    pub async fn contains(&self, key: &[u8]) -> Result<bool, Error> {
        match &self.backend {
            TreeBackend::Sled(t) => Ok(t.contains_key(key)?),
            TreeBackend::Pg(db) => Ok(db.get(&self.name, key).await?.is_some()),
        }
    }

    /// Sets `key` to `value` (not durable until a flush).
    pub async fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        match &self.backend {
            TreeBackend::Sled(t) => {
                t.insert(key, value)?;
                Ok(())
            }
            TreeBackend::Pg(db) => db.insert(&self.name, key, value).await,
        }
    }

    /// Removes `key`; whether it was present.
    pub async fn remove(&self, key: &[u8]) -> Result<bool, Error> {
        match &self.backend {
            TreeBackend::Sled(t) => Ok(t.remove(key)?.is_some()),
            TreeBackend::Pg(db) => db.remove(&self.name, key).await,
        }
    }

    /// Sets `key` to `new` (`None`: removes it) only if its value is `old`
    /// (`None`: absent); whether it did.
    pub async fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, Error> {
        match &self.backend {
            TreeBackend::Sled(t) => Ok(t.compare_and_swap(key, old, new)?.is_ok()),
            TreeBackend::Pg(db) => db.compare_and_swap(&self.name, key, old, new).await,
        }
    }

    /// Up to `limit` entries with keys in `(start, end)`, in key order.
    pub async fn range(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, Error> {
        match &self.backend {
            TreeBackend::Sled(t) => embedded::range(t, start, end, limit),
            TreeBackend::Pg(db) => db.range(&self.name, start, end, limit).await,
        }
    }

    /// Up to `limit` entries whose keys start with `prefix`, in key order.
    pub async fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, Error> {
        let end = prefix_end(prefix);
        let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.range(Bound::Included(prefix), end, limit).await
    }

    /// The first entry whose key starts with `prefix`.
    pub async fn first(&self, prefix: &[u8]) -> Result<Option<Entry>, Error> {
        Ok(self.scan_prefix(prefix, 1).await?.pop())
    }

    /// How many keys start with `prefix`.
    pub async fn count(&self, prefix: &[u8]) -> Result<usize, Error> {
        match &self.backend {
            TreeBackend::Sled(t) => embedded::count(t, prefix),
            TreeBackend::Pg(db) => {
                db.count_range(&self.name, prefix, prefix_end(prefix).as_deref())
                    .await
            }
        }
    }

    /// Every entry whose key starts with `prefix`, in key order, read a page
    /// at a time (for walks over a whole tree: fsck, gc, start-up).
    pub fn iter(&self, prefix: &[u8]) -> impl Stream<Item = Result<Entry, Error>> + Send + 'static {
        let walk = Walk {
            tree: self.clone(),
            start: Bound::Included(prefix.to_vec()),
            end: prefix_end(prefix),
            done: false,
            page: std::collections::VecDeque::new(),
        };
        futures_util::stream::try_unfold(walk, |mut walk| async move {
            if walk.page.is_empty() && !walk.done {
                let start = bound_ref(&walk.start);
                let end = walk
                    .end
                    .as_deref()
                    .map_or(Bound::Unbounded, Bound::Excluded);
                let read = walk.tree.range(start, end, PAGE).await?;
                walk.done = read.len() < PAGE;
                if let Some((last, _)) = read.last() {
                    walk.start = Bound::Excluded(last.clone());
                }
                walk.page.extend(read);
            }
            Ok(walk.page.pop_front().map(|entry| (entry, walk)))
        })
    }
}

/// Where a walk over a tree stands.
struct Walk {
    tree: Tree,
    start: Bound<Vec<u8>>,
    end: Option<Vec<u8>>,
    /// The last page has been read.
    done: bool,
    page: std::collections::VecDeque<Entry>,
}

/// The smallest key greater than every key starting with `prefix` (`None`
/// when there is none: the prefix is all `0xff`).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A borrowed bound.
pub fn bound_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Decodes a JSON record; corruption is an internal error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    Ok(serde_json::from_slice(bytes)?)
}

/// A big-endian u64, as counters and sequence numbers are stored (0 when
/// malformed or absent).
pub fn decode_u64(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// A key of parts joined by `\0`, which occurs in no name, tag, digest or
/// webhook name, so one key's prefix never matches another's.
pub fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(part);
    }
    k
}

/// The parts of a key built by [`key`].
pub fn split(key: &[u8]) -> impl Iterator<Item = &[u8]> {
    key.split(|&b| b == 0)
}

#[cfg(test)]
mod tests;
