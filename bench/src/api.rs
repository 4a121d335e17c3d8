//! Request rates: small blob pushes (POST, then PUT `?digest=` with the
//! bytes), manifest PUTs by tag (each acknowledged only once durable), and
//! manifest GETs by tag. Each runs for a fixed time on N keep-alive
//! connections, one client thread each; given several URLs (replicas of
//! one registry), the threads take them in turn.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::scenarios::{sha256, Ceiling, Figure};

/// Runs every rate scenario against `urls`.
pub fn run_all(urls: &[String], short: bool) -> Result<Vec<Figure>, String> {
    let time = Duration::from_secs(if short { 1 } else { 5 });
    let url = |t: usize| urls[t % urls.len()].as_str();
    let mut figures = Vec::new();
    for conns in [1, 16] {
        let r = rate(conns, time, |agent, t, n| push_blob(agent, url(t), t, n))?;
        figures.push(Figure::new(
            format!("small blob pushes (1 KiB, POST + PUT), {conns} connection(s)"),
            r,
            "/s",
        ));
    }
    let (config, layer) = (base_blob(url(0), b"{}")?, base_blob(url(0), &[7; 1024])?);
    for conns in [1, 16] {
        let r = rate(conns, time, |agent, t, n| {
            put_manifest(
                agent,
                url(t),
                &config,
                &layer,
                &format!("c{conns}-t{t}-{n}"),
            )
        })?;
        figures.push(Figure {
            // One connection waits for one flush per PUT; more share flushes.
            ceiling: (conns == 1).then_some(Ceiling::Fsync),
            ..Figure::new(
                format!("manifest PUTs by tag (durable before 201), {conns} connection(s)"),
                r,
                "/s",
            )
        });
    }
    put_manifest(&ureq::agent(), url(0), &config, &layer, "get")?;
    for conns in [1, 64] {
        let r = rate(conns, time, |agent, t, _| get_manifest(agent, url(t)))?;
        figures.push(Figure::new(
            format!("manifest GETs by tag, {conns} connection(s)"),
            r,
            "/s",
        ));
    }
    Ok(figures)
}

/// Runs `op(agent, n)` for each `n` in `0..count`, 16 connections at once
/// (seeding a registry).
pub fn spread(
    count: u64,
    op: impl Fn(&ureq::Agent, u64) -> Result<(), String> + Sync,
) -> Result<(), String> {
    const CONNS: u64 = 16;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..CONNS)
            .map(|t| {
                let op = &op;
                s.spawn(move || -> Result<(), String> {
                    let agent = ureq::agent();
                    (t..count)
                        .step_by(CONNS as usize)
                        .try_for_each(|n| op(&agent, n))
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| "a client panicked".to_string())?)
    })
}

/// Operations per second of `op` on `conns` connections for `time`.
fn rate(
    conns: usize,
    time: Duration,
    op: impl Fn(&ureq::Agent, usize, u64) -> Result<(), String> + Sync,
) -> Result<f64, String> {
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..conns)
            .map(|t| {
                let (op, done) = (&op, &done);
                s.spawn(move || -> Result<(), String> {
                    let agent = ureq::AgentBuilder::new().max_idle_connections(1).build();
                    let mut n = 0;
                    while start.elapsed() < time {
                        op(&agent, t, n)?;
                        n += 1;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| "a client panicked".to_string())?)
    })?;
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

fn push_blob(agent: &ureq::Agent, url: &str, t: usize, n: u64) -> Result<(), String> {
    let mut bytes = vec![0u8; 1024];
    bytes[..16].copy_from_slice(&((t as u128) << 64 | u128::from(n)).to_le_bytes());
    let r = agent
        .post(&format!("{url}/v2/bench/small/blobs/uploads/"))
        .call()
        .map_err(|e| format!("POST upload: {e}"))?;
    let location = r.header("location").ok_or("no Location")?.to_owned();
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = agent
        .put(&format!("{url}{location}{sep}digest={}", sha256(&bytes)))
        .send_bytes(&bytes)
        .map_err(|e| format!("PUT blob: {e}"))?;
    expect(r.status(), 201)
}

pub fn base_blob(url: &str, bytes: &[u8]) -> Result<(String, usize), String> {
    let d = sha256(bytes);
    ureq::post(&format!(
        "{url}/v2/bench/manifests/blobs/uploads/?digest={d}"
    ))
    .send_bytes(bytes)
    .map_err(|e| format!("base blob: {e}"))?;
    Ok((d, bytes.len()))
}

pub fn put_manifest(
    agent: &ureq::Agent,
    url: &str,
    config: &(String, usize),
    layer: &(String, usize),
    tag: &str,
) -> Result<(), String> {
    put_manifest_to(agent, url, "bench/manifests", config, layer, tag)
}

/// Makes the blob `digest` of `bench/manifests` available in `repo` too.
pub fn mount(agent: &ureq::Agent, url: &str, repo: &str, digest: &str) -> Result<(), String> {
    let r = agent
        .post(&format!(
            "{url}/v2/{repo}/blobs/uploads/?mount={digest}&from=bench/manifests"
        ))
        .call()
        .map_err(|e| format!("mount: {e}"))?;
    expect(r.status(), 201)
}

/// A manifest PUT of `repo:tag` over blobs `repo` holds.
pub fn put_manifest_to(
    agent: &ureq::Agent,
    url: &str,
    repo: &str,
    config: &(String, usize),
    layer: &(String, usize),
    tag: &str,
) -> Result<(), String> {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.0, "size": layer.1}],
        "annotations": {"tag": tag},
    });
    let r = agent
        .put(&format!("{url}/v2/{repo}/manifests/{tag}"))
        .set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send_string(&manifest.to_string())
        .map_err(|e| format!("PUT manifest: {e}"))?;
    expect(r.status(), 201)
}

fn get_manifest(agent: &ureq::Agent, url: &str) -> Result<(), String> {
    let r = agent
        .get(&format!("{url}/v2/bench/manifests/manifests/get"))
        .set("Accept", "application/vnd.oci.image.manifest.v1+json")
        .call()
        .map_err(|e| format!("GET manifest: {e}"))?;
    expect(r.status(), 200)?;
    std::io::copy(&mut r.into_reader(), &mut std::io::sink()).map_err(|e| e.to_string())?;
    Ok(())
}

fn expect(got: u16, want: u16) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("status {got}, expected {want}"))
    }
}
