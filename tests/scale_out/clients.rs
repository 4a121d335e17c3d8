use std::path::Path;

use super::*;
use support::helm::Helm;
use support::{docker, run, run_in};

/// docker pushes a multi-layer image through one replica and pulls it
/// through the other; the files come back byte for byte.
#[test]
fn docker_pushes_through_one_replica_and_pulls_through_another() {
    let store = SharedStore::new();
    let (a, b) = (store.replica("", ""), store.replica("", ""));
    let ctx = tempfile::tempdir().unwrap();
    let mut dockerfile = String::from("FROM scratch\n");
    // One layer over the 8 MiB a multipart part holds, one under.
    let layers = [
        support::random_bytes(20 << 20, 41),
        support::random_bytes(300 << 10, 42),
    ];
    for (i, data) in layers.iter().enumerate() {
        std::fs::write(ctx.path().join(format!("layer{i}.bin")), data).unwrap();
        dockerfile.push_str(&format!("COPY layer{i}.bin /data/\n"));
    }
    dockerfile.push_str("CMD [\"/dummy\"]\n");
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    let pushed = format!("{}/so/docker:v1", a.host);
    let pulled = format!("{}/so/docker:v1", b.host);
    docker(&["build", "-q", "-t", &pushed, ctx.path().to_str().unwrap()]);
    docker(&["push", &pushed]);
    docker(&["rmi", &pushed]);

    docker(&["pull", "-q", &pulled]);
    let container = docker(&["create", &pulled]);
    let out = tempfile::tempdir().unwrap();
    docker(&[
        "cp",
        &format!("{container}:/data"),
        out.path().to_str().unwrap(),
    ]);
    docker(&["rm", &container]);
    docker(&["rmi", &pulled]);
    for (i, data) in layers.iter().enumerate() {
        let back = std::fs::read(out.path().join(format!("data/layer{i}.bin"))).unwrap();
        assert!(back == *data, "layer {i} differs after the round trip");
    }
}

/// skopeo and oras push through one replica; the copy back and the
/// artifact's referrers come through the other.
#[test]
fn skopeo_and_oras_push_through_one_replica_and_read_through_another() {
    let store = SharedStore::new();
    let (a, b) = (store.replica("", ""), store.replica("", ""));
    let tmp = tempfile::tempdir().unwrap();
    let (src, back) = (tmp.path().join("src"), tmp.path().join("back"));
    let md = support::oci_layout(&src, "v1");
    run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", src.display()),
            &format!("docker://{}/so/skopeo:v1", a.host),
        ],
    );
    let inspect: Value = serde_json::from_str(&run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/so/skopeo:v1", b.host),
        ],
    ))
    .unwrap();
    assert_eq!(inspect["Digest"], md.as_str());
    run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/so/skopeo:v1", b.host),
            &format!("oci:{}:v1", back.display()),
        ],
    );
    let blobs = |dir: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| std::fs::read(dir.join("blobs/sha256").join(n)).unwrap())
            .collect::<Vec<_>>()
    };
    assert!(blobs(&src) == blobs(&back), "skopeo's copy back differs");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oras_roundtrip.py");
    let out = run_in(
        None,
        "python3",
        &[script.to_str().unwrap(), &a.host, &b.host],
    );
    let summary: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["referrers"][0]["digest"], summary["b"]);
}

/// helm pushes a chart to the OCI registry and uploads one to the chart
/// repository through one replica; it pulls both, byte for byte, through
/// the other, whose index.yaml is the same.
#[test]
fn helm_pushes_through_one_replica_and_pulls_through_another() {
    let store = SharedStore::new();
    let (a, b) = (store.replica("", ""), store.replica("", ""));
    let helm = Helm::new();
    let chart = helm.package("web", "1.2.3", |_| {});
    let tgz = std::fs::read(&chart).unwrap();
    let oci = |reg: &BerthProcess| format!("oci://{}/charts", reg.host);
    helm.run(&["push", chart.to_str().unwrap(), &oci(&a), "--plain-http"]);
    let pulled = helm.path("pulled");
    std::fs::create_dir_all(&pulled).unwrap();
    helm.run(&[
        "pull",
        &format!("{}/web", oci(&b)),
        "--version",
        "1.2.3",
        "--plain-http",
        "-d",
        pulled.to_str().unwrap(),
    ]);
    assert!(std::fs::read(pulled.join("web-1.2.3.tgz")).unwrap() == tgz);

    let r = http(
        "POST",
        &format!("{}/helm/api/apps/charts", a.url()),
        &[],
        &tgz,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let index = |reg: &BerthProcess| {
        let text = String::from_utf8(get(reg, "/helm/apps/index.yaml").body).unwrap();
        text.lines()
            .filter(|l| !l.trim_start().starts_with("generated:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(index(&b).contains("version: \"1.2.3\""), "{}", index(&b));
    assert_eq!(index(&a), index(&b));
    helm.run(&["repo", "add", "apps", &format!("{}/helm/apps", b.url())]);
    let from_repo = helm.path("from-repo");
    std::fs::create_dir_all(&from_repo).unwrap();
    helm.run(&[
        "pull",
        "apps/web",
        "--version",
        "1.2.3",
        "-d",
        from_repo.to_str().unwrap(),
    ]);
    assert!(std::fs::read(from_repo.join("web-1.2.3.tgz")).unwrap() == tgz);

    // A delete through one replica leaves the other's index at once.
    let r = http(
        "DELETE",
        &format!("{}/helm/api/apps/charts/web/1.2.3", b.url()),
        &[],
        &[],
    );
    assert_eq!(r.status, 200);
    assert!(!index(&a).contains("1.2.3"), "{}", index(&a));
}
