//! Berth as a CI fixture: `serve --ephemeral` with a ready file, the
//! `config` and `health` verbs, the probes and `/metrics`, and the
//! in-process [`berth::testing::TestRegistry`].

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::receiver::{Receiver, Reply};
use support::{http, push_image, BerthProcess};

fn berth(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn ephemeral_serve_announces_itself_once_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let ready = tmp.path().join("ready");
    let scratch = tmp.path().join("tmp");
    std::fs::create_dir(&scratch).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--ephemeral", "--listen", "127.0.0.1:0"])
        .arg("--ready-file")
        .arg(&ready)
        .env("TMPDIR", &scratch)
        .env("BERTH_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .trim()
        .to_owned();
    // The ready file is complete before the line is printed.
    assert_eq!(std::fs::read_to_string(&ready).unwrap(), format!("{url}\n"));
    let data: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert_eq!(data.len(), 1, "one temporary data directory");

    // A pipeline pushes, then asserts the events it expects.
    let (_, r) = push_image(&url, "ci/app", "v1", 1);
    assert_eq!(r.status, 201);
    let waited = berth(
        &["events", "--action", "push", "--repository", "ci/app"],
        &[("BERTH_REGISTRY", &url)],
    );
    assert!(waited.status.success(), "{}", text(&waited.stderr));
    let waited = berth(
        &[
            "events",
            "--registry",
            &url,
            "--wait-for",
            "1",
            "--timeout",
            "10s",
            "-o",
            "json",
        ],
        &[],
    );
    assert!(waited.status.success(), "{}", text(&waited.stderr));
    let events: serde_json::Value = serde_json::from_slice(&waited.stdout).unwrap();
    assert_eq!(events["events"][0]["target"]["tag"], "v1");
    let short = berth(
        &[
            "events",
            "--registry",
            &url,
            "--wait-for",
            "2",
            "--timeout",
            "300ms",
        ],
        &[],
    );
    assert!(!short.status.success());
    assert!(
        text(&short.stderr).contains("saw 1 of 2"),
        "{}",
        text(&short.stderr)
    );

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "stdout holds exactly one line");
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "ephemeral data left behind: {left:?}");
}

