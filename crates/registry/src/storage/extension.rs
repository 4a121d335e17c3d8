//! Storage for extensions (the Helm chart repository): the registry's own
//! guarantees, lent to another crate without handing it the registry's trees.
//!
//! An extension gets
//! - its own sled trees in the registry's database, named
//!   `{namespace}.{tree}` so they can never collide with the registry's;
//! - the content-addressed blob store (hashed, fsynced, renamed into place);
//! - [`ExtensionStore::commit`]: one sled transaction over its trees *and*
//!   the event log, run through the [`gate`], then a group-commit flush, so
//!   that a change and its events become durable together before the
//!   extension answers 2xx, exactly as a manifest push does.

use bytes::Bytes;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::Transactional;

use super::blobs::{BlobStore, FsBlobStore};
use super::file_io::Chunks;
use super::gate;
use super::meta::Meta;
use crate::events::{self, Event, Record};
use crate::types::{Algorithm, ByteRange, Digest, UploadId};
use crate::Error;

/// An extension's handle on the registry's storage; cheap to clone.
#[derive(Clone, Debug)]
pub struct ExtensionStore {
    /// Prefix of the extension's tree names.
    namespace: String,
    meta: Meta,
    blobs: FsBlobStore,
}

/// Appends events to the log inside an [`ExtensionStore::commit`].
pub struct EventWriter<'a> {
    events: &'a TransactionalTree,
    counters: &'a TransactionalTree,
}

impl EventWriter<'_> {
    /// Appends `event` (committed with the rest of the transaction, or not at all).
    pub fn append<E: From<Error>>(&self, event: Event) -> ConflictableTransactionResult<(), E> {
        let record = Record::from(event);
        events::append(self.events, self.counters, &record).map_err(|e| match e {
            ConflictableTransactionError::Abort(e) => ConflictableTransactionError::Abort(e.into()),
            ConflictableTransactionError::Storage(e) => ConflictableTransactionError::Storage(e),
            ConflictableTransactionError::Conflict => ConflictableTransactionError::Conflict,
        })?;
        Ok(())
    }
}

impl ExtensionStore {
    pub(crate) fn new(namespace: &str, meta: Meta, blobs: FsBlobStore) -> Self {
        Self {
            namespace: namespace.to_owned(),
            meta,
            blobs,
        }
    }

    /// Opens (creating) the extension's tree `name`, stored as `{namespace}.{name}`.
    pub fn open_tree(&self, name: &str) -> Result<sled::Tree, Error> {
        Ok(self
            .meta
            .db
            .open_tree(format!("{}.{name}", self.namespace))?)
    }

    /// Stores `bytes` as a blob and returns its sha256 digest; the blob is
    /// durable (file and directory synced) when this returns. Storing content
    /// that is already there keeps the stored copy.
    pub async fn put_blob(&self, bytes: Bytes) -> Result<Digest, Error> {
        let digest = Digest::of(Algorithm::Sha256, &bytes);
        let id = UploadId::new();
        self.blobs.stage(&id).await?;
        let stored = async {
            let chunk = futures_util::stream::once(async { Ok::<_, Error>(bytes) });
            self.blobs.append(&id, chunk).await?;
            self.blobs.commit(&id, &digest).await?;
            Ok::<_, Error>(())
        }
        .await;
        if let Err(e) = &stored {
            if let Err(cleanup) = self.blobs.discard(&id).await {
                tracing::warn!(error = %e, %cleanup, "cannot remove a failed blob's staging file");
            }
        }
        stored.map(|()| digest)
    }

