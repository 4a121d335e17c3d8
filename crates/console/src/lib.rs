//! Berth's web console under `/console`: one page, its script and its
//! style sheet, embedded in the binary (nothing is fetched from elsewhere,
//! so it works on an air-gapped machine), and the effective configuration
//! as `berth config` prints it (secrets masked).
//!
//! The page changes nothing itself: everything it shows or changes goes
//! through the registry's JSON APIs, with the signed-in user's credentials,
//! so the API's access control is the console's. It builds every element
//! from text (`textContent`, never markup), and every response here carries
//! a Content-Security-Policy without inline script and with
//! `frame-ancestors 'none'`.

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use registry::ext::body::{self, Body};
use registry::ext::{Ctx, Endpoint, Extension, Need, Role};

/// The page, its script and its style sheet.
const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");

/// What the console's responses allow the browser to do: run and load
/// only the console's own files, talk only to this registry, be framed by
/// nobody.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The console, mounted under `/console`.
#[derive(Debug)]
pub struct Console {
    /// The effective configuration, secrets masked (`berth config`).
    config: String,
}

impl Console {
    /// A console that shows `config` (already masked) on its status page.
    pub fn new(config: String) -> Self {
        Self { config }
    }
}

/// A request under `/console`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The page (`/console`, `/console/`).
    Page,
    /// `/console/app.js`
    Script,
    /// `/console/app.css`
    Style,
    /// `/console/config`: the masked configuration (admins).
    Config,
}

impl Endpoint for Route {
    /// The files are open (they hold no data); the configuration is an
    /// admin's.
    fn need(&self) -> Need {
        match self {
            Route::Config => Need::Role(Role::Admin),
            _ => Need::Open,
        }
    }

    fn label(&self) -> &'static str {
        "console"
    }

    fn writes(&self) -> bool {
        false
    }
}

impl Extension for Console {
    type Route = Route;

    fn prefix(&self) -> &'static str {
        "/console"
    }

    fn parse(&self, method: &Method, path: &str) -> Result<Route, Box<Response<Body>>> {
        if !matches!(*method, Method::GET | Method::HEAD) {
            return Err(Box::new(with_policy(plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
            ))));
        }
        match path {
            "" | "/" => Ok(Route::Page),
            "/app.js" => Ok(Route::Script),
            "/app.css" => Ok(Route::Style),
            "/config" => Ok(Route::Config),
            _ => Err(Box::new(with_policy(plain(
                StatusCode::NOT_FOUND,
                "not found",
            )))),
        }
    }

    async fn handle(&self, _ctx: &Ctx, route: Route, req: Request<Incoming>) -> Response<Body> {
        let (text, content_type) = match route {
            Route::Page => (INDEX, "text/html; charset=utf-8"),
            Route::Script => (SCRIPT, "text/javascript; charset=utf-8"),
            Route::Style => (STYLE, "text/css; charset=utf-8"),
            Route::Config => (self.config.as_str(), "text/plain; charset=utf-8"),
        };
        let body = if req.method() == Method::HEAD {
            body::empty()
        } else {
            body::full(text.to_owned())
        };
        let mut resp = Response::new(body);
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        with_policy(resp)
    }
}

/// `resp` with the console's security headers.
fn with_policy(mut resp: Response<Body>) -> Response<Body> {
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(body::full(text));
    *resp.status_mut() = status;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_its_files_and_nothing_else() {
        let c = Console::new(String::new());
        assert_eq!(c.parse(&Method::GET, "/").unwrap(), Route::Page);
        assert_eq!(c.parse(&Method::GET, "").unwrap(), Route::Page);
        assert_eq!(c.parse(&Method::GET, "/app.js").unwrap(), Route::Script);
        assert_eq!(
            c.parse(&Method::GET, "/config").unwrap().need(),
            Need::Role(Role::Admin)
        );
        assert_eq!(c.parse(&Method::GET, "/app.js").unwrap().need(), Need::Open);
        assert_eq!(
            c.parse(&Method::GET, "/../etc/passwd")
                .unwrap_err()
                .status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            c.parse(&Method::POST, "/").unwrap_err().status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        // Within the budget the image's size allows.
        assert!(INDEX.len() + SCRIPT.len() + STYLE.len() < 150_000);
        // No inline script or style: the policy would block it.
        assert!(!INDEX.contains("<script>") && !INDEX.contains("style="));
    }
}
