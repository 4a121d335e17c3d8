//! The admin API, served on the registry's port under `/api/webhooks`:
//!
//! | method | path                              | verb        |
//! |--------|-----------------------------------|-------------|
//! | GET    | `/api/webhooks`                   | list        |
//! | PUT    | `/api/webhooks/{name}`            | create      |
//! | GET    | `/api/webhooks/{name}`            | show        |
//! | PATCH  | `/api/webhooks/{name}`            | update      |
//! | DELETE | `/api/webhooks/{name}`            | delete      |
//! | GET    | `/api/webhooks/{name}/config`     | get-config  |
//! | POST   | `/api/webhooks/{name}/ping`       | ping        |
//! | GET    | `/api/webhooks/{name}/events`     | list-events |
//!
//! A change takes effect in event order: every event logged before it is
//! matched against the webhooks as they were (a webhook disabled at push time
//! never gets that push, one created after it never does either).
//!
//! Errors are `{"error": {"code", "message"}}` with 400 (invalid field),
//! 404 (unknown webhook), 409 (name taken) or 422 (quota reached).

use std::collections::{BTreeMap, BTreeSet};

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use registry::body::{self, Body};
use registry::events::Action;
use registry::extension::{BoxFuture, Extension};
use registry::handlers::{query::Query, Ctx};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::dispatcher::dispatch_pending;
use crate::history::{self, Outcome};
use crate::webhook::{Status, Webhook};
use crate::{Error, Webhooks};

/// Largest request body the admin API reads.
const MAX_BODY: usize = 64 * 1024;
/// Default and largest page of list-events.
const PAGE: usize = 50;

impl Extension for Webhooks {
    fn prefix(&self) -> &'static str {
        "/api/webhooks"
    }

    fn metrics(&self, out: &mut String) {
        crate::metrics::render(&self.shared.workers, out);
    }

    fn handle<'a>(&'a self, ctx: &'a Ctx, req: Request<Incoming>) -> BoxFuture<'a, Response<Body>> {
        Box::pin(async move {
            match self.route(req, ctx.body_idle_timeout).await {
                Ok((status, value)) => body::json(status, &value),
                Err(e) => {
                    if let Error::Internal(cause) = &e {
                        tracing::error!(%cause, "webhooks API");
                    }
                    body::json(
                        e.status(),
                        &json!({"error": {"code": e.code(), "message": e.to_string()}}),
                    )
                }
            }
        })
    }
}

/// The fields of create and update; all optional for update.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Fields {
    service_uri: Option<String>,
    custom_headers: Option<BTreeMap<String, String>>,
    actions: Option<BTreeSet<Action>>,
    scope: Option<String>,
    status: Option<Status>,
    secret: Option<String>,
}

type Reply = Result<(StatusCode, Value), Error>;

impl Webhooks {
    /// Answers `req`; `idle` bounds pauses while reading its body.
    async fn route(&self, req: Request<Incoming>, idle: std::time::Duration) -> Reply {
        let path = req
            .uri()
            .path()
            .trim_start_matches("/api/webhooks")
            .trim_matches('/')
            .to_owned();
        let query = Query::parse(req.uri().query());
        let method = req.method().clone();
        let parts: Vec<&str> = if path.is_empty() {
            vec![]
        } else {
            path.split('/').collect()
        };
        match (method, parts.as_slice()) {
            (Method::GET, []) => self.list(),
            (Method::PUT, [name]) => self.create(name, read(req, idle).await?).await,
            (Method::GET, [name]) => self.show(name),
            (Method::PATCH, [name]) => self.update(name, read(req, idle).await?).await,
            (Method::DELETE, [name]) => self.delete(name).await,
            (Method::GET, [name, "config"]) => {
                Ok((StatusCode::OK, self.shared.store.get(name)?.config_view()))
            }
            (Method::POST, [name, "ping"]) => self.ping(name).await,
            (Method::GET, [name, "events"]) => self.events(name, &query),
            (_, [] | [_] | [_, "config" | "ping" | "events"]) => {
                Err(Error::Route(StatusCode::METHOD_NOT_ALLOWED))
            }
            _ => Err(Error::Route(StatusCode::NOT_FOUND)),
        }
    }

    fn list(&self) -> Reply {
        let hooks: Vec<Value> = self
            .shared
            .store
            .all()?
            .iter()
            .map(|h| self.view(h))
            .collect::<Result<_, _>>()?;
        Ok((StatusCode::OK, json!({"webhooks": hooks})))
    }

    fn show(&self, name: &str) -> Reply {
        Ok((StatusCode::OK, self.view(&self.shared.store.get(name)?)?))
    }

    /// The summary plus `pending`: deliveries queued and not yet done.
    fn view(&self, hook: &Webhook) -> Result<Value, Error> {
        let mut v = hook.summary();
        v["pending"] = json!(self.shared.workers.pending(&hook.name));
        Ok(v)
    }

