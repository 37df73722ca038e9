//! Fault tolerance against the real lab: the directory server is killed (SIGKILL) and started
//! again in the middle of a bulk containment; the run reconnects and carries on, and a resume
//! (which then has nothing left to do) changes nothing: every account contained, every step
//! journaled done once, and the last password handed over is the one the server takes.
//! (Killing the Responder's own process mid-run is `cli/tests/crash.rs`.)
//!
//! Its own test binary, because restarting slapd would disturb the other lab tests (cargo
//! runs test binaries one after another).

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cadenas::directory::{LockState, UserRef};
use cadenas::incident::{ContainOptions, PasswordSink, Responder};
use cadenas::journal;
use cadenas::{Error, Password};
use support::OpenLdapLab;

/// Every password handed over, in order.
struct CountingSink(std::sync::Mutex<Vec<(String, Password)>>);

impl PasswordSink for CountingSink {
    fn deliver(&self, user: &str, _dn: &str, password: &Password) -> Result<(), Error> {
        self.0
            .lock()
            .expect("lock")
            .push((user.to_owned(), password.clone()));
        Ok(())
    }
}

fn lab_script(arg: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab/openldap.sh");
    let ok = std::process::Command::new("bash")
        .arg(root)
        .arg(arg)
        .status()
        .expect("lab script")
        .success();
    assert!(ok, "lab/openldap.sh {arg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_slapd_mid_run_then_resume_contains_everyone_and_no_step_is_done_twice() {
    let lab = OpenLdapLab::load();
    let mut users = Vec::new();
    for i in 0..200 {
        users.push(lab.fresh_user(&format!("crash{i}")).await.0.to_string());
    }
    let journal_path = std::env::temp_dir().join(format!("cadenas-crash-slapd-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&journal_path);

    let cfg = lab.config();
    let pid_file = std::path::PathBuf::from(
        std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into()),
    )
    .join("openldap/run/slapd.pid");
    let pid = || {
        std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let pid_before = pid();
    let sink = Arc::new(CountingSink(Default::default()));
    let restarted = Arc::new(AtomicBool::new(false));
    {
        let r = Responder::new(&cfg, &journal_path).await.expect("responder");
        let mut opts = ContainOptions::new(sink.clone());
        opts.concurrency = 8;
        let flag = restarted.clone();
        opts.progress = Some(Arc::new(move |p| {
            // After a fifth of the users, SIGKILL the server under the run's feet and start
            // it again; this worker waits for it, the others meanwhile lose their connection.
            if p.finished == 40 && !flag.swap(true, Ordering::SeqCst) {
                std::thread::spawn(|| lab_script("crash"))
                    .join()
                    .expect("restart");
            }
        }));
        let report = r
            .contain(&support::refs(&users), opts)
            .await
            .expect("the run itself completes and reports");
        assert!(restarted.load(Ordering::SeqCst));
        assert_ne!(pid(), pid_before, "slapd was restarted during the run");
        assert_eq!(
            (report.done(), report.failed()),
            (users.len(), 0),
            "the pool reconnected and the run carried on: {:#?}",
            report.users.iter().filter(|u| !u.complete()).collect::<Vec<_>>()
        );
    }
    // wait for the restart script to finish (it waits for slapd to answer)
    for _ in 0..100 {
        if cadenas::directory::Directory::connect(&cfg.directory)
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let r = Responder::new(&cfg, &journal_path)
        .await
        .expect("responder after restart");
    let report = r
        .resume(None, ContainOptions::new(sink.clone()))
        .await
        .expect("resume");
    assert_eq!(
        (report.done(), report.failed()),
        (users.len(), 0),
        "{:#?}",
        report.users.iter().filter(|u| !u.complete()).collect::<Vec<_>>()
    );

    // The journal verifies, and no step was done twice for anyone.
    let v = journal::verify(&journal_path).expect("verify");
    assert!(v.first_bad.is_none(), "{:?}", v.first_bad);
    let done = support::done_steps(&journal_path);
    for u in &users {
        for s in r.containment_steps() {
            assert_eq!(done.get(&(u.clone(), s)), Some(&1), "{u} {s:?}");
        }
    }
    // From outside: every account is contained.
    let dir = r.directory();
    for u in &users {
        let user = dir
            .find_user(&UserRef::parse(u).expect("name"))
            .await
            .expect("find");
        let st = dir.account_state(&user).await.expect("state");
        assert_eq!(
            (st.lock, st.must_change, st.mfa_required),
            (LockState::Locked, true, Some(true)),
            "{u}"
        );
    }
    // Each reset handed over exactly one password that counts (a reset whose outcome was lost
    // is re-run and hands over a new one): never fewer than one per user.
    let delivered: Vec<(String, Password)> = sink.0.lock().expect("lock").clone();
    for u in &users {
        assert!(delivered.iter().any(|(d, _)| d == u), "{u} got a password");
    }
    // What the server says (a locked account refuses every password, so unlock first): for a
    // sample, and every user given more than one, the last password handed over is the live
    // one and any earlier one is refused.
    let mut check: Vec<&String> = users.iter().step_by(40).collect();
    check.extend(
        users
            .iter()
            .filter(|u| delivered.iter().filter(|(d, _)| d == *u).count() > 1),
    );
    for u in check {
        let user = dir
            .find_user(&UserRef::parse(u).expect("name"))
            .await
            .expect("find");
        dir.unlock(&user).await.expect("unlock");
        let mine: Vec<&Password> = delivered.iter().filter(|(d, _)| d == u).map(|(_, p)| p).collect();
        let (last, earlier) = mine.split_last().expect("one at least");
        assert_eq!(
            dir.check_password(&user.dn, last).await.expect("bind"),
            cadenas::directory::BindOutcome::MustChange,
            "{u}: the last password handed over is live"
        );
        for p in earlier {
            assert_eq!(
                dir.check_password(&user.dn, p).await.expect("bind"),
                cadenas::directory::BindOutcome::InvalidCredentials,
                "{u}: an earlier hand-over is dead"
            );
        }
    }
}
