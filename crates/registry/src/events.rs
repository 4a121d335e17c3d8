//! Registry events: the payload the webhooks crate delivers and the durable
//! event log it is read from.
//!
//! An event is appended to the log inside the same transaction as the
//! change it describes ([`crate::kv::Tx::append_event`], the only way in),
//! and the change is durable before the client gets its 2xx: an
//! acknowledged change always has its event, and a change that did not
//! commit never does. Sequence numbers follow commit order, so a reader can
//! tail the log with a cursor without missing a late-committing event.
//!
//! The log keeps the newest `event_retention` events (see [`retain`]) and
//! every event a reader still [holds](EventLog::hold): a webhook dispatcher
//! that lags never loses one.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What happened. Serialized as the contract's lowercase names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A manifest was stored under a tag or digest.
    Push,
    /// A manifest was deleted.
    Delete,
    /// A Helm chart was uploaded or pushed as an OCI artifact.
    ChartPush,
    /// A Helm chart version was deleted.
    ChartDelete,
    /// A manifest was pushed while quarantine is enabled.
    Quarantine,
}

/// The event payload, field for field as in the webhooks contract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// A UUID, for receivers to deduplicate at-least-once deliveries.
    pub id: String,
    /// RFC 3339 UTC with nanoseconds, e.g. `2017-11-17T16:52:01.343145347Z`.
    pub timestamp: String,
    /// What happened.
    pub action: Action,
    /// What it happened to.
    pub target: Target,
    /// The HTTP request that caused it.
    pub request: Request,
}

/// The object of an event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The manifest's (or chart's) media type.
    pub media_type: String,
    /// Byte count; absent on `delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Content digest.
    pub digest: String,
    /// Byte count again (ACR sends both); absent on `delete` and charts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Repository name.
    pub repository: String,
    /// The tag pushed; absent for pushes by digest and for deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Chart name (chart events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Chart version (chart events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The request behind an event, exactly as the client sent it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The request id, also returned to the client as `X-Request-Id`.
    pub id: String,
    /// The `Host` header as received.
    pub host: String,
    /// The HTTP method.
    pub method: String,
    /// The `User-Agent` header as received.
    pub useragent: String,
}

/// The media type of chart events (ACR's).
pub const CHART_MEDIA_TYPE: &str = "application/vnd.acr.helm.chart";

impl Target {
    /// The target of a `chart_push`/`chart_delete`: the `.tgz`'s digest and
    /// size, the chart repository, `tag` = `{name}-{version}.tgz`, and the
    /// chart's real name and version (no `length`, as in ACR's payload).
    pub fn chart(
        repository: &str,
        name: &str,
        version: &str,
        digest: impl ToString,
        size: u64,
    ) -> Self {
        Self {
            media_type: CHART_MEDIA_TYPE.to_owned(),
            size: Some(size),
            digest: digest.to_string(),
            length: None,
            repository: repository.to_owned(),
            tag: Some(format!("{name}-{version}.tgz")),
            name: Some(name.to_owned()),
            version: Some(version.to_owned()),
        }
    }

    /// The target of a manifest event: media type, size (as `size` and
    /// `length`), digest and repository; no tag.
    pub fn manifest(
        media_type: &str,
        size: u64,
        digest: impl ToString,
        repository: impl ToString,
    ) -> Self {
        Self {
            media_type: media_type.to_owned(),
            size: Some(size),
            digest: digest.to_string(),
            length: Some(size),
            repository: repository.to_string(),
            ..Self::default()
        }
    }
}

impl Event {
    /// A new event with a fresh id and the current time.
    pub fn new(action: Action, target: Target, request: Request) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            timestamp: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
            action,
            target,
            request,
        }
    }
}

/// One entry of the event log: the event plus what matching needs but the
/// wire payload does not carry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The payload as delivered.
    pub event: Event,
    /// For `delete`: the tags the manifest had when it was deleted, so that a
    /// `repo:tag` scope matches (the payload itself carries no tag).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The location of the replica that raised it (`location`), for the
    /// webhooks bound to a location; stamped when it is appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl From<Event> for Record {
    /// A record whose matching needs nothing beyond the payload (every
    /// action but `delete`).
    fn from(event: Event) -> Self {
        Self {
            event,
            tags: Vec::new(),
            location: None,
        }
    }
}

