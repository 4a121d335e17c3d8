//! Retention: removes the tags and the untagged manifests the rules say go
//! (see [`crate::policy`]), while the registry keeps serving.
//!
//! 1. **Plan** (no lock): every manifest record is read once, repository by
//!    repository. For a repository a rule matches, a tag is kept when the
//!    rule keeps it by name (`keep_tags`), by rank (`keep_most_recent`) or
//!    by age (`max_age`), or when it is immutable, or pushed after the run
//!    began; the others are removed. A manifest left without tags goes once
//!    it has been untagged for `untagged_max_age`, unless a kept index
//!    lists it or it is a referrer of a kept manifest.
//! 2. **Apply**, a batch of removals per transaction, each re-checked: a
//!    tag that moved or was pushed again since the plan stays, and so does
//!    a manifest pushed or tagged since. A removed manifest raises `delete`
//!    as a client's DELETE does; a removed tag raises nothing, as a client's
//!    tag delete does. Blobs are left to `gc`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures_util::TryStreamExt;
use serde::Serialize;

use super::meta::{self, split_key, ManifestMeta};
use super::Store;
use crate::events::Request;
use crate::policy::Retention;
use crate::types::{Digest, RepoName, Tag};
use crate::Error;

/// Removals per transaction.
const BATCH: usize = 256;

/// What a run did (or, in a dry run, would do).
#[derive(Debug, Default, Serialize)]
pub struct RetentionReport {
    /// Nothing was removed.
    pub dry_run: bool,
    /// Repositories a rule matched.
    pub repositories: usize,
    /// Tags removed (`repo:tag`).
    pub tags_removed: Vec<String>,
    /// Manifests removed (`repo@digest`).
    pub manifests_removed: Vec<String>,
    /// Planned removals skipped because a client changed them meanwhile.
    pub skipped: usize,
}

/// What goes of one manifest, as planned: some of its tags and, once it
/// has none, perhaps itself.
struct Removal {
    repo: RepoName,
    digest: Digest,
    /// Tags to remove, with when the plan saw them pushed.
    tags: Vec<(Tag, Option<u64>)>,
    /// Whether the manifest goes too.
    delete: bool,
    /// Its `updated_ms` as the plan saw it.
    updated_ms: u64,
}

/// One manifest's record, as the plan sees it.
struct Entry {
    digest: String,
    record: ManifestMeta,
}

impl Store {
    /// Applies the retention rules; with `dry_run`, only reports.
    /// `request` is what the `delete` events say made them.
    pub(crate) async fn retention(
        &self,
        dry_run: bool,
        request: &Request,
    ) -> Result<RetentionReport, Error> {
        let _alone = self
            .meta
            .db
            .try_lease("retention")
            .await?
            .ok_or(Error::TooManyRequests("a retention run is running"))?;
        let started = meta::now_ms();
        let mut report = RetentionReport {
            dry_run,
            ..RetentionReport::default()
        };
        if !self.policies.has_retention() {
            return Ok(report);
        }
        let plan = self.plan(started, &mut report).await?;
        if dry_run {
            for r in &plan {
                report
                    .tags_removed
                    .extend(r.tags.iter().map(|(t, _)| format!("{}:{t}", r.repo)));
                if r.delete {
                    report
                        .manifests_removed
                        .push(format!("{}@{}", r.repo, r.digest));
                }
            }
            return Ok(report);
        }
        self.space.admit_cleanup()?;
        for batch in plan.chunks(BATCH) {
            self.apply(batch, request, &mut report).await?;
        }
        Ok(report)
    }

