//! Moving blob bytes between async code and files, each file on a blocking
//! thread of its own, so that receiving and hashing (on the runtime) overlap
//! with the system calls that copy bytes to and from the page cache.
//!
//! - [`write_through`] appends batches of request chunks as they are, with
//!   no copy on our side, and starts the disk's writeback every
//!   [`WRITEBACK_STEP`] bytes, so that the `fdatasync` at the end waits for
//!   the last few megabytes only, not for the whole blob.
//! - [`read_ahead`] reads a range in [`READ_SIZE`] pieces into buffers that
//!   the response then sends as they are; the next piece is read while the
//!   socket takes the last.
//!
//! tokio's own `File` does the same work on the blocking pool one call at a
//! time and copies every buffer once more, through a buffer of its own.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

/// A blob's bytes, in pieces, as reads return them.
pub type BlobStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + Sync>>;

/// Bytes written between two starts of writeback.
const WRITEBACK_STEP: u64 = 2 << 20;
/// Bytes a write batch gathers before it goes to the writing thread.
pub const BATCH: usize = 1 << 20;
/// Batches on their way to the writing thread at most.
const WRITE_QUEUE: usize = 4;
/// The size of each read of [`read_ahead`].
const READ_SIZE: usize = 512 << 10;

/// The writing end of [`write_through`]: send batches, then [`finish`](Self::finish).
pub struct Writer {
    batches: mpsc::Sender<Vec<Bytes>>,
    thread: tokio::task::JoinHandle<io::Result<u64>>,
}

/// Starts a thread appending to `file` whatever the returned [`Writer`] is
/// given, making it durable when the writer is finished.
pub fn write_through(file: File) -> Writer {
    let (batches, received) = mpsc::channel(WRITE_QUEUE);
    let thread = tokio::task::spawn_blocking(move || append(file, received));
    Writer { batches, thread }
}

impl Writer {
    /// Queues `batch` for writing; `false` when the thread has stopped on an
    /// error, which [`finish`](Self::finish) returns.
    pub async fn send(&self, batch: Vec<Bytes>) -> bool {
        self.batches.send(batch).await.is_ok()
    }

    /// Waits for every queued byte to be written and synced; returns how
    /// many were appended.
    pub async fn finish(self) -> io::Result<u64> {
        drop(self.batches);
        self.thread.await.map_err(io::Error::other)?
    }
}

fn append(mut file: File, mut batches: mpsc::Receiver<Vec<Bytes>>) -> io::Result<u64> {
    let start = file.seek(io::SeekFrom::End(0))?;
    let (mut written, mut queued) = (0u64, 0u64);
    while let Some(batch) = batches.blocking_recv() {
        for chunk in batch {
            file.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        if written - queued >= WRITEBACK_STEP {
            start_writeback(&file, start + queued, written - queued);
            queued = written;
        }
    }
    file.sync_data()?;
    Ok(written)
}

/// Asks the kernel to start writing a range of `file` to disk, without
/// waiting for it: on Linux, `posix_fadvise(POSIX_FADV_DONTNEED)` starts
/// writeback of the dirty pages in the range (`WB_SYNC_NONE`) and frees
/// only pages that are clean, which freshly written ones are not, so the
/// blob stays cached for the next pull. (`sync_file_range` says this more
/// directly but has no safe wrapper in a crate; this crate forbids
/// `unsafe`.) Only an early start: durability still comes from `fdatasync`,
/// and a failure only leaves all the work to it.
fn start_writeback(file: &File, offset: u64, len: u64) {
    if let Some(len) = std::num::NonZeroU64::new(len) {
        let _ = rustix::fs::fadvise(file, offset, Some(len), rustix::fs::Advice::DontNeed);
    }
}

/// Streams `len` bytes of `file` from its current position, read on a
/// thread of its own. A file shorter than that ends the stream with an
/// `UnexpectedEof` error.
pub fn read_ahead(mut file: File, mut len: u64) -> BlobStream {
    let (tx, mut rx) = mpsc::channel(1);
    tokio::task::spawn_blocking(move || {
        while len > 0 {
            let want = READ_SIZE.min(usize::try_from(len).unwrap_or(READ_SIZE));
            // `read_to_end` reads into the spare capacity: no zeroing first.
            let mut buf = Vec::with_capacity(want);
            let piece = match (&mut file).take(want as u64).read_to_end(&mut buf) {
                Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    len -= n as u64;
                    Ok(Bytes::from(buf))
                }
                Err(e) => Err(e),
            };
            let failed = piece.is_err();
            if tx.blocking_send(piece).is_err() || failed {
                return;
            }
        }
    });
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// Reads all of `chunks` into memory (for small blobs: configs, charts).
pub async fn collect(mut chunks: BlobStream) -> io::Result<Vec<u8>> {
    use futures_util::StreamExt;
    let mut all = Vec::new();
    while let Some(piece) = chunks.next().await {
        all.extend_from_slice(&piece?);
    }
    Ok(all)
}