/// The event log as its readers (the webhooks dispatcher, `/api/events`)
/// see it: only events known to be durable. The registry makes every change
/// durable before its 2xx, and publishes the sequence number that covered,
/// so readers never flush themselves and never see an event a crash could
/// take back.
///
/// The log keeps the newest `event_retention` events and every event after
/// a reader's [`Hold`]. Holds are stored, so that on a shared engine the
/// replica that trims respects the readers of every replica.
#[derive(Debug)]
pub struct EventLog {
    db: crate::kv::Db,
    holds: crate::kv::Tree,
}

/// A reader's place in the log: the log keeps every event after it until
/// the reader moves it on.
#[derive(Debug)]
pub struct Hold {
    name: String,
    holds: crate::kv::Tree,
}

impl Hold {
    /// Lets the log remove events up to `seq`: the reader is done with them.
    pub async fn advance(&self, seq: u64) -> Result<(), crate::Error> {
        self.holds
            .insert(self.name.as_bytes(), &seq.to_be_bytes())
            .await
    }
}

impl EventLog {
    /// The log of `db`.
    pub fn new(db: crate::kv::Db) -> Result<Self, crate::Error> {
        Ok(Self {
            holds: db.tree("event_holds")?,
            db,
        })
    }

    /// Keeps every event after `after` until the reader `name` moves on.
    pub async fn hold(&self, name: &str, after: u64) -> Result<Hold, crate::Error> {
        let hold = Hold {
            name: name.to_owned(),
            holds: self.holds.clone(),
        };
        hold.advance(after).await?;
        Ok(hold)
    }

    /// Removes the events older than the newest `keep` durable ones that no
    /// hold needs, returning how many went. The removal is not flushed: if
    /// a crash takes it back, the next trim repeats it.
    pub(crate) async fn trim(&self, keep: u64) -> Result<usize, crate::Error> {
        use futures_util::TryStreamExt;
        let holds: Vec<_> = self.holds.iter(b"").try_collect().await?;
        let held = holds
            .iter()
            .map(|(_, v)| crate::kv::decode_u64(Some(v)))
            .min();
        let last = self.db.log_durable().await?.saturating_sub(keep);
        let cut = held.map_or(last, |h| h.min(last));
        self.db.log_trim(cut).await
    }

    /// The highest sequence number known to be durable (on a shared engine:
    /// known to this replica; see [`EventLog::subscribe`]).
    pub fn durable(&self) -> u64 {
        *self.db.watch_durable().borrow()
    }

    /// Notified whenever [`EventLog::durable`] moves.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.db.watch_durable()
    }

    /// The sequence number of the last committed event, durable or not.
    pub async fn last_committed(&self) -> Result<u64, crate::Error> {
        self.db.log_last().await
    }

    /// Up to `limit` durable records after `after`, oldest first.
    pub async fn read(&self, after: u64, limit: usize) -> Result<Vec<(u64, Record)>, crate::Error> {
        self.db.log_after(after, limit, false).await
    }

    /// Every committed record after `after`, durable or not (for garbage
    /// collection, which must see pushes still being flushed).
    pub(crate) async fn read_committed(
        &self,
        after: u64,
    ) -> Result<Vec<(u64, Record)>, crate::Error> {
        self.db.log_after(after, usize::MAX, true).await
    }
}

