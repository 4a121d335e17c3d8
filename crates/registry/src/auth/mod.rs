//! Access control, two ways, either or both: HTTP Basic authentication
//! against an htpasswd file (bcrypt entries) with three roles, each
//! including the one before (`pull`, `push`, `admin`), and bearer tokens of
//! the Docker registry token specification, signed by an authorization
//! server Berth trusts ([`token`]).
//!
//! What a request needs is decided by its route: its role
//! ([`crate::route::Route::need`]) for Basic users, the access records a
//! token must grant ([`crate::route::Route::access`]) for tokens. Probes
//! and metrics are open; `GET /v2/` needs any valid user or token (so
//! `docker login` really checks); reads need `pull`, pushes `push`, deletes
//! and the admin APIs `admin`. With `anonymous_pull`, a request without
//! credentials may pull.
//!
//! bcrypt is slow on purpose (tens of milliseconds), and clients send their
//! credentials with every request: a verified pair is remembered as a
//! SHA-256 of user and password, so only the first request of a pair pays.
//! Passwords and hashes are never logged or echoed in errors.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hyper::{header, HeaderMap};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::Error;

pub mod token;

pub use token::{Access, TokenConfig};

/// A user's role; each includes the ones before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Pull images and charts.
    #[default]
    Pull,
    /// Pull and push.
    Push,
    /// Everything: deletes, webhooks, the event log, quarantine release.
    Admin,
}

/// The `[auth]` table of the configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The htpasswd file (`user:bcrypt-hash` lines, as `htpasswd -B` or
    /// `berth htpasswd` writes them). Empty: authentication is off.
    pub htpasswd: PathBuf,
    /// Let requests without credentials pull.
    pub anonymous_pull: bool,
    /// The role of a user `roles` does not name.
    pub default_role: Role,
    /// Roles by user name.
    pub roles: BTreeMap<String, Role>,
    /// Bearer tokens of an authorization server (`[auth.token]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenConfig>,
}

/// What a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing (probes, metrics).
    Open,
    /// Any valid user (the API base, which clients' login probes).
    User,
    /// At least this role.
    Role(Role),
}

/// The loaded users, the cache of verified credentials, and the keys that
/// sign tokens.
#[derive(Debug)]
pub struct Auth {
    config: AuthConfig,
    /// bcrypt hashes by user (empty without an htpasswd file).
    users: HashMap<String, String>,
    /// SHA-256 of `user \0 password` for pairs bcrypt accepted.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// The token verifier, with `[auth.token]`.
    tokens: Option<token::Tokens>,
}

/// Who a request comes from, and what they may do.
#[derive(Debug)]
pub struct Principal {
    /// The user name, or a token's subject.
    pub name: String,
    grant: Grant,
}

#[derive(Debug)]
enum Grant {
    /// A Basic user's role.
    Role(Role),
    /// What a token grants.
    Token(token::Claims),
}

impl Principal {
    /// The role it amounts to: a Basic user's, or for a token what it grants
    /// on Berth's own resource (`registry:berth`).
    pub fn role(&self) -> Role {
        match &self.grant {
            Grant::Role(role) => *role,
            Grant::Token(claims) => claims.berth_role(),
        }
    }
}

/// Verified pairs remembered at most (then the cache starts over).
const VERIFIED_LIMIT: usize = 10_000;

impl Auth {
    /// Loads `config.htpasswd`; `None` when authentication is off.
    /// Settings that make no sense (roles of unknown users, anonymous pulls
    /// with authentication off) are errors.
    pub fn load(config: &AuthConfig) -> Result<Option<Self>, Error> {
        let basic = !config.htpasswd.as_os_str().is_empty();
        if !basic && config.token.is_none() {
            if config.anonymous_pull || !config.roles.is_empty() {
                return Err(Error::Config(
                    "auth.anonymous_pull and auth.roles need auth.htpasswd or [auth.token]: \
                     without them, authentication is off and everyone may push"
                        .into(),
                ));
            }
            return Ok(None);
        }
        let users = if basic {
            read_htpasswd(&config.htpasswd)?
        } else {
            HashMap::new()
        };
        if let Some(unknown) = config.roles.keys().find(|u| !users.contains_key(*u)) {
            return Err(Error::Config(format!(
                "auth.roles names {unknown:?}, who is not in {}",
                config.htpasswd.display()
            )));
        }
        let tokens = config.token.as_ref().map(token::Tokens::load).transpose()?;
        Ok(Some(Self {
            config: config.clone(),
            users,
            verified: Mutex::default(),
            tokens,
        }))
    }

