//! The referrers API (end-12a/b).

use hyper::header::{self, HeaderValue};
use hyper::StatusCode;
use serde_json::json;

use super::Reply;
use crate::body;
use crate::manifest::OCI_INDEX;
use crate::query::Query;
use crate::types::{Digest, RepoName};
use crate::Registry;

/// end-12: `GET /v2/<name>/referrers/<digest>[?artifactType=]`: an image
/// index of the manifests whose subject is `digest` (empty when none).
pub(super) async fn list_referrers(
    reg: &Registry,
    repo: &RepoName,
    subject: &Digest,
    query: &Query,
) -> Reply {
    let mut manifests = reg.store.referrers(repo, subject).await?;
    let filter = query.get("artifactType");
    if let Some(t) = filter {
        manifests.retain(|d| d["artifactType"] == t);
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    let mut resp = body::json(StatusCode::OK, &index);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX));
    if filter.is_some() {
        h.insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}
