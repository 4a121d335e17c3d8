//! helm v4 (installed by `scripts/setup-test-env.sh`; a missing helm fails
//! the test, it never skips it), with directories of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// helm with its own config, cache and data directories, and a working
/// directory for charts.
pub struct Helm {
    dir: tempfile::TempDir,
}

impl Helm {
    pub fn new() -> Self {
        let helm = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let version = helm.run(&["version", "--short"]);
        assert!(
            version.starts_with("v4."),
            "helm v4 is required, found {version}"
        );
        helm
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn output(&self, args: &[&str]) -> Output {
        let home = self.dir.path();
        Command::new("helm")
            .args(args)
            .current_dir(home)
            .env("HELM_CONFIG_HOME", home.join(".config"))
            .env("HELM_CACHE_HOME", home.join(".cache"))
            .env("HELM_DATA_HOME", home.join(".data"))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run helm (scripts/setup-test-env.sh installs it): {e}")
            })
    }

    /// Runs helm; fails the test with its output if it fails.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "helm {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `helm create NAME` once, then `helm package` at `version`; returns
    /// the archive's path. `tweak` may edit the chart directory first.
    pub fn package(&self, name: &str, version: &str, tweak: impl FnOnce(&Path)) -> PathBuf {
        if !self.path(name).exists() {
            self.run(&["create", name]);
        }
        tweak(&self.path(name));
        let out = self.path("out");
        self.run(&[
            "package",
            name,
            "--version",
            version,
            "-d",
            out.to_str().unwrap(),
        ]);
        out.join(format!("{name}-{version}.tgz"))
    }
}
