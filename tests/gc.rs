//! `berth gc`: deletes unreferenced blobs older than `gc_grace` and expired
//! uploads, keeps everything referenced or young, deletes nothing in a dry
//! run, and is safe while clients keep pushing.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::{digest, http, push_blob, push_image, random_bytes, BerthProcess};

/// `berth gc ARGS -o json` against `url`.
fn gc(url: &str, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["gc", "--registry", url, "-o", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn deleted(report: &Value) -> Vec<String> {
    let mut d: Vec<String> = serde_json::from_value(report["deleted_blobs"].clone()).unwrap();
    d.sort();
    d
}

fn status(url: &str, repo: &str, digest: &str) -> u16 {
    http("HEAD", &format!("{url}/v2/{repo}/blobs/{digest}"), &[], b"").status
}

#[test]
fn gc_deletes_only_old_unreferenced_blobs_and_expired_uploads() {
    let reg = BerthProcess::with_config("gc_grace = \"1s\"\nupload_expiry = \"1s\"\n");
    let url = reg.url();
    let (kept_manifest, _) = push_image(&url, "gc/app", "v1", 1);
    let kept: Value = serde_json::from_slice(&kept_manifest).unwrap();
    let kept_layer = kept["layers"][0]["digest"].as_str().unwrap().to_owned();
    let orphan = push_blob(&url, "gc/app", &random_bytes(5000, 2));
    // A manifest deleted by digest leaves its blobs unreferenced.
    let (gone_manifest, _) = push_image(&url, "gc/old", "v1", 3);
    let gone: Value = serde_json::from_slice(&gone_manifest).unwrap();
    let gone_layer = gone["layers"][0]["digest"].as_str().unwrap().to_owned();
    let gone_config = gone["config"]["digest"].as_str().unwrap().to_owned();
    let del = http(
        "DELETE",
        &format!("{url}/v2/gc/old/manifests/{}", digest(&gone_manifest)),
        &[],
        b"",
    );
    assert_eq!(del.status, 202);
    let upload = http("POST", &format!("{url}/v2/gc/app/blobs/uploads/"), &[], b"");
    let location = upload.header("location").unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(2100));
    let young = push_blob(&url, "gc/app", &random_bytes(6000, 4));

    let mut garbage = vec![orphan.clone(), gone_layer.clone(), gone_config];
    garbage.sort();
    let dry = gc(&url, &["--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(deleted(&dry), garbage);
    assert_eq!(dry["young_blobs"], 1);
    assert_eq!(
        status(&url, "gc/app", &orphan),
        200,
        "a dry run deletes nothing"
    );
    assert_eq!(
        http("GET", &format!("{url}{location}"), &[], b"").status,
        204
    );

    let done = gc(&url, &[]);
    assert_eq!(deleted(&done), garbage);
    assert_eq!(done["expired_uploads"].as_array().unwrap().len(), 1);
    assert_eq!(status(&url, "gc/app", &orphan), 404);
    assert_eq!(status(&url, "gc/old", &gone_layer), 404);
    assert_eq!(status(&url, "gc/app", &young), 200, "younger than gc_grace");
    assert_eq!(status(&url, "gc/app", &kept_layer), 200);
    let pulled = http(
        "GET",
        &format!("{url}/v2/gc/app/manifests/v1"),
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        b"",
    );
    assert_eq!(pulled.body, kept_manifest);
    assert_eq!(
        http("GET", &format!("{url}{location}"), &[], b"").status,
        404
    );
    let fsck = http("GET", &format!("{url}/api/fsck"), &[], b"").json();
    assert_eq!(fsck["problems"], serde_json::json!([]));
    assert_eq!(
        deleted(&gc(&url, &[])),
        Vec::<String>::new(),
        "nothing left to collect"
    );
}

#[test]
fn gc_runs_safely_while_clients_push() {
    let reg = BerthProcess::with_config("gc_grace = \"2s\"\n");
    let url = reg.url();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let pushers: Vec<_> = (0..4)
        .map(|c| {
            let (url, stop, acked, failures) =
                (url.clone(), stop.clone(), acked.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let seed = c * 1_000_000 + n;
                    let (manifest, r) =
                        push_image(&url, &format!("busy/c{c}"), &format!("t{n}"), seed);
                    if r.status == 201 {
                        acked.lock().unwrap().push((c, n, manifest));
                    } else {
                        failures
                            .lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&r.body).into_owned());
                    }
                    n += 1;
                }
            })
        })
        .collect();
    // Garbage accumulates meanwhile: blobs no manifest will ever reference.
    let mut orphans = Vec::new();
    for i in 0..20 {
        orphans.push(push_blob(&url, "busy/junk", &random_bytes(3000, 9_000 + i)));
    }
    std::thread::sleep(Duration::from_millis(2200));
    let mut collected = Vec::new();
    for _ in 0..15 {
        collected.extend(deleted(&gc(&url, &[])));
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for p in pushers {
        p.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "pushes failed during gc: {failures:?}");
    for o in &orphans {
        assert!(collected.contains(o), "orphan {o} not collected");
    }
    let acked = acked.lock().unwrap();
    assert!(acked.len() > 20, "only {} pushes", acked.len());
    for (c, n, manifest) in acked.iter() {
        let got = http(
            "GET",
            &format!("{url}/v2/busy/c{c}/manifests/t{n}"),
            &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
            b"",
        );
        assert_eq!(&got.body, manifest);
        let m: Value = serde_json::from_slice(manifest).unwrap();
        for d in [&m["config"]["digest"], &m["layers"][0]["digest"]] {
            assert_eq!(
                status(&url, &format!("busy/c{c}"), d.as_str().unwrap()),
                200,
                "a blob of a pushed image was collected"
            );
        }
    }
    let fsck = http("GET", &format!("{url}/api/fsck"), &[], b"").json();
    assert_eq!(fsck["problems"], serde_json::json!([]));
}
