//! Chart storage: archives and provenance files are blobs of the registry's
//! blob store; what the repository knows about each version is one record
//! in the `helm.charts` tree of the registry's store.
//!
//! | tree          | key                               | value               |
//! |---------------|-----------------------------------|---------------------|
//! | `helm.charts` | repo `\0` chart name `\0` version | [`ChartRecord`] JSON |
//!
//! `\0` occurs in none of them, so a repository's prefix never matches
//! another's (`a\0` vs `a/b\0`).
//!
//! A change is: the blobs are stored (and synced) first, then the record
//! and its `chart_push`/`chart_delete` event are committed in one durable
//! transaction, then the index in memory is refreshed. A crash before the
//! commit leaves at most an unreferenced blob.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use registry::ext::{
    Action, Algorithm, BlobStream, Digest, Event, ExtensionStore, RepoName, Request, Target, Tree,
    Tx,
};
use serde::{Deserialize, Serialize};

use crate::index::Indexes;
use crate::metadata::{self, Metadata};
use crate::prov::Provenance;
use crate::Error;

/// What the repository keeps about one chart version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChartRecord {
    /// Its `Chart.yaml`, known keys only.
    pub metadata: Metadata,
    /// `sha256:<hex>` of the archive.
    pub digest: String,
    /// The archive's size in bytes.
    pub size: u64,
    /// When it was uploaded, RFC 3339 UTC.
    pub created: String,
    /// Its provenance file, if one was uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prov: Option<StoredBlob>,
}

/// A blob of the blob store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Bytes.
    pub size: u64,
}

/// A chart archive about to be stored, already read and checked.
#[derive(Debug)]
pub struct NewChart {
    /// Its metadata.
    pub metadata: Metadata,
    /// The archive.
    pub bytes: Bytes,
}

/// A provenance file about to be stored, already read.
#[derive(Debug)]
pub struct NewProv {
    /// What it says.
    pub provenance: Provenance,
    /// The file.
    pub bytes: Bytes,
}

/// A file of the repository, as `charts/{file}` names it.
#[derive(Debug)]
pub struct File {
    /// Where its bytes are.
    pub blob: StoredBlob,
    /// `true` for a `.tgz.prov`.
    pub prov: bool,
}

/// The chart repositories.
#[derive(Debug)]
pub struct Store {
    ext: ExtensionStore,
    charts: Tree,
    /// Each repository's generation (see [`crate::index`]).
    generations: Tree,
    indexes: Arc<Indexes>,
}

/// `repo \0 name \0 version`.
pub fn key(repo: &RepoName, name: &str, version: &str) -> Vec<u8> {
    registry::ext::key(&[
        repo.as_str().as_bytes(),
        name.as_bytes(),
        version.as_bytes(),
    ])
}

/// `repo \0`: every version of every chart of `repo`.
pub fn repo_prefix(repo: &RepoName) -> Vec<u8> {
    registry::ext::key(&[repo.as_str().as_bytes(), b""])
}

/// `repo \0 name \0`: every version of one chart.
fn chart_prefix(repo: &RepoName, name: &str) -> Vec<u8> {
    registry::ext::key(&[repo.as_str().as_bytes(), name.as_bytes(), b""])
}

impl Store {
    /// Opens the `helm.charts` tree of the registry's store.
    pub fn open(ext: ExtensionStore) -> Result<Self, Error> {
        let charts = ext.tree("charts")?;
        let generations = ext.tree("generations")?;
        Ok(Self {
            indexes: Arc::new(Indexes::new(charts.clone(), generations.clone())),
            charts,
            generations,
            ext,
        })
    }

    /// Every blob the repositories reference (archives and provenance
    /// files), which garbage collection must keep.
    pub async fn blobs(&self) -> Result<Vec<Digest>, Error> {
        let mut digests = Vec::new();
        let mut all = std::pin::pin!(self.charts.iter(b""));
        while let Some((_, value)) = all.try_next().await? {
            let record: ChartRecord = serde_json::from_slice(&value)
                .map_err(|e| Error::Internal(format!("corrupt chart record: {e}")))?;
            let prov = record.prov.as_ref().map(|p| p.digest.as_str());
            digests.extend(
                [Some(record.digest.as_str()), prov]
                    .into_iter()
                    .flatten()
                    .filter_map(Digest::parse),
            );
        }
        Ok(digests)
    }

