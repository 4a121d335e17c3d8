//! One async function per endpoint, and [`handle`], which routes a request
//! to it. Handlers return `Result<Response, Error>`; the error becomes the
//! spec's JSON error body here, in one place.

mod blobs;
mod event_log;
mod health;
mod listing;
mod maintenance;
mod manifests;
mod quarantine;
pub mod query;
mod referrers;
mod repositories;
mod uploads;

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};

use crate::body::{self, Body};
use crate::route::Route;
use crate::{events, Error, Registry};
use query::Query;

/// What a handler returns.
pub type Reply = Result<Response<Body>, Error>;

/// Per-request context handlers may need.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The request as events record it (id, host, method, user agent).
    pub request: events::Request,
    /// How long the request body may pause between reads
    /// ([`crate::Config::body_idle_timeout`]), for whoever reads it,
    /// extensions included.
    pub body_idle_timeout: Duration,
}

/// Routes `req` to its handler, turns errors into responses and counts
/// the answer in the metrics.
pub async fn handle(reg: &Registry, ctx: &Ctx, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let label = label(reg, req.uri().path());
    let resp = async {
        if let Some(auth) = &reg.auth {
            let need = crate::auth::need(&method, req.uri().path());
            if let Some(user) = auth.check(req.headers(), need).await? {
                tracing::Span::current().record("user", user);
            }
        }
        dispatch(reg, ctx, req).await
    }
    .await
    .unwrap_or_else(Error::into_response);
    reg.metrics.request(label, &method, resp.status().as_u16());
    resp
}

/// The metrics label of `path`.
fn label(reg: &Registry, path: &str) -> &'static str {
    match path {
        "/health" => "health",
        "/ready" => "ready",
        "/metrics" => "metrics",
        "/api/events" => "events",
        "/api/fsck" => "fsck",
        "/api/gc" => "gc",
        _ if path.starts_with("/api/repositories/") => "repositories",
        _ if path.starts_with("/api/quarantine") => "quarantine",
        _ => extension(reg, path).map_or_else(|| crate::route::label(path), |e| e.prefix()),
    }
}

/// The extension that owns `path`, if any.
fn extension<'r>(reg: &'r Registry, path: &str) -> Option<&'r dyn crate::extension::Extension> {
    reg.extensions
        .iter()
        .find(|e| {
            path.strip_prefix(e.prefix())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .map(|e| &**e)
}

async fn dispatch(reg: &Registry, ctx: &Ctx, req: Request<Incoming>) -> Reply {
    let path = req.uri().path();
    let method = req.method();
    let get = method == Method::GET || method == Method::HEAD;
    match path {
        "/health" if get => return Ok(health::health()),
        "/ready" if get => return Ok(health::ready(reg)),
        "/metrics" if get => return Ok(health::metrics(reg)),
        "/health" | "/ready" | "/metrics" => return Err(Error::MethodNotAllowed),
        _ => {}
    }
    if path == "/api/fsck" {
        return maintenance::fsck(reg, method).await;
    }
    if path == "/api/gc" {
        return maintenance::gc(reg, method).await;
    }
    if path == "/api/events" {
        return match *req.method() {
            Method::GET => event_log::list_events(reg, &Query::parse(req.uri().query())).await,
            _ => Err(Error::MethodNotAllowed),
        };
    }
    if let Some(name) = path.strip_prefix("/api/repositories/") {
        let name = name.to_owned();
        return repositories::handle(reg, ctx, req.method(), &name).await;
    }
    if let Some(rest) = path.strip_prefix("/api/quarantine") {
        if rest.is_empty() || rest.starts_with('/') {
            let rest = rest.to_owned();
            let (parts, body) = req.into_parts();
            return quarantine::handle(reg, ctx, &parts.method, &rest, body).await;
        }
    }
    if let Some(ext) = extension(reg, path) {
        return Ok(ext.handle(ctx, req).await);
    }
    let route = Route::parse(path)?;
    let (parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query());
    let head = parts.method == Method::HEAD;
    let headers = &parts.headers;
    match (parts.method, route) {
        (Method::GET | Method::HEAD, Route::Base) => {
            Ok(body::json(StatusCode::OK, &serde_json::json!({})))
        }
        (Method::GET, Route::Catalog) => listing::list_repositories(reg, &query).await,
        (Method::GET, Route::Tags(repo)) => listing::list_tags(reg, &repo, &query).await,
        (Method::GET | Method::HEAD, Route::Manifest(repo, r)) => {
            manifests::get_manifest(reg, &repo, &r, head).await
        }
        (Method::PUT, Route::Manifest(repo, r)) => {
            manifests::put_manifest(reg, ctx, &repo, &r, &query, headers, body).await
        }
        (Method::DELETE, Route::Manifest(repo, r)) => {
            manifests::delete_manifest(reg, ctx, &repo, &r).await
        }
        (Method::GET | Method::HEAD, Route::Blob(repo, d)) => {
            let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
            blobs::get_blob(reg, &repo, &d, range, head).await
        }
        (Method::DELETE, Route::Blob(repo, d)) => blobs::delete_blob(reg, &repo, &d).await,
        (Method::POST, Route::Uploads(repo)) => {
            uploads::start_upload(reg, &repo, &query, body).await
        }
        (Method::GET, Route::Upload(repo, id)) => uploads::upload_status(reg, &repo, &id).await,
        (Method::PATCH, Route::Upload(repo, id)) => {
            uploads::patch_upload(reg, &repo, &id, headers, body).await
        }
        (Method::PUT, Route::Upload(repo, id)) => {
            uploads::finish_upload(reg, &repo, &id, &query, headers, body).await
        }
        (Method::DELETE, Route::Upload(repo, id)) => uploads::cancel_upload(reg, &repo, &id).await,
        (Method::GET, Route::Referrers(repo, d)) => {
            referrers::list_referrers(reg, &repo, &d, &query).await
        }
        _ => Err(Error::MethodNotAllowed),
    }
}

/// An empty response with `status`.
pub fn status(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = status;
    resp
}

/// A request body as the chunk stream storage consumes.
///
/// A client that sends nothing for `idle` fails its request, so a stalled
/// upload cannot hold its session forever.
fn chunks(body: Incoming, idle: Duration) -> impl crate::storage::uploads::Chunks {
    let data = BodyDataStream::new(body).map_err(|e| Error::BodyRead(e.to_string()));
    futures_util::stream::unfold(Some(Box::pin(data)), move |data| async move {
        // After an error the stream ends: nothing more is read.
        let mut data = data?;
        match tokio::time::timeout(idle, data.next()).await {
            Ok(next) => next.map(|item| {
                let more = item.is_ok().then_some(data);
                (item, more)
            }),
            Err(_) => Some((
                Err(Error::BodyRead(format!(
                    "no data received for {}",
                    humantime::format_duration(idle)
                ))),
                None,
            )),
        }
    })
    .boxed()
}
