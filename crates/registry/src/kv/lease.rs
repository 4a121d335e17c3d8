//! Leases (one holder of a piece of work across replicas) and exclusive
//! locks.
//!
//! A PostgreSQL lease is a session advisory lock on a connection of the
//! replica's own: it ends when the replica dies or loses that connection,
//! so a survivor takes the work over. [`Lease::held`] tells a holder to stop
//! when its lease is gone. With the embedded engine there is one process:
//! a lease only keeps two tasks of it from doing the same work.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::postgres::PgDb;
use crate::Error;

/// The leases taken in one process, by name.
pub(super) type LocalLeases = Arc<Mutex<HashSet<String>>>;

/// A lease: its holder alone does the work it names while [`Lease::held`].
#[derive(Debug)]
pub struct Lease {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Local {
        name: String,
        leases: LocalLeases,
    },
    Shared {
        db: Arc<PgDb>,
        key: i64,
        alive: Arc<AtomicBool>,
    },
}

impl Lease {
    pub(super) fn local(leases: &LocalLeases, name: &str) -> Option<Self> {
        let mut taken = leases.lock().unwrap_or_else(|p| p.into_inner());
        taken.insert(name.to_owned()).then(|| Self {
            inner: Inner::Local {
                name: name.to_owned(),
                leases: leases.clone(),
            },
        })
    }

    pub(super) async fn shared(db: &Arc<PgDb>, name: &str) -> Result<Option<Self>, Error> {
        Ok(db.try_lease(name).await?.map(|(key, alive)| Self {
            inner: Inner::Shared {
                db: db.clone(),
                key,
                alive,
            },
        }))
    }

    /// Whether this lease still holds: a replica's leases end with its
    /// connection to the database.
    pub fn held(&self) -> bool {
        match &self.inner {
            Inner::Local { .. } => true,
            Inner::Shared { alive, .. } => alive.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        match &self.inner {
            Inner::Local { name, leases } => {
                leases
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(name);
            }
            Inner::Shared { db, key, alive } => {
                let (db, key, alive) = (db.clone(), *key, alive.clone());
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move { db.release_lease(key, &alive).await });
                }
            }
        }
    }
}

/// An exclusive lock across replicas, held until dropped (its own
/// connection: closing it releases the lock, also when the replica dies).
#[derive(Debug)]
pub struct Exclusive {
    _connection: Option<tokio_postgres::Client>,
}

impl Exclusive {
    pub(super) fn local() -> Self {
        Self { _connection: None }
    }

    pub(super) async fn shared(db: &Arc<PgDb>, name: &str) -> Result<Self, Error> {
        Ok(Self {
            _connection: Some(db.exclusive(name).await?),
        })
    }
}
