//! Berth's OCI Distribution Spec conformance program.
//!
//! Talks plain HTTP to the registry given on the command line, exercises the
//! Pull, Push, Content Discovery and Content Management requirements of the
//! spec, prints one table row per check and exits non-zero if any MUST failed.
//!
//! ```text
//! conformance http://127.0.0.1:5000 [URL...] [--namespace NAME] [--crossmount-namespace NAME]
//! ```
//!
//! Given several URLs (replicas of one registry), requests take them in turn,
//! so every check also checks that what one replica did, the next one sees.

mod checks;
mod client;
mod data;
mod report;

use std::process::ExitCode;

const USAGE: &str =
    "usage: conformance <registry-url>... [--namespace NAME] [--crossmount-namespace NAME]

  <registry-url>...          base URL, e.g. http://127.0.0.1:5000; with several
                             (replicas of one registry), requests take them in turn
  --namespace NAME           repository to test in (default: conformance/test-<random>)
  --crossmount-namespace N   repository blobs are mounted into (default: <namespace>-mount)";

/// Parsed command line.
struct Args {
    urls: Vec<String>,
    namespace: Option<String>,
    crossmount: Option<String>,
}

/// Parses `std::env::args`, returning a usage message on error.
fn parse_args() -> Result<Args, String> {
    let mut urls = Vec::new();
    let mut namespace = None;
    let mut crossmount = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--namespace" => namespace = Some(args.next().ok_or("--namespace needs a value")?),
            "--crossmount-namespace" => {
                crossmount = Some(args.next().ok_or("--crossmount-namespace needs a value")?)
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ if arg.starts_with('-') => return Err(format!("unknown flag {arg}\n{USAGE}")),
            _ => urls.push(arg),
        }
    }
    if urls.is_empty() {
        return Err(USAGE.to_owned());
    }
    Ok(Args {
        urls,
        namespace,
        crossmount,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut rng = data::Rng::from_time();
    let repo = args
        .namespace
        .unwrap_or_else(|| format!("conformance/test-{}", rng.token(8)));
    let mount_repo = args.crossmount.unwrap_or_else(|| format!("{repo}-mount"));
    println!("registry: {}", args.urls.join(", "));
    println!("namespace: {repo}");
    println!("crossmount namespace: {mount_repo}");
    println!();
    let ctx = checks::Context::new(client::Client::new(&args.urls), repo, mount_repo, rng);
    let report = checks::run_all(ctx);
    report.print();
    if report.count(report::Verdict::Fail) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
