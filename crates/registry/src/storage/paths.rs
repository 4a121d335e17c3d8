//! The on-disk layout. This is the only module that builds paths.
//!
//! ```text
//! <data-dir>/
//!   meta/                        sled database: manifests, tags, blob links,
//!                                referrers, upload sessions, the event log
//!   <extension>/                 an extension's own database (`webhooks/`)
//!   blobs/<algo>/<hex[..2]>/<hex> verified blob content, named by its digest
//!   uploads/<uuid>               bytes of an upload session in progress
//! ```
//!
//! Blob and upload paths are built only from a validated [`Digest`] or
//! [`UploadId`], so no request can name a path outside the data directory.

use std::path::PathBuf;

use crate::types::{Digest, UploadId};

/// The paths under one data directory.
#[derive(Clone, Debug)]
pub(crate) struct Paths {
    root: PathBuf,
}

impl Paths {
    /// The layout rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Whether a Berth store is here (its `meta` database exists).
    pub fn holds_store(&self) -> bool {
        self.meta().is_dir()
    }

    /// The sled database directory.
    pub fn meta(&self) -> PathBuf {
        self.root.join("meta")
    }

    /// The database of its own an extension may keep (see
    /// [`super::extension::ExtensionStore::own_db`]).
    pub fn extension(&self, namespace: &str) -> PathBuf {
        self.root.join(namespace)
    }

    /// The namespaces of the extensions' own databases present: the
    /// directories other than `meta`, `blobs` and `uploads` that hold a
    /// sled database.
    pub fn extension_databases(&self) -> std::io::Result<Vec<String>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = ["meta", "blobs", "uploads"].contains(&name.as_str());
            if !ours && entry.path().join("conf").is_file() {
                found.push(name);
            }
        }
        found.sort();
        Ok(found)
    }

    /// Where a verified blob lives.
    pub fn blob(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.blobs(digest.algorithm()).join(&hex[..2]).join(hex)
    }

    /// The directory holding the blobs of one algorithm.
    pub fn blobs(&self, algorithm: crate::types::Algorithm) -> PathBuf {
        self.root.join("blobs").join(algorithm.as_str())
    }

    /// The directory holding upload sessions' bytes.
    pub fn uploads(&self) -> PathBuf {
        self.root.join("uploads")
    }

    /// The bytes of one upload session.
    pub fn upload(&self, id: &UploadId) -> PathBuf {
        self.uploads().join(id.as_str())
    }
}