    /// Admits or refuses a request needing `need` (a Basic user's role) and
    /// `access` (what a token must grant); returns who asked, if anyone.
    /// Wrong credentials are refused even where anonymous access would do.
    pub async fn check(
        &self,
        headers: &HeaderMap,
        need: Need,
        access: &[Access],
    ) -> Result<Option<Principal>, Error> {
        let principal = match credentials(headers) {
            Some(Credentials::Basic(user, password)) if !self.users.is_empty() => {
                let role = self.role(&user);
                let name = self.verify(user, password).await?;
                Some(Principal {
                    name,
                    grant: Grant::Role(role),
                })
            }
            Some(Credentials::Bearer(raw)) if self.tokens.is_some() => {
                let tokens = self.tokens.as_ref().ok_or(Error::Denied)?;
                let claims = tokens
                    .verify(&raw)
                    .map_err(|why| self.challenge(access, Some("invalid_token"), why))?;
                Some(Principal {
                    name: claims.subject(),
                    grant: Grant::Token(claims),
                })
            }
            Some(_) => {
                return Err(self.challenge(
                    access,
                    Some("invalid_token"),
                    "credentials of a kind this registry does not take".into(),
                ))
            }
            None => None,
        };
        let allowed = match (need, &principal) {
            (Need::Open, _) => true,
            (_, None) => need == Need::Role(Role::Pull) && self.config.anonymous_pull,
            (Need::User, Some(_)) => true,
            (
                Need::Role(_),
                Some(Principal {
                    grant: Grant::Token(claims),
                    ..
                }),
            ) => access.iter().all(|a| claims.grants(a)),
            (Need::Role(role), Some(p)) => p.role() >= role,
        };
        match (allowed, &principal) {
            (true, _) => Ok(principal),
            (false, None) => Err(self.challenge(access, None, "credentials required".into())),
            (
                false,
                Some(Principal {
                    grant: Grant::Token(_),
                    ..
                }),
            ) => Err(self.challenge(
                access,
                Some("insufficient_scope"),
                format!("the token does not grant {}", token::scope(access)),
            )),
            (false, Some(_)) => Err(Error::Denied),
        }
    }

    /// The 401 a client must answer with credentials: a Bearer challenge
    /// naming the scope it needs when tokens are accepted, else Basic.
    fn challenge(&self, access: &[Access], error: Option<&str>, why: String) -> Error {
        match &self.tokens {
            Some(tokens) => Error::Challenge {
                message: why,
                header: tokens.challenge(access, error),
            },
            None => Error::Unauthorized("credentials required"),
        }
    }

    /// The role of `user`.
    pub fn role(&self, user: &str) -> Role {
        self.config
            .roles
            .get(user)
            .copied()
            .unwrap_or(self.config.default_role)
    }

    /// The user, if `password` is theirs.
    async fn verify(&self, user: String, password: String) -> Result<String, Error> {
        let key: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        if self.lock().contains(&key) {
            return Ok(user);
        }
        let (hash, known) = self.hash_to_check(&user);
        let hash = hash.to_owned();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .map_err(Error::internal)?
            .unwrap_or(false);
        if !(ok && known) {
            return Err(Error::Unauthorized("invalid credentials"));
        }
        let mut verified = self.lock();
        if verified.len() >= VERIFIED_LIMIT {
            verified.clear();
        }
        verified.insert(key);
        Ok(user)
    }

