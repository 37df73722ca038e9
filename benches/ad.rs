//! Containing accounts on the lab's real Samba AD DC: Cadenas (LDAPS, as the delegated
//! helpdesk) side by side with what a Samba administrator runs by hand today — `samba-tool`
//! on the DC (disable, setpassword --must-change-at-next-login, group addmembers) — in the
//! same run, on disjoint users. Prints accounts/s and the ratio.
//!
//! `make bench` (the lab must include Samba). `CADENAS_BENCH_AD_USERS` (default 20) per method.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

#[path = "lab.rs"]
mod lab;

use cadenas::incident::{ContainOptions, PasswordSink, Responder};
use cadenas::{Config, Error, Password};

struct Discard;

impl PasswordSink for Discard {
    fn deliver(&self, _user: &str, _dn: &str, _password: &Password) -> Result<(), Error> {
        Ok(())
    }
}

fn env() -> HashMap<String, String> {
    let dir = std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into());
    std::fs::read_to_string(format!("{dir}/samba/lab.env"))
        .expect("samba lab not running: lab/samba.sh start")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect()
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

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let env = env();
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
    let users: Vec<String> = (n + 1..=2 * n).map(|i| format!("user{i:04}")).collect();
    let cadenas = rt.block_on(async {
        let r = Responder::new(&cfg, &journal).await.expect("responder");
        let t = Instant::now();
        let report = r
            .contain(&users, ContainOptions::new(Arc::new(Discard)))
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
}
