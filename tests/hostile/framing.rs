//! Request framing: bodies shorter or longer than their `Content-Length`,
//! framing that contradicts itself, and clients too slow to finish.

use std::time::Duration;

use crate::raw::{self, chunked, Conn};
use crate::state::{assert_healthy, Snapshot};
use crate::support::{digest, http, random_bytes};
use crate::{configured, empty_index, expect_raw, open_upload, patch, OCI_INDEX};

/// Sends `head` and `body` on a fresh connection, then closes the sending
/// side; the response, `None` if the connection closed without one.
fn send_then_hang_up(host: &str, head: &str, body: &[u8]) -> Option<raw::RawResp> {
    let mut conn = Conn::open(host);
    conn.send(&[head.as_bytes(), body].concat());
    conn.finish_sending();
    conn.response(false)
}

#[test]
fn a_body_shorter_or_longer_than_its_content_length_stores_nothing() {
    let reg = configured("body_idle_timeout = \"2s\"\n");
    let url = reg.url();
    let host = reg.host.clone();
    let data = random_bytes(1000, 5);
    let d = digest(&data);
    let index = empty_index();
    let loc = open_upload(&url, "l");
    assert_eq!(patch(&url, &loc, "0-99", &data[..100]).status, 202);
    let before = Snapshot::take(&reg);
    let h = format!("Host: {host}\r\n");
    let ct = format!("Content-Type: {OCI_INDEX}\r\n");
    let unfinished = chunked(&[&data[100..500]]);

    // Shorter: the client sends part of its body and hangs up.
    let shorter: Vec<(&str, String, &[u8])> = vec![
        (
            "PATCH with a range",
            format!(
                "PATCH {loc} HTTP/1.1\r\n{h}Content-Range: 100-999\r\nContent-Length: 900\r\n\r\n"
            ),
            &data[100..500],
        ),
        (
            "PATCH without a range",
            format!("PATCH {loc} HTTP/1.1\r\n{h}Content-Length: 900\r\n\r\n"),
            &data[100..500],
        ),
        (
            "closing PUT",
            format!("PUT {loc}?digest={d} HTTP/1.1\r\n{h}Content-Length: 900\r\n\r\n"),
            &data[100..500],
        ),
        (
            "monolithic POST",
            format!(
                "POST /v2/l2/blobs/uploads/?digest={d} HTTP/1.1\r\n{h}Content-Length: 1000\r\n\r\n"
            ),
            &data[..500],
        ),
        (
            "manifest",
            format!(
                "PUT /v2/l2/manifests/v1 HTTP/1.1\r\n{h}{ct}Content-Length: {}\r\n\r\n",
                index.len() + 100
            ),
            &index,
        ),
        (
            "chunk cut short",
            format!("PATCH {loc} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n384\r\n"),
            &data[100..500],
        ),
        (
            "no last chunk",
            format!("PATCH {loc} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n"),
            &unfinished[..410],
        ),
    ];
    for (what, head, body) in &shorter {
        match send_then_hang_up(&host, head, body) {
            Some(r) => expect_raw(&r, 400, "SIZE_INVALID", what),
            None => panic!("{what}: no response"),
        }
    }
    before.assert_unchanged(&reg, "bodies shorter than their Content-Length");

    // Longer: the request as framed is checked, and what follows it is not
    // a request.
    let longer: Vec<(&str, String, &[u8], u16, &str)> = vec![
        ("range longer than the body", format!("PATCH {loc} HTTP/1.1\r\n{h}Content-Range: 100-999\r\nContent-Length: 500\r\n\r\n"), &data[100..], 400, "SIZE_INVALID"),
        ("monolithic POST", format!("POST /v2/l2/blobs/uploads/?digest={d} HTTP/1.1\r\n{h}Content-Length: 600\r\n\r\n"), &data, 400, "DIGEST_INVALID"),
        ("closing PUT", format!("PUT {loc}?digest={d} HTTP/1.1\r\n{h}Content-Range: 100-999\r\nContent-Length: 400\r\n\r\n"), &data[100..], 400, "SIZE_INVALID"),
        ("manifest", format!("PUT /v2/l2/manifests/v1 HTTP/1.1\r\n{h}{ct}Content-Length: {}\r\n\r\n", index.len() - 10), &index, 400, "MANIFEST_INVALID"),
    ];
    for (what, head, body, status, code) in &longer {
        let mut conn = Conn::open(&host);
        conn.send(&[head.as_bytes(), body].concat());
        let r = conn
            .response(false)
            .unwrap_or_else(|| panic!("{what}: no response"));
        expect_raw(&r, *status, code, what);
        // The rest is not a request: hyper answers 400 or hangs up.
        if let Some(r) = conn.response(false) {
            assert_eq!(r.status, 400, "{what}: the bytes past Content-Length");
        }
        conn.wait_closed();
    }
    before.assert_unchanged(&reg, "bodies longer than their Content-Length");

    // Framing that contradicts itself never reaches a handler.
    let framing: Vec<(&str, String, Vec<u8>)> = vec![
        ("two Content-Lengths", format!("POST /v2/l2/blobs/uploads/?digest={d} HTTP/1.1\r\n{h}Content-Length: 1000\r\nContent-Length: 500\r\n\r\n"), data.clone()),
        ("negative Content-Length", format!("POST /v2/l2/blobs/uploads/?digest={d} HTTP/1.1\r\n{h}Content-Length: -1\r\n\r\n"), data.clone()),
        ("Content-Length not a number", format!("POST /v2/l2/blobs/uploads/?digest={d} HTTP/1.1\r\n{h}Content-Length: 1e3\r\n\r\n"), data.clone()),
        ("unknown transfer coding", format!("POST /v2/l2/blobs/uploads/?digest={d} HTTP/1.1\r\n{h}Transfer-Encoding: gzip\r\n\r\n"), data.clone()),
        ("chunk size not hex", format!("PATCH {loc} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n"), b"zz\r\nabc\r\n0\r\n\r\n".to_vec()),
        ("chunk size overflows", format!("PATCH {loc} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n"), b"fffffffffffffffffff\r\nabc\r\n0\r\n\r\n".to_vec()),
    ];
    for (what, head, body) in &framing {
        let mut conn = Conn::open(&host);
        conn.send(&[head.as_bytes(), body].concat());
        match conn.response(false) {
            Some(r) if r.error_code().is_empty() => assert_eq!(r.status, 400, "{what}"),
            Some(r) => expect_raw(&r, 400, "SIZE_INVALID", what),
            None => {}
        }
        conn.wait_closed();
    }
    // Both Content-Length and chunked: as RFC 9112 says, the transfer
    // coding wins, and the connection is closed after the answer, so the
    // bytes cannot be read both ways (request smuggling). The digest is of
    // what Content-Length alone would have framed, so the upload fails.
    let wire = chunked(&[&data[..500]]);
    let as_counted = digest(&wire[..400]);
    let mut conn = Conn::open(&host);
    let head = format!("POST /v2/l2/blobs/uploads/?digest={as_counted} HTTP/1.1\r\n{h}Content-Length: 400\r\nTransfer-Encoding: chunked\r\n\r\n");
    conn.send(&[head.as_bytes(), &wire].concat());
    let r = conn.response(false).expect("a response");
    expect_raw(&r, 400, "DIGEST_INVALID", "Content-Length and chunked");
    assert_eq!(r.header("connection"), Some("close"));
    conn.wait_closed();
    before.assert_unchanged(&reg, "contradictory framing");
    let status = http("GET", &format!("{url}{loc}"), &[], &[]);
    assert_eq!((status.status, status.header("range")), (204, Some("0-99")));
    assert_eq!(http("DELETE", &format!("{url}{loc}"), &[], &[]).status, 204);
    assert_healthy(&reg);
}

