//! Token authentication end to end: a token server in the test (a key pair
//! and certificate it makes, JWTs it signs, as docker_auth or Keycloak
//! would) drives `docker login`, push and pull through Berth with the real
//! docker CLI; every bad token is refused with the challenge the
//! specification describes.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};
use support::tokens::{claims, now, token_server, Signer, ISSUER, SERVICE};
use support::{docker, http, BerthProcess};

/// Berth trusting `certificate` for tokens from `realm`.
fn berth(dir: &Path, realm: &str, certificate: &str) -> BerthProcess {
    let cert = dir.join("signers.pem");
    std::fs::write(&cert, certificate).unwrap();
    BerthProcess::with_config(&format!(
        "[auth]\nanonymous_pull = true\n[auth.token]\nrealm = \"{realm}\"\nservice = \"{SERVICE}\"\nissuer = \"{ISSUER}\"\ncertificates = \"{}\"\n",
        cert.display()
    ))
}

fn docker_in(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .arg("--config")
        .arg(config)
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap()
}

/// docker logs in through the token server, pushes and pulls; a wrong
/// password fails the login; a read-only grant fails a push.
#[test]
fn docker_logs_in_pushes_and_pulls_with_tokens() {
    let signer = Signer::new();
    let pem = signer.cert_pem.clone();
    let realm = token_server(signer);
    let tmp = tempfile::tempdir().unwrap();
    let reg = berth(tmp.path(), &realm, &pem);
    let config: PathBuf = tmp.path().join("docker");
    std::fs::create_dir_all(&config).unwrap();

    let wrong = docker_in(&config, &["login", &reg.host, "-u", "alice", "-p", "nope"]);
    assert!(
        !wrong.status.success(),
        "{}",
        String::from_utf8_lossy(&wrong.stdout)
    );
    let login = docker_in(
        &config,
        &["login", &reg.host, "-u", "alice", "-p", "secret"],
    );
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );

    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("f.txt"), "token").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY f.txt /\nCMD [\"/x\"]\n",
    )
    .unwrap();
    for repo in ["team/app", "readonly/app"] {
        docker(&[
            "build",
            "-q",
            "-t",
            &format!("{}/{repo}:v1", reg.host),
            ctx.path().to_str().unwrap(),
        ]);
    }
    let push = docker_in(&config, &["push", &format!("{}/team/app:v1", reg.host)]);
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    let refused = docker_in(&config, &["push", &format!("{}/readonly/app:v1", reg.host)]);
    assert!(!refused.status.success());
    docker(&["rmi", &format!("{}/team/app:v1", reg.host)]);
    let pull = docker_in(&config, &["pull", &format!("{}/team/app:v1", reg.host)]);
    assert!(
        pull.status.success(),
        "{}",
        String::from_utf8_lossy(&pull.stderr)
    );
    // Anonymous pulls get a pull-only token from the same server.
    let anonymous = tmp.path().join("anonymous");
    std::fs::create_dir_all(&anonymous).unwrap();
    docker(&["rmi", &format!("{}/team/app:v1", reg.host)]);
    let pull = docker_in(&anonymous, &["pull", &format!("{}/team/app:v1", reg.host)]);
    assert!(
        pull.status.success(),
        "{}",
        String::from_utf8_lossy(&pull.stderr)
    );
}

