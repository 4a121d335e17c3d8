//! Ordered key-value storage: named trees of byte keys and values, atomic
//! transactions across trees, and the append-only event log, over one
//! embedded engine (sled, the zero-configuration default).
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
//! With sled, transactions run one at a time (see [`embedded`]), so the reads
//! cannot be invalidated before the batch lands.
//!
//! Single-key writes outside a transaction ([`Tree::insert`],
//! [`Tree::remove`], [`Tree::compare_and_swap`]) are for keys no transaction
//! decides on (upload sessions, blob links that only ever get added, delivery
//! queues), or re-check their own condition (compare-and-swap).

mod embedded;

use std::future::Future;
use std::ops::Bound;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::events::Record;
use crate::Error;

/// A boxed future, what a transaction's closure returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Entries read per round when walking a tree ([`Tree::iter`]).
const PAGE: usize = 512;

/// A database; cloning shares it.
#[derive(Clone, Debug)]
pub struct Db {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Sled(Arc<embedded::SledDb>),
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
}

impl Db {
    /// Opens (or creates) an embedded database in the directory `path`.
    pub fn open(path: &std::path::Path) -> Result<Self, Error> {
        Ok(Self {
            backend: Backend::Sled(Arc::new(embedded::SledDb::open(path)?)),
        })
    }

    /// The tree `name`, created when absent.
    pub fn tree(&self, name: &str) -> Result<Tree, Error> {
        let backend = match &self.backend {
            Backend::Sled(db) => TreeBackend::Sled(db.tree(name)?),
        };
        Ok(Tree {
            name: name.into(),
            backend,
        })
    }

    /// Makes every change so far durable (sled syncs in the background
    /// otherwise); [`Db::transaction`] does this itself.
    pub async fn flush(&self) -> Result<(), Error> {
        match &self.backend {
            Backend::Sled(db) => db.flush().await,
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
        let value = match &self.backend {
            Backend::Sled(db) => db.transaction(f).await?,
        };
        self.flush().await?;
        Ok(value)
    }

    /// Up to `limit` entries of the event log after sequence number
    /// `after`, oldest first, committed but not necessarily durable yet (see
    /// [`Db::durable`]).
    pub(crate) async fn log_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Record)>, Error> {
        let raw = match &self.backend {
            Backend::Sled(db) => db.log_after(after, limit)?,
        };
        raw.into_iter()
            .map(|(seq, bytes)| Ok((seq, serde_json::from_slice(&bytes)?)))
            .collect()
    }

    /// Removes the log's entries up to and including `upto`; returns how
    /// many went.
    pub(crate) async fn log_trim(&self, upto: u64) -> Result<usize, Error> {
        match &self.backend {
            Backend::Sled(db) => db.log_trim(upto),
        }
    }

    /// The sequence number of the last event committed, durable or not.
    pub(crate) async fn log_last(&self) -> Result<u64, Error> {
        match &self.backend {
            Backend::Sled(db) => db.log_last(),
        }
    }

    /// The highest sequence number known to be durable.
    pub(crate) fn durable(&self) -> u64 {
        match &self.backend {
            Backend::Sled(db) => *db.durable.borrow(),
        }
    }

    /// Notified whenever [`Db::durable`] moves.
    pub(crate) fn watch_durable(&self) -> tokio::sync::watch::Receiver<u64> {
        match &self.backend {
            Backend::Sled(db) => db.durable.subscribe(),
        }
    }

    /// Frees memory the engine holds for replaced entries (sled: tree nodes
    /// its writes replaced, freed by whichever thread next enters it; see
    /// `docs/performance.md`). Cheap; call it after a burst of writes on a
    /// thread that is not serving requests.
    pub fn release_memory(&self) {
        match &self.backend {
            Backend::Sled(_) => embedded::release_memory(),
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
        }
    }

    /// Sets `key` to `value` (not durable until a flush).
    pub async fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        match &self.backend {
            TreeBackend::Sled(t) => {
                t.insert(key, value)?;
            }
        }
        Ok(())
    }

    /// Removes `key`; whether it was present.
    pub async fn remove(&self, key: &[u8]) -> Result<bool, Error> {
        match &self.backend {
            TreeBackend::Sled(t) => Ok(t.remove(key)?.is_some()),
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
                let start = match &walk.start {
                    Bound::Included(k) => Bound::Included(k.as_slice()),
                    Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
                    Bound::Unbounded => Bound::Unbounded,
                };
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

/// One buffered write of a transaction: `value` `None` removes the key.
struct Write {
    tree: Tree,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

/// A transaction in progress (see [`Db::transaction`]). `'a` is the scope
/// of what the transaction's closure borrows: a `&'t Tx<'a>` implies
/// `'a: 't`, so the future the closure returns may hold those borrows.
pub struct Tx<'a> {
    backend: TxBackend,
    scope: std::marker::PhantomData<&'a ()>,
    /// Writes in order, applied at commit.
    writes: Mutex<Vec<Write>>,
    /// Encoded event records, appended at commit.
    events: Mutex<Vec<Vec<u8>>>,
}

enum TxBackend {
    Sled,
}

impl Tx<'_> {
    fn new(backend: TxBackend) -> Self {
        Self {
            backend,
            scope: std::marker::PhantomData,
            writes: Mutex::default(),
            events: Mutex::default(),
        }
    }

    /// The value of `key`, as this transaction has left it.
    pub async fn get(&self, tree: &Tree, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let written = lock(&self.writes)
            .iter()
            .rev()
            .find(|w| w.tree.name == tree.name && w.key == key)
            .map(|w| w.value.clone());
        if let Some(value) = written {
            return Ok(value);
        }
        match self.backend {
            TxBackend::Sled => tree.get(key).await,
        }
    }

    /// The value of `key`, decoded from JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        tree: &Tree,
        key: &[u8],
    ) -> Result<Option<T>, Error> {
        self.get(tree, key).await?.map(|v| decode(&v)).transpose()
    }

    /// Sets `key` to `value` when the transaction commits.
    pub fn insert(&self, tree: &Tree, key: &[u8], value: impl Into<Vec<u8>>) {
        lock(&self.writes).push(Write {
            tree: tree.clone(),
            key: key.to_vec(),
            value: Some(value.into()),
        });
    }

    /// Sets `key` to `value` encoded as JSON when the transaction commits.
    pub fn insert_json<T: Serialize>(
        &self,
        tree: &Tree,
        key: &[u8],
        value: &T,
    ) -> Result<(), Error> {
        self.insert(tree, key, serde_json::to_vec(value)?);
        Ok(())
    }

    /// Removes `key` when the transaction commits.
    pub fn remove(&self, tree: &Tree, key: &[u8]) {
        lock(&self.writes).push(Write {
            tree: tree.clone(),
            key: key.to_vec(),
            value: None,
        });
    }

    /// Appends `record` to the event log when the transaction commits: the
    /// only way an event enters the log, so every event is committed with
    /// the change it describes.
    pub fn append_event(&self, record: impl Into<Record>) -> Result<(), Error> {
        let bytes = serde_json::to_vec(&record.into())?;
        lock(&self.events).push(bytes);
        Ok(())
    }

    /// The buffered writes and events, for the backend's commit.
    fn into_parts(self) -> (Vec<Write>, Vec<Vec<u8>>) {
        let writes = self.writes.into_inner().unwrap_or_else(|p| p.into_inner());
        let events = self.events.into_inner().unwrap_or_else(|p| p.into_inner());
        (writes, events)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
