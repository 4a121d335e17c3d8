//! Store maintenance for admins: `GET /api/fsck` checks the store,
//! `POST /api/fsck` checks and repairs (see [`crate::storage::fsck`]);
//! `GET /api/gc` lists what garbage collection would delete, `POST /api/gc`
//! deletes it (see [`crate::storage::gc`]).

use hyper::{Method, StatusCode};

use super::Reply;
use crate::{body, Error, Registry};

/// Routes `/api/fsck`.
pub async fn fsck(reg: &Registry, method: &Method) -> Reply {
    let repair = match *method {
        Method::GET => false,
        Method::POST => true,
        _ => return Err(Error::MethodNotAllowed),
    };
    let report = reg.fsck(repair).await?;
    Ok(body::json(StatusCode::OK, &serde_json::to_value(&report)?))
}

/// Routes `/api/gc`.
pub async fn gc(reg: &Registry, method: &Method) -> Reply {
    let dry_run = match *method {
        Method::GET => true,
        Method::POST => false,
        _ => return Err(Error::MethodNotAllowed),
    };
    let report = reg.gc(dry_run).await?;
    Ok(body::json(StatusCode::OK, &serde_json::to_value(&report)?))
}
