//! The route table: every request is classified here, once, into a
//! [`Route`] (an endpoint with its method and validated parameters), and
//! everything else follows from that value: the access it needs
//! ([`Route::need`]), its metrics label ([`Route::label`]) and its handler
//! (`handlers::dispatch`). Adding an endpoint is one variant here, its line
//! in [`Route::need`] and [`Route::label`], and its handler.
//!
//! Repository names may contain `/` and even the words `blobs` or
//! `manifests`, so an API path is split at the *last* reserved segment
//! whose remainder has no further `/`. Every name, digest, tag and upload id
//! is validated here; handlers only ever see valid values. A path with empty
//! or dot segments, or with an encoded `/`, `\`, `.` or NUL, is never
//! routed, whatever it looks like.

use hyper::{Method, Response};

use crate::auth::{Access, Need, Role};
use crate::body::Body;
use crate::error::Error;
use crate::extension::{Mounted, Routed};
use crate::types::{Digest, Reference, RepoName, UploadId};

/// A request, classified.
#[derive(Debug)]
pub enum Route {
    /// `GET|HEAD /health`
    Health,
    /// `GET|HEAD /ready`
    Ready,
    /// `GET|HEAD /metrics`
    Metrics,
    /// end-1: `GET|HEAD /v2/`
    Base,
    /// `GET /v2/_catalog` (Docker extension, kept by every registry).
    Catalog,
    /// end-8: `GET /v2/<name>/tags/list`
    Tags(RepoName),
    /// end-3: `GET|HEAD /v2/<name>/manifests/<reference>`
    GetManifest(RepoName, Reference, Head),
    /// end-7: `PUT /v2/<name>/manifests/<reference>`
    PutManifest(RepoName, Reference),
    /// end-9: `DELETE /v2/<name>/manifests/<reference>`
    DeleteManifest(RepoName, Reference),
    /// end-2: `GET|HEAD /v2/<name>/blobs/<digest>`
    GetBlob(RepoName, Digest, Head),
    /// end-10: `DELETE /v2/<name>/blobs/<digest>`
    DeleteBlob(RepoName, Digest),
    /// end-4, end-11: `POST /v2/<name>/blobs/uploads/`
    StartUpload(RepoName),
    /// end-13: `GET /v2/<name>/blobs/uploads/<id>`
    UploadStatus(RepoName, UploadId),
    /// end-5: `PATCH /v2/<name>/blobs/uploads/<id>`
    PatchUpload(RepoName, UploadId),
    /// end-6: `PUT /v2/<name>/blobs/uploads/<id>`
    FinishUpload(RepoName, UploadId),
    /// end-14: `DELETE /v2/<name>/blobs/uploads/<id>`
    CancelUpload(RepoName, UploadId),
    /// end-12: `GET /v2/<name>/referrers/<digest>`
    Referrers(RepoName, Digest),
    /// `GET /api/events`
    Events,
    /// `GET /api/fsck` (check) or `POST /api/fsck` (check and repair).
    Fsck {
        /// `POST`: repair what is safe to repair.
        repair: bool,
    },
    /// `GET /api/gc` (dry run) or `POST /api/gc`.
    Gc {
        /// `GET`: only report.
        dry_run: bool,
    },
    /// `GET /api/retention` (dry run) or `POST /api/retention`.
    Retention {
        /// `GET`: only report.
        dry_run: bool,
    },
    /// `GET /api/policies` or `PUT /api/policies` (the API's rules).
    Policies {
        /// `PUT`: replace the API's rules.
        set: bool,
    },
    /// `GET /api/maintenance` or `PUT /api/maintenance` (read-only mode).
    Maintenance {
        /// `PUT`: turn read-only mode on or off.
        set: bool,
    },
    /// `GET /`: a browser lands on the console (a redirect).
    Root,
    /// `GET /api/whoami`: the user asking and their role.
    WhoAmI,
    /// `GET /api/status`: version, uptime, storage, counters.
    Status,
    /// `GET /api/repositories?q=&n=&last=`: repositories with tag counts.
    BrowseRepositories,
    /// `GET /api/repositories/<name>/_tags?n=&last=`: tags with their
    /// manifests.
    BrowseTags(RepoName),
    /// `GET /api/repositories/<name>/_manifests/<digest>`: a manifest's parts.
    BrowseManifest(RepoName, Digest),
    /// `DELETE /api/repositories/<name>`
    DeleteRepository(RepoName),
    /// `GET /api/quarantine`
    HeldManifests,
    /// `GET /api/quarantine/<name>/<digest>`
    HeldManifest(RepoName, Digest),
    /// `PATCH /api/quarantine/<name>/<digest>`
    Judge(RepoName, Digest),
    /// An endpoint of an extension (see [`crate::extension`]).
    Extension(Box<dyn Routed>),
}

