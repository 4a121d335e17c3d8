//! Webhooks end to end: a real `berth` process, real HTTP receivers on
//! 127.0.0.1, and the contract (`../shared/spec/webhooks.md`) checked field
//! by field.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use support::receiver::{Receiver, Reply};
use support::{digest, http, push_image, TestRegistry};

/// Fast retries so the tests do not wait on production backoffs.
const FAST: &str =
    "[delivery]\nbackoff_base = \"20ms\"\nbackoff_cap = \"200ms\"\ntimeout = \"2s\"\n";

fn create(reg: &TestRegistry, name: &str, body: Value) -> support::Resp {
    http(
        "PUT",
        &format!("{}/api/webhooks/{name}", reg.url()),
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn api(reg: &TestRegistry, method: &str, path: &str, body: Option<Value>) -> support::Resp {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    http(
        method,
        &format!("{}/api/webhooks{path}", reg.url()),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// The delivery history of `name` once it holds `n` entries: the worker
/// records an attempt just after the receiver answers it.
fn history(reg: &TestRegistry, name: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let entries = api(reg, "GET", &format!("/{name}/events"), None).json()["value"]
            .as_array()
            .unwrap()
            .clone();
        if entries.len() >= n || std::time::Instant::now() > deadline {
            return entries;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The keys of a JSON object, in order.
fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn is_timestamp(s: &str) -> bool {
    s.ends_with('Z') && s.contains('.') && humantime::parse_rfc3339(s).is_ok()
}

#[test]
fn push_and_delete_payloads_follow_the_contract_field_by_field() {
    let rx = Receiver::start();
    let reg = TestRegistry::start();
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
        BTreeSet::from(["content-length", "content-type", "host", "x-token"]),
        "no other headers"
    );
    assert_eq!(got.header("content-type"), Some("application/json"));
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

#[test]
fn scope_status_and_actions_select_the_webhooks() {
    let reg = TestRegistry::start();
    let hooks = [
        ("everything", json!({"actions": ["push"]})),
        ("appstar", json!({"actions": ["push"], "scope": "app:*"})),
        ("appv1only", json!({"actions": ["push"], "scope": "app:v1"})),
        ("barerepo", json!({"actions": ["push"], "scope": "app"})),
        (
            "otherrepo",
            json!({"actions": ["push"], "scope": "other:*"}),
        ),
        (
            "disabled",
            json!({"actions": ["push"], "status": "disabled"}),
        ),
        (
            "deletesv1",
            json!({"actions": ["delete"], "scope": "app:v1"}),
        ),
    ];
    let receivers: Vec<Receiver> = hooks.iter().map(|_| Receiver::start()).collect();
    for ((name, fields), rx) in hooks.iter().zip(&receivers) {
        let mut body = fields.clone();
        body["serviceUri"] = json!(rx.url);
        assert_eq!(create(&reg, name, body).status, 201);
    }
    let (_, v1) = push_image(&reg.url(), "app", "v1", 1);
    push_image(&reg.url(), "app", "latest", 2);
    let (_, v2) = push_image(&reg.url(), "app", "v2", 3);
    http(
        "PUT",
        &format!("{}/v2/app/manifests/v1b", reg.url()),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &http(
            "GET",
            &format!("{}/v2/app/manifests/v1", reg.url()),
            &[],
            &[],
        )
        .body,
    );
    for d in [
        v1.header("docker-content-digest").unwrap(),
        v2.header("docker-content-digest").unwrap(),
    ] {
        assert_eq!(
            http(
                "DELETE",
                &format!("{}/v2/app/manifests/{d}", reg.url()),
                &[],
                &[]
            )
            .status,
            202
        );
    }
    // A sentinel after the deletes: events are dispatched in log order, so
    // once the catch-all hook has it, every earlier event was dispatched.
    push_image(&reg.url(), "app", "sentinel", 4);
    let tags = |rx: &Receiver, n: usize| {
        (0..n)
            .map(|_| {
                rx.next().json()["target"]["tag"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        tags(&receivers[0], 5),
        ["v1", "latest", "v2", "v1b", "sentinel"]
    );
    assert_eq!(
        tags(&receivers[1], 5),
        ["v1", "latest", "v2", "v1b", "sentinel"]
    );
    assert_eq!(tags(&receivers[2], 1), ["v1"]);
    assert_eq!(tags(&receivers[3], 1), ["latest"]);
    // The delete of v1's manifest (tags v1 and v1b) reaches deletesv1; the
    // delete of v2's manifest reaches no one.
    let deleted = receivers[6].next().json();
    assert_eq!(deleted["action"], "delete");
    assert_eq!(
        deleted["target"]["digest"].as_str(),
        v1.header("docker-content-digest")
    );
    // Once every queue has drained, nothing else arrived anywhere.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let pending = |name: &str| {
        api(&reg, "GET", &format!("/{name}"), None).json()["pending"]
            .as_u64()
            .unwrap()
    };
    while hooks.iter().any(|(name, _)| pending(name) > 0) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (i, (name, _)) in hooks.iter().enumerate() {
        assert_eq!(pending(name), 0, "{name}");
        assert!(
            receivers[i].drain().is_empty(),
            "{name} got more than it should"
        );
    }
}

#[test]
fn custom_content_type_wins_and_signatures_verify_across_a_rotation() {
    let rx = Receiver::start();
    let reg = TestRegistry::start();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = json!({"serviceUri": rx.url, "actions": ["push"], "secret": secret,
        "customHeaders": {"Content-Type": "application/cloudevents+json"}});
    assert_eq!(create(&reg, "signed01", body).status, 201);
    push_image(&reg.url(), "s", "v1", 1);
    let got = rx.next();
    assert_eq!(
        got.header("content-type"),
        Some("application/cloudevents+json")
    );
    let verify = |got: &support::receiver::Received, key: &str, signature: &str| {
        let key = base64::engine::general_purpose::STANDARD
            .decode(key.trim_start_matches("whsec_"))
            .unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        let (id, ts) = (
            got.header("webhook-id").unwrap(),
            got.header("webhook-timestamp").unwrap(),
        );
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(&got.body);
        signature
            == format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            )
    };
    assert_eq!(got.header("webhook-id"), got.json()["id"].as_str());
    let ts: u64 = got.header("webhook-timestamp").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(ts.abs_diff(now) < 300);
    let sigs: Vec<&str> = got
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(sigs.len(), 1);
    assert!(verify(&got, secret, sigs[0]), "signature does not verify");

    let new = "whsec_c2Vjb25kIHNlY3JldCBmb3IgYmVydGg=";
    assert_eq!(
        api(&reg, "PATCH", "/signed01", Some(json!({"secret": new}))).status,
        200
    );
    push_image(&reg.url(), "s", "v2", 2);
    let got = rx.next();
    let sigs: Vec<&str> = got
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(sigs.len(), 2, "the rotated-out secret still signs");
    assert!(verify(&got, new, sigs[0]) && verify(&got, secret, sigs[1]));
    assert!(!verify(&got, secret, sigs[0]));

    // Without a secret, nothing of the signature scheme is sent.
    let plain = Receiver::start();
    assert_eq!(
        create(
            &reg,
            "plain01",
            json!({"serviceUri": plain.url, "actions": ["push"]})
        )
        .status,
        201
    );
    push_image(&reg.url(), "s", "v3", 3);
    assert!(plain
        .next()
        .headers
        .iter()
        .all(|(k, _)| !k.starts_with("webhook-")));
}

#[test]
fn failed_deliveries_are_retried_until_the_receiver_recovers() {
    let rx = Receiver::start();
    rx.script(vec![
        Reply::Status(500),
        Reply::WithHeaders(503, vec![("Retry-After", "0".into())]),
        Reply::Status(302),
    ]);
    let reg = TestRegistry::with_config(FAST);
    let body = json!({"serviceUri": rx.url, "actions": ["push"], "customHeaders": {"Authorization": "Bearer t0ken"}});
    assert_eq!(create(&reg, "retry01", body).status, 201);
    push_image(&reg.url(), "r", "v1", 1);
    let attempts: Vec<Value> = (0..4).map(|_| rx.next().json()).collect();
    assert!(
        attempts.iter().all(|a| *a == attempts[0]),
        "every attempt carries the same event"
    );

    let entries = history(&reg, "retry01", 4);
    let codes: Vec<&str> = entries
        .iter()
        .map(|e| e["eventResponseMessage"]["statusCode"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["200", "302", "503", "500"],
        "newest first; a redirect is a failure"
    );
    let results: Vec<&str> = entries
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["delivered", "retrying", "retrying", "retrying"]);
    assert_eq!(entries[0]["attempts"], 4);
    assert_eq!(entries[0]["eventRequestMessage"]["content"], attempts[0]);
    assert_eq!(
        entries[0]["eventRequestMessage"]["headers"]["Authorization"],
        "******"
    );
    assert_eq!(
        entries[0]["eventRequestMessage"]["requestUri"],
        rx.url.as_str()
    );
    assert_eq!(entries[0]["eventResponseMessage"]["content"], "ok");
    let paged = api(&reg, "GET", "/retry01/events?n=1&skip=1", None).json();
    assert_eq!(
        paged["value"][0]["eventResponseMessage"]["statusCode"],
        "302"
    );
    assert_eq!(paged["nextLink"], "/api/webhooks/retry01/events?n=1&skip=2");

    // Header values appear nowhere but get-config.
    for path in ["", "/retry01", "/retry01/events"] {
        let text = String::from_utf8(api(&reg, "GET", path, None).body).unwrap();
        assert!(!text.contains("t0ken"), "{path} reveals a header value");
    }
    assert!(
        !String::from_utf8(api(&reg, "GET", "", None).body)
            .unwrap()
            .contains(&rx.url),
        "list hides the URI"
    );
    let config = api(&reg, "GET", "/retry01/config", None).json();
    assert_eq!(
        config,
        json!({"serviceUri": rx.url, "customHeaders": {"Authorization": "Bearer t0ken"}})
    );
}

#[test]
fn a_delivery_that_gets_no_answer_in_time_is_retried() {
    let rx = Receiver::start();
    rx.script(vec![Reply::Hang(Duration::from_secs(5))]);
    let reg = TestRegistry::with_config(
        "[delivery]\nbackoff_base = \"20ms\"\nbackoff_cap = \"200ms\"\ntimeout = \"1s\"\n",
    );
    let body = json!({"serviceUri": rx.url, "actions": ["push"]});
    assert_eq!(create(&reg, "timeout01", body).status, 201);
    push_image(&reg.url(), "t", "v1", 1);
    let (first, second) = (rx.next().json(), rx.next().json());
    assert_eq!(first, second, "the retry carries the same event");
    let entries = history(&reg, "timeout01", 2);
    assert_eq!(entries[0]["result"], "delivered");
    assert_eq!(entries[0]["attempts"], 2);
    assert_eq!(entries[1]["result"], "retrying");
    assert_eq!(entries[1]["attempts"], 1);
    assert!(
        entries[1]["eventResponseMessage"].is_null(),
        "no answer, no response message: {}",
        entries[1]
    );
    assert!(
        !entries[1]["error"].as_str().unwrap_or("").is_empty(),
        "the timed-out attempt records its error: {}",
        entries[1]
    );
}

#[test]
fn ping_updates_and_list_events_carry_every_field_of_the_contract() {
    let rx = Receiver::start();
    let reg = TestRegistry::with_config(FAST);
    let body =
        json!({"serviceUri": rx.url, "actions": ["push"], "customHeaders": {"X-Token": "abc"}});
    assert_eq!(create(&reg, "fields01", body).status, 201);

    // A ping carries the custom headers; a long answer is kept cut short.
    rx.script(vec![Reply::WithBody(200, "x".repeat(10_000))]);
    assert_eq!(api(&reg, "POST", "/fields01/ping", None).status, 200);
    let ping = rx.next();
    assert_eq!(ping.header("x-token"), Some("abc"));
    let payload = ping.json();
    assert_eq!(keys(&payload), ["action", "id", "timestamp"]);
    assert_eq!(payload["action"], "ping");
    assert!(support::receiver::is_uuid(payload["id"].as_str().unwrap()));
    let entry = &history(&reg, "fields01", 1)[0];
    let request = &entry["eventRequestMessage"];
    assert_eq!(request["content"], ping.json());
    assert_eq!(request["method"], "POST");
    assert_eq!(request["version"], "1.1");
    assert_eq!(request["headers"]["X-Token"], "******");
    let response = &entry["eventResponseMessage"];
    assert_eq!(response["statusCode"], "200");
    assert_eq!(response["reasonPhrase"], "Scripted");
    assert_eq!(response["version"], "1.1");
    let content = response["content"].as_str().unwrap();
    assert!(
        !content.is_empty() && content.len() <= 4096 && "x".repeat(10_000).starts_with(content),
        "content is cut to a few KiB: {} bytes",
        content.len()
    );
    let headers = response["headers"].as_object().unwrap();
    assert!(
        headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-length") && v == "10000"),
        "the receiver's headers are listed: {headers:?}"
    );

    // An update changes the headers the next delivery carries; the name is
    // the URL's and no update can change it.
    let update = json!({"customHeaders": {"X-Token": "def"}});
    assert_eq!(api(&reg, "PATCH", "/fields01", Some(update)).status, 200);
    assert_eq!(
        api(&reg, "GET", "/fields01/config", None).json()["customHeaders"],
        json!({"X-Token": "def"})
    );
    let renamed = api(
        &reg,
        "PATCH",
        "/fields01",
        Some(json!({"name": "fields02"})),
    );
    assert_eq!(
        renamed.status,
        400,
        "{}",
        String::from_utf8_lossy(&renamed.body)
    );
    assert_eq!(api(&reg, "GET", "/fields02", None).status, 404);

    // An image index is a manifest like any other: its push is an event.
    let (image, _) = push_image(&reg.url(), "multi", "amd64", 7);
    assert_eq!(rx.next().header("x-token"), Some("def"));
    let index = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(&image), "size": image.len()}],
    });
    let bytes = index.to_string();
    let r = http(
        "PUT",
        &format!("{}/v2/multi/manifests/latest", reg.url()),
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        bytes.as_bytes(),
    );
    assert_eq!(r.status, 201);
    let event = rx.next().json();
    assert_eq!(event["action"], "push");
    assert_eq!(
        event["target"],
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "size": bytes.len(),
            "digest": digest(bytes.as_bytes()), "length": bytes.len(), "repository": "multi", "tag": "latest"})
    );
}

#[test]
fn a_rotated_out_secret_stops_signing_when_its_grace_ends() {
    let rx = Receiver::start();
    let reg = TestRegistry::with_config("[delivery]\nsecret_rotation_grace = \"2s\"\n");
    let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = json!({"serviceUri": rx.url, "actions": ["push"], "secret": old});
    assert_eq!(create(&reg, "grace01", body).status, 201);
    let new = json!({"secret": "whsec_c2Vjb25kIHNlY3JldCBmb3IgYmVydGg="});
    assert_eq!(api(&reg, "PATCH", "/grace01", Some(new)).status, 200);
    let signatures = |tag: &str, seed: u64| {
        push_image(&reg.url(), "g", tag, seed);
        let got = rx.next();
        got.header("webhook-signature").unwrap().split(' ').count()
    };
    assert_eq!(signatures("v1", 1), 2, "within the grace both secrets sign");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(signatures("v2", 2), 1, "after it only the new one does");
}

#[test]
fn a_delivery_gives_up_after_its_attempts_and_the_next_event_still_goes_out() {
    let rx = Receiver::with_default(Reply::Status(500));
    let reg = TestRegistry::with_config(&format!("{FAST}max_attempts = 3\n"));
    assert_eq!(
        create(
            &reg,
            "giveup01",
            json!({"serviceUri": rx.url, "actions": ["push"]})
        )
        .status,
        201
    );
    push_image(&reg.url(), "g", "v1", 1);
    let first: Vec<Value> = (0..3).map(|_| rx.next().json()).collect();
    assert!(first.iter().all(|e| e["target"]["tag"] == "v1"));
    rx.set_default(Reply::Status(200));
    push_image(&reg.url(), "g", "v2", 2);
    assert_eq!(
        rx.next().json()["target"]["tag"],
        "v2",
        "v1 was given up after 3 attempts"
    );
    let entries = history(&reg, "giveup01", 4);
    let results: Vec<&str> = entries
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["delivered", "failed", "retrying", "retrying"]);
}