    async fn create(&self, name: &str, f: Fields) -> Reply {
        let s = &self.shared;
        dispatch_pending(s).await?;
        if s.store.webhooks.contains_key(name)? {
            return Err(Error::Exists(name.to_owned()));
        }
        if s.store.webhooks.len() >= s.config.max_webhooks {
            return Err(Error::Quota(s.config.max_webhooks));
        }
        let hook = Webhook {
            name: name.to_owned(),
            service_uri: f
                .service_uri
                .ok_or(Error::Invalid("serviceUri", "required".into()))?,
            custom_headers: f.custom_headers.unwrap_or_default(),
            actions: f
                .actions
                .ok_or(Error::Invalid("actions", "required".into()))?,
            status: f.status.unwrap_or_default(),
            scope: f.scope.unwrap_or_default(),
            secret: f.secret,
            previous_secret: None,
            previous_secret_until: None,
        };
        hook.validate()?;
        s.store.put(&hook).await?;
        s.workers.start(&self.shared, name);
        Ok((StatusCode::CREATED, hook.summary()))
    }

    async fn update(&self, name: &str, f: Fields) -> Reply {
        let s = &self.shared;
        dispatch_pending(s).await?;
        let mut hook = s.store.get(name)?;
        if let Some(v) = f.service_uri {
            hook.service_uri = v;
        }
        if let Some(v) = f.custom_headers {
            hook.custom_headers = v;
        }
        if let Some(v) = f.actions {
            hook.actions = v;
        }
        if let Some(v) = f.scope {
            hook.scope = v;
        }
        if let Some(v) = f.status {
            hook.status = v;
        }
        if let Some(new) = f.secret {
            if hook.secret.as_ref() != Some(&new) {
                let grace = s.config.secret_rotation_grace.as_secs();
                hook.previous_secret_until = hook
                    .secret
                    .as_ref()
                    .map(|_| crate::store::now_ms() / 1000 + grace);
                hook.previous_secret = hook.secret.replace(new);
            }
        }
        hook.validate()?;
        s.store.put(&hook).await?;
        s.workers.wake(name);
        Ok((StatusCode::OK, hook.summary()))
    }

    async fn delete(&self, name: &str) -> Reply {
        dispatch_pending(&self.shared).await?;
        self.shared.workers.stop(name);
        self.shared.store.remove(name).await?;
        Ok((StatusCode::OK, json!({"deleted": name})))
    }

    /// Sends `{"id","timestamp","action":"ping"}` now, records it like any
    /// delivery, and reports what the receiver answered.
    async fn ping(&self, name: &str) -> Reply {
        let s = &self.shared;
        let hook = s.store.get(name)?;
        let id = uuid::Uuid::new_v4().to_string();
        let timestamp = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let payload = json!({"id": id, "timestamp": timestamp, "action": "ping"});
        let attempt = s
            .client
            .post(&hook, &id, serde_json::to_vec(&payload)?)
            .await;
        let ok = attempt
            .response
            .as_ref()
            .is_ok_and(|r| (200..300).contains(&r.status));
        let outcome = if ok {
            Outcome::Delivered
        } else {
            Outcome::Failed
        };
        let entry = history::attempt_entry(&hook, (&id, &payload), &attempt, 1, outcome)?;
        history::append(&s.store, name, entry, s.config.history_limit)?;
        let reply = match &attempt.response {
            Ok(r) => json!({"id": id, "statusCode": r.status}),
            Err(e) => json!({"id": id, "error": e}),
        };
        Ok((StatusCode::OK, reply))
    }

    /// `?n=&skip=`: newest first; `nextLink` when there is more.
    fn events(&self, name: &str, query: &Query) -> Reply {
        self.shared.store.get(name)?;
        let number = |key: &'static str, default: usize| match query.get(key) {
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| Error::Invalid(key, format!("{v:?} is not a number"))),
            None => Ok(default),
        };
        let (n, skip) = (number("n", PAGE)?.min(PAGE), number("skip", 0)?);
        let limit = self.shared.config.history_limit;
        let mut value = history::list(&self.shared.store, name, skip, n + 1, limit)?;
        let mut reply = json!({});
        if value.len() > n {
            value.truncate(n);
            reply["nextLink"] = json!(format!(
                "/api/webhooks/{name}/events?n={n}&skip={}",
                skip + n
            ));
        }
        reply["value"] = json!(value);
        Ok((StatusCode::OK, reply))
    }
}

async fn read(req: Request<Incoming>, idle: std::time::Duration) -> Result<Fields, Error> {
    let bytes = body::collect_limited(req.into_body(), MAX_BODY, idle)
        .await
        .map_err(|e| Error::BadRequest(e.to_string()))?
        .ok_or_else(|| Error::BadRequest(format!("body larger than {MAX_BODY} bytes")))?;
    if bytes.is_empty() {
        return Ok(Fields::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| Error::BadRequest(e.to_string()))
}
