//! One POST to a receiver: exactly the contract's headers (custom headers,
//! `Content-Type`, `User-Agent`, `Authorization` from the service URI's
//! user info, the optional Standard Webhooks signature, plus the `Host` and
//! `Content-Length` HTTP needs), no redirects, a per-attempt timeout.
//!
//! Built on hyper's client rather than a higher-level one because those add
//! headers of their own (`Accept: */*`), which the contract forbids.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;

use crate::format::Body;
use crate::target::Resolver;
use crate::webhook::Webhook;
use crate::Error;

/// The `User-Agent` of every delivery and ping, unless a custom header sets
/// one: receivers written for ACR recognise ACR by it (Kargo answers 400
/// to anything else).
pub const USER_AGENT: &str = concat!(
    "AzureContainerRegistry/1.0 (compatible; Berth/",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// What came back from one attempt.
#[derive(Clone, Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The reason phrase the receiver sent.
    pub reason: String,
    /// Response headers.
    pub headers: BTreeMap<String, String>,
    /// The body, cut to [`MAX_BODY`] bytes.
    pub body: String,
}

/// One attempt: the request sent and its response or error.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// Headers sent (custom header values unmasked; mask before storing).
    pub request_headers: BTreeMap<String, String>,
    /// The response, when there was one.
    pub response: Result<Response, String>,
    /// How long it took.
    pub latency: Duration,
}

/// Response bodies kept in the history are cut to this many bytes.
pub const MAX_BODY: usize = 4096;
/// Response bodies are read up to this size (the rest is not waited for).
const READ_LIMIT: usize = 64 * 1024;

/// Sends webhook POSTs over HTTP or HTTPS (rustls; the system's roots, or
/// Mozilla's when the system has none; `SSL_CERT_FILE` adds a private CA).
#[derive(Clone, Debug)]
pub struct Client {
    http: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>,
    timeout: Duration,
    refuse_private: bool,
}

impl Client {
    /// A client whose attempts time out after `timeout`, refusing internal
    /// addresses when `refuse_private` is set (see [`crate::target`]).
    pub fn new(timeout: Duration, refuse_private: bool) -> Result<Self, Error> {
        let provider = registry::ext::tls_provider();
        let builder = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider.clone())
        {
            Ok(b) => b,
            Err(_) => hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(provider)
                .map_err(|e| Error::Internal(format!("TLS: {e}")))?,
        };
        let mut http = HttpConnector::new_with_resolver(Resolver::new(refuse_private));
        http.enforce_http(false);
        let connector = builder.https_or_http().enable_http1().wrap_connector(http);
        let http =
            hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            http,
            timeout,
            refuse_private,
        })
    }

    /// POSTs `body` (the payload of event `id`) to `hook`.
    pub async fn post(&self, hook: &Webhook, id: &str, body: Body) -> Attempt {
        let headers = headers(hook, id, &body);
        let start = Instant::now();
        let send = self.send(hook, &headers, body.bytes);
        let response = match tokio::time::timeout(self.timeout, send).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {:?}", self.timeout)),
        };
        Attempt {
            request_headers: headers,
            response,
            latency: start.elapsed(),
        }
    }

    async fn send(
        &self,
        hook: &Webhook,
        headers: &BTreeMap<String, String>,
        body: Vec<u8>,
    ) -> Result<Response, String> {
        let uri = hook.endpoint().map_err(|e| e.to_string())?.uri;
        if self.refuse_private {
            crate::target::check_literal(&uri)?;
        }
        let mut request = hyper::Request::post(uri);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = self.http.request(request).await.map_err(|e| describe(&e))?;
        let (parts, body) = resp.into_parts();
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let bytes = Limited::new(body, READ_LIMIT)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_BODY)]).into_owned();
        if text.ends_with('\u{FFFD}') && bytes.len() > MAX_BODY {
            text.pop();
        }
        Ok(Response {
            status: parts.status.as_u16(),
            // hyper keeps the phrase the receiver sent when it is not the
            // status's usual one.
            reason: parts
                .extensions
                .get::<hyper::ext::ReasonPhrase>()
                .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
                .or_else(|| parts.status.canonical_reason().map(str::to_owned))
                .unwrap_or_default(),
            headers,
            body: text,
        })
    }
}

/// The headers of a delivery: `Content-Type`, `User-Agent` and (from the
/// service URI's user info) `Authorization`, each unless a custom header
/// sets it; the custom headers; and the signature headers when the hook has
/// a secret.
fn headers(hook: &Webhook, id: &str, body: &Body) -> BTreeMap<String, String> {
    let custom = |name: &str| {
        hook.custom_headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case(name))
    };
    let mut headers = BTreeMap::new();
    if !custom("content-type") {
        headers.insert("Content-Type".to_owned(), body.content_type.to_owned());
    }
    if !custom("user-agent") {
        headers.insert("User-Agent".to_owned(), USER_AGENT.to_owned());
    }
    let credentials = hook.endpoint().ok().and_then(|e| e.credentials);
    if let (Some((user, password)), false) = (credentials, custom("authorization")) {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers.insert("Authorization".to_owned(), format!("Basic {token}"));
    }
    headers.extend(hook.custom_headers.clone());
    if let Some(secret) = &hook.secret {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut signatures = vec![sign(secret, id, timestamp, &body.bytes)];
        if let (Some(old), Some(until)) = (&hook.previous_secret, hook.previous_secret_until) {
            if timestamp < until {
                signatures.push(sign(old, id, timestamp, &body.bytes));
            }
        }
        headers.insert("webhook-id".to_owned(), id.to_owned());
        headers.insert("webhook-timestamp".to_owned(), timestamp.to_string());
        headers.insert("webhook-signature".to_owned(), signatures.join(" "));
    }
    headers
}

fn describe(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. A secret of the
/// Standard Webhooks form `whsec_<base64>` is used as its decoded bytes;
/// any other secret as its UTF-8 bytes.
pub fn sign(secret: &str, id: &str, timestamp: u64, body: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|k| b64.decode(k).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", b64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_standard_webhooks_test_vector() {
        // From the Standard Webhooks specification's reference libraries.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
