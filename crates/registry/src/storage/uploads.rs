//! Upload sessions (end-4 to end-6, end-13, end-14).
//!
//! A session is a record in the `uploads` tree ([`UploadRecord`]): its
//! repository, when it started, the bytes acknowledged so far, as [`Part`]s
//! of the blob store, and the SHA-256 of those bytes as a resumable state.
//! Each PATCH writes its bytes as a new part, then records it with a
//! compare-and-swap on the record. So a session continues on any replica,
//! and of two requests racing on one session only one counts: the other's
//! part is taken back and it gets 416 with the session's length. Completing
//! a session needs no second read of its bytes, unless there is no saved
//! state (sha512 uploads, records of older versions): those are hashed once
//! at completion.
//!
//! Every append is all or nothing, even when the request is dropped half-way
//! (client gone, HTTP/2 reset): the writing and the recording run in a task
//! of their own, which takes a part back when it does not count. Within one
//! process a session has one writer at a time, so a second request is
//! refused before it writes anything.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};

use super::blobs::Blobs;
use super::meta::{Meta, UploadRecord};
use super::Store;
use crate::types::{Algorithm, ContentRange, Digest, Digester, RepoName, UploadId};
use crate::Error;

/// A request body as a stream of chunks, as appends consume it.
pub(crate) trait UploadBody:
    Stream<Item = Result<Bytes, Error>> + Send + Unpin + 'static
{
}
impl<S: Stream<Item = Result<Bytes, Error>> + Send + Unpin + 'static> UploadBody for S {}

/// The sessions a request of this process is writing to.
pub(crate) type Writing = Arc<Mutex<HashSet<UploadId>>>;

/// The right to write to one session in this process; dropped, it frees it.
struct Writer {
    writing: Writing,
    id: UploadId,
}

impl Drop for Writer {
    fn drop(&mut self) {
        lock(&self.writing).remove(&self.id);
    }
}

fn lock(writing: &Writing) -> std::sync::MutexGuard<'_, HashSet<UploadId>> {
    writing.lock().unwrap_or_else(|p| p.into_inner())
}

/// A session's record, and its bytes as stored (for compare-and-swap).
struct Session {
    record: UploadRecord,
    stored: Vec<u8>,
}

impl Session {
    /// Bytes acknowledged so far.
    fn len(&self) -> u64 {
        self.record.len.unwrap_or(0)
    }

    /// The running SHA-256 of those bytes, when it is known.
    fn hasher(&self) -> Option<Digester> {
        match &self.record.sha256 {
            Some(saved) => base64::engine::general_purpose::STANDARD
                .decode(saved)
                .ok()
                .and_then(|s| Digester::resume(&s)),
            None => None,
        }
    }
}

/// Settles upload sessions a crash interrupted, before any request runs
/// (files only: sessions in object storage may be in use by other
/// replicas). A staging file longer than its record counts was being
/// appended to: the part was never acknowledged and is cut off. A record
/// without a staging file, or a staging file without a record, is removed.
pub(crate) async fn recover(meta: &Meta, blobs: &Blobs) -> Result<(), Error> {
    let Blobs::Fs(files) = blobs else {
        return Ok(());
    };
    let mut changed = false;
    let mut sessions = HashSet::new();
    let records: Vec<_> = meta.uploads.iter(b"").try_collect().await?;
    for (key, value) in records {
        let id = String::from_utf8_lossy(&key).into_owned();
        let staged = match UploadId::parse(&id) {
            Some(upload) => files.staged_len(&upload).await?.map(|len| (upload, len)),
            None => None,
        };
        let Some((upload, on_disk)) = staged else {
            meta.uploads.remove(&key).await?;
            changed = true;
            continue;
        };
        let mut record: UploadRecord = crate::kv::decode(&value)?;
        match record.len {
            Some(len) if on_disk > len => files.truncate(&upload, len).await?,
            Some(_) => {}
            None => {
                // Written before records counted bytes: the file counts.
                record.len = Some(on_disk);
                meta.uploads
                    .insert(&key, &serde_json::to_vec(&record)?)
                    .await?;
                changed = true;
            }
        }
        sessions.insert(id);
    }
    for (name, _) in files.staged()? {
        if !sessions.contains(&name) {
            if let Some(upload) = UploadId::parse(&name) {
                files.discard(&upload).await?;
            }
        }
    }
    if changed {
        meta.db.flush().await?;
    }
    Ok(())
}

