//! Thin blocking HTTP helper around `ureq`.
//!
//! Every response is captured whole (status, headers, body) so checks can
//! assert on it, and so failures can be reported with the exact request and
//! response. The client also audits every response against the spec's
//! cross-cutting rules (JSON error body shape, `Warning` header format); the
//! violations are read back by the final audit checks.

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::time::Duration;

/// Largest response body read into memory.
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// Characters of a response body quoted in failure messages.
const EXCERPT_LEN: usize = 300;

/// Request headers echoed in failure messages.
const ECHOED_HEADERS: [&str; 4] = ["Content-Type", "Content-Range", "Range", "Accept"];

/// Error codes allowed by the spec's "Error Codes" table.
pub const ERROR_CODES: [&str; 14] = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
];

/// Cross-cutting response rules audited on every response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// JSON 4xx bodies must be `{"errors":[{"code",...}]}` with codes from the table.
    ErrorBody,
    /// `Warning` headers must be `299 - "<text>"`.
    WarningHeader,
}

/// A fully read HTTP response plus a description of the request that produced it.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// All response headers as (lower-cased name, value) pairs, in order.
    pub headers: Vec<(String, String)>,
    /// The response body.
    pub body: Vec<u8>,
    /// One-line description of the request (method, URL, notable headers).
    pub request: String,
    /// Set if the body could not be read completely (e.g. a short body).
    pub body_error: Option<String>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body parsed as JSON, or a description of why it is not JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("body is not JSON ({e}); {}", self.describe()))
    }

    /// The error codes in a spec-shaped JSON error body (empty if none).
    pub fn error_codes(&self) -> Vec<String> {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&self.body) else {
            return Vec::new();
        };
        value["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["code"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A one-line summary of request and response, for failure reasons.
    pub fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let mut excerpt: String = text.chars().take(EXCERPT_LEN).collect();
        if text.chars().count() > EXCERPT_LEN {
            excerpt.push('…');
        }
        let excerpt = excerpt.replace(['\n', '\r'], " ");
        let mut out = if excerpt.trim().is_empty() {
            format!("{} -> {} (empty body)", self.request, self.status)
        } else {
            format!(
                "{} -> {} body: {}",
                self.request,
                self.status,
                excerpt.trim()
            )
        };
        if let Some(error) = &self.body_error {
            out.push_str(&format!(" [body read error: {error}]"));
        }
        out
    }
}

/// Blocking HTTP client bound to one registry, served by one or more base
/// URLs (replicas of one registry): requests take them in turn.
pub struct Client {
    bases: Vec<String>,
    turn: Cell<usize>,
    agent: ureq::Agent,
    violations: RefCell<Vec<(Rule, String)>>,
}

impl Client {
    /// Creates a client for the registry at `bases` (e.g.
    /// `http://127.0.0.1:5000`); with several, each request goes to the next.
    pub fn new(bases: &[String]) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(120))
            .redirects(5)
            .build();
        Self {
            bases: bases
                .iter()
                .map(|b| b.trim_end_matches('/').to_owned())
                .collect(),
            turn: Cell::new(0),
            agent,
            violations: RefCell::new(Vec::new()),
        }
    }

    /// Turns a path (`/v2/...`) or a possibly relative `Location` value into
    /// an absolute URL on the next base in turn. An absolute URL on one of
    /// the bases moves to the next one too, as behind a load balancer; any
    /// other absolute URL is kept.
    pub fn url(&self, path_or_url: &str) -> String {
        let path = match self
            .bases
            .iter()
            .find_map(|b| path_or_url.strip_prefix(b.as_str()))
        {
            Some(path) => path,
            None if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") => {
                return path_or_url.to_owned()
            }
            None => path_or_url,
        };
        let turn = self.turn.get();
        self.turn.set(turn.wrapping_add(1));
        let base = &self.bases[turn % self.bases.len()];
        if path.starts_with('/') {
            format!("{base}{path}")
        } else {
            format!("{base}/{path}")
        }
    }

    /// Sends a request and reads the whole response. Non-2xx statuses are
    /// returned as normal responses; only transport failures are errors.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, String> {
        let url = self.url(url);
        let mut request = self.agent.request(method, &url);
        let mut echoed = Vec::new();
        for (name, value) in headers {
            request = request.set(name, value);
            if ECHOED_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
                echoed.push(format!("{name}: {value}"));
            }
        }
        if let Some(body) = body {
            echoed.push(format!("{} body bytes", body.len()));
        }
        let description = if echoed.is_empty() {
            format!("{method} {url}")
        } else {
            format!("{method} {url} [{}]", echoed.join("; "))
        };
        let result = match body {
            Some(body) => request.send_bytes(body),
            None => request.call(),
        };
        let raw = match result {
            Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp,
            Err(ureq::Error::Transport(e)) => return Err(format!("{description}: {e}")),
        };
        let response = read_response(raw, description);
        self.audit(&response);
        Ok(response)
    }

    /// `GET` with optional extra headers.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response, String> {
        self.send("GET", url, headers, None)
    }

    /// `HEAD` with no extra headers.
    pub fn head(&self, url: &str) -> Result<Response, String> {
        self.send("HEAD", url, &[], None)
    }

    /// `DELETE` with no body.
    pub fn delete(&self, url: &str) -> Result<Response, String> {
        self.send("DELETE", url, &[], None)
    }

    /// Violations of `rule` seen so far.
    pub fn violations(&self, rule: Rule) -> Vec<String> {
        self.violations
            .borrow()
            .iter()
            .filter(|(r, _)| *r == rule)
            .map(|(_, message)| message.clone())
            .collect()
    }

    /// Records violations of the error-body and `Warning` header rules.
    fn audit(&self, response: &Response) {
        let mut found = Vec::new();
        if (400..500).contains(&response.status) {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&response.body) {
                if let Err(problem) = check_error_body(&value) {
                    found.push((
                        Rule::ErrorBody,
                        format!("{problem}: {}", response.describe()),
                    ));
                }
            }
        }
        for warning in response.header_all("Warning") {
            if !is_valid_warning(warning) {
                found.push((
                    Rule::WarningHeader,
                    format!("malformed Warning header {warning:?}: {}", response.request),
                ));
            }
        }
        self.violations.borrow_mut().extend(found);
    }
}

