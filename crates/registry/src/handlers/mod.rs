//! One async function per endpoint, and [`handle`], which classifies a
//! request through the route table, checks access, and calls the
//! endpoint's handler. Handlers return `Result<Response, Error>`; the error
//! becomes the spec's JSON error body here, in one place.

mod blobs;
mod browse;
mod event_log;
mod health;
mod listing;
mod maintenance;
mod manifests;
mod policies;
mod quarantine;
mod referrers;
mod repositories;
mod status;
mod uploads;

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};

use crate::body::{self, Body};
use crate::query::Query;
use crate::request::Ctx;
use crate::route::{Head, Refusal, Route};
use crate::{Error, Registry};

/// What a handler returns.
pub(crate) type Reply = Result<Response<Body>, Error>;

/// Classifies `req`, checks access, runs its handler, turns errors into
/// responses and counts the answer in the metrics.
pub(crate) async fn handle(reg: &Registry, ctx: &Ctx, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let (label, resp) = match Route::parse(&method, req.uri().path(), &reg.extensions) {
        Err(Refusal { label, response }) => (label, *response),
        Ok(route) => {
            let label = route.label();
            let console = req.headers().contains_key(CONSOLE_HEADER);
            let resp = async {
                refuse_cross_site(&method, req.headers())?;
                let mut principal = None;
                if let Some(auth) = &reg.auth {
                    principal = auth
                        .check(req.headers(), route.need(), &route.access())
                        .await?;
                    if let Some(p) = &principal {
                        tracing::Span::current().record("user", p.name.as_str());
                    }
                }
                if route.writes() && reg.store.policies().read_only() {
                    return Err(Error::ReadOnly);
                }
                if let Some(repo) = route.pushes_to() {
                    reg.upstreams.refuse_push(&reg.store, repo).await?;
                }
                dispatch(reg, ctx, route, req, principal.as_ref()).await
            }
            .await
            .unwrap_or_else(Error::into_response);
            let mut resp = resp;
            if console {
                // The console signs in with its own form; a challenge
                // would make the browser show its own dialog first.
                resp.headers_mut().remove(header::WWW_AUTHENTICATE);
            }
            (label, resp)
        }
    };
    reg.metrics.request(label, &method, resp.status().as_u16());
    resp
}

/// The header the web console's requests carry.
const CONSOLE_HEADER: &str = "x-berth-console";

/// Refuses a state-changing request another site's page made a browser
/// send (cross-site request forgery): its `Sec-Fetch-Site` says
/// `cross-site`, or its `Origin` is not this registry's. Clients that send
/// neither (docker, helm, curl, the CLI) are not affected.
fn refuse_cross_site(method: &Method, headers: &header::HeaderMap) -> Result<(), Error> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let cross = text("sec-fetch-site") == Some("cross-site")
        || text("origin").is_some_and(|origin| {
            let host = origin.split_once("://").map(|(_, h)| h);
            host.is_none() || host != text("host")
        });
    if cross {
        return Err(Error::CrossSite);
    }
    Ok(())
}

/// Runs the handler of `route`; `principal` is who asked, when known.
async fn dispatch(
    reg: &Registry,
    ctx: &Ctx,
    route: Route,
    req: Request<Incoming>,
    principal: Option<&crate::auth::Principal>,
) -> Reply {
    let (parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query());
    let headers = &parts.headers;
    use Route as R;
    match route {
        R::Health => Ok(health::health()),
        R::Root => Ok(status::root()),
        R::WhoAmI => status::whoami(reg, principal),
        R::Status => status::status(reg).await,
        R::BrowseRepositories => browse::repositories(reg, &query).await,
        R::BrowseTags(repo) => browse::tags(reg, &repo, &query).await,
        R::BrowseManifest(repo, d) => browse::manifest(reg, &repo, &d).await,
        R::Ready => Ok(health::ready(reg).await),
        R::Metrics => Ok(health::metrics(reg).await),
        R::Base => Ok(body::json(StatusCode::OK, &serde_json::json!({}))),
        R::Catalog => listing::list_repositories(reg, &query).await,
        R::Tags(repo) => listing::list_tags(reg, &repo, &query).await,
        R::GetManifest(repo, r, Head(head)) => manifests::get_manifest(reg, &repo, &r, head).await,
        R::PutManifest(repo, r) => {
            manifests::put_manifest(reg, ctx, &repo, &r, &query, headers, body).await
        }
        R::DeleteManifest(repo, r) => manifests::delete_manifest(reg, ctx, &repo, &r).await,
        R::GetBlob(repo, d, Head(head)) => {
            let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
            blobs::get_blob(reg, &repo, &d, range, head).await
        }
        R::DeleteBlob(repo, d) => blobs::delete_blob(reg, &repo, &d).await,
        R::StartUpload(repo) => uploads::start_upload(reg, &repo, &query, body).await,
        R::UploadStatus(repo, id) => uploads::upload_status(reg, &repo, &id).await,
        R::PatchUpload(repo, id) => uploads::patch_upload(reg, &repo, &id, headers, body).await,
        R::FinishUpload(repo, id) => {
            uploads::finish_upload(reg, &repo, &id, &query, headers, body).await
        }
        R::CancelUpload(repo, id) => uploads::cancel_upload(reg, &repo, &id).await,
        R::Referrers(repo, d) => referrers::list_referrers(reg, &repo, &d, &query).await,
        R::Events => event_log::list_events(reg, &query).await,
        R::Fsck { repair } => maintenance::fsck(reg, repair).await,
        R::Gc { dry_run } => maintenance::gc(reg, dry_run).await,
        R::Retention { dry_run } => policies::retention(reg, ctx, dry_run).await,
        R::Policies { set } => policies::policies(reg, ctx, set, body).await,
        R::Maintenance { set } => policies::maintenance(reg, ctx, set, body).await,
        R::DeleteRepository(repo) => repositories::delete(reg, ctx, &repo).await,
        R::HeldManifests => quarantine::list(reg).await,
        R::HeldManifest(repo, d) => quarantine::show(reg, &repo, &d).await,
        R::Judge(repo, d) => quarantine::judge(reg, ctx, &repo, &d, body).await,
        R::Extension(routed) => {
            let req = Request::from_parts(parts, body);
            Ok(routed.handle(ctx.clone(), req).await)
        }
    }
}

/// An empty response with `status`.
pub(crate) fn status(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = status;
    resp
}

/// A request body as the chunk stream storage consumes.
///
/// A client that sends nothing for `idle` fails its request, so a stalled
/// upload cannot hold its session forever.
fn chunks(body: Incoming, idle: Duration) -> impl crate::storage::uploads::UploadBody {
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
