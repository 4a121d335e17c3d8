//! Hostile and broken input against a real `berth` process: each family of
//! bad requests gets the spec's error code and status, stores nothing (no
//! repository, tag, manifest, blob, upload or event; see [`state::Snapshot`])
//! and leaves the registry able to take a normal push and pull.
//!
//! Requests no HTTP library would send (dot segments, lying lengths,
//! stalls) go over a raw socket ([`raw`]). The families:
//! - [`names`]: path traversal; invalid names, tags, digests, algorithms.
//! - [`uploads`]: digests that do not match, `Content-Range`s that skip or
//!   overlap, unknown/cancelled/finished uploads, the open-uploads limit.
//! - [`manifests`]: oversized, malformed and self-referencing manifests.
//! - [`framing`]: bodies shorter or longer than their `Content-Length`,
//!   contradictory framing, and slow clients.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

#[path = "hostile/framing.rs"]
mod framing;
#[path = "hostile/manifests.rs"]
mod manifests;
#[path = "hostile/names.rs"]
mod names;
#[path = "hostile/raw.rs"]
mod raw;
#[path = "hostile/state.rs"]
mod state;
mod support;
#[path = "hostile/uploads.rs"]
mod uploads;

use serde_json::json;
use support::{http, BerthProcess, Resp};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An index of nothing: a manifest that is valid wherever it is pushed.
fn empty_index() -> Vec<u8> {
    json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        .to_string()
        .into_bytes()
}

/// Asserts a spec error: `status` and the `code` of the JSON error body.
fn expect(r: &Resp, status: u16, code: &str, what: &str) {
    assert_error(r.status, &r.body, status, code, what);
}

/// [`expect`] for a raw response.
fn expect_raw(r: &raw::RawResp, status: u16, code: &str, what: &str) {
    assert_error(r.status, &r.body, status, code, what);
}

fn assert_error(got: u16, body: &[u8], status: u16, code: &str, what: &str) {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = String::from_utf8_lossy(body);
    assert_eq!(
        (got, json["errors"][0]["code"].as_str().unwrap_or("")),
        (status, code),
        "{what}: {text}"
    );
    let message = json["errors"][0]["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "{what}: no message in {text}");
}

/// Starts a registry with `toml` as its configuration file.
fn configured(toml: &str) -> BerthProcess {
    BerthProcess::with_config(toml)
}

/// Opens an upload session in `repo`; its `Location` path.
fn open_upload(url: &str, repo: &str) -> String {
    let r = http("POST", &format!("{url}/v2/{repo}/blobs/uploads/"), &[], &[]);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    r.header("location").unwrap().to_owned()
}

/// A request: method, path, headers and body.
pub type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)], &'a [u8]);

/// The session at `location` is gone.
fn assert_gone(url: &str, location: &str) {
    let r = http("GET", &format!("{url}{location}"), &[], &[]);
    expect(&r, 404, "BLOB_UPLOAD_UNKNOWN", location);
}

/// A PATCH of `body` with `Content-Range: range`.
fn patch(url: &str, location: &str, range: &str, body: &[u8]) -> Resp {
    http(
        "PATCH",
        &format!("{url}{location}"),
        &[
            ("Content-Range", range),
            ("Content-Type", "application/octet-stream"),
        ],
        body,
    )
}
