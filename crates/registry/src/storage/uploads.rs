//! Upload sessions (end-4 to end-6, end-13, end-14).
//!
//! A session's bytes are a staging object in the [`BlobStore`]; its record
//! (repository, start time) is in the `uploads` tree. A running SHA-256 of
//! the bytes so far is kept in memory so that completing an upload costs no
//! second read; after a restart, or for sha512, the staged bytes are hashed
//! once at completion instead.
//!
//! Every append is all or nothing, even when the request is dropped half-way
//! (client gone, HTTP/2 reset): it runs in its own task, which owns the
//! session's lease and cuts a failed chunk off again before releasing it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::blobs::{BlobStore, FsBlobStore};
use super::meta::{Meta, UploadRecord};
use super::paths::Paths;
use super::Store;
use crate::types::{Algorithm, ContentRange, Digest, Digester, RepoName, UploadId};
use crate::Error;

/// In-memory progress of the sessions this process has touched.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    slots: Mutex<HashMap<UploadId, Slot>>,
}

#[derive(Debug)]
enum Slot {
    Idle(Box<Progress>),
    /// A request is appending to it; a second writer is refused, but its
    /// committed length (before the running append) can still be reported.
    Busy {
        len: u64,
    },
}

#[derive(Clone, Debug)]
struct Progress {
    len: u64,
    /// SHA-256 of the first `len` bytes; `None` when unknown (after a restart).
    sha256: Option<Digester>,
}

/// Exclusive use of one session. Dropping it makes the session available
/// again with the progress it holds, unless `forget` is set: then the next
/// request re-reads the length from the staged bytes (after a restart, or
/// once the session is finished).
struct Lease {
    sessions: Arc<Sessions>,
    id: UploadId,
    progress: Progress,
    forget: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut slots = self.sessions.lock();
        if self.forget {
            slots.remove(&self.id);
        } else {
            slots.insert(self.id.clone(), Slot::Idle(Box::new(self.progress.clone())));
        }
    }
}

/// Settles upload sessions a crash interrupted, before any request runs.
/// Finishing or cancelling a session removes its record, then renames or
/// deletes its bytes, and the record's removal becomes durable with the
/// next flush; a crash in between leaves a record whose bytes are gone,
/// which is dropped here. Bytes without a record (a crash inside
/// `start_upload`) belong to no one and are deleted.
pub(crate) async fn recover(meta: &Meta, paths: &Paths) -> Result<(), Error> {
    use futures_util::TryStreamExt;
    let mut changed = false;
    let mut sessions = std::collections::HashSet::new();
    let records: Vec<_> = meta.uploads.iter(b"").try_collect().await?;
    for (key, _) in records {
        let id = String::from_utf8_lossy(&key).into_owned();
        match UploadId::parse(&id) {
            Some(upload) if paths.upload(&upload).exists() => {
                sessions.insert(id);
            }
            _ => {
                meta.uploads.remove(&key).await?;
                changed = true;
            }
        }
    }
    for entry in std::fs::read_dir(paths.uploads())? {
        let entry = entry?;
        if !sessions.contains(entry.file_name().to_string_lossy().as_ref()) {
            std::fs::remove_file(entry.path())?;
        }
    }
    if changed {
        meta.db.flush().await?;
    }
    Ok(())
}

/// A request body as a stream of chunks, as appends consume it.
pub(crate) trait UploadBody:
    Stream<Item = Result<Bytes, Error>> + Send + Unpin + 'static
{
}
impl<S: Stream<Item = Result<Bytes, Error>> + Send + Unpin + 'static> UploadBody for S {}

