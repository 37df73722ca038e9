//! The preflight against the lab: every check passes on the lab as it is, and each fault made
//! for real fails (or warns) its own check with a fix — a secret file others can read, a
//! journal on tmpfs, a wrong doveadm key, a mail server that is down, a service account
//! without write rights, a skewed clock (given to the check, the host's is left alone), an
//! expired, a wrong-host and an expiring certificate (three real slapds).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use cadenas::directory::{Directory, LockState, UserRef};
use cadenas::preflight::{preflight, Check, PreflightOptions, PreflightReport, Verdict};
use cadenas::Config;

use crate::support::OpenLdapLab;

/// The whole lab's config (every server), edited by `edit`, from a directory of the test's
/// own (where it may put files).
fn full_config(tag: &str, edit: impl Fn(String, &std::path::Path) -> String) -> Config {
    let lab = std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into());
    let dir = std::env::temp_dir().join(format!("cadenas-preflight-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let text = std::fs::read_to_string(PathBuf::from(lab).join("cadenas.toml")).expect("lab config");
    let text = edit(text, &dir);
    let path = dir.join("cadenas.toml");
    std::fs::write(&path, text).expect("write config");
    Config::from_file(&path).expect("edited config")
}

/// An owner-only file holding `content`.
fn secret_file(dir: &std::path::Path, name: &str, content: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    p
}

/// The one check whose name contains `part`.
fn the_check<'a>(r: &'a PreflightReport, part: &str) -> &'a Check {
    let found: Vec<_> = r.checks.iter().filter(|c| c.name.contains(part)).collect();
    assert_eq!(found.len(), 1, "one check named like {part:?}: {r:#?}");
    found[0]
}

/// The verdict of the one check whose name contains `part`.
fn verdict(r: &PreflightReport, part: &str) -> Verdict {
    the_check(r, part).verdict
}

fn with_canary(text: String, canary: &str) -> String {
    format!("{text}\n[canary]\naccounts = [\"{canary}\"]\n")
}

#[tokio::test]
async fn the_lab_passes_every_check_and_the_canary_is_put_back() {
    let lab = OpenLdapLab::load();
    let (canary, _) = lab.fresh_user("canary").await;
    let cfg = full_config("ok", |t, _| with_canary(t, canary.as_str()));
    let report = preflight(&cfg, &PreflightOptions::default()).await;
    assert_eq!(report.verdict, Verdict::Ok, "{report:#?}");
    for part in [
        "service account",
        ": lock, and the flags put back",
        "reset the password",
        "MFA group, and take out",
        "clock",
        "doveadm answers",
        "mail server reachable",
        "journal: writable",
    ] {
        assert_eq!(verdict(&report, part), Verdict::Ok, "{part}");
    }
    // the canary: unlocked as before, out of the MFA group again, its password a random one
    let dir = Directory::connect(&cfg.directory).await.expect("connect");
    let u = dir
        .find_user(&UserRef::parse(canary.as_str()).expect("name"))
        .await
        .expect("find");
    let st = dir.account_state(&u).await.expect("state");
    assert_eq!(st.lock, LockState::Unlocked);
    assert_eq!(st.mfa_required, Some(false));
    assert!(st.must_change, "reset with a forced change");
}

#[tokio::test]
async fn a_secret_file_others_can_read_and_a_journal_on_tmpfs_fail_their_checks() {
    let lab = OpenLdapLab::load();
    let pw = std::fs::read_to_string(
        lab.get("CADENAS_LAB_CONFIG")
            .replace("cadenas.toml", "responder.pw"),
    )
    .expect("service password");
    let shm = PathBuf::from(format!("/dev/shm/cadenas-preflight-{}.jsonl", std::process::id()));
    let cfg = full_config("files", |t, dir| {
        let open = secret_file(dir, "responder.pw", &pw, 0o644);
        t.replace(
            &format!(
                "bind_password_file = \"{}\"",
                lab.get("CADENAS_LAB_CONFIG")
                    .replace("cadenas.toml", "responder.pw")
            ),
            &format!("bind_password_file = \"{}\"", open.display()),
        )
        .replace(
            "path = \"/tmp/cadenas-lab/openldap/journal.jsonl\"",
            &format!("path = \"{}\"", shm.display()),
        )
    });
    let report = preflight(&cfg, &PreflightOptions::default()).await;
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(
        verdict(&report, "bind_password_file"),
        Verdict::Fail,
        "{report:#?}"
    );
    let c = the_check(&report, "bind_password_file");
    assert!(
        c.fix.as_deref().is_some_and(|f| f.starts_with("chmod 600")),
        "{c:?}"
    );
    assert_eq!(
        verdict(&report, "journal: writable"),
        Verdict::Fail,
        "{report:#?}"
    );
    // the service account still binds: the file is readable, just not private
    assert_eq!(verdict(&report, "service account"), Verdict::Ok);
    let _ = std::fs::remove_file(shm);
}

