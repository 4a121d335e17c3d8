//! Manifests, tags and referrers (end-3, end-7, end-8, end-9, end-12).
//!
//! Each change is one sled transaction over the manifest, tag and referrer
//! trees *and* the event log, followed by a flush before the caller answers:
//! the change and its events become durable together or not at all. A Helm
//! chart pushed as an OCI artifact also raises `chart_push`/`chart_delete`
//! (see [`super::charts`]).

use std::ops::Bound;

use bytes::Bytes;
use serde_json::Value;
use sled::transaction::{
    ConflictableTransactionError as Abortable, TransactionError, TransactionalTree,
};
use sled::Transactional;

use super::charts::append_chart_event;
use super::meta::{self, ManifestMeta, Quarantine};
use super::{gate, Store};
use crate::events::{self, Action, Event, Record, Request, Target};
use crate::manifest::Manifest;
use crate::types::{Digest, Reference, RepoName, Tag};
use crate::Error;

/// A manifest as stored.
#[derive(Debug)]
pub struct StoredManifest {
    /// Its digest.
    pub digest: Digest,
    /// The media type it was pushed with.
    pub media_type: String,
    /// The exact bytes pushed.
    pub bytes: Bytes,
}

/// A manifest about to be stored, checked and hashed.
#[derive(Debug)]
pub struct NewManifest {
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
    pub async fn put_manifest(&self, new: &NewManifest, request: &Request) -> Result<(), Error> {
        let NewManifest {
            repo,
            digest,
            bytes,
            manifest,
            tags,
        } = new;
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
        let trees = (
            &m.manifests,
            &m.manifest_meta,
            &m.tags,
            &m.referrers,
            &m.links,
            &m.repos,
            &m.events,
            &m.counters,
        );
        // Garbage collection must not sweep a blob this push just checked.
        let _not_sweeping = self.sweep.read().await;
        let result = gate::transaction(|| {
            trees.transaction(
                |(manifests, metas, tag_tree, referrers, links, repos, events, counters)| {
                    if !self.config.allow_missing_references {
                        let missing = missing_references(repo, manifest, links, metas)?;
                        if !missing.is_empty() {
                            return abort(Error::ManifestBlobUnknown(missing));
                        }
                    }
                    let stored = metas.get(&meta_key)?;
                    let first_store = stored.is_none();
                    let mut record = match stored {
                        Some(v) => decode(&v)?,
                        None => ManifestMeta {
                            size: bytes.len() as u64,
                            subject: manifest.subject.as_ref().map(Digest::to_string),
                            // With quarantine on, a new manifest is held until released.
                            quarantine: self.config.quarantine.then(Quarantine::default),
                            ..ManifestMeta::default()
                        },
                    };
                    let action = if record.quarantine.is_some() {
                        Action::Quarantine
                    } else {
                        Action::Push
                    };
                    // The same bytes re-pushed under another Content-Type are
                    // served as last pushed, as the push event says.
                    record.media_type = manifest.media_type.clone();
                    record.chart = chart.clone();
                    for tag in tags {
                        let tag_key = meta::key(repo, tag.as_str());
                        if let Some(old) = tag_tree.insert(tag_key, digest.as_str())? {
                            if *old != *digest.as_str().as_bytes() {
                                untag(metas, repo, &old, tag)?;
                            }
                        }
                        record.tags.insert(tag.to_string());
                    }
                    manifests.insert(meta_key.as_slice(), bytes.as_ref())?;
                    metas.insert(meta_key.as_slice(), encode(&record)?)?;
                    if let Some((key, descriptor)) = &referrer {
                        referrers.insert(key.as_slice(), descriptor.as_bytes())?;
                    }
                    repos.insert(repo.as_str(), &[])?;
                    append_pushes(events, counters, action, &target, &tag_names, request)?;
                    // One chart_push per chart stored, however many PUTs tag it.
                    if let (Some(chart), Action::Push, true) = (&record.chart, action, first_store)
                    {
                        append_chart_event(
                            events,
                            counters,
                            Action::ChartPush,
                            repo,
                            chart,
                            request,
                        )?;
                    }
                    Ok(())
                },
            )
        })
        .await;
        finish(result)?;
        self.meta.flush().await?;
        Ok(())
    }

