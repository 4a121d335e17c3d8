//! The webhooks' part of `/metrics` (Prometheus text format): queue depth
//! and delivery outcomes per webhook.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::worker::Workers;

/// Appends the webhooks' samples to `out`.
pub fn render(workers: &Workers, out: &mut String) {
    let figures = workers.figures();
    let _ = writeln!(
        out,
        "# HELP berth_webhook_queue_depth Deliveries queued and not yet done.\n\
         # TYPE berth_webhook_queue_depth gauge"
    );
    for f in &figures {
        let _ = writeln!(
            out,
            "berth_webhook_queue_depth{{webhook=\"{}\"}} {}",
            f.name, f.pending
        );
    }
    let _ = writeln!(
        out,
        "# HELP berth_webhook_deliveries_total Delivery attempts (and events dropped by a full queue) since start-up.\n\
         # TYPE berth_webhook_deliveries_total counter"
    );
    for f in &figures {
        let t = &f.tally;
        for (outcome, n) in [
            ("delivered", &t.delivered),
            ("retrying", &t.retrying),
            ("failed", &t.failed),
            ("dropped", &t.dropped),
        ] {
            let _ = writeln!(
                out,
                "berth_webhook_deliveries_total{{webhook=\"{}\",outcome=\"{outcome}\"}} {}",
                f.name,
                n.load(Ordering::Relaxed)
            );
        }
    }
}
