//! The watcher's unit tests: the rules over replayed lines, restarts, a locked or unreachable
//! state, the thresholds.

use super::*;
use crate::notify::Language;

fn login(t: &str, user: &str, ip: &str) -> String {
    format!("2026-12-07 {t} imap-login: Info: Login: user=<{user}>, method=PLAIN, rip={ip}, lip=127.0.0.1, mpid=1\n")
}

fn failed(t: &str, user: &str, ip: &str) -> String {
    format!(
        "2026-12-07 {t} imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 2 secs): \
         user=<{user}>, method=PLAIN, rip={ip}, lip=127.0.0.1\n"
    )
}

fn replay(tag: &str, lines: &str, cfg: impl FnOnce(&mut WatchConfig)) -> Vec<Alert> {
    let dir = std::env::temp_dir().join(format!("cadenas-rules-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("dovecot.log");
    std::fs::write(&log, lines).expect("log");
    let mut c = WatchConfig::new(vec![log.clone()], dir.join("state.db"));
    cfg(&mut c);
    let out = Watcher::replay(&c, &[log], None).expect("replay");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[test]
fn a_new_network_after_a_baseline_once_and_never_for_an_own_network() {
    let lines = [
        login("08:00:00", "alice", "192.0.2.10"),
        login("08:05:00", "alice", "192.0.2.11"),  // same /24: known
        login("09:00:00", "alice", "203.0.113.7"), // new
        login("09:01:00", "alice", "203.0.113.7"), // deduplicated
        login("09:02:00", "alice", "10.1.2.3"),    // the organisation's own
        login("09:03:00", "bob", "203.0.113.7"),   // bob's first login: learned
    ]
    .concat();
    let alerts = replay("net", &lines, |c| {
        c.own_networks = vec![AddressRange::parse("10.0.0.0/8").expect("range")]
    });
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(
        (a.rule, a.account.as_deref(), a.ip.as_str()),
        (AlertRule::NewNetwork, Some("alice"), "203.0.113.7")
    );
    assert_eq!(a.at, "2026-12-07T09:00:00Z");
    assert_eq!(a.command, "cadenas contain --from-ip 203.0.113.7/32");
    assert_eq!(
        a.sms_text(Language::En),
        "Cadenas: alice from 203.0.113.7 (new network) - cadenas contain --from-ip 203.0.113.7/32"
    );
}

#[test]
fn spraying_and_failure_bursts_each_alert_once_within_their_windows() {
    let mut lines = String::new();
    for i in 0..5 {
        lines += &failed(&format!("10:00:0{i}"), &format!("user{i}"), "198.51.100.9");
    }
    for i in 0..10 {
        lines += &failed(
            &format!("10:01:{i:02}"),
            "carol",
            &format!("198.51.100.{}", 20 + i),
        );
    }
    // outside the window: counted apart
    for i in 0..4 {
        lines += &failed(&format!("11:00:0{i}"), &format!("late{i}"), "198.51.100.200");
    }
    let alerts = replay("spray", &lines, |_| {});
    let rules: Vec<(AlertRule, String)> = alerts
        .iter()
        .map(|a| (a.rule, a.account.clone().unwrap_or(a.ip.clone())))
        .collect();
    assert_eq!(
        rules,
        [
            (AlertRule::ManyAccounts, "198.51.100.9".to_owned()),
            (AlertRule::FailuresOnAccount, "carol".to_owned())
        ],
        "{alerts:?}"
    );
    assert_eq!(alerts[1].command, "cadenas plan carol");
}

#[test]
fn postfix_lines_feed_the_same_rules_and_a_nameless_failure_counts_for_its_address() {
    let mut lines = String::new();
    let smtp = |t: &str, user: &str, ip: &str| {
        format!(
            "2026-12-07 {t} mail postfix/submission/smtpd[1]: ABCDEF{}: client=unknown[{ip}], \
             sasl_method=PLAIN, sasl_username={user}\n",
            &t[6..]
        )
    };
    lines += &smtp("08:00:00", "alice", "192.0.2.10");
    lines += &smtp("09:00:00", "alice", "203.0.113.7");
    for i in 0..20 {
        lines += &format!(
            "2026-12-07 10:00:{i:02} mail postfix/smtpd[2]: warning: unknown[198.51.100.77]: SASL LOGIN \
             authentication failed: UGFzc3dvcmQ6\n"
        );
    }
    let alerts = replay("postfix", &lines, |_| {});
    let rules: Vec<(AlertRule, &str)> = alerts.iter().map(|a| (a.rule, a.ip.as_str())).collect();
    assert_eq!(
        rules,
        [
            (AlertRule::NewNetwork, "203.0.113.7"),
            (AlertRule::FailuresFromAddress, "198.51.100.77")
        ],
        "{alerts:?}"
    );
    assert!(
        alerts[0].detail.starts_with("smtp login from 203.0.113.0/24"),
        "{}",
        alerts[0].detail
    );
}

#[test]
fn the_overall_rate_limit_holds_and_a_long_name_keeps_the_sms_short() {
    let long = "x".repeat(300);
    let mut lines = login("07:00:00", &long, "192.0.2.1");
    for i in 0..30 {
        lines += &login("08:00:00", &long, &format!("203.0.{i}.1"));
    }
    let alerts = replay("limit", &lines, |c| {
        c.dedupe_mins = 0;
        c.max_alerts_per_hour = 3;
    });
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    assert!(alerts
        .iter()
        .all(|a| a.sms_text(Language::Fr).chars().count() <= 160));
}

#[test]
fn what_the_rules_learned_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("cadenas-watch-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("dovecot.log");
    std::fs::write(&log, "").expect("log");
    let cfg = WatchConfig::new(vec![log.clone()], dir.join("state.db"));
    let t = Instant::now().rfc3339().replace('T', " ");
    let (day, clock) = t.trim_end_matches('Z').split_once(' ').expect("time");
    let clock = &clock[..8];
    let append = |text: String| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).expect("open");
        f.write_all(text.replace("2026-12-07", day).as_bytes())
            .expect("append");
    };
    let mut w = Watcher::open(&cfg).expect("open");
    append(login(clock, "alice", "192.0.2.10"));
    let mut lines = String::new();
    for i in 0..4 {
        lines += &failed(clock, &format!("user{i}"), "198.51.100.9");
    }
    append(lines);
    assert!(w.poll().expect("poll").is_empty());
    drop(w);
    // restarted: alice's network and the address's four accounts were kept
    let mut w = Watcher::open(&cfg).expect("reopen");
    append(login(clock, "alice", "203.0.113.7") + &failed(clock, "user4", "198.51.100.9"));
    let rules: Vec<AlertRule> = w.poll().expect("poll").iter().map(|a| a.rule).collect();
    assert_eq!(rules, [AlertRule::NewNetwork, AlertRule::ManyAccounts]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_locked_state_database_is_a_clear_error_then_nothing_is_missed_or_alerted_twice() {
    let dir = std::env::temp_dir().join(format!("cadenas-watch-locked-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("dovecot.log");
    std::fs::write(&log, "").expect("log");
    let cfg = WatchConfig::new(vec![log.clone()], dir.join("state.db"));
    let mut w = Watcher::open(&cfg).expect("open");
    let t = Instant::now().rfc3339();
    let (day, clock) = t.trim_end_matches('Z').split_once('T').expect("time");
    let mut lines = String::new();
    for i in 0..5 {
        lines += &failed(&clock[..8], &format!("user{i}"), "198.51.100.9");
    }
    std::fs::write(&log, lines.replace("2026-12-07", day)).expect("append");
    // another process holds the database
    let other = rusqlite::Connection::open(&cfg.state).expect("other");
    other.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let e = w.poll().expect_err("locked");
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.message().contains("watch state"), "{e}");
    other.execute_batch("COMMIT").expect("unlock");
    let alerts = w.poll().expect("poll");
    assert_eq!(alerts.len(), 1, "the lines read again: {alerts:?}");
    assert!(w.poll().expect("poll").is_empty());
    assert_eq!(w.unsent().expect("unsent").len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreachable_state_database_is_a_clear_error() {
    let cfg = WatchConfig::new(
        vec!["/var/log/dovecot.log".into()],
        "/nonexistent-cadenas-dir/state.db".into(),
    );
    let e = Watcher::open(&cfg).expect_err("no such directory");
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(
        e.message()
            .contains("watch state /nonexistent-cadenas-dir/state.db"),
        "{e}"
    );
}

#[test]
fn thresholds_that_make_no_sense_are_config_errors() {
    let mut c = WatchConfig::new(vec!["/var/log/dovecot.log".into()], "/tmp/w.db".into());
    c.many_accounts = 1;
    assert_eq!(c.check().expect_err("1 account").kind(), ErrorKind::Config);
    let c = WatchConfig::new(Vec::new(), "/tmp/w.db".into());
    assert_eq!(c.check().expect_err("no log").kind(), ErrorKind::Config);
}
