//! The policy verbs, against a running registry's admin API:
//! `berth retention [--dry-run]` (`/api/retention`), `berth policy show` and
//! `berth policy set --file F` (`/api/policies`), and `berth maintenance
//! [--read-only on|off]` (`/api/maintenance`).

use serde_json::{json, Value};

use super::client::{cell, emit, pairs, print_json, table, Client, Output, RemoteArgs};

/// Flags of `berth retention`.
#[derive(Debug, clap::Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// List what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Runs retention now (or its dry run) and prints what went.
pub fn retention(args: RetentionArgs) -> Result<(), String> {
    let client = Client::new(&args.remote.registry)?;
    let method = if args.dry_run { "GET" } else { "POST" };
    let report = client.send(method, "/api/retention", &[], None)?;
    if args.remote.output == Output::Json {
        return print_json(&report);
    }
    let list = |key: &str| report[key].as_array().cloned().unwrap_or_default();
    let (tags, manifests) = (list("tags_removed"), list("manifests_removed"));
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut text = format!(
        "{verb} {} tag(s) and {} manifest(s) in {} matching repositories; {} skipped (changed meanwhile)\n",
        tags.len(),
        manifests.len(),
        report["repositories"],
        report["skipped"],
    );
    for item in tags.iter().chain(&manifests) {
        text.push_str(&format!("{}\n", cell(item)));
    }
    emit(&text)
}

/// Flags of `berth policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(subcommand)]
    verb: PolicyVerb,
}

#[derive(Debug, clap::Subcommand)]
enum PolicyVerb {
    /// Every rule in force (the configuration file's and the API's).
    Show,
    /// Replaces the API's rules with those of a TOML or JSON file
    /// (`[[retention]]` and `[[immutable]]` tables, as in berth.toml).
    Set {
        /// The file.
        #[arg(long)]
        file: std::path::PathBuf,
    },
}

/// Shows or replaces the policies.
pub fn policy(args: PolicyArgs) -> Result<(), String> {
    let client = Client::new(&args.remote.registry)?;
    let v = match args.verb {
        PolicyVerb::Show => client.get("/api/policies", &[])?,
        PolicyVerb::Set { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let rules: Value = match serde_json::from_str(&text) {
                Ok(json) => json,
                Err(_) => toml::from_str::<toml::Value>(&text)
                    .map_err(|e| format!("{}: neither JSON nor TOML: {e}", file.display()))
                    .and_then(|t| serde_json::to_value(t).map_err(|e| e.to_string()))?,
            };
            client.send("PUT", "/api/policies", &[], Some(&rules))?
        }
    };
    if args.remote.output == Output::Json {
        return print_json(&v);
    }
    let rows = |key: &str, fields: &[&str]| -> Vec<Vec<String>> {
        v[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| fields.iter().map(|f| cell(&r[*f])).collect())
            .collect()
    };
    let retention = [
        "repositories",
        "keep_tags",
        "keep_most_recent",
        "max_age",
        "untagged_max_age",
        "source",
    ];
    let mut text = String::from("Retention rules (a repository follows the first that matches):\n");
    let headers: Vec<String> = retention.iter().map(|h| h.to_ascii_uppercase()).collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    text.push_str(&table(&headers, &rows("retention", &retention)));
    text.push_str("\nImmutable tags:\n");
    let immutable = ["repositories", "tags", "source"];
    text.push_str(&table(
        &["REPOSITORIES", "TAGS", "SOURCE"],
        &rows("immutable", &immutable),
    ));
    text.push_str(&format!("\nRead-only: {}\n", read_only(&v["maintenance"])));
    emit(&text)
}

/// Flags of `berth maintenance`.
#[derive(Debug, clap::Args)]
pub struct MaintenanceArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// Turn read-only mode on (writes get 405, pulls go on) or off.
    #[arg(long, value_parser = ["on", "off"])]
    read_only: Option<String>,
}

/// Shows or switches read-only mode.
pub fn maintenance(args: MaintenanceArgs) -> Result<(), String> {
    let client = Client::new(&args.remote.registry)?;
    let v = match args.read_only.as_deref() {
        None => client.get("/api/maintenance", &[])?,
        Some(on) => client.send(
            "PUT",
            "/api/maintenance",
            &[],
            Some(&json!({"readOnly": on == "on"})),
        )?,
    };
    if args.remote.output == Output::Json {
        return print_json(&v);
    }
    emit(&pairs(&[("Read-only", read_only(&v))]))
}

/// `yes (configuration)`, `yes (api)` or `no`.
fn read_only(v: &Value) -> String {
    match (v["readOnly"].as_bool(), v["source"].as_str()) {
        (Some(true), Some(source)) => format!("yes ({source})"),
        _ => "no".into(),
    }
}
