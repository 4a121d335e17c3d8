//! `index.yaml`, kept incrementally.
//!
//! Each chart version is rendered once, as its own YAML fragment (the list
//! item under its chart's name), when its repository is first loaded or
//! when that version changes. A repository's loaded state is its fragments
//! sorted by chart name and then by SemVer, newest first; serving the index
//! concatenates them once per change and keeps the bytes until the next
//! change. So an upload or a delete costs one fragment (and a list of
//! references to the others), and serving copies the fragments into the
//! response as it is sent.
//!
//! Consistency: after a change is committed (and durable),
//! [`Indexes::refresh`] re-reads that one version from the store *under the
//! repository's lock*, and a cold load scans the store under the same lock;
//! whatever the interleaving, the last refresh or load reflects the last
//! commit. Each change of a repository also moves its *generation*, in the
//! same transaction; serving compares the index's generation with the
//! store's and loads the index afresh when another replica changed the
//! repository.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::TryStreamExt;
use registry::ext::{RepoName, Tree};
use serde::Serialize;

use crate::metadata::{self, Metadata};
use crate::store::{self, ChartRecord};
use crate::{yaml, Error};

/// Repositories whose index is kept in memory at once; the least recently
/// served is dropped beyond that (and reloaded when asked again).
const MAX_LOADED: usize = 64;

/// One version as Helm's `repo.ChartVersion`: the chart's metadata plus
/// where to get it. Serialized into `index.yaml` and by the JSON API.
#[derive(Debug, Serialize)]
pub struct ChartVersion<'a> {
    #[serde(flatten)]
    metadata: &'a Metadata,
    created: &'a str,
    /// Hex SHA-256 of the archive, without `sha256:` (as `helm repo index`).
    digest: &'a str,
    /// Relative to the repository URL.
    urls: [String; 1],
}

impl<'a> ChartVersion<'a> {
    /// The entry of `record`.
    pub fn of(record: &'a ChartRecord) -> Self {
        Self {
            metadata: &record.metadata,
            created: &record.created,
            digest: record
                .digest
                .strip_prefix("sha256:")
                .unwrap_or(&record.digest),
            urls: [format!("charts/{}", record.metadata.file_name())],
        }
    }
}

/// Newest first by SemVer; the exact version text breaks ties (`1.0.0`
/// and `v1.0.0` are two versions). A version that does not parse (uploads
/// refuse them, but rules change) sorts last, as in Helm.
type VersionKey = (Reverse<Option<semver::Version>>, String);

fn version_key(version: &str) -> VersionKey {
    (
        Reverse(metadata::parse_version(version).ok()),
        version.to_owned(),
    )
}

/// A repository's index in memory.
#[derive(Debug, Default)]
struct RepoIndex {
    /// The repository's generation this index reflects.
    generation: u64,
    /// Chart name to its versions' fragments, newest first.
    charts: BTreeMap<String, BTreeMap<VersionKey, Bytes>>,
    /// The whole `index.yaml`, until the next change.
    rendered: Option<IndexFile>,
}

/// Size of the buffers an [`IndexFile`] is sent in.
const CHUNK: usize = 64 * 1024;

/// A rendered `index.yaml`: the pieces it is made of, shared with the index
/// in memory (rendering copies no fragment), and its length. It is copied
/// into [`CHUNK`]-sized buffers only while being sent, so a change never
/// allocates a buffer of the whole file (which, megabytes at a time, the
/// allocator would hold on to).
#[derive(Clone, Debug)]
pub struct IndexFile {
    pieces: Arc<[Bytes]>,
    len: usize,
}

impl IndexFile {
    fn new(pieces: Vec<Bytes>) -> Self {
        let len = pieces.iter().map(Bytes::len).sum();
        Self {
            pieces: pieces.into(),
            len,
        }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty (never: it always has its header).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file in buffers of about [`CHUNK`] bytes, filled as they are taken.
    pub fn chunks(&self) -> impl Iterator<Item = Bytes> + Send + Sync + 'static {
        let pieces = self.pieces.clone();
        let mut next = 0;
        std::iter::from_fn(move || {
            if next == pieces.len() {
                return None;
            }
            let mut buf = BytesMut::with_capacity(CHUNK);
            while next < pieces.len() && buf.len() < CHUNK {
                buf.extend_from_slice(&pieces[next]);
                next += 1;
            }
            Some(buf.freeze())
        })
    }

    /// The whole file in one buffer.
    pub fn to_bytes(&self) -> Bytes {
        self.chunks()
            .fold(BytesMut::with_capacity(self.len), |mut all, c| {
                all.extend_from_slice(&c);
                all
            })
            .freeze()
    }

    /// Whether `other` is this very rendering (not a new one).
    pub fn same_rendering(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.pieces, &other.pieces)
    }
}

/// A repository's slot: `None` until loaded.
#[derive(Debug, Default)]
struct Slot {
    state: tokio::sync::Mutex<Option<RepoIndex>>,
    last_used: AtomicU64,
}

