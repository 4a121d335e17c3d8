//! Manifests, tags and referrers (end-3, end-7, end-8, end-9, end-12).
//!
//! Each change is one transaction over the manifest, tag and referrer trees
//! *and* the event log: the change and its events become durable together
//! or not at all, before the caller answers. A Helm chart pushed as an OCI
//! artifact also raises `chart_push`/`chart_delete` (see [`super::charts`]).

use std::ops::Bound;

use bytes::Bytes;
use serde_json::Value;

use super::charts::chart_event;
use super::meta::{self, ManifestMeta, Quarantine};
use super::Store;
use crate::events::{Action, Event, Record, Request, Target};
use crate::kv::Tx;
use crate::manifest::Manifest;
use crate::types::{Digest, Reference, RepoName, Tag};
use crate::Error;

/// A manifest as stored.
#[derive(Debug)]
pub(crate) struct StoredManifest {
    /// Its digest.
    pub digest: Digest,
    /// The media type it was pushed with.
    pub media_type: String,
    /// The exact bytes pushed.
    pub bytes: Bytes,
}

/// A manifest about to be stored, checked and hashed.
#[derive(Debug)]
pub(crate) struct NewManifest {
    /// Where it goes.
    pub repo: RepoName,
    /// Its digest, verified against the bytes.
    pub digest: Digest,
    /// The exact bytes pushed.
    pub bytes: Bytes,
    /// What it references.
    pub manifest: Manifest,
    /// The tags to point at it (from the URL and `?tag=`).
    pub tags: Vec<Tag>,
}

impl Store {
    /// end-7: stores a manifest and its tags, records a `push` event per tag
    /// (one without a tag when pushed by digest alone), and indexes it as a
    /// referrer of its subject.
    pub(crate) async fn put_manifest(
        &self,
        new: &NewManifest,
        request: &Request,
    ) -> Result<(), Error> {
        let NewManifest {
            repo,
            digest,
            bytes,
            manifest,
            tags,
        } = new;
        self.space.admit(bytes.len() as u64)?;
        let meta_key = meta::key(repo, digest.as_str());
        let chart = self.oci_chart(repo, bytes).await?;
        let target = Target::manifest(&manifest.media_type, bytes.len() as u64, digest, repo);
        let tag_names: Vec<&str> = tags.iter().map(Tag::as_str).collect();
        let referrer = manifest.subject.as_ref().map(|s| {
            let descriptor = manifest.referrer_descriptor(digest, bytes.len());
            (
                meta::referrer_key(repo, s.as_str(), digest.as_str()),
                descriptor.to_string(),
            )
        });
        let m = &self.meta;
        // Garbage collection must not sweep a blob this push just checked.
        let _not_sweeping = self.sweep.read().await;
        m.db.transaction(|tx| {
            let (meta_key, chart, target, tag_names, referrer) =
                (&meta_key, &chart, &target, &tag_names, &referrer);
            Box::pin(async move {
                // Across replicas, the sweep waits for this push (or it for
                // the sweep); in this process `_not_sweeping` did.
                tx.shared_lock(super::gc::SWEEP).await?;
                if !self.config.allow_missing_references {
                    let missing = self.missing_references(tx, repo, manifest).await?;
                    if !missing.is_empty() {
                        return Err(Error::ManifestBlobUnknown(missing));
                    }
                }
                let stored: Option<ManifestMeta> = tx.get_json(&m.manifest_meta, meta_key).await?;
                let first_store = stored.is_none();
                let mut record = stored.unwrap_or_else(|| ManifestMeta {
                    size: bytes.len() as u64,
                    subject: manifest.subject.as_ref().map(Digest::to_string),
                    // With quarantine on, a new manifest is held until released.
                    quarantine: self.config.quarantine.then(Quarantine::default),
                    ..ManifestMeta::default()
                });
                let action = if record.quarantine.is_some() {
                    Action::Quarantine
                } else {
                    Action::Push
                };
                // The same bytes re-pushed under another Content-Type are
                // served as last pushed, as the push event says.
                record.media_type = manifest.media_type.clone();
                record.chart = chart.clone();
                let now = meta::now_ms();
                for tag in tags {
                    let tag_key = meta::key(repo, tag.as_str());
                    let old = tx.get(&m.tags, &tag_key).await?;
                    if let Some(old) = old.filter(|old| *old != digest.as_str().as_bytes()) {
                        if let Some(rule) = self.policies.immutable(repo.as_str(), tag.as_str()) {
                            return Err(Error::Refused(format!(
                                "tag {tag} of {repo} is immutable (rule: {rule}): it points at {}; push it under a new tag",
                                String::from_utf8_lossy(&old)
                            )));
                        }
                        self.untag(tx, repo, &old, tag).await?;
                    }
                    tx.insert(&m.tags, &tag_key, digest.as_str());
                    record.tags.insert(tag.to_string());
                    record.tagged_ms.insert(tag.to_string(), now);
                }
                record.updated_ms = now;
                tx.insert(&m.manifests, meta_key, bytes.to_vec());
                tx.insert_json(&m.manifest_meta, meta_key, &record)?;
                if let Some((key, descriptor)) = referrer {
                    tx.insert(&m.referrers, key, descriptor.as_bytes());
                }
                // Written once: concurrent pushes to one repository would
                // otherwise all update its row, and all but one conflict.
                let repo_key = repo.as_str().as_bytes();
                if tx.get(&m.repos, repo_key).await?.is_none() {
                    tx.insert(&m.repos, repo_key, Vec::new());
                }
                append_pushes(tx, action, target, tag_names, request)?;
                // One chart_push per chart stored, however many PUTs tag it.
                if let (Some(chart), Action::Push, true) = (&record.chart, action, first_store) {
                    tx.append_event(chart_event(Action::ChartPush, repo, chart, request))?;
                }
                Ok(())
            })
        })
        .await
    }

