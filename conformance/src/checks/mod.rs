//! The conformance checks, grouped by spec section, and the shared state they use.

mod audit;
mod chunked;
mod discovery;
mod management;
mod mount;
mod pull;
mod push_blobs;
mod push_manifests;
mod referrers;
mod session;

use crate::client::{Client, Response};
use crate::data::{self, Blob, Rng};
use crate::report::{Finding, Level, Outcome, Report};
use std::collections::HashSet;

/// Content generated up front and pushed by the push checks.
pub struct Fixtures {
    /// Image config blob (monolithic POST+PUT).
    pub config: Blob,
    /// Layer pushed with POST then PUT.
    pub layer_put: Blob,
    /// Layer pushed with a single POST `?digest=`.
    pub layer_post: Blob,
    /// Layer pushed in PATCH chunks; also used for Range requests.
    pub layer_chunked: Blob,
    /// Layer whose final chunk travels in the closing PUT.
    pub layer_final_put: Blob,
    /// Blob pushed with a sha512 digest in chunks (`digest-algorithm=sha512`).
    pub sha512_chunked: Blob,
    /// Blob pushed with a sha512 digest monolithically.
    pub sha512_mono: Blob,
    /// Blob mounted into the cross-mount repository with `from`.
    pub mount_from: Blob,
    /// Blob mounted into the cross-mount repository without `from`.
    pub mount_nofrom: Blob,
    /// The `{}` empty blob used by artifacts.
    pub empty: Blob,
    /// Main image manifest referencing config and the sha256 layers.
    pub image: Blob,
    /// Second image manifest (config + one layer), deleted by digest later.
    pub image2: Blob,
    /// Index referencing both image manifests.
    pub index: Blob,
}

impl Fixtures {
    fn generate(rng: &mut Rng) -> Self {
        let config = data::config_blob(rng);
        let layer_put = Blob::random_layer(rng, 1024);
        let layer_post = Blob::random_layer(rng, 2048);
        let layer_chunked = Blob::random_layer(rng, 3 * 1024 + 17);
        let layer_final_put = Blob::random_layer(rng, 2000);
        let image = data::image_manifest(
            &config,
            &[&layer_put, &layer_post, &layer_chunked, &layer_final_put],
        );
        let image2 = data::image_manifest(&config, &[&layer_put]);
        let index = data::image_index(&[&image, &image2]);
        Self {
            sha512_chunked: Blob::sha512(rng.bytes(1500), data::LAYER_TYPE),
            sha512_mono: Blob::sha512(rng.bytes(700), data::LAYER_TYPE),
            mount_from: Blob::random_layer(rng, 512),
            mount_nofrom: Blob::random_layer(rng, 513),
            empty: data::empty_blob(),
            config,
            layer_put,
            layer_post,
            layer_chunked,
            layer_final_put,
            image,
            image2,
            index,
        }
    }
}

/// Everything a check can use: the client, repository names, fixtures and
/// what has been pushed successfully so far.
pub struct Context {
    /// HTTP client bound to the registry under test.
    pub client: Client,
    /// Main repository.
    pub repo: String,
    /// Repository blobs are cross-mounted into.
    pub mount_repo: String,
    /// Pseudo-random source for extra content.
    pub rng: Rng,
    /// Pre-generated content.
    pub fx: Fixtures,
    /// Digests and tags known to be stored in `repo`.
    pub pushed: HashSet<String>,
    /// Whether `GET /v2/<name>/referrers/<digest>` answered 200.
    pub referrers_supported: bool,
    report: Report,
}

impl Context {
    /// Creates the context for a run against `client`.
    pub fn new(client: Client, repo: String, mount_repo: String, mut rng: Rng) -> Self {
        let fx = Fixtures::generate(&mut rng);
        Self {
            client,
            repo,
            mount_repo,
            rng,
            fx,
            pushed: HashSet::new(),
            referrers_supported: false,
            report: Report::default(),
        }
    }

    /// Runs one check and records its outcome.
    pub fn check(
        &mut self,
        id: &str,
        description: &str,
        level: Level,
        f: impl FnOnce(&mut Context) -> Outcome,
    ) {
        let outcome = f(self);
        self.report.record(id, description, level, outcome);
    }

