//! Pull: manifests and blobs by GET/HEAD, Range requests, 404s.

use super::push_manifests::{IMAGE_TAG, INDEX_TAG};
use super::{blob_path, content_digest, ensure, header, manifest_path, status, Context};
use crate::client::Response;
use crate::data::{digest_like, Blob, INDEX_TYPE, MANIFEST_TYPE};
use crate::report::{Finding, Level};

/// `Accept` header listing the manifest types this program pushes.
const ACCEPT: (&str, &str) = (
    "Accept",
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
);

/// Runs the pull checks.
pub fn run(ctx: &mut Context) {
    manifests(ctx);
    blobs(ctx);
    ranges(ctx);
}

/// Fails unless `Docker-Content-Digest` is present and is the digest of the body.
fn body_digest(resp: &Response, level: Level) -> Result<(), Finding> {
    let got = header(resp, "Docker-Content-Digest", level)?;
    ensure(digest_like(got, &resp.body) == got, level, || {
        format!(
            "Docker-Content-Digest {got} does not match the body: {}",
            resp.describe()
        )
    })
}

/// GET `path` and require 200, exactly `expected`'s bytes and a matching digest header.
fn get_exact(
    ctx: &Context,
    path: &str,
    expected: &Blob,
    level: Level,
) -> Result<Response, Finding> {
    let resp = ctx.client.get(path, &[ACCEPT])?;
    status(&resp, &[200], level)?;
    ensure(resp.body == expected.data, level, || {
        format!(
            "body differs from the pushed content ({} vs {} bytes): {}",
            resp.body.len(),
            expected.data.len(),
            resp.describe()
        )
    })?;
    body_digest(&resp, level)?;
    Ok(resp)
}

/// HEAD `path` and require 200, the digest header and Content-Length of `expected`.
fn head_exact(ctx: &Context, path: &str, expected: &Blob) -> Result<(), Finding> {
    let resp = ctx.client.send("HEAD", path, &[ACCEPT], None)?;
    status(&resp, &[200], Level::Must)?;
    content_digest(&resp, &expected.digest, Level::Must)?;
    let length = header(&resp, "Content-Length", Level::Must)?;
    ensure(
        length.trim() == expected.data.len().to_string(),
        Level::Must,
        || {
            format!(
                "Content-Length {length}, expected {}: {}",
                expected.data.len(),
                resp.describe()
            )
        },
    )
}

/// Manifest pulls.
fn manifests(ctx: &mut Context) {
    ctx.check(
        "end-3",
        "GET manifest by tag: 200, exact bytes, Docker-Content-Digest",
        Level::Must,
        |ctx| {
            ctx.need(IMAGE_TAG, Level::Must)?;
            get_exact(
                ctx,
                &manifest_path(&ctx.repo, IMAGE_TAG),
                &ctx.fx.image,
                Level::Must,
            )?;
            Ok(None)
        },
    );
    ctx.check(
        "end-3",
        "GET manifest by digest: 200, exact bytes, Docker-Content-Digest",
        Level::Must,
        |ctx| {
            ctx.need(&ctx.fx.image2.digest, Level::Must)?;
            get_exact(
                ctx,
                &manifest_path(&ctx.repo, &ctx.fx.image2.digest),
                &ctx.fx.image2,
                Level::Must,
            )?;
            Ok(None)
        },
    );
    let mut index = None;
    ctx.check(
        "end-3",
        "GET image index by tag: 200, exact bytes, Docker-Content-Digest",
        Level::Must,
        |ctx| {
            ctx.need(INDEX_TAG, Level::Must)?;
            let path = manifest_path(&ctx.repo, INDEX_TAG);
            index = Some(get_exact(ctx, &path, &ctx.fx.index, Level::Must)?);
            Ok(None)
        },
    );
    ctx.check(
        "end-3",
        "Content-Type of GET equals the pushed type, without parameters (manifest, index)",
        Level::Should,
        |ctx| {
            let index = index.ok_or_else(|| Finding::should("index pull failed earlier"))?;
            let path = manifest_path(&ctx.repo, &ctx.fx.image.digest);
            let image = ctx.client.get(&path, &[ACCEPT])?;
            for (resp, expected) in [(&index, INDEX_TYPE), (&image, MANIFEST_TYPE)] {
                let got = header(resp, "Content-Type", Level::Should)?;
                ensure(got == expected, Level::Should, || {
                    format!(
                        "Content-Type {got:?}, pushed {expected:?}: {}",
                        resp.describe()
                    )
                })?;
            }
            Ok(None)
        },
    );
    ctx.check(
        "end-3",
        "HEAD manifest by tag and by digest: 200, Docker-Content-Digest, Content-Length",
        Level::Must,
        |ctx| {
            ctx.need(IMAGE_TAG, Level::Must)?;
            head_exact(ctx, &manifest_path(&ctx.repo, IMAGE_TAG), &ctx.fx.image)?;
            head_exact(
                ctx,
                &manifest_path(&ctx.repo, &ctx.fx.image.digest),
                &ctx.fx.image,
            )?;
            Ok(None)
        },
    );
    let mut missing = None;
    ctx.check(
        "end-3",
        "GET and HEAD of a nonexistent manifest return 404",
        Level::Must,
        |ctx| {
            let tag = format!("missing-{}", ctx.rng.token(8));
            let digest = Blob::new(ctx.rng.bytes(32), MANIFEST_TYPE).digest;
            let head = ctx
                .client
                .send("HEAD", &manifest_path(&ctx.repo, &tag), &[ACCEPT], None)?;
            status(&head, &[404], Level::Must)?;
            let by_digest = ctx
                .client
                .get(&manifest_path(&ctx.repo, &digest), &[ACCEPT])?;
            status(&by_digest, &[404], Level::Must)?;
            let get = ctx.client.get(&manifest_path(&ctx.repo, &tag), &[ACCEPT])?;
            status(&get, &[404], Level::Must)?;
            missing = Some(get);
            Ok(None)
        },
    );
    ctx.check_error_code(
        "code-7",
        "nonexistent manifest error body has code MANIFEST_UNKNOWN",
        missing,
        "MANIFEST_UNKNOWN",
    );
    ctx.check(
        "end-3",
        "GET manifest in a nonexistent repository returns 404",
        Level::Must,
        |ctx| {
            let repo = format!("{}-missing-{}", ctx.repo, ctx.rng.token(6));
            let resp = ctx
                .client
                .get(&manifest_path(&repo, IMAGE_TAG), &[ACCEPT])?;
            status(&resp, &[404], Level::Must)?;
            Ok(None)
        },
    );
}

