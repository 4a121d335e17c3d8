//! Bulk transfers over a plain HTTP/1.1 connection, written and read 1 MiB
//! at a time, so that the load generator is not what a transfer measures:
//! ureq copies bodies through 8 KiB buffers, 131,072 system calls per GiB
//! on the client's side of the 2 cores.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use crate::ceilings::mbps;

/// Read and write size.
pub const IO_SIZE: usize = 1 << 20;

/// The parts of a response the scenarios look at.
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The length of the body, which was read and dropped.
    pub body_len: u64,
}

/// Sends one request on a new connection to `url` (`http://host:port`):
/// `body` is written slice by slice, as given, after a head announcing
/// `len` bytes. Reads the whole response.
pub fn request<'a>(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    len: usize,
    body: impl Iterator<Item = &'a [u8]>,
) -> Result<Reply, String> {
    let host = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let mut conn = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
    conn.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    let io = |e: std::io::Error| format!("{method} {path}: {e}");
    conn.write_all(head.as_bytes()).map_err(io)?;
    for slice in body {
        conn.write_all(slice).map_err(io)?;
    }
    read_reply(&mut conn).map_err(io)
}

/// The time from sending `GET path` on a new connection to `url` until the
/// first byte of a 200 response's body arrives (the rest is not read).
pub fn first_byte(url: &str, path: &str) -> Result<std::time::Duration, String> {
    let host = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let io = |e: std::io::Error| format!("GET {path}: {e}");
    let start = Instant::now();
    let mut conn = TcpStream::connect(host).map_err(io)?;
    conn.set_nodelay(true).map_err(io)?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    conn.write_all(head.as_bytes()).map_err(io)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut filled = 0;
    loop {
        let n = conn.read(&mut buf[filled..]).map_err(io)?;
        if n == 0 {
            return Err(format!("GET {path}: closed before the body"));
        }
        filled += n;
        if let Some(i) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            if !buf.starts_with(b"HTTP/1.1 200") {
                let line = String::from_utf8_lossy(&buf[..i]);
                return Err(format!("GET {path}: {line}"));
            }
            if filled > i + 4 {
                return Ok(start.elapsed());
            }
        }
        if filled == buf.len() {
            return Err(format!("GET {path}: the head is too long"));
        }
    }
}

/// Reads a response (a head, then a body framed by `Content-Length` or by
/// the end of the connection), dropping the body as it arrives.
fn read_reply(conn: &mut TcpStream) -> std::io::Result<Reply> {
    let mut buf = vec![0u8; IO_SIZE];
    let mut filled = 0;
    let head_end = loop {
        let n = conn.read(&mut buf[filled..])?;
        if n == 0 {
            return Err(std::io::Error::other(
                "connection closed before the response head",
            ));
        }
        filled += n;
        if let Some(i) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let announced: Option<u64> = header("content-length").and_then(|v| v.parse().ok());
    let mut body_len = (filled - head_end) as u64;
    while announced.is_none_or(|a| body_len < a) {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        body_len += n as u64;
    }
    Ok(Reply {
        status,
        location: header("location"),
        body_len,
    })
}

/// This machine's loopback TCP speed with the same 1 MiB writes and reads,
/// in MB/s: the ceiling of a download served from the page cache.
pub fn loopback_copy(size: usize) -> Result<f64, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut conn, _) = listener.accept()?;
        let mut buf = vec![0u8; IO_SIZE];
        let mut total = 0u64;
        loop {
            match conn.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let chunk = vec![5u8; IO_SIZE];
    let start = Instant::now();
    let mut conn = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    for _ in 0..size.div_ceil(IO_SIZE) {
        conn.write_all(&chunk).map_err(|e| e.to_string())?;
    }
    drop(conn);
    let total = reader
        .join()
        .map_err(|_| "loopback reader panicked")?
        .map_err(|e| e.to_string())?;
    Ok(mbps(total, start.elapsed().as_secs_f64()))
}
