//! The web console's pages at scale: a fresh Berth with 10,000
//! repositories of 10 tags each (100,000 tags; 500 repositories in short
//! mode), then the median time of the requests its pages make: the first
//! page of repositories, a search that has to look at every name, a
//! repository's tags, and the page itself.

use std::time::{Duration, Instant};

use crate::api;
use crate::scenarios::Figure;
use crate::server::Berth;

/// Seeds, then times each request 21 times.
pub fn run(short: bool) -> Result<Vec<Figure>, String> {
    let repos: u64 = if short { 500 } else { 10_000 };
    let tags_each = 10;
    let berth = Berth::start()?;
    let url = berth.url.as_str();
    let (config, layer) = (
        api::base_blob(url, b"{}")?,
        api::base_blob(url, &[5; 1024])?,
    );
    api::spread(repos, |agent, r| {
        let repo = format!("team{:02}/app-{r:05}", r % 100);
        api::mount(agent, url, &repo, &config.0)?;
        api::mount(agent, url, &repo, &layer.0)?;
        (0..tags_each).try_for_each(|n| {
            api::put_manifest_to(agent, url, &repo, &config, &layer, &format!("v{n}"))
        })
    })?;
    let last = format!("app-{:05}", repos - 1);
    let requests = [
        (
            "first page of repositories (50)",
            "/api/repositories?n=50".to_owned(),
        ),
        (
            "search matching one repository (reads every name)",
            format!("/api/repositories?n=50&q={last}"),
        ),
        (
            "a repository's tags",
            "/api/repositories/team00/app-00000/_tags".to_owned(),
        ),
        ("the console page", "/console/".to_owned()),
    ];
    let agent = ureq::agent();
    let mut figures = Vec::new();
    for (what, path) in requests {
        let mut times: Vec<Duration> = (0..21)
            .map(|_| {
                let start = Instant::now();
                let r = agent
                    .get(&format!("{url}{path}"))
                    .call()
                    .map_err(|e| format!("{path}: {e}"))?;
                std::io::copy(&mut r.into_reader(), &mut std::io::sink())
                    .map_err(|e| e.to_string())?;
                Ok(start.elapsed())
            })
            .collect::<Result<_, String>>()?;
        times.sort();
        figures.push(Figure::ms(
            format!(
                "console at {repos} repositories, {} tags: {what} (median)",
                repos * tags_each
            ),
            times[times.len() / 2],
        ));
    }
    Ok(figures)
}
