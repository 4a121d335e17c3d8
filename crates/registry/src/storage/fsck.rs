//! `berth fsck`: checks that a store is consistent, and repairs what can be
//! repaired without losing anything.
//!
//! | problem                 | meaning                                          | repair                          |
//! |-------------------------|--------------------------------------------------|---------------------------------|
//! | `corrupt_blob`          | a blob file does not hash to its name            | remove it and its links, so clients re-push it |
//! | `link_without_blob`     | a repository links a blob with no file           | remove the link                 |
//! | `missing_blob`          | a manifest references a blob its repository lacks | none (re-push the blob)        |
//! | `missing_child`         | an index references a manifest its repository lacks | none                         |
//! | `corrupt_manifest`      | stored manifest bytes do not hash to their digest | none                           |
//! | `dangling_tag`          | a tag points at a manifest that is not stored    | remove the tag                  |
//! | `tag_index_mismatch`    | a manifest's tag list disagrees with the tags    | rewrite the list from the tags  |
//! | `expired_upload`        | an upload session older than `upload_expiry`     | remove it                       |
//! | `upload_without_file`   | an upload session whose bytes are gone           | remove it                       |
//! | `orphan_upload_file`    | upload bytes with no session (older than a minute) | remove them                   |
//!
//! The scan reads the trees one after the other, so it is exact on a quiet
//! store; each repair re-checks its condition atomically (compare-and-swap)
//! before changing anything, so a concurrent push is never undone.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::meta::{split_key, ManifestMeta, UploadRecord};
use super::Store;
use crate::manifest::Manifest;
use crate::types::{ByteRange, Digest, Digester, UploadId};
use crate::Error;

/// What a check found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Blob files hashed.
    pub blobs: usize,
    /// Manifests checked.
    pub manifests: usize,
    /// Tags checked.
    pub tags: usize,
    /// Upload sessions checked.
    pub uploads: usize,
    /// Every problem, repaired or not.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Problems that are still there.
    pub fn unrepaired(&self) -> usize {
        self.problems.iter().filter(|p| !p.repaired).count()
    }
}

/// One inconsistency.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// Which kind (see the module's table).
    pub kind: &'static str,
    /// What it concerns: `repo@digest`, `repo:tag`, a digest or an upload id.
    pub subject: String,
    /// What is wrong, in words.
    pub detail: String,
    /// Whether `--repair` fixed it.
    pub repaired: bool,
}

/// Upload bytes younger than this are never called orphans: a session
/// writes its file just before its record.
const ORPHAN_GRACE: Duration = Duration::from_secs(60);

/// A finding and, when it can be repaired, how.
struct Finding {
    kind: &'static str,
    subject: String,
    detail: String,
    repair: Option<Repair>,
}

enum Repair {
    /// Remove the blob file and every link to it.
    CorruptBlob(Digest),
    /// Remove one `links` key.
    Link(Vec<u8>),
    /// Remove a tag if it still points at `digest`.
    Tag { key: Vec<u8>, digest: Vec<u8> },
    /// Rewrite a manifest's tag list from the tags tree.
    TagList(Vec<u8>),
    /// Remove an upload session and its bytes.
    Upload(UploadId),
    /// Remove upload bytes with no session.
    UploadFile(UploadId),
}

impl Store {
    /// Checks the whole store; with `repair`, fixes what is safe to fix.
    pub(crate) async fn fsck(
        &self,
        repair: bool,
        upload_expiry: Duration,
    ) -> Result<Report, Error> {
        let (mut report, findings) = self.scan(upload_expiry).await?;
        for f in findings {
            let repaired = match (&f.repair, repair) {
                (Some(r), true) => self.repair(r).await?,
                _ => false,
            };
            report.problems.push(Problem {
                kind: f.kind,
                subject: f.subject,
                detail: f.detail,
                repaired,
            });
        }
        if repair {
            self.meta.db.flush().await?;
        }
        Ok(report)
    }

