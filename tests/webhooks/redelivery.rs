//! Redelivery of one recorded delivery, and replay of the event log to a
//! receiver that was down longer than the retry window.

use super::*;

/// A recorded delivery sent again: the same event id and the same body,
/// byte for byte, as a new attempt in the history; the reply carries the
/// receiver's status, like a ping's.
#[test]
fn redeliver_sends_the_recorded_body_again_byte_for_byte() {
    let reg = BerthProcess::with_config(FAST);
    let rx = Receiver::start();
    let r = create(
        &reg,
        "hook01",
        json!({"serviceUri": rx.url, "actions": ["push"], "secret": "s"}),
    );
    assert_eq!(r.status, 201);
    push_image(&reg.url(), "app", "v1", 1);
    let first = rx.next();
    let id = first.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(history(&reg, "hook01", 1).len(), 1);

    rx.set_default(Reply::Status(202));
    let again = api(
        &reg,
        "POST",
        &format!("/hook01/events/{id}/redeliver"),
        None,
    );
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), json!({"id": id, "statusCode": 202}));
    let second = rx.next();
    assert_eq!(second.body, first.body, "byte for byte");
    assert_eq!(second.header("webhook-id"), Some(id.as_str()));
    let entries = history(&reg, "hook01", 2);
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (
            entries[0]["id"].as_str(),
            &entries[0]["eventResponseMessage"]["statusCode"]
        ),
        (Some(id.as_str()), &json!("202"))
    );

    let unknown = api(&reg, "POST", "/hook01/events/no-such-id/redeliver", None);
    assert_eq!(
        (unknown.status, unknown.json()["error"]["code"].as_str()),
        (404, Some("WEBHOOK_NOT_FOUND"))
    );
    // The CLI says what the receiver answered.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "webhook",
            "redeliver",
            "--name",
            "hook01",
            "--id",
            &id,
            "--registry",
            &reg.url(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("HTTP 202"));
    assert_eq!(rx.next().body, first.body);
}

/// A receiver down past `max_attempts` misses events for good; a replay
/// from the event log delivers each of them, exactly once per replay, in
/// order, and says how many it queued and what the log holds.
#[test]
fn replay_delivers_what_a_long_outage_missed_once_per_replay() {
    let reg = BerthProcess::with_config(&format!("{FAST}max_attempts = 2\n"));
    let rx = Receiver::with_default(Reply::Status(503));
    let r = create(
        &reg,
        "hook01",
        json!({"serviceUri": rx.url, "actions": ["push"], "scope": "app:*"}),
    );
    assert_eq!(r.status, 201);
    let before =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() - Duration::from_secs(1))
            .to_string();
    for i in 0..3 {
        push_image(&reg.url(), "app", &format!("v{i}"), i);
    }
    push_image(&reg.url(), "other", "v1", 9);
    // Two attempts each, then given up.
    let missed: Vec<String> = (0..6)
        .map(|_| rx.next().json()["id"].as_str().unwrap().to_owned())
        .collect();
    let failed = history(&reg, "hook01", 6);
    assert_eq!(failed.iter().filter(|e| e["result"] == "failed").count(), 3);
    let pending = api(&reg, "GET", "/hook01", None).json();
    assert_eq!(pending["pending"], 0);

    rx.set_default(Reply::Status(200));
    let report = api(
        &reg,
        "POST",
        "/hook01/replay",
        Some(json!({"since": before})),
    )
    .json();
    assert_eq!(
        (report["queued"].as_u64(), report["alreadyQueued"].as_u64()),
        (Some(3), Some(0)),
        "{report}"
    );
    assert_eq!(report["oldest"][0], 1);
    assert_eq!(report["newest"][0], 4);
    let replayed: Vec<String> = (0..3)
        .map(|_| rx.next().json()["id"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = missed.chunks(2).map(|pair| pair[0].clone()).collect();
    assert_eq!(replayed, expected, "each missed event once, in order");

    // A second replay, from the CLI, once the first is settled (a delivery
    // the receiver got is in the queue until its answer is recorded, and a
    // replay does not queue an event twice): once more each, nothing else.
    let settled = std::time::Instant::now();
    while api(&reg, "GET", "/hook01", None).json()["pending"] != 0 {
        assert!(
            settled.elapsed() < std::time::Duration::from_secs(30),
            "never settled"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "webhook",
            "replay",
            "--name",
            "hook01",
            "--since",
            "1h",
            "--registry",
            &reg.url(),
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["queued"], 3);
    let again: Vec<String> = (0..3)
        .map(|_| rx.next().json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(again, expected);
    push_image(&reg.url(), "app", "next", 10);
    assert_eq!(
        rx.next().json()["target"]["tag"],
        "next",
        "no duplicate came first"
    );
}
