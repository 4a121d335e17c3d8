//! Delivery history: one entry per attempt (and per dropped event), newest
//! first per webhook, in the ACR `listEvents` shape, bounded per webhook.
//!
//! | key                                    | value             |
//! |----------------------------------------|-------------------|
//! | webhook name `\0` !entry number (u64 BE) | entry JSON      |
//!
//! Entries of a webhook are numbered 1, 2, 3, ...; keys store the bitwise
//! complement of the number, so a prefix scan yields the newest first.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use registry::ext::{decode_u64, key, Event};
use serde::Serialize;
use serde_json::Value;

use crate::client::Attempt;
use crate::format::Body;
use crate::retry::Outcome;
use crate::store::Store;
use crate::webhook::Webhook;
use crate::Error;

/// A history entry, as stored and listed: ACR's `listEvents` shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a, C: Serialize + ?Sized> {
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
struct RequestMessage<'a, C: Serialize + ?Sized> {
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

/// The history entry of one attempt to deliver `body` (of event `id`),
/// encoded: the body as sent, the headers with every secret value (custom
/// headers, credentials from the service URI) as `******`, the service URI
/// with its password masked.
pub fn attempt_entry(
    hook: &Webhook,
    id: &str,
    body: &Body,
    attempt: &Attempt,
    attempts: u32,
    outcome: &Outcome,
) -> Result<Vec<u8>, Error> {
    let headers = attempt
        .request_headers
        .iter()
        .map(|(k, v)| {
            let secret =
                hook.custom_headers.contains_key(k) || k.eq_ignore_ascii_case("authorization");
            (k.as_str(), if secret { MASK } else { v.as_str() })
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
    let content = serde_json::value::RawValue::from_string(
        String::from_utf8_lossy(&body.bytes).into_owned(),
    )?;
    let uri = hook.masked_uri();
    Ok(serde_json::to_vec(&Entry {
        id,
        timestamp: now(),
        attempts,
        result: outcome.listed(),
        latency_ms: Some(attempt.latency.as_millis() as u64),
        event_request_message: RequestMessage {
            content: content.as_ref(),
            headers: Some(headers),
            method: "POST",
            request_uri: Some(&uri),
            version: "1.1",
        },
        event_response_message: response,
        error,
    })?)
}

/// What a secret reads as in the history.
const MASK: &str = "******";

/// The body recorded by the newest entry of `name`'s history for event (or
/// ping) `id`, byte for byte as it was sent.
pub async fn recorded_body(store: &Store, name: &str, id: &str) -> Result<Option<Vec<u8>>, Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Recorded {
        id: String,
        event_request_message: RecordedRequest,
    }
    #[derive(serde::Deserialize)]
    struct RecordedRequest {
        content: Box<serde_json::value::RawValue>,
    }
    let mut all = std::pin::pin!(store.history.iter(&prefix(name)));
    while let Some((_, v)) = all.try_next().await? {
        let entry: Recorded = serde_json::from_slice(&v)?;
        if entry.id == id {
            let bytes = entry
                .event_request_message
                .content
                .get()
                .as_bytes()
                .to_vec();
            return Ok(Some(bytes));
        }
    }
    Ok(None)
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

/// Appends an entry and removes the oldest past `limit`: the entry `limit`
/// numbers back, found by its key. The history is walked and trimmed only
/// on its first append since start-up (the limit may have been lowered)
/// and when that entry is not there (entries numbered by an older
/// version). The next number is read from the tree and taken with a
/// compare-and-swap, so replicas sharing a database never number two
/// entries alike.
pub async fn append(store: &Store, name: &str, entry: Vec<u8>, limit: usize) -> Result<(), Error> {
    let prefix = prefix(name);
    let tree = &store.history;
    let mut trimmed = store.trimmed.lock().await;
    if trimmed.insert(name.to_owned()) {
        trim(tree, &prefix, limit.saturating_sub(1)).await?;
    }
    loop {
        let newest = match tree.first(&prefix).await? {
            Some((k, _)) => !decode_u64(k.get(prefix.len()..)),
            None => 0,
        };
        let number = newest + 1;
        let taken = tree
            .compare_and_swap(&entry_key(name, number), None, Some(&entry))
            .await?;
        if !taken {
            continue;
        }
        let back = limit as u64;
        if number > back && !tree.remove(&entry_key(name, number - back)).await? {
            trim(tree, &prefix, limit).await?;
        }
        return Ok(());
    }
}

/// Removes every entry of a history but the newest `keep`.
async fn trim(tree: &registry::ext::Tree, prefix: &[u8], keep: usize) -> Result<(), Error> {
    let all: Vec<_> = tree.iter(prefix).try_collect().await?;
    for (key, _) in all.into_iter().skip(keep) {
        tree.remove(&key).await?;
    }
    Ok(())
}

/// Up to `n` entries after skipping `skip`, newest first, of the newest
/// `limit`.
pub async fn list(
    store: &Store,
    name: &str,
    skip: usize,
    n: usize,
    limit: usize,
) -> Result<Vec<Value>, Error> {
    let wanted = limit.min(skip.saturating_add(n));
    let page = store.history.scan_prefix(&prefix(name), wanted).await?;
    page.into_iter()
        .skip(skip)
        .map(|(_, v)| Ok(serde_json::from_slice(&v)?))
        .collect()
}

/// Removes a webhook's whole history.
pub async fn clear(store: &Store, name: &str) -> Result<(), Error> {
    let _one_at_a_time = store.trimmed.lock().await;
    let all: Vec<_> = store.history.iter(&prefix(name)).try_collect().await?;
    for (key, _) in all {
        store.history.remove(&key).await?;
    }
    Ok(())
}

/// `name \0`.
fn prefix(name: &str) -> Vec<u8> {
    key(&[name.as_bytes(), b""])
}

/// `name \0 !number`.
fn entry_key(name: &str, number: u64) -> Vec<u8> {
    key(&[name.as_bytes(), &(!number).to_be_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    async fn open(dir: &std::path::Path) -> Store {
        let registry = registry::ext::Db::open(&dir.join("registry")).unwrap();
        let log = Arc::new(registry::ext::EventLog::new(registry).unwrap());
        Store::open(registry::ext::Db::open(&dir.join("hooks")).unwrap(), log)
            .await
            .unwrap()
    }

    async fn listed(store: &Store, name: &str) -> Vec<Value> {
        list(store, name, 0, 100, 100).await.unwrap()
    }

    #[tokio::test]
    async fn history_keeps_exactly_the_newest_entries_also_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(dir.path()).await;
            for i in 0..10 {
                append(&store, "hook01", i.to_string().into_bytes(), 4)
                    .await
                    .unwrap();
                append(&store, "hook02", (100 + i).to_string().into_bytes(), 20)
                    .await
                    .unwrap();
            }
            assert_eq!(listed(&store, "hook01").await, [9, 8, 7, 6]);
            assert_eq!(listed(&store, "hook02").await.len(), 10);
            assert_eq!(
                list(&store, "hook02", 2, 3, 100).await.unwrap(),
                [107, 106, 105]
            );
            assert_eq!(list(&store, "hook02", 0, 10, 4).await.unwrap().len(), 4);
            store.db().flush().await.unwrap();
        }
        // After a restart the length is counted again; a lower limit
        // applies from the first append.
        let store = open(dir.path()).await;
        append(&store, "hook01", b"10".to_vec(), 2).await.unwrap();
        assert_eq!(listed(&store, "hook01").await, [10, 9]);
        assert_eq!(listed(&store, "hook02").await[0], 109);
        // Entries numbered by an older version (global ids) are trimmed too.
        for id in [5_000u64, 7_000] {
            store
                .history
                .insert(&entry_key("hook03", id), id.to_string().as_bytes())
                .await
                .unwrap();
        }
        append(&store, "hook03", b"1".to_vec(), 2).await.unwrap();
        append(&store, "hook03", b"2".to_vec(), 2).await.unwrap();
        assert_eq!(listed(&store, "hook03").await, [2, 1]);
        clear(&store, "hook03").await.unwrap();
        assert!(listed(&store, "hook03").await.is_empty());
    }
}
