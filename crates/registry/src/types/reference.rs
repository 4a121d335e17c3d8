//! Tags, references (tag or digest) and upload session ids.

use std::fmt;

use super::Digest;

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// Parses a tag; `None` when it breaks the grammar.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let ok = !b.is_empty()
            && b.len() <= 128
            && word(b[0])
            && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-');
        ok.then(|| Self(s.to_owned()))
    }

    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `<reference>` of a manifest URL: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// A mutable name for a manifest.
    Tag(Tag),
    /// The manifest's content address.
    Digest(Digest),
}

impl Reference {
    /// Parses a reference: anything containing `:` must be a digest.
    pub fn parse(s: &str) -> Option<Self> {
        if s.contains(':') {
            Digest::parse(s).map(Self::Digest)
        } else {
            Tag::parse(s).map(Self::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => t.fmt(f),
            Self::Digest(d) => d.fmt(f),
        }
    }
}

/// An upload session id: a UUID in its canonical lowercase hyphenated form,
/// which makes it safe as a file name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// Parses an id from a URL; `None` unless it is a canonical UUID.
    pub fn parse(s: &str) -> Option<Self> {
        let u = uuid::Uuid::try_parse(s).ok()?;
        let canonical = u.hyphenated().to_string();
        (canonical == s).then_some(Self(canonical))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for UploadId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert!(Tag::parse("latest").is_some());
        assert!(Tag::parse("_v1.2-rc_3").is_some());
        assert!(Tag::parse(&"a".repeat(128)).is_some());
        for bad in ["", ".a", "-a", "a/b", "a:b", "a+b", &"a".repeat(129)] {
            assert!(Tag::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn references() {
        assert!(matches!(Reference::parse("v1"), Some(Reference::Tag(_))));
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(Reference::parse(&d), Some(Reference::Digest(_))));
        assert!(Reference::parse("sha256:zz").is_none());
    }

    #[test]
    fn upload_ids() {
        let id = UploadId::new();
        assert_eq!(UploadId::parse(id.as_str()), Some(id));
        assert!(UploadId::parse("../etc").is_none());
        assert!(UploadId::parse("67E55044-10B1-426F-9247-BB680E5FE0C8").is_none());
    }
}
