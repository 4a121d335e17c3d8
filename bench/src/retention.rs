//! Retention at scale: a fresh Berth seeded with many tags (100,000; 2,000
//! in short mode), each its own manifest, then a rule that keeps the 1,000
//! most recent: the dry run's time and the run's, which removes the rest
//! with their manifests and `delete` events.

use std::time::Instant;

use crate::api;
use crate::scenarios::Figure;
use crate::server::Berth;

/// Seeds, then times the dry run and the run.
pub fn run(short: bool) -> Result<Vec<Figure>, String> {
    let tags: u64 = if short { 2_000 } else { 100_000 };
    let kept = tags / 100;
    let berth = Berth::start()?;
    let url = berth.url.as_str();
    let (config, layer) = (
        api::base_blob(url, b"{}")?,
        api::base_blob(url, &[3; 1024])?,
    );
    api::spread(tags, |agent, n| {
        api::put_manifest(agent, url, &config, &layer, &format!("t{n:06}"))
    })?;
    let rule = serde_json::json!({"retention": [{
        "repositories": ["bench/**"], "keep_most_recent": kept, "untagged_max_age": "0s",
    }]});
    ureq::put(&format!("{url}/api/policies"))
        .set("Content-Type", "application/json")
        .send_string(&rule.to_string())
        .map_err(|e| format!("set the rule: {e}"))?;
    let mut figures = Vec::new();
    for (method, what) in [("GET", "dry run"), ("POST", "run")] {
        let start = Instant::now();
        let reply = ureq::request(method, &format!("{url}/api/retention"))
            .call()
            .map_err(|e| format!("retention {what}: {e}"))?;
        let report: serde_json::Value =
            serde_json::from_reader(reply.into_reader()).map_err(|e| e.to_string())?;
        let took = start.elapsed();
        let removed = report["tags_removed"].as_array().map_or(0, Vec::len) as u64;
        if removed != tags - kept {
            return Err(format!(
                "retention {what} removed {removed} tags, expected {}",
                tags - kept
            ));
        }
        figures.push(Figure::new(
            format!("retention {what} over {tags} tags, removing {removed} (and their manifests)"),
            took.as_secs_f64(),
            "s",
        ));
    }
    Ok(figures)
}
