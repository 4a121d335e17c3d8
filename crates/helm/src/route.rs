//! Paths under `/helm`, ChartMuseum's multi-tenant layout with repository
//! names that may contain `/`:
//!
//! | path                                       | route                 |
//! |--------------------------------------------|-----------------------|
//! | `{repo}/index.yaml`                        | [`Route::Index`]      |
//! | `{repo}/charts/{file}`                     | [`Route::File`]       |
//! | `api/{repo}/charts`                        | [`Route::Charts`]     |
//! | `api/{repo}/charts/{name}`                 | [`Route::Chart`]      |
//! | `api/{repo}/charts/{name}/{version}`       | [`Route::Version`]    |
//! | `api/{repo}/prov`                          | [`Route::Prov`]       |
//!
//! The repository is what precedes the *last* reserved segment that fits
//! (`charts`, `prov`, `index.yaml`), so a repository may itself contain a
//! `charts` component. Paths starting with `api/` are the API's: a
//! repository's first component cannot be `api` (uploads refuse it).

use registry::types::RepoName;

use crate::Error;

/// A parsed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The repository's `index.yaml`.
    Index(RepoName),
    /// A chart archive or provenance file, by file name.
    File(RepoName, String),
    /// Every chart (GET) or an upload (POST).
    Charts(RepoName),
    /// A provenance file upload.
    Prov(RepoName),
    /// Every version of one chart.
    Chart(RepoName, String),
    /// One version of one chart (`latest` allowed for GET and HEAD).
    Version(RepoName, String, String),
}

impl Route {
    /// Parses the path after `/helm/`.
    pub fn parse(path: &str) -> Result<Self, Error> {
        let not_found = || Error::NotFound(format!("no such endpoint: /helm/{path}"));
        let repo = |parts: &[&str]| -> Result<RepoName, Error> {
            let name = parts.join("/");
            RepoName::parse(&name).ok_or_else(|| {
                Error::BadRequest(format!(
                    "invalid repository name {name:?}: lowercase letters, digits and separators, as OCI repository names"
                ))
            })
        };
        if let Some(api) = path.strip_prefix("api/") {
            let parts: Vec<&str> = api.split('/').collect();
            return match parts.as_slice() {
                [rest @ .., "charts"] if !rest.is_empty() => Ok(Self::Charts(repo(rest)?)),
                [rest @ .., "prov"] if !rest.is_empty() => Ok(Self::Prov(repo(rest)?)),
                [rest @ .., "charts", name] if !rest.is_empty() && !name.is_empty() => {
                    Ok(Self::Chart(repo(rest)?, decode(name)))
                }
                [rest @ .., "charts", name, version]
                    if !rest.is_empty() && !name.is_empty() && !version.is_empty() =>
                {
                    Ok(Self::Version(repo(rest)?, decode(name), decode(version)))
                }
                _ => Err(not_found()),
            };
        }
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            [rest @ .., "index.yaml"] if !rest.is_empty() => Ok(Self::Index(repo(rest)?)),
            [rest @ .., "charts", file] if !rest.is_empty() && !file.is_empty() => {
                Ok(Self::File(repo(rest)?, decode(file)))
            }
            _ => Err(not_found()),
        }
    }
}

/// Percent-decodes one path segment (`%2B` is `+`); malformed escapes stay.
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&a), Some(&b)) if hex(a).is_some() && hex(b).is_some() => {
                let v = hex(a).unwrap_or(0) * 16 + hex(b).unwrap_or(0);
                out.push(u8::try_from(v).unwrap_or(b'%'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(s: &str) -> RepoName {
        RepoName::parse(s).unwrap()
    }

    #[test]
    fn parses_every_route() {
        let cases = [
            ("team/apps/index.yaml", Route::Index(repo("team/apps"))),
            (
                "r/charts/web-1.0.0%2Bb.tgz",
                Route::File(repo("r"), "web-1.0.0+b.tgz".into()),
            ),
            ("api/r/charts", Route::Charts(repo("r"))),
            ("api/a/b/prov", Route::Prov(repo("a/b"))),
            ("api/r/charts/web", Route::Chart(repo("r"), "web".into())),
            (
                "api/r/charts/web/latest",
                Route::Version(repo("r"), "web".into(), "latest".into()),
            ),
            // The last fitting `charts` wins: a repository may contain one.
            ("api/x/charts/charts", Route::Charts(repo("x/charts"))),
            (
                "x/charts/charts/web-1.0.0.tgz",
                Route::File(repo("x/charts"), "web-1.0.0.tgz".into()),
            ),
        ];
        for (path, route) in cases {
            assert_eq!(Route::parse(path).unwrap(), route, "{path}");
        }
    }

    #[test]
    fn refuses_other_paths() {
        for path in [
            "",
            "r",
            "index.yaml",
            "api/charts",
            "api/r",
            "r/charts/",
            "api/r/x/y/z",
        ] {
            assert!(Route::parse(path).is_err(), "{path}");
        }
        assert!(matches!(
            Route::parse("Bad/index.yaml"),
            Err(Error::BadRequest(_))
        ));
    }
}
