//! The two byte-range headers of the API: `Content-Range` on upload chunks
//! (`start-end`, inclusive) and `Range` on blob reads (`bytes=...`).

/// A chunk's `Content-Range: <start>-<end>` (inclusive on both ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    /// Offset of the chunk's first byte.
    pub start: u64,
    /// Offset of the chunk's last byte.
    pub end: u64,
}

impl ContentRange {
    /// Parses the spec's `<start>-<end>` (`^[0-9]+-[0-9]+$`), also accepting
    /// RFC 9110's `bytes <start>-<end>/<total or *>` that some clients send:
    ///
    /// ```text
    /// [OWS] ["bytes" SP] 1*DIGIT "-" 1*DIGIT ["/" (1*DIGIT / "*")] [OWS]
    /// ```
    ///
    /// `None` for anything else, and unless `start <= end`, `end` is less
    /// than a given total, and `end < u64::MAX` (so [`count`](Self::count)
    /// cannot overflow).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim_matches(|c| c == ' ' || c == '\t');
        let s = s.strip_prefix("bytes ").unwrap_or(s);
        let (s, total) = match s.split_once('/') {
            Some((r, "*")) => (r, None),
            Some((r, t)) => (r, Some(parse_u64(t)?)),
            None => (s, None),
        };
        let (a, b) = s.split_once('-')?;
        let (start, end) = (parse_u64(a)?, parse_u64(b)?);
        let ok = start <= end && end < u64::MAX && total.is_none_or(|t| end < t);
        ok.then_some(Self { start, end })
    }

    /// Number of bytes the range covers (never zero: both ends are inclusive).
    pub fn count(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// A satisfiable `Range` request resolved against a blob's size: bytes
/// `start..end` (end exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte served.
    pub start: u64,
    /// One past the last byte served.
    pub end: u64,
}

impl ByteRange {
    /// Resolves a `Range` header against `size`: RFC 9110's single
    /// `bytes=<first>-[<last>]` or `bytes=-<suffix length>`, with optional
    /// whitespace (SP, HTAB) around the whole value and none inside.
    ///
    /// `Ok(None)` means the header is absent in effect (not a single `bytes`
    /// range we understand, a position past `u64::MAX`, or a suffix range of
    /// an empty blob: RFC 9110 lets us ignore it and send everything);
    /// `Err(())` means it is unsatisfiable (416), as is a range whose last
    /// byte precedes its first: answering it with the whole blob would tell
    /// a client (the OCI conformance tooling) that ranges are unsupported.
    /// A range is never empty and never ends past `size`.
    #[allow(clippy::result_unit_err)]
    pub fn resolve(header: &str, size: u64) -> Result<Option<Self>, ()> {
        let header = header.trim_matches(|c| c == ' ' || c == '\t');
        let Some(spec) = header.strip_prefix("bytes=") else {
            return Ok(None);
        };
        // Several ranges would need a multipart reply: ignored.
        if spec.contains(',') {
            return Ok(None);
        }
        let Some((a, b)) = spec.split_once('-') else {
            return Ok(None);
        };
        let range = if a.is_empty() {
            let Some(n) = parse_u64(b) else {
                return Ok(None);
            };
            if n == 0 {
                return Err(());
            }
            if size == 0 {
                // "The entire representation": nothing to take a range of.
                return Ok(None);
            }
            Self {
                start: size.saturating_sub(n),
                end: size,
            }
        } else {
            let Some(start) = parse_u64(a) else {
                return Ok(None);
            };
            let last = if b.is_empty() {
                Some(u64::MAX)
            } else {
                parse_u64(b)
            };
            let Some(last) = last else { return Ok(None) };
            if last < start {
                return Err(());
            }
            if start >= size {
                return Err(());
            }
            Self {
                start,
                end: last.saturating_add(1).min(size),
            }
        };
        Ok(Some(range))
    }

    /// Number of bytes served.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether no byte is served (the whole of an empty blob).
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(
            ContentRange::parse("0-9"),
            Some(ContentRange { start: 0, end: 9 })
        );
        assert_eq!(
            ContentRange::parse("bytes 10-19/*").map(|r| r.count()),
            Some(10)
        );
        assert_eq!(
            ContentRange::parse(" bytes 10-19/20\t").map(|r| r.count()),
            Some(10)
        );
        for bad in [
            "",
            "9-0",
            "-1-2",
            "a-b",
            "1",
            "1-",
            "+1-2",
            "0-18446744073709551615",
            "0-9/x",
            "0-9/5",
            "0-9/",
            "bytes=0-9",
            "0 - 9",
            "\u{3000}0-9",
        ] {
            assert_eq!(ContentRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn byte_range() {
        let r = |h| ByteRange::resolve(h, 100);
        assert_eq!(r("bytes=0-9"), Ok(Some(ByteRange { start: 0, end: 10 })));
        assert_eq!(
            r("bytes=90-"),
            Ok(Some(ByteRange {
                start: 90,
                end: 100
            }))
        );
        assert_eq!(
            r("bytes=-10"),
            Ok(Some(ByteRange {
                start: 90,
                end: 100
            }))
        );
        assert_eq!(
            r("bytes=50-1000"),
            Ok(Some(ByteRange {
                start: 50,
                end: 100
            }))
        );
        assert_eq!(r("bytes=100-"), Err(()));
        assert_eq!(r("bytes=-0"), Err(()));
        assert_eq!(r("items=0-1"), Ok(None));
        assert_eq!(r("bytes=5-1"), Err(()));
        assert_eq!(r("bytes=500-0"), Err(()));
        assert_eq!(r("bytes=0-1,3-4"), Ok(None));
        assert_eq!(r("bytes= 0-9"), Ok(None));
        assert_eq!(r("bytes=0 -9"), Ok(None));
        assert_eq!(r(" bytes=0-9\t"), Ok(Some(ByteRange { start: 0, end: 10 })));
        assert_eq!(ByteRange::resolve("bytes=-5", 0), Ok(None));
        assert_eq!(ByteRange::resolve("bytes=0-", 0), Err(()));
    }
}