    /// end-3: a manifest by tag or digest.
    pub(crate) async fn manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<StoredManifest, Error> {
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => {
                let v = self
                    .meta
                    .tags
                    .get(&meta::key(repo, t.as_str()))
                    .await?
                    .ok_or(Error::ManifestUnknown)?;
                Digest::parse(&String::from_utf8_lossy(&v))
                    .ok_or_else(|| Error::internal("corrupt tag record"))?
            }
        };
        let (held, manifest) = self.load_manifest(repo, &digest).await?;
        if held {
            // Held by quarantine: unknown to pulls until released.
            return Err(Error::ManifestUnknown);
        }
        Ok(manifest)
    }

    /// A stored manifest by digest, and whether quarantine holds it.
    pub(super) async fn load_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<(bool, StoredManifest), Error> {
        let key = meta::key(repo, digest.as_str());
        let record: ManifestMeta = self
            .meta
            .manifest_meta
            .get_json(&key)
            .await?
            .ok_or(Error::ManifestUnknown)?;
        let bytes = self
            .meta
            .manifests
            .get(&key)
            .await?
            .ok_or(Error::ManifestUnknown)?;
        let manifest = StoredManifest {
            digest: digest.clone(),
            media_type: record.media_type,
            bytes: Bytes::from(bytes),
        };
        Ok((record.quarantine.is_some(), manifest))
    }

    /// end-9 by digest: deletes a manifest with its tags and referrers entry,
    /// recording a `delete` event that remembers the tags it had.
    pub(crate) async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        request: &Request,
    ) -> Result<(), Error> {
        self.space.admit_cleanup()?;
        let key = meta::key(repo, digest.as_str());
        let m = &self.meta;
        m.db.transaction(|tx| {
            let key = &key;
            Box::pin(async move {
                let record: ManifestMeta = tx
                    .get_json(&m.manifest_meta, key)
                    .await?
                    .ok_or(Error::ManifestUnknown)?;
                if let Some((tag, rule)) = record.tags.iter().find_map(|t| {
                    self.policies.immutable(repo.as_str(), t).map(|r| (t, r))
                }) {
                    return Err(Error::Refused(format!(
                        "{repo}@{digest} has the immutable tag {tag} (rule: {rule}); it cannot be deleted"
                    )));
                }
                self.remove_manifest(tx, repo, digest, &record, request)
            })
        })
        .await
    }

    /// Removes a manifest whose `record` was read in `tx`: its tags and
    /// referrer entry go with it, and a `delete` event (with the tags it
    /// had, and a `chart_delete` for a chart) is appended.
    pub(super) fn remove_manifest(
        &self,
        tx: &Tx<'_>,
        repo: &RepoName,
        digest: &Digest,
        record: &ManifestMeta,
        request: &Request,
    ) -> Result<(), Error> {
        let m = &self.meta;
        let key = meta::key(repo, digest.as_str());
        tx.remove(&m.manifest_meta, &key);
        tx.remove(&m.manifests, &key);
        for tag in &record.tags {
            tx.remove(&m.tags, &meta::key(repo, tag));
        }
        if let Some(subject) = &record.subject {
            tx.remove(
                &m.referrers,
                &meta::referrer_key(repo, subject, digest.as_str()),
            );
        }
        let target = Target {
            media_type: record.media_type.clone(),
            digest: digest.to_string(),
            repository: repo.to_string(),
            ..Target::default()
        };
        tx.append_event(Record {
            tags: record.tags.iter().cloned().collect(),
            ..Record::from(Event::new(Action::Delete, target, request.clone()))
        })?;
        if let Some(chart) = &record.chart {
            tx.append_event(chart_event(Action::ChartDelete, repo, chart, request))?;
        }
        Ok(())
    }

    /// end-9 by tag: removes only the tag; the manifest stays, and no event
    /// is raised (the contract's `delete` is for manifests).
    pub(crate) async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<(), Error> {
        self.space.admit_cleanup()?;
        let m = &self.meta;
        let key = meta::key(repo, tag.as_str());
        if let Some(rule) = self.policies.immutable(repo.as_str(), tag.as_str()) {
            return Err(Error::Refused(format!(
                "tag {tag} of {repo} is immutable (rule: {rule}); it cannot be deleted"
            )));
        }
        m.db.transaction(|tx| {
            let key = &key;
            Box::pin(async move {
                let digest = tx.get(&m.tags, key).await?.ok_or(Error::ManifestUnknown)?;
                tx.remove(&m.tags, key);
                self.untag(tx, repo, &digest, tag).await
            })
        })
        .await
    }

    /// end-8: up to `n` tags of `repo` sorted lexically, after `last`.
    /// `None` when the repository is unknown.
    pub(crate) async fn tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        n: usize,
    ) -> Result<Option<Vec<String>>, Error> {
        if !self.repo_exists(repo).await? {
            return Ok(None);
        }
        let prefix = meta::prefix(repo);
        let mut start = match last {
            Some(last) => Bound::Excluded(meta::key(repo, last)),
            None => Bound::Included(prefix.clone()),
        };
        let end = crate::kv::key(&[repo.as_str().as_bytes(), &[0xff]]);
        let mut tags = Vec::new();
        // With quarantine on, tags of held manifests are hidden too, so a
        // page may need more than one read.
        while tags.len() < n {
            let want = n - tags.len();
            let page = self
                .meta
                .tags
                .range(bound_ref(&start), Bound::Excluded(&end), want)
                .await?;
            let Some((last_key, _)) = page.last() else {
                break;
            };
            start = Bound::Excluded(last_key.clone());
            let full = page.len() == want;
            for (k, digest) in page {
                if self.config.quarantine && self.held(repo, &digest).await? {
                    continue;
                }
                tags.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
            }
            if !full {
                break;
            }
        }
        Ok(Some(tags))
    }

    /// Whether quarantine holds the manifest `digest` of `repo`.
    async fn held(&self, repo: &RepoName, digest: &[u8]) -> Result<bool, Error> {
        let key = meta::key(repo, &String::from_utf8_lossy(digest));
        let record: Option<ManifestMeta> = self.meta.manifest_meta.get_json(&key).await?;
        Ok(record.is_some_and(|m| m.quarantine.is_some()))
    }

    /// `_catalog`: up to `n` repository names sorted lexically, after `last`.
    pub(crate) async fn repositories(
        &self,
        last: Option<&str>,
        n: usize,
    ) -> Result<Vec<String>, Error> {
        let start = last.map_or(Bound::Unbounded, |l| Bound::Excluded(l.as_bytes()));
        let page = self.meta.repos.range(start, Bound::Unbounded, n).await?;
        Ok(page
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
            .collect())
    }

    /// end-12: descriptors of the manifests in `repo` whose subject is `subject`.
    pub(crate) async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
    ) -> Result<Vec<Value>, Error> {
        use futures_util::TryStreamExt;
        let mut prefix = meta::key(repo, subject.as_str());
        prefix.push(0);
        self.meta
            .referrers
            .iter(&prefix)
            .and_then(|(_, v)| async move { crate::kv::decode(&v) })
            .try_collect()
            .await
    }

    /// References of `manifest` that `repo` lacks: blobs not linked, child
    /// manifests not stored.
    async fn missing_references(
        &self,
        tx: &Tx<'_>,
        repo: &RepoName,
        manifest: &Manifest,
    ) -> Result<Vec<String>, Error> {
        let mut missing = Vec::new();
        for d in &manifest.blobs {
            if tx
                .get(&self.meta.links, &meta::key(repo, d.as_str()))
                .await?
                .is_none()
            {
                missing.push(d.to_string());
            }
        }
        for d in &manifest.children {
            let key = meta::key(repo, d.as_str());
            if tx.get(&self.meta.manifest_meta, &key).await?.is_none() {
                missing.push(d.to_string());
            }
        }
        Ok(missing)
    }

    /// Drops `tag` from the tag set of the manifest `digest`.
    pub(super) async fn untag(
        &self,
        tx: &Tx<'_>,
        repo: &RepoName,
        digest: &[u8],
        tag: &Tag,
    ) -> Result<(), Error> {
        let key = meta::key(repo, &String::from_utf8_lossy(digest));
        let metas = &self.meta.manifest_meta;
        if let Some(mut record) = tx.get_json::<ManifestMeta>(metas, &key).await? {
            record.tags.remove(tag.as_str());
            record.tagged_ms.remove(tag.as_str());
            record.updated_ms = meta::now_ms();
            tx.insert_json(metas, &key, &record)?;
        }
        Ok(())
    }
}

/// Appends one `action` event per tag of the manifest `target` describes,
/// or one without a tag when it has none.
pub(super) fn append_pushes(
    tx: &Tx<'_>,
    action: Action,
    target: &Target,
    tags: &[&str],
    request: &Request,
) -> Result<(), Error> {
    let tags: Vec<Option<&str>> = if tags.is_empty() {
        vec![None]
    } else {
        tags.iter().copied().map(Some).collect()
    };
    for tag in tags {
        let target = Target {
            tag: tag.map(str::to_owned),
            ..target.clone()
        };
        tx.append_event(Event::new(action, target, request.clone()))?;
    }
    Ok(())
}

/// A borrowed bound.
fn bound_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}
