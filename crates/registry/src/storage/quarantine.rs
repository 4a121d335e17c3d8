//! Quarantine: manifests held after push until a scanner's verdict.
//!
//! With quarantine on, a new manifest is stored with a [`Quarantine`] mark:
//! pulls do not see it and its push raises `quarantine` instead of `push`.
//! `Passed` clears the mark and raises the `push` events then (and the
//! `chart_push` of a Helm chart); `Failed`
//! keeps it hidden. The scanner reads held manifests through
//! [`Store::held_manifests`] and [`Store::held_manifest`].

use serde_json::{json, Value};
use sled::Transactional;

use super::charts::append_chart_event;
use super::manifests::{abort, append_pushes, decode, encode, finish, StoredManifest};
use super::meta::{self, ManifestMeta, Quarantine};
use super::{gate, Store};
use crate::events::{Action, Request, Target};
use crate::types::{Digest, RepoName};
use crate::Error;

/// A scanner's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Release it: it becomes pullable and `push` fires.
    Passed,
    /// Keep it hidden.
    Failed,
}

impl Store {
    /// Every held manifest: repository, digest, media type, tags, state.
    pub async fn held_manifests(&self) -> Result<Vec<Value>, Error> {
        let tree = self.meta.manifest_meta.clone();
        tokio::task::spawn_blocking(move || {
            let mut held = Vec::new();
            for item in tree.iter() {
                let (key, value) = item?;
                let record: ManifestMeta = meta::decode(&value)?;
                let Some(q) = record.quarantine else { continue };
                let key = String::from_utf8_lossy(&key);
                let (repo, digest) = key.split_once('\0').unwrap_or_default();
                held.push(json!({
                    "repository": repo, "digest": digest, "mediaType": record.media_type,
                    "tags": record.tags, "state": if q.failed { "Failed" } else { "Pending" },
                    "details": q.details,
                }));
            }
            Ok(held)
        })
        .await
        .map_err(Error::internal)?
    }

    /// A manifest whatever its quarantine state (what the scanner reads).
    pub fn held_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<StoredManifest, Error> {
        Ok(self.load_manifest(repo, digest)?.1)
    }

    /// Records a verdict. `Passed` on a held manifest raises one `push` per
    /// tag (one without a tag when it has none), caused by `request`;
    /// `Passed` on a released one changes nothing; `Failed` on a released
    /// one is refused.
    pub async fn judge(
        &self,
        repo: &RepoName,
        digest: &Digest,
        verdict: Verdict,
        details: Option<String>,
        request: &Request,
    ) -> Result<(), Error> {
        let key = meta::key(repo, digest.as_str());
        let m = &self.meta;
        let trees = (&m.manifest_meta, &m.events, &m.counters);
        let result = gate::transaction(|| {
            trees.transaction(|(metas, log, counters)| {
                let Some(v) = metas.get(&key)? else {
                    return abort(Error::ManifestUnknown);
                };
                let mut record = decode(&v)?;
                match (record.quarantine.is_some(), verdict) {
                    (false, Verdict::Passed) => return Ok(()),
                    (false, Verdict::Failed) => {
                        return abort(Error::ManifestInvalid(
                            "already released from quarantine".into(),
                        ))
                    }
                    (true, Verdict::Failed) => {
                        record.quarantine = Some(Quarantine {
                            failed: true,
                            details: details.clone(),
                        });
                    }
                    (true, Verdict::Passed) => {
                        record.quarantine = None;
                        let target =
                            Target::manifest(&record.media_type, record.size, digest, repo);
                        let tags: Vec<&str> = record.tags.iter().map(String::as_str).collect();
                        append_pushes(log, counters, Action::Push, &target, &tags, request)?;
                        if let Some(chart) = &record.chart {
                            let action = Action::ChartPush;
                            append_chart_event(log, counters, action, repo, chart, request)?;
                        }
                    }
                }
                metas.insert(key.as_slice(), encode(&record)?)?;
                Ok(())
            })
        })
        .await;
        finish(result)?;
        self.meta.flush().await?;
        Ok(())
    }
}
