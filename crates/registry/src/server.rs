//! Accepting connections and serving requests until shutdown.
//!
//! Each connection runs HTTP/1.1 or HTTP/2 (hyper-util's `auto`) on its own
//! task and is watched by a [`GracefulShutdown`]: on the shutdown signal the
//! listener is dropped, in-flight requests finish (bounded by a deadline),
//! and idle connections close. Every request gets an id, returned as
//! `X-Request-Id` and carried by every log line of that request.
//!
//! A connection must deliver its first request head within
//! [`Config::header_timeout`](crate::Config::header_timeout) of being
//! accepted, whatever the protocol: hyper's HTTP/1 header timer starts only
//! once the protocol is known, and the HTTP/2 one does not exist, so a
//! client that sent nothing, or part of the HTTP/2 preface, would otherwise
//! hold its connection forever. Later requests on a kept-alive HTTP/1
//! connection are bounded by hyper's header timer, set to the same value.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::body::{header_value, Body};
use crate::handlers;
use crate::request::Ctx;
use crate::{events, Registry};

/// How long in-flight requests get to finish after the shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Serves `registry` on `listener` (over TLS with `tls`) until `shutdown`
/// completes, then drains.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(registry.config.header_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    // Aborted when serving ends; an interrupted trim is repeated next time.
    let retention = tokio::spawn(crate::events::retain(
        registry.event_log(),
        registry.config.event_retention,
    ));
    // Likewise the policies' own schedule (retention runs, other replicas'
    // changes to the rules).
    let policies = tokio::spawn(crate::policy::schedule(registry.clone()));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let stream = registry.metrics.count(stream);
        let service_registry = registry.clone();
        // Set by the first request to reach the service: its head is complete.
        let requested = Arc::new(AtomicBool::new(false));
        let service_requested = requested.clone();
        let service = service_fn(move |req| {
            service_requested.store(true, Ordering::Relaxed);
            let registry = service_registry.clone();
            async move { Ok::<_, Infallible>(respond(&registry, req).await) }
        });
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        // The first request head, TLS handshake included, must arrive by then.
        let deadline = tokio::time::Instant::now() + registry.config.header_timeout;
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    first_request_by(deadline, &requested, watcher.watch(conn.into_owned())).await
                }
                Some(tls) => match tokio::time::timeout_at(deadline, tls.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        first_request_by(deadline, &requested, watcher.watch(conn.into_owned()))
                            .await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            if let Some(Err(e)) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    retention.abort();
    policies.abort();
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(DRAIN_DEADLINE) => tracing::warn!("shutdown deadline passed; closing open connections"),
    }
}

/// Runs `conn`; drops it (closing the socket) when no request head has
/// arrived by `deadline`, returning `None`.
async fn first_request_by<E>(
    deadline: tokio::time::Instant,
    requested: &AtomicBool,
    conn: impl Future<Output = Result<(), E>>,
) -> Option<Result<(), E>> {
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        ended = conn.as_mut() => Some(ended),
        () = tokio::time::sleep_until(deadline) => {
            if !requested.load(Ordering::Relaxed) {
                tracing::debug!("no request head within the header timeout");
                return None;
            }
            Some(conn.await)
        }
    }
}

/// Handles one request inside a span carrying its id.
async fn respond(registry: &Registry, req: Request<Incoming>) -> Response<Body> {
    let header = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let request = events::Request {
        id: uuid::Uuid::new_v4().to_string(),
        host: header(header::HOST)
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .unwrap_or_default(),
        method: req.method().to_string(),
        useragent: header(header::USER_AGENT).unwrap_or_default(),
    };
    let span = tracing::info_span!("request", id = %request.id, method = %req.method(), path = %req.uri().path(), user = tracing::field::Empty);
    let ctx = Ctx {
        request,
        body_idle_timeout: registry.config.body_idle_timeout,
    };
    async move {
        let mut resp = handlers::handle(registry, &ctx, req).await;
        tracing::debug!(status = resp.status().as_u16(), "answered");
        let h = resp.headers_mut();
        h.insert("x-request-id", header_value(&ctx.request.id));
        h.insert(
            "docker-distribution-api-version",
            HeaderValue::from_static("registry/2.0"),
        );
        resp
    }
    .instrument(span)
    .await
}
