//! Push and delete payloads, field by field.

use super::*;

#[test]
fn push_and_delete_payloads_follow_the_contract_field_by_field() {
    let rx = Receiver::start();
    let reg = BerthProcess::start();
    let r = create(
        &reg,
        "hook01",
        json!({"serviceUri": rx.url, "actions": ["push", "delete"], "customHeaders": {"X-Token": "abc"}}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));

    let (manifest, put) = push_image(&reg.url(), "hello-world", "v1", 1);
    let got = rx.next();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/hook"));
    let names: BTreeSet<&str> = got.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "content-length",
            "content-type",
            "host",
            "user-agent",
            "x-token"
        ]),
        "no other headers"
    );
    assert_eq!(got.header("content-type"), Some("application/json"));
    let ua = got.header("user-agent").unwrap();
    assert!(
        ua.starts_with("AzureContainerRegistry/1.0 (compatible; Berth/"),
        "{ua}"
    );
    assert_eq!(got.header("x-token"), Some("abc"));
    let e = got.json();
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        keys(&e),
        ["action", "id", "request", "target", "timestamp"]
            .map(String::from)
            .into()
    );
    assert!(
        support::receiver::is_uuid(e["id"].as_str().unwrap()),
        "{}",
        e["id"]
    );
    assert!(
        is_timestamp(e["timestamp"].as_str().unwrap()),
        "{}",
        e["timestamp"]
    );
    assert_eq!(e["action"], "push");
    let md = digest(&manifest);
    assert_eq!(
        e["target"],
        json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": manifest.len(), "digest": md,
            "length": manifest.len(), "repository": "hello-world", "tag": "v1",
        })
    );
    assert_eq!(
        e["request"],
        json!({
            "id": put.header("x-request-id").unwrap(), "host": reg.host, "method": "PUT", "useragent": "berth-tests/1",
        })
    );

    // Deleting a tag alone raises nothing; deleting the manifest raises one delete.
    let tag = http(
        "DELETE",
        &format!("{}/v2/hello-world/manifests/v1", reg.url()),
        &[],
        &[],
    );
    assert_eq!(tag.status, 202);
    let again = http(
        "PUT",
        &format!("{}/v2/hello-world/manifests/v2", reg.url()),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &manifest,
    );
    assert_eq!(again.status, 201);
    assert_eq!(
        rx.next().json()["target"]["tag"],
        "v2",
        "the tag delete raised no event"
    );
    // A push by digest alone raises one push without a tag.
    let by_digest = http(
        "PUT",
        &format!("{}/v2/hello-world/manifests/{md}", reg.url()),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &manifest,
    );
    assert_eq!(by_digest.status, 201);
    let untagged = rx.next().json();
    assert_eq!(untagged["action"], "push");
    assert_eq!(untagged["target"]["digest"], md.as_str());
    assert!(untagged["target"].get("tag").is_none(), "{untagged}");
    let del = http(
        "DELETE",
        &format!("{}/v2/hello-world/manifests/{md}", reg.url()),
        &[("User-Agent", "python-requests/2.18.4")],
        &[],
    );
    assert_eq!(del.status, 202);
    let d = rx.next().json();
    assert_eq!(d["action"], "delete");
    assert!(
        support::receiver::is_uuid(d["id"].as_str().unwrap())
            && is_timestamp(d["timestamp"].as_str().unwrap())
    );
    assert_eq!(
        d["target"],
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "repository": "hello-world"})
    );
    assert_eq!(
        d["request"],
        json!({"id": del.header("x-request-id").unwrap(), "host": reg.host, "method": "DELETE", "useragent": "python-requests/2.18.4"})
    );
}
