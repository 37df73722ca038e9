//! Per-account sending limits over sliding windows: messages, recipients, and distinct client
//! addresses an account sends from. Counted from the policy requests Postfix makes: a
//! message and its recipients when it ends (`END-OF-MESSAGE`), checked at every `RCPT` and
//! again at the end of the message.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::policy::{PolicyRequest, Verdict};

/// What a limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Counted {
    /// Messages accepted.
    Messages,
    /// Recipients of the messages accepted.
    Recipients,
    /// Distinct client addresses the account sent from.
    ClientAddresses,
}

impl Counted {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Counted::Messages => "messages",
            Counted::Recipients => "recipients",
            Counted::ClientAddresses => "client_addresses",
        }
    }
}

/// What Postfix is told when a limit is exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum LimitAction {
    /// Try again later (4.7.1): the message stays with the client.
    DeferIfPermit,
    /// Accept and put the message on hold in the queue, for review.
    Hold,
    /// Refuse (5.7.1).
    Reject,
}

/// One `[[outbound.limits]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitConfig {
    /// What is counted.
    pub counts: Counted,
    /// The most allowed within the window.
    pub max: u32,
    /// The window, in seconds.
    pub window_secs: u64,
    /// What Postfix is told past the limit.
    pub action: LimitAction,
    /// Other maximums for some accounts (SASL login → max), e.g. a newsletter account.
    #[serde(default)]
    pub overrides: HashMap<String, u32>,
    /// An explicit rule: exceeding this limit contains the account automatically (lock,
    /// revoke, hold its mail — no reset), within `[outbound.auto_contain]`'s rails.
    #[serde(default)]
    pub contain: bool,
}

impl LimitConfig {
    /// A limit of `max` of `counts` per `window_secs`, answered with `action`.
    pub fn new(counts: Counted, max: u32, window_secs: u64, action: LimitAction) -> Self {
        Self {
            counts,
            max,
            window_secs,
            action,
            overrides: HashMap::new(),
            contain: false,
        }
    }

    fn max_for(&self, account: &str) -> u32 {
        self.overrides
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(account))
            .map_or(self.max, |(_, v)| *v)
    }
}

/// A limit exceeded: who, which limit, the counts — never message content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Exceeded {
    /// The SASL login.
    pub account: String,
    /// What the limit counts.
    pub counts: Counted,
    /// Its maximum for this account.
    pub max: u32,
    /// Its window, in seconds.
    pub window_secs: u64,
    /// The count the request would have reached.
    pub count: u32,
    /// The action Postfix was told.
    pub action: LimitAction,
    /// The client addresses the account sent from within the window (this request's too).
    pub client_addresses: Vec<String>,
    /// Messages and recipients within the window.
    pub messages: u32,
    /// Recipients within the window.
    pub recipients: u32,
}

/// What one account did recently.
#[derive(Debug, Default)]
struct Activity {
    /// (when, recipients) per message accepted.
    messages: VecDeque<(Instant, u32)>,
    /// (last seen, address), one per distinct address.
    addresses: VecDeque<(Instant, String)>,
}

impl Activity {
    fn forget_before(&mut self, horizon: Option<Instant>) {
        let Some(h) = horizon else { return };
        while self.messages.front().is_some_and(|(t, _)| *t < h) {
            self.messages.pop_front();
        }
        self.addresses.retain(|(t, _)| *t >= h);
    }

    fn counts_since(&self, since: Option<Instant>) -> (u32, u32) {
        self.messages
            .iter()
            .filter(|(t, _)| since.is_none_or(|s| *t >= s))
            .fold((0, 0), |(m, r), (_, n)| (m + 1, r.saturating_add(*n)))
    }

    /// Distinct addresses within the window, `address` included.
    fn distinct_with(&self, since: Option<Instant>, address: &str) -> u32 {
        let mut n = 0;
        let mut seen = address.is_empty();
        for (t, a) in &self.addresses {
            if since.is_none_or(|s| *t >= s) {
                n += 1;
                seen |= a == address;
            }
        }
        n + u32::from(!seen)
    }

    fn addresses_since(&self, since: Option<Instant>) -> Vec<String> {
        self.addresses
            .iter()
            .filter(|(t, _)| since.is_none_or(|s| *t >= s))
            .map(|(_, a)| a.clone())
            .collect()
    }
}

/// The limits and every account's recent activity (in memory: a restart starts the windows
/// afresh).
#[derive(Debug)]
pub struct Limits {
    limits: Vec<LimitConfig>,
    longest: Duration,
    accounts: HashMap<String, Activity>,
    /// When each (account, limit) was last reported, so that one burst is one alert.
    reported: HashMap<(String, usize), Instant>,
}

