//! The configuration: defaults, then the TOML file, then `BERTH_*`
//! environment variables, then command-line flags (each overrides the one
//! before).
//!
//! In the file, top-level keys are [`registry::Config`]'s fields;
//! `[delivery]` holds [`webhooks::Config`]; each `[[webhooks]]` entry is a
//! webhook created (or updated) at start-up. Unknown keys are errors.
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
//!
//! Every top-level key is also `BERTH_<KEY>` (`BERTH_LISTEN`,
//! `BERTH_DATA_DIR`, `BERTH_QUARANTINE=true`, `BERTH_MAX_OPEN_UPLOADS=100`,
//! ...) and every key of a table `BERTH_<TABLE>_<KEY>`
//! (`BERTH_DELIVERY_TIMEOUT=5s`, `BERTH_AUTH_HTPASSWD=/etc/berth/htpasswd`);
//! maps such as `[auth.roles]` only come from the file. Any other `BERTH_*`
//! variable is an error naming the closest known one, except those the
//! command line reads ([`CLI_VARIABLES`]) and those of Berth's own test
//! harness (`BERTH_TEST_*`): a typo must not pass silently.

use std::path::Path;

/// Everything the configuration holds.
#[derive(Debug, Default)]
pub struct File {
    /// The registry's settings.
    pub registry: registry::Config,
    /// Webhook delivery settings.
    pub delivery: webhooks::Config,
    /// Webhooks to create at start-up.
    pub webhooks: Vec<webhooks::Webhook>,
}

/// What a masked secret reads as.
const MASK: &str = "******";

/// `BERTH_*` variables the command line reads, not settings.
pub const CLI_VARIABLES: [&str; 7] = [
    "BERTH_CONFIG",
    "BERTH_LOG",
    "BERTH_REGISTRY",
    "BERTH_USERNAME",
    "BERTH_PASSWORD",
    "BERTH_EPHEMERAL",
    "BERTH_READY_FILE",
];

/// The prefix of the variables of Berth's own test harness.
const TEST_PREFIX: &str = "BERTH_TEST_";

impl File {
    /// Reads `path` (or starts from the defaults when there is none) and
    /// applies the process's `BERTH_*` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            None => String::new(),
        };
        let place = path.map_or("the environment".into(), |p| p.display().to_string());
        Self::parse(&text, std::env::vars())
            .map_err(|e| format!("invalid configuration in {place}: {}", one_line(&e)))
    }

    /// Checks what only the whole configuration shows (after the flags):
    /// the listen address, TLS, access control, the shared stores' URLs and
    /// the configured webhooks. `serve` and `config` both run it.
    pub fn validate(&self) -> Result<(), String> {
        self.registry
            .validate()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        for hook in &self.webhooks {
            hook.validate()
                .map_err(|e| format!("invalid configuration: webhook {:?}: {e}", hook.name))?;
        }
        Ok(())
    }

    /// Parses TOML `text`, then applies the `BERTH_*` variables among `env`.
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, String> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        apply_env(&mut table, env)?;
        let known = known_keys()?;
        if let Some(key) = table.keys().find(|k| !known.contains_key(*k)) {
            let names: Vec<&str> = known.keys().map(String::as_str).collect();
            return Err(format!(
                "unknown key `{key}`{}; the keys are {}",
                suggest(key, names.iter().copied(), "`"),
                names.join(", ")
            ));
        }
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
        Ok(Self {
            registry,
            delivery,
            webhooks,
        })
    }

    /// The configuration as a TOML file, with webhook secrets, header values,
    /// the path and query of service URIs (which often carry a token) and
    /// the metadata URL's password masked.
    pub fn to_masked_toml(&self) -> Result<String, String> {
        let mut table = table_of(&self.registry)?;
        let metadata_url = mask_password(&self.registry.metadata_url);
        table.insert("metadata_url".into(), toml::Value::String(metadata_url));
        table.insert(
            "delivery".into(),
            toml::Value::Table(table_of(&self.delivery)?),
        );
        let hooks = self
            .webhooks
            .iter()
            .map(|hook| {
                let mut hook = hook.clone();
                hook.service_uri = mask_uri(&hook.service_uri);
                hook.custom_headers
                    .values_mut()
                    .for_each(|v| *v = MASK.into());
                for secret in [&mut hook.secret, &mut hook.previous_secret]
                    .into_iter()
                    .flatten()
                {
                    *secret = MASK.into();
                }
                table_of(&hook).map(toml::Value::Table)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !hooks.is_empty() {
            table.insert("webhooks".into(), toml::Value::Array(hooks));
        }
        toml::to_string(&table).map_err(|e| e.to_string())
    }
}

/// Sets the keys named by `BERTH_<KEY>` variables, and `BERTH_<TABLE>_<KEY>`
/// for the keys of a table (`[delivery]`, `[auth]`). Variables that name no
/// key are left alone: they may belong to the CLI (`BERTH_CONFIG`,
/// `BERTH_LOG`, `BERTH_REGISTRY`) or to other tools.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), String> {
    let known = known_keys()?;
    for (name, value) in env {
        let Some(key) = name.strip_prefix("BERTH_") else {
            continue;
        };
        if CLI_VARIABLES.contains(&name.as_str()) || name.starts_with(TEST_PREFIX) {
            continue;
        }
        let key = key.to_ascii_lowercase();
        let value = env_value(&value);
        let nested = known.iter().find_map(|(section, keys)| {
            let sub = key.strip_prefix(section.as_str())?.strip_prefix('_')?;
            keys.as_table()?
                .contains_key(sub)
                .then(|| (section.clone(), sub))
        });
        if let Some((section, sub)) = nested {
            table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or(format!("{section} must be a table"))?
                .insert(sub.to_owned(), value);
        } else if known
            .get(&key)
            .is_some_and(|v| !v.is_table() && !v.is_array())
        {
            table.insert(key, value);
        } else {
            let settings = env_names(&known);
            let candidates = settings.iter().map(String::as_str).chain(CLI_VARIABLES);
            return Err(format!(
                "unknown setting {name}{} (`berth config` prints every setting; its variable is \
                 BERTH_ and the key in capitals)",
                suggest(&name, candidates, "")
            ));
        }
    }
    Ok(())
}

