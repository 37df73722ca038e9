//! TOTP verification throughput: in memory, with Cadenas' durable replay guard (SQLite,
//! encrypted secrets), and side by side with `oathtool`, what a sysadmin's script would
//! otherwise call per code. Same secret, same steps, same run. Prints verifies/s and ratios.
//! Then the shared stores: 4 processes (as 4 gateways) verifying codes at once, each for its
//! own users, against one SQLite file and against the lab's PostgreSQL — accepted codes per
//! second, side by side in the same run.

use std::process::Command;
use std::time::Instant;

#[path = "lab.rs"]
mod lab;

use cadenas::mfa::totp::{code_for_step, matching_step, TotpCode};
use cadenas::mfa::{Mfa, MfaConfig};

const T0: u64 = 1_900_000_000;

/// Set in a worker process: `CONFIG|USER|CODES`.
const WORKER: &str = "CADENAS_BENCH_MFA_WORKER";
const PROCESSES: usize = 4;

/// A worker: opens the store of its own `[mfa]` file, verifies `CODES` consecutive codes of
/// its user, prints how many were accepted.
fn worker(spec: &str) {
    let mut parts = spec.splitn(3, '|');
    let (cfg, user, n) = (
        parts.next().expect("cfg"),
        parts.next().expect("user"),
        parts.next().expect("n").parse::<u64>().expect("n"),
    );
    let cfg: MfaConfig = toml_mfa(&std::fs::read_to_string(cfg).expect("config"));
    let mfa = Mfa::open(&cfg, false).expect("open");
    let secret = std::fs::read(format!("{}.{user}.secret", cfg.key_file.display())).expect("secret");
    let secret = cadenas::Secret::new(secret);
    let p = cfg.params();
    let mut ok = 0;
    for i in 0..n {
        let now = T0 + i * 30;
        if mfa
            .verify_at(user, &code_for_step(&secret, p.step_at(now), &p), now)
            .is_ok()
        {
            ok += 1;
        }
    }
    println!("ACCEPTED {ok}");
}

/// `[mfa]` from the bench's own small TOML (database, key_file, optional PostgreSQL keys).
fn toml_mfa(text: &str) -> MfaConfig {
    let cfg = cadenas::Config::from_toml_str(
        &format!(
            "[directory]\nurl = \"ldaps://127.0.0.1:1\"\nbind_dn = \"cn=x\"\nbind_password_env = \"X\"\nbase_dns = [\"dc=x\"]\n{text}"
        ),
        std::path::Path::new("/"),
    )
    .expect("bench config");
    cfg.mfa.expect("[mfa]")
}

/// Accepted codes per second of `PROCESSES` processes, each verifying `n` codes for its own
/// user in the store `mfa_toml` describes (users enrolled here first).
fn shared_store_rate(dir: &std::path::Path, tag: &str, mfa_toml: &str, n: u64) -> f64 {
    let cfg_path = dir.join(format!("{tag}.toml"));
    std::fs::write(&cfg_path, format!("[mfa]\n{mfa_toml}max_failures = 100000\n")).expect("cfg");
    let cfg = toml_mfa(&std::fs::read_to_string(&cfg_path).expect("cfg"));
    let mfa = Mfa::open(&cfg, true).expect("open");
    for w in 0..PROCESSES {
        let e = mfa.enroll(&format!("gw{w}")).expect("enroll");
        // the worker reads the secret enrolled here (a bench only: a gateway never could)
        std::fs::write(
            format!("{}.gw{w}.secret", cfg.key_file.display()),
            e.secret.expose_secret(),
        )
        .expect("secret");
    }
    drop(mfa);
    let exe = std::env::current_exe().expect("exe");
    let t = Instant::now();
    let children: Vec<_> = (0..PROCESSES)
        .map(|w| {
            Command::new(&exe)
                .env(WORKER, format!("{}|gw{w}|{n}", cfg_path.display()))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("worker")
        })
        .collect();
    let mut accepted = 0u64;
    for c in children {
        let out = c.wait_with_output().expect("worker");
        let text = String::from_utf8_lossy(&out.stdout);
        accepted += text
            .lines()
            .find_map(|l| l.strip_prefix("ACCEPTED "))
            .and_then(|v| v.parse::<u64>().ok())
            .expect("worker result");
    }
    accepted as f64 / t.elapsed().as_secs_f64()
}

/// The lab's PostgreSQL, if it runs: where it is and how to log in (`postgres/lab.env`).
struct LabPg {
    server: String,
    port: String,
    ca: String,
    password_file: String,
}

