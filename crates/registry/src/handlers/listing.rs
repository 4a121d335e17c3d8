//! Paginated lists: tags (end-8a/b) and the catalog (`/v2/_catalog`).

use hyper::header;
use hyper::StatusCode;
use serde_json::json;

use super::Reply;
use crate::body::{self, header_value};
use crate::query::Query;
use crate::types::RepoName;
use crate::{Error, Registry};

/// Page size when the client gives no `n`, and the largest `n` honoured;
/// larger lists continue through the `Link` header.
const MAX_PAGE: usize = 10_000;

/// end-8: `GET /v2/<name>/tags/list[?n=&last=]`.
pub(super) async fn list_tags(reg: &Registry, repo: &RepoName, query: &Query) -> Reply {
    let (n, last) = page(query)?;
    let mut tags = reg
        .store
        .tags(repo, last, n + 1)
        .await?
        .ok_or(Error::NameUnknown)?;
    let next = more(&mut tags, n);
    let mut resp = body::json(
        StatusCode::OK,
        &json!({"name": repo.as_str(), "tags": tags}),
    );
    if let Some(last) = next {
        let link = format!("</v2/{repo}/tags/list?n={n}&last={last}>; rel=\"next\"");
        resp.headers_mut().insert(header::LINK, header_value(&link));
    }
    Ok(resp)
}

/// `GET /v2/_catalog[?n=&last=]`.
pub(super) async fn list_repositories(reg: &Registry, query: &Query) -> Reply {
    let (n, last) = page(query)?;
    let mut repos = reg.store.repositories(last, n + 1).await?;
    let next = more(&mut repos, n);
    let mut resp = body::json(StatusCode::OK, &json!({"repositories": repos}));
    if let Some(last) = next {
        let link = format!("</v2/_catalog?n={n}&last={last}>; rel=\"next\"");
        resp.headers_mut().insert(header::LINK, header_value(&link));
    }
    Ok(resp)
}

fn page(query: &Query) -> Result<(usize, Option<&str>), Error> {
    let n = query
        .number::<usize>("n")?
        .map_or(MAX_PAGE, |n| n.min(MAX_PAGE));
    Ok((n, query.get("last").filter(|l| !l.is_empty())))
}

/// Cuts a list fetched with one extra item back to `n`; returns the last
/// item kept when there was more. `n=0` is an empty page with no next one
/// (end-8b: no `Link` header).
fn more(items: &mut Vec<String>, n: usize) -> Option<String> {
    let more = items.len() > n;
    items.truncate(n);
    items.last().cloned().filter(|_| more)
}
