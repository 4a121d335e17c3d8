//! What a rejected request must not change, and the health check every
//! test ends with.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::{digest, http, push_image, random_bytes, BerthProcess};

/// Everything a request could have stored: repositories in the catalog,
/// events in the log, open upload sessions, and the files under the data
/// directory's `blobs/` and `uploads/` (with their sizes).
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    repositories: serde_json::Value,
    events: serde_json::Value,
    open_uploads: u64,
    blob_files: BTreeSet<(String, u64)>,
    upload_files: BTreeSet<(String, u64)>,
}

impl Snapshot {
    /// The registry's state now.
    pub fn take(reg: &BerthProcess) -> Self {
        let url = reg.url();
        let catalog = http("GET", &format!("{url}/v2/_catalog"), &[], &[]);
        assert_eq!(catalog.status, 200);
        let events = http("GET", &format!("{url}/api/events"), &[], &[]);
        assert_eq!(events.status, 200);
        Self {
            repositories: catalog.json()["repositories"].clone(),
            events: events.json()["events"].clone(),
            open_uploads: open_uploads(reg),
            blob_files: files(&reg.dir().join("blobs")),
            upload_files: files(&reg.dir().join("uploads")),
        }
    }

    /// Panics, naming `what`, if the registry's state differs from `self`.
    pub fn assert_unchanged(&self, reg: &BerthProcess, what: &str) {
        let now = Self::take(reg);
        assert_eq!(&now, self, "{what} changed the registry's state");
    }

    /// The number of events in the log.
    pub fn event_count(&self) -> usize {
        self.events.as_array().map_or(0, Vec::len)
    }
}

/// `berth_uploads_in_progress` from `/metrics`.
pub fn open_uploads(reg: &BerthProcess) -> u64 {
    let m = http("GET", &format!("{}/metrics", reg.url()), &[], &[]);
    let text = String::from_utf8_lossy(&m.body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("berth_uploads_in_progress "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no berth_uploads_in_progress in:\n{text}"))
}

/// Every regular file under `dir` (recursively) with its size, by path
/// relative to `dir`.
fn files(dir: &Path) -> BTreeSet<(String, u64)> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir");
                out.insert((rel.display().to_string(), meta.len()));
            }
        }
    }
    out
}

/// The registry still works: a `/health` probe, then a whole image push
/// (blobs and manifest), pulled back byte for byte, with its push event.
pub fn assert_healthy(reg: &BerthProcess) {
    let url = reg.url();
    let health = http("GET", &format!("{url}/health"), &[], &[]);
    assert_eq!(health.status, 200, "the registry is not healthy");
    let seed = 4242;
    let repo = "healthy/after";
    let (manifest, put) = push_image(&url, repo, "ok", seed);
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    let got = http("GET", &format!("{url}/v2/{repo}/manifests/ok"), &[], &[]);
    assert_eq!((got.status, &got.body), (200, &manifest));
    let layer = random_bytes(1000, seed);
    let blob = http(
        "GET",
        &format!("{url}/v2/{repo}/blobs/{}", digest(&layer)),
        &[],
        &[],
    );
    assert!(blob.status == 200 && blob.body == layer, "layer pull");
    let events = http(
        "GET",
        &format!("{url}/api/events?repository={repo}"),
        &[],
        &[],
    );
    let pushed = events.json()["events"].as_array().map_or(0, Vec::len);
    assert_eq!(pushed, 1, "one push event for the health check's push");
}
