//! The webhooks' part of `/metrics` (Prometheus text format): queue depth
//! and delivery outcomes per webhook.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::Shared;

/// Appends the webhooks' samples to `out`.
pub fn render(shared: &Shared, out: &mut String) {
    let figures = shared.workers.tallies();
    let _ = writeln!(
        out,
        "# HELP berth_webhook_queue_depth Deliveries queued and not yet done.\n\
         # TYPE berth_webhook_queue_depth gauge"
    );
    for (name, _) in &figures {
        let _ = writeln!(
            out,
            "berth_webhook_queue_depth{{webhook=\"{name}\"}} {}",
            shared.queue.pending(name)
        );
    }
    let _ = writeln!(
        out,
        "# HELP berth_webhook_deliveries_total Delivery attempts (and events dropped by a full queue) since start-up.\n\
         # TYPE berth_webhook_deliveries_total counter"
    );
    for (name, t) in &figures {
        for (outcome, n) in [
            ("delivered", &t.delivered),
            ("retrying", &t.retrying),
            ("failed", &t.failed),
            ("refused", &t.refused),
            ("dropped", &t.dropped),
        ] {
            let _ = writeln!(
                out,
                "berth_webhook_deliveries_total{{webhook=\"{name}\",outcome=\"{outcome}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
    }
}
