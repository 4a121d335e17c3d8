//! Store maintenance for admins: `GET /api/fsck` checks the store,
//! `POST /api/fsck` checks and repairs (see [`crate::storage::fsck`]);
//! `GET /api/gc` lists what garbage collection would delete, `POST /api/gc`
//! deletes it (see [`crate::storage::gc`]).

use hyper::StatusCode;

use super::Reply;
use crate::{body, Registry};

/// `GET /api/fsck` (check) or `POST /api/fsck` (`repair`).
pub(super) async fn fsck(reg: &Registry, repair: bool) -> Reply {
    let report = reg.fsck(repair).await?;
    Ok(body::json(StatusCode::OK, &serde_json::to_value(&report)?))
}

/// `GET /api/gc` (`dry_run`) or `POST /api/gc`.
pub(super) async fn gc(reg: &Registry, dry_run: bool) -> Reply {
    let report = reg.gc(dry_run).await?;
    Ok(body::json(StatusCode::OK, &serde_json::to_value(&report)?))
}
