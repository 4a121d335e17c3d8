//! Upload sessions (end-4 to end-6, end-13, end-14).
//!
//! A session's bytes are a staging object in the [`BlobStore`]; its record
//! (repository, start time) is in the `uploads` tree. A running SHA-256 of
//! the bytes so far is kept in memory so that completing an upload costs no
//! second read; after a restart, or for sha512, the staged bytes are hashed
//! once at completion instead.
//!
//! Every append is all-or-nothing: a chunk that fails half-way (client gone,
//! wrong length) is cut off again, so the session is exactly as before it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::blobs::BlobStore;
use super::meta::{self, UploadRecord};
use super::Store;
use crate::types::{Algorithm, ContentRange, Digest, Digester, RepoName, UploadId};
use crate::Error;

/// In-memory progress of the sessions this process has touched.
#[derive(Debug, Default)]
pub struct Sessions {
    slots: Mutex<HashMap<UploadId, Slot>>,
}

#[derive(Debug)]
enum Slot {
    Idle(Box<Progress>),
    /// A request is appending to it; a second one is refused.
    Busy,
}

#[derive(Clone, Debug)]
struct Progress {
    len: u64,
    /// SHA-256 of the first `len` bytes; `None` when unknown (after a restart).
    sha256: Option<Digester>,
}

/// Exclusive use of one session for the length of a request. Dropping it
/// makes the session available again with the progress it holds, unless
/// `forget` is set: then the next request re-reads the length from the
/// staged bytes. `forget` is set whenever the in-memory progress may be
/// stale: while an append runs (the request future can be dropped at any
/// await) and once the session is finished.
struct Lease<'a> {
    sessions: &'a Sessions,
    id: UploadId,
    progress: Progress,
    forget: bool,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut slots = self.sessions.lock();
        if self.forget {
            slots.remove(&self.id);
        } else {
            slots.insert(self.id.clone(), Slot::Idle(Box::new(self.progress.clone())));
        }
    }
}

/// A request body as a stream of chunks.
pub trait Chunks: Stream<Item = Result<Bytes, Error>> + Send + Unpin {}
impl<S: Stream<Item = Result<Bytes, Error>> + Send + Unpin> Chunks for S {}

impl Store {
    /// end-4a: opens a session in `repo`.
    pub async fn start_upload(&self, repo: &RepoName) -> Result<UploadId, Error> {
        let id = UploadId::new();
        self.blobs.stage(&id).await?;
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let record = UploadRecord {
            repo: repo.as_str().to_owned(),
            started,
        };
        self.meta
            .uploads
            .insert(id.as_str(), serde_json::to_vec(&record)?)?;
        self.meta.flush().await?;
        self.sessions.lock().insert(
            id.clone(),
            Slot::Idle(Box::new(Progress {
                len: 0,
                sha256: Some(Digester::new(Algorithm::Sha256)),
            })),
        );
        Ok(id)
    }

    /// end-13: the number of bytes received so far.
    pub async fn upload_len(&self, repo: &RepoName, id: &UploadId) -> Result<u64, Error> {
        Ok(self.lease(repo, id).await?.progress.len)
    }