/// The indexes of the repositories served lately.
#[derive(Debug)]
pub struct Indexes {
    charts: Tree,
    generations: Tree,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    clock: AtomicU64,
}

impl Indexes {
    /// Indexes over the chart records in `charts`, whose repositories'
    /// generations are in `generations`.
    pub fn new(charts: Tree, generations: Tree) -> Self {
        Self {
            charts,
            generations,
            slots: Mutex::default(),
            clock: AtomicU64::new(0),
        }
    }

    /// The `index.yaml` of `repo` (empty when it holds no chart).
    pub async fn get(&self, repo: &RepoName) -> Result<IndexFile, Error> {
        let slot = self.slot(repo);
        let mut state = slot.state.lock().await;
        let current = generation(&self.generations, repo).await?;
        if state.as_ref().is_some_and(|i| i.generation != current) {
            // Changed elsewhere (another replica): load it afresh.
            *state = None;
        }
        let index = match &mut *state {
            Some(index) => index,
            empty => empty.insert(self.load(repo).await?),
        };
        if let Some(file) = &index.rendered {
            return Ok(file.clone());
        }
        let file = render(index);
        index.rendered = Some(file.clone());
        Ok(file)
    }

    /// Brings the loaded index of `repo` (if any) in line with what the store
    /// now holds for `name` `version`; called after each committed change,
    /// which moved the repository to `generation`. An index that missed a
    /// change in between, or a refresh that fails, is dropped, to be loaded
    /// afresh when next asked.
    pub async fn refresh(
        &self,
        repo: &RepoName,
        name: &str,
        version: &str,
        generation: u64,
    ) -> Result<(), Error> {
        let Some(slot) = lock(&self.slots).get(repo.as_str()).cloned() else {
            return Ok(());
        };
        let mut state = slot.state.lock().await;
        if state
            .as_ref()
            .is_some_and(|i| i.generation + 1 != generation)
        {
            *state = None;
        }
        let Some(index) = &mut *state else {
            return Ok(());
        };
        let record = match self.charts.get(&store::key(repo, name, version)).await {
            Ok(Some(v)) => serde_json::from_slice::<ChartRecord>(&v)
                .map_err(Error::from)
                .and_then(|r| fragment(&r)),
            Ok(None) => Ok(Bytes::new()),
            Err(e) => Err(e.into()),
        };
        let fragment = match record {
            Ok(f) => f,
            Err(e) => {
                *state = None;
                return Err(e);
            }
        };
        let key = version_key(version);
        let versions = index.charts.entry(name.to_owned()).or_default();
        if fragment.is_empty() {
            versions.remove(&key);
        } else {
            versions.insert(key, fragment);
        }
        if versions.is_empty() {
            index.charts.remove(name);
        }
        index.generation = generation;
        index.rendered = None;
        Ok(())
    }

    /// The slot of `repo`, created (and others evicted) as needed.
    fn slot(&self, repo: &RepoName) -> Arc<Slot> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut slots = lock(&self.slots);
        let slot = slots.entry(repo.as_str().to_owned()).or_default().clone();
        slot.last_used.store(now, Ordering::Relaxed);
        if slots.len() > MAX_LOADED {
            let oldest = slots
                .iter()
                .min_by_key(|(_, s)| s.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                slots.remove(&oldest);
            }
        }
        slot
    }

    /// Reads every version of `repo` from the store and renders its fragment.
    async fn load(&self, repo: &RepoName) -> Result<RepoIndex, Error> {
        let mut index = RepoIndex {
            generation: generation(&self.generations, repo).await?,
            ..RepoIndex::default()
        };
        let mut all = std::pin::pin!(self.charts.iter(&store::repo_prefix(repo)));
        while let Some((_, v)) = all.try_next().await? {
            let record: ChartRecord = serde_json::from_slice(&v)?;
            let md = &record.metadata;
            let key = version_key(&md.version);
            index
                .charts
                .entry(md.name.clone())
                .or_default()
                .insert(key, fragment(&record)?);
        }
        Ok(index)
    }
}

/// The generation of `repo`: how many changes its charts have had.
pub async fn generation(generations: &Tree, repo: &RepoName) -> Result<u64, Error> {
    let stored = generations.get(repo.as_str().as_bytes()).await?;
    Ok(registry::ext::decode_u64(stored.as_deref()))
}

/// The list item of one version under its chart's name in `entries`.
pub fn fragment(record: &ChartRecord) -> Result<Bytes, Error> {
    let value = serde_json::to_value(ChartVersion::of(record))?;
    let mut out = String::with_capacity(1024);
    yaml::sequence(&mut out, std::slice::from_ref(&value), 2);
    Ok(Bytes::from(out))
}

