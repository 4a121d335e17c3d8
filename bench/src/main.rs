//! Berth's benchmark harness.
//!
//! `bench --url URL` runs the scenarios against any registry and prints a
//! table. `bench --all` builds nothing itself: it starts a fresh
//! `target/release/berth` on a temporary directory, measures this machine's
//! ceilings in the same run, runs every scenario (blobs, webhooks, the Helm
//! chart repository) and rewrites
//! `docs/benchmarks.md`. `--short` shrinks every size so CI can prove the
//! harness works in seconds (its figures mean nothing). Start-up times and
//! the soak test (which fails the run on any 5xx, corrupt pull or lost
//! event) run with `--all` only: they start Berth themselves, as does the
//! scale-out comparison (which also starts PostgreSQL and an S3 server).

mod api;
mod ceilings;
mod console;
mod helm;
mod receiver;
mod report;
mod retention;
mod scaleout;
mod scenarios;
mod server;
mod soak;
mod startup;
mod webhooks;
mod wire;

use std::process::ExitCode;

/// Parsed command line.
struct Args {
    url: Option<String>,
    all: bool,
    short: bool,
    /// Run only this group of scenarios (development; no report is written).
    only: Option<String>,
}

/// The scenario groups, in the order they run.
const GROUPS: [&str; 9] = [
    "api",
    "transfer",
    "webhooks",
    "helm",
    "retention",
    "console",
    "scale-out",
    "startup",
    "soak",
];

const USAGE: &str = "usage: bench (--url URL | --all) [--short] [--only GROUP]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: None,
        all: false,
        short: false,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--url" => args.url = Some(it.next().ok_or("--url needs a value")?),
            "--all" => args.all = true,
            "--short" => args.short = true,
            "--only" => {
                let group = it.next().ok_or("--only needs a group")?;
                if !GROUPS.contains(&group.as_str()) {
                    return Err(format!("unknown group {group:?}; groups: {GROUPS:?}"));
                }
                args.only = Some(group);
            }
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    if args.url.is_none() && !args.all {
        return Err(USAGE.into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let wants = |group: &str| args.only.as_deref().is_none_or(|o| o == group);
    let size = if args.short { 32 << 20 } else { 1 << 30 };
    let ceilings = args.all.then(|| ceilings::measure(size)).transpose()?;
    let server = match &args.url {
        Some(_) => None,
        None => Some(server::Berth::start()?),
    };
    let url = args
        .url
        .clone()
        .or_else(|| server.as_ref().map(|s| s.url.clone()))
        .ok_or("no registry")?;
    let mut results = Vec::new();
    if wants("api") {
        results.extend(api::run_all(std::slice::from_ref(&url), args.short)?);
    }
    if wants("transfer") {
        results.extend(scenarios::run_all(
            std::slice::from_ref(&url),
            size,
            server.as_ref(),
        )?);
        // Let the kernel write back the gigabytes just uploaded, so their
        // writeback does not slow the fsyncs of the scenarios after this.
        settle()?;
    }
    if server.is_some() {
        // Webhooks and charts are Berth's own APIs: measured only on a
        // Berth we started.
        if wants("webhooks") {
            results.extend(webhooks::run_all(&url, args.short)?);
        }
        if wants("helm") {
            results.extend(helm::run_all(&url, args.short, server.as_ref())?);
        }
        if let Some(peak) = server.as_ref().and_then(|s| s.status_kb("VmHWM")) {
            results.push(scenarios::Figure::new(
                "server peak RSS, whole run",
                peak as f64 / 1024.0,
                "MiB",
            ));
        }
    }
    drop(server);
    if args.all && wants("retention") {
        results.extend(retention::run(args.short)?);
    }
    if args.all && wants("console") {
        results.extend(console::run(args.short)?);
    }
    let scale_out = if args.all && wants("scale-out") {
        Some(scaleout::run(args.short)?)
    } else {
        None
    };
    if args.all && wants("startup") {
        results.extend(startup::run_all(args.short)?);
    }
    if args.all && wants("soak") {
        results.extend(soak::run(args.short)?);
    }
    let table = report::markdown(
        &results,
        ceilings.as_ref(),
        scale_out.as_ref(),
        size,
        args.short,
    );
    println!("{table}");
    if args.all && !args.short && args.only.is_none() {
        std::fs::write("docs/benchmarks.md", table)
            .map_err(|e| format!("cannot write docs/benchmarks.md: {e}"))?;
        eprintln!("wrote docs/benchmarks.md");
    }
    Ok(())
}

/// Waits until the page cache's dirty data is on disk (`sync`).
fn settle() -> Result<(), String> {
    let ok = std::process::Command::new("sync")
        .status()
        .map_err(|e| format!("cannot run sync: {e}"))?
        .success();
    if ok {
        Ok(())
    } else {
        Err("sync failed".into())
    }
}
