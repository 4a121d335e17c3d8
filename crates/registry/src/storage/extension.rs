//! Storage for extensions (the Helm chart repository, the webhooks): the
//! registry's own guarantees, lent to another crate without handing it the
//! registry's trees.
//!
//! An extension gets
//! - its own trees in the registry's database, named `{namespace}.{tree}`
//!   so they can never collide with the registry's;
//! - [`ExtensionStore::transaction`]: one transaction over its trees *and*
//!   the event log, durable before it returns, so that a change and its
//!   events are committed together before the extension answers 2xx,
//!   exactly as a manifest push is;
//! - a database of its own ([`ExtensionStore::own_db`]) for state that
//!   changes often and is never committed with events (delivery queues);
//! - the content-addressed blob store (hashed, fsynced, renamed into place);
//! - the event log, to read.

use std::sync::Arc;

use bytes::Bytes;

use super::blobs::Blobs;
use super::file_io::BlobStream;
use super::meta::Meta;
use super::paths::Paths;
use super::space::Space;
use crate::events::EventLog;
use crate::kv::{BoxFuture, Db, Tree, Tx};
use crate::types::{Algorithm, ByteRange, Digest, UploadId};
use crate::Error;

/// An extension's handle on the registry's storage; cheap to clone.
#[derive(Clone, Debug)]
pub struct ExtensionStore {
    /// Prefix of the extension's tree names.
    namespace: String,
    meta: Meta,
    blobs: Blobs,
    paths: Paths,
    space: Space,
    own_dbs: OwnDbs,
}

/// The extensions' own databases, watched for failures with the registry's
/// (see [`crate::kv::Db::failure`]).
pub(crate) type OwnDbs = Arc<std::sync::Mutex<Vec<Db>>>;

impl ExtensionStore {
    pub(crate) fn new(
        namespace: &str,
        meta: Meta,
        blobs: Blobs,
        paths: Paths,
        space: Space,
        own_dbs: OwnDbs,
    ) -> Self {
        Self {
            namespace: namespace.to_owned(),
            meta,
            blobs,
            paths,
            space,
            own_dbs,
        }
    }

    /// The free-space guard the extension's own writes must pass (the
    /// registry's trees and blobs check for themselves).
    pub fn space(&self) -> Space {
        self.space.clone()
    }

    /// The extension's tree `name` in the registry's database, stored as
    /// `{namespace}.{name}`.
    pub fn tree(&self, name: &str) -> Result<Tree, Error> {
        self.meta.db.tree(&format!("{}.{name}", self.namespace))
    }

    /// Runs `f` as one transaction over the extension's trees and the event
    /// log (see [`Db::transaction`]): when this returns `Ok`, the changes
    /// and the events `f` appended are durable together.
    pub async fn transaction<'a, T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: for<'t> Fn(&'t Tx<'a>) -> BoxFuture<'t, Result<T, E>>,
        E: From<Error>,
    {
        // Deletes may go on into the margin; a write that adds data (a
        // chart's blob) was admitted when its bytes were stored.
        self.space.admit_cleanup()?;
        self.meta.db.transaction(f).await
    }

    /// A database of the extension's own, apart from the registry's, so that
    /// its writes never contend with the registry's transactions: with the
    /// embedded engine a directory `{namespace}` in the data directory; on a
    /// shared engine, the same database with trees named
    /// `{namespace}.{tree}`.
    pub fn own_db(&self) -> Result<Db, Error> {
        if self.meta.db.is_shared() {
            return Ok(self.meta.db.scoped(&self.namespace));
        }
        let db = Db::open(&self.paths.extension(&self.namespace))?;
        self.own_dbs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(db.clone());
        Ok(db)
    }

    /// The registry's event log.
    pub fn event_log(&self) -> Arc<EventLog> {
        self.meta.log.clone()
    }

    /// Stores `bytes` as a blob and returns its sha256 digest; the blob is
    /// durable (file and directory synced) when this returns. Storing content
    /// that is already there keeps the stored copy.
    pub async fn put_blob(&self, bytes: Bytes) -> Result<Digest, Error> {
        self.space.admit(bytes.len() as u64)?;
        let digest = Digest::of(Algorithm::Sha256, &bytes);
        let id = UploadId::new();
        self.blobs.stage(&id).await?;
        let stored = async {
            let chunk = futures_util::stream::iter([Ok::<_, Error>(bytes)]);
            let part = self.blobs.append(&id, 0, chunk).await?;
            self.blobs.commit(&id, &[part], &digest).await?;
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
    pub async fn read_blob(&self, digest: &Digest, size: u64) -> Result<BlobStream, Error> {
        let range = ByteRange {
            start: 0,
            end: size,
        };
        Ok(self.blobs.read(digest, range).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Action, Event, Request, Target};
    use crate::storage::{Store, StoreConfig};

    async fn store(dir: &std::path::Path) -> Store {
        let config = StoreConfig {
            allow_missing_references: false,
            quarantine: false,
            max_open_uploads: 10,
            metadata_url: String::new(),
            blob_url: String::new(),
            location: String::new(),
            min_free_bytes: 0,
            rules: Default::default(),
            read_only: false,
        };
        Store::open(dir, config).await.unwrap()
    }

    fn event() -> Event {
        let target = Target::chart("r", "web", "1.0.0", "sha256:ab", 1);
        Event::new(Action::ChartPush, target, Request::default())
    }

    #[tokio::test]
    async fn a_commit_writes_its_trees_and_events_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let ext = store.extension_store("ext");
        let tree = ext.tree("things").unwrap();
        assert_eq!(tree.name(), "ext.things");

        let aborted: Result<(), Error> = ext
            .transaction(|tx| {
                let tree = &tree;
                Box::pin(async move {
                    tx.insert(tree, b"k", b"v".to_vec());
                    tx.append_event(event())?;
                    Err(Error::NameUnknown)
                })
            })
            .await;
        assert!(matches!(aborted, Err(Error::NameUnknown)));
        assert_eq!(tree.count(b"").await.unwrap(), 0);
        assert_eq!(ext.event_log().last_committed().await.unwrap(), 0);

        let n: Result<u32, Error> = ext
            .transaction(|tx| {
                let tree = &tree;
                Box::pin(async move {
                    tx.insert(tree, b"k", b"v".to_vec());
                    tx.append_event(event())?;
                    Ok(7)
                })
            })
            .await;
        assert_eq!(n.unwrap(), 7);
        assert_eq!(
            tree.get(b"k").await.unwrap().as_deref(),
            Some(b"v".as_slice())
        );
        // Durable before returning, so readers see the event.
        assert_eq!(ext.event_log().durable(), 1);
        let read = ext.event_log().read(0, 10).await.unwrap();
        assert_eq!(read[0].1.event.action, Action::ChartPush);
    }

    #[tokio::test]
    async fn blobs_are_content_addressed_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let ext = store(dir.path()).await.extension_store("ext");
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
