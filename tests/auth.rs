//! Access control end to end: htpasswd users made by `berth htpasswd`,
//! roles, the Basic challenge, anonymous pull, logins with the real docker,
//! podman and oras clients, and credentials kept out of logs.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use support::{htpasswd, http, output_with_stdin, run, BerthProcess, Resp};

/// A registry with users reader (pull), ci (push) and boss (admin).
fn secured(dir: &Path, anonymous_pull: bool) -> BerthProcess {
    let file = dir.join("htpasswd");
    let lines = [
        htpasswd("reader", "reader-pw"),
        htpasswd("ci", "ci-pw"),
        htpasswd("boss", "boss-pw"),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    BerthProcess::with_config(&format!(
        r#"
        [auth]
        htpasswd = "{}"
        anonymous_pull = {anonymous_pull}
        roles = {{ ci = "push", boss = "admin" }}
        "#,
        file.display()
    ))
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

fn as_user(method: &str, url: &str, user: &str, password: &str, body: &[u8]) -> Resp {
    http(
        method,
        url,
        &[("Authorization", &basic(user, password))],
        body,
    )
}

fn assert_challenged(r: &Resp) {
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "UNAUTHORIZED");
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"berth\""));
}

/// Pushes a one-layer image as `user` (blobs, then the manifest).
fn push_as(url: &str, user: &str, password: &str, repo: &str, tag: &str) -> u16 {
    let layer = support::random_bytes(500, 9);
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    for blob in [&layer[..], &config[..]] {
        let d = support::digest(blob);
        let r = as_user(
            "POST",
            &format!("{url}/v2/{repo}/blobs/uploads/?digest={d}"),
            user,
            password,
            blob,
        );
        if r.status != 201 {
            return r.status;
        }
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": support::digest(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": support::digest(&layer), "size": layer.len()}],
    });
    http(
        "PUT",
        &format!("{url}/v2/{repo}/manifests/{tag}"),
        &[
            ("Authorization", &basic(user, password)),
            ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
        ],
        &serde_json::to_vec(&manifest).unwrap(),
    )
    .status
}

#[test]
fn roles_decide_who_may_pull_push_delete_and_administer() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = secured(tmp.path(), false);
    let url = reg.url();

    // Nobody gets in without credentials, except to the probes.
    assert_challenged(&http("GET", &format!("{url}/v2/"), &[], b""));
    assert_challenged(&http("GET", &format!("{url}/v2/a/tags/list"), &[], b""));
    assert_challenged(&http("GET", &format!("{url}/api/events"), &[], b""));
    assert_challenged(&http(
        "POST",
        &format!("{url}/v2/a/blobs/uploads/"),
        &[],
        b"",
    ));
    assert_eq!(http("GET", &format!("{url}/health"), &[], b"").status, 200);
    assert_eq!(http("GET", &format!("{url}/ready"), &[], b"").status, 200);
    assert_eq!(http("GET", &format!("{url}/metrics"), &[], b"").status, 200);
    // Wrong passwords and unknown users are challenged again.
    assert_challenged(&as_user("GET", &format!("{url}/v2/"), "ci", "wrong", b""));
    assert_challenged(&as_user(
        "GET",
        &format!("{url}/v2/"),
        "ghost",
        "ci-pw",
        b"",
    ));
    assert_eq!(
        as_user("GET", &format!("{url}/v2/"), "reader", "reader-pw", b"").status,
        200
    );

    // push: ci yes, reader no.
    assert_eq!(push_as(&url, "reader", "reader-pw", "app", "v1"), 403);
    assert_eq!(push_as(&url, "ci", "ci-pw", "app", "v1"), 201);
    // Whoever may push may give up an upload session; a reader may not.
    let session = as_user(
        "POST",
        &format!("{url}/v2/app/blobs/uploads/"),
        "ci",
        "ci-pw",
        b"",
    );
    let session = format!("{url}{}", session.header("location").unwrap());
    assert_eq!(
        as_user("DELETE", &session, "reader", "reader-pw", b"").status,
        403
    );
    assert_eq!(as_user("DELETE", &session, "ci", "ci-pw", b"").status, 204);
    assert_eq!(as_user("GET", &session, "ci", "ci-pw", b"").status, 404);
    let manifest = format!("{url}/v2/app/manifests/v1");
    assert_eq!(
        as_user("GET", &manifest, "reader", "reader-pw", b"").status,
        200
    );
    // Deletes and the admin APIs: boss only.
    let denied = as_user("DELETE", &manifest, "ci", "ci-pw", b"");
    assert_eq!(
        (denied.status, denied.error_code().as_str()),
        (403, "DENIED")
    );
    for path in ["/api/events", "/api/webhooks", "/api/quarantine"] {
        let r = as_user("GET", &format!("{url}{path}"), "ci", "ci-pw", b"");
        assert_eq!(r.status, 403, "{path}");
        let r = as_user("GET", &format!("{url}{path}"), "boss", "boss-pw", b"");
        assert_eq!(r.status, 200, "{path}");
    }
    let digest = as_user("GET", &manifest, "reader", "reader-pw", b"")
        .header("docker-content-digest")
        .unwrap()
        .to_owned();
    let by_digest = format!("{url}/v2/app/manifests/{digest}");
    assert_eq!(
        as_user("DELETE", &by_digest, "boss", "boss-pw", b"").status,
        202
    );

    // The CLI reads credentials from the environment only.
    let events = |envs: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["events", "--registry", &url])
            .envs(envs.iter().copied())
            .output()
            .unwrap()
    };
    let refused = events(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("BERTH_USERNAME"));
    let listed = events(&[("BERTH_USERNAME", "boss"), ("BERTH_PASSWORD", "boss-pw")]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(
        table.contains("push") && table.contains("delete"),
        "{table}"
    );
}

