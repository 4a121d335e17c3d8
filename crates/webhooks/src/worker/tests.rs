use std::collections::BTreeMap;

use registry::ext::Db;

use super::*;
use crate::client::{Client, Response};
use crate::queue::tests::delivery;

fn policy() -> Policy {
    Policy {
        max_attempts: 3,
        max_age: Duration::from_secs(3600),
        base: Duration::from_secs(1),
        cap: Duration::from_secs(60),
        retry_client_errors: false,
    }
}

fn answered(status: u16, headers: &[(&str, &str)]) -> Attempt {
    Attempt {
        request_headers: BTreeMap::new(),
        response: Ok(Response {
            status,
            reason: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: String::new(),
        }),
        latency: Duration::ZERO,
    }
}

#[tokio::test]
async fn next_due_reports_the_head_or_how_long_to_wait() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&Db::open(dir.path()).unwrap()).unwrap();
    assert!(matches!(
        next_due(&queue, "hook01", 1_000).await.unwrap(),
        Due::Empty
    ));
    let later = serde_json::to_vec(&delivery("r", 5_000)).unwrap();
    queue.push("hook01", 1, &later).await.unwrap();
    let Due::Wait(wait) = next_due(&queue, "hook01", 1_000).await.unwrap() else {
        panic!("not due yet");
    };
    assert_eq!(wait, Duration::from_secs(4));
    let Due::Ready(ready) = next_due(&queue, "hook01", 5_000).await.unwrap() else {
        panic!("due");
    };
    assert_eq!(ready.1.event.target.repository, "r");
}

#[test]
fn decide_classifies_the_answer_with_attempts_and_age() {
    let p = policy();
    let mut d = delivery("r", 0);
    d.attempts = 1;
    d.queued_ms = 10_000;
    assert_eq!(
        decide(&p, &answered(204, &[]), &d, 10_000),
        Outcome::Delivered
    );
    assert!(matches!(
        decide(&p, &answered(503, &[]), &d, 10_000),
        Outcome::Retry(_)
    ));
    assert_eq!(
        decide(&p, &answered(503, &[("retry-after", "7")]), &d, 10_000),
        Outcome::Retry(Duration::from_secs(7))
    );
    let refused = Attempt {
        response: Err("connection refused".into()),
        ..answered(0, &[])
    };
    assert!(matches!(
        decide(&p, &refused, &d, 10_000),
        Outcome::Retry(_)
    ));
    // Attempts and age run out.
    d.attempts = 3;
    assert_eq!(decide(&p, &answered(503, &[]), &d, 10_000), Outcome::GiveUp);
    d.attempts = 1;
    assert_eq!(
        decide(&p, &answered(503, &[]), &d, 10_000 + 3_600_000),
        Outcome::GiveUp
    );
}

#[tokio::test]
async fn settle_reschedules_a_retry_and_removes_what_ended() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&Db::open(dir.path()).unwrap()).unwrap();
    for seq in [1, 2] {
        let d = serde_json::to_vec(&delivery("r", 0)).unwrap();
        queue.push("hook01", seq, &d).await.unwrap();
    }
    let (key, mut d) = queue.head("hook01").await.unwrap().unwrap();
    d.attempts = 1;
    let wait = settle(
        &queue,
        "hook01",
        &key,
        d,
        &Outcome::Retry(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    assert_eq!(wait, Duration::from_secs(30));
    let (again, d) = queue.head("hook01").await.unwrap().unwrap();
    assert_eq!(again, key, "a retry keeps its place at the head");
    assert!(d.next_attempt_ms > now_ms() + 25_000);
    assert_eq!((d.attempts, queue.pending("hook01")), (1, 2));

    let wait = settle(&queue, "hook01", &key, d, &Outcome::GiveUp)
        .await
        .unwrap();
    assert_eq!(wait, Duration::ZERO);
    assert_eq!(queue.pending("hook01"), 1);
    let (next, d) = queue.head("hook01").await.unwrap().unwrap();
    assert_ne!(next, key);
    settle(&queue, "hook01", &next, d, &Outcome::Delivered)
        .await
        .unwrap();
    assert!(queue.head("hook01").await.unwrap().is_none());
    assert_eq!(queue.pending("hook01"), 0);
}

#[tokio::test]
async fn a_post_carries_the_event_and_records_the_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("\"action\":\"push\"") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early");
            seen.extend_from_slice(&buf[..n]);
        }
        conn.write_all(b"HTTP/1.1 202 Queued\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
        String::from_utf8_lossy(&seen).into_owned()
    });
    let mut hook = crate::webhook::tests::hook("");
    hook.service_uri = format!("http://{addr}/hook");
    let client = Client::new(Duration::from_secs(5), false).unwrap();
    let d = delivery("r", 0);
    let body = format::event(crate::webhook::Format::Acr, &d.event, "http").unwrap();
    let a = client.post(&hook, &d.event.id, body).await;
    let request = receiver.await.unwrap();
    assert!(request.starts_with("POST /hook HTTP/1.1\r\n"), "{request}");
    assert!(
        request.to_ascii_lowercase().contains("x-token: abc"),
        "{request}"
    );
    assert!(request.contains(&d.event.id), "{request}");
    let response = a.response.unwrap();
    assert_eq!(
        (
            response.status,
            response.reason.as_str(),
            response.body.as_str()
        ),
        (202, "Queued", "ok")
    );
    assert_eq!(a.request_headers["X-Token"], "abc");
}