/// Asserts the server hung up on `conn` after about `timeout` (not at once,
/// and not much later).
fn assert_cut_off(conn: &mut Conn, timeout: Duration, what: &str) {
    let waited = conn.wait_closed();
    assert!(
        waited >= timeout.mul_f64(0.8) && waited < timeout * 6,
        "{what}: closed after {waited:?}, the timeout is {timeout:?}"
    );
}

#[test]
fn slow_clients_are_cut_off_and_leave_nothing() {
    let header = Duration::from_secs(1);
    let idle = Duration::from_secs(1);
    let reg = configured("header_timeout = \"1s\"\nbody_idle_timeout = \"1s\"\n");
    let url = reg.url();
    let host = reg.host.clone();
    let data = random_bytes(1000, 11);
    let d = digest(&data);
    let loc = open_upload(&url, "slow");
    assert_eq!(patch(&url, &loc, "0-99", &data[..100]).status, 202);
    let before = Snapshot::take(&reg);

    // Request heads that never complete.
    let heads: [(&str, &[u8]); 5] = [
        ("nothing at all", b""),
        ("half a request line", b"GET /v2/ HT"),
        (
            "half the headers",
            b"GET /v2/ HTTP/1.1\r\nHost: x\r\nUser-Ag",
        ),
        ("part of the HTTP/2 preface", b"PRI * HTTP/2.0\r\n"),
        (
            "the HTTP/2 preface alone",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ),
    ];
    for (what, bytes) in heads {
        let mut conn = Conn::open(&host);
        conn.send(bytes);
        assert_cut_off(&mut conn, header, what);
    }
    // A kept-alive connection that sends nothing more is closed as well.
    let mut conn = Conn::open(&host);
    conn.send(format!("GET /v2/ HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
    assert_eq!(conn.response(false).map(|r| r.status), Some(200));
    assert_cut_off(&mut conn, header, "idle keep-alive");

    // Bodies that stall: the request fails and nothing of it is kept.
    let h = format!("Host: {host}\r\n");
    let stalls: Vec<(&str, String, &[u8])> = vec![
        ("PATCH", format!("PATCH {loc} HTTP/1.1\r\n{h}Content-Range: 100-999\r\nContent-Length: 900\r\n\r\n"), &data[100..300]),
        ("streamed PATCH", format!("PATCH {loc} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n384\r\n"), &data[100..300]),
        ("closing PUT", format!("PUT {loc}?digest={d} HTTP/1.1\r\n{h}Content-Length: 900\r\n\r\n"), &data[100..300]),
        ("monolithic POST", format!("POST /v2/slow2/blobs/uploads/?digest={d} HTTP/1.1\r\n{h}Content-Length: 1000\r\n\r\n"), &data[..300]),
        ("manifest", format!("PUT /v2/slow2/manifests/v1 HTTP/1.1\r\n{h}Content-Type: {OCI_INDEX}\r\nContent-Length: 200\r\n\r\n"), b"{\"schemaVersion\":"),
    ];
    for (what, head, body) in &stalls {
        let mut conn = Conn::open(&host);
        conn.send(&[head.as_bytes(), body].concat());
        let started = std::time::Instant::now();
        let r = conn
            .response(false)
            .unwrap_or_else(|| panic!("{what}: no response"));
        expect_raw(&r, 400, "SIZE_INVALID", what);
        let waited = started.elapsed();
        assert!(
            waited >= idle.mul_f64(0.8) && waited < idle * 6,
            "{what}: failed after {waited:?}, the idle timeout is {idle:?}"
        );
        conn.wait_closed();
    }
    before.assert_unchanged(&reg, "stalled bodies");

    // A slow but steady client is not cut off: the timeout is per pause.
    let mut conn = Conn::open(&host);
    let head =
        format!("PATCH {loc} HTTP/1.1\r\n{h}Content-Range: 100-999\r\nContent-Length: 900\r\n\r\n");
    conn.send(head.as_bytes());
    for piece in data[100..].chunks(150) {
        std::thread::sleep(idle / 4);
        assert!(conn.send(piece), "the server hung up on a steady client");
    }
    let r = conn.response(false).expect("a response");
    assert_eq!((r.status, r.header("range")), (202, Some("0-999")));
    let done = http("PUT", &format!("{url}{loc}?digest={d}"), &[], &[]);
    assert_eq!(done.status, 201);
    assert_healthy(&reg);
}
