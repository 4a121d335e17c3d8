//! The pull-through cache: repositories under an upstream's `prefix` (and,
//! for the one upstream marked `mirror`, every unprefixed name the
//! registry holds no pushed content for) are filled from that upstream on
//! a pull, then served from the store like any other.
//!
//! - A **tag** is looked up upstream (`HEAD`, which Docker Hub does not
//!   count against its rate limits) at most once per `tag_ttl`; when the
//!   upstream cannot be reached, the cached tag is served as it is.
//! - A **manifest** is fetched by digest and stored byte for byte once its
//!   bytes hash to that digest. A **blob** streams to the client while it
//!   is staged; its last chunk is held back until the whole blob hashed to
//!   its digest and was committed, so a client never receives all of a
//!   blob that failed its digest (the response breaks off instead), and
//!   nothing unverified is cached. Content by digest never changes, so it
//!   is never fetched again.
//! - Fills raise no events (nothing was pushed); `/metrics` counts them
//!   (`berth_upstream_requests_total{upstream,kind,outcome}`) and the log
//!   names each. Cached content is ordinary content: `gc` and retention
//!   apply to it. Pushes into a cached repository are refused.

mod client;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::config::{duration, human};
use crate::kv::{Db, Tree};
use crate::storage::file_io::BlobStream;
use crate::storage::Store;
use crate::types::{Digest, Reference, RepoName, Tag};
use crate::Error;
use client::{Client, Failure, MANIFEST_TYPES};

/// One upstream (`[[upstreams]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The repositories it serves: `{prefix}/{name}` is the upstream's
    /// `{name}` (`hub/library/alpine` is Docker Hub's `library/alpine`).
    pub prefix: String,
    /// The upstream registry (`https://registry-1.docker.io`).
    pub url: String,
    /// Credentials for it (Basic, or for its token realm).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// See `username`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// How long a tag's answer is used before it is asked again (default
    /// `5m`).
    #[serde(
        default = "default_ttl",
        deserialize_with = "duration",
        serialize_with = "human"
    )]
    pub tag_ttl: Duration,
    /// Also serve unprefixed names from it (`library/alpine`), for the
    /// Docker daemon's `registry-mirrors`.
    #[serde(default)]
    pub mirror: bool,
}

fn default_ttl() -> Duration {
    Duration::from_secs(300)
}

/// A cached repository's upstream and the name it has there.
pub(crate) struct Target<'a> {
    upstream: &'a Upstream,
    name: String,
}

struct Upstream {
    config: UpstreamConfig,
    client: Client,
}

/// The configured upstreams and what the cache remembers.
pub(crate) struct Upstreams {
    upstreams: Vec<Upstream>,
    /// When each cached tag was last asked upstream (`repo \0 tag` → ms).
    fetched: Tree,
    /// The repositories the mirror upstream filled (`repo` → ``).
    mirrored: Tree,
    /// Requests by (upstream prefix, kind, outcome).
    counts: Counts,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefixes: Vec<&str> = self
            .upstreams
            .iter()
            .map(|u| u.config.prefix.as_str())
            .collect();
        f.debug_struct("Upstreams")
            .field("prefixes", &prefixes)
            .finish()
    }
}

/// Checks the `[[upstreams]]` of the configuration.
pub(crate) fn validate(configs: &[UpstreamConfig]) -> Result<(), String> {
    let mut prefixes = std::collections::HashSet::new();
    for c in configs {
        if RepoName::parse(&c.prefix).is_none() {
            return Err(format!(
                "upstream prefix {:?}: a repository name's form (lowercase, digits, separators)",
                c.prefix
            ));
        }
        if !prefixes.insert(c.prefix.as_str()) {
            return Err(format!("upstream prefix {:?} appears twice", c.prefix));
        }
        if !(c.url.starts_with("https://") || c.url.starts_with("http://")) {
            return Err(format!(
                "upstream {:?}: url {:?} must be http:// or https://",
                c.prefix, c.url
            ));
        }
    }
    if configs.iter().filter(|c| c.mirror).count() > 1 {
        return Err("only one upstream may be the mirror".into());
    }
    Ok(())
}

