//! Keeps sled transactions and flushes apart, process-wide.
//!
//! sled 0.34 guards every database in the process with one global
//! reader-writer lock. A transaction (or `apply_batch`) takes it exclusively;
//! a flush holds it shared *while waiting for I/O that other sled threads
//! need it shared to complete*. A transaction queued behind a flush therefore
//! blocks those threads and the process deadlocks (seen under load here:
//! registry PUTs and webhook deliveries, two databases). Every flush and
//! every transaction of Berth goes through this gate: flushes enter together
//! (so they still commit as a group), transactions enter alone and only when
//! no flush is in progress. Transactions are short, in-memory operations.

use tokio::sync::RwLock;

static GATE: RwLock<()> = RwLock::const_new(());

/// Flushes `db` (see [`sled::Db::flush_async`]) through the gate.
pub async fn flush(db: &sled::Db) -> sled::Result<usize> {
    let _shared = GATE.read().await;
    db.flush_async().await
}

/// Runs `transaction` (a sled transaction or batch) through the gate.
pub async fn transaction<T>(transaction: impl FnOnce() -> T) -> T {
    let _alone = GATE.write().await;
    transaction()
}
