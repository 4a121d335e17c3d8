//! Content digests (`algorithm:hex`) and the streaming hasher that produces them.

use std::fmt;

use sha2::{Digest as _, Sha256, Sha512};

/// A digest algorithm the registry can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `sha256`, the default and by far the most common.
    Sha256,
    /// `sha512`, registered by the OCI image spec.
    Sha512,
}

impl Algorithm {
    /// Parses an algorithm name as it appears before the `:` of a digest.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The algorithm's name in a digest string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

/// A validated content digest such as `sha256:2c26b46b...`.
///
/// The hex part is always lowercase and of the algorithm's exact length, so the
/// string form is canonical and safe to use as a file name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// Kept as the full `algo:hex` string: it is compared, hashed and printed
    /// far more often than it is taken apart.
    text: String,
}

impl Digest {
    /// Parses `algorithm:hex`; `None` for unknown algorithms or malformed hex.
    pub fn parse(s: &str) -> Option<Self> {
        let (algo, hex) = s.split_once(':')?;
        let algo = Algorithm::parse(algo)?;
        let ok = hex.len() == algo.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Self { text: s.to_owned() })
    }

    /// The digest of `bytes` under `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut d = Digester::new(algorithm);
        d.update(bytes);
        d.finish()
    }

    /// The algorithm part.
    pub fn algorithm(&self) -> Algorithm {
        match &self.text[..6] {
            "sha512" => Algorithm::Sha512,
            _ => Algorithm::Sha256,
        }
    }

    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm().as_str().len() + 1..]
    }

    /// The canonical `algo:hex` form.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A streaming hasher for one [`Algorithm`].
#[derive(Clone)]
pub enum Digester {
    /// SHA-256 state.
    Sha256(Sha256),
    /// SHA-512 state.
    Sha512(Sha512),
}

impl Digester {
    /// A fresh hasher.
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Self::Sha256(Sha256::new()),
            Algorithm::Sha512 => Self::Sha512(Sha512::new()),
        }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Sha256(_) => Algorithm::Sha256,
            Self::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    /// The state of a SHA-256 hasher, to go on with it elsewhere (another
    /// request, another replica) with [`Digester::resume`]: a version byte,
    /// then sha2's 104-byte state. `None` for SHA-512, which uploads do not
    /// resume (they hash their bytes once at completion instead).
    pub fn save(&self) -> Option<Vec<u8>> {
        use sha2::digest::common::hazmat::SerializableState;
        match self {
            Self::Sha256(h) => {
                let mut saved = vec![STATE_VERSION];
                saved.extend_from_slice(&h.serialize());
                Some(saved)
            }
            Self::Sha512(_) => None,
        }
    }

    /// A SHA-256 hasher saved by [`Digester::save`]; `None` when `saved`
    /// is not such a state (another version, corruption).
    pub fn resume(saved: &[u8]) -> Option<Self> {
        use sha2::digest::common::hazmat::{SerializableState, SerializedState};
        let (&STATE_VERSION, state) = saved.split_first()? else {
            return None;
        };
        let state = SerializedState::<Sha256>::try_from(state).ok()?;
        Sha256::deserialize(&state).ok().map(Self::Sha256)
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let (algo, bytes) = match self {
            Self::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            Self::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        let mut text = String::with_capacity(algo.hex_len() + 7);
        text.push_str(algo.as_str());
        text.push(':');
        for b in bytes {
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 15)]));
        }
        Digest { text }
    }
}

impl std::fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digester({})", self.algorithm().as_str())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The format of a saved hasher state: sha2 0.11's serialization (which may
/// change with sha2's major version).
const STATE_VERSION: u8 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computed_digest_matches_known_value() {
        let d = Digest::of(Algorithm::Sha256, b"hello");
        assert_eq!(
            d.as_str(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(Digest::parse(d.as_str()), Some(d.clone()));
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.hex().len(), 64);
    }

    #[test]
    fn a_saved_sha256_state_resumes_where_it_stopped() {
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        let mut first = Digester::new(Algorithm::Sha256);
        first.update(&data[..333_337]);
        let saved = first.save().unwrap();
        assert_eq!(saved.len(), 105);
        let mut resumed = Digester::resume(&saved).unwrap();
        resumed.update(&data[333_337..]);
        assert_eq!(resumed.finish(), Digest::of(Algorithm::Sha256, &data));
        assert!(Digester::resume(&saved[1..]).is_none());
        assert!(Digester::resume(b"").is_none());
        assert!(Digester::new(Algorithm::Sha512).save().is_none());
    }

    #[test]
    fn sha512_round_trips() {
        let d = Digest::of(Algorithm::Sha512, b"");
        assert!(d.as_str().starts_with("sha512:cf83e135"));
        assert_eq!(
            Digest::parse(d.as_str()).map(|d| d.algorithm()),
            Some(Algorithm::Sha512)
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982",
            "sha256:../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(Digest::parse(bad), None, "{bad}");
        }
    }
}
