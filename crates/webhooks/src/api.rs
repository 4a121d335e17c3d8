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
//! | POST   | `/api/webhooks/{name}/events/{id}/redeliver` | redeliver |
//! | POST   | `/api/webhooks/{name}/replay`     | replay      |
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
use registry::ext::body::{self, Body};
use registry::ext::{Action, Ctx, Endpoint, Extension, Need, Query, Role};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::dispatcher::{self, catch_up};
use crate::retry::Outcome;
use crate::webhook::{Format, Status, Webhook};
use crate::{format, history};
use crate::{Error, Webhooks};

/// Largest request body the admin API reads.
const MAX_BODY: usize = 64 * 1024;
/// Default and largest page of list-events.
const PAGE: usize = 50;

/// A request of the admin API.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/webhooks`
    List,
    /// `PUT /api/webhooks/{name}`
    Create(String),
    /// `GET /api/webhooks/{name}`
    Show(String),
    /// `PATCH /api/webhooks/{name}`
    Update(String),
    /// `DELETE /api/webhooks/{name}`
    Delete(String),
    /// `GET /api/webhooks/{name}/config`
    Config(String),
    /// `POST /api/webhooks/{name}/ping`
    Ping(String),
    /// `GET /api/webhooks/{name}/events`
    Events(String),
    /// `POST /api/webhooks/{name}/events/{id}/redeliver`
    Redeliver(String, String),
    /// `POST /api/webhooks/{name}/replay`
    Replay(String),
}

impl Route {
    /// Parses `method` and the path after `/api/webhooks`.
    pub fn parse(method: &Method, path: &str) -> Result<Self, Error> {
        let path = path.strip_prefix('/').unwrap_or(path);
        let path = path.strip_suffix('/').unwrap_or(path);
        let parts: Vec<&str> = if path.is_empty() {
            vec![]
        } else {
            path.split('/').collect()
        };
        let name = |n: &str| n.to_owned();
        Ok(match (method.clone(), parts.as_slice()) {
            (Method::GET, []) => Self::List,
            (Method::PUT, [n]) => Self::Create(name(n)),
            (Method::GET, [n]) => Self::Show(name(n)),
            (Method::PATCH, [n]) => Self::Update(name(n)),
            (Method::DELETE, [n]) => Self::Delete(name(n)),
            (Method::GET, [n, "config"]) => Self::Config(name(n)),
            (Method::POST, [n, "ping"]) => Self::Ping(name(n)),
            (Method::GET, [n, "events"]) => Self::Events(name(n)),
            (Method::POST, [n, "events", id, "redeliver"]) => Self::Redeliver(name(n), name(id)),
            (Method::POST, [n, "replay"]) => Self::Replay(name(n)),
            (
                _,
                []
                | [_]
                | [_, "config" | "ping" | "events" | "replay"]
                | [_, "events", _, "redeliver"],
            ) => return Err(Error::Route(StatusCode::METHOD_NOT_ALLOWED)),
            _ => return Err(Error::Route(StatusCode::NOT_FOUND)),
        })
    }
}

impl Endpoint for Route {
    /// Everything here is an admin's business.
    fn need(&self) -> Need {
        Need::Role(Role::Admin)
    }

    fn label(&self) -> &'static str {
        "webhooks"
    }

    /// Every request but the listings writes (pings and redeliveries too:
    /// they record an attempt).
    fn writes(&self) -> bool {
        !matches!(
            self,
            Route::List | Route::Show(_) | Route::Config(_) | Route::Events(_)
        )
    }
}

impl Extension for Webhooks {
    type Route = Route;

    fn prefix(&self) -> &'static str {
        "/api/webhooks"
    }

    fn parse(&self, method: &Method, path: &str) -> Result<Route, Box<Response<Body>>> {
        Route::parse(method, path).map_err(|e| Box::new(reply_error(e)))
    }

    fn metrics(&self, out: &mut String) {
        crate::metrics::render(&self.shared, out);
    }

    async fn handle(&self, ctx: &Ctx, route: Route, req: Request<Incoming>) -> Response<Body> {
        match self.serve(route, req, ctx.body_idle_timeout).await {
            Ok((status, value)) => body::json(status, &value),
            Err(e) => reply_error(e),
        }
    }
}