#[tokio::test]
async fn a_wrong_doveadm_key_and_a_mail_server_that_is_down_fail_their_checks() {
    let cfg = full_config("services", |t, dir| {
        let key = secret_file(dir, "wrong.key", "not-the-doveadm-key", 0o600);
        t.replace(
            "api_key_file = \"/tmp/cadenas-lab/dovecot/api.key\"",
            &format!("api_key_file = \"{}\"", key.display()),
        )
        // a port nothing listens on: the mail server is down
        .replace("url = \"smtp://127.0.0.1:10587\"", "url = \"smtp://127.0.0.1:9\"")
    });
    let report = preflight(&cfg, &PreflightOptions::default()).await;
    assert_eq!(verdict(&report, "doveadm answers"), Verdict::Fail, "{report:#?}");
    let c = the_check(&report, "doveadm");
    assert!(
        c.fix.as_deref().is_some_and(|f| f.contains("api_key_file")),
        "{c:?}"
    );
    assert_eq!(
        verdict(&report, "mail server reachable"),
        Verdict::Fail,
        "{report:#?}"
    );
}

#[tokio::test]
async fn a_service_account_without_write_rights_fails_on_the_canary_and_a_skewed_clock_warns() {
    let lab = OpenLdapLab::load();
    let (canary, _) = lab.fresh_user("canary-ro").await;
    // an ordinary user as the "service account": it binds and reads, but may not lock others
    let (weak, weak_dn) = lab.fresh_user("weak-svc").await;
    let _ = weak;
    let cfg = full_config("rights", |t, dir| {
        let pw = secret_file(dir, "weak.pw", lab.user_password().expose_secret(), 0o600);
        let svc = lab
            .get("CADENAS_LAB_CONFIG")
            .replace("cadenas.toml", "responder.pw");
        let t = t
            .replace(
                "bind_dn = \"cn=responder,ou=services,dc=example,dc=test\"",
                &format!("bind_dn = \"{}\"", weak_dn.as_str()),
            )
            .replace(
                &format!("bind_password_file = \"{svc}\""),
                &format!("bind_password_file = \"{}\"", pw.display()),
            );
        with_canary(t, canary.as_str())
    });
    let report = preflight(&cfg, &PreflightOptions::default()).await;
    assert_eq!(verdict(&report, "service account"), Verdict::Ok, "{report:#?}");
    assert_eq!(verdict(&report, ": lock"), Verdict::Fail, "{report:#?}");
    assert_eq!(report.verdict, Verdict::Fail);

    // the clock, faked 10 minutes ahead (the check is given the time; the host is left alone)
    let cfg = full_config("clock", |t, _| with_canary(t, canary.as_str()));
    let mut opts = PreflightOptions::default();
    opts.now = Some(SystemTime::now() + Duration::from_secs(600));
    let report = preflight(&cfg, &opts).await;
    assert_eq!(verdict(&report, "clock"), Verdict::Warn, "{report:#?}");
    let c = the_check(&report, "clock");
    // the faked time is taken before the other checks run: a second or two may pass before
    // the directory's time is read
    let secs: i64 = c
        .detail
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("a number of seconds");
    assert!((-605..=-595).contains(&secs), "about 600 s apart: {c:?}");
}

