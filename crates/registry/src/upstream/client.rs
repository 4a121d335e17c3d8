//! Talking to an upstream registry: its Basic or Bearer challenge answered
//! as docker does (a token from its realm for `repository:<name>:pull`,
//! kept until it expires), redirects followed (to a CDN, as Docker Hub's
//! blobs are) without the credentials, which reqwest drops on a change of
//! host. The upstream's credentials only ever go to the upstream itself or
//! to a token realm of its own domain: a realm elsewhere (a malicious or
//! intercepted upstream's, CVE-2026-33540) gets none.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::{header, Method, Response, StatusCode};

/// What an upstream request can end in, besides an answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The upstream does not have it (404).
    NotFound,
    /// The upstream cannot be reached or answered with an error.
    Unavailable(String),
}

/// The media types a manifest request accepts, as docker's.
pub(crate) const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// How long a request may take before the upstream counts as unreachable
/// (a blob's body has its own pace, see `upstream::fill_blob`).
const TIMEOUT: Duration = Duration::from_secs(30);

/// A client of one upstream.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    credentials: Option<(String, String)>,
    /// The upstream's challenge, once seen.
    challenge: Mutex<Option<Challenge>>,
    /// Bearer tokens by scope, with when they expire.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
enum Challenge {
    Basic,
    Bearer { realm: String, service: String },
}

impl Client {
    /// A client of the registry at `base` (`https://registry-1.docker.io`).
    pub(crate) fn new(base: &str, credentials: Option<(String, String)>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!(
                "berth/",
                env!("CARGO_PKG_VERSION"),
                " (pull-through cache)"
            ))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            credentials,
            challenge: Mutex::default(),
            tokens: Mutex::default(),
        })
    }

    /// `method {base}/v2/{name}/{path}` with the credentials it needs; a
    /// 404 is [`Failure::NotFound`], another error status or no answer
    /// [`Failure::Unavailable`].
    pub(crate) async fn get(
        &self,
        method: Method,
        name: &str,
        path: &str,
        accept: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Response, Failure> {
        let url = format!("{}/v2/{name}/{path}", self.base);
        let scope = format!("repository:{name}:pull");
        for attempt in 0..2 {
            let mut req = self.http.request(method.clone(), &url);
            if let Some(t) = timeout {
                req = req.timeout(t);
            }
            if let Some(accept) = accept {
                req = req.header(header::ACCEPT, accept);
            }
            if let Some(value) = self.authorization(&scope).await? {
                req = req.header(header::AUTHORIZATION, value);
            }
            let resp = req.send().await.map_err(unreachable)?;
            match resp.status() {
                StatusCode::UNAUTHORIZED if attempt == 0 => {
                    self.learn(&resp)?;
                    self.tokens
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&scope);
                }
                StatusCode::NOT_FOUND => return Err(Failure::NotFound),
                s if s.is_success() => return Ok(resp),
                s => return Err(Failure::Unavailable(format!("{url}: {s}"))),
            }
        }
        Err(Failure::Unavailable(format!(
            "{url}: refused the credentials"
        )))
    }

    /// Records the challenge of a 401.
    fn learn(&self, resp: &Response) -> Result<(), Failure> {
        let value = resp
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let challenge = parse_challenge(value)
            .ok_or_else(|| Failure::Unavailable(format!("an unknown challenge {value:?}")))?;
        if let Challenge::Bearer { realm, .. } = &challenge {
            if !realm_allowed(realm, &self.base) {
                return Err(Failure::Unavailable(format!(
                    "the upstream sends clients to the token realm {realm}, outside its own domain: refused"
                )));
            }
        }
        *self.challenge.lock().unwrap_or_else(|p| p.into_inner()) = Some(challenge);
        Ok(())
    }

    /// The `Authorization` value for `scope`, once a challenge was seen.
    async fn authorization(&self, scope: &str) -> Result<Option<String>, Failure> {
        let challenge = self
            .challenge
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.basic()),
            Some(Challenge::Bearer { realm, service }) => {
                let cached = self
                    .tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(scope)
                    .filter(|(_, until)| *until > Instant::now())
                    .map(|(t, _)| t.clone());
                let token = match cached {
                    Some(t) => t,
                    None => self.token(&realm, &service, scope).await?,
                };
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn basic(&self) -> Option<String> {
        use base64::Engine as _;
        self.credentials.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
    }

    /// A token for `scope` from `realm` (with Basic credentials if any).
    async fn token(&self, realm: &str, service: &str, scope: &str) -> Result<String, Failure> {
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = format!(
            "{realm}{sep}service={}&scope={}",
            encode(service),
            encode(scope)
        );
        let mut req = self.http.get(url).timeout(TIMEOUT);
        if let Some(basic) = self.basic() {
            req = req.header(header::AUTHORIZATION, basic);
        }
        let resp = req.send().await.map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(Failure::Unavailable(format!(
                "token realm {realm}: {}",
                resp.status()
            )));
        }
        let body: serde_json::Value = resp.json().await.map_err(unreachable)?;
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .ok_or_else(|| Failure::Unavailable(format!("token realm {realm}: no token")))?
            .to_owned();
        // At least a minute, as the specification says; a little early.
        let lifetime = body["expires_in"].as_u64().unwrap_or(60).max(60);
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(10));
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scope.to_owned(), (token.clone(), until));
        Ok(token)
    }
}

