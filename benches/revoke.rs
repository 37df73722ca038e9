//! Revoking live IMAP sessions on the lab's real Dovecot, side by side in one run on disjoint
//! fresh users, each logged in over IMAP first: what an administrator runs today — `doveadm
//! auth cache flush USER` then `doveadm kick USER`, one process each — against Cadenas' Dovecot
//! revoker over the doveadm HTTP API (`who`, flush and kick in one request, then `who` until the
//! sessions are gone), one user after the other, and all at once as `contain` runs it (calls
//! made together share requests). Every session is checked
//! closed afterwards. Prints milliseconds per user and the ratio.
//!
//! `make bench`. `CADENAS_BENCH_REVOKE_USERS` (default 20) per method.

#[path = "lab.rs"]
mod lab;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cadenas::session::{build_revokers, revoke_all, RevocationStatus, RevocationTarget, Revokers};
use cadenas::Config;
use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::TcpStream;

/// Whether the server closed the session (within 5 s): what a kick must do.
async fn closed(mut s: BufReader<TcpStream>) -> bool {
    let mut buf = Vec::new();
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await,
        Ok(Ok(_))
    )
}

fn doveadm(conf: &str, args: &[&str]) {
    let ok = Command::new("doveadm")
        .args(["-c", conf])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("doveadm")
        .success();
    assert!(ok, "doveadm {args:?}");
}

/// Cadenas' revokers for one user; the Dovecot one must say it revoked a session.
async fn revoke(revokers: &Revokers, env: &std::collections::HashMap<String, String>, user: &str) {
    let target = RevocationTarget::new(user, format!("uid={user},{}", env["CADENAS_LAB_PEOPLE"]));
    for o in revoke_all(revokers, &target).await {
        assert_eq!(o.status, RevocationStatus::Revoked, "{user}: {o:?}");
        assert!(o.sessions_closed >= 1, "{user}: {o:?}");
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let env = lab::lab_env();
    let dovecot = lab::env_of("dovecot");
    let n: usize = std::env::var("CADENAS_BENCH_REVOKE_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into());
    let text = std::fs::read_to_string(&env["CADENAS_LAB_CONFIG"]).expect("config")
        + "\n"
        + &std::fs::read_to_string(format!("{dir}/dovecot/revokers.toml")).expect("lab/dovecot.sh start");
    let cfg = Config::from_toml_str(&text, std::path::Path::new(&dir)).expect("config");
    let revokers = build_revokers(&cfg.revokers).expect("revokers");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tag = std::process::id() % 100_000;
    let (imap, conf, pw) = (
        &dovecot["CADENAS_LAB_IMAP"],
        &dovecot["CADENAS_LAB_DOVECOT_CONF"],
        &env["CADENAS_LAB_USER_PW"],
    );
    let login_all = |users: &[String]| {
        rt.block_on(async {
            let mut out = Vec::new();
            for u in users {
                out.push(lab::imap_login(imap, u, pw).await);
            }
            out
        })
    };
    let all_closed = |sessions: Vec<BufReader<TcpStream>>| {
        rt.block_on(async {
            let mut open = 0;
            for s in sessions {
                open += usize::from(!closed(s).await);
            }
            assert_eq!(open, 0, "sessions left open");
        })
    };

    // by hand: two doveadm processes per user
    let users = lab::fresh_users(&env, &format!("rvd{tag}u"), n);
    let sessions = login_all(&users);
    let t = Instant::now();
    for u in &users {
        doveadm(conf, &["auth", "cache", "flush", u]);
        doveadm(conf, &["kick", u]);
    }
    let by_hand = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
    all_closed(sessions);

    // Cadenas, one user after the other
    let users = lab::fresh_users(&env, &format!("rvc{tag}u"), n);
    let sessions = login_all(&users);
    let t = Instant::now();
    rt.block_on(async {
        for u in &users {
            revoke(&revokers, &env, u).await;
        }
    });
    let one_by_one = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
    all_closed(sessions);

    // Cadenas, every user at once (as contain's workers do)
    let users = lab::fresh_users(&env, &format!("rva{tag}u"), n);
    let sessions = login_all(&users);
    let t = Instant::now();
    rt.block_on(async {
        let mut all = tokio::task::JoinSet::new();
        for u in users.clone() {
            let (revokers, env) = (revokers.clone(), env.clone());
            all.spawn(async move { revoke(&revokers, &env, &u).await });
        }
        while let Some(done) = all.join_next().await {
            done.expect("revocation task");
        }
    });
    let at_once = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
    all_closed(sessions);

    lab::record("revoke", "doveadm_cli_ms_per_user", n, by_hand);
    lab::record("revoke", "cadenas_ms_per_user", n, one_by_one);
    lab::record("revoke", "cadenas_concurrent_ms_per_user", n, at_once);
    println!("revoking {n} users' live IMAP sessions per method (each session checked closed after):");
    println!("  doveadm auth cache flush + doveadm kick, per user   {by_hand:7.1} ms/user");
    println!(
        "  cadenas Dovecot revoker (HTTP API), one by one       {one_by_one:7.1} ms/user  {:.1}x",
        by_hand / one_by_one
    );
    println!(
        "  cadenas Dovecot revoker, {n} at once                  {at_once:7.1} ms/user  {:.1}x",
        by_hand / at_once
    );
}
