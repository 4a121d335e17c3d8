//! Scale-out: the API and transfer scenarios against the embedded default,
//! one replica on PostgreSQL + S3, and two replicas of it, side by side;
//! the PostgreSQL statements a manifest PUT costs; the time to a blob's
//! first byte from S3 and from files.
//!
//! It starts what it measures against: a PostgreSQL cluster of its own
//! with the server's default settings (fsync on, as in production; the test
//! suite's cluster runs without it), and an S3 server in-process (`s3s-fs`:
//! objects as files in a temporary directory, so the figures say what the
//! S3 path costs Berth, not what a cloud's network adds). Everything shares
//! this machine's cores: two replicas cannot show more throughput than one
//! here, only that they serve the same store correctly and what the shared
//! engines cost.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::scenarios::Figure;
use crate::server::Berth;
use crate::{api, scenarios, wire};

/// The three configurations, in the report's column order.
pub const CONFIGURATIONS: [&str; 3] = ["embedded", "1 replica, PostgreSQL + S3", "2 replicas"];

/// One scenario's figure under each configuration.
pub struct Row {
    /// The scenario.
    pub name: String,
    /// Its unit.
    pub unit: &'static str,
    /// Its figure under each of [`CONFIGURATIONS`].
    pub values: Vec<f64>,
}

/// What the group measured: the side-by-side rows and single figures.
pub struct ScaleOut {
    /// The scenarios under each configuration.
    pub rows: Vec<Row>,
    /// Statements per PUT and times to first byte.
    pub figures: Vec<Figure>,
}

/// Runs the group; `short` shrinks it to prove it works.
pub fn run(short: bool) -> Result<ScaleOut, String> {
    let size = if short { 32 << 20 } else { 256 << 20 };
    let pg = Postgres::start()?;
    let s3 = S3::start()?;
    let mut columns = Vec::new();
    let mut figures = Vec::new();

    let embedded = Berth::start()?;
    columns.push(scenarios_on(&[embedded.url.clone()], size, short)?);
    let fs_first_byte = first_byte(&embedded.url, short)?;
    drop(embedded);

    let one = shared_env(&pg, &s3, "one")?;
    let replica = Berth::start_with(&as_refs(&one))?;
    columns.push(scenarios_on(&[replica.url.clone()], size, short)?);
    let s3_first_byte = first_byte(&replica.url, short)?;
    drop(replica);
    figures.push(Figure::ms(
        "time to a 16 MiB blob's first byte, files (median)",
        fs_first_byte,
    ));
    figures.push(Figure::ms(
        "time to a 16 MiB blob's first byte, S3 (median)",
        s3_first_byte,
    ));

    // Started first, `a` takes the webhook dispatcher's lease.
    let two = shared_env(&pg, &s3, "two")?;
    let a = Berth::start_with(&as_refs(&two))?;
    let b = Berth::start_with(&as_refs(&two))?;
    columns.push(scenarios_on(&[a.url.clone(), b.url.clone()], size, short)?);
    let puts = if short { 20 } else { 500 };
    figures.push(Figure::new(
        "PostgreSQL statements per manifest PUT, on a replica that does not dispatch",
        statements_per_put(&b.url, puts)?,
        "",
    ));
    figures.push(Figure::new(
        "PostgreSQL statements per manifest PUT, on the replica that dispatches events",
        statements_per_put(&a.url, puts)?,
        "",
    ));

    let rows = columns[0]
        .iter()
        .enumerate()
        .map(|(i, f)| Row {
            name: f.name.clone(),
            unit: f.unit,
            values: columns.iter().map(|c| c[i].value).collect(),
        })
        .collect();
    Ok(ScaleOut { rows, figures })
}

/// The request-rate and transfer scenarios against `urls`.
fn scenarios_on(urls: &[String], size: usize, short: bool) -> Result<Vec<Figure>, String> {
    let mut figures = api::run_all(urls, short)?;
    figures.extend(scenarios::run_all(urls, size, None)?);
    Ok(figures)
}

