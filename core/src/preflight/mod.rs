//! The preflight (`cadenas check`): before incident day, whether everything a containment
//! needs answers and is allowed to act — one [`Check`] per point, each ok, warn or fail with
//! the fix in plain words. It changes nothing, but on the canary account (`[canary]`): there
//! it locks, resets and adds to the MFA group for real, and puts the flags back.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cadenas::Error> {
//! use cadenas::preflight::{preflight, PreflightOptions, Verdict};
//!
//! let cfg = cadenas::Config::from_file("/etc/cadenas/cadenas.toml".as_ref())?;
//! let report = preflight(&cfg, &PreflightOptions::default()).await;
//! for c in report.checks.iter().filter(|c| c.verdict != Verdict::Ok) {
//!     println!("{} {}: {} — {}", c.verdict.name(), c.name, c.detail, c.fix.as_deref().unwrap_or(""));
//! }
//! # Ok(()) }
//! ```

mod certs;
mod directory;
mod files;
mod services;
mod watch;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::Config;

/// The `[canary]` section: accounts that exist for tests only — the preflight acts on the
/// first one for real (lock, reset, MFA group; the flags put back, the password left random),
/// and a drill contains them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CanaryConfig {
    /// User names (or `dn:<DN>`) of the canary accounts.
    pub accounts: Vec<String>,
}

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// It works.
    Ok,
    /// It works, but something needs care soon (or could not be checked).
    Warn,
    /// It does not work: a containment would fail or be incomplete here.
    Fail,
}

impl Verdict {
    /// `ok`, `warn` or `fail`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// One check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Check {
    /// What was checked, e.g. `directory: service account binds`.
    pub name: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What was found (never a secret).
    pub detail: String,
    /// What to do about it, in plain words (for warn and fail).
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn ok(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            verdict: Verdict::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub(crate) fn warn(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            verdict: Verdict::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub(crate) fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            verdict: Verdict::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every check, in order, and the worst verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PreflightReport {
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// The worst verdict (ok when every check is).
    pub verdict: Verdict,
}

/// What the preflight may do beyond reading.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PreflightOptions {
    /// The host's clock, compared with the directory's (default: now; a test gives a skewed
    /// one).
    pub now: Option<SystemTime>,
    /// Most clock difference before a warning, in seconds (TOTP accepts ±1 step of 30 s).
    pub max_clock_skew_secs: u64,
    /// Send every notifier a test message (marked TEST, the default texts; SMTP to its fixed
    /// recipients only). Without it a notifier's server is only reached, nothing is sent.
    pub notify_test: bool,
}

impl Default for PreflightOptions {
    fn default() -> Self {
        Self {
            now: None,
            max_clock_skew_secs: 15,
            notify_test: false,
        }
    }
}

/// Runs every check the config calls for. Never fails as a whole: what cannot be checked is a
/// check that fails or warns, with its reason.
pub async fn preflight(cfg: &Config, opts: &PreflightOptions) -> PreflightReport {
    let mut checks = files::checks(cfg);
    checks.extend(directory::checks(cfg, opts).await);
    checks.extend(services::checks(cfg, opts).await);
    checks.extend(watch::checks(cfg).await);
    let verdict = checks.iter().map(|c| c.verdict).max().unwrap_or(Verdict::Ok);
    PreflightReport { checks, verdict }
}
