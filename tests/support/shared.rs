//! A store that replicas share: a fresh PostgreSQL database on the test
//! server (`BERTH_TEST_POSTGRES`) and a fresh bucket on the test S3 server
//! (`AWS_ENDPOINT_URL`), both started by `scripts/setup-test-env.sh`. A
//! missing server fails the test; it never skips.

use std::process::Command;

use super::BerthProcess;

/// One shared store, its own database and bucket.
pub struct SharedStore {
    /// `postgres://.../<database>`.
    pub metadata_url: String,
    /// `s3://<bucket>/berth`.
    pub blob_url: String,
}

impl SharedStore {
    /// Creates the database and the bucket.
    pub fn new() -> Self {
        let server = std::env::var("BERTH_TEST_POSTGRES").expect(
            "BERTH_TEST_POSTGRES names the test PostgreSQL server (scripts/setup-test-env.sh)",
        );
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .expect("AWS_ENDPOINT_URL names the test S3 server (scripts/setup-test-env.sh)");
        let name = format!("s{}", uuid::Uuid::new_v4().simple());
        command(
            "psql",
            &[&server, "-qc", &format!("CREATE DATABASE {name}")],
        );
        command(
            "curl",
            &["-fsS", "-X", "PUT", &format!("{endpoint}/{name}")],
        );
        let (base, _) = server.rsplit_once('/').expect("a database URL");
        Self {
            metadata_url: format!("{base}/{name}"),
            blob_url: format!("s3://{name}/berth"),
        }
    }

    /// The environment that points a replica at this store, in `location`
    /// (none when empty).
    pub fn env<'a>(&'a self, location: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("BERTH_METADATA_URL", self.metadata_url.as_str()),
            ("BERTH_BLOB_URL", self.blob_url.as_str()),
            ("BERTH_LOCATION", location),
        ]
    }

    /// Starts a replica on this store, in `location`, with the
    /// configuration file `config` (none when empty). Its data directory
    /// is its own.
    pub fn replica(&self, location: &str, config: &str) -> BerthProcess {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("berth.toml");
        std::fs::write(&file, config).expect("write the configuration");
        let data = tmp.path().join("data");
        let flags = ["--config", file.to_str().expect("a UTF-8 path")];
        let mut reg = BerthProcess::start_env(&data, &flags, &self.env(location));
        reg._tmp = Some(tmp);
        reg
    }
}

fn command(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
