//! The soak test: 64 clients mix pushes, pulls, tag lists and deletes
//! against one fresh Berth for 900 s (10 s in `--short`), while garbage is
//! collected every 15 s, so that the store keeps a steady size. It fails
//! unless there is no 5xx, no 4xx to what a client pushed and has not
//! deleted, no corrupt pull, and every acknowledged push and delete reaches
//! a webhook receiver; it reports throughput and memory.
//!
//! Memory is judged from the moment the run reaches its steady state, and
//! not before: until then the registry holds more data every second, by
//! design. Steady means every client holds its `LIVE_PER_CLIENT` images,
//! garbage has been collected once, and the event log holds its
//! `event_retention` newest events (the log grows until it does). In a
//! full run RSS stops rising about then, once sled's file has grown to its
//! working size (`docs/performance.md`, Memory).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::receiver::{self, Receiver};
use crate::scenarios::{sha256, Figure};
use crate::server::Berth;

/// Concurrent clients.
const CLIENTS: usize = 64;
/// Repositories they share.
const REPOS: usize = 8;
/// Images a client keeps at most: at this many, it deletes where it would
/// push, so the store reaches a steady size and memory growth that remains
/// is a leak, not data.
const LIVE_PER_CLIENT: usize = 32;

/// A push that got its 2xx.
#[derive(Clone)]
struct Pushed {
    repo: String,
    tag: String,
    manifest: String,
    layer: String,
    layer_bytes: usize,
    seed: u64,
}

/// What every client adds up.
#[derive(Default)]
struct Tally {
    ops: AtomicU64,
    pushes: AtomicU64,
    pulls: AtomicU64,
    lists: AtomicU64,
    deletes: AtomicU64,
    server_errors: AtomicU64,
    /// 4xx to a push, or to a pull or delete of the client's own image.
    refused: AtomicU64,
    corrupt: AtomicU64,
    /// Garbage collections run, and the blobs they deleted.
    collections: AtomicU64,
    collected: AtomicU64,
    /// Clients that have held `LIVE_PER_CLIENT` images at some point.
    filled: AtomicU64,
}

/// How often the soak collects garbage, as an operator's cron job would:
/// every push brings two new blobs, and without collection the store (and
/// sled's bookkeeping of it) would grow for the whole run. `--short`: 3 s.
const GC_EVERY: Duration = Duration::from_secs(15);
/// The event log's retention in the soak: Berth's default, which this many
/// clients fill in a few minutes. `--short`: 1,000, filled in a second or two.
const EVENT_RETENTION: usize = 100_000;
/// `gc_grace` for the soak: a client stores its blobs and pushes their
/// manifest within milliseconds. `--short`: 5 s.
const GC_GRACE: &str = "10s";

