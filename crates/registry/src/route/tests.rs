use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::*;
use crate::extension::{Endpoint, Extension, Mount};
use crate::request::Ctx;

fn name(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

fn d() -> String {
    format!("sha256:{}", "a".repeat(64))
}

fn own(method: Method, path: &str) -> Result<Route, (&'static str, Error)> {
    Route::parse_own(&method, path)
}

/// An extension under `/x` with one endpoint per method, as the webhooks
/// and Helm crates have.
struct Probe;

#[derive(Debug, PartialEq)]
enum ProbeRoute {
    Read(String),
    Write(String),
}

impl Endpoint for ProbeRoute {
    fn need(&self) -> Need {
        match self {
            Self::Read(_) => Need::Role(Role::Pull),
            Self::Write(_) => Need::Role(Role::Admin),
        }
    }
    fn label(&self) -> &'static str {
        "probe"
    }
    fn writes(&self) -> bool {
        matches!(self, Self::Write(_))
    }
}

impl Extension for Probe {
    type Route = ProbeRoute;
    fn prefix(&self) -> &'static str {
        "/x"
    }
    fn parse(&self, method: &Method, path: &str) -> Result<ProbeRoute, Box<Response<Body>>> {
        match *method {
            Method::GET => Ok(ProbeRoute::Read(path.to_owned())),
            Method::POST => Ok(ProbeRoute::Write(path.to_owned())),
            _ => Err(Box::new(crate::body::json(
                StatusCode::METHOD_NOT_ALLOWED,
                &serde_json::json!({}),
            ))),
        }
    }
    async fn handle(&self, _: &Ctx, _: ProbeRoute, _: Request<Incoming>) -> Response<Body> {
        Response::new(crate::body::empty())
    }
}

fn with_probe(method: Method, path: &str) -> Result<Route, Refusal> {
    let mounted: Vec<Box<dyn Mounted>> = vec![Box::new(Mount(Arc::new(Probe)))];
    Route::parse(&method, path, &mounted)
}

