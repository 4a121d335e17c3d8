//! Names, tags, digests and upload ids that try to leave their place:
//! path traversal, and everything the spec's grammars rule out.

use crate::raw::simple;
use crate::state::{assert_healthy, Snapshot};
use crate::support::{digest, http, BerthProcess};
use crate::{empty_index, expect, expect_raw, open_upload, OCI_INDEX};

#[test]
fn path_traversal_in_names_is_refused() {
    // The data directory is a child of `tmp`: nothing may appear beside it.
    let tmp = tempfile::tempdir().unwrap();
    let reg = BerthProcess::start_in(&tmp.path().join("data"));
    let host = reg.host.clone();
    let before = Snapshot::take(&reg);
    let index = empty_index();
    let blob = b"traversal".to_vec();
    let d = digest(&blob);
    let names = [
        "..",
        "../etc",
        "a/../../etc",
        "a/./b",
        "./a",
        "%2e%2e",
        "%2e%2e/%2e%2e/etc",
        "a/%2E%2E/b",
        "..%2fetc",
        "a%2fb",
        "a%2F..%2F..%2Fetc",
        "/etc",
        "/",
        "a//b",
        "a/",
        "..;/etc",
        "a%00b",
        "%5c..%5cetc",
        "~root",
    ];
    let mut tried = 0;
    for name in names {
        let cases: [(&str, String, &[u8]); 7] = [
            ("GET", format!("/v2/{name}/manifests/latest"), b""),
            ("PUT", format!("/v2/{name}/manifests/v1"), &index),
            ("DELETE", format!("/v2/{name}/manifests/{d}"), b""),
            (
                "POST",
                format!("/v2/{name}/blobs/uploads/?digest={d}"),
                &blob,
            ),
            ("POST", format!("/v2/{name}/blobs/uploads/"), b""),
            ("GET", format!("/v2/{name}/blobs/{d}"), b""),
            ("GET", format!("/v2/{name}/tags/list"), b""),
        ];
        for (method, path, body) in cases {
            let r = simple(
                &host,
                method,
                &path,
                &[&format!("Content-Type: {OCI_INDEX}")],
                body,
            );
            expect_raw(&r, 400, "NAME_INVALID", &format!("{method} {path}"));
            tried += 1;
        }
    }
    // Names in query parameters are decoded first, then validated.
    for from in ["..%2Fetc", "%2Fetc", "a%2F%2Fb", "a%2F.%2Fb"] {
        let path = format!("/v2/ok/blobs/uploads/?mount={d}&from={from}");
        let r = simple(&host, "POST", &path, &[], b"");
        expect_raw(&r, 400, "NAME_INVALID", &path);
        tried += 1;
    }
    // The registry's own admin APIs take names too.
    for path in [
        "/api/repositories/../etc",
        "/api/repositories/%2e%2e",
        "/api/repositories//etc",
        "/api/repositories/a//b",
    ] {
        let r = simple(&host, "DELETE", path, &[], b"");
        expect_raw(&r, 400, "NAME_INVALID", path);
        tried += 1;
    }
    for path in [
        format!("/api/quarantine/../etc/{d}"),
        format!("/api/quarantine//etc/{d}"),
        format!("/api/quarantine/%2e%2e/{d}"),
    ] {
        let r = simple(&host, "GET", &path, &[], b"");
        expect_raw(&r, 400, "NAME_INVALID", &path);
        tried += 1;
    }
    // Digests, tags and upload ids cannot name a path either.
    let paths: [(&str, &str, u16, &str); 7] = [
        (
            "GET",
            "/v2/ok/blobs/sha256:..%2f..%2fmeta",
            400,
            "DIGEST_INVALID",
        ),
        (
            "GET",
            "/v2/ok/manifests/..%2f..%2fmeta",
            400,
            "MANIFEST_INVALID",
        ),
        ("GET", "/v2/ok/manifests/..", 400, "MANIFEST_INVALID"),
        (
            "PATCH",
            "/v2/ok/blobs/uploads/..%2f..%2fmeta",
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        ("PUT", "/v2/ok/blobs/uploads/..", 404, "BLOB_UPLOAD_UNKNOWN"),
        (
            "GET",
            "/v2/ok/blobs/uploads/../../../meta/db",
            404,
            "UNSUPPORTED",
        ),
        ("GET", "/v2/../../../../etc/passwd", 404, "UNSUPPORTED"),
    ];
    for (method, path, status, code) in paths {
        let r = simple(&host, method, path, &[], b"data");
        expect_raw(&r, status, code, path);
        tried += 1;
    }
    // The absolute form of a request target carries the same path.
    let r = simple(
        &host,
        "PUT",
        &format!("http://{host}/v2/../etc/manifests/v1"),
        &[&format!("Content-Type: {OCI_INDEX}")],
        &index,
    );
    expect_raw(&r, 400, "NAME_INVALID", "absolute-form target");
    tried += 1;

    before.assert_unchanged(&reg, "path traversal");
    let beside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        beside,
        ["data"],
        "files appeared next to the data directory"
    );
    assert_healthy(&reg);
    eprintln!("path traversal: {tried} requests refused");
}

