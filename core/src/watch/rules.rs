//! The rules over Dovecot's login lines: a new network for an account, one address logging
//! into (or failing on) many accounts, bursts of failures per account and per address. They
//! read and change the state in memory ([`Memory`]); times are the lines' own (a replay of old
//! logs judges them as they happened).

use std::net::IpAddr;

use super::memory::{address_number, network_key, network_text, Kind, Memory, Side};
use super::{Alert, AlertRule, WatchConfig};
use crate::investigate::{Instant, LoginLine};

/// Runs every rule on one login line; the alerts it raises (already deduplicated and within
/// the overall rate limit) are recorded in `m` and returned.
pub(super) fn judge(m: &mut Memory, cfg: &WatchConfig, login: &LoginLine<'_>, now: Instant) -> Vec<Alert> {
    let Ok(ip) = login.ip.parse::<IpAddr>() else {
        return Vec::new();
    };
    let at = login.time.unwrap_or(now).unix();
    let lowered;
    let account = if login.user.bytes().any(|b| b.is_ascii_uppercase()) || !login.user.is_ascii() {
        lowered = login.user.to_lowercase();
        lowered.as_str()
    } else {
        login.user
    };
    let who = m.account(account);
    let address = Side {
        n: address_number(ip),
        text: login.ip,
    };
    // a failed SMTP login Postfix logged without a name: the address's failures only
    let named = !account.is_empty();
    let own = cfg.own_networks.iter().any(|r| r.contains(ip));
    let mut out = Vec::new();
    // one address, many accounts: logins and failures alike
    let since = at - cfg.many_accounts_window_mins * 60;
    let accounts = if named {
        m.event(Kind::From, address, who, at, since).1
    } else {
        0
    };
    if !own && accounts >= cfg.many_accounts {
        out.push(Alert::new(
            AlertRule::ManyAccounts,
            None,
            login.ip,
            at,
            format!(
                "{accounts} accounts from {} in {} min",
                login.ip, cfg.many_accounts_window_mins
            ),
        ));
    }
    if login.failed {
        let since = at - cfg.failures_window_mins * 60;
        let n = if named {
            m.event(Kind::FailAccount, who, address, at, since).0
        } else {
            0
        };
        if named && n >= cfg.failures_per_account {
            out.push(Alert::new(
                AlertRule::FailuresOnAccount,
                Some(account),
                login.ip,
                at,
                format!("{n} failed logins in {} min", cfg.failures_window_mins),
            ));
        }
        if !own {
            let (n, _) = m.event(Kind::FailAddress, address, who, at, since);
            if n >= cfg.failures_per_address {
                out.push(Alert::new(
                    AlertRule::FailuresFromAddress,
                    None,
                    login.ip,
                    at,
                    format!(
                        "{n} failed logins from {} in {} min",
                        login.ip, cfg.failures_window_mins
                    ),
                ));
            }
        }
    } else if named {
        // an account that logged in: numbered, its networks kept
        let id = m.names.id(account);
        let net = network_key(ip);
        if !own {
            // a new network for an account with a baseline (an account seen for the first
            // time is learned, not alerted on)
            let (any, known) = m.knows(id, net, at - cfg.baseline_days * 86_400);
            if any && !known {
                out.push(Alert::new(
                    AlertRule::NewNetwork,
                    Some(account),
                    login.ip,
                    at,
                    format!(
                        "{} login from {}, not seen in {} days",
                        login.service,
                        network_text(net),
                        cfg.baseline_days
                    ),
                ));
            }
        }
        m.saw_network(id, net, at);
        if login.service == "managesieve" {
            m.mail_rule_checks(account, login.ip, at, &cfg.mail_rule_checks_secs);
        }
    }
    m.sweep_now_and_then(
        at - cfg.window_secs(),
        at - cfg.baseline_days * 86_400,
        at - cfg.alerts_secs(),
    );
    admit(m, cfg, out, at)
}

/// The alerts of `out` not deduplicated away and within the hourly cap, recorded in `m`.
pub(super) fn admit(m: &mut Memory, cfg: &WatchConfig, out: Vec<Alert>, at: i64) -> Vec<Alert> {
    let mut raised = Vec::new();
    for a in out {
        let subject = a.subject();
        if cfg.dedupe_mins > 0 && m.alerted(a.rule, &subject, at - cfg.dedupe_mins * 60) {
            continue;
        }
        if m.alerts_since(at - 3600) >= cfg.max_alerts_per_hour {
            break;
        }
        m.raise(&a, subject, at);
        raised.push(a);
    }
    raised
}
