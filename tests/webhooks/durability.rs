//! Events survive kill -9 and the event log's retention.

use super::*;

#[test]
fn acknowledged_events_survive_kill_9_and_arrive_after_restart() {
    let rx = Receiver::with_default(Reply::Status(503));
    let mut reg = BerthProcess::with_config(FAST);
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
fn the_event_log_keeps_its_retention_yet_no_webhook_misses_an_event() {
    let rx = Receiver::start();
    let mut reg = BerthProcess::with_config(&format!("event_retention = 3\n{FAST}"));
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