/// How often [`retain`] trims.
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// Keeps the log at the newest `keep` events (and what readers hold),
/// trimming every second until dropped; `keep` = 0 keeps every event. Of
/// replicas sharing a log, the one holding the `event-retention` lease trims.
pub(crate) async fn retain(log: Arc<EventLog>, keep: u64) {
    if keep == 0 {
        return;
    }
    let mut tick = tokio::time::interval(TRIM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lease = None;
    loop {
        tick.tick().await;
        if !lease.as_ref().is_some_and(crate::kv::Lease::held) {
            lease = match log.db.try_lease("event-retention").await {
                Ok(lease) => lease,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the event log's retention lease");
                    None
                }
            };
        }
        if lease.is_none() {
            continue;
        }
        if let Err(e) = log.trim(keep).await {
            tracing::error!(error = %e, "trimming the event log failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Db;

    /// A log in a temporary database holding events 1..=n, all durable.
    async fn log_of(dir: &std::path::Path, n: u64) -> EventLog {
        let db = Db::open(dir).unwrap();
        for _ in 0..n {
            let event = Event::new(Action::Push, Target::default(), Request::default());
            db.transaction(|tx| {
                let event = event.clone();
                Box::pin(async move { tx.append_event(event) })
            })
            .await
            .unwrap();
        }
        EventLog::new(db).unwrap()
    }

    async fn seqs(log: &EventLog) -> Vec<u64> {
        let read = log.read(0, 100).await.unwrap();
        read.into_iter().map(|(s, _)| s).collect()
    }

    #[tokio::test]
    async fn trim_keeps_the_newest_events_and_what_a_hold_needs() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_of(dir.path(), 10).await;
        let hold = log.hold("reader", 3).await.unwrap();
        assert_eq!(log.trim(2).await.unwrap(), 3);
        assert_eq!(seqs(&log).await, (4..=10).collect::<Vec<_>>());
        hold.advance(10).await.unwrap();
        assert_eq!(log.trim(2).await.unwrap(), 5);
        assert_eq!(seqs(&log).await, [9, 10]);
        assert_eq!(log.trim(0).await.unwrap(), 2);
        assert_eq!(seqs(&log).await, Vec::<u64>::new());
        assert_eq!(log.last_committed().await.unwrap(), 10, "numbering goes on");
    }

    #[tokio::test]
    async fn trim_and_readers_never_touch_events_not_yet_durable() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_of(dir.path(), 6).await;
        // Four more committed but not flushed, as the embedded engine
        // stores them (its `events` tree, numbered by `counters`).
        let (events, counters) = (
            log.db.tree("events").unwrap(),
            log.db.tree("counters").unwrap(),
        );
        for seq in 7..=10u64 {
            let record = Record::from(Event::new(
                Action::Push,
                Target::default(),
                Request::default(),
            ));
            events
                .insert(&seq.to_be_bytes(), &serde_json::to_vec(&record).unwrap())
                .await
                .unwrap();
        }
        counters
            .insert(b"events", &10u64.to_be_bytes())
            .await
            .unwrap();
        assert_eq!(log.durable(), 6);
        assert_eq!(log.trim(2).await.unwrap(), 4);
        assert_eq!(seqs(&log).await, [5, 6]);
        assert_eq!(log.read_committed(0).await.unwrap().len(), 6);
    }

    #[test]
    fn chart_payload_is_the_contracts() {
        let event = Event::new(
            Action::ChartPush,
            Target::chart("repo", "wordpress", "5.4.0", "sha256:abc", 25265),
            Request::default(),
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["action"], "chart_push");
        assert_eq!(
            json["target"],
            serde_json::json!({
                "mediaType": "application/vnd.acr.helm.chart", "size": 25265, "digest": "sha256:abc",
                "repository": "repo", "tag": "wordpress-5.4.0.tgz", "name": "wordpress", "version": "5.4.0",
            })
        );
    }

    #[test]
    fn push_payload_has_contract_fields_only() {
        let target = Target {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: Some(524),
            digest: "sha256:abc".into(),
            length: Some(524),
            repository: "hello-world".into(),
            tag: Some("v1".into()),
            ..Target::default()
        };
        let request = Request {
            id: "r".into(),
            host: "h".into(),
            method: "PUT".into(),
            useragent: "ua".into(),
        };
        let event = Event::new(Action::Push, target, request);
        let json = serde_json::to_value(&event).unwrap();
        let keys: Vec<_> = json["target"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            ["digest", "length", "mediaType", "repository", "size", "tag"]
        );
        assert_eq!(json["action"], "push");
        assert!(event.timestamp.ends_with('Z') && event.timestamp.contains('.'));
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
    }
}
