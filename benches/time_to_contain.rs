//! Time to contain, on the lab's real OpenLDAP, side by side in one run on disjoint fresh
//! users of the same server: how soon every account is locked, and how soon every account
//! is fully contained (lock, reset with forced change, MFA group; Cadenas also journals every
//! step and revokes through its configured revokers).
//!
//! - the floor: one `ldapmodify` of all the lock modifications (nothing else);
//! - the sequential python-ldap3 script a sysadmin writes (`benches/contain_ldap3.py`);
//! - `Responder::contain` (every account locked first, then the rest);
//! - the server's own hashing capacity: the same number of RFC 3062 resets of the same users,
//!   as many in flight as Cadenas keeps, nothing else (the bound with server-side argon2),
//!   measured right before and right after the containment (their mean is the bound);
//! - the same comparison with `{SSHA}` as the server's hash (`olcPasswordHash`, switched over
//!   ldapi for the run and back), where the server's CPU is not the limit.
//!
//! `make bench`. `CADENAS_BENCH_SIZES` (default `600`) lists the account counts,
//! `CADENAS_BENCH_SESSIONS_SIZE` (default 600, 0: left out) the run with the Dovecot revoker
//! where 20 of the accounts hold live IMAP sessions (how soon the last is closed),
//! `CADENAS_BENCH_CAPACITY_ONLY=1` measures only the server's hashing capacity, on a directory
//! no containment has written to,
//! `CADENAS_BENCH_PEERS=0` leaves the peers out, `CADENAS_BENCH_SCRIPT_MAX` (default 6000) the
//! python-ldap3 script above that many accounts (60 000 would take it about 20 minutes);
//! `CADENAS_BENCH_PYTHON` the interpreter with ldap3 (default: the project's venv).

#[path = "lab.rs"]
mod lab;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use cadenas::incident::{ContainOptions, Responder};
use cadenas::Config;

