//! The Helm chart repository end to end, with the real helm v4 client
//! (installed by `scripts/setup-test-env.sh`; a missing helm fails these
//! tests, it never skips them), curl for ChartMuseum-style uploads, a real
//! `berth` process and real webhook receivers.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use support::receiver::{is_uuid, subscribe_all};
use support::{digest, http, TestRegistry};

/// helm with its own config, cache and data directories, and a working
/// directory for charts.
struct Helm {
    dir: tempfile::TempDir,
}

impl Helm {
    fn new() -> Self {
        let helm = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let version = helm.run(&["version", "--short"]);
        assert!(
            version.starts_with("v4."),
            "helm v4 is required, found {version}"
        );
        helm
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn output(&self, args: &[&str]) -> Output {
        let home = self.dir.path();
        Command::new("helm")
            .args(args)
            .current_dir(home)
            .env("HELM_CONFIG_HOME", home.join(".config"))
            .env("HELM_CACHE_HOME", home.join(".cache"))
            .env("HELM_DATA_HOME", home.join(".data"))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run helm (scripts/setup-test-env.sh installs it): {e}")
            })
    }

    /// Runs helm; fails the test with its output if it fails.
    fn run(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "helm {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `helm create NAME` once, then `helm package` at `version`; returns
    /// the archive's path. `tweak` may edit the chart directory first.
    fn package(&self, name: &str, version: &str, tweak: impl FnOnce(&Path)) -> PathBuf {
        if !self.path(name).exists() {
            self.run(&["create", name]);
        }
        tweak(&self.path(name));
        let out = self.path("out");
        self.run(&[
            "package",
            name,
            "--version",
            version,
            "-d",
            out.to_str().unwrap(),
        ]);
        out.join(format!("{name}-{version}.tgz"))
    }
}

/// curl, returning the status and the body.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

/// Uploads the raw archive with curl (`--data-binary`, as ChartMuseum's docs).
fn upload_raw(reg: &TestRegistry, repo: &str, tgz: &Path, query: &str) -> (u16, String) {
    let url = format!("{}/helm/api/{repo}/charts{query}", reg.url());
    curl(&["--data-binary", &format!("@{}", tgz.display()), &url])
}

