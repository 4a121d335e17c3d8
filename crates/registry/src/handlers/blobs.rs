//! Blob reads and deletes (end-2, end-10).

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::Reply;
use crate::body::{self, header_value};
use crate::types::{ByteRange, Digest, RepoName};
use crate::{Error, Registry};

/// end-2: `GET|HEAD /v2/<name>/blobs/<digest>`, with single `Range` support.
pub(super) async fn get_blob(
    reg: &Registry,
    repo: &RepoName,
    digest: &Digest,
    range: Option<&str>,
    head: bool,
) -> Reply {
    if let Some(upstream) = reg.upstreams.route(&reg.store, repo).await? {
        if head || range.is_some() {
            reg.upstreams
                .fill_blob(&reg.store, repo, &upstream, digest)
                .await?;
        } else if let Some((size, chunks)) = reg
            .upstreams
            .stream_blob(&reg.store, repo, &upstream, digest)
            .await?
        {
            return Ok(blob_response(
                StatusCode::OK,
                body::stream(chunks),
                digest,
                ByteRange {
                    start: 0,
                    end: size,
                },
                size,
            ));
        }
    }
    let size = reg
        .store
        .blob_size(repo, digest)
        .await?
        .ok_or(Error::BlobUnknown)?;
    let range = match range.map(|r| ByteRange::resolve(r, size)) {
        Some(Err(())) => return Err(Error::ReadRangeNotSatisfiable { size }),
        Some(Ok(r)) => r,
        None => None,
    };
    let (status, served) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r),
        None => (
            StatusCode::OK,
            ByteRange {
                start: 0,
                end: size,
            },
        ),
    };
    let body = if head {
        body::empty()
    } else {
        body::stream(reg.store.read_blob(digest, served).await?)
    };
    Ok(blob_response(status, body, digest, served, size))
}

/// A blob's response: `served` of its `size` bytes.
fn blob_response(
    status: StatusCode,
    body: body::Body,
    digest: &Digest,
    served: ByteRange,
    size: u64,
) -> Response<body::Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, served.len().into());
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("docker-content-digest", header_value(digest.as_str()));
    h.insert(header::ETAG, header_value(&format!("\"{digest}\"")));
    if status == StatusCode::PARTIAL_CONTENT {
        let range = format!("bytes {}-{}/{size}", served.start, served.end - 1);
        h.insert(header::CONTENT_RANGE, header_value(&range));
    }
    resp
}

/// end-10: `DELETE /v2/<name>/blobs/<digest>`.
pub(super) async fn delete_blob(reg: &Registry, repo: &RepoName, digest: &Digest) -> Reply {
    reg.store.delete_blob(repo, digest).await?;
    Ok(super::status(StatusCode::ACCEPTED))
}