    /// end-5: appends a chunk; `range`, when given, must start where the
    /// upload ends (else 416) and cover exactly the body. Returns the new length.
    pub async fn append_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
        range: Option<ContentRange>,
        body: impl Chunks,
    ) -> Result<u64, Error> {
        let mut lease = self.lease(repo, id).await?;
        self.append(&mut lease, range, body).await?;
        Ok(lease.progress.len)
    }

    /// end-6: appends the last chunk (if any), verifies `digest` against
    /// everything received, and makes the blob part of `repo`. On a digest
    /// mismatch the session is discarded and nothing is stored.
    pub async fn finish_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
        digest: &Digest,
        range: Option<ContentRange>,
        body: impl Chunks,
    ) -> Result<u64, Error> {
        let mut lease = self.lease(repo, id).await?;
        self.append(&mut lease, range, body).await?;
        let actual = match &lease.progress.sha256 {
            Some(h) if digest.algorithm() == Algorithm::Sha256 => h.clone().finish(),
            _ => {
                self.blobs
                    .hash_staged(id, Digester::new(digest.algorithm()))
                    .await?
            }
        };
        lease.forget = true;
        self.meta.uploads.remove(id.as_str())?;
        if &actual != digest {
            self.blobs.discard(id).await?;
            self.meta.flush().await?;
            return Err(Error::DigestMismatch {
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        self.blobs.commit(id, digest).await?;
        self.link_blob(repo, digest, lease.progress.len).await?;
        Ok(lease.progress.len)
    }

    /// end-4b: a whole blob in one request.
    pub async fn put_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        body: impl Chunks,
    ) -> Result<u64, Error> {
        let id = self.start_upload(repo).await?;
        self.finish_upload(repo, &id, digest, None, body).await
    }

    /// end-14: abandons a session and its bytes.
    pub async fn cancel_upload(&self, repo: &RepoName, id: &UploadId) -> Result<(), Error> {
        let mut lease = self.lease(repo, id).await?;
        lease.forget = true;
        self.meta.uploads.remove(id.as_str())?;
        self.blobs.discard(id).await?;
        self.meta.flush().await?;
        Ok(())
    }

    /// Takes exclusive use of a session of `repo`.
    async fn lease(&self, repo: &RepoName, id: &UploadId) -> Result<Lease<'_>, Error> {
        let record: UploadRecord = match self.meta.uploads.get(id.as_str())? {
            Some(bytes) => meta::decode(&bytes)?,
            None => return Err(Error::UploadUnknown),
        };
        if record.repo != repo.as_str() {
            return Err(Error::UploadUnknown);
        }
        let known = match self.sessions.lock().insert(id.clone(), Slot::Busy) {
            Some(Slot::Busy) => {
                return Err(Error::UploadInvalid(
                    "another request is writing to this upload".into(),
                ))
            }
            Some(Slot::Idle(progress)) => Some(*progress),
            None => None,
        };
        let unknown = Progress {
            len: 0,
            sha256: None,
        };
        let mut lease = Lease {
            sessions: &self.sessions,
            id: id.clone(),
            progress: unknown,
            forget: true,
        };
        lease.progress = match known {
            Some(progress) => progress,
            None => {
                let len = self
                    .blobs
                    .staged_len(id)
                    .await?
                    .ok_or(Error::UploadUnknown)?;
                let sha256 = (len == 0).then(|| Digester::new(Algorithm::Sha256));
                Progress { len, sha256 }
            }
        };
        lease.forget = false;
        Ok(lease)
    }

    /// Appends `body` to a leased session, all or nothing.
    async fn append(
        &self,
        lease: &mut Lease<'_>,
        range: Option<ContentRange>,
        body: impl Chunks,
    ) -> Result<(), Error> {
        let start = lease.progress.len;
        if let Some(r) = range {
            if r.start != start {
                return Err(Error::RangeNotSatisfiable { offset: start });
            }
        }
        let mut sha256 = lease.progress.sha256.clone();
        lease.forget = true;
        let hashed = body.inspect(|chunk| {
            if let (Some(h), Ok(bytes)) = (sha256.as_mut(), chunk) {
                h.update(bytes);
            }
        });
        let result = self.blobs.append(&lease.id, hashed).await;
        let result = match (result, range) {
            (Ok(n), Some(r)) if n != r.count() => Err(Error::SizeInvalid(format!(
                "Content-Range {}-{} announces {} bytes but the body had {n}",
                r.start,
                r.end,
                r.count()
            ))),
            (other, _) => other,
        };
        match result {
            Ok(n) => {
                lease.progress = Progress {
                    len: start + n,
                    sha256,
                };
                lease.forget = false;
                Ok(())
            }
            Err(e) => {
                self.blobs.truncate(&lease.id, start).await?;
                lease.forget = false;
                Err(e)
            }
        }
    }
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UploadId, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}
