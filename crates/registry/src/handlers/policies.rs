//! Policies for admins (see [`crate::policy`]):
//!
//! | method | path               | does                                           |
//! |--------|--------------------|------------------------------------------------|
//! | GET    | `/api/policies`    | every rule in force, with its source            |
//! | PUT    | `/api/policies`    | replaces the API's rules `{"retention", "immutable"}` |
//! | GET    | `/api/maintenance` | `{"readOnly", "source"}`                        |
//! | PUT    | `/api/maintenance` | `{"readOnly": true|false}`                     |
//! | GET    | `/api/retention`   | what a retention run would remove (dry run)     |
//! | POST   | `/api/retention`   | runs retention now                              |

use hyper::body::Incoming;
use hyper::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::Reply;
use crate::body;
use crate::policy::Rules;
use crate::request::Ctx;
use crate::{Error, Registry};

/// Largest body read.
const MAX_BODY: usize = 1 << 20;

/// `GET /api/policies`, or with `set`, `PUT` of the API's rules.
pub(super) async fn policies(reg: &Registry, ctx: &Ctx, set: bool, body: Incoming) -> Reply {
    let policies = reg.store.policies();
    if set {
        let rules: Rules = read(ctx, body, "{\"retention\": [...], \"immutable\": [...]}").await?;
        policies.set_rules(rules).await?;
    }
    Ok(body::json(StatusCode::OK, &policies.view()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Maintenance {
    read_only: bool,
}

/// `GET /api/maintenance`, or with `set`, `PUT` of read-only mode.
pub(super) async fn maintenance(reg: &Registry, ctx: &Ctx, set: bool, body: Incoming) -> Reply {
    let policies = reg.store.policies();
    if set {
        let m: Maintenance = read(ctx, body, "{\"readOnly\": true|false}").await?;
        policies.set_read_only(m.read_only).await?;
        tracing::warn!(
            read_only = m.read_only,
            "maintenance mode changed through the API"
        );
    }
    Ok(body::json(StatusCode::OK, &policies.maintenance()))
}

/// `GET /api/retention` (`dry_run`) or `POST /api/retention`. The `delete`
/// events of what it removes carry this request's id, host and user agent,
/// and the method `DELETE`, as a client's delete would.
pub(super) async fn retention(reg: &Registry, ctx: &Ctx, dry_run: bool) -> Reply {
    let request = crate::events::Request {
        method: "DELETE".into(),
        ..ctx.request.clone()
    };
    let report = reg.store.retention(dry_run, &request).await?;
    Ok(body::json(StatusCode::OK, &serde_json::to_value(&report)?))
}

/// The request's JSON body; a body that is not `shape` is a 400 saying so.
async fn read<T: DeserializeOwned>(ctx: &Ctx, body: Incoming, shape: &str) -> Result<T, Error> {
    let bytes = body::collect_limited(body, MAX_BODY, ctx.body_idle_timeout)
        .await
        .map_err(|e| Error::BodyRead(e.to_string()))?
        .ok_or(Error::BadParameter("body"))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Invalid(format!("expected {shape}: {e}")))
}
