//! SIGKILL the `cadenas` CLI in the middle of a bulk containment, then `contain --resume`:
//! every account ends fully contained, no step twice, and the journal verifies.

#[path = "../../core/tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};

use cadenas::directory::{Directory, LockState, UserRef};
use cadenas::journal::Step;
use support::OpenLdapLab;

#[tokio::test]
async fn sigkill_mid_run_then_resume_finishes_everyone_exactly_once() {
    let lab = OpenLdapLab::load();
    let dir = std::env::temp_dir().join(format!("cadenas-crash-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut users = Vec::new();
    for i in 0..150 {
        users.push(lab.fresh_user(&format!("kill{i}")).await.0.to_string());
    }
    let list = dir.join("users.txt");
    std::fs::write(&list, users.join("\n")).expect("list");
    let journal_path = dir.join("journal.jsonl");
    let j = journal_path.to_str().expect("utf8");

    let mut child = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args([
            "--config",
            lab.get("CADENAS_LAB_CONFIG"),
            "contain",
            "--from-file",
            list.to_str().expect("utf8"),
        ])
        .args([
            "--journal",
            j,
            "--password-file",
            dir.join("pw1.tsv").to_str().expect("utf8"),
            "--concurrency",
            "4",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Kill it once a good part of the work is journaled, mid-flight.
    let mut killed = false;
    for _ in 0..600 {
        let journal = std::fs::read_to_string(&journal_path).unwrap_or_default();
        let outcomes = journal.matches("\"event\":\"outcome\"").count();
        let intents = journal.matches("\"event\":\"intent\"").count();
        // kill while steps are in flight (their intents durable, no outcome yet): a step takes
        // LDAP round trips, the SIGKILL lands right after this read
        if outcomes >= 150 && intents > outcomes {
            child.kill().expect("SIGKILL");
            killed = true;
            break;
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.wait();
    assert!(
        killed,
        "the run finished before it could be killed: make it bigger"
    );
    let before = std::fs::read_to_string(&journal_path).expect("journal");
    assert!(!before.contains("incident_end"), "killed mid-run");
    // mid-run means steps in flight: an intent whose outcome never came
    let records = cadenas::journal::read(&journal_path).expect("journal (a torn tail is cut off)");
    let mut open: std::collections::HashSet<(String, Step)> = Default::default();
    for r in &records {
        match &r.event {
            cadenas::journal::Event::Intent { user, step, .. } => {
                open.insert((user.clone(), *step));
            }
            cadenas::journal::Event::Outcome { user, step, .. } => {
                open.remove(&(user.clone(), *step));
            }
            _ => {}
        }
    }
    assert!(!open.is_empty(), "killed between steps, not in the middle of one");
    eprintln!("steps in flight when killed: {open:?}");

    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args([
            "--json",
            "--config",
            lab.get("CADENAS_LAB_CONFIG"),
            "contain",
            "--resume",
            j,
        ])
        .args(["--password-file", dir.join("pw2.tsv").to_str().expect("utf8")])
        .output()
        .expect("resume");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["done"], users.len());
    assert!(report["users"]
        .as_array()
        .expect("users")
        .iter()
        .any(|u| u["steps"][0]["from_earlier_run"] == true));

    let verify = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args(["journal", "verify", j])
        .output()
        .expect("verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    let done = support::done_steps(&journal_path);
    let d = Directory::connect(&lab.config().directory)
        .await
        .expect("connect");
    for u in &users {
        // the lab config has no [postfix]: no hold-mail step
        for s in Step::CONTAIN.into_iter().filter(|s| *s != Step::HoldMail) {
            assert_eq!(
                done.get(&(u.clone(), s)),
                Some(&1),
                "{u} {s:?} journaled done once"
            );
        }
        let st = d
            .account_state(&d.find_user(&UserRef::parse(u).expect("u")).await.expect("find"))
            .await
            .expect("state");
        assert_eq!(
            (st.lock, st.must_change, st.mfa_required),
            (LockState::Locked, true, Some(true)),
            "{u}"
        );
    }
    // Every user got a password, and the last one handed over is the account's: an earlier
    // one (a reset re-run by resume) no longer works. A locked OpenLDAP account answers every
    // bind "locked", right password or not: unlocked first (these are the test's own users).
    let handed = |f: &str| -> Vec<(String, String)> {
        std::fs::read_to_string(dir.join(f))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('\t').map(|(u, p)| (u.to_owned(), p.to_owned())))
            .collect()
    };
    let all: Vec<(String, String)> = handed("pw1.tsv").into_iter().chain(handed("pw2.tsv")).collect();
    for u in &users {
        let mine: Vec<&String> = all.iter().filter(|(n, _)| n == u).map(|(_, p)| p).collect();
        let last = mine.last().unwrap_or_else(|| panic!("{u} got no password"));
        let user = d.find_user(&UserRef::parse(u).expect("u")).await.expect("find");
        d.unlock(&user).await.expect("unlock");
        let dn = user.dn;
        assert_eq!(
            d.check_password(&dn, &cadenas::Password::new(last.as_str()))
                .await
                .expect("bind"),
            cadenas::directory::BindOutcome::MustChange,
            "{u}: the last password handed over is the live one"
        );
        for older in &mine[..mine.len() - 1] {
            assert_eq!(
                d.check_password(&dn, &cadenas::Password::new(older.as_str()))
                    .await
                    .expect("bind"),
                cadenas::directory::BindOutcome::InvalidCredentials,
                "{u}: an older hand-over no longer works"
            );
        }
    }
    // Tampering is detected by the CLI, with a value that stays valid: an outcome's status
    // rewritten (the record's own hash names it).
    let text = std::fs::read_to_string(&journal_path).expect("journal");
    assert!(text.contains("\"status\":\"changed\""));
    std::fs::write(
        &journal_path,
        text.replacen("\"status\":\"changed\"", "\"status\":\"already_so\"", 1),
    )
    .expect("tamper");
    let verify = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args(["journal", "verify", j])
        .output()
        .expect("verify");
    assert_eq!(
        verify.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `cadenas outbound serve` for `config`, its output to `log`.
fn serve(config: &std::path::Path, log: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args(["--config", config.to_str().expect("utf8"), "outbound", "serve"])
        .env("CADENAS_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("spawn the policy service")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_service_killed_mid_traffic_refuses_a_contained_account_from_its_first_answer_after_restart(
) {
    use support::smtp::{delete_queued, Smtp};
    let lab = OpenLdapLab::load();
    let (_port, at) = support::policy_address().await;
    let dir = std::env::temp_dir().join(format!("cadenas-crash-policy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let (victim, _) = lab.fresh_user("policy-kill").await;
    let (sender, _) = lab.fresh_user("policy-traffic").await;
    let (victim, sender) = (victim.to_string(), sender.to_string());
    let pw = lab.get("CADENAS_LAB_USER_PW").to_owned();
    // the lab config, the Dovecot revoker, [mail], [outbound] where the lab Postfix asks,
    // and a journal of this test's own
    let journal = dir.join("journal.jsonl");
    let base = std::fs::read_to_string(lab.get("CADENAS_LAB_CONFIG")).expect("config");
    let base = base.replace(
        base.lines()
            .find(|l| l.starts_with("path = "))
            .expect("journal path"),
        &format!("path = \"{}\"", journal.display()),
    );
    let revokers =
        std::fs::read_to_string(&support::dovecot_env()["CADENAS_LAB_REVOKERS"]).expect("revokers");
    let outbound =
        std::fs::read_to_string(&support::smtp_env()["CADENAS_LAB_OUTBOUND_CONFIG"]).expect("outbound");
    let config = dir.join("cadenas.toml");
    std::fs::write(&config, format!("{base}\n{revokers}\n{outbound}\n")).expect("config");

    let mut service = serve(&config, &dir.join("serve1.log"));
    support::listening(&at).await;
    // traffic: a legitimate sender keeps sending while the service is killed
    let mut traffic = Smtp::login_from("127.0.0.71", &sender, &pw)
        .await
        .expect("sender login");
    let mut attacker = Smtp::login_from("127.0.0.72", &victim, &pw)
        .await
        .expect("attacker login");
    let mut ids = Vec::new();
    ids.push(
        attacker
            .send("x@bank.test", &["a@kill-target.test"], "spam")
            .await
            .expect("before"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args(["--config", config.to_str().expect("utf8"), "contain", &victim])
        .args([
            "--password-file",
            dir.join("pw.tsv").to_str().expect("utf8"),
            "--json",
        ])
        .output()
        .expect("contain");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let smtp = report["users"][0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .flat_map(|s| s["detail"]["revocations"].as_array().cloned().unwrap_or_default())
        .find(|o| o["revoker"] == "outbound-policy")
        .expect("the policy service's outcome");
    assert_eq!(smtp["status"], "revoked", "{smtp}");
    for i in 0..3 {
        ids.extend(
            traffic
                .send(
                    &format!("{sender}@example.test"),
                    &[&format!("t{i}@ok.test")],
                    "fine",
                )
                .await
                .ok(),
        );
    }
    service.kill().expect("SIGKILL");
    let _ = service.wait();
    // down: Postfix goes on without it (the lab's default_action is DUNNO)
    ids.extend(
        traffic
            .send(&format!("{sender}@example.test"), &["t-down@ok.test"], "fine")
            .await
            .ok(),
    );

    let mut service = serve(&config, &dir.join("serve2.log"));
    support::listening(&at).await;
    // its very first answer about the contained account is a refusal: the journal was read first
    let first = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args([
            "--config",
            config.to_str().expect("utf8"),
            "outbound",
            "check",
            &victim,
        ])
        .output()
        .expect("check");
    assert!(
        String::from_utf8_lossy(&first.stdout).starts_with("action=REJECT 5.7.1"),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    // and through the real Postfix, on the attacker's session opened before all this
    let r = attacker
        .send("x@bank.test", &["b@kill-target.test"], "spam")
        .await;
    assert_eq!(r.as_ref().err().map(|e| e.0), Some(554), "{r:?}");
    ids.push(
        traffic
            .send(&format!("{sender}@example.test"), &["t-after@ok.test"], "fine")
            .await
            .expect("others still send"),
    );
    let _ = service.kill();
    let _ = service.wait();
    delete_queued(&ids);
}
