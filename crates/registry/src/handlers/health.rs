//! Probes and metrics: `GET /health` (alive; ChartMuseum's shape),
//! `GET /ready` (the store answers) and `GET /metrics` (Prometheus).

use hyper::{header, Response, StatusCode};
use serde_json::json;

use crate::body::{self, Body};
use crate::Registry;

/// 200 `{"healthy":true}` whenever the process serves requests.
pub(super) fn health() -> Response<Body> {
    body::json(StatusCode::OK, &json!({"healthy": true}))
}

/// 200 `{"ready":true}` when the metadata store answers a read; 503 with
/// the reason otherwise.
pub(super) async fn ready(reg: &Registry) -> Response<Body> {
    if let Some(cause) = reg.store.failure() {
        return body::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"ready": false, "error": format!("the store failed and needs a restart: {cause}")}),
        );
    }
    let read_only = reg.store.policies().read_only();
    match reg.store.meta().repos.first(b"").await {
        Ok(_) => body::json(
            StatusCode::OK,
            &json!({"ready": true, "readOnly": read_only}),
        ),
        Err(e) => body::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"ready": false, "error": e.to_string()}),
        ),
    }
}

/// The registry's and every extension's samples, Prometheus text format.
pub(super) async fn metrics(reg: &Registry) -> Response<Body> {
    let mut out = String::new();
    let db = &reg.store.meta().db;
    let gauges = crate::metrics::StoreGauges {
        uploads: reg.store.meta().uploads.count(b"").await.unwrap_or(0),
        statements: db.is_shared().then(|| db.round_trips()),
        free_bytes: reg.store.free_bytes(),
        read_only: reg.store.policies().read_only(),
    };
    reg.metrics.render(&gauges, &mut out);
    reg.upstreams.render(&mut out);
    for ext in &reg.extensions {
        ext.metrics(&mut out);
    }
    let mut resp = Response::new(body::full(out));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
