use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::*;
use support::receiver::Receiver;

/// Pushes an image of `layers` to `repo:tag`; its manifest's bytes.
fn push_layers(url: &str, repo: &str, tag: &str, layers: &[Vec<u8>]) -> Vec<u8> {
    let config = format!("{{\"tag\":\"{tag}\"}}").into_bytes();
    let cd = support::push_blob(url, repo, &config);
    let layers: Vec<Value> = layers
        .iter()
        .map(|l| {
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                   "digest": support::push_blob(url, repo, l), "size": l.len()})
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": layers,
    })
    .to_string()
    .into_bytes();
    let r = http(
        "PUT",
        &format!("{url}/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &manifest,
    );
    assert_eq!(r.status, 201);
    manifest
}

/// `berth migrate --data-dir DIR -o json` into `store`; its report.
fn migrate(store: &SharedStore, dir: &std::path::Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["migrate", "--data-dir", dir.to_str().unwrap(), "-o", "json"])
        .envs(store.env(""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The event log as `GET /api/events` lists it.
fn events(reg: &BerthProcess) -> Vec<Value> {
    get(reg, "/api/events?n=1000").json()["events"]
        .as_array()
        .unwrap()
        .clone()
}

/// A populated single-node store moves into PostgreSQL + S3 with `berth
/// migrate` (interrupted once, then resumed; run again, it copies nothing
/// new); a replica on it serves every image byte for byte, the chart, the
/// webhook with its history and the event log, and carries on from there.
#[test]
fn migrate_moves_a_single_node_store_that_replicas_then_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut single = BerthProcess::start_in(&dir);
    let rx = Receiver::start();
    create_webhook(&single, "mighook", push_hook(&rx.url));
    let mut images = Vec::new();
    for (i, (repo, tag)) in [
        ("m/one", "v1"),
        ("m/one", "v2"),
        ("m/two", "v1"),
        ("m/three/x", "latest"),
    ]
    .into_iter()
    .enumerate()
    {
        // One layer larger than an S3 multipart part (8 MiB).
        let big = if i == 0 { 12 << 20 } else { 100 << 10 };
        let layers = vec![
            support::random_bytes(big, 100 + 2 * i as u64),
            support::random_bytes(5000, 1),
        ];
        let manifest = push_layers(&single.url(), repo, tag, &layers);
        images.push((repo, tag, manifest, layers));
    }
    let gone = push_layers(
        &single.url(),
        "m/two",
        "gone",
        &[support::random_bytes(10, 77)],
    );
    let r = http(
        "DELETE",
        &format!(
            "{}/v2/m/two/manifests/{}",
            single.url(),
            support::digest(&gone)
        ),
        &[],
        &[],
    );
    assert_eq!(r.status, 202);
    let helm = support::helm::Helm::new();
    let chart = std::fs::read(helm.package("web", "0.1.0", |_| {})).unwrap();
    let r = http(
        "POST",
        &format!("{}/helm/api/apps/charts", single.url()),
        &[],
        &chart,
    );
    assert_eq!(r.status, 201);
    for _ in 0..5 {
        assert_eq!(rx.next().json()["action"], "push");
    }
    let before = (
        events(&single),
        history(&single, "mighook"),
        get(&single, "/v2/_catalog").json(),
        get(&single, "/api/webhooks").json(),
    );
    assert_eq!(before.0.len(), 7, "{:?}", before.0);
    single.terminate();

    // Killed once it has copied a first blob, then resumed; then once more.
    let store = SharedStore::new();
    let mut first = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["migrate", "--data-dir", dir.to_str().unwrap()])
        .envs(store.env(""))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let steps = BufReader::new(first.stderr.take().unwrap());
    let copied_one = steps
        .lines()
        .map(Result::unwrap)
        .any(|line| line.starts_with("blob 1 of "));
    assert!(copied_one);
    first.kill().unwrap();
    first.wait().unwrap();
    let done = migrate(&store, &dir);
    assert_eq!(done["uploads_left"], 0);
    assert_eq!(done["databases"], json!(["registry", "webhooks"]));
    let (copied, present) = (
        done["blobs_copied"].as_u64().unwrap(),
        done["blobs_present"].as_u64().unwrap(),
    );
    assert!(copied > 0 && present > 0, "not resumed: {done}");
    let blobs = copied + present;
    let again = migrate(&store, &dir);
    assert_eq!(
        (
            &again["blobs_copied"],
            &again["blobs_present"],
            &again["copied"]["events"]
        ),
        (&json!(0), &json!(blobs), &json!(0))
    );

    // Another store is refused: the target holds this one's migration.
    let mut other = BerthProcess::start();
    other.terminate();
    let refused = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["migrate", "--data-dir", other.dir().to_str().unwrap()])
        .envs(store.env(""))
        .output()
        .unwrap();
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && why.contains("holds a migration of"),
        "{why}"
    );

    let replica = store.replica("", "");
    for (repo, tag, manifest_bytes, layers) in &images {
        assert!(
            manifest(&replica, repo, tag) == *manifest_bytes,
            "{repo}:{tag}"
        );
        let m: Value = serde_json::from_slice(manifest_bytes).unwrap();
        for (layer, bytes) in m["layers"].as_array().unwrap().iter().zip(layers) {
            let digest = layer["digest"].as_str().unwrap();
            let r = get(&replica, &format!("/v2/{repo}/blobs/{digest}"));
            assert!(r.status == 200 && r.body == *bytes, "{repo}@{digest}");
        }
    }
    assert_eq!(
        get(
            &replica,
            &format!("/v2/m/two/manifests/{}", support::digest(&gone))
        )
        .status,
        404
    );
    let after = (
        events(&replica),
        history(&replica, "mighook"),
        get(&replica, "/v2/_catalog").json(),
        get(&replica, "/api/webhooks").json(),
    );
    assert_eq!(after, before);
    let r = get(&replica, "/helm/apps/charts/web-0.1.0.tgz");
    assert!(r.status == 200 && r.body == chart, "the chart differs");

    // It carries on: a new push is numbered after the old events and is
    // the only one the webhook receives.
    let (_, r) = support::push_image(&replica.url(), "m/new", "v1", 9);
    assert_eq!(r.status, 201);
    let e = rx.next().json();
    assert_eq!(e["target"]["repository"], "m/new");
    let last_old = before.0.last().unwrap()["seq"].as_u64().unwrap();
    assert!(events(&replica).last().unwrap()["seq"].as_u64().unwrap() > last_old);
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(rx.drain().is_empty(), "old events were delivered again");
}
