//! Registry policies end to end: retention over hundreds of tags (the dry
//! run is what the run then removes, `delete` events reach a webhook, gc
//! frees the blobs afterwards, pushes racing the run survive), immutable
//! tags with docker and skopeo, and read-only mode with docker, toggled at
//! run time. The tools come from `scripts/test.sh`; a missing one fails.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use support::receiver::Receiver;
use support::{docker, http, push_blob, random_bytes, BerthProcess, Resp};

fn berth(reg: &BerthProcess, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env("BERTH_REGISTRY", reg.url())
        .output()
        .unwrap()
}

fn api(reg: &BerthProcess, method: &str, path: &str, body: Option<Value>) -> Resp {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    http(
        method,
        &format!("{}{path}", reg.url()),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// Pushes `manifest` (JSON) to `repo:reference`; the response.
fn put(reg: &BerthProcess, repo: &str, reference: &str, media: &str, manifest: &Value) -> Resp {
    http(
        "PUT",
        &format!("{}/v2/{repo}/manifests/{reference}", reg.url()),
        &[("Content-Type", media)],
        manifest.to_string().as_bytes(),
    )
}

const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

/// An image manifest over a shared config and a layer of its own.
fn image(reg: &BerthProcess, repo: &str, seed: u64) -> Value {
    let config = push_blob(&reg.url(), repo, b"{}");
    let layer = random_bytes(512, 2 * seed + 1);
    let ld = push_blob(&reg.url(), repo, &layer);
    json!({
        "schemaVersion": 2, "mediaType": IMAGE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": 512}],
    })
}

fn digest_of(v: &Value) -> String {
    support::digest(v.to_string().as_bytes())
}

/// Retention over 4 repositories of 60 tags each (plus releases, an index
/// and a referrer): the dry run lists exactly what the run removes, each
/// removed manifest's `delete` event reaches the webhook, what a kept
/// manifest needs stays, gc then frees the removed layers, and pushes made
/// while the run goes on survive it.
#[test]
fn retention_removes_what_the_rules_say_and_nothing_a_client_needs() {
    let rx = Receiver::start();
    let reg = BerthProcess::with_config(&format!(
        r#"gc_grace = "0s"
retention_interval = "0s"
[[retention]]
repositories = ["ci/**"]
keep_tags = ["^release-"]
keep_most_recent = 5
untagged_max_age = "0s"
[[webhooks]]
name = "deletes1"
serviceUri = "{}"
actions = ["delete"]
"#,
        rx.url
    ));
    let mut layers_of_removed = BTreeSet::new();
    let mut seed = 0;
    for repo in ["ci/a", "ci/b", "ci/team/c", "keep/d"] {
        for i in 0..60 {
            seed += 1;
            let m = image(&reg, repo, seed);
            assert_eq!(
                put(&reg, repo, &format!("build-{i:03}"), IMAGE, &m).status,
                201
            );
            if repo.starts_with("ci/") && i < 55 {
                layers_of_removed.insert(m["layers"][0]["digest"].as_str().unwrap().to_owned());
            }
        }
        seed += 1;
        let release = image(&reg, repo, seed);
        assert_eq!(put(&reg, repo, "release-1", IMAGE, &release).status, 201);
    }
    // An index (kept by name) with an untagged child, and an untagged
    // referrer of a kept manifest: both stay.
    let child = image(&reg, "ci/a", 1000);
    assert_eq!(
        put(&reg, "ci/a", &digest_of(&child), IMAGE, &child).status,
        201
    );
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": IMAGE, "digest": digest_of(&child), "size": child.to_string().len()}]});
    let r = put(
        &reg,
        "ci/a",
        "release-multiarch",
        "application/vnd.oci.image.index.v1+json",
        &index,
    );
    assert_eq!(r.status, 201);
    let release = http(
        "GET",
        &format!("{}/v2/ci/a/manifests/release-1", reg.url()),
        &[("Accept", IMAGE)],
        &[],
    );
    let mut referrer = image(&reg, "ci/a", 1001);
    referrer["subject"] = json!({"mediaType": IMAGE, "digest": support::digest(&release.body), "size": release.body.len()});
    let referrer_digest = digest_of(&referrer);
    assert_eq!(
        put(&reg, "ci/a", &referrer_digest, IMAGE, &referrer).status,
        201
    );

    let dry = berth(&reg, &["retention", "--dry-run", "-o", "json"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let dry: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(dry["repositories"], 3);

    // Pushes race the run.
    let stop = Arc::new(AtomicBool::new(false));
    let raced: Arc<Mutex<Vec<String>>> = Arc::default();
    let racer = {
        let (url, stop, raced) = (reg.url(), stop.clone(), raced.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let tag = format!("race-{i}");
                let (_, r) = support::push_image(&url, "ci/b", &tag, 5000 + 2 * i);
                assert_eq!(r.status, 201);
                raced.lock().unwrap().push(tag);
                i += 1;
            }
        })
    };
    let done = berth(&reg, &["retention", "-o", "json"]);
    stop.store(true, Ordering::Relaxed);
    racer.join().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let done: Value = serde_json::from_slice(&done.stdout).unwrap();
    let set = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    let removed_manifests = set(&done["manifests_removed"]);
    let dry_manifests = set(&dry["manifests_removed"]);
    // The racing pushes may push tags the dry run did not see, never more.
    assert!(removed_manifests.is_subset(&dry_manifests));
    assert_eq!(set(&done["tags_removed"]).len(), 3 * 55, "{done}");
    assert_eq!(removed_manifests.len(), 3 * 55);
    assert_eq!(done["skipped"], 0);

    for repo in ["ci/a", "ci/team/c"] {
        let tags = http(
            "GET",
            &format!("{}/v2/{repo}/tags/list", reg.url()),
            &[],
            &[],
        )
        .json();
        let mut want: Vec<String> = (55..60).map(|i| format!("build-{i:03}")).collect();
        want.push("release-1".into());
        if repo == "ci/a" {
            want.push("release-multiarch".into());
        }
        want.sort();
        assert_eq!(tags["tags"], json!(want), "{repo}");
    }
    let tags = http(
        "GET",
        &format!("{}/v2/keep/d/tags/list", reg.url()),
        &[],
        &[],
    )
    .json();
    assert_eq!(
        tags["tags"].as_array().unwrap().len(),
        61,
        "a repository no rule matches"
    );
    for (what, digest) in [
        ("index child", digest_of(&child)),
        ("referrer", referrer_digest),
    ] {
        let r = http(
            "GET",
            &format!("{}/v2/ci/a/manifests/{digest}", reg.url()),
            &[("Accept", IMAGE)],
            &[],
        );
        assert_eq!(r.status, 200, "{what} removed");
    }
    for tag in raced.lock().unwrap().iter() {
        let r = http(
            "GET",
            &format!("{}/v2/ci/b/manifests/{tag}", reg.url()),
            &[("Accept", IMAGE)],
            &[],
        );
        assert_eq!(r.status, 200, "the racing push {tag} was removed");
    }

    // Each removed manifest raised one delete, as a client's DELETE does.
    let mut deleted = BTreeSet::new();
    while deleted.len() < removed_manifests.len() {
        let e = rx.next().json();
        assert_eq!(e["action"], "delete");
        assert_eq!(e["request"]["method"], "DELETE");
        deleted.insert(format!(
            "{}@{}",
            e["target"]["repository"].as_str().unwrap(),
            e["target"]["digest"].as_str().unwrap()
        ));
    }
    assert_eq!(deleted, removed_manifests);

    // gc frees what only the removed manifests referenced.
    let gc = api(&reg, "POST", "/api/gc", None).json();
    let freed = set(&gc["deleted_blobs"]);
    assert!(layers_of_removed.is_subset(&freed), "{gc}");
}

/// A custom docker image at `tag` (FROM scratch, one file), built.
fn build(tag: &str, content: &str) {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("f.txt"), content).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY f.txt /\nCMD [\"/x\"]\n",
    )
    .unwrap();
    docker(&["build", "-q", "-t", tag, ctx.path().to_str().unwrap()]);
}

/// `docker args`, expected to fail; its combined output.
fn docker_fails(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success(), "docker {args:?} succeeded");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Immutable tags: docker and skopeo cannot move `v1` (each says why),
/// the same image re-pushed is fine, and the tag cannot be deleted; a rule
/// added through the API applies at once.
#[test]
fn immutable_tags_hold_against_docker_skopeo_and_deletes() {
    let reg =
        BerthProcess::with_config("[[immutable]]\nrepositories = [\"prod/**\"]\ntags = [\"v*\"]\n");
    let (one, two) = (
        format!("{}/prod/app:v1", reg.host),
        format!("{}/prod/app:v1-other", reg.host),
    );
    build(&one, "one");
    build(&two, "two");
    docker(&["push", &one]);
    docker(&["tag", &two, &one]);
    let refused = docker_fails(&["push", &one]);
    assert!(refused.contains("immutable"), "{refused}");
    build(&one, "one");
    docker(&["push", &one]);

    let tmp = tempfile::tempdir().unwrap();
    support::oci_layout(tmp.path(), "x");
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:x", tmp.path().display()),
            &format!("docker://{}/prod/app:v1", reg.host),
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("immutable"),
        "{said}"
    );
    let r = http(
        "DELETE",
        &format!("{}/v2/prod/app/manifests/v1", reg.url()),
        &[],
        &[],
    );
    assert_eq!((r.status, r.error_code()), (403, "DENIED".into()));
    assert!(String::from_utf8_lossy(&r.body).contains("immutable"));

    // A rule through the API: stable/* tags of dev/** become immutable.
    let rules = json!({"immutable": [{"repositories": ["dev/**"], "tags": ["stable"]}]});
    assert_eq!(api(&reg, "PUT", "/api/policies", Some(rules)).status, 200);
    let shown = api(&reg, "GET", "/api/policies", None).json();
    assert_eq!(shown["immutable"].as_array().unwrap().len(), 2, "{shown}");
    assert_eq!(shown["immutable"][1]["source"], "api");
    let (_, r) = support::push_image(&reg.url(), "dev/x", "stable", 1);
    assert_eq!(r.status, 201);
    let (_, r) = support::push_image(&reg.url(), "dev/x", "stable", 2);
    assert_eq!(r.status, 403);
    let bad = api(
        &reg,
        "PUT",
        "/api/policies",
        Some(json!({"retention": [{"repositories": ["a"], "keep_tags": ["("]}]})),
    );
    assert_eq!(bad.status, 400, "{}", String::from_utf8_lossy(&bad.body));
}