    /// Stores a chart version (with its provenance file, if given), raising
    /// `chart_push`. An existing version is a conflict unless `force`; a
    /// forced overwrite replaces the archive (and drops a provenance file
    /// that signed the old one).
    pub async fn put_chart(
        &self,
        repo: &RepoName,
        chart: NewChart,
        prov: Option<NewProv>,
        force: bool,
        request: &Request,
    ) -> Result<(), Error> {
        let md = chart.metadata;
        let size = chart.bytes.len() as u64;
        let digest = Digest::of(Algorithm::Sha256, &chart.bytes).to_string();
        if let Some(p) = &prov {
            p.provenance.check(&md, &digest)?;
        }
        let conflict = || {
            Error::Conflict(format!(
                "{} already exists; add ?force to overwrite it",
                md.file_name()
            ))
        };
        // Checked before storing anything, and again in the transaction.
        if !force && self.record(repo, &md.name, &md.version).await?.is_some() {
            return Err(conflict());
        }
        self.ext.put_blob(chart.bytes).await?;
        let prov = match prov {
            Some(p) => Some(self.store_blob(p.bytes).await?),
            None => None,
        };
        let record = ChartRecord {
            metadata: md.clone(),
            digest: digest.clone(),
            size,
            created: now(),
            prov,
        };
        let value = serde_json::to_vec(&record)?;
        let key = key(repo, &md.name, &md.version);
        let target = Target::chart(repo.as_str(), &md.name, &md.version, &digest, size);
        let (charts, generations) = (&self.charts, &self.generations);
        let generation = self
            .ext
            .transaction(|tx| {
                let (key, value, target, md, conflict) = (&key, &value, &target, &md, &conflict);
                Box::pin(async move {
                    if tx.get(charts, key).await?.is_some() && !force {
                        return Err(conflict());
                    }
                    if let Some((name, version)) = file_taken(tx, charts, repo, md).await? {
                        return Err(Error::Conflict(format!(
                            "{} is already the file of chart {name} version {version}",
                            md.file_name()
                        )));
                    }
                    tx.insert(charts, key, value.clone());
                    tx.append_event(Event::new(
                        Action::ChartPush,
                        target.clone(),
                        request.clone(),
                    ))?;
                    next_generation(tx, generations, repo).await
                })
            })
            .await?;
        self.indexes
            .refresh(repo, &md.name, &md.version, generation)
            .await
    }

    /// Stores the provenance file of a version already stored (no event:
    /// the chart did not change). A second one is a conflict unless `force`.
    pub async fn put_prov(&self, repo: &RepoName, prov: NewProv, force: bool) -> Result<(), Error> {
        let (name, version) = (&prov.provenance.name, &prov.provenance.version);
        let key = key(repo, name, version);
        // Checked before storing the blob, and again in the transaction.
        let check = |record: Option<ChartRecord>| -> Result<ChartRecord, Error> {
            let record = record.ok_or_else(|| {
                Error::NotFound(format!(
                    "chart {name} version {version} not found: upload the chart first"
                ))
            })?;
            if record.prov.is_some() && !force {
                return Err(Error::Conflict(format!(
                    "{name}-{version}.tgz.prov already exists; add ?force to overwrite it"
                )));
            }
            prov.provenance.check(&record.metadata, &record.digest)?;
            Ok(record)
        };
        check(self.record(repo, name, version).await?)?;
        let blob = self.store_blob(prov.bytes.clone()).await?;
        let charts = &self.charts;
        self.ext
            .transaction(|tx| {
                let (key, blob, check) = (&key, &blob, &check);
                Box::pin(async move {
                    let mut record = check(tx.get_json(charts, key).await?)?;
                    record.prov = Some(blob.clone());
                    tx.insert_json(charts, key, &record)?;
                    Ok(())
                })
            })
            .await
    }

    /// Deletes a version, raising `chart_delete`; returns what was deleted.
    pub async fn delete(
        &self,
        repo: &RepoName,
        name: &str,
        version: &str,
        request: &Request,
    ) -> Result<ChartRecord, Error> {
        let key = key(repo, name, version);
        let (charts, generations) = (&self.charts, &self.generations);
        let (record, generation) = self
            .ext
            .transaction(|tx| {
                let key = &key;
                Box::pin(async move {
                    let record: ChartRecord = tx.get_json(charts, key).await?.ok_or_else(|| {
                        Error::NotFound(format!("chart {name} version {version} not found"))
                    })?;
                    tx.remove(charts, key);
                    let target =
                        Target::chart(repo.as_str(), name, version, &record.digest, record.size);
                    tx.append_event(Event::new(Action::ChartDelete, target, request.clone()))?;
                    let generation = next_generation(tx, generations, repo).await?;
                    Ok::<_, Error>((record, generation))
                })
            })
            .await?;
        self.indexes
            .refresh(repo, name, version, generation)
            .await?;
        Ok(record)
    }

    /// One version's record.
    pub async fn record(
        &self,
        repo: &RepoName,
        name: &str,
        version: &str,
    ) -> Result<Option<ChartRecord>, Error> {
        Ok(self.charts.get_json(&key(repo, name, version)).await?)
    }

    /// Every version of chart `name`, newest first.
    pub async fn versions(&self, repo: &RepoName, name: &str) -> Result<Vec<ChartRecord>, Error> {
        let mut records = self.scan(&chart_prefix(repo, name)).await?;
        sort_newest_first(&mut records);
        Ok(records)
    }

