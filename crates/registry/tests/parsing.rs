//! Property tests of everything parsed from a request: repository names,
//! tags, references, digests, upload ids, `Content-Range`, `Range`, and
//! whole paths.
//!
//! Each parser is compared with a reference predicate written from the
//! spec's grammar in [`spec`], in a different style (a state machine, a
//! character walk), without regexes: a parser accepts exactly what its
//! grammar does.
//! Inputs come from small alphabets around the grammar, so both sides of
//! every rule are hit often, and from arbitrary strings, which must never
//! make a parser panic.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

use hyper::Method;
use proptest::prelude::*;
use proptest::sample::select;
use registry::fuzzing::{
    Algorithm, ByteRange, ContentRange, Digest, Head, Reference, RepoName, Route, Tag, UploadId,
};
use sha2::Digest as _;
use spec::{spec_content_range, spec_digest, spec_name, spec_range, spec_tag, spec_upload_id};

mod spec;

// ---- Strategies ---------------------------------------------------------

/// Strings over `alphabet`, of a length in `len`.
fn over(alphabet: &'static [&'static str], len: std::ops::Range<usize>) -> BoxedStrategy<String> {
    prop::collection::vec(select(alphabet), len)
        .prop_map(|parts| parts.concat())
        .boxed()
}

const NAME_ALPHABET: &[&str] = &[
    "a", "z", "0", "9", "b", ".", "_", "__", "-", "--", "/", "A", "%2e", " ", "é", "..", ":",
];
const TAG_ALPHABET: &[&str] = &["a", "Z", "0", "_", ".", "-", "/", ":", "+", " ", "é"];
const HEX: &[&str] = &["0", "9", "a", "f", "A", "F", "g", ":", "-"];
const ALGORITHMS: &[&str] = &[
    "sha256",
    "sha512",
    "sha384",
    "SHA256",
    "md5",
    "sha256+b64",
    "",
];
const RANGE_ALPHABET: &[&str] = &[
    "0",
    "1",
    "9",
    "42",
    "18446744073709551615",
    "18446744073709551616",
    "-",
    "-",
    "/",
    "*",
    "bytes ",
    "bytes=",
    " ",
    "\t",
    ",",
    "+",
    "x",
];
const ID_ALPHABET: &[&str] = &["0", "9", "a", "f", "A", "g", "-", "{", "}"];

/// Names of 1 to 20 components built from the grammar (as many as fit in
/// 255 bytes), so every one is valid. Components include the words routing
/// splits on.
fn valid_name() -> BoxedStrategy<String> {
    let word = select(
        &[
            "a",
            "x9",
            "0",
            "blobs",
            "uploads",
            "manifests",
            "tags",
            "list",
            "referrers",
            "v2",
        ][..],
    );
    let sep = select(&[".", "_", "__", "-", "---"][..]);
    let component =
        (word.clone(), prop::collection::vec((sep, word), 0..3)).prop_map(|(first, rest)| {
            rest.iter()
                .fold(first.to_owned(), |acc, (s, w)| format!("{acc}{s}{w}"))
        });
    prop::collection::vec(component, 1..=20)
        .prop_map(|components| {
            components
                .iter()
                .skip(1)
                .fold(components[0].clone(), |name, c| {
                    if name.len() + 1 + c.len() <= 255 {
                        format!("{name}/{c}")
                    } else {
                        name
                    }
                })
        })
        .boxed()
}

/// Valid names of 250 to 260 bytes, around the limit.
fn long_name() -> impl Strategy<Value = String> {
    (250..260usize, valid_name()).prop_map(|(len, mut name)| {
        while name.len() < len {
            name.push_str(if name.len() + 2 > len { "b" } else { "/a" });
        }
        name
    })
}

fn valid_tag() -> impl Strategy<Value = String> {
    (
        select(&["a", "Z", "0", "_"][..]),
        over(&["a", "Z", "9", "_", ".", "-"], 0..128),
    )
        .prop_map(|(first, rest)| format!("{first}{rest}"))
}

fn any_digest() -> impl Strategy<Value = Digest> {
    (
        select(&[Algorithm::Sha256, Algorithm::Sha512][..]),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(a, bytes)| Digest::of(a, &bytes))
}