impl LabPg {
    fn find() -> Option<Self> {
        let lab = std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into());
        let env = std::fs::read_to_string(format!("{lab}/postgres/lab.env")).ok()?;
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(|v| v.trim_matches('\'').to_owned())
        };
        Some(Self {
            server: get("CADENAS_LAB_PG_URL")?.rsplit_once('/')?.0.to_owned(),
            port: get("CADENAS_LAB_PG_PORT")?,
            ca: get("CADENAS_LAB_PG_CA")?,
            password_file: get("CADENAS_LAB_PG_PASSWORD_FILE")?,
        })
    }

    /// Runs SQL on the `cadenas` database with `psql`.
    fn psql(&self, sql: &str) -> Option<()> {
        Command::new("psql")
            .args([
                "-q",
                &format!(
                    "host=127.0.0.1 port={} user=cadenas dbname=cadenas sslmode=verify-full sslrootcert={}",
                    self.port, self.ca
                ),
                "-c",
                sql,
            ])
            .env(
                "PGPASSWORD",
                std::fs::read_to_string(&self.password_file).ok()?.trim(),
            )
            .status()
            .ok()
            .filter(|s| s.success())
            .map(|_| ())
    }

    /// The `[mfa]` keys for database `db`.
    fn keys(&self, db: &str) -> String {
        format!(
            "database = \"{}/{db}\"\ndatabase_password_file = \"{}\"\ndatabase_ca_file = \"{}\"\n",
            self.server, self.password_file, self.ca
        )
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Ok(spec) = std::env::var(WORKER) {
        worker(&spec);
        return;
    }
    let dir = std::env::temp_dir().join(format!("cadenas-bench-mfa-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = MfaConfig::new(dir.join("mfa.db"), dir.join("mfa.key"));
    let mfa = Mfa::open(&cfg, true).expect("open");
    let new = mfa.enroll("bench").expect("enroll");
    let secret = new.secret.clone();
    let b32 = String::from_utf8(new.secret_base32().expose_secret().to_vec()).expect("base32");
    let p = cfg.params();

    let n = 20_000u64;
    let t = Instant::now();
    for i in 0..n {
        let step = p.step_at(T0) + i;
        let text = code_for_step(&secret, step, &p);
        let code = TotpCode::parse(&text, 6).expect("code");
        // a neighbouring step may have the same code (about once in 25 runs of 20 000): the
        // match is then that step, rightly
        let matched = matching_step(&secret, &code, step, &p);
        if matched != Some(step) {
            assert!(
                matched.is_some_and(|s| s.abs_diff(step) <= 1 && code_for_step(&secret, s, &p) == text),
                "{matched:?} for step {step}"
            );
        }
    }
    let mem = n as f64 / t.elapsed().as_secs_f64();

    let m = 2_000u64;
    let t = Instant::now();
    for i in 0..m {
        let now = T0 + i * 30;
        let code = code_for_step(&secret, p.step_at(now), &p);
        mfa.verify_at("bench", &code, now).expect("verify");
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

    lab::record("mfa", "totp_in_memory_per_s", 0, mem);
    lab::record("mfa", "totp_durable_sqlite_per_s", 0, durable);
    if oath_ok {
        lab::record("mfa", "oathtool_per_s", 0, oath);
    }
    println!("TOTP verification, SHA1 / 6 digits / ±1 step:");
    println!("  cadenas in memory (no replay guard)          {mem:>10.0} verifies/s");
    println!("  cadenas + durable replay guard (SQLite WAL)  {durable:>10.0} verifies/s  ({:.0}x slower than in memory)", mem / durable);
    if oath_ok {
        println!("  oathtool, one process per code               {oath:>10.0} codes/s     (cadenas durable is {:.1}x faster)", durable / oath);
    }

    // the shared stores, from 4 processes at once
    let n = 1_000u64;
    let sqlite = shared_store_rate(
        &dir,
        "sqlite",
        &format!(
            "database = \"{}\"\nkey_file = \"{}\"\n",
            dir.join("shared.db").display(),
            dir.join("shared.key").display()
        ),
        n,
    );
    println!("\nTOTP verification with the durable replay guard, {PROCESSES} processes at once (one user each, {n} codes each):");
    println!("  SQLite (WAL, one host)                       {sqlite:>10.0} accepted codes/s");
    lab::record("mfa", "shared_sqlite_4proc_per_s", 0, sqlite);
    let db = format!("cadenas_bench_mfa_{}", std::process::id());
    match LabPg::find().filter(|pg| pg.psql(&format!("CREATE DATABASE \"{db}\"")).is_some()) {
        Some(lab_pg) => {
            let keys = lab_pg.keys(&db);
            let pg = shared_store_rate(
                &dir,
                "pg",
                &format!("{keys}key_file = \"{}\"\n", dir.join("pg.key").display()),
                n,
            );
            println!(
                "  PostgreSQL (TLS, loopback, shared by hosts) {pg:>10.0} accepted codes/s  ({:.2}x SQLite)",
                pg / sqlite
            );
            lab::record("mfa", "shared_postgres_4proc_per_s", 0, pg);
            let _ = lab_pg.psql(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"));
        }
        None => println!(
            "  PostgreSQL: the lab's PostgreSQL is not running (bash lab/postgres.sh start); column skipped"
        ),
    }

    // argon2id as Cadenas hashes {ARGON2} passwords (client-side hashing, recovery codes):
    // m=19 MiB, t=2, p=1; benches/argon2_python.py times argon2-cffi at the same parameters
    let k = 20;
    let t = Instant::now();
    for i in 0..k {
        let pw = cadenas::Password::new(format!("Bench-Passw0rd-{i}"));
        cadenas::password::openldap_argon2_hash(&pw).expect("hash");
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(k);
    lab::record("mfa", "argon2id_rust_ms_per_hash", 0, ms);
    println!(
        "\nargon2id (m=19456 KiB, t=2, p=1), as Cadenas hashes {{ARGON2}} passwords: {ms:.1} ms per hash"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
