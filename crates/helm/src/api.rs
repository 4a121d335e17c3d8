//! The HTTP API under `/helm`, as ChartMuseum serves it in multi-tenant mode
//! (see [`crate::route`] for the paths):
//!
//! | method     | path                                   | reply                     |
//! |------------|----------------------------------------|---------------------------|
//! | GET, HEAD  | `/helm/{repo}/index.yaml`              | the index                 |
//! | GET, HEAD  | `/helm/{repo}/charts/{file}`           | `.tgz` or `.tgz.prov`     |
//! | GET        | `/helm/api/{repo}/charts`              | `{name: [version...]}`    |
//! | POST       | `/helm/api/{repo}/charts[?force]`      | 201 `{"saved":true}`      |
//! | POST       | `/helm/api/{repo}/prov[?force]`        | 201 `{"saved":true}`      |
//! | GET, HEAD  | `/helm/api/{repo}/charts/{name}`       | `[version...]`            |
//! | GET, HEAD  | `/helm/api/{repo}/charts/{name}/{ver}` | one version (or `latest`) |
//! | DELETE     | `/helm/api/{repo}/charts/{name}/{ver}` | 200 `{"deleted":true}`    |
//!
//! An upload is the raw `.tgz` body, or `multipart/form-data` with the
//! fields `chart` and/or `prov`. Errors are `{"error": "..."}`.

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use registry::ext::body::{self, header_value, Body};
use registry::ext::{Ctx, Digest, Extension, Query, RepoName};
use serde_json::{json, Value};

use crate::index::ChartVersion;
use crate::metadata::{check_name, parse_version};
use crate::prov::Provenance;
use crate::route::{Path, Route};
use crate::store::{ChartRecord, NewChart, NewProv};
use crate::{chart, Error, Helm};

/// Largest upload (ChartMuseum's default `--max-upload-size`).
pub const MAX_UPLOAD: usize = 20 * 1024 * 1024;

type Reply = Result<Response<Body>, Error>;

impl Extension for Helm {
    type Route = Route;

    fn prefix(&self) -> &'static str {
        "/helm"
    }

    fn parse(&self, method: &Method, path: &str) -> Result<Route, Box<Response<Body>>> {
        let path = path.strip_prefix('/').unwrap_or(path);
        Route::parse(method, path).map_err(|e| Box::new(e.into_response(*method == Method::HEAD)))
    }

    async fn blob_roots(&self) -> Result<Vec<Digest>, registry::ext::Error> {
        self.store
            .blobs()
            .await
            .map_err(|e| registry::ext::Error::internal(format!("chart records: {e}")))
    }

    async fn handle(&self, ctx: &Ctx, route: Route, req: Request<Incoming>) -> Response<Body> {
        let head = route.method == Method::HEAD;
        self.dispatch(ctx, route, req)
            .await
            .unwrap_or_else(|e| e.into_response(head))
    }
}

impl Helm {
    async fn dispatch(&self, ctx: &Ctx, route: Route, req: Request<Incoming>) -> Reply {
        let query = Query::parse(req.uri().query());
        let force = query.get("force").is_some_and(|v| v != "false" && v != "0");
        let (parts, body) = req.into_parts();
        let head = route.method == Method::HEAD;
        match (route.method, route.path) {
            (Method::GET | Method::HEAD, Path::Repositories) => {
                let repos: Vec<Value> = self
                    .store
                    .repositories()
                    .await?
                    .into_iter()
                    .map(|(name, versions)| serde_json::json!({"name": name, "versions": versions}))
                    .collect();
                Ok(body::json(
                    StatusCode::OK,
                    &serde_json::json!({"repositories": repos}),
                ))
            }
            (Method::GET | Method::HEAD, Path::Index(repo)) => self.get_index(&repo, head).await,
            (Method::GET | Method::HEAD, Path::File(repo, file)) => {
                self.get_file(&repo, &file, head).await
            }
            (Method::GET, Path::Charts(repo)) => self.list_charts(&repo, &query).await,
            (Method::POST, Path::Charts(repo)) => {
                let form = read_upload(ctx, &parts.headers, body).await?;
                self.upload(ctx, &repo, form, force).await
            }
            (Method::POST, Path::Prov(repo)) => {
                let form = read_upload(ctx, &parts.headers, body).await?;
                let prov = match form {
                    Upload::Raw(bytes) => bytes,
                    Upload::Form { prov: Some(p), .. } => p,
                    Upload::Form { .. } => {
                        return Err(Error::BadRequest(
                            "no provenance file in form field prov".to_owned(),
                        ))
                    }
                };
                self.upload_prov(&repo, prov, force).await?;
                Ok(saved())
            }
            (Method::GET | Method::HEAD, Path::Chart(repo, name)) => {
                let versions = self.store.versions(&repo, &name).await?;
                if versions.is_empty() {
                    return Err(Error::NotFound(format!("chart {name} not found")));
                }
                let list: Vec<Value> = versions.iter().map(entry).collect::<Result<_, _>>()?;
                Ok(json_reply(&Value::Array(list), head))
            }
            (Method::GET | Method::HEAD, Path::Version(repo, name, version)) => {
                let record = self.version(&repo, &name, &version).await?;
                Ok(json_reply(&entry(&record)?, head))
            }
            (Method::DELETE, Path::Version(repo, name, version)) => {
                self.store
                    .delete(&repo, &name, &version, &ctx.request)
                    .await?;
                Ok(body::json(StatusCode::OK, &json!({"deleted": true})))
            }
            _ => Err(Error::Route(StatusCode::METHOD_NOT_ALLOWED)),
        }
    }

