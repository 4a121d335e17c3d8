//! HTTPS with `--tls-cert`/`--tls-key`: a private CA made with openssl,
//! Berth on a non-loopback address (docker treats 127.0.0.0/8 as insecure
//! and would skip verification there), and real clients that verify:
//! curl, docker (the CA in `/etc/docker/certs.d`), skopeo
//! (`--dest-cert-dir`) and berth's own client (`SSL_CERT_FILE`). Each
//! first fails without the CA.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{docker, random_bytes, run, BerthProcess};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (scripts/setup-test-env.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a server certificate it signed for `ip`.
fn certificates(dir: &Path, ip: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=Berth test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &format!("/CN={ip}"),
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        format!("subjectAltName=IP:{ip},IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
}

/// This machine's first non-loopback IPv4 address.
fn external_ip() -> String {
    let out = run("hostname", &["-I"]);
    out.split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .unwrap_or_else(|| panic!("this machine has no non-loopback IPv4 address ({out:?})"))
        .to_owned()
}

fn fails_with(out: &Output, what: &str) {
    assert!(!out.status.success(), "{what} succeeded");
}

#[test]
fn docker_skopeo_and_curl_verify_berths_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let ip = external_ip();
    certificates(tmp.path(), &ip);
    let (cert, key) = (tmp.path().join("server.crt"), tmp.path().join("server.key"));
    let reg = BerthProcess::start_with(
        &tmp.path().join("data"),
        &[
            "--listen",
            &format!("{ip}:0"),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let host = reg.host.clone();
    let ca = tmp.path().join("ca.crt");

    // curl: verified with the CA, refused without it; plain HTTP gets nothing.
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(args)
            .output()
            .unwrap()
    };
    let ok = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "-w",
        "%{http_code} %{http_version}",
        "-o",
        "/dev/null",
        &format!("https://{host}/v2/"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        "200 2",
        "HTTP/2 over TLS: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    fails_with(
        &curl(&["-o", "/dev/null", &format!("https://{host}/v2/")]),
        "curl without the CA",
    );
    fails_with(
        &curl(&["-f", "-o", "/dev/null", &format!("http://{host}/v2/")]),
        "plain HTTP to the TLS port",
    );

    // berth's own client (`events`, `health`): verified with the CA that
    // SSL_CERT_FILE names, refused with the system's roots only.
    let berth = |envs: &[(&str, &str)], args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .env_remove("SSL_CERT_FILE")
            .env_remove("BERTH_REGISTRY")
            .envs(envs.iter().copied())
            .output()
            .unwrap()
    };
    let registry = format!("https://{host}");
    let ca_file = ca.to_str().unwrap();
    let events = berth(
        &[("SSL_CERT_FILE", ca_file)],
        &["events", "--registry", &registry, "--output", "json"],
    );
    assert!(
        events.status.success(),
        "berth events over HTTPS: {}",
        String::from_utf8_lossy(&events.stderr)
    );
    let refused = berth(&[], &["events", "--registry", &registry]);
    fails_with(&refused, "berth events without the CA");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // As the image's health check runs it: the listen address and the
    // certificate from the environment.
    let health = berth(
        &[
            ("SSL_CERT_FILE", ca_file),
            ("BERTH_LISTEN", &host),
            ("BERTH_TLS_CERT", cert.to_str().unwrap()),
        ],
        &["health"],
    );
    assert_eq!(
        String::from_utf8_lossy(&health.stdout).trim(),
        "ready",
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );

    // docker: no CA yet, so the push fails verification; with it, push and pull.
    let certs_d = Path::new("/etc/docker/certs.d").join(&host);
    let _ = std::fs::remove_dir_all(&certs_d);
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("f.bin"), random_bytes(200_000, 8)).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY f.bin /f.bin\nCMD [\"/x\"]\n",
    )
    .unwrap();
    let image = format!("{host}/tls/app:v1");
    docker(&["build", "-q", "-t", &image, ctx.to_str().unwrap()]);
    let bin = std::env::var("BERTH_TEST_DOCKER").unwrap_or_else(|_| "docker".into());
    let unverified = Command::new(&bin).args(["push", &image]).output().unwrap();
    fails_with(&unverified, "docker push without the CA");
    let why = String::from_utf8_lossy(&unverified.stderr);
    assert!(why.contains("x509") || why.contains("certificate"), "{why}");
    std::fs::create_dir_all(&certs_d).unwrap();
    std::fs::copy(&ca, certs_d.join("ca.crt")).unwrap();
    docker(&["push", &image]);
    docker(&["rmi", &image]);
    docker(&["pull", "-q", &image]);
    docker(&["rmi", &image]);
    std::fs::remove_dir_all(&certs_d).unwrap();

    // skopeo: --dest-cert-dir holds the CA.
    let layout = tmp.path().join("layout");
    run(
        "skopeo",
        &[
            "copy",
            "--src-cert-dir",
            certs_dir(tmp.path(), &ca).to_str().unwrap(),
            &format!("docker://{image}"),
            &format!("dir:{}", layout.display()),
        ],
    );
    let target = format!("docker://{host}/tls/copy:v1");
    let without = Command::new("skopeo")
        .args(["copy", &format!("dir:{}", layout.display()), &target])
        .output()
        .unwrap();
    fails_with(&without, "skopeo without the CA");
    run(
        "skopeo",
        &[
            "copy",
            "--dest-cert-dir",
            certs_dir(tmp.path(), &ca).to_str().unwrap(),
            &format!("dir:{}", layout.display()),
            &target,
        ],
    );
    let tags = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        &format!("https://{host}/v2/tls/copy/tags/list"),
    ]);
    assert!(String::from_utf8_lossy(&tags.stdout).contains("\"v1\""));
}

/// A directory holding `ca.crt`, as skopeo's cert-dir options expect.
fn certs_dir(base: &Path, ca: &Path) -> std::path::PathBuf {
    let dir = base.join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(ca, dir.join("ca.crt")).unwrap();
    dir
}