    /// Every chart repository that holds charts, with how many versions.
    pub async fn repositories(&self) -> Result<Vec<(String, usize)>, Error> {
        let mut out = Vec::new();
        let mut repos = std::pin::pin!(self.generations.iter(b""));
        while let Some((key, _)) = repos.try_next().await? {
            let name = String::from_utf8_lossy(&key).into_owned();
            let Some(repo) = RepoName::parse(&name) else {
                continue;
            };
            let versions = self.charts.count(&repo_prefix(&repo)).await?;
            if versions > 0 {
                out.push((name, versions));
            }
        }
        Ok(out)
    }

    /// Every chart of `repo` with its versions, newest first.
    pub async fn all(&self, repo: &RepoName) -> Result<BTreeMap<String, Vec<ChartRecord>>, Error> {
        let records = self.scan(&repo_prefix(repo)).await?;
        let mut charts: BTreeMap<String, Vec<ChartRecord>> = BTreeMap::new();
        for r in records {
            charts.entry(r.metadata.name.clone()).or_default().push(r);
        }
        charts.values_mut().for_each(|v| sort_newest_first(v));
        Ok(charts)
    }

    /// The file `charts/{file}` of `repo`: `{name}-{version}.tgz` or its
    /// `.prov`. Upload refuses a second chart with the same file name, so
    /// at most one split of the name into chart and version matches.
    pub async fn file(&self, repo: &RepoName, file: &str) -> Result<Option<File>, Error> {
        let (stem, prov) = match file.strip_suffix(".tgz.prov") {
            Some(stem) => (stem, true),
            None => match file.strip_suffix(".tgz") {
                Some(stem) => (stem, false),
                None => return Ok(None),
            },
        };
        for (name, version) in splits(stem) {
            if let Some(record) = self.record(repo, name, version).await? {
                let blob = if prov {
                    record.prov
                } else {
                    Some(StoredBlob {
                        digest: record.digest,
                        size: record.size,
                    })
                };
                return Ok(blob.map(|blob| File { blob, prov }));
            }
        }
        Ok(None)
    }

    /// Streams a stored blob.
    pub async fn read(&self, blob: &StoredBlob) -> Result<BlobStream, Error> {
        let digest = Digest::parse(&blob.digest)
            .ok_or_else(|| Error::Internal(format!("corrupt digest {:?}", blob.digest)))?;
        Ok(self.ext.read_blob(&digest, blob.size).await?)
    }

    /// The `index.yaml` of `repo`.
    pub async fn index(&self, repo: &RepoName) -> Result<crate::index::IndexFile, Error> {
        self.indexes.get(repo).await
    }

    /// Every record whose key starts with `prefix`.
    async fn scan(&self, prefix: &[u8]) -> Result<Vec<ChartRecord>, Error> {
        let mut records = Vec::new();
        let mut all = std::pin::pin!(self.charts.iter(prefix));
        while let Some((_, v)) = all.try_next().await? {
            records.push(serde_json::from_slice(&v)?);
        }
        Ok(records)
    }

    async fn store_blob(&self, bytes: Bytes) -> Result<StoredBlob, Error> {
        let size = bytes.len() as u64;
        let digest = self.ext.put_blob(bytes).await?;
        Ok(StoredBlob {
            digest: digest.to_string(),
            size,
        })
    }
}

/// Another chart of `repo` whose file name is that of `md`
/// (`a-1.0.0` + `1.0.0` and `a` + `1.0.0-1.0.0` are both `a-1.0.0-1.0.0.tgz`).
async fn file_taken(
    tx: &Tx<'_>,
    charts: &Tree,
    repo: &RepoName,
    md: &Metadata,
) -> Result<Option<(String, String)>, Error> {
    let stem = format!("{}-{}", md.name, md.version);
    for (name, version) in splits(&stem) {
        if (name, version) != (md.name.as_str(), md.version.as_str())
            && tx.get(charts, &key(repo, name, version)).await?.is_some()
        {
            return Ok(Some((name.to_owned(), version.to_owned())));
        }
    }
    Ok(None)
}

/// Moves `repo`'s generation on, inside the transaction that changes it;
/// the new generation.
async fn next_generation(tx: &Tx<'_>, generations: &Tree, repo: &RepoName) -> Result<u64, Error> {
    let key = repo.as_str().as_bytes();
    let next = registry::ext::decode_u64(tx.get(generations, key).await?.as_deref()) + 1;
    tx.insert(generations, key, next.to_be_bytes().to_vec());
    Ok(next)
}

/// Every way to read `stem` as `{name}-{version}` with a valid name and version.
fn splits(stem: &str) -> impl Iterator<Item = (&str, &str)> {
    stem.match_indices('-')
        .map(move |(i, _)| (&stem[..i], &stem[i + 1..]))
        .filter(|(name, version)| {
            metadata::check_name(name).is_ok() && metadata::parse_version(version).is_ok()
        })
}

/// Newest first by SemVer, as in `index.yaml`.
pub fn sort_newest_first(records: &mut [ChartRecord]) {
    records.sort_by_cached_key(|r| {
        let v = metadata::parse_version(&r.metadata.version).ok();
        (std::cmp::Reverse(v), r.metadata.version.clone())
    });
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}
