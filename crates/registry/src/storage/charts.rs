//! Helm charts pushed as OCI artifacts (`helm push chart.tgz oci://...`).
//!
//! The only Helm knowledge in the registry: a manifest whose config media
//! type is Helm's raises `chart_push` next to its `push` (in the same
//! transaction) when it is first stored in its repository, and
//! `chart_delete` next to its `delete`. Helm 4 PUTs a chart's manifest by
//! digest and then by tag: two `push` events (the second with the tag), one
//! `chart_push`. With quarantine on, `chart_push` waits for the release.
//!
//! The chart's name and version come from the config blob (Helm's
//! `Chart.yaml` as JSON); the digest and size are those of the chart layer,
//! the `.tgz`. What the push found is kept in the manifest's record, so that
//! the delete (and a release from quarantine) can describe the chart
//! without reading blobs.

use serde::{Deserialize, Serialize};

use super::{file_io, Store};
use crate::events::{Action, Event, Request, Target};
use crate::types::{ByteRange, Digest, RepoName};
use crate::Error;

/// The config media type of a Helm chart artifact.
pub(crate) const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// The media type of its chart layer (the `.tgz`).
pub(crate) const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// Largest config blob read (Helm's are a few hundred bytes).
const MAX_CONFIG: u64 = 1024 * 1024;

/// A Helm chart carried by a manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OciChart {
    /// The chart's name.
    pub name: String,
    /// The chart's version (SemVer, with `+` where the tag has `_`).
    pub version: String,
    /// Digest of the chart layer.
    pub digest: String,
    /// Size of the chart layer.
    pub size: u64,
}

#[derive(Deserialize)]
struct RawManifest {
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Vec<RawDescriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: String,
    size: u64,
}

#[derive(Deserialize)]
struct RawConfig {
    name: String,
    version: String,
}

impl Store {
    /// The chart the manifest `bytes` pushed to `repo` carries; `None` when
    /// it is not a Helm chart, or when its config is absent (a sparse mirror)
    /// or unreadable, which does not fail the push.
    pub(super) async fn oci_chart(
        &self,
        repo: &RepoName,
        bytes: &[u8],
    ) -> Result<Option<OciChart>, Error> {
        let Ok(raw) = serde_json::from_slice::<RawManifest>(bytes) else {
            return Ok(None);
        };
        let Some(config) = raw
            .config
            .filter(|c| c.media_type.as_deref() == Some(HELM_CONFIG))
        else {
            return Ok(None);
        };
        let layer = raw
            .layers
            .iter()
            .find(|l| l.media_type.as_deref() == Some(HELM_CHART_LAYER));
        let (Some(layer), Some(config_digest)) = (layer, Digest::parse(&config.digest)) else {
            tracing::warn!(%repo, "a Helm chart manifest without a chart layer: no chart_push");
            return Ok(None);
        };
        let Some(size) = self.blob_size(repo, &config_digest).await? else {
            tracing::warn!(%repo, "a Helm chart manifest whose config is absent: no chart_push");
            return Ok(None);
        };
        if size > MAX_CONFIG {
            tracing::warn!(%repo, size, "a Helm chart config too large to read: no chart_push");
            return Ok(None);
        }
        let chunks = self
            .read_blob(
                &config_digest,
                ByteRange {
                    start: 0,
                    end: size,
                },
            )
            .await?;
        let json = file_io::collect(chunks).await?;
        match serde_json::from_slice::<RawConfig>(&json) {
            Ok(c) => Ok(Some(OciChart {
                name: c.name,
                // Tags cannot hold `+`, so Helm writes `_`; SemVer has no `_`.
                version: c.version.replace('_', "+"),
                digest: layer.digest.clone(),
                size: layer.size,
            })),
            Err(e) => {
                tracing::warn!(%repo, error = %e, "an unreadable Helm chart config: no chart_push");
                Ok(None)
            }
        }
    }
}

/// The `chart_push` or `chart_delete` event of `chart`, stored in the OCI
/// repository `repo`.
pub(super) fn chart_event(
    action: Action,
    repo: &RepoName,
    chart: &OciChart,
    request: &Request,
) -> Event {
    let target = Target::chart(
        repo.as_str(),
        &chart.name,
        &chart.version,
        &chart.digest,
        chart.size,
    );
    Event::new(action, target, request.clone())
}
