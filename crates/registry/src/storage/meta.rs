//! Registry metadata: tree names, key encodings and record types.
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
//!
//! The event log is the database's own (see [`crate::kv`]). Extensions keep
//! their own trees, named `{namespace}.{tree}` (see [`super::extension`]).
//!
//! Keys are built with [`crate::kv::key`]: `\0` cannot occur in names, tags
//! or digests, so prefixes never collide.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::kv::{self, Db, Tree};
use crate::types::RepoName;
use crate::Error;

/// Every tree of the registry's database, opened once.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    /// The database: transactions and flushes.
    pub(crate) db: Db,
    /// Repositories that have ever held content, for the catalog.
    pub(crate) repos: Tree,
    /// Which blobs each repository holds.
    pub(crate) links: Tree,
    /// Manifest bytes.
    pub(crate) manifests: Tree,
    /// Manifest media type, size, subject and current tags.
    pub(crate) manifest_meta: Tree,
    /// Tag to digest.
    pub(crate) tags: Tree,
    /// Subject to referrer descriptors.
    pub(crate) referrers: Tree,
    /// Open upload sessions.
    pub(crate) uploads: Tree,
    /// The event log's durable view, shared with readers.
    pub(crate) log: std::sync::Arc<crate::events::EventLog>,
}

impl Meta {
    /// The registry's trees in `db`.
    pub(crate) fn open(db: Db) -> Result<Self, Error> {
        Ok(Self {
            repos: db.tree("repos")?,
            links: db.tree("links")?,
            manifests: db.tree("manifests")?,
            manifest_meta: db.tree("manifest_meta")?,
            tags: db.tree("tags")?,
            referrers: db.tree("referrers")?,
            uploads: db.tree("uploads")?,
            log: std::sync::Arc::new(crate::events::EventLog::new(db.clone())?),
            db,
        })
    }
}

/// `name \0 part`: the key of something inside a repository.
pub(crate) fn key(repo: &RepoName, part: &str) -> Vec<u8> {
    kv::key(&[repo.as_str().as_bytes(), part.as_bytes()])
}

/// `name \0`: the prefix of everything inside a repository.
pub(crate) fn prefix(repo: &RepoName) -> Vec<u8> {
    key(repo, "")
}

/// `name \0 subject \0 referrer`.
pub(crate) fn referrer_key(repo: &RepoName, subject: &str, referrer: &str) -> Vec<u8> {
    kv::key(&[
        repo.as_str().as_bytes(),
        subject.as_bytes(),
        referrer.as_bytes(),
    ])
}

/// A `name \0 rest` key split in two, as text.
pub(crate) fn split_key(key: &[u8]) -> (String, String) {
    let at = key.iter().position(|&b| b == 0).unwrap_or(key.len());
    let rest = key.get(at + 1..).unwrap_or_default();
    (
        String::from_utf8_lossy(&key[..at]).into_owned(),
        String::from_utf8_lossy(rest).into_owned(),
    )
}

/// What the registry keeps about a manifest besides its bytes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct ManifestMeta {
    /// The media type it is served with.
    pub media_type: String,
    /// Its byte count.
    pub size: u64,
    /// Its subject, so deleting it can drop the referrers entry.
    pub subject: Option<String>,
    /// Tags currently pointing at it, so deleting it can drop them
    /// (transactions read keys, not ranges).
    pub tags: BTreeSet<String>,
    /// Set while quarantine holds it (hidden from pulls); `None` once passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<Quarantine>,
    /// The Helm chart it carries, so its delete can raise `chart_delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<super::charts::OciChart>,
    /// When each tag last pointed here by a push (unix ms), for retention;
    /// absent for tags of older versions (retention treats them as new).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tagged_ms: BTreeMap<String, u64>,
    /// When it was last pushed or lost a tag (unix ms; 0: before this was
    /// recorded): how long it has been untagged.
    #[serde(default)]
    pub updated_ms: u64,
}

/// Now, in unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A manifest held by quarantine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Quarantine {
    /// `false` while it waits for a verdict, `true` once it failed (it then
    /// stays hidden).
    pub failed: bool,
    /// What the scanner said.
    pub details: Option<String>,
}

/// An upload session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct UploadRecord {
    /// The repository it uploads into.
    pub repo: String,
    /// When it started, in unix seconds, for expiry.
    pub started: u64,
    /// Bytes acknowledged so far. `None` in a record written before Berth
    /// counted them (its staging file's length is the count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    /// The parts of a session in object storage, in order (files keep one
    /// staging file per session and no parts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<super::blobs::Part>,
    /// The SHA-256 of the acknowledged bytes as a resumable state (see
    /// [`crate::types::Digester::save`]), base64; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}
