//! Referrers API (end-12a/b) and `OCI-Subject` on push of manifests with a subject.

use super::session::upload;
use super::{ensure, header, put_manifest, status, Context};
use crate::client::{encode, with_query, Response};
use crate::data::{self, Blob, INDEX_TYPE, MANIFEST_TYPE};
use crate::report::{Finding, Level, Outcome};
use serde_json::{json, Value};

/// artifactType of the explicitly typed referrer.
const SBOM_TYPE: &str = "application/vnd.berth.conformance.sbom.v1";
/// Config media type of the referrer without artifactType.
const SIG_CONFIG_TYPE: &str = "application/vnd.berth.conformance.sig.config.v1+json";
/// Upper bound on referrers pages followed.
const MAX_PAGES: usize = 50;

/// The referrers pushed by these checks.
pub struct Referrers {
    /// Manifest with an explicit artifactType.
    pub sbom: Blob,
    /// Manifest without artifactType (reported via its config media type).
    pub sig: Blob,
    /// Index with a subject and no artifactType.
    pub index: Blob,
}

/// Runs the referrers checks; returns the referrers for the management checks.
pub fn run(ctx: &mut Context) -> Referrers {
    let subject = ctx.fx.image.descriptor();
    let nonce = ctx.rng.token(10);
    let annotations = |kind: &str| json!({"org.example.kind": kind, "org.example.nonce": nonce});
    let refs = Referrers {
        sbom: data::artifact_manifest(
            &subject,
            Some(SBOM_TYPE),
            data::EMPTY_TYPE,
            &annotations("sbom"),
        ),
        sig: data::artifact_manifest(&subject, None, SIG_CONFIG_TYPE, &annotations("sig")),
        index: data::index_referrer(&subject, &annotations("index")),
    };
    let subject_digest = ctx.fx.image.digest.clone();
    ctx.check(
        "end-12a",
        "referrers of a manifest without referrers: 200, empty image index",
        Level::Must,
        |ctx| {
            let (resp, manifests) = list(ctx, &ctx.fx.image2.digest, "")?;
            ctx.referrers_supported = true;
            ensure(manifests.is_empty(), Level::Must, || {
                format!("expected no referrers: {}", resp.describe())
            })?;
            Ok(None)
        },
    );
    ctx.check(
        "end-7a",
        "PUT manifests with subject: 201 and OCI-Subject: <subject digest>",
        Level::Must,
        |ctx| {
            ctx.need(&subject_digest, Level::Must)?;
            upload(&ctx.client, &ctx.repo, &ctx.fx.empty)?;
            for manifest in [&refs.sbom, &refs.sig, &refs.index] {
                push_with_subject(ctx, manifest, &subject_digest)?;
            }
            Ok(None)
        },
    );
    let mut orphan: Option<(String, Blob)> = None;
    ctx.check(
        "end-7a",
        "PUT manifest whose subject does not exist: 201 (and OCI-Subject)",
        Level::Must,
        |ctx| {
            let missing = Blob::new(ctx.rng.bytes(64), MANIFEST_TYPE);
            let manifest = data::artifact_manifest(
                &missing.descriptor(),
                Some(SBOM_TYPE),
                data::EMPTY_TYPE,
                &json!({}),
            );
            upload(&ctx.client, &ctx.repo, &ctx.fx.empty)?;
            push_with_subject(ctx, &manifest, &missing.digest)?;
            orphan = Some((missing.digest, manifest));
            Ok(None)
        },
    );
    ctx.check(
        "end-12a",
        "referrers list: 200, index Content-Type, one descriptor per referrer",
        Level::Must,
        |ctx| {
            let (_, manifests) = list(ctx, &subject_digest, "")?;
            let expected = [
                (&refs.sbom, MANIFEST_TYPE),
                (&refs.sig, MANIFEST_TYPE),
                (&refs.index, INDEX_TYPE),
            ];
            for (blob, media_type) in expected {
                let found = find(&manifests, blob)?;
                let size = blob.data.len();
                let ok = found["mediaType"] == media_type && found["size"] == size;
                ensure(ok, Level::Must, || {
                    format!("descriptor {found} should have mediaType {media_type}, size {size}")
                })?;
            }
            ensure(manifests.len() == 3, Level::Must, || {
                format!("expected 3 referrers, got {manifests:?}")
            })?;
            Ok(None)
        },
    );
    ctx.check(
        "end-12a",
        "referrer artifactType: explicit, else config mediaType, omitted for an index",
        Level::Must,
        |ctx| {
            let (_, manifests) = list(ctx, &subject_digest, "")?;
            for (blob, expected) in [
                (&refs.sbom, json!(SBOM_TYPE)),
                (&refs.sig, json!(SIG_CONFIG_TYPE)),
                (&refs.index, Value::Null),
            ] {
                let found = find(&manifests, blob)?;
                ensure(found["artifactType"] == expected, Level::Must, || {
                    format!("artifactType should be {expected}: {found}")
                })?;
            }
            Ok(None)
        },
    );
    ctx.check(
        "end-12a",
        "referrer descriptors carry the manifests' annotations",
        Level::Must,
        |ctx| {
            let (_, manifests) = list(ctx, &subject_digest, "")?;
            for (blob, kind) in [
                (&refs.sbom, "sbom"),
                (&refs.sig, "sig"),
                (&refs.index, "index"),
            ] {
                let found = find(&manifests, blob)?;
                ensure(
                    found["annotations"] == annotations(kind),
                    Level::Must,
                    || format!("annotations should be {}: {found}", annotations(kind)),
                )?;
            }
            Ok(None)
        },
    );
    ctx.check(
        "end-12a",
        "referrers of a nonexistent subject list the manifest pushed against it",
        Level::Must,
        |ctx| {
            let (digest, manifest) = orphan
                .ok_or_else(|| Finding::must("no manifest was pushed against a missing subject"))?;
            let (_, manifests) = list(ctx, &digest, "")?;
            find(&manifests, &manifest)?;
            Ok(None)
        },
    );
    ctx.check(
        "end-12b",
        "?artifactType= filters referrers and sets OCI-Filters-Applied",
        Level::Should,
        |ctx| filter(ctx, &subject_digest, &refs),
    );
    ctx.check(
        "end-12a",
        "referrers with a malformed digest returns 400",
        Level::Must,
        |ctx| {
            let resp = ctx.client.get(
                &format!("/v2/{}/referrers/sha256:not-a-digest", ctx.repo),
                &[],
            )?;
            status(&resp, &[400], Level::Must)?;
            Ok(None)
        },
    );
    refs
}

