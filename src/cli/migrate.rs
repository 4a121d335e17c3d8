//! `berth migrate`: copies a stopped single-node store (sled and files under
//! the data directory) into PostgreSQL and S3-compatible storage, for
//! replicas to serve (see `registry::migrate`). Run it again to resume an
//! interrupted migration or to catch up with changes.

use serde_json::Value;

use super::client::{emit, pairs, print_json, Output};
use super::ConfigArgs;

/// Flags of `berth migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The store to copy (default: the configuration's data_dir). No
    /// registry may be running on it.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Output format of the report.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    output: Output,
}

/// Runs the migration, printing each step on stderr and the report on
/// stdout.
pub fn run(args: MigrateArgs) -> Result<(), String> {
    let config = berth::config::File::load(args.config.config.as_deref())?.registry;
    let dir = args.data_dir.unwrap_or(config.data_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let report = runtime.block_on(async {
        let mut progress = |step: String| eprintln!("{step}");
        registry::migrate(&dir, &config.metadata_url, &config.blob_url, &mut progress)
            .await
            .map_err(|e| format!("migrate {}: {e}", dir.display()))
    })?;
    let report = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    if args.output == Output::Json {
        return print_json(&report);
    }
    let n = |v: &Value| v.as_u64().unwrap_or(0).to_string();
    let copied = &report["copied"];
    emit(&pairs(&[
        ("Blobs copied", n(&report["blobs_copied"])),
        ("Bytes copied", n(&report["bytes_copied"])),
        ("Blobs already there", n(&report["blobs_present"])),
        ("Databases", super::client::cell(&report["databases"])),
        ("Trees", n(&copied["trees"])),
        ("Entries written", n(&copied["entries"])),
        ("Entries removed", n(&copied["removed"])),
        ("Events added", n(&copied["events"])),
        ("Uploads in progress left", n(&report["uploads_left"])),
    ]))
}
