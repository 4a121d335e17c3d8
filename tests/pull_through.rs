//! The pull-through cache, with another Berth process as the upstream (with
//! Basic auth, then with token auth), the real clients pulling through
//! (skopeo, oras, docker through its `registry-mirrors`), the upstream
//! stopped mid-test, a lying upstream whose content fails its digest, and a
//! slow one whose blob reaches the client before the upstream has sent it all.

#![allow(clippy::unwrap_used)] // a test crate: panicking is how it fails

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use support::tokens::{claims, token_server, Signer, ISSUER, SERVICE};
use support::{digest, docker, http, push_blob_as, random_bytes, run, BerthProcess};

/// A cache whose `up/` repositories come from `upstream` (with these
/// credentials), asking it again about every tag.
fn cache_of(upstream: &str, credentials: Option<(&str, &str)>) -> BerthProcess {
    let creds = credentials.map_or(String::new(), |(u, p)| {
        format!("username = \"{u}\"\npassword = \"{p}\"\n")
    });
    BerthProcess::with_config(&format!(
        "[[upstreams]]\nprefix = \"up\"\nurl = \"{upstream}\"\ntag_ttl = \"0s\"\n{creds}"
    ))
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Pushes a manifest of one layer whose title annotation names a file (as
/// oras pushes one) to `url` with `authorization`; returns the manifest.
fn push_artifact(url: &str, repo: &str, tag: &str, content: &[u8], authorization: &str) -> Vec<u8> {
    let config = push_blob_as(url, repo, b"{}", authorization);
    let layer = push_blob_as(url, repo, content, authorization);
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "text/plain", "digest": layer, "size": content.len(),
                    "annotations": {"org.opencontainers.image.title": "hello.txt"}}],
    })
    .to_string()
    .into_bytes();
    let r = http(
        "PUT",
        &format!("{url}/v2/{repo}/manifests/{tag}"),
        &[
            ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
            ("Authorization", authorization),
        ],
        &manifest,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    manifest
}

fn blob_files(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<_> = std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| std::fs::read(dir.join("blobs/sha256").join(n)).unwrap())
        .collect()
}

/// An upstream with Basic auth: skopeo and oras pull through the cache
/// (byte for byte), the fills raise no push events, a push into the cache
/// is refused, and once the upstream is stopped the cached tags are still
/// served while an uncached one fails cleanly.
#[test]
fn skopeo_and_oras_pull_through_and_the_cache_outlives_its_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(&htpasswd, support::htpasswd("mirror", "m-pw")).unwrap();
    let mut upstream = BerthProcess::with_config(&format!(
        "[auth]\nhtpasswd = \"{}\"\nroles = {{ mirror = \"admin\" }}\n",
        htpasswd.display()
    ));
    let auth = basic("mirror", "m-pw");
    let src = tmp.path().join("src");
    let md = support::oci_layout(&src, "v1");
    run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "mirror:m-pw",
            &format!("oci:{}:v1", src.display()),
            &format!("docker://{}/team/img:v1", upstream.host),
        ],
    );
    push_artifact(
        &upstream.url(),
        "team/notes",
        "v1",
        b"hello through the cache\n",
        &auth,
    );

    let cache = cache_of(&upstream.url(), Some(("mirror", "m-pw")));
    let back = tmp.path().join("back");
    let copy_back = |dir: &Path| {
        run(
            "skopeo",
            &[
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{}/up/team/img:v1", cache.host),
                &format!("oci:{}:v1", dir.display()),
            ],
        );
    };
    copy_back(&back);
    assert!(
        blob_files(&src) == blob_files(&back),
        "skopeo's copy through the cache differs"
    );
    let inspect: Value = serde_json::from_str(&run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/up/team/img:v1", cache.host),
        ],
    ))
    .unwrap();
    assert_eq!(inspect["Digest"], md.as_str());

    let pulled = tmp.path().join("oras");
    let script = format!(
        "import oras.client\nc = oras.client.OrasClient(hostname='{h}', insecure=True)\nprint(c.pull(target='{h}/up/team/notes:v1', outdir='{d}'))",
        h = cache.host,
        d = pulled.display()
    );
    run("python3", &["-c", &script]);
    assert_eq!(
        std::fs::read(pulled.join("hello.txt")).unwrap(),
        b"hello through the cache\n"
    );

    // Fills are not pushes.
    let events = http("GET", &format!("{}/api/events", cache.url()), &[], &[]).json();
    assert_eq!(events["events"], json!([]), "{events}");
    let metrics =
        String::from_utf8(http("GET", &format!("{}/metrics", cache.url()), &[], &[]).body).unwrap();
    assert!(
        metrics.contains(
            "berth_upstream_requests_total{upstream=\"up\",kind=\"blob\",outcome=\"fill\"}"
        ),
        "{metrics}"
    );
    // Pushes into the cache are refused with a clear message.
    let out = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", src.display()),
            &format!("docker://{}/up/team/img:v2", cache.host),
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("pull-through cache"),
        "{said}"
    );

    // The upstream goes away: what was cached is still served.
    upstream.kill9();
    let again = tmp.path().join("again");
    copy_back(&again);
    assert!(blob_files(&src) == blob_files(&again));
    let missing = http(
        "GET",
        &format!("{}/v2/up/team/img/manifests/v9", cache.url()),
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        &[],
    );
    assert_eq!(
        (missing.status, missing.error_code()),
        (503, "UNAVAILABLE".into())
    );
}