#[test]
fn anonymous_pull_lets_anyone_read_and_nobody_write() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = secured(tmp.path(), true);
    let url = reg.url();
    assert_eq!(push_as(&url, "ci", "ci-pw", "pub/app", "v1"), 201);
    let tags = http("GET", &format!("{url}/v2/pub/app/tags/list"), &[], b"");
    assert_eq!(
        (tags.status, tags.json()["tags"][0].as_str()),
        (200, Some("v1"))
    );
    assert_eq!(
        http("GET", &format!("{url}/v2/pub/app/manifests/v1"), &[], b"").status,
        200
    );
    // The base still challenges, so a client's login really checks.
    assert_challenged(&http("GET", &format!("{url}/v2/"), &[], b""));
    assert_challenged(&http(
        "POST",
        &format!("{url}/v2/pub/app/blobs/uploads/"),
        &[],
        b"",
    ));
    assert_challenged(&http(
        "DELETE",
        &format!("{url}/v2/pub/app/manifests/v1"),
        &[],
        b"",
    ));
    // Wrong credentials are refused rather than treated as anonymous.
    assert_challenged(&as_user(
        "GET",
        &format!("{url}/v2/pub/app/tags/list"),
        "ci",
        "no",
        b"",
    ));
}

/// The docker CLI with its own config directory (so logins stay here).
fn docker_as(config: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let bin = std::env::var("BERTH_TEST_DOCKER").unwrap_or_else(|_| "docker".into());
    assert!(
        std::env::var("DOCKER_HOST").is_ok(),
        "run through scripts/test.sh"
    );
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("DOCKER_CONFIG", config)
        .env("DOCKER_BUILDKIT", "0");
    output_with_stdin(&mut cmd, stdin)
}

