//! The directory: the service account binds over a verified TLS; the MFA group, the protected
//! groups and the password policy are there; on the canary, the service account really may
//! lock, reset and add to the MFA group; the directory's clock agrees with the host's.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Check, PreflightOptions};
use crate::config::Config;
use crate::directory::{ChangeOutcome, Directory, Flavour, Transport, UserRef};
use crate::error::{Error, ErrorKind};

/// What to do about a failed connection or bind, by kind.
fn connect_fix(e: &Error) -> &'static str {
    match e.kind() {
        ErrorKind::Tls => {
            "the CA file (directory.ca_file) must sign the server's certificate, the URL's host must \
             be one of its names, and the certificate must not have expired"
        }
        ErrorKind::Connect | ErrorKind::Timeout => {
            "check directory.url (host, port, ldaps:// or StartTLS) and that the server is up and \
             reachable from this host"
        }
        ErrorKind::ServiceBind => "check directory.bind_dn and its password (file or environment variable)",
        ErrorKind::InsecureTransport => "use ldaps:// or StartTLS",
        _ => "see the detail",
    }
}

/// A generalized time (`20261207183000Z`, `20261207183000.0Z`) as Unix seconds.
fn generalized_time(s: &str) -> Option<i64> {
    let rfc3339 = crate::directory::from_generalized(s)?;
    crate::time::unix_millis(&rfc3339).and_then(|ms| i64::try_from(ms / 1000).ok())
}

/// The canary's checks: lock (and the flags put back), reset, MFA group (put back), and the
/// directory's clock read from the entry's own modification time.
async fn canary(dir: &Directory, name: &str, cfg: &Config, opts: &PreflightOptions) -> Vec<Check> {
    let who = format!("canary {name}");
    let user = match UserRef::parse(name) {
        Ok(r) => match dir.find_user(&r).await {
            Ok(u) => u,
            Err(e) => {
                return vec![Check::fail(
                    format!("{who}: found"),
                    e.to_string(),
                    "create the canary account under a configured base DN, or fix [canary] accounts",
                )]
            }
        },
        Err(e) => {
            return vec![Check::fail(
                format!("{who}: found"),
                e.to_string(),
                "fix [canary] accounts",
            )]
        }
    };
    let mut out = Vec::new();
    let denied = "give the service account write access to the lock attributes (OpenLDAP: \
                  pwdAccountLockedTime; AD: userAccountControl) on the base DNs";
    let lock = match dir.lock(&user).await {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::fail(format!("{who}: lock"), e.to_string(), denied));
            return out;
        }
    };
    let restored = dir.restore_flags(&user, &lock.before).await;
    out.push(match restored {
        Ok(_) => Check::ok(
            format!("{who}: lock, and the flags put back"),
            user.dn.to_string(),
        ),
        Err(e) => Check::fail(
            format!("{who}: lock, and the flags put back"),
            format!("locked, but the flags could not be put back: {e}"),
            denied,
        ),
    });
    // the directory's clock: the entry's modification time, written by the lock just now
    let host = opts.now.unwrap_or_else(SystemTime::now);
    let host = host.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let attrs = dir
        .read_entry(&user.dn, &["modifyTimestamp", "whenChanged"])
        .await
        .ok();
    let stamp = attrs.as_ref().and_then(|a| {
        a.get("modifyTimestamp")
            .or_else(|| a.get("whenChanged"))
            .and_then(|v| v.first())
            .and_then(|t| generalized_time(t))
    });
    out.push(match stamp {
        Some(t) if (t - host).unsigned_abs() > opts.max_clock_skew_secs => Check::warn(
            "clock: this host and the directory agree",
            format!("they differ by {} s", t - host),
            "synchronise both with NTP: TOTP codes are judged against this host's clock",
        ),
        Some(t) => Check::ok(
            "clock: this host and the directory agree",
            format!("{} s apart", t - host),
        ),
        None => Check::warn(
            "clock: this host and the directory agree",
            "the entry's modification time could not be read",
            "check the clocks by hand (NTP)",
        ),
    });
    let password = cfg.password.generate();
    out.push(match password {
        Ok(p) => match dir.reset_password(&user, &p, true).await {
            Ok(_) => Check::ok(
                format!("{who}: reset the password (forced change)"),
                "a random password, never shown",
            ),
            Err(e) => Check::fail(
                format!("{who}: reset the password (forced change)"),
                e.to_string(),
                "give the service account the right to set passwords (OpenLDAP: userPassword; AD: \
                 Reset Password) on the base DNs",
            ),
        },
        Err(e) => Check::fail(
            format!("{who}: reset the password (forced change)"),
            e.to_string(),
            "see the detail",
        ),
    });
    if dir.config().mfa_group_dn.is_some() {
        let name = format!("{who}: add to the MFA group, and take out again");
        out.push(match dir.add_to_mfa_group(&user).await {
            Ok(c) => {
                let back = if c.outcome == ChangeOutcome::Applied {
                    dir.remove_from_mfa_group(&user).await.err()
                } else {
                    None
                };
                match back {
                    None => Check::ok(name, "added and taken out (or a member already)"),
                    Some(e) => Check::warn(name, format!("added, not taken out: {e}"), "remove it by hand"),
                }
            }
            Err(e) => Check::fail(
                name,
                e.to_string(),
                "give the service account write access to the MFA group's member attribute",
            ),
        });
    }
    out
}

