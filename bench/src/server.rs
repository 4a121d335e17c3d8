//! A fresh release-mode Berth for `--all`, and its memory figures.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A `target/release/berth serve` on a temporary data directory.
pub struct Berth {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    dir: std::path::PathBuf,
}

impl Berth {
    /// Starts it on a free port (run from the workspace root).
    pub fn start() -> Result<Self, String> {
        Self::start_with(&[])
    }

    /// [`Berth::start`] with settings given as `BERTH_*` environment
    /// variables.
    pub fn start_with(settings: &[(&str, &str)]) -> Result<Self, String> {
        // Each instance its own directory: the soak test runs its Berth
        // while the one of the other scenarios is still up.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("berth-bench-{}-{n}", std::process::id()));
        let mut child = Command::new("target/release/berth")
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .env("BERTH_LOG", "warn")
            .envs(settings.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!("cannot start target/release/berth (cargo build --release first): {e}")
            })?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected: {line:?}"))?
            .to_owned();
        Ok(Self { child, url, dir })
    }

    /// The resident set in MiB, counted: `/proc/<pid>/smaps_rollup` walks
    /// the page tables, where `VmRSS` in `status` reads counters the kernel
    /// updates in batches.
    pub fn rss_mib(&self) -> Option<f64> {
        let rollup =
            std::fs::read_to_string(format!("/proc/{}/smaps_rollup", self.child.id())).ok()?;
        let line = rollup.lines().find(|l| l.starts_with("Rss:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb as f64 / 1024.0)
    }

    /// A field of `/proc/<pid>/status` in kB (`VmHWM` = peak RSS, `VmRSS`).
    pub fn status_kb(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