    /// The size of a stored blob, `None` when absent.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, Error> {
        Ok(self.blobs.size(digest).await?)
    }

    /// Reads a whole stored blob of `size` bytes as a stream.
    pub async fn read_blob(&self, digest: &Digest, size: u64) -> Result<Chunks, Error> {
        let range = ByteRange {
            start: 0,
            end: size,
        };
        Ok(self.blobs.read(digest, range).await?)
    }

    /// Runs `f` as one sled transaction over `trees` (the extension's own,
    /// from [`ExtensionStore::open_tree`]) and the event log, then flushes:
    /// when this returns `Ok`, the changes and the events `f` appended are on
    /// disk together. `f` may run more than once (on conflicts), so it must
    /// have no side effects outside the transaction; it gets one
    /// [`TransactionalTree`] per entry of `trees`, in order.
    pub async fn commit<T, E>(
        &self,
        trees: &[&sled::Tree],
        f: impl Fn(&[TransactionalTree], &EventWriter<'_>) -> ConflictableTransactionResult<T, E>,
    ) -> Result<T, E>
    where
        E: From<Error>,
    {
        let mut all: Vec<&sled::Tree> = trees.to_vec();
        all.push(&self.meta.events);
        all.push(&self.meta.counters);
        let n = trees.len();
        let result = gate::transaction(|| {
            all.as_slice().transaction(|view| {
                let (own, log) = view.split_at(n);
                let writer = EventWriter {
                    events: &log[0],
                    counters: &log[1],
                };
                f(own, &writer)
            })
        })
        .await;
        let value = result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => E::from(e.into()),
        })?;
        self.meta.flush().await.map_err(|e| E::from(e.into()))?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Action, Request, Target};
    use crate::storage::{Store, StoreConfig};

    fn store(dir: &std::path::Path) -> Store {
        let config = StoreConfig {
            allow_missing_references: false,
            quarantine: false,
            max_open_uploads: 10,
        };
        Store::open(dir, config).unwrap()
    }

    fn event() -> Event {
        let target = Target::chart("r", "web", "1.0.0", "sha256:ab", 1);
        Event::new(Action::ChartPush, target, Request::default())
    }

    #[tokio::test]
    async fn a_commit_writes_its_trees_and_events_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let ext = store.extension_store("ext");
        let tree = ext.open_tree("things").unwrap();
        assert_eq!(tree.name(), b"ext.things".as_slice());

        let aborted: Result<(), Error> = ext
            .commit(&[&tree], |trees, events| {
                trees[0].insert("k", "v")?;
                events.append(event())?;
                Err(ConflictableTransactionError::Abort(Error::NameUnknown))
            })
            .await;
        assert!(matches!(aborted, Err(Error::NameUnknown)));
        assert!(tree.is_empty());
        assert_eq!(store.meta().log.last_committed().unwrap(), 0);

        let n: Result<u32, Error> = ext
            .commit(&[&tree], |trees, events| {
                trees[0].insert("k", "v")?;
                events.append(event())?;
                Ok(7)
            })
            .await;
        assert_eq!(n.unwrap(), 7);
        assert_eq!(tree.get("k").unwrap().as_deref(), Some(b"v".as_slice()));
        // Flushed before returning: the event is durable, so readers see it.
        assert_eq!(store.meta().log.durable(), 1);
        let read = store.meta().log.read(0, 10).unwrap();
        assert_eq!(read[0].1.event.action, Action::ChartPush);
    }

    #[tokio::test]
    async fn blobs_are_content_addressed_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let ext = store(dir.path()).extension_store("ext");
        let digest = ext.put_blob(Bytes::from_static(b"chart")).await.unwrap();
        assert_eq!(digest, Digest::of(Algorithm::Sha256, b"chart"));
        assert_eq!(
            ext.put_blob(Bytes::from_static(b"chart")).await.unwrap(),
            digest
        );
        assert_eq!(ext.blob_size(&digest).await.unwrap(), Some(5));
        let back = crate::storage::file_io::collect(ext.read_blob(&digest, 5).await.unwrap())
            .await
            .unwrap();
        assert_eq!(back, b"chart");
        // No staging file is left behind.
        let staged = std::fs::read_dir(dir.path().join("uploads"))
            .unwrap()
            .count();
        assert_eq!(staged, 0);
    }
}