/// Runs the soak test; an `Err` when a guarantee was broken.
pub fn run(short: bool) -> Result<Vec<Figure>, String> {
    let duration = Duration::from_secs(if short { 10 } else { 900 });
    let (gc_every, gc_grace, retention) = if short {
        (Duration::from_secs(3), "5s", 1_000)
    } else {
        (GC_EVERY, GC_GRACE, EVENT_RETENTION)
    };
    let server = Berth::start_with(&[
        ("BERTH_GC_GRACE", gc_grace),
        ("BERTH_EVENT_RETENTION", &retention.to_string()),
    ])?;
    let url = server.url.clone();
    let receiver = Receiver::start()?;
    let hook = serde_json::json!({"serviceUri": receiver.url, "actions": ["push", "delete"]});
    ureq::put(&format!("{url}/api/webhooks/soak1"))
        .set("Content-Type", "application/json")
        .send_string(&hook.to_string())
        .map_err(|e| format!("cannot create the webhook: {e}"))?;

    let tally = Arc::new(Tally::default());
    let deleted: Arc<Mutex<Vec<Pushed>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let rss = |field| server.status_kb(field).map_or(0.0, |kb| kb as f64 / 1024.0);
    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, tally, deleted, stop) =
                (url.clone(), tally.clone(), deleted.clone(), stop.clone());
            std::thread::spawn(move || client(c, &url, &tally, &deleted, &stop))
        })
        .collect();
    // RSS once a second from the steady state on (each event reaches the
    // receiver, which counts them).
    let steady = || {
        tally.filled.load(Ordering::Relaxed) == CLIENTS as u64
            && tally.collections.load(Ordering::Relaxed) > 0
            && receiver.count() >= retention
    };
    let mut samples = Vec::new();
    let mut steady_after = None;
    let mut collected_at = Instant::now();
    while start.elapsed() < duration {
        std::thread::sleep(Duration::from_secs(1));
        if steady_after.is_none() && steady() {
            steady_after = Some(start.elapsed());
        }
        if steady_after.is_some() {
            samples.push(server.rss_mib().unwrap_or_default());
        }
        if collected_at.elapsed() >= gc_every {
            collected_at = Instant::now();
            collect_garbage(&url, &tally);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut live = Vec::new();
    for c in clients {
        live.extend(c.join().map_err(|_| "a soak client panicked")?);
    }
    let secs = start.elapsed().as_secs_f64();

    // Every acknowledged push (still there or deleted since) and delete
    // must reach the receiver.
    let deleted = deleted.lock().map_err(|_| "poisoned")?.clone();
    let mut expected: Vec<String> = live
        .iter()
        .chain(&deleted)
        .map(|p| receiver::key("push", &p.repo, &p.manifest, &p.tag))
        .collect();
    expected.extend(
        deleted
            .iter()
            .map(|p| receiver::key("delete", &p.repo, &p.manifest, "")),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let lost = loop {
        let lost = expected.iter().filter(|k| !receiver.saw(k)).count();
        if lost == 0 || Instant::now() > deadline {
            break lost;
        }
        std::thread::sleep(Duration::from_millis(200));
    };

    let t = &tally;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let (errors, corrupt, refused) = (get(&t.server_errors), get(&t.corrupt), get(&t.refused));
    let rate = |n: u64| n as f64 / secs;
    let mut figures = vec![
        Figure::new("soak: operations/s, 64 clients", rate(get(&t.ops)), "/s"),
        Figure::new(
            "soak: pushes/s (config + layer + manifest)",
            rate(get(&t.pushes)),
            "/s",
        ),
        Figure::new(
            "soak: pulls/s (manifest + layer, verified)",
            rate(get(&t.pulls)),
            "/s",
        ),
        Figure::new("soak: tag lists/s", rate(get(&t.lists)), "/s"),
        Figure::new("soak: deletes/s", rate(get(&t.deletes)), "/s"),
        Figure::new(
            "soak: 5xx responses and dropped connections",
            errors as f64,
            "",
        ),
        Figure::new(
            "soak: 4xx to pushes and to pulls and deletes of live images",
            refused as f64,
            "",
        ),
        Figure::new("soak: corrupt pulls", corrupt as f64, ""),
        Figure::new(
            "soak: garbage collections while serving",
            get(&t.collections) as f64,
            "",
        ),
        Figure::new("soak: blobs they deleted", get(&t.collected) as f64, ""),
        Figure::new("soak: events expected", expected.len() as f64, ""),
        Figure::new("soak: events lost", lost as f64, ""),
        Figure::new("soak: server peak RSS", rss("VmHWM"), "MiB"),
    ];
    match steady_after {
        Some(after) => figures.extend(memory(after, &samples, retention)),
        // 10 s can end before the steady state on a slow machine; the
        // guarantees above are still checked.
        None if short => {}
        None => return Err("the soak never reached its steady state".into()),
    }
    if errors > 0 || refused > 0 || corrupt > 0 || lost > 0 {
        return Err(format!(
            "soak test failed: {errors} 5xx, {refused} 4xx to pushes, pulls or deletes, \
             {corrupt} corrupt pulls, {lost} of {} events lost",
            expected.len()
        ));
    }
    Ok(figures)
}

/// Memory from the steady state on: `samples` are RSS once a second from
/// `after` into the run.
fn memory(after: Duration, samples: &[f64], retention: usize) -> Vec<Figure> {
    let (when_steady, end) = (samples[0], samples[samples.len() - 1]);
    let lowest = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = samples.iter().copied().fold(0.0, f64::max);
    vec![
        Figure::new(
            format!(
                "soak: seconds to the steady state (clients at {LIVE_PER_CLIENT} images, \
                 garbage collected, event log at its {retention} events)"
            ),
            after.as_secs_f64(),
            "s",
        ),
        Figure::new("soak: server RSS then", when_steady, "MiB"),
        Figure::new("soak: server RSS at the end", end, "MiB"),
        Figure::new(
            "soak: server RSS growth from then to the end",
            end - when_steady,
            "MiB",
        ),
        Figure::new("soak: server RSS, lowest from then on", lowest, "MiB"),
        Figure::new("soak: server RSS, highest from then on", highest, "MiB"),
    ]
}

/// One client: a mix of 40% pushes, 35% pulls, 15% tag lists and 10%
/// deletes (of its own pushes) until `stop`; once it holds
/// [`LIVE_PER_CLIENT`] images its pushes become deletes. Returns its pushes
/// not deleted.
fn client(
    c: usize,
    url: &str,
    tally: &Tally,
    deleted: &Mutex<Vec<Pushed>>,
    stop: &AtomicBool,
) -> Vec<Pushed> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let mut rng = (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut mine: Vec<Pushed> = Vec::new();
    let mut filled = false;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let roll = next() % 100;
        let full = mine.len() >= LIVE_PER_CLIENT;
        if full && !filled {
            filled = true;
            tally.filled.fetch_add(1, Ordering::Relaxed);
        }
        let listing = (75..90).contains(&roll) && !mine.is_empty();
        let outcome = if (roll < 40 && !full) || mine.is_empty() {
            n += 1;
            let seed = (c as u64) << 32 | n;
            let size = 1024 + (next() % (63 * 1024)) as usize;
            push(&agent, url, c, n, seed, size).map(|p| {
                mine.push(p);
                &tally.pushes
            })
        } else if (40..75).contains(&roll) {
            let p = &mine[(next() % mine.len() as u64) as usize];
            pull(&agent, url, p, tally).map(|()| &tally.pulls)
        } else if listing {
            let repo = format!("soak/r{}", next() % REPOS as u64);
            status(agent.get(&format!("{url}/v2/{repo}/tags/list")).call()).map(|_| &tally.lists)
        } else {
            let p = mine.swap_remove((next() % mine.len() as u64) as usize);
            let r = agent
                .delete(&format!("{url}/v2/{}/manifests/{}", p.repo, p.manifest))
                .call();
            status(r).map(|_| {
                if let Ok(mut d) = deleted.lock() {
                    d.push(p);
                }
                &tally.deletes
            })
        };
        match outcome {
            Ok(counter) => {
                counter.fetch_add(1, Ordering::Relaxed);
                tally.ops.fetch_add(1, Ordering::Relaxed);
            }
            Err(code) if code >= 500 => {
                tally.server_errors.fetch_add(1, Ordering::Relaxed);
            }
            // A tag list may find a repository with no push yet; everything
            // else concerns what this client pushed and has not deleted.
            Err(_) if listing => {}
            Err(_) => {
                tally.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    mine
}

/// Runs one garbage collection (`POST /api/gc`), as the registry's
/// operator would; a failed one counts as a server error.
fn collect_garbage(url: &str, tally: &Tally) {
    let report = ureq::post(&format!("{url}/api/gc"))
        .call()
        .map_err(|e| e.to_string())
        .and_then(|r| r.into_string().map_err(|e| e.to_string()))
        .and_then(|body| {
            serde_json::from_str::<serde_json::Value>(&body).map_err(|e| e.to_string())
        });
    match report {
        Ok(report) => {
            let deleted = report["deleted_blobs"].as_array().map_or(0, Vec::len);
            tally.collections.fetch_add(1, Ordering::Relaxed);
            tally.collected.fetch_add(deleted as u64, Ordering::Relaxed);
        }
        Err(e) => {
            eprintln!("bench: soak: garbage collection failed: {e}");
            tally.server_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The status of a reply, `Err(status)` unless 2xx (599: no reply at all).
fn status(r: Result<ureq::Response, ureq::Error>) -> Result<ureq::Response, u16> {
    match r {
        Ok(r) if (200..300).contains(&r.status()) => Ok(r),
        Ok(r) => Err(r.status()),
        Err(ureq::Error::Status(code, _)) => Err(code),
        Err(ureq::Error::Transport(_)) => Err(599),
    }
}

fn layer_bytes(seed: u64, size: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn push(
    agent: &ureq::Agent,
    url: &str,
    c: usize,
    n: u64,
    seed: u64,
    size: usize,
) -> Result<Pushed, u16> {
    let repo = format!("soak/r{}", c % REPOS);
    let layer = layer_bytes(seed, size);
    let config = format!("{{\"client\":{c},\"n\":{n}}}").into_bytes();
    let mut digests = HashMap::new();
    for (what, bytes) in [("config", &config), ("layer", &layer)] {
        let d = sha256(bytes);
        status(
            agent
                .post(&format!("{url}/v2/{repo}/blobs/uploads/?digest={d}"))
                .send_bytes(bytes),
        )?;
        digests.insert(what, d);
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digests["config"], "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digests["layer"], "size": size}],
    })
    .to_string();
    let tag = format!("c{c}-{n}");
    status(
        agent
            .put(&format!("{url}/v2/{repo}/manifests/{tag}"))
            .set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .send_string(&manifest),
    )?;
    Ok(Pushed {
        repo,
        tag,
        manifest: sha256(manifest.as_bytes()),
        layer: digests["layer"].clone(),
        layer_bytes: size,
        seed,
    })
}

/// Pulls `p` by tag and checks manifest and layer byte for byte.
fn pull(agent: &ureq::Agent, url: &str, p: &Pushed, tally: &Tally) -> Result<(), u16> {
    let read = |r: ureq::Response| {
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut r.into_reader(), &mut body).map(|_| body)
    };
    let m = status(
        agent
            .get(&format!("{url}/v2/{}/manifests/{}", p.repo, p.tag))
            .set("Accept", "application/vnd.oci.image.manifest.v1+json")
            .call(),
    )?;
    let manifest = read(m).map_err(|_| 599u16)?;
    let blob = status(
        agent
            .get(&format!("{url}/v2/{}/blobs/{}", p.repo, p.layer))
            .call(),
    )?;
    let layer = read(blob).map_err(|_| 599u16)?;
    if sha256(&manifest) != p.manifest || layer != layer_bytes(p.seed, p.layer_bytes) {
        tally.corrupt.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
