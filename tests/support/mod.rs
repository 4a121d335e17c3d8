//! Shared pieces of the integration tests: a real `berth serve` process on
//! a free port ([`BerthProcess`]; the in-process fixture for users' own
//! tests is `berth::testing::TestRegistry`), a small HTTP client
//! ([`http`]), and helpers for running the real client tools.

#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sha2::{Digest as _, Sha256};

pub mod helm;
pub mod receiver;
pub mod shared;
pub mod tokens;

/// A `berth serve` process on `127.0.0.1:<free port>` over its own data
/// directory. Dropping it kills the process.
pub struct BerthProcess {
    child: Child,
    /// `127.0.0.1:PORT`, as clients write it in image references.
    pub host: String,
    dir: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl BerthProcess {
    /// Starts Berth on a fresh temporary data directory.
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut reg = Self::start_in(tmp.path());
        reg._tmp = Some(tmp);
        reg
    }

    /// Starts Berth on `dir` (which may hold a previous run's data).
    pub fn start_in(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// Starts Berth on a fresh temporary directory with this configuration file.
    pub fn with_config(toml: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = tmp.path().join("berth.toml");
        std::fs::write(&config, toml).expect("write config");
        let data = tmp.path().join("data");
        let mut reg = Self::start_with(&data, &["--config", config.to_str().expect("utf-8 path")]);
        reg._tmp = Some(tmp);
        reg
    }

    /// Starts Berth on `dir` with extra `berth serve` flags.
    pub fn start_with(dir: &Path, extra: &[&str]) -> Self {
        Self::start_env(dir, extra, &[])
    }

    /// Starts Berth on `dir` with extra flags and environment variables.
    /// Listens on `127.0.0.1:0` unless `extra` has a `--listen`.
    pub fn start_env(dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Self {
        let listen: &[&str] = if extra.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("serve")
            .args(listen)
            .arg("--data-dir")
            .arg(dir)
            .args(extra)
            .envs(envs.iter().copied())
            .env(
                "BERTH_LOG",
                std::env::var("BERTH_LOG").unwrap_or("warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn berth");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the ready line");
        let rest = line.trim().strip_prefix("listening on ");
        let host = rest
            .and_then(|r| {
                r.strip_prefix("http://")
                    .or_else(|| r.strip_prefix("https://"))
            })
            .unwrap_or_else(|| panic!("unexpected first line from berth: {line:?}"))
            .to_owned();
        Self {
            child,
            host,
            dir: dir.to_owned(),
            args: extra.iter().map(|a| a.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _tmp: None,
        }
    }

    /// Starts a new process on the same directory with the same flags and
    /// environment (after [`BerthProcess::kill9`] or
    /// [`BerthProcess::terminate`]).
    pub fn restart(mut self) -> Self {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let envs: Vec<(&str, &str)> = self
            .envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut next = Self::start_env(&self.dir, &args, &envs);
        next._tmp = self._tmp.take();
        next
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `kill -9`: no shutdown, no flush, no chance to finish anything.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// The exit status, if the process has exited by itself.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(ok.success());
        self.child.wait().expect("wait")
    }
}

impl Drop for BerthProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response, whatever its status.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `code` of the first error of a spec error body.
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Sends one request and returns the response, 4xx and 5xx included.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut req = ureq::request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.send_bytes(body) {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let mut names = resp.headers_names();
    names.dedup();
    let headers = names
        .iter()
        .flat_map(|n| {
            resp.all(n)
                .into_iter()
                .map(move |v| (n.clone(), v.to_owned()))
        })
        .collect();
    let mut body = Vec::new();
    resp.into_reader()
        .read_to_end(&mut body)
        .expect("read body");
    Resp {
        status,
        headers,
        body,
    }
}

/// The docker CLI, pointed at the daemon `scripts/test.sh` started.
pub fn docker(args: &[&str]) -> String {
    let bin = std::env::var("BERTH_TEST_DOCKER").unwrap_or_else(|_| "docker".into());
    assert!(
        std::env::var("DOCKER_HOST").is_ok(),
        "DOCKER_HOST is not set: run the tests through scripts/test.sh"
    );
    let out = Command::new(&bin)
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Deterministic pseudo-random bytes (xorshift), so content differs per seed
/// and compresses poorly, like real layers.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Uploads `bytes` as a blob of `repo` with a monolithic POST; returns its digest.
pub fn push_blob(url: &str, repo: &str, bytes: &[u8]) -> String {
    push_blob_with(url, repo, bytes, &[])
}

/// [`push_blob`] with `Authorization: {authorization}`.
pub fn push_blob_as(url: &str, repo: &str, bytes: &[u8], authorization: &str) -> String {
    push_blob_with(url, repo, bytes, &[("Authorization", authorization)])
}

fn push_blob_with(url: &str, repo: &str, bytes: &[u8], headers: &[(&str, &str)]) -> String {
    let d = digest(bytes);
    let r = http(
        "POST",
        &format!("{url}/v2/{repo}/blobs/uploads/?digest={d}"),
        headers,
        bytes,
    );
    assert_eq!(
        r.status,
        201,
        "blob push: {}",
        String::from_utf8_lossy(&r.body)
    );
    d
}

/// Pushes a one-layer OCI image manifest to `repo:reference`; returns the
/// manifest bytes and the response.
pub fn push_image(url: &str, repo: &str, reference: &str, seed: u64) -> (Vec<u8>, Resp) {
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let layer = random_bytes(1000, seed);
    let (cd, ld) = (push_blob(url, repo, &config), push_blob(url, repo, &layer));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": layer.len()}],
    });
    let bytes = serde_json::to_vec(&manifest).expect("json");
    let r = http(
        "PUT",
        &format!("{url}/v2/{repo}/manifests/{reference}"),
        &[
            ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
            ("User-Agent", "berth-tests/1"),
        ],
        &bytes,
    );
    (bytes, r)
}

/// Writes a one-layer OCI image layout at `dir` tagged `tag`; returns the
/// manifest digest.
pub fn oci_layout(dir: &Path, tag: &str) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = digest(bytes);
        std::fs::write(blobs.join(&d[7..]), bytes).unwrap();
        (d, bytes.len())
    };
    let rootfs = tempfile::tempdir().unwrap();
    std::fs::write(rootfs.path().join("payload.bin"), random_bytes(2 << 20, 31)).unwrap();
    // A gzip layer: skopeo compresses uncompressed layers on the way to a
    // registry, which would change the manifest.
    let tar = dir.join("layer.tar");
    run(
        "tar",
        &[
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "-C",
            rootfs.path().to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ],
    );
    let diff_id = digest(&std::fs::read(&tar).unwrap());
    run("gzip", &["-n", tar.to_str().unwrap()]);
    let gz = dir.join("layer.tar.gz");
    let layer = std::fs::read(&gz).unwrap();
    std::fs::remove_file(&gz).unwrap();
    let (ld, ls) = put(&layer);
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/dummy"]}, "rootfs": {"type": "layers", "diff_ids": [diff_id]}});
    let (cd, cs) = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls}],
    });
    let (md, ms) = put(manifest.to_string().as_bytes());
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
        "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    md
}

