//! Faults an operator meets: a full disk (a real, loop-mounted ext4
//! filesystem, filled by `fallocate`), a store that fails for good, and
//! mistakes that must not pass silently. The disk tests need root (to
//! mount), as `scripts/test.sh` runs them; without it they fail, never skip.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::receiver::Receiver;
use support::{http, push_blob, random_bytes, run, BerthProcess, Resp};

/// A small ext4 filesystem mounted on a temporary directory, unmounted and
/// removed when dropped.
struct SmallDisk {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        run(
            "truncate",
            &["-s", &format!("{megabytes}M"), image.to_str().unwrap()],
        );
        // No blocks reserved for root (the tests run as root): full is full.
        run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", image.to_str().unwrap()],
        );
        run(
            "mount",
            &[
                "-o",
                "loop",
                image.to_str().unwrap(),
                mount.to_str().unwrap(),
            ],
        );
        Self { mount, _dir: dir }
    }

    fn free(&self) -> u64 {
        let out = run(
            "df",
            &["--output=avail", "-B1", self.mount.to_str().unwrap()],
        );
        out.lines().nth(1).unwrap().trim().parse().unwrap()
    }

    /// Fills the disk with a file until `left` bytes are free.
    fn fill(&self, left: u64) -> PathBuf {
        let filler = self.mount.join("filler");
        let len = self.free().saturating_sub(left);
        run(
            "fallocate",
            &["-l", &len.to_string(), filler.to_str().unwrap()],
        );
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

/// Pushes a one-layer image with a 64 KiB layer; the response to its
/// manifest PUT (blob uploads must succeed).
fn push(url: &str, repo: &str, tag: &str, seed: u64) -> (Vec<u8>, Resp) {
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let layer = random_bytes(64 << 10, seed);
    let (cd, ld) = (push_blob(url, repo, &config), push_blob(url, repo, &layer));
    put_manifest(url, repo, tag, &cd, config.len(), &ld, layer.len())
}

fn put_manifest(
    url: &str,
    repo: &str,
    tag: &str,
    config: &str,
    config_len: usize,
    layer: &str,
    layer_len: usize,
) -> (Vec<u8>, Resp) {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_len},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_len}],
    })
    .to_string()
    .into_bytes();
    let r = http(
        "PUT",
        &format!("{url}/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &manifest,
    );
    (manifest, r)
}

fn assert_storage_full(r: &Resp, what: &str) {
    assert_eq!(
        r.status,
        507,
        "{what}: {}",
        String::from_utf8_lossy(&r.body)
    );
}

/// A Berth on `dir` with this configuration file (beside the data).
fn berth_on(dir: &Path, config: &str) -> BerthProcess {
    let file = dir.join("berth.toml");
    std::fs::write(&file, config).unwrap();
    let data = dir.join("data");
    BerthProcess::start_with(&data, &["--config", file.to_str().unwrap()])
}

