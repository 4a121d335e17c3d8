//! Storage: blob bytes behind [`BlobStore`], metadata in the key-value
//! store ([`meta`] over [`crate::kv`]), and the operations handlers call on
//! a [`Store`], grouped by resource: blobs (this file), [`uploads`],
//! [`manifests`], [`quarantine`], the maintenance passes [`gc`] and
//! [`fsck`], and the move to a shared store, [`migrate`].
//!
//! Storage never imports handlers: it speaks in validated types and
//! [`crate::Error`], never in HTTP.

pub(crate) mod blobs;
pub(crate) mod browse;
pub(crate) mod cache;
pub(crate) mod charts;
pub(crate) mod extension;
pub(crate) mod file_io;
pub(crate) mod fsck;
pub(crate) mod gc;
pub(crate) mod manifests;
pub(crate) mod meta;
pub(crate) mod migrate;
pub(crate) mod paths;
pub(crate) mod quarantine;
pub(crate) mod retention;
pub(crate) mod space;
pub(crate) mod uploads;

use std::path::Path;

use blobs::Blobs;
use file_io::BlobStream;
use meta::Meta;
use paths::Paths;

use crate::types::{ByteRange, Digest, RepoName};

use crate::Error;

/// Storage settings.
#[derive(Clone, Debug)]
pub(crate) struct StoreConfig {
    /// Accept manifests whose blobs or children are missing (sparse mirrors).
    pub allow_missing_references: bool,
    /// Hold new manifests until released (see [`crate::Config::quarantine`]).
    pub quarantine: bool,
    /// Upload sessions open at once (see [`crate::Config::max_open_uploads`]).
    pub max_open_uploads: usize,
    /// Metadata in PostgreSQL instead of sled (see [`crate::Config::metadata_url`]).
    pub metadata_url: String,
    /// Blobs in object storage instead of files (see [`crate::Config::blob_url`]).
    pub blob_url: String,
    /// This replica's location, stamped on its events (see [`crate::Config::location`]).
    pub location: String,
    /// Free space a local store keeps (see [`space`]).
    pub min_free_bytes: u64,
    /// The configuration file's policy rules (see [`crate::policy`]).
    pub rules: crate::policy::Rules,
    /// Read-only mode, from the configuration file.
    pub read_only: bool,
}

/// The registry's storage: one data directory. Cloning shares it.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    paths: Paths,
    blobs: Blobs,
    meta: Meta,
    /// Refuses writes while the local disk is nearly full.
    space: space::Space,
    /// The extensions' own databases.
    own_dbs: extension::OwnDbs,
    /// Retention, immutable tags, read-only mode.
    policies: std::sync::Arc<crate::policy::Policies>,
    /// Upload sessions a request of this process is writing to.
    writing: uploads::Writing,
    /// Held shared while a manifest push commits, exclusively while garbage
    /// collection sweeps (see [`gc`]).
    sweep: std::sync::Arc<tokio::sync::RwLock<()>>,
    /// Held while a new session is counted and recorded, so concurrent
    /// starts cannot overshoot `max_open_uploads`.
    admission: std::sync::Arc<tokio::sync::Mutex<()>>,
    config: StoreConfig,
}

impl Store {
    /// Opens (or creates) the store in `dir`, finishing what a crash left
    /// half-done (see [`uploads::recover`]).
    pub(crate) async fn open(dir: &Path, config: StoreConfig) -> Result<Self, Error> {
        let paths = Paths::new(dir);
        let db = match config.metadata_url.as_str() {
            "" => crate::kv::Db::open(&paths.meta())?,
            url => crate::kv::Db::connect(url).await?,
        };
        let meta = Meta::open(db.located(Some(&config.location)))?;
        let local = config.metadata_url.is_empty() || config.blob_url.is_empty();
        let space = space::Space::new(local.then(|| dir.to_owned()), config.min_free_bytes);
        let blobs = Blobs::open(&config.blob_url, &paths, space.clone())?;
        let policies =
            crate::policy::Policies::open(&meta.db, config.rules.clone(), config.read_only).await?;
        uploads::recover(&meta, &blobs).await?;
        Ok(Self {
            paths,
            blobs,
            meta,
            space,
            own_dbs: extension::OwnDbs::default(),
            policies: std::sync::Arc::new(policies),
            writing: uploads::Writing::default(),
            sweep: std::sync::Arc::default(),
            admission: std::sync::Arc::default(),
            config,
        })
    }

