//! The HTTP side of the verbs that talk to a running registry (`webhook`,
//! `events`), and the two ways they print a reply: a table or JSON.
//!
//! `https://` registries are verified against the system's roots, which
//! `SSL_CERT_FILE` or `SSL_CERT_DIR` replace, as for curl and openssl: that
//! is how a private CA is trusted.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// Flags shared by every verb that talks to a running registry.
#[derive(Debug, clap::Args)]
pub struct RemoteArgs {
    /// Base URL of the registry (`http://` is assumed when no scheme is given).
    #[arg(
        long,
        env = "BERTH_REGISTRY",
        default_value = "http://127.0.0.1:5000",
        global = true
    )]
    pub registry: String,
    /// Output format: human-readable tables, or the API's JSON.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

/// How a verb prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns or `key: value` lines.
    Table,
    /// The API's JSON, pretty-printed.
    Json,
}

/// A client of one registry's admin API. With `BERTH_USERNAME` and
/// `BERTH_PASSWORD` set it sends them (Basic authentication); they are read
/// from the environment only, never from flags that `ps` would show.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
}

impl Client {
    /// A client for the registry at `registry` (`http://HOST:PORT`).
    pub fn new(registry: &str) -> Result<Self, String> {
        let trimmed = registry.trim().trim_end_matches('/');
        let base = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("http://{trimmed}")
        };
        let mut agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .redirects(0);
        if base.starts_with("https://") {
            agent = agent.tls_config(tls_config()?);
        }
        let agent = agent.build();
        let authorization = match (
            std::env::var("BERTH_USERNAME"),
            std::env::var("BERTH_PASSWORD"),
        ) {
            (Ok(user), Ok(password)) => {
                use base64::Engine as _;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {token}"))
            }
            _ => None,
        };
        Ok(Self {
            agent,
            base,
            authorization,
        })
    }

    /// `GET path` with query parameters.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, String> {
        self.send("GET", path, query, None)
    }

    /// `method path` with an optional JSON body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.request(method, &url);
        for (k, v) in query {
            req = req.query(k, v);
        }
        if let Some(a) = &self.authorization {
            req = req.set("Authorization", a);
        }
        let result = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        match result {
            Ok(resp) => {
                let text = read(resp)?;
                serde_json::from_str(&text)
                    .map_err(|e| format!("unexpected reply from {url} ({e}): {}", snippet(&text)))
            }
            Err(ureq::Error::Status(401, resp)) => Err(format!(
                "{} (set BERTH_USERNAME and BERTH_PASSWORD)",
                api_error(401, &read(resp)?)
            )),
            Err(ureq::Error::Status(code, resp)) => Err(api_error(code, &read(resp)?)),
            Err(ureq::Error::Transport(t)) => {
                let detail = [
                    t.message().map(str::to_owned),
                    std::error::Error::source(&t).map(ToString::to_string),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
                Err(format!(
                    "cannot reach the registry at {}: {}: {detail}",
                    self.base,
                    t.kind()
                ))
            }
        }
    }
}

/// TLS settings: the system's roots (or those `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` name), with the same crypto provider as the server.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "skipping unreadable trust roots");
    }
    roots.add_parsable_certificates(found.certs);
    let config = rustls::ClientConfig::builder_with_provider(registry::tls_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The body of a response as text.
fn read(resp: ureq::Response) -> Result<String, String> {
    let mut text = String::new();
    resp.into_reader()
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the registry's reply: {e}"))?;
    Ok(text)
}

/// The message of an error reply: the webhooks API's `{"error":{message}}`,
/// the registry's `{"errors":[{message}]}`, or the raw body.
fn api_error(code: u16, body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v["error"]["message"]
            .as_str()
            .or_else(|| v["errors"][0]["message"].as_str())
            .map(str::to_owned)
    });
    match message {
        Some(m) => m,
        None if body.trim().is_empty() => format!("the registry answered HTTP {code}"),
        None => format!("the registry answered HTTP {code}: {}", snippet(body)),
    }
}

/// At most 200 characters of `text`, for error messages.
fn snippet(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &t[..i]),
        None => t.to_owned(),
    }
}

/// Percent-encodes one path segment (everything but unreserved characters).
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Writes `text` to stdout; a closed pipe (`berth ... | head`) is not an error.
pub fn emit(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write the output: {e}"))
        }
        _ => Ok(()),
    }
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    emit(&format!("{text}\n"))
}

/// A JSON value as a table cell: strings bare, arrays comma-separated,
/// null empty.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Rows under upper-case headers, columns aligned, like `az -o table`.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut text = line(&headers.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    text.push_str(&line(
        &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
    ));
    for row in rows {
        text.push_str(&line(row));
    }
    text
}

/// `key: value` lines with the values aligned.
pub fn pairs(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}\n",
                format!("{:<width$} {v}", format!("{k}:")).trim_end()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_message() {
        let webhooks =
            r#"{"error":{"code":"WEBHOOK_NOT_FOUND","message":"no webhook named \"x\""}}"#;
        assert_eq!(api_error(404, webhooks), r#"no webhook named "x""#);
        let registry = r#"{"errors":[{"code":"UNSUPPORTED","message":"bad since"}]}"#;
        assert_eq!(api_error(400, registry), "bad since");
        assert_eq!(api_error(502, ""), "the registry answered HTTP 502");
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("hook01"), "hook01");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}
