//! Test data: a tiny PRNG, content digests, blobs and manifest documents.

use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};
use std::time::{SystemTime, UNIX_EPOCH};

/// OCI image manifest media type.
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer media type.
pub const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI empty-descriptor media type.
pub const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// xorshift64* generator seeded from the clock; good enough for test data.
pub struct Rng(u64);

impl Rng {
    /// Seeds from the current time and process id.
    pub fn from_time() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        // Truncation is fine: we only want a varying non-zero seed.
        let seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
        Self(seed | 1)
    }

    /// Next pseudo-random 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A random lower-case alphanumeric string (valid in repository names and tags).
    pub fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| {
                let index = (self.next_u64() % ALPHABET.len() as u64) as usize;
                char::from(ALPHABET[index])
            })
            .collect()
    }
}

/// Lower-case hex encoding.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256:<hex>` digest of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

/// `sha512:<hex>` digest of `data`.
pub fn sha512(data: &[u8]) -> String {
    format!("sha512:{}", hex(&Sha512::digest(data)))
}

/// Digest of `data` using the algorithm named by `digest`'s prefix.
pub fn digest_like(digest: &str, data: &[u8]) -> String {
    if digest.starts_with("sha512:") {
        sha512(data)
    } else {
        sha256(data)
    }
}

/// A piece of content with its digest and media type.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Raw bytes.
    pub data: Vec<u8>,
    /// Content digest (`sha256:` unless built with [`Blob::sha512`]).
    pub digest: String,
    /// Media type used when the blob is referenced by a descriptor.
    pub media_type: String,
}

impl Blob {
    /// A blob with a sha256 digest.
    pub fn new(data: Vec<u8>, media_type: &str) -> Self {
        Self {
            digest: sha256(&data),
            data,
            media_type: media_type.to_owned(),
        }
    }

    /// A blob with a sha512 digest.
    pub fn sha512(data: Vec<u8>, media_type: &str) -> Self {
        Self {
            digest: sha512(&data),
            data,
            media_type: media_type.to_owned(),
        }
    }

    /// A random layer of `len` bytes.
    pub fn random_layer(rng: &mut Rng, len: usize) -> Self {
        Self::new(rng.bytes(len), LAYER_TYPE)
    }

    /// The OCI descriptor for this blob.
    pub fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.data.len(),
        })
    }
}

/// A unique image config blob.
pub fn config_blob(rng: &mut Rng) -> Blob {
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": {"Labels": {"conformance.nonce": rng.token(16)}},
    });
    Blob::new(config.to_string().into_bytes(), CONFIG_TYPE)
}

/// The two-byte `{}` empty blob used by artifacts.
pub fn empty_blob() -> Blob {
    Blob::new(b"{}".to_vec(), EMPTY_TYPE)
}

/// An image manifest, serialized pretty-printed with a trailing newline so the
/// byte-for-byte round trip is not satisfied by re-serialization by accident.
pub fn image_manifest(config: &Blob, layers: &[&Blob]) -> Blob {
    let layers: Vec<Value> = layers.iter().map(|l| l.descriptor()).collect();
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": config.descriptor(),
        "layers": layers,
    });
    manifest_blob(&doc, MANIFEST_TYPE)
}

/// An image index listing `manifests`.
pub fn image_index(manifests: &[&Blob]) -> Blob {
    let manifests: Vec<Value> = manifests.iter().map(|m| m.descriptor()).collect();
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": manifests,
    });
    manifest_blob(&doc, INDEX_TYPE)
}

/// An artifact image manifest whose `subject` is `subject`.
///
/// With `artifact_type` the manifest carries an `artifactType`; without, its
/// config media type is `config_type` (which referrers must then report).
pub fn artifact_manifest(
    subject: &Value,
    artifact_type: Option<&str>,
    config_type: &str,
    annotations: &Value,
) -> Blob {
    let empty = empty_blob();
    let mut doc = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": config_type, "digest": empty.digest, "size": empty.data.len()},
        "layers": [empty.descriptor()],
        "subject": subject,
        "annotations": annotations,
    });
    if let Some(artifact_type) = artifact_type {
        doc["artifactType"] = json!(artifact_type);
    }
    manifest_blob(&doc, MANIFEST_TYPE)
}

/// An image index with a `subject` and no `artifactType`.
pub fn index_referrer(subject: &Value, annotations: &Value) -> Blob {
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [],
        "subject": subject,
        "annotations": annotations,
    });
    manifest_blob(&doc, INDEX_TYPE)
}

/// Serializes a manifest document in a deliberately non-compact layout.
fn manifest_blob(doc: &Value, media_type: &str) -> Blob {
    let mut bytes = serde_json::to_vec_pretty(doc).unwrap_or_else(|_| doc.to_string().into_bytes());
    bytes.push(b'\n');
    Blob::new(bytes, media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_have_expected_form() {
        assert_eq!(
            sha256(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sha512(b"").len(), "sha512:".len() + 128);
        assert!(digest_like("sha512:x", b"a").starts_with("sha512:"));
    }

    #[test]
    fn rng_varies() {
        let mut rng = Rng::from_time();
        assert_ne!(rng.bytes(16), rng.bytes(16));
        assert!(rng.token(8).chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn manifests_describe_content() {
        let mut rng = Rng::from_time();
        let config = config_blob(&mut rng);
        let layer = Blob::random_layer(&mut rng, 10);
        let manifest = image_manifest(&config, &[&layer]);
        let doc: Value = serde_json::from_slice(&manifest.data).unwrap();
        assert_eq!(doc["layers"][0]["digest"], layer.digest.as_str());
        assert_eq!(manifest.digest, sha256(&manifest.data));
    }
}
