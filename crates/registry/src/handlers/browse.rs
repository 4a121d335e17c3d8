//! The read APIs the web console browses with (see
//! [`crate::storage::browse`]):
//!
//! | path                                               | answers                                   |
//! |----------------------------------------------------|-------------------------------------------|
//! | `/api/repositories?q=&n=&last=`                    | `{"repositories": [{name, tags}], "next"}` |
//! | `/api/repositories/{name}/_tags?n=&last=`          | `{"tags": [{tag, digest, mediaType, size, pushed, platforms}], "next"}` |
//! | `/api/repositories/{name}/_manifests/{digest}`     | the manifest's parts and its referrers    |

use hyper::StatusCode;
use serde_json::json;

use super::Reply;
use crate::query::Query;
use crate::types::{Digest, RepoName};
use crate::{body, Error, Registry};

/// Items per page when `n` is not given, and at most.
const PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

fn page_size(query: &Query) -> Result<usize, Error> {
    match query.get("n") {
        None => Ok(PAGE),
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or(Error::BadParameter("n")),
    }
}

/// `GET /api/repositories`.
pub(super) async fn repositories(reg: &Registry, query: &Query) -> Reply {
    let search = query.get("q").unwrap_or_default();
    let page = reg
        .store
        .browse_repositories(search, query.get("last"), page_size(query)?)
        .await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"repositories": page.items, "next": page.next}),
    ))
}

/// `GET /api/repositories/{name}/_tags`.
pub(super) async fn tags(reg: &Registry, repo: &RepoName, query: &Query) -> Reply {
    let page = reg
        .store
        .browse_tags(repo, query.get("last"), page_size(query)?)
        .await?
        .ok_or(Error::NameUnknown)?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"name": repo.as_str(), "tags": page.items, "next": page.next}),
    ))
}

/// `GET /api/repositories/{name}/_manifests/{digest}`.
pub(super) async fn manifest(reg: &Registry, repo: &RepoName, digest: &Digest) -> Reply {
    let details = reg.store.browse_manifest(repo, digest).await?;
    Ok(body::json(StatusCode::OK, &details))
}
