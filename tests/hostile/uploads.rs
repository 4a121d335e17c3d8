//! Blob uploads: digests that do not match the content, chunks out of
//! order, sessions that do not exist (any more), and the limit on open
//! sessions.

use crate::raw::{chunked, Conn};
use crate::state::{assert_healthy, open_uploads, Snapshot};
use crate::support::{digest, http, push_blob, random_bytes, BerthProcess, Resp};
use crate::{assert_gone, configured, empty_index, expect, open_upload, patch, Case, OCI_INDEX};

#[test]
fn a_digest_that_does_not_match_the_content_is_refused() {
    let reg = BerthProcess::start();
    let url = reg.url();
    let before = Snapshot::take(&reg);
    let data = random_bytes(300_000, 9);
    let right = digest(&data);
    let mut longer = data.clone();
    longer.push(0);
    let wrongs = [
        digest(&random_bytes(300_000, 10)),
        digest(&data[..data.len() - 1]),
        digest(&longer),
        digest(b""),
    ];
    for wrong in &wrongs {
        // Monolithic: one POST.
        let r = http(
            "POST",
            &format!("{url}/v2/m/blobs/uploads/?digest={wrong}"),
            &[],
            &data,
        );
        expect(&r, 400, "DIGEST_INVALID", "monolithic POST");

        // Monolithic: POST, then PUT with the whole body.
        let loc = open_upload(&url, "m");
        let r = http("PUT", &format!("{url}{loc}?digest={wrong}"), &[], &data);
        expect(&r, 400, "DIGEST_INVALID", "POST then PUT");
        assert_gone(&url, &loc);

        // Chunked: PATCHes with Content-Range, the last one in the PUT.
        let loc = open_upload(&url, "m");
        for (i, piece) in data[..200_000].chunks(100_000).enumerate() {
            let start = i * 100_000;
            let range = format!("{start}-{}", start + piece.len() - 1);
            assert_eq!(patch(&url, &loc, &range, piece).status, 202);
        }
        let r = http(
            "PUT",
            &format!("{url}{loc}?digest={wrong}"),
            &[("Content-Range", "200000-299999")],
            &data[200_000..],
        );
        expect(&r, 400, "DIGEST_INVALID", "chunked");
        assert_gone(&url, &loc);

        // Streamed: one PATCH in chunked transfer coding, no Content-Range,
        // then an empty PUT (docker's way).
        let loc = open_upload(&url, "m");
        let mut conn = Conn::open(&reg.host);
        let head = format!(
            "PATCH {loc} HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
            reg.host
        );
        let pieces: Vec<&[u8]> = data.chunks(65_536).collect();
        conn.send(&[head.as_bytes(), &chunked(&pieces)].concat());
        let r = conn
            .response(false)
            .expect("a response to the streamed PATCH");
        assert_eq!((r.status, r.header("range")), (202, Some("0-299999")));
        let r = http("PUT", &format!("{url}{loc}?digest={wrong}"), &[], &[]);
        expect(&r, 400, "DIGEST_INVALID", "streamed");
        assert_gone(&url, &loc);
    }
    // sha512 is verified too.
    let sha512 = format!("sha512:{}", "0".repeat(128));
    let r = http(
        "POST",
        &format!("{url}/v2/m/blobs/uploads/?digest={sha512}"),
        &[],
        &data,
    );
    expect(&r, 400, "DIGEST_INVALID", "sha512 monolithic");
    // A manifest pushed under a digest that is not its own.
    let index = empty_index();
    let r = http(
        "PUT",
        &format!("{url}/v2/m/manifests/{right}?tag=v1"),
        &[("Content-Type", OCI_INDEX)],
        &index,
    );
    expect(&r, 400, "DIGEST_INVALID", "manifest by the wrong digest");

    before.assert_unchanged(&reg, "digest mismatches");
    assert_eq!(open_uploads(&reg), 0);
    assert_healthy(&reg);
}

