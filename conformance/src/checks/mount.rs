//! Push: cross-repository blob mounts (end-11).

use super::session::upload;
use super::{blob_path, ensure, header, status, uploads_path, Context};
use crate::client::with_query;
use crate::data::Blob;
use crate::report::{Finding, Level, Outcome};

/// Runs the cross-mount checks.
pub fn run(ctx: &mut Context) {
    ctx.check(
        "end-11",
        "mount with ?mount=&from= returns 201 + Location; blob pullable in target",
        Level::Must,
        |ctx| {
            let blob = ctx.fx.mount_from.clone();
            let query = format!("mount={}&from={}", blob.digest, ctx.repo);
            mount(ctx, &blob, &query, false)
        },
    );
    ctx.check(
        "end-11",
        "mount without from: 201 + Location, or 202 upload-session fallback",
        Level::Must,
        |ctx| {
            let blob = ctx.fx.mount_nofrom.clone();
            let query = format!("mount={}", blob.digest);
            mount(ctx, &blob, &query, true)
        },
    );
    ctx.check(
        "end-11",
        "mount of a blob the source repository lacks: not 201; 202 upload session",
        Level::Must,
        |ctx| {
            let absent = Blob::random_layer(&mut ctx.rng, 100).digest;
            let query = format!("mount={absent}&from={}", ctx.repo);
            let url = with_query(&uploads_path(&ctx.mount_repo), &query);
            let post = ctx.client.send("POST", &url, &[], Some(&[]))?;
            ensure(post.status != 201, Level::Must, || {
                format!("mounted a blob that exists nowhere: {}", post.describe())
            })?;
            status(&post, &[202], Level::Should)?;
            let location = header(&post, "Location", Level::Should)?;
            let _ = ctx.client.delete(location);
            Ok(None)
        },
    );
}

/// Pushes `blob` to the main repository, then mounts it into the cross-mount
/// repository with `query`. A 202 answer is accepted only if `allow_fallback`.
fn mount(ctx: &mut Context, blob: &Blob, query: &str, allow_fallback: bool) -> Outcome {
    upload(&ctx.client, &ctx.repo, blob)
        .map_err(|f| Finding::must(format!("pushing the source blob failed: {}", f.reason)))?;
    let url = with_query(&uploads_path(&ctx.mount_repo), query);
    let post = ctx.client.send("POST", &url, &[], Some(&[]))?;
    if post.status == 202 && allow_fallback {
        let location = header(&post, "Location", Level::Must)?;
        let _ = ctx.client.delete(location);
        return Ok(Some("registry answered 202 (no mount); allowed".to_owned()));
    }
    status(&post, &[201], Level::Must)?;
    header(&post, "Location", Level::Must)?;
    if let Some(digest) = post.header("Docker-Content-Digest") {
        ensure(digest == blob.digest, Level::Must, || {
            format!("Docker-Content-Digest {digest} != {}", blob.digest)
        })?;
    }
    let get = ctx
        .client
        .get(&blob_path(&ctx.mount_repo, &blob.digest), &[])?;
    status(&get, &[200], Level::Must)?;
    ensure(get.body == blob.data, Level::Must, || {
        format!("mounted blob content differs: {}", get.describe())
    })?;
    Ok(None)
}
