//! Events of quarantine and of whole-repository deletes.

use super::*;

#[test]
fn quarantine_holds_manifests_until_a_verdict() {
    let rx = Receiver::start();
    let reg = BerthProcess::with_config("quarantine = true\n");
    assert_eq!(
        create(
            &reg,
            "scanner1",
            json!({"serviceUri": rx.url, "actions": ["quarantine", "push"]})
        )
        .status,
        201
    );
    let url = reg.url();
    let (manifest, put) = push_image(&url, "q", "v1", 1);
    assert_eq!(put.status, 201);
    let md = digest(&manifest);
    let held = rx.next().json();
    assert_eq!(held["action"], "quarantine");
    assert_eq!(
        keys(&held),
        ["action", "id", "request", "target", "timestamp"]
    );
    assert_eq!(
        held["target"],
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": manifest.len(),
            "digest": md, "length": manifest.len(), "repository": "q", "tag": "v1"})
    );
    assert_eq!(held["request"]["id"], put.header("x-request-id").unwrap());
    assert_eq!(held["request"]["host"], url.trim_start_matches("http://"));
    assert_eq!(held["request"]["method"], "PUT");
    assert_eq!(held["request"]["useragent"], "berth-tests/1");

    // Hidden from pulls and tag lists; visible to the scanner's API.
    for reference in ["v1", md.as_str()] {
        let r = http(
            "GET",
            &format!("{url}/v2/q/manifests/{reference}"),
            &[],
            &[],
        );
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "MANIFEST_UNKNOWN")
        );
    }
    assert_eq!(
        http("GET", &format!("{url}/v2/q/tags/list"), &[], &[]).json()["tags"],
        json!([])
    );
    let list = http("GET", &format!("{url}/api/quarantine"), &[], &[]).json();
    assert_eq!(list["manifests"][0]["digest"], md.as_str());
    assert_eq!(list["manifests"][0]["state"], "Pending");
    assert_eq!(
        http("GET", &format!("{url}/api/quarantine/q/{md}"), &[], &[]).body,
        manifest
    );

    let bad = http(
        "PATCH",
        &format!("{url}/api/quarantine/q/{md}"),
        &[],
        br#"{"state":"Maybe"}"#,
    );
    assert_eq!(bad.status, 400);
    let pass = http(
        "PATCH",
        &format!("{url}/api/quarantine/q/{md}"),
        &[("User-Agent", "scanner/1")],
        br#"{"state":"Passed","details":"clean"}"#,
    );
    assert_eq!(pass.status, 200, "{}", String::from_utf8_lossy(&pass.body));
    let pushed = rx.next().json();
    assert_eq!(
        (pushed["action"].as_str(), pushed["target"]["tag"].as_str()),
        (Some("push"), Some("v1"))
    );
    assert_eq!(pushed["target"]["size"], manifest.len());
    assert_eq!(pushed["request"]["method"], "PATCH");
    assert_eq!(pushed["request"]["useragent"], "scanner/1");
    assert_eq!(
        http("GET", &format!("{url}/v2/q/manifests/v1"), &[], &[]).body,
        manifest
    );
    assert_eq!(
        http("GET", &format!("{url}/v2/q/tags/list"), &[], &[]).json()["tags"],
        json!(["v1"])
    );

    // A failed one stays hidden, and its verdict is listed.
    let (other, _) = push_image(&url, "q", "v2", 2);
    assert_eq!(rx.next().json()["action"], "quarantine");
    let od = digest(&other);
    let fail = http(
        "PATCH",
        &format!("{url}/api/quarantine/q/{od}"),
        &[],
        br#"{"state":"Failed","details":"CVE-2026-0001"}"#,
    );
    assert_eq!(fail.status, 200);
    assert_eq!(
        http("GET", &format!("{url}/v2/q/manifests/v2"), &[], &[]).status,
        404
    );
    let list = http("GET", &format!("{url}/api/quarantine"), &[], &[]).json();
    assert_eq!(
        list["manifests"],
        json!([{"repository": "q", "digest": od, "mediaType": "application/vnd.oci.image.manifest.v1+json", "tags": ["v2"], "state": "Failed", "details": "CVE-2026-0001"}])
    );
    let refail = http(
        "PATCH",
        &format!("{url}/api/quarantine/q/{md}"),
        &[],
        br#"{"state":"Failed"}"#,
    );
    assert_eq!(refail.status, 400, "a released manifest cannot be failed");
}

#[test]
fn deleting_a_repository_raises_one_delete_per_manifest() {
    let all = Receiver::start();
    let tagged = Receiver::start();
    let reg = BerthProcess::start();
    assert_eq!(
        create(
            &reg,
            "alldeletes",
            json!({"serviceUri": all.url, "actions": ["delete"]})
        )
        .status,
        201
    );
    assert_eq!(
        create(
            &reg,
            "onlytaga1",
            json!({"serviceUri": tagged.url, "actions": ["delete"], "scope": "gone:a"})
        )
        .status,
        201
    );
    let url = reg.url();
    let (a, _) = push_image(&url, "gone", "a", 1);
    let (b, _) = push_image(&url, "gone", "b", 2);
    let (c, _) = push_image(&url, "gone", "c", 3);
    // c stays as an untagged manifest.
    assert_eq!(
        http("DELETE", &format!("{url}/v2/gone/manifests/c"), &[], &[]).status,
        202
    );
    let r = http(
        "DELETE",
        &format!("{url}/api/repositories/gone"),
        &[("User-Agent", "admin/1")],
        &[],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["deletedManifests"], 3);
    let mut digests: Vec<String> = (0..3)
        .map(|_| {
            let e = all.next().json();
            assert_eq!(
                (e["action"].as_str(), e["request"]["method"].as_str()),
                (Some("delete"), Some("DELETE"))
            );
            e["target"]["digest"].as_str().unwrap().to_owned()
        })
        .collect();
    digests.sort();
    let mut expected = vec![digest(&a), digest(&b), digest(&c)];
    expected.sort();
    assert_eq!(digests, expected);
    assert_eq!(tagged.next().json()["target"]["digest"], digest(&a));
    assert_eq!(
        http("GET", &format!("{url}/v2/gone/tags/list"), &[], &[]).status,
        404
    );
    assert_eq!(
        http("GET", &format!("{url}/v2/_catalog"), &[], &[]).json()["repositories"],
        json!([])
    );
    let again = http("DELETE", &format!("{url}/api/repositories/gone"), &[], &[]);
    assert_eq!(
        (again.status, again.error_code().as_str()),
        (404, "NAME_UNKNOWN")
    );
}
