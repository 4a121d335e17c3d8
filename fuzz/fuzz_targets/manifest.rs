//! Manifest parsing (`Manifest::parse`) on arbitrary
//! bytes under each `Content-Type` a push may carry. Beyond not panicking:
//! what it accepts has a valid media type that agrees with the body, and
//! every digest it extracts is canonical (parses back to itself).

#![no_main]

use libfuzzer_sys::fuzz_target;
use registry::fuzzing::{
    Algorithm, Digest, Manifest, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};

const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some(OCI_MANIFEST),
    Some(OCI_INDEX),
    Some(DOCKER_MANIFEST),
    Some(DOCKER_LIST),
    Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
    Some("application/vnd.example.artifact+json"),
    Some(""),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    let Ok(m) = Manifest::parse(body, content_type) else {
        return;
    };
    let (kind, sub) = m
        .media_type
        .split_once('/')
        .expect("a media type has a '/'");
    assert!(!kind.is_empty() && !sub.is_empty(), "{:?}", m.media_type);
    assert!(
        !m.media_type.contains(';'),
        "parameters kept: {:?}",
        m.media_type
    );
    let declared = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_owned));
    if let Some(declared) = declared {
        assert_eq!(m.media_type, declared, "media type differs from the body's");
    }
    for d in m.blobs.iter().chain(&m.children).chain(&m.subject) {
        assert_eq!(Digest::parse(d.as_str()).as_ref(), Some(d), "{d}");
    }
    let own = Digest::of(Algorithm::Sha256, body);
    let descriptor = m.referrer_descriptor(&own, body.len());
    assert_eq!(descriptor["digest"], own.as_str());
    assert_eq!(descriptor["mediaType"], m.media_type.as_str());
});
