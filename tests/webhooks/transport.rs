//! HTTPS receivers and the refusal of internal addresses.

use super::*;

#[test]
fn https_receivers_work_with_a_private_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |f: &str| tmp.path().join(f).to_str().unwrap().to_owned();
    let openssl = |args: &[&str]| support::run("openssl", args);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
        "-days",
        "1",
        "-subj",
        "/CN=berth-test-ca",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p("srv.key"),
        "-out",
        &p("srv.csr"),
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(p("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("srv.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-out",
        &p("srv.pem"),
        "-days",
        "1",
        "-extfile",
        &p("ext.cnf"),
    ]);

    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/https_receiver.py");
    let mut receiver = std::process::Command::new("python3")
        .args([script.to_str().unwrap(), &p("srv.pem"), &p("srv.key")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(receiver.stdout.take().unwrap()));
    let port = lines
        .next()
        .unwrap()
        .unwrap()
        .trim_start_matches("listening on ")
        .to_owned();

    let data = tmp.path().join("data");
    let reg = BerthProcess::start_env(&data, &[], &[("SSL_CERT_FILE", &p("ca.pem"))]);
    let uri = format!("https://127.0.0.1:{port}/hook");
    assert_eq!(
        create(
            &reg,
            "secure01",
            json!({"serviceUri": uri, "actions": ["push"]})
        )
        .status,
        201
    );
    let ping = api(&reg, "POST", "/secure01/ping", None).json();
    assert_eq!(ping["statusCode"], 200, "{ping}");
    push_image(&reg.url(), "tls", "v1", 1);
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(serde_json::from_str::<Value>(&lines.next().unwrap().unwrap()).unwrap());
    }
    assert_eq!(got[0]["action"], "ping");
    assert_eq!(
        (got[1]["action"].as_str(), got[1]["target"]["tag"].as_str()),
        (Some("push"), Some("v1"))
    );
    let _ = receiver.kill();
    let _ = receiver.wait();
}

#[test]
fn refuse_private_targets_blocks_internal_receivers_after_resolution() {
    let rx = Receiver::start();
    let reg =
        BerthProcess::with_config("[delivery]\nrefuse_private_targets = true\nmax_attempts = 1\n");
    let port = rx.url.rsplit_once(':').unwrap().1; // "PORT/hook"
    let by_name = format!("http://localhost:{port}");
    for (name, uri) in [
        ("literal1", rx.url.as_str()),
        ("byname01", by_name.as_str()),
    ] {
        let body = json!({"serviceUri": uri, "actions": ["push"]});
        assert_eq!(create(&reg, name, body).status, 201);
        let ping = api(&reg, "POST", &format!("/{name}/ping"), None);
        assert_eq!(ping.status, 200);
        let error = ping.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(error.contains("refused"), "{name} ping: {error}");
    }
    push_image(&reg.url(), "internal", "v1", 1);
    for name in ["literal1", "byname01"] {
        let entries = history(&reg, name, 2);
        assert_eq!(entries[0]["result"], "failed", "{name}: {entries:?}");
        let error = entries[0]["error"].as_str().unwrap();
        assert!(error.contains("refuse_private_targets"), "{name}: {error}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(rx.drain().is_empty(), "an internal receiver got a request");
}
