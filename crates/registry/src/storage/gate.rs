//! How Berth flushes sled and runs sled transactions, process-wide.
//!
//! Two sled 0.34 hazards, both seen here under load:
//! - **Lock inversion.** One global reader-writer lock guards every database
//!   in the process. A transaction takes it exclusively; a flush holds it
//!   shared while waiting for I/O that other sled threads need it shared to
//!   finish. A transaction queued behind a flush blocks those threads.
//!   So transactions and flushes never overlap here: flushes enter the gate
//!   together, transactions alone.
//! - **Pool starvation.** `flush_async` runs on sled's small I/O thread pool
//!   and waits for log-buffer writes scheduled on that same pool; enough
//!   concurrent flushes occupy every thread and wait forever. So each
//!   database has one flush in flight at most, as a group commit: a caller
//!   whose changes were covered by a flush that started after them returns
//!   at once; otherwise it runs the next flush, which covers every change
//!   committed before it started.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, RwLock};

static GATE: RwLock<()> = RwLock::const_new(());

/// The group commit of one database.
#[derive(Debug, Default)]
pub struct Flusher {
    /// Flushes started so far (numbered from 1).
    started: AtomicU64,
    /// The number of the last completed flush; held while one runs.
    done: Mutex<u64>,
}

impl Flusher {
    /// Makes every change committed to `db` before this call durable.
    pub async fn flush(&self, db: &sled::Db) -> sled::Result<()> {
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

/// Runs `transaction` (a sled transaction or batch) through the gate.
pub async fn transaction<T>(transaction: impl FnOnce() -> T) -> T {
    let _alone = GATE.write().await;
    transaction()
}
