//! Manifests: too large, not JSON (or not a manifest), and referencing
//! themselves.

use std::time::Duration;

use serde_json::json;

use crate::raw::{chunked, Conn};
use crate::state::{assert_healthy, Snapshot};
use crate::support::{digest, http, push_blob, BerthProcess};
use crate::{configured, empty_index, expect, expect_raw, OCI_INDEX, OCI_MANIFEST};

/// An index of nothing padded (with an annotation) to exactly `len` bytes.
fn index_of_len(len: usize) -> Vec<u8> {
    let base = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [],
        "annotations": {"pad": ""}})
    .to_string();
    let pad = len.checked_sub(base.len()).expect("len too small");
    let v = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [],
        "annotations": {"pad": "x".repeat(pad)}});
    let bytes = v.to_string().into_bytes();
    assert_eq!(bytes.len(), len);
    bytes
}

#[test]
fn an_oversized_manifest_gets_413() {
    let limit = 4096;
    let reg = configured(&format!(
        "max_manifest_bytes = {limit}\nbody_idle_timeout = \"60s\"\n"
    ));
    let url = reg.url();
    let host = reg.host.clone();
    let before = Snapshot::take(&reg);
    let big = index_of_len(limit + 1);
    let ct = format!("Content-Type: {OCI_INDEX}");

    let r = http(
        "PUT",
        &format!("{url}/v2/o/manifests/v1"),
        &[("Content-Type", OCI_INDEX)],
        &big,
    );
    expect(&r, 413, "SIZE_INVALID", "one byte over, by tag");
    let r = http(
        "PUT",
        &format!("{url}/v2/o/manifests/{}?tag=v1", digest(&big)),
        &[("Content-Type", OCI_INDEX)],
        &big,
    );
    expect(&r, 413, "SIZE_INVALID", "one byte over, by digest");
    // Without a Content-Length (chunked transfer coding) the limit holds too.
    let mut conn = Conn::open(&host);
    let head = format!(
        "PUT /v2/o/manifests/v1 HTTP/1.1\r\nHost: {host}\r\n{ct}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let pieces: Vec<&[u8]> = big.chunks(1000).collect();
    conn.send(&[head.as_bytes(), &chunked(&pieces)].concat());
    let r = conn.response(false).expect("a response");
    expect_raw(&r, 413, "SIZE_INVALID", "chunked, one byte over");
    // A Content-Length over the limit is refused at once, without waiting
    // for (or reading) a body the client may never finish sending.
    let mut conn = Conn::open(&host);
    let head = format!(
        "PUT /v2/o/manifests/v1 HTTP/1.1\r\nHost: {host}\r\n{ct}\r\nContent-Length: 1073741824\r\n\r\n"
    );
    conn.send(&[head.as_bytes(), &big[..100]].concat());
    let started = std::time::Instant::now();
    let r = conn.response(false).expect("a response");
    expect_raw(&r, 413, "SIZE_INVALID", "Content-Length: 1 GiB");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "413 took {:?}",
        started.elapsed()
    );
    before.assert_unchanged(&reg, "oversized manifests");

    // The limit itself is accepted.
    let edge = index_of_len(limit);
    let r = http(
        "PUT",
        &format!("{url}/v2/o/manifests/edge"),
        &[("Content-Type", OCI_INDEX)],
        &edge,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_healthy(&reg);
}

#[test]
fn malformed_manifests_are_refused() {
    let reg = BerthProcess::start();
    let url = reg.url();
    let before = Snapshot::take(&reg);
    let d = digest(b"x");
    let desc = json!({"mediaType": OCI_MANIFEST, "digest": d, "size": 1});
    let mut deep = "[".repeat(100_000);
    deep.push_str(&"]".repeat(100_000));
    let mut deep_object = r#"{"a":"#.repeat(50_000);
    deep_object.push('1');
    deep_object.push_str(&"}".repeat(50_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated", b"{\"schemaVersion\": 2, \"mediaType\"".to_vec()),
        ("not an object", b"[]".to_vec()),
        ("null", b"null".to_vec()),
        ("a string", b"\"manifest\"".to_vec()),
        ("a number", b"2".to_vec()),
        ("trailing garbage", [empty_index(), b"x".to_vec()].concat()),
        ("two documents", [empty_index(), empty_index()].concat()),
        ("byte order mark", [b"\xef\xbb\xbf".to_vec(), empty_index()].concat()),
        ("invalid UTF-8", b"{\"mediaType\": \"\xff\xfe\"}".to_vec()),
        ("NUL", b"{\0}".to_vec()),
        ("deeply nested array", deep.into_bytes()),
        ("deeply nested object", deep_object.into_bytes()),
        ("single quotes", b"{'schemaVersion': 2}".to_vec()),
        ("comment", b"{/* c */\"schemaVersion\": 2}".to_vec()),
        ("no media type", json!({"schemaVersion": 2, "manifests": []}).to_string().into_bytes()),
        ("schemaVersion 1", json!({"schemaVersion": 1, "mediaType": OCI_INDEX, "manifests": []}).to_string().into_bytes()),
        ("schemaVersion as a string", json!({"schemaVersion": "2", "mediaType": OCI_INDEX, "manifests": []}).to_string().into_bytes()),
        ("manifests as an object", json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": {}}).to_string().into_bytes()),
        ("an index without manifests", json!({"schemaVersion": 2, "mediaType": OCI_INDEX}).to_string().into_bytes()),
        ("an image without layers", json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": desc}).to_string().into_bytes()),
        ("an image without config", json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).to_string().into_bytes()),
        ("duplicate field", format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[],"manifests":[]}}"#).into_bytes()),
        ("descriptor without digest", json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_MANIFEST, "size": 1}]}).to_string().into_bytes()),
        ("descriptor without size", json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_MANIFEST, "digest": d}]}).to_string().into_bytes()),
        ("negative size", json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_MANIFEST, "digest": d, "size": -1}]}).to_string().into_bytes()),
        ("size past i64", format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":18446744073709551616}}]}}"#).into_bytes()),
        ("fractional size", format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":1.5}}]}}"#).into_bytes()),
        ("malformed descriptor digest", json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:../../etc", "size": 1}]}).to_string().into_bytes()),
        ("uppercase descriptor digest", json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_MANIFEST, "digest": d.to_uppercase(), "size": 1}]}).to_string().into_bytes()),
        ("malformed subject", json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "subject": {"digest": "md5:00", "size": 1}}).to_string().into_bytes()),
        ("media type mismatch", json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "manifests": []}).to_string().into_bytes()),
        ("media type not a type", json!({"schemaVersion": 2, "mediaType": "text", "manifests": []}).to_string().into_bytes()),
    ];
    for (what, body) in &cases {
        // Sent as an index unless the body says otherwise (or is nothing).
        let ct = if *what == "media type mismatch" || *what == "no media type" {
            None
        } else {
            Some(OCI_INDEX)
        };
        let headers: Vec<(&str, &str)> = ct.iter().map(|c| ("Content-Type", *c)).collect();
        let headers = if *what == "media type mismatch" {
            vec![("Content-Type", OCI_INDEX)]
        } else {
            headers
        };
        let r = http("PUT", &format!("{url}/v2/j/manifests/v1"), &headers, body);
        expect(&r, 400, "MANIFEST_INVALID", what);
        let r = http(
            "PUT",
            &format!("{url}/v2/j/manifests/{}", digest(body)),
            &headers,
            body,
        );
        expect(&r, 400, "MANIFEST_INVALID", &format!("{what}, by digest"));
    }
    before.assert_unchanged(&reg, "malformed manifests");
    assert_healthy(&reg);
    eprintln!("malformed manifests: {} bodies refused", cases.len());
}

