//! Push: blob uploads (monolithic, single POST, chunked, sha512, failure modes).

use super::session::{close, patch, start_session, upload, OCTET};
use super::{blob_path, ensure, error_code, header, status, uploads_path, Context};
use crate::client::with_query;
use crate::data::sha256;
use crate::report::{Finding, Level, Outcome};

/// Runs the blob push checks, recording pushed digests in the context.
pub fn run(ctx: &mut Context) {
    let mut session = None;
    ctx.check(
        "end-4a",
        "POST blobs/uploads/ returns 202 with a Location",
        Level::Must,
        |ctx| {
            session = Some(start_session(&ctx.client, &ctx.repo, "", Level::Must)?.0);
            Ok(None)
        },
    );
    ctx.check(
        "end-4a",
        "each upload session gets a distinct Location",
        Level::Must,
        |ctx| {
            let first = start_session(&ctx.client, &ctx.repo, "", Level::Must)?.0;
            let second = start_session(&ctx.client, &ctx.repo, "", Level::Must)?.0;
            let _ = ctx.client.delete(&first);
            let _ = ctx.client.delete(&second);
            ensure(first != second, Level::Must, || {
                format!("two POSTs both returned Location {first}")
            })?;
            Ok(None)
        },
    );
    ctx.check(
        "end-6",
        "PUT <location>?digest= completes a POST+PUT upload: 201 + pullable Location",
        Level::Must,
        |ctx| {
            let location = session.ok_or_else(|| Finding::must("no upload session from end-4a"))?;
            let blob = ctx.fx.config.clone();
            let put = ctx.client.send(
                "PUT",
                &with_query(&location, &format!("digest={}", blob.digest)),
                &[OCTET],
                Some(&blob.data),
            )?;
            status(&put, &[201], Level::Must)?;
            let blob_location = header(&put, "Location", Level::Must)?;
            let get = ctx.client.get(blob_location, &[])?;
            status(&get, &[200], Level::Must)?;
            ensure(get.body == blob.data, Level::Must, || {
                format!("blob at Location differs from upload: {}", get.describe())
            })?;
            ctx.pushed.insert(blob.digest);
            upload(&ctx.client, &ctx.repo, &ctx.fx.layer_put)?;
            ctx.pushed.insert(ctx.fx.layer_put.digest.clone());
            Ok(None)
        },
    );
    ctx.check(
        "end-4b",
        "single POST ?digest= returns 201 + Location (or 202 fallback, then PUT)",
        Level::Should,
        single_post,
    );
    ctx.check(
        "code-4",
        "PUT with a digest not matching the content is rejected (400 DIGEST_INVALID)",
        Level::Must,
        |ctx| {
            let data = ctx.rng.bytes(300);
            let wrong = sha256(&ctx.rng.bytes(300));
            let (location, _) = start_session(&ctx.client, &ctx.repo, "", Level::Must)?;
            let put = ctx.client.send(
                "PUT",
                &with_query(&location, &format!("digest={wrong}")),
                &[OCTET],
                Some(&data),
            )?;
            ensure((400..500).contains(&put.status), Level::Must, || {
                format!(
                    "mismatched digest not rejected with 4xx: {}",
                    put.describe()
                )
            })?;
            let head = ctx.client.head(&blob_path(&ctx.repo, &wrong))?;
            status(&head, &[404], Level::Must)?;
            status(&put, &[400], Level::Should)?;
            error_code(&put, "DIGEST_INVALID")?;
            Ok(None)
        },
    );
    ctx.check(
        "end-6",
        "PUT with a malformed digest is rejected with 400",
        Level::Should,
        |ctx| {
            let (location, _) = start_session(&ctx.client, &ctx.repo, "", Level::Should)?;
            let put = ctx.client.send(
                "PUT",
                &with_query(&location, "digest=sha256:not-a-digest"),
                &[OCTET],
                Some(b"abc"),
            )?;
            let _ = ctx.client.delete(&location);
            status(&put, &[400], Level::Should)?;
            Ok(None)
        },
    );
    ctx.check(
        "end-4c",
        "chunked sha512 upload with ?digest-algorithm=sha512",
        Level::Should,
        |ctx| {
            let blob = ctx.fx.sha512_chunked.clone();
            let (location, _) = start_session(
                &ctx.client,
                &ctx.repo,
                "digest-algorithm=sha512",
                Level::Should,
            )?;
            let patch = patch(&ctx.client, &location, &blob.data, 0)?;
            status(&patch, &[202], Level::Should)?;
            let location = header(&patch, "Location", Level::Should)?;
            let put = close(&ctx.client, location, &blob.digest, None)?;
            status(&put, &[201], Level::Should)?;
            ctx.pushed.insert(blob.digest);
            Ok(None)
        },
    );
    ctx.check(
        "end-6",
        "monolithic POST+PUT of a sha512 blob",
        Level::Should,
        |ctx| {
            let blob = ctx.fx.sha512_mono.clone();
            upload(&ctx.client, &ctx.repo, &blob).map_err(|f| Finding::should(f.reason))?;
            ctx.pushed.insert(blob.digest);
            Ok(None)
        },
    );
    ctx.check(
        "code-8",
        "upload to an invalid repository name is rejected (NAME_INVALID)",
        Level::Must,
        |ctx| {
            let invalid = format!("{}/Invalid_-Name", ctx.repo);
            let post = ctx
                .client
                .send("POST", &uploads_path(&invalid), &[], Some(&[]))?;
            ensure((400..500).contains(&post.status), Level::Must, || {
                format!("invalid name not rejected with 4xx: {}", post.describe())
            })?;
            error_code(&post, "NAME_INVALID")?;
            Ok(None)
        },
    );
}

/// The single-POST monolithic upload (end-4b).
fn single_post(ctx: &mut Context) -> Outcome {
    let blob = ctx.fx.layer_post.clone();
    let url = with_query(&uploads_path(&ctx.repo), &format!("digest={}", blob.digest));
    let post = ctx.client.send("POST", &url, &[OCTET], Some(&blob.data))?;
    match post.status {
        201 => {
            header(&post, "Location", Level::Must)?;
            ctx.pushed.insert(blob.digest);
            Ok(None)
        }
        202 => {
            let location = header(&post, "Location", Level::Must)?;
            let put = close(&ctx.client, location, &blob.digest, Some((&blob.data, 0)))?;
            status(&put, &[201], Level::Must)?;
            ctx.pushed.insert(blob.digest);
            Ok(Some("registry answered 202; completed with PUT".to_owned()))
        }
        _ => Err(Finding::should(format!(
            "expected 201 or 202: {}",
            post.describe()
        ))),
    }
}
