use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// A tag and its manifest's bytes.
type Image = (String, Vec<u8>);

/// Garbage collection while both replicas take pushes: one collection at a
/// time across replicas, the deleted images' blobs go, and every image
/// kept or pushed meanwhile still pulls whole from both.
#[test]
fn gc_across_replicas_while_both_serve() {
    let store = SharedStore::new();
    let config = "gc_grace = \"2s\"";
    let (a, b) = (store.replica("", config), store.replica("", config));
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for i in 0..8u64 {
        let tag = format!("t{i}");
        let (bytes, r) = support::push_image(&a.url(), "gc/app", &tag, 2 * (500 + i));
        assert_eq!(r.status, 201);
        if i % 2 == 0 {
            kept.push((tag, bytes));
        } else {
            dropped.push(bytes);
        }
    }
    for bytes in &dropped {
        let digest = support::digest(bytes);
        let r = http(
            "DELETE",
            &format!("{}/v2/gc/app/manifests/{digest}", b.url()),
            &[],
            &[],
        );
        assert_eq!(r.status, 202);
    }
    std::thread::sleep(std::time::Duration::from_millis(2500));

    // Pushes through both replicas while the collections run.
    let stop = Arc::new(AtomicBool::new(false));
    let pushed: Arc<Mutex<Vec<Image>>> = Arc::default();
    let pushers: Vec<_> = [a.url(), b.url()]
        .into_iter()
        .enumerate()
        .map(|(p, url)| {
            let (stop, pushed) = (stop.clone(), pushed.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let tag = format!("new{p}-{i}");
                    let (bytes, r) =
                        support::push_image(&url, "gc/app", &tag, 9000 + 100 * p as u64 + i);
                    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
                    pushed.lock().unwrap().push((tag, bytes));
                    i += 1;
                }
            })
        })
        .collect();
    let collect = |reg: &BerthProcess| {
        let reg_url = reg.url();
        std::thread::spawn(move || http("POST", &format!("{reg_url}/api/gc"), &[], &[]))
    };
    let (ga, gb) = (collect(&a), collect(&b));
    let reports: Vec<Resp> = [ga, gb].into_iter().map(|g| g.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    for p in pushers {
        p.join().unwrap();
    }

    // One collection at a time: a second one meanwhile is refused.
    let done: Vec<Value> = reports
        .iter()
        .filter(|r| r.status == 200)
        .map(Resp::json)
        .collect();
    assert!(!done.is_empty());
    for r in reports.iter().filter(|r| r.status != 200) {
        assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    }
    let deleted: Vec<&str> = done
        .iter()
        .flat_map(|r| r["deleted_blobs"].as_array().unwrap())
        .map(|d| d.as_str().unwrap())
        .collect();
    for bytes in &dropped {
        let m: Value = serde_json::from_slice(bytes).unwrap();
        let layer = m["layers"][0]["digest"].as_str().unwrap();
        assert!(
            deleted.contains(&layer),
            "{layer} not collected: {deleted:?}"
        );
        for reg in [&a, &b] {
            assert_eq!(get(reg, &format!("/v2/gc/app/blobs/{layer}")).status, 404);
        }
    }
    let pushed = pushed.lock().unwrap().clone();
    assert!(!pushed.is_empty());
    for (tag, bytes) in kept.iter().chain(pushed.iter()) {
        for reg in [&a, &b] {
            assert!(manifest(reg, "gc/app", tag) == *bytes, "{tag}");
            assert_blobs_pull(reg, "gc/app", bytes);
        }
    }
}
