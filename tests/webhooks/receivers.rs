//! Berth against receivers that behave like the programs people point ACR
//! webhooks at, each written from that program's documented behaviour
//! (sources in the comments), and the delivery rules those programs assume:
//! a permanent refusal is not retried, a passing failure is.

use support::receiver::Received;

use super::*;

/// Kargo's `azure` receiver (`internal/webhook/external/azure.go`): routes
/// ACR by a `User-Agent` starting with `AzureContainerRegistry` (anything
/// else is 400), answers `push` and `ping` with 200, other actions 400.
fn kargo() -> Receiver {
    Receiver::behaving(|r| {
        let ua = r.header("user-agent").unwrap_or_default();
        if !ua.starts_with("AzureContainerRegistry") {
            return (400, r#"{"error":"request does not appear to have originated from a supported service"}"#.into());
        }
        let Ok(event) = serde_json::from_slice::<Value>(&r.body) else {
            return (400, r#"{"error":"invalid request body"}"#.into());
        };
        match event["action"].as_str() {
            Some("ping") => (
                200,
                r#"{"msg":"ping event received, webhook is configured correctly"}"#.into(),
            ),
            Some("push") => (200, r#"{"msg":"refreshed 1 warehouse(s)"}"#.into()),
            other => (
                400,
                format!(
                    r#"{{"error":"event type {} is not supported"}}"#,
                    other.unwrap_or("")
                ),
            ),
        }
    })
}

/// App Service's continuous-deployment hook (Kudu `DockerController`):
/// `POST /docker/hook` behind HTTP Basic with the publishing credentials the
/// service URI carries; the body is never read.
fn app_service(user: &str, password: &str) -> Receiver {
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    Receiver::behaving(move |r| {
        if r.header("authorization") != Some(expected.as_str()) {
            return (401, "Unauthorized".into());
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/docker/hook") => (200, String::new()),
            _ => (404, "Not Found".into()),
        }
    })
}

/// Keel's `/v1/webhooks/azure` (`azure_webhook_trigger.go`): reads the
/// target, ignores `action`, and answers 400 when the tag is empty (a push
/// by digest, a ping, a delete).
fn keel() -> Receiver {
    Receiver::behaving(|r| {
        if r.method != "POST" {
            return (405, String::new());
        }
        let Ok(event) = serde_json::from_slice::<Value>(&r.body) else {
            return (400, String::new());
        };
        match event["target"]["tag"].as_str() {
            Some(tag) if !tag.is_empty() => (200, String::new()),
            _ => (400, "tag cannot be empty".into()),
        }
    })
}

/// Flux's `acr` Receiver (`receiver_handlers.go`): any body that decodes
/// into `{action, target{repository, tag}}` triggers a reconcile (200).
fn flux() -> Receiver {
    Receiver::behaving(|r| {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Acr {
            action: String,
            #[serde(default)]
            target: Target,
        }
        #[derive(serde::Deserialize, Default)]
        #[allow(dead_code)]
        struct Target {
            repository: String,
            #[serde(default)]
            tag: String,
        }
        match serde_json::from_slice::<Acr>(&r.body) {
            Ok(_) => (200, String::new()),
            Err(_) => (400, String::new()),
        }
    })
}

/// argocd-image-updater's ACR handler (`pkg/webhook/acr.go`): POST with a
/// JSON `Content-Type`, `push` only (anything else 400), a repository
/// required, the tag may be empty.
fn argocd() -> Receiver {
    Receiver::behaving(|r| {
        if r.method != "POST" {
            return (400, "invalid HTTP method".into());
        }
        if !r
            .header("content-type")
            .unwrap_or_default()
            .contains("application/json")
        {
            return (400, "invalid content type".into());
        }
        let Ok(event) = serde_json::from_slice::<Value>(&r.body) else {
            return (400, "failed to parse webhook payload".into());
        };
        if event["action"] != "push" {
            return (
                400,
                format!(
                    "ignoring action: {}",
                    event["action"].as_str().unwrap_or("")
                ),
            );
        }
        if event["target"]["repository"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            return (400, "repository name not found in webhook payload".into());
        }
        (200, "Webhook received and processing".into())
    })
}

/// Pushes an image to `repo` by digest alone (no tag); its digest.
fn push_by_digest(url: &str, repo: &str, seed: u64) -> String {
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let layer = support::random_bytes(500, seed);
    let (cd, ld) = (
        support::push_blob(url, repo, &config),
        support::push_blob(url, repo, &layer),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": layer.len()}],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let d = digest(&bytes);
    let put = http(
        "PUT",
        &format!("{url}/v2/{repo}/manifests/{d}"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &bytes,
    );
    assert_eq!(put.status, 201);
    d
}

/// The actions (or ping) and answers a receiver saw, in order.
fn seen(rx: &Receiver, n: usize) -> Vec<Received> {
    (0..n).map(|_| rx.next()).collect()
}

fn action(r: &Received) -> String {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let tagged = body["target"]["tag"].as_str().is_some();
    match body["action"].as_str().unwrap_or("(unread)") {
        "push" if !tagged => "push-by-digest".into(),
        a => a.into(),
    }
}

/// Each consumer gets push (by tag and by digest), ping and delete; each
/// answers as it would, and Berth honours the answers: a 400 is attempted
/// once and never again, so the next event follows right after it.
#[test]
fn the_real_consumers_of_acr_webhooks_accept_berths_deliveries() {
    let reg = BerthProcess::with_config(FAST);
    let url = reg.url();
    let (kargo, keel, flux, argocd) = (kargo(), keel(), flux(), argocd());
    let app = app_service("$berthapp", "p@ss:w0rd");
    let app_uri = app
        .url
        .replace("http://", "http://$berthapp:p%40ss%3Aw0rd@")
        .replace("/hook", "/docker/hook");
    let hooks: [(&str, &str, &[&str]); 5] = [
        ("kargo01", &kargo.url, &["push", "delete"]),
        ("appsvc01", &app_uri, &["push"]),
        ("keel01", &keel.url, &["push"]),
        ("flux01", &flux.url, &["push", "delete"]),
        ("argocd01", &argocd.url, &["push"]),
    ];
    for (name, uri, actions) in hooks {
        let r = create(&reg, name, json!({"serviceUri": uri, "actions": actions}));
        assert_eq!(
            r.status,
            201,
            "{name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let ping = api(&reg, "POST", &format!("/{name}/ping"), None).json();
        let expected = match name {
            "keel01" | "argocd01" => 400,
            _ => 200,
        };
        assert_eq!(ping["statusCode"], expected, "{name} ping: {ping}");
    }
    for rx in [&kargo, &app, &keel, &flux, &argocd] {
        assert_eq!(action(&rx.next()), "ping");
    }
    assert_eq!(push_image(&url, "app", "v1", 1).1.status, 201);
    let by_digest = push_by_digest(&url, "app", 2);
    assert_eq!(push_image(&url, "app", "v2", 3).1.status, 201);
    let deleted = http(
        "DELETE",
        &format!("{url}/v2/app/manifests/{by_digest}"),
        &[],
        b"",
    );
    assert_eq!(deleted.status, 202);

    // Kargo: refreshes on both pushes; refuses the delete, once.
    let k = seen(&kargo, 4);
    assert_eq!(
        k.iter().map(action).collect::<Vec<_>>(),
        ["push", "push-by-digest", "push", "delete"]
    );
    for r in &k {
        assert!(r
            .header("user-agent")
            .unwrap()
            .starts_with("AzureContainerRegistry/1.0 (compatible; Berth/"));
    }
    // App Service: every delivery authenticated from the URI's user info,
    // which is not in the request target.
    let a = seen(&app, 3);
    assert!(
        a.iter().all(|r| r.path == "/docker/hook"),
        "{:?}",
        a.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    // Keel: 400 for the push by digest, attempted once: the next event
    // follows it at once, though the queue delivers in order.
    let kl = seen(&keel, 3);
    assert_eq!(
        kl.iter().map(action).collect::<Vec<_>>(),
        ["push", "push-by-digest", "push"]
    );
    // Flux: everything; argocd-image-updater: pushes, tag or not.
    assert_eq!(
        seen(&flux, 4).iter().map(action).collect::<Vec<_>>(),
        ["push", "push-by-digest", "push", "delete"]
    );
    assert_eq!(
        seen(&argocd, 3).iter().map(action).collect::<Vec<_>>(),
        ["push", "push-by-digest", "push"]
    );

    // The histories record the refusals as failed after one attempt.
    let keel_history = history(&reg, "keel01", 4);
    let refused: Vec<&Value> = keel_history
        .iter()
        .filter(|e| e["eventResponseMessage"]["statusCode"] == "400")
        .collect();
    assert_eq!(refused.len(), 2, "the ping and the push by digest");
    for e in refused {
        assert_eq!(
            (e["result"].as_str(), e["attempts"].as_u64()),
            (Some("failed"), Some(1)),
            "{e}"
        );
        assert!(
            e["eventResponseMessage"]["content"]
                .as_str()
                .unwrap_or_default()
                .contains("tag cannot be empty")
                || e["eventRequestMessage"]["content"]["action"] == "ping"
        );
    }
    let kargo_delete = &history(&reg, "kargo01", 5)[0];
    assert_eq!(kargo_delete["eventResponseMessage"]["statusCode"], "400");
    assert_eq!(kargo_delete["result"], "failed");
    let metrics = String::from_utf8_lossy(&http("GET", &format!("{url}/metrics"), &[], b"").body)
        .into_owned();
    assert!(
        metrics.contains(r#"berth_webhook_deliveries_total{webhook="keel01",outcome="refused"} 1"#),
        "{metrics}"
    );
    assert!(metrics
        .contains(r#"berth_webhook_deliveries_total{webhook="keel01",outcome="delivered"} 2"#));
}

/// A passing failure (503) is retried until the receiver takes it; with
/// `retry_client_errors`, so is a 400.
#[test]
fn passing_failures_are_retried_and_client_errors_only_when_configured() {
    for (config, status, attempts) in [
        (FAST.to_owned(), 503, 3),
        (format!("{FAST}retry_client_errors = true\n"), 400, 3),
        (FAST.to_owned(), 400, 1),
    ] {
        let reg = BerthProcess::with_config(&config);
        let rx = Receiver::start();
        rx.script(vec![Reply::Status(status), Reply::Status(status)]);
        let r = create(
            &reg,
            "hook01",
            json!({"serviceUri": rx.url, "actions": ["push"]}),
        );
        assert_eq!(r.status, 201);
        push_image(&reg.url(), "app", "v1", 1);
        let ids: Vec<String> = (0..attempts)
            .map(|_| rx.next().json()["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            ids.windows(2).all(|w| w[0] == w[1]),
            "the same event each time"
        );
        let last = &history(&reg, "hook01", attempts)[0];
        assert_eq!(last["attempts"], attempts as u64, "{status} with {config}");
        let expected = if attempts == 1 { "failed" } else { "delivered" };
        assert_eq!(last["result"], expected);
        // Nothing more is sent: the next event comes next.
        push_image(&reg.url(), "app", "v2", 2);
        assert_eq!(rx.next().json()["target"]["tag"], "v2");
    }
}

/// The password in a service URI is a secret: sent as Basic credentials,
/// shown by get-config only, masked in the history, absent from list,
/// show, the event log, metrics, the log and `berth config`.
#[test]
fn a_service_uri_password_appears_nowhere_but_get_config() {
    let tmp = tempfile::tempdir().unwrap();
    let rx = app_service("deployer", "Ur1P4ssw0rd");
    let uri = rx
        .url
        .replace("http://", "http://deployer:Ur1P4ssw0rd@")
        .replace("/hook", "/docker/hook");
    let config = tmp.path().join("berth.toml");
    std::fs::write(
        &config,
        format!(
            "[[webhooks]]\nname = \"appsvc01\"\nserviceUri = \"{uri}\"\nactions = [\"push\"]\n"
        ),
    )
    .unwrap();
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(printed.status.success());
    let log = tmp.path().join("berth.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .env("BERTH_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    push_image(&url, "app", "v1", 1);
    let delivered = rx.next();
    assert_eq!(delivered.path, "/docker/hook");
    let get = |path: &str| {
        String::from_utf8_lossy(&http("GET", &format!("{url}{path}"), &[], b"").body).into_owned()
    };
    let mut history_text = get("/api/webhooks/appsvc01/events");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !history_text.contains("delivered") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        history_text = get("/api/webhooks/appsvc01/events");
    }
    let history: Value = serde_json::from_str(&history_text).unwrap();
    let entry = &history["value"][0];
    assert_eq!(entry["result"], "delivered", "{history_text}");
    assert!(entry["eventRequestMessage"]["requestUri"]
        .as_str()
        .unwrap()
        .contains("deployer:******@"));
    assert_eq!(
        entry["eventRequestMessage"]["headers"]["Authorization"],
        "******"
    );
    let config_view = get("/api/webhooks/appsvc01/config");
    assert!(
        config_view.contains("Ur1P4ssw0rd"),
        "get-config returns it: {config_view}"
    );
    let places = [
        (
            "berth config",
            String::from_utf8_lossy(&printed.stdout).into_owned(),
        ),
        ("list", get("/api/webhooks")),
        ("show", get("/api/webhooks/appsvc01")),
        ("list-events", history_text),
        ("event log", get("/api/events")),
        ("metrics", get("/metrics")),
    ];
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("deployer:Ur1P4ssw0rd");
    for (place, text) in places.iter().chain([&("log", log_text)]) {
        for secret in ["Ur1P4ssw0rd", basic.as_str()] {
            assert!(!text.contains(secret), "{place} contains {secret}:\n{text}");
        }
    }
}
