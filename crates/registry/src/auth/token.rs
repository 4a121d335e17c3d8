//! Bearer tokens of the Docker registry token specification: an
//! authorization server Berth trusts signs JSON Web Tokens; Berth checks
//! them and never calls that server back.
//!
//! A request without a token gets `401` with
//! `WWW-Authenticate: Bearer realm="…",service="…",scope="repository:app:pull,push"`:
//! the client asks the realm for a token with that scope and tries again.
//! A token passes when it is signed by one of the configured keys
//! (`certificates`: a PEM bundle of certificates or public keys; the
//! token's `kid` names the key in libtrust's format, or its `x5c` leaf is
//! one of the certificates; with a single key, either may be absent), with
//! an algorithm fitting that key (ES256/384, RS/PS256-512, EdDSA; never
//! `none`, never HMAC), `iss` the configured issuer, `aud` the service,
//! and `exp`/`nbf` within a minute's leeway. Then its `access` claims must
//! grant what the route needs ([`Access`]; `*` grants every action):
//! `repository:<name>:pull` to read, `pull,push` to push, `delete` to
//! delete, `registry:catalog:*` for the catalog, and Berth's own
//! `registry:berth:pull|push|admin` for its other endpoints. A bad token
//! is `error="invalid_token"`, too little access
//! `error="insufficient_scope"`, both with 401 as distribution answers.

use std::path::PathBuf;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::Role;
use crate::Error;

/// The `[auth.token]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Where clients get tokens: the authorization server's token
    /// endpoint, an absolute URL.
    pub realm: String,
    /// This registry's name at that server: the audience tokens must have.
    pub service: String,
    /// The issuer tokens must name.
    pub issuer: String,
    /// A PEM file of the certificates (or public keys) whose keys sign
    /// tokens.
    pub certificates: PathBuf,
}

/// What a request needs a token to grant: actions on one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// `repository` or `registry`.
    pub kind: &'static str,
    /// A repository name, `catalog`, or `berth` (Berth's other endpoints).
    pub name: String,
    /// Every one of these is needed (`pull`, `push`, `delete`, `*`, ...).
    pub actions: &'static [&'static str],
}

impl Access {
    /// `repository:<name>:<actions>`.
    pub fn repository(name: &str, actions: &'static [&'static str]) -> Self {
        Self {
            kind: "repository",
            name: name.to_owned(),
            actions,
        }
    }

    /// `registry:<name>:<actions>`.
    pub fn registry(name: &str, actions: &'static [&'static str]) -> Self {
        Self {
            kind: "registry",
            name: name.to_owned(),
            actions,
        }
    }
}

