//! Containing accounts on the lab's real Samba AD DC: Cadenas (LDAPS, as the delegated
//! helpdesk) side by side with what a Samba administrator runs by hand today — `samba-tool`
//! on the DC (disable, setpassword --must-change-at-next-login, group addmembers) — in the
//! same run, on disjoint users. Prints accounts/s and the ratio.
//!
//! Then the lock wave on AD, measured like OpenLDAP's (`time_to_contain.rs`): fresh enabled
//! users per method, the floor — one `ldapmodify` of all the disable modifications, as the
//! same delegated account — and the sequential python-ldap3 script an AD administrator writes
//! (`benches/contain_ldap3_ad.py`) against `Responder::contain` (all disabled after, from the
//! journal; all contained after).
//!
//! `make bench` (the lab must include Samba). `CADENAS_BENCH_AD_USERS` (default 20) per method
//! for samba-tool; `CADENAS_BENCH_AD_WAVE_SIZES` (default `600`) the lock-wave sizes.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

#[path = "lab.rs"]
mod lab;

use cadenas::incident::{ContainOptions, Responder};
use cadenas::Config;

/// Seconds for the DC to reset `users` and nothing else (`unicodePwd` + `pwdLastSet: 0`, one
/// modify each, as the containment's reset), 64 in flight over the pool's connections: the
/// bound any containment of these accounts meets, Samba hashing each new password in its
/// several forms and writing them one transaction at a time.
async fn reset_capacity(cfg: &Config, users: &[String]) -> f64 {
    use futures_util::stream::{self, StreamExt};
    let dirs = [
        cadenas::directory::Directory::connect(&cfg.directory)
            .await
            .expect("connect"),
        cadenas::directory::Directory::connect(&cfg.directory)
            .await
            .expect("connect"),
    ];
    let refs = cadenas::directory::UserRef::parse_all(users).expect("names");
    let found: Vec<_> = dirs[0]
        .find_users(&refs)
        .await
        .into_iter()
        .map(|r| r.expect("found"))
        .collect();
    let password = cadenas::Password::new("Capacity-Passw0rd-1!");
    let t = Instant::now();
    stream::iter(found.iter().enumerate())
        .map(|(i, u)| {
            let dir = &dirs[i % dirs.len()];
            let pw = &password;
            async move { dir.reset_password(u, pw, true).await.expect("reset") }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    t.elapsed().as_secs_f64()
}

fn samba_tool(smb_conf: &str, args: &[&str]) {
    let ok = Command::new("samba-tool")
        .args(args)
        .args(["-s", smb_conf])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("samba-tool")
        .success();
    assert!(ok, "samba-tool {args:?}");
}

/// `n` new enabled AD users `<prefix><i>` with the lab password, added in one `ldapadd` as the
/// domain administrator (the password read from a file of its UTF-16LE form, as AD wants it).
fn fresh_ad_users(
    env: &HashMap<String, String>,
    prefix: &str,
    n: usize,
    tmp: &std::path::Path,
) -> Vec<String> {
    let pw_file = tmp.join("unicodePwd.bin");
    let quoted = format!("\"{}\"", env["CADENAS_LAB_AD_USER_PW"]);
    let bytes: Vec<u8> = quoted.encode_utf16().flat_map(u16::to_le_bytes).collect();
    std::fs::write(&pw_file, bytes).expect("password file");
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i:05}")).collect();
    let mut ldif = String::new();
    for u in &names {
        ldif.push_str(&format!(
            "dn: CN={u},{people}\nobjectClass: user\nsAMAccountName: {u}\nunicodePwd:< file://{pw}\nuserAccountControl: 512\n\n",
            people = env["CADENAS_LAB_AD_PEOPLE"],
            pw = pw_file.display(),
        ));
    }
    lab::ldap_tool_at(
        env,
        &env["CADENAS_LAB_AD_LDAPS_URL"],
        "ldapadd",
        &env["CADENAS_LAB_AD_ADMIN"],
        &env["CADENAS_LAB_AD_ADMIN_PW"],
        &ldif,
    );
    names
}

/// The floor: one `ldapmodify` disabling every account in `users` (`userAccountControl:
/// 514`, what Cadenas' lock writes for an account at 512), as the delegated account. Seconds.
fn ad_floor(env: &HashMap<String, String>, cfg: &Config, users: &[String]) -> f64 {
    let mut ldif = String::new();
    for u in users {
        ldif.push_str(&format!(
            "dn: CN={u},{}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n\n",
            env["CADENAS_LAB_AD_PEOPLE"]
        ));
    }
    let pw_file = cfg
        .directory
        .bind_password_file
        .as_ref()
        .expect("bind_password_file");
    let pw = std::fs::read_to_string(pw_file).expect("helpdesk password");
    let t = Instant::now();
    lab::ldap_tool_at(
        env,
        &env["CADENAS_LAB_AD_LDAPS_URL"],
        "ldapmodify",
        cfg.directory.bind_dn.as_str(),
        pw.trim(),
        &ldif,
    );
    t.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let env = lab::env_of("samba");
    let n: usize = std::env::var("CADENAS_BENCH_AD_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    assert!(2 * n <= 50, "the Samba lab seeds 50 users");
    let lab = std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into());
    let smb_conf = format!("{lab}/samba/dc/etc/smb.conf");

    let t = Instant::now();
    for i in 1..=n {
        let u = format!("user{i:04}");
        samba_tool(&smb_conf, &["user", "disable", &u]);
        samba_tool(
            &smb_conf,
            &[
                "user",
                "setpassword",
                &u,
                &format!("--newpassword=By-Hand-Passw0rd-{i}"),
                "--must-change-at-next-login",
            ],
        );
        samba_tool(&smb_conf, &["group", "addmembers", "mfa-required", &u]);
    }
    let by_hand = t.elapsed().as_secs_f64();

    let cfg = Config::from_file(env["CADENAS_LAB_AD_CONFIG"].as_ref()).expect("config");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let journal = std::env::temp_dir().join(format!("cadenas-bench-ad-{}.jsonl", std::process::id()));
    let names: Vec<String> = (n + 1..=2 * n).map(|i| format!("user{i:04}")).collect();
    let users = cadenas::directory::UserRef::parse_all(&names).expect("names");
    let cadenas = rt.block_on(async {
        let r = Responder::new(&cfg, &journal).await.expect("responder");
        let t = Instant::now();
        let report = r
            .contain(&users, ContainOptions::new(Arc::new(lab::Discard)))
            .await
            .expect("contain");
        assert_eq!(report.failed(), 0, "{report:#?}");
        t.elapsed().as_secs_f64()
    });
    let _ = std::fs::remove_file(journal);
    lab::record("ad", "samba_tool_accounts_per_s", n, n as f64 / by_hand);
    lab::record("ad", "cadenas_accounts_per_s", n, n as f64 / cadenas);
    println!("containing {n} AD accounts per method (disable + reset with must-change + MFA group):");
    println!(
        "  samba-tool on the DC, 3 commands per account   {:6.1} accounts/s ({by_hand:.2} s)",
        n as f64 / by_hand
    );
    println!(
        "  cadenas over LDAPS, delegated helpdesk, journaled {:6.1} accounts/s ({cadenas:.2} s)  {:.1}x",
        n as f64 / cadenas,
        by_hand / cadenas
    );

    let sizes: Vec<usize> = std::env::var("CADENAS_BENCH_AD_WAVE_SIZES")
        .unwrap_or_else(|_| "600".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let tmp = std::env::temp_dir().join(format!("cadenas-bench-ad-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp");
    let tag = std::process::id() % 100_000;
    println!("the lock wave on the lab Samba AD DC (LDAPS, delegated helpdesk), fresh users per method:");
    for n in sizes {
        let floor_s = ad_floor(&env, &cfg, &fresh_ad_users(&env, &format!("aw{tag}f"), n, &tmp));
        let script_users = fresh_ad_users(&env, &format!("aw{tag}p"), n, &tmp);
        let list = tmp.join("ad-script-users.txt");
        std::fs::write(&list, script_users.join("\n")).expect("users file");
        let lab_env = std::path::PathBuf::from(format!("{lab}/samba/lab.env"));
        let pw_file = cfg
            .directory
            .bind_password_file
            .clone()
            .expect("bind_password_file");
        let (py_lock, py_all) = lab::python_peer(
            "contain_ldap3_ad.py",
            &[lab_env.as_os_str(), pw_file.as_os_str(), list.as_os_str()],
        );
        let users = fresh_ad_users(&env, &format!("aw{tag}c"), n, &tmp);
        let lab::Timed {
            locked,
            contained,
            ops,
            ..
        } = rt.block_on(lab::contain_timed(
            &cfg,
            &users,
            &tmp.join("journal-ad-wave.jsonl"),
        ));
        let capacity = rt.block_on(reset_capacity(
            &cfg,
            &fresh_ad_users(&env, &format!("aw{tag}r"), n, &tmp),
        ));
        lab::record("ad_wave", "reset_capacity_s", n, capacity);
        lab::record("ad_wave", "floor_locked_s", n, floor_s);
        lab::record("ad_wave", "ldap3_locked_s", n, py_lock);
        lab::record("ad_wave", "ldap3_contained_s", n, py_all);
        lab::record("ad_wave", "cadenas_locked_s", n, locked);
        lab::record("ad_wave", "cadenas_contained_s", n, contained);
        lab::record("ad_wave", "cadenas_ops_per_account", n, ops);
        println!("{n:>6}  one ldapmodify of the disables (floor)  {floor_s:8.2} s");
        println!(
            "{n:>6}  the DC's reset capacity: the resets alone, 64 in flight {capacity:8.2} s (cadenas contained in {:.2}x, the script in {:.2}x)",
            contained / capacity,
            py_all / capacity
        );
        println!("{n:>6}  python-ldap3, sequential: all disabled after {py_lock:8.2} s, all contained after {py_all:.2} s");
        println!(
            "{n:>6}  cadenas contain: all disabled after {locked:8.2} s ({:.2}x the floor), all contained after {contained:.2} s, {ops:.1} LDAP ops/account",
            locked / floor_s
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