/// Every key the file may have at the top, tables included, with its
/// default value.
fn known_keys() -> Result<toml::Table, String> {
    let mut known = table_of(&registry::Config::default())?;
    known.insert(
        "delivery".into(),
        toml::Value::Table(table_of(&webhooks::Config::default())?),
    );
    known.insert("webhooks".into(), toml::Value::Array(Vec::new()));
    Ok(known)
}

/// The variable of every setting of `known`.
fn env_names(known: &toml::Table) -> Vec<String> {
    let mut names = Vec::new();
    for (key, value) in known {
        match value {
            toml::Value::Table(keys) => names.extend(
                keys.iter()
                    .filter(|(_, v)| !v.is_table())
                    .map(|(sub, _)| format!("BERTH_{key}_{sub}").to_ascii_uppercase()),
            ),
            toml::Value::Array(_) => {}
            _ => names.push(format!("BERTH_{key}").to_ascii_uppercase()),
        }
    }
    names
}

/// ` (did you mean X?)` for the candidate closest to `name`, if one is
/// close enough to be a typo of it; `quote` goes around it.
fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>, quote: &str) -> String {
    let (distance, best) = candidates
        .map(|c| (edit_distance(name, c), c))
        .min()
        .unwrap_or((usize::MAX, ""));
    if distance <= 3 {
        format!(" (did you mean {quote}{best}{quote}?)")
    } else {
        String::new()
    }
}

/// Levenshtein distance: the fewest single-character insertions,
/// deletions and substitutions that turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// `text` with every run of whitespace (line breaks too) made one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An environment value as TOML: an integer or boolean when it reads as
/// one, a string otherwise.
fn env_value(s: &str) -> toml::Value {
    if let Ok(n) = s.parse::<i64>() {
        return toml::Value::Integer(n);
    }
    match s {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(s.to_owned()),
    }
}

fn table_of(value: &impl serde::Serialize) -> Result<toml::Table, String> {
    toml::Table::try_from(value).map_err(|e| e.to_string())
}

/// `scheme://host[:port]/`, without credentials, and with anything after it
/// masked.
fn mask_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return MASK.into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let tail = &rest[end..];
    let masked = if tail.is_empty() || tail == "/" {
        ""
    } else {
        MASK
    };
    format!("{scheme}://{host}/{masked}")
}