/// The `scope` of `access`, as a challenge and the token request say it.
pub fn scope(access: &[Access]) -> String {
    access
        .iter()
        .map(|a| format!("{}:{}:{}", a.kind, a.name, a.actions.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A token's claims, once verified.
#[derive(Clone, Debug, Deserialize)]
pub struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    access: Vec<Granted>,
}

/// One `access` entry of a token.
#[derive(Clone, Debug, Deserialize)]
struct Granted {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    actions: Vec<String>,
}

impl Claims {
    /// The subject (empty for an anonymous token).
    pub fn subject(&self) -> String {
        self.sub.clone().unwrap_or_default()
    }

    /// Whether every action `access` needs is granted (`*` grants all).
    pub fn grants(&self, access: &Access) -> bool {
        access
            .actions
            .iter()
            .all(|action| self.has(access.kind, &access.name, action))
    }

    fn has(&self, kind: &str, name: &str, action: &str) -> bool {
        self.access.iter().any(|g| {
            g.kind == kind && g.name == name && g.actions.iter().any(|a| a == "*" || a == action)
        })
    }

    /// The role its `registry:berth` grant amounts to.
    pub fn berth_role(&self) -> Role {
        if self.has("registry", "berth", "admin") {
            Role::Admin
        } else if self.has("registry", "berth", "push") {
            Role::Push
        } else {
            Role::Pull
        }
    }
}

/// A key that signs tokens.
struct Key {
    decoding: DecodingKey,
    algorithms: Vec<Algorithm>,
    /// libtrust's key id of its public key.
    kid: String,
    /// The certificate it came from, DER (for `x5c`).
    certificate: Option<Vec<u8>>,
}

/// The verifier: the configured keys and claims.
pub struct Tokens {
    config: TokenConfig,
    keys: Vec<Key>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("Tokens").field("keys", &kids).finish()
    }
}

impl Tokens {
    /// Reads the keys of `config.certificates`.
    pub fn load(config: &TokenConfig) -> Result<Self, Error> {
        let bad = |why: String| Error::Config(format!("auth.token: {why}"));
        if !(config.realm.starts_with("https://") || config.realm.starts_with("http://")) {
            return Err(bad(format!(
                "realm {:?} must be an absolute URL",
                config.realm
            )));
        }
        if config.service.is_empty() || config.issuer.is_empty() {
            return Err(bad("service and issuer must be set".into()));
        }
        let path = &config.certificates;
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        let keys = pem_blocks(&text)
            .into_iter()
            .map(|(label, der)| key(&label, &der))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
        if keys.is_empty() {
            return Err(bad(format!(
                "{} holds no certificate or public key",
                path.display()
            )));
        }
        Ok(Self {
            config: config.clone(),
            keys,
        })
    }

    /// The claims of `raw` if it is a valid token for this registry; why
    /// not otherwise.
    pub fn verify(&self, raw: &str) -> Result<Claims, String> {
        let header =
            jsonwebtoken::decode_header(raw).map_err(|e| format!("malformed token: {e}"))?;
        let key = match (&header.kid, header.x5c_der().ok().flatten()) {
            (_, Some(chain)) => {
                let leaf = chain.first().ok_or("an empty x5c chain")?;
                self.keys
                    .iter()
                    .find(|k| k.certificate.as_deref() == Some(leaf.as_slice()))
                    .ok_or("its x5c certificate is not one this registry trusts")?
            }
            (Some(kid), None) => self
                .keys
                .iter()
                .find(|k| &k.kid == kid)
                .ok_or_else(|| format!("no trusted key has the id {kid:?}"))?,
            (None, None) if self.keys.len() == 1 => &self.keys[0],
            (None, None) => return Err("the token names no key (kid or x5c)".into()),
        };
        if !key.algorithms.contains(&header.alg) {
            return Err(format!("{:?} does not fit the signing key", header.alg));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.service]);
        validation.validate_nbf = true;
        validation.leeway = 60;
        jsonwebtoken::decode::<Claims>(raw, &key.decoding, &validation)
            .map(|t| t.claims)
            .map_err(|e| format!("invalid token: {e}"))
    }

    /// The `WWW-Authenticate` value asking for `access`.
    pub fn challenge(&self, access: &[Access], error: Option<&str>) -> String {
        let mut value = format!(
            "Bearer realm=\"{}\",service=\"{}\"",
            self.config.realm, self.config.service
        );
        if !access.is_empty() {
            value.push_str(&format!(",scope=\"{}\"", scope(access)));
        }
        if let Some(error) = error {
            value.push_str(&format!(",error=\"{error}\""));
        }
        value
    }
}

/// The `(label, DER)` of each PEM block of `text`.
fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    use base64::Engine as _;
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = line
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let body: String = lines
            .by_ref()
            .take_while(|l| !l.trim().starts_with("-----END "))
            .map(str::trim)
            .collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) {
            blocks.push((label.to_owned(), der));
        }
    }
    blocks
}

/// The signing key of one PEM block: a certificate's, or a public key.
fn key(label: &str, der: &[u8]) -> Result<Key, String> {
    let (spki, certificate) = match label {
        "CERTIFICATE" => (certificate_spki(der)?, Some(der.to_vec())),
        "PUBLIC KEY" => (der.to_vec(), None),
        other => {
            return Err(format!(
                "a {other} block: expected CERTIFICATE or PUBLIC KEY"
            ))
        }
    };
    let pem = pem("PUBLIC KEY", &spki);
    let (decoding, algorithms) = if contains(&spki, OID_EC) {
        let curve = if contains(&spki, OID_P384) {
            Algorithm::ES384
        } else {
            Algorithm::ES256
        };
        (DecodingKey::from_ec_pem(pem.as_bytes()), vec![curve])
    } else if contains(&spki, OID_RSA) {
        use Algorithm::*;
        (
            DecodingKey::from_rsa_pem(pem.as_bytes()),
            vec![RS256, RS384, RS512, PS256, PS384, PS512],
        )
    } else if contains(&spki, OID_ED25519) {
        (
            DecodingKey::from_ed_pem(pem.as_bytes()),
            vec![Algorithm::EdDSA],
        )
    } else {
        return Err("a key that is neither EC, RSA nor Ed25519".into());
    };
    Ok(Key {
        decoding: decoding.map_err(|e| format!("unusable key: {e}"))?,
        algorithms,
        kid: libtrust_kid(&spki),
        certificate,
    })
}

