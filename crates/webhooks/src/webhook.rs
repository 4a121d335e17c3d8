//! The webhook object of the contract, validated.

use std::collections::{BTreeMap, BTreeSet};

use registry::ext::{percent_decode, Action, RepoName, Tag};
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

/// The wire format of a webhook's deliveries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// ACR's payload as it is (the default).
    #[default]
    Acr,
    /// Extension: a CloudEvents 1.0 envelope (structured mode) whose `data`
    /// is ACR's payload (see [`crate::format`]).
    Cloudevents,
}

/// Where a webhook's deliveries go: the service URI without its user info,
/// and the credentials that user info carries (App Service's
/// `https://$app:password@app.scm.example/docker/hook`), sent as HTTP Basic.
#[derive(Debug)]
pub struct Endpoint {
    /// The request target.
    pub uri: hyper::Uri,
    /// User and password, percent-decoded.
    pub credentials: Option<(String, String)>,
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
    /// The deliveries' wire format (extension).
    #[serde(default)]
    pub format: Format,
    /// The location whose replicas' events it receives; `None`: every
    /// event, wherever it was raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl Webhook {
    /// Checks every field against the contract's rules.
    pub fn validate(&self) -> Result<(), Error> {
        let n = self.name.len();
        if !(5..=50).contains(&n) || !self.name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::Invalid("name", "5 to 50 letters and digits".into()));
        }
        self.endpoint()?;
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
        if self.location.as_deref().is_some_and(str::is_empty) {
            return Err(Error::Invalid(
                "location",
                "must not be empty (omit it for every location)".into(),
            ));
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
            "format": self.format,
            "location": self.location,
        })
    }

    /// The service URI split into the request target and the credentials of
    /// its user info.
    pub fn endpoint(&self) -> Result<Endpoint, Error> {
        let uri = &self.service_uri;
        let invalid =
            |why: &str| Error::Invalid("serviceUri", format!("{:?}: {why}", mask_uri(uri)));
        let parsed: hyper::Uri = uri
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
        let (Some(scheme @ ("http" | "https")), Some(authority)) =
            (parsed.scheme_str(), parsed.authority())
        else {
            return Err(invalid("an absolute http:// or https:// URI is required"));
        };
        if parsed.host().is_none_or(str::is_empty) {
            return Err(invalid("an absolute http:// or https:// URI is required"));
        }
        let (credentials, host) = match authority.as_str().rsplit_once('@') {
            Some((info, host)) => {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                (Some((percent_decode(user), percent_decode(password))), host)
            }
            None => (None, authority.as_str()),
        };
        let target = hyper::Uri::builder()
            .scheme(scheme)
            .authority(host)
            .path_and_query(parsed.path_and_query().map_or("/", |p| p.as_str()))
            .build()
            .map_err(|e| invalid(&e.to_string()))?;
        Ok(Endpoint {
            uri: target,
            credentials,
        })
    }

    /// The service URI with the password of its user info, if any, shown as
    /// `******` (what the delivery history records).
    pub fn masked_uri(&self) -> String {
        mask_uri(&self.service_uri)
    }

    /// The get-config view: the service URI and header values.
    pub fn config_view(&self) -> serde_json::Value {
        serde_json::json!({"serviceUri": self.service_uri, "customHeaders": self.custom_headers})
    }
}

/// `uri` with the password of its user info as `******`.
fn mask_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((info, host)) => {
            let user = info.split_once(':').map_or(info, |(u, _)| u);
            format!("{scheme}://{user}:******@{host}{tail}")
        }
        None => uri.to_owned(),
    }
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
            format: Format::Acr,
            location: None,
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
    fn user_info_becomes_credentials_and_is_masked() {
        let mut h = hook("");
        h.service_uri = "https://$app:p%40ss:w0rd@app.scm.example:8443/docker/hook?x=1".into();
        let e = h.endpoint().unwrap();
        assert_eq!(
            e.uri.to_string(),
            "https://app.scm.example:8443/docker/hook?x=1"
        );
        assert_eq!(e.credentials, Some(("$app".into(), "p@ss:w0rd".into())));
        assert_eq!(
            h.masked_uri(),
            "https://$app:******@app.scm.example:8443/docker/hook?x=1"
        );
        h.service_uri = "http://h:1".into();
        assert_eq!(h.endpoint().unwrap().credentials, None);
        assert_eq!(h.masked_uri(), "http://h:1");
        h.service_uri = "http://user:secret@".into();
        let err = h.validate().unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
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
