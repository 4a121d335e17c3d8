//! The configuration file: TOML. Top-level keys are [`registry::Config`]'s
//! fields; `[delivery]` holds [`webhooks::Config`]; each `[[webhooks]]` entry
//! is a webhook created (or updated) at start-up. Unknown keys are errors.
//!
//! ```toml
//! listen = "127.0.0.1:5000"
//! [delivery]
//! timeout = "5s"
//! [[webhooks]]
//! name = "ci01"
//! serviceUri = "http://127.0.0.1:9000/hook"
//! actions = ["push", "delete"]
//! scope = "app:*"
//! ```

use std::path::Path;

/// Everything the file configures.
#[derive(Debug, Default)]
pub struct File {
    /// The registry's settings.
    pub registry: registry::Config,
    /// Webhook delivery settings.
    pub delivery: webhooks::Config,
    /// Webhooks to create at start-up.
    pub webhooks: Vec<webhooks::Webhook>,
}

/// Reads `path`, or the defaults when there is none.
pub fn load(path: Option<&Path>) -> Result<File, String> {
    let Some(path) = path else {
        return Ok(File::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("invalid configuration in {}: {e}", path.display()))
}

fn parse(text: &str) -> Result<File, String> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let delivery = match table.remove("delivery") {
        Some(v) => v
            .try_into()
            .map_err(|e: toml::de::Error| format!("[delivery]: {e}"))?,
        None => webhooks::Config::default(),
    };
    let webhooks = match table.remove("webhooks") {
        Some(v) => v
            .try_into()
            .map_err(|e: toml::de::Error| format!("[[webhooks]]: {e}"))?,
        None => Vec::new(),
    };
    let registry = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string())?;
    Ok(File {
        registry,
        delivery,
        webhooks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_section_and_rejects_typos() {
        let f = parse(
            r#"
            allow_missing_references = true
            [delivery]
            timeout = "250ms"
            max_attempts = 3
            [[webhooks]]
            name = "hook01"
            serviceUri = "http://127.0.0.1:1/x"
            actions = ["push"]
            "#,
        )
        .unwrap();
        assert!(f.registry.allow_missing_references);
        assert_eq!(f.delivery.timeout, std::time::Duration::from_millis(250));
        assert_eq!(f.webhooks[0].name, "hook01");
        assert!(parse("allow_missing_refs = true").is_err());
        assert!(parse("[delivery]\ntimeoutt = \"1s\"").is_err());
    }
}