    /// Storage for the extension `namespace` (see [`extension`]).
    pub(crate) fn extension_store(&self, namespace: &str) -> extension::ExtensionStore {
        extension::ExtensionStore::new(
            namespace,
            self.meta.clone(),
            self.blobs.clone(),
            self.paths.clone(),
            self.space.clone(),
            self.own_dbs.clone(),
        )
    }

    /// The policies in force.
    pub(crate) fn policies(&self) -> &crate::policy::Policies {
        &self.policies
    }

    /// Why the store stopped working for good, if it did (see
    /// [`crate::kv::Db::failure`]).
    pub(crate) fn failure(&self) -> Option<String> {
        let own = self.own_dbs.lock().unwrap_or_else(|p| p.into_inner());
        std::iter::once(&self.meta.db)
            .chain(own.iter())
            .find_map(crate::kv::Db::failure)
    }

    /// Bytes free on the local store's disk (`None`: nothing local).
    pub(crate) fn free_bytes(&self) -> Option<u64> {
        self.space.free()
    }

    /// The metadata trees, for readers such as the event log.
    pub(crate) fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The size of a blob held by `repo`, `None` when the repository does
    /// not hold it (even if another one does).
    pub(crate) async fn blob_size(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<u64>, Error> {
        let link = self
            .meta
            .links
            .get(&meta::key(repo, digest.as_str()))
            .await?;
        Ok(link.map(|v| crate::kv::decode_u64(Some(&v))))
    }

    /// Reads `range` of a blob whose presence was checked with [`Store::blob_size`].
    pub(crate) async fn read_blob(
        &self,
        digest: &Digest,
        range: ByteRange,
    ) -> Result<BlobStream, Error> {
        Ok(self.blobs.read(digest, range).await?)
    }

    /// end-11: makes a blob available in `repo` without uploading it, when
    /// `from` holds it (or, without `from`, when the registry stores it).
    /// Returns its size, `None` when it cannot be mounted.
    pub(crate) async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> Result<Option<u64>, Error> {
        self.space.admit(0)?;
        let size = match from {
            Some(from) => self.blob_size(from, digest).await?,
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
    /// collection, since other repositories may hold them. A transaction,
    /// since manifest pushes decide on links.
    pub(crate) async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<(), Error> {
        self.space.admit_cleanup()?;
        let key = meta::key(repo, digest.as_str());
        let links = &self.meta.links;
        self.meta
            .db
            .transaction(|tx| {
                let key = &key;
                Box::pin(async move {
                    tx.get(links, key).await?.ok_or(Error::BlobUnknown)?;
                    tx.remove(links, key);
                    Ok(())
                })
            })
            .await
    }

    /// Records that `repo` holds a verified, durable blob, durably.
    pub(crate) async fn link_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> Result<(), Error> {
        let key = meta::key(repo, digest.as_str());
        self.meta.links.insert(&key, &size.to_be_bytes()).await?;
        self.meta
            .repos
            .insert(repo.as_str().as_bytes(), &[])
            .await?;
        self.meta.db.flush().await
    }

    /// Whether any content was ever stored in `repo`.
    pub(crate) async fn repo_exists(&self, repo: &RepoName) -> Result<bool, Error> {
        self.meta.repos.contains(repo.as_str().as_bytes()).await
    }
}

impl Store {
    /// Deletes a whole repository: every manifest (one `delete` event each,
    /// with the tags it had), then its blob links and its catalog entry.
    /// Returns how many manifests were deleted.
    pub(crate) async fn delete_repository(
        &self,
        repo: &RepoName,
        request: &crate::events::Request,
    ) -> Result<usize, Error> {
        self.space.admit_cleanup()?;
        use futures_util::TryStreamExt;
        if !self.repo_exists(repo).await? {
            return Err(Error::NameUnknown);
        }
        let prefix = meta::prefix(repo);
        let digests: Vec<Digest> = self
            .meta
            .manifest_meta
            .iter(&prefix)
            .map_ok(|(k, _)| Digest::parse(&meta::split_key(&k).1))
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .flatten()
            .collect();
        for digest in &digests {
            match self.delete_manifest(repo, digest, request).await {
                Ok(()) | Err(Error::ManifestUnknown) => {}
                Err(e) => return Err(e),
            }
        }
        let links: Vec<_> = self.meta.links.iter(&prefix).try_collect().await?;
        for (key, _) in links {
            self.meta.links.remove(&key).await?;
        }
        self.meta.repos.remove(repo.as_str().as_bytes()).await?;
        self.meta.db.flush().await?;
        Ok(digests.len())
    }
}

#[cfg(test)]
mod tests;
