//! Helm charts as OCI artifacts: helm push/pull, quarantine, garbage collection.

use super::*;

#[test]
fn oci_charts_work_with_helm_and_raise_chart_events() {
    let reg = BerthProcess::start();
    let rx = subscribe_all(&reg.url(), "ocihook");
    let helm = Helm::new();
    let path = helm.package("web", "0.3.0+meta", |_| {});
    let tgz = std::fs::read(&path).unwrap();
    let oci = format!("oci://{}/charts", reg.host);
    helm.run(&["push", path.to_str().unwrap(), &oci, "--plain-http"]);

    // Helm 4 PUTs the manifest by digest, then by tag: two pushes, one chart_push.
    let mut got: Vec<Value> = (0..3).map(|_| rx.next().json()).collect();
    got.sort_by_key(|e| e["action"] != "chart_push");
    assert_chart_event(
        &got[0],
        "chart_push",
        "charts/web",
        &tgz,
        "web",
        "0.3.0+meta",
    );
    let request = &got[0]["request"];
    assert_eq!(
        (request["host"].as_str(), request["method"].as_str()),
        (Some(reg.host.as_str()), Some("PUT"))
    );
    assert!(
        request["useragent"]
            .as_str()
            .unwrap()
            .starts_with("Helm/4."),
        "{request}"
    );
    let pushes: Vec<&Value> = got[1..].iter().collect();
    assert!(pushes
        .iter()
        .all(|e| e["action"] == "push" && e["target"]["repository"] == "charts/web"));
    assert!(
        pushes.iter().any(|e| e["target"]["tag"] == "0.3.0_meta"),
        "{pushes:?}"
    );
    let manifest_digest = pushes[0]["target"]["digest"].as_str().unwrap().to_owned();

    // Pull, show, template from oci://.
    let reference = format!("{oci}/web");
    let pulled = helm.path("pulled");
    std::fs::create_dir_all(&pulled).unwrap();
    helm.run(&[
        "pull",
        &reference,
        "--version",
        "0.3.0+meta",
        "--plain-http",
        "-d",
        pulled.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(pulled.join("web-0.3.0+meta.tgz")).unwrap(),
        tgz
    );
    let shown = helm.run(&[
        "show",
        "chart",
        &reference,
        "--version",
        "0.3.0+meta",
        "--plain-http",
    ]);
    assert!(
        shown.contains("name: web") && shown.contains("version: 0.3.0+meta"),
        "{shown}"
    );
    let rendered = helm.run(&[
        "template",
        "rel",
        &reference,
        "--version",
        "0.3.0+meta",
        "--plain-http",
    ]);
    assert!(rendered.contains("name: rel-web"), "{rendered}");
    let installed = helm.run(&[
        "install",
        "rel",
        &reference,
        "--version",
        "0.3.0+meta",
        "--plain-http",
        "--dry-run=client",
    ]);
    assert!(installed.contains("Dry run complete"), "{installed}");

    // Deleting the manifest raises delete and chart_delete.
    let del = http(
        "DELETE",
        &format!("{}/v2/charts/web/manifests/{manifest_digest}", reg.url()),
        &[("User-Agent", "berth-tests/oci")],
        &[],
    );
    assert_eq!(del.status, 202);
    let mut got: Vec<Value> = (0..2).map(|_| rx.next().json()).collect();
    got.sort_by_key(|e| e["action"] != "chart_delete");
    assert_chart_event(
        &got[0],
        "chart_delete",
        "charts/web",
        &tgz,
        "web",
        "0.3.0+meta",
    );
    assert_eq!(
        got[0]["request"],
        json!({"id": del.header("x-request-id").unwrap(), "host": reg.host, "method": "DELETE", "useragent": "berth-tests/oci"})
    );
    assert_eq!(got[1]["action"], "delete");
    assert_eq!(got[1]["target"]["digest"], manifest_digest);
    let failed = helm.output(&[
        "show",
        "chart",
        &reference,
        "--version",
        "0.3.0+meta",
        "--plain-http",
    ]);
    assert!(!failed.status.success(), "the chart is gone");
    assert!(rx.drain().is_empty());
}

/// Pushes `tgz` as Helm does (config, chart layer, manifest) to `repo:tag`
/// with plain HTTP requests; returns the manifest's digest.
fn push_oci_chart(reg: &BerthProcess, repo: &str, tag: &str, tgz: &[u8], version: &str) -> String {
    let config = json!({"apiVersion": "v2", "name": "web", "version": version}).to_string();
    let config_digest = support::push_blob(&reg.url(), repo, config.as_bytes());
    let layer_digest = support::push_blob(&reg.url(), repo, tgz);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "digest": layer_digest, "size": tgz.len()}],
    })
    .to_string();
    let put = http(
        "PUT",
        &format!("{}/v2/{repo}/manifests/{tag}", reg.url()),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        manifest.as_bytes(),
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    digest(manifest.as_bytes())
}

