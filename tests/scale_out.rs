//! Replicas on PostgreSQL and S3: several `berth serve` processes over one
//! shared store (a fresh database on the test PostgreSQL server and a fresh
//! bucket on the test S3 server, see `support::shared`), driven by the real
//! clients. Any replica serves any request; webhooks bound to a location
//! get that location's events; a replica's death loses nothing it
//! acknowledged; gc runs while both serve; `berth migrate` moves a
//! single-node store there.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use serde_json::{json, Value};
use support::shared::SharedStore;
use support::{http, BerthProcess, Resp};

#[path = "scale_out/clients.rs"]
mod clients;
#[path = "scale_out/crash.rs"]
mod crash;
#[path = "scale_out/gc.rs"]
mod gc;
#[path = "scale_out/migrate.rs"]
mod migrate;
#[path = "scale_out/requests.rs"]
mod requests;
#[path = "scale_out/webhooks.rs"]
mod webhooks;

/// `GET {path}` on `reg`.
fn get(reg: &BerthProcess, path: &str) -> Resp {
    http("GET", &format!("{}{path}", reg.url()), &[], &[])
}

/// Sends a JSON request to `reg`'s API; the response, whatever its status.
fn api(reg: &BerthProcess, method: &str, path: &str, body: Option<Value>) -> Resp {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    http(
        method,
        &format!("{}{path}", reg.url()),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// Creates webhook `name` through `reg`'s API.
fn create_webhook(reg: &BerthProcess, name: &str, body: Value) {
    let r = api(reg, "PUT", &format!("/api/webhooks/{name}"), Some(body));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

/// The manifest of `repo:reference` through `reg`, as bytes (asserting 200).
fn manifest(reg: &BerthProcess, repo: &str, reference: &str) -> Vec<u8> {
    let r = http(
        "GET",
        &format!("{}/v2/{repo}/manifests/{reference}", reg.url()),
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        &[],
    );
    assert_eq!(r.status, 200, "{repo}:{reference} on {}", reg.host);
    r.body
}

/// Every blob `manifest` references, fetched through `reg` and checked
/// against its digest.
fn assert_blobs_pull(reg: &BerthProcess, repo: &str, manifest: &[u8]) {
    let m: Value = serde_json::from_slice(manifest).unwrap();
    let blobs = std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap());
    for blob in blobs {
        let digest = blob["digest"].as_str().unwrap();
        let r = get(reg, &format!("/v2/{repo}/blobs/{digest}"));
        assert_eq!(r.status, 200, "{repo}@{digest} on {}", reg.host);
        assert_eq!(support::digest(&r.body), digest);
    }
}

/// The statuses a webhook's recorded deliveries got, through `reg`.
fn history(reg: &BerthProcess, name: &str) -> Vec<Value> {
    let r = api(
        reg,
        "GET",
        &format!("/api/webhooks/{name}/events?n=100"),
        None,
    );
    assert_eq!(r.status, 200);
    r.json()["value"].as_array().unwrap().clone()
}

/// What `json!` builds, for a webhook that takes pushes.
fn push_hook(uri: &str) -> Value {
    json!({"serviceUri": uri, "actions": ["push"]})
}