/// Every kind of bad token is refused with a Bearer challenge that says
/// what to ask for; a good one passes.
#[test]
fn bad_tokens_are_refused_with_the_specifications_challenge() {
    let signer = Signer::new();
    let tmp = tempfile::tempdir().unwrap();
    let realm = "https://auth.example/token";
    let reg = berth(tmp.path(), realm, &signer.cert_pem);
    let (_, r) = {
        // Pushed with an admin token: setup.
        let admin = signer.sign(&claims(
            "setup",
            json!([{"type": "repository", "name": "app", "actions": ["*"]}]),
        ));
        let auth = format!("Bearer {admin}");
        let config = support::push_blob_as(&reg.url(), "app", b"{}", &auth);
        let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2}, "layers": []});
        let r = http(
            "PUT",
            &format!("{}/v2/app/manifests/v1", reg.url()),
            &[
                ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
                ("Authorization", &auth),
            ],
            m.to_string().as_bytes(),
        );
        (m, r)
    };
    assert_eq!(r.status, 201);
    let get = |token: &str| {
        http(
            "GET",
            &format!("{}/v2/app/manifests/v1", reg.url()),
            &[
                ("Accept", "application/vnd.oci.image.manifest.v1+json"),
                ("Authorization", &format!("Bearer {token}")),
            ],
            &[],
        )
    };
    let pull = json!([{"type": "repository", "name": "app", "actions": ["pull"]}]);
    assert_eq!(get(&signer.sign(&claims("bob", pull.clone()))).status, 200);

    // The challenges.
    let base = http("GET", &format!("{}/v2/", reg.url()), &[], &[]);
    assert_eq!(base.status, 401);
    assert_eq!(
        base.header("www-authenticate"),
        Some(format!("Bearer realm=\"{realm}\",service=\"{SERVICE}\"").as_str())
    );
    let put = http(
        "PUT",
        &format!("{}/v2/app/manifests/v2", reg.url()),
        &[],
        b"{}",
    );
    assert_eq!(
        put.header("www-authenticate"),
        Some(
            format!(
                "Bearer realm=\"{realm}\",service=\"{SERVICE}\",scope=\"repository:app:pull,push\""
            )
            .as_str()
        )
    );
    assert_eq!(put.error_code(), "UNAUTHORIZED");
    let none_at_all = signer.sign(&claims("bob", json!([])));
    let r = http(
        "GET",
        &format!("{}/v2/", reg.url()),
        &[("Authorization", &format!("Bearer {none_at_all}"))],
        &[],
    );
    assert_eq!(r.status, 200, "any valid token opens /v2/ (docker login)");

    let mut bad: Vec<(&str, String)> = Vec::new();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims("bob", pull.clone());
        f(&mut c);
        c
    };
    bad.push((
        "expired",
        signer.sign(&with(&|c| c["exp"] = json!(now() - 120))),
    ));
    bad.push((
        "not yet valid",
        signer.sign(&with(&|c| c["nbf"] = json!(now() + 120))),
    ));
    bad.push((
        "another audience",
        signer.sign(&with(&|c| c["aud"] = json!("elsewhere"))),
    ));
    bad.push((
        "another issuer",
        signer.sign(&with(&|c| c["iss"] = json!("evil"))),
    ));
    let stranger = Signer::new();
    bad.push((
        "an unknown key",
        stranger.sign(&claims("bob", pull.clone())),
    ));
    let forged = {
        let mut header = Header::new(Algorithm::ES256);
        header.x5c = Some(vec![
            base64::engine::general_purpose::STANDARD.encode(&signer.cert_der)
        ]);
        jsonwebtoken::encode(&header, &claims("bob", pull.clone()), &stranger.key).unwrap()
    };
    bad.push(("a trusted certificate, another key's signature", forged));
    let unsigned = {
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            b64(&claims("bob", pull.clone()))
        )
    };
    bad.push(("alg none", unsigned));
    bad.push(("garbage", "not.a.token".into()));
    for (what, token) in &bad {
        let r = get(token);
        assert_eq!(r.status, 401, "{what}");
        let challenge = r.header("www-authenticate").unwrap_or_default().to_owned();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
    }
    // Too little: pull only, asked to push.
    let r = http(
        "PUT",
        &format!("{}/v2/app/manifests/v2", reg.url()),
        &[
            ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
            (
                "Authorization",
                &format!("Bearer {}", signer.sign(&claims("bob", pull.clone()))),
            ),
        ],
        b"{}",
    );
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"insufficient_scope\""));
    // The admin API maps to registry:berth:admin.
    let r = http(
        "GET",
        &format!("{}/api/webhooks", reg.url()),
        &[(
            "Authorization",
            &format!("Bearer {}", signer.sign(&claims("bob", pull.clone()))),
        )],
        &[],
    );
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("scope=\"registry:berth:admin\""));
    let admin = signer.sign(&claims(
        "ops",
        json!([{"type": "registry", "name": "berth", "actions": ["admin"]}]),
    ));
    let r = http(
        "GET",
        &format!("{}/api/webhooks", reg.url()),
        &[("Authorization", &format!("Bearer {admin}"))],
        &[],
    );
    assert_eq!(r.status, 200);
}