/// The most distinct addresses kept per account (bounded memory whatever the client does).
const MAX_ADDRESSES: usize = 1024;

impl Limits {
    /// Limits as configured.
    pub fn new(limits: Vec<LimitConfig>) -> Self {
        let longest = limits
            .iter()
            .map(|l| Duration::from_secs(l.window_secs))
            .max()
            .unwrap_or_default();
        Self {
            limits,
            longest,
            accounts: HashMap::new(),
            reported: HashMap::new(),
        }
    }

    /// Checks `req` (of an authenticated session) against every limit at `now`, counting it
    /// when the message ends. Returns the verdict of the first limit exceeded and, the first
    /// time in a window that this limit is exceeded by this account, what to report.
    #[cfg(test)]
    pub fn check(&mut self, req: &PolicyRequest, now: Instant) -> (Verdict, Option<Exceeded>) {
        let (i, report) = self.exceeded(req, now);
        let verdict = i.map_or(Verdict::Dunno, |i| self.verdict(i));
        (verdict, report)
    }

    /// What Postfix is told when limit `i` is exceeded.
    pub(crate) fn verdict(&self, i: usize) -> Verdict {
        let Some(l) = self.limits.get(i) else {
            return Verdict::Dunno;
        };
        let text = format!(
            "{} sending limit reached for this account; try again later or contact the service desk",
            if l.action == LimitAction::Reject {
                "5.7.1"
            } else {
                "4.7.1"
            }
        );
        match l.action {
            LimitAction::DeferIfPermit => Verdict::DeferIfPermit(text),
            LimitAction::Hold => Verdict::Hold(text),
            LimitAction::Reject => Verdict::Reject(text),
        }
    }

    /// How many limits there are.
    pub(crate) fn len(&self) -> usize {
        self.limits.len()
    }

    /// The longest window, in seconds (how far back records matter).
    pub(crate) fn longest_secs(&self) -> u64 {
        self.longest.as_secs()
    }

    /// Counts a message `age` ago, as if it had just been let through then (the windows
    /// rebuilt from the service's records at start).
    pub(crate) fn replay(
        &mut self,
        login: &str,
        client_address: &str,
        recipients: u32,
        age: Duration,
        now: Instant,
    ) {
        let Some(at) = now.checked_sub(age) else { return };
        let req = PolicyRequest {
            sasl_username: login.to_ascii_lowercase(),
            client_address: client_address.to_owned(),
            recipient_count: recipients,
            ..PolicyRequest::default()
        };
        let act = self.accounts.entry(req.sasl_username.clone()).or_default();
        record(act, at, &req, client_address);
    }

    /// Whether exceeding limit `i` contains the account automatically.
    pub(crate) fn contains_on(&self, i: usize) -> bool {
        self.limits.get(i).is_some_and(|l| l.contain)
    }

    /// [`check`](Self::check), naming the limit exceeded by its index.
    pub(crate) fn exceeded(
        &mut self,
        req: &PolicyRequest,
        now: Instant,
    ) -> (Option<usize>, Option<Exceeded>) {
        if self.limits.is_empty() || req.sasl_username.is_empty() {
            return (None, None);
        }
        let account = if req.sasl_username.bytes().any(|b| b.is_ascii_uppercase()) {
            req.sasl_username.to_ascii_lowercase()
        } else {
            req.sasl_username.clone()
        };
        if !self.accounts.contains_key(&account) {
            self.accounts.insert(account.clone(), Activity::default());
        }
        let Some(act) = self.accounts.get_mut(&account) else {
            return (None, None);
        };
        act.forget_before(now.checked_sub(self.longest));
        let address = req.client_address.as_str();
        let eom = req.at_end_of_message();
        for (i, l) in self.limits.iter().enumerate() {
            let since = now.checked_sub(Duration::from_secs(l.window_secs));
            let (messages, recipients) = act.counts_since(since);
            let count = match (l.counts, eom) {
                (Counted::Messages, _) => messages + 1,
                (Counted::Recipients, true) => recipients.saturating_add(req.recipient_count.max(1)),
                (Counted::Recipients, false) => recipients.saturating_add(1),
                (Counted::ClientAddresses, _) => act.distinct_with(since, address),
            };
            let max = l.max_for(&account);
            if count <= max {
                continue;
            }
            let window = Duration::from_secs(l.window_secs);
            let key = (account.clone(), i);
            let first = self
                .reported
                .get(&key)
                .is_none_or(|t| now.duration_since(*t) >= window);
            let report = first.then(|| {
                self.reported.insert(key, now);
                let mut client_addresses = act.addresses_since(since);
                if !address.is_empty() && !client_addresses.iter().any(|a| a == address) {
                    client_addresses.push(address.to_owned());
                }
                Exceeded {
                    account: account.clone(),
                    counts: l.counts,
                    max,
                    window_secs: l.window_secs,
                    count,
                    action: l.action,
                    client_addresses,
                    messages,
                    recipients,
                }
            });
            // a held message is accepted: it counts
            if eom && l.action == LimitAction::Hold {
                record(act, now, req, address);
            }
            return (Some(i), report);
        }
        if eom {
            record(act, now, req, address);
        }
        (None, None)
    }
}