    /// A SHOULD check that the 404 `missing` (kept by the previous check)
    /// carries error code `code`.
    pub fn check_error_code(
        &mut self,
        id: &str,
        description: &str,
        missing: Option<Response>,
        code: &str,
    ) {
        self.check(id, description, Level::Should, |_| {
            let resp = missing
                .ok_or_else(|| Finding::should("no 404 response from the previous check"))?;
            error_code(&resp, code)?;
            Ok(None)
        });
    }

    /// Fails at `level` unless `key` (a digest or tag) was pushed successfully.
    pub fn need(&self, key: &str, level: Level) -> Result<(), Finding> {
        if self.pushed.contains(key) {
            Ok(())
        } else {
            Err(Finding::at(
                level,
                format!("prerequisite missing: {key} was not pushed successfully earlier"),
            ))
        }
    }
}

/// Runs every check in spec order and returns the report.
pub fn run_all(mut ctx: Context) -> Report {
    ctx.check("end-1", "GET /v2/ returns 200", Level::Must, |ctx| {
        let resp = ctx.client.get("/v2/", &[])?;
        status(&resp, &[200], Level::Must)?;
        Ok(None)
    });
    push_blobs::run(&mut ctx);
    chunked::run(&mut ctx);
    mount::run(&mut ctx);
    push_manifests::run(&mut ctx);
    pull::run(&mut ctx);
    discovery::run(&mut ctx);
    let refs = referrers::run(&mut ctx);
    management::run(&mut ctx, &refs);
    audit::run(&mut ctx);
    ctx.report
}

/// `/v2/<repo>/blobs/<digest>`.
pub fn blob_path(repo: &str, digest: &str) -> String {
    format!("/v2/{repo}/blobs/{digest}")
}

/// `/v2/<repo>/manifests/<reference>`.
pub fn manifest_path(repo: &str, reference: &str) -> String {
    format!("/v2/{repo}/manifests/{reference}")
}

/// `/v2/<repo>/blobs/uploads/`.
pub fn uploads_path(repo: &str) -> String {
    format!("/v2/{repo}/blobs/uploads/")
}

/// Fails at `level` unless the response status is one of `expected`.
pub fn status(resp: &Response, expected: &[u16], level: Level) -> Result<(), Finding> {
    if expected.contains(&resp.status) {
        Ok(())
    } else {
        Err(Finding::at(
            level,
            format!("expected status {expected:?}: {}", resp.describe()),
        ))
    }
}

/// The value of a header that must be present.
pub fn header<'a>(resp: &'a Response, name: &str, level: Level) -> Result<&'a str, Finding> {
    resp.header(name)
        .ok_or_else(|| Finding::at(level, format!("missing {name} header: {}", resp.describe())))
}

/// Fails at `level` with `reason` unless `condition` holds.
pub fn ensure(
    condition: bool,
    level: Level,
    reason: impl FnOnce() -> String,
) -> Result<(), Finding> {
    if condition {
        Ok(())
    } else {
        Err(Finding::at(level, reason()))
    }
}

/// Fails at SHOULD level unless the error body carries error code `code`.
pub fn error_code(resp: &Response, code: &str) -> Result<(), Finding> {
    let codes = resp.error_codes();
    ensure(codes.iter().any(|c| c == code), Level::Should, || {
        format!(
            "expected error code {code}, got {codes:?}: {}",
            resp.describe()
        )
    })
}

/// Checks `Docker-Content-Digest` is present and equals `expected`.
pub fn content_digest(resp: &Response, expected: &str, level: Level) -> Result<(), Finding> {
    let got = header(resp, "Docker-Content-Digest", level)?;
    ensure(got == expected, level, || {
        format!(
            "Docker-Content-Digest {got} != {expected}: {}",
            resp.describe()
        )
    })
}

/// Pushes a manifest under `reference` with its own media type as Content-Type.
pub fn put_manifest(
    client: &Client,
    repo: &str,
    reference: &str,
    manifest: &Blob,
) -> Result<Response, Finding> {
    Ok(client.send(
        "PUT",
        &manifest_path(repo, reference),
        &[("Content-Type", manifest.media_type.as_str())],
        Some(&manifest.data),
    )?)
}