/// The disk fills: every kind of write is refused with 507 and a message
/// saying so, reads keep working, `/ready` stays 200 (nothing is broken);
/// once space is freed, writes work again without a restart, the webhook
/// side delivers the backlog, and nothing was lost or acknowledged twice.
#[test]
fn a_full_disk_refuses_writes_with_507_and_recovers_once_space_is_freed() {
    let disk = SmallDisk::new(64);
    let rx = Receiver::start();
    let reg = berth_on(
        &disk.mount,
        &format!(
            "min_free_bytes = 8388608\n[[webhooks]]\nname = \"diskhook\"\nserviceUri = \"{}\"\nactions = [\"push\", \"chart_push\"]\n",
            rx.url
        ),
    );
    let url = reg.url();
    let mut images = Vec::new();
    for i in 0..3 {
        let (m, r) = push(&url, "full/app", &format!("v{i}"), 10 + i);
        assert_eq!(r.status, 201);
        images.push(m);
    }
    for _ in 0..3 {
        assert_eq!(rx.next().json()["action"], "push");
    }
    // Quiet for the background flushes, then the disk fills (not by Berth).
    std::thread::sleep(Duration::from_secs(2));
    let filler = disk.fill(100 << 10);

    let blob = random_bytes(1000, 99);
    let d = support::digest(&blob);
    let r = http(
        "POST",
        &format!("{url}/v2/full/app/blobs/uploads/?digest={d}"),
        &[],
        &blob,
    );
    assert_storage_full(&r, "monolithic blob upload");
    assert_eq!(r.json()["errors"][0]["code"], "INSUFFICIENT_STORAGE");
    let message = r.json()["errors"][0]["detail"].as_str().unwrap().to_owned();
    assert!(
        message.contains("free") && message.contains("min_free_bytes"),
        "{message}"
    );
    let r = http(
        "POST",
        &format!("{url}/v2/full/app/blobs/uploads/"),
        &[],
        &[],
    );
    assert_storage_full(&r, "upload start");
    let m: Value = serde_json::from_slice(&images[0]).unwrap();
    let (cd, ld) = (
        m["config"]["digest"].as_str().unwrap(),
        m["layers"][0]["digest"].as_str().unwrap(),
    );
    let (_, r) = put_manifest(
        &url,
        "full/app",
        "again",
        cd,
        m["config"]["size"].as_u64().unwrap() as usize,
        ld,
        64 << 10,
    );
    assert_storage_full(&r, "manifest PUT");
    let helm = support::helm::Helm::new();
    let chart = std::fs::read(helm.package("web", "0.1.0", |_| {})).unwrap();
    let r = http("POST", &format!("{url}/helm/api/apps/charts"), &[], &chart);
    assert_storage_full(&r, "chart upload");
    let r = http(
        "PUT",
        &format!("{url}/api/webhooks/another1"),
        &[("Content-Type", "application/json")],
        json!({"serviceUri": rx.url, "actions": ["push"]})
            .to_string()
            .as_bytes(),
    );
    assert_storage_full(&r, "webhook create");
    assert_eq!(r.json()["error"]["code"], "INSUFFICIENT_STORAGE");

    // Reads keep working; nothing is broken, so /ready stays 200.
    for (i, image) in images.iter().enumerate() {
        let r = http(
            "GET",
            &format!("{url}/v2/full/app/manifests/v{i}"),
            &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
            &[],
        );
        assert!(r.status == 200 && r.body == *image);
    }
    assert_eq!(http("GET", &format!("{url}/ready"), &[], &[]).status, 200);
    let metrics = String::from_utf8(http("GET", &format!("{url}/metrics"), &[], &[]).body).unwrap();
    assert!(metrics.contains("status=\"507\""), "{metrics}");
    let free: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("berth_storage_free_bytes "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(free < 8 << 20, "{free}");

    // Space comes back: everything works again, without a restart.
    std::fs::remove_file(filler).unwrap();
    let (_, r) = push(&url, "full/app", "after", 20);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = http("POST", &format!("{url}/helm/api/apps/charts"), &[], &chart);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = http(
        "PUT",
        &format!("{url}/api/webhooks/another1"),
        &[("Content-Type", "application/json")],
        json!({"serviceUri": rx.url, "actions": ["push"]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 201);
    let mut got: Vec<Value> = (0..2).map(|_| rx.next().json()).collect();
    got.sort_by_key(|e| e["action"].as_str().unwrap().to_owned());
    assert_eq!(got[0]["action"], "chart_push");
    assert_eq!(got[1]["target"]["tag"], "after");
    std::thread::sleep(Duration::from_secs(1));
    assert!(rx.drain().is_empty(), "delivered twice");
    let events = http("GET", &format!("{url}/api/events"), &[], &[]).json();
    let actions: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["push", "push", "push", "push", "chart_push"],
        "{events}"
    );
    let fsck = http("GET", &format!("{url}/api/fsck"), &[], &[]).json();
    assert_eq!(fsck["problems"], json!([]), "{fsck}");
}

/// With no margin (`min_free_bytes = 0`) the embedded database meets the
/// full disk itself, and sled cannot recover from that in-process: `/ready`
/// answers 503 with the cause and Berth drains and exits non-zero, rather
/// than answering 500 forever behind a 200 probe. After a restart with
/// space, every acknowledged push is there and fsck is clean.
#[test]
fn a_store_that_fails_for_good_says_so_and_exits() {
    let disk = SmallDisk::new(64);
    let file = disk.mount.join("berth.toml");
    std::fs::write(&file, "min_free_bytes = 0\n").unwrap();
    let data = disk.mount.join("data");
    let flags = ["--config", file.to_str().unwrap()];
    let mut reg = BerthProcess::start_with(&data, &flags);
    let url = reg.url();
    let config = push_blob(&url, "fail/app", b"{}");
    let layer = random_bytes(1000, 5);
    let ld = push_blob(&url, "fail/app", &layer);
    std::thread::sleep(Duration::from_secs(2));
    let filler = disk.fill(64 << 10);

    // Pushes until the database fails: each is acknowledged or refused.
    let mut acked = Vec::new();
    let mut failed = None;
    let mut refused = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..5000 {
        let (m, r) = put_manifest(
            &url,
            "fail/app",
            &format!("t{i}"),
            &config,
            2,
            &ld,
            layer.len(),
        );
        match r.status {
            201 => acked.push((format!("t{i}"), m)),
            507 | 500 => {
                *refused.entry(r.status).or_default() += 1;
                let ready = http("GET", &format!("{url}/ready"), &[], &[]);
                if ready.status == 503 {
                    failed = Some(ready.json());
                    break;
                }
            }
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    let ready = failed.unwrap_or_else(|| {
        panic!(
            "the database never failed: {} acknowledged, refused {refused:?}",
            acked.len()
        )
    });
    let cause = ready["error"].as_str().unwrap();
    assert!(cause.contains("needs a restart"), "{cause}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = reg.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "Berth kept running on a failed store"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "{status}");

    std::fs::remove_file(filler).unwrap();
    let reg = reg.restart();
    let url = reg.url();
    for (tag, bytes) in &acked {
        let r = http(
            "GET",
            &format!("{url}/v2/fail/app/manifests/{tag}"),
            &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
            &[],
        );
        assert!(r.status == 200 && r.body == *bytes, "{tag} lost");
    }
    let fsck = http("GET", &format!("{url}/api/fsck"), &[], &[]).json();
    assert_eq!(fsck["problems"], json!([]), "{fsck}");
}

/// `berth` with `args` and extra environment; its exit status and stderr.
fn berth(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Mistakes are caught before anything starts, each in one line that says
/// what and where.
#[test]
fn operator_mistakes_are_errors_that_say_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let serve = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        berth(&args, env)
    };
    let config = |text: &str| {
        let path = tmp.path().join("berth.toml");
        std::fs::write(&path, text).unwrap();
        berth(&["config", "--config", path.to_str().unwrap()], &[])
    };
    let cases: Vec<((bool, String), &[&str])> = vec![
        // The OS error and the path, in one line.
        (
            serve(&["--data-dir", file.to_str().unwrap()], &[]),
            &["a-file/meta", "Not a directory"],
        ),
        (
            serve(&[], &[("BERTH_LISTN", "0.0.0.0:1")]),
            &["BERTH_LISTN", "did you mean BERTH_LISTEN?"],
        ),
        (
            serve(&[], &[("BERTH_DELIVERY_TIMEOT", "5s")]),
            &["did you mean BERTH_DELIVERY_TIMEOUT?"],
        ),
        (config("listen = \"nope\"\n"), &["listen \"nope\""]),
        (
            config("listn = \"x\"\n"),
            &["did you mean `listen`?", "delivery", "webhooks"],
        ),
        (
            config("gc_grace = \"soon\"\n"),
            &["\"soon\" is not a duration", "gc_grace"],
        ),
        (
            config("[auth]\nanonymous_pull = true\n"),
            &["need auth.htpasswd"],
        ),
        (
            config(&format!(
                "[auth]\nhtpasswd = \"{}\"\nroles = {{ alcie = \"admin\" }}\n",
                {
                    let h = tmp.path().join("htpasswd");
                    std::fs::write(&h, support::htpasswd("alice", "pw")).unwrap();
                    h.display().to_string()
                }
            )),
            &["\"alcie\"", "not in"],
        ),
        (
            berth(&["fsck", "--data-dir", "/no/such/dir"], &[]),
            &["/no/such/dir holds no Berth store"],
        ),
    ];
    for ((ok, stderr), expected) in cases {
        assert!(!ok, "accepted; stderr: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
        for e in expected {
            assert!(stderr.contains(e), "{e:?} not in {stderr}");
        }
    }
    assert!(
        !Path::new("/no/such/dir").exists(),
        "fsck created the directory"
    );
    // The command line's own variables are not settings, and are fine.
    let (ok, stderr) = berth(
        &["config"],
        &[("BERTH_REGISTRY", "http://x:1"), ("BERTH_USERNAME", "u")],
    );
    assert!(ok, "{stderr}");
}
