//! Delivery history: one entry per attempt (and per dropped event), newest
//! first per webhook, in the ACR `listEvents` shape, bounded per webhook.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::client::Attempt;
use crate::store::{self, Store};
use crate::webhook::Webhook;
use crate::Error;

/// How an entry ended, as listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Got a 2xx.
    Delivered,
    /// Failed; will be retried.
    Retrying,
    /// Failed for the last time.
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        }
    }
}

/// The history entry of one attempt. Custom header values are masked.
pub fn attempt_entry(
    hook: &Webhook,
    payload: &Value,
    attempt: &Attempt,
    attempts: u32,
    result: Outcome,
) -> Value {
    let headers: BTreeMap<&str, &str> = attempt
        .request_headers
        .iter()
        .map(|(k, v)| {
            let custom = hook.custom_headers.contains_key(k);
            (k.as_str(), if custom { "******" } else { v.as_str() })
        })
        .collect();
    let mut entry = json!({
        "id": payload["id"],
        "timestamp": humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        "attempts": attempts,
        "result": result.as_str(),
        "latencyMs": attempt.latency.as_millis() as u64,
        "eventRequestMessage": {
            "content": payload,
            "headers": headers,
            "method": "POST",
            "requestUri": hook.service_uri,
            "version": "1.1",
        },
    });
    match &attempt.response {
        Ok(r) => {
            entry["eventResponseMessage"] = json!({
                "content": r.body,
                "headers": r.headers,
                "reasonPhrase": r.reason,
                "statusCode": r.status.to_string(),
                "version": "1.1",
            });
        }
        Err(e) => entry["error"] = json!(e),
    }
    entry
}

/// The entry recorded when a full queue refuses an event.
pub fn dropped_entry(payload: &Value, queue_limit: u64) -> Value {
    json!({
        "id": payload["id"],
        "timestamp": humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        "attempts": 0,
        "result": "dropped",
        "error": format!("queue full ({queue_limit} pending deliveries): event dropped"),
        "eventRequestMessage": {"content": payload, "method": "POST", "version": "1.1"},
    })
}

/// Appends an entry. The webhook's history is trimmed back to `limit` about
/// every `limit / 4` appends (a trim walks the whole history), so it holds
/// up to a quarter more entries between trims; [`list`] shows `limit`.
pub fn append(store: &Store, name: &str, entry: &Value, limit: usize) -> Result<(), Error> {
    let id = store.db.generate_id()?;
    store
        .history
        .insert(store::key(name, !id), serde_json::to_vec(entry)?)?;
    if id % (limit as u64 / 4).max(32) == 0 {
        for key in store
            .history
            .scan_prefix(store::prefix(name))
            .keys()
            .skip(limit)
        {
            store.history.remove(key?)?;
        }
    }
    Ok(())
}

/// Up to `n` entries after skipping `skip`, newest first, of the newest
/// `limit`.
pub fn list(
    store: &Store,
    name: &str,
    skip: usize,
    n: usize,
    limit: usize,
) -> Result<Vec<Value>, Error> {
    store
        .history
        .scan_prefix(store::prefix(name))
        .values()
        .take(limit)
        .skip(skip)
        .take(n)
        .map(|v| Ok(serde_json::from_slice(&v?)?))
        .collect()
}
