//! TOTP verification throughput: in memory, with Cadenas' durable replay guard (SQLite,
//! encrypted secrets), and side by side with `oathtool`, what a sysadmin's script would
//! otherwise call per code. Same secret, same steps, same run. Prints verifies/s and ratios.

use std::process::Command;
use std::time::Instant;

use cadenas::mfa::totp::{code_for_step, matching_step, TotpCode};
use cadenas::mfa::{Mfa, MfaConfig};

const T0: u64 = 1_900_000_000;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("cadenas-bench-mfa-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = MfaConfig::new(dir.join("mfa.db"), dir.join("mfa.key"));
    let mfa = Mfa::open(&cfg, true).expect("open");
    let new = mfa.enroll("bench", T0).expect("enroll");
    let secret = new.secret.clone();
    let b32 = String::from_utf8(new.secret_base32().expose_secret().to_vec()).expect("base32");
    let p = cfg.params();

    let n = 20_000u64;
    let t = Instant::now();
    for i in 0..n {
        let step = p.step_at(T0) + i;
        let code = TotpCode::parse(&code_for_step(&secret, step, &p), 6).expect("code");
        assert_eq!(matching_step(&secret, &code, step, &p), Some(step));
    }
    let mem = n as f64 / t.elapsed().as_secs_f64();

    let m = 2_000u64;
    let t = Instant::now();
    for i in 0..m {
        let now = T0 + i * 30;
        let code = code_for_step(&secret, p.step_at(now), &p);
        mfa.verify("bench", &code, now).expect("verify");
    }
    let durable = m as f64 / t.elapsed().as_secs_f64();

    let k = 200u64;
    let t = Instant::now();
    let mut oath_ok = true;
    for i in 0..k {
        let now = T0 + i * 30;
        let expected = code_for_step(&secret, p.step_at(now), &p);
        let out = Command::new("oathtool")
            .args(["--totp", "-b", &b32, "--now", &format!("@{now}")])
            .output();
        match out {
            Ok(o) => oath_ok &= String::from_utf8_lossy(&o.stdout).trim() == expected,
            Err(_) => {
                println!("oathtool not installed (apt-get install oathtool); skipping that column");
                oath_ok = false;
                break;
            }
        }
    }
    let oath = k as f64 / t.elapsed().as_secs_f64();

    println!("TOTP verification, SHA1 / 6 digits / ±1 step:");
    println!("  cadenas in memory (no replay guard)          {mem:>10.0} verifies/s");
    println!("  cadenas + durable replay guard (SQLite WAL)  {durable:>10.0} verifies/s  ({:.0}x slower than in memory)", mem / durable);
    if oath_ok {
        println!("  oathtool, one process per code               {oath:>10.0} codes/s     (cadenas durable is {:.1}x faster)", durable / oath);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
