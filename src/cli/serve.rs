//! `berth serve`: run the registry until SIGINT or SIGTERM; `berth config`:
//! print the configuration `serve` would use.

use std::path::{Path, PathBuf};

use berth::config::File;
use berth::launch::Running;

use super::ConfigArgs;

/// The most threads blocking file work (writes, `fsync`s, renames) gets.
/// tokio's default of 512 let 64 busy clients grow the process by ~150
/// threads, each with its own stack and allocator cache; the disk does not
/// go faster with more than a few `fsync`s in flight.
const BLOCKING_THREADS: usize = 16;

/// The settings `serve` and `config` share: file, environment, flags.
#[derive(Debug, clap::Args)]
pub struct Settings {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on (default 127.0.0.1:5000; port 0 picks a free
    /// one). Environment: BERTH_LISTEN.
    #[arg(long)]
    listen: Option<String>,
    /// Data directory (default ./berth-data). Environment: BERTH_DATA_DIR.
    #[arg(long, conflicts_with = "ephemeral")]
    data_dir: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Keep everything in a fresh temporary directory, removed on exit (for
    /// CI). Environment: BERTH_EPHEMERAL=true.
    #[arg(long, env = "BERTH_EPHEMERAL")]
    ephemeral: bool,
}

impl Settings {
    /// The file, then `BERTH_*` variables, then these flags.
    fn resolve(&self) -> Result<File, String> {
        let mut file = File::load(self.config.config.as_deref())?;
        if let Some(listen) = &self.listen {
            file.registry.listen = listen.clone();
        }
        if let Some(dir) = &self.data_dir {
            file.registry.data_dir = dir.clone();
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            file.registry.tls_cert = cert.clone();
            file.registry.tls_key = key.clone();
        }
        Ok(file)
    }
}

/// Flags of `berth serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    settings: Settings,
    /// Once ready, write `http://ADDR` (and a newline) to this file,
    /// atomically.
    #[arg(long, env = "BERTH_READY_FILE")]
    ready_file: Option<PathBuf>,
}

/// Opens the store, binds, prints `listening on http://ADDR` on stdout once
/// ready (the only line it ever prints there), and serves until a signal.
pub fn run(args: ServeArgs) -> Result<(), String> {
    limit_malloc_arenas();
    let mut file = args.settings.resolve()?;
    let ephemeral = if args.settings.ephemeral {
        let dir = tempfile::Builder::new()
            .prefix("berth-ephemeral-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        file.registry.data_dir = dir.path().to_owned();
        Some(dir)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        // Before anything is announced: a SIGTERM right after the ready line
        // must stop Berth gracefully, not kill it by the default action.
        let signals = Signals::install()?;
        let running = Running::start(file).await.map_err(|e| e.to_string())?;
        let url = running.url();
        if let Some(path) = &args.ready_file {
            write_ready_file(path, &url)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        println!("listening on {url}");
        let failed = tokio::select! {
            () = signals.wait() => None,
            cause = running.failed() => Some(cause),
        };
        if let Some(cause) = &failed {
            tracing::error!(%cause, "the store failed; draining, then exiting");
        }
        running.stop().await;
        match failed {
            None => Ok(()),
            Some(cause) => Err(format!("the store failed and needs a restart: {cause}")),
        }
    })?;
    if let Some(dir) = ephemeral {
        let path = dir.path().to_owned();
        dir.close()
            .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The most malloc arenas glibc may create (its default is 8 per core).
/// Threads that allocate at once each get an arena, and freed memory in
/// many arenas is reused poorly: memory kept growing under sustained load
/// with glibc's default (the soak runs in `docs/performance.md`).
const MALLOC_ARENA_MAX: &str = "2";

/// Runs `berth serve` again, in place (same process id), with
/// `MALLOC_ARENA_MAX` set, unless the environment sets it already: glibc
/// reads it only when the process starts, and setting it from inside would
/// need `unsafe` (`mallopt`). On failure, serves with glibc's default.
fn limit_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let error = match std::env::current_exe() {
        Ok(exe) => std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("MALLOC_ARENA_MAX", MALLOC_ARENA_MAX)
            .exec(),
        Err(e) => e,
    };
    tracing::warn!(error = %error, "cannot limit malloc arenas; serving with glibc's default");
}

/// Writes `url` to a sibling temporary file and renames it over `path`, so
/// a watcher never reads half a line.
fn write_ready_file(path: &Path, url: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{url}\n"))?;
    std::fs::rename(&tmp, path)
}

/// Flags of `berth config`.
#[derive(Debug, clap::Args)]
pub struct ConfigPrintArgs {
    #[command(flatten)]
    settings: Settings,
}

/// Prints the effective configuration as TOML, secrets masked.
pub fn print_config(args: ConfigPrintArgs) -> Result<(), String> {
    let mut file = args.settings.resolve()?;
    if args.settings.ephemeral {
        file.registry.data_dir = std::env::temp_dir().join("berth-ephemeral-XXXXXX");
    }
    file.validate()?;
    print!("{}", file.to_masked_toml()?);
    Ok(())
}

/// SIGINT and SIGTERM, watched from the moment they are installed.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Replaces the default actions of SIGINT and SIGTERM (ending the
    /// process) with a graceful shutdown.
    fn install() -> Result<Self, String> {
        use tokio::signal::unix::{signal, SignalKind};
        let watch = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| format!("cannot watch {name}: {e}"))
        };
        Ok(Self {
            interrupt: watch(SignalKind::interrupt(), "SIGINT")?,
            terminate: watch(SignalKind::terminate(), "SIGTERM")?,
        })
    }

    /// Completes on the first of them.
    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("SIGINT: shutting down"),
            _ = self.terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        }
    }
}
