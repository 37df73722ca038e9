//! Noticing an attack before anyone calls: Dovecot's login log and Postfix's log followed as
//! they are written, and the outbound policy service's records; rules over each login (a new
//! network for an account, one address on many accounts, bursts of failures), each sending
//! limit exceeded, and each mail rule sending outside that a ManageSieve login leaves
//! ([`WatchService`]); and alerts — deduplicated per rule and account (or address) and
//! rate-limited — each carrying the containment to run.
//!
//! The watcher's state lives in a database of its own ([`State`]: SQLite): where each log was
//! read up to (inode and offset), each account's networks, the recent logins and failures the
//! windows count, and the alerts raised. A batch of lines is one transaction, so a restart, a
//! crash (SIGKILL) or a rotation (rename-and-create or copytruncate: [`follow`]) neither misses
//! nor repeats a line, nor alerts twice.
//!
//! [`Watcher::replay`] runs the same rules over old logs (plain or gzip'd), in a state of its
//! own: what would have been alerted, for tuning thresholds and for the incident record.
//!
//! ```no_run
//! # fn demo(cfg: &cadenas::watch::WatchConfig) -> Result<(), cadenas::Error> {
//! use cadenas::watch::Watcher;
//!
//! let mut watcher = Watcher::open(cfg)?;
//! loop {
//!     for alert in watcher.poll()? {
//!         println!("{}", alert.sms_text(cadenas::notify::Language::En));
//!     }
//!     std::thread::sleep(std::time::Duration::from_secs(1));
//! }
//! # }
//! ```

mod alert;
pub mod follow;
mod memory;
mod rules;
mod service;
mod state;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, ErrorKind};
use crate::incident::auto::{default_dry_run, default_max_per_hour};
use crate::investigate::{AddressRange, Instant};
pub use alert::{Alert, AlertRule};
use follow::Follower;
pub use service::{journaled_alerts, HandledAlert, WatchService};
pub use state::State;

/// The `[watch]` config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WatchConfig {
    /// Dovecot's log files to follow (login lines).
    #[serde(default)]
    pub dovecot_logs: Vec<PathBuf>,
    /// Postfix's log files to follow (SMTP AUTH: messages submitted after a login, failed
    /// logins), judged by the same rules as Dovecot's logins.
    #[serde(default)]
    pub postfix_logs: Vec<PathBuf>,
    /// The outbound policy service's database (`[outbound] database`): each sending limit it
    /// records exceeded is an alert (`sending_limit`).
    #[serde(default)]
    pub policy_database: Option<PathBuf>,
    /// The watcher's state database (SQLite), created if missing.
    pub state: PathBuf,
    /// The organisation's own networks: never a "new network", never counted as an attacker's
    /// address.
    #[serde(default)]
    pub own_networks: Vec<AddressRange>,
    /// How far back an account's networks count as known, days. Default 30.
    #[serde(default = "default_baseline_days")]
    pub baseline_days: i64,
    /// Distinct accounts from one address (logins and failures) that raise an alert. Default 5.
    #[serde(default = "default_many_accounts")]
    pub many_accounts: u64,
    /// Within this many minutes. Default 10.
    #[serde(default = "default_window")]
    pub many_accounts_window_mins: i64,
    /// Failed logins on one account that raise an alert. Default 10.
    #[serde(default = "default_failures_per_account")]
    pub failures_per_account: u64,
    /// Failed logins from one address that raise an alert. Default 20.
    #[serde(default = "default_failures_per_address")]
    pub failures_per_address: u64,
    /// Within this many minutes. Default 10.
    #[serde(default = "default_window")]
    pub failures_window_mins: i64,
    /// One alert per rule and account (or address) within this many minutes (0: every
    /// time). Default 60.
    #[serde(default = "default_dedupe")]
    pub dedupe_mins: i64,
    /// At most this many alerts per hour, all rules. Default 20.
    #[serde(default = "default_max_alerts")]
    pub max_alerts_per_hour: u64,
    /// Seconds after a ManageSieve login at which the account's Sieve scripts are read (through
    /// the Dovecot revokers `[mail] sieve_via` names) for a rule that sends mail outside the
    /// local domains. Default `[10, 120]`; empty: never.
    #[serde(default = "default_mail_rule_checks")]
    pub mail_rule_checks_secs: Vec<i64>,
    /// Which rules may contain an account automatically, and the rails (`[watch.auto_contain]`).
    /// None by default.
    #[serde(default)]
    pub auto_contain: AutoContain,
}

