//! Parsing a pushed manifest into what the registry must check and index:
//! its media type, the blobs and child manifests it references, its subject
//! and the descriptor it contributes to its subject's referrers list.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::Error;
use crate::types::Digest;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Whether `media_type` is one of a manifest that lists manifests.
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_LIST)
}

/// A content descriptor as found in manifests.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: String,
    size: i64,
    #[serde(default)]
    urls: Vec<String>,
}

/// The fields of any manifest or index that the registry looks at; unknown
/// fields are ignored, as the image spec requires.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    blobs: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<Value>,
}

/// A validated manifest, ready to be stored.
#[derive(Debug)]
pub struct Manifest {
    /// The media type it is stored and served with.
    pub media_type: String,
    /// Blobs (config and layers) that must be in the repository.
    pub blobs: Vec<Digest>,
    /// Child manifests (of an index) that must be in the repository.
    pub children: Vec<Digest>,
    /// The manifest this one refers to, if any.
    pub subject: Option<Digest>,
    /// The descriptor listed for this manifest by the referrers API, with
    /// `digest` and `size` filled in by the caller.
    artifact_type: Option<String>,
    annotations: Option<Value>,
}

impl Manifest {
    /// Parses and validates `bytes` pushed with the `Content-Type`
    /// `content_type`. Layers that are non-distributable (foreign) or carry
    /// `urls` are not required to be present.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Self, Error> {
        let raw: RawManifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::ManifestInvalid(format!("not a manifest: {e}")))?;
        let content_type = content_type
            .map(|c| c.split(';').next().unwrap_or(c).trim())
            .filter(|c| !c.is_empty());
        let media_type = match (content_type, raw.media_type.as_deref()) {
            (Some(header), Some(body)) if header != body => {
                return Err(Error::ManifestInvalid(format!(
                    "Content-Type {header:?} differs from the manifest's mediaType {body:?}"
                )))
            }
            (Some(m), _) | (None, Some(m)) => m.to_owned(),
            (None, None) => {
                return Err(Error::ManifestInvalid(
                    "no Content-Type and no mediaType".into(),
                ))
            }
        };
        if raw.schema_version.is_some_and(|v| v != 2)
            && media_type != "application/vnd.oci.artifact.manifest.v1+json"
        {
            return Err(Error::ManifestInvalid("schemaVersion must be 2".into()));
        }
        if !valid_media_type(&media_type) {
            return Err(Error::ManifestInvalid(format!(
                "{media_type:?} is not a media type"
            )));
        }
        let image = matches!(media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST);
        let index = is_index(&media_type);
        if image && (raw.config.is_none() || raw.layers.is_none()) {
            return Err(Error::ManifestInvalid(
                "an image manifest needs config and layers".into(),
            ));
        }
        if index && raw.manifests.is_none() {
            return Err(Error::ManifestInvalid("an index needs manifests".into()));
        }

        let mut blobs = Vec::new();
        for d in raw
            .config
            .iter()
            .chain(raw.layers.iter().flatten())
            .chain(raw.blobs.iter().flatten())
        {
            let digest = descriptor_digest(d)?;
            if !is_external(d) {
                blobs.push(digest);
            }
        }
        let children = raw
            .manifests
            .iter()
            .flatten()
            .map(descriptor_digest)
            .collect::<Result<_, _>>()?;
        let subject = raw.subject.as_ref().map(descriptor_digest).transpose()?;
        // image-spec: an artifact's type defaults to its config's media type.
        let artifact_type = raw.artifact_type.filter(|t| !t.is_empty()).or_else(|| {
            image
                .then(|| raw.config.as_ref().and_then(|c| c.media_type.clone()))
                .flatten()
        });
        Ok(Self {
            media_type,
            blobs,
            children,
            subject,
            artifact_type,
            annotations: raw.annotations,
        })
    }

    /// The descriptor of this manifest in its subject's referrers list.
    pub fn referrer_descriptor(&self, digest: &Digest, size: usize) -> Value {
        let mut d = json!({
            "mediaType": self.media_type,
            "digest": digest.as_str(),
            "size": size,
        });
        if let Some(t) = &self.artifact_type {
            d["artifactType"] = json!(t);
        }
        if let Some(a) = &self.annotations {
            d["annotations"] = a.clone();
        }
        d
    }
}

/// RFC 6838 `type/subtype`: restricted name characters around one `/`.
fn valid_media_type(m: &str) -> bool {
    let name = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    m.split_once('/').is_some_and(|(t, s)| name(t) && name(s))
}

fn descriptor_digest(d: &RawDescriptor) -> Result<Digest, Error> {
    if d.size < 0 {
        return Err(Error::ManifestInvalid(format!(
            "negative size for {}",
            d.digest
        )));
    }
    Digest::parse(&d.digest)
        .ok_or_else(|| Error::ManifestInvalid(format!("invalid digest {:?}", d.digest)))
}

/// Non-distributable layers live elsewhere (their `urls`), so the registry
/// does not require them.
fn is_external(d: &RawDescriptor) -> bool {
    let mt = d.media_type.as_deref().unwrap_or("");
    !d.urls.is_empty() || mt.contains("nondistributable") || mt.contains(".foreign.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifest_references_config_and_layers() {
        let body = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.example+json", "digest": d('a'), "size": 2},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d('b'), "size": 3},
                {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar", "digest": d('c'), "size": 3}
            ],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d('e'), "size": 9},
        });
        let m = Manifest::parse(&serde_json::to_vec(&body).unwrap(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(m.blobs.len(), 2);
        assert_eq!(
            m.subject.as_ref().map(Digest::as_str),
            Some(d('e').as_str())
        );
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.example+json")
        );
    }

    #[test]
    fn empty_artifact_type_counts_as_missing() {
        let body = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "",
            "config": {"mediaType": "application/vnd.example.cfg", "digest": d('a'), "size": 2},
            "layers": [],
        });
        let m = Manifest::parse(&serde_json::to_vec(&body).unwrap(), None).unwrap();
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.example.cfg")
        );
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "artifactType": "", "manifests": []});
        let m = Manifest::parse(&serde_json::to_vec(&index).unwrap(), None).unwrap();
        assert_eq!(m.artifact_type.as_deref(), None);
    }

    #[test]
    fn media_types_follow_the_grammar() {
        let body = json!({"schemaVersion": 2, "manifests": []}).to_string();
        for bad in ["x", "a/b/c", "a/b\u{1}", "/b", "a b/c"] {
            assert!(
                Manifest::parse(body.as_bytes(), Some(bad)).is_err(),
                "{bad}"
            );
        }
        assert!(Manifest::parse(
            body.as_bytes(),
            Some("application/vnd.custom+json; charset=utf-8")
        )
        .is_ok());
    }

    #[test]
    fn rejects_mismatch_and_garbage() {
        let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).to_string();
        assert!(Manifest::parse(body.as_bytes(), Some(OCI_MANIFEST)).is_err());
        assert!(Manifest::parse(body.as_bytes(), Some(OCI_INDEX)).is_ok());
        assert!(Manifest::parse(b"{", Some(OCI_INDEX)).is_err());
        let bad = json!({"mediaType": OCI_INDEX, "manifests": [{"digest": "sha256:x", "size": 1}]})
            .to_string();
        assert!(Manifest::parse(bad.as_bytes(), None).is_err());
        let no_layers =
            json!({"mediaType": OCI_MANIFEST, "config": {"digest": d('a'), "size": 1}}).to_string();
        assert!(Manifest::parse(no_layers.as_bytes(), None).is_err());
    }
}
