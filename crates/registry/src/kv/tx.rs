//! A transaction in progress: reads through the engine, writes and events
//! buffered until the engine commits them together.

use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::postgres::PgTx;
use super::{decode, Tree};
use crate::events::Record;
use crate::Error;

/// One buffered write of a transaction: `value` `None` removes the key.
pub(super) struct Write {
    pub(super) tree: Tree,
    pub(super) key: Vec<u8>,
    pub(super) value: Option<Vec<u8>>,
}

/// A transaction in progress (see [`super::Db::transaction`]). `'a` is the
/// scope of what the transaction's closure borrows: a `&'t Tx<'a>` implies
/// `'a: 't`, so the future the closure returns may hold those borrows.
pub struct Tx<'a> {
    backend: TxBackend,
    scope: std::marker::PhantomData<&'a ()>,
    /// Stamped on every event appended.
    location: Option<Arc<str>>,
    /// Writes in order, applied at commit.
    writes: Mutex<Vec<Write>>,
    /// Encoded event records, appended at commit.
    events: Mutex<Vec<Vec<u8>>>,
}

/// How a transaction reads.
pub(super) enum TxBackend {
    /// The trees directly: sled transactions run one at a time.
    Sled,
    /// Through its own serializable PostgreSQL transaction.
    Pg(Box<PgTx>),
}

impl Tx<'_> {
    pub(super) fn new(backend: TxBackend, location: Option<Arc<str>>) -> Self {
        Self {
            backend,
            scope: std::marker::PhantomData,
            location,
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
        match &self.backend {
            TxBackend::Sled => tree.get(key).await,
            TxBackend::Pg(tx) => tx.get(&tree.name, key).await,
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
    /// the change it describes. It carries this replica's location.
    pub fn append_event(&self, record: impl Into<Record>) -> Result<(), Error> {
        let mut record = record.into();
        record.location = self.location.as_deref().map(str::to_owned);
        let bytes = serde_json::to_vec(&record)?;
        lock(&self.events).push(bytes);
        Ok(())
    }

    /// Holds the shared side of the lock `name` until the transaction ends,
    /// across replicas (see [`super::Db::exclusive`]); the embedded engine's
    /// callers lock in memory instead.
    pub async fn shared_lock(&self, name: &str) -> Result<(), Error> {
        match &self.backend {
            TxBackend::Sled => Ok(()),
            TxBackend::Pg(tx) => tx.shared_lock(name).await,
        }
    }

    /// The engine's part and the buffered writes and events, to commit.
    pub(super) fn into_parts(self) -> (TxBackend, Vec<Write>, Vec<Vec<u8>>) {
        let writes = self.writes.into_inner().unwrap_or_else(|p| p.into_inner());
        let events = self.events.into_inner().unwrap_or_else(|p| p.into_inner());
        (self.backend, writes, events)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