impl Store {
    /// end-4a: opens a session in `repo`; `TooManyRequests` when
    /// `max_open_uploads` sessions are open already.
    pub(crate) async fn start_upload(&self, repo: &RepoName) -> Result<UploadId, Error> {
        // A cheap early refusal, before any file is created; the check that
        // counts is the one made while recording the session.
        self.admit().await?;
        let id = UploadId::new();
        self.blobs.stage(&id).await?;
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let record = UploadRecord {
            repo: repo.as_str().to_owned(),
            started,
        };
        let recorded = {
            let _alone = self.admission.lock().await;
            match self.admit().await {
                Ok(()) => {
                    let value = serde_json::to_vec(&record)?;
                    self.meta
                        .uploads
                        .insert(id.as_str().as_bytes(), &value)
                        .await
                }
                Err(e) => Err(e),
            }
        };
        if let Err(e) = recorded {
            self.blobs.discard(&id).await?;
            return Err(e);
        }
        self.meta.db.flush().await?;
        let fresh = Progress {
            len: 0,
            sha256: Some(Digester::new(Algorithm::Sha256)),
        };
        self.sessions
            .lock()
            .insert(id.clone(), Slot::Idle(Box::new(fresh)));
        Ok(id)
    }

    /// `Ok` while fewer than `max_open_uploads` sessions are recorded. The
    /// `uploads` tree is the count, so whatever removes a session (finish,
    /// cancel, a failed monolithic upload, garbage collection) frees its
    /// slot; it holds at most about `max_open_uploads` records, which keeps
    /// counting them cheap.
    async fn admit(&self) -> Result<(), Error> {
        if self.meta.uploads.count(b"").await? >= self.config.max_open_uploads {
            return Err(Error::TooManyRequests("open upload sessions"));
        }
        Ok(())
    }

    /// end-13: the number of bytes received so far (not counting a chunk
    /// still being received).
    pub(crate) async fn upload_len(&self, repo: &RepoName, id: &UploadId) -> Result<u64, Error> {
        self.check_session(repo, id).await?;
        let known = match self.sessions.lock().get(id) {
            Some(Slot::Busy { len }) => Some(*len),
            Some(Slot::Idle(p)) => Some(p.len),
            None => None,
        };
        match known {
            Some(len) => Ok(len),
            None => self.blobs.staged_len(id).await?.ok_or(Error::UploadUnknown),
        }
    }

    /// end-5: appends a chunk; `range`, when given, must start where the
    /// upload ends (else 416) and cover exactly the body. Returns the new length.
    pub(crate) async fn append_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
        range: Option<ContentRange>,
        body: impl UploadBody,
    ) -> Result<u64, Error> {
        let lease = self.lease(repo, id).await?;
        let lease = append(self.blobs.clone(), lease, range, body).await?;
        Ok(lease.progress.len)
    }

    /// end-6: appends the last chunk (if any), verifies `digest` against
    /// everything received, and makes the blob part of `repo`. On a digest
    /// mismatch the session is discarded and nothing is stored.
    pub(crate) async fn finish_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
        digest: &Digest,
        range: Option<ContentRange>,
        body: impl UploadBody,
    ) -> Result<u64, Error> {
        let lease = self.lease(repo, id).await?;
        let mut lease = append(self.blobs.clone(), lease, range, body).await?;
        let on_disk = self.blobs.staged_len(id).await?;
        let actual = match &lease.progress.sha256 {
            // The running hash is used only when it provably covers every
            // staged byte; anything else is hashed from disk.
            Some(h)
                if digest.algorithm() == Algorithm::Sha256
                    && on_disk == Some(lease.progress.len) =>
            {
                h.clone().finish()
            }
            _ => {
                self.blobs
                    .hash_staged(id, Digester::new(digest.algorithm()))
                    .await?
            }
        };
        lease.forget = true;
        self.meta.uploads.remove(id.as_str().as_bytes()).await?;
        if &actual != digest {
            self.blobs.discard(id).await?;
            self.meta.db.flush().await?;
            return Err(Error::DigestMismatch {
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        let len = on_disk.unwrap_or(lease.progress.len);
        self.blobs.commit(id, digest).await?;
        self.link_blob(repo, digest, len).await?;
        Ok(len)
    }

    /// end-4b: a whole blob in one request; a failed one leaves no session.
    pub(crate) async fn put_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        body: impl UploadBody,
    ) -> Result<u64, Error> {
        let id = self.start_upload(repo).await?;
        let result = self.finish_upload(repo, &id, digest, None, body).await;
        if result.is_err() && self.meta.uploads.contains(id.as_str().as_bytes()).await? {
            self.cancel_upload(repo, &id).await?;
        }
        result
    }

    /// end-14: abandons a session and its bytes.
    pub(crate) async fn cancel_upload(&self, repo: &RepoName, id: &UploadId) -> Result<(), Error> {
        let mut lease = self.lease(repo, id).await?;
        lease.forget = true;
        self.meta.uploads.remove(id.as_str().as_bytes()).await?;
        self.blobs.discard(id).await?;
        self.meta.db.flush().await?;
        Ok(())
    }

    /// The session's record exists and belongs to `repo`.
    async fn check_session(&self, repo: &RepoName, id: &UploadId) -> Result<(), Error> {
        let record: UploadRecord = match self.meta.uploads.get_json(id.as_str().as_bytes()).await? {
            Some(record) => record,
            None => return Err(Error::UploadUnknown),
        };
        if record.repo == repo.as_str() {
            Ok(())
        } else {
            Err(Error::UploadUnknown)
        }
    }

    /// Takes exclusive use of a session of `repo`.
    async fn lease(&self, repo: &RepoName, id: &UploadId) -> Result<Lease, Error> {
        self.check_session(repo, id).await?;
        let known = {
            let mut slots = self.sessions.lock();
            match slots.get(id) {
                Some(Slot::Busy { .. }) => {
                    return Err(Error::UploadInvalid(
                        "another request is writing to this upload".into(),
                    ))
                }
                Some(Slot::Idle(p)) => {
                    let p = (**p).clone();
                    slots.insert(id.clone(), Slot::Busy { len: p.len });
                    Some(p)
                }
                None => {
                    slots.insert(id.clone(), Slot::Busy { len: 0 });
                    None
                }
            }
        };
        let unknown = Progress {
            len: 0,
            sha256: None,
        };
        let mut lease = Lease {
            sessions: self.sessions.clone(),
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
                self.sessions.lock().insert(id.clone(), Slot::Busy { len });
                let sha256 = (len == 0).then(|| Digester::new(Algorithm::Sha256));
                Progress { len, sha256 }
            }
        };
        lease.forget = false;
        Ok(lease)
    }
}

