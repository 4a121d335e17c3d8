//! Raw HTTP/1.1 over a `TcpStream`: requests an HTTP library refuses to
//! send (paths with `..`, bodies that lie about their length, requests that
//! stall) and a response reader that also reports a closed connection.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// How long any read waits before the test gives up on the server.
const PATIENCE: Duration = Duration::from_secs(20);

/// A response read off a raw connection.
#[derive(Debug)]
pub struct RawResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResp {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `code` of the first error of a spec error body ("" when the body
    /// is not one, e.g. hyper's own bare 400 for unparseable requests).
    pub fn error_code(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["errors"][0]["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// A connection to the registry.
pub struct Conn {
    stream: TcpStream,
    /// Bytes read past the end of the last response.
    buffered: Vec<u8>,
}

impl Conn {
    /// Connects to `host` (`127.0.0.1:PORT`).
    pub fn open(host: &str) -> Self {
        let stream = TcpStream::connect(host).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buffered: Vec::new(),
        }
    }

    /// Writes `bytes` as they are; `false` when the server has already
    /// closed the connection.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok() && self.stream.flush().is_ok()
    }

    /// Closes our sending side: the server sees end of stream.
    pub fn finish_sending(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Reads one response; `None` when the server closed (or reset) the
    /// connection before sending a whole one.
    pub fn response(&mut self, head: bool) -> Option<RawResp> {
        let end = loop {
            if let Some(i) = find(&self.buffered, b"\r\n\r\n") {
                break i;
            }
            if !self.fill() {
                return None;
            }
        };
        let head_text = String::from_utf8_lossy(&self.buffered[..end]).into_owned();
        self.buffered.drain(..end + 4);
        let mut lines = head_text.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let len = if head { 0 } else { len };
        while self.buffered.len() < len {
            if !self.fill() {
                return None;
            }
        }
        let body = self.buffered.drain(..len).collect();
        Some(RawResp {
            status,
            headers,
            body,
        })
    }

    /// Waits until the server closes the connection and returns how long
    /// that took; panics if it is still open after [`PATIENCE`]. Whatever
    /// the server sends before closing is ignored.
    pub fn wait_closed(&mut self) -> Duration {
        let start = Instant::now();
        while self.fill() {}
        let waited = start.elapsed();
        assert!(waited < PATIENCE, "the server kept the connection open");
        waited
    }

    /// Reads more bytes; `false` on end of stream, reset or timeout.
    fn fill(&mut self) -> bool {
        let mut buf = [0u8; 64 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.buffered.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(_) => false,
        }
    }
}

/// Sends one request (head and body exactly as given) on a fresh connection
/// and reads the response.
pub fn request(host: &str, head: &str, body: &[u8]) -> Option<RawResp> {
    let mut conn = Conn::open(host);
    let mut bytes = head.as_bytes().to_vec();
    bytes.extend_from_slice(body);
    conn.send(&bytes);
    conn.response(head.starts_with("HEAD "))
}

/// `METHOD path HTTP/1.1` with `Host`, `Connection: close`, the extra
/// header lines, and a `Content-Length` matching `body`; the response.
pub fn simple(host: &str, method: &str, path: &str, extra: &[&str], body: &[u8]) -> RawResp {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    request(host, &head, body)
        .unwrap_or_else(|| panic!("{method} {path}: the connection closed without a response"))
}

/// `bytes` in HTTP/1.1 chunked transfer coding, one chunk per `piece`.
pub fn chunked(pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces.iter().filter(|p| !p.is_empty()) {
        out.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
