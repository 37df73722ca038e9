//! What the benches share: the running lab's facts, and fresh users made for one comparison.
#![allow(dead_code)] // each bench uses a part of it

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use cadenas::incident::{ContainOptions, PasswordSink, Responder};
use cadenas::{Config, Error, Password};

/// Hands passwords to nowhere (the benches' users are thrown away).
pub struct Discard;

impl PasswordSink for Discard {
    fn deliver(&self, _user: &str, _dn: &str, _password: &Password) -> Result<(), Error> {
        Ok(())
    }
}

/// One timed `Responder::contain`.
pub struct Timed {
    /// When the call was made.
    pub started: Instant,
    /// Seconds until every account was locked (from the journal's record times).
    pub locked: f64,
    /// Seconds until the call returned: every account contained.
    pub contained: f64,
    /// LDAP operations per account.
    pub ops: f64,
    /// The process's peak RSS (MiB) when the containment ended, before the journal is read
    /// back (reading it is the bench's own work).
    pub rss: f64,
    /// The incident's identifier (its records stay in the journal file, which the caller
    /// removes).
    pub incident: String,
}

/// `Responder::contain` of `users` with `cfg`, journaled at `journal_path` (removed after);
/// every account must end contained.
pub async fn contain_timed(cfg: &Config, users: &[String], journal_path: &std::path::Path) -> Timed {
    let _ = std::fs::remove_file(journal_path);
    let r = Responder::new(cfg, journal_path).await.expect("responder");
    let ops_before = r.ldap_operations();
    let users = cadenas::directory::UserRef::parse_all(users).expect("names");
    let t = Instant::now();
    let report = r
        .contain(&users, ContainOptions::new(Arc::new(Discard)))
        .await
        .expect("contain");
    let contained = t.elapsed().as_secs_f64();
    let ops = (r.ldap_operations() - ops_before) as f64 / users.len() as f64;
    let rss = peak_rss_mib();
    assert_eq!(
        report.done(),
        users.len(),
        "{:?}",
        report.users.iter().find(|u| !u.complete())
    );
    let locked = all_locked_after(journal_path);
    Timed {
        started: t,
        locked,
        contained,
        ops,
        rss,
        incident: report.incident,
    }
}

/// `$CADENAS_LAB_DIR/openldap/lab.env` (values single-quoted by the lab scripts).
pub fn lab_env() -> HashMap<String, String> {
    env_of("openldap")
}

/// `$CADENAS_LAB_DIR/<server>/lab.env`: what `lab/<server>.sh start` wrote.
pub fn env_of(server: &str) -> HashMap<String, String> {
    let dir = std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into());
    let text = std::fs::read_to_string(format!("{dir}/{server}/lab.env"))
        .unwrap_or_else(|_| panic!("lab {server} not running: make lab-up (or make bench)"));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect()
}

/// Runs an LDAP client tool (`ldapadd`, `ldapmodify`) over LDAPS with `ldif` on its stdin.
pub fn ldap_tool(env: &HashMap<String, String>, tool: &str, bind_dn: &str, password: &str, ldif: &str) {
    ldap_tool_at(env, &env["CADENAS_LAB_LDAPS_URL"], tool, bind_dn, password, ldif)
}

