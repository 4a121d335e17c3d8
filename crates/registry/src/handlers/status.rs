//! What a person (or the web console) asks about the registry itself:
//! `GET /` sends a browser to the console, `GET /api/whoami` says who is
//! asking and with which role, `GET /api/status` gives the version,
//! uptime, storage and request counters.

use hyper::{header, Response, StatusCode};
use serde_json::json;

use super::Reply;
use crate::auth::{Principal, Role};
use crate::body::{self, Body};
use crate::Registry;

/// Where the console lives.
const CONSOLE: &str = "/console/";

/// `GET /`: a redirect to the console.
pub(super) fn root() -> Response<Body> {
    let mut resp = super::status(StatusCode::FOUND);
    resp.headers_mut()
        .insert(header::LOCATION, header::HeaderValue::from_static(CONSOLE));
    resp
}

/// `GET /api/whoami`: `{"user", "role", "auth"}`; without access control
/// everyone may do everything.
pub(super) fn whoami(reg: &Registry, principal: Option<&Principal>) -> Reply {
    let (role, auth) = match (&reg.auth, principal) {
        (Some(_), Some(p)) => (p.role(), true),
        (Some(_), None) => (Role::Pull, true),
        (None, _) => (Role::Admin, false),
    };
    Ok(body::json(
        StatusCode::OK,
        &json!({"user": principal.map(|p| &p.name), "role": role, "auth": auth}),
    ))
}

/// `GET /api/status`.
pub(super) async fn status(reg: &Registry) -> Reply {
    let (requests, failed) = reg.metrics.answered();
    let c = &reg.config;
    let store = &reg.store;
    Ok(body::json(
        StatusCode::OK,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptimeSeconds": reg.started.elapsed().as_secs(),
            "ready": store.failure().is_none(),
            "readOnly": store.policies().read_only(),
            "location": c.location,
            "storage": {
                "metadata": if c.metadata_url.is_empty() { "embedded" } else { "postgresql" },
                "blobs": if c.blob_url.is_empty() { "files" } else { "s3" },
                "freeBytes": store.free_bytes(),
                "repositories": store.meta().repos.count(b"").await?,
                "uploadsInProgress": store.meta().uploads.count(b"").await?,
            },
            "requests": {"total": requests, "failed": failed},
        }),
    ))
}
