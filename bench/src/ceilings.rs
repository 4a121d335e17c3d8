//! This machine's own limits, measured in the same run as the scenarios so
//! that ratios stay meaningful on a noisy machine.

use std::io::Write;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::wire;

/// The ceilings, in MB/s (10^6 bytes per second).
#[derive(Debug)]
pub struct Ceilings {
    /// `openssl speed -evp sha256`, 16 KiB blocks, one core.
    pub openssl_sha256: Option<f64>,
    /// The `sha2` crate (what Berth uses) hashing 1 MiB chunks, one core.
    pub sha2_sha256: f64,
    /// Writing `size` bytes to a file on the data disk, then `fdatasync`
    /// (best of two runs).
    pub disk_write: f64,
    /// Copying `size` bytes over loopback TCP, 1 MiB writes and reads.
    pub loopback: f64,
    /// Durable appends per second, one at a time: 4 KiB appended to a file
    /// on the data disk, then `fdatasync` (best of two runs of 1,000). The
    /// bound of anything that waits for the disk before each reply.
    pub fsyncs: f64,
}

/// Measures every ceiling; `size` is the amount written to disk.
pub fn measure(size: usize) -> Result<Ceilings, String> {
    // The disk is noisy (other tenants, writeback of earlier runs): best of two.
    let disk_write = disk(size)?.max(disk(size)?);
    Ok(Ceilings {
        openssl_sha256: openssl(),
        sha2_sha256: sha2_speed(size),
        disk_write,
        loopback: wire::loopback_copy(size)?.max(wire::loopback_copy(size)?),
        fsyncs: fsyncs()?.max(fsyncs()?),
    })
}

fn openssl() -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-evp", "sha256", "-seconds", "2"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The result line: "sha256  1234.56k  ...  1198765.43k" (last column = 16384-byte blocks).
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().to_lowercase().starts_with("sha256"))?;
    let last = line.split_whitespace().last()?.trim_end_matches('k');
    last.parse::<f64>().ok().map(|kbps| kbps * 1000.0 / 1e6)
}

fn sha2_speed(size: usize) -> f64 {
    let chunk = vec![7u8; 1 << 20];
    let start = Instant::now();
    let mut h = Sha256::new();
    for _ in 0..size.div_ceil(chunk.len()) {
        h.update(&chunk);
    }
    std::hint::black_box(h.finalize());
    mbps(size as u64, start.elapsed().as_secs_f64())
}

fn disk(size: usize) -> Result<f64, String> {
    let path = std::env::current_dir()
        .map_err(|e| e.to_string())?
        .join("target/bench-disk-probe");
    let chunk = vec![1u8; 8 << 20];
    let start = Instant::now();
    let mut f = std::fs::File::create(&path).map_err(|e| format!("disk probe: {e}"))?;
    for _ in 0..size.div_ceil(chunk.len()) {
        f.write_all(&chunk).map_err(|e| e.to_string())?;
    }
    f.sync_data().map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    Ok(mbps(size as u64, secs))
}

fn fsyncs() -> Result<f64, String> {
    let path = std::env::current_dir()
        .map_err(|e| e.to_string())?
        .join("target/bench-fsync-probe");
    let mut f = std::fs::File::create(&path).map_err(|e| format!("fsync probe: {e}"))?;
    let block = [3u8; 4096];
    let start = Instant::now();
    for _ in 0..1000 {
        f.write_all(&block).map_err(|e| e.to_string())?;
        f.sync_data().map_err(|e| e.to_string())?;
    }
    let rate = 1000.0 / start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    Ok(rate)
}

/// Megabytes (10^6) per second.
pub fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}
