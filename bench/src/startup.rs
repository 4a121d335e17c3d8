//! Start-up time: from spawning `target/release/berth serve` to its first
//! successful `GET /v2/`, on an empty store (`--ephemeral`, as CI uses it)
//! and on a store holding many tags (seeded over HTTP first).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::scenarios::{sha256, Figure};

/// Repositories the seeded tags are spread over.
const REPOS: usize = 100;
/// Concurrent clients seeding.
const SEEDERS: usize = 16;

/// Runs both start-up scenarios.
pub fn run_all(short: bool) -> Result<Vec<Figure>, String> {
    let runs = if short { 3 } else { 21 };
    let tags = if short { 2_000 } else { 100_000 };
    let mut figures = Vec::new();

    let empty = median(runs, || time_start(&["--ephemeral"]))?;
    figures.push(Figure::ms(
        format!("start-up to first GET /v2/, empty store (--ephemeral), median of {runs}"),
        empty,
    ));

    let dir = std::env::temp_dir().join(format!("berth-bench-startup-{}", std::process::id()));
    let seeded = seed(&dir, tags).and_then(|seed_secs| {
        figures.push(Figure::new(
            format!("seeding: manifest PUTs by tag, {SEEDERS} connections"),
            tags as f64 / seed_secs,
            "PUT/s",
        ));
        let data = dir.to_str().ok_or("non-UTF-8 temp dir")?;
        median(runs, || time_start(&["--data-dir", data]))
    });
    let _ = std::fs::remove_dir_all(&dir);
    figures.push(Figure::ms(
        format!("start-up to first GET /v2/, {tags} tags stored, median of {runs}"),
        seeded?,
    ));
    Ok(figures)
}

/// The median of `runs` measurements.
fn median(
    runs: usize,
    mut measure: impl FnMut() -> Result<Duration, String>,
) -> Result<Duration, String> {
    let mut all = (0..runs)
        .map(|_| measure())
        .collect::<Result<Vec<_>, _>>()?;
    all.sort();
    Ok(all[all.len() / 2])
}

/// A `berth serve` started with `args` and the URL it announced.
fn spawn(args: &[&str]) -> Result<(Child, String), String> {
    let mut child = Command::new("target/release/berth")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("BERTH_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start target/release/berth: {e}"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line {line:?}"))?
        .to_owned();
    Ok((child, url))
}

/// SIGTERM, then waits: a clean shutdown, so the next start has nothing
/// to recover.
fn stop(mut child: Child) -> Result<(), String> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("kill -TERM failed".into());
    }
    child.wait().map_err(|e| e.to_string())?;
    Ok(())
}

/// Time from spawning to the first 200 of `GET /v2/`.
fn time_start(args: &[&str]) -> Result<Duration, String> {
    let start = Instant::now();
    let (child, url) = spawn(args)?;
    let agent = ureq::AgentBuilder::new().build();
    loop {
        match agent.get(&format!("{url}/v2/")).call() {
            Ok(r) if r.status() == 200 => break,
            Ok(r) => return Err(format!("GET /v2/: {}", r.status())),
            Err(ureq::Error::Transport(_)) => continue,
            Err(e) => return Err(format!("GET /v2/: {e}")),
        }
    }
    let elapsed = start.elapsed();
    stop(child)?;
    Ok(elapsed)
}

/// Stores `tags` tags (each its own manifest) in `dir`, spread over
/// [`REPOS`] repositories; returns the seconds the PUTs took.
fn seed(dir: &Path, tags: usize) -> Result<f64, String> {
    let data = dir.to_str().ok_or("non-UTF-8 temp dir")?;
    let (child, url) = spawn(&["--data-dir", data])?;
    let config = br#"{"architecture":"amd64","os":"linux"}"#.as_slice();
    let layer = vec![7u8; 1024];
    let descriptors = [config, layer.as_slice()].map(|bytes| (sha256(bytes), bytes.len(), bytes));
    for r in 0..REPOS {
        for (digest, _, bytes) in &descriptors {
            ureq::post(&format!(
                "{url}/v2/seed/r{r}/blobs/uploads/?digest={digest}"
            ))
            .send_bytes(bytes)
            .map_err(|e| format!("seeding blobs: {e}"))?;
        }
    }
    let start = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..SEEDERS)
            .map(|w| {
                let (url, d) = (&url, &descriptors);
                s.spawn(move || -> Result<(), String> {
                    let agent = ureq::AgentBuilder::new().build();
                    for n in (w..tags).step_by(SEEDERS) {
                        let manifest = serde_json::json!({
                            "schemaVersion": 2,
                            "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d[0].0, "size": d[0].1},
                            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d[1].0, "size": d[1].1}],
                            "annotations": {"seed": n.to_string()},
                        });
                        agent
                            .put(&format!("{url}/v2/seed/r{}/manifests/t{n}", n % REPOS))
                            .set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                            .send_string(&manifest.to_string())
                            .map_err(|e| format!("seeding tag {n}: {e}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| "a seeder panicked".to_string())?)
    })?;
    let secs = start.elapsed().as_secs_f64();
    stop(child)?;
    Ok(secs)
}
