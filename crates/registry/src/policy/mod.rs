//! Registry policies: retention rules, immutable tags and read-only mode.
//!
//! Rules come from two sources: the configuration file (`[[retention]]`,
//! `[[immutable]]`, `read_only`), fixed while Berth runs, and the admin API
//! (`PUT /api/policies`, `PUT /api/maintenance`), stored with the metadata
//! so that every replica applies them. Every check consults both; the API
//! can neither remove nor weaken the file's.
//!
//! A repository follows the first retention rule (the file's, then the
//! API's) whose patterns match it; a tag is immutable if any immutable rule
//! matches its repository and its name.

pub mod glob;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::{duration_opt, human_opt};
use crate::kv::{Db, Tree};
use crate::Error;
use glob::Glob;

/// Which tags and untagged manifests retention removes from the
/// repositories it matches (`[[retention]]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// Repository patterns (`ci/**`).
    pub repositories: Vec<String>,
    /// Regular expressions of tags always kept (`^v\d+\.\d+\.\d+$`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_tags: Vec<String>,
    /// Keep the N most recently pushed tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_most_recent: Option<usize>,
    /// Remove tags pushed longer ago than this (and not kept otherwise).
    #[serde(
        default,
        deserialize_with = "duration_opt",
        serialize_with = "human_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_age: Option<Duration>,
    /// Remove manifests untagged for longer than this (`0s`: at once).
    #[serde(
        default,
        deserialize_with = "duration_opt",
        serialize_with = "human_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub untagged_max_age: Option<Duration>,
}

/// Tags that, once they point at a manifest, never move and are never
/// deleted (`[[immutable]]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImmutableRule {
    /// Repository patterns (`prod/**`).
    pub repositories: Vec<String>,
    /// Tag patterns (`v*`).
    pub tags: Vec<String>,
}

/// The rules of one source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Retention rules, in order.
    #[serde(default)]
    pub retention: Vec<RetentionRule>,
    /// Immutable-tag rules.
    #[serde(default)]
    pub immutable: Vec<ImmutableRule>,
}

/// A retention rule ready to apply.
#[derive(Clone, Debug)]
pub(crate) struct Retention {
    /// As written.
    pub rule: RetentionRule,
    repositories: Vec<Glob>,
    keep_tags: Vec<Regex>,
}

impl Retention {
    /// Whether a tag's name alone keeps it.
    pub(crate) fn keeps_by_name(&self, tag: &str) -> bool {
        self.keep_tags.iter().any(|r| r.is_match(tag))
    }
}

#[derive(Clone, Debug)]
struct Immutable {
    rule: ImmutableRule,
    repositories: Vec<Glob>,
    tags: Vec<Glob>,
}

/// Rules compiled for checks.
#[derive(Clone, Debug, Default)]
struct Compiled {
    retention: Vec<Retention>,
    immutable: Vec<Immutable>,
}

fn globs(patterns: &[String], what: &str) -> Result<Vec<Glob>, String> {
    if patterns.is_empty() {
        return Err(format!("{what}: at least one pattern"));
    }
    patterns
        .iter()
        .map(|p| Glob::new(p).map_err(|e| format!("{what}: {e}")))
        .collect()
}

impl Rules {
    /// Checks every pattern and expression.
    pub fn validate(&self) -> Result<(), String> {
        self.compile().map(|_| ())
    }