impl Upstreams {
    /// The upstreams of `configs`, remembering in `db`.
    pub(crate) fn open(configs: &[UpstreamConfig], db: &Db) -> Result<Self, Error> {
        validate(configs).map_err(Error::Config)?;
        let upstreams = configs
            .iter()
            .map(|c| {
                let credentials =
                    (!c.username.is_empty()).then(|| (c.username.clone(), c.password.clone()));
                Ok(Upstream {
                    client: Client::new(&c.url, credentials).map_err(Error::Config)?,
                    config: c.clone(),
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self {
            upstreams,
            fetched: db.tree("upstream_fetched")?,
            mirrored: db.tree("upstream_mirrored")?,
            counts: Counts::default(),
        })
    }

    /// The upstream that serves `repo`, if it is a cached repository.
    pub(crate) async fn route(
        &self,
        store: &Store,
        repo: &RepoName,
    ) -> Result<Option<Target<'_>>, Error> {
        for u in &self.upstreams {
            if let Some(name) = repo.as_str().strip_prefix(&format!("{}/", u.config.prefix)) {
                return Ok(Some(Target {
                    upstream: u,
                    name: name.to_owned(),
                }));
            }
        }
        let Some(mirror) = self.upstreams.iter().find(|u| u.config.mirror) else {
            return Ok(None);
        };
        let mirrored = self.mirrored.contains(repo.as_str().as_bytes()).await?;
        if mirrored || !store.repo_exists(repo).await? {
            return Ok(Some(Target {
                upstream: mirror,
                name: repo.as_str().to_owned(),
            }));
        }
        Ok(None)
    }

    /// Refuses a push into a cached repository.
    pub(crate) async fn refuse_push(&self, store: &Store, repo: &RepoName) -> Result<(), Error> {
        match self.route(store, repo).await? {
            Some(t) => Err(Error::Refused(format!(
                "{repo} is a pull-through cache of {}: push to the upstream instead",
                t.upstream.config.url
            ))),
            None => Ok(()),
        }
    }

    fn count(&self, t: &Target<'_>, kind: &'static str, outcome: &'static str) {
        count(&self.counts, &t.upstream.config.prefix, kind, outcome);
    }

    /// Makes sure the store holds `reference` of the cached `repo` (see
    /// the module's rules), so that it is served as stored.
    pub(crate) async fn fill_manifest(
        &self,
        store: &Store,
        repo: &RepoName,
        t: &Target<'_>,
        reference: &Reference,
    ) -> Result<(), Error> {
        let tag = match reference {
            Reference::Digest(d) => {
                if store.has_manifest(repo, d).await? {
                    self.count(t, "manifest", "hit");
                    return Ok(());
                }
                return self.fetch_manifest(store, repo, t, d, None).await;
            }
            Reference::Tag(tag) => tag,
        };
        let key = crate::kv::key(&[repo.as_str().as_bytes(), tag.as_str().as_bytes()]);
        let now = crate::storage::meta::now_ms();
        let fetched = crate::kv::decode_u64(self.fetched.get(&key).await?.as_deref());
        let ttl = u64::try_from(t.upstream.config.tag_ttl.as_millis()).unwrap_or(u64::MAX);
        let cached = store.tagged(repo, tag).await?;
        if cached.is_some() && now.saturating_sub(fetched) < ttl {
            self.count(t, "manifest", "hit");
            return Ok(());
        }
        let asked = t
            .upstream
            .client
            .get(
                Method::HEAD,
                &t.name,
                &format!("manifests/{tag}"),
                Some(MANIFEST_TYPES),
                None,
            )
            .await;
        let digest = asked.and_then(|resp| {
            resp.headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(Digest::parse)
                .ok_or_else(|| {
                    Failure::Unavailable("the upstream's HEAD gave no Docker-Content-Digest".into())
                })
        });
        let digest = match (digest, cached) {
            (Ok(d), _) => d,
            (Err(Failure::Unavailable(why)), Some(_)) => {
                tracing::warn!(%repo, %tag, %why, "upstream unreachable: serving the cached tag");
                self.count(t, "manifest", "stale");
                return Ok(());
            }
            (Err(f), _) => {
                self.count(t, "manifest", "error");
                return Err(f.into_error(false));
            }
        };
        if store.has_manifest(repo, &digest).await? {
            store.cache_tag(repo, tag, &digest).await?;
            self.count(t, "manifest", "hit");
        } else {
            self.fetch_manifest(store, repo, t, &digest, Some(tag))
                .await?;
        }
        self.fetched.insert(&key, &now.to_be_bytes()).await?;
        Ok(())
    }

    /// Fetches the manifest `digest` upstream, checks its bytes and stores
    /// it (tagged `tag`).
    async fn fetch_manifest(
        &self,
        store: &Store,
        repo: &RepoName,
        t: &Target<'_>,
        digest: &Digest,
        tag: Option<&Tag>,
    ) -> Result<(), Error> {
        let result = async {
            let resp = t
                .upstream
                .client
                .get(
                    Method::GET,
                    &t.name,
                    &format!("manifests/{digest}"),
                    Some(MANIFEST_TYPES),
                    None,
                )
                .await
                .map_err(|f| f.into_error(false))?;
            let media_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/vnd.oci.image.manifest.v1+json")
                .to_owned();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?;
            let actual = Digest::of(digest.algorithm(), &bytes);
            if actual != *digest {
                return Err(lied("manifest", digest, &actual.to_string()));
            }
            store
                .cache_manifest(repo, digest, &media_type, bytes.to_vec(), tag)
                .await?;
            self.remember(repo, t).await
        }
        .await;
        self.count(t, "manifest", if result.is_ok() { "fill" } else { "error" });
        if result.is_ok() {
            tracing::info!(%repo, %digest, upstream = %t.upstream.config.url, "cached a manifest");
        }
        result
    }

    /// Makes sure the store holds the blob `digest` for the cached `repo`
    /// (for a `HEAD` or a range: a fill that streams to nobody).
    pub(crate) async fn fill_blob(
        &self,
        store: &Store,
        repo: &RepoName,
        t: &Target<'_>,
        digest: &Digest,
    ) -> Result<(), Error> {
        match self.stream_blob(store, repo, t, digest).await? {
            Some((_, body)) => drain(body).await,
            None => Ok(()),
        }
    }

    /// Starts filling the blob `digest` of the cached `repo` from the
    /// upstream and returns its size and its bytes as they arrive (`None`
    /// when the store holds it, already or, if the upstream gave no length,
    /// once filled). The fill goes on if the client goes away; the body's
    /// last chunk comes only once the blob is verified and committed, and a
    /// failed fill ends the body with an error instead.
    pub(crate) async fn stream_blob(
        &self,
        store: &Store,
        repo: &RepoName,
        t: &Target<'_>,
        digest: &Digest,
    ) -> Result<Option<(u64, BlobStream)>, Error> {
        if store.blob_size(repo, digest).await?.is_some() {
            self.count(t, "blob", "hit");
            return Ok(None);
        }
        let resp = match t
            .upstream
            .client
            .get(Method::GET, &t.name, &format!("blobs/{digest}"), None, None)
            .await
        {
            Ok(resp) => resp,
            Err(f) => {
                self.count(t, "blob", "error");
                return Err(f.into_error(true));
            }
        };
        let size = resp.content_length();
        let upstream = resp
            .bytes_stream()
            .map_err(|e| Error::Unavailable(format!("the upstream's blob: {e}")));
        let (to_client, mut client) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let (to_stage, mut staged) = tokio::sync::mpsc::channel::<Result<Bytes, Error>>(4);
        let fill = {
            let (store, repo, digest) = (store.clone(), repo.clone(), digest.clone());
            let chunks = futures_util::stream::poll_fn(move |cx| staged.poll_recv(cx));
            async move {
                store
                    .cache_blob(&repo, &digest, chunks)
                    .await
                    .map_err(|e| match e {
                        Error::DigestMismatch { actual, .. } => lied("blob", &digest, &actual),
                        e => e,
                    })
            }
        };
        let finish = Finish {
            counts: self.counts.clone(),
            prefix: t.upstream.config.prefix.clone(),
            url: t.upstream.config.url.clone(),
            mirrored: self.mirror_record(repo, t),
            repo: repo.clone(),
            digest: digest.clone(),
        };
        tokio::spawn(async move {
            let (filled, last) = tokio::join!(fill, tee(upstream, to_stage, &to_client));
            let outcome = match filled {
                Ok(()) => finish.filled().await,
                Err(e) => Err(e),
            };
            let sent = match outcome {
                Ok(()) => last.map(Ok),
                Err(e) => {
                    tracing::warn!(repo = %finish.repo, digest = %finish.digest, error = %e, "cannot cache a blob");
                    count(&finish.counts, &finish.prefix, "blob", "error");
                    Some(Err(std::io::Error::other(e.to_string())))
                }
            };
            if let Some(chunk) = sent {
                let _ = to_client.send(chunk).await;
            }
        });
        let body: BlobStream = Box::pin(futures_util::stream::poll_fn(move |cx| {
            client.poll_recv(cx)
        }));
        match size {
            Some(size) => Ok(Some((size, body))),
            // A response's length must be known before its first byte.
            None => drain(body).await.map(|()| None),
        }
    }

    /// Records that the mirror filled `repo` (prefixed ones need no record).
    async fn remember(&self, repo: &RepoName, t: &Target<'_>) -> Result<(), Error> {
        remember(self.mirror_record(repo, t).as_ref(), repo).await
    }

    /// Where a fill of `repo` through `t` is remembered: only the mirror's
    /// unprefixed names need it.
    fn mirror_record(&self, repo: &RepoName, t: &Target<'_>) -> Option<Tree> {
        (t.upstream.config.mirror && t.name == repo.as_str()).then(|| self.mirrored.clone())
    }

    /// `berth_upstream_requests_total` samples.
    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if self.upstreams.is_empty() {
            return;
        }
        out.push_str(
            "# HELP berth_upstream_requests_total Pulls of cached repositories, by upstream, kind and outcome (hit, fill, stale, error).\n\
             # TYPE berth_upstream_requests_total counter\n",
        );
        for ((prefix, kind, outcome), n) in counts.iter() {
            let _ = writeln!(
                out,
                "berth_upstream_requests_total{{upstream=\"{prefix}\",kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
            );
        }
    }
}

/// Copies the upstream's chunks to the staging and, all but the last, to
/// the client (who may have gone: the staging goes on); returns the last.
async fn tee(
    mut upstream: impl futures_util::Stream<Item = Result<Bytes, Error>> + Unpin,
    to_stage: tokio::sync::mpsc::Sender<Result<Bytes, Error>>,
    to_client: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> Option<Bytes> {
    let mut held: Option<Bytes> = None;
    while let Some(chunk) = upstream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                let _ = to_stage.send(Err(e)).await;
                return None;
            }
        };
        if let Some(previous) = held.replace(chunk.clone()) {
            let _ = to_client.send(Ok(previous)).await;
        }
        if to_stage.send(Ok(chunk)).await.is_err() {
            return None;
        }
    }
    held
}

