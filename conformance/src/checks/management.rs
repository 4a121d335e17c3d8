//! Content management: deleting tags, manifests and blobs, and that they are gone.

use super::referrers::{self, Referrers};
use super::session::upload;
use super::{blob_path, ensure, manifest_path, put_manifest, status, Context};
use crate::client::Response;
use crate::data::{self, Blob};
use crate::report::{Finding, Level};

/// Runs the deletion checks.
pub fn run(ctx: &mut Context, refs: &Referrers) {
    ctx.check(
        "end-9",
        "DELETE manifest by tag: 202, then GET of the tag is 404",
        Level::Must,
        |ctx| {
            ctx.need(&ctx.fx.image2.digest, Level::Must)?;
            let tag = format!("delete-tag-{}", ctx.rng.token(6));
            let put = put_manifest(&ctx.client, &ctx.repo, &tag, &ctx.fx.image2)?;
            status(&put, &[201], Level::Must)?;
            let delete = ctx.client.delete(&manifest_path(&ctx.repo, &tag))?;
            deleted(&delete)?;
            let get = ctx.client.get(
                &manifest_path(&ctx.repo, &tag),
                &[("Accept", data::MANIFEST_TYPE)],
            )?;
            status(&get, &[404], Level::Must)?;
            Ok(None)
        },
    );
    ctx.check(
        "end-9",
        "DELETE manifest by digest: 202, then digest and its tags are 404",
        Level::Must,
        |ctx| {
            ctx.need(&ctx.fx.config.digest, Level::Must)?;
            ctx.need(&ctx.fx.layer_post.digest, Level::Must)?;
            let manifest = data::image_manifest(&ctx.fx.config, &[&ctx.fx.layer_post]);
            let tags = [
                format!("doomed-{}", ctx.rng.token(6)),
                format!("doomed-{}", ctx.rng.token(6)),
            ];
            for tag in &tags {
                let put = put_manifest(&ctx.client, &ctx.repo, tag, &manifest)?;
                status(&put, &[201], Level::Must)?;
            }
            let delete = ctx
                .client
                .delete(&manifest_path(&ctx.repo, &manifest.digest))?;
            deleted(&delete)?;
            for reference in [&manifest.digest, &tags[0], &tags[1]] {
                let get = ctx.client.get(
                    &manifest_path(&ctx.repo, reference),
                    &[("Accept", data::MANIFEST_TYPE)],
                )?;
                status(&get, &[404], Level::Must)?;
            }
            Ok(None)
        },
    );
    ctx.check(
        "end-9",
        "DELETE of a referrer removes it from the referrers list",
        Level::Must,
        |ctx| {
            ctx.need(&refs.sig.digest, Level::Must)?;
            ensure(ctx.referrers_supported, Level::Must, || {
                "referrers API not available".to_owned()
            })?;
            let delete = ctx
                .client
                .delete(&manifest_path(&ctx.repo, &refs.sig.digest))?;
            deleted(&delete)?;
            let (resp, manifests) = referrers::list(ctx, &ctx.fx.image.digest, "")?;
            ensure(
                !manifests
                    .iter()
                    .any(|m| m["digest"] == refs.sig.digest.as_str()),
                Level::Must,
                || {
                    format!(
                        "deleted {} still listed: {}",
                        refs.sig.digest,
                        resp.describe()
                    )
                },
            )?;
            Ok(None)
        },
    );
    let mut missing = None;
    ctx.check(
        "end-9",
        "DELETE of a nonexistent manifest returns 404",
        Level::Must,
        |ctx| {
            let digest = Blob::new(ctx.rng.bytes(40), data::MANIFEST_TYPE).digest;
            let resp = ctx.client.delete(&manifest_path(&ctx.repo, &digest))?;
            status(&resp, &[404], Level::Must)?;
            missing = Some(resp);
            Ok(None)
        },
    );
    ctx.check_error_code(
        "code-7",
        "DELETE of a nonexistent manifest reports MANIFEST_UNKNOWN",
        missing,
        "MANIFEST_UNKNOWN",
    );
    ctx.check(
        "end-9",
        "DELETE manifest in a nonexistent repository returns 404",
        Level::Must,
        |ctx| {
            let repo = format!("{}-missing-{}", ctx.repo, ctx.rng.token(6));
            let resp = ctx
                .client
                .delete(&manifest_path(&repo, &ctx.fx.image.digest))?;
            status(&resp, &[404], Level::Must)?;
            Ok(None)
        },
    );
    ctx.check(
        "end-10",
        "DELETE blob: 202, then GET and HEAD are 404",
        Level::Must,
        |ctx| {
            let blob = Blob::random_layer(&mut ctx.rng, 333);
            upload(&ctx.client, &ctx.repo, &blob)?;
            let delete = ctx.client.delete(&blob_path(&ctx.repo, &blob.digest))?;
            deleted(&delete)?;
            let head = ctx.client.head(&blob_path(&ctx.repo, &blob.digest))?;
            status(&head, &[404], Level::Must)?;
            let get = ctx.client.get(&blob_path(&ctx.repo, &blob.digest), &[])?;
            status(&get, &[404], Level::Must)?;
            Ok(None)
        },
    );
    let mut missing = None;
    ctx.check(
        "end-10",
        "DELETE of a nonexistent blob returns 404",
        Level::Must,
        |ctx| {
            let digest = Blob::random_layer(&mut ctx.rng, 40).digest;
            let resp = ctx.client.delete(&blob_path(&ctx.repo, &digest))?;
            status(&resp, &[404], Level::Must)?;
            missing = Some(resp);
            Ok(None)
        },
    );
    ctx.check_error_code(
        "code-1",
        "DELETE of a nonexistent blob reports BLOB_UNKNOWN",
        missing,
        "BLOB_UNKNOWN",
    );
}

/// 202 passes; 400/405 mean deletion is disabled (allowed, reported as a warning).
fn deleted(resp: &Response) -> Result<(), Finding> {
    match resp.status {
        202 => Ok(()),
        400 | 405 => Err(Finding::should(format!(
            "deletion disabled: {}",
            resp.describe()
        ))),
        _ => Err(Finding::must(format!("expected 202: {}", resp.describe()))),
    }
}