#[tokio::test]
async fn a_drill_contains_the_canary_verifies_each_step_and_puts_it_back() {
    let lab = OpenLdapLab::load();
    let (canary, _) = lab.fresh_user("drill").await;
    let (bystander, _) = lab.fresh_user("drill-not").await;
    let cfg = full_config("drill", |t, _| with_canary(t, canary.as_str()));
    let journal = std::env::temp_dir().join(format!("cadenas-drill-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let r = cadenas::incident::Responder::new(&cfg, &journal)
        .await
        .expect("responder");

    // not a canary: refused, nothing changed
    let e = r
        .drill(&UserRef::parse(bystander.as_str()).expect("name"))
        .await
        .expect_err("not a canary");
    assert_eq!(e.kind(), cadenas::ErrorKind::InvalidInput);
    assert!(e.message().contains("not a [canary] account"), "{e}");

    let report = r
        .drill(&UserRef::parse(canary.as_str()).expect("name"))
        .await
        .expect("drill");
    assert_ne!(report.verdict, Verdict::Fail, "{report:#?}");
    assert!(report.incident.starts_with("DRILL-"), "{}", report.incident);
    let steps: Vec<_> = report.steps.iter().map(|s| s.step).collect();
    // every configured step (no [postfix] here: no hold-mail step)
    assert_eq!(steps, r.containment_steps());
    assert!(report.steps.iter().all(|s| s.millis.is_some()), "{report:#?}");
    for c in &report.checks {
        assert_eq!(c.verdict, Verdict::Ok, "{c:?}");
    }
    assert!(report
        .checks
        .iter()
        .any(|c| c.name.contains("old password is wrong")));
    // the journal says DRILL, and the canary is as it was (unlocked, out of the MFA group)
    let records = cadenas::journal::read(&journal).expect("journal");
    assert!(
        records.iter().all(|r| r.incident == report.incident),
        "one drill incident"
    );
    assert!(records.iter().any(|r| matches!(&r.event,
        cadenas::journal::Event::IncidentStart { note: Some(n), .. } if n.contains("DRILL"))));
    let dir = Directory::connect(&cfg.directory).await.expect("connect");
    let u = dir
        .find_user(&UserRef::parse(canary.as_str()).expect("name"))
        .await
        .expect("find");
    let st = dir.account_state(&u).await.expect("state");
    assert_eq!((st.lock, st.mfa_required), (LockState::Unlocked, Some(false)));
    let _ = std::fs::remove_file(journal);
}

#[tokio::test]
async fn notify_test_sends_each_notifier_a_message_marked_test() {
    let lab = OpenLdapLab::load();
    let (oncall, _) = lab.fresh_user("oncall-test").await;
    let pid = std::process::id();
    let sms = std::env::temp_dir().join(format!("cadenas-test-sms-{pid}.txt"));
    let _ = std::fs::remove_file(&sms);
    let good = crate::support::dovecot_env()["CADENAS_LAB_SMTP_PASSWORD_FILE"].clone();
    let notify = format!(
        "[[notify]]\nname = \"mail\"\ntype = \"smtp\"\nevents = [\"contained\"]\n{}to = [\"{oncall}@example.test\"]\n\
         subject = \"custom {{incident}}\"\n\n\
         [[notify]]\nname = \"sms\"\ntype = \"command\"\nevents = [\"released\"]\nprogram = \"/usr/bin/tee\"\nargs = [\"{}\"]\n\n\
         [[notify]]\nname = \"down\"\ntype = \"command\"\nevents = [\"contained\"]\nprogram = \"/bin/false\"\nretries = 0\n",
        crate::notify::smtp_settings(&lab, "CADENAS_LAB_SMTP_STARTTLS", "smtp", &good),
        sms.display(),
    );
    let cfg = lab.config_with(|t| format!("{t}\n{notify}"));
    let mut opts = PreflightOptions::default();
    // without the option nothing is sent
    let report = preflight(&cfg, &opts).await;
    assert!(!report.checks.iter().any(|c| c.name.contains("test message")));
    assert!(!sms.exists());
    opts.notify_test = true;
    let report = preflight(&cfg, &opts).await;
    assert_eq!(
        verdict(&report, "notify mail: a test message"),
        Verdict::Ok,
        "{report:#?}"
    );
    assert_eq!(
        verdict(&report, "notify sms: a test message"),
        Verdict::Ok,
        "{report:#?}"
    );
    assert_eq!(
        verdict(&report, "notify down: a test message"),
        Verdict::Fail,
        "{report:#?}"
    );
    // marked as a test, whatever the notifier's own templates and events
    let text = std::fs::read_to_string(&sms).expect("sms");
    assert!(
        text.contains("[Cadenas] TEST TEST-") && text.contains("Nothing happened"),
        "{text}"
    );
    let mail = crate::notify::inbox_of(&lab, oncall.as_str(), 1).await;
    assert!(mail.contains("Subject: [Cadenas] TEST TEST-"), "{mail}");
    assert!(!mail.contains("custom TEST"), "{mail}");
    let _ = std::fs::remove_file(sms);
}

#[tokio::test]
async fn on_ad_the_directorys_own_rights_query_tells_what_the_service_account_may_write() {
    let ad = crate::support::AdLab::load();
    let helpdesk = ad.get("CADENAS_LAB_AD_HELPDESK_DN").to_owned();
    let lab = crate::support::AnyLab::Ad(ad);
    let report = preflight(&lab.config(), &PreflightOptions::default()).await;
    assert_eq!(
        verdict(&report, "rights on users under"),
        Verdict::Ok,
        "{report:#?}"
    );
    assert_eq!(
        verdict(&report, "rights on the MFA group"),
        Verdict::Ok,
        "{report:#?}"
    );
    // an ordinary user as the service account: it binds, but may write none of it
    let (_, weak_dn) = lab.fresh_user("ad-weak-svc").await;
    let dir = std::env::temp_dir().join(format!("cadenas-preflight-ad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let pw = secret_file(&dir, "weak.pw", lab.user_password().expose_secret(), 0o600);
    let cfg = lab.config_with(|t| {
        t.replace(
            &format!("bind_dn = \"{helpdesk}\""),
            &format!("bind_dn = \"{}\"", weak_dn.as_str()),
        )
        .replace(
            "bind_password_file = \"/tmp/cadenas-lab/samba/helpdesk.pw\"",
            &format!("bind_password_file = \"{}\"", pw.display()),
        )
    });
    let report = preflight(&cfg, &PreflightOptions::default()).await;
    assert_eq!(verdict(&report, "service account"), Verdict::Ok, "{report:#?}");
    assert_eq!(
        verdict(&report, "rights on users under"),
        Verdict::Fail,
        "{report:#?}"
    );
    assert_eq!(
        verdict(&report, "rights on the MFA group"),
        Verdict::Fail,
        "{report:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_expired_a_wrong_host_and_an_expiring_certificate_each_say_what_is_wrong() {
    // three real slapds (lab/openldap.sh tlsfaults), each certificate signed by the lab CA
    crate::support::lab_script("openldap.sh", "tlsfaults");
    let cert = "the server's TLS certificate";
    let on = |port: u16| {
        full_config(&format!("cert{port}"), move |t, _| {
            t.replace("ldaps://127.0.0.1:6360", &format!("ldaps://127.0.0.1:{port}"))
        })
    };

    let report = preflight(&on(6371), &PreflightOptions::default()).await;
    let c = the_check(&report, cert);
    assert_eq!(c.verdict, Verdict::Fail, "{c:?}");
    assert!(c.detail.contains("expired on 2024-02-01"), "{c:?}");
    assert_eq!(
        verdict(&report, "service account"),
        Verdict::Fail,
        "the bind fails too"
    );

    let report = preflight(&on(6372), &PreflightOptions::default()).await;
    let c = the_check(&report, cert);
    assert_eq!(c.verdict, Verdict::Fail, "{c:?}");
    assert!(
        c.detail
            .contains("made out to wrong-host.example.test, not to 127.0.0.1"),
        "{c:?}"
    );

    let report = preflight(&on(6373), &PreflightOptions::default()).await;
    let c = the_check(&report, cert);
    assert_eq!(c.verdict, Verdict::Warn, "{c:?}");
    assert!(
        c.detail.contains("in 9 day(s)") || c.detail.contains("in 10 day(s)"),
        "{c:?}"
    );
    assert!(c.fix.as_deref().is_some_and(|f| f.contains("renew")), "{c:?}");

    // the lab's own certificate: years left
    let report = preflight(&on(6360), &PreflightOptions::default()).await;
    let c = the_check(&report, cert);
    assert_eq!(c.verdict, Verdict::Ok, "{c:?}");
    assert!(c.detail.contains("valid until"), "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_is_checked_never_run_following_then_stopped() {
    let dir = std::env::temp_dir().join(format!("cadenas-preflight-watchlogs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("dovecot.log");
    std::fs::write(&log, "").expect("log");
    let missing = dir.join("missing.log");
    let state = dir.join("watch.db");
    let cfg = full_config("watch", |t, _| {
        format!(
            "{t}\n[watch]\ndovecot_logs = [\"{}\", \"{}\"]\nstate = \"{}\"\n",
            log.display(),
            missing.display(),
            state.display()
        )
    });
    let line = "2026-12-08 03:00:00 imap-login: Info: Login: user=<alice>, method=PLAIN, rip=192.0.2.10, lip=127.0.0.1\n";
    let append = || {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .expect("append");
    };
    // configured, never run
    let r = preflight(&cfg, &PreflightOptions::default()).await;
    let c = the_check(&r, "a watcher follows");
    assert_eq!(c.verdict, Verdict::Fail, "{r:#?}");
    assert!(c.detail.contains("never ran") && c.fix.as_deref().is_some_and(|f| f.contains("cadenas-watch")));
    assert_eq!(verdict(&r, "missing.log readable"), Verdict::Fail);
    assert_eq!(verdict(&r, "dovecot.log readable"), Verdict::Ok);
    assert_eq!(verdict(&r, "watch state: writable"), Verdict::Ok);
    // a watcher polling: followed
    let watch = cfg.watch.clone().expect("[watch]");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let poller = std::thread::spawn(move || {
        let mut w = cadenas::watch::Watcher::open(&watch).expect("watcher");
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            w.poll().expect("poll");
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    append();
    let r = preflight(&cfg, &PreflightOptions::default()).await;
    assert_eq!(verdict(&r, "a watcher follows"), Verdict::Ok, "{r:#?}");
    // stopped while the log grows
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    poller.join().expect("poller");
    append();
    let r = preflight(&cfg, &PreflightOptions::default()).await;
    let c = the_check(&r, "a watcher follows");
    assert_eq!(c.verdict, Verdict::Fail, "{r:#?}");
    assert!(c.detail.contains("not read"), "{c:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
