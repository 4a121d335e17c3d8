//! The container image: the Dockerfile's `runtime` stage around the static
//! binary (`scripts/static-binary.sh`), built by the real Docker daemon
//! `scripts/test.sh` starts, run with `--network host`, checked by its own
//! health check, pushed to and pulled from by the Docker CLI.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{docker, http, random_bytes};

/// The image-size target of the CI-fixture issue.
const MAX_IMAGE_BYTES: u64 = 15_000_000;

/// Removes a container and an image however the test ends.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in self.0.iter().rev() {
            let bin = std::env::var("BERTH_TEST_DOCKER").unwrap_or_else(|_| "docker".into());
            let _ = Command::new(bin).args(args).output();
        }
    }
}

fn static_binary() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(Path::new(root).join("scripts/static-binary.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "static build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn container_image_is_small_healthy_and_serves_docker_push_and_pull() {
    let root = env!("CARGO_MANIFEST_DIR");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(static_binary(), ctx.path().join("berth")).unwrap();
    std::fs::create_dir(ctx.path().join("data")).unwrap();
    let tag = format!("berth-image-test:{}", std::process::id());
    let mut cleanup = Cleanup(vec![vec!["rmi".into(), "-f".into(), tag.clone()]]);
    docker(&[
        "build",
        "-q",
        "--target",
        "runtime",
        "-t",
        &tag,
        "-f",
        &format!("{root}/Dockerfile"),
        ctx.path().to_str().unwrap(),
    ]);

    let size: u64 = docker(&["image", "inspect", "-f", "{{.Size}}", &tag])
        .parse()
        .unwrap();
    eprintln!("image size: {size} bytes ({:.1} MB)", size as f64 / 1e6);
    assert!(size < MAX_IMAGE_BYTES, "image is {size} bytes");
    let config: serde_json::Value = serde_json::from_str(&docker(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config}}",
        &tag,
    ]))
    .unwrap();
    assert_eq!(config["User"], "65534:65534", "runs as nobody");
    assert!(config["ExposedPorts"]["5000/tcp"].is_object());
    assert!(config["Volumes"]["/data"].is_object());
    assert_eq!(
        config["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/berth", "health"])
    );

    // Run it on a free port of the host network.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let container = docker(&[
        "run",
        "-d",
        "--network",
        "host",
        "--health-interval",
        "1s",
        "-e",
        &format!("BERTH_LISTEN={host}"),
        &tag,
    ]);
    cleanup
        .0
        .push(vec!["rm".into(), "-f".into(), container.clone()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = docker(&["inspect", "-f", "{{.State.Health.Status}}", &container]);
        if health == "healthy" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "container not healthy ({health}): {}",
            docker(&["logs", &container])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let logs = Command::new(std::env::var("BERTH_TEST_DOCKER").unwrap_or_else(|_| "docker".into()))
        .args(["logs", &container])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&logs.stdout).trim(),
        format!("listening on http://{host}")
    );

    // docker push to the container, remove the local copy, pull it back.
    let build = tempfile::tempdir().unwrap();
    let payload = random_bytes(3 << 20, 99);
    std::fs::write(build.path().join("payload.bin"), &payload).unwrap();
    std::fs::write(
        build.path().join("Dockerfile"),
        "FROM scratch\nCOPY payload.bin /payload.bin\nCMD [\"/none\"]\n",
    )
    .unwrap();
    let image = format!("{host}/image-test/app:v1");
    cleanup
        .0
        .push(vec!["rmi".into(), "-f".into(), image.clone()]);
    docker(&["build", "-q", "-t", &image, build.path().to_str().unwrap()]);
    docker(&["push", &image]);
    docker(&["rmi", &image]);
    docker(&["pull", "-q", &image]);
    let created = docker(&["create", &image]);
    cleanup
        .0
        .push(vec!["rm".into(), "-f".into(), created.clone()]);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("payload.bin");
    docker(&[
        "cp",
        &format!("{created}:/payload.bin"),
        dest.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&dest).unwrap() == payload,
        "pulled file differs"
    );

    let events = http("GET", &format!("http://{host}/api/events"), &[], b"").json();
    assert_eq!(events["events"][0]["action"], "push");
    assert_eq!(
        events["events"][0]["target"]["repository"],
        "image-test/app"
    );
}
