//! The rules over Dovecot's login lines: a new network for an account, one address logging
//! into (or failing on) many accounts, bursts of failures per account and per address. Each
//! reads and writes the state of the batch it runs in; times are the lines' own (a replay of
//! old logs judges them as they happened).

use std::net::IpAddr;

use super::state::Batch;
use super::{Alert, AlertRule, WatchConfig};
use crate::error::Error;
use crate::investigate::{Instant, LogLogin};

/// The network an address belongs to for the baseline: its /24 (IPv4) or /48 (IPv6).
pub(super) fn network_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// Runs every rule on one login line; the alerts it raises (already deduplicated and within
/// the overall rate limit) are written in the batch and returned.
pub(super) fn judge(
    b: &Batch<'_>,
    cfg: &WatchConfig,
    login: &LogLogin,
    now: Instant,
) -> Result<Vec<Alert>, Error> {
    let Ok(ip) = login.ip.parse::<IpAddr>() else {
        return Ok(Vec::new());
    };
    let at = login.time.unwrap_or(now).unix();
    let account = login.user.to_lowercase();
    let own = cfg.own_networks.iter().any(|r| r.contains(ip));
    let mut out = Vec::new();
    // one address, many accounts: logins and failures alike
    b.event("from", &login.ip, &account, at)?;
    let window = at - cfg.many_accounts_window_mins * 60;
    let (_, accounts) = b.count("from", &login.ip, window)?;
    if !own && accounts >= cfg.many_accounts {
        out.push(Alert::new(
            AlertRule::ManyAccounts,
            None,
            &login.ip,
            at,
            format!(
                "{accounts} accounts from {} in {} min",
                login.ip, cfg.many_accounts_window_mins
            ),
        ));
    }
    if login.failed {
        let window = at - cfg.failures_window_mins * 60;
        b.event("fail_account", &account, &login.ip, at)?;
        let (n, _) = b.count("fail_account", &account, window)?;
        if n >= cfg.failures_per_account {
            out.push(Alert::new(
                AlertRule::FailuresOnAccount,
                Some(&account),
                &login.ip,
                at,
                format!("{n} failed logins in {} min", cfg.failures_window_mins),
            ));
        }
        if !own {
            b.event("fail_address", &login.ip, &account, at)?;
            let (n, _) = b.count("fail_address", &login.ip, window)?;
            if n >= cfg.failures_per_address {
                out.push(Alert::new(
                    AlertRule::FailuresFromAddress,
                    None,
                    &login.ip,
                    at,
                    format!(
                        "{n} failed logins from {} in {} min",
                        login.ip, cfg.failures_window_mins
                    ),
                ));
            }
        }
    } else if !own {
        // a new network for an account with a baseline (an account seen for the first time
        // is learned, not alerted on)
        let net = network_of(ip);
        let known = b.networks(&account, at - cfg.baseline_days * 86_400)?;
        if !known.is_empty() && !known.contains(&net) {
            out.push(Alert::new(
                AlertRule::NewNetwork,
                Some(&account),
                &login.ip,
                at,
                format!(
                    "{} login from {net}, not seen in {} days",
                    login.service, cfg.baseline_days
                ),
            ));
        }
        b.saw_network(&account, &net, at)?;
    } else {
        b.saw_network(&account, &network_of(ip), at)?;
    }
    let mut raised = Vec::new();
    for a in out {
        let subject = a.subject();
        if cfg.dedupe_mins > 0 && b.alerted(a.rule.name(), &subject, at - cfg.dedupe_mins * 60)? {
            continue;
        }
        if b.alerts_since(at - 3600)? >= cfg.max_alerts_per_hour {
            break;
        }
        b.raise(&a, &subject, at)?;
        raised.push(a);
    }
    Ok(raised)
}