/// The server's hashing capacity: an RFC 3062 reset of every user in `users`, 32 in flight
/// over 2 connections (as `Responder::contain` keeps them), nothing else. Seconds.
async fn hashing_capacity(env: &HashMap<String, String>, users: &[String]) -> f64 {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&env["CADENAS_LAB_CA"]).expect("CA") {
        roots.add(c.expect("pem")).expect("CA cert");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("tls")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let settings = ldap3::LdapConnSettings::new().set_config(Arc::new(tls));
    let pw = lab::responder_password(env);
    let mut conns = Vec::new();
    for _ in 0..2 {
        let (conn, mut ldap) =
            ldap3::LdapConnAsync::with_settings(settings.clone(), &env["CADENAS_LAB_LDAPS_URL"])
                .await
                .expect("connect");
        ldap3::drive!(conn);
        ldap.simple_bind(&env["CADENAS_LAB_RESPONDER_DN"], &pw)
            .await
            .expect("bind")
            .success()
            .expect("bind ok");
        conns.push(ldap);
    }
    let t = Instant::now();
    // 32 resets in flight, each a task; a place frees when a task ends and is collected (as
    // `contain` collects its accounts' tasks): 32 tasks alive at once, not one per user — a
    // finished task keeps its memory until collected, and the containment measured next in
    // this process has its peak RSS measured from what is resident then
    let mut tasks = tokio::task::JoinSet::new();
    for (i, u) in users.iter().enumerate() {
        let mut ldap = conns[i % 2].clone();
        let dn = format!("uid={u},{}", env["CADENAS_LAB_PEOPLE"]);
        if tasks.len() >= 32 {
            tasks.join_next().await.expect("a task").expect("task");
        }
        tasks.spawn(async move {
            let new = format!("Capacity-Passw0rd-{i}-xyz");
            ldap.extended(ldap3::exop::PasswordModify {
                user_id: Some(&dn),
                old_pass: None,
                new_pass: Some(&new),
            })
            .await
            .expect("exop")
            .success()
            .expect("reset");
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task");
    }
    t.elapsed().as_secs_f64()
}

/// Sets the server's password hash (`olcPasswordHash` of the frontend) over ldapi, as root.
fn server_hash(hash: &str) {
    let dir = std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into());
    let sock = format!("{dir}/openldap/run/ldapi").replace('/', "%2F");
    let mut c = Command::new("ldapmodify")
        .args(["-Q", "-Y", "EXTERNAL", "-H", &format!("ldapi://{sock}")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ldapmodify");
    use std::io::Write;
    c.stdin
        .take()
        .expect("stdin")
        .write_all(
            format!("dn: olcDatabase={{-1}}frontend,cn=config\nchangetype: modify\nreplace: olcPasswordHash\nolcPasswordHash: {hash}\n")
                .as_bytes(),
        )
        .expect("write");
    assert!(c.wait().expect("wait").success(), "olcPasswordHash {hash}");
}

/// (all locked after, all contained after), seconds.
fn ldap3_script(users: &[String], tmp: &std::path::Path) -> (f64, f64) {
    let list = tmp.join("ldap3-users.txt");
    std::fs::write(&list, users.join("\n")).expect("users file");
    let lab_env = std::path::PathBuf::from(format!(
        "{}/openldap/lab.env",
        std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into())
    ));
    lab::python_peer("contain_ldap3.py", &[lab_env.as_os_str(), list.as_os_str()])
}

/// (all locked after, all contained after, LDAP operations per account, peak RSS); with
/// `report`, the incident record of the run is measured after it.
async fn cadenas(
    cfg: &Config,
    users: &[String],
    tmp: &std::path::Path,
    n: usize,
    report: bool,
) -> (f64, f64, f64, f64) {
    // the containment's own peak (not the capacity run's before it, nor a larger size's)
    lab::reset_peak_rss();
    let rss_before = lab::peak_rss_mib();
    let journal = tmp.join(format!("journal-{n}.jsonl"));
    let t = lab::contain_timed(cfg, users, &journal).await;
    println!(
        "        peak RSS after containing {n} accounts: {:.1} MiB ({rss_before:.1} MiB before)",
        t.rss
    );
    if report {
        incident_report(&journal, &t.incident, n);
    }
    let _ = std::fs::remove_file(&journal);
    (t.locked, t.contained, t.ops, t.rss)
}

/// The incident record of the containment just run, from its real journal: how long the
/// report takes to build (one pass over the journal, chain verified) and to render as HTML,
/// its peak memory, against `jq` computing the summary's main figures from the same lines
/// (what an admin would run instead; it checks no chain and draws nothing).
fn incident_report(journal: &std::path::Path, incident: &str, n: usize) {
    use cadenas::report::{IncidentReport, ReportOptions};
    let size_mib = std::fs::metadata(journal).map_or(0.0, |m| m.len() as f64 / 1048576.0);
    lab::reset_peak_rss();
    let before = lab::peak_rss_mib();
    let t = Instant::now();
    let location = cadenas::journal::Location::File(journal.to_owned());
    let report =
        IncidentReport::from_journal(&location, None, incident, &ReportOptions::default()).expect("report");
    let built = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let html = report.to_html(cadenas::notify::Language::En);
    let csv = report.accounts_csv();
    let rendered = t.elapsed().as_secs_f64();
    let peak = lab::peak_rss_mib();
    assert_eq!(report.summary.contained, n, "{:?}", report.summary);
    assert!(report.proof.intact());
    // the same as a sysadmin runs it: `cadenas report`, a fresh process writing the page and
    // the CSV; its peak resident set sampled from /proc until it exits (VmHWM only grows)
    let cli = std::env::var("CADENAS_BENCH_CLI").unwrap_or_else(|_| "target/release/cadenas".into());
    let page = journal.with_extension("html");
    let t = Instant::now();
    let mut child = Command::new(&cli)
        .args(["report", incident, "--journal"])
        .arg(journal)
        .arg("--out")
        .arg(&page)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("cadenas report");
    let status_file = format!("/proc/{}/status", child.id());
    let mut cli_peak_kib = 0.0_f64;
    let status = loop {
        if let Some(kib) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        }) {
            cli_peak_kib = cli_peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let cli_s = t.elapsed().as_secs_f64();
    assert!(status.success(), "cadenas report: {status}");
    let _ = std::fs::remove_file(&page);
    let _ = std::fs::remove_file(page.with_file_name(report.csv_file_name()));
    let cli_peak = cli_peak_kib / 1024.0;
    // the peer: jq, one streaming pass, the accounts and the first and last lock
    let t = Instant::now();
    let out = Command::new("jq")
        .args([
            "-n",
            "-c",
            "--arg",
            "inc",
            incident,
            r#"reduce (inputs | select(.incident == $inc)) as $r ({users: {}, lock: {}};
                if $r.event == "incident_start" and $r.action != "release"
                then .start //= $r.time | reduce $r.users[] as $u (.; .users[$u] = true)
                elif $r.event == "outcome" and $r.step == "lock"
                     and ($r.status | IN("changed", "already_so", "partial"))
                then .lock[$r.user] //= $r.time
                else . end)
              | {accounts: (.users | length), locked: (.lock | length),
                 first: ([.lock[]] | min), last: ([.lock[]] | max), start}"#,
        ])
        .arg(journal)
        .output()
        .expect("jq (Debian's jq package)");
    let jq = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("jq output");
    assert_eq!(v["accounts"], n, "jq and the report count the same accounts");
    assert_eq!(v["locked"], n);
    lab::record("incident_report", "build_s", n, built);
    lab::record("incident_report", "render_s", n, rendered);
    lab::record("incident_report", "peak_rss_mib", n, peak);
    lab::record("incident_report", "rss_before_mib", n, before);
    lab::record("incident_report", "journal_mib", n, size_mib);
    lab::record("incident_report", "jq_s", n, jq);
    lab::record("incident_report", "cli_s", n, cli_s);
    lab::record("incident_report", "cli_peak_rss_mib", n, cli_peak);
    println!(
        "        the incident record of {n} accounts from its {size_mib:.0} MiB journal: built in {built:.2} s, \
         HTML ({:.1} MiB) and CSV in {rendered:.2} s, peak RSS {peak:.0} MiB ({before:.0} before); \
         jq's summary figures {jq:.2} s ({:.2}x the report's build); `cadenas report` (a process of its own, \
         page and CSV written) {cli_s:.2} s, peak RSS {cli_peak:.0} MiB",
        html.len() as f64 / 1048576.0,
        jq / built,
    );
    drop(csv);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let env = lab::lab_env();
    let sizes: Vec<usize> = std::env::var("CADENAS_BENCH_SIZES")
        .unwrap_or_else(|_| "600".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let mut cfg = Config::from_file(env["CADENAS_LAB_CONFIG"].as_ref()).expect("config");
    cfg.revokers.clear(); // the peers revoke nothing either
    let tmp = std::env::temp_dir().join(format!("cadenas-bench-ttc-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tag = std::process::id() % 100_000;
    // CADENAS_BENCH_PEERS=0: Cadenas alone (quick runs while working; no ratios then)
    let peers = std::env::var("CADENAS_BENCH_PEERS").map_or(true, |v| v != "0");
    let script_max: usize = std::env::var("CADENAS_BENCH_SCRIPT_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6000);
    println!("time to contain on the lab OpenLDAP (LDAPS, server-side argon2), fresh users per method:");
    println!(
        "{:>6}  {:<36} {:>14} {:>16}",
        "users", "method", "all locked", "all contained"
    );
    // CADENAS_BENCH_CAPACITY_ONLY=1: the server's hashing capacity alone, on fresh users and a
    // directory no containment has written to (how much of the growth with size is the server's)
    if std::env::var("CADENAS_BENCH_CAPACITY_ONLY").is_ok_and(|v| v == "1") {
        for n in sizes {
            let users = lab::fresh_users(&env, &format!("ttk{tag}n{n}u"), n);
            let capacity = rt.block_on(hashing_capacity(&env, &users));
            println!(
                "{n:>6}  the server's hashing capacity alone, no containment before: {capacity:.2} s ({:.2} ms per reset)",
                capacity * 1000.0 / n as f64
            );
        }
        return;
    }
    for n in sizes {
        let floor_s = if peers {
            lab::ldapmodify_locks(&env, &lab::fresh_users(&env, &format!("ttf{tag}n{n}u"), n))
        } else {
            f64::NAN
        };
        // the sequential script takes ~20 ms an account: above script_max it is left out
        let (py_lock, py_all) = if peers && n <= script_max {
            let script_users = lab::fresh_users(&env, &format!("ttp{tag}n{n}u"), n);
            let (py_lock, py_all) = ldap3_script(&script_users, &tmp);
            lab::leave_mfa_group(&env, &script_users);
            (py_lock, py_all)
        } else {
            (f64::NAN, f64::NAN)
        };
        let users = lab::fresh_users(&env, &format!("ttc{tag}n{n}u"), n);
        let slapd = lab::slapd_pid();
        let cpu = || (lab::cpu_seconds(None), lab::cpu_seconds(slapd));
        // The server's hashing capacity, right before and right after the containment, on the
        // same users: back to back, the same resets vary by ±7 % on this VM, and the mean of
        // the two brackets the containment in time.
        let before = cpu();
        let capacity_before = rt.block_on(hashing_capacity(&env, &users));
        let after = cpu();
        let k_before = (after.0 - before.0, after.1 - before.1);
        let before = cpu();
        let (c_lock, c_all, c_ops, rss) = rt.block_on(cadenas(&cfg, &users, &tmp, n, true));
        let after = cpu();
        // CPU per account, milliseconds: this process (Cadenas and its journal) and slapd
        let per = |a: f64, b: f64| (b - a) * 1000.0 / n as f64;
        let (c_client, c_server) = (per(before.0, after.0), per(before.1, after.1));
        // the process's peak during the containment (reset just before it)
        lab::record("time_to_contain", "peak_rss_mib", n, rss);
        lab::leave_mfa_group(&env, &users);
        // the same users again: only the resets, as the server can hash them
        let before = cpu();
        let capacity_after = rt.block_on(hashing_capacity(&env, &users));
        let after = cpu();
        let capacity = (capacity_before + capacity_after) / 2.0;
        // per account and per measurement: the mean of the two
        let (k_client, k_server) = (
            per(0.0, (after.0 - before.0 + k_before.0) / 2.0),
            per(0.0, (after.1 - before.1 + k_before.1) / 2.0),
        );
        lab::record("time_to_contain", "cadenas_client_cpu_ms", n, c_client);
        lab::record("time_to_contain", "cadenas_server_cpu_ms", n, c_server);
        lab::record("time_to_contain", "capacity_client_cpu_ms", n, k_client);
        lab::record("time_to_contain", "capacity_server_cpu_ms", n, k_server);
        lab::record("time_to_contain", "cadenas_locked_s", n, c_lock);
        lab::record("time_to_contain", "cadenas_contained_s", n, c_all);
        lab::record("time_to_contain", "cadenas_ops_per_account", n, c_ops);
        lab::record("time_to_contain", "server_hashing_capacity_s", n, capacity);
        lab::record(
            "time_to_contain",
            "server_hashing_capacity_before_s",
            n,
            capacity_before,
        );
        lab::record(
            "time_to_contain",
            "server_hashing_capacity_after_s",
            n,
            capacity_after,
        );
        if peers {
            lab::record("time_to_contain", "floor_locked_s", n, floor_s);
        }
        if peers && n <= script_max {
            lab::record("time_to_contain", "ldap3_locked_s", n, py_lock);
            lab::record("time_to_contain", "ldap3_contained_s", n, py_all);
        }
        println!(
            "{n:>6}  {:<36} {floor_s:>12.2} s {:>16}",
            "one ldapmodify of the locks (floor)", "-"
        );
        println!(
            "{n:>6}  {:<36} {py_lock:>12.2} s {py_all:>14.2} s   5.0 LDAP ops/account",
            "python-ldap3, sequential"
        );
        println!(
            "{n:>6}  {:<36} {c_lock:>12.2} s {c_all:>14.2} s  {c_ops:4.1} LDAP ops/account",
            "cadenas contain (journaled)"
        );
        println!(
            "        all locked: {:.1}x the floor, {:.1}x faster than the script; all contained: {:.2}x faster than the script",
            c_lock / floor_s,
            py_lock / c_lock,
            py_all / c_all
        );
        println!(
            "        the server's hashing capacity: {n} resets alone in {capacity:.2} s (mean of {capacity_before:.2} s right before and {capacity_after:.2} s right after); all contained is {:.2}x that",
            c_all / capacity
        );
        println!(
            "        CPU per account: contain {c_client:.2} ms here + {c_server:.2} ms slapd; the resets alone {k_client:.2} ms here + {k_server:.2} ms slapd"
        );
    }

    // {SSHA} as the server's hash: the server's CPU is no longer the limit
    let n_ssha: usize = std::env::var("CADENAS_BENCH_SSHA_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    if n_ssha > 0 {
        server_hash("{SSHA}");
        let script_users = lab::fresh_users(&env, &format!("tsp{tag}u"), n_ssha);
        let (py_lock, py_all) = if peers {
            let r = ldap3_script(&script_users, &tmp);
            lab::leave_mfa_group(&env, &script_users);
            r
        } else {
            (f64::NAN, f64::NAN)
        };
        let users = lab::fresh_users(&env, &format!("tsc{tag}u"), n_ssha);
        let (c_lock, c_all, c_ops, _) = rt.block_on(cadenas(&cfg, &users, &tmp, n_ssha, false));
        lab::leave_mfa_group(&env, &users);
        server_hash("{ARGON2}");
        lab::record("time_to_contain", "ssha_cadenas_locked_s", n_ssha, c_lock);
        lab::record("time_to_contain", "ssha_cadenas_contained_s", n_ssha, c_all);
        lab::record("time_to_contain", "ssha_cadenas_ops_per_account", n_ssha, c_ops);
        if peers {
            lab::record("time_to_contain", "ssha_ldap3_locked_s", n_ssha, py_lock);
            lab::record("time_to_contain", "ssha_ldap3_contained_s", n_ssha, py_all);
        }
        println!(
            "{n_ssha:>6}  {:<36} {py_lock:>12.2} s {py_all:>14.2} s",
            "{SSHA}: python-ldap3, sequential"
        );
        println!(
            "{n_ssha:>6}  {:<36} {c_lock:>12.2} s {c_all:>14.2} s  {c_ops:4.1} LDAP ops/account  ({:.2}x faster)",
            "{SSHA}: cadenas contain",
            py_all / c_all
        );
    }

    // One account at a time, as on a quiet incident day: the whole containment including the
    // lab Dovecot's revocation (auth-cache flush + kick), p50 / p95 over 50 runs.
    // the lab config plus the Dovecot revoker (and its [mail] section: the Sieve read)
    let dir = std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into());
    let text = std::fs::read_to_string(&env["CADENAS_LAB_CONFIG"]).expect("config")
        + "\n"
        + &std::fs::read_to_string(format!("{dir}/dovecot/revokers.toml")).expect("lab/dovecot.sh start");
    let base = std::path::Path::new(&env["CADENAS_LAB_CONFIG"])
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_owned();
    let full = Config::from_toml_str(&text, &base).expect("config");
    assert!(!full.revokers.is_empty(), "the Dovecot revoker");
    let singles = lab::fresh_users(&env, &format!("tts{tag}u"), 50);
    let mut ms: Vec<f64> = rt.block_on(async {
        let journal_path = tmp.join("journal-single.jsonl");
        let r = Responder::new(&full, &journal_path).await.expect("responder");
        let mut out = Vec::new();
        for u in cadenas::directory::UserRef::parse_all(&singles).expect("names") {
            let t = Instant::now();
            let report = r
                .contain(
                    std::slice::from_ref(&u),
                    ContainOptions::new(Arc::new(lab::Discard)),
                )
                .await
                .expect("contain");
            out.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(report.done(), 1, "{:?}", report.users[0]);
        }
        out
    });
    lab::leave_mfa_group(&env, &singles);
    ms.sort_by(f64::total_cmp);
    lab::record("time_to_contain", "single_p50_ms", 1, ms[ms.len() / 2]);
    lab::record("time_to_contain", "single_p95_ms", 1, ms[ms.len() * 95 / 100]);
    println!(
        "one account at a time, with the Dovecot revocation: p50 {:.1} ms, p95 {:.1} ms (50 runs)",
        ms[ms.len() / 2],
        ms[ms.len() * 95 / 100]
    );

    // The attacker's sessions in a run of many accounts: CADENAS_BENCH_SESSIONS_SIZE (default
    // 600) accounts contained with the Dovecot revoker (and the Sieve read), 20 of them —
    // spread over the run's order — logged in over IMAP first. How soon is the last of those
    // sessions closed, against all locked and all contained?
    let n_sessions: usize = std::env::var("CADENAS_BENCH_SESSIONS_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    // The revoker alone (the config without its [mail] section: no Sieve read), then with the
    // Sieve read, each on its own fresh users.
    let revoker_only = Config::from_toml_str(&without_mail(&text), &base).expect("config");
    assert!(
        revoker_only.mail.is_none() && full.mail.is_some(),
        "the lab's [mail] section"
    );
    for (cfg, prefix, label) in [
        (&revoker_only, "revoker_", "the Dovecot revoker (no Sieve read)"),
        (&full, "", "the Dovecot revoker and the Sieve read"),
    ] {
        if n_sessions == 0 {
            break;
        }
        let users = lab::fresh_users(&env, &format!("ttv{prefix}{tag}u"), n_sessions);
        let dovecot = lab::env_of("dovecot");
        let attacked: Vec<String> = users.iter().step_by((n_sessions / 20).max(1)).cloned().collect();
        let (timed, closed) = rt.block_on(async {
            let mut watchers = Vec::new();
            for u in &attacked {
                let mut s =
                    lab::imap_login(&dovecot["CADENAS_LAB_IMAP"], u, &env["CADENAS_LAB_USER_PW"]).await;
                // the instant the server closes the session
                watchers.push(tokio::spawn(async move {
                    use tokio::io::AsyncReadExt;
                    let mut buf = Vec::new();
                    let _ = s.read_to_end(&mut buf).await;
                    Instant::now()
                }));
            }
            let journal = tmp.join(format!("journal-{prefix}sessions.jsonl"));
            let timed = lab::contain_timed(cfg, &users, &journal).await;
            let mut last = timed.started;
            for w in watchers {
                let at = tokio::time::timeout(std::time::Duration::from_secs(10), w)
                    .await
                    .expect("every attacked session closed by the containment")
                    .expect("watcher");
                last = last.max(at);
            }
            let closed = (last - timed.started).as_secs_f64();
            (timed, closed)
        });
        lab::leave_mfa_group(&env, &users);
        let what = |w: &str| format!("{prefix}sessions_{w}_s");
        lab::record("time_to_contain", &what("locked"), n_sessions, timed.locked);
        lab::record("time_to_contain", &what("closed"), n_sessions, closed);
        lab::record("time_to_contain", &what("contained"), n_sessions, timed.contained);
        println!(
            "{n_sessions} accounts with {label}, {} of them logged in over IMAP: all locked {:.2} s, \
             their sessions closed {closed:.2} s, all contained {:.2} s",
            attacked.len(),
            timed.locked,
            timed.contained
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The config text without its `[mail]` section (what the Sieve read needs).
fn without_mail(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_mail = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            in_mail = t.starts_with("[mail]");
        }
        if !in_mail {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
