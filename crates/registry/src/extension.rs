//! Extensions: other crates' HTTP APIs served on the registry's port (the
//! webhooks admin API) and their `/metrics` samples, without the registry depending on them.

use std::future::Future;
use std::pin::Pin;

use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::body::Body;
use crate::handlers::Ctx;
use crate::types::Digest;
use crate::Error;

/// A boxed future, for object-safe async methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An API served under a path prefix of the registry's port.
pub trait Extension: Send + Sync + 'static {
    /// The prefix it owns, e.g. `/api/webhooks`; it gets every request whose
    /// path is the prefix or starts with the prefix plus `/`.
    fn prefix(&self) -> &'static str;

    /// Answers one request.
    fn handle<'a>(&'a self, ctx: &'a Ctx, req: Request<Incoming>) -> BoxFuture<'a, Response<Body>>;

    /// Appends its Prometheus samples (text format) to `/metrics`.
    fn metrics(&self, _out: &mut String) {}

    /// The blobs it references, which garbage collection must keep.
    fn blob_roots(&self) -> BoxFuture<'_, Result<Vec<Digest>, Error>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}
