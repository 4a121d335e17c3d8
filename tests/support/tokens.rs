//! A token server as docker_auth or Keycloak would run one: a key pair and
//! certificate it makes, JWTs it signs.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub const ISSUER: &str = "tokens.test";
pub const SERVICE: &str = "berth-test";

/// A signing key and its self-signed certificate.
pub struct Signer {
    /// The private key.
    pub key: EncodingKey,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificate, PEM (what Berth is given).
    pub cert_pem: String,
}

impl Signer {
    /// A fresh key and certificate.
    pub fn new() -> Self {
        let pair = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![ISSUER.into()])
            .unwrap()
            .self_signed(&pair)
            .unwrap();
        Self {
            key: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
        }
    }

    /// A JWT of `claims`, naming this key by `x5c`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.x5c = Some(vec![
            base64::engine::general_purpose::STANDARD.encode(&self.cert_der)
        ]);
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// Unix seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims for `sub` granting `access`, valid now.
pub fn claims(sub: &str, access: Value) -> Value {
    let now = now();
    json!({"iss": ISSUER, "sub": sub, "aud": SERVICE, "exp": now + 300, "nbf": now - 5,
           "iat": now, "jti": format!("{now}-{sub}"), "access": access})
}

/// A token server on a free port: GET `/token?service=&scope=...` with
/// Basic `alice:secret` grants what is asked (only `pull` under
/// `readonly/`); without credentials, `pull` only; a wrong password is 401.
pub fn token_server(signer: Signer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut authorization = None;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h
                    .strip_prefix("Authorization: ")
                    .or_else(|| h.strip_prefix("authorization: "))
                {
                    authorization = Some(v.trim().to_owned());
                }
            }
            let target = line.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = if !line.starts_with("GET ") {
                (404, "{}".to_owned())
            } else {
                let user = match authorization
                    .as_deref()
                    .and_then(|a| a.strip_prefix("Basic "))
                {
                    None => Some("".to_owned()),
                    Some(b64) => {
                        let pair = String::from_utf8(
                            base64::engine::general_purpose::STANDARD
                                .decode(b64)
                                .unwrap(),
                        )
                        .unwrap();
                        (pair == "alice:secret").then(|| "alice".to_owned())
                    }
                };
                match user {
                    None => (401, r#"{"details":"wrong user or password"}"#.to_owned()),
                    Some(user) => {
                        let token = signer.sign(&claims(&user, grants(&user, target)));
                        (
                            200,
                            json!({"token": token, "access_token": token, "expires_in": 300})
                                .to_string(),
                        )
                    }
                }
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// What the token server grants `user` of the scopes in `target`.
fn grants(user: &str, target: &str) -> Value {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut access = Vec::new();
    for pair in query.split('&') {
        let Some(scope) = pair.strip_prefix("scope=") else {
            continue;
        };
        let scope = registry::ext::percent_decode(scope);
        for one in scope.split(' ') {
            let (kind, rest) = one.split_once(':').unwrap();
            let (name, actions) = rest.rsplit_once(':').unwrap();
            let actions: Vec<&str> = actions
                .split(',')
                .filter(|a| user == "alice" && !name.starts_with("readonly/") || *a == "pull")
                .collect();
            access.push(json!({"type": kind, "name": name, "actions": actions}));
        }
    }
    Value::Array(access)
}