#[test]
fn invalid_names_tags_digests_and_algorithms_are_refused() {
    let reg = BerthProcess::start();
    let url = reg.url();
    let before = Snapshot::take(&reg);
    let index = empty_index();
    let good = digest(b"content");
    let hex = &good["sha256:".len()..];
    let bad_names = [
        "UPPER".to_owned(),
        "team/App".to_owned(),
        "a".repeat(256),
        format!("{}/b", "a".repeat(254)),
        "-a".into(),
        "a-".into(),
        "a_".into(),
        "a___b".into(),
        "a..b".into(),
        "a._b".into(),
        "a%20b".into(),
        "a+b".into(),
        "%C3%A4".into(),
    ];
    let mut tried = 0;
    for name in &bad_names {
        for (method, path) in [
            ("GET", format!("/v2/{name}/manifests/latest")),
            ("PUT", format!("/v2/{name}/manifests/latest")),
            ("POST", format!("/v2/{name}/blobs/uploads/")),
            ("GET", format!("/v2/{name}/tags/list")),
            ("GET", format!("/v2/{name}/referrers/{good}")),
        ] {
            let r = simple(
                &reg.host,
                method,
                &path,
                &[&format!("Content-Type: {OCI_INDEX}")],
                &index,
            );
            expect_raw(&r, 400, "NAME_INVALID", &format!("{method} {name}"));
            tried += 1;
        }
    }
    let bad_tags = [
        "a".repeat(129),
        ".hidden".into(),
        "-dash".into(),
        "a+b".into(),
        "a%2Bb".into(),
        "tag%20x".into(),
        "ä".into(),
    ];
    for tag in &bad_tags {
        let r = http(
            "PUT",
            &format!("{url}/v2/t/manifests/{tag}"),
            &[("Content-Type", OCI_INDEX)],
            &index,
        );
        expect(&r, 400, "MANIFEST_INVALID", &format!("PUT tag {tag}"));
        let r = http("GET", &format!("{url}/v2/t/manifests/{tag}"), &[], &[]);
        expect(&r, 400, "MANIFEST_INVALID", &format!("GET tag {tag}"));
        tried += 2;
    }
    // A valid push by digest with one bad ?tag= stores nothing at all.
    let d = digest(&index);
    let r = http(
        "PUT",
        &format!("{url}/v2/t/manifests/{d}?tag=ok&tag=-bad"),
        &[("Content-Type", OCI_INDEX)],
        &index,
    );
    expect(&r, 400, "MANIFEST_INVALID", "?tag=-bad");
    tried += 1;

    let bad_digests = [
        format!("sha256:{}", hex.to_uppercase()),
        format!("SHA256:{hex}"),
        format!("sha256:{}", &hex[1..]),
        format!("sha256:{hex}0"),
        format!("sha256:{}g", &hex[1..]),
        format!("sha512:{hex}"),
        format!("sha384:{hex}"),
        format!("md5:{}", &hex[..32]),
        format!("sha1:{}", &hex[..40]),
        format!("blake3:{hex}"),
        "sha256:".into(),
        ":".into(),
        format!("sha256+b64:{hex}"),
        format!("sha256:{hex}:{hex}"),
    ];
    for bad in &bad_digests {
        let enc = bad.replace('+', "%2B");
        for (method, path, body) in [
            ("GET", format!("/v2/t/blobs/{bad}"), &b""[..]),
            ("DELETE", format!("/v2/t/blobs/{bad}"), b""),
            ("GET", format!("/v2/t/manifests/{bad}"), b""),
            ("PUT", format!("/v2/t/manifests/{bad}"), &index),
            ("GET", format!("/v2/t/referrers/{bad}"), b""),
            (
                "POST",
                format!("/v2/t/blobs/uploads/?digest={enc}"),
                b"content",
            ),
            (
                "POST",
                format!("/v2/t/blobs/uploads/?mount={enc}&from=s"),
                b"",
            ),
        ] {
            let r = simple(
                &reg.host,
                method,
                &path,
                &[&format!("Content-Type: {OCI_INDEX}")],
                body,
            );
            expect_raw(&r, 400, "DIGEST_INVALID", &format!("{method} {path}"));
            tried += 1;
        }
    }
    // A valid session closed with a malformed digest stays open, unchanged.
    let location = open_upload(&url, "t");
    for bad in &bad_digests {
        let enc = bad.replace('+', "%2B");
        let r = http(
            "PUT",
            &format!("{url}{location}?digest={enc}"),
            &[],
            b"tail",
        );
        expect(&r, 400, "DIGEST_INVALID", &format!("PUT ?digest={bad}"));
        tried += 1;
    }
    let r = http("PUT", &format!("{url}{location}"), &[], b"tail");
    expect(&r, 400, "BLOB_UPLOAD_INVALID", "PUT without ?digest=");
    let status = http("GET", &format!("{url}{location}"), &[], &[]);
    assert_eq!(status.status, 204);
    assert_eq!(
        http("DELETE", &format!("{url}{location}"), &[], &[]).status,
        204
    );
    for algo in ["md5", "sha1", "SHA256", "sha384", ""] {
        let r = http(
            "POST",
            &format!("{url}/v2/t/blobs/uploads/?digest-algorithm={algo}"),
            &[],
            &[],
        );
        expect(
            &r,
            400,
            "DIGEST_INVALID",
            &format!("digest-algorithm={algo}"),
        );
        tried += 1;
    }
    before.assert_unchanged(&reg, "invalid names, tags and digests");
    assert_healthy(&reg);
    eprintln!("invalid names, tags, digests, algorithms: {tried} requests refused");
}
