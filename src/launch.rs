//! Starting a whole Berth inside a tokio runtime: the store, the webhooks,
//! the Helm chart repository and the HTTP server, and stopping it again. `berth serve` and
//! [`crate::testing`] both start Berth through [`Running::start`].

use std::net::SocketAddr;
use std::sync::Arc;

use registry::{EventLog, Registry};
use tokio_util::sync::CancellationToken;
use webhooks::Webhooks;

use crate::config::File;
use crate::Error;

/// A Berth serving in the background of the current runtime.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    scheme: &'static str,
    events: Arc<EventLog>,
    webhooks: Webhooks,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    registry: Arc<Registry>,
}

/// How often [`Running::failed`] looks.
const FAILURE_POLL: std::time::Duration = std::time::Duration::from_millis(500);

impl Running {
    /// Binds `file.registry.listen`, opens the store in
    /// `file.registry.data_dir`, starts the webhooks and serves until
    /// [`Running::stop`].
    pub async fn start(file: File) -> Result<Self, Error> {
        file.validate().map_err(Error::Invalid)?;
        let shown = file.to_masked_toml().map_err(Error::Invalid)?;
        let config = file.registry;
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| Error::Listen(config.listen.clone(), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Listen(config.listen.clone(), e))?;
        // Both or neither: `validate` checked.
        let tls = match config.tls_cert.as_os_str().is_empty() {
            true => None,
            false => Some(
                registry::tls_acceptor(&config.tls_cert, &config.tls_key).map_err(Error::Tls)?,
            ),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let data_dir = config.data_dir.clone();
        let mut registry = Registry::open(config)
            .await
            .map_err(|e| Error::Open(data_dir.clone(), e))?;
        let stop = CancellationToken::new();
        let events = registry.event_log();
        let webhooks = Webhooks::start(
            &registry.extension_store("webhooks"),
            format!("{scheme}://{addr}"),
            file.delivery,
            file.webhooks,
            stop.clone(),
        )
        .await
        .map_err(Error::Webhooks)?;
        registry.mount(Arc::new(webhooks.clone()));
        let charts = helm::Helm::open(registry.extension_store("helm")).map_err(Error::Helm)?;
        registry.mount(Arc::new(charts));
        registry.mount(Arc::new(console::Console::new(shown)));
        tracing::info!(%addr, data_dir = %data_dir.display(), "serving");
        let registry = Arc::new(registry);
        let server = tokio::spawn(registry::serve(
            listener,
            registry.clone(),
            tls,
            stop.clone().cancelled_owned(),
        ));
        Ok(Self {
            addr,
            scheme,
            events,
            webhooks,
            stop,
            server,
            registry,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, or `https://ADDR` with TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The durable event log, oldest first.
    pub fn event_log(&self) -> &Arc<EventLog> {
        &self.events
    }

    /// Returns once the store has failed for good (see
    /// [`Registry::failure`]), with the cause; never, while it works.
    pub async fn failed(&self) -> String {
        loop {
            if let Some(cause) = self.registry.failure() {
                return cause;
            }
            tokio::time::sleep(FAILURE_POLL).await;
        }
    }

    /// Starts shutting down without waiting (see [`Running::stop`]).
    pub fn cancel(&self) {
        self.stop.cancel();
    }

    /// Stops accepting connections, lets in-flight requests finish, stops
    /// delivery, and returns once every database handle is closed, so the
    /// data directory can be removed.
    pub async fn stop(self) {
        self.stop.cancel();
        if let Err(e) = self.server.await {
            tracing::error!(error = %e, "the server task failed");
        }
        self.webhooks.stopped().await;
    }
}
