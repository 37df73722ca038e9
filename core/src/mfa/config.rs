//! The `[mfa]` config section.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::totp::{Algorithm, TotpParams};
use crate::error::{Error, ErrorKind};

/// The `[mfa]` config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MfaConfig {
    /// SQLite database file.
    pub database: PathBuf,
    /// 32-byte key for secrets at rest (created 0600 with a new database).
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
    /// A config with defaults for the given files.
    pub fn new(database: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            database: database.into(),
            key_file: key_file.into(),
            issuer: default_issuer(),
            algorithm: Algorithm::Sha1,
            digits: default_digits(),
            period: default_period(),
            max_failures: default_max_failures(),
            failure_window_secs: default_window(),
            lockout_secs: default_lockout(),
            recovery_codes: default_recovery(),
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

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.database, &mut self.key_file] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        self.params().check()?;
        if self.max_failures == 0 || !(1..=100).contains(&self.recovery_codes) {
            return Err(Error::new(
                ErrorKind::Config,
                "mfa: max_failures ≥ 1 and recovery_codes 1..=100",
            ));
        }
        Ok(())
    }
}
