//! The outbound policy service against policyd-rate-limit (PyPI), side by side in one run: the
//! same limits (recipients per account over two windows), the same request stream (1000
//! accounts, a fixed pseudo-random sequence of messages and recipient counts), the same socket
//! kind (TCP on loopback), the same client — at 1, 8 and 64 connections, each sending a request
//! and waiting for its answer, as a Postfix smtpd process does. Each service counts where it is
//! configured to (policyd-rate-limit's `count_mode: 1` at `DATA`; Cadenas at `END-OF-MESSAGE`):
//! the stream differs only in that attribute. Cadenas also follows a journal with 100
//! contained accounts (some requests are theirs: REJECT).
//!
//! Prints requests/s, p50/p99 latency and each server's peak RSS, and the ratios.
//! `make bench`. `CADENAS_BENCH_POLICY_SECS` (default 5) per measurement;
//! `CADENAS_BENCH_CLI` the `cadenas` binary (default target/release/cadenas);
//! `CADENAS_BENCH_PYTHON` the Python with policyd-rate-limit installed.

#[path = "lab.rs"]
mod lab;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cadenas::journal::{Event, Journal, Step, StepDetail, StepStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ACCOUNTS: usize = 1000;
const CONTAINED: usize = 100;

/// A small deterministic generator (xorshift): the same stream for both services.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// The next request, at `state` (what the service counts at).
    fn request(&mut self, state: &str, seq: u64) -> String {
        let account = self.next() % ACCOUNTS as u64;
        let rcpts = 1 + self.next() % 5;
        format!(
            "request=smtpd_access_policy\nprotocol_state={state}\nprotocol_name=ESMTP\n\
             client_address=192.0.2.{}\nclient_name=unknown\nreverse_client_name=unknown\n\
             helo_name=client.test\nsender=bulk{account}@example.test\nrecipient=\n\
             recipient_count={rcpts}\nqueue_id=\ninstance={seq:x}.{account}\nsize=2048\n\
             sasl_method=PLAIN\nsasl_username=bench{account:04}\nsasl_sender=\nccert_subject=\n\
             ccert_issuer=\nccert_fingerprint=\nencryption_protocol=TLSv1.3\n\
             encryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\netrn_domain=\n\
             stress=\nserver_address=127.0.0.1\nserver_port=587\n\n",
            1 + account % 250
        )
    }
}

/// One load run: `conns` connections for `secs`; returns (requests/s, p50 µs, p99 µs, refused).
async fn load(addr: &str, state: &'static str, conns: usize, secs: u64) -> (f64, f64, f64, usize) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..conns {
        let addr = addr.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await.expect("connect");
            s.set_nodelay(true).expect("nodelay");
            let mut gen = Stream(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1));
            let mut lat = Vec::with_capacity(100_000);
            let mut refused = 0;
            let mut buf = vec![0u8; 4096];
            let mut seq = 0u64;
            while Instant::now() < deadline {
                let req = gen.request(state, seq);
                seq += 1;
                let t = Instant::now();
                s.write_all(req.as_bytes()).await.expect("write");
                let mut got = 0;
                loop {
                    let n = s.read(&mut buf[got..]).await.expect("read");
                    assert!(n > 0, "the service closed the connection");
                    got += n;
                    if buf[..got].ends_with(b"\n\n") {
                        break;
                    }
                }
                lat.push(t.elapsed().as_micros() as u64);
                if !buf[..got].starts_with(b"action=DUNNO") && !buf[..got].starts_with(b"action=dunno") {
                    refused += 1;
                }
            }
            (lat, refused)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (l, r) = t.await.expect("client");
        all.extend(l);
        refused += r;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p) as usize] as f64;
    (all.len() as f64 / elapsed, pct(0.5), pct(0.99), refused)
}

fn wait_listening(addr: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens at {addr}");
}

