//! `berth serve`: run the registry until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use registry::Registry;
use tokio_util::sync::CancellationToken;
use webhooks::Webhooks;

use super::ConfigArgs;

/// Flags of `berth serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on (default 127.0.0.1:5000; port 0 picks a free one).
    #[arg(long, env = "BERTH_LISTEN")]
    listen: Option<String>,
    /// Data directory (default ./berth-data).
    #[arg(long, env = "BERTH_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

/// Opens the store, binds, prints `listening on http://ADDR` on stdout once
/// ready, and serves until a signal.
pub fn run(args: ServeArgs) -> Result<(), String> {
    let file = crate::config::load(args.config.config.as_deref())?;
    let mut config = file.registry;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let data_dir = config.data_dir.clone();
        let mut registry = Registry::open(config)
            .map_err(|e| format!("cannot open {}: {e}", data_dir.display()))?;
        let stop = CancellationToken::new();
        let hooks = Webhooks::start(
            registry.event_log(),
            &data_dir.join("webhooks"),
            file.delivery,
            file.webhooks,
            stop.clone(),
        )
        .await
        .map_err(|e| format!("cannot start webhooks: {e}"))?;
        registry.mount(Arc::new(hooks));
        registry
            .mount(Arc::new(helm::Helm::open(&registry).map_err(|e| {
                format!("cannot open the chart repository: {e}")
            })?));
        tracing::info!(%addr, data_dir = %data_dir.display(), "serving");
        println!("listening on http://{addr}");
        registry::server::serve(listener, Arc::new(registry), shutdown_signal()).await;
        stop.cancel();
        Ok(())
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}
