//! Reference predicates for the property tests, written from the spec's
//! grammars without regexes, and in a different style from the parsers
//! they check (a state machine, character walks, `u128` arithmetic).

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
/// as a state machine (one state per position in the expression), plus the
/// registry's limit of 255 bytes.
pub fn spec_name(s: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        Start,
        Alnum,
        Dot,
        Underscore,
        TwoUnderscores,
        Dashes,
        Slash,
    }
    let mut at = At::Start;
    for c in s.chars() {
        at = match (at, c) {
            (_, 'a'..='z' | '0'..='9') => At::Alnum,
            (At::Alnum, '.') => At::Dot,
            (At::Alnum, '_') => At::Underscore,
            (At::Underscore, '_') => At::TwoUnderscores,
            (At::Alnum | At::Dashes, '-') => At::Dashes,
            (At::Alnum, '/') => At::Slash,
            _ => return false,
        };
    }
    at == At::Alnum && s.len() <= 255
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn spec_tag(s: &str) -> bool {
    let first = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let rest = |c: char| first(c) || c == '.' || c == '-';
    let mut chars = s.chars();
    chars.next().is_some_and(first) && chars.clone().all(rest) && s.chars().count() <= 128
}

/// The image spec's `algorithm ":" encoded`, restricted to the algorithms
/// the registry verifies, whose encodings the image spec fixes:
/// sha256 `[a-f0-9]{64}`, sha512 `[a-f0-9]{128}`.
pub fn spec_digest(s: &str) -> bool {
    let hex =
        |e: &str, n: usize| e.len() == n && e.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'));
    match s.split_once(':') {
        Some(("sha256", e)) => hex(e, 64),
        Some(("sha512", e)) => hex(e, 128),
        _ => false,
    }
}

/// A UUID in canonical form: 8-4-4-4-12 lowercase hex digits.
pub fn spec_upload_id(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')))
}

/// Digits as a number, `None` when empty, not all digits, or past `u64`.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut n: u128 = 0;
    for c in s.chars() {
        n = n * 10 + u128::from(c as u8 - b'0');
        if n > u128::from(u64::MAX) {
            return None;
        }
    }
    u64::try_from(n).ok()
}

fn ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// The spec's `^[0-9]+-[0-9]+$`, or RFC 9110's `bytes first-last/total`
/// (total may be `*`), with `start <= end < total` and `end < u64::MAX`.
pub fn spec_content_range(s: &str) -> Option<(u64, u64)> {
    let s = ows(s);
    let s = s.strip_prefix("bytes ").unwrap_or(s);
    let (range, total) = match s.find('/') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let dash = range.find('-')?;
    let start = decimal(&range[..dash])?;
    let end = decimal(&range[dash + 1..])?;
    let total_ok = match total {
        None | Some("*") => true,
        Some(t) => decimal(t).is_some_and(|t| end < t),
    };
    (start <= end && end != u64::MAX && total_ok).then_some((start, end))
}

/// RFC 9110 section 14 for one `bytes` range against a blob of `size`:
/// `Ok(None)` = ignore the header (200), `Err` = 416, else `start..end`.
pub fn spec_range(header: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(set) = ows(header).strip_prefix("bytes=") else {
        return Ok(None);
    };
    if set.contains(',') {
        return Ok(None); // several ranges: not served as multipart
    }
    let Some(dash) = set.find('-') else {
        return Ok(None);
    };
    let (first, last) = (&set[..dash], &set[dash + 1..]);
    if first.is_empty() {
        // suffix-range: the last `n` bytes.
        return match decimal(last) {
            None => Ok(None),
            Some(0) => Err(()),
            Some(_) if size == 0 => Ok(None),
            Some(n) => Ok(Some((size - n.min(size), size))),
        };
    }
    let Some(first) = decimal(first) else {
        return Ok(None);
    };
    let last = if last.is_empty() {
        u64::MAX
    } else {
        match decimal(last) {
            Some(l) => l,
            None => return Ok(None),
        }
    };
    // Backwards (answered 416 rather than with the whole blob), or past the end.
    if last < first || first >= size {
        Err(())
    } else {
        Ok(Some((
            first,
            (u128::from(last) + 1).min(u128::from(size)) as u64,
        )))
    }
}