    /// Reads every manifest record once and plans what goes.
    async fn plan(
        &self,
        started: u64,
        report: &mut RetentionReport,
    ) -> Result<Vec<Removal>, Error> {
        let mut plan = Vec::new();
        let mut repo: Option<String> = None;
        let mut entries = Vec::new();
        let mut records = std::pin::pin!(self.meta.manifest_meta.iter(b""));
        loop {
            let next = records.try_next().await?;
            let (name, entry) = match &next {
                Some((key, value)) => {
                    let (name, digest) = split_key(key);
                    let record: ManifestMeta = serde_json::from_slice(value)?;
                    (Some(name), Some(Entry { digest, record }))
                }
                None => (None, None),
            };
            if name != repo {
                if let Some(done) = repo.take() {
                    if let Some(rule) = self.policies.retention(&done) {
                        report.repositories += 1;
                        let entries = std::mem::take(&mut entries);
                        self.plan_repository(&done, &rule, entries, started, &mut plan)
                            .await?;
                    }
                }
                entries.clear();
                repo = name;
            }
            match entry {
                Some(entry) => entries.push(entry),
                None => break,
            }
        }
        Ok(plan)
    }

    /// Plans one repository's removals under `rule`.
    async fn plan_repository(
        &self,
        name: &str,
        rule: &Retention,
        entries: Vec<Entry>,
        started: u64,
        plan: &mut Vec<Removal>,
    ) -> Result<(), Error> {
        let Some(repo) = RepoName::parse(name) else {
            return Ok(());
        };
        let r = &rule.rule;
        let age = |ms: u64| Duration::from_millis(started.saturating_sub(ms));
        // Tags, newest first; one of unknown age counts as pushed now.
        let mut tagged: Vec<(&str, &Entry, Option<u64>)> = entries
            .iter()
            .flat_map(|e| {
                e.record
                    .tags
                    .iter()
                    .map(move |t| (t.as_str(), e, e.record.tagged_ms.get(t).copied()))
            })
            .collect();
        tagged.sort_by_key(|(_, _, ms)| std::cmp::Reverse(ms.unwrap_or(started)));
        let mut removed: HashMap<&str, Vec<(Tag, Option<u64>)>> = HashMap::new();
        let limited = r.keep_most_recent.is_some() || r.max_age.is_some();
        let mut rank = 0;
        for (tag, entry, ms) in &tagged {
            let pushed = ms.unwrap_or(started);
            // Kept whatever its rank: by name, by rule, or pushed since
            // the run began. `keep_most_recent` counts the others.
            let kept_anyway = !limited
                || rule.keeps_by_name(tag)
                || self.policies.immutable(name, tag).is_some()
                || pushed >= started;
            if kept_anyway {
                continue;
            }
            rank += 1;
            let keep = r.keep_most_recent.is_some_and(|n| rank <= n)
                || r.max_age.is_some_and(|max| age(pushed) < max);
            if let (false, Some(tag)) = (keep, Tag::parse(tag)) {
                removed
                    .entry(entry.digest.as_str())
                    .or_default()
                    .push((tag, *ms));
            }
        }
        let going = match r.untagged_max_age {
            Some(max) => {
                self.untagged(&repo, &entries, &removed, started, max)
                    .await?
            }
            None => HashSet::new(),
        };
        for e in &entries {
            let tags = removed.remove(e.digest.as_str()).unwrap_or_default();
            let delete = going.contains(e.digest.as_str());
            let Some(digest) = Digest::parse(&e.digest) else {
                continue;
            };
            if delete || !tags.is_empty() {
                plan.push(Removal {
                    repo: repo.clone(),
                    digest,
                    tags,
                    delete,
                    updated_ms: e.record.updated_ms,
                });
            }
        }
        Ok(())
    }

