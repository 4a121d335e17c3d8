//! Blob bytes: the [`BlobStore`] seam and its filesystem implementation.
//!
//! The store knows nothing of repositories: it keeps content by digest plus
//! *staging objects* (the bytes of upload sessions), and promotes a staging
//! object to a blob only once its digest has been verified. An object store
//! (S3) can implement the same trait without touching the handlers.

use std::future::Future;
use std::io;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::fs::{self, File, OpenOptions};

use super::file_io::{self, BlobStream};
use super::paths::Paths;
use crate::error::Error;
use crate::types::{Algorithm, ByteRange, Digest, Digester, UploadId};

/// Where blob bytes live.
pub(crate) trait BlobStore: Send + Sync {
    /// The size of a stored blob, `None` when absent.
    fn size(&self, digest: &Digest) -> impl Future<Output = io::Result<Option<u64>>> + Send;

    /// Reads `range` of a stored blob.
    fn read(
        &self,
        digest: &Digest,
        range: ByteRange,
    ) -> impl Future<Output = io::Result<BlobStream>> + Send;

    /// Creates an empty staging object for an upload.
    fn stage(&self, id: &UploadId) -> impl Future<Output = io::Result<()>> + Send;

    /// The number of bytes staged so far, `None` when there is no such object.
    fn staged_len(&self, id: &UploadId) -> impl Future<Output = io::Result<Option<u64>>> + Send;

    /// Appends every chunk of `chunks` to a staging object and makes it
    /// durable before returning the number of bytes appended. On error the
    /// object may hold a partial append: callers [`truncate`](Self::truncate).
    fn append<S>(
        &self,
        id: &UploadId,
        chunks: S,
    ) -> impl Future<Output = Result<u64, Error>> + Send
    where
        S: Stream<Item = Result<Bytes, Error>> + Send;

    /// Cuts a staging object back to `len` bytes.
    fn truncate(&self, id: &UploadId, len: u64) -> impl Future<Output = io::Result<()>> + Send;

    /// Hashes a staging object from its first byte.
    fn hash_staged(
        &self,
        id: &UploadId,
        digester: Digester,
    ) -> impl Future<Output = io::Result<Digest>> + Send;

    /// Promotes a verified staging object to the blob `digest`, durably.
    /// Content already stored under that digest is kept as it is.
    fn commit(&self, id: &UploadId, digest: &Digest)
        -> impl Future<Output = io::Result<()>> + Send;

    /// Removes a staging object (no error when it is already gone).
    fn discard(&self, id: &UploadId) -> impl Future<Output = io::Result<()>> + Send;

    /// Marks a stored blob as just stored, for garbage collection's grace
    /// period (no error when it is gone).
    fn touch(&self, digest: &Digest) -> impl Future<Output = io::Result<()>> + Send;
}

/// Blobs as files under the data directory (see [`Paths`]).
#[derive(Clone, Debug)]
pub(crate) struct FsBlobStore {
    paths: Paths,
}

impl FsBlobStore {
    /// A store over `paths`, creating its directories.
    pub fn open(paths: Paths) -> io::Result<Self> {
        std::fs::create_dir_all(paths.uploads())?;
        Ok(Self { paths })
    }

    /// Every stored blob file and its digest, read from its name (blocking;
    /// for fsck and garbage collection). Files with other names are skipped.
    pub fn list(&self) -> io::Result<Vec<(Digest, std::path::PathBuf)>> {
        let mut blobs = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let shards = match std::fs::read_dir(self.paths.blobs(algorithm)) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                shards => shards?,
            };
            for shard in shards {
                for file in std::fs::read_dir(shard?.path())? {
                    let path = file?.path();
                    let name = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default();
                    if let Some(d) = Digest::parse(&format!("{}:{name}", algorithm.as_str())) {
                        blobs.push((d, path));
                    }
                }
            }
        }
        Ok(blobs)
    }
}