/// Digest-shaped strings: an algorithm, `:`, and hex of about the right length.
fn digest_like() -> impl Strategy<Value = String> {
    (
        select(ALGORITHMS),
        prop_oneof![Just(64usize), Just(128), 60..132usize],
        over(HEX, 0..2),
        prop::collection::vec(select(&["0", "9", "a", "f"][..]), 132),
    )
        .prop_map(|(algo, n, noise, hex)| {
            let hex = hex[..n].concat();
            // Sometimes replace one character with noise.
            let hex = if noise.is_empty() {
                hex
            } else {
                format!("{noise}{}", &hex[1..])
            };
            format!("{algo}:{hex}")
        })
}

/// A number, often at an edge (0, 1, `u64::MAX - 1`, `u64::MAX`).
fn edgy() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX - 1),
        Just(u64::MAX),
        0..1000u64,
        any::<u64>(),
    ]
}

/// Decimal-ish text: numbers at the edges, past `u64`, signed, padded,
/// empty, not numbers.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "4",
    "5",
    "9",
    "10",
    "42",
    "007",
    "18446744073709551614",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "",
    " 5",
    "5 ",
    "\t5",
    "+1",
    "-1",
    "x",
    "1e3",
];

/// `Content-Range`-shaped text: each part right or wrong.
fn content_range_like() -> impl Strategy<Value = String> {
    (
        select(&["", " ", "\t", "\u{3000}"][..]),
        select(&["", "bytes ", "bytes=", "Bytes ", "bytes  "][..]),
        select(NUMBERS),
        select(&["-", "-", "-", "", "--", " - ", "+"][..]),
        select(NUMBERS),
        select(
            &[
                "",
                "",
                "/*",
                "/",
                "/x",
                "/0",
                "/5",
                "/10",
                "/43",
                "/18446744073709551615",
                "/*/*",
                ",0-1",
            ][..],
        ),
        select(&["", " ", "\t"][..]),
    )
        .prop_map(|(a, b, c, d, e, f, g)| format!("{a}{b}{c}{d}{e}{f}{g}"))
}

/// `Range`-shaped text: each part right or wrong.
fn range_like() -> impl Strategy<Value = String> {
    (
        select(&["", " ", "\t", "\u{3000}"][..]),
        select(
            &[
                "bytes=", "bytes=", "bytes=", "Bytes=", "bytes ", "items=", "",
            ][..],
        ),
        // Empty (a suffix range) more often than other values.
        prop_oneof![1 => Just(""), 3 => select(NUMBERS)],
        select(&["-", "-", "-", "", "--", " -", "- "][..]),
        // Zero (an empty suffix) more often than other values.
        prop_oneof![1 => Just("0"), 3 => select(NUMBERS)],
        select(&["", "", "", ",0-1", ", 5-9", ","][..]),
        select(&["", " ", "\t"][..]),
    )
        .prop_map(|(a, b, c, d, e, f, g)| format!("{a}{b}{c}{d}{e}{f}{g}"))
}

/// UUIDs in canonical form and in every other form `uuid` would read.
fn upload_id_like() -> impl Strategy<Value = String> {
    (any::<u128>(), 0..8usize).prop_map(|(n, form)| {
        let t = uuid_text(n);
        match form {
            0 | 1 => t,
            2 => t.to_uppercase(),
            3 => t.replace('-', ""),
            4 => format!("{{{t}}}"),
            5 => format!("urn:uuid:{t}"),
            6 => format!("{t}0"),
            _ => t[1..].to_owned(),
        }
    })
}

