//! What the pull-through cache stores (see [`crate::upstream`]): manifests
//! and tags copied from an upstream, and blobs verified on the way in.
//! Nothing here raises an event: a fill is not a push.

use super::blobs::Part;
use super::meta::{self, ManifestMeta};
use super::uploads::UploadBody;
use super::Store;
use crate::types::{Digest, Digester, RepoName, Tag, UploadId};
use crate::Error;

impl Store {
    /// Whether `repo` holds the manifest `digest`.
    pub(crate) async fn has_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<bool, Error> {
        self.meta
            .manifest_meta
            .contains(&meta::key(repo, digest.as_str()))
            .await
    }

    /// The digest `tag` of `repo` points at, if any.
    pub(crate) async fn tagged(&self, repo: &RepoName, tag: &Tag) -> Result<Option<Digest>, Error> {
        let value = self.meta.tags.get(&meta::key(repo, tag.as_str())).await?;
        Ok(value.and_then(|v| Digest::parse(&String::from_utf8_lossy(&v))))
    }

    /// Stores a manifest copied from an upstream (its bytes checked against
    /// `digest` by the caller), tagged `tag` if given.
    pub(crate) async fn cache_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        media_type: &str,
        bytes: Vec<u8>,
        tag: Option<&Tag>,
    ) -> Result<(), Error> {
        self.space.admit(bytes.len() as u64)?;
        let m = &self.meta;
        let key = meta::key(repo, digest.as_str());
        let record = ManifestMeta {
            media_type: media_type.to_owned(),
            size: bytes.len() as u64,
            updated_ms: meta::now_ms(),
            ..ManifestMeta::default()
        };
        m.db.transaction(|tx| {
            let (key, record, bytes) = (&key, &record, &bytes);
            Box::pin(async move {
                if tx.get(&m.manifest_meta, key).await?.is_none() {
                    tx.insert(&m.manifests, key, bytes.clone());
                    tx.insert_json(&m.manifest_meta, key, record)?;
                }
                let repo_key = repo.as_str().as_bytes();
                if tx.get(&m.repos, repo_key).await?.is_none() {
                    tx.insert(&m.repos, repo_key, Vec::new());
                }
                if let Some(tag) = tag {
                    self.retag(tx, repo, tag, digest).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Points `tag` of `repo` at the stored manifest `digest` (an upstream
    /// moved the tag to content the cache already holds).
    pub(crate) async fn cache_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        digest: &Digest,
    ) -> Result<(), Error> {
        self.space.admit(0)?;
        self.meta
            .db
            .transaction(|tx| Box::pin(async move { self.retag(tx, repo, tag, digest).await }))
            .await
    }

    async fn retag(
        &self,
        tx: &crate::kv::Tx<'_>,
        repo: &RepoName,
        tag: &Tag,
        digest: &Digest,
    ) -> Result<(), Error> {
        let m = &self.meta;
        let tag_key = meta::key(repo, tag.as_str());
        let old = tx.get(&m.tags, &tag_key).await?;
        if old.as_deref() == Some(digest.as_str().as_bytes()) {
            return Ok(());
        }
        if let Some(old) = old {
            self.untag(tx, repo, &old, tag).await?;
        }
        tx.insert(&m.tags, &tag_key, digest.as_str());
        let key = meta::key(repo, digest.as_str());
        let mut record: ManifestMeta = tx
            .get_json(&m.manifest_meta, &key)
            .await?
            .ok_or(Error::ManifestUnknown)?;
        record.tags.insert(tag.to_string());
        record.tagged_ms.insert(tag.to_string(), meta::now_ms());
        tx.insert_json(&m.manifest_meta, &key, &record)
    }

    /// Stores a blob copied from an upstream: staged whole, committed and
    /// linked to `repo` only if its bytes hash to `digest`; nothing of it
    /// is kept otherwise.
    pub(crate) async fn cache_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        chunks: impl UploadBody,
    ) -> Result<(), Error> {
        let id = UploadId::new();
        self.blobs.stage(&id).await?;
        let stored = async {
            let part: Part = self.blobs.append(&id, 0, chunks).await?;
            let parts = [part];
            let hashed = self
                .blobs
                .hash_staged(&id, &parts, Digester::new(digest.algorithm()))
                .await?;
            if hashed != *digest {
                return Err(Error::DigestMismatch {
                    expected: digest.to_string(),
                    actual: hashed.to_string(),
                });
            }
            self.blobs.commit(&id, &parts, digest).await?;
            Ok(parts[0].len)
        }
        .await;
        if let Err(e) = self.blobs.discard(&id).await {
            tracing::warn!(error = %e, "cannot remove a cache fill's staging");
        }
        let size = stored?;
        self.link_blob(repo, digest, size).await
    }
}
