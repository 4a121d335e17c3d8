//! Webhook scenarios (Berth only): event-to-receiver latency with 1, 10 and
//! 100 matching webhooks, what 100 matching webhooks add to a manifest PUT,
//! and sustained deliveries per second to 10 receivers.

use std::time::{Duration, Instant};

use crate::receiver::Receiver;
use crate::scenarios::Figure;

/// Manifests pushed per latency scenario.
const EVENTS: usize = 200;
/// Time between two pushes of a latency scenario (100 events/s): latency
/// is measured below saturation; the deliveries/s scenario saturates.
const PACE: Duration = Duration::from_millis(10);
/// The repository the webhooks of the latency scenarios match.
const HOOKED: &str = "bench/hooks";
/// The repository no webhook matches.
const PLAIN: &str = "bench/plain";
/// Rounds of the PUT overhead scenario.
const ROUNDS: usize = 5;

/// Runs every webhook scenario against a fresh Berth at `url`.
pub fn run_all(url: &str, short: bool) -> Result<Vec<Figure>, String> {
    let events = if short { 20 } else { EVENTS };
    let (config, layer) = base_blobs(url)?;
    let mut figures = Vec::new();
    let mut pushed = 0;
    let mut created = 0;

    for n in [1usize, 10, 100] {
        let receiver = Receiver::start()?;
        let names = subscribe(url, &receiver.url, n, &mut created, None)?;
        let start = pushed;
        put_latencies(
            url,
            HOOKED,
            (&config, &layer),
            &mut pushed,
            events,
            Some(PACE),
        )?;
        wait_for(&receiver, n * (pushed - start))?;
        let mut lat = receiver.take();
        lat.sort();
        figures.push(Figure::ms(
            format!("event → receiver latency p50, {n} webhook(s), 100 events/s"),
            pct(&lat, 50),
        ));
        figures.push(Figure::ms(
            format!("event → receiver latency p99, {n} webhook(s), 100 events/s"),
            pct(&lat, 99),
        ));
        unsubscribe(url, &names)?;
    }
    figures.extend(put_overhead(
        url,
        short,
        (&config, &layer),
        &mut pushed,
        &mut created,
    )?);

    // Throughput: 10 receivers, events pushed by 8 concurrent clients.
    let receivers: Vec<Receiver> = (0..10)
        .map(|_| Receiver::start())
        .collect::<Result<_, _>>()?;
    let mut names = Vec::new();
    for r in &receivers {
        names.extend(subscribe(url, &r.url, 1, &mut created, None)?);
    }
    let per_client = if short { 10 } else { 250 };
    let start = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (url, config, layer) = (url.to_owned(), config.clone(), layer.clone());
            std::thread::spawn(move || {
                let mut n = 1_000_000 * (t + 1);
                put_latencies(&url, HOOKED, (&config, &layer), &mut n, per_client, None).map(|_| ())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "push thread panicked")??;
    }
    let put_secs = start.elapsed().as_secs_f64();
    let total = 8 * per_client;
    for r in &receivers {
        wait_for(r, total)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = |n: usize, s: f64| n as f64 / s;
    figures.push(Figure::new(
        "manifest PUTs/s during it (8 clients)",
        rate(total, put_secs),
        "/s",
    ));
    figures.push(Figure::new(
        "deliveries/s, 10 receivers, first PUT to last delivery",
        rate(10 * total, secs),
        "/s",
    ));
    unsubscribe(url, &names)?;
    Ok(figures)
}

/// What 100 matching webhooks add to a manifest PUT, at three PUT rates:
/// back to back, which asks for far more deliveries than the 2 cores can
/// make (about 200,000/s), and 50 and 20 PUTs/s (5,000 and 2,000
/// deliveries/s), which they can keep up with. Rounds are interleaved so
/// that the disk's swings (its `fdatasync` time varies 2-3x within minutes
/// here) hit both sides alike. Each round: PUTs at that rate to a
/// repository none of the 100 webhooks matches, then as many to one they
/// all match, delivering to a receiver on these same cores; the hooked
/// block waits for its deliveries. The overhead is the median over the
/// rounds of (median PUT latency matching / not matching) - 1: medians,
/// because this disk stalls an `fdatasync` for 100-400 ms now and then,
/// which moves a block's mean by several milliseconds on either side.
fn put_overhead(
    url: &str,
    short: bool,
    (config, layer): (&str, &str),
    pushed: &mut usize,
    created: &mut usize,
) -> Result<Vec<Figure>, String> {
    let (rounds, per_block) = if short { (1, 10) } else { (ROUNDS, EVENTS / 2) };
    let receiver = Receiver::start()?;
    let names = subscribe(
        url,
        &receiver.url,
        100,
        created,
        Some(&format!("{HOOKED}:*")),
    )?;
    let mut figures = Vec::new();
    for rate in [None, Some(50), Some(20)] {
        let pace = rate.map(|r| Duration::from_secs(1) / r);
        let label = rate.map_or("PUTs back to back".to_owned(), |r| format!("{r} PUTs/s"));
        let (mut plain, mut hooked, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let p = put_latencies(url, PLAIN, (config, layer), pushed, per_block, pace)?;
            let before = receiver.count();
            let h = put_latencies(url, HOOKED, (config, layer), pushed, per_block, pace)?;
            wait_for(&receiver, before + 100 * per_block)?;
            ratios.push(median(&h).as_secs_f64() / median(&p).as_secs_f64());
            plain.extend(p);
            hooked.extend(h);
        }
        ratios.sort_by(f64::total_cmp);
        let overhead = |r: f64| 100.0 * (r - 1.0);
        figures.extend([
            Figure::ms(
                format!("manifest PUT latency, median, no webhook matching, {label}"),
                median(&plain),
            ),
            Figure::ms(
                format!("manifest PUT latency, median, 100 webhooks matching, {label}"),
                median(&hooked),
            ),
            Figure::new(
                format!("PUT latency overhead of 100 matching webhooks, {label}, median of {rounds} rounds"),
                overhead(ratios[ratios.len() / 2]),
                "%",
            ),
            Figure::new(
                format!("PUT latency overhead, {label}, lowest round"),
                overhead(ratios[0]),
                "%",
            ),
            Figure::new(
                format!("PUT latency overhead, {label}, highest round"),
                overhead(ratios[ratios.len() - 1]),
                "%",
            ),
        ]);
    }
    unsubscribe(url, &names)?;
    Ok(figures)
}

fn median(d: &[Duration]) -> Duration {
    let mut d = d.to_vec();
    d.sort();
    pct(&d, 50)
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted
        .get((sorted.len().saturating_sub(1)) * p / 100)
        .copied()
        .unwrap_or_default()
}

/// Uploads the config and layer every benchmark manifest refers to, in
/// both repositories.
fn base_blobs(url: &str) -> Result<(String, String), String> {
    let put = |bytes: &[u8]| -> Result<String, String> {
        let d = crate::scenarios::sha256(bytes);
        for repo in [HOOKED, PLAIN] {
            ureq::post(&format!("{url}/v2/{repo}/blobs/uploads/?digest={d}"))
                .send_bytes(bytes)
                .map_err(|e| e.to_string())?;
        }
        Ok(d)
    };
    Ok((put(b"{}")?, put(b"layer")?))
}

/// PUTs `count` distinct manifests tagged `t<n>` one after another and
/// returns each PUT's latency; `n` numbers them across calls.
fn put_latencies(
    url: &str,
    repo: &str,
    (config, layer): (&str, &str),
    n: &mut usize,
    count: usize,
    pace: Option<Duration>,
) -> Result<Vec<Duration>, String> {
    let agent = ureq::Agent::new();
    let mut out = Vec::with_capacity(count);
    let first = Instant::now();
    for i in 0..count {
        if let Some(pace) = pace {
            let due = first + pace * u32::try_from(i).unwrap_or(u32::MAX);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        *n += 1;
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 5}],
            "annotations": {"n": n.to_string()},
        });
        let start = Instant::now();
        agent
            .put(&format!("{url}/v2/{repo}/manifests/t{n}"))
            .set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .send_string(&manifest.to_string())
            .map_err(|e| format!("manifest PUT: {e}"))?;
        out.push(start.elapsed());
    }
    Ok(out)
}

fn subscribe(
    url: &str,
    target: &str,
    n: usize,
    created: &mut usize,
    scope: Option<&str>,
) -> Result<Vec<String>, String> {
    (0..n)
        .map(|_| {
            *created += 1;
            let name = format!("benchhook{created}");
            let mut body = serde_json::json!({"serviceUri": target, "actions": ["push"]});
            if let Some(scope) = scope {
                body["scope"] = scope.into();
            }
            ureq::put(&format!("{url}/api/webhooks/{name}"))
                .send_string(&body.to_string())
                .map_err(|e| e.to_string())?;
            Ok(name)
        })
        .collect()
}

fn unsubscribe(url: &str, names: &[String]) -> Result<(), String> {
    for name in names {
        ureq::delete(&format!("{url}/api/webhooks/{name}"))
            .call()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Waits until `receiver` has `n` deliveries (bounded: 5 minutes).
fn wait_for(receiver: &Receiver, n: usize) -> Result<(), String> {
    eprintln!("bench: waiting for {n} deliveries at {}", receiver.url);
    let deadline = Instant::now() + Duration::from_secs(300);
    while receiver.count() < n {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {n} deliveries arrived",
                receiver.count()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}
