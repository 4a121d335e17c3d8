//! `berth health`: exits 0 when a running registry is ready (its store
//! answers), non-zero otherwise; the container image's health check.

use super::client::Client;

/// Flags of `berth health`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// Registry to ask. Default: the address `BERTH_LISTEN` names (as in the
    /// container image), else 127.0.0.1:5000; over `https://` when
    /// `BERTH_TLS_CERT` is set (the registry serves TLS), trusting what
    /// `SSL_CERT_FILE` names: the certificate must then
    /// name the address asked, e.g. `IP:127.0.0.1`.
    #[arg(long, env = "BERTH_REGISTRY")]
    registry: Option<String>,
}

/// Asks `GET /ready`.
pub fn run(args: HealthArgs) -> Result<(), String> {
    let registry = args.registry.unwrap_or_else(|| {
        let listen = std::env::var("BERTH_LISTEN").unwrap_or_else(|_| "127.0.0.1:5000".into());
        let tls = std::env::var("BERTH_TLS_CERT").is_ok_and(|c| !c.is_empty());
        local(&listen, tls)
    });
    let reply = Client::new(&registry)?.get("/ready", &[])?;
    if reply["ready"] == true {
        println!("ready");
        Ok(())
    } else {
        Err(format!("not ready: {reply}"))
    }
}

/// The loopback address of a listen address (`0.0.0.0:5000` is reached as
/// `127.0.0.1:5000`), as an `http://` or, with `tls`, `https://` URL.
fn local(listen: &str, tls: bool) -> String {
    let addr = match listen.rsplit_once(':') {
        Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => listen.to_owned(),
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{addr}")
}
