//! The rules' working state, in memory: each account's networks, the recent events each
//! window counts, the alerts recently raised. The watcher loads it from its state database
//! when it opens and writes what changed back in each batch's transaction ([`Changes`]); a
//! replay keeps it in memory only. Judging a line touches no database and allocates nothing
//! for a name or an address seen before: the windows count accounts by a keyed hash of
//! their names and addresses as numbers; only accounts that logged in are numbered and kept
//! ([`Names`], for their networks) — names tried by a spray are never kept.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use super::{Alert, AlertRule};

/// A fast hasher for the numbers that key the windows (FxHash's mixing step; the keys are
/// addresses and account numbers, not text an attacker picks for collisions: names are
/// hashed by the standard hasher, once, in [`Names`]).
#[derive(Default)]
pub(super) struct NumberHasher(u64);

impl Hasher for NumberHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

type NumberMap<K, V> = HashMap<K, V, BuildHasherDefault<NumberHasher>>;

/// The accounts that logged in, each numbered once (for their networks).
#[derive(Debug, Default)]
pub(super) struct Names {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Names {
    /// The number of `name`, given one if new.
    pub(super) fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// The name numbered `id`.
    pub(super) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }
}

/// An address as a number (IPv4 as its IPv6-mapped form).
pub(super) fn address_number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// What a window counts, by key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    /// Logins and failures by address (the other side: the account).
    From = 0,
    /// Failures by account (the other side: the address).
    FailAccount = 1,
    /// Failures by address (the other side: the account).
    FailAddress = 2,
}

impl Kind {
    pub(super) const ALL: [Kind; 3] = [Kind::From, Kind::FailAccount, Kind::FailAddress];

    /// The name in the state database.
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::From => "from",
            Kind::FailAccount => "fail_account",
            Kind::FailAddress => "fail_address",
        }
    }

    /// Whether the key is an account (else an address; the other side is the other).
    fn keyed_by_account(self) -> bool {
        self == Kind::FailAccount
    }
}

/// Up to this many events, a window counts its distinct other sides by scanning them (most
/// windows hold one or two: a map each would cost more than it saves).
const SCAN_UP_TO: usize = 16;

/// One side of a window's event: its number (an address, or an account name's keyed hash)
/// and its text (for the state database).
#[derive(Clone, Copy, Debug)]
pub(super) struct Side<'a> {
    pub(super) n: u128,
    pub(super) text: &'a str,
}

/// The events of one key in its window, oldest first, and — beyond [`SCAN_UP_TO`] events —
/// how many of each other side.
#[derive(Debug, Default)]
struct Window {
    events: VecDeque<(i64, u128)>,
    distinct: Option<Box<NumberMap<u128, u32>>>,
}

impl Window {
    fn push(&mut self, at: i64, other: u128) {
        self.events.push_back((at, other));
        match &mut self.distinct {
            Some(d) => *d.entry(other).or_insert(0) += 1,
            None if self.events.len() > SCAN_UP_TO => {
                let mut d = NumberMap::default();
                for (_, o) in &self.events {
                    *d.entry(*o).or_insert(0) += 1;
                }
                self.distinct = Some(Box::new(d));
            }
            None => {}
        }
    }

    /// Forgets the events before `since`.
    fn prune(&mut self, since: i64) {
        while self.events.front().is_some_and(|(at, _)| *at < since) {
            if let (Some((_, other)), Some(d)) = (self.events.pop_front(), self.distinct.as_mut()) {
                if let Some(n) = d.get_mut(&other) {
                    *n -= 1;
                    if *n == 0 {
                        d.remove(&other);
                    }
                }
            }
        }
        if self.events.len() <= SCAN_UP_TO / 2 {
            self.distinct = None;
        }
    }

    /// How many distinct other sides.
    fn distinct(&self) -> usize {
        match &self.distinct {
            Some(d) => d.len(),
            None => {
                let mut n = 0;
                for (i, (_, o)) in self.events.iter().enumerate() {
                    if !self.events.iter().take(i).any(|(_, p)| p == o) {
                        n += 1;
                    }
                }
                n
            }
        }
    }
}

/// A network as a number: an IPv4 address's /24 (tagged), an IPv6 address's /48.
pub(super) fn network_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => (1 << 63) | u64::from(u32::from(v4) >> 8),
        IpAddr::V6(v6) => (u128::from(v6) >> 80) as u64,
    }
}

/// The network's text (`192.0.2.0/24`, `2001:db8:1::/48`), as alerts and the database write it.
pub(super) fn network_text(key: u64) -> String {
    if key >> 63 == 1 {
        let v = ((key & 0xff_ffff) << 8) as u32;
        let o = v.to_be_bytes();
        format!("{}.{}.{}.0/24", o[0], o[1], o[2])
    } else {
        format!(
            "{:x}:{:x}:{:x}::/48",
            (key >> 32) & 0xffff,
            (key >> 16) & 0xffff,
            key & 0xffff
        )
    }
}

