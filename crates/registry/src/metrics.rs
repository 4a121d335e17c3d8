//! Prometheus metrics at `/metrics`: requests by route, method and status,
//! bytes in and out of every connection, open upload sessions, plus what
//! each extension adds (the webhooks' queue depths and delivery outcomes).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper::Method;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Request counts and traffic since start-up.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests by (route, method, status).
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    /// Bytes read from and written to client connections.
    traffic: Arc<Traffic>,
}

/// Bytes moved over client connections, headers included.
#[derive(Debug, Default)]
pub struct Traffic {
    received: AtomicU64,
    sent: AtomicU64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, route: &'static str, method: &Method, status: u16) {
        let method = match *method {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::PUT => "PUT",
            Method::POST => "POST",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            _ => "other",
        };
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests.entry((route, method, status)).or_default() += 1;
    }

    /// `stream`, counting its bytes into these metrics.
    pub fn count<S>(&self, stream: S) -> Counted<S> {
        Counted {
            inner: stream,
            traffic: self.traffic.clone(),
        }
    }

    /// Requests answered so far, and how many of them with a 5xx.
    pub fn answered(&self) -> (u64, u64) {
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let total = requests.values().sum();
        let failed = requests
            .iter()
            .filter(|((_, _, status), _)| *status >= 500)
            .map(|(_, n)| n)
            .sum();
        (total, failed)
    }

    /// Appends the registry's own samples, with the store's `gauges`.
    pub fn render(&self, gauges: &StoreGauges, out: &mut String) {
        let uploads = gauges.uploads;
        out.push_str(
            "# HELP berth_http_requests_total Requests answered, by route, method and status.\n\
             # TYPE berth_http_requests_total counter\n",
        );
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        for ((route, method, status), n) in requests.iter() {
            let _ = writeln!(
                out,
                "berth_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        drop(requests);
        let t = &self.traffic;
        let _ = write!(
            out,
            "# HELP berth_http_received_bytes_total Bytes read from client connections.\n\
             # TYPE berth_http_received_bytes_total counter\n\
             berth_http_received_bytes_total {}\n\
             # HELP berth_http_sent_bytes_total Bytes written to client connections.\n\
             # TYPE berth_http_sent_bytes_total counter\n\
             berth_http_sent_bytes_total {}\n\
             # HELP berth_uploads_in_progress Open blob upload sessions.\n\
             # TYPE berth_uploads_in_progress gauge\n\
             berth_uploads_in_progress {uploads}\n",
            t.received.load(Ordering::Relaxed),
            t.sent.load(Ordering::Relaxed),
        );
        let _ = write!(
            out,
            "# HELP berth_read_only 1 while the registry refuses writes (maintenance).\n\
             # TYPE berth_read_only gauge\n\
             berth_read_only {}\n",
            u8::from(gauges.read_only)
        );
        if let Some(n) = gauges.free_bytes {
            let _ = write!(
                out,
                "# HELP berth_storage_free_bytes Bytes free on the disk of the local store (writes stop below min_free_bytes).\n\
                 # TYPE berth_storage_free_bytes gauge\n\
                 berth_storage_free_bytes {n}\n"
            );
        }
        if let Some(n) = gauges.statements {
            let _ = write!(
                out,
                "# HELP berth_metadata_statements_total Statements sent to PostgreSQL (a round trip each).\n\
                 # TYPE berth_metadata_statements_total counter\n\
                 berth_metadata_statements_total {n}\n"
            );
        }
    }
}

/// What the store reports at a scrape.
#[derive(Debug)]
pub struct StoreGauges {
    /// Open upload sessions.
    pub uploads: usize,
    /// Statements sent to a shared metadata engine (`None`: embedded).
    pub statements: Option<u64>,
    /// Bytes free on a local store's disk (`None`: nothing local).
    pub free_bytes: Option<u64>,
    /// Whether writes are refused (maintenance).
    pub read_only: bool,
}

/// A connection whose reads and writes are counted.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    traffic: Arc<Traffic>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        self.traffic.received.fetch_add(n as u64, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
