//! The Markdown report written to `docs/benchmarks.md`.

use std::fmt::Write;

use crate::ceilings::Ceilings;
use crate::scaleout::{ScaleOut, CONFIGURATIONS};
use crate::scenarios::{Ceiling, Figure};

/// The whole report: ceilings, then each figure beside its ceiling, then
/// the scale-out comparison.
pub fn markdown(
    figures: &[Figure],
    ceilings: Option<&Ceilings>,
    scale_out: Option<&ScaleOut>,
    size: usize,
    short: bool,
) -> String {
    let mut s = String::from("# Benchmarks\n\n");
    let _ = writeln!(
        s,
        "Produced by `cargo build --release && cargo run --release -p bench -- --all` on this machine \
         ({} cores). Sizes: {} MiB payloads. MB = 10^6 bytes.{}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        size >> 20,
        if short { " SHORT MODE: figures are not meaningful." } else { "" }
    );
    s.push_str(
        "Targets, which are met and what limits the others: `docs/performance.md` (by hand).\n\n",
    );
    if let Some(c) = ceilings {
        s.push_str("## This machine's ceilings (measured in the same run)\n\n| ceiling | value | unit |\n|---|---:|---|\n");
        if let Some(o) = c.openssl_sha256 {
            let _ = writeln!(
                s,
                "| `openssl speed -evp sha256` (16 KiB blocks, one core) | {o:.0} | MB/s |"
            );
        }
        let _ = writeln!(
            s,
            "| sha256 with the `sha2` crate (1 MiB chunks, one core) | {:.0} | MB/s |",
            c.sha2_sha256
        );
        let _ = writeln!(
            s,
            "| disk: write {} MiB + `fdatasync` | {:.0} | MB/s |",
            size >> 20,
            c.disk_write
        );
        let _ = writeln!(
            s,
            "| loopback TCP, 1 MiB writes and reads | {:.0} | MB/s |",
            c.loopback
        );
        let _ = writeln!(
            s,
            "| disk: 4 KiB append + `fdatasync`, one at a time | {:.0} | /s |\n",
            c.fsyncs
        );
    }
    s.push_str("## Berth\n\n| scenario | value | unit | ratio to ceiling |\n|---|---:|---|---|\n");
    for f in figures {
        let ratio = match (f.ceiling, ceilings) {
            (Some(Ceiling::Sha256), Some(c)) => {
                let base = c.openssl_sha256.unwrap_or(c.sha2_sha256);
                format!("{:.0}% of single-core sha256", 100.0 * f.value / base)
            }
            (Some(Ceiling::Fsync), Some(c)) => {
                format!("{:.0}% of one-at-a-time fsyncs", 100.0 * f.value / c.fsyncs)
            }
            (Some(Ceiling::Loopback), Some(c)) => {
                format!("{:.0}% of loopback TCP", 100.0 * f.value / c.loopback)
            }
            _ => String::new(),
        };
        let _ = writeln!(s, "| {} | {:.1} | {} | {ratio} |", f.name, f.value, f.unit);
    }
    if let Some(o) = scale_out {
        scale_out_section(&mut s, o);
    }
    s
}

/// The same scenarios under each configuration, side by side.
fn scale_out_section(s: &mut String, o: &ScaleOut) {
    s.push_str(
        "\n## Scale-out: the embedded default against PostgreSQL + S3\n\n\
         Its own PostgreSQL cluster (default settings, fsync on) and an in-process S3 server \
         (`s3s-fs`, objects as local files); everything shares this machine's cores, so two \
         replicas cannot serve more than one here (see `docs/scaling.md`). With two \
         replicas the request threads alternate between them, the chunked upload's PATCHes \
         too, and the download reads from the replica that did not take the upload. \
         Transfers: 256 MiB.\n\n",
    );
    let _ = writeln!(s, "| scenario | {} | unit |", CONFIGURATIONS.join(" | "));
    let _ = writeln!(s, "|---|{}---|", "---:|".repeat(CONFIGURATIONS.len()));
    for row in &o.rows {
        let values: Vec<String> = row.values.iter().map(|v| format!("{v:.1}")).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            row.name,
            values.join(" | "),
            row.unit
        );
    }
    s.push_str("\n| measure | value | unit |\n|---|---:|---|\n");
    for f in &o.figures {
        let _ = writeln!(s, "| {} | {:.2} | {} |", f.name, f.value, f.unit);
    }
}
