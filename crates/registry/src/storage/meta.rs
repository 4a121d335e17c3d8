//! Registry metadata in sled: tree names, key encodings and record types.
//!
//! | tree            | key                              | value                          |
//! |-----------------|----------------------------------|--------------------------------|
//! | `repos`         | name                             | empty                          |
//! | `links`         | name `\0` digest                 | blob size, u64 big-endian      |
//! | `manifests`     | name `\0` digest                 | the manifest bytes as pushed   |
//! | `manifest_meta` | name `\0` digest                 | [`ManifestMeta`] JSON          |
//! | `tags`          | name `\0` tag                    | digest                         |
//! | `referrers`     | name `\0` subject `\0` digest    | descriptor JSON                |
//! | `uploads`       | upload id                        | [`UploadRecord`] JSON          |
//! | `events`        | sequence, u64 big-endian         | [`crate::events::Record`] JSON |
//! | `counters`      | counter name                     | u64 big-endian                 |
//!
//! Extensions keep their own trees, named `{namespace}.{tree}` (see
//! [`super::extension`]).
//!
//! `\0` cannot occur in names, tags or digests, so prefixes never collide.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::types::RepoName;

/// Every tree of the database, opened once.
#[derive(Clone, Debug)]
pub struct Meta {
    /// The database, for flushing.
    pub db: sled::Db,
    /// Repositories that have ever held content, for the catalog.
    pub repos: sled::Tree,
    /// Which blobs each repository holds.
    pub links: sled::Tree,
    /// Manifest bytes.
    pub manifests: sled::Tree,
    /// Manifest media type, size, subject and current tags.
    pub manifest_meta: sled::Tree,
    /// Tag to digest.
    pub tags: sled::Tree,
    /// Subject to referrer descriptors.
    pub referrers: sled::Tree,
    /// Open upload sessions.
    pub uploads: sled::Tree,
    /// The event log (see [`crate::events`]).
    pub events: sled::Tree,
    /// Sequence counters.
    pub counters: sled::Tree,
    /// The event log's durable view, shared with readers.
    pub log: std::sync::Arc<crate::events::EventLog>,
    /// Group commit for this database (see [`super::gate`]).
    flusher: std::sync::Arc<super::gate::Flusher>,
}

/// sled's page cache. Its default, 1 GiB, lets memory grow with the store;
/// the working set of a registry's metadata (tags, recent manifests, the
/// tail of the event log) is small, and blobs never pass through sled.
const CACHE_BYTES: u64 = 8 << 20;

impl Meta {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &std::path::Path) -> sled::Result<Self> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        let events = db.open_tree("events")?;
        let counters = db.open_tree("counters")?;
        let log = std::sync::Arc::new(crate::events::EventLog::open(
            events.clone(),
            counters.clone(),
        )?);
        Ok(Self {
            repos: db.open_tree("repos")?,
            links: db.open_tree("links")?,
            manifests: db.open_tree("manifests")?,
            manifest_meta: db.open_tree("manifest_meta")?,
            tags: db.open_tree("tags")?,
            referrers: db.open_tree("referrers")?,
            uploads: db.open_tree("uploads")?,
            events,
            counters,
            log,
            flusher: std::sync::Arc::default(),
            db,
        })
    }

    /// Makes every committed change durable; called before any 2xx that
    /// acknowledges a change. Publishes the event sequence number it covered.
    pub async fn flush(&self) -> sled::Result<()> {
        let seq = self.log.last_committed()?;
        self.flusher.flush(&self.db).await?;
        self.log.mark_durable(seq);
        Ok(())
    }
}

/// `name \0 part`: the key of something inside a repository.
pub fn key(repo: &RepoName, part: &str) -> Vec<u8> {
    key_str(repo.as_str(), part)
}

/// [`key`] for a repository name read back from a key.
pub fn key_str(repo: &str, part: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(repo.len() + 1 + part.len());
    k.extend_from_slice(repo.as_bytes());
    k.push(0);
    k.extend_from_slice(part.as_bytes());
    k
}

/// `name \0`: the prefix of everything inside a repository.
pub fn prefix(repo: &RepoName) -> Vec<u8> {
    key(repo, "")
}

/// `name \0 subject \0 referrer`.
pub fn referrer_key(repo: &RepoName, subject: &str, referrer: &str) -> Vec<u8> {
    let mut k = key(repo, subject);
    k.push(0);
    k.extend_from_slice(referrer.as_bytes());
    k
}

/// What the registry keeps about a manifest besides its bytes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ManifestMeta {
    /// The media type it is served with.
    pub media_type: String,
    /// Its byte count.
    pub size: u64,
    /// Its subject, so deleting it can drop the referrers entry.
    pub subject: Option<String>,
    /// Tags currently pointing at it, so deleting it can drop them (sled
    /// transactions cannot scan).
    pub tags: BTreeSet<String>,
    /// Set while quarantine holds it (hidden from pulls); `None` once passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<Quarantine>,
    /// The Helm chart it carries, so its delete can raise `chart_delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<super::charts::OciChart>,
}

/// A manifest held by quarantine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    /// `false` while it waits for a verdict, `true` once it failed (it then
    /// stays hidden).
    pub failed: bool,
    /// What the scanner said.
    pub details: Option<String>,
}

/// An upload session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadRecord {
    /// The repository it uploads into.
    pub repo: String,
    /// When it started, in unix seconds, for expiry.
    pub started: u64,
}

/// Decodes a JSON record, turning corruption into an internal error.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, crate::Error> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Decodes a big-endian u64 value.
pub fn decode_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}