/// `[watch.auto_contain]`: the rules whose alerts contain their account automatically — lock,
/// revoke its sessions, hold its queued mail, no reset — and the rails: at most
/// `max_per_hour` (counted in the state, dry-run ones included), never a protected account
/// (the containment refuses it), and a dry run by default that only says "would contain".
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AutoContain {
    /// The rules that may contain (`new_network`, `outside_mail_rule`). Empty by default:
    /// alerts only.
    #[serde(default)]
    pub rules: Vec<AlertRule>,
    /// At most this many automatic containments in any hour. Default 3.
    #[serde(default = "default_max_per_hour")]
    pub max_per_hour: usize,
    /// Only say what would be done. Default true.
    #[serde(default = "default_dry_run")]
    pub dry_run: bool,
}

impl Default for AutoContain {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            max_per_hour: default_max_per_hour(),
            dry_run: default_dry_run(),
        }
    }
}

fn default_mail_rule_checks() -> Vec<i64> {
    vec![10, 120]
}

fn default_baseline_days() -> i64 {
    30
}
fn default_many_accounts() -> u64 {
    5
}
fn default_window() -> i64 {
    10
}
fn default_failures_per_account() -> u64 {
    10
}
fn default_failures_per_address() -> u64 {
    20
}
fn default_dedupe() -> i64 {
    60
}
fn default_max_alerts() -> u64 {
    20
}

impl WatchConfig {
    /// A config following `dovecot_logs`, its state in `state`, every threshold at its default.
    pub fn new(dovecot_logs: Vec<PathBuf>, state: PathBuf) -> Self {
        Self {
            dovecot_logs,
            postfix_logs: Vec::new(),
            policy_database: None,
            state,
            own_networks: Vec::new(),
            baseline_days: default_baseline_days(),
            many_accounts: default_many_accounts(),
            many_accounts_window_mins: default_window(),
            failures_per_account: default_failures_per_account(),
            failures_per_address: default_failures_per_address(),
            failures_window_mins: default_window(),
            dedupe_mins: default_dedupe(),
            max_alerts_per_hour: default_max_alerts(),
            mail_rule_checks_secs: default_mail_rule_checks(),
            auto_contain: AutoContain::default(),
        }
    }

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        for p in self
            .dovecot_logs
            .iter_mut()
            .chain(self.postfix_logs.iter_mut())
            .chain(self.policy_database.iter_mut())
            .chain(std::iter::once(&mut self.state))
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// The longest window the rules count in, seconds: how long their events are kept.
    pub(crate) fn window_secs(&self) -> i64 {
        self.many_accounts_window_mins.max(self.failures_window_mins) * 60
    }

    /// How long raised alerts are remembered, seconds: the dedupe window, and at least the
    /// hour the cap counts.
    pub(crate) fn alerts_secs(&self) -> i64 {
        self.dedupe_mins.max(60) * 60
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        let bad = |why: &str| Error::new(ErrorKind::Config, format!("watch: {why}"));
        if self.dovecot_logs.is_empty() && self.postfix_logs.is_empty() && self.policy_database.is_none() {
            return Err(bad(
                "nothing to watch: name dovecot_logs, postfix_logs or policy_database",
            ));
        }
        if self.baseline_days < 1
            || self.many_accounts_window_mins < 1
            || self.failures_window_mins < 1
            || self.dedupe_mins < 0
            || self
                .mail_rule_checks_secs
                .iter()
                .any(|s| !(0..=86_400).contains(s))
        {
            return Err(bad(
                "the windows are at least 1 (minutes, days); mail_rule_checks_secs within a day",
            ));
        }
        if self.many_accounts < 2 || self.failures_per_account < 1 || self.failures_per_address < 1 {
            return Err(bad(
                "many_accounts is at least 2, the failure thresholds at least 1",
            ));
        }
        for rule in &self.auto_contain.rules {
            let why = match rule {
                AlertRule::NewNetwork | AlertRule::OutsideMailRule | AlertRule::SendingLimit => continue,
                AlertRule::ManyAccounts | AlertRule::FailuresFromAddress => {
                    "it is about an address, not one account: contain its accounts with the alert's command"
                }
                AlertRule::FailuresOnAccount => {
                    "failed logins do not show the password is known; locking on them would lock users out for the attacker"
                }
            };
            return Err(bad(&format!(
                "auto_contain: rule {} cannot contain automatically: {why}",
                rule.name()
            )));
        }
        Ok(())
    }
}

