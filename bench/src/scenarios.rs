//! The scenarios: each drives the registry over HTTP and returns a figure.

use std::io::{self, Read};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::ceilings::mbps;
use crate::server::Berth;

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
    /// Disk write speed (uploads are written and fsynced).
    Disk,
}

/// Chunk size of docker-style chunked uploads.
const CHUNK: usize = 10 << 20;
/// The repeated block payloads are made of.
const BLOCK: usize = 16 << 20;

/// Runs every scenario against `url`; `server` (when Berth was started by
/// the harness) adds its memory figures.
pub fn run_all(url: &str, size: usize, server: Option<&Berth>) -> Result<Vec<Figure>, String> {
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
    let secs = upload_monolithic(url, &mono)?;
    figures.push(throughput(
        format!("upload {} MiB, monolithic POST ?digest=", size >> 20),
        size,
        secs,
        Ceiling::Sha256,
    ));

    let chunked = Payload::new(2, size);
    let secs = upload_chunked(url, &chunked)?;
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

    let secs = download(url, &mono)?;
    figures.push(throughput(
        format!("download {} MiB", size >> 20),
        size,
        secs,
        Ceiling::Disk,
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

    /// A reader over bytes `start..end` of the payload.
    fn reader(&self, start: usize, end: usize) -> PayloadReader<'_> {
        PayloadReader {
            payload: self,
            pos: start,
            end,
        }
    }
}

struct PayloadReader<'a> {
    payload: &'a Payload,
    pos: usize,
    end: usize,
}

impl Read for PayloadReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let at = self.pos % BLOCK;
        let n = buf.len().min(self.end - self.pos).min(BLOCK - at);
        buf[..n].copy_from_slice(&self.payload.block[at..at + n]);
        self.pos += n;
        Ok(n)
    }
}

fn upload_monolithic(url: &str, p: &Payload) -> Result<f64, String> {
    let start = Instant::now();
    let r = ureq::post(&format!(
        "{url}/v2/bench/big/blobs/uploads/?digest={}",
        p.digest
    ))
    .set("Content-Length", &p.size.to_string())
    .send(p.reader(0, p.size))
    .map_err(|e| format!("monolithic upload: {e}"))?;
    expect(r.status(), 201, "monolithic upload")?;
    Ok(start.elapsed().as_secs_f64())
}

fn upload_chunked(url: &str, p: &Payload) -> Result<f64, String> {
    let start = Instant::now();
    let r = ureq::post(&format!("{url}/v2/bench/chunked/blobs/uploads/"))
        .call()
        .map_err(|e| e.to_string())?;
    let mut location = r.header("location").ok_or("no Location")?.to_owned();
    let mut offset = 0;
    while offset < p.size {
        let end = (offset + CHUNK).min(p.size);
        let r = ureq::request("PATCH", &format!("{url}{location}"))
            .set("Content-Range", &format!("{offset}-{}", end - 1))
            .set("Content-Length", &(end - offset).to_string())
            .send(p.reader(offset, end))
            .map_err(|e| format!("PATCH: {e}"))?;
        location = r.header("location").ok_or("no Location")?.to_owned();
        offset = end;
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = ureq::put(&format!("{url}{location}{sep}digest={}", p.digest))
        .call()
        .map_err(|e| format!("PUT: {e}"))?;
    expect(r.status(), 201, "chunked upload")?;
    Ok(start.elapsed().as_secs_f64())
}

fn download(url: &str, p: &Payload) -> Result<f64, String> {
    let start = Instant::now();
    let r = ureq::get(&format!("{url}/v2/bench/big/blobs/{}", p.digest))
        .call()
        .map_err(|e| e.to_string())?;
    let n = io::copy(&mut r.into_reader(), &mut io::sink()).map_err(|e| e.to_string())?;
    if n != p.size as u64 {
        return Err(format!("downloaded {n} bytes, expected {}", p.size));
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