/// GET the referrers of `digest` (following `Link` pages) and check the envelope.
pub fn list(ctx: &Context, digest: &str, query: &str) -> Result<(Response, Vec<Value>), Finding> {
    let mut url = format!("/v2/{}/referrers/{digest}", ctx.repo);
    if !query.is_empty() {
        url = with_query(&url, query);
    }
    let mut manifests = Vec::new();
    let mut first = None;
    for _ in 0..MAX_PAGES {
        let resp = ctx.client.get(&url, &[])?;
        status(&resp, &[200], Level::Must)?;
        let content_type = header(&resp, "Content-Type", Level::Must)?;
        ensure(
            content_type.split(';').next() == Some(INDEX_TYPE),
            Level::Must,
            || {
                format!(
                    "Content-Type {content_type:?}, expected {INDEX_TYPE}: {}",
                    resp.describe()
                )
            },
        )?;
        let json = resp.json()?;
        ensure(
            json["schemaVersion"] == 2 && json["mediaType"] == INDEX_TYPE,
            Level::Must,
            || {
                format!(
                    "not an image index (schemaVersion/mediaType): {}",
                    resp.describe()
                )
            },
        )?;
        let page = json["manifests"]
            .as_array()
            .ok_or_else(|| Finding::must(format!("no manifests array: {}", resp.describe())))?;
        manifests.extend(page.iter().cloned());
        let next = resp
            .header("Link")
            .and_then(|l| l.split_once('>'))
            .map(|(target, _)| target.trim_start_matches('<').to_owned());
        first.get_or_insert(resp);
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    let resp = first.ok_or_else(|| Finding::must("no referrers response"))?;
    Ok((resp, manifests))
}

/// The descriptor for `blob` in a referrers list.
fn find<'a>(manifests: &'a [Value], blob: &Blob) -> Result<&'a Value, Finding> {
    manifests
        .iter()
        .find(|m| m["digest"] == blob.digest.as_str())
        .ok_or_else(|| {
            Finding::must(format!(
                "{} missing from referrers {manifests:?}",
                blob.digest
            ))
        })
}

/// PUTs a manifest with a subject by digest and checks 201 plus `OCI-Subject`.
fn push_with_subject(ctx: &mut Context, manifest: &Blob, subject: &str) -> Result<(), Finding> {
    let resp = put_manifest(&ctx.client, &ctx.repo, &manifest.digest, manifest)?;
    status(&resp, &[201], Level::Must)?;
    ctx.pushed.insert(manifest.digest.clone());
    if !ctx.referrers_supported {
        return Ok(());
    }
    let got = header(&resp, "OCI-Subject", Level::Must)?;
    ensure(got == subject, Level::Must, || {
        format!("OCI-Subject {got}, expected {subject}: {}", resp.describe())
    })
}

/// end-12b: `artifactType` filtering and `OCI-Filters-Applied`.
fn filter(ctx: &mut Context, subject: &str, refs: &Referrers) -> Outcome {
    let (resp, manifests) = list(ctx, subject, &format!("artifactType={}", encode(SBOM_TYPE)))?;
    let applied = resp
        .header_all("OCI-Filters-Applied")
        .iter()
        .flat_map(|v| v.split(','))
        .any(|f| f.trim() == "artifactType");
    let only_sbom = manifests.len() == 1 && find(&manifests, &refs.sbom).is_ok();
    if applied {
        ensure(only_sbom, Level::Must, || {
            format!("filter applied but result is {manifests:?}")
        })?;
        return Ok(None);
    }
    ensure(!only_sbom, Level::Must, || {
        format!(
            "results were filtered but OCI-Filters-Applied is missing: {}",
            resp.describe()
        )
    })?;
    Err(Finding::should(format!(
        "artifactType filtering not applied: {}",
        resp.describe()
    )))
}
