//! `berth fsck`: clean on a healthy store; on a store damaged by hand (a
//! corrupt blob, a lost blob, a dangling tag, a wrong tag list, an expired
//! upload, orphan upload bytes) it names every problem, `--repair` fixes
//! the repairable ones, and re-pushing the lost content makes it clean.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use registry::ext::{key, Db};
use serde_json::Value;
use support::{digest, http, push_blob, push_image, BerthProcess};

/// `berth fsck ARGS -o json`: (success, report).
fn fsck(args: &[&str]) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("fsck")
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fsck printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

fn kinds(report: &Value, repaired: Option<bool>) -> Vec<String> {
    let mut kinds: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| repaired.is_none_or(|r| p["repaired"] == r))
        .map(|p| p["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds
}

/// Where the store keeps a blob (`storage::paths` draws the layout).
fn blob_path(dir: &Path, d: &str) -> std::path::PathBuf {
    let hex = d.strip_prefix("sha256:").unwrap();
    dir.join("blobs/sha256").join(&hex[..2]).join(hex)
}

#[test]
fn fsck_finds_repairs_and_confirms_a_damaged_store() {
    let mut reg = BerthProcess::start();
    let url = reg.url();
    let dir = reg.dir().to_owned();
    push_image(&url, "fs/a", "v1", 1);
    push_image(&url, "fs/b", "v1", 2);
    let corrupt = random(3000, 3);
    let lost = random(4000, 4);
    let (corrupt_d, lost_d) = (
        push_blob(&url, "fs/c", &corrupt),
        push_blob(&url, "fs/c", &lost),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": corrupt_d, "size": corrupt.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": lost_d, "size": lost.len()}],
    });
    let put = http(
        "PUT",
        &format!("{url}/v2/fs/c/manifests/v1"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        manifest.to_string().as_bytes(),
    );
    assert_eq!(put.status, 201);

    let (ok, report) = fsck(&["--registry", &url]);
    assert!(ok, "a healthy store: {report}");
    assert_eq!(kinds(&report, None), Vec::<String>::new());
    assert_eq!(report["manifests"], 3);
    assert_eq!(report["tags"], 3);
    assert_eq!(report["blobs"], 6);
    assert!(reg.terminate().success());

    // Damage it by hand.
    std::fs::write(blob_path(&dir, &corrupt_d), b"bit rot").unwrap();
    std::fs::remove_file(blob_path(&dir, &lost_d)).unwrap();
    damage(&dir);
    let data = dir.to_str().unwrap();
    let (ok, report) = fsck(&["--data-dir", data]);
    assert!(!ok, "problems must fail the command");
    assert_eq!(
        kinds(&report, None),
        [
            "corrupt_blob",
            "dangling_tag",
            "expired_upload",
            "link_without_blob",
            "missing_blob",
            "tag_index_mismatch",
        ]
    );
    let (ok, report) = fsck(&["--data-dir", data, "--repair"]);
    assert!(!ok, "a missing blob cannot be repaired");
    assert_eq!(kinds(&report, Some(false)), ["missing_blob"]);
    assert!(
        !blob_path(&dir, &corrupt_d).exists(),
        "the corrupt file is gone"
    );

    // The registry now says the damaged blobs are unknown, so clients
    // re-push them; then the store is clean.
    let mut reg = reg.restart();
    let url = reg.url();
    let gone = http("GET", &format!("{url}/v2/fs/c/blobs/{corrupt_d}"), &[], b"");
    assert_eq!(
        (gone.status, gone.error_code().as_str()),
        (404, "BLOB_UNKNOWN")
    );
    assert_eq!(push_blob(&url, "fs/c", &corrupt), corrupt_d);
    assert_eq!(push_blob(&url, "fs/c", &lost), lost_d);
    let (ok, report) = fsck(&["--registry", &url]);
    assert!(ok, "{report}");

    // Upload bytes no session owns, an hour old, found on a running registry
    // (at start-up, recovery deletes such files by itself).
    let orphan = dir
        .join("uploads")
        .join("0f0f0f0f-0000-4000-8000-000000000000");
    std::fs::write(&orphan, b"nobody's").unwrap();
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&orphan)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let (ok, report) = fsck(&["--registry", &url]);
    assert!(!ok);
    assert_eq!(kinds(&report, None), ["orphan_upload_file"]);
    let (ok, _) = fsck(&["--registry", &url, "--repair"]);
    assert!(ok && !orphan.exists());
    let pulled = http("GET", &format!("{url}/v2/fs/c/blobs/{corrupt_d}"), &[], b"");
    assert_eq!(digest(&pulled.body), corrupt_d);
    assert_eq!(
        http("GET", &format!("{url}/v2/fs/b/tags/list"), &[], b"").json()["tags"][0],
        "v1"
    );
    assert!(reg.terminate().success());
}

/// Damages the metadata of the stopped store at `dir` as a bug or a bad
/// hand edit would: a tag to a manifest never stored, a manifest record
/// that forgets its tag, an upload session from long ago.
fn damage(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = Db::open(&dir.join("meta")).unwrap();
        let (tags, metas, uploads) = (
            db.tree("tags").unwrap(),
            db.tree("manifest_meta").unwrap(),
            db.tree("uploads").unwrap(),
        );
        let ghost = format!("sha256:{}", "e".repeat(64));
        tags.insert(&key(&[b"fs/a", b"ghost"]), ghost.as_bytes())
            .await
            .unwrap();
        // fs/b:v1 still exists, but its manifest forgets the tag.
        let b = tags.get(&key(&[b"fs/b", b"v1"])).await.unwrap().unwrap();
        let meta_key = key(&[b"fs/b", &b]);
        let mut record: Value = metas.get_json(&meta_key).await.unwrap().unwrap();
        record["tags"] = serde_json::json!([]);
        metas
            .insert(&meta_key, &serde_json::to_vec(&record).unwrap())
            .await
            .unwrap();
        let id = "0e0e0e0e-0000-4000-8000-000000000000";
        let old = serde_json::json!({"repo": "fs/a", "started": 1});
        uploads
            .insert(id.as_bytes(), &serde_json::to_vec(&old).unwrap())
            .await
            .unwrap();
        std::fs::write(dir.join("uploads").join(id), b"half").unwrap();
        db.flush().await.unwrap();
    });
}

fn random(n: usize, seed: u64) -> Vec<u8> {
    support::random_bytes(n, seed)
}
