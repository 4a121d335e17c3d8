//! Path routing and every parser of request text: `Route::parse`, the
//! metrics label, names, tags, references, digests, upload ids, the query
//! string, `Content-Range` and `Range`. Beyond not panicking: a parsed
//! route renders back to a path that parses to the same route and has the
//! matching metrics label, parsed values print as they were written, and
//! ranges stay ordered and within the blob.

#![no_main]

use libfuzzer_sys::fuzz_target;
use registry::handlers::query::Query;
use registry::route::{label, Route};
use registry::types::{ByteRange, ContentRange, Digest, Reference, RepoName, Tag, UploadId};

/// The path a client would send for `r`, and the metrics label of it.
fn render(r: &Route) -> (String, &'static str) {
    match r {
        Route::Base => ("/v2/".into(), "base"),
        Route::Catalog => ("/v2/_catalog".into(), "catalog"),
        Route::Tags(n) => (format!("/v2/{n}/tags/list"), "tags"),
        Route::Manifest(n, r) => (format!("/v2/{n}/manifests/{r}"), "manifest"),
        Route::Blob(n, d) => (format!("/v2/{n}/blobs/{d}"), "blob"),
        Route::Uploads(n) => (format!("/v2/{n}/blobs/uploads/"), "uploads"),
        Route::Upload(n, id) => (format!("/v2/{n}/blobs/uploads/{id}"), "upload"),
        Route::Referrers(n, d) => (format!("/v2/{n}/referrers/{d}"), "referrers"),
    }
}

fuzz_target!(|data: &[u8]| {
    let size = data
        .get(..8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();

    for path in [text.to_owned(), format!("/v2/{text}")] {
        let parsed = Route::parse(&path);
        let shape = label(&path);
        if let Ok(route) = parsed {
            let (again, expected_label) = render(&route);
            assert_eq!(Route::parse(&again).ok(), Some(route), "{again:?}");
            assert_eq!(shape, expected_label, "{path:?}");
        }
    }

    if let Some(n) = RepoName::parse(text) {
        assert_eq!(n.as_str(), text);
    }
    if let Some(t) = Tag::parse(text) {
        assert_eq!(t.as_str(), text);
    }
    if let Some(r) = Reference::parse(text) {
        assert_eq!(r.to_string(), text);
    }
    if let Some(d) = Digest::parse(text) {
        assert_eq!(d.as_str(), text);
        assert_eq!(format!("{}:{}", d.algorithm().as_str(), d.hex()), text);
    }
    if let Some(id) = UploadId::parse(text) {
        assert_eq!(id.as_str(), text);
    }
    let query = Query::parse(Some(text));
    let _ = query.get("digest");
    let _ = query.all("tag").count();
    let _ = query.number::<usize>("n");

    if let Some(r) = ContentRange::parse(text) {
        assert!(r.start <= r.end, "{r:?}");
        assert_eq!(r.count(), r.end - r.start + 1);
    }
    if let Ok(Some(r)) = ByteRange::resolve(text, size) {
        assert!(r.start < r.end && r.end <= size, "{r:?} of {size}");
        assert_eq!(r.len(), r.end - r.start);
    }
});