/// [`ldap_tool`] against the server at `url` (the lab CA verifies it).
pub fn ldap_tool_at(
    env: &HashMap<String, String>,
    url: &str,
    tool: &str,
    bind_dn: &str,
    password: &str,
    ldif: &str,
) {
    let mut c = Command::new(tool)
        .args(["-x", "-H", url, "-D", bind_dn, "-w", password])
        .env("LDAPTLS_CACERT", &env["CADENAS_LAB_CA"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    c.stdin
        .take()
        .expect("stdin")
        .write_all(ldif.as_bytes())
        .expect("write");
    assert!(c.wait().expect("wait").success(), "{tool} failed");
}

/// `n` new enabled users `uid=<prefix><i>` with the lab password, added in one `ldapadd`:
/// all with one `{ARGON2}` hash of it made by `slappasswd` (as the lab's seed does), so that
/// making 60 000 users does not wait for 60 000 server-side hashes.
pub fn fresh_users(env: &HashMap<String, String>, prefix: &str, n: usize) -> Vec<String> {
    let out = Command::new("slappasswd")
        .args([
            "-o",
            "module-load=argon2",
            "-h",
            "{ARGON2}",
            "-s",
            &env["CADENAS_LAB_USER_PW"],
        ])
        .output()
        .expect("slappasswd");
    assert!(out.status.success(), "slappasswd");
    let hash = String::from_utf8(out.stdout).expect("utf-8");
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i:05}")).collect();
    let mut ldif = String::new();
    for u in &names {
        ldif.push_str(&format!(
            "dn: uid={u},{people}\nobjectClass: inetOrgPerson\nuid: {u}\ncn: {u}\nsn: Bench\nuserPassword: {pw}\n\n",
            people = env["CADENAS_LAB_PEOPLE"],
            pw = hash.trim(),
        ));
    }
    ldap_tool(
        env,
        "ldapadd",
        &env["CADENAS_LAB_ADMIN_DN"],
        &env["CADENAS_LAB_ADMIN_PW"],
        &ldif,
    );
    names
}

/// Logs `user` in over IMAP (plain, loopback) and keeps the session open.
pub async fn imap_login(
    addr: &str,
    user: &str,
    password: &str,
) -> tokio::io::BufReader<tokio::net::TcpStream> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut s = tokio::io::BufReader::new(tokio::net::TcpStream::connect(addr).await.expect("imap connect"));
    let mut line = String::new();
    s.read_line(&mut line).await.expect("greeting");
    assert!(line.starts_with("* OK"), "greeting: {line}");
    s.get_mut()
        .write_all(format!("a1 LOGIN \"{user}\" \"{password}\"\r\n").as_bytes())
        .await
        .expect("login");
    loop {
        line.clear();
        assert!(
            s.read_line(&mut line).await.expect("login answer") > 0,
            "closed at login"
        );
        if line.starts_with("a1 ") {
            assert!(line.starts_with("a1 OK"), "{user}: {line}");
            return s;
        }
    }
}

/// Seconds for one `ldapmodify` process of the lock modifications of `users` (as the
/// responder, over LDAPS): the floor of a lock wave — a process, a connection, a bind and the
/// locks, nothing else.
pub fn ldapmodify_locks(env: &HashMap<String, String>, users: &[String]) -> f64 {
    let mut ldif = String::new();
    for u in users {
        ldif.push_str(&format!(
            "dn: uid={u},{}\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n\n",
            env["CADENAS_LAB_PEOPLE"]
        ));
    }
    let t = Instant::now();
    ldap_tool(
        env,
        "ldapmodify",
        &env["CADENAS_LAB_RESPONDER_DN"],
        &responder_password(env),
        &ldif,
    );
    t.elapsed().as_secs_f64()
}

/// The responder's own password (what Cadenas and the peers bind with).
pub fn responder_password(env: &HashMap<String, String>) -> String {
    std::fs::read_to_string(&env["CADENAS_LAB_RESPONDER_PW_FILE"])
        .expect("responder password")
        .trim()
        .to_owned()
}

/// Takes `users` out of the lab's MFA group again (one modify), so that the group does not
/// grow from run to run: adding a member costs more as a groupOfNames grows.
pub fn leave_mfa_group(env: &HashMap<String, String>, users: &[String]) {
    let mut ldif = format!(
        "dn: {}\nchangetype: modify\ndelete: member\n",
        env["CADENAS_LAB_MFA_GROUP"]
    );
    for u in users {
        ldif.push_str(&format!("member: uid={u},{}\n", env["CADENAS_LAB_PEOPLE"]));
    }
    ldap_tool(
        env,
        "ldapmodify",
        &env["CADENAS_LAB_ADMIN_DN"],
        &env["CADENAS_LAB_ADMIN_PW"],
        &ldif,
    );
}

