//! Free space on the disk of a local store. Writes are refused with 507
//! while less than `min_free_bytes` would be left, before anything reaches
//! the disk: sled cannot recover in-process from a write the disk refused
//! (it keeps failing until the process restarts), so it must never meet a
//! full disk, and a refused write works again as soon as space is freed.
//! Deletes may use half of the margin, so a full registry can be cleaned
//! up. A store on PostgreSQL and S3 has no local disk to watch.

use std::path::PathBuf;

use crate::Error;

/// The free-space guard of one store; cloning shares nothing but settings.
#[derive(Clone, Debug)]
pub struct Space {
    /// The directory whose filesystem is watched; `None`: nothing local.
    dir: Option<PathBuf>,
    min_free: u64,
}

impl Space {
    /// Watches the filesystem of `dir` (none: no local store).
    pub(crate) fn new(dir: Option<PathBuf>, min_free: u64) -> Self {
        Self { dir, min_free }
    }

    /// Bytes free for unprivileged writers, when there is a local store.
    pub(crate) fn free(&self) -> Option<u64> {
        let dir = self.dir.as_ref()?;
        let stat = rustix::fs::statvfs(dir).ok()?;
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// A guard that admits everything (no local disk to watch).
    pub fn unwatched() -> Self {
        Self::new(None, 0)
    }

    /// Admits a write of about `len` bytes, or refuses it
    /// (`InsufficientStorage`, 507) while the disk is nearly full.
    pub fn admit(&self, len: u64) -> Result<(), Error> {
        self.keep(self.min_free.saturating_add(len))
    }

    /// Admits a change that frees space (a delete).
    pub fn admit_cleanup(&self) -> Result<(), Error> {
        self.keep(self.min_free / 2)
    }

    fn keep(&self, needed: u64) -> Result<(), Error> {
        if self.min_free == 0 {
            // No margin asked for: writes run until the disk refuses them.
            return Ok(());
        }
        match self.free() {
            Some(free) if free < needed => Err(Error::InsufficientStorage(format!(
                "the disk holding the registry's data has {} free; writes stop while less \
                 than {} (min_free_bytes) would be left",
                bytes(free),
                bytes(self.min_free)
            ))),
            _ => Ok(()),
        }
    }
}

/// `n` bytes in MiB (or KiB when small), for messages.
fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_writes_below_the_margin_and_deletes_below_half_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let free = Space::new(Some(dir.path().to_owned()), 0).free().unwrap();
        assert!(free > 0);
        let tight = Space::new(Some(dir.path().to_owned()), free);
        let err = tight.admit(free).unwrap_err();
        assert!(matches!(err, Error::InsufficientStorage(_)), "{err}");
        assert!(err.to_string().contains("min_free_bytes"), "{err}");
        assert!(tight.admit_cleanup().is_ok());
        let full = Space::new(Some(dir.path().to_owned()), u64::MAX);
        assert!(full.admit_cleanup().is_err());
        assert!(Space::new(None, u64::MAX).admit(1).is_ok());
        // A margin of 0 turns the guard off.
        assert!(Space::new(Some(dir.path().to_owned()), 0)
            .admit(u64::MAX)
            .is_ok());
    }
}
