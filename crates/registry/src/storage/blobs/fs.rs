//! Blobs as files under the data directory (see [`Paths`]): a session's
//! parts are appended to one staging file, which is renamed into place
//! once its digest is verified.

use std::io;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio::fs::{self, File, OpenOptions};

use super::{Listed, Part};
use crate::error::Error;
use crate::storage::file_io::{self, BlobStream};
use crate::storage::paths::Paths;
use crate::storage::space::Space;
use crate::storage::uploads::UploadBody;
use crate::types::{Algorithm, ByteRange, Digest, Digester, UploadId};

/// Blobs as files under the data directory (see [`Paths`]).
#[derive(Clone, Debug)]
pub(crate) struct FsBlobs {
    paths: Paths,
    /// Admits each batch of an append (see [`Space`]).
    space: Space,
}

impl FsBlobs {
    /// A store over `paths`, creating its directories; appends write only
    /// while `space` admits them.
    pub fn open(paths: Paths, space: Space) -> Result<Self, Error> {
        let uploads = paths.uploads();
        std::fs::create_dir_all(&uploads)
            .map_err(|e| Error::internal(format_args!("{}: {e}", uploads.display())))?;
        Ok(Self { paths, space })
    }

    /// Every stored blob: digest (from its file name; other files are
    /// skipped), size, and age.
    pub async fn list(&self) -> io::Result<Vec<Listed>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let now = SystemTime::now();
            let mut listed = Vec::new();
            for (digest, path) in this.files()? {
                let m = std::fs::metadata(&path).map_err(|e| at(&path, e))?;
                let age = m.modified().ok().and_then(|t| now.duration_since(t).ok());
                listed.push(Listed {
                    digest,
                    size: m.len(),
                    age,
                });
            }
            Ok(listed)
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Every blob file and its digest (blocking).
    fn files(&self) -> io::Result<Vec<(Digest, std::path::PathBuf)>> {
        let mut blobs = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.paths.blobs(algorithm);
            let shards = match std::fs::read_dir(&dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                shards => shards.map_err(|e| at(&dir, e))?,
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

impl FsBlobs {
    pub async fn size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        match fs::metadata(self.paths.blob(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn read(&self, digest: &Digest, range: ByteRange) -> io::Result<BlobStream> {
        let path = self.paths.blob(digest);
        let file = tokio::task::spawn_blocking(move || -> io::Result<_> {
            let mut file = std::fs::File::open(&path).map_err(|e| at(&path, e))?;
            std::io::Seek::seek(&mut file, io::SeekFrom::Start(range.start))?;
            Ok(file)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(file_io::read_ahead(file, range.len()))
    }

    pub async fn stage(&self, id: &UploadId) -> io::Result<()> {
        let path = self.paths.upload(id);
        File::create(&path)
            .await
            .map_err(|e| at(&path, e))?
            .sync_all()
            .await?;
        File::open(self.paths.uploads()).await?.sync_all().await
    }

    /// Appends `chunks` at `offset`, durably. The file is cut to `offset`
    /// first (bytes a crash left past the session's count), and back to it
    /// on error.
    pub async fn append<S>(&self, id: &UploadId, offset: u64, chunks: S) -> Result<Part, Error>
    where
        S: UploadBody,
    {
        let file = self.cut(id, offset).await?.into_std().await;
        let writer = file_io::write_through(file);
        let mut chunks = std::pin::pin!(chunks);
        let received: Result<(), Error> = async {
            let mut batch = Vec::new();
            let mut batched = 0;
            self.space.admit(0)?;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                batched += chunk.len();
                batch.push(chunk);
                if batched >= file_io::BATCH {
                    // Each batch admitted: an upload stops short of the
                    // margin, whatever its length.
                    self.space.admit(batched as u64)?;
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
        // landing after the truncate would corrupt the upload.
        let written = writer.finish().await;
        let appended = received.and_then(|()| Ok(written?));
        match appended {
            Ok(len) => Ok(Part {
                name: String::new(),
                len,
            }),
            Err(e) => {
                if let Err(cut) = self.truncate(id, offset).await {
                    tracing::error!(error = %cut, "cannot cut a failed chunk off an upload");
                }
                Err(e)
            }
        }
    }

    /// The length of a session's staging file, `None` when there is none.
    pub async fn staged_len(&self, id: &UploadId) -> io::Result<Option<u64>> {
        match fs::metadata(self.paths.upload(id)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The sessions with a staging file, and how long ago each was written.
    pub fn staged(&self) -> io::Result<Vec<(String, Option<Duration>)>> {
        let now = SystemTime::now();
        let mut staged = Vec::new();
        for entry in std::fs::read_dir(self.paths.uploads())? {
            let entry = entry?;
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok());
            staged.push((entry.file_name().to_string_lossy().into_owned(), age));
        }
        Ok(staged)
    }

    /// Removes a stored blob (no error when it is gone).
    pub async fn remove(&self, digest: &Digest) -> io::Result<()> {
        match fs::remove_file(self.paths.blob(digest)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub async fn truncate(&self, id: &UploadId, len: u64) -> io::Result<()> {
        self.cut(id, len).await?.sync_data().await
    }

    /// A session's staging file, opened for writing and cut to `len`.
    async fn cut(&self, id: &UploadId, len: u64) -> io::Result<File> {
        let path = self.paths.upload(id);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .await
            .map_err(|e| at(&path, e))?;
        file.set_len(len).await?;
        Ok(file)
    }

    pub async fn hash_staged(&self, id: &UploadId, mut digester: Digester) -> io::Result<Digest> {
        let file = File::open(self.paths.upload(id)).await?;
        let len = file.metadata().await?.len();
        let mut pieces = file_io::read_ahead(file.into_std().await, len);
        while let Some(piece) = pieces.next().await {
            digester.update(&piece?);
        }
        Ok(digester.finish())
    }

    pub async fn commit(&self, id: &UploadId, digest: &Digest) -> io::Result<()> {
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

    pub async fn touch(&self, digest: &Digest) -> io::Result<()> {
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

    pub async fn discard(&self, id: &UploadId) -> io::Result<()> {
        match fs::remove_file(self.paths.upload(id)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Replaces a stored blob's bytes (tests damaging a store).
    #[cfg(test)]
    pub fn overwrite(&self, digest: &Digest, bytes: &[u8]) {
        std::fs::write(self.paths.blob(digest), bytes).unwrap();
    }
}

/// `e`, its message naming `path`, its kind kept (so a full disk stays one).
fn at(path: &std::path::Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