#[test]
fn docker_podman_and_oras_log_in_push_and_pull() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = secured(tmp.path(), false);
    let host = reg.host.clone();

    // docker: a wrong password fails login; the right one lets it push and pull.
    let cfg = tmp.path().join("docker");
    let login = |pw: &str| docker_as(&cfg, &["login", "-u", "ci", "--password-stdin", &host], pw);
    let wrong = login("nope");
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("401")
            || String::from_utf8_lossy(&wrong.stderr).contains("nauthorized")
    );
    let ok = login("ci-pw");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("f.bin"), support::random_bytes(100_000, 5)).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY f.bin /f.bin\nCMD [\"/x\"]\n",
    )
    .unwrap();
    let image = format!("{host}/private/app:v1");
    let step = |args: &[&str]| {
        let out = docker_as(&cfg, args, "");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    step(&["build", "-q", "-t", &image, ctx.to_str().unwrap()]);
    step(&["push", &image]);
    step(&["rmi", &image]);
    step(&["logout", &host]);
    let anonymous = docker_as(&cfg, &["pull", &image], "");
    assert!(!anonymous.status.success(), "pulled without logging in");
    assert!(login("ci-pw").status.success());
    step(&["pull", "-q", &image]);
    step(&["rmi", &image]);

    // podman: same, with its own auth file.
    let authfile = tmp.path().join("podman-auth.json");
    let podman_login = |pw: &str| {
        let mut cmd = Command::new("podman");
        cmd.args(["login", "--tls-verify=false", "--authfile"])
            .arg(&authfile)
            .args(["-u", "reader", "--password-stdin", &host]);
        output_with_stdin(&mut cmd, pw).status.success()
    };
    assert!(!podman_login("nope"));
    assert!(podman_login("reader-pw"));
    let dest = tmp.path().join("pulled");
    run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-authfile",
            authfile.to_str().unwrap(),
            &format!("docker://{image}"),
            &format!("dir:{}", dest.display()),
        ],
    );
    assert!(dest.join("manifest.json").is_file());

    // oras (oras-py): login, push, pull.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oras_login.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&host)
        .env("ORAS_USER", "ci")
        .env("ORAS_PASSWORD", "ci-pw")
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim().ends_with("ok"),
        "oras: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn credentials_and_webhook_header_values_never_reach_logs_events_or_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let line = htpasswd("ci", "Sup3rSecretPw");
    let hash = line.split_once(':').unwrap().1.to_owned();
    std::fs::write(tmp.path().join("htpasswd"), format!("{line}\n")).unwrap();
    let failing = support::receiver::Receiver::with_default(support::receiver::Reply::Status(500));
    let config = tmp.path().join("berth.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [auth]
            htpasswd = "{}"
            default_role = "admin"
            [delivery]
            max_attempts = 2
            backoff_base = "10ms"
            [[webhooks]]
            name = "leakcheck"
            serviceUri = "{}"
            actions = ["push"]
            customHeaders = {{ "X-Api-Key" = "HeaderS3cretValue" }}
            "#,
            tmp.path().join("htpasswd").display(),
            failing.url
        ),
    )
    .unwrap();
    let log = tmp.path().join("berth.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .env("BERTH_LOG", "trace")
        .stdout(Stdio::piped())
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

    assert_eq!(push_as(&url, "ci", "Sup3rSecretPw", "leak/app", "v1"), 201);
    let refused = as_user("GET", &format!("{url}/v2/"), "ci", "WrongS3cretPw", b"");
    assert_challenged(&refused);
    let request_id = refused.header("x-request-id").unwrap().to_owned();
    failing.next();
    failing.next();
    let events = as_user(
        "GET",
        &format!("{url}/api/events"),
        "ci",
        "Sup3rSecretPw",
        b"",
    );
    let history = as_user(
        "GET",
        &format!("{url}/api/webhooks/leakcheck/events"),
        "ci",
        "Sup3rSecretPw",
        b"",
    );
    let metrics = http("GET", &format!("{url}/metrics"), &[], b"");
    assert_eq!((events.status, history.status), (200, 200));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();

    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("delivery failed"),
        "the log has the delivery warnings"
    );
    assert!(
        log_text.contains(&request_id),
        "the log names a request by the id its client got back"
    );
    let secrets = [
        "Sup3rSecretPw".to_owned(),
        "WrongS3cretPw".to_owned(),
        basic("ci", "Sup3rSecretPw"),
        basic("ci", "Sup3rSecretPw")
            .trim_start_matches("Basic ")
            .to_owned(),
        hash,
        "HeaderS3cretValue".to_owned(),
    ];
    let places = [
        ("log", log_text),
        (
            "event log",
            String::from_utf8_lossy(&events.body).into_owned(),
        ),
        (
            "delivery history",
            String::from_utf8_lossy(&history.body).into_owned(),
        ),
        (
            "metrics",
            String::from_utf8_lossy(&metrics.body).into_owned(),
        ),
    ];
    for (place, text) in &places {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{place} contains {secret}");
        }
    }
}