    /// Reads everything and lists what is wrong.
    async fn scan(&self, upload_expiry: Duration) -> Result<(Report, Vec<Finding>), Error> {
        let (mut report, mut found) = (Report::default(), Vec::new());
        let (present, corrupt) = self.scan_blobs(&mut report, &mut found).await?;

        let mut links = HashSet::new();
        let mut all_links = std::pin::pin!(self.meta.links.iter(b""));
        while let Some((key, _)) = all_links.try_next().await? {
            let (repo, digest) = split_key(&key);
            // A corrupt blob is reported (and repaired) as such, links included.
            if Digest::parse(&digest)
                .is_some_and(|d| !present.contains(&d) && !corrupt.contains(&d))
            {
                found.push(Finding {
                    kind: "link_without_blob",
                    subject: format!("{repo}@{digest}"),
                    detail: "the repository links a blob whose file is gone".into(),
                    repair: Some(Repair::Link(key.clone())),
                });
            } else {
                links.insert((repo, digest));
            }
        }

        let mut tags_of: BTreeMap<Vec<u8>, BTreeSet<String>> = BTreeMap::new();
        let mut all_tags = std::pin::pin!(self.meta.tags.iter(b""));
        while let Some((key, digest)) = all_tags.try_next().await? {
            report.tags += 1;
            let (repo, tag) = split_key(&key);
            let digest_text = String::from_utf8_lossy(&digest).into_owned();
            let meta_key = crate::kv::key(&[repo.as_bytes(), &digest]);
            if !self.meta.manifest_meta.contains(&meta_key).await? {
                found.push(Finding {
                    kind: "dangling_tag",
                    subject: format!("{repo}:{tag}"),
                    detail: format!("points at {digest_text}, which is not stored"),
                    repair: Some(Repair::Tag {
                        key: key.clone(),
                        digest: digest.clone(),
                    }),
                });
                continue;
            }
            tags_of.entry(meta_key).or_default().insert(tag);
        }

        let mut all_manifests = std::pin::pin!(self.meta.manifest_meta.iter(b""));
        while let Some((key, value)) = all_manifests.try_next().await? {
            report.manifests += 1;
            let (repo, digest) = split_key(&key);
            let subject = format!("{repo}@{digest}");
            let record: ManifestMeta = crate::kv::decode(&value)?;
            let tagged = tags_of.remove(&key).unwrap_or_default();
            if record.tags != tagged {
                found.push(Finding {
                    kind: "tag_index_mismatch",
                    subject: subject.clone(),
                    detail: format!("lists tags {:?}, the tags say {tagged:?}", record.tags),
                    repair: Some(Repair::TagList(key.clone())),
                });
            }
            let Some(bytes) = self.meta.manifests.get(&key).await? else {
                found.push(Finding {
                    kind: "corrupt_manifest",
                    subject,
                    detail: "its bytes are missing".into(),
                    repair: None,
                });
                continue;
            };
            let matches =
                Digest::parse(&digest).is_some_and(|d| Digest::of(d.algorithm(), &bytes) == d);
            if !matches {
                found.push(Finding {
                    kind: "corrupt_manifest",
                    subject,
                    detail: "its bytes do not hash to its digest".into(),
                    repair: None,
                });
                continue;
            }
            if self.config.allow_missing_references {
                continue;
            }
            let Ok(manifest) = Manifest::parse(&bytes, Some(&record.media_type)) else {
                continue; // accepted when pushed; the parser grew stricter since
            };
            for blob in &manifest.blobs {
                if !links.contains(&(repo.clone(), blob.to_string())) {
                    found.push(Finding {
                        kind: "missing_blob",
                        subject: subject.clone(),
                        detail: format!("references {blob}, which the repository lacks"),
                        repair: None,
                    });
                }
            }
            for child in &manifest.children {
                let child_key = crate::kv::key(&[repo.as_bytes(), child.as_str().as_bytes()]);
                if !self.meta.manifest_meta.contains(&child_key).await? {
                    found.push(Finding {
                        kind: "missing_child",
                        subject: subject.clone(),
                        detail: format!("references manifest {child}, which the repository lacks"),
                        repair: None,
                    });
                }
            }
        }

        self.scan_uploads(upload_expiry, &mut report, &mut found)
            .await?;
        Ok((report, found))
    }

