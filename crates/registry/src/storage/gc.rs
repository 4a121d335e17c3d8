//! Garbage collection: deletes blobs that nothing references and upload
//! sessions past `upload_expiry`, while the registry keeps serving.
//!
//! 1. **Mark** (no lock): every blob a stored manifest references, plus
//!    what extensions reference (chart archives), is live.
//! 2. **Sweep** (pushes of manifests wait): manifests pushed since the mark
//!    began are read back from the event log and marked too; then each
//!    unmarked blob whose file is older than `gc_grace` loses its links and
//!    its file.
//!
//! The grace period covers a blob uploaded for a manifest not pushed yet:
//! storing a blob, even one already stored, and mounting it refresh its
//! file's time. A manifest pushed during the sweep waits for it, then finds
//! the blob's link gone and gets `MANIFEST_BLOB_UNKNOWN`, never a dangling
//! reference.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use futures_util::TryStreamExt;

use super::meta::{self, UploadRecord};
use super::Store;
use crate::events::Action;
use crate::types::{Digest, RepoName, UploadId};
use crate::Error;
use serde_json::Value;

/// What a collection did (or, in a dry run, would do).
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    /// Nothing was deleted.
    pub dry_run: bool,
    /// Blobs referenced by manifests or extensions.
    pub live_blobs: usize,
    /// Unreferenced blobs deleted (or to delete).
    pub deleted_blobs: Vec<String>,
    /// Their bytes.
    pub freed_bytes: u64,
    /// Unreferenced blobs kept because they are younger than `gc_grace`.
    pub young_blobs: usize,
    /// Expired upload sessions removed (or to remove).
    pub expired_uploads: Vec<String>,
}

/// The lock manifest pushes hold shared and the sweep holds alone.
pub(crate) const SWEEP: &str = "sweep";

impl Store {
    /// Collects garbage; `roots` are blobs extensions reference.
    pub(crate) async fn gc(
        &self,
        dry_run: bool,
        grace: Duration,
        upload_expiry: Duration,
        roots: HashSet<Digest>,
    ) -> Result<GcReport, Error> {
        // One collection at a time, across replicas too.
        let _alone = self
            .meta
            .db
            .try_lease("gc")
            .await?
            .ok_or(Error::TooManyRequests("a garbage collection is running"))?;
        let since = self.meta.log.last_committed().await?;
        let mut live = self.mark().await?;
        let files = self.blobs.list().await?;
        let links = self.links_by_digest().await?;
        live.extend(roots);

        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        {
            // Pushes wait while the sweep runs: in this process, and (on a
            // shared engine) on every replica.
            let _sweeping = self.sweep.write().await;
            let _everywhere = self.meta.db.exclusive(SWEEP).await?;
            self.mark_pushed_since(since, &mut live).await?;
            report.live_blobs = live.len();
            for blob in files {
                if live.contains(&blob.digest) {
                    continue;
                }
                if blob.age.is_none_or(|a| a < grace) {
                    report.young_blobs += 1;
                    continue;
                }
                if !dry_run {
                    for key in links.get(&blob.digest).into_iter().flatten() {
                        self.meta.links.remove(key).await?;
                    }
                    self.blobs.remove(&blob.digest).await?;
                }
                report.freed_bytes += blob.size;
                report.deleted_blobs.push(blob.digest.to_string());
            }
            if !dry_run {
                self.meta.db.flush().await?;
            }
        }
        report.expired_uploads = self.expire_uploads(dry_run, upload_expiry).await?;
        Ok(report)
    }

    /// Every blob a stored manifest references.
    async fn mark(&self) -> Result<HashSet<Digest>, Error> {
        let mut live = HashSet::new();
        let mut manifests = std::pin::pin!(self.meta.manifests.iter(b""));
        while let Some((_, bytes)) = manifests.try_next().await? {
            live.extend(references(&bytes));
        }
        Ok(live)
    }

    /// Marks the blobs of manifests (and charts) pushed after event `since`.
    async fn mark_pushed_since(&self, since: u64, live: &mut HashSet<Digest>) -> Result<(), Error> {
        for (_, record) in self.meta.log.read_committed(since).await? {
            let target = &record.event.target;
            let Some(digest) = Digest::parse(&target.digest) else {
                continue;
            };
            match record.event.action {
                Action::Push | Action::Quarantine => {
                    let key =
                        crate::kv::key(&[target.repository.as_bytes(), digest.as_str().as_bytes()]);
                    if let Some(bytes) = self.meta.manifests.get(&key).await? {
                        live.extend(references(&bytes));
                    }
                }
                Action::ChartPush => {
                    live.insert(digest);
                }
                Action::Delete | Action::ChartDelete => {}
            }
        }
        Ok(())
    }

    /// The `links` keys of each digest.
    async fn links_by_digest(&self) -> Result<HashMap<Digest, Vec<Vec<u8>>>, Error> {
        let mut links: HashMap<Digest, Vec<Vec<u8>>> = HashMap::new();
        let mut all = std::pin::pin!(self.meta.links.iter(b""));
        while let Some((key, _)) = all.try_next().await? {
            if let Some(d) = Digest::parse(&meta::split_key(&key).1) {
                links.entry(d).or_default().push(key);
            }
        }
        Ok(links)
    }

    /// Removes upload sessions older than `expiry`; returns their ids.
    async fn expire_uploads(&self, dry_run: bool, expiry: Duration) -> Result<Vec<String>, Error> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut expired = Vec::new();
        let sessions: Vec<_> = self.meta.uploads.iter(b"").try_collect().await?;
        for (key, value) in sessions {
            let record: UploadRecord = crate::kv::decode(&value)?;
            let id = String::from_utf8_lossy(&key).into_owned();
            if now.saturating_sub(record.started) <= expiry.as_secs() {
                continue;
            }
            if !dry_run {
                if let (Some(upload), Some(repo)) =
                    (UploadId::parse(&id), RepoName::parse(&record.repo))
                {
                    match self.cancel_upload(&repo, &upload).await {
                        Ok(()) | Err(Error::UploadUnknown) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            expired.push(id);
        }
        Ok(expired)
    }
}

/// Every digest a manifest mentions under a `digest` key, at any depth:
/// a superset of its blobs that needs no parser to agree with the one
/// that accepted it, so nothing it references is ever collected.
fn references(bytes: &[u8]) -> Vec<Digest> {
    fn walk(v: &Value, out: &mut Vec<Digest>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match v.as_str().and_then(Digest::parse) {
                        Some(d) if k == "digest" => out.push(d),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        walk(&v, &mut out);
    }
    out
}