/// The whole `index.yaml`: keys in Helm's order, `generated` = now.
fn render(index: &RepoIndex) -> IndexFile {
    let count: usize = index.charts.values().map(BTreeMap::len).sum();
    let mut pieces = Vec::with_capacity(count + index.charts.len() + 3);
    pieces.push(Bytes::from_static(b"apiVersion: v1\n"));
    pieces.push(Bytes::from_static(if index.charts.is_empty() {
        b"entries: {}\n"
    } else {
        b"entries:\n"
    }));
    for (name, versions) in &index.charts {
        // Quoted when a name could read as something else (`on`, `1.0`).
        pieces.push(Bytes::from(format!("  {}:\n", yaml::scalar(name))));
        pieces.extend(versions.values().cloned());
    }
    let now = humantime::format_rfc3339_nanos(std::time::SystemTime::now());
    pieces.push(Bytes::from(format!("generated: \"{now}\"\n")));
    IndexFile::new(pieces)
}

/// Locks the slot map (a panic elsewhere cannot leave it inconsistent:
/// each change to it is one map operation).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, version: &str) -> ChartRecord {
        ChartRecord {
            metadata: Metadata {
                api_version: "v2".into(),
                name: name.into(),
                version: version.into(),
                ..Metadata::default()
            },
            digest: format!("sha256:{}", "ab".repeat(32)),
            size: 1,
            created: "2026-01-01T00:00:00Z".into(),
            prov: None,
        }
    }

    async fn put(tree: &Tree, repo: &RepoName, r: &ChartRecord) {
        let key = store::key(repo, &r.metadata.name, &r.metadata.version);
        tree.insert(&key, &serde_json::to_vec(r).unwrap())
            .await
            .unwrap();
    }

    fn versions(text: &str) -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("    version: "))
            .map(|v| v.trim_matches('"').to_owned())
            .collect()
    }

    #[tokio::test]
    async fn serves_newest_first_and_follows_each_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let db = registry::ext::Db::open(dir.path()).unwrap();
        let tree = db.tree("charts").unwrap();
        let (repo, sub) = (
            RepoName::parse("r").unwrap(),
            RepoName::parse("r/sub").unwrap(),
        );
        for v in ["0.2.0", "0.10.0", "1.0.0-rc.1", "v1.0.0", "1.0.0"] {
            put(&tree, &repo, &record("web", v)).await;
        }
        put(&tree, &repo, &record("on", "1.0.0")).await;
        put(&tree, &sub, &record("other", "9.0.0")).await;
        let generations = db.tree("generations").unwrap();
        let indexes = Indexes::new(tree.clone(), generations.clone());
        let bump = |n: u64| {
            let generations = generations.clone();
            let key = repo.as_str().as_bytes().to_vec();
            async move { generations.insert(&key, &n.to_be_bytes()).await.unwrap() }
        };

        let text = indexes.get(&repo).await.unwrap().to_bytes();
        let text = std::str::from_utf8(&text).unwrap();
        assert!(
            text.starts_with("apiVersion: v1\nentries:\n  \"on\":\n  - "),
            "{text}"
        );
        // `on` (quoted: YAML 1.1 reads it as a boolean), then web newest first;
        // `1.0.0` and `v1.0.0` are equal in SemVer and both kept.
        assert_eq!(
            versions(text),
            ["1.0.0", "1.0.0", "v1.0.0", "1.0.0-rc.1", "0.10.0", "0.2.0"]
        );
        assert!(
            !text.contains("other"),
            "another repository leaked in: {text}"
        );
        // Unchanged: the same bytes, not a new rendering.
        let (a, b) = (
            indexes.get(&repo).await.unwrap(),
            indexes.get(&repo).await.unwrap(),
        );
        assert!(a.same_rendering(&b));
        assert_eq!(a.len(), text.len());

        put(&tree, &repo, &record("web", "2.0.0")).await;
        bump(1).await;
        indexes.refresh(&repo, "web", "2.0.0", 1).await.unwrap();
        tree.remove(&store::key(&repo, "on", "1.0.0"))
            .await
            .unwrap();
        bump(2).await;
        indexes.refresh(&repo, "on", "1.0.0", 2).await.unwrap();
        let text = indexes.get(&repo).await.unwrap().to_bytes();
        let text = std::str::from_utf8(&text).unwrap();
        assert_eq!(
            versions(text),
            ["2.0.0", "1.0.0", "v1.0.0", "1.0.0-rc.1", "0.10.0", "0.2.0"]
        );
        assert!(!text.contains("\"on\""), "{text}");
        // What a fresh load sees is what the refreshes made.
        let body = |t: &[u8]| {
            let t = String::from_utf8_lossy(t).into_owned();
            t.lines()
                .filter(|l| !l.starts_with("generated:"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let fresh = Indexes::new(tree.clone(), generations.clone())
            .get(&repo)
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(body(&fresh), body(text.as_bytes()));
        // A change made elsewhere (another replica) moves the generation: the
        // index is loaded afresh, not served stale.
        put(&tree, &repo, &record("web", "3.0.0")).await;
        bump(3).await;
        let text = indexes.get(&repo).await.unwrap().to_bytes();
        assert_eq!(versions(std::str::from_utf8(&text).unwrap())[0], "3.0.0");
    }
}
