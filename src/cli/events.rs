//! `berth events`: read the registry's event log (`GET /api/events`), or wait
//! until enough matching events have happened (for CI pipelines).

use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use super::client::{cell, emit, print_json, table, Client, Output, RemoteArgs};
use super::webhook::ACTIONS;

/// How often `--wait-for` polls the log.
const POLL: Duration = Duration::from_millis(100);

/// Flags of `berth events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// Only events of this action.
    #[arg(long, value_parser = ACTIONS)]
    action: Option<String>,
    /// Only events of this repository.
    #[arg(long)]
    repository: Option<String>,
    /// Only events at or after this time: RFC 3339 (`2024-05-01T12:00:00Z`)
    /// or a duration ago (`10m`).
    #[arg(long, value_parser = parse_since)]
    since: Option<String>,
    /// Wait until this many matching events have happened, then print them.
    #[arg(long)]
    wait_for: Option<usize>,
    /// How long `--wait-for` waits (e.g. `30s`, `2m`) before failing.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// Runs `berth events`.
pub fn run(args: EventsArgs) -> Result<(), String> {
    let client = Client::new(&args.remote.registry)?;
    let mut log = Log::default();
    match args.wait_for {
        None => while log.next_page(&client, &args)? {},
        Some(want) => {
            let deadline = Instant::now() + args.timeout;
            loop {
                while log.next_page(&client, &args)? {}
                if log.events.len() >= want {
                    break;
                }
                if Instant::now() >= deadline {
                    print(args.remote.output, &log)?;
                    return Err(format!(
                        "saw {} of {want} {} within {}",
                        log.events.len(),
                        describe(&args),
                        humantime::format_duration(args.timeout)
                    ));
                }
                std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
            }
        }
    }
    print(args.remote.output, &log)
}

/// The matching events read so far and where the next read starts.
#[derive(Debug, Default)]
struct Log {
    events: Vec<Value>,
    last: u64,
}

impl Log {
    /// Reads one page after `last`; true when it held events (so there may
    /// be more).
    fn next_page(&mut self, client: &Client, args: &EventsArgs) -> Result<bool, String> {
        let mut query = vec![("after", self.last.to_string())];
        if let Some(a) = &args.action {
            query.push(("action", a.clone()));
        }
        if let Some(r) = &args.repository {
            query.push(("repository", r.clone()));
        }
        if let Some(s) = &args.since {
            query.push(("since", s.clone()));
        }
        let mut page = client.get("/api/events", &query)?;
        if let Some(last) = page["last"].as_u64() {
            self.last = self.last.max(last);
        }
        match page["events"].take() {
            Value::Array(items) if !items.is_empty() => {
                self.events.extend(items);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// `push events for repository app since ...`, for the timeout message.
fn describe(args: &EventsArgs) -> String {
    let mut s = match &args.action {
        Some(a) => format!("{a} events"),
        None => "events".to_owned(),
    };
    if let Some(r) = &args.repository {
        s.push_str(&format!(" for repository {r}"));
    }
    if let Some(t) = &args.since {
        s.push_str(&format!(" since {t}"));
    }
    s
}

/// Prints the events as a table, or as the API's JSON (all pages merged).
fn print(out: Output, log: &Log) -> Result<(), String> {
    if out == Output::Json {
        return print_json(&json!({"events": log.events, "last": log.last}));
    }
    let rows: Vec<Vec<String>> = log
        .events
        .iter()
        .map(|e| {
            vec![
                cell(&e["seq"]),
                cell(&e["timestamp"]),
                cell(&e["action"]),
                cell(&e["target"]["repository"]),
                cell(&e["target"]["tag"]),
                cell(&e["target"]["digest"]),
            ]
        })
        .collect();
    let headers = ["SEQ", "TIMESTAMP", "ACTION", "REPOSITORY", "TAG", "DIGEST"];
    emit(&table(&headers, &rows))
}

/// `--since`: an RFC 3339 timestamp as given, or a duration ago as RFC 3339.
fn parse_since(s: &str) -> Result<String, String> {
    if humantime::parse_rfc3339_weak(s).is_ok() {
        return Ok(s.to_owned());
    }
    let ago = humantime::parse_duration(s).map_err(|_| {
        format!(
            "{s:?} is neither an RFC 3339 timestamp (2024-05-01T12:00:00Z) nor a duration (10m)"
        )
    })?;
    let at = SystemTime::now()
        .checked_sub(ago)
        .ok_or_else(|| format!("{s:?} reaches before the epoch"))?;
    Ok(humantime::format_rfc3339_nanos(at).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_timestamps_and_durations() {
        let t = "2024-05-01T12:00:00Z";
        assert_eq!(parse_since(t).unwrap(), t);
        let ago = parse_since("10m").unwrap();
        assert!(humantime::parse_rfc3339_weak(&ago).is_ok());
        assert!(parse_since("yesterday").is_err());
    }
}
