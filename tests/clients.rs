//! Round trips with the real clients people use: the Docker CLI with a real
//! daemon, podman, skopeo, oras (oras-py) and the `oci-client` crate. Each
//! pushes, pulls back and compares the content byte for byte.
//!
//! The tools come from `scripts/test.sh` (which installs them and starts
//! dockerd); a missing tool fails the test, it is never skipped.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::path::Path;

use support::{docker, http, random_bytes, run, run_in, BerthProcess};

#[test]
fn docker_pushes_and_pulls_a_multi_layer_image() {
    let reg = BerthProcess::start();
    let events = support::receiver::subscribe_all(&reg.url(), "dockerhook");
    let ctx = tempfile::tempdir().unwrap();
    let mut dockerfile = String::from("FROM scratch\n");
    let layers: Vec<Vec<u8>> = (0..4)
        .map(|i| random_bytes(26 * 1024 * 1024, 100 + i))
        .collect();
    for (i, data) in layers.iter().enumerate() {
        std::fs::write(ctx.path().join(format!("layer{i}.bin")), data).unwrap();
        dockerfile.push_str(&format!("COPY layer{i}.bin /data/\n"));
    }
    dockerfile.push_str("CMD [\"/dummy\"]\n");
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    let image = format!("{}/dk/big:v1", reg.host);
    let copy = format!("{}/dk/copy:v1", reg.host);

    docker(&["build", "-q", "-t", &image, ctx.path().to_str().unwrap()]);
    docker(&["push", &image]);
    docker(&["tag", &image, &copy]);
    let second = docker(&["push", &copy]);
    let big = events.next().json();
    support::receiver::assert_push_event(&big, &reg.host, "dk/big", "v1", "docker/");
    support::receiver::assert_push_event(
        &events.next().json(),
        &reg.host,
        "dk/copy",
        "v1",
        "docker/",
    );
    assert!(
        second.contains("Mounted from dk/big"),
        "expected cross-repository mounts: {second}"
    );
    docker(&["rmi", &image, &copy]);

    let manifest = http(
        "GET",
        &format!("{}/v2/dk/big/manifests/v1", reg.url()),
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        &[],
    );
    assert_eq!(
        manifest.header("content-type"),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    let sizes: u64 = manifest.json()["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    assert!(sizes >= 100 * 1024 * 1024, "image is {sizes} bytes");

    docker(&["pull", "-q", &copy]);
    let container = docker(&["create", &copy]);
    let out = tempfile::tempdir().unwrap();
    docker(&[
        "cp",
        &format!("{container}:/data"),
        out.path().to_str().unwrap(),
    ]);
    docker(&["rm", &container]);
    docker(&["rmi", &copy]);
    for (i, data) in layers.iter().enumerate() {
        let pulled = std::fs::read(out.path().join(format!("data/layer{i}.bin"))).unwrap();
        assert!(pulled == *data, "layer {i} differs after the round trip");
    }
}

#[test]
fn podman_pushes_oci_and_docker_formats_and_pulls_back() {
    let reg = BerthProcess::start();
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let (store, runroot) = (format!("{r}/root"), format!("{r}/runroot"));
    let base = [
        "--root",
        &store,
        "--runroot",
        &runroot,
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
    ];
    let podman = |args: &[&str]| run("podman", &[&base[..], args].concat());
    let ctx = root.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    let (a, b) = (random_bytes(3 << 20, 21), random_bytes(1 << 20, 22));
    std::fs::write(ctx.join("a.bin"), &a).unwrap();
    std::fs::write(ctx.join("b.bin"), &b).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY a.bin /data/a.bin\nCOPY b.bin /data/b.bin\n",
    )
    .unwrap();
    podman(&[
        "build",
        "-q",
        "-t",
        "localhost/pm/built:v1",
        "-f",
        ctx.join("Containerfile").to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);

    let oci = format!("{}/pm/oci:v1", reg.host);
    let v2s2 = format!("{}/pm/v2s2:v1", reg.host);
    podman(&[
        "push",
        "-q",
        "--tls-verify=false",
        "localhost/pm/built:v1",
        &format!("docker://{oci}"),
    ]);
    podman(&[
        "push",
        "-q",
        "--tls-verify=false",
        "--format",
        "v2s2",
        "localhost/pm/built:v1",
        &format!("docker://{v2s2}"),
    ]);
    let types: Vec<_> = ["oci", "v2s2"]
        .iter()
        .map(|repo| {
            http(
                "GET",
                &format!("{}/v2/pm/{repo}/manifests/v1", reg.url()),
                &[],
                &[],
            )
            .header("content-type")
            .unwrap_or_default()
            .to_owned()
        })
        .collect();
    assert_eq!(
        types,
        [
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json"
        ]
    );

    for image in [&oci, &v2s2] {
        podman(&["rmi", "-a", "-f"]);
        podman(&["pull", "-q", "--tls-verify=false", image]);
        let mnt = podman(&["image", "mount", image]);
        let mnt = Path::new(mnt.trim());
        assert!(
            std::fs::read(mnt.join("data/a.bin")).unwrap() == a,
            "{image}: a.bin differs"
        );
        assert!(
            std::fs::read(mnt.join("data/b.bin")).unwrap() == b,
            "{image}: b.bin differs"
        );
        podman(&["image", "unmount", image]);
    }
    podman(&["rmi", "-a", "-f"]);
}

#[test]
fn skopeo_copies_both_ways_inspects_lists_and_deletes() {
    let reg = BerthProcess::start();
    let events = support::receiver::subscribe_all(&reg.url(), "skopeohook");
    let tmp = tempfile::tempdir().unwrap();
    let (src, back) = (tmp.path().join("src"), tmp.path().join("back"));
    let md = support::oci_layout(&src, "v1");
    let remote = format!("docker://{}/sk/img", reg.host);

    run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", src.display()),
            &format!("{remote}:v1"),
        ],
    );
    run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", src.display()),
            &format!("{remote}:v2"),
        ],
    );
    for tag in ["v1", "v2"] {
        support::receiver::assert_push_event(
            &events.next().json(),
            &reg.host,
            "sk/img",
            tag,
            "skopeo/",
        );
    }
    let inspect: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("{remote}:v1")],
    ))
    .unwrap();
    assert_eq!(
        inspect["Digest"],
        md.as_str(),
        "skopeo copies the manifest unchanged"
    );
    let tags: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &["list-tags", "--tls-verify=false", &remote],
    ))
    .unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["v1", "v2"]));

    run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("{remote}:v1"),
            &format!("oci:{}:v1", back.display()),
        ],
    );
    let names = |dir: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(dir.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&src), names(&back));
    for name in names(&src) {
        let (a, b) = (
            src.join("blobs/sha256").join(&name),
            back.join("blobs/sha256").join(&name),
        );
        assert!(
            std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
            "blob {name:?} differs"
        );
    }

    // skopeo deletes by digest: the manifest and every tag on it go.
    run(
        "skopeo",
        &["delete", "--tls-verify=false", &format!("{remote}:v1")],
    );
    let deleted = events.next().json();
    assert_eq!(deleted["action"], "delete");
    assert_eq!(deleted["target"]["digest"], md.as_str());
    assert_eq!(deleted["target"]["repository"], "sk/img");
    assert_eq!(deleted["request"]["method"], "DELETE");
    for tag in ["v1", "v2"] {
        assert_eq!(
            http(
                "GET",
                &format!("{}/v2/sk/img/manifests/{tag}", reg.url()),
                &[],
                &[]
            )
            .status,
            404
        );
    }
}

