//! `GET /api/events`: the registry-wide event log, so a pipeline can assert
//! what happened without running a receiver.

use hyper::StatusCode;
use serde_json::json;

use super::Reply;
use crate::events::Action;
use crate::query::Query;
use crate::{body, Error, Registry};

/// Largest page; more continues with `?after=<last seq>`.
const MAX_PAGE: usize = 1000;

/// `GET /api/events[?action=&repository=&since=&after=&n=]`: events oldest
/// first, each with its sequence number `seq`. `since` is an RFC 3339
/// timestamp; `after` a sequence number (exclusive). The reply carries
/// `last`, the sequence number to pass as `after` for the next page. The
/// log keeps the newest `event_retention` events: a page whose `after` is
/// older starts at the oldest one kept.
pub(super) async fn list_events(reg: &Registry, query: &Query) -> Reply {
    let action = match query.get("action") {
        Some(a) => Some(
            serde_json::from_value::<Action>(json!(a))
                .map_err(|_| Error::BadParameter("action"))?,
        ),
        None => None,
    };
    let repository = query.get("repository").map(str::to_owned);
    let since = match query.get("since") {
        Some(s) => {
            Some(humantime::parse_rfc3339_weak(s).map_err(|_| Error::BadParameter("since"))?)
        }
        None => None,
    };
    let after = query.number::<u64>("after")?.unwrap_or(0);
    let n = query
        .number::<usize>("n")?
        .map_or(MAX_PAGE, |n| n.min(MAX_PAGE));
    // Only durable events are listed: a crash cannot take one back.
    let log = &reg.store.meta().log;
    let mut items = Vec::new();
    let mut last = after;
    let mut cursor = after;
    // Read in batches until the page is full or the log ends.
    'pages: while items.len() < n {
        let batch = log.read(cursor, MAX_PAGE).await?;
        let Some((seq, _)) = batch.last() else { break };
        cursor = *seq;
        for (seq, record) in batch {
            last = seq;
            let e = &record.event;
            let keep = action.is_none_or(|a| a == e.action)
                && repository
                    .as_ref()
                    .is_none_or(|r| *r == e.target.repository)
                && since.is_none_or(|s| {
                    humantime::parse_rfc3339_weak(&e.timestamp).is_ok_and(|t| t >= s)
                });
            if keep {
                let mut value = serde_json::to_value(e)?;
                value["seq"] = json!(seq);
                items.push(value);
                if items.len() == n {
                    break 'pages;
                }
            }
        }
    }
    Ok(body::json(
        StatusCode::OK,
        &json!({"events": items, "last": last}),
    ))
}
