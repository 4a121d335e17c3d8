//! Query-string parsing with percent-decoding (`?mount=sha256%3A...`).

/// The decoded `key=value` pairs of a query string, in order.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a raw query string (without `?`).
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (form_decode(k), form_decode(v))
            })
            .collect();
        Self(pairs)
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` as a number; a value that is not one is a
    /// `BadParameter` error (400).
    pub fn number<T: std::str::FromStr>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, crate::Error> {
        self.get(key)
            .map(|v| v.parse().map_err(|_| crate::Error::BadParameter(key)))
            .transpose()
    }

    /// Every value of `key`, for repeated parameters such as `tag`.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then
/// [`percent_decode`].
fn form_decode(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// Percent-decoding (`%XX` is a byte), as in a URI's path or user info;
/// malformed escapes are kept literally, invalid UTF-8 is replaced.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|&b| hex(b)),
            bytes.get(i + 2).and_then(|&b| hex(b)),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_repeats() {
        let q = Query::parse(Some("mount=sha256%3Aab&from=a%2Fb&tag=1&tag=2&x&bad=%zz%4"));
        assert_eq!(q.get("mount"), Some("sha256:ab"));
        assert_eq!(q.get("from"), Some("a/b"));
        assert_eq!(q.all("tag").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(q.get("bad"), Some("%zz%4"));
        assert_eq!(q.get("missing"), None);
        assert_eq!(Query::parse(Some("a=x+y%2B")).get("a"), Some("x y+"));
        assert_eq!(percent_decode("p%40ss+w%3Ard%"), "p@ss+w:rd%");
    }
}