impl Store {
    /// end-4a: opens a session in `repo`; `TooManyRequests` when
    /// `max_open_uploads` sessions are open already.
    pub(crate) async fn start_upload(&self, repo: &RepoName) -> Result<UploadId, Error> {
        self.space.admit(0)?;
        // A cheap early refusal, before anything is staged; the check that
        // counts is the one made while recording the session.
        self.admit().await?;
        let id = UploadId::new();
        self.blobs.stage(&id).await?;
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let fresh = Digester::new(Algorithm::Sha256).save();
        let record = UploadRecord {
            repo: repo.as_str().to_owned(),
            started,
            len: Some(0),
            parts: Vec::new(),
            sha256: fresh.map(|s| base64::engine::general_purpose::STANDARD.encode(s)),
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
        Ok(id)
    }

    /// `Ok` while fewer than `max_open_uploads` sessions are recorded. The
    /// `uploads` tree is the count, so whatever removes a session (finish,
    /// cancel, a failed monolithic upload, garbage collection) frees its
    /// slot.
    async fn admit(&self) -> Result<(), Error> {
        if self.meta.uploads.count(b"").await? >= self.config.max_open_uploads {
            return Err(Error::TooManyRequests("open upload sessions"));
        }
        Ok(())
    }

    /// end-13: the number of bytes received so far (not counting a chunk
    /// still being received).
    pub(crate) async fn upload_len(&self, repo: &RepoName, id: &UploadId) -> Result<u64, Error> {
        Ok(self.session(repo, id).await?.len())
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
        let writer = self.writer(id)?;
        let store = self.clone();
        let (repo, id) = (repo.clone(), id.clone());
        let task = tokio::spawn(async move {
            let session = store.session(&repo, &id).await?;
            let (record, _) = store.append(&id, &session, range, body).await?;
            store.record(&id, &session, &record).await?;
            store.meta.db.flush().await?;
            drop(writer);
            Ok(record.len.unwrap_or(0))
        });
        task.await.map_err(Error::internal)?
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
        self.space.admit(0)?;
        let writer = self.writer(id)?;
        let store = self.clone();
        let (repo, id, digest) = (repo.clone(), id.clone(), digest.clone());
        let task = tokio::spawn(async move {
            let session = store.session(&repo, &id).await?;
            let (record, hasher) = store.append(&id, &session, range, body).await?;
            let actual = match hasher {
                Some(h) if digest.algorithm() == Algorithm::Sha256 => h.finish(),
                _ => {
                    let digester = Digester::new(digest.algorithm());
                    store
                        .blobs
                        .hash_staged(&id, &record.parts, digester)
                        .await?
                }
            };
            // The session ends here, once: a racing finish or cancel loses.
            let ended = store
                .meta
                .uploads
                .compare_and_swap(id.as_str().as_bytes(), Some(&session.stored), None)
                .await?;
            if !ended {
                let last = record.parts.last().cloned().unwrap_or_default();
                store.blobs.undo(&id, session.len(), &last).await?;
                return Err(Error::UploadUnknown);
            }
            let len = record.len.unwrap_or(0);
            if actual != digest {
                store.blobs.discard(&id).await?;
                store.meta.db.flush().await?;
                return Err(Error::DigestMismatch {
                    expected: digest.to_string(),
                    actual: actual.to_string(),
                });
            }
            store.blobs.commit(&id, &record.parts, &digest).await?;
            store.link_blob(&repo, &digest, len).await?;
            drop(writer);
            Ok(len)
        });
        task.await.map_err(Error::internal)?
    }

    /// end-4b: a whole blob in one request; a failed one leaves no session.
    pub(crate) async fn put_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        body: impl UploadBody,
    ) -> Result<u64, Error> {
        self.space.admit(0)?;
        let id = self.start_upload(repo).await?;
        let result = self.finish_upload(repo, &id, digest, None, body).await;
        if result.is_err() && self.meta.uploads.contains(id.as_str().as_bytes()).await? {
            self.cancel_upload(repo, &id).await?;
        }
        result
    }

