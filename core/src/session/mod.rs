//! Revoking what the attacker already holds: live sessions and cached credentials.
//!
//! A [`Revoker`] takes one account and reports a [`RevocationOutcome`] — what it revoked, how
//! many sessions, which *other* users were disconnected as collateral, and what it could
//! not revoke. Implementations:
//!
//! - [`Dovecot`]: the doveadm HTTP API — flush the user's auth cache, then kick their IMAP/POP3
//!   sessions, listing them first (`who`) to detect collateral on shared processes.
//! - [`Webhook`]: a signed JSON POST to an application (Keycloak, Nextcloud, in-house) adapter.
//! - [`Command`]: a configured program, run without a shell, the user as one argument.
//!
//! **Order matters.** Change the directory (lock / reset) *first*, then revoke: a kick alone
//! lets the attacker log straight back in, and Dovecot's auth cache keeps an old password
//! working for up to `auth_cache_ttl` unless flushed (`docs/FACTS.md`; pinned by the lab tests).
//!
//! ```no_run
//! # async fn demo(cfg: &cadenas::Config) -> Result<(), cadenas::Error> {
//! use cadenas::session::{build_revokers, revoke_all, RevocationTarget};
//!
//! let revokers = build_revokers(&cfg.revokers)?;
//! let target = RevocationTarget::new("jdupont", "uid=jdupont,ou=people,dc=example,dc=test");
//! for outcome in revoke_all(&revokers, &target).await {
//!     println!("{}: {:?}, {} session(s) closed", outcome.revoker, outcome.status, outcome.sessions_closed);
//! }
//! # Ok(()) }
//! ```

mod command;
mod doveadm;
mod dovecot;
pub(crate) mod http;
mod webhook;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use command::Command;
pub use dovecot::{Dovecot, SieveScript};
pub use webhook::Webhook;

use crate::error::{Error, ErrorKind};
use crate::secret::{Password, Secret};

/// A boxed future, so that [`Revoker`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The account whose sessions are revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RevocationTarget {
    /// The login name services know the user by (uid, sAMAccountName, mail...).
    pub login: String,
    /// The directory entry.
    pub dn: String,
    /// Incident identifier, when the revocation is part of one.
    pub incident: Option<String>,
    /// Why (e.g. `contain`).
    pub action: String,
}

impl RevocationTarget {
    /// A target for a containment.
    pub fn new(login: impl Into<String>, dn: impl Into<String>) -> Self {
        Self {
            login: login.into(),
            dn: dn.into(),
            incident: None,
            action: "contain".into(),
        }
    }
}

/// A live session, as a backend lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Session {
    /// The user the session belongs to.
    pub user: String,
    /// The service (imap, pop3...).
    pub service: String,
    /// The process serving it, when known.
    pub pid: Option<u32>,
    /// The client's address.
    pub ip: String,
}

/// How a revocation went, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RevocationStatus {
    /// Something was revoked (sessions closed, cached credentials dropped, the app confirmed).
    Revoked,
    /// There was nothing to revoke (no session, nothing cached).
    NothingToRevoke,
    /// The revocation failed; see `error`.
    Failed,
}

/// What one revoker did for one account. "Revoked" is only claimed for what was revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RevocationOutcome {
    /// The revoker's configured name.
    pub revoker: String,
    /// Overall status.
    pub status: RevocationStatus,
    /// Sessions the backend listed before revoking, when it can list them.
    pub sessions_found: Option<usize>,
    /// Sessions closed.
    pub sessions_closed: usize,
    /// Auth cache entries dropped (Dovecot), when a flush ran.
    pub cache_entries_flushed: Option<u64>,
    /// Other users disconnected as a side effect (shared server processes).
    pub collateral: Vec<String>,
    /// What stays valid or could not be checked, in words.
    pub not_revoked: Vec<String>,
    /// The error, when `status` is `Failed`.
    pub error: Option<Error>,
}

impl RevocationOutcome {
    /// An empty outcome for `revoker`, status `NothingToRevoke`.
    pub fn new(revoker: &str) -> Self {
        Self {
            revoker: revoker.to_owned(),
            status: RevocationStatus::NothingToRevoke,
            sessions_found: None,
            sessions_closed: 0,
            cache_entries_flushed: None,
            collateral: Vec::new(),
            not_revoked: Vec::new(),
            error: None,
        }
    }

    /// Marks the outcome failed with `error`, keeping what was done before the failure.
    pub fn failed(mut self, error: Error) -> Self {
        self.status = RevocationStatus::Failed;
        self.error = Some(error);
        self
    }
}

/// Something that can revoke an account's sessions or cached credentials.
///
/// Implementations must never panic, must report partial work honestly, and must not put
/// secrets (API keys, signing keys) into outcomes, errors or logs.
pub trait Revoker: Send + Sync {
    /// The configured name, used in reports.
    fn name(&self) -> &str;

