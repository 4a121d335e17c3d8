//! The body of a delivery: ACR's payload as it is, or (extension, per
//! webhook) a CloudEvents 1.0 envelope around it in structured mode.
//!
//! | CloudEvents attribute | value |
//! |---|---|
//! | `specversion` | `1.0` |
//! | `id` | the event's id (receivers deduplicate by it, as with ACR's) |
//! | `source` | the registry's URL as the request's `Host` gave it: `http://registry.example.com` |
//! | `type` | `io.berth.registry.<action>`: `push`, `delete`, `chart_push`, `chart_delete`, `quarantine`, `ping` |
//! | `subject` | `repository:tag`, or `repository@digest` without a tag |
//! | `time` | the event's timestamp |
//! | `datacontenttype` | `application/json` |
//! | `data` | ACR's payload |
//!
//! The type names follow the spec's advice (reverse-DNS prefixed) and keep
//! ACR's action names, so a receiver can route on either.

use registry::ext::Event;
use serde::Serialize;

use crate::webhook::Format;

/// The media type of a structured-mode CloudEvent.
pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// A delivery's body and its `Content-Type`.
#[derive(Clone, Debug)]
pub struct Body {
    /// The bytes POSTed.
    pub bytes: Vec<u8>,
    /// Their media type.
    pub content_type: &'static str,
}

/// A CloudEvents 1.0 envelope, in the spec's attribute order.
#[derive(Serialize)]
struct Envelope<'a, D: Serialize> {
    specversion: &'static str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    time: &'a str,
    datacontenttype: &'static str,
    data: &'a D,
}

/// The body delivering `event`; `scheme` is the registry's (`http` or
/// `https`), for the CloudEvents `source`.
pub fn event(format: Format, event: &Event, scheme: &str) -> Result<Body, serde_json::Error> {
    match format {
        Format::Acr => acr(event),
        Format::Cloudevents => {
            let target = &event.target;
            let subject = match &target.tag {
                Some(tag) => format!("{}:{tag}", target.repository),
                None => format!("{}@{}", target.repository, target.digest),
            };
            let action = serde_json::to_value(event.action)?;
            let envelope = Envelope {
                specversion: "1.0",
                id: &event.id,
                source: &format!("{scheme}://{}", event.request.host),
                kind: format!("io.berth.registry.{}", action.as_str().unwrap_or_default()),
                subject: Some(subject),
                time: &event.timestamp,
                datacontenttype: "application/json",
                data: event,
            };
            cloudevent(&envelope)
        }
    }
}

/// The body of a ping `{"id", "timestamp", "action": "ping"}`, whose
/// CloudEvents `source` is `registry_url`.
pub fn ping(
    format: Format,
    id: &str,
    timestamp: &str,
    registry_url: &str,
) -> Result<Body, serde_json::Error> {
    let payload = serde_json::json!({"id": id, "timestamp": timestamp, "action": "ping"});
    match format {
        Format::Acr => Ok(Body {
            bytes: serde_json::to_vec(&payload)?,
            content_type: "application/json",
        }),
        Format::Cloudevents => cloudevent(&Envelope {
            specversion: "1.0",
            id,
            source: registry_url,
            kind: "io.berth.registry.ping".to_owned(),
            subject: None,
            time: timestamp,
            datacontenttype: "application/json",
            data: &payload,
        }),
    }
}

/// A body recorded in the history, sent again as it was: a CloudEvent
/// (it has `specversion`) or ACR's payload.
pub fn recorded(bytes: Vec<u8>) -> Body {
    #[derive(serde::Deserialize)]
    struct Probe {
        specversion: Option<serde::de::IgnoredAny>,
    }
    let cloudevent = serde_json::from_slice::<Probe>(&bytes).is_ok_and(|p| p.specversion.is_some());
    Body {
        bytes,
        content_type: if cloudevent {
            CLOUDEVENTS_JSON
        } else {
            "application/json"
        },
    }
}

fn acr(event: &Event) -> Result<Body, serde_json::Error> {
    Ok(Body {
        bytes: serde_json::to_vec(event)?,
        content_type: "application/json",
    })
}

fn cloudevent<D: Serialize>(envelope: &Envelope<'_, D>) -> Result<Body, serde_json::Error> {
    Ok(Body {
        bytes: serde_json::to_vec(envelope)?,
        content_type: CLOUDEVENTS_JSON,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry::ext::{Action, Request, Target};

    #[test]
    fn cloudevents_wrap_the_acr_payload() {
        let mut target = Target::manifest("m", 3, "sha256:ab", "team/app");
        target.tag = Some("v1".into());
        let request = Request {
            host: "reg.example:5000".into(),
            ..Request::default()
        };
        let e = Event::new(Action::Push, target, request);
        let acr_body = event(Format::Acr, &e, "https").unwrap();
        assert_eq!(acr_body.content_type, "application/json");
        assert_eq!(acr_body.bytes, serde_json::to_vec(&e).unwrap());

        let ce = event(Format::Cloudevents, &e, "https").unwrap();
        assert_eq!(ce.content_type, CLOUDEVENTS_JSON);
        let v: serde_json::Value = serde_json::from_slice(&ce.bytes).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["id"], e.id);
        assert_eq!(v["source"], "https://reg.example:5000");
        assert_eq!(v["type"], "io.berth.registry.push");
        assert_eq!(v["subject"], "team/app:v1");
        assert_eq!(v["time"], e.timestamp);
        assert_eq!(v["data"], serde_json::to_value(&e).unwrap());

        let mut by_digest = e.clone();
        by_digest.target.tag = None;
        by_digest.action = Action::ChartDelete;
        let v: serde_json::Value = serde_json::from_slice(
            &event(Format::Cloudevents, &by_digest, "http")
                .unwrap()
                .bytes,
        )
        .unwrap();
        assert_eq!(v["subject"], "team/app@sha256:ab");
        assert_eq!(v["type"], "io.berth.registry.chart_delete");

        assert_eq!(recorded(ce.bytes.clone()).content_type, CLOUDEVENTS_JSON);
        assert_eq!(
            recorded(acr_body.bytes.clone()).content_type,
            "application/json"
        );
        let p = ping(Format::Cloudevents, "i", "t", "http://127.0.0.1:5000").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&p.bytes).unwrap();
        assert_eq!(
            (v["type"].as_str(), v.get("subject")),
            (Some("io.berth.registry.ping"), None)
        );
        assert_eq!(v["data"]["action"], "ping");
    }
}