/// Whether a `GET|HEAD` endpoint was asked with `HEAD` (no body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head(pub bool);

/// A request the route table refused, and how to count it.
pub struct Refusal {
    /// The metrics label of the path's shape.
    pub label: &'static str,
    /// The answer: the registry's error, or the extension's own refusal.
    pub response: Box<Response<Body>>,
}

impl Route {
    /// Classifies `method path`: one of the extensions' endpoints, or the
    /// registry's own.
    pub(crate) fn parse(
        method: &Method,
        path: &str,
        extensions: &[Box<dyn Mounted>],
    ) -> Result<Self, Refusal> {
        let owner = extensions.iter().find_map(|e| {
            let rest = path.strip_prefix(e.prefix())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((e, rest))
        });
        if let Some((ext, rest)) = owner {
            let refuse = |response| Refusal {
                label: "other",
                response,
            };
            if !is_clean(path) {
                return Err(refuse(Box::new(Error::RouteUnknown.into_response())));
            }
            return ext.route(method, rest).map(Self::Extension).map_err(refuse);
        }
        Self::parse_own(method, path).map_err(|(label, e)| Refusal {
            label,
            response: Box::new(e.into_response()),
        })
    }

    /// Classifies a path of the registry's own endpoints; a refusal carries
    /// the label of the path's shape.
    pub fn parse_own(method: &Method, path: &str) -> Result<Self, (&'static str, Error)> {
        let (shape, route) = own(method, path);
        match route {
            Ok(_) if !is_clean(path) => Err((shape, Error::RouteUnknown)),
            Ok(route) => Ok(route),
            Err(e) => Err((shape, e)),
        }
    }

    /// What the request needs to be let in.
    pub fn need(&self) -> Need {
        use Route as R;
        match self {
            R::Health | R::Ready | R::Metrics | R::Root => Need::Open,
            R::WhoAmI => Need::User,
            // Any valid user, so that `docker login` really checks the password.
            R::Base => Need::User,
            R::Catalog
            | R::Tags(..)
            | R::GetManifest(..)
            | R::GetBlob(..)
            | R::UploadStatus(..)
            | R::Referrers(..)
            | R::Status
            | R::BrowseRepositories
            | R::BrowseTags(..)
            | R::BrowseManifest(..) => Need::Role(Role::Pull),
            // Whoever may write to an upload session may also give it up,
            // so abandoned sessions need not wait for upload_expiry.
            R::PutManifest(..)
            | R::StartUpload(..)
            | R::PatchUpload(..)
            | R::FinishUpload(..)
            | R::CancelUpload(..) => Need::Role(Role::Push),
            R::DeleteManifest(..)
            | R::DeleteBlob(..)
            | R::Events
            | R::Fsck { .. }
            | R::Gc { .. }
            | R::Retention { .. }
            | R::Policies { .. }
            | R::Maintenance { .. }
            | R::DeleteRepository(..)
            | R::HeldManifests
            | R::HeldManifest(..)
            | R::Judge(..) => Need::Role(Role::Admin),
            R::Extension(e) => e.need(),
        }
    }