/// A network's text back to its number.
pub(super) fn parse_network(text: &str) -> Option<u64> {
    let addr = text.split('/').next()?;
    let addr = if addr.ends_with("::") || !addr.contains(':') {
        addr.to_owned()
    } else {
        format!("{addr}::")
    };
    addr.parse::<IpAddr>().ok().map(network_key)
}

/// What changed since the last batch, for the state database.
#[derive(Debug, Default)]
pub(super) struct Changes {
    /// Window events: kind, key, other side, time (as the database writes them).
    pub(super) events: Vec<(Kind, String, String, i64)>,
    /// Networks seen: account, network, last seen.
    pub(super) networks: Vec<(String, u64, i64)>,
    /// Alerts raised, with their subject and time.
    pub(super) alerts: Vec<(Alert, String, i64)>,
    /// Mail-rule checks due: account, address, when.
    pub(super) mail_rule_checks: Vec<(String, String, i64)>,
}

/// The rules' state in memory.
#[derive(Debug)]
pub(super) struct Memory {
    pub(super) names: Names,
    /// The key of the account names' hashes (random per process: a name cannot be chosen to
    /// collide).
    hasher: std::collections::hash_map::RandomState,
    windows: [NumberMap<u128, Window>; 3],
    /// By account number: its networks and when each was last seen.
    networks: Vec<Vec<(u64, i64)>>,
    last_alert: HashMap<(AlertRule, Box<str>), i64>,
    alert_times: VecDeque<i64>,
    /// Whether changes are kept for a database (not in a replay).
    keep_changes: bool,
    changes: Changes,
    /// Networks changed since the last batch (account number, network).
    dirty_networks: HashSet<(u32, u64), BuildHasherDefault<NumberHasher>>,
    judged: u32,
}

impl Memory {
    /// An empty state; `keep_changes` for a watcher writing them to its database.
    pub(super) fn new(keep_changes: bool) -> Self {
        Self {
            names: Names::default(),
            hasher: std::collections::hash_map::RandomState::new(),
            windows: Default::default(),
            networks: Vec::new(),
            last_alert: HashMap::new(),
            alert_times: VecDeque::new(),
            keep_changes,
            changes: Changes::default(),
            dirty_networks: HashSet::default(),
            judged: 0,
        }
    }

