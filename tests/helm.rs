//! The Helm chart repository end to end, with the real helm v4 client
//! (installed by `scripts/setup-test-env.sh`; a missing helm fails these
//! tests, it never skips them), curl for ChartMuseum-style uploads, a real
//! `berth` process and real webhook receivers.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::helm::Helm;
use support::receiver::{is_uuid, subscribe_all};
use support::{digest, http, BerthProcess};

#[path = "helm/auth.rs"]
mod auth;
#[path = "helm/events.rs"]
mod events;
#[path = "helm/oci.rs"]
mod oci;
#[path = "helm/provenance.rs"]
mod provenance;
#[path = "helm/repository.rs"]
mod repository;
#[path = "helm/uploads.rs"]
mod uploads;

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
fn upload_raw(reg: &BerthProcess, repo: &str, tgz: &Path, query: &str) -> (u16, String) {
    let url = format!("{}/helm/api/{repo}/charts{query}", reg.url());
    curl(&["--data-binary", &format!("@{}", tgz.display()), &url])
}

/// Uploads with curl as `multipart/form-data` (`-F chart=@... [-F prov=@...]`).
fn upload_form(reg: &BerthProcess, repo: &str, fields: &[(&str, &Path)]) -> (u16, String) {
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

fn get(reg: &BerthProcess, path: &str) -> support::Resp {
    http("GET", &format!("{}{path}", reg.url()), &[], &[])
}

fn index(reg: &BerthProcess, repo: &str) -> String {
    let r = get(reg, &format!("/helm/{repo}/index.yaml"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-yaml"));
    String::from_utf8(r.body).unwrap()
}

/// The event log, each event as delivered (without the log's `seq`).
fn events(reg: &BerthProcess) -> Vec<Value> {
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
