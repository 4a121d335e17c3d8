//! Turns a request path into a typed [`Route`].
//!
//! Repository names may contain `/` and even the words `blobs` or
//! `manifests`, so the path is split at the *last* reserved segment whose
//! remainder has no further `/`. Every name, digest, tag and upload id is
//! validated here; handlers only ever see valid values.

use crate::error::Error;
use crate::types::{Digest, Reference, RepoName, UploadId};

/// An endpoint of the Distribution API, with its validated path parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// end-1: `/v2/`
    Base,
    /// `/v2/_catalog` (Docker extension, kept by every registry).
    Catalog,
    /// end-8: `/v2/<name>/tags/list`
    Tags(RepoName),
    /// end-3, end-7, end-9: `/v2/<name>/manifests/<reference>`
    Manifest(RepoName, Reference),
    /// end-2, end-10: `/v2/<name>/blobs/<digest>`
    Blob(RepoName, Digest),
    /// end-4, end-11: `/v2/<name>/blobs/uploads/`
    Uploads(RepoName),
    /// end-5, end-6, end-13, end-14: `/v2/<name>/blobs/uploads/<id>`
    Upload(RepoName, UploadId),
    /// end-12: `/v2/<name>/referrers/<digest>`
    Referrers(RepoName, Digest),
}

impl Route {
    /// Parses a request path (without query). `RouteUnknown` for paths
    /// outside the API; `NameInvalid`, `DigestMalformed`, `TagInvalid` or
    /// `UploadUnknown` for a known shape with an invalid parameter.
    pub fn parse(path: &str) -> Result<Self, Error> {
        let rest = match path {
            "/v2" | "/v2/" => return Ok(Self::Base),
            "/v2/_catalog" => return Ok(Self::Catalog),
            _ => path.strip_prefix("/v2/").ok_or(Error::RouteUnknown)?,
        };
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Ok(Self::Tags(name_of(name)?));
        }
        if let Some(name) = rest
            .strip_suffix("/blobs/uploads")
            .or_else(|| rest.strip_suffix("/blobs/uploads/"))
        {
            return Ok(Self::Uploads(name_of(name)?));
        }
        let (name, kind, tail) = split_last(rest).ok_or(Error::RouteUnknown)?;
        let name = name_of(name)?;
        match kind {
            Kind::Upload => UploadId::parse(tail)
                .map(|id| Self::Upload(name, id))
                .ok_or(Error::UploadUnknown),
            Kind::Manifest => Reference::parse(tail)
                .map(|r| Self::Manifest(name, r))
                .ok_or_else(|| reference_error(tail)),
            Kind::Blob => Ok(Self::Blob(name, digest_of(tail)?)),
            Kind::Referrers => Ok(Self::Referrers(name, digest_of(tail)?)),
        }
    }
}

/// The metrics label of a path: the endpoint's shape, never a name, so the
/// number of labels stays small.
pub fn label(path: &str) -> &'static str {
    let Some(rest) = path.strip_prefix("/v2") else {
        return "other";
    };
    match rest {
        "" | "/" => "base",
        "/_catalog" => "catalog",
        _ if rest.ends_with("/tags/list") => "tags",
        _ if rest.ends_with("/blobs/uploads") || rest.ends_with("/blobs/uploads/") => "uploads",
        _ => split_last(rest).map_or("other", |(_, kind, _)| match kind {
            Kind::Upload => "upload",
            Kind::Manifest => "manifest",
            Kind::Blob => "blob",
            Kind::Referrers => "referrers",
        }),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Upload,
    Manifest,
    Blob,
    Referrers,
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

fn name_of(s: &str) -> Result<RepoName, Error> {
    RepoName::parse(s).ok_or_else(|| Error::NameInvalid(s.to_owned()))
}

/// Parses a digest from a URL or query parameter.
pub fn digest_of(s: &str) -> Result<Digest, Error> {
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
mod tests {
    use super::*;

    fn name(s: &str) -> RepoName {
        RepoName::parse(s).unwrap()
    }

    #[test]
    fn labels_name_the_endpoint_not_the_repository() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(label("/v2/"), "base");
        assert_eq!(label("/v2/_catalog"), "catalog");
        assert_eq!(label("/v2/a/manifests/blobs/tags/list"), "tags");
        assert_eq!(label("/v2/a/blobs/uploads/"), "uploads");
        assert_eq!(label("/v2/a/blobs/uploads/x"), "upload");
        assert_eq!(label("/v2/a/tags/manifests/v1"), "manifest");
        assert_eq!(label(&format!("/v2/a/blobs/{d}")), "blob");
        assert_eq!(label(&format!("/v2/a/referrers/{d}")), "referrers");
        assert_eq!(label("/v2/a/b"), "other");
        assert_eq!(label("/favicon.ico"), "other");
    }

    #[test]
    fn parses_every_endpoint() {
        let d = format!("sha256:{}", "a".repeat(64));
        let id = UploadId::new();
        assert_eq!(Route::parse("/v2/").unwrap(), Route::Base);
        assert_eq!(Route::parse("/v2/_catalog").unwrap(), Route::Catalog);
        assert_eq!(
            Route::parse("/v2/a/b/tags/list").unwrap(),
            Route::Tags(name("a/b"))
        );
        assert_eq!(
            Route::parse("/v2/a/blobs/uploads/").unwrap(),
            Route::Uploads(name("a"))
        );
        assert_eq!(
            Route::parse(&format!("/v2/a/blobs/uploads/{id}")).unwrap(),
            Route::Upload(name("a"), id)
        );
        assert!(
            matches!(Route::parse(&format!("/v2/x/y/blobs/{d}")).unwrap(), Route::Blob(n, _) if n == name("x/y"))
        );
        assert!(matches!(
            Route::parse(&format!("/v2/x/referrers/{d}")).unwrap(),
            Route::Referrers(..)
        ));
        assert!(matches!(
            Route::parse("/v2/x/manifests/latest").unwrap(),
            Route::Manifest(..)
        ));
    }

    #[test]
    fn names_may_contain_reserved_words() {
        let d = format!("sha256:{}", "b".repeat(64));
        let r = Route::parse(&format!("/v2/blobs/manifests/blobs/{d}")).unwrap();
        assert!(matches!(r, Route::Blob(n, _) if n == name("blobs/manifests")));
        let r = Route::parse("/v2/tags/list/manifests/v1").unwrap();
        assert!(matches!(r, Route::Manifest(n, _) if n == name("tags/list")));
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(matches!(
            Route::parse("/v2/../etc/manifests/x"),
            Err(Error::NameInvalid(_))
        ));
        assert!(matches!(
            Route::parse("/v2/%2e%2e/manifests/x"),
            Err(Error::NameInvalid(_))
        ));
        assert!(matches!(
            Route::parse("/v2//abs/manifests/x"),
            Err(Error::NameInvalid(_))
        ));
        assert!(matches!(
            Route::parse("/v2/a/blobs/sha256:zz"),
            Err(Error::DigestMalformed(_))
        ));
        assert!(matches!(
            Route::parse("/v2/a/manifests/-bad"),
            Err(Error::TagInvalid(_))
        ));
        assert!(matches!(
            Route::parse("/v2/a/blobs/uploads/nope"),
            Err(Error::UploadUnknown)
        ));
        assert!(matches!(Route::parse("/v3/"), Err(Error::RouteUnknown)));
        assert!(matches!(
            Route::parse("/v2/a/unknown"),
            Err(Error::RouteUnknown)
        ));
    }
}
