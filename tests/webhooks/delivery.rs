//! Retries, timeouts, giving up, isolation between receivers, full queues.

use super::*;

#[test]
fn failed_deliveries_are_retried_until_the_receiver_recovers() {
    let rx = Receiver::start();
    rx.script(vec![
        Reply::Status(500),
        Reply::WithHeaders(503, vec![("Retry-After", "0".into())]),
        Reply::Status(302),
    ]);
    let reg = BerthProcess::with_config(FAST);
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
    let reg = BerthProcess::with_config(
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
fn a_delivery_gives_up_after_its_attempts_and_the_next_event_still_goes_out() {
    let rx = Receiver::with_default(Reply::Status(500));
    let reg = BerthProcess::with_config(&format!("{FAST}max_attempts = 3\n"));
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
    let reg = BerthProcess::with_config("[delivery]\ntimeout = \"15s\"\n");
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
fn a_full_queue_records_explicit_drops() {
    let hanging = Receiver::with_default(Reply::Hang(Duration::from_secs(20)));
    let reg = BerthProcess::with_config("[delivery]\nqueue_limit = 1\ntimeout = \"15s\"\n");
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
