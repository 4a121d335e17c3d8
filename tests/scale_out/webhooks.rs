use std::collections::BTreeSet;

use super::*;
use support::receiver::{Received, Receiver};

/// The tags of `n` push events `rx` receives next.
fn tags(rx: &Receiver, n: usize) -> BTreeSet<String> {
    (0..n)
        .map(|_| {
            let e = rx.next().json();
            assert_eq!(e["action"], "push", "{e}");
            e["target"]["tag"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Waits until no webhook has deliveries pending, then a moment more, and
/// checks that no receiver got anything beyond what the test took: each
/// event reached each webhook once.
fn assert_nothing_more(reg: &BerthProcess, receivers: &[&Receiver]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let hooks = get(reg, "/api/webhooks").json();
        let pending: u64 = hooks["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["pending"].as_u64().unwrap())
            .sum();
        if pending == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still pending: {hooks}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    for rx in receivers {
        let extra: Vec<Value> = rx.drain().iter().map(Received::json).collect();
        assert!(extra.is_empty(), "delivered more than once: {extra:?}");
    }
}

/// Webhooks are defined once and seen by every replica; one bound to a
/// location receives only the events its replicas raised, one without a
/// location receives all, each event once; history, ping, redeliver and
/// replay work from any replica.
#[test]
fn located_webhooks_get_their_locations_events_once_from_any_replica() {
    let store = SharedStore::new();
    let (west, east) = (store.replica("westeurope", ""), store.replica("eastus", ""));
    let (rx_west, rx_east, rx_all) = (Receiver::start(), Receiver::start(), Receiver::start());
    // One through the CLI's --location, one through the API, one unbound.
    let out = support::run(
        env!("CARGO_BIN_EXE_berth"),
        &[
            "webhook",
            "create",
            "--registry",
            &east.url(),
            "--name",
            "westhook",
            "--uri",
            &rx_west.url,
            "--actions",
            "push",
            "--location",
            "westeurope",
        ],
    );
    assert!(out.contains("westeurope"), "{out}");
    let mut east_hook = push_hook(&rx_east.url);
    east_hook["location"] = json!("eastus");
    create_webhook(&west, "easthook", east_hook);
    create_webhook(&east, "allhook", push_hook(&rx_all.url));
    for reg in [&west, &east] {
        let listed = get(reg, "/api/webhooks").json();
        let seen: Vec<(&str, &Value)> = listed["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["name"].as_str().unwrap(), &h["location"]))
            .collect();
        assert_eq!(
            seen,
            [
                ("allhook", &Value::Null),
                ("easthook", &json!("eastus")),
                ("westhook", &json!("westeurope"))
            ],
            "on {}",
            reg.host
        );
    }

    for i in 0..6u64 {
        let reg = if i % 2 == 0 { &west } else { &east };
        let (_, r) = support::push_image(&reg.url(), "loc/app", &format!("t{i}"), i);
        assert_eq!(r.status, 201);
    }
    let set = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(tags(&rx_west, 3), set(&["t0", "t2", "t4"]));
    assert_eq!(tags(&rx_east, 3), set(&["t1", "t3", "t5"]));
    assert_eq!(tags(&rx_all, 6), set(&["t0", "t1", "t2", "t3", "t4", "t5"]));
    assert_nothing_more(&east, &[&rx_west, &rx_east, &rx_all]);

    // The history, from either replica, whichever delivered.
    let recorded = history(&east, "westhook");
    assert_eq!(recorded.len(), 3);
    assert!(
        recorded.iter().all(|d| d["result"] == "delivered"),
        "{recorded:?}"
    );
    assert_eq!(history(&west, "westhook"), recorded);

    // Ping and redeliver through the other location's replica.
    let ping = api(&east, "POST", "/api/webhooks/westhook/ping", None).json();
    assert_eq!(ping["statusCode"], 200);
    assert_eq!(rx_west.next().json()["id"], ping["id"]);
    let id = recorded[0]["id"].as_str().unwrap();
    let again = api(
        &east,
        "POST",
        &format!("/api/webhooks/westhook/events/{id}/redeliver"),
        None,
    );
    assert_eq!(
        again.json()["statusCode"],
        200,
        "{}",
        String::from_utf8_lossy(&again.body)
    );
    assert_eq!(rx_west.next().json()["id"], id);

    // Replay through west: easthook gets east's events again, in order.
    let replay = api(
        &west,
        "POST",
        "/api/webhooks/easthook/replay",
        Some(json!({"after": 0})),
    );
    assert_eq!(replay.json()["queued"], 3, "{}", replay.json());
    let replayed: Vec<String> = (0..3)
        .map(|_| {
            rx_east.next().json()["target"]["tag"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(replayed, ["t1", "t3", "t5"]);
    assert_nothing_more(&west, &[&rx_west, &rx_east, &rx_all]);
}

/// A webhook created, changed or deleted through one replica is, at once,
/// what every replica delivers to.
#[test]
fn webhook_changes_through_one_replica_apply_on_the_others() {
    let store = SharedStore::new();
    let (a, b) = (store.replica("", ""), store.replica("", ""));
    let rx = Receiver::start();
    create_webhook(&a, "hookone", push_hook(&rx.url));
    let (_, r) = support::push_image(&b.url(), "chg/app", "v1", 1);
    assert_eq!(r.status, 201);
    assert_eq!(rx.next().json()["target"]["tag"], "v1");

    let r = api(
        &b,
        "PATCH",
        "/api/webhooks/hookone",
        Some(json!({"status": "disabled"})),
    );
    assert_eq!(r.status, 200);
    support::push_image(&a.url(), "chg/app", "v2", 2);
    let r = api(
        &a,
        "PATCH",
        "/api/webhooks/hookone",
        Some(json!({"status": "enabled"})),
    );
    assert_eq!(r.status, 200);
    support::push_image(&b.url(), "chg/app", "v3", 3);
    assert_eq!(
        rx.next().json()["target"]["tag"],
        "v3",
        "v2 was sent while disabled"
    );

    assert_eq!(api(&b, "DELETE", "/api/webhooks/hookone", None).status, 200);
    assert_eq!(api(&a, "GET", "/api/webhooks/hookone", None).status, 404);
    support::push_image(&a.url(), "chg/app", "v4", 4);
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(rx.drain().is_empty(), "a deleted webhook still received");
}
