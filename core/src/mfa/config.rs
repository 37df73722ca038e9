//! The `[mfa]` config section.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::totp::{Algorithm, TotpParams};
use crate::db::{Database, PgTarget};
use crate::error::{Error, ErrorKind};

/// The `[mfa]` config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MfaConfig {
    /// Where the state lives: a SQLite file (one host), or a `postgresql://user@host/db` URL
    /// shared by several hosts (see [`crate::Database`]).
    pub database: Database,
    /// PostgreSQL only: the file holding the database user's password.
    #[serde(default)]
    pub database_password_file: Option<PathBuf>,
    /// PostgreSQL only: CA certificates (PEM) to verify the server with; default the system's.
    #[serde(default)]
    pub database_ca_file: Option<PathBuf>,
    /// 32-byte key for secrets at rest (created 0600 with a new store; every host sharing a
    /// PostgreSQL store needs a copy).
    pub key_file: PathBuf,
    /// Issuer shown in authenticator apps. Default `Cadenas`.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// HMAC hash. Default `sha1` (what every app supports).
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Digits per code. Default 6.
    #[serde(default = "default_digits")]
    pub digits: u32,
    /// Step in seconds. Default 30.
    #[serde(default = "default_period")]
    pub period: u64,
    /// Failures before a cool-down. Default 5.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// Window in which failures count, seconds. Default 300.
    #[serde(default = "default_window")]
    pub failure_window_secs: u64,
    /// Cool-down, seconds. Default 900.
    #[serde(default = "default_lockout")]
    pub lockout_secs: u64,
    /// Recovery codes per set. Default 10.
    #[serde(default = "default_recovery")]
    pub recovery_codes: usize,
    /// When an accepted code is on disk. Default [`Synchronous::Full`].
    #[serde(default)]
    pub synchronous: Synchronous,
}

/// When a verification's record (the replay guard, the failure count) is on disk before
/// `verify` returns — what a crash can take back. `synchronous = "full"` or `"normal"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Synchronous {
    /// Durable before `Ok` returns: flushed to the disk (SQLite `synchronous = FULL` in WAL
    /// mode; PostgreSQL `synchronous_commit = on`). Neither a crash of the process nor a
    /// power loss lets a code be accepted a second time. The default.
    #[default]
    Full,
    /// Handed to the operating system (SQLite `synchronous = NORMAL`) or to the server's
    /// WAL writer (PostgreSQL `synchronous_commit = off`) before `Ok` returns: a crash of
    /// this process loses nothing, but a power loss (SQLite) or a crash of the database
    /// server (PostgreSQL, up to three `wal_writer_delay`s) can take back the last
    /// verifications — a code then used again within its 30 s would be accepted once more.
    Normal,
}

fn default_issuer() -> String {
    "Cadenas".into()
}
fn default_digits() -> u32 {
    6
}
fn default_period() -> u64 {
    30
}
fn default_max_failures() -> u32 {
    5
}
fn default_window() -> u64 {
    300
}
fn default_lockout() -> u64 {
    900
}
fn default_recovery() -> usize {
    10
}

impl MfaConfig {
    /// A config with defaults for the given store (a SQLite file path, or a [`Database`]) and
    /// key file.
    pub fn new(database: impl Into<Database>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            database: database.into(),
            database_password_file: None,
            database_ca_file: None,
            key_file: key_file.into(),
            issuer: default_issuer(),
            algorithm: Algorithm::Sha1,
            digits: default_digits(),
            period: default_period(),
            max_failures: default_max_failures(),
            failure_window_secs: default_window(),
            lockout_secs: default_lockout(),
            recovery_codes: default_recovery(),
            synchronous: Synchronous::Full,
        }
    }

    /// TOTP parameters for new enrolments.
    pub fn params(&self) -> TotpParams {
        TotpParams {
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
        }
    }

    /// The PostgreSQL target, when the store is one (checked: no password in the URL, TLS).
    pub(crate) fn postgres_target(&self) -> Result<Option<PgTarget>, Error> {
        match &self.database {
            Database::Postgres(url) => PgTarget::parse(
                url,
                self.database_password_file.clone(),
                self.database_ca_file.clone(),
            )
            .map(Some)
            .map_err(|e| Error::new(ErrorKind::Config, format!("mfa.{}", e.message()))),
            _ => Ok(None),
        }
    }

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        self.database.resolve_path(base);
        let files = std::iter::once(&mut self.key_file)
            .chain(self.database_password_file.as_mut())
            .chain(self.database_ca_file.as_mut());
        for p in files {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        self.params().check()?;
        self.postgres_target()?;
        if self.database.file().is_some()
            && (self.database_password_file.is_some() || self.database_ca_file.is_some())
        {
            return Err(Error::new(
                ErrorKind::Config,
                "mfa: database_password_file and database_ca_file are for a postgresql:// database",
            ));
        }
        if self.max_failures == 0 || !(1..=100).contains(&self.recovery_codes) {
            return Err(Error::new(
                ErrorKind::Config,
                "mfa: max_failures ≥ 1 and recovery_codes 1..=100",
            ));
        }
        Ok(())
    }
}