#[test]
fn a_content_range_that_skips_or_overlaps_is_refused() {
    let reg = BerthProcess::start();
    let url = reg.url();
    let before = Snapshot::take(&reg);
    let data = random_bytes(100, 3);
    let loc = open_upload(&url, "r");
    let first = patch(&url, &loc, "0-9", &data[..10]);
    assert_eq!((first.status, first.header("range")), (202, Some("0-9")));
    let during = Snapshot::take(&reg);

    // Out of order: 416 with the current offset in `Range`.
    for (range, piece) in [
        ("20-29", &data[20..30]),
        ("11-20", &data[11..21]),
        ("5-14", &data[5..15]),
        ("9-18", &data[9..19]),
        ("0-9", &data[..10]),
        ("0-99", &data[..]),
    ] {
        let r = patch(&url, &loc, range, piece);
        expect(&r, 416, "BLOB_UPLOAD_INVALID", range);
        assert_eq!(r.header("range"), Some("0-9"), "{range}");
        let r = http(
            "PUT",
            &format!("{url}{loc}?digest={}", digest(&data)),
            &[("Content-Range", range)],
            piece,
        );
        expect(&r, 416, "BLOB_UPLOAD_INVALID", &format!("PUT {range}"));
    }
    // In order, but the body is not the range's length.
    for (range, piece) in [("10-19", &data[10..15]), ("10-14", &data[10..20])] {
        let r = patch(&url, &loc, range, piece);
        expect(&r, 400, "SIZE_INVALID", range);
    }
    // Not a range at all.
    for range in [
        "19-10",
        "10-",
        "-10",
        "10",
        "a-b",
        "10-19-20",
        "bytes=10-19",
        "10 - 19",
        "+10-19",
        "10-18446744073709551615",
        "10-18446744073709551616",
        "10-19/5",
        "10-19/x",
    ] {
        let r = patch(&url, &loc, range, &data[10..20]);
        expect(&r, 400, "BLOB_UPLOAD_INVALID", range);
    }
    let status = http("GET", &format!("{url}{loc}"), &[], &[]);
    assert_eq!((status.status, status.header("range")), (204, Some("0-9")));
    during.assert_unchanged(&reg, "refused chunks");

    // The session still completes, with exactly the bytes sent in order.
    assert_eq!(patch(&url, &loc, "10-89", &data[10..90]).status, 202);
    let d = digest(&data);
    let done = http(
        "PUT",
        &format!("{url}{loc}?digest={d}"),
        &[("Content-Range", "90-99")],
        &data[90..],
    );
    assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
    let got = http("GET", &format!("{url}/v2/r/blobs/{d}"), &[], &[]);
    assert_eq!((got.status, got.body), (200, data));
    assert_eq!(
        Snapshot::take(&reg).event_count(),
        before.event_count(),
        "blob uploads raise no event"
    );
    assert_healthy(&reg);
}

#[test]
fn an_unknown_cancelled_or_finished_upload_is_unknown() {
    let reg = BerthProcess::start();
    let url = reg.url();
    let blob = b"finished".to_vec();
    let d = digest(&blob);
    let other = digest(b"other");

    let finished = open_upload(&url, "u");
    let r = http("PUT", &format!("{url}{finished}?digest={d}"), &[], &blob);
    assert_eq!(r.status, 201);
    let cancelled = open_upload(&url, "u");
    assert_eq!(patch(&url, &cancelled, "0-4", b"abcde").status, 202);
    assert_eq!(
        http("DELETE", &format!("{url}{cancelled}"), &[], &[]).status,
        204
    );
    let open = open_upload(&url, "u");
    assert_eq!(patch(&url, &open, "0-2", b"abc").status, 202);
    let id = open.rsplit('/').next().unwrap().to_owned();
    let before = Snapshot::take(&reg);

    let unknown = [
        finished.clone(),
        cancelled.clone(),
        "/v2/u/blobs/uploads/0b5a2f1c-3d4e-4f60-8a7b-9c0d1e2f3a4b".into(),
        // Someone else's session, through another repository.
        format!("/v2/v/blobs/uploads/{id}"),
        // Not the canonical form of a UUID.
        format!("/v2/u/blobs/uploads/{}", id.to_uppercase()),
        format!("/v2/u/blobs/uploads/{}", id.replace('-', "")),
        format!("/v2/u/blobs/uploads/%7B{id}%7D"),
        format!("/v2/u/blobs/uploads/urn:uuid:{id}"),
        "/v2/u/blobs/uploads/not-an-id".into(),
    ];
    let mut tried = 0;
    for loc in &unknown {
        let cases: [Case; 6] = [
            ("PATCH", loc.clone(), &[("Content-Range", "0-4")], b"fghij"),
            ("PATCH", loc.clone(), &[], b"streamed"),
            ("PUT", format!("{loc}?digest={other}"), &[], b"other"),
            ("PUT", format!("{loc}?digest={d}"), &[], b""),
            ("GET", loc.clone(), &[], b""),
            ("DELETE", loc.clone(), &[], b""),
        ];
        for (method, path, headers, body) in cases {
            let r = http(method, &format!("{url}{path}"), headers, body);
            expect(&r, 404, "BLOB_UPLOAD_UNKNOWN", &format!("{method} {path}"));
            tried += 1;
        }
    }
    before.assert_unchanged(&reg, "requests to unknown uploads");
    let status = http("GET", &format!("{url}{open}"), &[], &[]);
    assert_eq!((status.status, status.header("range")), (204, Some("0-2")));
    assert_eq!(
        http("DELETE", &format!("{url}{open}"), &[], &[]).status,
        204
    );
    assert_healthy(&reg);
    eprintln!("unknown uploads: {tried} requests refused");
}