    /// end-14: abandons a session and its bytes.
    pub(crate) async fn cancel_upload(&self, repo: &RepoName, id: &UploadId) -> Result<(), Error> {
        self.space.admit_cleanup()?;
        let _writer = self.writer(id)?;
        let session = self.session(repo, id).await?;
        let ended = self
            .meta
            .uploads
            .compare_and_swap(id.as_str().as_bytes(), Some(&session.stored), None)
            .await?;
        if !ended {
            return Err(Error::UploadUnknown);
        }
        self.blobs.discard(id).await?;
        self.meta.db.flush().await?;
        Ok(())
    }

    /// The session `id` of `repo`.
    async fn session(&self, repo: &RepoName, id: &UploadId) -> Result<Session, Error> {
        let stored = self
            .meta
            .uploads
            .get(id.as_str().as_bytes())
            .await?
            .ok_or(Error::UploadUnknown)?;
        let mut record: UploadRecord = crate::kv::decode(&stored)?;
        if record.repo != repo.as_str() {
            return Err(Error::UploadUnknown);
        }
        if record.len.is_none() {
            // A record of an older version: the staging file counts.
            if let Blobs::Fs(files) = &self.blobs {
                record.len = files.staged_len(id).await?;
            }
        }
        Ok(Session { record, stored })
    }

    /// The right to write to session `id` in this process.
    fn writer(&self, id: &UploadId) -> Result<Writer, Error> {
        if !lock(&self.writing).insert(id.clone()) {
            return Err(Error::UploadInvalid(
                "another request is writing to this upload".into(),
            ));
        }
        Ok(Writer {
            writing: self.writing.clone(),
            id: id.clone(),
        })
    }

    /// Writes `body` as the session's next part, after its acknowledged
    /// bytes, hashing it on the way; returns the record that counts it and
    /// the hasher covering every byte (when the session's state is known).
    async fn append(
        &self,
        id: &UploadId,
        session: &Session,
        range: Option<ContentRange>,
        body: impl UploadBody,
    ) -> Result<(UploadRecord, Option<Digester>), Error> {
        let start = session.len();
        if let Some(r) = range {
            if r.start != start {
                return Err(Error::RangeNotSatisfiable { offset: start });
            }
        }
        let limit = range.map(|r| r.count());
        let hashing = Arc::new(Mutex::new(session.hasher()));
        let hasher = hashing.clone();
        let mut seen = 0u64;
        let checked = body.map(move |chunk| {
            let bytes = chunk?;
            seen += bytes.len() as u64;
            if limit.is_some_and(|l| seen > l) {
                return Err(Error::SizeInvalid(
                    "the body is longer than its Content-Range".into(),
                ));
            }
            if let Some(h) = hasher.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                h.update(&bytes);
            }
            Ok(bytes)
        });
        let part = self.blobs.append(id, start, checked).await?;
        if let Some(l) = limit.filter(|&l| l != part.len) {
            self.blobs.undo(id, start, &part).await?;
            return Err(Error::SizeInvalid(format!(
                "Content-Range announces {l} bytes but the body had {}",
                part.len
            )));
        }
        let hasher = hashing.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut record = session.record.clone();
        record.len = Some(start + part.len);
        record.sha256 = hasher
            .as_ref()
            .and_then(Digester::save)
            .map(|s| base64::engine::general_purpose::STANDARD.encode(s));
        if !part.name.is_empty() {
            record.parts.push(part);
        }
        Ok((record, hasher))
    }

    /// Replaces the session's record with `record`, which counts one more
    /// part; if another request changed the session first, takes the part
    /// back and says where the session stands.
    async fn record(
        &self,
        id: &UploadId,
        session: &Session,
        record: &UploadRecord,
    ) -> Result<(), Error> {
        let new = serde_json::to_vec(record)?;
        let counted = self
            .meta
            .uploads
            .compare_and_swap(id.as_str().as_bytes(), Some(&session.stored), Some(&new))
            .await;
        if matches!(counted, Ok(true)) {
            return Ok(());
        }
        let part = record.parts.last().cloned().unwrap_or_default();
        let start = session.len();
        if let Err(e) = self.blobs.undo(id, start, &part).await {
            tracing::error!(error = %e, "cannot take back a part that did not count");
        }
        counted?;
        match self
            .meta
            .uploads
            .get_json::<UploadRecord>(id.as_str().as_bytes())
            .await?
        {
            Some(now) => Err(Error::RangeNotSatisfiable {
                offset: now.len.unwrap_or(0),
            }),
            None => Err(Error::UploadUnknown),
        }
    }
}