    /// `GET|HEAD /helm/{repo}/index.yaml`; an empty index for a repository
    /// without charts, so `helm repo add` works before the first upload.
    async fn get_index(&self, repo: &RepoName, head: bool) -> Reply {
        let file = self.store.index(repo).await?;
        let len = file.len();
        let body = if head {
            body::empty()
        } else {
            let frames = file
                .chunks()
                .map(|c| Ok::<_, std::io::Error>(Frame::data(c)));
            StreamBody::new(futures_util::stream::iter(frames)).boxed()
        };
        let mut resp = Response::new(body);
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-yaml"),
        );
        h.insert(header::CONTENT_LENGTH, len.into());
        Ok(resp)
    }

    /// `GET|HEAD /helm/{repo}/charts/{name}-{version}.tgz[.prov]`.
    async fn get_file(&self, repo: &RepoName, file: &str, head: bool) -> Reply {
        let found = self
            .store
            .file(repo, file)
            .await?
            .ok_or_else(|| Error::NotFound(format!("{file} not found")))?;
        let content_type = if found.prov {
            "application/pgp-signature"
        } else {
            "application/gzip"
        };
        let body = if head {
            body::empty()
        } else {
            body::stream(self.store.read(&found.blob).await?)
        };
        let mut resp = Response::new(body);
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(header::CONTENT_LENGTH, found.blob.size.into());
        Ok(resp)
    }

    /// `GET /helm/api/{repo}/charts[?offset=&limit=]`: paged by chart name.
    async fn list_charts(&self, repo: &RepoName, query: &Query) -> Reply {
        let number = |key: &str| -> Result<Option<usize>, Error> {
            query
                .get(key)
                .map(|v| {
                    v.parse::<usize>().map_err(|_| {
                        Error::BadRequest(format!("{key} is not a valid non-negative integer"))
                    })
                })
                .transpose()
        };
        let offset = number("offset")?.unwrap_or(0);
        let limit = number("limit")?.unwrap_or(usize::MAX);
        let mut out = serde_json::Map::new();
        for (name, versions) in self
            .store
            .all(repo)
            .await?
            .into_iter()
            .skip(offset)
            .take(limit)
        {
            let list: Vec<Value> = versions.iter().map(entry).collect::<Result<_, _>>()?;
            out.insert(name, Value::Array(list));
        }
        Ok(body::json(StatusCode::OK, &Value::Object(out)))
    }

    /// `POST /helm/api/{repo}/charts`: a chart, with or without its
    /// provenance file, or (multipart) a provenance file alone.
    async fn upload(&self, ctx: &Ctx, repo: &RepoName, upload: Upload, force: bool) -> Reply {
        let (chart, file_name, prov) = match upload {
            Upload::Raw(bytes) => (Some(bytes), None, None),
            Upload::Form {
                chart: Some((bytes, file_name)),
                prov,
            } => (Some(bytes), file_name, prov),
            Upload::Form {
                chart: None,
                prov: Some(prov),
            } => {
                self.upload_prov(repo, prov, force).await?;
                return Ok(saved());
            }
            Upload::Form { .. } => {
                return Err(Error::BadRequest(
                    "no package or provenance file found in form fields chart and prov".to_owned(),
                ))
            }
        };
        let bytes = chart.unwrap_or_default();
        check_repo(repo)?;
        let metadata = chart::parse(&bytes)?;
        // A browser may send a path: only the file name counts.
        let sent = file_name
            .as_deref()
            .map(|f| f.rsplit(['/', '\\']).next().unwrap_or(f));
        if let Some(sent) = sent.filter(|f| f.ends_with(".tgz")) {
            if sent != metadata.file_name() {
                return Err(Error::BadRequest(format!(
                    "the file {sent} holds chart {} version {}: it should be named {}",
                    metadata.name,
                    metadata.version,
                    metadata.file_name()
                )));
            }
        }
        let prov = prov.map(new_prov).transpose()?;
        let chart = NewChart { metadata, bytes };
        self.store
            .put_chart(repo, chart, prov, force, &ctx.request)
            .await?;
        Ok(saved())
    }

    async fn upload_prov(&self, repo: &RepoName, bytes: Bytes, force: bool) -> Result<(), Error> {
        check_repo(repo)?;
        self.store.put_prov(repo, new_prov(bytes)?, force).await
    }

    /// One version; `latest` is the newest that is not a pre-release (as
    /// ChartMuseum and `helm install` without `--version`).
    async fn version(
        &self,
        repo: &RepoName,
        name: &str,
        version: &str,
    ) -> Result<ChartRecord, Error> {
        let found = if version == "latest" {
            self.store
                .versions(repo, name)
                .await?
                .into_iter()
                .find(|r| parse_version(&r.metadata.version).is_ok_and(|v| v.pre.is_empty()))
        } else {
            self.store.record(repo, name, version).await?
        };
        found.ok_or_else(|| Error::NotFound(format!("chart {name} version {version} not found")))
    }
}