fn route() -> impl Strategy<Value = Route> {
    let name = valid_name()
        .prop_map(|n| RepoName::parse(&n).unwrap())
        .boxed();
    let tag = valid_tag().prop_map(|t| Reference::Tag(Tag::parse(&t).unwrap()));
    let reference = prop_oneof![tag, any_digest().prop_map(Reference::Digest)];
    let id = any::<u128>().prop_map(|n| UploadId::parse(&uuid_text(n)).unwrap());
    prop_oneof![
        Just(()).prop_map(|()| Route::Base),
        Just(()).prop_map(|()| Route::Catalog),
        name.clone().prop_map(Route::Tags),
        (name.clone(), reference.clone(), any::<bool>()).prop_map(|(n, r, h)| Route::GetManifest(
            n,
            r,
            Head(h)
        )),
        (name.clone(), reference.clone()).prop_map(|(n, r)| Route::PutManifest(n, r)),
        (name.clone(), reference).prop_map(|(n, r)| Route::DeleteManifest(n, r)),
        (name.clone(), any_digest(), any::<bool>()).prop_map(|(n, d, h)| Route::GetBlob(
            n,
            d,
            Head(h)
        )),
        (name.clone(), any_digest()).prop_map(|(n, d)| Route::DeleteBlob(n, d)),
        name.clone().prop_map(Route::StartUpload),
        (name.clone(), id.clone()).prop_map(|(n, i)| Route::UploadStatus(n, i)),
        (name.clone(), id.clone()).prop_map(|(n, i)| Route::PatchUpload(n, i)),
        (name.clone(), id.clone()).prop_map(|(n, i)| Route::FinishUpload(n, i)),
        (name.clone(), id).prop_map(|(n, i)| Route::CancelUpload(n, i)),
        (name, any_digest()).prop_map(|(n, d)| Route::Referrers(n, d)),
    ]
}