    /// The metrics label: the endpoint's shape, never a name, so the number
    /// of labels stays small.
    pub fn label(&self) -> &'static str {
        use Route as R;
        match self {
            R::Health => "health",
            R::Ready => "ready",
            R::Metrics => "metrics",
            R::Base => "base",
            R::Catalog => "catalog",
            R::Tags(..) => "tags",
            R::GetManifest(..) | R::PutManifest(..) | R::DeleteManifest(..) => "manifest",
            R::GetBlob(..) | R::DeleteBlob(..) => "blob",
            R::StartUpload(..) => "uploads",
            R::UploadStatus(..)
            | R::PatchUpload(..)
            | R::FinishUpload(..)
            | R::CancelUpload(..) => "upload",
            R::Referrers(..) => "referrers",
            R::Events => "events",
            R::Fsck { .. } => "fsck",
            R::Gc { .. } => "gc",
            R::Retention { .. } => "retention",
            R::Root => "root",
            R::WhoAmI => "whoami",
            R::Status => "status",
            R::BrowseRepositories | R::BrowseTags(..) | R::BrowseManifest(..) => "browse",
            R::Policies { .. } => "policies",
            R::Maintenance { .. } => "maintenance",
            R::DeleteRepository(..) => "repositories",
            R::HeldManifests | R::HeldManifest(..) | R::Judge(..) => "quarantine",
            R::Extension(e) => e.label(),
        }
    }

    /// What a bearer token must grant for it (see [`crate::auth::token`]):
    /// a repository's `pull`, `pull,push` or `delete`, the catalog's `*`,
    /// and for Berth's other endpoints `registry:berth:` and the role.
    pub fn access(&self) -> Vec<Access> {
        use Route as R;
        const PULL: &[&str] = &["pull"];
        const PUSH: &[&str] = &["pull", "push"];
        const DELETE: &[&str] = &["delete"];
        let repo = |r: &RepoName, actions| vec![Access::repository(r.as_str(), actions)];
        match self {
            R::Tags(r)
            | R::GetManifest(r, ..)
            | R::GetBlob(r, ..)
            | R::UploadStatus(r, _)
            | R::Referrers(r, _)
            | R::BrowseTags(r)
            | R::BrowseManifest(r, _) => repo(r, PULL),
            R::PutManifest(r, _)
            | R::StartUpload(r)
            | R::PatchUpload(r, _)
            | R::FinishUpload(r, _)
            | R::CancelUpload(r, _) => repo(r, PUSH),
            R::DeleteManifest(r, _) | R::DeleteBlob(r, _) | R::DeleteRepository(r) => {
                repo(r, DELETE)
            }
            R::Catalog => vec![Access::registry("catalog", &["*"])],
            _ => match self.need() {
                Need::Open | Need::User => Vec::new(),
                Need::Role(Role::Pull) => vec![Access::registry("berth", PULL)],
                Need::Role(Role::Push) => vec![Access::registry("berth", &["push"])],
                Need::Role(Role::Admin) => vec![Access::registry("berth", &["admin"])],
            },
        }
    }

    /// The repository it pushes into (uploads, manifest PUTs).
    pub fn pushes_to(&self) -> Option<&RepoName> {
        use Route as R;
        match self {
            R::PutManifest(r, _)
            | R::StartUpload(r)
            | R::PatchUpload(r, _)
            | R::FinishUpload(r, _) => Some(r),
            _ => None,
        }
    }

    /// Whether read-only mode refuses it: every change to content or
    /// webhooks. Reads, the maintenance passes (gc and fsck, which a
    /// maintenance window is for) and the switch itself go on.
    pub fn writes(&self) -> bool {
        use Route as R;
        match self {
            R::PutManifest(..)
            | R::DeleteManifest(..)
            | R::DeleteBlob(..)
            | R::StartUpload(..)
            | R::PatchUpload(..)
            | R::FinishUpload(..)
            | R::CancelUpload(..)
            | R::DeleteRepository(..)
            | R::Judge(..)
            | R::Retention { dry_run: false }
            | R::Policies { set: true } => true,
            R::Extension(e) => e.writes(),
            _ => false,
        }
    }
}

