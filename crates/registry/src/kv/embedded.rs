//! The embedded engine: sled 0.34, with the event log in two of its trees.
//!
//! | tree       | key                       | value                      |
//! |------------|---------------------------|----------------------------|
//! | `events`   | sequence, u64 big-endian  | [`Record`] JSON            |
//! | `counters` | `events`                  | last sequence, u64 BE      |
//!
//! Two sled 0.34 hazards shape how it is used, both seen here under load:
//! - **Lock inversion.** One global reader-writer lock guards every database
//!   in the process. A sled transaction takes it exclusively; a flush holds
//!   it shared while waiting for I/O that other sled threads need it shared
//!   to finish. A transaction queued behind a flush blocks those threads.
//!   So transactions and flushes never overlap here: flushes enter the
//!   [`GATE`] together, transactions alone. That also makes transactions
//!   run one at a time, which is what lets a [`Tx`] read the trees directly.
//! - **Pool starvation.** `flush_async` runs on sled's small I/O thread pool
//!   and waits for log-buffer writes scheduled on that same pool; enough
//!   concurrent flushes occupy every thread and wait forever. So each
//!   database has one flush in flight at most, as a group commit (see
//!   [`Flusher`]).
//!
//! [`Record`]: crate::events::Record

use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use sled::Transactional;
use tokio::sync::{Mutex, RwLock};

use super::lease::LocalLeases;
use super::{Entry, Notice, TreeBackend, Tx, TxBackend, Write};
use crate::Error;

/// Serializes transactions against each other and against flushes.
static GATE: RwLock<()> = RwLock::const_new(());

/// sled's page cache. Its default, 1 GiB, lets memory grow with the store;
/// the working set of a registry's metadata (tags, recent manifests, the
/// tail of the event log) is small, and blobs never pass through sled.
const CACHE_BYTES: u64 = 8 << 20;

/// Key of the event sequence counter in the `counters` tree.
const SEQ_KEY: &[u8] = b"events";

/// One sled database.
#[derive(Debug)]
pub(super) struct SledDb {
    db: sled::Db,
    flusher: Flusher,
    events: sled::Tree,
    counters: sled::Tree,
    /// The highest event sequence number known to be on disk.
    pub(super) durable: tokio::sync::watch::Sender<u64>,
    /// Notices, within this process.
    pub(super) notices: tokio::sync::broadcast::Sender<Notice>,
    /// Leases taken, within this process.
    pub(super) leases: LocalLeases,
    /// Why the database stopped working, once a write or flush failed:
    /// sled then refuses every later one until the process restarts.
    failure: std::sync::OnceLock<String>,
}

