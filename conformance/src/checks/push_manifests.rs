//! Push: manifests by tag and digest, tags on push (end-7b), rejections.

use super::session::upload;
use super::{
    content_digest, ensure, error_code, header, manifest_path, put_manifest, status, Context,
};
use crate::client::encode;
use crate::data::{self, sha512, Blob};
use crate::report::{Finding, Level, Outcome};

/// Tag under which the main image manifest is pushed.
pub const IMAGE_TAG: &str = "latest";
/// Tag under which the index is pushed.
pub const INDEX_TAG: &str = "index";

/// Tags pushed together with `?tag=` (end-7b); mixed case exercises ordering.
pub fn multi_tags() -> Vec<String> {
    let mut tags: Vec<String> = (0..9).map(|i| format!("multi-{i}")).collect();
    tags.push("Multi-Upper".to_owned());
    tags
}

/// Runs the manifest push checks.
pub fn run(ctx: &mut Context) {
    ctx.check(
        "end-7a",
        "PUT image manifest by tag: 201, Location, Docker-Content-Digest",
        Level::Must,
        |ctx| {
            let image = ctx.fx.image.clone();
            let note = ensure_blobs(ctx)?;
            push_checked(ctx, IMAGE_TAG, &image)?;
            ctx.pushed.insert(IMAGE_TAG.to_owned());
            Ok(note)
        },
    );
    ctx.check(
        "end-7a",
        "PUT image manifest by digest: 201, Location, Docker-Content-Digest",
        Level::Must,
        |ctx| {
            let image2 = ctx.fx.image2.clone();
            ctx.need(&ctx.fx.config.digest, Level::Must)?;
            ctx.need(&ctx.fx.layer_put.digest, Level::Must)?;
            push_checked(ctx, &image2.digest, &image2)?;
            Ok(None)
        },
    );
    ctx.check(
        "end-7a",
        "PUT image index by tag: 201, Location, Docker-Content-Digest",
        Level::Must,
        |ctx| {
            let index = ctx.fx.index.clone();
            ctx.need(&ctx.fx.image.digest, Level::Must)?;
            ctx.need(&ctx.fx.image2.digest, Level::Must)?;
            push_checked(ctx, INDEX_TAG, &index)?;
            ctx.pushed.insert(INDEX_TAG.to_owned());
            Ok(None)
        },
    );
    ctx.check(
        "end-7b",
        "PUT by digest with 10 ?tag= params: each tag created and echoed in OCI-Tag",
        Level::Must,
        tags_on_push,
    );
    ctx.check(
        "code-5",
        "manifest referencing a missing blob: accepted, or rejected with MANIFEST_BLOB_UNKNOWN",
        Level::Must,
        |ctx| {
            let missing = Blob::random_layer(&mut ctx.rng, 64);
            let manifest = data::image_manifest(&ctx.fx.config, &[&missing]);
            let resp = put_manifest(&ctx.client, &ctx.repo, &manifest.digest, &manifest)?;
            if resp.status == 201 {
                return Ok(Some(
                    "registry accepted it (allowed: MAY reject)".to_owned(),
                ));
            }
            let codes = resp.error_codes();
            ensure(
                codes.iter().any(|c| c == "MANIFEST_BLOB_UNKNOWN"),
                Level::Must,
                || {
                    format!(
                        "rejection lacks MANIFEST_BLOB_UNKNOWN (codes {codes:?}): {}",
                        resp.describe()
                    )
                },
            )?;
            status(&resp, &[400], Level::Should)?;
            Ok(None)
        },
    );
    ctx.check(
        "code-6",
        "PUT of a non-JSON manifest is rejected with 400 MANIFEST_INVALID",
        Level::Should,
        |ctx| {
            let garbage = Blob::new(b"this is not a manifest".to_vec(), data::MANIFEST_TYPE);
            let resp = put_manifest(&ctx.client, &ctx.repo, "garbage", &garbage)?;
            status(&resp, &[400], Level::Should)?;
            error_code(&resp, "MANIFEST_INVALID")?;
            Ok(None)
        },
    );
    ctx.check(
        "end-7a",
        "PUT manifest by sha512 digest; GET by that digest returns it",
        Level::Should,
        |ctx| {
            ctx.need(&ctx.fx.config.digest, Level::Should)?;
            let mut manifest = data::image_manifest(&ctx.fx.config, &[&ctx.fx.layer_put]);
            manifest.data.extend_from_slice(b"\n\n");
            manifest.digest = sha512(&manifest.data);
            let put = put_manifest(&ctx.client, &ctx.repo, &manifest.digest, &manifest)?;
            status(&put, &[201], Level::Should)?;
            content_digest(&put, &manifest.digest, Level::Should)?;
            let get = ctx.client.get(
                &manifest_path(&ctx.repo, &manifest.digest),
                &[("Accept", data::MANIFEST_TYPE)],
            )?;
            status(&get, &[200], Level::Should)?;
            ensure(get.body == manifest.data, Level::Should, || {
                format!("bytes differ from the pushed manifest: {}", get.describe())
            })?;
            Ok(None)
        },
    );
    ctx.check(
        "end-7a",
        "a ~4 MB manifest push is accepted",
        Level::Should,
        |ctx| {
            ctx.need(&ctx.fx.config.digest, Level::Should)?;
            let padding = ctx.rng.token(4 * 1000 * 1000);
            let doc = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": data::MANIFEST_TYPE,
                "config": ctx.fx.config.descriptor(),
                "layers": [],
                "annotations": {"conformance.padding": padding},
            });
            let manifest = Blob::new(doc.to_string().into_bytes(), data::MANIFEST_TYPE);
            let put = put_manifest(&ctx.client, &ctx.repo, &manifest.digest, &manifest)?;
            status(&put, &[201], Level::Should)?;
            Ok(None)
        },
    );
}