/// The watcher: the followers of the configured logs, its state, and the rules' state in
/// memory (loaded from the state, written back in each batch).
#[derive(Debug)]
pub struct Watcher {
    cfg: WatchConfig,
    state: State,
    followers: Vec<Follower>,
    memory: memory::Memory,
}

impl Watcher {
    /// Opens the state and follows each log from where the state says it was read up to — a
    /// log never read before from its current end (what was written before the watcher
    /// started is [`replay`](Self::replay)'s).
    pub fn open(cfg: &WatchConfig) -> Result<Self, Error> {
        cfg.check()?;
        let mut state = State::open(&cfg.state)?;
        let (followers, memory) = Self::load(cfg, &state)?;
        // where a log never read before starts (its end now) is kept at once: a poll that
        // fails, or a crash, starts there again, not at a later end
        for f in &followers {
            if let (None, Some(pos)) = (state.position(f.path())?, f.position()) {
                state.batch(|b| b.set_position(f.path(), pos))?;
            }
        }
        // the policy service's limits likewise, from its last row now
        if let Some(db) = cfg.policy_database.as_ref().filter(|d| d.exists()) {
            let key = Self::limits_key(db);
            if state.position(&key)?.is_none() {
                let last = crate::outbound::last_limit(db)?;
                let pos = follow::Position {
                    offset: last as u64,
                    ..follow::Position::default()
                };
                state.batch(|b| b.set_position(&key, pos))?;
            }
        }
        Ok(Self {
            cfg: cfg.clone(),
            state,
            followers,
            memory,
        })
    }

    /// The followers at the state's positions and the rules' state, as the database holds them.
    fn load(cfg: &WatchConfig, state: &State) -> Result<(Vec<Follower>, memory::Memory), Error> {
        let mut followers = Vec::with_capacity(cfg.dovecot_logs.len() + cfg.postfix_logs.len());
        for log in cfg.dovecot_logs.iter().chain(&cfg.postfix_logs) {
            followers.push(Follower::new(log.clone(), state.position(log)?, false)?);
        }
        let memory = state.load(
            Instant::now().unix(),
            cfg.baseline_days,
            cfg.window_secs(),
            cfg.alerts_secs(),
        )?;
        Ok((followers, memory))
    }

    /// Reads what was written since the last poll, runs the rules, and returns the alerts
    /// raised (recorded as unsent: [`Watcher::unsent`], [`Watcher::mark_sent`]). Each log's
    /// new lines, what they taught, their alerts and its position are committed together; a
    /// batch that cannot be committed (the database locked, unreachable) is read again at the
    /// next poll — nothing is missed, nothing alerted twice.
    pub fn poll(&mut self) -> Result<Vec<Alert>, Error> {
        let r = self.poll_once();
        if r.is_err() {
            self.start_again_from_the_state();
        }
        r
    }

    /// After a batch that was not committed: what was read and judged in memory is dropped,
    /// the followers and the memory start again from the state (the error is the caller's; if
    /// the state cannot be read now, the next poll tries again).
    fn start_again_from_the_state(&mut self) {
        if let Ok((followers, memory)) = Self::load(&self.cfg, &self.state) {
            self.followers = followers;
            self.memory = memory;
        }
    }

    fn poll_once(&mut self) -> Result<Vec<Alert>, Error> {
        let now = Instant::now();
        let mut raised = Vec::new();
        for f in &mut self.followers {
            // what is written already, a batch (a transaction) per 4 MiB, at most 64 MiB a
            // poll (the alerts wait for the poll's end)
            for _ in 0..16 {
                let lines = f.read_new()?;
                let Some(pos) = f.position() else {
                    break;
                };
                let mut alerts = Vec::new();
                for l in &lines {
                    if let Some(login) = login_of(&l.text, now) {
                        alerts.extend(rules::judge(&mut self.memory, &self.cfg, &login, now));
                    }
                }
                let changes = self.memory.take_changes();
                let path = f.path().to_owned();
                let keep = self.cfg.window_secs();
                self.state.batch(|b| {
                    b.write(&changes)?;
                    b.prune(now.unix() - keep)?;
                    b.set_position(&path, pos)
                })?;
                raised.extend(alerts);
                if !f.has_more() {
                    break;
                }
            }
        }
        if let Some(db) = &self.cfg.policy_database {
            raised.extend(self.poll_limits(db.clone())?);
        }
        Ok(raised)
    }