    /// Revokes what `target` holds. Failures are reported in the outcome, not as `Err`, so
    /// one revoker's failure never hides another's success.
    fn revoke<'a>(&'a self, target: &'a RevocationTarget) -> BoxFuture<'a, RevocationOutcome>;

    /// Lists the target's live sessions, where the backend can (`Ok(None)` where it cannot).
    fn sessions<'a>(
        &'a self,
        _target: &'a RevocationTarget,
    ) -> BoxFuture<'a, Result<Option<Vec<Session>>, Error>> {
        Box::pin(async { Ok(None) })
    }

    /// The logins holding a live session now, listed at once where the backend can
    /// (`Ok(None)` where it cannot). `contain` resets and revokes those accounts first.
    fn live_logins(&self) -> BoxFuture<'_, Result<Option<Vec<String>>, Error>> {
        Box::pin(async { Ok(None) })
    }
}

/// Runs every revoker for `target`, in configuration order, and returns every outcome.
pub async fn revoke_all(revokers: &[Arc<dyn Revoker>], target: &RevocationTarget) -> Vec<RevocationOutcome> {
    let mut out = Vec::with_capacity(revokers.len());
    for r in revokers {
        let outcome = r.revoke(target).await;
        tracing::info!(revoker = r.name(), status = ?outcome.status, closed = outcome.sessions_closed, "revocation");
        out.push(outcome);
    }
    out
}

/// One `[[revokers]]` entry of the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum RevokerConfig {
    /// Dovecot's doveadm HTTP API.
    Dovecot(DovecotConfig),
    /// A signed webhook.
    Webhook(WebhookConfig),
    /// A local program.
    Command(CommandConfig),
}

/// `type = "dovecot"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DovecotConfig {
    /// Name in reports. Default `dovecot`.
    #[serde(default = "default_dovecot_name")]
    pub name: String,
    /// `http(s)://host:port/doveadm/v1`.
    pub url: String,
    /// File holding the API key (`doveadm_api_key`).
    pub api_key_file: Option<PathBuf>,
    /// Environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// CA for an https URL.
    pub ca_file: Option<PathBuf>,
    /// Seconds per API call. Default 10.
    #[serde(default = "default_ten")]
    pub timeout_secs: u64,
}

/// `type = "webhook"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// Name in reports.
    pub name: String,
    /// `https://…` (or `http://` on loopback).
    pub url: String,
    /// File holding the HMAC-SHA256 signing key.
    pub secret_file: Option<PathBuf>,
    /// Environment variable holding the signing key.
    pub secret_env: Option<String>,
    /// CA that signs the receiver's certificate (required for https).
    pub ca_file: Option<PathBuf>,
    /// Seconds per attempt. Default 5.
    #[serde(default = "default_five")]
    pub timeout_secs: u64,
    /// Extra attempts after the first, on network errors, timeouts, 429 and 5xx. Default 3.
    #[serde(default = "default_three")]
    pub retries: u32,
    /// First back-off in milliseconds, doubled per retry. Default 200.
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
}

/// `type = "command"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CommandConfig {
    /// Name in reports.
    pub name: String,
    /// Absolute path of the program (no shell is involved).
    pub program: PathBuf,
    /// Arguments. An argument that is exactly `{user}`, `{dn}` or `{incident}` is replaced by
    /// that value as one whole argument; if none is `{user}`, the user is appended.
    #[serde(default)]
    pub args: Vec<String>,
    /// Seconds before the program is killed. Default 10.
    #[serde(default = "default_ten")]
    pub timeout_secs: u64,
}

fn default_dovecot_name() -> String {
    "dovecot".into()
}
fn default_ten() -> u64 {
    10
}
fn default_five() -> u64 {
    5
}
fn default_three() -> u32 {
    3
}
fn default_backoff() -> u64 {
    200
}

impl WebhookConfig {
    /// A webhook to `url` with the default timeout, retries and back-off; set the key with
    /// `secret_file` or `secret_env` (and `ca_file` for https).
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            secret_file: None,
            secret_env: None,
            ca_file: None,
            timeout_secs: default_five(),
            retries: default_three(),
            backoff_ms: default_backoff(),
        }
    }
}

impl CommandConfig {
    /// A command revoker running `program` (absolute path, no shell) with `args`, with the
    /// default timeout.
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>, args: Vec<String>) -> Self {
        Self {
            name: name.into(),
            program: program.into(),
            args,
            timeout_secs: default_ten(),
        }
    }
}