/// The settings of a replica on database and bucket `name`.
fn shared_env(pg: &Postgres, s3: &S3, name: &str) -> Result<Vec<(String, String)>, String> {
    pg.create_database(name)?;
    s3.create_bucket(name)?;
    let mut env = s3.env();
    env.push(("BERTH_METADATA_URL".into(), pg.url(name)));
    env.push(("BERTH_BLOB_URL".into(), format!("s3://{name}/berth")));
    Ok(env)
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The median time to the first byte of a 16 MiB blob pushed to `url`.
fn first_byte(url: &str, short: bool) -> Result<Duration, String> {
    let blob: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let digest = scenarios::sha256(&blob);
    ureq::post(&format!(
        "{url}/v2/bench/ttfb/blobs/uploads/?digest={digest}"
    ))
    .send_bytes(&blob)
    .map_err(|e| format!("push the blob: {e}"))?;
    let path = format!("/v2/bench/ttfb/blobs/{digest}");
    let mut times = (0..if short { 5 } else { 101 })
        .map(|_| wire::first_byte(url, &path))
        .collect::<Result<Vec<_>, _>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

/// `berth_metadata_statements_total` of the replica at `url`.
fn statements(url: &str) -> Result<u64, String> {
    let text = ureq::get(&format!("{url}/metrics"))
        .call()
        .map_err(|e| format!("metrics: {e}"))?
        .into_string()
        .map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|l| l.strip_prefix("berth_metadata_statements_total "))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| "no berth_metadata_statements_total in /metrics".into())
}

/// The statements `url` sends per manifest PUT, over `n` PUTs one at a time.
fn statements_per_put(url: &str, n: u64) -> Result<f64, String> {
    let config = api::base_blob(url, b"{}")?;
    let layer = api::base_blob(url, &[9; 1024])?;
    let agent = ureq::agent();
    let before = statements(url)?;
    for i in 0..n {
        api::put_manifest(&agent, url, &config, &layer, &format!("count-{i}"))?;
    }
    Ok((statements(url)? - before) as f64 / n as f64)
}

/// A PostgreSQL cluster of the bench's own, on a free port, removed when
/// dropped.
struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl Postgres {
    fn start() -> Result<Self, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("PostgreSQL is not installed (apt-get install postgresql): {e}"))?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|b| b.join("initdb").is_file())
            .max()
            .ok_or("no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")?;
        let dir = std::env::temp_dir().join(format!("berth-bench-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let pg = Self { dir, bin, port };
        succeed(
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&pg.dir),
        )?;
        let data = pg.dir.join("data");
        pg.as_postgres(
            "initdb",
            &[
                "-D",
                path(&data)?,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
        )?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {}",
            path(&pg.dir)?
        );
        let log = pg.dir.join("server.log");
        pg.as_postgres(
            "pg_ctl",
            &[
                "-D",
                path(&data)?,
                "-l",
                path(&log)?,
                "-w",
                "-o",
                &options,
                "start",
            ],
        )?;
        Ok(pg)
    }

    /// Runs a PostgreSQL program as the `postgres` user, as initdb demands.
    fn as_postgres(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(program);
        succeed(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(program)
                .args(args),
        )
    }

    fn create_database(&self, name: &str) -> Result<(), String> {
        let url = self.url("postgres");
        let sql = format!("CREATE DATABASE {name}");
        succeed(Command::new(self.bin.join("psql")).args([url.as_str(), "-qc", &sql]))
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Ok(data) = path(&self.dir.join("data")) {
            let _ = self.as_postgres("pg_ctl", &["-D", data, "-m", "immediate", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An S3 server in this process (`s3s-fs`), its buckets directories under
/// a temporary one, removed when dropped.
struct S3 {
    addr: std::net::SocketAddr,
    root: PathBuf,
    _runtime: tokio::runtime::Runtime,
}

/// The credentials the S3 server accepts.
const S3_KEY: (&str, &str) = ("bench", "benchsecret");

impl S3 {
    fn start() -> Result<Self, String> {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto::Builder;

        let root = std::env::temp_dir().join(format!("berth-bench-s3-{}", std::process::id()));
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        let fs = s3s_fs::FileSystem::new(&root).map_err(|e| format!("s3s-fs: {e:?}"))?;
        let mut service = s3s::service::S3ServiceBuilder::new(fs);
        service.set_auth(s3s::auth::SimpleAuth::from_single(S3_KEY.0, S3_KEY.1));
        let service = service.build();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        runtime.spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            root,
            _runtime: runtime,
        })
    }

    fn create_bucket(&self, name: &str) -> Result<(), String> {
        std::fs::create_dir_all(self.root.join(name)).map_err(|e| e.to_string())
    }

    /// The standard AWS variables that point a replica here.
    fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", format!("http://{}", self.addr)),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", S3_KEY.0.into()),
            ("AWS_SECRET_ACCESS_KEY", S3_KEY.1.into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn path(p: &std::path::Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

fn succeed(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}
