//! `berth gc`: asks a running registry to delete blobs nothing references
//! and expired upload sessions (`POST /api/gc`), or with `--dry-run` only to
//! list them (`GET /api/gc`). It runs inside the registry, which keeps
//! serving pushes meanwhile.

use super::client::{emit, print_json, Client, Output, RemoteArgs};

/// Flags of `berth gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// List what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Runs a collection and prints its report.
pub fn run(args: GcArgs) -> Result<(), String> {
    let client = Client::new(&args.remote.registry)?;
    let method = if args.dry_run { "GET" } else { "POST" };
    let report = client.send(method, "/api/gc", &[], None)?;
    if args.remote.output == Output::Json {
        return print_json(&report);
    }
    let deleted = report["deleted_blobs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let mut text = format!(
        "{verb} {} blob(s), {} bytes, and {} expired upload session(s); {} blob(s) live, {} unreferenced but younger than gc_grace\n",
        deleted.len(),
        report["freed_bytes"],
        report["expired_uploads"].as_array().map_or(0, Vec::len),
        report["live_blobs"],
        report["young_blobs"],
    );
    for d in deleted {
        text.push_str(&format!("{}\n", d.as_str().unwrap_or_default()));
    }
    emit(&text)
}