#[test]
fn oras_pushes_an_artifact_with_a_subject_and_finds_its_referrers() {
    let reg = BerthProcess::start();
    let events = support::receiver::subscribe_all(&reg.url(), "orashook");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oras_roundtrip.py");
    let out = run_in(None, "python3", &[script.to_str().unwrap(), &reg.host]);
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    for tag in ["v1", "sbom"] {
        support::receiver::assert_push_event(
            &events.next().json(),
            &reg.host,
            "oras/artifact",
            tag,
            "python-requests/",
        );
    }
    let referrers = summary["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 1);
    assert_eq!(referrers[0]["digest"], summary["b"]);
    assert_eq!(
        referrers[0]["artifactType"],
        "application/vnd.berth.test.sbom"
    );
    assert_eq!(referrers[0]["annotations"]["org.example.note"], "sbom of A");
    let b = http(
        "GET",
        &format!(
            "{}/v2/oras/artifact/manifests/{}",
            reg.url(),
            summary["b"].as_str().unwrap()
        ),
        &[],
        &[],
    );
    assert_eq!(referrers[0]["size"], b.body.len());
}

#[test]
fn oci_client_crate_round_trips_an_image() {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    use oci_client::{secrets::RegistryAuth, Client, Reference};

    let reg = BerthProcess::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::Http,
            ..Default::default()
        });
        let reference: Reference = format!("{}/crate/img:v1", reg.host).parse().unwrap();
        let layers = vec![
            ImageLayer::oci_v1(random_bytes(5 << 20, 41), None),
            ImageLayer::oci_v1(random_bytes(1000, 42), None),
        ];
        let config = Config::oci_v1(br#"{"architecture":"amd64","os":"linux"}"#.to_vec(), None);
        let pushed = client
            .push(
                &reference,
                &layers,
                config.clone(),
                &RegistryAuth::Anonymous,
                None,
            )
            .await
            .unwrap();
        assert!(pushed.manifest_url.contains("/v2/crate/img/manifests/"));

        let fresh = Client::new(ClientConfig {
            protocol: ClientProtocol::Http,
            ..Default::default()
        });
        let image = fresh
            .pull(
                &reference,
                &RegistryAuth::Anonymous,
                vec![oci_client::manifest::IMAGE_LAYER_MEDIA_TYPE],
            )
            .await
            .unwrap();
        // oci-client fetches layers concurrently and returns them in
        // completion order: compare them as a set of contents.
        let mut got: Vec<_> = image
            .layers
            .iter()
            .map(|l| support::digest(&l.data))
            .collect();
        let mut sent: Vec<_> = layers.iter().map(|l| support::digest(&l.data)).collect();
        got.sort();
        sent.sort();
        assert_eq!(got, sent, "pulled layers differ from the pushed ones");
        assert_eq!(image.config.data, config.data);
        let tags = fresh
            .list_tags(&reference, &RegistryAuth::Anonymous, None, None)
            .await
            .unwrap();
        assert_eq!(tags.tags, ["v1"]);
    });
}