/// Runs `cmd` with `input` on its stdin and returns its output.
pub fn output_with_stdin(cmd: &mut Command, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

/// An htpasswd line (`user:bcrypt`) made by `berth htpasswd`, the password
/// piped on stdin as a user would.
pub fn htpasswd(user: &str, password: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(["htpasswd", user]);
    let out = output_with_stdin(&mut cmd, &format!("{password}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned();
    assert!(line.starts_with(&format!("{user}:$2")), "{line}");
    assert!(
        !line.contains(password),
        "the password leaked into the line"
    );
    line
}

/// Runs a client tool and returns its stdout; panics with its stderr if it
/// fails, so a missing tool or a refused push fails the test loudly.
pub fn run(program: &str, args: &[&str]) -> String {
    run_in(None, program, args)
}

/// [`run`] in working directory `dir`.
pub fn run_in(dir: Option<&Path>, program: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {program} (run scripts/test.sh, which installs it): {e}")
    });
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The events recorded in the (stopped) registry's log at `dir`.
pub fn events(dir: &Path) -> Vec<registry::ext::Record> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let db = registry::ext::Db::open(&dir.join("meta")).expect("open the store");
        let log = registry::ext::EventLog::new(db).expect("the event log");
        log.read(0, usize::MAX)
            .await
            .expect("read events")
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    })
}