    /// The hash a password for `user` is checked against, and whether the
    /// user exists. An unknown user is checked against the costliest hash
    /// of the file and refused whatever the result, so that refusing one
    /// takes as long as refusing a known user's wrong password: timing
    /// tells nobody which names exist.
    fn hash_to_check(&self, user: &str) -> (&str, bool) {
        match self.users.get(user) {
            Some(hash) => (hash, true),
            None => {
                let costliest = self.users.values().max_by_key(|h| cost(h));
                (costliest.map_or(DECOY, String::as_str), false)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `user:hash` lines; blank lines and `#` comments are skipped. Only bcrypt
/// (`$2a$`, `$2b$`, `$2y$`) is accepted: the weaker htpasswd schemes are
/// refused at start-up, naming the line (never the hash).
fn read_htpasswd(path: &Path) -> Result<HashMap<String, String>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read htpasswd file {}: {e}", path.display())))?;
    let mut users = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| Error::Config(format!("{} line {}: {why}", path.display(), n + 1));
        let (user, hash) = line
            .split_once(':')
            .ok_or_else(|| bad("expected user:hash"))?;
        if !["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
            return Err(bad("not a bcrypt hash (use htpasswd -B or berth htpasswd)"));
        }
        users.insert(user.to_owned(), hash.to_owned());
    }
    Ok(users)
}

/// A bcrypt hash (of a random password, at [`BCRYPT_COST`]) to check
/// against when the file holds no user at all.
const DECOY: &str = "$2b$10$DNwEf1JQTjgrm9yw0ExG3.HBbJ9UZ2czAmV1fLYv3k36ow0M2H8MO";

/// The work factor of a bcrypt hash (`$2b$10$...` is 10).
fn cost(hash: &str) -> u32 {
    hash.get(4..6).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// What an `Authorization` header carries.
enum Credentials {
    /// `Basic`: a user and a password.
    Basic(String, String),
    /// `Bearer`: a token.
    Bearer(String),
    /// Any other scheme, or a malformed value.
    Other,
}

fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?;
    let Some((scheme, rest)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
        return Some(Credentials::Other);
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Credentials::Bearer(rest.trim().to_owned()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Some(Credentials::Other);
    }
    let basic = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|d| {
            d.split_once(':')
                .map(|(u, p)| Credentials::Basic(u.to_owned(), p.to_owned()))
        });
    Some(basic.unwrap_or(Credentials::Other))
}

/// bcrypt's work factor for new hashes: about 50 ms per check here.
const BCRYPT_COST: u32 = 10;

/// An htpasswd line for `user` with a bcrypt hash of `password`.
pub fn htpasswd_line(user: &str, password: &str) -> Result<String, Error> {
    let hash = bcrypt::hash(password, BCRYPT_COST).map_err(Error::internal)?;
    Ok(format!("{user}:{hash}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn roles_anonymous_pull_and_wrong_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("htpasswd");
        let lines = [
            htpasswd_line("reader", "r-pw").unwrap(),
            htpasswd_line("ci", "c-pw").unwrap(),
            htpasswd_line("boss", "b-pw").unwrap(),
        ];
        std::fs::write(&file, format!("# users\n{}\n", lines.join("\n"))).unwrap();
        let mut config = AuthConfig {
            htpasswd: file.clone(),
            roles: [("ci".into(), Role::Push), ("boss".into(), Role::Admin)].into(),
            ..AuthConfig::default()
        };
        let auth = Auth::load(&config).unwrap().unwrap();
        let basic = |user: &str, pw: &str| {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
            let mut h = HeaderMap::new();
            h.insert(
                header::AUTHORIZATION,
                format!("Basic {token}").parse().unwrap(),
            );
            h
        };
        let pull = Need::Role(Role::Pull);
        let push = Need::Role(Role::Push);
        let admin = Need::Role(Role::Admin);
        let none = HeaderMap::new();
        assert!(matches!(
            auth.check(&none, pull, &[]).await,
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            auth.check(&none, Need::User, &[]).await,
            Err(Error::Unauthorized(_))
        ));
        assert!(auth.check(&none, Need::Open, &[]).await.unwrap().is_none());
        let reader = basic("reader", "r-pw");
        assert_eq!(
            auth.check(&reader, pull, &[])
                .await
                .unwrap()
                .map(|p| p.name)
                .as_deref(),
            Some("reader")
        );
        assert!(matches!(
            auth.check(&reader, push, &[]).await,
            Err(Error::Denied)
        ));
        let ci = basic("ci", "c-pw");
        assert!(auth.check(&ci, push, &[]).await.is_ok());
        assert!(matches!(
            auth.check(&ci, admin, &[]).await,
            Err(Error::Denied)
        ));
        assert!(auth.check(&basic("boss", "b-pw"), admin, &[]).await.is_ok());
        // Wrong password, unknown user: refused, also the second time (the
        // cache holds only verified pairs).
        for _ in 0..2 {
            let wrong = auth.check(&basic("ci", "nope"), pull, &[]).await;
            assert!(matches!(wrong, Err(Error::Unauthorized(_))));
        }
        let ghost = auth.check(&basic("ghost", "x"), pull, &[]).await;
        assert!(matches!(ghost, Err(Error::Unauthorized(_))));

        config.anonymous_pull = true;
        let open = Auth::load(&config).unwrap().unwrap();
        assert!(open.check(&none, pull, &[]).await.unwrap().is_none());
        assert!(matches!(
            open.check(&none, push, &[]).await,
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            open.check(&none, Need::User, &[]).await,
            Err(Error::Unauthorized(_))
        ));
        let wrong = open.check(&basic("reader", "bad"), pull, &[]).await;
        assert!(matches!(wrong, Err(Error::Unauthorized(_))));

        std::fs::write(&file, "md5user:$apr1$abc$def\n").unwrap();
        let err = Auth::load(&config).unwrap_err().to_string();
        assert!(
            err.contains("line 1") && !err.contains("$apr1$abc$def"),
            "{err}"
        );
    }

    /// An unknown user costs the bcrypt work of the costliest known hash,
    /// and is refused even with that hash's password.
    #[tokio::test]
    async fn unknown_users_cost_what_known_ones_do() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("htpasswd");
        let weak = bcrypt::hash("w-pw", 4).unwrap();
        let strong = htpasswd_line("strong", "s-pw").unwrap();
        std::fs::write(&file, format!("weak:{weak}\n{strong}\n")).unwrap();
        let config = AuthConfig {
            htpasswd: file,
            ..AuthConfig::default()
        };
        let auth = Auth::load(&config).unwrap().unwrap();
        let (hash, known) = auth.hash_to_check("ghost");
        assert!(!known);
        assert_eq!(cost(hash), BCRYPT_COST);
        assert!(bcrypt::verify("s-pw", hash).unwrap());
        let refused = auth.verify("ghost".into(), "s-pw".into()).await;
        assert!(matches!(refused, Err(Error::Unauthorized(_))));
        assert_eq!(auth.hash_to_check("weak"), (weak.as_str(), true));
        assert_eq!(cost(DECOY), BCRYPT_COST);
    }

    #[test]
    fn settings_that_make_no_sense_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("htpasswd");
        std::fs::write(&file, htpasswd_line("alice", "pw").unwrap()).unwrap();
        let typo = AuthConfig {
            htpasswd: file,
            roles: [("alcie".into(), Role::Admin)].into(),
            ..AuthConfig::default()
        };
        let err = Auth::load(&typo).unwrap_err().to_string();
        assert!(err.contains("\"alcie\"") && err.contains("not in"), "{err}");
        let open = AuthConfig {
            anonymous_pull: true,
            ..AuthConfig::default()
        };
        let err = Auth::load(&open).unwrap_err().to_string();
        assert!(err.contains("need auth.htpasswd"), "{err}");
        assert!(Auth::load(&AuthConfig::default()).unwrap().is_none());
    }
}
