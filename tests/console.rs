//! The web console in a real browser: Debian's headless Chromium, driven
//! through chromedriver (WebDriver, with the `fantoccini` crate), against a
//! real `berth` process and real webhook receivers. `scripts/test.sh`
//! installs both; a missing one fails these tests, it never skips them.
//! Each test leaves screenshots in `target/console-screenshots/`, from
//! which `docs/console.md`'s are taken.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use support::helm::Helm;
use support::receiver::{Receiver, Reply};
use support::{http, BerthProcess};

/// How long anything the page does may take.
const PATIENCE: Duration = Duration::from_secs(20);

/// A headless Chromium, through its own chromedriver.
struct Browser {
    driver: Child,
    client: Client,
    base: String,
}

impl Browser {
    async fn open(base: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (scripts/setup-test-env.sh installs chromium-driver)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < PATIENCE, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let caps = json!({"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"],
        }});
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Self {
            driver,
            client,
            base: base.to_owned(),
        }
    }

    /// Opens a page of the console (`#/webhooks`).
    async fn go(&self, hash: &str) {
        self.client
            .goto(&format!("{}/console/#{hash}", self.base))
            .await
            .unwrap();
    }

    /// The element `css` once it exists.
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    /// Waits until the text of `css` contains `text`; returns that text.
    async fn wait_text(&self, css: &str, text: &str) -> String {
        let started = Instant::now();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = el.text().await {
                    if t.contains(text) {
                        return t;
                    }
                }
            }
            if started.elapsed() > PATIENCE {
                self.screenshot("failure").await;
                let page = match self.client.find(Locator::Css("body")).await {
                    Ok(body) => body.text().await.unwrap_or_default(),
                    Err(e) => e.to_string(),
                };
                panic!("{css} never showed {text:?}; the page shows:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    async fn type_in(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        el.clear().await.unwrap();
        el.send_keys(text).await.unwrap();
    }

    /// Whether an element `css` exists now.
    async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// Saves a screenshot as `target/console-screenshots/{name}.png`.
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The portal's flow, in a browser alone: land on the console from `/`,
/// find an image down to its layers, add a webhook through the form, ping
/// it and read the HTTP status, open its delivery, redeliver, delete it.
#[tokio::test(flavor = "multi_thread")]
async fn a_newcomer_finds_an_image_then_adds_pings_and_deletes_a_webhook() {
    let reg = BerthProcess::start();
    let (manifest, r) = support::push_image(&reg.url(), "team/web", "v1", 7);
    assert_eq!(r.status, 201);
    let layer: Value = serde_json::from_slice(&manifest).unwrap();
    let layer = layer["layers"][0]["digest"].as_str().unwrap().to_owned();
    let rx = Receiver::start();
    let b = Browser::open(&reg.url()).await;

    b.client.goto(&format!("{}/", reg.url())).await.unwrap();
    b.find("a[href='#/repositories/team/web']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("table", "v1").await;
    b.screenshot("repository").await;
    b.find("a[href^='#/manifest/team/web@']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("main", &layer).await;
    b.wait_text(
        "main",
        &format!("docker pull {}/team/web@sha256:", reg.host),
    )
    .await;
    b.screenshot("manifest").await;
    b.go("/repositories").await;
    b.wait_text("table", "team/web").await;
    b.screenshot("repositories").await;

    b.click("a[data-page='webhooks']").await;
    b.click("#add-webhook").await;
    b.type_in("#webhook-name", "bad_name").await;
    b.wait_text("#name-check", "nothing else").await;
    b.type_in("#webhook-name", "consolehook1").await;
    b.wait_text("#name-check", "Looks good").await;
    b.type_in("#service-uri", &rx.url).await;
    b.type_in("#custom-headers", "X-Token: abc").await;
    b.click("#action-delete").await;
    b.screenshot("webhook-add").await;
    b.click("#save").await;
    b.click("#ping").await;
    b.wait_text("#ping-result", "Ping answered 200").await;
    let ping = rx.next();
    assert_eq!(ping.json()["action"], "ping");
    assert_eq!(ping.header("x-token"), Some("abc"));
    b.wait_text("table tbody tr:first-child td:first-child", "200")
        .await;
    b.click("table tbody details summary").await;
    b.wait_text("table tbody details", "\"method\": \"POST\"")
        .await;
    b.screenshot("webhook").await;
    b.click("table tbody tr:first-child button").await;
    assert_eq!(rx.next().json()["id"], ping.json()["id"], "redelivered");
    let hook = http(
        "GET",
        &format!("{}/api/webhooks/consolehook1", reg.url()),
        &[],
        &[],
    )
    .json();
    assert_eq!(hook["actions"], json!(["push", "delete"]));

    b.go("/webhooks").await;
    b.wait_text("table", "consolehook1").await;
    b.screenshot("webhooks").await;
    b.click("a[href='#/webhooks/consolehook1']").await;
    b.click("#delete").await;
    b.client.accept_alert().await.unwrap();
    b.wait_text("main h1", "Webhooks").await;
    let gone = http(
        "GET",
        &format!("{}/api/webhooks/consolehook1", reg.url()),
        &[],
        &[],
    );
    assert_eq!(gone.status, 404);
    b.go("/status").await;
    b.wait_text("#config", "listen").await;
    b.screenshot("status").await;

    // Policies: read-only mode switched from the console stops pushes.
    b.go("/policies").await;
    b.click("#read-only").await;
    b.wait_text("main", "Read-only: yes (api)").await;
    let r = http(
        "POST",
        &format!("{}/v2/team/web/blobs/uploads/", reg.url()),
        &[],
        &[],
    );
    assert_eq!(r.status, 405);
    b.screenshot("policies").await;
    b.click("#read-only").await;
    b.wait_text("main", "Read-only: no").await;
    b.close().await;
}

/// The chart pages show the `helm repo add` and `helm pull` lines, for a
/// ChartMuseum-style repository and for a chart pushed with `helm push`;
/// helm runs each line as shown.
#[tokio::test(flavor = "multi_thread")]
async fn chart_pages_show_helm_lines_that_work() {
    let reg = BerthProcess::start();
    let helm = Helm::new();
    let tgz = helm.package("web", "0.1.0", |_| {});
    let upload = http(
        "POST",
        &format!("{}/helm/api/team/charts", reg.url()),
        &[],
        &std::fs::read(&tgz).unwrap(),
    );
    assert_eq!(
        upload.status,
        201,
        "{}",
        String::from_utf8_lossy(&upload.body)
    );
    let oci = format!("oci://{}/ocicharts", reg.host);
    helm.run(&["push", tgz.to_str().unwrap(), &oci, "--plain-http"]);
    let b = Browser::open(&reg.url()).await;
    // Runs every command line the page shows that starts with `helm`.
    let run_shown = |lines: Vec<String>| {
        for line in lines.iter().filter(|l| l.starts_with("helm ")) {
            let args: Vec<&str> = line.split_whitespace().skip(1).collect();
            helm.run(&args);
        }
        lines
    };
    let shown = |b: &Browser| {
        let client = b.client.clone();
        async move {
            let mut lines = Vec::new();
            for code in client.find_all(Locator::Css("main code")).await.unwrap() {
                lines.push(code.text().await.unwrap());
            }
            lines
        }
    };

    b.go("/charts").await;
    b.click("a[href='#/charts/team']").await;
    b.wait_text("main", "helm pull team/web --version 0.1.0")
        .await;
    b.screenshot("charts").await;
    let lines = run_shown(shown(&b).await);
    assert_eq!(
        lines,
        [
            format!("helm repo add team {}/helm/team", reg.url()),
            "helm pull team/web --version 0.1.0".to_owned()
        ]
    );
    assert!(
        helm.path("web-0.1.0.tgz").exists(),
        "helm pull from the repository"
    );
    std::fs::remove_file(helm.path("web-0.1.0.tgz")).unwrap();

    b.go("/repositories/ocicharts/web").await;
    b.click("a[href^='#/manifest/ocicharts/web@']").await;
    b.wait_text("main", "helm pull oci://").await;
    let lines = run_shown(shown(&b).await);
    assert_eq!(
        lines,
        [format!(
            "helm pull oci://{}/ocicharts/web --version 0.1.0 --plain-http",
            reg.host
        )]
    );
    assert!(helm.path("web-0.1.0.tgz").exists(), "helm pull from oci://");
    b.close().await;
}

/// The events page updates by itself: a push made elsewhere appears.
#[tokio::test(flavor = "multi_thread")]
async fn a_push_appears_on_the_events_page_by_itself() {
    let reg = BerthProcess::start();
    let b = Browser::open(&reg.url()).await;
    b.go("/events").await;
    b.find("#events").await;
    let (_, r) = support::push_image(&reg.url(), "live/app", "now", 3);
    assert_eq!(r.status, 201);
    b.wait_text("#events tbody", "live/app").await;
    b.screenshot("events").await;
    b.close().await;
}

/// With access control on, the console asks to sign in; a pull user sees
/// read-only pages (no add, edit or delete buttons), and the API refuses
/// anyway.
#[tokio::test(flavor = "multi_thread")]
async fn a_pull_user_signs_in_and_finds_no_edit_buttons() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!(
            "{}\n{}\n",
            support::htpasswd("reader", "r-pw"),
            support::htpasswd("boss", "b-pw")
        ),
    )
    .unwrap();
    let reg = BerthProcess::with_config(&format!(
        "[auth]\nhtpasswd = \"{}\"\nroles = {{ boss = \"admin\" }}\n",
        htpasswd.display()
    ));
    let basic = |u: &str, p: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    };
    let boss = basic("boss", "b-pw");
    let config = support::push_blob_as(&reg.url(), "locked/app", b"{}", &boss);
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2}, "layers": []});
    let r = http(
        "PUT",
        &format!("{}/v2/locked/app/manifests/v1", reg.url()),
        &[
            ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
            ("Authorization", &boss),
        ],
        manifest.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201);

    let b = Browser::open(&reg.url()).await;
    b.go("/repositories").await;
    b.type_in("#user", "reader").await;
    b.type_in("#password", "wrong").await;
    b.click("button[type=submit]").await;
    b.wait_text("main .error", "Wrong user name or password")
        .await;
    b.type_in("#password", "r-pw").await;
    b.click("button[type=submit]").await;
    b.wait_text("table", "locked/app").await;
    b.wait_text("#who", "reader (pull)").await;
    b.click("a[href='#/repositories/locked/app']").await;
    b.wait_text("table", "v1").await;
    assert!(
        !b.has("button.danger").await,
        "a delete button for a pull user"
    );
    b.click("a[href^='#/manifest/']").await;
    b.wait_text("main", "Layers").await;
    assert!(
        !b.has("button.danger").await,
        "a delete button for a pull user"
    );
    b.click("a[data-page='webhooks']").await;
    b.wait_text("main", "does not allow").await;
    assert!(!b.has("#add-webhook").await);
    b.screenshot("signed-in-pull-user").await;
    b.close().await;
}