    /// An account name as a window's side.
    pub(super) fn account<'a>(&self, name: &'a str) -> Side<'a> {
        use std::hash::BuildHasher;
        Side {
            n: u128::from(self.hasher.hash_one(name)),
            text: name,
        }
    }

    /// Loads an event read from the database (not a change).
    pub(super) fn load_event(&mut self, kind: Kind, key: &str, other: &str, at: i64) {
        let side = |m: &Self, account: bool, text: &str| {
            if account {
                Some(m.account(text).n)
            } else {
                text.parse::<IpAddr>().ok().map(address_number)
            }
        };
        let by_account = kind.keyed_by_account();
        if let (Some(k), Some(o)) = (side(self, by_account, key), side(self, !by_account, other)) {
            self.windows[kind as usize].entry(k).or_default().push(at, o);
        }
    }

    /// Loads a network read from the database (not a change).
    pub(super) fn load_network(&mut self, account: &str, network: u64, last_seen: i64) {
        let id = self.names.id(account) as usize;
        if self.networks.len() <= id {
            self.networks.resize_with(id + 1, Vec::new);
        }
        let nets = &mut self.networks[id];
        match nets.iter_mut().find(|(n, _)| *n == network) {
            Some((_, t)) => *t = (*t).max(last_seen),
            None => nets.push((network, last_seen)),
        }
    }

    /// Loads an alert read from the database (not a change).
    pub(super) fn load_alert(&mut self, rule: AlertRule, subject: &str, at: i64) {
        let last = self.last_alert.entry((rule, subject.into())).or_insert(at);
        *last = (*last).max(at);
        self.alert_times.push_back(at);
    }

    /// Records an event of `kind` for `key` at `at` with the other side `other`, forgets
    /// those before `since`, and returns how many the window holds and how many distinct
    /// other sides.
    pub(super) fn event(
        &mut self,
        kind: Kind,
        key: Side<'_>,
        other: Side<'_>,
        at: i64,
        since: i64,
    ) -> (u64, u64) {
        let w = self.windows[kind as usize].entry(key.n).or_default();
        w.prune(since);
        w.push(at, other.n);
        let counts = (w.events.len() as u64, w.distinct() as u64);
        if self.keep_changes {
            self.changes
                .events
                .push((kind, key.text.to_owned(), other.text.to_owned(), at));
        }
        counts
    }

    /// Whether account `id` has networks seen since `since`, and whether `network` is one.
    pub(super) fn knows(&self, id: u32, network: u64, since: i64) -> (bool, bool) {
        let Some(nets) = self.networks.get(id as usize) else {
            return (false, false);
        };
        let mut any = false;
        for (n, t) in nets {
            if *t >= since {
                any = true;
                if *n == network {
                    return (true, true);
                }
            }
        }
        (any, false)
    }

    /// Account `id` logged in from `network` at `at`.
    pub(super) fn saw_network(&mut self, id: u32, network: u64, at: i64) {
        let i = id as usize;
        if self.networks.len() <= i {
            self.networks.resize_with(i + 1, Vec::new);
        }
        let nets = &mut self.networks[i];
        match nets.iter_mut().find(|(n, _)| *n == network) {
            Some((_, t)) if *t >= at => return,
            Some((_, t)) => *t = at,
            None => nets.push((network, at)),
        }
        if self.keep_changes {
            self.dirty_networks.insert((id, network));
        }
    }

    /// A ManageSieve login of `account` from `ip` at `at`: its Sieve scripts are to be read
    /// `after` seconds later, each (by the service; a replay reads nothing).
    pub(super) fn mail_rule_checks(&mut self, account: &str, ip: &str, at: i64, after: &[i64]) {
        if self.keep_changes {
            for secs in after {
                self.changes
                    .mail_rule_checks
                    .push((account.to_owned(), ip.to_owned(), at + secs));
            }
        }
    }

    /// Whether an alert of `rule` about `subject` was raised since `since`.
    pub(super) fn alerted(&self, rule: AlertRule, subject: &str, since: i64) -> bool {
        // a candidate alert is rare: building the key is cheap enough
        self.last_alert
            .get(&(rule, Box::from(subject)))
            .is_some_and(|at| *at >= since)
    }

    /// Alerts raised since `since`.
    pub(super) fn alerts_since(&mut self, since: i64) -> u64 {
        while self.alert_times.front().is_some_and(|t| *t < since) {
            self.alert_times.pop_front();
        }
        self.alert_times.len() as u64
    }

    /// Raises `alert` about `subject` at `at`.
    pub(super) fn raise(&mut self, alert: &Alert, subject: String, at: i64) {
        self.last_alert.insert((alert.rule, subject.as_str().into()), at);
        self.alert_times.push_back(at);
        if self.keep_changes {
            self.changes.alerts.push((alert.clone(), subject, at));
        }
    }

    /// Every 10 000 lines judged: forgets the windows' old events and empty windows, the
    /// networks older than the baseline, the alerts older than `alerts_since`.
    pub(super) fn sweep_now_and_then(&mut self, windows_since: i64, networks_since: i64, alerts_since: i64) {
        self.judged += 1;
        if self.judged < 10_000 {
            return;
        }
        self.judged = 0;
        for kind in Kind::ALL {
            self.windows[kind as usize].retain(|_, w| {
                w.prune(windows_since);
                !w.events.is_empty()
            });
        }
        for nets in &mut self.networks {
            nets.retain(|(_, t)| *t >= networks_since);
        }
        self.last_alert.retain(|_, at| *at >= alerts_since);
    }

    /// Takes the changes kept since the last batch.
    pub(super) fn take_changes(&mut self) -> Changes {
        let mut c = std::mem::take(&mut self.changes);
        for (id, net) in self.dirty_networks.drain() {
            let at = self
                .networks
                .get(id as usize)
                .and_then(|nets| nets.iter().find(|(n, _)| *n == net))
                .map_or(0, |(_, t)| *t);
            c.networks.push((self.names.name(id).to_owned(), net, at));
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_round_trip_through_their_text() {
        for ip in ["192.0.2.77", "10.1.2.3", "2001:db8:1:2::5", "::1"] {
            let key = network_key(ip.parse().expect("ip"));
            assert_eq!(parse_network(&network_text(key)), Some(key), "{ip}");
        }
        assert_eq!(
            network_text(network_key("192.0.2.77".parse().expect("ip"))),
            "192.0.2.0/24"
        );
        assert_eq!(
            network_text(network_key("2001:db8:1:2::5".parse().expect("ip"))),
            "2001:db8:1::/48"
        );
    }

    #[test]
    fn a_window_counts_events_and_distinct_sides_and_forgets_the_old() {
        let mut m = Memory::new(true);
        let ip = Side {
            n: address_number("192.0.2.1".parse().expect("ip")),
            text: "192.0.2.1",
        };
        let (a, b, c) = (m.account("a"), m.account("b"), m.account("c"));
        assert_eq!(m.event(Kind::From, ip, a, 100, 0), (1, 1));
        assert_eq!(m.event(Kind::From, ip, a, 101, 0), (2, 1));
        assert_eq!(m.event(Kind::From, ip, b, 102, 0), (3, 2));
        // the first two fall out of the window
        assert_eq!(m.event(Kind::From, ip, c, 200, 102), (2, 2));
        // failed names are never numbered: only accounts that logged in are kept
        assert!(m.names.names.is_empty());
        let changes = m.take_changes();
        assert_eq!(changes.events.len(), 4);
        assert_eq!(
            changes.events[3],
            (Kind::From, "192.0.2.1".to_owned(), "c".to_owned(), 200)
        );
        assert!(m.take_changes().events.is_empty());
    }
}
