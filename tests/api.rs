//! The Distribution API over real sockets against a real `berth` process:
//! durability across `kill -9`, the event log, and error paths that must
//! leave nothing behind. (The spec-wide checks live in `conformance/`.)

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use registry::ext::Action;
use support::{digest, events, http, push_blob, push_image, random_bytes, BerthProcess};

#[test]
fn acknowledged_pushes_and_their_events_survive_kill_9() {
    let mut reg = BerthProcess::start();
    let url = reg.url();
    let (manifest, put) = push_image(&url, "team/app", "v1", 1);
    assert_eq!(put.status, 201);
    let md = put.header("docker-content-digest").unwrap().to_owned();
    assert_eq!(md, digest(&manifest));
    let request_id = put.header("x-request-id").unwrap().to_owned();
    let layer = random_bytes(1000, 1);

    // end-7b: tags given on a push by digest are acknowledged with OCI-Tag.
    let by_digest = http(
        "PUT",
        &format!("{url}/v2/team/app/manifests/{md}?tag=v2&tag=latest"),
        &[
            ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
            ("User-Agent", "second/2"),
        ],
        &manifest,
    );
    assert_eq!(by_digest.status, 201);
    let oci_tags: Vec<_> = by_digest
        .headers
        .iter()
        .filter(|(k, _)| k == "oci-tag")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(oci_tags, ["v2", "latest"]);

    reg.kill9();
    let dir = reg.dir().to_owned();
    let log = events(&dir);
    let reg2 = BerthProcess::start_in(&dir);
    let url = reg2.url();

    for tag in ["v1", "v2", "latest"] {
        let got = http(
            "GET",
            &format!("{url}/v2/team/app/manifests/{tag}"),
            &[],
            &[],
        );
        assert_eq!(got.status, 200, "tag {tag}");
        assert_eq!(got.body, manifest, "manifest bytes for {tag}");
        assert_eq!(
            got.header("content-type"),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
    }
    let blob = http(
        "GET",
        &format!("{url}/v2/team/app/blobs/{}", digest(&layer)),
        &[],
        &[],
    );
    assert_eq!((blob.status, blob.body), (200, layer));

    // One push event per tag, each carrying the request exactly as sent.
    let pushes: Vec<_> = log
        .iter()
        .filter(|r| r.event.action == Action::Push)
        .collect();
    let tags: Vec<_> = pushes
        .iter()
        .map(|r| r.event.target.tag.clone().unwrap_or_default())
        .collect();
    assert_eq!(tags, ["v1", "v2", "latest"]);
    let first = &pushes[0].event;
    assert_eq!(first.request.id, request_id);
    assert_eq!(first.request.method, "PUT");
    assert_eq!(first.request.useragent, "berth-tests/1");
    assert_eq!(first.request.host, reg.host);
    assert_eq!(first.target.digest, md);
    assert_eq!(first.target.repository, "team/app");
    assert_eq!(first.target.size, Some(manifest.len() as u64));
    assert_eq!(first.target.length, Some(manifest.len() as u64));
    assert_eq!(
        first.target.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(pushes[1].event.request.useragent, "second/2");
    let ids: std::collections::HashSet<_> = log.iter().map(|r| &r.event.id).collect();
    assert_eq!(ids.len(), log.len(), "event ids are unique");
}

#[test]
fn a_chunked_upload_resumes_after_kill_9() {
    let mut reg = BerthProcess::start();
    let url = reg.url();
    let data = random_bytes(3 * 1024 * 1024 + 17, 7);
    let start = http("POST", &format!("{url}/v2/big/blobs/uploads/"), &[], &[]);
    assert_eq!(start.status, 202);
    let location = start.header("location").unwrap().to_owned();
    let first = http(
        "PATCH",
        &format!("{url}{location}"),
        &[("Content-Range", "0-1048575")],
        &data[..1 << 20],
    );
    assert_eq!(
        (first.status, first.header("range")),
        (202, Some("0-1048575"))
    );

    reg.kill9();
    let reg = BerthProcess::start_in(reg.dir());
    let url = reg.url();
    let status = http("GET", &format!("{url}{location}"), &[], &[]);
    assert_eq!(
        (status.status, status.header("range")),
        (204, Some("0-1048575"))
    );
    // Out of order after the restart: 416 and the current offset.
    let skip = http(
        "PATCH",
        &format!("{url}{location}"),
        &[("Content-Range", "2000000-2000009")],
        &data[..10],
    );
    assert_eq!(
        (skip.status, skip.header("range")),
        (416, Some("0-1048575"))
    );
    assert_eq!(skip.error_code(), "BLOB_UPLOAD_INVALID");
    // docker's way: a streamed PATCH without Content-Range, then PUT.
    let rest = http("PATCH", &format!("{url}{location}"), &[], &data[1 << 20..]);
    assert_eq!(rest.status, 202);
    let d = digest(&data);
    let done = http("PUT", &format!("{url}{location}?digest={d}"), &[], &[]);
    assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
    let got = http("GET", &format!("{url}/v2/big/blobs/{d}"), &[], &[]);
    assert!(got.body == data, "blob differs after resume");
    let gone = http("GET", &format!("{url}{location}"), &[], &[]);
    assert_eq!(
        (gone.status, gone.error_code().as_str()),
        (404, "BLOB_UPLOAD_UNKNOWN")
    );
}

#[test]
fn deleting_a_tag_keeps_the_manifest_and_raises_no_event() {
    let mut reg = BerthProcess::start();
    let url = reg.url();
    let (_, put) = push_image(&url, "r", "a", 3);
    let md = put.header("docker-content-digest").unwrap().to_owned();
    let tag_b = http(
        "PUT",
        &format!("{url}/v2/r/manifests/b"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &http("GET", &format!("{url}/v2/r/manifests/a"), &[], &[]).body,
    );
    assert_eq!(tag_b.status, 201);

    assert_eq!(
        http("DELETE", &format!("{url}/v2/r/manifests/b"), &[], &[]).status,
        202
    );
    assert_eq!(
        http("GET", &format!("{url}/v2/r/manifests/b"), &[], &[]).status,
        404
    );
    assert_eq!(
        http("GET", &format!("{url}/v2/r/manifests/{md}"), &[], &[]).status,
        200
    );
    let tags = http("GET", &format!("{url}/v2/r/tags/list"), &[], &[]).json();
    assert_eq!(tags["tags"], serde_json::json!(["a"]));

    let del = http(
        "DELETE",
        &format!("{url}/v2/r/manifests/{md}"),
        &[("User-Agent", "deleter/1")],
        &[],
    );
    assert_eq!(del.status, 202);
    for reference in ["a", md.as_str()] {
        let r = http(
            "GET",
            &format!("{url}/v2/r/manifests/{reference}"),
            &[],
            &[],
        );
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "MANIFEST_UNKNOWN")
        );
    }
    reg.kill9();
    let log = events(reg.dir());
    let actions: Vec<_> = log.iter().map(|r| r.event.action).collect();
    assert_eq!(actions, [Action::Push, Action::Push, Action::Delete]);
    let delete = &log[2];
    assert_eq!(
        delete.tags,
        ["a"],
        "the delete remembers the tags the manifest had"
    );
    assert_eq!(delete.event.target.tag, None);
    assert_eq!(delete.event.target.size, None);
    assert_eq!(delete.event.request.method, "DELETE");
    assert_eq!(delete.event.request.useragent, "deleter/1");
    assert_eq!(delete.event.request.id, del.header("x-request-id").unwrap());
}

#[test]
fn rejected_input_stores_nothing() {
    let mut reg = BerthProcess::start();
    let url = reg.url();
    let data = b"some content".to_vec();
    let wrong = digest(b"other content");

    let r = http(
        "POST",
        &format!("{url}/v2/e/blobs/uploads/?digest={wrong}"),
        &[],
        &data,
    );
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    for d in [wrong.as_str(), digest(&data).as_str()] {
        assert_eq!(
            http("HEAD", &format!("{url}/v2/e/blobs/{d}"), &[], &[]).status,
            404
        );
    }

    let missing = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": wrong, "size": 13},
        "layers": [],
    });
    let r = http(
        "PUT",
        &format!("{url}/v2/e/manifests/v1"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        missing.to_string().as_bytes(),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    assert!(r.json()["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains(&wrong));

    let big = vec![b' '; 4 * 1024 * 1024 + 1];
    let r = http(
        "PUT",
        &format!("{url}/v2/e/manifests/big"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &big,
    );
    assert_eq!(r.status, 413);
    let r = http(
        "PUT",
        &format!("{url}/v2/e/manifests/bad"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        b"{not json",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );
    let r = http("GET", &format!("{url}/v2/e/tags/list"), &[], &[]);
    assert_eq!((r.status, r.error_code().as_str()), (404, "NAME_UNKNOWN"));
    for (path, code) in [
        ("/v2/UPPER/manifests/x", "NAME_INVALID"),
        ("/v2/a/blobs/md5:00", "DIGEST_INVALID"),
        ("/v2/a/manifests/-tag", "MANIFEST_INVALID"),
    ] {
        let r = http("GET", &format!("{url}{path}"), &[], &[]);
        assert_eq!((r.status, r.error_code().as_str()), (400, code), "{path}");
    }
    let r = http("GET", &format!("{url}/nowhere"), &[], &[]);
    assert_eq!((r.status, r.error_code().as_str()), (404, "UNSUPPORTED"));
    let r = http("POST", &format!("{url}/v2/e/manifests/v1"), &[], &[]);
    assert_eq!((r.status, r.error_code().as_str()), (405, "UNSUPPORTED"));

    reg.kill9();
    assert!(events(reg.dir()).is_empty(), "no event for a rejected push");
}

#[test]
fn sparse_mode_accepts_an_index_of_absent_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("berth.toml");
    std::fs::write(&config, "allow_missing_references = true\n").unwrap();
    let data = tmp.path().join("data");
    let reg = BerthProcess::start_with(&data, &["--config", config.to_str().unwrap()]);
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(b"absent"), "size": 6}],
    });
    let r = http(
        "PUT",
        &format!("{}/v2/mirror/manifests/v1", reg.url()),
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        index.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));

    let strict = BerthProcess::start();
    let r = http(
        "PUT",
        &format!("{}/v2/mirror/manifests/v1", strict.url()),
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        index.to_string().as_bytes(),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
}