#[test]
fn a_manifest_that_references_itself_is_refused() {
    // A manifest cannot contain its own digest (that would need a SHA-256
    // fixed point), so each self-reference is a push by digest `D` of a body
    // naming `D`: the body then never hashes to `D`. The variants that can
    // exist are references to the wrong kind of object.
    let reg = BerthProcess::start();
    let url = reg.url();
    let config = push_blob(&url, "s", b"{}");
    let before = Snapshot::take(&reg);
    let template = |field: &str, d: &str| {
        let desc = json!({"mediaType": OCI_MANIFEST, "digest": d, "size": 100});
        let cfg = json!({"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2});
        let v = match field {
            "config" => {
                json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": desc, "layers": []})
            }
            "layer" => {
                json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg, "layers": [desc]})
            }
            "child" => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc]}),
            _ => {
                json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg, "layers": [], "subject": desc})
            }
        };
        (
            v["mediaType"].as_str().unwrap().to_owned(),
            v.to_string().into_bytes(),
        )
    };
    for field in ["config", "layer", "child", "subject"] {
        // Claim the digest of the body as it would be with a placeholder.
        let (_, placeholder) = template(field, &digest(b"placeholder"));
        let claimed = digest(&placeholder);
        let (ct, body) = template(field, &claimed);
        let r = http(
            "PUT",
            &format!("{url}/v2/s/manifests/{claimed}?tag=loop"),
            &[("Content-Type", &ct)],
            &body,
        );
        expect(&r, 400, "DIGEST_INVALID", &format!("own digest as {field}"));
    }
    before.assert_unchanged(&reg, "manifests naming their own digest");
    // A stored manifest referenced as if it were a blob, and a blob as if
    // it were a manifest.
    let (ct, body) = template("subject", &digest(b"absent"));
    let put = http(
        "PUT",
        &format!("{url}/v2/s/manifests/base"),
        &[("Content-Type", &ct)],
        &body,
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    let stored = put.header("docker-content-digest").unwrap().to_owned();
    let before = Snapshot::take(&reg);
    for (field, d, what) in [
        ("config", stored.as_str(), "a manifest as config"),
        ("layer", stored.as_str(), "a manifest as layer"),
        ("child", config.as_str(), "a blob as child"),
    ] {
        let (ct, body) = template(field, d);
        let r = http(
            "PUT",
            &format!("{url}/v2/s/manifests/ref"),
            &[("Content-Type", &ct)],
            &body,
        );
        expect(&r, 400, "MANIFEST_BLOB_UNKNOWN", what);
    }
    before.assert_unchanged(&reg, "self-references");
    assert_healthy(&reg);
}