/// Read-only mode, switched at run time: docker push fails cleanly, docker
/// pull works, /ready and /metrics say so; switched off, pushes work again.
#[test]
fn read_only_mode_stops_pushes_and_lets_pulls_through() {
    let reg = BerthProcess::start();
    let image = format!("{}/ro/app:v1", reg.host);
    build(&image, "ro");
    docker(&["push", &image]);

    let on = berth(&reg, &["maintenance", "--read-only", "on"]);
    assert!(on.status.success() && String::from_utf8_lossy(&on.stdout).contains("yes (api)"));
    build(&format!("{}/ro/app:v2", reg.host), "ro2");
    let refused = docker_fails(&["push", &format!("{}/ro/app:v2", reg.host)]);
    assert!(refused.contains("read-only"), "{refused}");
    docker(&["rmi", &image]);
    docker(&["pull", "-q", &image]);
    let ready = http("GET", &format!("{}/ready", reg.url()), &[], &[]).json();
    assert_eq!(ready, json!({"ready": true, "readOnly": true}));
    let metrics =
        String::from_utf8(http("GET", &format!("{}/metrics", reg.url()), &[], &[]).body).unwrap();
    assert!(metrics.contains("berth_read_only 1"));
    let r = http(
        "DELETE",
        &format!("{}/v2/ro/app/manifests/v1", reg.url()),
        &[],
        &[],
    );
    assert_eq!((r.status, r.error_code()), (405, "UNSUPPORTED".into()));
    let r = api(
        &reg,
        "PUT",
        "/api/webhooks/hook01",
        Some(json!({"serviceUri": "http://127.0.0.1:9/x", "actions": ["push"]})),
    );
    assert_eq!(r.status, 405, "webhook changes too");

    let off = berth(&reg, &["maintenance", "--read-only", "off"]);
    assert!(off.status.success());
    docker(&["push", &format!("{}/ro/app:v2", reg.host)]);
}