/// Peak RSS (VmHWM) of process `pid`, MiB.
fn peak_rss(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// A journal in which `CONTAINED` bench accounts are locked (what responders would write).
fn journal_with_contained(path: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let j = Journal::open(path).expect("journal");
    let events = (0..CONTAINED)
        .map(|i| {
            let mut detail = StepDetail::default();
            detail.login = Some(format!("bench{i:04}"));
            Event::Outcome {
                user: format!("bench{i:04}"),
                dn: format!("uid=bench{i:04},ou=people,dc=example,dc=test"),
                step: Step::Lock,
                status: StepStatus::Changed,
                detail,
            }
        })
        .collect();
    rt.block_on(j.append("INC-BENCH", events)).expect("append");
}

/// Starts Cadenas' policy service (the release CLI) at `addr`.
fn start_cadenas(dir: &Path, addr: &str) -> Child {
    std::fs::create_dir_all(dir).expect("dir");
    let journal = dir.join("journal.jsonl");
    journal_with_contained(&journal);
    let cfg = dir.join("cadenas.toml");
    std::fs::write(
        &cfg,
        format!(
            "[directory]\nurl = \"ldaps://127.0.0.1:6360\"\nbind_dn = \"cn=x\"\nbind_password_env = \"UNUSED\"\n\
             base_dns = [\"ou=people,dc=example,dc=test\"]\n[journal]\npath = \"{}\"\n\
             [outbound]\nlisten = [\"{addr}\"]\n\
             [[outbound.limits]]\ncounts = \"recipients\"\nmax = 20\nwindow_secs = 60\naction = \"DEFER_IF_PERMIT\"\n\
             [[outbound.limits]]\ncounts = \"recipients\"\nmax = 200\nwindow_secs = 3600\naction = \"DEFER_IF_PERMIT\"\n",
            journal.display()
        ),
    )
    .expect("config");
    let cli = std::env::var("CADENAS_BENCH_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/cadenas"));
    let child = Command::new(&cli)
        .args(["--config", cfg.to_str().expect("utf8"), "outbound", "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo build --release -p cadenas-cli)", cli.display()));
    wait_listening(addr);
    child
}

/// Starts policyd-rate-limit at `addr` with the same limits (sqlite, as its default).
fn start_peer(dir: &Path, addr: &str) -> Child {
    let (host, port) = addr.split_once(':').expect("addr");
    let cfg = dir.join("policyd-rate-limit.yaml");
    let state = dir.join("peer");
    std::fs::create_dir_all(&state).expect("dir");
    std::fs::write(
        &cfg,
        format!(
            "debug: False\nuser: \"nobody\"\ngroup: \"nogroup\"\npidfile: \"{s}/run/pid\"\n\
             sqlite_config:\n    database: \"{s}/db/db.sqlite3\"\nbackend: 0\nSOCKET: [\"{host}\", {port}]\n\
             limits:\n    - [20, 60]\n    - [200, 3600]\nlimits_by_id: {{}}\nsql_limits_by_id: \"\"\n\
             limit_by_sasl: True\nlimit_by_sender: False\nlimit_by_ip: False\nlimited_networks: []\n\
             success_action: \"dunno\"\nfail_action: \"defer_if_permit Rate limit reach, retry later\"\n\
             db_error_action: \"dunno\"\nreport: False\ndelay_to_close: 300\ncount_mode: 1\n",
            s = state.display()
        ),
    )
    .expect("peer config");
    let python = std::env::var("CADENAS_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(&python).with_file_name("policyd-rate-limit");
    let child = Command::new(&python)
        .arg(&script)
        .args(["--file", cfg.to_str().expect("utf8")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("policyd-rate-limit (pip install policyd-rate-limit)");
    wait_listening(addr);
    child
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: u64 = std::env::var("CADENAS_BENCH_POLICY_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = std::env::temp_dir().join(format!("cadenas-bench-policy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "outbound policy service: {secs} s per measurement, requests of 1000 accounts over TCP loopback"
    );
    for conns in [1usize, 8, 64] {
        let mut row = Vec::new();
        for who in ["policyd_rate_limit", "cadenas"] {
            let addr = free_port();
            let (mut child, state) = if who == "cadenas" {
                (
                    start_cadenas(&dir.join(format!("c{conns}")), &addr),
                    "END-OF-MESSAGE",
                )
            } else {
                (start_peer(&dir.join(format!("p{conns}")), &addr), "DATA")
            };
            let (rps, p50, p99, refused) = rt.block_on(load(&addr, state, conns, secs));
            let rss = peak_rss(child.id());
            let _ = child.kill();
            let _ = child.wait();
            println!(
                "  {who:<20} {conns:>2} conn: {rps:>9.0} req/s  p50 {p50:>7.0} µs  p99 {p99:>7.0} µs  \
                 peak RSS {rss:>5.1} MiB  ({refused} refused)"
            );
            lab::record("policy", &format!("{who}_per_s"), conns, rps);
            lab::record("policy", &format!("{who}_p50_us"), conns, p50);
            lab::record("policy", &format!("{who}_p99_us"), conns, p99);
            lab::record("policy", &format!("{who}_rss_mib"), conns, rss);
            row.push(rps);
        }
        println!(
            "  ratio: Cadenas {:.1}× policyd-rate-limit's requests/s",
            row[1] / row[0]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
