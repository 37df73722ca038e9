//! The attacker's outbound mail: a Postfix policy service that refuses every message of a
//! contained account — also on an SMTP session that authenticated *before* the containment —
//! and holds accounts to sending limits.
//!
//! Postfix asks the service ([`PolicyService`], `cadenas outbound serve`) at every `RCPT TO`
//! and at the end of every message (`check_policy_service` in `smtpd_recipient_restrictions`
//! and `smtpd_end_of_data_restrictions`). The service:
//!
//! - answers `REJECT` + `reject_text` (no internal detail) when the session's `sasl_username`
//!   is a contained account. It learns containments and releases from the journal the
//!   responders write (a file, or PostgreSQL shared by responders on several hosts), read in
//!   full at start — nothing is answered before — and then followed every `journal_poll_ms`:
//!   no directory search per request. If the journal cannot be read it keeps answering from
//!   what it knew, and says so in its log and status file;
//! - applies per-account sending limits ([`LimitConfig`]): messages, recipients and distinct
//!   client addresses per sliding window, each with its action (`DEFER_IF_PERMIT`, `HOLD`,
//!   `REJECT`) and per-account overrides; the first time an account exceeds a limit in a
//!   window, the `sending_limit` notifiers are told the account, counts and addresses — never
//!   message content. With `database`, every message let through is recorded there, and the
//!   windows are rebuilt from those records at start (else a restart starts them afresh). A limit
//!   marked `contain = true` also contains the account automatically — lock, revoke, hold its
//!   mail, no reset — within rails (`[outbound.auto_contain]`: at most `max_per_hour`, counted
//!   in the journal; never a protected account; a dry run unless `dry_run = false`);
//! - answers `DUNNO` otherwise (Postfix goes on with its own restrictions).
//!
//! **When the service is down**, Postfix answers the client with a temporary error (`451
//! 4.3.5`) after `smtpd_policy_service_timeout`, unless `smtpd_policy_service_default_action`
//! says otherwise: `DUNNO` there means mail flows (contained accounts included) while the
//! service is down; the default (`451 4.3.5 Server configuration problem`) means nobody sends
//! until it is back. Pick one knowingly; systemd restarts the service in a second either way.
//!
//! ```text
//! # /etc/postfix/main.cf
//! smtpd_recipient_restrictions = check_policy_service unix:/run/cadenas/policy.sock,
//!     permit_sasl_authenticated, reject
//! smtpd_end_of_data_restrictions = check_policy_service unix:/run/cadenas/policy.sock
//! smtpd_policy_service_default_action = 451 4.3.5 Policy service unavailable
//! ```

mod auto;
mod contained;
mod limits;
mod policy;
mod records;
mod review;
mod service;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use auto::AutoContainConfig;
pub use limits::{LimitAction, LimitConfig};
pub use policy::{PolicyRequest, Verdict};
pub(crate) use records::{last_limit, read_limits, read_records};
pub use review::{held_messages, review_held, HeldMessage};
pub use service::{ask, ListenAddress, PolicyService, ServiceStatus};

use crate::error::{Error, ErrorKind};

/// The `[outbound]` config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OutboundConfig {
    /// Where the policy service listens: `unix:/run/cadenas/policy.sock`, `127.0.0.1:10040`.
    /// A containment's revoke step asks the first one whether the account is refused.
    pub listen: Vec<String>,
    /// The text after `REJECT` for a contained account. Default `5.7.1 Sending from this
    /// account is suspended; contact the service desk`.
    #[serde(default = "default_reject_text")]
    pub reject_text: String,
    /// How often the journal is read for new records, in milliseconds. Default 100.
    #[serde(default = "default_poll_ms")]
    pub journal_poll_ms: u64,
    /// The most connections at once; a new one closes the one idle the longest. Default 1024.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a connection may stay idle. Default 600 (Postfix closes its own after 300).
    #[serde(default = "default_idle")]
    pub idle_timeout_secs: u64,
    /// Seconds a request may take to arrive whole once started. Default 10.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// A JSON file the service keeps up to date with its [`ServiceStatus`].
    #[serde(default)]
    pub status_file: Option<PathBuf>,
    /// The service's own records (SQLite, created 0600): every message it let through, kept
    /// 30 days. The sending windows are rebuilt from them at start, and reports count what an
    /// account sent from them too.
    #[serde(default)]
    pub database: Option<PathBuf>,
    /// Sending limits (`[[outbound.limits]]`).
    #[serde(default)]
    pub limits: Vec<LimitConfig>,
    /// Milliseconds a containment's revoke step waits for the service to refuse the account.
    /// Default 3000.
    #[serde(default = "default_confirm_ms")]
    pub confirm_timeout_ms: u64,
    /// The rails of automatic containments (`contain = true` on a limit): at most
    /// `max_per_hour` (3), a dry run unless `dry_run = false`.
    #[serde(default)]
    pub auto_contain: AutoContainConfig,
}

fn default_reject_text() -> String {
    "5.7.1 Sending from this account is suspended; contact the service desk".into()
}
fn default_poll_ms() -> u64 {
    100
}
fn default_max_connections() -> usize {
    1024
}
fn default_idle() -> u64 {
    600
}
fn default_request_timeout() -> u64 {
    10
}
fn default_confirm_ms() -> u64 {
    3000
}

impl OutboundConfig {
    /// A section listening on `listen`, with the defaults.
    pub fn new(listen: Vec<String>) -> Self {
        Self {
            listen,
            reject_text: default_reject_text(),
            journal_poll_ms: default_poll_ms(),
            max_connections: default_max_connections(),
            idle_timeout_secs: default_idle(),
            request_timeout_secs: default_request_timeout(),
            status_file: None,
            database: None,
            limits: Vec::new(),
            confirm_timeout_ms: default_confirm_ms(),
            auto_contain: AutoContainConfig::default(),
        }
    }

    /// The listen addresses, parsed.
    pub fn addresses(&self) -> Result<Vec<ListenAddress>, Error> {
        self.listen.iter().map(|a| ListenAddress::parse(a)).collect()
    }

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        for p in self.status_file.iter_mut().chain(self.database.iter_mut()) {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        let bad = |m: String| Error::new(ErrorKind::Config, format!("outbound: {m}"));
        if self.listen.is_empty() {
            return Err(bad("listen: give at least one address".into()));
        }
        self.addresses()?;
        for l in &self.limits {
            if l.window_secs == 0 || l.max == 0 {
                return Err(bad(format!(
                    "limit on {}: max and window_secs must be at least 1",
                    l.counts.name()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_parses_with_limits_and_bad_ones_are_config_errors() {
        let c: OutboundConfig = toml::from_str(
            r#"
            listen = ["unix:/run/cadenas/policy.sock", "127.0.0.1:10040"]
            [[limits]]
            counts = "recipients"
            max = 200
            window_secs = 3600
            action = "HOLD"
            overrides = { newsletter = 5000 }
            "#,
        )
        .expect("parse");
        c.check().expect("valid");
        assert_eq!(c.addresses().expect("addresses").len(), 2);
        assert_eq!(c.limits[0].action, LimitAction::Hold);
        for bad in [
            OutboundConfig::new(vec![]),
            OutboundConfig::new(vec!["unix:relative.sock".into()]),
            OutboundConfig::new(vec!["localhost".into()]),
        ] {
            assert_eq!(bad.check().expect_err("bad").kind(), ErrorKind::Config);
        }
    }
}
