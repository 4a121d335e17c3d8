//! Berth inside your own Rust tests: a whole registry (OCI API, webhooks,
//! event log) on `127.0.0.1:<free port>` over a temporary directory,
//! started in milliseconds and removed when it stops.
//!
//! ```
//! use std::time::Duration;
//!
//! use berth::testing::TestRegistry;
//! use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
//! use oci_client::{secrets::RegistryAuth, Client, Reference};
//! use berth::testing::Action;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let reg = TestRegistry::start().await?;
//! let data_dir = reg.data_dir().to_owned();
//!
//! // Push an image with any client, here the `oci-client` crate.
//! let client = Client::new(ClientConfig {
//!     protocol: ClientProtocol::Http,
//!     ..Default::default()
//! });
//! let image: Reference = format!("{}/demo/app:v1", reg.host()).parse()?;
//! let layers = [ImageLayer::oci_v1(b"hello".to_vec(), None)];
//! let config = Config::oci_v1(br#"{"architecture":"amd64","os":"linux"}"#.to_vec(), None);
//! client
//!     .push(&image, &layers, config, &RegistryAuth::Anonymous, None)
//!     .await?;
//!
//! // Assert what happened.
//! let events = reg.wait_for_events(1, Duration::from_secs(5)).await?;
//! assert_eq!(events[0].action, Action::Push);
//! assert_eq!(events[0].target.repository, "demo/app");
//! assert_eq!(events[0].target.tag.as_deref(), Some("v1"));
//!
//! // Stopping removes every file it wrote.
//! reg.stop().await;
//! assert!(!data_dir.exists());
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::time::Duration;

pub use registry::ext::{Action, Event};

use crate::config::File;
use crate::launch::Running;
use crate::Error;

/// A Berth serving inside the current tokio runtime on a temporary
/// directory.
///
/// [`TestRegistry::stop`] shuts it down and removes the directory. Merely
/// dropping it starts the shutdown and removes the directory at once, which
/// is enough at the end of a test.
#[derive(Debug)]
pub struct TestRegistry {
    running: Option<Running>,
    dir: Option<tempfile::TempDir>,
    host: String,
}

impl TestRegistry {
    /// Starts Berth with the default configuration.
    pub async fn start() -> Result<Self, Error> {
        Self::start_with(File::default()).await
    }

    /// Starts Berth with `file` (for example with webhooks or quarantine);
    /// its `listen` and `data_dir` are replaced by a free loopback port and
    /// a temporary directory.
    pub async fn start_with(mut file: File) -> Result<Self, Error> {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .map_err(Error::TempDir)?;
        file.registry.listen = "127.0.0.1:0".into();
        file.registry.data_dir = dir.path().to_owned();
        let running = Running::start(file).await?;
        Ok(Self {
            host: running.addr().to_string(),
            running: Some(running),
            dir: Some(dir),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// `127.0.0.1:PORT`, as image references spell the registry.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The temporary data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// Every event so far, oldest first (each acknowledged change has its
    /// event by the time the client got its 2xx).
    pub async fn events(&self) -> Result<Vec<Event>, Error> {
        let Some(running) = &self.running else {
            return Ok(Vec::new());
        };
        let records = running
            .event_log()
            .read(0, usize::MAX)
            .await
            .map_err(Error::Events)?;
        Ok(records.into_iter().map(|(_, r)| r.event).collect())
    }

    /// Waits until at least `n` events have happened and returns them all;
    /// fails with the events seen when `timeout` passes first.
    pub async fn wait_for_events(&self, n: usize, timeout: Duration) -> Result<Vec<Event>, Error> {
        let Some(running) = &self.running else {
            return Ok(Vec::new());
        };
        let mut moved = running.event_log().subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let events = self.events().await?;
            if events.len() >= n {
                return Ok(events);
            }
            if tokio::time::timeout_at(deadline, moved.changed())
                .await
                .is_err()
            {
                return Err(Error::Timeout {
                    wanted: n,
                    seen: events.len(),
                    timeout,
                });
            }
        }
    }

    /// Shuts Berth down and removes its directory.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.close() {
                tracing::warn!(error = %e, "cannot remove the test registry's directory");
            }
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.cancel();
        }
    }
}