#[test]
fn a_hanging_receiver_does_not_delay_the_others() {
    let hanging = Receiver::with_default(Reply::Hang(Duration::from_secs(20)));
    let healthy = Receiver::start();
    let reg = TestRegistry::with_config("[delivery]\ntimeout = \"15s\"\n");
    assert_eq!(
        create(
            &reg,
            "hanging01",
            json!({"serviceUri": hanging.url, "actions": ["push"]})
        )
        .status,
        201
    );
    assert_eq!(
        create(
            &reg,
            "healthy01",
            json!({"serviceUri": healthy.url, "actions": ["push"]})
        )
        .status,
        201
    );
    for (i, tag) in ["a", "b", "c"].iter().enumerate() {
        push_image(&reg.url(), "iso", tag, i as u64);
    }
    let tags: Vec<Value> = (0..3)
        .map(|_| healthy.next().json()["target"]["tag"].clone())
        .collect();
    assert_eq!(tags, ["a", "b", "c"]);
    // Meanwhile the hanging receiver holds its first request: one received,
    // the rest of its queue waits behind it, and it delays no one else.
    assert_eq!(hanging.next().json()["target"]["tag"], "a");
    assert!(hanging.drain().is_empty());
    assert_eq!(api(&reg, "GET", "/hanging01", None).json()["pending"], 3);
}