/// Reads a filling blob's body to its end: whether the fill succeeded.
async fn drain(mut body: BlobStream) -> Result<(), Error> {
    while let Some(chunk) = body.next().await {
        chunk.map_err(|e| Error::Unavailable(e.to_string()))?;
    }
    Ok(())
}

/// Records in `mirrored`, if given, that the mirror filled `repo`.
async fn remember(mirrored: Option<&Tree>, repo: &RepoName) -> Result<(), Error> {
    if let Some(tree) = mirrored {
        tree.insert(repo.as_str().as_bytes(), b"").await?;
    }
    Ok(())
}

/// What a blob fill records once it is done.
struct Finish {
    counts: Counts,
    prefix: String,
    url: String,
    /// The mirror's record, when the mirror filled an unprefixed name.
    mirrored: Option<Tree>,
    repo: RepoName,
    digest: Digest,
}

impl Finish {
    async fn filled(&self) -> Result<(), Error> {
        remember(self.mirrored.as_ref(), &self.repo).await?;
        count(&self.counts, &self.prefix, "blob", "fill");
        tracing::info!(repo = %self.repo, digest = %self.digest, upstream = %self.url, "cached a blob");
        Ok(())
    }
}

/// Pulls of cached repositories, by upstream prefix, kind and outcome.
type Counts = Arc<Mutex<BTreeMap<(String, &'static str, &'static str), u64>>>;

fn count(counts: &Counts, prefix: &str, kind: &'static str, outcome: &'static str) {
    let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
    *counts
        .entry((prefix.to_owned(), kind, outcome))
        .or_default() += 1;
}

/// The error of an upstream's content that is not what it said.
fn lied(what: &str, digest: &Digest, actual: &str) -> Error {
    Error::Unavailable(format!(
        "the upstream sent a {what} that hashes to {actual}, not {digest}: refused, nothing cached"
    ))
}

impl Failure {
    /// The registry error a client gets.
    fn into_error(self, blob: bool) -> Error {
        match self {
            Failure::NotFound if blob => Error::BlobUnknown,
            Failure::NotFound => Error::ManifestUnknown,
            Failure::Unavailable(why) => Error::Unavailable(why),
        }
    }
}
