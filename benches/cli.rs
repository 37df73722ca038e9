//! The CLI seen from outside (issue 35): from the start of a `cadenas contain --from-file`
//! process to the last account locked, beside one `ldapmodify` process of the same lock
//! modifications (the floor: a process, a TLS connection, a bind, the locks, nothing else).
//! Fresh users for each method, sizes 500 and 1500 (`CADENAS_BENCH_CLI_SIZES`).
//!
//! The last lock's time is the journal's record of its outcome, written once slapd has
//! answered the modify (no polling load on the server while it works); the process start is
//! taken right before it is spawned. `ldapmodify` exits after its last modify's answer.

use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

#[path = "lab.rs"]
mod lab;

/// Seconds from the CLI's process start to its last lock outcome (journal time).
fn cli_locked(cli: &str, cfg: &std::path::Path, dir: &std::path::Path, users: &[String]) -> f64 {
    let list = dir.join("users.txt");
    std::fs::write(&list, users.join("\n") + "\n").expect("users");
    let passwords = dir.join("passwords.tsv");
    let _ = std::fs::remove_file(&passwords);
    // seconds of the UTC day, as the journal's times are read (a run across midnight is not)
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
        % 86_400.0;
    let status = Command::new(cli)
        .arg("--config")
        .arg(cfg)
        .args(["contain", "--from-file"])
        .arg(&list)
        .arg("--password-file")
        .arg(&passwords)
        .stdout(Stdio::null())
        .status()
        .expect("cadenas");
    assert!(status.success(), "cadenas contain: {status}");
    let records = cadenas::journal::read(&dir.join("journal.jsonl")).expect("journal");
    let last_lock = records
        .iter()
        .rev()
        .find(|r| {
            matches!(
                &r.event,
                cadenas::journal::Event::Outcome {
                    step: cadenas::journal::Step::Lock,
                    ..
                }
            )
        })
        .map(|r| lab::seconds_of_day(&r.time))
        .expect("locks");
    last_lock - start
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let env = lab::lab_env();
    let cli = std::env::var("CADENAS_BENCH_CLI").unwrap_or_else(|_| "target/release/cadenas".into());
    let sizes: Vec<usize> = std::env::var("CADENAS_BENCH_CLI_SIZES")
        .unwrap_or_else(|_| "500,1500".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let dir = std::env::temp_dir().join(format!("cadenas-bench-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    // the lab's OpenLDAP config, its journal in this directory
    let text = std::fs::read_to_string(&env["CADENAS_LAB_CONFIG"]).expect("lab config");
    let journal = env["CADENAS_LAB_CONFIG"].replace("cadenas.toml", "journal.jsonl");
    let text = text.replace(&journal, &dir.join("journal.jsonl").display().to_string());
    let cfg = dir.join("cadenas.toml");
    std::fs::write(&cfg, text).expect("config");
    println!("The CLI from outside: process start to the last account locked (lab OpenLDAP, LDAPS)");
    println!("{:>6}  {:<44} {:>10}", "users", "method", "all locked");
    let tag = std::process::id() % 10_000;
    for n in sizes {
        let floor_users = lab::fresh_users(&env, &format!("clif{tag}n{n}u"), n);
        let f = lab::ldapmodify_locks(&env, &floor_users);
        let cli_users = lab::fresh_users(&env, &format!("clic{tag}n{n}u"), n);
        let _ = std::fs::remove_file(dir.join("journal.jsonl"));
        let c = cli_locked(&cli, &cfg, &dir, &cli_users);
        println!(
            "{n:>6}  {:<44} {f:>8.3} s",
            "one ldapmodify process of the locks (floor)"
        );
        println!(
            "{n:>6}  {:<44} {c:>8.3} s   ({:.2}x the floor)",
            "cadenas contain --from-file (new process)",
            c / f
        );
        lab::record("cli", "ldapmodify_floor_s", n, f);
        lab::record("cli", "cadenas_cli_locked_s", n, c);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