#[test]
fn acknowledged_events_survive_kill_9_and_arrive_after_restart() {
    let rx = Receiver::with_default(Reply::Status(503));
    let mut reg = TestRegistry::with_config(FAST);
    assert_eq!(
        create(
            &reg,
            "durable01",
            json!({"serviceUri": rx.url, "actions": ["push", "delete"]})
        )
        .status,
        201
    );
    let (manifest, put) = push_image(&reg.url(), "k", "v1", 1);
    assert_eq!(put.status, 201);
    let failed = rx.next().json();
    reg.kill9();
    rx.set_default(Reply::Status(200));
    let _ = rx.drain();
    let reg = reg.restart();
    // The same event, byte for byte as it would have been, arrives.
    let mut got = rx.next().json();
    while got["id"] != failed["id"] {
        got = rx.next().json();
    }
    assert_eq!(got, failed);
    assert_eq!(got["target"]["digest"], digest(&manifest));
    // And the log lists it, with its sequence number.
    let log = http(
        "GET",
        &format!("{}/api/events?action=push&repository=k", reg.url()),
        &[],
        &[],
    )
    .json();
    assert_eq!(log["events"].as_array().unwrap().len(), 1);
    assert_eq!(log["events"][0]["id"], failed["id"]);
}

#[test]
fn admin_api_errors_ping_quota_and_configured_webhooks() {
    let rx = Receiver::start();
    let config = format!(
        "[delivery]\nmax_webhooks = 2\n[[webhooks]]\nname = \"fromfile1\"\nserviceUri = \"{}\"\nactions = [\"push\"]\nscope = \"cfg:*\"\n",
        rx.url
    );
    let reg = TestRegistry::with_config(&config);
    let listed = api(&reg, "GET", "", None).json();
    assert_eq!(listed["webhooks"][0]["name"], "fromfile1");
    assert_eq!(listed["webhooks"][0]["scope"], "cfg:*");

    let ok = json!({"serviceUri": rx.url, "actions": ["push"]});
    for (name, body, status, code) in [
        ("abcd", ok.clone(), 400, "INVALID_FIELD"),
        ("hook_01", ok.clone(), 400, "INVALID_FIELD"),
        (
            "hook01",
            json!({"serviceUri": "ftp://x", "actions": ["push"]}),
            400,
            "INVALID_FIELD",
        ),
        (
            "hook01",
            json!({"serviceUri": rx.url, "actions": []}),
            400,
            "INVALID_FIELD",
        ),
        (
            "hook01",
            json!({"serviceUri": rx.url, "actions": ["pull"]}),
            400,
            "BAD_REQUEST",
        ),
        (
            "hook01",
            json!({"serviceUri": rx.url, "actions": ["push"], "scope": "a:b:c"}),
            400,
            "INVALID_FIELD",
        ),
        ("fromfile1", ok.clone(), 409, "WEBHOOK_EXISTS"),
    ] {
        let r = create(&reg, name, body);
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_str().unwrap()),
            (status, code),
            "{name}"
        );
        assert!(!r.json()["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(create(&reg, "second1", ok.clone()).status, 201);
    let r = create(&reg, "third01", ok);
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str().unwrap()),
        (422, "QUOTA_REACHED")
    );
    let r = api(&reg, "GET", "/nosuch1", None);
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str().unwrap()),
        (404, "WEBHOOK_NOT_FOUND")
    );

    let ping = api(&reg, "POST", "/second1/ping", None).json();
    assert_eq!(ping["statusCode"], 200);
    let got = rx.next().json();
    assert_eq!(got["action"], "ping");
    assert_eq!(got["id"], ping["id"]);
    assert!(is_timestamp(got["timestamp"].as_str().unwrap()));
    assert_eq!(history(&reg, "second1", 1)[0]["id"], ping["id"]);

    // A disabled webhook receives nothing; deleting one removes it.
    assert_eq!(
        api(
            &reg,
            "PATCH",
            "/fromfile1",
            Some(json!({"status": "disabled"}))
        )
        .json()["status"],
        "disabled"
    );
    assert_eq!(api(&reg, "DELETE", "/second1", None).status, 200);
    assert_eq!(api(&reg, "GET", "/second1", None).status, 404);
    // Its delivery history went with it: a new webhook of that name has none.
    assert_eq!(
        create(
            &reg,
            "second1",
            json!({"serviceUri": rx.url, "actions": ["push"]})
        )
        .status,
        201
    );
    assert_eq!(
        api(&reg, "GET", "/second1/events", None).json()["value"],
        json!([])
    );
    assert_eq!(api(&reg, "DELETE", "/second1", None).status, 200);
    push_image(&reg.url(), "cfg", "v1", 1);
    assert_eq!(
        api(
            &reg,
            "PATCH",
            "/fromfile1",
            Some(json!({"status": "enabled"}))
        )
        .status,
        200
    );
    push_image(&reg.url(), "cfg", "v2", 2);
    assert_eq!(
        rx.next().json()["target"]["tag"],
        "v2",
        "nothing was sent while disabled"
    );
}

