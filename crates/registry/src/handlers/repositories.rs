//! `DELETE /api/repositories/{name}`: deletes a whole repository (the spec
//! has no endpoint for it), raising one `delete` event per manifest.

use hyper::StatusCode;
use serde_json::json;

use super::Reply;
use crate::request::Ctx;
use crate::types::RepoName;
use crate::{body, Registry};

/// `DELETE /api/repositories/{name}`.
pub(super) async fn delete(reg: &Registry, ctx: &Ctx, repo: &RepoName) -> Reply {
    let manifests = reg.store.delete_repository(repo, &ctx.request).await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"repository": repo.as_str(), "deletedManifests": manifests}),
    ))
}