/// Resets this process's peak resident set (`VmHWM`) to its current size (`clear_refs` 5), so
/// that the next [`peak_rss_mib`] is the peak of what runs in between.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident set size of this process so far (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) used so far by process `pid` (`None`: this process), from
/// `/proc/PID/stat`; 0 when it cannot be read.
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = pid.map_or_else(|| "/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let ticks = 100.0; // USER_HZ on Linux
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            // fields after the command name (which may hold spaces): utime is the 14th, stime the 15th
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks)
        })
        .unwrap_or(0.0)
}

/// The lab slapd's process id (its pid file).
pub fn slapd_pid() -> Option<u32> {
    let dir = std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into());
    std::fs::read_to_string(format!("{dir}/openldap/run/slapd.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Appends one measurement to the file `$CADENAS_BENCH_RESULTS` names (JSON lines, one per
/// value; `benches/report.py` makes `benches/RESULTS.md` of them); nothing when it is unset.
/// `what` names the quantity (`cadenas_contained_s`), `n` the accounts (0: not per size).
pub fn record(bench: &str, what: &str, n: usize, value: f64) {
    let Ok(path) = std::env::var("CADENAS_BENCH_RESULTS") else {
        return;
    };
    // the pinned method (CADENAS_BENCH_PINNED=1: slapd on one core, this process on the
    // other) records apart, as `<bench>_pinned`
    let bench = match std::env::var("CADENAS_BENCH_PINNED").as_deref() {
        Ok("1") => format!("{bench}_pinned"),
        _ => bench.to_owned(),
    };
    let line = serde_json::json!({
        "bench": bench,
        "what": what,
        "n": n,
        "value": value,
        "repeat": std::env::var("CADENAS_BENCH_REPEAT").unwrap_or_default(),
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    writeln!(f, "{line}").expect("results file");
}

/// Seconds from a run's start record to its last lock outcome, from the journal's record
/// times: when every account was locked.
fn all_locked_after(journal_path: &std::path::Path) -> f64 {
    use cadenas::journal::{self, Event, Step};
    let records = journal::read(journal_path).expect("journal");
    let start = seconds_of_day(&records[0].time);
    let last_lock = records
        .iter()
        .rev()
        .find(|r| matches!(&r.event, Event::Outcome { step: Step::Lock, .. }))
        .map(|r| seconds_of_day(&r.time))
        .expect("locks");
    last_lock - start
}

/// Seconds since midnight UTC of an RFC 3339 `...THH:MM:SS(.mmm)Z` (the bench's runs last
/// seconds; a run across midnight is reported as such).
pub fn seconds_of_day(t: &str) -> f64 {
    let clock = t.split('T').nth(1).expect("time").trim_end_matches('Z');
    let mut parts = clock.split(':');
    let h: f64 = parts.next().and_then(|v| v.parse().ok()).expect("h");
    let m: f64 = parts.next().and_then(|v| v.parse().ok()).expect("m");
    let s: f64 = parts.next().and_then(|v| v.parse().ok()).expect("s");
    h * 3600.0 + m * 60.0 + s
}

/// Runs a peer script of `benches/` with the project's venv Python (`$CADENAS_BENCH_PYTHON`),
/// `args` after it, and returns its one JSON line: `(all_locked_s, all_contained_s)`.
pub fn python_peer(script: &str, args: &[&std::ffi::OsStr]) -> (f64, f64) {
    let python = std::env::var("CADENAS_BENCH_PYTHON")
        .unwrap_or_else(|_| format!("{}/../target/python-venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    let out = Command::new(&python)
        .arg(format!("{}/{script}", env!("CARGO_MANIFEST_DIR")))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e} (make bench installs ldap3 into the venv)"));
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the script's JSON line");
    let field = |name: &str| v[name].as_f64().unwrap_or_else(|| panic!("{name} in {v}"));
    (field("all_locked_s"), field("all_contained_s"))
}