impl RevokerConfig {
    /// The configured name.
    pub fn name(&self) -> &str {
        match self {
            RevokerConfig::Dovecot(c) => &c.name,
            RevokerConfig::Webhook(c) => &c.name,
            RevokerConfig::Command(c) => &c.name,
        }
    }

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        let paths: Vec<&mut PathBuf> = match self {
            RevokerConfig::Dovecot(c) => [&mut c.api_key_file, &mut c.ca_file]
                .into_iter()
                .flatten()
                .collect(),
            RevokerConfig::Webhook(c) => [&mut c.secret_file, &mut c.ca_file]
                .into_iter()
                .flatten()
                .collect(),
            RevokerConfig::Command(_) => Vec::new(),
        };
        for p in paths {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        let err = |m: String| {
            Err(Error::new(
                ErrorKind::Config,
                format!("revoker {:?}: {m}", self.name()),
            ))
        };
        match self {
            RevokerConfig::Dovecot(c) => {
                http::HttpUrl::parse(&c.url)?;
                if c.api_key_file.is_some() == c.api_key_env.is_some() {
                    return err("set exactly one of api_key_file and api_key_env".into());
                }
            }
            RevokerConfig::Webhook(c) => {
                let u = http::HttpUrl::parse(&c.url)?;
                if c.secret_file.is_some() == c.secret_env.is_some() {
                    return err("set exactly one of secret_file and secret_env".into());
                }
                if u.tls && c.ca_file.is_none() {
                    return err("an https URL needs ca_file (the receiver's certificate is verified)".into());
                }
                if !u.tls && !matches!(u.host.as_str(), "127.0.0.1" | "::1" | "localhost") {
                    return err("plain http is only allowed to loopback; use https".into());
                }
            }
            RevokerConfig::Command(c) => {
                if !c.program.is_absolute() {
                    return err("program must be an absolute path".into());
                }
            }
        }
        Ok(())
    }
}

/// The configured revokers, in configuration order.
pub type Revokers = Vec<Arc<dyn Revoker>>;

/// Builds the configured revokers (reading their keys now, so a missing key fails early).
pub fn build_revokers(configs: &[RevokerConfig]) -> Result<Revokers, Error> {
    Ok(build_revokers_and_dovecots(configs)?.0)
}

/// [`build_revokers`], also handing back the Dovecot ones as themselves (the same objects),
/// for what only Dovecot does: sessions by address, Sieve scripts.
pub fn build_revokers_and_dovecots(
    configs: &[RevokerConfig],
) -> Result<(Revokers, Vec<Arc<Dovecot>>), Error> {
    let mut out: Revokers = Vec::new();
    let mut dovecots = Vec::new();
    for c in configs {
        c.check()?;
        out.push(match c {
            RevokerConfig::Dovecot(d) => {
                let d = Arc::new(Dovecot::from_config(d)?);
                dovecots.push(d.clone());
                d
            }
            RevokerConfig::Webhook(w) => Arc::new(Webhook::from_config(w)?),
            RevokerConfig::Command(x) => Arc::new(Command::from_config(x)),
        });
    }
    Ok((out, dovecots))
}

/// Reads a key from a file or an environment variable (exactly one must be set).
fn read_key(file: Option<&Path>, env: Option<&str>, what: &str) -> Result<Secret, Error> {
    let p = match (file, env) {
        (Some(f), None) => Password::from_file(f)?,
        (None, Some(v)) => Password::from_env(v)?,
        _ => {
            return Err(Error::new(
                ErrorKind::Config,
                format!("{what}: set exactly one of file and env"),
            ))
        }
    };
    Ok(Secret::new(p.expose_secret().as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoker_configs_are_checked() {
        let parse = |t: &str| -> Result<RevokerConfig, Error> {
            let c: RevokerConfig =
                toml::from_str(t).map_err(|e| Error::new(ErrorKind::Config, e.message()))?;
            c.check()?;
            Ok(c)
        };
        assert!(parse(
            "type = \"dovecot\"\nurl = \"http://127.0.0.1:18080/doveadm/v1\"\napi_key_env = \"K\""
        )
        .is_ok());
        for bad in [
            "type = \"dovecot\"\nurl = \"ftp://x\"\napi_key_env = \"K\"",
            "type = \"dovecot\"\nurl = \"http://127.0.0.1/\"",
            "type = \"webhook\"\nname = \"w\"\nurl = \"https://h/\"\nsecret_env = \"S\"",
            "type = \"webhook\"\nname = \"w\"\nurl = \"http://example.test/\"\nsecret_env = \"S\"",
            "type = \"command\"\nname = \"c\"\nprogram = \"relative/prog\"",
            "type = \"smoke-signals\"\nname = \"x\"",
        ] {
            assert_eq!(parse(bad).expect_err(bad).kind(), ErrorKind::Config, "{bad}");
        }
    }
}