impl BlobStore for FsBlobStore {
    async fn size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        match fs::metadata(self.paths.blob(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn read(&self, digest: &Digest, range: ByteRange) -> io::Result<BlobStream> {
        let path = self.paths.blob(digest);
        let file = tokio::task::spawn_blocking(move || -> io::Result<_> {
            let mut file = std::fs::File::open(path)?;
            std::io::Seek::seek(&mut file, io::SeekFrom::Start(range.start))?;
            Ok(file)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(file_io::read_ahead(file, range.len()))
    }

    async fn stage(&self, id: &UploadId) -> io::Result<()> {
        File::create(self.paths.upload(id))
            .await?
            .sync_all()
            .await?;
        File::open(self.paths.uploads()).await?.sync_all().await
    }

    async fn staged_len(&self, id: &UploadId) -> io::Result<Option<u64>> {
        match fs::metadata(self.paths.upload(id)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn append<S>(&self, id: &UploadId, chunks: S) -> Result<u64, Error>
    where
        S: Stream<Item = Result<Bytes, Error>> + Send,
    {
        let file = OpenOptions::new()
            .append(true)
            .open(self.paths.upload(id))
            .await?
            .into_std()
            .await;
        let writer = file_io::write_through(file);
        let mut chunks = std::pin::pin!(chunks);
        let received: Result<(), Error> = async {
            let mut batch = Vec::new();
            let mut batched = 0;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                batched += chunk.len();
                batch.push(chunk);
                if batched >= file_io::BATCH {
                    batched = 0;
                    if !writer.send(std::mem::take(&mut batch)).await {
                        break;
                    }
                }
            }
            writer.send(batch).await;
            Ok(())
        }
        .await;
        // Always wait for the writes still in flight, also on error: a write
        // landing after the caller's truncate would corrupt the upload.
        let written = writer.finish().await;
        received?;
        Ok(written?)
    }

    async fn truncate(&self, id: &UploadId, len: u64) -> io::Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .open(self.paths.upload(id))
            .await?;
        file.set_len(len).await?;
        file.sync_data().await
    }

    async fn hash_staged(&self, id: &UploadId, mut digester: Digester) -> io::Result<Digest> {
        let file = File::open(self.paths.upload(id)).await?;
        let len = file.metadata().await?.len();
        let mut pieces = file_io::read_ahead(file.into_std().await, len);
        while let Some(piece) = pieces.next().await {
            digester.update(&piece?);
        }
        Ok(digester.finish())
    }

    async fn commit(&self, id: &UploadId, digest: &Digest) -> io::Result<()> {
        let staged = self.paths.upload(id);
        let target = self.paths.blob(digest);
        let dir = target
            .parent()
            .ok_or_else(|| io::Error::other("blob path has no parent"))?;
        if fs::try_exists(&target).await? {
            // Another upload stored it; make sure its rename is durable too,
            // and restart garbage collection's grace period.
            File::open(dir).await?.sync_all().await?;
            self.touch(digest).await?;
            return fs::remove_file(&staged).await;
        }
        if !fs::try_exists(dir).await? {
            fs::create_dir_all(dir).await?;
            // New shard directories must survive a power loss as well.
            for ancestor in dir.ancestors().skip(1).take(2) {
                File::open(ancestor).await?.sync_all().await?;
            }
        }
        // The staged bytes were synced by `append`; the rename is made durable
        // by syncing the directory that now holds the blob.
        fs::rename(&staged, &target).await?;
        File::open(dir).await?.sync_all().await
    }

    async fn touch(&self, digest: &Digest) -> io::Result<()> {
        let path = self.paths.blob(digest);
        let touched = tokio::task::spawn_blocking(move || {
            std::fs::File::options()
                .append(true)
                .open(path)?
                .set_modified(std::time::SystemTime::now())
        })
        .await
        .map_err(io::Error::other)?;
        match touched {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    async fn discard(&self, id: &UploadId) -> io::Result<()> {
        match fs::remove_file(self.paths.upload(id)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