    /// end-3: a manifest by tag or digest.
    pub fn manifest(
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
                    .get(meta::key(repo, t.as_str()))?
                    .ok_or(Error::ManifestUnknown)?;
                Digest::parse(&String::from_utf8_lossy(&v))
                    .ok_or_else(|| Error::internal("corrupt tag record"))?
            }
        };
        let (held, manifest) = self.load_manifest(repo, &digest)?;
        if held {
            // Held by quarantine: unknown to pulls until released.
            return Err(Error::ManifestUnknown);
        }
        Ok(manifest)
    }

    /// A stored manifest by digest, and whether quarantine holds it.
    pub(super) fn load_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<(bool, StoredManifest), Error> {
        let key = meta::key(repo, digest.as_str());
        let record = self
            .meta
            .manifest_meta
            .get(&key)?
            .ok_or(Error::ManifestUnknown)?;
        let record: ManifestMeta = meta::decode(&record)?;
        let bytes = self
            .meta
            .manifests
            .get(&key)?
            .ok_or(Error::ManifestUnknown)?;
        let manifest = StoredManifest {
            digest: digest.clone(),
            media_type: record.media_type,
            bytes: Bytes::copy_from_slice(&bytes),
        };
        Ok((record.quarantine.is_some(), manifest))
    }

    /// end-9 by digest: deletes a manifest with its tags and referrers entry,
    /// recording a `delete` event that remembers the tags it had.
    pub async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        request: &Request,
    ) -> Result<(), Error> {
        let key = meta::key(repo, digest.as_str());
        let m = &self.meta;
        let trees = (
            &m.manifests,
            &m.manifest_meta,
            &m.tags,
            &m.referrers,
            &m.events,
            &m.counters,
        );
        let result = gate::transaction(|| {
            trees.transaction(
                |(manifests, metas, tag_tree, referrers, events, counters)| {
                    let Some(v) = metas.remove(key.as_slice())? else {
                        return abort(Error::ManifestUnknown);
                    };
                    let record: ManifestMeta = decode(&v)?;
                    manifests.remove(key.as_slice())?;
                    for tag in &record.tags {
                        tag_tree.remove(meta::key(repo, tag))?;
                    }
                    if let Some(subject) = &record.subject {
                        referrers.remove(meta::referrer_key(repo, subject, digest.as_str()))?;
                    }
                    let target = Target {
                        media_type: record.media_type.clone(),
                        digest: digest.to_string(),
                        repository: repo.to_string(),
                        ..Target::default()
                    };
                    let event = Event::new(Action::Delete, target, request.clone());
                    events::append(
                        events,
                        counters,
                        &Record {
                            event,
                            tags: record.tags.iter().cloned().collect(),
                        },
                    )?;
                    if let Some(chart) = &record.chart {
                        let action = Action::ChartDelete;
                        append_chart_event(events, counters, action, repo, chart, request)?;
                    }
                    Ok(())
                },
            )
        })
        .await;
        finish(result)?;
        self.meta.flush().await?;
        Ok(())
    }

    /// end-9 by tag: removes only the tag; the manifest stays, and no event
    /// is raised (the contract's `delete` is for manifests).
    pub async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<(), Error> {
        let m = &self.meta;
        let result = gate::transaction(|| {
            (&m.tags, &m.manifest_meta).transaction(|(tag_tree, metas)| {
                let Some(digest) = tag_tree.remove(meta::key(repo, tag.as_str()))? else {
                    return abort(Error::ManifestUnknown);
                };
                untag(metas, repo, &digest, tag)
            })
        })
        .await;
        finish(result)?;
        self.meta.flush().await?;
        Ok(())
    }

    /// end-8: up to `n` tags of `repo` sorted lexically, after `last`.
    /// `None` when the repository is unknown.
    pub async fn tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        n: usize,
    ) -> Result<Option<Vec<String>>, Error> {
        if !self.repo_exists(repo)? {
            return Ok(None);
        }
        let prefix = meta::prefix(repo);
        let start = match last {
            Some(last) => Bound::Excluded(meta::key(repo, last)),
            None => Bound::Included(prefix.clone()),
        };
        let tree = self.meta.tags.clone();
        // With quarantine on, tags of held manifests are hidden too.
        let metas = self
            .config
            .quarantine
            .then(|| self.meta.manifest_meta.clone());
        let repo = repo.clone();
        let tags = blocking(move || {
            let mut tags = Vec::new();
            for item in tree.range((start, Bound::Unbounded)) {
                let (k, digest) = item?;
                let Some(tag) = k.strip_prefix(prefix.as_slice()) else {
                    break;
                };
                if let Some(metas) = &metas {
                    let key = meta::key(&repo, &String::from_utf8_lossy(&digest));
                    let held = metas
                        .get(key)?
                        .map(|v| meta::decode::<ManifestMeta>(&v))
                        .transpose()?;
                    if held.is_some_and(|m| m.quarantine.is_some()) {
                        continue;
                    }
                }
                tags.push(String::from_utf8_lossy(tag).into_owned());
                if tags.len() == n {
                    break;
                }
            }
            Ok(tags)
        })
        .await?;
        Ok(Some(tags))
    }

    /// `_catalog`: up to `n` repository names sorted lexically, after `last`.
    pub async fn repositories(&self, last: Option<&str>, n: usize) -> Result<Vec<String>, Error> {
        let start = last.map_or(Bound::Unbounded, |l| Bound::Excluded(l.as_bytes().to_vec()));
        let tree = self.meta.repos.clone();
        blocking(move || {
            tree.range::<Vec<u8>, _>((start, Bound::Unbounded))
                .take(n)
                .map(|item| Ok(String::from_utf8_lossy(&item?.0).into_owned()))
                .collect()
        })
        .await
    }

    /// end-12: descriptors of the manifests in `repo` whose subject is `subject`.
    pub async fn referrers(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<Value>, Error> {
        let mut prefix = meta::key(repo, subject.as_str());
        prefix.push(0);
        let tree = self.meta.referrers.clone();
        blocking(move || {
            tree.scan_prefix(prefix)
                .map(|item| meta::decode(&item?.1))
                .collect()
        })
        .await
    }
}