/// Reads status, headers and body out of a `ureq` response.
fn read_response(raw: ureq::Response, request: String) -> Response {
    let status = raw.status();
    let names = raw.headers_names();
    let mut headers = Vec::new();
    for name in names {
        if headers.iter().any(|(n, _): &(String, String)| *n == name) {
            continue;
        }
        for value in raw.all(&name) {
            headers.push((name.clone(), value.to_owned()));
        }
    }
    let mut body = Vec::new();
    let body_error = raw
        .into_reader()
        .take(MAX_BODY)
        .read_to_end(&mut body)
        .err()
        .map(|e| e.to_string());
    Response {
        status,
        headers,
        body,
        request,
        body_error,
    }
}

/// Validates the `{"errors":[{"code","message","detail"}]}` shape.
fn check_error_body(value: &serde_json::Value) -> Result<(), String> {
    let errors = value["errors"]
        .as_array()
        .ok_or("JSON error body lacks an \"errors\" array")?;
    for error in errors {
        let code = error["code"]
            .as_str()
            .ok_or("error entry lacks a string \"code\"")?;
        if !code.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            return Err(format!("error code {code:?} is not uppercase/underscore"));
        }
        if !ERROR_CODES.contains(&code) {
            return Err(format!("error code {code:?} is not in the spec's table"));
        }
        if !error["message"].is_null() && !error["message"].is_string() {
            return Err("error \"message\" is not a string".to_owned());
        }
    }
    Ok(())
}

/// `Warning` headers must be `299 - "text"` with no warn-date.
fn is_valid_warning(value: &str) -> bool {
    let Some(text) = value
        .strip_prefix("299 - \"")
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return false;
    };
    let mut escaped = false;
    for c in text.chars() {
        match (c, escaped) {
            ('"', false) => return false,
            ('\\', false) => escaped = true,
            _ => escaped = false,
        }
    }
    true
}

/// Percent-encodes a query parameter value.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Appends `query` to a URL that may already carry a query string.
pub fn with_query(url: &str, query: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_media_types() {
        assert_eq!(
            encode("application/vnd.x+json"),
            "application%2Fvnd.x%2Bjson"
        );
    }

    #[test]
    fn appends_queries() {
        assert_eq!(with_query("/a", "b=1"), "/a?b=1");
        assert_eq!(with_query("/a?x=y", "b=1"), "/a?x=y&b=1");
    }

    #[test]
    fn validates_error_bodies() {
        let good = serde_json::json!({"errors":[{"code":"BLOB_UNKNOWN","message":"m"}]});
        assert!(check_error_body(&good).is_ok());
        let bad = serde_json::json!({"errors":[{"code":"blob_unknown"}]});
        assert!(check_error_body(&bad).is_err());
        assert!(check_error_body(&serde_json::json!({"error":"x"})).is_err());
    }

    #[test]
    fn validates_warnings() {
        assert!(is_valid_warning("299 - \"deprecated\""));
        assert!(!is_valid_warning("199 - \"x\""));
        assert!(!is_valid_warning(
            "299 - \"x\" \"Wed, 21 Oct 2015 07:28:00 GMT\""
        ));
    }
}
