use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use support::receiver::Receiver;

/// Pushes a one-layer image; its manifest bytes once the registry
/// acknowledged it, `None` on any failure (the replica may be dead).
fn try_push(url: &str, repo: &str, tag: &str, seed: u64) -> Option<Vec<u8>> {
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(30))
        .build();
    let blob = |bytes: &[u8]| {
        let d = support::digest(bytes);
        let r = agent
            .post(&format!("{url}/v2/{repo}/blobs/uploads/?digest={d}"))
            .send_bytes(bytes)
            .ok()?;
        (r.status() == 201).then_some(d)
    };
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let layer = support::random_bytes(64 << 10, seed);
    let (cd, ld) = (blob(&config)?, blob(&layer)?);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    let r = agent
        .put(&format!("{url}/v2/{repo}/manifests/{tag}"))
        .set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send_bytes(&manifest)
        .ok()?;
    (r.status() == 201).then_some(manifest)
}

/// `kill -9` of a replica in the middle of pushes: every push it
/// acknowledged is on the survivor, and the survivor delivers every
/// acknowledged push's event, whichever replica was dispatching.
#[test]
fn a_replica_killed_mid_push_loses_nothing_it_acknowledged() {
    let store = SharedStore::new();
    // Started first, the victim takes the dispatcher's lease.
    let mut victim = store.replica("", "");
    let survivor = store.replica("", "");
    let rx = Receiver::start();
    create_webhook(&victim, "crashhook", push_hook(&rx.url));

    let acked: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let pushers: Vec<_> = (0..4u64)
        .map(|p| {
            let (url, acked, stop) = (victim.url(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    let tag = format!("p{p}-{i}");
                    match try_push(&url, "crash/app", &tag, p * 1000 + i) {
                        Some(m) => acked.lock().unwrap().insert(tag, m),
                        None => return,
                    };
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 24 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    victim.kill9();
    stop.store(true, Ordering::Relaxed);
    for p in pushers {
        p.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    for (tag, bytes) in &acked {
        assert!(
            manifest(&survivor, "crash/app", tag) == *bytes,
            "{tag} differs"
        );
        assert_blobs_pull(&survivor, "crash/app", bytes);
    }
    // The shared store is consistent: fsck through the survivor finds
    // nothing wrong.
    let report = get(&survivor, "/api/fsck").json();
    assert_eq!(report["problems"], json!([]), "{report}");
    assert!(report["blobs"].as_u64().unwrap() >= acked.len() as u64);

    // Every acknowledged push's event arrives (a push committed but not
    // acknowledged may too; at least once allows a repeat).
    let mut missing: BTreeSet<&String> = acked.keys().collect();
    while !missing.is_empty() {
        let e = rx.next().json();
        missing.remove(&e["target"]["tag"].as_str().unwrap().to_owned());
    }

    // The victim comes back and takes part again.
    let back = victim.restart();
    assert!(try_push(&back.url(), "crash/app", "after", 9).is_some());
    loop {
        if rx.next().json()["target"]["tag"] == "after" {
            break;
        }
    }
}