/// Appends one `action` event per tag of the manifest `target` describes,
/// or one without a tag when it has none.
pub(super) fn append_pushes(
    log: &TransactionalTree,
    counters: &TransactionalTree,
    action: Action,
    target: &Target,
    tags: &[&str],
    request: &Request,
) -> Result<(), Abortable<Error>> {
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
        let event = Event::new(action, target, request.clone());
        events::append(log, counters, &event.into())?;
    }
    Ok(())
}

/// References of `manifest` that `repo` lacks: blobs not linked, child
/// manifests not stored.
fn missing_references(
    repo: &RepoName,
    manifest: &Manifest,
    links: &TransactionalTree,
    metas: &TransactionalTree,
) -> Result<Vec<String>, Abortable<Error>> {
    let mut missing = Vec::new();
    for d in &manifest.blobs {
        if links.get(meta::key(repo, d.as_str()))?.is_none() {
            missing.push(d.to_string());
        }
    }
    for d in &manifest.children {
        if metas.get(meta::key(repo, d.as_str()))?.is_none() {
            missing.push(d.to_string());
        }
    }
    Ok(missing)
}

/// Drops `tag` from the tag set of the manifest `digest`.
fn untag(
    metas: &TransactionalTree,
    repo: &RepoName,
    digest: &[u8],
    tag: &Tag,
) -> Result<(), Abortable<Error>> {
    let key = meta::key(repo, &String::from_utf8_lossy(digest));
    if let Some(v) = metas.get(&key)? {
        let mut record: ManifestMeta = decode(&v)?;
        record.tags.remove(tag.as_str());
        metas.insert(key, encode(&record)?)?;
    }
    Ok(())
}

pub(super) fn decode(bytes: &[u8]) -> Result<ManifestMeta, Abortable<Error>> {
    meta::decode(bytes).map_err(Abortable::Abort)
}

pub(super) fn encode(record: &ManifestMeta) -> Result<Vec<u8>, Abortable<Error>> {
    serde_json::to_vec(record).map_err(|e| Abortable::Abort(e.into()))
}

pub(super) fn abort<T>(e: Error) -> Result<T, Abortable<Error>> {
    Err(Abortable::Abort(e))
}

pub(super) fn finish<T>(result: Result<T, TransactionError<Error>>) -> Result<T, Error> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    })
}

/// Runs a sled scan off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Error::internal)?
}