impl SledDb {
    /// Opens the database in `path`; an error names the path and what the
    /// system said.
    pub(super) fn open(path: &std::path::Path) -> Result<Self, Error> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io) => Error::Config(format!("{}: {io}", path.display())),
                e => Error::Config(format!("{}: {e}", path.display())),
            })?;
        let events = db.open_tree("events")?;
        let counters = db.open_tree("counters")?;
        // Everything already in the log was read back from disk.
        let last = super::decode_u64(counters.get(SEQ_KEY)?.as_deref());
        Ok(Self {
            durable: tokio::sync::watch::channel(last).0,
            notices: tokio::sync::broadcast::channel(1024).0,
            leases: LocalLeases::default(),
            failure: std::sync::OnceLock::new(),
            flusher: Flusher::default(),
            events,
            counters,
            db,
        })
    }

    pub(super) fn tree(&self, name: &str) -> Result<sled::Tree, Error> {
        Ok(self.db.open_tree(name)?)
    }

    /// Makes every committed change durable, then publishes the event
    /// sequence number that covered.
    pub(super) async fn flush(&self) -> Result<(), Error> {
        let seq = self.log_last()?;
        self.flusher
            .flush(&self.db)
            .await
            .map_err(|e| self.failed(e))?;
        self.durable.send_if_modified(|d| {
            let moved = seq > *d;
            *d = (*d).max(seq);
            moved
        });
        Ok(())
    }

    /// Runs `f` alone (see [`GATE`]) and applies what it buffered in one
    /// sled transaction.
    pub(super) async fn transaction<'a, T, E, F>(
        &self,
        f: &F,
        location: Option<std::sync::Arc<str>>,
    ) -> Result<T, E>
    where
        F: for<'t> Fn(&'t Tx<'a>) -> super::BoxFuture<'t, Result<T, E>>,
        E: From<Error>,
    {
        let _alone = GATE.write().await;
        let tx = Tx::new(TxBackend::Sled, location);
        let value = f(&tx).await?;
        let (_, writes, events) = tx.into_parts();
        self.commit(&writes, &events).map_err(|e| self.failed(e))?;
        Ok(value)
    }

    /// Records that a write or flush failed (the first cause is kept) and
    /// passes the error on.
    fn failed(&self, e: impl Into<Error>) -> Error {
        let e = e.into();
        if self.failure.set(e.to_string()).is_ok() {
            tracing::error!(cause = %e, "the embedded database failed; it needs a restart");
        }
        e
    }

    /// Why the database stopped working, if it did.
    pub(super) fn failure(&self) -> Option<String> {
        self.failure.get().cloned()
    }

    fn commit(&self, writes: &[Write], events: &[Vec<u8>]) -> Result<(), Error> {
        if writes.is_empty() && events.is_empty() {
            return Ok(());
        }
        let mut trees: Vec<&sled::Tree> = Vec::new();
        let mut index = Vec::with_capacity(writes.len());
        for write in writes {
            let TreeBackend::Sled(t) = &write.tree.backend else {
                return Err(Error::internal(
                    "a sled transaction wrote a tree of another engine",
                ));
            };
            let at = match trees.iter().position(|known| known.name() == t.name()) {
                Some(at) => at,
                None => {
                    trees.push(t);
                    trees.len() - 1
                }
            };
            index.push(at);
        }
        let log = trees.len();
        trees.push(&self.events);
        trees.push(&self.counters);
        trees
            .as_slice()
            .transaction(|t| {
                for (write, &at) in writes.iter().zip(&index) {
                    let key = write.key.as_slice();
                    match &write.value {
                        Some(v) => t[at].insert(key, v.as_slice())?,
                        None => t[at].remove(key)?,
                    };
                }
                let (log, counters) = (&t[log], &t[log + 1]);
                let mut seq = super::decode_u64(counters.get(SEQ_KEY)?.as_deref());
                for record in events {
                    seq += 1;
                    log.insert(&seq.to_be_bytes(), record.as_slice())?;
                }
                if !events.is_empty() {
                    counters.insert(SEQ_KEY, &seq.to_be_bytes())?;
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => Error::from(e),
                sled::transaction::TransactionError::Abort(()) => Error::internal("aborted"),
            })
    }

    /// The names of the trees users made: not sled's default tree, not the
    /// event log. (`counters` is shared: users keep counters there too, next
    /// to the engine's, see [`is_engine_key`].)
    pub(super) fn tree_names(&self) -> Vec<String> {
        self.db
            .tree_names()
            .iter()
            .filter_map(|name| std::str::from_utf8(name).ok().map(str::to_owned))
            .filter(|name| name != "__sled__default" && name != "events")
            .collect()
    }

    pub(super) fn log_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        self.events
            .range(after.saturating_add(1).to_be_bytes()..)
            .take(limit)
            .map(|item| {
                let (k, v) = item?;
                Ok((super::decode_u64(Some(&k)), v.to_vec()))
            })
            .collect()
    }

    pub(super) fn log_trim(&self, upto: u64) -> Result<usize, Error> {
        // One key at a time: a sled batch would lock out every transaction
        // (manifest pushes) while it applies.
        let mut removed = 0;
        for key in self.events.range(..=upto.to_be_bytes()).keys() {
            self.events.remove(key?)?;
            removed += 1;
        }
        Ok(removed)
    }

    pub(super) fn log_last(&self) -> Result<u64, Error> {
        Ok(super::decode_u64(self.counters.get(SEQ_KEY)?.as_deref()))
    }
}

/// Whether `key` of tree `tree` is the engine's own (the event counter),
/// not a user's.
pub(super) fn is_engine_key(tree: &str, key: &[u8]) -> bool {
    tree == "counters" && key == SEQ_KEY
}

pub(super) fn range(
    tree: &sled::Tree,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    limit: usize,
) -> Result<Vec<Entry>, Error> {
    tree.range::<&[u8], _>((start, end))
        .take(limit)
        .map(|item| {
            let (k, v) = item?;
            Ok((k.to_vec(), v.to_vec()))
        })
        .collect()
}

pub(super) fn count(tree: &sled::Tree, prefix: &[u8]) -> Result<usize, Error> {
    if prefix.is_empty() {
        return Ok(tree.len());
    }
    let mut n = 0;
    for key in tree.scan_prefix(prefix).keys() {
        key?;
        n += 1;
    }
    Ok(n)
}

/// Frees, on this thread, tree nodes that sled writes replaced: this
/// thread's, and a few batches of any other thread's that are due.
///
/// sled frees a replaced node only once no reader can still hold it
/// (epoch-based reclamation, one collector per process), and the thread
/// that next enters sled does the freeing, a few batches per entry. Left to
/// themselves, the deliveries of one push leave thousands of nodes behind,
/// and the next manifest PUT frees them inside its transaction and flush
/// (measured in `docs/performance.md`). `sled::pin` is hidden from sled's
/// docs but public; it reaches the very collector sled uses, which a direct
/// crossbeam-epoch dependency would reach only while both resolve to the
/// same version.
pub(super) fn release_memory() {
    sled::pin().flush();
}

/// The group commit of one database: a caller whose changes were covered by
/// a flush that started after them returns at once; otherwise it runs the
/// next flush, which covers every change committed before it started.
#[derive(Debug, Default)]
struct Flusher {
    /// Flushes started so far (numbered from 1).
    started: AtomicU64,
    /// The number of the last completed flush; held while one runs.
    done: Mutex<u64>,
}

impl Flusher {
    /// Makes every change committed to `db` before this call durable.
    async fn flush(&self, db: &sled::Db) -> sled::Result<()> {
        let ticket = self.started.load(Ordering::SeqCst);
        let mut done = self.done.lock().await;
        if *done > ticket {
            // Flush number `ticket + 1` or later started after our changes
            // were committed, and it has completed.
            return Ok(());
        }
        let number = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let _shared = GATE.read().await;
        db.flush_async().await?;
        *done = number;
        Ok(())
    }
}