/// An error as the API answers it: `{"error": {"code", "message"}}`.
fn reply_error(e: Error) -> Response<Body> {
    let message = match &e {
        Error::Internal(cause) => {
            tracing::error!(%cause, "webhooks API");
            "internal error (see the registry log)".to_owned()
        }
        e => e.to_string(),
    };
    body::json(
        e.status(),
        &json!({"error": {"code": e.code(), "message": message}}),
    )
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
    format: Option<Format>,
    /// `""` on update removes it.
    location: Option<String>,
}

type Reply = Result<(StatusCode, Value), Error>;

impl Webhooks {
    /// Answers `route`; `idle` bounds pauses while reading the body.
    async fn serve(
        &self,
        route: Route,
        req: Request<Incoming>,
        idle: std::time::Duration,
    ) -> Reply {
        let query = Query::parse(req.uri().query());
        // Writes to the webhooks' database wait for room on the disk; a
        // delete may use the margin (see `registry::ext::Space`).
        match route {
            Route::List | Route::Show(_) | Route::Config(_) | Route::Events(_) => {}
            Route::Delete(_) => self.shared.space.admit_cleanup()?,
            _ => self.shared.space.admit(0)?,
        }
        match route {
            Route::List => self.list().await,
            Route::Create(name) => self.create(&name, read(req, idle).await?).await,
            Route::Show(name) => self.show(&name).await,
            Route::Update(name) => self.update(&name, read(req, idle).await?).await,
            Route::Delete(name) => self.delete(&name).await,
            Route::Config(name) => Ok((
                StatusCode::OK,
                self.shared.store.get(&name).await?.config_view(),
            )),
            Route::Ping(name) => self.ping(&name).await,
            Route::Events(name) => self.events(&name, &query).await,
            Route::Redeliver(name, id) => self.redeliver(&name, &id).await,
            Route::Replay(name) => {
                let range = read_json(req, idle).await?;
                let report = dispatcher::replay(&self.shared, &name, range).await?;
                Ok((StatusCode::OK, serde_json::to_value(report)?))
            }
        }
    }

    /// Every webhook, with `lastDelivery`: when its newest attempt was,
    /// and the HTTP status it got or the error (the portal's HTTP STATUS).
    async fn list(&self) -> Reply {
        let mut hooks = Vec::new();
        for hook in self.shared.store.all().await?.iter() {
            let mut v = self.view(hook);
            let limit = self.shared.config.history_limit;
            let newest = history::list(&self.shared.store, &hook.name, 0, 1, limit).await?;
            v["lastDelivery"] = newest.first().map_or(Value::Null, |e| {
                json!({
                    "timestamp": e["timestamp"],
                    "statusCode": e["eventResponseMessage"]["statusCode"],
                    "error": e["error"],
                })
            });
            hooks.push(v);
        }
        Ok((StatusCode::OK, json!({"webhooks": hooks})))
    }

    async fn show(&self, name: &str) -> Reply {
        Ok((
            StatusCode::OK,
            self.view(&self.shared.store.get(name).await?),
        ))
    }

    /// The summary plus `pending`: deliveries queued and not yet done.
    fn view(&self, hook: &Webhook) -> Value {
        let mut v = hook.summary();
        v["pending"] = json!(self.shared.queue.pending(&hook.name));
        v
    }

    async fn create(&self, name: &str, f: Fields) -> Reply {
        let s = &self.shared;
        catch_up(s).await?;
        if s.store.count().await? >= s.config.max_webhooks {
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
            format: f.format.unwrap_or_default(),
            location: f.location.filter(|l| !l.is_empty()),
        };
        hook.validate()?;
        s.store.create(&hook).await?;
        s.queue.load(name).await?;
        s.workers.start(&self.shared, name);
        Ok((StatusCode::CREATED, hook.summary()))
    }

