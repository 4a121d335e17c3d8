//! Webhooks end to end: a real `berth` process, real HTTP receivers on
//! 127.0.0.1, and the contract (`docs/webhooks.md`) checked field
//! by field.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use support::receiver::{Receiver, Reply};
use support::{digest, http, push_image, BerthProcess};

#[path = "webhooks/actions.rs"]
mod actions;
#[path = "webhooks/admin.rs"]
mod admin;
#[path = "webhooks/cloudevents.rs"]
mod cloudevents;
#[path = "webhooks/delivery.rs"]
mod delivery;
#[path = "webhooks/durability.rs"]
mod durability;
#[path = "webhooks/matching.rs"]
mod matching;
#[path = "webhooks/payloads.rs"]
mod payloads;
#[path = "webhooks/receivers.rs"]
mod receivers;
#[path = "webhooks/redelivery.rs"]
mod redelivery;
#[path = "webhooks/signing.rs"]
mod signing;
#[path = "webhooks/transport.rs"]
mod transport;

/// Fast retries so the tests do not wait on production backoffs.
const FAST: &str =
    "[delivery]\nbackoff_base = \"20ms\"\nbackoff_cap = \"200ms\"\ntimeout = \"2s\"\n";

fn create(reg: &BerthProcess, name: &str, body: Value) -> support::Resp {
    http(
        "PUT",
        &format!("{}/api/webhooks/{name}", reg.url()),
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn api(reg: &BerthProcess, method: &str, path: &str, body: Option<Value>) -> support::Resp {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    http(
        method,
        &format!("{}/api/webhooks{path}", reg.url()),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// The delivery history of `name` once it holds `n` entries: the worker
/// records an attempt just after the receiver answers it.
fn history(reg: &BerthProcess, name: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let entries = api(reg, "GET", &format!("/{name}/events"), None).json()["value"]
            .as_array()
            .unwrap()
            .clone();
        if entries.len() >= n || std::time::Instant::now() > deadline {
            return entries;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The keys of a JSON object, in order.
fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn is_timestamp(s: &str) -> bool {
    s.ends_with('Z') && s.contains('.') && humantime::parse_rfc3339(s).is_ok()
}