/// The canonical text of the UUID with bits `n`.
fn uuid_text(n: u128) -> String {
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The request a client would send for `r`, and its metrics label.
fn render(r: &Route) -> (Method, String, &'static str) {
    let get = |Head(h): &Head| if *h { Method::HEAD } else { Method::GET };
    match r {
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
        Route::PatchUpload(n, id) => (
            Method::PATCH,
            format!("/v2/{n}/blobs/uploads/{id}"),
            "upload",
        ),
        Route::FinishUpload(n, id) => {
            (Method::PUT, format!("/v2/{n}/blobs/uploads/{id}"), "upload")
        }
        Route::CancelUpload(n, id) => (
            Method::DELETE,
            format!("/v2/{n}/blobs/uploads/{id}"),
            "upload",
        ),
        Route::Referrers(n, d) => (Method::GET, format!("/v2/{n}/referrers/{d}"), "referrers"),
        other => unreachable!("not generated: {other:?}"),
    }
}

// ---- Properties ---------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn names_follow_the_grammar(s in prop_oneof![
        over(NAME_ALPHABET, 0..12),
        valid_name(),
        long_name(),
    ]) {
        let parsed = RepoName::parse(&s);
        prop_assert_eq!(parsed.is_some(), spec_name(&s), "{:?}", s);
        if let Some(n) = parsed {
            prop_assert_eq!(n.to_string(), s.clone());
            prop_assert_eq!(RepoName::parse(n.as_str()), Some(n));
        }
    }

    #[test]
    fn tags_follow_the_grammar(s in prop_oneof![over(TAG_ALPHABET, 0..6), valid_tag(), over(&["a"], 126..131)]) {
        let parsed = Tag::parse(&s);
        prop_assert_eq!(parsed.is_some(), spec_tag(&s), "{:?}", s);
        if let Some(t) = parsed {
            prop_assert_eq!(t.to_string(), s.clone());
            prop_assert_eq!(Tag::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn digests_follow_the_grammar(s in digest_like()) {
        let parsed = Digest::parse(&s);
        prop_assert_eq!(parsed.is_some(), spec_digest(&s), "{:?}", s);
        if let Some(d) = parsed {
            prop_assert_eq!(d.to_string(), s.clone());
            prop_assert_eq!(format!("{}:{}", d.algorithm().as_str(), d.hex()), s);
        }
    }

    #[test]
    fn computed_digests_are_sha2_and_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let d = Digest::of(Algorithm::Sha256, &bytes);
        prop_assert_eq!(d.hex(), hex(&sha2::Sha256::digest(&bytes)));
        prop_assert_eq!(Digest::parse(d.as_str()), Some(d.clone()));
        let d = Digest::of(Algorithm::Sha512, &bytes);
        prop_assert_eq!(d.hex(), hex(&sha2::Sha512::digest(&bytes)));
        prop_assert_eq!(Digest::parse(&d.to_string()), Some(d));
    }

    #[test]
    fn references_are_a_tag_or_a_digest(s in prop_oneof![over(TAG_ALPHABET, 0..6), valid_tag(), digest_like()]) {
        let parsed = Reference::parse(&s);
        match &parsed {
            Some(Reference::Tag(t)) => prop_assert!(spec_tag(&s) && t.as_str() == s),
            Some(Reference::Digest(d)) => prop_assert!(spec_digest(&s) && d.as_str() == s),
            None => prop_assert!(!spec_tag(&s) && !spec_digest(&s), "{:?}", s),
        }
        if let Some(r) = parsed {
            prop_assert_eq!(Reference::parse(&r.to_string()), Some(r));
        }
    }

    #[test]
    fn upload_ids_are_canonical_uuids(s in prop_oneof![over(ID_ALPHABET, 30..40), upload_id_like()]) {
        let parsed = UploadId::parse(&s);
        prop_assert_eq!(parsed.is_some(), spec_upload_id(&s), "{:?}", s);
        if let Some(id) = parsed {
            prop_assert_eq!(id.to_string(), s);
        }
    }

    #[test]
    fn content_ranges_follow_the_grammar(s in prop_oneof![over(RANGE_ALPHABET, 0..7), content_range_like()]) {
        let parsed = ContentRange::parse(&s);
        prop_assert_eq!(parsed.map(|r| (r.start, r.end)), spec_content_range(&s), "{:?}", s);
        if let Some(r) = parsed {
            prop_assert!(r.start <= r.end);
            prop_assert_eq!(u128::from(r.count()), u128::from(r.end) - u128::from(r.start) + 1);
        }
    }

    #[test]
    fn content_ranges_round_trip(a in edgy(), b in edgy(), total in edgy()) {
        let (start, end) = (a.min(b), a.max(b));
        let plain = ContentRange::parse(&format!("{start}-{end}"));
        let rfc = ContentRange::parse(&format!("bytes {start}-{end}/{total}"));
        if end < u64::MAX {
            prop_assert_eq!(plain, Some(ContentRange { start, end }));
            prop_assert_eq!(rfc.is_some(), end < total);
        } else {
            prop_assert_eq!(plain, None);
            prop_assert_eq!(rfc, None);
        }
    }

    #[test]
    fn ranges_follow_rfc_9110(
        s in prop_oneof![over(RANGE_ALPHABET, 0..6), range_like()],
        size in prop_oneof![edgy(), 0..50u64],
    ) {
        let resolved = ByteRange::resolve(&s, size);
        prop_assert_eq!(resolved.map(|r| r.map(|r| (r.start, r.end))), spec_range(&s, size), "{:?} of {}", s, size);
        if let Ok(Some(r)) = resolved {
            prop_assert!(r.start < r.end && r.end <= size, "{:?}", r);
            prop_assert_eq!(r.len(), r.end - r.start);
            prop_assert!(!r.is_empty());
        }
    }

    #[test]
    fn ranges_round_trip(first in edgy(), len in edgy(), size in edgy()) {
        let last = first.saturating_add(len);
        let r = ByteRange::resolve(&format!("bytes={first}-{last}"), size);
        if first >= size {
            prop_assert_eq!(r, Err(()));
        } else {
            let end = u64::try_from((u128::from(last) + 1).min(u128::from(size))).unwrap();
            prop_assert_eq!(r, Ok(Some(ByteRange { start: first, end })));
        }
        // Backwards cannot be satisfied.
        if last > first {
            let backwards = ByteRange::resolve(&format!("bytes={last}-{first}"), size);
            prop_assert_eq!(backwards, Err(()));
        }
    }

    #[test]
    fn routes_round_trip(r in route()) {
        let (method, path, label) = render(&r);
        let parsed = Route::parse_own(&method, &path).unwrap();
        prop_assert_eq!(format!("{parsed:?}"), format!("{r:?}"));
        prop_assert_eq!(parsed.label(), label);
    }

    #[test]
    fn parsers_never_panic(s in any::<String>(), size in any::<u64>()) {
        let _ = RepoName::parse(&s);
        let _ = Tag::parse(&s);
        let _ = Reference::parse(&s);
        let _ = Digest::parse(&s).map(|d| (d.algorithm(), d.hex().len()));
        let _ = UploadId::parse(&s);
        let _ = ContentRange::parse(&s).map(|r| r.count());
        let _ = ByteRange::resolve(&s, size).map(|r| r.map(|r| r.len()));
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let _ = Route::parse_own(&method, &s).map(|r| (r.label(), r.need()));
            let _ = Route::parse_own(&method, &format!("/v2/{s}"));
        }
    }
}