/// Uploads with curl as `multipart/form-data` (`-F chart=@... [-F prov=@...]`).
fn upload_form(reg: &TestRegistry, repo: &str, fields: &[(&str, &Path)]) -> (u16, String) {
    let url = format!("{}/helm/api/{repo}/charts", reg.url());
    let mut args = Vec::new();
    for (field, path) in fields {
        args.push("-F".to_owned());
        args.push(format!("{field}=@{}", path.display()));
    }
    args.push(url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(&args)
}

fn get(reg: &TestRegistry, path: &str) -> support::Resp {
    http("GET", &format!("{}{path}", reg.url()), &[], &[])
}

fn index(reg: &TestRegistry, repo: &str) -> String {
    let r = get(reg, &format!("/helm/{repo}/index.yaml"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-yaml"));
    String::from_utf8(r.body).unwrap()
}

/// The event log, each event as delivered (without the log's `seq`).
fn events(reg: &TestRegistry) -> Vec<Value> {
    let mut events = get(reg, "/api/events").json()["events"]
        .as_array()
        .unwrap()
        .clone();
    for e in &mut events {
        e.as_object_mut().unwrap().remove("seq");
    }
    events
}

/// Checks a chart event against the contract: exact keys, UUIDs, an RFC
/// 3339 timestamp, the target of `tgz` in `repo`, and the request.
fn assert_chart_event(e: &Value, action: &str, repo: &str, tgz: &[u8], name: &str, version: &str) {
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["action", "id", "request", "target", "timestamp"],
        "{e}"
    );
    assert_eq!(e["action"], action);
    assert!(is_uuid(e["id"].as_str().unwrap()), "{e}");
    let ts = e["timestamp"].as_str().unwrap();
    assert!(
        ts.ends_with('Z') && humantime::parse_rfc3339(ts).is_ok(),
        "{ts}"
    );
    assert_eq!(
        e["target"],
        json!({
            "mediaType": "application/vnd.acr.helm.chart", "size": tgz.len(), "digest": digest(tgz),
            "repository": repo, "tag": format!("{name}-{version}.tgz"), "name": name, "version": version,
        })
    );
    let request = e["request"].as_object().unwrap();
    assert_eq!(
        request.keys().collect::<Vec<_>>(),
        ["host", "id", "method", "useragent"]
    );
    assert!(is_uuid(request["id"].as_str().unwrap()), "{e}");
}

#[test]
fn helm_uses_the_repository_and_the_api_answers_as_chartmuseum() {
    let reg = TestRegistry::start();
    let helm = Helm::new();
    let repo = "team/apps";
    // A pre-release and 0.10.0 > 0.2.0: SemVer order, not text order.
    let versions = ["0.1.0", "0.2.0", "0.10.0", "1.0.0-rc.1"];
    // Text YAML could read as something else must reach helm as text
    // through index.yaml; unknown keys must not reach it at all.
    let tricky = |dir: &Path| {
        let chart = std::fs::read_to_string(dir.join("Chart.yaml")).unwrap();
        let chart = chart
            .replace("appVersion: \"1.16.0\"", "appVersion: \"1.10\"")
            .replace(
                "description: A Helm chart for Kubernetes",
                "description: 'yes: no # not a comment'\nkeywords: ['on', 'null', '0755']\nx-custom-key: dropped",
            );
        std::fs::write(dir.join("Chart.yaml"), chart).unwrap();
    };
    let tgz: Vec<PathBuf> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            helm.package("web", v, |dir| {
                if i == 0 {
                    tricky(dir)
                }
            })
        })
        .collect();
    // Added before the first upload: an empty repository has an empty index.
    let url = format!("{}/helm/{repo}", reg.url());
    helm.run(&["repo", "add", "apps", &url]);
    assert!(index(&reg, repo).contains("entries: {}"));

    for (i, path) in tgz.iter().enumerate() {
        let (status, body) = if i % 2 == 0 {
            upload_raw(&reg, repo, path, "")
        } else {
            upload_form(&reg, repo, &[("chart", path)])
        };
        assert_eq!((status, body.as_str()), (201, r#"{"saved":true}"#));
    }

    // index.yaml: newest first by SemVer, digests and relative URLs.
    let text = index(&reg, repo);
    assert!(
        text.starts_with("apiVersion: v1\nentries:\n  web:\n"),
        "{text}"
    );
    let positions: Vec<usize> = ["1.0.0-rc.1", "0.10.0", "0.2.0", "0.1.0"]
        .iter()
        .map(|v| text.find(&format!("version: \"{v}\"\n")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    let first = std::fs::read(&tgz[0]).unwrap();
    assert!(text.contains(&digest(&first)[7..]));
    assert!(text.contains("- charts/web-0.1.0.tgz\n"));

    // helm sees every version, pulls one byte for byte, renders one.
    helm.run(&["repo", "update"]);
    let found: Value = serde_json::from_str(&helm.run(&[
        "search",
        "repo",
        "apps/web",
        "--versions",
        "--devel",
        "-o",
        "json",
    ]))
    .unwrap();
    let seen: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["version"].as_str().unwrap())
        .collect();
    assert_eq!(seen, ["1.0.0-rc.1", "0.10.0", "0.2.0", "0.1.0"]);
    let tricky_entry = &found.as_array().unwrap()[3];
    assert_eq!(tricky_entry["app_version"], "1.10");
    assert_eq!(tricky_entry["description"], "yes: no # not a comment");
    assert!(!text.contains("x-custom-key"), "{text}");
    let pulled = helm.path("pulled");
    std::fs::create_dir_all(&pulled).unwrap();
    helm.run(&[
        "pull",
        "apps/web",
        "--version",
        "0.2.0",
        "-d",
        pulled.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(pulled.join("web-0.2.0.tgz")).unwrap(),
        std::fs::read(&tgz[1]).unwrap()
    );
    let rendered = helm.run(&["template", "rel", "apps/web", "--version", "0.10.0"]);
    assert!(
        rendered.contains("name: rel-web") && rendered.contains("helm.sh/chart: web-0.10.0"),
        "{rendered}"
    );
    let installed = helm.run(&[
        "install",
        "rel",
        "apps/web",
        "--version",
        "0.2.0",
        "--dry-run=client",
    ]);
    assert!(installed.contains("Dry run complete"), "{installed}");

    // The API.
    let all = get(&reg, &format!("/helm/api/{repo}/charts")).json();
    assert_eq!(all.as_object().unwrap().keys().collect::<Vec<_>>(), ["web"]);
    let listed: Vec<&str> = all["web"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["1.0.0-rc.1", "0.10.0", "0.2.0", "0.1.0"]);
    let one = get(&reg, &format!("/helm/api/{repo}/charts/web/0.1.0")).json();
    assert_eq!(one["name"], "web");
    assert_eq!(one["digest"], &digest(&first)[7..]);
    assert_eq!(one["urls"], json!(["charts/web-0.1.0.tgz"]));
    assert_eq!(one["apiVersion"], "v2");
    assert_eq!(one["keywords"], json!(["on", "null", "0755"]));
    // `latest` skips pre-releases, as ChartMuseum does.
    let latest = get(&reg, &format!("/helm/api/{repo}/charts/web/latest")).json();
    assert_eq!(latest["version"], "0.10.0");
    assert_eq!(
        get(&reg, &format!("/helm/api/{repo}/charts/web")).json(),
        all["web"]
    );
    let page = get(&reg, &format!("/helm/api/{repo}/charts?offset=1")).json();
    assert_eq!(page, json!({}));
    for (path, status) in [
        (format!("/helm/api/{repo}/charts/web"), 200),
        (format!("/helm/api/{repo}/charts/web/0.2.0"), 200),
        (format!("/helm/api/{repo}/charts/web/latest"), 200),
        (format!("/helm/api/{repo}/charts/nope"), 404),
        (format!("/helm/api/{repo}/charts/web/9.9.9"), 404),
        (format!("/helm/{repo}/index.yaml"), 200),
        (format!("/helm/{repo}/charts/web-0.1.0.tgz"), 200),
        (format!("/helm/{repo}/charts/web-9.9.9.tgz"), 404),
    ] {
        let r = http("HEAD", &format!("{}{path}", reg.url()), &[], &[]);
        assert_eq!(r.status, status, "HEAD {path}");
        assert!(r.body.is_empty(), "HEAD {path} has a body");
    }
    let missing = get(&reg, &format!("/helm/api/{repo}/charts/web/9.9.9"));
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json(),
        json!({"error": "chart web version 9.9.9 not found"})
    );
    let download = get(&reg, &format!("/helm/{repo}/charts/web-0.1.0.tgz"));
    assert_eq!(download.body, first);
    assert_eq!(download.header("content-type"), Some("application/gzip"));
    // Another repository is another namespace.
    assert!(index(&reg, "other").contains("entries: {}"));
    assert_eq!(get(&reg, "/helm/api/other/charts").json(), json!({}));
    let bad = get(&reg, "/helm/api/Bad/charts");
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"]
        .as_str()
        .unwrap()
        .contains("invalid repository name"));
    assert_eq!(
        http(
            "PUT",
            &format!("{}/helm/api/{repo}/charts", reg.url()),
            &[],
            &[]
        )
        .status,
        405
    );
}

/// `{dir}/{name}.tgz`, made with tar: `web/values.yaml` and, if given,
/// `web/Chart.yaml` (for charts `helm package` would refuse to make).
fn tar_chart(dir: &Path, name: &str, chart_yaml: Option<&str>) -> PathBuf {
    let root = dir.join(format!("src-{name}"));
    std::fs::create_dir_all(root.join("web/templates")).unwrap();
    std::fs::write(root.join("web/values.yaml"), "a: 1\n").unwrap();
    if let Some(y) = chart_yaml {
        std::fs::write(root.join("web/Chart.yaml"), y).unwrap();
    }
    let out = dir.join(format!("{name}.tgz"));
    let (out_arg, root_arg) = (out.to_str().unwrap(), root.to_str().unwrap());
    support::run("tar", &["-czf", out_arg, "-C", root_arg, "web"]);
    out
}

#[test]
fn overwrites_need_force_and_deletes_leave_the_index() {
    let reg = TestRegistry::start();
    let helm = Helm::new();
    let v1 = helm.package("web", "1.0.0", |_| {});
    let first = std::fs::read(&v1).unwrap();
    assert_eq!(upload_raw(&reg, "r", &v1, "").0, 201);
    let (status, body) = upload_raw(&reg, "r", &v1, "");
    assert_eq!(status, 409);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"error": "web-1.0.0.tgz already exists; add ?force to overwrite it"})
    );
    let (status, _) = upload_form(&reg, "r", &[("chart", &v1)]);
    assert_eq!(status, 409);

    // Different content, same version: ?force replaces it and its digest.
    let changed = helm.package("web", "1.0.0", |dir| {
        std::fs::write(dir.join("values.yaml"), "replicaCount: 3\n").unwrap();
    });
    let second = std::fs::read(&changed).unwrap();
    assert_ne!(digest(&first), digest(&second));
    assert_eq!(upload_raw(&reg, "r", &changed, "?force").0, 201);
    let text = index(&reg, "r");
    assert!(text.contains(&digest(&second)[7..]) && !text.contains(&digest(&first)[7..]));
    assert_eq!(text.matches("version: \"1.0.0\"\n").count(), 1);
    assert_eq!(get(&reg, "/helm/r/charts/web-1.0.0.tgz").body, second);
    helm.run(&["repo", "add", "r", &format!("{}/helm/r", reg.url())]);
    let values = helm.run(&["show", "values", "r/web"]);
    assert_eq!(values, "replicaCount: 3");

    // Delete: 200 once, then 404; the index, the API and helm forget it.
    let v2 = helm.package("web", "2.0.0", |_| {});
    assert_eq!(upload_raw(&reg, "r", &v2, "").0, 201);
    let url = format!("{}/helm/api/r/charts/web/1.0.0", reg.url());
    let deleted = http("DELETE", &url, &[], &[]);
    assert_eq!(
        (deleted.status, deleted.json()),
        (200, json!({"deleted": true}))
    );
    let again = http("DELETE", &url, &[], &[]);
    assert_eq!(again.status, 404);
    assert_eq!(
        again.json(),
        json!({"error": "chart web version 1.0.0 not found"})
    );
    let text = index(&reg, "r");
    assert!(
        !text.contains("version: \"1.0.0\"") && text.contains("version: \"2.0.0\""),
        "{text}"
    );
    assert_eq!(get(&reg, "/helm/r/charts/web-1.0.0.tgz").status, 404);
    assert_eq!(get(&reg, "/helm/api/r/charts/web/1.0.0").status, 404);
    helm.run(&["repo", "update"]);
    let found = helm.run(&["search", "repo", "r/web", "--versions", "-o", "json"]);
    let found: Value = serde_json::from_str(&found).unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["version"], "2.0.0");
    // Two charts cannot share a file name: `a-1.0.0` 1.0.0 and `a` 1.0.0-1.0.0.
    let dir = helm.path("same-file");
    std::fs::create_dir_all(&dir).unwrap();
    let one = tar_chart(
        &dir,
        "one",
        Some("apiVersion: v2\nname: a-1.0.0\nversion: 1.0.0\n"),
    );
    let two = tar_chart(
        &dir,
        "two",
        Some("apiVersion: v2\nname: a\nversion: 1.0.0-1.0.0\n"),
    );
    assert_eq!(upload_raw(&reg, "r", &one, "").0, 201);
    let (status, body) = upload_raw(&reg, "r", &two, "?force");
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("a-1.0.0-1.0.0.tgz is already the file of chart a-1.0.0 version 1.0.0"),
        "{body}"
    );
    assert_eq!(
        get(&reg, "/helm/r/charts/a-1.0.0-1.0.0.tgz").body,
        std::fs::read(&one).unwrap()
    );
    let url = format!("{}/helm/api/r/charts/a-1.0.0/1.0.0", reg.url());
    assert_eq!(http("DELETE", &url, &[], &[]).status, 200);

    // Deleting the last version empties the index.
    assert_eq!(
        http(
            "DELETE",
            &format!("{}/helm/api/r/charts/web/2.0.0", reg.url()),
            &[],
            &[]
        )
        .status,
        200
    );
    assert!(index(&reg, "r").contains("entries: {}"));
    assert_eq!(get(&reg, "/helm/api/r/charts/web").status, 404);
}

