//! Quarantine: manifests held after push until a scanner's verdict.
//!
//! With quarantine on, a new manifest is stored with a [`Quarantine`] mark:
//! pulls do not see it and its push raises `quarantine` instead of `push`.
//! `Passed` clears the mark and raises the `push` events then (and the
//! `chart_push` of a Helm chart); `Failed`
//! keeps it hidden. The scanner reads held manifests through
//! [`Store::held_manifests`] and [`Store::held_manifest`].

use futures_util::TryStreamExt;
use serde_json::{json, Value};

use super::charts::chart_event;
use super::manifests::{append_pushes, StoredManifest};
use super::meta::{self, ManifestMeta, Quarantine};
use super::Store;
use crate::events::{Action, Request, Target};
use crate::types::{Digest, RepoName};
use crate::Error;

/// A scanner's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Release it: it becomes pullable and `push` fires.
    Passed,
    /// Keep it hidden.
    Failed,
}

impl Store {
    /// Every held manifest: repository, digest, media type, tags, state.
    pub(crate) async fn held_manifests(&self) -> Result<Vec<Value>, Error> {
        let mut held = Vec::new();
        let mut all = std::pin::pin!(self.meta.manifest_meta.iter(b""));
        while let Some((key, value)) = all.try_next().await? {
            let record: ManifestMeta = crate::kv::decode(&value)?;
            let Some(q) = record.quarantine else { continue };
            let (repo, digest) = meta::split_key(&key);
            held.push(json!({
                "repository": repo, "digest": digest, "mediaType": record.media_type,
                "tags": record.tags, "state": if q.failed { "Failed" } else { "Pending" },
                "details": q.details,
            }));
        }
        Ok(held)
    }

    /// A manifest whatever its quarantine state (what the scanner reads).
    pub(crate) async fn held_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<StoredManifest, Error> {
        Ok(self.load_manifest(repo, digest).await?.1)
    }

    /// Records a verdict. `Passed` on a held manifest raises one `push` per
    /// tag (one without a tag when it has none), caused by `request`;
    /// `Passed` on a released one changes nothing; `Failed` on a released
    /// one is refused.
    pub(crate) async fn judge(
        &self,
        repo: &RepoName,
        digest: &Digest,
        verdict: Verdict,
        details: Option<String>,
        request: &Request,
    ) -> Result<(), Error> {
        self.space.admit(0)?;
        let key = meta::key(repo, digest.as_str());
        let metas = &self.meta.manifest_meta;
        self.meta
            .db
            .transaction(|tx| {
                let (key, details) = (&key, &details);
                Box::pin(async move {
                    let mut record: ManifestMeta = tx
                        .get_json(metas, key)
                        .await?
                        .ok_or(Error::ManifestUnknown)?;
                    match (record.quarantine.is_some(), verdict) {
                        (false, Verdict::Passed) => return Ok(()),
                        (false, Verdict::Failed) => {
                            return Err(Error::ManifestInvalid(
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
                            append_pushes(tx, Action::Push, &target, &tags, request)?;
                            if let Some(chart) = &record.chart {
                                tx.append_event(chart_event(
                                    Action::ChartPush,
                                    repo,
                                    chart,
                                    request,
                                ))?;
                            }
                        }
                    }
                    tx.insert_json(metas, key, &record)
                })
            })
            .await
    }
}
