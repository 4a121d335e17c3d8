//! The command-line verbs.

mod client;
mod events;
mod fsck;
mod gc;
mod health;
mod htpasswd;
mod migrate;
mod policy;
mod serve;
mod webhook;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A minimal OCI registry with built-in webhooks.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the registry.
    Serve(serve::ServeArgs),
    /// Print the configuration `serve` would use (secrets masked).
    Config(serve::ConfigPrintArgs),
    /// Check a store's consistency (and repair it with --repair).
    Fsck(fsck::FsckArgs),
    /// Delete unreferenced blobs and expired uploads on a running registry.
    Gc(gc::GcArgs),
    /// Exit 0 when a running registry is ready (for health checks).
    Health(health::HealthArgs),
    /// Print an htpasswd line (bcrypt) for a user; the password is read from stdin.
    Htpasswd(htpasswd::HtpasswdArgs),
    /// Manage the webhooks of a running registry (like `az acr webhook`).
    Webhook(webhook::WebhookArgs),
    /// List a running registry's events, or wait for them.
    Events(events::EventsArgs),
    /// Copy a stopped single-node store into PostgreSQL and S3 (resumable).
    Migrate(migrate::MigrateArgs),
    /// Apply the retention rules now (or list what they would remove).
    Retention(policy::RetentionArgs),
    /// Show or replace a running registry's retention and immutable-tag rules.
    Policy(policy::PolicyArgs),
    /// Show or switch a running registry's read-only (maintenance) mode.
    Maintenance(policy::MaintenanceArgs),
}

/// Runs the chosen verb.
pub fn run(args: Args) -> Result<(), String> {
    match args.command {
        Command::Serve(a) => serve::run(a),
        Command::Config(a) => serve::print_config(a),
        Command::Health(a) => health::run(a),
        Command::Fsck(a) => fsck::run(a),
        Command::Gc(a) => gc::run(a),
        Command::Htpasswd(a) => htpasswd::run(a),
        Command::Webhook(a) => webhook::run(a),
        Command::Events(a) => events::run(a),
        Command::Migrate(a) => migrate::run(a),
        Command::Retention(a) => policy::retention(a),
        Command::Policy(a) => policy::policy(a),
        Command::Maintenance(a) => policy::maintenance(a),
    }
}

/// Flags shared by verbs that open a configuration.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// TOML configuration file; flags override its values.
    #[arg(long, env = "BERTH_CONFIG")]
    pub config: Option<PathBuf>,
}
