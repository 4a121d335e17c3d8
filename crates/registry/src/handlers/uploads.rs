//! Blob uploads (end-4a/b/c, end-5, end-6, end-11, end-13, end-14).

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Response, StatusCode};

use super::Reply;
use crate::body::{self, header_value};
use crate::query::Query;
use crate::route::digest_of;
use crate::types::{Algorithm, ContentRange, Digest, RepoName, UploadId};
use crate::{Error, Registry};

/// end-4a/b/c, end-11: `POST /v2/<name>/blobs/uploads/`: mount, monolithic
/// upload with `?digest=`, or a new session.
pub(super) async fn start_upload(
    reg: &Registry,
    repo: &RepoName,
    query: &Query,
    body: Incoming,
) -> Reply {
    if let Some(mount) = query.get("mount") {
        let digest = digest_of(mount)?;
        let from = match query.get("from") {
            Some(f) => Some(RepoName::parse(f).ok_or_else(|| Error::NameInvalid(f.to_owned()))?),
            None => None,
        };
        if reg
            .store
            .mount_blob(repo, &digest, from.as_ref())
            .await?
            .is_some()
        {
            return Ok(blob_created(repo, &digest));
        }
    } else if let Some(digest) = query.get("digest") {
        let digest = digest_of(digest)?;
        reg.store
            .put_blob(
                repo,
                &digest,
                super::chunks(body, reg.config.body_idle_timeout),
            )
            .await?;
        return Ok(blob_created(repo, &digest));
    }
    if let Some(algo) = query.get("digest-algorithm") {
        Algorithm::parse(algo).ok_or_else(|| Error::DigestMalformed(format!("{algo}:")))?;
    }
    let id = reg.store.start_upload(repo).await?;
    Ok(upload_progress(StatusCode::ACCEPTED, repo, &id, 0))
}

/// end-13: `GET <location>`: how many bytes the session holds.
pub(super) async fn upload_status(reg: &Registry, repo: &RepoName, id: &UploadId) -> Reply {
    let len = reg.store.upload_len(repo, id).await?;
    Ok(upload_progress(StatusCode::NO_CONTENT, repo, id, len))
}

/// end-5: `PATCH <location>`: appends a chunk, in order.
pub(super) async fn patch_upload(
    reg: &Registry,
    repo: &RepoName,
    id: &UploadId,
    headers: &HeaderMap,
    body: Incoming,
) -> Reply {
    let range = content_range(headers)?;
    let len = reg
        .store
        .append_upload(
            repo,
            id,
            range,
            super::chunks(body, reg.config.body_idle_timeout),
        )
        .await?;
    Ok(upload_progress(StatusCode::ACCEPTED, repo, id, len))
}

/// end-6: `PUT <location>?digest=`: the last chunk (optional) and completion.
pub(super) async fn finish_upload(
    reg: &Registry,
    repo: &RepoName,
    id: &UploadId,
    query: &Query,
    headers: &HeaderMap,
    body: Incoming,
) -> Reply {
    let digest = query
        .get("digest")
        .ok_or_else(|| Error::UploadInvalid("the digest query parameter is required".into()))?;
    let digest = digest_of(digest)?;
    let range = content_range(headers)?;
    reg.store
        .finish_upload(
            repo,
            id,
            &digest,
            range,
            super::chunks(body, reg.config.body_idle_timeout),
        )
        .await?;
    Ok(blob_created(repo, &digest))
}

/// end-14: `DELETE <location>`: cancels the session.
pub(super) async fn cancel_upload(reg: &Registry, repo: &RepoName, id: &UploadId) -> Reply {
    reg.store.cancel_upload(repo, id).await?;
    Ok(super::status(StatusCode::NO_CONTENT))
}

fn content_range(headers: &HeaderMap) -> Result<Option<ContentRange>, Error> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("");
    ContentRange::parse(text).map(Some).ok_or_else(|| {
        Error::UploadInvalid(format!(
            "malformed Content-Range {text:?}: expected <start>-<end>"
        ))
    })
}

/// 201 for a blob now in `repo`.
fn blob_created(repo: &RepoName, digest: &Digest) -> Response<body::Body> {
    let mut resp = super::status(StatusCode::CREATED);
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        header_value(&format!("/v2/{repo}/blobs/{digest}")),
    );
    h.insert("docker-content-digest", header_value(digest.as_str()));
    resp
}

/// 202/204 describing a session: where to send the next chunk and what it holds.
fn upload_progress(
    status: StatusCode,
    repo: &RepoName,
    id: &UploadId,
    len: u64,
) -> Response<body::Body> {
    let mut resp = super::status(status);
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        header_value(&format!("/v2/{repo}/blobs/uploads/{id}")),
    );
    h.insert(
        header::RANGE,
        header_value(&format!("0-{}", len.saturating_sub(1))),
    );
    h.insert("docker-upload-uuid", header_value(id.as_str()));
    resp
}
