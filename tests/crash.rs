//! Crash safety: clients push concurrently (docker-style chunked uploads,
//! then manifests with tags) while Berth is killed with SIGKILL at random
//! moments, 20 times over. After every restart `fsck` is clean and every
//! push that got its 2xx is there byte for byte; at the end every push
//! event acknowledged to a client has reached the webhook receiver.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::receiver::Receiver;
use support::{digest, http, random_bytes, BerthProcess};

const ROUNDS: usize = 20;
const CLIENTS: usize = 6;
/// Chunk size of the PATCHes (docker uses larger ones; smaller ones give
/// the kill more moments to land in).
const CHUNK: usize = 64 * 1024;

/// A push the registry acknowledged.
#[derive(Clone, Debug)]
struct Acked {
    repo: String,
    tag: String,
    manifest: String,
    layer: String,
    seed: u64,
    size: usize,
}

/// A tiny xorshift, so a failing run can be replayed from its printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One push: config monolithic, layer in chunks, then the manifest.
/// `None` as soon as any request fails (the registry died).
fn push(url: &str, repo: &str, tag: &str, seed: u64, size: usize) -> Option<Acked> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let layer = random_bytes(size, seed);
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let config_d = digest(&config);
    let r = agent
        .post(&format!("{url}/v2/{repo}/blobs/uploads/?digest={config_d}"))
        .send_bytes(&config)
        .ok()?;
    (r.status() == 201).then_some(())?;
    let r = agent
        .post(&format!("{url}/v2/{repo}/blobs/uploads/"))
        .call()
        .ok()?;
    let mut location = r.header("location")?.to_owned();
    for (i, chunk) in layer.chunks(CHUNK).enumerate() {
        let start = i * CHUNK;
        let r = agent
            .request("PATCH", &format!("{url}{location}"))
            .set(
                "Content-Range",
                &format!("{start}-{}", start + chunk.len() - 1),
            )
            .send_bytes(chunk)
            .ok()?;
        location = r.header("location")?.to_owned();
    }
    let layer_d = digest(&layer);
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = agent
        .put(&format!("{url}{location}{sep}digest={layer_d}"))
        .call()
        .ok()?;
    (r.status() == 201).then_some(())?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_d, "size": size}],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let r = agent
        .put(&format!("{url}/v2/{repo}/manifests/{tag}"))
        .set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send_bytes(&bytes)
        .ok()?;
    (r.status() == 201).then(|| Acked {
        repo: repo.to_owned(),
        tag: tag.to_owned(),
        manifest: digest(&bytes),
        layer: layer_d,
        seed,
        size,
    })
}

/// Checks that `a` is stored: the tag resolves to its manifest and the
/// layer comes back byte for byte (`full`), or is present (`HEAD`).
fn check(url: &str, a: &Acked, full: bool) {
    let m = http(
        "GET",
        &format!("{url}/v2/{}/manifests/{}", a.repo, a.tag),
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        b"",
    );
    assert_eq!(m.status, 200, "{a:?} lost after a crash");
    assert_eq!(digest(&m.body), a.manifest, "{a:?}: the tag moved");
    let url = format!("{url}/v2/{}/blobs/{}", a.repo, a.layer);
    if full {
        let blob = http("GET", &url, &[], b"");
        assert_eq!(blob.status, 200, "{a:?}: layer lost");
        assert!(
            blob.body == random_bytes(a.size, a.seed),
            "{a:?}: layer differs"
        );
    } else {
        assert_eq!(
            http("HEAD", &url, &[], b"").status,
            200,
            "{a:?}: layer lost"
        );
    }
}

#[test]
fn acknowledged_pushes_and_events_survive_repeated_kill_9() {
    let seed = std::env::var("BERTH_TEST_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed: {seed} (BERTH_TEST_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let rx = Receiver::start();
    let mut reg = BerthProcess::with_config(&format!(
        "[delivery]\nbackoff_base = \"20ms\"\nbackoff_cap = \"200ms\"\n\
         [[webhooks]]\nname = \"crash01\"\nserviceUri = \"{}\"\nactions = [\"push\"]\n",
        rx.url
    ));
    let mut acked: Vec<Acked> = Vec::new();
    let mut kills_mid_push = 0;
    for round in 0..ROUNDS {
        let url = reg.url();
        let new = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (url, new, stop) = (url.clone(), new.clone(), stop.clone());
                let base = rng.next();
                std::thread::spawn(move || {
                    let mut rng = Rng(base | 1);
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let size = 1 + rng.below(400_000) as usize;
                        let tag = format!("r{round}-c{c}-{n}");
                        match push(&url, &format!("crash/c{c}"), &tag, rng.next(), size) {
                            Some(a) => new.lock().unwrap().push(a),
                            None => return true, // died under us
                        }
                        n += 1;
                    }
                    false
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + rng.below(500)));
        reg.kill9();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        kills_mid_push += workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .filter(|&interrupted| interrupted)
            .count();
        reg = reg.restart();
        let url = reg.url();

        let report = http("GET", &format!("{url}/api/fsck"), &[], b"").json();
        assert_eq!(
            report["problems"],
            serde_json::json!([]),
            "round {round}: fsck after kill -9"
        );
        let new = new.lock().unwrap().clone();
        for a in &new {
            check(&url, a, true);
        }
        for a in &acked {
            check(&url, a, false);
        }
        acked.extend(new);
    }
    assert!(
        acked.len() >= ROUNDS,
        "only {} pushes in {ROUNDS} rounds",
        acked.len()
    );
    assert!(
        kills_mid_push >= ROUNDS,
        "kills rarely interrupted a push ({kills_mid_push})"
    );

    // Every acknowledged push has its event delivered (at least once).
    let want: HashSet<(String, String, String)> = acked
        .iter()
        .map(|a| (a.repo.clone(), a.tag.clone(), a.manifest.clone()))
        .collect();
    let mut got: HashMap<String, (String, String, String)> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !want.iter().all(|w| got.values().any(|g| g == w)) {
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged events delivered",
            got.len(),
            want.len()
        );
        for r in rx.drain() {
            let e = r.json();
            let t = &e["target"];
            let key = (
                t["repository"].as_str().unwrap().to_owned(),
                t["tag"].as_str().unwrap_or_default().to_owned(),
                t["digest"].as_str().unwrap().to_owned(),
            );
            got.insert(e["id"].as_str().unwrap().to_owned(), key);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for a in &acked {
        check(&reg.url(), a, true);
    }
    eprintln!(
        "{ROUNDS} kills, {} pushes acknowledged and intact, {kills_mid_push} pushes interrupted, {} events delivered",
        acked.len(),
        got.len()
    );
}
