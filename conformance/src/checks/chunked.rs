//! Push: chunked blob uploads (end-5, end-6, end-13, end-14).
//!
//! The in-order upload, the out-of-order probes and the cancellation each use
//! their own upload session, so one misbehaviour does not cascade.

use super::session::{close, patch, range_headers, start_session};
use super::{ensure, error_code, header, status, Context};
use crate::data::sha256;
use crate::report::{Finding, Level, Outcome};

/// Runs the chunked upload checks.
pub fn run(ctx: &mut Context) {
    in_order(ctx);
    ctx.check(
        "end-6",
        "final chunk carried by the closing PUT with Content-Range",
        Level::Must,
        final_chunk_in_put,
    );
    out_of_order(ctx);
    ctx.check(
        "code-3",
        "cancel upload: DELETE returns 204, then the session is 404 BLOB_UPLOAD_UNKNOWN",
        Level::Must,
        |ctx| {
            let (location, _) = start_session(&ctx.client, &ctx.repo, "", Level::Must)?;
            let delete = ctx.client.send("DELETE", &location, &[], Some(&[]))?;
            ensure(delete.status < 300, Level::Must, || {
                format!("upload cancel failed: {}", delete.describe())
            })?;
            let get = ctx.client.get(&location, &[])?;
            status(&get, &[404], Level::Must)?;
            status(&delete, &[204], Level::Should)?;
            error_code(&get, "BLOB_UPLOAD_UNKNOWN")?;
            Ok(None)
        },
    );
}

/// POST, PATCH, status GET, PATCH, closing PUT; each step is one row.
fn in_order(ctx: &mut Context) {
    let blob = ctx.fx.layer_chunked.clone();
    let total = blob.data.len();
    let mut split = total / 2;
    let mut location: Option<String> = None;
    ctx.check(
        "end-5",
        "POST with Content-Length: 0 opens a chunked upload (202 + Location)",
        Level::Must,
        |ctx| {
            let (url, post) = start_session(&ctx.client, &ctx.repo, "", Level::Must)?;
            if let Some(min) = post.header("OCI-Chunk-Min-Length") {
                let min: usize = min.trim().parse().map_err(|_| {
                    format!("bad OCI-Chunk-Min-Length {min:?}: {}", post.describe())
                })?;
                split = split.max(min).min(total - 1);
            }
            location = Some(url);
            Ok(None)
        },
    );
    let missing = || Finding::must("no upload session from the previous step");
    ctx.check(
        "end-5",
        "PATCH first chunk: 202 with Location and Range 0-<end>",
        Level::Must,
        |ctx| {
            let url = location.take().ok_or_else(missing)?;
            let resp = patch(&ctx.client, &url, &blob.data[..split], 0)?;
            status(&resp, &[202], Level::Must)?;
            location = Some(ctx.client.url(&range_headers(&resp, split - 1)?));
            Ok(None)
        },
    );
    ctx.check(
        "end-13",
        "GET upload status: 204 with Location and Range 0-<end>",
        Level::Must,
        |ctx| {
            let url = location.take().ok_or_else(missing)?;
            let resp = ctx.client.get(&url, &[])?;
            status(&resp, &[204], Level::Must)?;
            location = Some(ctx.client.url(&range_headers(&resp, split - 1)?));
            Ok(None)
        },
    );
    ctx.check(
        "end-5",
        "PATCH next in-order chunk: 202 and Range 0-<total-1>",
        Level::Must,
        |ctx| {
            let url = location.take().ok_or_else(missing)?;
            let resp = patch(&ctx.client, &url, &blob.data[split..], split)?;
            status(&resp, &[202], Level::Must)?;
            location = Some(ctx.client.url(&range_headers(&resp, total - 1)?));
            Ok(None)
        },
    );
    ctx.check(
        "end-6",
        "closing PUT ?digest= without body: 201 + Location serving the whole blob",
        Level::Must,
        |ctx| {
            let url = location.take().ok_or_else(missing)?;
            let resp = close(&ctx.client, &url, &blob.digest, None)?;
            status(&resp, &[201], Level::Must)?;
            let get = ctx
                .client
                .get(header(&resp, "Location", Level::Must)?, &[])?;
            status(&get, &[200], Level::Must)?;
            ensure(get.body == blob.data, Level::Must, || {
                format!("assembled blob differs from the chunks: {}", get.describe())
            })?;
            ctx.pushed.insert(blob.digest.clone());
            Ok(None)
        },
    );
}

/// Upload where the last chunk travels in the closing PUT (end-6).
fn final_chunk_in_put(ctx: &mut Context) -> Outcome {
    let blob = ctx.fx.layer_final_put.clone();
    let split = blob.data.len() / 2;
    let (location, _) = start_session(&ctx.client, &ctx.repo, "", Level::Must)?;
    let first = patch(&ctx.client, &location, &blob.data[..split], 0)?;
    status(&first, &[202], Level::Must)?;
    let location = header(&first, "Location", Level::Must)?;
    let tail = Some((&blob.data[split..], split));
    let put = close(&ctx.client, location, &blob.digest, tail)?;
    status(&put, &[201], Level::Must)?;
    let get = ctx
        .client
        .get(header(&put, "Location", Level::Must)?, &[])?;
    status(&get, &[200], Level::Must)?;
    ensure(get.body == blob.data, Level::Must, || {
        format!("assembled blob differs from the chunks: {}", get.describe())
    })?;
    ctx.pushed.insert(blob.digest);
    Ok(None)
}

/// Out-of-order PATCH and PUT chunks must get 416 and leave the session intact.
fn out_of_order(ctx: &mut Context) {
    let data = ctx.rng.bytes(600);
    let mut location: Option<String> = None;
    ctx.check(
        "end-5",
        "PATCH out-of-order chunk returns 416",
        Level::Must,
        |ctx| {
            let (url, _) = start_session(&ctx.client, &ctx.repo, "", Level::Must)?;
            let first = patch(&ctx.client, &url, &data[..200], 0)?;
            status(&first, &[202], Level::Must)?;
            let url = ctx.client.url(header(&first, "Location", Level::Must)?);
            location = Some(url.clone());
            let resp = patch(&ctx.client, &url, &data[200..400], 250)?;
            status(&resp, &[416], Level::Must)?;
            Ok(None)
        },
    );
    ctx.check(
        "end-13",
        "upload status after a 416 still reports the last valid range (0-199)",
        Level::Must,
        |ctx| {
            let url = location
                .clone()
                .ok_or_else(|| Finding::must("no upload session from the previous step"))?;
            let resp = ctx.client.get(&url, &[])?;
            let _ = ctx.client.delete(&url);
            status(&resp, &[204], Level::Must)?;
            range_headers(&resp, 199)?;
            Ok(None)
        },
    );
    ctx.check(
        "end-6",
        "out-of-order final chunk in the closing PUT returns 416",
        Level::Must,
        |ctx| {
            let (url, _) = start_session(&ctx.client, &ctx.repo, "", Level::Must)?;
            let first = patch(&ctx.client, &url, &data[..200], 0)?;
            status(&first, &[202], Level::Must)?;
            let url = ctx.client.url(header(&first, "Location", Level::Must)?);
            let put = close(&ctx.client, &url, &sha256(&data), Some((&data[200..], 250)))?;
            let _ = ctx.client.delete(&url);
            status(&put, &[416], Level::Must)?;
            Ok(None)
        },
    );
}