    /// The manifests of `entries` to remove: untagged (now, or once the
    /// `removed` tags are gone) for `max`, and needed by no kept manifest.
    async fn untagged<'e>(
        &self,
        repo: &RepoName,
        entries: &'e [Entry],
        removed: &HashMap<&str, Vec<(Tag, Option<u64>)>>,
        started: u64,
        max: Duration,
    ) -> Result<HashSet<&'e str>, Error> {
        let age = |ms: u64| Duration::from_millis(started.saturating_sub(ms));
        // Untagged (now, or once this run's removals land) for long enough;
        // one of unknown age counts as untagged now.
        let mut going: HashSet<&str> = entries
            .iter()
            .filter(|e| {
                let losing = removed.get(e.digest.as_str()).map_or(0, Vec::len);
                let since = if losing > 0 || e.record.updated_ms == 0 {
                    started
                } else {
                    e.record.updated_ms
                };
                e.record.tags.len() == losing && e.record.quarantine.is_none() && age(since) >= max
            })
            .map(|e| e.digest.as_str())
            .collect();
        // What a kept manifest needs stays: an index's children, and the
        // referrers of a kept manifest, until nothing changes.
        let children = self.children(repo, entries).await?;
        loop {
            let kept = |d: &str| !going.contains(d);
            let saved: Vec<&str> = entries
                .iter()
                .filter(|e| going.contains(e.digest.as_str()))
                .filter(|e| {
                    let listed = children
                        .iter()
                        .any(|(index, kids)| kept(index) && kids.contains(&e.digest));
                    let referrer_of_kept = e.record.subject.as_deref().is_some_and(kept);
                    listed || referrer_of_kept
                })
                .map(|e| e.digest.as_str())
                .collect();
            if saved.is_empty() {
                break;
            }
            for d in saved {
                going.remove(d);
            }
        }
        Ok(going)
    }

    /// The manifests each index of `entries` lists.
    async fn children(
        &self,
        repo: &RepoName,
        entries: &[Entry],
    ) -> Result<BTreeMap<String, Vec<String>>, Error> {
        let mut children = BTreeMap::new();
        for e in entries.iter().filter(|e| {
            e.record.media_type.contains("index") || e.record.media_type.contains("list")
        }) {
            let bytes = self.meta.manifests.get(&meta::key(repo, &e.digest)).await?;
            let kids = bytes
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v["manifests"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|m| m["digest"].as_str().map(str::to_owned))
                .collect();
            children.insert(e.digest.clone(), kids);
        }
        Ok(children)
    }

    /// Applies a batch of the plan in one transaction. A tag goes only if
    /// it still points where the plan saw it, pushed then; a manifest only
    /// if it then has no tags and nothing else pushed or tagged it since.
    async fn apply(
        &self,
        batch: &[Removal],
        request: &Request,
        report: &mut RetentionReport,
    ) -> Result<(), Error> {
        let m = &self.meta;
        let (tags, manifests, skipped) =
            m.db.transaction(|tx| {
                Box::pin(async move {
                    let (mut tags, mut manifests, mut skipped) = (Vec::new(), Vec::new(), 0);
                    for r in batch {
                        let key = meta::key(&r.repo, r.digest.as_str());
                        let Some(record) =
                            tx.get_json::<ManifestMeta>(&m.manifest_meta, &key).await?
                        else {
                            skipped += r.tags.len() + usize::from(r.delete);
                            continue;
                        };
                        let mut untagged_here = false;
                        for (tag, pushed) in &r.tags {
                            let tag_key = meta::key(&r.repo, tag.as_str());
                            let points = tx.get(&m.tags, &tag_key).await?;
                            let unchanged = points.as_deref() == Some(r.digest.as_str().as_bytes())
                                && record.tagged_ms.get(tag.as_str()).copied() == *pushed;
                            if !unchanged {
                                skipped += 1;
                                continue;
                            }
                            tx.remove(&m.tags, &tag_key);
                            self.untag(tx, &r.repo, r.digest.as_str().as_bytes(), tag)
                                .await?;
                            tags.push(format!("{}:{tag}", r.repo));
                            untagged_here = true;
                        }
                        if !r.delete {
                            continue;
                        }
                        // Read again: the untagging above changed it.
                        let now: Option<ManifestMeta> = tx.get_json(&m.manifest_meta, &key).await?;
                        let untouched = untagged_here || record.updated_ms == r.updated_ms;
                        match now {
                            Some(now) if now.tags.is_empty() && untouched => {
                                self.remove_manifest(tx, &r.repo, &r.digest, &now, request)?;
                                manifests.push(format!("{}@{}", r.repo, r.digest));
                            }
                            _ => skipped += 1,
                        }
                    }
                    Ok::<_, Error>((tags, manifests, skipped))
                })
            })
            .await?;
        report.tags_removed.extend(tags);
        report.manifests_removed.extend(manifests);
        report.skipped += skipped;
        Ok(())
    }
}
