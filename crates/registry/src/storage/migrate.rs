//! `berth migrate`: moves a single-node store (sled and files under a data
//! directory) into the shared one replicas use (PostgreSQL and
//! S3-compatible storage), without re-pushing anything.
//!
//! 1. **Blobs** first, so no copied manifest ever references a blob the
//!    target lacks. Each is staged in the target, read back, hashed, and
//!    committed only if it hashes to its digest; a blob the target already
//!    holds at the same size was verified when it was stored there, and is
//!    left alone.
//! 2. **Metadata**: every tree of the registry's database (manifests, tags,
//!    links, referrers, quarantine, charts, ...) and of each extension's own
//!    database (webhooks, their queues and delivery histories), made equal
//!    in the target; upload sessions in progress are not carried (clients
//!    start them again).
//! 3. **The event log**, with its sequence numbers, so webhook cursors and
//!    `after=` positions keep their meaning; new events follow them.
//!
//! Every step can run again: an interrupted migration is resumed by
//! running it once more, and a finished one run again copies only what
//! changed. The target must be empty or hold an earlier migration of the
//! same directory (recorded in its `migration` tree); the source must not
//! be in use (sled refuses a second opener).

use std::path::Path;

use futures_util::StreamExt;
use serde::Serialize;

use super::blobs::Blobs;
use super::paths::Paths;
use super::space::Space;
use crate::kv::{Copied, Db};
use crate::types::{ByteRange, Digester, UploadId};
use crate::Error;

/// The tree of the target that names the migrated directory.
const MARKER_TREE: &str = "migration";
const MARKER_KEY: &[u8] = b"source";

/// What a migration did.
#[derive(Debug, Default, Serialize)]
pub struct MigrateReport {
    /// Blobs copied and verified.
    pub blobs_copied: usize,
    /// Their bytes.
    pub bytes_copied: u64,
    /// Blobs the target already held.
    pub blobs_present: usize,
    /// The databases copied: `registry`, then each extension's own.
    pub databases: Vec<String>,
    /// Trees, entries and log entries copied.
    pub copied: Copied,
    /// Upload sessions in progress, not carried.
    pub uploads_left: usize,
}

/// Copies the store under `dir` into PostgreSQL (`metadata_url`) and
/// object storage (`blob_url`); `progress` hears of each step.
pub async fn migrate(
    dir: &Path,
    metadata_url: &str,
    blob_url: &str,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<MigrateReport, Error> {
    if metadata_url.is_empty() || blob_url.is_empty() {
        return Err(Error::Config(
            "migrate needs a target: metadata_url (postgres://...) and blob_url (s3://...)".into(),
        ));
    }
    let paths = Paths::new(dir);
    if !paths.holds_store() {
        return Err(Error::Config(format!(
            "{} holds no Berth store (no meta/ database)",
            dir.display()
        )));
    }
    let source = Db::open(&paths.meta()).map_err(|e| {
        Error::Config(format!(
            "cannot open {} (is a registry running on it?): {e}",
            dir.display()
        ))
    })?;
    let target = Db::connect(metadata_url).await?;
    claim(&target, dir).await?;
    let mut report = MigrateReport::default();

    // Only read from the source: its disk's free space does not matter.
    let (from, to) = (
        Blobs::open("", &paths, Space::unwatched())?,
        Blobs::open(blob_url, &paths, Space::unwatched())?,
    );
    copy_blobs(&from, &to, &mut report, progress).await?;

    progress("copying the registry's database".into());
    source
        .copy_trees(&target, &["uploads"], &mut report.copied)
        .await?;
    report.uploads_left = source.tree("uploads")?.count(b"").await?;
    report.databases.push("registry".into());
    for namespace in paths.extension_databases()? {
        progress(format!("copying the {namespace} database"));
        let own = Db::open(&paths.extension(&namespace))?;
        own.copy_trees(&target.scoped(&namespace), &[], &mut report.copied)
            .await?;
        report.databases.push(namespace);
    }
    progress("copying the event log".into());
    source.copy_log(&target, &mut report.copied).await?;
    Ok(report)
}

/// Records in `target` that it receives `dir`'s store, unless it is in use
/// otherwise: non-empty, and not from an earlier migration of `dir`.
async fn claim(target: &Db, dir: &Path) -> Result<(), Error> {
    let source = std::fs::canonicalize(dir)?.to_string_lossy().into_owned();
    let marker = target.tree(MARKER_TREE)?;
    let recorded = marker.get(MARKER_KEY).await?;
    if let Some(recorded) = &recorded {
        if recorded != source.as_bytes() {
            return Err(Error::Config(format!(
                "the target holds a migration of {}, not of {source}",
                String::from_utf8_lossy(recorded)
            )));
        }
        return Ok(());
    }
    if !target.tree_names().await?.is_empty() || target.log_last().await? > 0 {
        return Err(Error::Config(
            "the target database already holds a registry; migrate into an empty one".into(),
        ));
    }
    marker.insert(MARKER_KEY, source.as_bytes()).await
}

/// Copies each blob of `from` that `to` lacks, verifying it in `to`.
async fn copy_blobs(
    from: &Blobs,
    to: &Blobs,
    report: &mut MigrateReport,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<(), Error> {
    let blobs = from.list().await?;
    let total = blobs.len();
    for (i, blob) in blobs.iter().enumerate() {
        if to.size(&blob.digest).await? == Some(blob.size) {
            report.blobs_present += 1;
            continue;
        }
        let id = UploadId::new();
        to.stage(&id).await?;
        let bytes = from
            .read(
                &blob.digest,
                ByteRange {
                    start: 0,
                    end: blob.size,
                },
            )
            .await?
            .map(|chunk| chunk.map_err(Error::from));
        let part = to.append(&id, 0, bytes).await?;
        let parts = [part];
        let hashed = to
            .hash_staged(&id, &parts, Digester::new(blob.digest.algorithm()))
            .await?;
        if hashed != blob.digest {
            to.discard(&id).await?;
            return Err(Error::Config(format!(
                "blob {} in the source hashes to {hashed}: run `berth fsck --repair` on it first",
                blob.digest
            )));
        }
        to.commit(&id, &parts, &blob.digest).await?;
        to.discard(&id).await?;
        report.blobs_copied += 1;
        report.bytes_copied += blob.size;
        progress(format!(
            "blob {} of {total}: {} ({} bytes)",
            i + 1,
            blob.digest,
            blob.size
        ));
    }
    Ok(())
}
