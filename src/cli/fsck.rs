//! `berth fsck`: checks a store and reports what is wrong; `--repair` fixes
//! what is safe to fix. Online through a running registry's admin API
//! (`/api/fsck`), or offline on a data directory no registry has open.

use serde_json::Value;

use super::client::{cell, emit, print_json, table, Client, Output, RemoteArgs};

/// Flags of `berth fsck`.
#[derive(Debug, clap::Args)]
pub struct FsckArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// Repair what is safe to repair (see the README's table).
    #[arg(long)]
    repair: bool,
    /// Check this data directory directly (the registry must be stopped)
    /// instead of asking a running registry.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

/// Runs the check; fails when problems remain.
pub fn run(args: FsckArgs) -> Result<(), String> {
    let report = match &args.data_dir {
        Some(dir) => offline(dir, args.repair)?,
        None => {
            let client = Client::new(&args.remote.registry)?;
            let method = if args.repair { "POST" } else { "GET" };
            client.send(method, "/api/fsck", &[], None)?
        }
    };
    print(args.remote.output, &report)?;
    let left = report["problems"]
        .as_array()
        .map_or(0, |p| p.iter().filter(|p| p["repaired"] != true).count());
    match left {
        0 => Ok(()),
        n => Err(format!("{n} problem(s) left")),
    }
}

fn offline(dir: &std::path::Path, repair: bool) -> Result<Value, String> {
    let config = registry::Config {
        data_dir: dir.to_owned(),
        ..berth::config::File::load(None)?.registry
    };
    if config.metadata_url.is_empty() && !registry::Registry::holds_store(dir) {
        return Err(format!("{} holds no Berth store", dir.display()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let reg = registry::Registry::open(config).await.map_err(|e| {
            format!(
                "cannot open {} (is a registry running on it?): {e}",
                dir.display()
            )
        })?;
        let report = reg.fsck(repair).await.map_err(|e| e.to_string())?;
        serde_json::to_value(&report).map_err(|e| e.to_string())
    })
}

fn print(out: Output, report: &Value) -> Result<(), String> {
    if out == Output::Json {
        return print_json(report);
    }
    let problems = report["problems"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = problems
        .iter()
        .map(|p| {
            let repaired = if p["repaired"] == true { "yes" } else { "no" };
            vec![
                cell(&p["kind"]),
                cell(&p["subject"]),
                cell(&p["detail"]),
                repaired.into(),
            ]
        })
        .collect();
    let mut text = format!(
        "checked {} blobs, {} manifests, {} tags, {} upload sessions: {} problem(s)\n",
        report["blobs"],
        report["manifests"],
        report["tags"],
        report["uploads"],
        problems.len()
    );
    if !rows.is_empty() {
        text.push_str(&table(&["KIND", "SUBJECT", "DETAIL", "REPAIRED"], &rows));
    }
    emit(&text)
}
