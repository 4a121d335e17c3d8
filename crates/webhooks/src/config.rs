//! Delivery settings. Every field has a default, documented here and in the
//! README.

use std::time::Duration;

use registry::ext::durations;
use serde::{Deserialize, Serialize};

use crate::retry::Policy;

/// How deliveries behave (the `[delivery]` table of the configuration file).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Per-attempt timeout (default `10s`).
    #[serde(
        deserialize_with = "durations::read",
        serialize_with = "durations::write"
    )]
    pub timeout: Duration,
    /// Attempts before a delivery is marked failed (default 10).
    pub max_attempts: u32,
    /// Age after which a delivery is not retried (default `24h`).
    #[serde(
        deserialize_with = "durations::read",
        serialize_with = "durations::write"
    )]
    pub max_age: Duration,
    /// First retry delay, doubling each attempt (default `1s`).
    #[serde(
        deserialize_with = "durations::read",
        serialize_with = "durations::write"
    )]
    pub backoff_base: Duration,
    /// Largest retry delay, also the cap on `Retry-After` (default `5m`).
    #[serde(
        deserialize_with = "durations::read",
        serialize_with = "durations::write"
    )]
    pub backoff_cap: Duration,
    /// Pending deliveries per webhook; past it a new event is recorded as
    /// dropped in that webhook's history (default 10000).
    pub queue_limit: u64,
    /// Delivery history entries kept per webhook (default 500).
    pub history_limit: usize,
    /// Webhooks the registry may hold (default 500, ACR's largest tier).
    pub max_webhooks: usize,
    /// How long a rotated-out signing secret keeps signing (default `24h`).
    #[serde(
        deserialize_with = "durations::read",
        serialize_with = "durations::write"
    )]
    pub secret_rotation_grace: Duration,
    /// Refuse receivers at loopback, private, link-local (cloud metadata)
    /// and similar internal addresses, checked after DNS resolution, for
    /// deliveries and pings alike (default off).
    pub refuse_private_targets: bool,
    /// Retry the statuses that end a delivery at once (400, 401, 403, 404,
    /// 405, 410, 413, 415, 422) like any other failure (default off).
    pub retry_client_errors: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_attempts: 10,
            max_age: Duration::from_secs(24 * 3600),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            queue_limit: 10_000,
            history_limit: 500,
            max_webhooks: 500,
            secret_rotation_grace: Duration::from_secs(24 * 3600),
            refuse_private_targets: false,
            retry_client_errors: false,
        }
    }
}

impl Config {
    /// The retry policy these settings describe.
    pub fn policy(&self) -> Policy {
        Policy {
            max_attempts: self.max_attempts,
            max_age: self.max_age,
            base: self.backoff_base,
            cap: self.backoff_cap,
            retry_client_errors: self.retry_client_errors,
        }
    }
}