/// Appends `body` to a leased session, all or nothing, in a task of its own
/// so that dropping the request cannot interrupt the clean-up. Returns the
/// lease with its new progress.
async fn append(
    blobs: FsBlobStore,
    lease: Lease,
    range: Option<ContentRange>,
    body: impl UploadBody,
) -> Result<Lease, Error> {
    let task = tokio::spawn(async move {
        let mut lease = lease;
        let start = lease.progress.len;
        if let Some(r) = range {
            if r.start != start {
                return Err(Error::RangeNotSatisfiable { offset: start });
            }
        }
        let limit = range.map(|r| r.count());
        let mut sha256 = lease.progress.sha256.clone();
        let mut seen = 0u64;
        let checked = body.map(|chunk| {
            let bytes = chunk?;
            seen += bytes.len() as u64;
            if limit.is_some_and(|l| seen > l) {
                return Err(Error::SizeInvalid(
                    "the body is longer than its Content-Range".into(),
                ));
            }
            if let Some(h) = sha256.as_mut() {
                h.update(&bytes);
            }
            Ok(bytes)
        });
        let result = match (blobs.append(&lease.id, checked).await, limit) {
            (Ok(n), Some(l)) if n != l => Err(Error::SizeInvalid(format!(
                "Content-Range announces {l} bytes but the body had {n}"
            ))),
            (other, _) => other,
        };
        match result {
            Ok(n) => {
                lease.progress = Progress {
                    len: start + n,
                    sha256,
                };
                Ok(lease)
            }
            Err(e) => {
                if let Err(cut) = blobs.truncate(&lease.id, start).await {
                    // The staged bytes no longer match the progress: forget it,
                    // so the next request re-reads the length from disk.
                    lease.forget = true;
                    tracing::error!(error = %cut, "cannot cut a failed chunk off an upload");
                }
                Err(e)
            }
        }
    });
    task.await.map_err(Error::internal)?
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UploadId, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}
