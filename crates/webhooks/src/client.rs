//! One POST to a receiver: headers per the contract, optional Standard
//! Webhooks signature, no redirects, a per-attempt timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::webhook::Webhook;

/// What came back from one attempt.
#[derive(Clone, Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Its reason phrase.
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

/// Sends webhook POSTs.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    timeout: Duration,
}

impl Client {
    /// A client whose attempts time out after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, timeout })
    }

    /// POSTs `body` (the JSON payload of event `id`) to `hook`.
    pub async fn post(&self, hook: &Webhook, id: &str, body: Vec<u8>) -> Attempt {
        let mut headers = BTreeMap::new();
        if !hook
            .custom_headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            headers.insert("Content-Type".to_owned(), "application/json".to_owned());
        }
        headers.extend(hook.custom_headers.clone());
        if let Some(secret) = &hook.secret {
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut signatures = vec![sign(secret, id, timestamp, &body)];
            if let (Some(old), Some(until)) = (&hook.previous_secret, hook.previous_secret_until) {
                if timestamp < until {
                    signatures.push(sign(old, id, timestamp, &body));
                }
            }
            headers.insert("webhook-id".to_owned(), id.to_owned());
            headers.insert("webhook-timestamp".to_owned(), timestamp.to_string());
            headers.insert("webhook-signature".to_owned(), signatures.join(" "));
        }
        let mut request = self
            .http
            .post(&hook.service_uri)
            .timeout(self.timeout)
            .body(body);
        for (k, v) in &headers {
            request = request.header(k, v);
        }
        let start = Instant::now();
        let response = match request.send().await {
            Ok(resp) => Ok(read(resp).await),
            Err(e) => Err(describe(&e)),
        };
        Attempt {
            request_headers: headers,
            response,
            latency: start.elapsed(),
        }
    }
}

async fn read(resp: reqwest::Response) -> Response {
    let status = resp.status();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = resp.text().await.unwrap_or_default();
    if body.len() > MAX_BODY {
        let mut cut = MAX_BODY;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    Response {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("").to_owned(),
        headers,
        body,
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        format!("connection failed: {e}")
    } else {
        e.to_string()
    }
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
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
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