/// An upload body.
enum Upload {
    /// The raw `.tgz` (or provenance file).
    Raw(Bytes),
    /// `multipart/form-data`: the `chart` field (with the file name the
    /// client gave) and the `prov` field.
    Form {
        chart: Option<(Bytes, Option<String>)>,
        prov: Option<Bytes>,
    },
}

/// Reads an upload body of at most [`MAX_UPLOAD`] bytes (a body that
/// stalls for the registry's body idle timeout fails).
async fn read_upload(ctx: &Ctx, headers: &HeaderMap, body: Incoming) -> Result<Upload, Error> {
    let bytes = body::collect_limited(body, MAX_UPLOAD, ctx.body_idle_timeout)
        .await
        .map_err(|e| Error::BadRequest(format!("could not read the request body: {e}")))?
        .ok_or(Error::TooLarge(MAX_UPLOAD))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Ok(Upload::Raw(bytes));
    }
    let bad = |e: multer::Error| Error::BadRequest(format!("invalid multipart form: {e}"));
    let boundary = multer::parse_boundary(content_type).map_err(bad)?;
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
    let mut form = multer::Multipart::new(stream, boundary);
    let (mut chart, mut prov) = (None, None);
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().map(str::to_owned);
        let file_name = field.file_name().map(str::to_owned);
        let data = field.bytes().await.map_err(bad)?;
        match name.as_deref() {
            Some("chart") => chart = Some((data, file_name)),
            Some("prov") => prov = Some(data),
            _ => {}
        }
    }
    Ok(Upload::Form { chart, prov })
}

/// A provenance file whose chart name and version are usable as keys.
fn new_prov(bytes: Bytes) -> Result<NewProv, Error> {
    let provenance = Provenance::parse(&bytes)?;
    check_name(&provenance.name)?;
    parse_version(&provenance.version)?;
    Ok(NewProv { provenance, bytes })
}

/// Uploads cannot create a repository under `api/`: its paths are the API's.
fn check_repo(repo: &RepoName) -> Result<(), Error> {
    if repo.as_str().split('/').next() == Some("api") {
        return Err(Error::BadRequest(format!(
            "repository name {repo:?} is reserved: its first component cannot be \"api\""
        )));
    }
    Ok(())
}

fn entry(record: &ChartRecord) -> Result<Value, Error> {
    Ok(serde_json::to_value(ChartVersion::of(record))?)
}

fn saved() -> Response<Body> {
    body::json(StatusCode::CREATED, &json!({"saved": true}))
}

fn json_reply(value: &Value, head: bool) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes_reply(Bytes::from(bytes), "application/json", head)
}

/// `bytes` with its type and length; HEAD gets the headers alone.
fn bytes_reply(bytes: Bytes, content_type: &str, head: bool) -> Response<Body> {
    let len = bytes.len();
    let mut resp = Response::new(if head {
        body::empty()
    } else {
        body::full(bytes)
    });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, header_value(content_type));
    h.insert(header::CONTENT_LENGTH, len.into());
    resp
}
