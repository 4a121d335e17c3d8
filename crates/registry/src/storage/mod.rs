//! Storage: blob bytes behind [`BlobStore`], metadata in sled ([`meta`]),
//! and the operations handlers call on a [`Store`], grouped by resource:
//! blobs (this file), [`uploads`] and [`manifests`].

pub mod blobs;
pub mod charts;
pub mod extension;
pub mod file_io;
pub mod fsck;
pub mod gate;
pub mod gc;
pub mod manifests;
pub mod meta;
pub mod paths;
pub mod quarantine;
pub mod uploads;

use std::path::Path;

use blobs::{BlobStore, FsBlobStore};
use file_io::Chunks;
use meta::Meta;
use paths::Paths;

use crate::types::{ByteRange, Digest, RepoName};

use crate::Error;

/// Storage settings.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Accept manifests whose blobs or children are missing (sparse mirrors).
    pub allow_missing_references: bool,
    /// Hold new manifests until released (see [`crate::Config::quarantine`]).
    pub quarantine: bool,
    /// Upload sessions open at once (see [`crate::Config::max_open_uploads`]).
    pub max_open_uploads: usize,
}

/// The registry's storage: one data directory. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Store {
    paths: Paths,
    blobs: FsBlobStore,
    meta: Meta,
    sessions: std::sync::Arc<uploads::Sessions>,
    /// Held shared while a manifest push commits, exclusively while garbage
    /// collection sweeps (see [`gc`]).
    sweep: std::sync::Arc<tokio::sync::RwLock<()>>,
    /// Held while a new session is counted and recorded, so concurrent
    /// starts cannot overshoot `max_open_uploads`.
    admission: std::sync::Arc<std::sync::Mutex<()>>,
    config: StoreConfig,
}

impl Store {
    /// Opens (or creates) the store in `dir`, finishing what a crash left
    /// half-done (see [`uploads::recover`]).
    pub fn open(dir: &Path, config: StoreConfig) -> Result<Self, Error> {
        let paths = Paths::new(dir);
        let blobs = FsBlobStore::open(paths.clone())?;
        let meta = Meta::open(&paths.meta())?;
        uploads::recover(&meta, &paths)?;
        Ok(Self {
            paths,
            blobs,
            meta,
            sessions: std::sync::Arc::default(),
            sweep: std::sync::Arc::default(),
            admission: std::sync::Arc::default(),
            config,
        })
    }

    /// Storage for the extension `namespace` (see [`extension`]).
    pub fn extension_store(&self, namespace: &str) -> extension::ExtensionStore {
        extension::ExtensionStore::new(namespace, self.meta.clone(), self.blobs.clone())
    }

    /// The metadata trees, for readers such as the event log.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The size of a blob held by `repo`, `None` when the repository does
    /// not hold it (even if another one does).
    pub fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>, Error> {
        Ok(self
            .meta
            .links
            .get(meta::key(repo, digest.as_str()))?
            .map(|v| meta::decode_u64(&v)))
    }

    /// Reads `range` of a blob whose presence was checked with [`Store::blob_size`].
    pub async fn read_blob(&self, digest: &Digest, range: ByteRange) -> Result<Chunks, Error> {
        Ok(self.blobs.read(digest, range).await?)
    }

    /// end-11: makes a blob available in `repo` without uploading it, when
    /// `from` holds it (or, without `from`, when the registry stores it).
    /// Returns its size, `None` when it cannot be mounted.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> Result<Option<u64>, Error> {
        let size = match from {
            Some(from) => self.blob_size(from, digest)?,
            None => self.blobs.size(digest).await?,
        };
        if let Some(size) = size {
            // A mounted blob is about to be referenced: garbage collection's
            // grace period starts again.
            self.blobs.touch(digest).await?;
            self.link_blob(repo, digest, size).await?;
        }
        Ok(size)
    }

    /// end-10: removes a blob from `repo`; its bytes stay until garbage
    /// collection, since other repositories may hold them.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<(), Error> {
        self.meta
            .links
            .remove(meta::key(repo, digest.as_str()))?
            .ok_or(Error::BlobUnknown)?;
        self.meta.flush().await?;
        Ok(())
    }

    /// Records that `repo` holds a verified, durable blob, durably.
    async fn link_blob(&self, repo: &RepoName, digest: &Digest, size: u64) -> Result<(), Error> {
        self.meta
            .links
            .insert(meta::key(repo, digest.as_str()), &size.to_be_bytes())?;
        self.meta.repos.insert(repo.as_str(), &[])?;
        self.meta.flush().await?;
        Ok(())
    }

    /// Whether any content was ever stored in `repo`.
    pub fn repo_exists(&self, repo: &RepoName) -> Result<bool, Error> {
        Ok(self.meta.repos.contains_key(repo.as_str())?)
    }
}

impl Store {
    /// Deletes a whole repository: every manifest (one `delete` event each,
    /// with the tags it had), then its blob links and its catalog entry.
    /// Returns how many manifests were deleted.
    pub async fn delete_repository(
        &self,
        repo: &RepoName,
        request: &crate::events::Request,
    ) -> Result<usize, Error> {
        if !self.repo_exists(repo)? {
            return Err(Error::NameUnknown);
        }
        let prefix = meta::prefix(repo);
        let digests: Vec<Digest> = self
            .meta
            .manifest_meta
            .scan_prefix(&prefix)
            .keys()
            .map(|k| Ok(Digest::parse(&String::from_utf8_lossy(&k?[prefix.len()..]))))
            .collect::<Result<Vec<_>, sled::Error>>()?
            .into_iter()
            .flatten()
            .collect();
        for digest in &digests {
            match self.delete_manifest(repo, digest, request).await {
                Ok(()) | Err(Error::ManifestUnknown) => {}
                Err(e) => return Err(e),
            }
        }
        for key in self.meta.links.scan_prefix(&prefix).keys() {
            self.meta.links.remove(key?)?;
        }
        self.meta.repos.remove(repo.as_str())?;
        self.meta.flush().await?;
        Ok(digests.len())
    }
}