fn unreachable(e: reqwest::Error) -> Failure {
    Failure::Unavailable(e.to_string())
}

/// `Basic ...` or `Bearer realm="...",service="..."`.
fn parse_challenge(value: &str) -> Option<Challenge> {
    let (scheme, params) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let param = |name: &str| {
        params.split(',').find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            k.eq_ignore_ascii_case(name)
                .then(|| v.trim_matches('"').to_owned())
        })
    };
    Some(Challenge::Bearer {
        realm: param("realm")?,
        service: param("service").unwrap_or_default(),
    })
}

/// Whether the upstream at `base` may send our credentials to `realm`: the
/// same host, or for names (not addresses), the same last two labels
/// (`registry-1.docker.io` and `auth.docker.io`).
fn realm_allowed(realm: &str, base: &str) -> bool {
    let host = |url: &str| {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        authority
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(authority, |(h, _)| h)
            .to_ascii_lowercase()
    };
    let (realm, base) = (host(realm), host(base));
    if realm == base {
        return true;
    }
    let is_name =
        |h: &str| h.parse::<std::net::IpAddr>().is_err() && h != "localhost" && h.contains('.');
    is_name(&realm) && is_name(&base) && domain(&realm) == domain(&base)
}

/// The last two labels of a host name.
fn domain(host: &str) -> Vec<&str> {
    host.rsplitn(3, '.').take(2).collect()
}

/// `text` percent-encoded for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_only_to_the_upstreams_own_domain() {
        assert!(realm_allowed(
            "https://auth.docker.io/token",
            "https://registry-1.docker.io"
        ));
        assert!(realm_allowed(
            "http://127.0.0.1:5001/token",
            "http://127.0.0.1:5001"
        ));
        assert!(!realm_allowed(
            "https://evil.example/token",
            "https://registry-1.docker.io"
        ));
        assert!(!realm_allowed(
            "http://127.0.0.2/token",
            "http://127.0.0.1:5001"
        ));
        assert!(!realm_allowed(
            "https://docker.io.evil.example/t",
            "https://registry-1.docker.io"
        ));
        assert!(!realm_allowed(
            "http://localhost:9/t",
            "http://127.0.0.1:5001"
        ));
    }

    #[test]
    fn reads_basic_and_bearer_challenges() {
        assert!(matches!(
            parse_challenge("Basic realm=\"x\""),
            Some(Challenge::Basic)
        ));
        let Some(Challenge::Bearer { realm, service }) = parse_challenge(
            "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/alpine:pull\"",
        ) else {
            panic!("not read");
        };
        assert_eq!(
            (realm.as_str(), service.as_str()),
            ("https://auth.docker.io/token", "registry.docker.io")
        );
        assert!(parse_challenge("Negotiate abc").is_none());
    }
}