/// Blob pulls.
fn blobs(ctx: &mut Context) {
    ctx.check(
        "end-2",
        "GET blob: 200, exact bytes, Docker-Content-Digest matches body",
        Level::Must,
        |ctx| {
            for blob in [&ctx.fx.config, &ctx.fx.layer_post, &ctx.fx.layer_chunked] {
                ctx.need(&blob.digest, Level::Must)?;
                get_exact(ctx, &blob_path(&ctx.repo, &blob.digest), blob, Level::Must)?;
            }
            Ok(None)
        },
    );
    ctx.check(
        "end-2",
        "HEAD blob: 200, Docker-Content-Digest, Content-Length",
        Level::Must,
        |ctx| {
            for blob in [&ctx.fx.config, &ctx.fx.layer_chunked] {
                ctx.need(&blob.digest, Level::Must)?;
                head_exact(ctx, &blob_path(&ctx.repo, &blob.digest), blob)?;
            }
            Ok(None)
        },
    );
    ctx.check(
        "end-2",
        "GET sha512 blobs by sha512 digest",
        Level::Should,
        |ctx| {
            for blob in [&ctx.fx.sha512_chunked, &ctx.fx.sha512_mono] {
                ctx.need(&blob.digest, Level::Should)?;
                get_exact(
                    ctx,
                    &blob_path(&ctx.repo, &blob.digest),
                    blob,
                    Level::Should,
                )?;
            }
            Ok(None)
        },
    );
    let mut missing = None;
    ctx.check(
        "end-2",
        "GET and HEAD of a nonexistent blob return 404",
        Level::Must,
        |ctx| {
            let digest = Blob::new(ctx.rng.bytes(32), MANIFEST_TYPE).digest;
            let head = ctx.client.head(&blob_path(&ctx.repo, &digest))?;
            status(&head, &[404], Level::Must)?;
            let get = ctx.client.get(&blob_path(&ctx.repo, &digest), &[])?;
            status(&get, &[404], Level::Must)?;
            missing = Some(get);
            Ok(None)
        },
    );
    ctx.check_error_code(
        "code-1",
        "nonexistent blob error body has code BLOB_UNKNOWN",
        missing,
        "BLOB_UNKNOWN",
    );
}

/// Range requests on blobs (RFC 9110 section 14).
fn ranges(ctx: &mut Context) {
    let blob = ctx.fx.layer_chunked.clone();
    let total = blob.data.len();
    let cases = [
        ("bytes=10-99", 10, 99),
        ("bytes=100-", 100, total - 1),
        ("bytes=-50", total - 50, total - 1),
    ];
    ctx.check(
        "end-2",
        "Range GET (a-b, a-, -n) returns 206 with Content-Range and the slice",
        Level::Should,
        |ctx| {
            ctx.need(&blob.digest, Level::Should)?;
            for (range, start, end) in cases {
                let resp = ctx
                    .client
                    .get(&blob_path(&ctx.repo, &blob.digest), &[("Range", range)])?;
                status(&resp, &[206], Level::Should)?;
                let content_range = header(&resp, "Content-Range", Level::Should)?;
                let expected = format!("bytes {start}-{end}/{total}");
                ensure(content_range == expected, Level::Should, || {
                    format!(
                        "Content-Range {content_range:?}, expected {expected:?}: {}",
                        resp.describe()
                    )
                })?;
                ensure(resp.body == blob.data[start..=end], Level::Should, || {
                    format!("206 body is not bytes {start}-{end}: {}", resp.describe())
                })?;
            }
            Ok(None)
        },
    );
    ctx.check(
        "end-2",
        "unsatisfiable Range GET (past the end, or last byte before first) returns 416 with Content-Range bytes */size",
        Level::Should,
        |ctx| {
            ctx.need(&blob.digest, Level::Should)?;
            for range in [
                format!("bytes={}-{}", total + 100, total + 200),
                "bytes=500-0".to_owned(),
            ] {
                let resp = ctx.client.get(
                    &blob_path(&ctx.repo, &blob.digest),
                    &[("Range", range.as_str())],
                )?;
                status(&resp, &[416], Level::Should)?;
                let content_range = header(&resp, "Content-Range", Level::Should)?;
                let expected = format!("bytes */{total}");
                ensure(content_range == expected, Level::Should, || {
                    format!("{range}: Content-Range {content_range:?}, expected {expected:?}")
                })?;
            }
            Ok(None)
        },
    );
}