#[test]
fn open_uploads_are_limited() {
    let mut reg = configured("max_open_uploads = 3\n");
    let url = reg.url();
    let mounted = push_blob(&url, "src", b"mount me");
    let sessions: Vec<String> = (0..3).map(|_| open_upload(&url, "q")).collect();
    let before = Snapshot::take(&reg);
    assert_eq!(open_uploads(&reg), 3);

    let blob = b"one too many".to_vec();
    let d = digest(&blob);
    let refused = [
        ("a new session", "/v2/q/blobs/uploads/".to_owned(), &[][..]),
        (
            "in another repository",
            "/v2/other/blobs/uploads/".to_owned(),
            &[],
        ),
        (
            "a monolithic upload",
            format!("/v2/q/blobs/uploads/?digest={d}"),
            &blob,
        ),
        (
            "a mount that falls back to a session",
            format!("/v2/q/blobs/uploads/?mount={d}&from=src"),
            &[],
        ),
    ];
    for (what, path, body) in &refused {
        let r = http("POST", &format!("{url}{path}"), &[], body);
        expect(&r, 429, "TOOMANYREQUESTS", what);
        let retry = r
            .header("retry-after")
            .unwrap_or_else(|| panic!("{what}: no Retry-After"));
        assert!(
            retry.parse::<u64>().is_ok_and(|s| s > 0),
            "Retry-After: {retry}"
        );
        assert_eq!(r.json()["errors"][0]["message"], "too many requests");
    }
    before.assert_unchanged(&reg, "refused uploads");
    // A mount that succeeds opens no session, so the limit does not apply.
    let r = http(
        "POST",
        &format!("{url}/v2/q/blobs/uploads/?mount={mounted}&from=src"),
        &[],
        &[],
    );
    assert_eq!(r.status, 201);

    // Cancelling, finishing, and failing to finish each free a slot.
    let next = |what: &str| {
        let r = http("POST", &format!("{url}/v2/q/blobs/uploads/"), &[], &[]);
        assert_eq!(r.status, 202, "{what} did not free a slot");
        let full = http("POST", &format!("{url}/v2/q/blobs/uploads/"), &[], &[]);
        expect(&full, 429, "TOOMANYREQUESTS", &format!("after {what}"));
        r.header("location").unwrap().to_owned()
    };
    assert_eq!(
        http("DELETE", &format!("{url}{}", sessions[0]), &[], &[]).status,
        204
    );
    let a = next("a cancel");
    let done = http(
        "PUT",
        &format!("{url}{}?digest={d}", sessions[1]),
        &[],
        &blob,
    );
    assert_eq!(done.status, 201);
    let b = next("a finish");
    let wrong = http(
        "PUT",
        &format!("{url}{}?digest={}", sessions[2], digest(b"not it")),
        &[],
        &blob,
    );
    expect(&wrong, 400, "DIGEST_INVALID", "wrong digest");
    let c = next("a failed finish");

    // The sessions and the limit survive a restart.
    reg.kill9();
    let reg = reg.restart();
    let url = reg.url();
    let r = http("POST", &format!("{url}/v2/q/blobs/uploads/"), &[], &[]);
    expect(&r, 429, "TOOMANYREQUESTS", "after a restart");
    for loc in [&a, &b, &c] {
        assert_eq!(http("DELETE", &format!("{url}{loc}"), &[], &[]).status, 204);
    }
    assert_eq!(open_uploads(&reg), 0);

    // Concurrent starts never overshoot the limit.
    let threads: Vec<_> = (0..12)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                http("POST", &format!("{url}/v2/race/blobs/uploads/"), &[], &[])
            })
        })
        .collect();
    let answers: Vec<Resp> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let accepted: Vec<&Resp> = answers.iter().filter(|r| r.status == 202).collect();
    assert_eq!(accepted.len(), 3, "exactly the limit is accepted");
    assert!(answers
        .iter()
        .all(|r| r.status == 202 || r.error_code() == "TOOMANYREQUESTS"));
    assert_eq!(open_uploads(&reg), 3);
    for r in accepted {
        let loc = r.header("location").unwrap();
        assert_eq!(http("DELETE", &format!("{url}{loc}"), &[], &[]).status, 204);
    }
    assert_healthy(&reg);
}
