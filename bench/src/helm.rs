//! Helm chart repository scenarios (Berth only): seed a repository with
//! many versions of one chart through the HTTP API, then time one more
//! upload and serving its `index.yaml` (cold, warm, and right after an
//! upload).

use std::io::Write;
use std::time::{Duration, Instant};

use crate::scenarios::Figure;
use crate::server::Berth;

/// Versions the repository holds before the measured uploads.
const VERSIONS: usize = 10_000;
/// Uploads timed into the full repository.
const TIMED_UPLOADS: usize = 50;
/// Warm index GETs timed.
const WARM_GETS: usize = 20;
/// Seeding clients.
const CLIENTS: usize = 8;

/// Runs the chart repository scenarios against a fresh Berth at `url`;
/// `server` adds how much its memory grew.
pub fn run_all(url: &str, short: bool, server: Option<&Berth>) -> Result<Vec<Figure>, String> {
    let rss = || server.and_then(|s| s.status_kb("VmRSS"));
    let rss_before = rss();
    let versions = if short { 500 } else { VERSIONS };
    let repo = format!("{url}/helm/api/bench/charts");
    let index = format!("{url}/helm/bench/index.yaml");

    eprintln!("bench: seeding {versions} chart versions");
    let start = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let repo = repo.clone();
            std::thread::spawn(move || -> Result<(), String> {
                let agent = ureq::Agent::new();
                for n in (t..versions).step_by(CLIENTS) {
                    upload(&agent, &repo, &chart(n)?)?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "seeding thread panicked")??;
    }
    let seeded = start.elapsed().as_secs_f64();

    let agent = ureq::Agent::new();
    // Cold: the index was never served, so nothing of it is in memory; the
    // GET loads every record from sled and renders every version.
    let (cold, bytes) = get(&agent, &index)?;
    let expected = versions;
    let entries = count_versions(&bytes);
    if entries != expected {
        return Err(format!(
            "index.yaml lists {entries} versions, expected {expected}"
        ));
    }
    let warm: Vec<Duration> = (0..WARM_GETS)
        .map(|_| get(&agent, &index).map(|(d, _)| d))
        .collect::<Result<_, _>>()?;

    let mut uploads = Vec::with_capacity(TIMED_UPLOADS);
    let mut after_upload = Vec::with_capacity(TIMED_UPLOADS);
    for n in versions..versions + TIMED_UPLOADS {
        let tgz = chart(n)?;
        let start = Instant::now();
        upload(&agent, &repo, &tgz)?;
        uploads.push(start.elapsed());
        after_upload.push(get(&agent, &index)?.0);
    }

    let mut figures = vec![
        Figure::new(
            format!("chart uploads/s while seeding {versions} versions ({CLIENTS} clients)"),
            versions as f64 / seeded,
            "/s",
        ),
        Figure::ms(
            format!("chart upload into a repository of {versions} versions, p50"),
            p50(&uploads),
        ),
        Figure::ms(
            format!("chart upload into a repository of {versions} versions, max"),
            max(&uploads),
        ),
        Figure::new(
            format!("index.yaml size, {versions} versions"),
            bytes.len() as f64 / 1e6,
            "MB",
        ),
        Figure::ms(
            format!("index.yaml GET, {versions} versions, cold (loaded from sled)"),
            cold,
        ),
        Figure::ms(
            format!("index.yaml GET, {versions} versions, warm, p50"),
            p50(&warm),
        ),
        Figure::ms(
            format!("index.yaml GET right after an upload, {versions} versions, p50"),
            p50(&after_upload),
        ),
    ];
    if let (Some(before), Some(after)) = (rss_before, rss()) {
        figures.push(Figure {
            name: format!(
                "server RSS growth over the chart scenarios ({versions} versions indexed)"
            ),
            value: after.saturating_sub(before) as f64 / 1024.0,
            unit: "MiB",
            ceiling: None,
        });
    }
    Ok(figures)
}

fn upload(agent: &ureq::Agent, repo: &str, tgz: &[u8]) -> Result<(), String> {
    let r = agent
        .post(repo)
        .send_bytes(tgz)
        .map_err(|e| format!("chart upload: {e}"))?;
    if r.status() != 201 {
        return Err(format!("chart upload: status {}", r.status()));
    }
    Ok(())
}

/// One GET of `url`, read to the end: its duration and the body.
fn get(agent: &ureq::Agent, url: &str) -> Result<(Duration, Vec<u8>), String> {
    let start = Instant::now();
    let r = agent
        .get(url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let mut body = Vec::new();
    std::io::copy(&mut r.into_reader(), &mut body).map_err(|e| e.to_string())?;
    Ok((start.elapsed(), body))
}

fn count_versions(index: &[u8]) -> usize {
    String::from_utf8_lossy(index).matches("\n  - ").count()
}

/// A small but typical chart archive, version `1.{n / 1000}.{n % 1000}`.
fn chart(n: usize) -> Result<Vec<u8>, String> {
    let version = format!("1.{}.{}", n / 1000, n % 1000);
    let chart_yaml = format!(
        "apiVersion: v2\nname: bench\nversion: {version}\nappVersion: \"2.{n}\"\n\
         description: A chart of the chart repository benchmark\ntype: application\n\
         keywords:\n- bench\n- berth\nmaintainers:\n- name: Berth\n  email: berth@example.com\n\
         home: https://example.com/bench\nsources:\n- https://example.com/bench/src\n"
    );
    let files: [(&str, &[u8]); 3] = [
        ("bench/Chart.yaml", chart_yaml.as_bytes()),
        ("bench/values.yaml", b"replicaCount: 1\nimage: nginx\n"),
        (
            "bench/templates/deployment.yaml",
            b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n",
        ),
    ];
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, data)
            .map_err(|e| e.to_string())?;
    }
    let mut gz = tar.into_inner().map_err(|e| e.to_string())?;
    gz.flush().map_err(|e| e.to_string())?;
    gz.finish().map_err(|e| e.to_string())
}

/// The median: the machine is shared, and a mean follows its hiccups.
fn p50(d: &[Duration]) -> Duration {
    let mut sorted = d.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn max(d: &[Duration]) -> Duration {
    d.iter().max().copied().unwrap_or_default()
}