#[test]
fn sigterm_shuts_down_cleanly_and_every_response_has_a_request_id() {
    let mut reg = BerthProcess::start();
    let a = http("GET", &format!("{}/v2/", reg.url()), &[], &[]);
    let b = http("GET", &format!("{}/v2/", reg.url()), &[], &[]);
    assert_eq!(
        a.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
    let err = http(
        "GET",
        &format!("{}/v2/x/manifests/none", reg.url()),
        &[],
        &[],
    );
    assert!(err.header("x-request-id").is_some());
    push_blob(&reg.url(), "x", b"before shutdown");
    assert!(reg.terminate().success());
}

/// A `Range` whose last byte precedes its first cannot be satisfied: 416
/// with `Content-Range: bytes */LEN`, as for one past the end. (It used to
/// be ignored and answered with the whole blob, which the OCI conformance
/// tooling reads as "ranges unsupported".)
#[test]
fn a_backwards_range_is_unsatisfiable() {
    let reg = BerthProcess::start();
    let url = reg.url();
    let data = random_bytes(1000, 7);
    let d = push_blob(&url, "r", &data);
    let blob = format!("{url}/v2/r/blobs/{d}");
    for range in ["bytes=500-0", "bytes=1-0", "bytes=1000-", "bytes=-0"] {
        let r = http("GET", &blob, &[("Range", range)], &[]);
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */1000"), "{range}");
    }
    let ok = http("GET", &blob, &[("Range", "bytes=0-0")], &[]);
    assert_eq!((ok.status, ok.body.as_slice()), (206, &data[..1]));
}
