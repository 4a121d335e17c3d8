//! The admin API: ping, update, list-events, errors, quota, configured webhooks.

use super::*;

#[test]
fn ping_updates_and_list_events_carry_every_field_of_the_contract() {
    let rx = Receiver::start();
    let reg = BerthProcess::with_config(FAST);
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
fn admin_api_errors_ping_quota_and_configured_webhooks() {
    let rx = Receiver::start();
    let config = format!(
        "[delivery]\nmax_webhooks = 2\n[[webhooks]]\nname = \"fromfile1\"\nserviceUri = \"{}\"\nactions = [\"push\"]\nscope = \"cfg:*\"\n",
        rx.url
    );
    let reg = BerthProcess::with_config(&config);
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

/// Concurrent creates of one name: exactly one 201, the rest 409. (The
/// create used to check for the name and then store it, so two racing
/// creates could both succeed.)
#[test]
fn concurrent_creates_of_one_name_make_exactly_one_webhook() {
    let reg = BerthProcess::start();
    let url = reg.url();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..16)
            .map(|i| {
                let url = &url;
                s.spawn(move || {
                    let body = json!({"serviceUri": format!("http://127.0.0.1:9/{i}"), "actions": ["push"]});
                    http(
                        "PUT",
                        &format!("{url}/api/webhooks/race01"),
                        &[("Content-Type", "application/json")],
                        body.to_string().as_bytes(),
                    )
                    .status
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        15,
        "{statuses:?}"
    );
    let listed = api(&reg, "GET", "", None).json();
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1);
}