#[test]
fn chart_events_follow_the_contract_for_uploads_and_deletes() {
    let reg = TestRegistry::start();
    let rx = subscribe_all(&reg.url(), "charthook");
    let helm = Helm::new();
    let tgz = std::fs::read(helm.package("web", "1.2.3+build.7", |_| {})).unwrap();
    let put = http(
        "POST",
        &format!("{}/helm/api/myrepo/charts", reg.url()),
        &[("User-Agent", "berth-tests/helm")],
        &tgz,
    );
    assert_eq!(put.status, 201);
    let got = rx.next();
    assert_eq!(got.header("content-type"), Some("application/json"));
    let e = got.json();
    assert_chart_event(&e, "chart_push", "myrepo", &tgz, "web", "1.2.3+build.7");
    assert_eq!(
        e["request"],
        json!({"id": put.header("x-request-id").unwrap(), "host": reg.host, "method": "POST", "useragent": "berth-tests/helm"})
    );
    // `+` in a file name: the index's URL and the download agree.
    assert!(index(&reg, "myrepo").contains("- charts/web-1.2.3+build.7.tgz\n"));
    assert_eq!(
        get(&reg, "/helm/myrepo/charts/web-1.2.3+build.7.tgz").body,
        tgz
    );
    assert_eq!(
        get(&reg, "/helm/myrepo/charts/web-1.2.3%2Bbuild.7.tgz").body,
        tgz
    );

    let del = http(
        "DELETE",
        &format!("{}/helm/api/myrepo/charts/web/1.2.3+build.7", reg.url()),
        &[("User-Agent", "berth-tests/helm")],
        &[],
    );
    assert_eq!(del.status, 200);
    let e = rx.next().json();
    assert_chart_event(&e, "chart_delete", "myrepo", &tgz, "web", "1.2.3+build.7");
    assert_eq!(
        e["request"],
        json!({"id": del.header("x-request-id").unwrap(), "host": reg.host, "method": "DELETE", "useragent": "berth-tests/helm"})
    );
    // Exactly those two, in the log too.
    let log: Vec<String> = events(&reg)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(log, ["chart_push", "chart_delete"]);
    assert!(rx.drain().is_empty());
}

