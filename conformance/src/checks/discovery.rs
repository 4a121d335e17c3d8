//! Content discovery: tag listing with pagination, and `_catalog` if present.

use super::{ensure, error_code, status, Context};
use crate::client::{encode, Response};
use crate::report::{Finding, Level};

/// Upper bound on pages followed while paginating.
const MAX_PAGES: usize = 100;

/// Runs the discovery checks.
pub fn run(ctx: &mut Context) {
    let mut expected: Vec<String> = ctx
        .pushed
        .iter()
        .filter(|k| !k.contains(':'))
        .cloned()
        .collect();
    expected.sort();
    let mut full: Vec<String> = Vec::new();
    ctx.check(
        "end-8a",
        "GET tags/list: 200 with {name, tags} containing every pushed tag",
        Level::Must,
        |ctx| {
            let (resp, tags) = list(ctx, "")?;
            let json = resp.json()?;
            ensure(json["name"] == ctx.repo.as_str(), Level::Must, || {
                format!(
                    "\"name\" is {}, expected {:?}: {}",
                    json["name"],
                    ctx.repo,
                    resp.describe()
                )
            })?;
            let absent: Vec<&String> = expected.iter().filter(|t| !tags.contains(t)).collect();
            ensure(absent.is_empty(), Level::Must, || {
                format!("pushed tags {absent:?} missing: {}", resp.describe())
            })?;
            full = tags;
            Ok(None)
        },
    );
    ctx.check(
        "end-8a",
        "tags are in lexical or ASCIIbetical order",
        Level::Must,
        |_| {
            ensure(full.len() >= 2, Level::Must, || {
                format!("need at least 2 tags to judge order, got {full:?}")
            })?;
            ensure(is_ordered(&full), Level::Must, || {
                format!("tags not ordered: {full:?}")
            })?;
            Ok(None)
        },
    );
    let enough = |full: &Vec<String>| {
        ensure(full.len() >= 2, Level::Must, || {
            format!("need at least 2 tags to paginate, got {full:?}")
        })
    };
    ctx.check(
        "end-8b",
        "?n=<k>: exactly k tags (fewer only with a Link header), in order",
        Level::Must,
        |ctx| {
            enough(&full)?;
            let k = full.len() - 1;
            let (resp, tags) = list(ctx, &format!("n={k}"))?;
            let link = resp.header("Link");
            ensure(
                tags.len() == k || (tags.len() < k && link.is_some()),
                Level::Must,
                || {
                    format!(
                        "asked for {k}, got {} tags without Link: {}",
                        tags.len(),
                        resp.describe()
                    )
                },
            )?;
            ensure(tags[..] == full[..tags.len()], Level::Must, || {
                format!("page {tags:?} is not the start of {full:?}")
            })?;
            Ok(None)
        },
    );
    ctx.check(
        "end-8b",
        "Link header (if sent) uses rel=\"next\" and leads to the remaining tags",
        Level::Must,
        |ctx| {
            enough(&full)?;
            let (resp, first) = list(ctx, "n=1")?;
            let Some(link) = resp.header("Link") else {
                return Ok(Some("no Link header sent (MAY)".to_owned()));
            };
            let mut tags = first;
            let mut next = Some(next_link(link).ok_or_else(|| {
                Finding::must(format!(
                    "Link {link:?} is not <url>; rel=\"next\": {}",
                    resp.describe()
                ))
            })?);
            let mut pages = 0;
            while let Some(url) = next.take() {
                pages += 1;
                ensure(pages <= MAX_PAGES, Level::Must, || {
                    format!("more than {MAX_PAGES} pages")
                })?;
                let page = ctx.client.get(&url, &[])?;
                status(&page, &[200], Level::Must)?;
                tags.extend(tag_list(&page)?);
                if let Some(link) = page.header("Link") {
                    next = Some(next_link(link).ok_or_else(|| {
                        Finding::must(format!("bad Link {link:?}: {}", page.describe()))
                    })?);
                }
            }
            ensure(tags == full, Level::Must, || {
                format!("following Link gave {tags:?}, full list is {full:?}")
            })?;
            Ok(None)
        },
    );
    ctx.check(
        "end-8b",
        "?n=0 returns an empty list and no Link header",
        Level::Must,
        |ctx| {
            let (resp, tags) = list(ctx, "n=0")?;
            ensure(tags.is_empty(), Level::Must, || {
                format!("n=0 returned {tags:?}: {}", resp.describe())
            })?;
            ensure(resp.header("Link").is_none(), Level::Must, || {
                format!("n=0 returned a Link header: {}", resp.describe())
            })?;
            Ok(None)
        },
    );
    ctx.check(
        "end-8b",
        "?n=&last=<tag> returns the tags after <tag>, non-inclusive",
        Level::Must,
        |ctx| {
            enough(&full)?;
            let (resp, tags) = list(ctx, &format!("n=2&last={}", encode(&full[0])))?;
            let end = full.len().min(3);
            ensure(tags[..] == full[1..end], Level::Must, || {
                format!(
                    "expected {:?}, got {tags:?}: {}",
                    &full[1..end],
                    resp.describe()
                )
            })?;
            Ok(None)
        },
    );
    ctx.check(
        "end-8b",
        "walking the list with ?n=1&last= yields the full list in order",
        Level::Must,
        |ctx| {
            enough(&full)?;
            let mut walked: Vec<String> = Vec::new();
            loop {
                let query = match walked.last() {
                    Some(last) => format!("n=1&last={}", encode(last)),
                    None => "n=1".to_owned(),
                };
                let (_, page) = list(ctx, &query)?;
                if page.is_empty() || walked.len() > full.len() + 1 {
                    break;
                }
                walked.extend(page);
            }
            ensure(walked == full, Level::Must, || {
                format!("walk gave {walked:?}, full list is {full:?}")
            })?;
            Ok(None)
        },
    );
    ctx.check(
        "code-9",
        "tags/list of a nonexistent repository: 404 NAME_UNKNOWN",
        Level::Should,
        |ctx| {
            let repo = format!("{}-missing-{}", ctx.repo, ctx.rng.token(6));
            let resp = ctx.client.get(&format!("/v2/{repo}/tags/list"), &[])?;
            status(&resp, &[404], Level::Should)?;
            error_code(&resp, "NAME_UNKNOWN")?;
            Ok(None)
        },
    );
    ctx.check(
        "catalog",
        "GET /v2/_catalog (optional): if served, lists the repository",
        Level::Should,
        catalog,
    );
}

