//! Extensions: other crates' HTTP APIs served on the registry's port (the
//! webhooks admin API, the Helm chart repository), classified by the one
//! route table like the registry's own endpoints, without the registry
//! depending on them.
//!
//! An extension parses its requests into a type of its own
//! ([`Extension::Route`], its "command"), which says what the request needs
//! ([`Endpoint::need`]) and how it is counted ([`Endpoint::label`]); the
//! registry checks access from that value and hands the same value back to
//! [`Extension::handle`]. [`Mounted`] erases the types so the route table
//! can hold any extension's route.

use std::future::Future;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use crate::auth::Need;
use crate::body::Body;
use crate::kv::BoxFuture;
use crate::request::Ctx;
use crate::types::Digest;
use crate::Error;

/// A parsed request of an extension.
pub trait Endpoint: Send + 'static {
    /// What the request needs to be let in.
    fn need(&self) -> Need;
    /// Its metrics label: the endpoint's shape, never a name.
    fn label(&self) -> &'static str;
    /// Whether it changes content or settings (read-only mode refuses it).
    fn writes(&self) -> bool;
}

/// An API served under a path prefix of the registry's port.
pub trait Extension: Send + Sync + 'static {
    /// A request of this API, parsed.
    type Route: Endpoint;

    /// The prefix it owns, e.g. `/api/webhooks`: every path that is the
    /// prefix or starts with the prefix plus `/`.
    fn prefix(&self) -> &'static str;

    /// Parses `method` and `path` (what follows the prefix: empty or
    /// starting with `/`), or refuses the request with the response the API
    /// gives unknown endpoints (404, 405).
    fn parse(&self, method: &Method, path: &str) -> Result<Self::Route, Box<Response<Body>>>;

    /// Answers one request; `route` is what [`Extension::parse`] made of it.
    fn handle(
        &self,
        ctx: &Ctx,
        route: Self::Route,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send;

    /// Appends its Prometheus samples (text format) to `/metrics`.
    fn metrics(&self, _out: &mut String) {}

    /// The blobs it references, which garbage collection must keep.
    fn blob_roots(&self) -> impl Future<Output = Result<Vec<Digest>, Error>> + Send {
        async { Ok(Vec::new()) }
    }
}

/// An extension as the registry holds it, its types erased.
pub(crate) trait Mounted: Send + Sync {
    fn prefix(&self) -> &'static str;
    fn route(&self, method: &Method, path: &str) -> Result<Box<dyn Routed>, Box<Response<Body>>>;
    fn metrics(&self, out: &mut String);
    fn blob_roots(&self) -> BoxFuture<'_, Result<Vec<Digest>, Error>>;
}

/// An extension's parsed request, ready to be handled.
/// (Public only so that the route type can be shown to the fuzz targets.)
pub trait Routed: Send {
    fn need(&self) -> Need;
    fn label(&self) -> &'static str;
    fn writes(&self) -> bool;
    fn handle(
        self: Box<Self>,
        ctx: Ctx,
        req: Request<Incoming>,
    ) -> BoxFuture<'static, Response<Body>>;
}

impl std::fmt::Debug for dyn Routed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (needs {:?})", self.label(), self.need())
    }
}

/// An extension, shared, as [`Mounted`].
pub(crate) struct Mount<E>(pub(crate) Arc<E>);

/// A route of `E`, with the extension that handles it.
struct Bound<E: Extension> {
    ext: Arc<E>,
    route: E::Route,
}

impl<E: Extension> Mounted for Mount<E> {
    fn prefix(&self) -> &'static str {
        self.0.prefix()
    }

    fn route(&self, method: &Method, path: &str) -> Result<Box<dyn Routed>, Box<Response<Body>>> {
        let route = self.0.parse(method, path)?;
        Ok(Box::new(Bound {
            ext: self.0.clone(),
            route,
        }))
    }

    fn metrics(&self, out: &mut String) {
        self.0.metrics(out);
    }

    fn blob_roots(&self) -> BoxFuture<'_, Result<Vec<Digest>, Error>> {
        Box::pin(self.0.blob_roots())
    }
}

impl<E: Extension> Routed for Bound<E> {
    fn need(&self) -> Need {
        self.route.need()
    }

    fn label(&self) -> &'static str {
        self.route.label()
    }

    fn writes(&self) -> bool {
        self.route.writes()
    }

    fn handle(
        self: Box<Self>,
        ctx: Ctx,
        req: Request<Incoming>,
    ) -> BoxFuture<'static, Response<Body>> {
        let Bound { ext, route } = *self;
        Box::pin(async move { ext.handle(&ctx, route, req).await })
    }
}