/// A connection URL with its password (in the user info, or a `password`
/// parameter) masked; the rest, which names where it connects, kept.
fn mask_password(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some((user, host)) = rest[..end].rsplit_once('@') {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            out = format!("{scheme}://{user}:{MASK}@{host}{}", &rest[end..]);
        }
    }
    if let Some((path, query)) = out.split_once('?') {
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}={MASK}"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{path}?{}", query.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_section_and_rejects_typos() {
        let f = File::parse(
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
            [],
        )
        .unwrap();
        assert!(f.registry.allow_missing_references);
        assert_eq!(f.delivery.timeout, std::time::Duration::from_millis(250));
        assert_eq!(f.webhooks[0].name, "hook01");
        assert!(File::parse("allow_missing_refs = true", []).is_err());
        assert!(File::parse("[delivery]\ntimeoutt = \"1s\"", []).is_err());
    }

    #[test]
    fn environment_overrides_the_file_and_ignores_other_variables() {
        let f = File::parse(
            "listen = \"0.0.0.0:1\"\nquarantine = false\n[delivery]\nmax_attempts = 3",
            env(&[
                ("BERTH_LISTEN", "127.0.0.1:7"),
                ("BERTH_QUARANTINE", "true"),
                ("BERTH_MAX_MANIFEST_BYTES", "1000"),
                ("BERTH_HEADER_TIMEOUT", "5s"),
                ("BERTH_MAX_OPEN_UPLOADS", "7"),
                ("BERTH_DELIVERY_TIMEOUT", "5s"),
                ("BERTH_AUTH_ANONYMOUS_PULL", "true"),
                ("BERTH_AUTH_HTPASSWD", "/etc/berth/htpasswd"),
                ("BERTH_LOG", "debug"),
                ("BERTH_TEST_DOCKER", "/usr/bin/docker"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(f.registry.listen, "127.0.0.1:7");
        assert!(f.registry.quarantine);
        assert_eq!(f.registry.max_manifest_bytes, 1000);
        assert_eq!(f.registry.header_timeout, std::time::Duration::from_secs(5));
        assert_eq!(f.registry.max_open_uploads, 7);
        assert_eq!(f.delivery.timeout, std::time::Duration::from_secs(5));
        assert_eq!(f.delivery.max_attempts, 3);
        assert!(f.registry.auth.anonymous_pull);
        assert_eq!(f.registry.auth.htpasswd, Path::new("/etc/berth/htpasswd"));
        let bad = File::parse("", env(&[("BERTH_QUARANTINE", "maybe")]));
        assert!(bad.unwrap_err().contains("quarantine"));
    }

    #[test]
    fn printed_configuration_masks_secrets_and_reads_back() {
        let f = File::parse(
            r#"
            metadata_url = "postgres://berth:pgpass@db/berth"
            [[webhooks]]
            name = "hook01"
            serviceUri = "https://hooks.example.com:8443/T000/B000/XXXX?token=abc"
            actions = ["push"]
            customHeaders = { Authorization = "Bearer s3cret" }
            secret = "whsec_abc"
            "#,
            [],
        )
        .unwrap();
        let text = f.to_masked_toml().unwrap();
        for secret in ["s3cret", "whsec_abc", "XXXX", "token=abc", "pgpass"] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
        assert!(text.contains("https://hooks.example.com:8443/******"));
        assert_eq!(mask_uri("http://user:pw@h:1"), "http://h:1/");
        assert_eq!(
            mask_password("postgres://berth:p%40ss@db:5432/berth?sslmode=require"),
            format!("postgres://berth:{MASK}@db:5432/berth?sslmode=require")
        );
        assert_eq!(
            mask_password("postgres://db/berth?user=berth&password=pw"),
            format!("postgres://db/berth?user=berth&password={MASK}")
        );
        assert_eq!(mask_password(""), "");
        assert!(text.contains("Authorization"));
        let back = File::parse(&text, []).unwrap();
        assert_eq!(back.delivery.timeout, f.delivery.timeout);
        assert_eq!(back.registry.listen, f.registry.listen);
    }
}