/// GET tags/list with `query`, requiring 200 and a `tags` array.
fn list(ctx: &Context, query: &str) -> Result<(Response, Vec<String>), Finding> {
    let mut url = format!("/v2/{}/tags/list", ctx.repo);
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    let resp = ctx.client.get(&url, &[])?;
    status(&resp, &[200], Level::Must)?;
    let tags = tag_list(&resp)?;
    Ok((resp, tags))
}

/// The `tags` array of a tags/list body (`null` counts as empty).
fn tag_list(resp: &Response) -> Result<Vec<String>, Finding> {
    strings(resp, "tags")
}

/// A string array field of a JSON body (`null`/absent counts as empty).
fn strings(resp: &Response, field: &str) -> Result<Vec<String>, Finding> {
    let json = resp.json()?;
    match &json[field] {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Finding::must(format!(
                    "\"{field}\" holds non-strings: {}",
                    resp.describe()
                ))
            }),
        _ => Err(Finding::must(format!(
            "\"{field}\" is not an array: {}",
            resp.describe()
        ))),
    }
}

/// True if `tags` is sorted byte-wise or case-insensitively.
fn is_ordered(tags: &[String]) -> bool {
    let ascii = tags.windows(2).all(|w| w[0] <= w[1]);
    let lexical = tags
        .windows(2)
        .all(|w| w[0].to_lowercase() <= w[1].to_lowercase());
    ascii || lexical
}

/// The URL of an RFC 5988 `Link: <url>; rel="next"` header.
fn next_link(link: &str) -> Option<String> {
    let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
    let is_next = params.split(';').any(|p| {
        matches!(
            p.trim().replace(' ', "").as_str(),
            "rel=\"next\"" | "rel=next"
        )
    });
    is_next.then(|| target.to_owned())
}

/// `_catalog`: optional; if served it must list our repository.
fn catalog(ctx: &mut Context) -> Result<Option<String>, Finding> {
    let mut url = Some("/v2/_catalog".to_owned());
    let mut pages = 0;
    while let Some(current) = url.take() {
        let resp = ctx.client.get(&current, &[])?;
        if pages == 0 && matches!(resp.status, 401 | 403 | 404 | 405) {
            return Ok(Some(format!("not served ({})", resp.status)));
        }
        status(&resp, &[200], Level::Should)?;
        if strings(&resp, "repositories")?.contains(&ctx.repo) {
            return Ok(None);
        }
        pages += 1;
        if pages < MAX_PAGES {
            url = resp.header("Link").and_then(next_link);
        }
    }
    Err(Finding::should(format!(
        "{} not listed by _catalog",
        ctx.repo
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_link_headers() {
        assert_eq!(
            next_link("</v2/a/tags/list?n=1&last=b>; rel=\"next\"").as_deref(),
            Some("/v2/a/tags/list?n=1&last=b")
        );
        assert_eq!(next_link("<x>; rel=\"prev\""), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn accepts_both_orders() {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_ordered(&owned(&["B", "a", "c"])));
        assert!(is_ordered(&owned(&["a", "B", "c"])));
        assert!(!is_ordered(&owned(&["c", "a"])));
    }
}