fn record(act: &mut Activity, now: Instant, req: &PolicyRequest, address: &str) {
    act.messages.push_back((now, req.recipient_count.max(1)));
    if address.is_empty() {
        return;
    }
    act.addresses.retain(|(_, a)| a != address);
    act.addresses.push_back((now, address.to_owned()));
    if act.addresses.len() > MAX_ADDRESSES {
        act.addresses.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(user: &str, ip: &str, eom: bool, rcpts: u32) -> PolicyRequest {
        PolicyRequest {
            request: "smtpd_access_policy".into(),
            protocol_state: if eom { "END-OF-MESSAGE" } else { "RCPT" }.into(),
            sasl_username: user.into(),
            client_address: ip.into(),
            recipient_count: rcpts,
            ..PolicyRequest::default()
        }
    }

    #[test]
    fn messages_over_the_window_are_deferred_and_reported_once_per_window() {
        let mut l = Limits::new(vec![LimitConfig::new(
            Counted::Messages,
            2,
            60,
            LimitAction::DeferIfPermit,
        )]);
        let t0 = Instant::now();
        for i in 0..2 {
            assert_eq!(
                l.check(&req("u", "192.0.2.1", false, 0), t0).0,
                Verdict::Dunno,
                "{i}"
            );
            assert_eq!(
                l.check(&req("u", "192.0.2.1", true, 1), t0).0,
                Verdict::Dunno,
                "{i}"
            );
        }
        let (v, rep) = l.check(&req("U", "192.0.2.1", false, 0), t0);
        assert!(matches!(v, Verdict::DeferIfPermit(_)), "{v:?}");
        let rep = rep.expect("first time reported");
        assert_eq!((rep.account.as_str(), rep.count, rep.messages), ("u", 3, 2));
        let (v, rep) = l.check(&req("u", "192.0.2.1", false, 0), t0 + Duration::from_secs(1));
        assert!(v.refuses() && rep.is_none(), "refused again, not reported again");
        // other accounts are not affected, and the window slides
        assert_eq!(
            l.check(&req("other", "192.0.2.1", false, 0), t0).0,
            Verdict::Dunno
        );
        let later = t0 + Duration::from_secs(61);
        assert_eq!(l.check(&req("u", "192.0.2.1", false, 0), later).0, Verdict::Dunno);
    }

    #[test]
    fn recipients_addresses_and_overrides() {
        let mut rcpt = LimitConfig::new(Counted::Recipients, 5, 60, LimitAction::Hold);
        rcpt.overrides.insert("Newsletter".into(), 1000);
        let mut l = Limits::new(vec![
            rcpt,
            LimitConfig::new(Counted::ClientAddresses, 2, 60, LimitAction::Reject),
        ]);
        let t = Instant::now();
        // one message of 10 recipients: held at its end, and counted
        let (v, rep) = l.check(&req("u", "192.0.2.1", true, 10), t);
        assert!(matches!(v, Verdict::Hold(_)), "{v:?}");
        assert_eq!(rep.expect("reported").count, 10);
        assert_eq!(
            l.check(&req("newsletter", "192.0.2.1", true, 500), t).0,
            Verdict::Dunno
        );
        // a third distinct address in the window is refused
        assert_eq!(l.check(&req("w", "192.0.2.1", true, 1), t).0, Verdict::Dunno);
        assert_eq!(l.check(&req("w", "192.0.2.2", true, 1), t).0, Verdict::Dunno);
        let (v, rep) = l.check(&req("w", "198.51.100.9", false, 0), t);
        assert!(
            matches!(v, Verdict::Reject(ref t) if t.starts_with("5.7.1")),
            "{v:?}"
        );
        assert_eq!(rep.expect("reported").client_addresses.len(), 3);
    }
}
