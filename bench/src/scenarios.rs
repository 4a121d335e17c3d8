//! The scenarios: each drives the registry over HTTP and returns a figure.

use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::ceilings::mbps;
use crate::server::Berth;
use crate::wire;

/// One measured figure.
#[derive(Debug)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// The value, in `unit`.
    pub value: f64,
    /// `MB/s`, `MB`, ...
    pub unit: &'static str,
    /// Which ceiling it is compared with, if any.
    pub ceiling: Option<Ceiling>,
}

impl Figure {
    /// A figure compared with no ceiling.
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
            ceiling: None,
        }
    }

    /// A duration, in milliseconds.
    pub fn ms(name: impl Into<String>, d: std::time::Duration) -> Self {
        Self::new(name, d.as_secs_f64() * 1000.0, "ms")
    }
}

/// `sha256:<hex>` of `bytes`, as registries spell a digest.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The ceiling a throughput figure is compared with.
#[derive(Clone, Copy, Debug)]
pub enum Ceiling {
    /// Single-core sha256 (uploads hash everything once).
    Sha256,
    /// Loopback TCP speed (downloads come from the page cache).
    Loopback,
    /// Durable appends per second, one at a time (each durable write
    /// waits for one).
    Fsync,
}

/// Chunk size of docker-style chunked uploads.
const CHUNK: usize = 10 << 20;
/// The repeated block payloads are made of.
const BLOCK: usize = 16 << 20;

/// Runs every scenario against `urls` (with several, replicas of one
/// registry: the chunked upload's PATCHes take them in turn and the
/// download reads from the last); `server` (when Berth was started by the
/// harness) adds its memory figures.
pub fn run_all(
    urls: &[String],
    size: usize,
    server: Option<&Berth>,
) -> Result<Vec<Figure>, String> {
    let mut figures = Vec::new();
    let rss = |field: &str| {
        server
            .and_then(|s| s.status_kb(field))
            .map(|kb| kb as f64 / 1024.0)
    };
    if let Some(idle) = rss("VmRSS") {
        figures.push(Figure::new("server RSS, idle", idle, "MiB"));
    }

    let mono = Payload::new(1, size);
    let secs = upload_monolithic(&urls[0], &mono)?;
    figures.push(throughput(
        format!("upload {} MiB, monolithic POST ?digest=", size >> 20),
        size,
        secs,
        Ceiling::Sha256,
    ));

    let chunked = Payload::new(2, size);
    let secs = upload_chunked(urls, &chunked)?;
    figures.push(throughput(
        format!("upload {} MiB, chunked (10 MiB PATCHes)", size >> 20),
        size,
        secs,
        Ceiling::Sha256,
    ));
    if let Some(peak) = rss("VmHWM") {
        figures.push(Figure::new(
            "server peak RSS after the uploads",
            peak,
            "MiB",
        ));
    }

    let secs = download(&urls[urls.len() - 1], &mono)?;
    figures.push(throughput(
        format!("download {} MiB", size >> 20),
        size,
        secs,
        Ceiling::Loopback,
    ));
    Ok(figures)
}

fn throughput(name: String, size: usize, secs: f64, ceiling: Ceiling) -> Figure {
    Figure {
        name,
        value: mbps(size as u64, secs),
        unit: "MB/s",
        ceiling: Some(ceiling),
    }
}

/// `size` bytes made of one pseudo-random block repeated, and their digest.
struct Payload {
    block: Vec<u8>,
    size: usize,
    digest: String,
}

impl Payload {
    fn new(seed: u64, size: usize) -> Self {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut block = Vec::with_capacity(BLOCK);
        while block.len() < BLOCK {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            block.extend_from_slice(&x.to_le_bytes());
        }
        let mut h = Sha256::new();
        let mut left = size;
        while left > 0 {
            let n = left.min(BLOCK);
            h.update(&block[..n]);
            left -= n;
        }
        let digest = format!(
            "sha256:{}",
            h.finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Self {
            block,
            size,
            digest,
        }
    }

    /// Bytes `start..end` of the payload, as slices of at most
    /// [`wire::IO_SIZE`] bytes.
    fn slices(&self, start: usize, end: usize) -> impl Iterator<Item = &[u8]> {
        (start..end).step_by(wire::IO_SIZE).map(move |pos| {
            let at = pos % BLOCK;
            let n = wire::IO_SIZE.min(end - pos).min(BLOCK - at);
            &self.block[at..at + n]
        })
    }
}

fn upload_monolithic(url: &str, p: &Payload) -> Result<f64, String> {
    let start = Instant::now();
    let path = format!("/v2/bench/big/blobs/uploads/?digest={}", p.digest);
    let r = wire::request(url, "POST", &path, &[], p.size, p.slices(0, p.size))?;
    expect(r.status, 201, "monolithic upload")?;
    Ok(start.elapsed().as_secs_f64())
}

fn upload_chunked(urls: &[String], p: &Payload) -> Result<f64, String> {
    let start = Instant::now();
    let mut turn = urls.iter().cycle();
    let mut url = || turn.next().map_or("", String::as_str);
    let r = wire::request(
        url(),
        "POST",
        "/v2/bench/chunked/blobs/uploads/",
        &[],
        0,
        [].into_iter(),
    )?;
    expect(r.status, 202, "upload start")?;
    let mut location = r.location.ok_or("no Location")?;
    let mut offset = 0;
    while offset < p.size {
        let end = (offset + CHUNK).min(p.size);
        let range = [("Content-Range", format!("{offset}-{}", end - 1))];
        let r = wire::request(
            url(),
            "PATCH",
            &location,
            &range,
            end - offset,
            p.slices(offset, end),
        )?;
        expect(r.status, 202, "PATCH")?;
        location = r.location.ok_or("no Location")?;
        offset = end;
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    let path = format!("{location}{sep}digest={}", p.digest);
    let r = wire::request(url(), "PUT", &path, &[], 0, [].into_iter())?;
    expect(r.status, 201, "chunked upload")?;
    Ok(start.elapsed().as_secs_f64())
}

fn download(url: &str, p: &Payload) -> Result<f64, String> {
    let start = Instant::now();
    let path = format!("/v2/bench/big/blobs/{}", p.digest);
    let r = wire::request(url, "GET", &path, &[], 0, [].into_iter())?;
    expect(r.status, 200, "download")?;
    if r.body_len != p.size as u64 {
        return Err(format!(
            "downloaded {} bytes, expected {}",
            r.body_len, p.size
        ));
    }
    Ok(start.elapsed().as_secs_f64())
}

fn expect(got: u16, want: u16, what: &str) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: status {got}, expected {want}"))
    }
}
