//! The quarantine admin API (registry-owned, under `/api/quarantine`):
//!
//! | method | path                                  | does                              |
//! |--------|---------------------------------------|-----------------------------------|
//! | GET    | `/api/quarantine`                     | every held manifest               |
//! | GET    | `/api/quarantine/{repo}/{digest}`     | a held manifest's bytes (scanner) |
//! | PATCH  | `/api/quarantine/{repo}/{digest}`     | `{"state":"Passed"|"Failed","details":".."}` |

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::Reply;
use crate::body::{self, header_value};
use crate::request::Ctx;
use crate::storage::quarantine::Verdict;
use crate::types::{Digest, RepoName};
use crate::{Error, Registry};

/// Largest PATCH body read.
const MAX_BODY: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Judgement {
    state: String,
    details: Option<String>,
}

/// `GET /api/quarantine`: every held manifest.
pub(super) async fn list(reg: &Registry) -> Reply {
    let held = reg.store.held_manifests().await?;
    Ok(body::json(StatusCode::OK, &json!({"manifests": held})))
}

/// `GET /api/quarantine/{repo}/{digest}`: a held manifest's bytes.
pub(super) async fn show(reg: &Registry, repo: &RepoName, digest: &Digest) -> Reply {
    let m = reg.store.held_manifest(repo, digest).await?;
    let mut resp = Response::new(body::full(m.bytes));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, header_value(&m.media_type));
    resp.headers_mut()
        .insert("docker-content-digest", header_value(digest.as_str()));
    Ok(resp)
}

/// `PATCH /api/quarantine/{repo}/{digest}`: records a scanner's verdict.
pub(super) async fn judge(
    reg: &Registry,
    ctx: &Ctx,
    repo: &RepoName,
    digest: &Digest,
    body: Incoming,
) -> Reply {
    let bytes = body::collect_limited(body, MAX_BODY, ctx.body_idle_timeout)
        .await
        .map_err(|e| Error::BodyRead(e.to_string()))?
        .ok_or(Error::BadParameter("body"))?;
    let j: Judgement = serde_json::from_slice(&bytes).map_err(|e| {
        Error::ManifestInvalid(format!(
            "expected {{\"state\":\"Passed\"|\"Failed\",\"details\":\"...\"}}: {e}"
        ))
    })?;
    let verdict = match j.state.as_str() {
        "Passed" => Verdict::Passed,
        "Failed" => Verdict::Failed,
        other => {
            return Err(Error::ManifestInvalid(format!(
                "state {other:?}: expected Passed or Failed"
            )))
        }
    };
    reg.store
        .judge(repo, digest, verdict, j.details, &ctx.request)
        .await?;
    let mut resp = body::json(
        StatusCode::OK,
        &json!({"repository": repo.as_str(), "digest": digest.as_str(), "state": j.state}),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