    /// The sending limits the policy service recorded since the last poll: one alert each
    /// (deduplicated and capped like the others), and the last row read, in one transaction.
    /// A database not created yet is nothing to read.
    fn poll_limits(&mut self, db: PathBuf) -> Result<Vec<Alert>, Error> {
        if !db.exists() {
            return Ok(Vec::new());
        }
        let key = Self::limits_key(&db);
        let after = self.state.position(&key)?.map_or(0, |p| p.offset as i64);
        let rows = crate::outbound::read_limits(&db, after)?;
        let Some((last, _)) = rows.last() else {
            return Ok(Vec::new());
        };
        let last = *last;
        let mut alerts = Vec::new();
        for (_, r) in &rows {
            let account = r.login.to_lowercase();
            let alert = Alert::new(
                AlertRule::SendingLimit,
                Some(&account),
                &r.client_address,
                r.time,
                r.detail.clone(),
            );
            alerts.extend(rules::admit(&mut self.memory, &self.cfg, vec![alert], r.time));
        }
        let changes = self.memory.take_changes();
        self.state.batch(|b| {
            b.write(&changes)?;
            b.set_position(
                &key,
                follow::Position {
                    offset: last as u64,
                    ..follow::Position::default()
                },
            )
        })?;
        Ok(alerts)
    }

    /// Where the state keeps the last limit row read of `db`.
    fn limits_key(db: &Path) -> PathBuf {
        PathBuf::from(format!("policy-limits:{}", db.display()))
    }

    /// Records what mail-rule check `id` found on `account` (a ManageSieve login from `ip`):
    /// the active scripts that send mail outside, as (SHA-256, what it does). A script not
    /// seen on the account before raises an `outside_mail_rule` alert (deduplicated and
    /// capped like the others); the check is done. One transaction.
    pub(super) fn mail_rule_checked(
        &mut self,
        id: i64,
        account: &str,
        ip: &str,
        found: &[(String, String)],
    ) -> Result<Vec<Alert>, Error> {
        let now = Instant::now().unix();
        let cfg = &self.cfg;
        let memory = &mut self.memory;
        let r = self.state.batch(|b| {
            let mut new = Vec::new();
            for (sha, what) in found {
                if b.saw_script(account, sha)? {
                    new.push(what.as_str());
                }
            }
            let mut raised = Vec::new();
            if !new.is_empty() {
                let detail = format!("after a ManageSieve login: {}", new.join("; "));
                let alert = Alert::new(AlertRule::OutsideMailRule, Some(account), ip, now, detail);
                raised = rules::admit(memory, cfg, vec![alert], now);
                b.write(&memory.take_changes())?;
            }
            b.mail_rule_checked(id)?;
            Ok(raised)
        });
        if r.is_err() {
            self.start_again_from_the_state();
        }
        r
    }

    /// Alerts raised and not yet delivered (a crash between the two), with their ids.
    pub fn unsent(&self) -> Result<Vec<(i64, Alert)>, Error> {
        self.state.unsent()
    }

    /// Marks alert `id` delivered.
    pub fn mark_sent(&self, id: i64) -> Result<(), Error> {
        self.state.mark_sent(id)
    }

    /// Runs the rules over `logs` (plain or gzip'd, in the order given) from `since`, in a
    /// state of its own kept in memory, and returns what would have been alerted, in order.
    pub fn replay(cfg: &WatchConfig, logs: &[PathBuf], since: Option<Instant>) -> Result<Vec<Alert>, Error> {
        cfg.check()?;
        let mut m = memory::Memory::new(false);
        let now = Instant::now();
        let mut alerts = Vec::new();
        for log in logs {
            crate::investigate::for_each_line(log, |text| {
                if let Some(l) = login_of(text, now) {
                    if since.is_none_or(|s| l.time.is_some_and(|t| t >= s)) {
                        alerts.extend(rules::judge(&mut m, cfg, &l, now));
                    }
                }
            })?;
        }
        Ok(alerts)
    }
}

/// A login line of Dovecot's log, or an SMTP AUTH line of Postfix's.
fn login_of(text: &str, now: Instant) -> Option<crate::investigate::LoginLine<'_>> {
    crate::investigate::parse_login(text, now).or_else(|| crate::postfix::smtp_login(text, now))
}

#[cfg(test)]
mod tests;
