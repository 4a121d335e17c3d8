//! A failure that repeats on every retry (a full disk, a database that is
//! down), logged when it starts, when its cause changes and when it ends,
//! not once per retry.

use std::fmt::Display;

/// The failure last logged by one retrying loop.
#[derive(Debug, Default)]
pub struct Trouble {
    last: Option<String>,
}

impl Trouble {
    /// Logs `result`'s error as `what` if it differs from the one logged
    /// last, or that the trouble ended, when it did.
    pub fn note<T, E: Display>(&mut self, what: &str, result: &Result<T, E>) {
        match (result, &self.last) {
            (Err(e), last) => {
                let cause = e.to_string();
                if last.as_deref() != Some(cause.as_str()) {
                    tracing::error!(%cause, "{what}; retrying until it works");
                    self.last = Some(cause);
                }
            }
            (Ok(_), Some(_)) => {
                tracing::info!("{what}: works again");
                self.last = None;
            }
            (Ok(_), None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_cause_until_it_clears() {
        let mut t = Trouble::default();
        t.note("x", &Err::<(), _>("disk full"));
        assert_eq!(t.last.as_deref(), Some("disk full"));
        t.note("x", &Err::<(), _>("disk full"));
        t.note("x", &Err::<(), _>("gone"));
        assert_eq!(t.last.as_deref(), Some("gone"));
        t.note("x", &Ok::<(), &str>(()));
        assert_eq!(t.last, None);
    }
}