#[test]
fn quarantine_holds_manifests_until_a_verdict() {
    let rx = Receiver::start();
    let reg = TestRegistry::with_config("quarantine = true\n");
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
fn a_full_queue_records_explicit_drops() {
    let hanging = Receiver::with_default(Reply::Hang(Duration::from_secs(20)));
    let reg = TestRegistry::with_config("[delivery]\nqueue_limit = 1\ntimeout = \"15s\"\n");
    assert_eq!(
        create(
            &reg,
            "bounded1",
            json!({"serviceUri": hanging.url, "actions": ["push"]})
        )
        .status,
        201
    );
    for (i, tag) in ["a", "b", "c"].iter().enumerate() {
        push_image(&reg.url(), "full", tag, i as u64);
    }
    assert_eq!(hanging.next().json()["target"]["tag"], "a");
    let entries = history(&reg, "bounded1", 2);
    let dropped: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["result"].as_str().unwrap(),
                e["eventRequestMessage"]["content"]["target"]["tag"]
                    .as_str()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(dropped, [("dropped", "c"), ("dropped", "b")]);
    assert!(entries[0]["error"].as_str().unwrap().contains("queue full"));
    assert_eq!(api(&reg, "GET", "/bounded1", None).json()["pending"], 1);
}

#[test]
fn https_receivers_work_with_a_private_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |f: &str| tmp.path().join(f).to_str().unwrap().to_owned();
    let openssl = |args: &[&str]| support::run("openssl", args);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
        "-days",
        "1",
        "-subj",
        "/CN=berth-test-ca",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p("srv.key"),
        "-out",
        &p("srv.csr"),
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(p("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("srv.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-out",
        &p("srv.pem"),
        "-days",
        "1",
        "-extfile",
        &p("ext.cnf"),
    ]);

    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/https_receiver.py");
    let mut receiver = std::process::Command::new("python3")
        .args([script.to_str().unwrap(), &p("srv.pem"), &p("srv.key")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(receiver.stdout.take().unwrap()));
    let port = lines
        .next()
        .unwrap()
        .unwrap()
        .trim_start_matches("listening on ")
        .to_owned();

    let data = tmp.path().join("data");
    let reg = TestRegistry::start_env(&data, &[], &[("SSL_CERT_FILE", &p("ca.pem"))]);
    let uri = format!("https://127.0.0.1:{port}/hook");
    assert_eq!(
        create(
            &reg,
            "secure01",
            json!({"serviceUri": uri, "actions": ["push"]})
        )
        .status,
        201
    );
    let ping = api(&reg, "POST", "/secure01/ping", None).json();
    assert_eq!(ping["statusCode"], 200, "{ping}");
    push_image(&reg.url(), "tls", "v1", 1);
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(serde_json::from_str::<Value>(&lines.next().unwrap().unwrap()).unwrap());
    }
    assert_eq!(got[0]["action"], "ping");
    assert_eq!(
        (got[1]["action"].as_str(), got[1]["target"]["tag"].as_str()),
        (Some("push"), Some("v1"))
    );
    let _ = receiver.kill();
    let _ = receiver.wait();
}

