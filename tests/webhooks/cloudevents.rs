//! CloudEvents 1.0 deliveries (structured mode), opt-in per webhook,
//! validated against the CloudEvents specification's JSON schema
//! (`tests/fixtures/cloudevents.schema.json`).

use super::*;

/// Validates `event` against the CloudEvents schema with Python's
/// `jsonschema` (installed by `scripts/setup-test-env.sh`).
fn assert_valid_cloudevent(event: &[u8]) {
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cloudevents.schema.json"
    );
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.validate(json.load(sys.stdin), schema, format_checker=jsonschema.FormatChecker())",
            schema,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with jsonschema (scripts/setup-test-env.sh installs it)");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(event).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not a valid CloudEvent: {}\n{}",
        String::from_utf8_lossy(event),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cloudevents_webhooks_get_valid_envelopes_signed_retried_and_recorded() {
    let reg = BerthProcess::with_config(FAST);
    let rx = Receiver::start();
    rx.script(vec![Reply::Status(503)]);
    let body = json!({
        "serviceUri": rx.url, "actions": ["push", "delete"], "format": "cloudevents",
        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "customHeaders": {"X-Team": "blue"},
    });
    let r = create(&reg, "cloud01", body);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["format"], "cloudevents");
    let plain = Receiver::start();
    create(
        &reg,
        "plain01",
        json!({"serviceUri": plain.url, "actions": ["push"]}),
    );

    let (manifest, put) = push_image(&reg.url(), "team/app", "v1", 1);
    assert_eq!(put.status, 201);
    let failed = rx.next();
    let delivered = rx.next();
    assert_eq!(
        failed.body, delivered.body,
        "a retry sends the same envelope"
    );
    assert_eq!(
        delivered.header("content-type"),
        Some("application/cloudevents+json")
    );
    assert_eq!(delivered.header("x-team"), Some("blue"));
    assert!(delivered
        .header("webhook-signature")
        .unwrap()
        .starts_with("v1,"));
    assert_valid_cloudevent(&delivered.body);
    let ce = delivered.json();
    let acr = plain.next().json();
    // The spec's attribute order, then the data.
    let text = String::from_utf8_lossy(&delivered.body).into_owned();
    let order = [
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "data",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|k| text.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert_eq!(keys(&ce).len(), order.len());
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["type"], "io.berth.registry.push");
    assert_eq!(ce["source"], format!("http://{}", reg.host));
    assert_eq!(ce["subject"], "team/app:v1");
    assert_eq!(ce["id"], ce["data"]["id"]);
    assert_eq!(ce["time"], ce["data"]["timestamp"]);
    assert_eq!(
        ce["data"]["target"], acr["target"],
        "data is the ACR payload"
    );

    let d = digest(&manifest);
    let del = http(
        "DELETE",
        &format!("{}/v2/team/app/manifests/{d}", reg.url()),
        &[],
        b"",
    );
    assert_eq!(del.status, 202);
    let deleted = rx.next();
    assert_valid_cloudevent(&deleted.body);
    assert_eq!(deleted.json()["subject"], format!("team/app@{d}"));
    assert_eq!(deleted.json()["type"], "io.berth.registry.delete");

    // A ping is a CloudEvent too; the history records the envelope sent.
    let ping = api(&reg, "POST", "/cloud01/ping", None).json();
    assert_eq!(ping["statusCode"], 200);
    let pinged = rx.next();
    assert_valid_cloudevent(&pinged.body);
    assert_eq!(pinged.json()["type"], "io.berth.registry.ping");
    let entries = history(&reg, "cloud01", 4);
    assert_eq!(entries[0]["eventRequestMessage"]["content"], pinged.json());
    assert_eq!(
        entries[0]["eventRequestMessage"]["headers"]["X-Team"],
        "******"
    );
    // Back to ACR's format by an update.
    let back = api(&reg, "PATCH", "/cloud01", Some(json!({"format": "acr"})));
    assert_eq!(back.json()["format"], "acr");
    push_image(&reg.url(), "team/app", "v2", 2);
    let acr_again = rx.next();
    assert_eq!(acr_again.header("content-type"), Some("application/json"));
    assert_eq!(acr_again.json()["action"], "push");
}
