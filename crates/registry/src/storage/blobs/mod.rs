//! Blob bytes: verified content by digest, and the staged bytes of upload
//! sessions, on the local filesystem ([`fs`], the default) or in
//! S3-compatible object storage ([`s3`], shared by replicas).
//!
//! A store knows nothing of repositories. An upload session's bytes are a
//! list of [`Part`]s, each one append, recorded with the session (see
//! [`super::uploads`]): a part is written completely and durably before the
//! session counts it, so whatever a crash interrupts, the session's record
//! says which bytes were acknowledged. Staged bytes become a blob only once
//! their digest has been verified.

pub(crate) mod fs;
pub(crate) mod s3;

use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::file_io::BlobStream;
use super::paths::Paths;
use super::space::Space;
use super::uploads::UploadBody;
use crate::error::Error;
use crate::types::{ByteRange, Digest, Digester, UploadId};

/// Where blob bytes live; cloning shares the store.
#[derive(Clone, Debug)]
pub(crate) enum Blobs {
    /// Files under the data directory.
    Fs(fs::FsBlobs),
    /// Objects in a bucket.
    S3(s3::S3Blobs),
}

/// One append to an upload session: its length and, for object storage,
/// the object holding it (files keep every part in one file).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Part {
    /// The object's name; empty for files.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Bytes in it.
    pub len: u64,
}

/// A stored blob as a listing sees it.
#[derive(Debug)]
pub(crate) struct Listed {
    /// Its digest, from its name.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// How long ago it was last stored or mounted (`None`: in the future).
    pub age: Option<Duration>,
}

impl Blobs {
    /// The store `url` names: empty for files under `paths` (written only
    /// while `space` admits it), `s3://bucket/prefix` for object storage
    /// (endpoint, region and keys from the `AWS_*` variables).
    pub(crate) fn open(url: &str, paths: &Paths, space: Space) -> Result<Self, Error> {
        if url.is_empty() {
            return Ok(Self::Fs(fs::FsBlobs::open(paths.clone(), space)?));
        }
        Ok(Self::S3(s3::S3Blobs::open(url)?))
    }

    /// The size of a stored blob, `None` when absent.
    pub(crate) async fn size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        match self {
            Self::Fs(b) => b.size(digest).await,
            Self::S3(b) => b.size(digest).await,
        }
    }

    /// Reads `range` of a stored blob.
    pub(crate) async fn read(&self, digest: &Digest, range: ByteRange) -> io::Result<BlobStream> {
        match self {
            Self::Fs(b) => b.read(digest, range).await,
            Self::S3(b) => b.read(digest, range).await,
        }
    }

    /// Prepares staging for a new upload session.
    pub(crate) async fn stage(&self, id: &UploadId) -> io::Result<()> {
        match self {
            Self::Fs(b) => b.stage(id).await,
            Self::S3(b) => b.stage(id).await,
        }
    }

    /// Writes every chunk of `chunks` as the part of session `id` that
    /// starts at `offset`, durably, and returns it. On error nothing past
    /// `offset` is left.
    pub(crate) async fn append(
        &self,
        id: &UploadId,
        offset: u64,
        chunks: impl UploadBody,
    ) -> Result<Part, Error> {
        match self {
            Self::Fs(b) => b.append(id, offset, chunks).await,
            Self::S3(b) => b.append(id, offset, chunks).await,
        }
    }

    /// Takes back a part that `append` wrote but the session did not count
    /// (another request got there first, or recording it failed).
    pub(crate) async fn undo(&self, id: &UploadId, offset: u64, part: &Part) -> io::Result<()> {
        match self {
            Self::Fs(b) => b.truncate(id, offset).await,
            Self::S3(b) => b.delete_part(part).await,
        }
    }

    /// Hashes a session's bytes (its `parts`, in order) from the first.
    pub(crate) async fn hash_staged(
        &self,
        id: &UploadId,
        parts: &[Part],
        digester: Digester,
    ) -> io::Result<Digest> {
        match self {
            Self::Fs(b) => b.hash_staged(id, digester).await,
            Self::S3(b) => b.hash_staged(parts, digester).await,
        }
    }

    /// Makes a session's verified bytes the blob `digest`, durably; content
    /// already stored under that digest is kept as it is.
    pub(crate) async fn commit(
        &self,
        id: &UploadId,
        parts: &[Part],
        digest: &Digest,
    ) -> io::Result<()> {
        match self {
            Self::Fs(b) => b.commit(id, digest).await,
            Self::S3(b) => b.commit(id, parts, digest).await,
        }
    }

    /// Removes a session's staged bytes (no error when they are gone).
    pub(crate) async fn discard(&self, id: &UploadId) -> io::Result<()> {
        match self {
            Self::Fs(b) => b.discard(id).await,
            Self::S3(b) => b.discard(id).await,
        }
    }

    /// Marks a stored blob as just stored, for garbage collection's grace
    /// period (no error when it is gone).
    pub(crate) async fn touch(&self, digest: &Digest) -> io::Result<()> {
        match self {
            Self::Fs(b) => b.touch(digest).await,
            Self::S3(b) => b.touch(digest).await,
        }
    }

    /// Removes a stored blob (garbage collection, a corrupt blob's repair).
    pub(crate) async fn remove(&self, digest: &Digest) -> io::Result<()> {
        match self {
            Self::Fs(b) => b.remove(digest).await,
            Self::S3(b) => b.remove(digest).await,
        }
    }

    /// Every stored blob (for fsck and garbage collection).
    pub(crate) async fn list(&self) -> io::Result<Vec<Listed>> {
        match self {
            Self::Fs(b) => b.list().await,
            Self::S3(b) => b.list().await,
        }
    }

    /// The sessions that have staged bytes, with how long ago they were last
    /// written (for fsck and start-up recovery).
    pub(crate) async fn staged(&self) -> io::Result<Vec<(String, Option<Duration>)>> {
        match self {
            Self::Fs(b) => b.staged(),
            Self::S3(b) => b.staged().await,
        }
    }

    /// Replaces a stored blob's bytes (tests damaging a store).
    #[cfg(test)]
    pub(crate) async fn overwrite(&self, digest: &Digest, bytes: &'static [u8]) {
        match self {
            Self::Fs(b) => b.overwrite(digest, bytes),
            Self::S3(b) => b.overwrite(digest, bytes).await,
        }
    }
}
