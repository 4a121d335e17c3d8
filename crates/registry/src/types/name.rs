//! Repository names, validated against the spec's grammar.

use std::fmt;

/// The longest name accepted; the reference registry's limit, which keeps
/// `Host + name` well under common URL length limits.
const MAX_LEN: usize = 255;

/// A repository name: `/`-separated components, each matching
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    /// Parses a name; `None` when it breaks the grammar (which also rules out
    /// `..`, empty components and absolute paths).
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() <= MAX_LEN && s.split('/').all(valid_component)).then(|| Self(s.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`: alphanumeric runs joined by a single
/// `.`, a single or double `_`, or any number of `-`.
fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[sep_start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_spec_names() {
        for good in [
            "a",
            "library/ubuntu",
            "a0/b-c/d__e/f.g",
            "x--y",
            "charts/my_app",
            "1",
        ] {
            assert!(RepoName::parse(good).is_some(), "{good}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "", "/a", "a/", "a//b", "A", "a/../b", "..", ".", "a..b", "a___b", "a_-b", "-a", "a-",
            "%2e%2e", "a b", "a/./b",
        ] {
            assert!(RepoName::parse(bad).is_none(), "{bad}");
        }
        assert!(RepoName::parse(&"a".repeat(256)).is_none());
    }
}
