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
//! event) run with `--all` only: they start Berth themselves.

mod ceilings;
mod helm;
mod receiver;
mod report;
mod scenarios;
mod server;
mod soak;
mod startup;
mod webhooks;

use std::process::ExitCode;

/// Parsed command line.
struct Args {
    url: Option<String>,
    all: bool,
    short: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: None,
        all: false,
        short: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--url" => args.url = Some(it.next().ok_or("--url needs a value")?),
            "--all" => args.all = true,
            "--short" => args.short = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: bench (--url URL | --all) [--short]"
                ))
            }
        }
    }
    if args.url.is_none() && !args.all {
        return Err("usage: bench (--url URL | --all) [--short]".into());
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
    let mut results = scenarios::run_all(&url, size, server.as_ref())?;
    if server.is_some() {
        // Webhooks are Berth's own API: measured only on a Berth we started.
        results.extend(webhooks::run_all(&url, args.short)?);
        // So is the Helm chart repository.
        results.extend(helm::run_all(&url, args.short, server.as_ref())?);
        if let Some(peak) = server.as_ref().and_then(|s| s.status_kb("VmHWM")) {
            let value = peak as f64 / 1024.0;
            results.push(scenarios::Figure {
                name: "server peak RSS, whole run".into(),
                value,
                unit: "MiB",
                ceiling: None,
            });
        }
    }
    drop(server);
    if args.all {
        results.extend(startup::run_all(args.short)?);
        results.extend(soak::run(args.short)?);
    }
    let table = report::markdown(&results, ceilings.as_ref(), size, args.short);
    println!("{table}");
    if args.all && !args.short {
        std::fs::write("docs/benchmarks.md", table)
            .map_err(|e| format!("cannot write docs/benchmarks.md: {e}"))?;
        eprintln!("wrote docs/benchmarks.md");
    }
    Ok(())
}