/// What receivers answer and what users type is shown as text: a receiver
/// answering with markup, a custom header holding a script and an
/// annotation holding an image with an onerror run nothing.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_values_are_shown_as_text_and_run_nothing() {
    let reg = BerthProcess::start();
    let evil = "<img src=x onerror=\"window.__pwned=1\">";
    let rx = Receiver::with_default(Reply::WithBody(200, evil.into()));
    let body = json!({"serviceUri": rx.url, "actions": ["push"],
        "customHeaders": {"X-Evil": "<script>window.__pwned=2</script>"}});
    let r = http(
        "PUT",
        &format!("{}/api/webhooks/evilhook1", reg.url()),
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201);
    let ping = http(
        "POST",
        &format!("{}/api/webhooks/evilhook1/ping", reg.url()),
        &[],
        &[],
    );
    assert_eq!(ping.json()["statusCode"], 200);
    let config = support::push_blob(&reg.url(), "x/app", b"{}");
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2}, "layers": [],
        "annotations": {"note": "<img src=x onerror=\"window.__pwned=3\">"}});
    let bytes = manifest.to_string();
    let r = http(
        "PUT",
        &format!("{}/v2/x/app/manifests/v1", reg.url()),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        bytes.as_bytes(),
    );
    assert_eq!(r.status, 201);

    let b = Browser::open(&reg.url()).await;
    b.go("/webhooks/evilhook1").await;
    b.click("table tbody details summary").await;
    b.wait_text("table tbody details", "onerror").await;
    b.go(&format!(
        "/manifest/x/app@{}",
        support::digest(bytes.as_bytes())
    ))
    .await;
    b.wait_text("main", "window.__pwned=3").await;
    let pwned = b
        .client
        .execute("return window.__pwned === undefined", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, json!(true), "a hostile value ran as script");
    b.close().await;
}

