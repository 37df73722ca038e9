//! Containing many accounts on the lab's real OpenLDAP: Cadenas side by side with what a
//! sysadmin runs by hand today (`ldapmodify` + `ldappasswd`, one process per step), in the
//! same run, on disjoint users of the same server. Prints accounts/s and ratios.
//!
//! `make bench` (starts the lab). `CADENAS_BENCH_USERS` (default 200) accounts per method.

#[path = "lab.rs"]
mod lab;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use cadenas::directory::PasswordHashing;
use cadenas::directory::{Directory, Dn, UserRef};
use cadenas::{Config, Password};
use tokio::sync::Semaphore;

/// What an operator types today, per account: three tool invocations over LDAPS.
fn by_hand(env: &HashMap<String, String>, users: &[String]) -> f64 {
    let pw = std::fs::read_to_string(&env["CADENAS_LAB_RESPONDER_PW_FILE"]).expect("pw");
    let pw = pw.trim();
    let url = &env["CADENAS_LAB_LDAPS_URL"];
    let bind = &env["CADENAS_LAB_RESPONDER_DN"];
    let t = Instant::now();
    for (i, u) in users.iter().enumerate() {
        let dn = format!("uid={u},{}", env["CADENAS_LAB_PEOPLE"]);
        let lock = format!("dn: {dn}\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n");
        let mfa = format!(
            "dn: {}\nchangetype: modify\nadd: member\nmember: {dn}\n",
            env["CADENAS_LAB_MFA_GROUP"]
        );
        let new = format!("By-Hand-Passw0rd-{i}");
        let ldapmodify = |ldif: String| {
            let mut c = Command::new("ldapmodify")
                .args(["-x", "-H", url, "-D", bind, "-w", pw])
                .env("LDAPTLS_CACERT", &env["CADENAS_LAB_CA"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("ldapmodify");
            use std::io::Write;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(ldif.as_bytes())
                .expect("write");
            assert!(c.wait().expect("wait").success(), "ldapmodify failed");
        };
        ldapmodify(lock);
        let ok = Command::new("ldappasswd")
            .args(["-x", "-H", url, "-D", bind, "-w", pw, "-s", &new, &dn])
            .env("LDAPTLS_CACERT", &env["CADENAS_LAB_CA"])
            .stdout(Stdio::null())
            .status()
            .expect("ldappasswd");
        assert!(ok.success());
        // (by hand, the lock is now silently gone: ppolicy deleted it on the password set)
        ldapmodify(mfa);
    }
    t.elapsed().as_secs_f64()
}

async fn with_cadenas(cfg: &Config, users: &[String], in_flight: usize) -> f64 {
    let dir = Directory::connect(&cfg.directory).await.expect("connect");
    let sem = Arc::new(Semaphore::new(in_flight));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for u in users {
        let (dir, sem, u) = (dir.clone(), sem.clone(), u.clone());
        let policy = cfg.password.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore");
            let user = dir
                .find_user(&UserRef::parse(&u).expect("name"))
                .await
                .expect("find");
            dir.lock(&user).await.expect("lock");
            let pw: Password = policy.generate().expect("generate");
            dir.reset_password(&user, &pw, true).await.expect("reset");
            dir.add_to_mfa_group(&user).await.expect("mfa");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    t.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let env = lab::lab_env();
    let n: usize = std::env::var("CADENAS_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let users = |from: usize| {
        (from..from + n)
            .map(|i| format!("user{i:04}"))
            .collect::<Vec<_>>()
    };
    let total: usize = std::env::var("CADENAS_BENCH_LAB_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    assert!(
        3 * n <= total,
        "the lab has {total} users; start it with more (lab/openldap.sh start N)"
    );
    let cfg_path = &env["CADENAS_LAB_CONFIG"];
    let server = Config::from_file(cfg_path.as_ref()).expect("config");
    let mut client = server.clone();
    client.directory.password_hashing = PasswordHashing::ClientArgon2;
    let _ = Dn::parse(&env["CADENAS_LAB_PEOPLE"]).expect("dn");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("containing {n} accounts per method on the lab OpenLDAP (LDAPS), lock + reset + require MFA:");
    let hand = by_hand(&env, &users(1));
    let server_s = rt.block_on(with_cadenas(&server, &users(1 + n), 16));
    let client_s = rt.block_on(with_cadenas(&client, &users(1 + 2 * n), 16));
    let rate = |s: f64| n as f64 / s;
    lab::record("contain", "by_hand_accounts_per_s", n, rate(hand));
    lab::record("contain", "cadenas_server_accounts_per_s", n, rate(server_s));
    lab::record("contain", "cadenas_client_accounts_per_s", n, rate(client_s));
    println!(
        "  ldapmodify + ldappasswd by hand      {:8.1} accounts/s  ({hand:.2} s)",
        rate(hand)
    );
    println!(
        "  cadenas, server hashing (RFC 3062)   {:8.1} accounts/s  ({server_s:.2} s)  {:.1}x",
        rate(server_s),
        hand / server_s
    );
    println!(
        "  cadenas, client-side argon2id        {:8.1} accounts/s  ({client_s:.2} s)  {:.1}x",
        rate(client_s),
        hand / client_s
    );
}