    async fn update(&self, name: &str, f: Fields) -> Reply {
        let s = &self.shared;
        catch_up(s).await?;
        let mut hook = s.store.get(name).await?;
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
        if let Some(v) = f.format {
            hook.format = v;
        }
        if let Some(v) = f.location {
            hook.location = Some(v).filter(|l| !l.is_empty());
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
        let s = &self.shared;
        catch_up(s).await?;
        s.workers.stop(name);
        s.store.remove(name).await?;
        s.queue.clear(name).await?;
        Ok((StatusCode::OK, json!({"deleted": name})))
    }

    /// Sends `{"id","timestamp","action":"ping"}` now, records it like any
    /// delivery, and reports what the receiver answered.
    async fn ping(&self, name: &str) -> Reply {
        let s = &self.shared;
        let hook = s.store.get(name).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let timestamp = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let body = format::ping(hook.format, &id, &timestamp, &s.registry_url)?;
        self.send_now(&hook, &id, body).await
    }

    /// Sends a recorded delivery (or ping) again, byte for byte, as a new
    /// attempt in the history, and reports what the receiver answered.
    async fn redeliver(&self, name: &str, id: &str) -> Reply {
        let s = &self.shared;
        let hook = s.store.get(name).await?;
        let bytes = history::recorded_body(&s.store, name, id)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!("{name}: no recorded delivery of event {id}"))
            })?;
        self.send_now(&hook, id, format::recorded(bytes)).await
    }

    /// One POST now, outside the queue (ping, redeliver): recorded in the
    /// history like any attempt; the reply names the receiver's status or
    /// the error.
    async fn send_now(&self, hook: &Webhook, id: &str, body: format::Body) -> Reply {
        let s = &self.shared;
        let attempt = s.client.post(hook, id, body.clone()).await;
        let ok = attempt
            .response
            .as_ref()
            .is_ok_and(|r| (200..300).contains(&r.status));
        let outcome = if ok {
            Outcome::Delivered
        } else {
            Outcome::GiveUp
        };
        let entry = history::attempt_entry(hook, id, &body, &attempt, 1, &outcome)?;
        history::append(&s.store, &hook.name, entry, s.config.history_limit).await?;
        let reply = match &attempt.response {
            Ok(r) => json!({"id": id, "statusCode": r.status}),
            Err(e) => json!({"id": id, "error": e}),
        };
        Ok((StatusCode::OK, reply))
    }

    /// `?n=&skip=`: newest first; `nextLink` when there is more.
    async fn events(&self, name: &str, query: &Query) -> Reply {
        self.shared.store.get(name).await?;
        let number = |key: &'static str, default: usize| match query.get(key) {
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| Error::Invalid(key, format!("{v:?} is not a number"))),
            None => Ok(default),
        };
        let (n, skip) = (number("n", PAGE)?.min(PAGE), number("skip", 0)?);
        let limit = self.shared.config.history_limit;
        let mut value = history::list(&self.shared.store, name, skip, n + 1, limit).await?;
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

/// The create or update fields of `req`'s body.
async fn read(req: Request<Incoming>, idle: std::time::Duration) -> Result<Fields, Error> {
    read_json(req, idle).await
}

/// `req`'s JSON body; an empty body is `T::default()`.
async fn read_json<T: serde::de::DeserializeOwned + Default>(
    req: Request<Incoming>,
    idle: std::time::Duration,
) -> Result<T, Error> {
    let bytes = body::collect_limited(req.into_body(), MAX_BODY, idle)
        .await
        .map_err(|e| Error::BadRequest(e.to_string()))?
        .ok_or_else(|| Error::BadRequest(format!("body larger than {MAX_BODY} bytes")))?;
    if bytes.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| Error::BadRequest(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_parses_and_needs_an_admin() {
        let cases = [
            (Method::GET, "", Route::List),
            (Method::GET, "/", Route::List),
            (Method::PUT, "/hook01", Route::Create("hook01".into())),
            (Method::GET, "/hook01", Route::Show("hook01".into())),
            (Method::PATCH, "/hook01", Route::Update("hook01".into())),
            (Method::DELETE, "/hook01/", Route::Delete("hook01".into())),
            (
                Method::GET,
                "/hook01/config",
                Route::Config("hook01".into()),
            ),
            (Method::POST, "/hook01/ping", Route::Ping("hook01".into())),
            (
                Method::GET,
                "/hook01/events",
                Route::Events("hook01".into()),
            ),
        ];
        for (method, path, route) in cases {
            let parsed = Route::parse(&method, path).unwrap();
            assert_eq!(parsed, route, "{method} {path}");
            assert_eq!(parsed.need(), Need::Role(Role::Admin));
            assert_eq!(parsed.label(), "webhooks");
        }
        let status = |m: Method, p: &str| Route::parse(&m, p).unwrap_err().status();
        assert_eq!(status(Method::POST, ""), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            status(Method::GET, "/hook01/ping"),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(status(Method::GET, "/hook01/nope"), StatusCode::NOT_FOUND);
        assert_eq!(status(Method::GET, "/a/b/c"), StatusCode::NOT_FOUND);
    }
}