/// Cross-site request forgery: a page of another site cannot make a
/// browser change the registry, for the console's API and every other
/// state-changing request; clients without an Origin are not affected.
#[tokio::test(flavor = "multi_thread")]
async fn a_cross_site_state_change_is_refused() {
    let reg = BerthProcess::start();
    let put = |headers: &[(&str, &str)], name: &str| {
        let body = json!({"serviceUri": "http://127.0.0.1:9/x", "actions": ["push"]}).to_string();
        let mut all = vec![("Content-Type", "text/plain")];
        all.extend_from_slice(headers);
        http(
            "PUT",
            &format!("{}/api/webhooks/{name}", reg.url()),
            &all,
            body.as_bytes(),
        )
    };
    let own = format!("http://{}", reg.host);
    for (headers, name, status) in [
        (vec![("Origin", "http://evil.example")], "csrfhook1", 403),
        (vec![("Sec-Fetch-Site", "cross-site")], "csrfhook2", 403),
        (vec![("Origin", "null")], "csrfhook3", 403),
        (vec![("Origin", own.as_str())], "samehook1", 201),
        (vec![], "cliehook1", 201),
    ] {
        assert_eq!(put(&headers, name).status, status, "{headers:?}");
    }
    let r = http(
        "POST",
        &format!("{}/v2/x/blobs/uploads/", reg.url()),
        &[("Origin", "http://evil.example")],
        &[],
    );
    assert_eq!(r.status, 403, "a registry write too");

    // The real thing: a page elsewhere posts to the registry.
    let b = Browser::open(&reg.url()).await;
    b.client
        .goto("data:text/html,<p>another site</p>")
        .await
        .unwrap();
    let script = format!(
        "const done = arguments[0]; fetch('{}/api/webhooks/forgedhook1', {{method: 'PUT', mode: 'no-cors', \
         headers: {{'Content-Type': 'text/plain'}}, body: JSON.stringify({{serviceUri: 'http://127.0.0.1:9/x', actions: ['push']}})}}) \
         .then(() => done('sent'), (e) => done(String(e)));",
        reg.url()
    );
    b.client.execute_async(&script, vec![]).await.unwrap();
    let forged = http(
        "GET",
        &format!("{}/api/webhooks/forgedhook1", reg.url()),
        &[],
        &[],
    );
    assert_eq!(forged.status, 404, "the forged request created a webhook");
    b.close().await;
}
