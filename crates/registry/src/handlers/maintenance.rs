//! Store maintenance for admins: `GET /api/fsck` checks the store,
//! `POST /api/fsck` checks and repairs (see [`crate::storage::fsck`]).

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
