//! Requests under `/helm`, ChartMuseum's multi-tenant layout with
//! repository names that may contain `/`: a path becomes a [`Path`], and a
//! method and a path a [`Route`], which says what access it needs.
//!
//! | path                                       | path                  |
//! |--------------------------------------------|-----------------------|
//! | `{repo}/index.yaml`                        | [`Path::Index`]       |
//! | `{repo}/charts/{file}`                     | [`Path::File`]        |
//! | `api/{repo}/charts`                        | [`Path::Charts`]      |
//! | `api/{repo}/charts/{name}`                 | [`Path::Chart`]       |
//! | `api/{repo}/charts/{name}/{version}`       | [`Path::Version`]     |
//! | `api/{repo}/prov`                          | [`Path::Prov`]        |
//! | `api` (Berth's own: the chart repositories) | [`Path::Repositories`] |
//!
//! The repository is what precedes the *last* reserved segment that fits
//! (`charts`, `prov`, `index.yaml`), so a repository may itself contain a
//! `charts` component. Paths starting with `api/` are the API's: a
//! repository's first component cannot be `api` (uploads refuse it).

use hyper::{Method, StatusCode};
use registry::ext::{percent_decode, Endpoint, Need, RepoName, Role};

use crate::Error;

/// A request: its method and path, with access decided by the method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// What the path names.
    pub path: Path,
    /// The method, one the path allows.
    pub method: Method,
}

impl Route {
    /// Parses the path after `/helm/` and checks that `method` fits it.
    pub fn parse(method: &Method, path: &str) -> Result<Self, Error> {
        let path = Path::parse(path)?;
        let get = matches!(*method, Method::GET | Method::HEAD);
        let fits = match &path {
            Path::Repositories | Path::Index(_) | Path::File(..) | Path::Chart(..) => get,
            Path::Charts(_) => *method == Method::GET || *method == Method::POST,
            Path::Prov(_) => *method == Method::POST,
            Path::Version(..) => get || *method == Method::DELETE,
        };
        if !fits {
            return Err(Error::Route(StatusCode::METHOD_NOT_ALLOWED));
        }
        Ok(Self {
            path,
            method: method.clone(),
        })
    }
}

impl Endpoint for Route {
    /// Reads need `pull`, uploads `push`, deletes `admin`.
    fn need(&self) -> Need {
        Need::Role(match self.method {
            Method::GET | Method::HEAD => Role::Pull,
            Method::DELETE => Role::Admin,
            _ => Role::Push,
        })
    }

    fn label(&self) -> &'static str {
        "helm"
    }

    /// Uploads and deletes.
    fn writes(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD)
    }
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Path {
    /// Every chart repository (Berth's own, for the web console).
    Repositories,
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

impl Path {
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
        if path == "api" || path == "api/" {
            return Ok(Self::Repositories);
        }
        if let Some(api) = path.strip_prefix("api/") {
            let parts: Vec<&str> = api.split('/').collect();
            return match parts.as_slice() {
                [rest @ .., "charts"] if !rest.is_empty() => Ok(Self::Charts(repo(rest)?)),
                [rest @ .., "prov"] if !rest.is_empty() => Ok(Self::Prov(repo(rest)?)),
                [rest @ .., "charts", name] if !rest.is_empty() && !name.is_empty() => {
                    Ok(Self::Chart(repo(rest)?, percent_decode(name)))
                }
                [rest @ .., "charts", name, version]
                    if !rest.is_empty() && !name.is_empty() && !version.is_empty() =>
                {
                    Ok(Self::Version(
                        repo(rest)?,
                        percent_decode(name),
                        percent_decode(version),
                    ))
                }
                _ => Err(not_found()),
            };
        }
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            [rest @ .., "index.yaml"] if !rest.is_empty() => Ok(Self::Index(repo(rest)?)),
            [rest @ .., "charts", file] if !rest.is_empty() && !file.is_empty() => {
                Ok(Self::File(repo(rest)?, percent_decode(file)))
            }
            _ => Err(not_found()),
        }
    }
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
            ("team/apps/index.yaml", Path::Index(repo("team/apps"))),
            (
                "r/charts/web-1.0.0%2Bb.tgz",
                Path::File(repo("r"), "web-1.0.0+b.tgz".into()),
            ),
            ("api/r/charts", Path::Charts(repo("r"))),
            ("api", Path::Repositories),
            ("api/a/b/prov", Path::Prov(repo("a/b"))),
            ("api/r/charts/web", Path::Chart(repo("r"), "web".into())),
            (
                "api/r/charts/web/latest",
                Path::Version(repo("r"), "web".into(), "latest".into()),
            ),
            // The last fitting `charts` wins: a repository may contain one.
            ("api/x/charts/charts", Path::Charts(repo("x/charts"))),
            (
                "x/charts/charts/web-1.0.0.tgz",
                Path::File(repo("x/charts"), "web-1.0.0.tgz".into()),
            ),
        ];
        for (path, route) in cases {
            assert_eq!(Path::parse(path).unwrap(), route, "{path}");
        }
    }

    #[test]
    fn methods_decide_access() {
        let need = |m: Method, p: &str| Route::parse(&m, p).map(|r| r.need());
        assert_eq!(
            need(Method::GET, "r/index.yaml").unwrap(),
            Need::Role(Role::Pull)
        );
        assert_eq!(
            need(Method::HEAD, "r/charts/a-1.0.0.tgz").unwrap(),
            Need::Role(Role::Pull)
        );
        assert_eq!(
            need(Method::GET, "api/r/charts").unwrap(),
            Need::Role(Role::Pull)
        );
        assert_eq!(
            need(Method::POST, "api/r/charts").unwrap(),
            Need::Role(Role::Push)
        );
        assert_eq!(
            need(Method::POST, "api/r/prov").unwrap(),
            Need::Role(Role::Push)
        );
        assert_eq!(
            need(Method::GET, "api/r/charts/a/1.0.0").unwrap(),
            Need::Role(Role::Pull)
        );
        assert_eq!(
            need(Method::DELETE, "api/r/charts/a/1.0.0").unwrap(),
            Need::Role(Role::Admin)
        );
        for (m, p) in [
            (Method::POST, "r/index.yaml"),
            (Method::DELETE, "api/r/charts"),
            (Method::GET, "api/r/prov"),
            (Method::DELETE, "api/r/charts/a"),
            (Method::PUT, "api/r/charts/a/1.0.0"),
        ] {
            assert!(
                matches!(
                    Route::parse(&m, p),
                    Err(Error::Route(StatusCode::METHOD_NOT_ALLOWED))
                ),
                "{m} {p}"
            );
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
            assert!(Path::parse(path).is_err(), "{path}");
        }
        assert!(matches!(
            Path::parse("Bad/index.yaml"),
            Err(Error::BadRequest(_))
        ));
    }
}
