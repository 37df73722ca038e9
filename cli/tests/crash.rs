//! SIGKILL the `cadenas` CLI in the middle of a bulk containment, then `contain --resume`:
//! every account ends fully contained, no step twice, and the journal verifies.

#[path = "../../core/tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};

use cadenas::journal::Step;
use cadenas::{Directory, LockState, UserRef};
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
        let outcomes = std::fs::read_to_string(&journal_path)
            .unwrap_or_default()
            .matches("\"event\":\"outcome\"")
            .count();
        if outcomes >= 150 {
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
        for s in Step::CONTAIN {
            assert_eq!(done.get(&(u.clone(), s)), Some(&1), "{u} {s:?} exactly once");
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
    // Tampering is detected by the CLI.
    let text = std::fs::read_to_string(&journal_path).expect("journal");
    std::fs::write(
        &journal_path,
        text.replacen("\"step\":\"lock\"", "\"step\":\"unlock\"", 1),
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