/// A path's shape label and, when the method fits, its route.
fn own(method: &Method, path: &str) -> (&'static str, Result<Route, Error>) {
    let get = matches!(*method, Method::GET | Method::HEAD);
    let head = Head(*method == Method::HEAD);
    let not_allowed = Err(Error::MethodNotAllowed);
    let probe = |route: Route| {
        if get {
            Ok(route)
        } else {
            Err(Error::MethodNotAllowed)
        }
    };
    match path {
        "/" => return ("root", probe(Route::Root)),
        "/api/whoami" => return ("whoami", probe(Route::WhoAmI)),
        "/api/status" => return ("status", probe(Route::Status)),
        "/api/repositories" | "/api/repositories/" => {
            return ("browse", probe(Route::BrowseRepositories))
        }
        "/health" => return ("health", probe(Route::Health)),
        "/ready" => return ("ready", probe(Route::Ready)),
        "/metrics" => return ("metrics", probe(Route::Metrics)),
        "/api/events" => {
            let route = if *method == Method::GET {
                Ok(Route::Events)
            } else {
                not_allowed
            };
            return ("events", route);
        }
        "/api/retention" | "/api/policies" | "/api/maintenance" => {
            let (label, route) = match (path, method.clone()) {
                ("/api/retention", Method::GET) => {
                    ("retention", Route::Retention { dry_run: true })
                }
                ("/api/retention", Method::POST) => {
                    ("retention", Route::Retention { dry_run: false })
                }
                ("/api/policies", Method::GET) => ("policies", Route::Policies { set: false }),
                ("/api/policies", Method::PUT) => ("policies", Route::Policies { set: true }),
                ("/api/maintenance", Method::GET) => {
                    ("maintenance", Route::Maintenance { set: false })
                }
                ("/api/maintenance", Method::PUT) => {
                    ("maintenance", Route::Maintenance { set: true })
                }
                ("/api/retention", _) => return ("retention", not_allowed),
                ("/api/policies", _) => return ("policies", not_allowed),
                _ => return ("maintenance", not_allowed),
            };
            return (label, Ok(route));
        }
        "/api/fsck" | "/api/gc" => {
            let repair = match *method {
                Method::GET => false,
                Method::POST => true,
                _ => return (label_of(path), not_allowed),
            };
            let route = if path == "/api/fsck" {
                Route::Fsck { repair }
            } else {
                Route::Gc { dry_run: !repair }
            };
            return (label_of(path), Ok(route));
        }
        _ => {}
    }
    if let Some(name) = path.strip_prefix("/api/repositories/") {
        // `_tags` and `_manifests` cannot be a name's components (those
        // start with a letter or digit).
        if let Some(name) = name.strip_suffix("/_tags") {
            return (
                "browse",
                name_of(name).and_then(|r| probe(Route::BrowseTags(r))),
            );
        }
        if let Some((name, digest)) = name.rsplit_once("/_manifests/") {
            let route = name_of(name)
                .and_then(|r| Ok((r, digest_of(digest)?)))
                .and_then(|(r, d)| probe(Route::BrowseManifest(r, d)));
            return ("browse", route);
        }
        // One trailing `/` is tolerated; a leading one would make an
        // absolute path look like a name.
        let name = name.strip_suffix('/').unwrap_or(name);
        let route = name_of(name).and_then(|repo| match *method {
            Method::DELETE => Ok(Route::DeleteRepository(repo)),
            _ => Err(Error::MethodNotAllowed),
        });
        return ("repositories", route);
    }
    if let Some(rest) = path.strip_prefix("/api/quarantine") {
        if rest.is_empty() || rest.starts_with('/') {
            return ("quarantine", quarantine(method, rest));
        }
    }
    let Some(rest) = path.strip_prefix("/v2") else {
        return ("other", Err(Error::RouteUnknown));
    };
    let (shape, parsed) = api(rest);
    let route = parsed.and_then(|endpoint| {
        use Endpoint as E;
        Ok(match (method.clone(), endpoint) {
            (Method::GET | Method::HEAD, E::Base) => Route::Base,
            (Method::GET, E::Catalog) => Route::Catalog,
            (Method::GET, E::Tags(n)) => Route::Tags(n),
            (Method::GET | Method::HEAD, E::Manifest(n, r)) => Route::GetManifest(n, r, head),
            (Method::PUT, E::Manifest(n, r)) => Route::PutManifest(n, r),
            (Method::DELETE, E::Manifest(n, r)) => Route::DeleteManifest(n, r),
            (Method::GET | Method::HEAD, E::Blob(n, d)) => Route::GetBlob(n, d, head),
            (Method::DELETE, E::Blob(n, d)) => Route::DeleteBlob(n, d),
            (Method::POST, E::Uploads(n)) => Route::StartUpload(n),
            (Method::GET, E::Upload(n, id)) => Route::UploadStatus(n, id),
            (Method::PATCH, E::Upload(n, id)) => Route::PatchUpload(n, id),
            (Method::PUT, E::Upload(n, id)) => Route::FinishUpload(n, id),
            (Method::DELETE, E::Upload(n, id)) => Route::CancelUpload(n, id),
            (Method::GET, E::Referrers(n, d)) => Route::Referrers(n, d),
            _ => return Err(Error::MethodNotAllowed),
        })
    });
    (shape, route)
}

fn label_of(path: &str) -> &'static str {
    if path == "/api/fsck" {
        "fsck"
    } else {
        "gc"
    }
}

/// `/api/quarantine[/<name>/<digest>]`; `rest` follows the prefix.
fn quarantine(method: &Method, rest: &str) -> Result<Route, Error> {
    // One trailing `/` is tolerated. More would make an absolute path look
    // like a name.
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return match *method {
            Method::GET => Ok(Route::HeldManifests),
            _ => Err(Error::MethodNotAllowed),
        };
    }
    let (repo, digest) = rest.rsplit_once('/').ok_or(Error::RouteUnknown)?;
    let (repo, digest) = (name_of(repo)?, digest_of(digest)?);
    match *method {
        Method::GET => Ok(Route::HeldManifest(repo, digest)),
        Method::PATCH => Ok(Route::Judge(repo, digest)),
        _ => Err(Error::MethodNotAllowed),
    }
}