/// An upstream that wants tokens: the cache answers its Bearer challenge
/// with a token from the upstream's token server, with its credentials.
#[test]
fn pulls_through_an_upstream_that_wants_tokens() {
    let signer = Signer::new();
    let tmp = tempfile::tempdir().unwrap();
    let cert = tmp.path().join("signers.pem");
    std::fs::write(&cert, &signer.cert_pem).unwrap();
    let admin = signer.sign(&claims(
        "setup",
        json!([{"type": "repository", "name": "team/notes", "actions": ["*"]}]),
    ));
    let realm = token_server(signer);
    let upstream = BerthProcess::with_config(&format!(
        "[auth.token]\nrealm = \"{realm}\"\nservice = \"{SERVICE}\"\nissuer = \"{ISSUER}\"\ncertificates = \"{}\"\n",
        cert.display()
    ));
    let manifest = push_artifact(
        &upstream.url(),
        "team/notes",
        "v1",
        b"tokens work\n",
        &format!("Bearer {admin}"),
    );

    let cache = cache_of(&upstream.url(), Some(("alice", "secret")));
    let r = http(
        "GET",
        &format!("{}/v2/up/team/notes/manifests/v1", cache.url()),
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        &[],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.body == manifest);
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let r = http(
        "GET",
        &format!("{}/v2/up/team/notes/blobs/{layer}", cache.url()),
        &[],
        &[],
    );
    assert_eq!(r.body, b"tokens work\n");

    // With a wrong password the token server refuses, and so does the cache.
    let wrong = cache_of(&upstream.url(), Some(("alice", "wrong")));
    let r = http(
        "GET",
        &format!("{}/v2/up/team/notes/manifests/v1", wrong.url()),
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        &[],
    );
    assert_eq!(r.status, 503);
    assert!(
        String::from_utf8_lossy(&r.body).contains("token realm"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

/// docker pulls `alpine` from "Docker Hub" through Berth as its
/// `registry-mirrors` entry (the test daemon has it, see
/// `scripts/setup-test-env.sh`): Berth, in mirror mode, serves
/// `library/alpine` from its upstream, another Berth.
#[test]
fn docker_pulls_through_its_registry_mirror() {
    let port: u16 = std::env::var("BERTH_TEST_MIRROR_PORT")
        .expect("BERTH_TEST_MIRROR_PORT (scripts/setup-test-env.sh)")
        .parse()
        .unwrap();
    let upstream = BerthProcess::start();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("f.txt"), "mirrored").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY f.txt /\nCMD [\"/x\"]\n",
    )
    .unwrap();
    let at_upstream = format!("{}/library/alpine:latest", upstream.host);
    docker(&[
        "build",
        "-q",
        "-t",
        &at_upstream,
        ctx.path().to_str().unwrap(),
    ]);
    docker(&["push", &at_upstream]);
    docker(&["rmi", &at_upstream]);

    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("berth.toml");
    std::fs::write(
        &config,
        format!(
            "[[upstreams]]\nprefix = \"hub\"\nurl = \"{}\"\nmirror = true\n",
            upstream.url()
        ),
    )
    .unwrap();
    let mirror = BerthProcess::start_with(
        &data.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
    );
    let _ = std::process::Command::new("docker")
        .args(["rmi", "alpine"])
        .output();
    docker(&["pull", "alpine"]);
    let id = docker(&["image", "inspect", "-f", "{{.Id}}", "alpine"]);
    assert!(id.starts_with("sha256:"), "{id}");
    docker(&["rmi", "alpine"]);
    let tags = http(
        "GET",
        &format!("{}/v2/library/alpine/tags/list", mirror.url()),
        &[],
        &[],
    )
    .json();
    assert_eq!(tags["tags"], json!(["latest"]), "the mirror cached it");
    // The same through the prefix.
    let r = http(
        "GET",
        &format!("{}/v2/hub/library/alpine/manifests/latest", mirror.url()),
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        &[],
    );
    assert_eq!(r.status, 200);
}

/// An upstream whose content does not hash to its digest: the pull is
/// refused and nothing of it is stored.
#[test]
fn a_lying_upstream_is_refused_and_nothing_is_cached() {
    let real = b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\",\"size\":2},\"layers\":[]}".to_vec();
    let claimed = digest(&real);
    let honest = Arc::new(AtomicBool::new(false));
    let url = {
        let (honest, claimed, real) = (honest.clone(), claimed.clone(), real.clone());
        raw_upstream(move |line, stream| {
            let head = line.starts_with("HEAD");
            let body: Vec<u8> = if line.contains("/blobs/") {
                if honest.load(Ordering::Relaxed) {
                    b"{}".to_vec()
                } else {
                    b"{ }".to_vec()
                }
            } else if honest.load(Ordering::Relaxed) {
                real.clone()
            } else {
                real.iter()
                    .map(|b| if *b == b'2' { b'3' } else { *b })
                    .collect()
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: {claimed}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if !head {
                let _ = stream.write_all(&body);
            }
        })
    };
    let cache = cache_of(&url, None);
    let get = |path: &str| {
        http(
            "GET",
            &format!("{}{path}", cache.url()),
            &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
            &[],
        )
    };
    let r = get("/v2/up/liar/manifests/v1");
    assert_eq!(r.status, 503);
    let said = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        said.contains(&format!("not {claimed}")) && said.contains("nothing cached"),
        "{said}"
    );
    let empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    // A HEAD waits for the fill: 503, saying why.
    let r = http(
        "HEAD",
        &format!("{}/v2/up/liar/blobs/{empty}", cache.url()),
        &[],
        &[],
    );
    assert_eq!(r.status, 503);
    // A GET streams: the response breaks off before its last bytes.
    let (head, body) = raw_get(&cache.host, &format!("/v2/up/liar/blobs/{empty}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        body.len() < 3,
        "the client got all of a lying blob: {body:?}"
    );
    let repos = get("/api/repositories").json();
    assert_eq!(
        repos["repositories"],
        json!([]),
        "something was cached: {repos}"
    );
    let fsck = get("/api/fsck").json();
    assert_eq!(fsck["blobs"], 0, "a blob was kept: {fsck}");

    // Once honest, the same pulls fill the cache.
    honest.store(true, Ordering::Relaxed);
    assert_eq!(get("/v2/up/liar/manifests/v1").status, 200);
    assert_eq!(get(&format!("/v2/up/liar/blobs/{empty}")).body, b"{}");
}

/// A blob streams through the cache: the client reads its first half while
/// the upstream still holds back the second; then all of it arrives, is
/// verified and is served from the cache afterwards. A blob the upstream
/// sends without a length (chunked) is filled first, then served.
#[test]
fn a_blob_reaches_the_client_while_the_cache_fills() {
    let blob = random_bytes(1 << 20, 42);
    let blob_digest = digest(&blob);
    let unsized_blob = random_bytes(100_000, 43);
    let unsized_digest = digest(&unsized_blob);
    let release = Arc::new(AtomicBool::new(false));
    let url = {
        let (blob, release) = (blob.clone(), release.clone());
        let (unsized_blob, unsized_digest) = (unsized_blob.clone(), unsized_digest.clone());
        raw_upstream(move |line, stream| {
            if !line.starts_with("GET") || !line.contains("/blobs/") {
                let _ = write!(
                    stream,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                return;
            }
            if line.contains(&unsized_digest) {
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                );
                for chunk in unsized_blob.chunks(30_000) {
                    let _ = write!(stream, "{:x}\r\n", chunk.len());
                    let _ = stream.write_all(chunk);
                    let _ = write!(stream, "\r\n");
                }
                let _ = write!(stream, "0\r\n\r\n");
                return;
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                blob.len()
            );
            let (first, second) = blob.split_at(blob.len() / 2);
            let _ = stream.write_all(first);
            let _ = stream.flush();
            while !release.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let _ = stream.write_all(second);
        })
    };
    let cache = cache_of(&url, None);
    let path = format!("/v2/up/slow/blobs/{blob_digest}");
    let mut conn = TcpStream::connect(&cache.host).unwrap();
    // A cache that waited for the whole blob would send nothing until the
    // upstream is released: that is this test failing, not hanging.
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        cache.host
    )
    .unwrap();
    let mut reader = BufReader::new(conn);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {}", blob.len())),
        "{head}"
    );
    // Chunked transfer is not used: the body is the blob's bytes.
    let mut first = vec![0; 256 << 10];
    // Only the test releases the upstream: these bytes came while it held
    // back the rest (or the read times out).
    reader.read_exact(&mut first).unwrap();
    assert_eq!(first, blob[..first.len()]);
    release.store(true, Ordering::Relaxed);
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    first.extend_from_slice(&rest);
    assert_eq!(first.len(), blob.len());
    assert_eq!(digest(&first), blob_digest, "the streamed blob");

    // Committed: served from the cache, counted once as a fill, once as a hit.
    let again = http("GET", &format!("{}{path}", cache.url()), &[], &[]);
    assert_eq!(again.body, blob);
    let metrics =
        String::from_utf8(http("GET", &format!("{}/metrics", cache.url()), &[], &[]).body).unwrap();
    for outcome in ["fill", "hit"] {
        assert!(
            metrics.contains(&format!(
                "berth_upstream_requests_total{{upstream=\"up\",kind=\"blob\",outcome=\"{outcome}\"}} 1"
            )),
            "{metrics}"
        );
    }
    let chunked = http(
        "GET",
        &format!("{}/v2/up/slow/blobs/{unsized_digest}", cache.url()),
        &[],
        &[],
    );
    assert_eq!(chunked.status, 200);
    assert_eq!(chunked.body, unsized_blob, "a blob sent without a length");
}

/// An upstream made of `respond`, which gets each request's first line
/// and writes the whole response; its URL.
fn raw_upstream(respond: impl Fn(&str, &mut TcpStream) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
            }
            respond(&line, &mut stream);
            let _ = stream.flush();
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
        }
    });
    url
}

/// `GET path` on a fresh connection: the response's head and whatever body
/// arrived before the connection closed.
fn raw_get(host: &str, path: &str) -> (String, Vec<u8>) {
    let mut conn = TcpStream::connect(host).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    let _ = conn.read_to_end(&mut all);
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    (
        String::from_utf8_lossy(&all[..split]).into_owned(),
        all[split + 4..].to_vec(),
    )
}
