//! The configuration file: TOML whose top-level keys are
//! [`registry::Config`]'s fields. A missing file is an error; no file means
//! every default.

use std::path::Path;

/// Reads `path`, or the defaults when there is none.
pub fn load(path: Option<&Path>) -> Result<registry::Config, String> {
    let Some(path) = path else {
        return Ok(registry::Config::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("invalid configuration in {}: {e}", path.display()))
}
