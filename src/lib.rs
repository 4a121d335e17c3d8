//! Berth, a minimal OCI registry with built-in webhooks, as a library: the
//! `berth` binary is a thin command line over it, and Rust tests can start
//! a whole registry in-process with [`testing::TestRegistry`].
//!
//! # Layout
//! - [`config`]: defaults, the TOML file, `BERTH_*` variables; printing it
//!   with secrets masked.
//! - [`launch`]: starts the store, the webhooks and the HTTP server, and
//!   stops them.
//! - [`testing`]: a throwaway registry for tests.
//! - [`error`]: what can go wrong.
//!
//! The registry itself lives in the `registry` crate, the webhooks in the
//! `webhooks` crate.

pub mod config;
pub mod error;
pub mod launch;
pub mod testing;

pub use error::Error;
