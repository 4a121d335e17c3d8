//! Manifests (end-3, end-7, end-9).

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::Reply;
use crate::body::{self, header_value};
use crate::manifest::Manifest;
use crate::query::Query;
use crate::request::Ctx;
use crate::storage::manifests::NewManifest;
use crate::types::{Digest, Reference, RepoName, Tag};
use crate::{Error, Registry};

/// end-3: `GET|HEAD /v2/<name>/manifests/<reference>`: the stored bytes with
/// the stored media type.
pub(super) async fn get_manifest(
    reg: &Registry,
    repo: &RepoName,
    reference: &Reference,
    head: bool,
) -> Reply {
    if let Some(upstream) = reg.upstreams.route(&reg.store, repo).await? {
        reg.upstreams
            .fill_manifest(&reg.store, repo, &upstream, reference)
            .await?;
    }
    let m = reg.store.manifest(repo, reference).await?;
    let len = m.bytes.len();
    let mut resp = Response::new(if head {
        body::empty()
    } else {
        body::full(m.bytes)
    });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, header_value(&m.media_type));
    h.insert(header::CONTENT_LENGTH, len.into());
    h.insert("docker-content-digest", header_value(m.digest.as_str()));
    h.insert(header::ETAG, header_value(&format!("\"{}\"", m.digest)));
    Ok(resp)
}

/// end-7a/b: `PUT /v2/<name>/manifests/<reference>[?tag=..]`.
pub(super) async fn put_manifest(
    reg: &Registry,
    ctx: &Ctx,
    repo: &RepoName,
    reference: &Reference,
    query: &Query,
    headers: &HeaderMap,
    body: Incoming,
) -> Reply {
    let limit = reg.config.max_manifest_bytes;
    let bytes = body::collect_limited(body, limit, ctx.body_idle_timeout)
        .await
        .map_err(|e| Error::BodyRead(e.to_string()))?
        .ok_or(Error::ManifestTooLarge(limit))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let manifest = Manifest::parse(&bytes, content_type)?;

    let (digest, mut tags) = match reference {
        Reference::Digest(claimed) => {
            let actual = Digest::of(claimed.algorithm(), &bytes);
            if &actual != claimed {
                return Err(Error::DigestMismatch {
                    expected: claimed.to_string(),
                    actual: actual.to_string(),
                });
            }
            (actual, Vec::new())
        }
        Reference::Tag(t) => (
            Digest::of(crate::types::Algorithm::Sha256, &bytes),
            vec![t.clone()],
        ),
    };
    for t in query.all("tag") {
        let tag = Tag::parse(t).ok_or_else(|| Error::TagInvalid(t.to_owned()))?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if manifest.subject.as_ref() == Some(&digest) {
        return Err(Error::ManifestInvalid(
            "a manifest cannot be its own subject".into(),
        ));
    }
    let new = NewManifest {
        repo: repo.clone(),
        digest,
        bytes,
        manifest,
        tags,
    };
    reg.store.put_manifest(&new, &ctx.request).await?;

    let mut resp = super::status(StatusCode::CREATED);
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        header_value(&format!("/v2/{repo}/manifests/{}", new.digest)),
    );
    h.insert("docker-content-digest", header_value(new.digest.as_str()));
    if let Some(subject) = &new.manifest.subject {
        h.insert("oci-subject", header_value(subject.as_str()));
    }
    if matches!(reference, Reference::Digest(_)) {
        for tag in &new.tags {
            h.append("oci-tag", header_value(tag.as_str()));
        }
    }
    Ok(resp)
}

/// end-9: `DELETE /v2/<name>/manifests/<reference>`: by digest, the manifest
/// and its tags; by tag, only the tag.
pub(super) async fn delete_manifest(
    reg: &Registry,
    ctx: &Ctx,
    repo: &RepoName,
    reference: &Reference,
) -> Reply {
    match reference {
        Reference::Digest(d) => reg.store.delete_manifest(repo, d, &ctx.request).await?,
        Reference::Tag(t) => reg.store.delete_tag(repo, t).await?,
    }
    let mut resp = super::status(StatusCode::ACCEPTED);
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Ok(resp)
}