/// Makes sure every blob of the main image is in the repository, re-pushing
/// with POST+PUT any whose dedicated upload check failed (so pull checks stay
/// independent of those failures). Returns a note naming re-pushed blobs.
fn ensure_blobs(ctx: &mut Context) -> Result<Option<String>, Finding> {
    let fx = &ctx.fx;
    let blobs = [
        &fx.config,
        &fx.layer_put,
        &fx.layer_post,
        &fx.layer_chunked,
        &fx.layer_final_put,
    ];
    let mut repushed = Vec::new();
    for blob in blobs {
        if !ctx.pushed.contains(&blob.digest) {
            upload(&ctx.client, &ctx.repo, blob)?;
            repushed.push(blob.digest.clone());
        }
    }
    ctx.pushed.extend(repushed.iter().cloned());
    Ok((!repushed.is_empty()).then(|| {
        format!(
            "re-pushed via POST+PUT after earlier failures: {}",
            repushed.join(", ")
        )
    }))
}

/// PUTs `manifest` under `reference` and checks 201, a pullable Location with
/// identical bytes, and (if present) a matching Docker-Content-Digest.
fn push_checked(ctx: &mut Context, reference: &str, manifest: &Blob) -> Result<(), Finding> {
    let put = put_manifest(&ctx.client, &ctx.repo, reference, manifest)?;
    status(&put, &[201], Level::Must)?;
    if reference.contains(':') || put.header("Docker-Content-Digest").is_some() {
        content_digest(&put, &manifest.digest, Level::Must)?;
    }
    let location = header(&put, "Location", Level::Must)?;
    let get = ctx
        .client
        .get(location, &[("Accept", manifest.media_type.as_str())])?;
    status(&get, &[200], Level::Must)?;
    ensure(get.body == manifest.data, Level::Must, || {
        format!(
            "manifest at Location differs from the pushed bytes: {}",
            get.describe()
        )
    })?;
    ctx.pushed.insert(manifest.digest.clone());
    Ok(())
}

/// end-7b: tags on push with `OCI-Tag` response headers.
fn tags_on_push(ctx: &mut Context) -> Outcome {
    let image2 = ctx.fx.image2.clone();
    ctx.need(&image2.digest, Level::Must)?;
    let tags = multi_tags();
    let query: Vec<String> = tags.iter().map(|t| format!("tag={}", encode(t))).collect();
    let reference = format!("{}?{}", image2.digest, query.join("&"));
    let put = put_manifest(&ctx.client, &ctx.repo, &reference, &image2)?;
    status(&put, &[201], Level::Must)?;
    let echoed: Vec<String> = put
        .header_all("OCI-Tag")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    let mut created = Vec::new();
    for tag in &tags {
        let head = ctx.client.head(&manifest_path(&ctx.repo, tag))?;
        if head.status == 200 {
            created.push(tag.clone());
        }
    }
    if created.is_empty() && echoed.is_empty() {
        return Err(Finding::should(format!(
            "tags on push not supported (no tag created, no OCI-Tag): {}",
            put.describe()
        )));
    }
    ensure(created.len() == tags.len(), Level::Must, || {
        format!(
            "only {created:?} of {tags:?} were created: {}",
            put.describe()
        )
    })?;
    for tag in &tags {
        ensure(echoed.contains(tag), Level::Must, || {
            format!(
                "tag {tag} missing from OCI-Tag headers {echoed:?}: {}",
                put.describe()
            )
        })?;
        ctx.pushed.insert(tag.clone());
    }
    Ok(None)
}