/// AD's own answer to "what may the service account write here": `allowedAttributesEffective`
/// on one user entry under each base DN (the lock and forced-change attributes) and on the MFA
/// group (`member`). The Reset Password right is a control access right this query does not
/// show: the canary tries it.
async fn ad_rights(dir: &Directory) -> Vec<Check> {
    use ldap3::{Scope, SearchEntry, SearchOptions};
    let mut out = Vec::new();
    for base in &dir.config().base_dns {
        let name = format!("directory: rights on users under {base} (AD's allowedAttributesEffective)");
        let mut l = dir.handle();
        l.with_search_options(SearchOptions::new().sizelimit(1));
        let found = l
            .search(
                base.as_str(),
                Scope::Subtree,
                "(&(objectCategory=person)(objectClass=user))",
                vec!["allowedAttributesEffective"],
            )
            .await;
        let entry = match found {
            Ok(ldap3::SearchResult(entries, _)) => entries
                .into_iter()
                .find(|e| !e.is_ref() && !e.is_intermediate())
                .and_then(|e| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(e))).ok()
                }),
            Err(e) => {
                out.push(Check::warn(
                    name,
                    e.to_string(),
                    "try the rights on a [canary] account",
                ));
                continue;
            }
        };
        let Some(entry) = entry else {
            out.push(Check::warn(
                name,
                "no user entry to ask about",
                "try the rights on a [canary] account",
            ));
            continue;
        };
        let allowed = entry
            .attrs
            .get("allowedAttributesEffective")
            .cloned()
            .unwrap_or_default();
        let missing: Vec<&str> = ["userAccountControl", "pwdLastSet"]
            .into_iter()
            .filter(|a| !allowed.iter().any(|x| x.eq_ignore_ascii_case(a)))
            .collect();
        out.push(if missing.is_empty() {
            Check::ok(
                name,
                format!("{} may write userAccountControl and pwdLastSet", entry.dn),
            )
        } else {
            Check::fail(
                name,
                format!("may not write {} on {}", missing.join(", "), entry.dn),
                "delegate to the service account on the base DN: write userAccountControl and \
                 pwdLastSet, and the Reset Password right, on user objects",
            )
        });
    }
    if let Some(group) = &dir.config().mfa_group_dn {
        let name = "directory: rights on the MFA group (AD's allowedAttributesEffective)";
        out.push(
            match dir.read_entry(group, &["allowedAttributesEffective"]).await {
                Ok(a)
                    if a.get("allowedAttributesEffective")
                        .is_some_and(|v| v.iter().any(|x| x.eq_ignore_ascii_case("member"))) =>
                {
                    Check::ok(name, format!("may write member of {group}"))
                }
                Ok(_) => Check::fail(
                    name,
                    format!("may not write member of {group}"),
                    "delegate write member on the MFA group to the service account",
                ),
                Err(e) => Check::warn(name, e.to_string(), "try it on a [canary] account"),
            },
        );
    }
    out
}