/// Object identifiers (DER content) of the key types.
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// One DER element: its tag, the whole element, and its contents.
fn element(der: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let short = || "a truncated certificate".to_string();
    let (&tag, rest) = der.split_first().ok_or_else(short)?;
    let (&first, rest) = rest.split_first().ok_or_else(short)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(short());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    let contents = rest.get(..len).ok_or_else(short)?;
    let whole = &der[..der.len() - rest.len() + len];
    Ok((tag, whole, contents))
}

/// The `subjectPublicKeyInfo` of an X.509 certificate (DER).
fn certificate_spki(der: &[u8]) -> Result<Vec<u8>, String> {
    let (_, _, certificate) = element(der)?;
    let (_, _, mut tbs) = element(certificate)?;
    // version [0] (optional), serialNumber, signature, issuer, validity,
    // subject, subjectPublicKeyInfo.
    let mut fields = Vec::new();
    while !tbs.is_empty() && fields.len() < 7 {
        let (tag, whole, _) = element(tbs)?;
        tbs = &tbs[whole.len()..];
        fields.push((tag, whole));
    }
    let skip = usize::from(fields.first().is_some_and(|(tag, _)| *tag == 0xa0));
    fields
        .get(skip + 5)
        .map(|(_, spki)| spki.to_vec())
        .ok_or_else(|| "a certificate without a public key".into())
}

/// libtrust's key id: the first 240 bits of the SHA-256 of the public key
/// (DER), in base32, in groups of four joined by `:`.
pub fn libtrust_kid(spki: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hash = Sha256::digest(spki);
    let mut out = String::new();
    for chunk in hash[..30].chunks(5) {
        let n = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        for i in (0..8).rev() {
            out.push(char::from(ALPHABET[((n >> (i * 5)) & 31) as usize]));
        }
    }
    out.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_as_the_specification_writes_them() {
        let access = [
            Access::repository("team/app", &["pull", "push"]),
            Access::registry("catalog", &["*"]),
        ];
        assert_eq!(
            scope(&access),
            "repository:team/app:pull,push registry:catalog:*"
        );
        let claims: Claims = serde_json::from_value(serde_json::json!({
            "sub": "ci",
            "access": [{"type": "repository", "name": "team/app", "actions": ["pull"]},
                       {"type": "registry", "name": "catalog", "actions": ["*"]}],
        }))
        .unwrap();
        assert!(claims.grants(&Access::repository("team/app", &["pull"])));
        assert!(!claims.grants(&access[0]), "push was not granted");
        assert!(claims.grants(&access[1]));
        assert!(!claims.grants(&Access::repository("team/other", &["pull"])));
        assert_eq!(claims.berth_role(), Role::Pull);
    }

    #[test]
    fn libtrust_ids_are_twelve_groups_of_four() {
        let kid = libtrust_kid(b"any key");
        assert_eq!(kid.len(), 59);
        assert_eq!(kid.split(':').count(), 12);
        assert!(kid
            .chars()
            .all(|c| c == ':' || c.is_ascii_uppercase() || ('2'..='7').contains(&c)));
    }

    /// A key named by its libtrust id in `kid`, read from a certificate
    /// (whose public key the DER walk finds) and from a bare public key.
    #[test]
    fn finds_the_key_a_token_names_by_kid() {
        let pair = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["t".into()])
            .unwrap()
            .self_signed(&pair)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("cert.pem", cert.pem()), ("key.pem", pair.public_key_pem())] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let config = TokenConfig {
                realm: "https://a/token".into(),
                service: "svc".into(),
                issuer: "iss".into(),
                certificates: path,
            };
            let tokens = Tokens::load(&config).unwrap();
            let kid = libtrust_kid(&rcgen::PublicKeyData::subject_public_key_info(&pair));
            assert_eq!(tokens.keys[0].kid, kid, "{name}");
            let sign = |kid: &str| {
                let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
                header.kid = Some(kid.to_owned());
                let claims = serde_json::json!({"iss": "iss", "aud": "svc", "exp": 4_000_000_000u64, "sub": "x"});
                let key = jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())
                    .unwrap();
                jsonwebtoken::encode(&header, &claims, &key).unwrap()
            };
            assert_eq!(tokens.verify(&sign(&kid)).unwrap().subject(), "x");
            assert!(tokens
                .verify(&sign("AAAA:BBBB"))
                .unwrap_err()
                .contains("no trusted key"));
        }
    }
}
