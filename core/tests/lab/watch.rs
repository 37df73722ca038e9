//! `cadenas::watch` over the lab Dovecot's real login log: logins and failures made over IMAP
//! from loopback addresses of the test's own, the watcher following the log as Dovecot writes
//! it. Other tests log in at the same time: only alerts about this test's accounts and
//! addresses are looked at.

use std::time::Duration;

use cadenas::watch::{Alert, AlertRule, WatchConfig, Watcher};

use crate::support::{dovecot_env, Imap, OpenLdapLab};

/// Polls until `want` holds for the alerts raised so far (Dovecot writes its log line a moment
/// after the login), at most 10 s.
async fn poll_until(w: &mut Watcher, want: impl FnMut(&[Alert]) -> bool) -> Vec<Alert> {
    poll_for(w, 100, want).await
}

/// What a second of polling raises (when nothing is expected).
async fn poll_a_second(w: &mut Watcher) -> Vec<Alert> {
    poll_for(w, 10, |_| false).await
}

async fn poll_for(w: &mut Watcher, rounds: usize, mut want: impl FnMut(&[Alert]) -> bool) -> Vec<Alert> {
    let mut all = Vec::new();
    for _ in 0..rounds {
        all.extend(w.poll().expect("poll"));
        if want(&all) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    all
}

fn config(tag: &str) -> WatchConfig {
    let log = dovecot_env()["CADENAS_LAB_DOVECOT_LOG"].clone();
    let state = std::env::temp_dir().join(format!("cadenas-watch-{tag}-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", state.display()));
    }
    let mut cfg = WatchConfig::new(vec![log.into()], state);
    // the other tests' logins go through the same log: the hourly cap must not drop this one's
    cfg.max_alerts_per_hour = 1_000_000;
    cfg
}

/// A loopback /24 of this test process's own (the attacker's network).
fn own_net(base: u32) -> String {
    let pid = std::process::id();
    format!("127.{}.{}", base + pid % 50, 1 + (pid / 50) % 250)
}

#[tokio::test]
async fn a_login_from_a_new_network_raises_one_alert_with_the_containment() {
    let lab = OpenLdapLab::load();
    let imap = dovecot_env()["CADENAS_LAB_IMAP"].clone();
    let (user, _) = lab.fresh_user("watch-net").await;
    let user = user.to_string();
    let mut w = Watcher::open(&config("net")).expect("watcher");
    let pw = lab.get("CADENAS_LAB_USER_PW").to_owned();
    // the account's usual network, learned
    let home = format!("{}.10", own_net(100));
    let _usual = Imap::login_from(&imap, &home, &user, &pw).await.expect("login");
    let seen = poll_a_second(&mut w).await;
    assert!(
        !seen
            .iter()
            .any(|a| a.account.as_deref() == Some(&user.to_lowercase())),
        "an account's first network is learned, not alerted: {seen:?}"
    );
    // the attacker's: another /24
    let attacker = format!("{}.66", own_net(150));
    let _attack = Imap::login_from(&imap, &attacker, &user, &pw)
        .await
        .expect("login");
    let alerts = poll_until(&mut w, |a| a.iter().any(|a| a.ip == attacker)).await;
    let mine: Vec<&Alert> = alerts.iter().filter(|a| a.ip == attacker).collect();
    assert_eq!(mine.len(), 1, "{alerts:?}");
    assert_eq!(mine[0].rule, AlertRule::NewNetwork);
    assert_eq!(mine[0].account.as_deref(), Some(user.to_lowercase().as_str()));
    assert_eq!(
        mine[0].command,
        format!("cadenas contain --from-ip {attacker}/32")
    );
    let sms = mine[0].sms_text(cadenas::notify::Language::Fr);
    assert!(
        sms.chars().count() <= 160 && sms.contains("nouveau réseau"),
        "{sms}"
    );
    assert!(!sms.contains(&pw));
    // again from there: deduplicated
    let _again = Imap::login_from(&imap, &attacker, &user, &pw)
        .await
        .expect("login");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let more = poll_a_second(&mut w).await;
    assert!(!more.iter().any(|a| a.ip == attacker), "{more:?}");
}

#[tokio::test]
async fn one_address_failing_on_many_accounts_is_one_alert_and_a_restart_repeats_nothing() {
    let lab = OpenLdapLab::load();
    let imap = dovecot_env()["CADENAS_LAB_IMAP"].clone();
    let cfg = config("many");
    let mut w = Watcher::open(&cfg).expect("watcher");
    let sprayer = format!("{}.77", own_net(200));
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(lab.fresh_user(&format!("watch-spray{i}")).await.0.to_string());
    }
    // password spraying: one wrong password on each account, at once
    let tries = users
        .iter()
        .map(|u| Imap::login_from(&imap, &sprayer, u, "Summer2026!"));
    for r in futures_util::future::join_all(tries).await {
        assert!(Imap::refused(&r), "a wrong password is refused");
    }
    let alerts = poll_until(&mut w, |a| a.iter().any(|a| a.ip == sprayer)).await;
    let mine: Vec<&Alert> = alerts.iter().filter(|a| a.ip == sprayer).collect();
    assert_eq!(mine.len(), 1, "{alerts:?}");
    assert_eq!(mine[0].rule, AlertRule::ManyAccounts);
    assert!(mine[0].detail.starts_with("5 accounts"), "{:?}", mine[0]);
    // a restart (the watcher dropped, as a crash would): nothing read again, nothing alerted
    // again; the alert raised is still waiting to be delivered
    drop(w);
    let mut again = Watcher::open(&cfg).expect("reopen");
    let after = poll_a_second(&mut again).await;
    assert!(!after.iter().any(|a| a.ip == sprayer), "{after:?}");
    let unsent = again.unsent().expect("unsent");
    let (id, waiting) = unsent
        .iter()
        .find(|(_, a)| a.ip == sprayer)
        .expect("still to deliver");
    assert_eq!(waiting, mine[0]);
    again.mark_sent(*id).expect("sent");
    assert!(!again
        .unsent()
        .expect("unsent")
        .iter()
        .any(|(_, a)| a.ip == sprayer));

    // the same logs replayed: the same alert, from a state of its own
    let state = std::env::temp_dir().join(format!("cadenas-watch-replay-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&state);
    let replayed = Watcher::replay(&cfg, &cfg.dovecot_logs, None, &state).expect("replay");
    assert!(
        replayed
            .iter()
            .any(|a| a.ip == sprayer && a.rule == AlertRule::ManyAccounts),
        "{replayed:?}"
    );
    let e = Watcher::replay(&cfg, &cfg.dovecot_logs, None, &state).expect_err("an existing state");
    assert_eq!(e.kind(), cadenas::ErrorKind::InvalidInput);
    for f in [
        state.display().to_string(),
        format!("{}-wal", state.display()),
        format!("{}-shm", state.display()),
    ] {
        let _ = std::fs::remove_file(f);
    }
}