/// The directory's checks.
pub(super) async fn checks(cfg: &Config, opts: &PreflightOptions) -> Vec<Check> {
    let d = &cfg.directory;
    let mut out = Vec::new();
    let bind = "directory: connect over TLS and bind as the service account";
    let cert = "directory: the server's TLS certificate";
    match Directory::show_certificate(d).await {
        Ok(Some((shown, failed))) => {
            let (host, _) = d.url.host_port();
            out.push(super::certs::judge(
                cert.to_owned(),
                &host,
                shown.as_ref(),
                failed.map(|e| e.to_string()),
                opts.now.unwrap_or_else(SystemTime::now),
            ));
        }
        Ok(None) => {}
        Err(e) => out.push(Check::fail(cert, e.to_string(), "fix directory.ca_file")),
    }
    let dir = match Directory::connect(d).await {
        Ok(dir) => dir,
        Err(e) => {
            out.push(Check::fail(bind, e.to_string(), connect_fix(&e)));
            return out;
        }
    };
    out.push(match dir.transport() {
        Transport::Plain => Check::warn(
            bind,
            format!("{} bound, WITHOUT TLS (allow_plaintext_passwords)", d.url),
            "use ldaps:// or StartTLS: passwords cross this network in clear",
        ),
        t => Check::ok(
            bind,
            format!("{} ({t:?}, {:?}) as {}", d.url, dir.flavour(), d.bind_dn),
        ),
    });
    if let Some(group) = &d.mfa_group_dn {
        let name = "directory: the MFA group exists";
        out.push(match dir.read_entry(group, &["member"]).await {
            Ok(_) => Check::ok(name, group.to_string()),
            Err(e) => Check::fail(name, e.to_string(), "create it, or fix directory.mfa_group_dn"),
        });
    }
    if !d.protected_group_dns.is_empty() {
        let name = "directory: the protected groups resolve";
        out.push(match dir.protected_members().await {
            Ok(_) => Check::ok(name, format!("{} group(s)", d.protected_group_dns.len())),
            Err(e) => Check::fail(
                name,
                e.to_string(),
                "fix directory.protected_group_dns, and let the service account read them",
            ),
        });
    }
    if dir.flavour() == Flavour::OpenLdap {
        let name = "directory: the password policy locks (pwdLockout)";
        out.push(match &d.password_policy_dn {
            Some(p) => match dir.read_entry(p, &["pwdLockout"]).await {
                Ok(a) if a.get("pwdLockout").is_some_and(|v| v.iter().any(|x| x == "TRUE")) => {
                    Check::ok(name, p.to_string())
                }
                Ok(_) => Check::fail(
                    name,
                    format!("{p} has no pwdLockout: TRUE: a lock would be ignored"),
                    "set pwdLockout: TRUE on the policy (slapo-ppolicy)",
                ),
                Err(e) => Check::fail(
                    name,
                    e.to_string(),
                    "load the ppolicy overlay, or fix directory.password_policy_dn",
                ),
            },
            None => Check::warn(
                name,
                "no directory.password_policy_dn: checked on each account's pwdPolicySubentry",
                "name the default policy in directory.password_policy_dn",
            ),
        });
    }
    if dir.flavour() == Flavour::ActiveDirectory {
        out.extend(ad_rights(&dir).await);
    }
    match cfg.canary.as_ref().and_then(|c| c.accounts.first()) {
        Some(name) => out.extend(canary(&dir, name, cfg, opts).await),
        None => out.push(Check::warn(
            "directory: rights to lock, reset and require MFA",
            "no [canary] account: the service account's rights were not tried",
            "create a test account and name it in [canary] accounts = [\"...\"]",
        )),
    }
    dir.close().await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_times_read_as_unix_seconds() {
        assert_eq!(generalized_time("19700101000000Z"), Some(0));
        assert_eq!(generalized_time("20261207183000Z"), Some(1_796_668_200));
        assert_eq!(generalized_time("20261207183000.0Z"), Some(1_796_668_200));
        assert_eq!(generalized_time("2026"), None);
    }
}