    fn compile(&self) -> Result<Compiled, String> {
        let retention = self
            .retention
            .iter()
            .map(|rule| {
                let keep_tags = rule
                    .keep_tags
                    .iter()
                    .map(|r| Regex::new(r).map_err(|e| format!("retention keep_tags {r:?}: {e}")))
                    .collect::<Result<_, _>>()?;
                Ok(Retention {
                    repositories: globs(&rule.repositories, "retention repositories")?,
                    keep_tags,
                    rule: rule.clone(),
                })
            })
            .collect::<Result<_, String>>()?;
        let immutable = self
            .immutable
            .iter()
            .map(|rule| {
                Ok(Immutable {
                    repositories: globs(&rule.repositories, "immutable repositories")?,
                    tags: globs(&rule.tags, "immutable tags")?,
                    rule: rule.clone(),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Compiled {
            retention,
            immutable,
        })
    }
}

/// How often a replica on a shared store reads the API's rules and flag
/// again (another replica may have changed them).
const REFRESH: Duration = Duration::from_secs(1);

/// Runs retention every `retention_interval` while there are rules (one
/// replica at a time: the run takes a lease), and on a shared store keeps
/// this replica's view of the API's policies fresh; until aborted.
pub(crate) async fn schedule(registry: std::sync::Arc<crate::Registry>) {
    let store = &registry.store;
    let interval = registry.config.retention_interval;
    let mut next_run = tokio::time::Instant::now() + interval;
    loop {
        tokio::time::sleep(REFRESH).await;
        if store.meta().db.is_shared() {
            if let Err(e) = store.policies().refresh().await {
                tracing::warn!(error = %e, "cannot read the policies again");
            }
        }
        if interval.is_zero() || tokio::time::Instant::now() < next_run {
            continue;
        }
        next_run = tokio::time::Instant::now() + interval;
        if !store.policies().has_retention() || store.policies().read_only() {
            continue;
        }
        let request = crate::events::Request {
            id: uuid::Uuid::new_v4().to_string(),
            host: registry.config.listen.clone(),
            method: "DELETE".into(),
            useragent: concat!("berth-retention/", env!("CARGO_PKG_VERSION")).into(),
        };
        match store.retention(false, &request).await {
            Ok(report) => tracing::info!(
                tags = report.tags_removed.len(),
                manifests = report.manifests_removed.len(),
                skipped = report.skipped,
                "retention ran"
            ),
            Err(Error::TooManyRequests(_)) => {}
            Err(e) => tracing::error!(error = %e, "retention failed"),
        }
    }
}

/// The key of the API's rules and of its read-only flag in the tree.
const RULES: &[u8] = b"rules";
const READ_ONLY: &[u8] = b"read_only";

/// The policies in force. Cloning is not needed: the store shares one.
#[derive(Debug)]
pub(crate) struct Policies {
    file: Compiled,
    file_rules: Rules,
    file_read_only: bool,
    api: RwLock<(Rules, Compiled)>,
    api_read_only: AtomicBool,
    db: Db,
    tree: Tree,
}

impl Policies {
    /// The file's rules (`file`, `read_only`) and the API's, as stored in
    /// `db`.
    pub(crate) async fn open(db: &Db, file: Rules, read_only: bool) -> Result<Self, Error> {
        let compiled = file.compile().map_err(Error::Config)?;
        let policies = Self {
            file: compiled,
            file_rules: file,
            file_read_only: read_only,
            api: RwLock::default(),
            api_read_only: AtomicBool::new(false),
            tree: db.tree("policies")?,
            db: db.clone(),
        };
        policies.refresh().await?;
        Ok(policies)
    }

    /// Reads the API's rules and flag again (another replica may have
    /// changed them).
    pub(crate) async fn refresh(&self) -> Result<(), Error> {
        let rules: Rules = self.tree.get_json(RULES).await?.unwrap_or_default();
        let compiled = rules.compile().map_err(Error::internal)?;
        *self.api.write().unwrap_or_else(|p| p.into_inner()) = (rules, compiled);
        let on: bool = self.tree.get_json(READ_ONLY).await?.unwrap_or(false);
        self.api_read_only.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Replaces the API's rules.
    pub(crate) async fn set_rules(&self, rules: Rules) -> Result<(), Error> {
        let compiled = rules.compile().map_err(Error::Invalid)?;
        self.tree
            .insert(RULES, &serde_json::to_vec(&rules)?)
            .await?;
        self.db.flush().await?;
        *self.api.write().unwrap_or_else(|p| p.into_inner()) = (rules, compiled);
        Ok(())
    }

    /// Turns the API's read-only mode on or off.
    pub(crate) async fn set_read_only(&self, on: bool) -> Result<(), Error> {
        self.tree
            .insert(READ_ONLY, &serde_json::to_vec(&on)?)
            .await?;
        self.db.flush().await?;
        self.api_read_only.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Whether writes are refused.
    pub(crate) fn read_only(&self) -> bool {
        self.file_read_only || self.api_read_only.load(Ordering::Relaxed)
    }

    /// The read-only state as the API shows it.
    pub(crate) fn maintenance(&self) -> Value {
        let source = match (
            self.file_read_only,
            self.api_read_only.load(Ordering::Relaxed),
        ) {
            (true, _) => Some("configuration"),
            (false, true) => Some("api"),
            (false, false) => None,
        };
        json!({"readOnly": self.read_only(), "source": source})
    }

    /// Every rule in force, with where it comes from.
    pub(crate) fn view(&self) -> Value {
        let api = self.api.read().unwrap_or_else(|p| p.into_inner());
        let with_source = |rules: &Rules, source: &str| {
            let mut v = serde_json::to_value(rules).unwrap_or_default();
            for list in ["retention", "immutable"] {
                for rule in v[list].as_array_mut().into_iter().flatten() {
                    rule["source"] = json!(source);
                }
            }
            v
        };
        let (file, from_api) = (
            with_source(&self.file_rules, "configuration"),
            with_source(&api.0, "api"),
        );
        let join = |list: &str| {
            let mut all = file[list].as_array().cloned().unwrap_or_default();
            all.extend(from_api[list].as_array().cloned().unwrap_or_default());
            Value::Array(all)
        };
        json!({
            "retention": join("retention"),
            "immutable": join("immutable"),
            "maintenance": self.maintenance(),
        })
    }

    /// The immutable rule that holds `repo:tag`, described, if any.
    pub(crate) fn immutable(&self, repo: &str, tag: &str) -> Option<String> {
        let api = self.api.read().unwrap_or_else(|p| p.into_inner());
        self.file
            .immutable
            .iter()
            .chain(api.1.immutable.iter())
            .find(|r| {
                r.repositories.iter().any(|g| g.matches(repo))
                    && r.tags.iter().any(|g| g.matches(tag))
            })
            .map(|r| {
                format!(
                    "repositories {:?}, tags {:?}",
                    r.rule.repositories, r.rule.tags
                )
            })
    }

    /// The retention rule `repo` follows, if any.
    pub(crate) fn retention(&self, repo: &str) -> Option<Retention> {
        let api = self.api.read().unwrap_or_else(|p| p.into_inner());
        self.file
            .retention
            .iter()
            .chain(api.1.retention.iter())
            .find(|r| r.repositories.iter().any(|g| g.matches(repo)))
            .cloned()
    }

    /// Whether any retention rule exists.
    pub(crate) fn has_retention(&self) -> bool {
        !self.file.retention.is_empty()
            || !self
                .api
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .1
                .retention
                .is_empty()
    }
}
