//! Check outcomes and the pass/fail table.

use std::fmt;

/// The strength of a spec requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A MUST: failing it fails the run.
    Must,
    /// A SHOULD: failing it is reported as a warning.
    Should,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        })
    }
}

/// Why a check did not pass: a broken MUST (FAIL) or a broken SHOULD (WARN).
#[derive(Debug, Clone)]
pub struct Finding {
    /// Which kind of requirement was broken.
    pub level: Level,
    /// Human-readable reason, including the offending request/response.
    pub reason: String,
}

impl Finding {
    /// A broken MUST.
    pub fn must(reason: impl Into<String>) -> Self {
        Self {
            level: Level::Must,
            reason: reason.into(),
        }
    }

    /// A broken SHOULD.
    pub fn should(reason: impl Into<String>) -> Self {
        Self {
            level: Level::Should,
            reason: reason.into(),
        }
    }

    /// A broken requirement of the given level.
    pub fn at(level: Level, reason: impl Into<String>) -> Self {
        Self {
            level,
            reason: reason.into(),
        }
    }
}

/// Transport errors and other plain failures are MUST failures.
impl From<String> for Finding {
    fn from(reason: String) -> Self {
        Finding::must(reason)
    }
}

/// The result of one check: `Ok` carries an optional note shown in the table.
pub type Outcome = Result<Option<String>, Finding>;

/// Final verdict of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// All assertions held.
    Pass,
    /// A MUST was broken.
    Fail,
    /// Only a SHOULD was broken.
    Warn,
}

/// One row of the report table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Spec reference (`end-N`, `code-N`) or a short tag.
    pub id: String,
    /// What was checked.
    pub description: String,
    /// Declared strength of the requirement.
    pub level: Level,
    /// Verdict.
    pub verdict: Verdict,
    /// Failure reason or pass note.
    pub detail: String,
}

/// Collected results of all checks.
#[derive(Debug, Default)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Records a check result. A MUST-level finding inside a SHOULD check is
    /// downgraded to a warning: the row's declared level caps its severity.
    pub fn record(&mut self, id: &str, description: &str, level: Level, outcome: Outcome) {
        let (verdict, detail) = match outcome {
            Ok(note) => (Verdict::Pass, note.unwrap_or_default()),
            Err(finding) => {
                let verdict = if finding.level == Level::Must && level == Level::Must {
                    Verdict::Fail
                } else {
                    Verdict::Warn
                };
                (verdict, finding.reason)
            }
        };
        self.rows.push(Row {
            id: id.to_owned(),
            description: description.to_owned(),
            level,
            verdict,
            detail,
        });
    }

    /// Number of rows with the given verdict.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
    }

    /// Writes the table and summary lines to stdout.
    pub fn print(&self) {
        let id_width = self.rows.iter().map(|r| r.id.len()).max().unwrap_or(2);
        let desc_width = self
            .rows
            .iter()
            .map(|r| r.description.chars().count())
            .max()
            .unwrap_or(11);
        println!(
            "{:<id_width$}  {:<6}  {:<6}  {:<desc_width$}  DETAIL",
            "ID", "LEVEL", "RESULT", "DESCRIPTION"
        );
        for row in &self.rows {
            let verdict = match row.verdict {
                Verdict::Pass => "PASS",
                Verdict::Fail => "FAIL",
                Verdict::Warn => "WARN",
            };
            let line = format!(
                "{:<id_width$}  {:<6}  {:<6}  {:<desc_width$}  {}",
                row.id,
                row.level.to_string(),
                verdict,
                row.description,
                row.detail
            );
            println!("{}", line.trim_end());
        }
        println!();
        println!("{} warnings (failed SHOULDs)", self.count(Verdict::Warn));
        println!(
            "{} passed, {} failed",
            self.count(Verdict::Pass),
            self.count(Verdict::Fail)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_rows_never_fail() {
        let mut report = Report::default();
        report.record("a", "x", Level::Should, Err(Finding::must("boom")));
        report.record("b", "y", Level::Must, Err(Finding::should("meh")));
        report.record("c", "z", Level::Must, Err(Finding::must("bad")));
        report.record("d", "w", Level::Must, Ok(None));
        assert_eq!(report.count(Verdict::Warn), 2);
        assert_eq!(report.count(Verdict::Fail), 1);
        assert_eq!(report.count(Verdict::Pass), 1);
    }
}
