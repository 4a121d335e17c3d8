//! The webhook object of the contract, validated.

use std::collections::{BTreeMap, BTreeSet};

use registry::ext::Action;
use registry::ext::{RepoName, Tag};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Whether a webhook receives events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It receives matching events (the default).
    #[default]
    Enabled,
    /// It receives nothing.
    Disabled,
}

/// A webhook as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// 5 to 50 letters and digits; unique.
    pub name: String,
    /// Where events are POSTed.
    pub service_uri: String,
    /// Sent with every POST; values are secrets, shown only by get-config.
    #[serde(default)]
    pub custom_headers: BTreeMap<String, String>,
    /// Which actions it receives.
    pub actions: BTreeSet<Action>,
    /// Enabled or disabled.
    #[serde(default)]
    pub status: Status,
    /// Empty (everything), `repo:tag`, `repo:*`, or `repo` (= `repo:latest`).
    #[serde(default)]
    pub scope: String,
    /// Signing secret (extension): Standard Webhooks headers when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The secret replaced by the last rotation, still used to sign until
    /// `previous_secret_until` (unix seconds) so receivers can roll over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<String>,
    /// See `previous_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_until: Option<u64>,
}

impl Webhook {
    /// Checks every field against the contract's rules.
    pub fn validate(&self) -> Result<(), Error> {
        let n = self.name.len();
        if !(5..=50).contains(&n) || !self.name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::Invalid("name", "5 to 50 letters and digits".into()));
        }
        validate_uri(&self.service_uri)?;
        if self.actions.is_empty() {
            return Err(Error::Invalid(
                "actions",
                "at least one of push, delete, chart_push, chart_delete, quarantine".into(),
            ));
        }
        validate_scope(&self.scope)?;
        for (k, v) in &self.custom_headers {
            let name_ok = hyper::header::HeaderName::from_bytes(k.as_bytes()).is_ok();
            let value_ok = hyper::header::HeaderValue::from_str(v).is_ok();
            if !name_ok || !value_ok {
                return Err(Error::Invalid(
                    "customHeaders",
                    format!("{k:?} is not a valid HTTP header"),
                ));
            }
        }
        if self.secret.as_deref().is_some_and(str::is_empty) {
            return Err(Error::Invalid("secret", "must not be empty".into()));
        }
        Ok(())
    }

    /// The view `list` and `show` return: no service URI, no header values,
    /// no secrets (the URI often carries a token too).
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "actions": self.actions,
            "status": self.status,
            "scope": self.scope,
            "customHeaders": self.custom_headers.keys().collect::<Vec<_>>(),
            "signed": self.secret.is_some(),
        })
    }

    /// The get-config view: the service URI and header values.
    pub fn config_view(&self) -> serde_json::Value {
        serde_json::json!({"serviceUri": self.service_uri, "customHeaders": self.custom_headers})
    }
}

fn validate_uri(uri: &str) -> Result<(), Error> {
    let invalid = |why: &str| Error::Invalid("serviceUri", format!("{uri:?}: {why}"));
    let parsed: hyper::Uri = uri
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
    let scheme_ok = matches!(parsed.scheme_str(), Some("http" | "https"));
    if !scheme_ok || parsed.host().is_none_or(str::is_empty) {
        return Err(invalid("an absolute http:// or https:// URI is required"));
    }
    Ok(())
}

fn validate_scope(scope: &str) -> Result<(), Error> {
    if scope.is_empty() {
        return Ok(());
    }
    let (repo, tag) = scope.split_once(':').unwrap_or((scope, "latest"));
    let ok = RepoName::parse(repo).is_some() && (tag == "*" || Tag::parse(tag).is_some());
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(
            "scope",
            format!("{scope:?}: expected repository, repository:tag or repository:*"),
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hook(scope: &str) -> Webhook {
        Webhook {
            name: "hook01".into(),
            service_uri: "http://127.0.0.1:9/x".into(),
            custom_headers: BTreeMap::from([("X-Token".into(), "abc".into())]),
            actions: BTreeSet::from([Action::Push]),
            status: Status::Enabled,
            scope: scope.into(),
            secret: None,
            previous_secret: None,
            previous_secret_until: None,
        }
    }

    #[test]
    fn validates_the_contract_rules() {
        assert!(hook("").validate().is_ok());
        assert!(hook("repo").validate().is_ok());
        assert!(hook("a/b:*").validate().is_ok());
        assert!(hook("a/b:v1.0").validate().is_ok());
        for bad in ["Repo", "a:b:c", "a:", ":x", "a/../b:*"] {
            assert!(hook(bad).validate().is_err(), "{bad}");
        }
        let mut h = hook("");
        h.name = "abcd".into();
        assert!(h.validate().is_err());
        h.name = "abcd5".into();
        assert!(h.validate().is_ok());
        h.name = "a".repeat(50);
        assert!(h.validate().is_ok());
        h.name = "a".repeat(51);
        assert!(h.validate().is_err());
        h.name = "hook_01".into();
        assert!(h.validate().is_err());
        let mut h = hook("");
        h.service_uri = "ftp://x/y".into();
        assert!(h.validate().is_err());
        h.service_uri = "/relative".into();
        assert!(h.validate().is_err());
        let mut h = hook("");
        h.actions.clear();
        assert!(h.validate().is_err());
        let mut h = hook("");
        h.custom_headers.insert("Bad Header".into(), "v".into());
        assert!(h.validate().is_err());
    }

    #[test]
    fn summaries_hide_secrets() {
        let mut h = hook("");
        h.secret = Some("s3cret".into());
        let text = h.summary().to_string();
        assert!(!text.contains("abc") && !text.contains("s3cret") && !text.contains("127.0.0.1"));
        assert!(h.config_view().to_string().contains("abc"));
    }
}
