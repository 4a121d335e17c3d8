//! Delivery history: one entry per attempt (and per dropped event), newest
//! first per webhook, in the ACR `listEvents` shape, bounded per webhook.

use std::collections::BTreeMap;

use registry::events::Event;
use serde::Serialize;
use serde_json::Value;

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

/// A history entry, as stored and listed: ACR's `listEvents` shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a, C: Serialize> {
    id: &'a str,
    timestamp: String,
    attempts: u32,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<u64>,
    event_request_message: RequestMessage<'a, C>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_response_message: Option<ResponseMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestMessage<'a, C: Serialize> {
    content: &'a C,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<&'a str, &'a str>>,
    method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_uri: Option<&'a str>,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseMessage<'a> {
    content: &'a str,
    headers: &'a BTreeMap<String, String>,
    reason_phrase: &'a str,
    status_code: String,
    version: &'static str,
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// The history entry of one attempt to deliver `content` (whose id is
/// `id`), encoded. Custom header values are masked.
pub fn attempt_entry<C: Serialize>(
    hook: &Webhook,
    (id, content): (&str, &C),
    attempt: &Attempt,
    attempts: u32,
    result: Outcome,
) -> Result<Vec<u8>, Error> {
    let headers = attempt
        .request_headers
        .iter()
        .map(|(k, v)| {
            let custom = hook.custom_headers.contains_key(k);
            (k.as_str(), if custom { "******" } else { v.as_str() })
        })
        .collect();
    let (response, error) = match &attempt.response {
        Ok(r) => (
            Some(ResponseMessage {
                content: &r.body,
                headers: &r.headers,
                reason_phrase: &r.reason,
                status_code: r.status.to_string(),
                version: "1.1",
            }),
            None,
        ),
        Err(e) => (None, Some(e.clone())),
    };
    Ok(serde_json::to_vec(&Entry {
        id,
        timestamp: now(),
        attempts,
        result: result.as_str(),
        latency_ms: Some(attempt.latency.as_millis() as u64),
        event_request_message: RequestMessage {
            content,
            headers: Some(headers),
            method: "POST",
            request_uri: Some(&hook.service_uri),
            version: "1.1",
        },
        event_response_message: response,
        error,
    })?)
}

/// The entry recorded when a full queue refuses `event`, encoded.
pub fn dropped_entry(event: &Event, queue_limit: u64) -> Result<Vec<u8>, Error> {
    Ok(serde_json::to_vec(&Entry {
        id: &event.id,
        timestamp: now(),
        attempts: 0,
        result: "dropped",
        latency_ms: None,
        event_request_message: RequestMessage {
            content: event,
            headers: None,
            method: "POST",
            request_uri: None,
            version: "1.1",
        },
        event_response_message: None,
        error: Some(format!(
            "queue full ({queue_limit} pending deliveries): event dropped"
        )),
    })?)
}

/// Appends an entry and removes the oldest ones past `limit`. Entries of a
/// webhook are numbered 1, 2, 3, ... (see [`Store::histories`]), so the
/// one to drop is found by its key, with no walk of the history (and no
/// reverse iteration, whose sled code weighs about 1 MB in the binary).
/// Only entries numbered otherwise (written by an older version) or kept
/// under a larger `limit` are trimmed by a walk.
pub fn append(store: &Store, name: &str, entry: Vec<u8>, limit: usize) -> Result<(), Error> {
    let prefix = store::prefix(name);
    let mut histories = store.histories();
    let history = match histories.get_mut(name) {
        Some(history) => history,
        None => {
            // One walk, once per webhook: the first key is the newest.
            let (mut newest, mut len) = (0, 0);
            for key in store.history.scan_prefix(&prefix).keys() {
                if len == 0 {
                    newest = !store::decode_u64(Some(key?.subslice(prefix.len(), 8)));
                }
                len += 1;
            }
            histories
                .entry(name.to_owned())
                .or_insert(store::History { newest, len })
        }
    };
    history.newest += 1;
    store
        .history
        .insert(store::key(name, !history.newest), entry)?;
    history.len += 1;
    if history.len > limit {
        let oldest = history.newest.saturating_sub(limit as u64);
        if oldest > 0 && store.history.remove(store::key(name, !oldest))?.is_some() {
            history.len -= 1;
        }
    }
    if history.len > limit {
        for key in store.history.scan_prefix(&prefix).keys().skip(limit) {
            store.history.remove(key?)?;
        }
        history.len = limit;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> Store {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let log = registry::events::EventLog::open(
            db.open_tree("events").unwrap(),
            db.open_tree("counters").unwrap(),
        )
        .unwrap();
        Store::open(std::sync::Arc::new(log), dir).unwrap()
    }

    fn listed(store: &Store, name: &str) -> Vec<Value> {
        list(store, name, 0, 100, 100).unwrap()
    }

    #[test]
    fn history_keeps_exactly_the_newest_entries_also_after_a_restart() {
        let dir = std::env::temp_dir().join(format!("berth-history-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let store = open(&dir);
            for i in 0..10 {
                append(&store, "hook01", i.to_string().into_bytes(), 4).unwrap();
                append(&store, "hook02", (100 + i).to_string().into_bytes(), 20).unwrap();
            }
            assert_eq!(listed(&store, "hook01"), [9, 8, 7, 6]);
            assert_eq!(listed(&store, "hook02").len(), 10);
            store.db.flush().unwrap();
        }
        // After a restart the length is counted again; a lower limit
        // applies from the first append.
        let store = open(&dir);
        append(&store, "hook01", b"10".to_vec(), 2).unwrap();
        assert_eq!(listed(&store, "hook01"), [10, 9]);
        assert_eq!(listed(&store, "hook02")[0], 109);
        // Entries numbered by an older version (global ids) are trimmed too.
        for id in [5_000u64, 7_000] {
            store
                .history
                .insert(store::key("hook03", !id), id.to_string().as_bytes())
                .unwrap();
        }
        append(&store, "hook03", b"1".to_vec(), 2).unwrap();
        append(&store, "hook03", b"2".to_vec(), 2).unwrap();
        assert_eq!(listed(&store, "hook03"), [2, 1]);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
