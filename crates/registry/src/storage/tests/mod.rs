//! Unit tests of the storage modules: each drives a [`Store`] the way
//! handlers do, without HTTP, once over the embedded engine and files (a
//! temporary directory) and once over PostgreSQL and S3 (a database and a
//! bucket of their own on the test servers `scripts/setup-test-env.sh`
//! starts): one suite for both backends.

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

/// Where a test's store lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// sled and files under the test's directory.
    Local,
    /// PostgreSQL and S3.
    Shared,
}

/// A test's backend and directory, and the shared store's places once made.
struct Setup {
    backend: Backend,
    dir: tempfile::TempDir,
    shared: tokio::sync::OnceCell<(String, String)>,
}

impl Setup {
    fn new(backend: Backend) -> Self {
        Self {
            backend,
            dir: tempfile::tempdir().unwrap(),
            shared: tokio::sync::OnceCell::new(),
        }
    }

    /// A store with these settings (again and again: the same data).
    async fn store_with(&self, quarantine: bool, max_open_uploads: usize) -> Store {
        let (metadata_url, blob_url) = match self.backend {
            Backend::Local => (String::new(), String::new()),
            Backend::Shared => self
                .shared
                .get_or_init(|| async {
                    let db = crate::kv::testing::database().await;
                    (db, super::blobs::s3::testing::bucket().await)
                })
                .await
                .clone(),
        };
        let config = StoreConfig {
            allow_missing_references: false,
            quarantine,
            max_open_uploads,
            metadata_url,
            blob_url,
            min_free_bytes: 0,
            rules: Default::default(),
            read_only: false,
            location: String::new(),
        };
        Store::open(self.dir.path(), config).await.unwrap()
    }

    async fn store(&self) -> Store {
        self.store_with(false, 100).await
    }
}

/// Each test function `name(setup)` as two tests, `name_local` and
/// `name_shared`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn local() {
                    super::$name(super::Setup::new(super::Backend::Local)).await;
                }
                #[tokio::test]
                async fn shared() {
                    super::$name(super::Setup::new(super::Backend::Shared)).await;
                }
            }
        )*
    };
}
use on_both_backends;

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
