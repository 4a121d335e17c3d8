//! What to do after an attempt: the pure decision and the backoff.

use std::time::Duration;

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: done.
    Delivered,
    /// Try again after this long.
    Retry(Duration),
    /// Stop: attempts or age exhausted.
    GiveUp,
    /// Stop: the receiver refused the delivery for good (see
    /// [`PERMANENT`]).
    Refused,
}

impl Outcome {
    /// How the history lists it.
    pub fn listed(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry(_) => "retrying",
            Self::GiveUp | Self::Refused => "failed",
        }
    }

    /// How `/metrics` counts it.
    pub fn counted(&self) -> &'static str {
        match self {
            Self::Refused => "refused",
            other => other.listed(),
        }
    }
}

/// Statuses that say the receiver will never take this delivery: it is
/// malformed for it, unauthorized, or unwanted. ACR never retries a
/// delivery and Event Grid does not retry 400, 401, 403 or 413; receivers
/// are written assuming so (Keel answers 400 to a push without a tag).
/// 408, 425, 429 and every 5xx are retried.
pub const PERMANENT: [u16; 9] = [400, 401, 403, 404, 405, 410, 413, 415, 422];

/// Retry settings.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Age of a delivery after which it is not retried.
    pub max_age: Duration,
    /// First backoff; doubles each attempt.
    pub base: Duration,
    /// Largest backoff (also caps `Retry-After`).
    pub cap: Duration,
    /// Retry [`PERMANENT`] refusals too, like every other non-2xx.
    pub retry_client_errors: bool,
}

impl Policy {
    /// Decides after attempt number `attempts` (1-based) of a delivery that is
    /// `age` old. `status` is `None` when there was no response (timeout,
    /// refused); `retry_after` is the response's `Retry-After`, if any.
    pub fn classify(
        &self,
        status: Option<u16>,
        retry_after: Option<Duration>,
        attempts: u32,
        age: Duration,
    ) -> Outcome {
        if status.is_some_and(|s| (200..300).contains(&s)) {
            return Outcome::Delivered;
        }
        if status.is_some_and(|s| PERMANENT.contains(&s)) && !self.retry_client_errors {
            return Outcome::Refused;
        }
        if attempts >= self.max_attempts || age >= self.max_age {
            return Outcome::GiveUp;
        }
        let delay =
            retry_after.map_or_else(|| self.backoff(attempts, jitter()), |d| d.min(self.cap));
        Outcome::Retry(delay)
    }

    /// `base * 2^(attempts-1)`, capped, with "equal jitter": half fixed, half
    /// random (`jitter` in [0, 1)), so retries spread out but never collapse
    /// to zero.
    pub fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        let exp = self.base.saturating_mul(
            1u32.checked_shl(attempts.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        let d = exp.min(self.cap);
        d / 2 + d.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (IMF-fixdate, or
/// RFC 3339 as some receivers send).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = humantime::parse_rfc3339_weak(value)
        .ok()
        .or_else(|| httpdate::parse_http_date(value).ok())?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// A random number in [0, 1).
fn jitter() -> f64 {
    fastrand::f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            max_attempts: 5,
            max_age: Duration::from_secs(3600),
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            retry_client_errors: false,
        }
    }

    #[test]
    fn classifies_statuses() {
        let p = policy();
        let age = Duration::ZERO;
        for s in [200, 201, 204, 299] {
            assert_eq!(p.classify(Some(s), None, 1, age), Outcome::Delivered, "{s}");
        }
        for s in [
            Some(301),
            Some(302),
            Some(408),
            Some(409),
            Some(425),
            Some(429),
            Some(500),
            Some(501),
            Some(503),
            None,
        ] {
            assert!(
                matches!(p.classify(s, None, 1, age), Outcome::Retry(_)),
                "{s:?}"
            );
        }
        for s in PERMANENT {
            assert_eq!(p.classify(Some(s), None, 1, age), Outcome::Refused, "{s}");
            assert_eq!(Outcome::Refused.listed(), "failed");
        }
        let retrying = Policy {
            retry_client_errors: true,
            ..policy()
        };
        for s in PERMANENT {
            assert!(matches!(
                retrying.classify(Some(s), None, 1, age),
                Outcome::Retry(_)
            ));
        }
        assert_eq!(p.classify(Some(500), None, 5, age), Outcome::GiveUp);
        assert_eq!(
            p.classify(None, None, 1, Duration::from_secs(3600)),
            Outcome::GiveUp
        );
        assert_eq!(
            p.classify(Some(503), Some(Duration::from_secs(7)), 1, age),
            Outcome::Retry(Duration::from_secs(7))
        );
        assert_eq!(
            p.classify(Some(503), Some(Duration::from_secs(999)), 1, age),
            Outcome::Retry(Duration::from_secs(60))
        );
    }

    #[test]
    fn backoff_grows_to_its_cap_and_never_decreases() {
        let p = policy();
        let fixed: Vec<_> = (1..=9).map(|a| p.backoff(a, 0.0).as_secs_f64()).collect();
        assert_eq!(fixed, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        assert_eq!(p.backoff(40, 0.999_999).as_secs(), 59);
        for a in 1..50 {
            assert!(p.backoff(a + 1, 0.0) >= p.backoff(a, 0.0));
            assert!(p.backoff(a, jitter()) <= p.cap);
        }
    }

    #[test]
    fn parses_retry_after() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert!(parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT")
            .is_some_and(|d| d.as_secs() > 1_000_000));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