    /// Hashes every stored blob; returns the digests whose content is
    /// intact and those whose content is not.
    async fn scan_blobs(
        &self,
        report: &mut Report,
        found: &mut Vec<Finding>,
    ) -> Result<(HashSet<Digest>, HashSet<Digest>), Error> {
        let (mut present, mut corrupt) = (HashSet::new(), HashSet::new());
        for blob in self.blobs.list().await? {
            report.blobs += 1;
            let range = ByteRange {
                start: 0,
                end: blob.size,
            };
            let mut bytes = self.blobs.read(&blob.digest, range).await?;
            let mut digester = Digester::new(blob.digest.algorithm());
            let mut intact = true;
            while let Some(chunk) = bytes.next().await {
                match chunk {
                    Ok(chunk) => digester.update(&chunk),
                    Err(_) => {
                        intact = false;
                        break;
                    }
                }
            }
            if intact && digester.finish() == blob.digest {
                present.insert(blob.digest);
            } else {
                found.push(Finding {
                    kind: "corrupt_blob",
                    subject: blob.digest.to_string(),
                    detail: "the stored content does not hash to its name".into(),
                    repair: Some(Repair::CorruptBlob(blob.digest.clone())),
                });
                corrupt.insert(blob.digest);
            }
        }
        Ok((present, corrupt))
    }

    async fn scan_uploads(
        &self,
        expiry: Duration,
        report: &mut Report,
        found: &mut Vec<Finding>,
    ) -> Result<(), Error> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let staged: std::collections::HashMap<String, Option<Duration>> =
            self.blobs.staged().await?.into_iter().collect();
        let mut sessions = HashSet::new();
        let records: Vec<_> = self.meta.uploads.iter(b"").try_collect().await?;
        for (key, value) in records {
            report.uploads += 1;
            let id_text = String::from_utf8_lossy(&key).into_owned();
            let Some(id) = UploadId::parse(&id_text) else {
                continue;
            };
            sessions.insert(id_text.clone());
            let record: UploadRecord = crate::kv::decode(&value)?;
            let age = now.saturating_sub(record.started);
            let (kind, detail) = if age > expiry.as_secs() {
                (
                    "expired_upload",
                    format!("started {age} s ago in {}", record.repo),
                )
            } else if !staged.contains_key(&id_text) {
                (
                    "upload_without_file",
                    format!("in {}: its bytes are gone", record.repo),
                )
            } else {
                continue;
            };
            found.push(Finding {
                kind,
                subject: id_text,
                detail,
                repair: Some(Repair::Upload(id)),
            });
        }
        for (name, age) in staged {
            let old = age.is_some_and(|age| age > ORPHAN_GRACE);
            let Some(id) = UploadId::parse(&name) else {
                continue;
            };
            if !sessions.contains(&name) && old {
                found.push(Finding {
                    kind: "orphan_upload_file",
                    subject: name,
                    detail: "upload bytes with no session".into(),
                    repair: Some(Repair::UploadFile(id)),
                });
            }
        }
        Ok(())
    }

    /// Applies one repair; false when its condition no longer holds.
    async fn repair(&self, repair: &Repair) -> Result<bool, Error> {
        let m = &self.meta;
        match repair {
            Repair::CorruptBlob(digest) => {
                self.blobs.remove(digest).await?;
                let links: Vec<_> = m.links.iter(b"").try_collect().await?;
                for (key, _) in links {
                    if split_key(&key).1 == digest.as_str() {
                        m.links.remove(&key).await?;
                    }
                }
                Ok(true)
            }
            Repair::Link(key) => m.links.remove(key).await,
            Repair::Tag { key, digest } => m.tags.compare_and_swap(key, Some(digest), None).await,
            Repair::TagList(meta_key) => {
                let (repo, digest) = split_key(meta_key);
                let Some(old) = m.manifest_meta.get(meta_key).await? else {
                    return Ok(false);
                };
                let mut record: ManifestMeta = crate::kv::decode(&old)?;
                let prefix = crate::kv::key(&[repo.as_bytes(), b""]);
                let tags: Vec<_> = m.tags.iter(&prefix).try_collect().await?;
                record.tags = tags
                    .into_iter()
                    .filter(|(_, d)| *d == digest.as_bytes())
                    .map(|(k, _)| split_key(&k).1)
                    .collect();
                let new = serde_json::to_vec(&record)?;
                m.manifest_meta
                    .compare_and_swap(meta_key, Some(&old), Some(&new))
                    .await
            }
            Repair::Upload(id) => {
                m.uploads.remove(id.as_str().as_bytes()).await?;
                self.blobs.discard(id).await?;
                Ok(true)
            }
            Repair::UploadFile(id) => {
                self.blobs.discard(id).await?;
                Ok(true)
            }
        }
    }
}