#[test]
fn config_verb_prints_file_then_environment_then_flags_with_secrets_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("berth.toml");
    std::fs::write(
        &file,
        r#"
        listen = "0.0.0.0:1"
        max_manifest_bytes = 1000
        [delivery]
        max_attempts = 3
        [[webhooks]]
        name = "hook01"
        serviceUri = "https://user:pw@hooks.example.com/T0/B0/s3cretpath"
        actions = ["push"]
        customHeaders = { "X-Token" = "tok3n" }
        secret = "whsec_s3cret"
        "#,
    )
    .unwrap();
    let out = berth(
        &["config", "--listen", "127.0.0.1:9"],
        &[
            ("BERTH_CONFIG", file.to_str().unwrap()),
            ("BERTH_LISTEN", "127.0.0.1:8"),
            ("BERTH_MAX_MANIFEST_BYTES", "2000"),
            ("BERTH_DELIVERY_TIMEOUT", "3s"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let value: toml::Table = toml::from_str(&printed).unwrap();
    assert_eq!(value["listen"].as_str(), Some("127.0.0.1:9"), "flag wins");
    assert_eq!(
        value["max_manifest_bytes"].as_integer(),
        Some(2000),
        "env wins over file"
    );
    assert_eq!(value["delivery"]["max_attempts"].as_integer(), Some(3));
    assert_eq!(value["delivery"]["timeout"].as_str(), Some("3s"));
    assert_eq!(value["webhooks"][0]["name"].as_str(), Some("hook01"));
    for secret in ["tok3n", "whsec_s3cret", "s3cretpath", "user:pw"] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
    let bad = berth(&["config"], &[("BERTH_QUARANTINE", "perhaps")]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("quarantine"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn probes_and_health_verb() {
    let reg = BerthProcess::start();
    let url = reg.url();
    let health = http("GET", &format!("{url}/health"), &[], b"");
    assert_eq!(
        (health.status, health.json()),
        (200, serde_json::json!({"healthy": true}))
    );
    let ready = http("GET", &format!("{url}/ready"), &[], b"");
    assert_eq!(
        (ready.status, ready.json()),
        (200, serde_json::json!({"ready": true, "readOnly": false}))
    );
    let wrong = http("POST", &format!("{url}/health"), &[], b"");
    assert_eq!(
        (wrong.status, wrong.error_code().as_str()),
        (405, "UNSUPPORTED")
    );

    let ok = berth(&["health", "--registry", &url], &[]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    // Without --registry it asks the address BERTH_LISTEN names, as the
    // container image's health check does.
    let port = reg.host.rsplit_once(':').unwrap().1;
    let listen = format!("0.0.0.0:{port}");
    let via_listen = berth(&["health"], &[("BERTH_LISTEN", &listen)]);
    assert!(via_listen.status.success(), "{}", text(&via_listen.stderr));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    assert!(!berth(&["health", "--registry", &dead], &[])
        .status
        .success());
}

/// The value of the sample whose name and labels are `series`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_requests_bytes_uploads_and_deliveries() {
    let good = Receiver::start();
    let bad = Receiver::with_default(Reply::Status(500));
    let reg = BerthProcess::with_config(&format!(
        r#"
        [delivery]
        backoff_base = "50ms"
        backoff_cap = "50ms"
        max_attempts = 2
        [[webhooks]]
        name = "goodhook"
        serviceUri = "{}"
        actions = ["push"]
        [[webhooks]]
        name = "badhook"
        serviceUri = "{}"
        actions = ["push"]
        "#,
        good.url, bad.url
    ));
    let url = reg.url();
    let (manifest, r) = push_image(&url, "m/app", "v1", 7);
    assert_eq!(r.status, 201);
    good.next();
    bad.next();
    bad.next();
    let open = http("POST", &format!("{url}/v2/m/app/blobs/uploads/"), &[], b"");
    assert_eq!(open.status, 202);
    let missing = http("GET", &format!("{url}/v2/m/app/manifests/nope"), &[], b"");
    assert_eq!(missing.status, 404);

    // The failed delivery is counted once the worker records it: poll.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let m = http("GET", &format!("{url}/metrics"), &[], b"");
        assert_eq!(m.status, 200);
        assert!(m.header("content-type").unwrap().starts_with("text/plain"));
        let text = String::from_utf8(m.body).unwrap();
        let failed = r#"berth_webhook_deliveries_total{webhook="badhook",outcome="failed"}"#;
        if sample(&text, failed) == Some(1.0) || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let expect = [
        (
            r#"berth_http_requests_total{route="manifest",method="PUT",status="201"}"#,
            1.0,
        ),
        (
            r#"berth_http_requests_total{route="uploads",method="POST",status="201"}"#,
            2.0,
        ),
        (
            r#"berth_http_requests_total{route="uploads",method="POST",status="202"}"#,
            1.0,
        ),
        (
            r#"berth_http_requests_total{route="manifest",method="GET",status="404"}"#,
            1.0,
        ),
        ("berth_uploads_in_progress", 1.0),
        (r#"berth_webhook_queue_depth{webhook="goodhook"}"#, 0.0),
        (r#"berth_webhook_queue_depth{webhook="badhook"}"#, 0.0),
        (
            r#"berth_webhook_deliveries_total{webhook="goodhook",outcome="delivered"}"#,
            1.0,
        ),
        (
            r#"berth_webhook_deliveries_total{webhook="goodhook",outcome="failed"}"#,
            0.0,
        ),
        (
            r#"berth_webhook_deliveries_total{webhook="badhook",outcome="retrying"}"#,
            1.0,
        ),
        (
            r#"berth_webhook_deliveries_total{webhook="badhook",outcome="failed"}"#,
            1.0,
        ),
        (
            r#"berth_webhook_deliveries_total{webhook="badhook",outcome="dropped"}"#,
            0.0,
        ),
    ];
    for (series, want) in expect {
        assert_eq!(
            sample(&metrics, series),
            Some(want),
            "{series} in\n{metrics}"
        );
    }
    let received = sample(&metrics, "berth_http_received_bytes_total").unwrap();
    let sent = sample(&metrics, "berth_http_sent_bytes_total").unwrap();
    assert!(
        received > (manifest.len() + 1000) as f64,
        "received {received}"
    );
    assert!(sent > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_registry_delivers_webhooks_and_cleans_up() {
    let rx = Receiver::start();
    let file = berth::config::File::parse(
        &format!(
            "[[webhooks]]\nname = \"inproc\"\nserviceUri = \"{}\"\nactions = [\"push\"]",
            rx.url
        ),
        [],
    )
    .unwrap();
    let reg = berth::testing::TestRegistry::start_with(file)
        .await
        .unwrap();
    let dir = reg.data_dir().to_owned();
    assert!(dir.is_dir());
    let url = reg.url();
    let status =
        tokio::task::spawn_blocking(move || push_image(&url, "inproc/app", "v2", 3).1.status)
            .await
            .unwrap();
    assert_eq!(status, 201);
    let events = reg
        .wait_for_events(1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target.repository, "inproc/app");
    let delivered = tokio::task::spawn_blocking(move || rx.next().json())
        .await
        .unwrap();
    assert_eq!(delivered["id"], events[0].id);
    let timed_out = reg.wait_for_events(2, Duration::from_millis(200)).await;
    assert!(timed_out.unwrap_err().to_string().contains("saw 1 of 2"));
    reg.stop().await;
    assert!(!dir.exists(), "{} left behind", dir.display());

    // Dropping without stop() removes the directory too.
    let reg = berth::testing::TestRegistry::start().await.unwrap();
    let dir = reg.data_dir().to_owned();
    drop(reg);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