#[test]
fn deleting_a_repository_raises_one_delete_per_manifest() {
    let all = Receiver::start();
    let tagged = Receiver::start();
    let reg = TestRegistry::start();
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

#[test]
fn refuse_private_targets_blocks_internal_receivers_after_resolution() {
    let rx = Receiver::start();
    let reg =
        TestRegistry::with_config("[delivery]\nrefuse_private_targets = true\nmax_attempts = 1\n");
    let port = rx.url.rsplit_once(':').unwrap().1; // "PORT/hook"
    let by_name = format!("http://localhost:{port}");
    for (name, uri) in [
        ("literal1", rx.url.as_str()),
        ("byname01", by_name.as_str()),
    ] {
        let body = json!({"serviceUri": uri, "actions": ["push"]});
        assert_eq!(create(&reg, name, body).status, 201);
        let ping = api(&reg, "POST", &format!("/{name}/ping"), None);
        assert_eq!(ping.status, 200);
        let error = ping.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(error.contains("refused"), "{name} ping: {error}");
    }
    push_image(&reg.url(), "internal", "v1", 1);
    for name in ["literal1", "byname01"] {
        let entries = history(&reg, name, 2);
        assert_eq!(entries[0]["result"], "failed", "{name}: {entries:?}");
        let error = entries[0]["error"].as_str().unwrap();
        assert!(error.contains("refuse_private_targets"), "{name}: {error}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(rx.drain().is_empty(), "an internal receiver got a request");
}

#[test]
fn the_event_log_keeps_its_retention_yet_no_webhook_misses_an_event() {
    let rx = Receiver::start();
    let mut reg = TestRegistry::with_config(&format!("event_retention = 3\n{FAST}"));
    let hook = json!({"serviceUri": rx.url, "actions": ["push"]});
    assert_eq!(create(&reg, "retain01", hook).status, 201);
    // Each round's pushes are acknowledged, then Berth is killed: at once
    // (nothing dispatched yet), then after the log had time to trim.
    let mut pushed = BTreeSet::new();
    for (round, pause) in [0, 1500, 0].into_iter().enumerate() {
        for i in 0..4 {
            let seed = (round * 4 + i) as u64;
            let (manifest, put) = push_image(&reg.url(), "keep", &format!("v{seed}"), seed);
            assert_eq!(put.status, 201);
            pushed.insert(digest(&manifest));
        }
        std::thread::sleep(Duration::from_millis(pause));
        reg.kill9();
        reg = reg.restart();
    }
    let mut delivered = BTreeSet::new();
    while delivered != pushed {
        let event = rx.next().json();
        delivered.insert(event["target"]["digest"].as_str().unwrap().to_owned());
        assert!(pushed.is_superset(&delivered), "unexpected {event}");
    }
    // The log itself keeps only the newest three.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let seqs = loop {
        let log = http("GET", &format!("{}/api/events", reg.url()), &[], &[]).json();
        let seqs: Vec<u64> = log["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        if seqs.len() <= 3 || std::time::Instant::now() > deadline {
            break seqs;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(seqs, [10, 11, 12]);
}
