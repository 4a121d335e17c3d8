//! The quarantine admin API (registry-owned, under `/api/quarantine`):
//!
//! | method | path                                  | does                              |
//! |--------|---------------------------------------|-----------------------------------|
//! | GET    | `/api/quarantine`                     | every held manifest               |
//! | GET    | `/api/quarantine/{repo}/{digest}`     | a held manifest's bytes (scanner) |
//! | PATCH  | `/api/quarantine/{repo}/{digest}`     | `{"state":"Passed"|"Failed","details":".."}` |

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::{Ctx, Reply};
use crate::body::{self, header_value};
use crate::route::digest_of;
use crate::storage::quarantine::Verdict;
use crate::types::RepoName;
use crate::{Error, Registry};

/// Largest PATCH body read.
const MAX_BODY: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Judgement {
    state: String,
    details: Option<String>,
}

/// Routes `/api/quarantine[/...]`; `rest` is the path after that prefix.
pub async fn handle(
    reg: &Registry,
    ctx: &Ctx,
    method: &Method,
    rest: &str,
    body: Incoming,
) -> Reply {
    // `rest` is empty or starts with the `/` after the prefix; one trailing
    // `/` is tolerated. More would make an absolute path look like a name.
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return match *method {
            Method::GET => Ok(body::json(
                StatusCode::OK,
                &json!({"manifests": reg.store.held_manifests().await?}),
            )),
            _ => Err(Error::MethodNotAllowed),
        };
    }
    let (repo, digest) = rest.rsplit_once('/').ok_or(Error::RouteUnknown)?;
    let repo = RepoName::parse(repo).ok_or_else(|| Error::NameInvalid(repo.to_owned()))?;
    let digest = digest_of(digest)?;
    match *method {
        Method::GET => {
            let m = reg.store.held_manifest(&repo, &digest)?;
            let mut resp = Response::new(body::full(m.bytes));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, header_value(&m.media_type));
            resp.headers_mut()
                .insert("docker-content-digest", header_value(digest.as_str()));
            Ok(resp)
        }
        Method::PATCH => {
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
                .judge(&repo, &digest, verdict, j.details, &ctx.request)
                .await?;
            let mut resp = body::json(
                StatusCode::OK,
                &json!({"repository": repo.as_str(), "digest": digest.as_str(), "state": j.state}),
            );
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(resp)
        }
        _ => Err(Error::MethodNotAllowed),
    }
}
