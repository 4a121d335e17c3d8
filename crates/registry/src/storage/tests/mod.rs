//! Unit tests of the storage modules over a temporary directory: each
//! drives a [`Store`] the way handlers do, without HTTP.

mod fsck;
mod gc;
mod manifests;
mod quarantine;
mod uploads;

use bytes::Bytes;

use super::manifests::NewManifest;
use super::{Store, StoreConfig};
use crate::events::{Action, Request};
use crate::manifest::{Manifest, OCI_INDEX, OCI_MANIFEST};
use crate::types::{Algorithm, Digest, RepoName, Tag};

/// A store in `dir` with these settings.
async fn store_with(dir: &std::path::Path, quarantine: bool, max_open_uploads: usize) -> Store {
    let config = StoreConfig {
        allow_missing_references: false,
        quarantine,
        max_open_uploads,
    };
    Store::open(dir, config).await.unwrap()
}

async fn store(dir: &std::path::Path) -> Store {
    store_with(dir, false, 100).await
}

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

fn request() -> Request {
    Request {
        id: "req".into(),
        host: "registry.test".into(),
        method: "PUT".into(),
        useragent: "unit".into(),
    }
}

/// A request body of one chunk.
fn body(bytes: &[u8]) -> impl super::uploads::UploadBody {
    let chunk = Bytes::copy_from_slice(bytes);
    futures_util::stream::iter([Ok::<_, crate::Error>(chunk)])
}

/// Uploads `bytes` into `repo` monolithically; its digest.
async fn blob(store: &Store, repo_name: &str, bytes: &[u8]) -> Digest {
    let digest = Digest::of(Algorithm::Sha256, bytes);
    store
        .put_blob(&repo(repo_name), &digest, body(bytes))
        .await
        .unwrap();
    digest
}

/// An image manifest over a config and one layer, both uploaded into
/// `repo_name`, with an optional subject.
async fn image(
    store: &Store,
    repo_name: &str,
    seed: &str,
    subject: Option<&Digest>,
) -> (Bytes, Digest) {
    let config = blob(store, repo_name, format!("config {seed}").as_bytes()).await;
    let layer = blob(store, repo_name, format!("layer {seed}").as_bytes()).await;
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 8},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": 7}],
    });
    if let Some(s) = subject {
        m["subject"] =
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": s.to_string(), "size": 1});
        m["artifactType"] = serde_json::json!("application/vnd.example.sbom");
    }
    let bytes = Bytes::from(serde_json::to_vec(&m).unwrap());
    let digest = Digest::of(Algorithm::Sha256, &bytes);
    (bytes, digest)
}

/// Stores manifest `bytes` in `repo_name` under `tags`.
async fn put(
    store: &Store,
    repo_name: &str,
    bytes: &Bytes,
    tags: &[&str],
) -> Result<Digest, crate::Error> {
    let manifest = Manifest::parse(bytes, None)?;
    let digest = Digest::of(Algorithm::Sha256, bytes);
    let new = NewManifest {
        repo: repo(repo_name),
        digest: digest.clone(),
        bytes: bytes.clone(),
        manifest,
        tags: tags.iter().map(|t| Tag::parse(t).unwrap()).collect(),
    };
    store.put_manifest(&new, &request()).await?;
    Ok(digest)
}

/// An index over `children`.
fn index(children: &[&Digest]) -> Bytes {
    let manifests: Vec<_> = children
        .iter()
        .map(|d| serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": 1}))
        .collect();
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    Bytes::from(serde_json::to_vec(&m).unwrap())
}

/// (action, repository, tag) of every durable event.
async fn events(store: &Store) -> Vec<(Action, String, Option<String>)> {
    let log = store.meta().log.read(0, usize::MAX).await.unwrap();
    log.into_iter()
        .map(|(_, r)| {
            (
                r.event.action,
                r.event.target.repository,
                r.event.target.tag,
            )
        })
        .collect()
}
