//! What a person browsing the registry reads (the web console's read APIs):
//! repositories with search and paging, a repository's tags with what they
//! point at, and one manifest's parts. Reads only; a page costs a bounded
//! number of lookups however large the registry.

use std::ops::Bound;

use serde_json::{json, Value};

use super::meta::{self, ManifestMeta};
use super::Store;
use crate::kv::bound_ref;
use crate::manifest::is_index;
use crate::types::{Digest, RepoName};
use crate::Error;

/// Repositories scanned at most per page while searching, so a search that
/// matches little still answers quickly; the page then says where it
/// stopped (`next`).
const SCAN_LIMIT: usize = 20_000;

/// A page of a listing: its items and where the next page starts.
pub(crate) struct Page {
    /// The items.
    pub items: Vec<Value>,
    /// The `last` to ask for the next page with, if there is more.
    pub next: Option<String>,
}

impl Store {
    /// Up to `n` repositories after `last` whose names contain `search`,
    /// each with its number of tags.
    pub(crate) async fn browse_repositories(
        &self,
        search: &str,
        last: Option<&str>,
        n: usize,
    ) -> Result<Page, Error> {
        let mut start = last.map_or(Bound::Unbounded, |l| Bound::Excluded(l.as_bytes().to_vec()));
        let mut items = Vec::new();
        let mut scanned = 0;
        let mut next = None;
        loop {
            let page = self
                .meta
                .repos
                .range(bound_ref(&start), Bound::Unbounded, 512)
                .await?;
            let Some((last_key, _)) = page.last() else {
                break;
            };
            start = Bound::Excluded(last_key.clone());
            let full = page.len() == 512;
            for (key, _) in page {
                scanned += 1;
                let name = String::from_utf8_lossy(&key).into_owned();
                if !name.contains(search) {
                    if scanned >= SCAN_LIMIT {
                        next = Some(name);
                        break;
                    }
                    continue;
                }
                let Some(repo) = RepoName::parse(&name) else {
                    continue;
                };
                let tags = self.meta.tags.count(&meta::prefix(&repo)).await?;
                items.push(json!({"name": name, "tags": tags}));
                if items.len() == n {
                    next = Some(name);
                    break;
                }
            }
            if next.is_some() || !full {
                break;
            }
        }
        Ok(Page { items, next })
    }

    /// Up to `n` tags of `repo` after `last`, each with its manifest's
    /// digest, media type, size, when it was pushed, and the platforms of
    /// an index. `None` when the repository is unknown.
    pub(crate) async fn browse_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        n: usize,
    ) -> Result<Option<Page>, Error> {
        if !self.repo_exists(repo).await? {
            return Ok(None);
        }
        let start = match last {
            Some(last) => Bound::Excluded(meta::key(repo, last)),
            None => Bound::Included(meta::prefix(repo)),
        };
        let end = crate::kv::key(&[repo.as_str().as_bytes(), &[0xff]]);
        let page = self
            .meta
            .tags
            .range(bound_ref(&start), Bound::Excluded(&end), n)
            .await?;
        let full = page.len() == n;
        let prefix_len = meta::prefix(repo).len();
        let mut items = Vec::new();
        for (key, digest) in &page {
            let tag = String::from_utf8_lossy(&key[prefix_len..]).into_owned();
            let digest = String::from_utf8_lossy(digest).into_owned();
            let record = self.manifest_record(repo, &digest).await?;
            let platforms = match &record {
                Some(r) if is_index(&r.media_type) => self.platforms(repo, &digest).await?,
                _ => Vec::new(),
            };
            items.push(json!({
                "tag": tag,
                "digest": digest,
                "mediaType": record.as_ref().map(|r| r.media_type.clone()),
                "size": record.as_ref().map(|r| r.size),
                "pushed": record.as_ref().and_then(|r| r.tagged_ms.get(&tag).copied()).map(rfc3339),
                "quarantined": record.as_ref().is_some_and(|r| r.quarantine.is_some()),
                "platforms": platforms,
            }));
        }
        let next = full
            .then(|| {
                items
                    .last()
                    .and_then(|i| i["tag"].as_str().map(str::to_owned))
            })
            .flatten();
        Ok(Some(Page { items, next }))
    }

    /// A manifest's parts: config, layers (or an index's manifests, with
    /// their platforms), subject, annotations, its tags and its referrers.
    pub(crate) async fn browse_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Value, Error> {
        let record = self
            .manifest_record(repo, digest.as_str())
            .await?
            .ok_or(Error::ManifestUnknown)?;
        let bytes = self
            .meta
            .manifests
            .get(&meta::key(repo, digest.as_str()))
            .await?
            .ok_or(Error::ManifestUnknown)?;
        let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let referrers = self.referrers(repo, digest).await?;
        Ok(json!({
            "repository": repo.as_str(),
            "digest": digest.as_str(),
            "mediaType": record.media_type,
            "size": record.size,
            "tags": record.tags,
            "updated": (record.updated_ms > 0).then(|| rfc3339(record.updated_ms)),
            "quarantine": record.quarantine.as_ref().map(|q| json!({"failed": q.failed, "details": q.details})),
            "artifactType": parsed.get("artifactType"),
            "config": parsed.get("config"),
            "layers": parsed.get("layers"),
            "manifests": parsed.get("manifests"),
            "subject": parsed.get("subject"),
            "annotations": parsed.get("annotations"),
            "referrers": referrers,
        }))
    }

    async fn manifest_record(
        &self,
        repo: &RepoName,
        digest: &str,
    ) -> Result<Option<ManifestMeta>, Error> {
        self.meta
            .manifest_meta
            .get_json(&meta::key(repo, digest))
            .await
    }

    /// `os/architecture[/variant]` of each manifest an index lists.
    async fn platforms(&self, repo: &RepoName, digest: &str) -> Result<Vec<String>, Error> {
        let bytes = self.meta.manifests.get(&meta::key(repo, digest)).await?;
        let index: Value = bytes
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        Ok(index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let p = m.get("platform")?;
                let mut s = format!("{}/{}", p["os"].as_str()?, p["architecture"].as_str()?);
                if let Some(v) = p["variant"].as_str() {
                    s.push('/');
                    s.push_str(v);
                }
                Some(s)
            })
            .collect())
    }
}

/// Unix milliseconds as RFC 3339 (UTC, seconds).
fn rfc3339(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(at).to_string()
}
