//! `DELETE /api/repositories/{name}`: deletes a whole repository (the spec
//! has no endpoint for it), raising one `delete` event per manifest.

use hyper::{Method, StatusCode};
use serde_json::json;

use super::{Ctx, Reply};
use crate::types::RepoName;
use crate::{body, Error, Registry};

/// Routes `/api/repositories/{name}`; `name` is the path after the prefix.
pub async fn handle(reg: &Registry, ctx: &Ctx, method: &Method, name: &str) -> Reply {
    // One trailing `/` is tolerated; a leading one would make an absolute
    // path look like a name.
    let name = name.strip_suffix('/').unwrap_or(name);
    let repo = RepoName::parse(name).ok_or_else(|| Error::NameInvalid(name.to_owned()))?;
    match *method {
        Method::DELETE => {
            let manifests = reg.store.delete_repository(&repo, &ctx.request).await?;
            Ok(body::json(
                StatusCode::OK,
                &json!({"repository": repo.as_str(), "deletedManifests": manifests}),
            ))
        }
        _ => Err(Error::MethodNotAllowed),
    }
}
