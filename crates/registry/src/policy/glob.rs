//! Repository and tag patterns: `*` matches within one path segment (no
//! `/`), `**` across segments (`ci/**` is every repository under `ci/`),
//! `?` one character; anything else matches itself.

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
}

impl Glob {
    /// Compiles `pattern`; an empty one is refused.
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("an empty pattern matches nothing".into());
        }
        if pattern.contains("***") {
            return Err(format!("{pattern:?}: `***` means nothing; write `**`"));
        }
        Ok(Self {
            pattern: pattern.to_owned(),
        })
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        matches(self.pattern.as_bytes(), text.as_bytes())
    }
}

fn matches(p: &[u8], t: &[u8]) -> bool {
    match p {
        [] => t.is_empty(),
        // `a/**` also matches `a` itself; `**/` may match nothing.
        [b'/', b'*', b'*'] if t.is_empty() => true,
        [b'*', b'*', b'/', rest @ ..] => {
            matches(rest, t) || (0..t.len()).any(|i| t[i] == b'/' && matches(rest, &t[i + 1..]))
        }
        [b'*', b'*', rest @ ..] => (0..=t.len()).any(|i| matches(rest, &t[i..])),
        [b'*', rest @ ..] => {
            let segment = t.iter().position(|&c| c == b'/').unwrap_or(t.len());
            (0..=segment).any(|i| matches(rest, &t[i..]))
        }
        [b'?', rest @ ..] => t.first().is_some_and(|&c| c != b'/') && matches(rest, &t[1..]),
        [c, rest @ ..] => t.first() == Some(c) && matches(rest, &t[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_stay_in_a_segment_double_stars_cross_them() {
        let g = |p: &str| Glob::new(p).unwrap();
        assert!(g("ci/**").matches("ci/app"));
        assert!(g("ci/**").matches("ci/team/app"));
        assert!(g("ci/**").matches("ci"));
        assert!(!g("ci/**").matches("cix/app"));
        assert!(g("ci/*").matches("ci/app"));
        assert!(!g("ci/*").matches("ci/team/app"));
        assert!(g("**/cache").matches("a/b/cache"));
        assert!(g("**/cache").matches("cache"));
        assert!(g("v*").matches("v1.2.3"));
        assert!(!g("v*").matches("latest"));
        assert!(g("release-?").matches("release-1"));
        assert!(!g("release-?").matches("release-10"));
        assert!(g("**").matches("anything/at/all"));
        assert!(g("prod").matches("prod") && !g("prod").matches("prod/app"));
        assert!(Glob::new("").is_err() && Glob::new("a/***").is_err());
    }
}