#[test]
fn oci_charts_work_with_helm_and_raise_chart_events() {
    let reg = TestRegistry::start();
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

#[test]
fn invalid_uploads_get_400_and_change_nothing() {
    let reg = TestRegistry::start();
    let helm = Helm::new();
    let good = helm.package("web", "1.0.0", |_| {});
    let dir = helm.path("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    // Real archives with a broken Chart.yaml, made with tar.
    let archive = |name: &str, chart_yaml: Option<&str>| tar_chart(&dir, name, chart_yaml);
    let gz_text = {
        let raw = write("plain.txt", b"just some text\n");
        support::run("gzip", &["-kf", raw.to_str().unwrap()]);
        dir.join("plain.txt.gz")
    };
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            write("text.tgz", b"hello, not a chart"),
            "not gzip-compressed",
        ),
        (gz_text, "cannot read the archive"),
        (archive("nochart", None), "no <chart>/Chart.yaml"),
        (
            archive(
                "badname",
                Some("apiVersion: v2\nname: ../web\nversion: 1.0.0\n"),
            ),
            "invalid chart name",
        ),
        (
            archive(
                "badver",
                Some("apiVersion: v2\nname: web\nversion: \"1.0\"\n"),
            ),
            "not SemVer",
        ),
        (
            archive("noversion", Some("apiVersion: v2\nname: web\n")),
            "has no version",
        ),
        (
            archive("noapi", Some("name: web\nversion: 1.0.0\n")),
            "has no apiVersion",
        ),
        (
            archive("notyaml", Some("name: [web\n")),
            "Chart.yaml is not valid",
        ),
    ];
    for (path, message) in &cases {
        for (status, body) in [
            upload_raw(&reg, "r", path, ""),
            upload_form(&reg, "r", &[("chart", path)]),
        ] {
            assert_eq!(status, 400, "{}: {body}", path.display());
            let error = serde_json::from_str::<Value>(&body).unwrap()["error"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(
                error.contains(message),
                "{}: {error:?} lacks {message:?}",
                path.display()
            );
        }
    }
    // A valid chart under a file name that names another version.
    let renamed = dir.join("web-9.9.9.tgz");
    std::fs::copy(&good, &renamed).unwrap();
    let (status, body) = upload_form(&reg, "r", &[("chart", &renamed)]);
    assert_eq!(status, 400);
    assert!(
        body.contains("the file web-9.9.9.tgz holds chart web version 1.0.0"),
        "{body}"
    );
    // A provenance file that does not describe the chart.
    let prov = write(
        "web-1.0.0.tgz.prov",
        b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\napiVersion: v2\nname: web\nversion: 1.0.0\n\n...\nfiles:\n  web-1.0.0.tgz: sha256:0000000000000000000000000000000000000000000000000000000000000000\n-----BEGIN PGP SIGNATURE-----\n\nx\n-----END PGP SIGNATURE-----\n",
    );
    let (status, body) = upload_form(&reg, "r", &[("chart", &good), ("prov", &prov)]);
    assert_eq!(status, 400);
    assert!(
        body.contains("the provenance file signs web-1.0.0.tgz as sha256:0000"),
        "{body}"
    );
    // Nothing to upload; a reserved or invalid repository name; too large.
    let (status, body) = curl(&["-F", "other=x", &format!("{}/helm/api/r/charts", reg.url())]);
    assert_eq!(
        (status, body.contains("no package or provenance file")),
        (400, true),
        "{body}"
    );
    assert_eq!(upload_raw(&reg, "api/x", &good, "").0, 400);
    assert_eq!(upload_raw(&reg, "Upper", &good, "").0, 400);
    let big = write("big.tgz", &vec![0x1f; 21 * 1024 * 1024]);
    assert_eq!(upload_raw(&reg, "r", &big, "").0, 413);

    // Nothing changed: no chart, no event, an empty index.
    assert!(index(&reg, "r").contains("entries: {}"));
    assert_eq!(get(&reg, "/helm/api/r/charts").json(), json!({}));
    assert!(events(&reg).is_empty(), "{:?}", events(&reg));
    // And the good chart still goes in.
    assert_eq!(upload_raw(&reg, "r", &good, "").0, 201);
}

#[test]
fn provenance_files_are_served_for_helm_verify() {
    let reg = TestRegistry::start();
    let helm = Helm::new();
    // A throwaway signing key, exported as the legacy keyrings helm reads.
    let gnupg = helm.path("gnupg");
    std::fs::create_dir_all(&gnupg).unwrap();
    let gpg = |args: &[&str]| -> Vec<u8> {
        let out = Command::new("gpg")
            .args(["--batch", "--homedir", gnupg.to_str().unwrap()])
            .args(args)
            .output()
            .expect("run gpg");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "Berth Test <berth@example.com>",
        "rsa2048",
        "sign",
        "never",
    ]);
    let secring = helm.path("secring.gpg");
    let pubring = helm.path("pubring.gpg");
    std::fs::write(&secring, gpg(&["--export-secret-keys"])).unwrap();
    std::fs::write(&pubring, gpg(&["--export"])).unwrap();
    helm.run(&["create", "web"]);
    let out = helm.path("out");
    let sign = |version: &str| {
        helm.run(&[
            "package",
            "web",
            "--version",
            version,
            "--sign",
            "--key",
            "Berth Test",
            "--keyring",
            secring.to_str().unwrap(),
            "-d",
            out.to_str().unwrap(),
        ]);
        (
            out.join(format!("web-{version}.tgz")),
            out.join(format!("web-{version}.tgz.prov")),
        )
    };

    // Chart and provenance in one multipart upload.
    let (tgz, prov) = sign("1.0.0");
    assert_eq!(
        upload_form(&reg, "signed", &[("chart", &tgz), ("prov", &prov)]).0,
        201
    );
    let served = get(&reg, "/helm/signed/charts/web-1.0.0.tgz.prov");
    assert_eq!(served.body, std::fs::read(&prov).unwrap());
    assert_eq!(
        served.header("content-type"),
        Some("application/pgp-signature")
    );
    helm.run(&[
        "repo",
        "add",
        "signed",
        &format!("{}/helm/signed", reg.url()),
    ]);
    let pulled = helm.path("pulled");
    std::fs::create_dir_all(&pulled).unwrap();
    let verified = helm.output(&[
        "pull",
        "signed/web",
        "--version",
        "1.0.0",
        "--verify",
        "--keyring",
        pubring.to_str().unwrap(),
        "-d",
        pulled.to_str().unwrap(),
    ]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("Signed by: Berth Test"));

    // The chart first, its provenance file afterwards (`/prov`, raw body).
    let (tgz2, prov2) = sign("2.0.0");
    assert_eq!(upload_raw(&reg, "signed", &tgz2, "").0, 201);
    assert_eq!(
        get(&reg, "/helm/signed/charts/web-2.0.0.tgz.prov").status,
        404
    );
    let prov_url = format!("{}/helm/api/signed/prov", reg.url());
    let prov_arg = format!("@{}", prov2.display());
    assert_eq!(
        curl(&["--data-binary", &prov_arg, &prov_url]),
        (201, r#"{"saved":true}"#.to_owned())
    );
    let (status, body) = curl(&["--data-binary", &prov_arg, &prov_url]);
    assert_eq!(
        (status, body.contains("already exists")),
        (409, true),
        "{body}"
    );
    assert_eq!(
        curl(&["--data-binary", &prov_arg, &format!("{prov_url}?force")]).0,
        201
    );
    assert_eq!(
        get(&reg, "/helm/signed/charts/web-2.0.0.tgz.prov").body,
        std::fs::read(&prov2).unwrap()
    );
    // A provenance file for a chart that is not there.
    let (_, prov3) = sign("3.0.0");
    let (status, body) = curl(&["--data-binary", &format!("@{}", prov3.display()), &prov_url]);
    assert_eq!(
        (status, body.contains("upload the chart first")),
        (404, true),
        "{body}"
    );
    // The provenance file of 1.0.0 for 2.0.0's chart: refused.
    let (status, body) = upload_form(&reg, "signed", &[("chart", &tgz2), ("prov", &prov)]);
    assert_eq!(status, 400, "{body}");
}

#[test]
fn an_acknowledged_upload_survives_kill_9() {
    let mut reg = TestRegistry::start();
    let helm = Helm::new();
    let path = helm.package("web", "1.0.0", |_| {});
    let tgz = std::fs::read(&path).unwrap();
    assert_eq!(upload_raw(&reg, "durable", &path, "").0, 201);
    // Served once (the index is now cached in memory), then killed at once.
    assert!(index(&reg, "durable").contains("version: \"1.0.0\""));
    reg.kill9();
    let reg = reg.restart();
    assert!(index(&reg, "durable").contains(&digest(&tgz)[7..]));
    assert_eq!(get(&reg, "/helm/durable/charts/web-1.0.0.tgz").body, tgz);
    let log = events(&reg);
    assert_eq!(log.len(), 1);
    assert_chart_event(&log[0], "chart_push", "durable", &tgz, "web", "1.0.0");
    helm.run(&[
        "repo",
        "add",
        "durable",
        &format!("{}/helm/durable", reg.url()),
    ]);
    assert!(helm
        .run(&["search", "repo", "durable/web"])
        .contains("1.0.0"));
}

/// Pushes `tgz` as Helm does (config, chart layer, manifest) to `repo:tag`
/// with plain HTTP requests; returns the manifest's digest.
fn push_oci_chart(reg: &TestRegistry, repo: &str, tag: &str, tgz: &[u8], version: &str) -> String {
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
    let reg = TestRegistry::with_config("quarantine = true\n");
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
    let reg = TestRegistry::with_config("gc_grace = \"0s\"\n");
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

#[test]
fn helm_registry_login_guards_oci_charts_and_the_chart_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("htpasswd");
    std::fs::write(&file, support::htpasswd("ci", "ci-pw")).unwrap();
    let reg = TestRegistry::with_config(&format!(
        "[auth]\nhtpasswd = \"{}\"\ndefault_role = \"push\"\n",
        file.display()
    ));
    let helm = Helm::new();
    let tgz = helm.package("web", "1.0.0", |_| {});
    let target = format!("oci://{}/charts", reg.host);

    // Without logging in, helm is refused; a wrong password does not log in.
    let refused = helm.output(&["push", tgz.to_str().unwrap(), &target, "--plain-http"]);
    assert!(!refused.status.success(), "pushed without credentials");
    let login = |password: &str| {
        let mut cmd = Command::new("helm");
        cmd.args([
            "registry",
            "login",
            &reg.host,
            "-u",
            "ci",
            "--password-stdin",
            "--plain-http",
        ])
        .env("HELM_CONFIG_HOME", helm.path(".config"))
        .env("HELM_CACHE_HOME", helm.path(".cache"))
        .env("HELM_DATA_HOME", helm.path(".data"));
        support::output_with_stdin(&mut cmd, password)
    };
    assert!(
        !login("wrong").status.success(),
        "logged in with a wrong password"
    );
    let ok = login("ci-pw");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // Logged in: push, pull back byte for byte.
    helm.run(&["push", tgz.to_str().unwrap(), &target, "--plain-http"]);
    let out = helm.path("pulled");
    std::fs::create_dir(&out).unwrap();
    helm.run(&[
        "pull",
        &format!("{target}/web"),
        "--version",
        "1.0.0",
        "--plain-http",
        "-d",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(out.join("web-1.0.0.tgz")).unwrap(),
        std::fs::read(&tgz).unwrap()
    );

    // The ChartMuseum API needs the same credentials.
    assert_eq!(upload_raw(&reg, "private", &tgz, "").0, 401);
    assert_eq!(get(&reg, "/helm/private/index.yaml").status, 401);
}
