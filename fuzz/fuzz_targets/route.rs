//! The route table and every parser of request text: `Route::parse_own`
//! with its access need and metrics label, names, tags, references,
//! digests, upload ids, the query string, `Content-Range` and `Range`.
//! Beyond not panicking: a parsed route renders back to a request that
//! parses to the same route with the matching label, parsed values print
//! as they were written, and ranges stay ordered and within the blob.

#![no_main]

use libfuzzer_sys::fuzz_target;
use registry::fuzzing::{
    ByteRange, ContentRange, Digest, Head, Method, Query, Reference, RepoName, Route, Tag,
    UploadId,
};

/// The request a client would send for `r`, and its metrics label.
fn render(r: &Route) -> Option<(Method, String, &'static str)> {
    let get = |Head(h): &Head| if *h { Method::HEAD } else { Method::GET };
    Some(match r {
        Route::Base => (Method::GET, "/v2/".into(), "base"),
        Route::Catalog => (Method::GET, "/v2/_catalog".into(), "catalog"),
        Route::Tags(n) => (Method::GET, format!("/v2/{n}/tags/list"), "tags"),
        Route::GetManifest(n, r, h) => (get(h), format!("/v2/{n}/manifests/{r}"), "manifest"),
        Route::PutManifest(n, r) => (Method::PUT, format!("/v2/{n}/manifests/{r}"), "manifest"),
        Route::DeleteManifest(n, r) => {
            (Method::DELETE, format!("/v2/{n}/manifests/{r}"), "manifest")
        }
        Route::GetBlob(n, d, h) => (get(h), format!("/v2/{n}/blobs/{d}"), "blob"),
        Route::DeleteBlob(n, d) => (Method::DELETE, format!("/v2/{n}/blobs/{d}"), "blob"),
        Route::StartUpload(n) => (Method::POST, format!("/v2/{n}/blobs/uploads/"), "uploads"),
        Route::UploadStatus(n, id) => {
            (Method::GET, format!("/v2/{n}/blobs/uploads/{id}"), "upload")
        }
        Route::PatchUpload(n, id) => {
            (Method::PATCH, format!("/v2/{n}/blobs/uploads/{id}"), "upload")
        }
        Route::FinishUpload(n, id) => {
            (Method::PUT, format!("/v2/{n}/blobs/uploads/{id}"), "upload")
        }
        Route::CancelUpload(n, id) => {
            (Method::DELETE, format!("/v2/{n}/blobs/uploads/{id}"), "upload")
        }
        Route::Referrers(n, d) => (Method::GET, format!("/v2/{n}/referrers/{d}"), "referrers"),
        _ => return None,
    })
}

const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::PUT,
    Method::POST,
    Method::PATCH,
    Method::DELETE,
];

fuzz_target!(|data: &[u8]| {
    let size = data
        .get(..8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();

    for path in [text.to_owned(), format!("/v2/{text}")] {
        for method in &METHODS {
            let Ok(route) = Route::parse_own(method, &path) else {
                continue;
            };
            let _ = route.need();
            if let Some((m, again, label)) = render(&route) {
                let reparsed = Route::parse_own(&m, &again).map(|r| format!("{r:?}"));
                assert_eq!(reparsed.ok(), Some(format!("{route:?}")), "{again:?}");
                assert_eq!(route.label(), label, "{path:?}");
            }
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
