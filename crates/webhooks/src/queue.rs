//! The delivery queue: one ordered queue per webhook in one tree, and how
//! many deliveries each holds.
//!
//! | key                                | value              |
//! |------------------------------------|--------------------|
//! | webhook name `\0` event seq (u64 BE) | [`Delivery`] JSON |
//!
//! Keys are (webhook, event sequence number), so a queue delivers in event
//! order and pushing the same event twice (a dispatch repeated after a
//! crash) lands on the same key. The pending count of each queue is kept in
//! memory, counted from the tree when a queue is first used, so finishing a
//! delivery is one removal, not a read-modify-write of a counter.

use std::collections::HashMap;
use std::sync::Mutex;

use registry::ext::{decode_u64, key, Db, Event, Tree};
use serde::{Deserialize, Serialize};

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

/// The head of a queue: its key and its delivery.
pub type Head = (Vec<u8>, Delivery);

/// Every webhook's queue.
#[derive(Debug)]
pub struct Queue {
    tree: Tree,
    /// Other replicas use the queue too.
    shared: bool,
    /// Deliveries queued and not yet done, per webhook, once counted.
    pending: Mutex<HashMap<String, u64>>,
}

impl Queue {
    /// The queues in `db`.
    pub fn open(db: &Db) -> Result<Self, Error> {
        Ok(Self {
            tree: db.tree("webhook_deliveries")?,
            shared: db.is_shared(),
            pending: Mutex::default(),
        })
    }

    /// Counts `name`'s queue from the tree, once; later calls keep the
    /// count that pushes and finishes maintain.
    pub async fn load(&self, name: &str) -> Result<(), Error> {
        if self.lock().contains_key(name) {
            return Ok(());
        }
        let n = self.tree.count(&prefix(name)).await? as u64;
        self.lock().entry(name.to_owned()).or_insert(n);
        Ok(())
    }

    /// Counts `name`'s queue from the tree again, on a shared database,
    /// where other replicas push and finish deliveries too.
    pub async fn refresh(&self, name: &str) -> Result<(), Error> {
        if self.shared {
            let n = self.tree.count(&prefix(name)).await? as u64;
            self.lock().insert(name.to_owned(), n);
        }
        Ok(())
    }

    /// Deliveries queued for `name` and not yet delivered or given up (on
    /// a shared database: as of the last [`Queue::refresh`]).
    pub fn pending(&self, name: &str) -> u64 {
        self.lock().get(name).copied().unwrap_or(0)
    }

    /// Queues `delivery` (encoded) of event `seq` for `name`, unless that
    /// event is queued already (a dispatch repeated); whether it was new.
    /// Not durable until the webhooks' database is flushed.
    pub async fn push(&self, name: &str, seq: u64, delivery: &[u8]) -> Result<bool, Error> {
        let new = self
            .tree
            .compare_and_swap(&entry_key(name, seq), None, Some(delivery))
            .await?;
        if new {
            *self.lock().entry(name.to_owned()).or_default() += 1;
        }
        Ok(new)
    }

    /// The oldest delivery of `name`, if any.
    pub async fn head(&self, name: &str) -> Result<Option<Head>, Error> {
        match self.tree.first(&prefix(name)).await? {
            Some((key, value)) => Ok(Some((key, serde_json::from_slice(&value)?))),
            None => Ok(None),
        }
    }

    /// Stores `delivery` again under `key` (after a failed attempt).
    pub async fn reschedule(&self, key: &[u8], delivery: &Delivery) -> Result<(), Error> {
        self.tree
            .insert(key, &serde_json::to_vec(delivery)?)
            .await?;
        Ok(())
    }

    /// Removes the delivery `key` of `name`: delivered or given up.
    pub async fn finish(&self, name: &str, key: &[u8]) -> Result<(), Error> {
        if self.tree.remove(key).await? {
            if let Some(n) = self.lock().get_mut(name) {
                *n = n.saturating_sub(1);
            }
        }
        Ok(())
    }

    /// Removes `name`'s whole queue (its webhook was deleted).
    pub async fn clear(&self, name: &str) -> Result<(), Error> {
        use futures_util::TryStreamExt;
        let keys: Vec<_> = self.tree.iter(&prefix(name)).try_collect().await?;
        for (key, _) in keys {
            self.tree.remove(&key).await?;
        }
        self.lock().remove(name);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The event sequence number of a queue entry's key.
pub fn seq_of(key: &[u8]) -> u64 {
    decode_u64(key.get(key.len().saturating_sub(8)..))
}

/// `name \0`.
fn prefix(name: &str) -> Vec<u8> {
    key(&[name.as_bytes(), b""])
}

/// `name \0 seq`.
fn entry_key(name: &str, seq: u64) -> Vec<u8> {
    key(&[name.as_bytes(), &seq.to_be_bytes()])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use registry::ext::{Action, Request, Target};

    pub(crate) fn delivery(repo: &str, next_attempt_ms: u64) -> Delivery {
        let target = Target::manifest("m", 1, "sha256:ab", repo);
        Delivery {
            event: Event::new(Action::Push, target, Request::default()),
            attempts: 0,
            queued_ms: 0,
            next_attempt_ms,
        }
    }

    #[tokio::test]
    async fn queues_are_ordered_per_webhook_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let queue = Queue::open(&db).unwrap();
        let encoded = |repo| serde_json::to_vec(&delivery(repo, 0)).unwrap();
        // Event 256 sorts after event 2 (big-endian keys), and a name that
        // extends another is a queue of its own.
        queue.push("hook1", 256, &encoded("late")).await.unwrap();
        queue.push("hook1", 2, &encoded("early")).await.unwrap();
        queue.push("hook10", 1, &encoded("other")).await.unwrap();
        queue.push("hook10", 1, &encoded("again")).await.unwrap();
        assert_eq!((queue.pending("hook1"), queue.pending("hook10")), (2, 1));

        let (key, head) = queue.head("hook1").await.unwrap().unwrap();
        assert_eq!(
            (seq_of(&key), head.event.target.repository.as_str()),
            (2, "early")
        );
        let mut retried = head.clone();
        retried.attempts = 1;
        queue.reschedule(&key, &retried).await.unwrap();
        assert_eq!(queue.head("hook1").await.unwrap().unwrap().1.attempts, 1);
        assert_eq!(queue.pending("hook1"), 2, "a retry stays pending");

        queue.finish("hook1", &key).await.unwrap();
        queue.finish("hook1", &key).await.unwrap();
        assert_eq!(queue.pending("hook1"), 1, "finishing twice counts once");
        assert_eq!(seq_of(&queue.head("hook1").await.unwrap().unwrap().0), 256);

        // A restart counts what the tree holds.
        let again = Queue::open(&db).unwrap();
        again.load("hook1").await.unwrap();
        again.load("hook10").await.unwrap();
        assert_eq!((again.pending("hook1"), again.pending("hook10")), (1, 1));
        again.clear("hook1").await.unwrap();
        assert!(again.head("hook1").await.unwrap().is_none());
        assert_eq!(again.pending("hook1"), 0);
        assert!(again.head("hook10").await.unwrap().is_some());
    }
}