#[test]
fn quarantine_holds_the_chart_push_of_an_oci_chart_until_release() {
    // helm 4 itself cannot push while quarantine is on: it tags by reading
    // the manifest back, which quarantine hides. So the chart is pushed the
    // way helm lays it out, with plain requests.
    let reg = BerthProcess::with_config("quarantine = true\n");
    let rx = subscribe_all(&reg.url(), "qhook");
    let helm = Helm::new();
    let tgz = std::fs::read(helm.package("web", "1.0.0+b", |_| {})).unwrap();
    let manifest = push_oci_chart(&reg, "held/web", "1.0.0_b", &tgz, "1.0.0_b");
    let held = rx.next().json();
    assert_eq!(held["action"], "quarantine");

    let pass = http(
        "PATCH",
        &format!("{}/api/quarantine/held/web/{manifest}", reg.url()),
        &[("User-Agent", "scanner/1")],
        br#"{"state":"Passed"}"#,
    );
    assert_eq!(pass.status, 200, "{}", String::from_utf8_lossy(&pass.body));
    let released: Vec<Value> = (0..2).map(|_| rx.next().json()).collect();
    assert_eq!(released[0]["action"], "push");
    assert_eq!(released[0]["target"]["tag"], "1.0.0_b");
    // `+` restored from the `_` of the config's version.
    assert_chart_event(
        &released[1],
        "chart_push",
        "held/web",
        &tgz,
        "web",
        "1.0.0+b",
    );
    assert_eq!(released[1]["request"]["useragent"], "scanner/1");
    // Tagging it again raises a push, not a second chart_push.
    push_oci_chart(&reg, "held/web", "latest", &tgz, "1.0.0_b");
    assert_eq!(rx.next().json()["target"]["tag"], "latest");
    let shown = helm.run(&[
        "show",
        "chart",
        &format!("oci://{}/held/web", reg.host),
        "--version",
        "1.0.0+b",
        "--plain-http",
    ]);
    assert!(shown.contains("name: web"), "{shown}");
    assert!(rx.drain().is_empty());
}

#[test]
fn garbage_collection_keeps_chart_archives_and_collects_deleted_ones() {
    let reg = BerthProcess::with_config("gc_grace = \"0s\"\n");
    let helm = Helm::new();
    let old = helm.package("web", "1.0.0", |_| {});
    let old_tgz = std::fs::read(&old).unwrap();
    let new = helm.package("web", "2.0.0", |_| {});
    let new_tgz = std::fs::read(&new).unwrap();
    assert_eq!(upload_raw(&reg, "gc", &old, "").0, 201);
    assert_eq!(upload_raw(&reg, "gc", &new, "").0, 201);
    let url = reg.url();
    let del = support::http(
        "DELETE",
        &format!("{url}/helm/api/gc/charts/web/1.0.0"),
        &[],
        b"",
    );
    assert_eq!(del.status, 200);
    let report = support::http("POST", &format!("{url}/api/gc"), &[], b"").json();
    assert_eq!(
        report["deleted_blobs"],
        serde_json::json!([digest(&old_tgz)])
    );
    assert_eq!(get(&reg, "/helm/gc/charts/web-2.0.0.tgz").body, new_tgz);
    let again = support::http("POST", &format!("{url}/api/gc"), &[], b"").json();
    assert_eq!(again["deleted_blobs"], serde_json::json!([]));
}