#[test]
fn every_endpoint_parses_with_its_methods() {
    let d = d();
    let id = UploadId::new();
    let cases: Vec<(Method, String, &str)> = vec![
        (Method::GET, "/health".into(), "Health"),
        (Method::HEAD, "/ready".into(), "Ready"),
        (Method::GET, "/metrics".into(), "Metrics"),
        (Method::GET, "/v2/".into(), "Base"),
        (Method::HEAD, "/v2".into(), "Base"),
        (Method::GET, "/v2/_catalog".into(), "Catalog"),
        (Method::GET, "/v2/a/b/tags/list".into(), "Tags"),
        (Method::HEAD, "/v2/a/manifests/v1".into(), "GetManifest"),
        (Method::PUT, "/v2/a/manifests/v1".into(), "PutManifest"),
        (
            Method::DELETE,
            format!("/v2/a/manifests/{d}"),
            "DeleteManifest",
        ),
        (Method::GET, format!("/v2/x/y/blobs/{d}"), "GetBlob"),
        (Method::DELETE, format!("/v2/a/blobs/{d}"), "DeleteBlob"),
        (Method::POST, "/v2/a/blobs/uploads/".into(), "StartUpload"),
        (Method::POST, "/v2/a/blobs/uploads".into(), "StartUpload"),
        (
            Method::GET,
            format!("/v2/a/blobs/uploads/{id}"),
            "UploadStatus",
        ),
        (
            Method::PATCH,
            format!("/v2/a/blobs/uploads/{id}"),
            "PatchUpload",
        ),
        (
            Method::PUT,
            format!("/v2/a/blobs/uploads/{id}"),
            "FinishUpload",
        ),
        (
            Method::DELETE,
            format!("/v2/a/blobs/uploads/{id}"),
            "CancelUpload",
        ),
        (Method::GET, format!("/v2/a/referrers/{d}"), "Referrers"),
        (Method::GET, "/api/events".into(), "Events"),
        (Method::GET, "/api/fsck".into(), "Fsck"),
        (Method::POST, "/api/gc".into(), "Gc"),
        (
            Method::DELETE,
            "/api/repositories/a/b".into(),
            "DeleteRepository",
        ),
        (
            Method::DELETE,
            "/api/repositories/a/".into(),
            "DeleteRepository",
        ),
        (Method::GET, "/api/quarantine".into(), "HeldManifests"),
        (Method::GET, "/api/quarantine/".into(), "HeldManifests"),
        (
            Method::GET,
            format!("/api/quarantine/a/b/{d}"),
            "HeldManifest",
        ),
        (Method::PATCH, format!("/api/quarantine/a/{d}"), "Judge"),
    ];
    for (method, path, variant) in cases {
        let route = own(method.clone(), &path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
        let shown = format!("{route:?}");
        assert!(shown.starts_with(variant), "{method} {path}: {shown}");
    }
    let Route::GetManifest(n, _, Head(true)) = own(Method::HEAD, "/v2/a/manifests/v1").unwrap()
    else {
        panic!("HEAD is remembered");
    };
    assert_eq!(n, name("a"));
    assert!(matches!(
        own(Method::POST, "/api/fsck").unwrap(),
        Route::Fsck { repair: true }
    ));
    assert!(matches!(
        own(Method::GET, "/api/gc").unwrap(),
        Route::Gc { dry_run: true }
    ));
}

#[test]
fn every_route_needs_what_its_method_does() {
    let d = d();
    let id = UploadId::new();
    let (open, user) = (Need::Open, Need::User);
    let (pull, push, admin) = (
        Need::Role(Role::Pull),
        Need::Role(Role::Push),
        Need::Role(Role::Admin),
    );
    let cases: Vec<(Method, String, Need)> = vec![
        (Method::GET, "/health".into(), open),
        (Method::GET, "/ready".into(), open),
        (Method::GET, "/metrics".into(), open),
        (Method::GET, "/v2/".into(), user),
        (Method::GET, "/v2/_catalog".into(), pull),
        (Method::GET, "/v2/a/tags/list".into(), pull),
        (Method::GET, "/v2/a/manifests/v1".into(), pull),
        (Method::HEAD, "/v2/a/manifests/v1".into(), pull),
        (Method::PUT, "/v2/a/manifests/v1".into(), push),
        (Method::DELETE, "/v2/a/manifests/v1".into(), admin),
        (Method::GET, format!("/v2/a/blobs/{d}"), pull),
        (Method::DELETE, format!("/v2/a/blobs/{d}"), admin),
        (Method::POST, "/v2/a/blobs/uploads/".into(), push),
        (Method::GET, format!("/v2/a/blobs/uploads/{id}"), pull),
        (Method::PATCH, format!("/v2/a/blobs/uploads/{id}"), push),
        (Method::PUT, format!("/v2/a/blobs/uploads/{id}"), push),
        (Method::DELETE, format!("/v2/a/blobs/uploads/{id}"), push),
        (Method::GET, format!("/v2/a/referrers/{d}"), pull),
        (Method::GET, "/api/events".into(), admin),
        (Method::GET, "/api/fsck".into(), admin),
        (Method::POST, "/api/fsck".into(), admin),
        (Method::GET, "/api/gc".into(), admin),
        (Method::POST, "/api/gc".into(), admin),
        (Method::DELETE, "/api/repositories/a".into(), admin),
        (Method::GET, "/api/quarantine".into(), admin),
        (Method::GET, format!("/api/quarantine/a/{d}"), admin),
        (Method::PATCH, format!("/api/quarantine/a/{d}"), admin),
        (Method::GET, "/".into(), open),
        (Method::GET, "/api/whoami".into(), user),
        (Method::GET, "/api/status".into(), pull),
        (Method::GET, "/api/repositories".into(), pull),
        (Method::GET, "/api/repositories/a/b/_tags".into(), pull),
        (
            Method::GET,
            format!("/api/repositories/a/b/_manifests/{d}"),
            pull,
        ),
        (Method::GET, "/api/retention".into(), admin),
        (Method::POST, "/api/retention".into(), admin),
        (Method::PUT, "/api/policies".into(), admin),
        (Method::PUT, "/api/maintenance".into(), admin),
    ];
    for (method, path, need) in cases {
        let route = own(method.clone(), &path).unwrap();
        assert_eq!(route.need(), need, "{method} {path}");
    }
    // An extension's routes need what the extension says, by method.
    let read = with_probe(Method::GET, "/x/a").ok().unwrap();
    assert_eq!((read.need(), read.label()), (pull, "probe"));
    let write = with_probe(Method::POST, "/x").ok().unwrap();
    assert_eq!(write.need(), admin);
    assert!(Role::Admin > Role::Push && Role::Push > Role::Pull);
}

#[test]
fn labels_name_the_shape_not_the_repository_even_when_refused() {
    let d = d();
    let label = |method: Method, path: &str| match own(method, path) {
        Ok(route) => route.label(),
        Err((label, _)) => label,
    };
    assert_eq!(label(Method::GET, "/v2/"), "base");
    assert_eq!(label(Method::GET, "/v2/_catalog"), "catalog");
    assert_eq!(
        label(Method::GET, "/v2/a/manifests/blobs/tags/list"),
        "tags"
    );
    assert_eq!(label(Method::POST, "/v2/a/blobs/uploads/"), "uploads");
    assert_eq!(label(Method::GET, "/v2/a/blobs/uploads/x"), "upload");
    assert_eq!(label(Method::GET, "/v2/a/tags/manifests/v1"), "manifest");
    assert_eq!(label(Method::GET, "/v2/a/manifests/-bad"), "manifest");
    assert_eq!(label(Method::POST, &format!("/v2/a/blobs/{d}")), "blob");
    assert_eq!(
        label(Method::GET, &format!("/v2/a/referrers/{d}")),
        "referrers"
    );
    assert_eq!(label(Method::GET, "/v2/a/b"), "other");
    assert_eq!(label(Method::GET, "/favicon.ico"), "other");
    assert_eq!(label(Method::PUT, "/health"), "health");
    assert_eq!(label(Method::GET, "/api/repositories/a"), "repositories");
    assert_eq!(label(Method::DELETE, "/api/quarantine"), "quarantine");
}

#[test]
fn names_may_contain_reserved_words() {
    let d = format!("sha256:{}", "b".repeat(64));
    let r = own(Method::GET, &format!("/v2/blobs/manifests/blobs/{d}")).unwrap();
    assert!(matches!(r, Route::GetBlob(n, ..) if n == name("blobs/manifests")));
    let r = own(Method::GET, "/v2/tags/list/manifests/v1").unwrap();
    assert!(matches!(r, Route::GetManifest(n, ..) if n == name("tags/list")));
}

#[test]
fn bad_parameters_and_methods_get_their_own_errors() {
    let err = |method: Method, path: &str| own(method, path).unwrap_err().1;
    assert!(matches!(
        err(Method::GET, "/v2/../etc/manifests/x"),
        Error::NameInvalid(_)
    ));
    assert!(matches!(
        err(Method::GET, "/v2/%2e%2e/manifests/x"),
        Error::NameInvalid(_)
    ));
    assert!(matches!(
        err(Method::GET, "/v2//abs/manifests/x"),
        Error::NameInvalid(_)
    ));
    assert!(matches!(
        err(Method::GET, "/v2/a/blobs/sha256:zz"),
        Error::DigestMalformed(_)
    ));
    assert!(matches!(
        err(Method::GET, "/v2/a/manifests/-bad"),
        Error::TagInvalid(_)
    ));
    assert!(matches!(
        err(Method::GET, "/v2/a/blobs/uploads/nope"),
        Error::UploadUnknown
    ));
    assert!(matches!(
        err(Method::DELETE, "/api/repositories/../x"),
        Error::NameInvalid(_)
    ));
    assert!(matches!(err(Method::GET, "/v3/"), Error::RouteUnknown));
    assert!(matches!(
        err(Method::GET, "/v2/a/unknown"),
        Error::RouteUnknown
    ));
    assert!(matches!(err(Method::GET, "/V2/"), Error::RouteUnknown));
    assert!(matches!(
        err(Method::GET, "/API/events"),
        Error::RouteUnknown
    ));
    assert!(matches!(
        err(Method::POST, "/v2/_catalog"),
        Error::MethodNotAllowed
    ));
    assert!(matches!(
        err(Method::POST, "/v2/a/manifests/v1"),
        Error::MethodNotAllowed
    ));
    assert!(matches!(
        err(Method::PUT, "/health"),
        Error::MethodNotAllowed
    ));
    assert!(matches!(
        err(Method::DELETE, "/api/gc"),
        Error::MethodNotAllowed
    ));
    assert!(matches!(
        err(Method::PUT, "/api/quarantine"),
        Error::MethodNotAllowed
    ));
}

#[test]
fn a_path_that_is_not_clean_is_never_routed() {
    let d = d();
    let id = UploadId::new();
    let clean = [
        (Method::GET, "/health".to_owned()),
        (Method::GET, "/v2/".to_owned()),
        (Method::GET, "/v2/a/b/tags/list".to_owned()),
        (Method::GET, format!("/v2/a/b/blobs/{d}")),
        (Method::PATCH, format!("/v2/a/blobs/uploads/{id}")),
        (Method::GET, "/api/events".to_owned()),
        (Method::GET, format!("/api/quarantine/a/{d}")),
        (Method::GET, "/x/a/b".to_owned()),
        (Method::POST, "/x".to_owned()),
    ];
    let mut refused = 0;
    for (method, path) in &clean {
        assert!(with_probe(method.clone(), path).is_ok(), "{method} {path}");
        let (head, tail) = path.split_at(path[1..].find('/').map_or(path.len(), |i| i + 1));
        let dirty = [
            format!("{head}//{tail}"),
            format!("{head}/.{tail}"),
            format!("{head}/..{tail}"),
            format!("{head}/a/..{tail}"),
            format!("{head}%2F{tail}"),
            format!("{head}%2f.{tail}"),
            format!("{head}/%2e{tail}"),
            format!("{head}/%2E%2E{tail}"),
            format!("{head}%5c{tail}"),
            format!("{head}\\{tail}"),
            format!("{head}%00{tail}"),
            format!("{path}//"),
            format!("{path}/."),
            path.to_uppercase(),
        ];
        for bad in dirty {
            assert!(
                with_probe(method.clone(), &bad).is_err(),
                "{method} {bad} was routed"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, clean.len() * 14);
}