/// An endpoint of the Distribution API, before the method is considered.
enum Endpoint {
    Base,
    Catalog,
    Tags(RepoName),
    Manifest(RepoName, Reference),
    Blob(RepoName, Digest),
    Uploads(RepoName),
    Upload(RepoName, UploadId),
    Referrers(RepoName, Digest),
}

/// Parses what follows `/v2`: the shape's label and the endpoint.
/// `RouteUnknown` outside the API; `NameInvalid`, `DigestMalformed`,
/// `TagInvalid` or `UploadUnknown` for a known shape with an invalid
/// parameter.
fn api(rest: &str) -> (&'static str, Result<Endpoint, Error>) {
    let rest = match rest {
        "" | "/" => return ("base", Ok(Endpoint::Base)),
        "/_catalog" => return ("catalog", Ok(Endpoint::Catalog)),
        _ => match rest.strip_prefix('/') {
            Some(rest) => rest,
            None => return ("other", Err(Error::RouteUnknown)),
        },
    };
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return ("tags", name_of(name).map(Endpoint::Tags));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads")
        .or_else(|| rest.strip_suffix("/blobs/uploads/"))
    {
        return ("uploads", name_of(name).map(Endpoint::Uploads));
    }
    let Some((name, kind, tail)) = split_last(rest) else {
        return ("other", Err(Error::RouteUnknown));
    };
    let endpoint = name_of(name).and_then(|name| match kind {
        Kind::Upload => UploadId::parse(tail)
            .map(|id| Endpoint::Upload(name, id))
            .ok_or(Error::UploadUnknown),
        Kind::Manifest => Reference::parse(tail)
            .map(|r| Endpoint::Manifest(name, r))
            .ok_or_else(|| reference_error(tail)),
        Kind::Blob => digest_of(tail).map(|d| Endpoint::Blob(name, d)),
        Kind::Referrers => digest_of(tail).map(|d| Endpoint::Referrers(name, d)),
    });
    (kind.label(), endpoint)
}

#[derive(Clone, Copy)]
enum Kind {
    Upload,
    Manifest,
    Blob,
    Referrers,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Upload => "upload",
            Kind::Manifest => "manifest",
            Kind::Blob => "blob",
            Kind::Referrers => "referrers",
        }
    }
}

/// Longest first, so `/blobs/uploads/` wins over `/blobs/`.
const SEGMENTS: [(&str, Kind); 4] = [
    ("/blobs/uploads/", Kind::Upload),
    ("/manifests/", Kind::Manifest),
    ("/blobs/", Kind::Blob),
    ("/referrers/", Kind::Referrers),
];

/// Finds the reserved segment whose remainder is a single, non-empty path
/// component, and splits `rest` into (name, kind, remainder).
fn split_last(rest: &str) -> Option<(&str, Kind, &str)> {
    SEGMENTS.iter().find_map(|&(seg, kind)| {
        let at = rest.rfind(seg)?;
        let tail = &rest[at + seg.len()..];
        (!tail.is_empty() && !tail.contains('/')).then(|| (&rest[..at], kind, tail))
    })
}

/// No empty segment (`//`), no `.` or `..` segment, no encoded separator,
/// dot or NUL, no backslash: a path that means only what it says.
fn is_clean(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let encoded = ["%2f", "%5c", "%2e", "%00"]
        .iter()
        .any(|e| lower.contains(e));
    let segments = path.split('/').skip(1);
    let mut segments = segments.collect::<Vec<_>>();
    // One trailing `/` (`/v2/`, `.../blobs/uploads/`) is an empty last segment.
    if segments.last() == Some(&"") {
        segments.pop();
    }
    path.starts_with('/')
        && !encoded
        && !path.contains('\\')
        && segments.iter().all(|s| !matches!(*s, "" | "." | ".."))
}

fn name_of(s: &str) -> Result<RepoName, Error> {
    RepoName::parse(s).ok_or_else(|| Error::NameInvalid(s.to_owned()))
}

/// Parses a digest from a URL or query parameter.
pub(crate) fn digest_of(s: &str) -> Result<Digest, Error> {
    Digest::parse(s).ok_or_else(|| Error::DigestMalformed(s.to_owned()))
}

fn reference_error(s: &str) -> Error {
    if s.contains(':') {
        Error::DigestMalformed(s.to_owned())
    } else {
        Error::TagInvalid(s.to_owned())
    }
}

#[cfg(test)]
mod tests;
