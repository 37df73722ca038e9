"""`cadenas watch` against fail2ban (issue 36), on the same generated Dovecot log.

1. **Throughput**: one log of LINES Dovecot login lines (default 1 000 000; syslog's format,
   as Debian's Dovecot writes `mail.log`) over 7 days, ACCOUNTS accounts (default 60 000)
   each with a home /24 it logs in from, typos, travellers, a few attackers (logins from new
   networks, password spraying, failure bursts). Read by `cadenas watch --replay` (every rule,
   its state in SQLite) and by `fail2ban-regex` with Debian's `dovecot` filter (the failure
   lines only: what fail2ban's jail reads) — each a process of its own: wall time, lines per
   second, CPU seconds, peak resident memory (`wait4`).
2. **Live**: `cadenas watch` (the service) follows a log the bench appends to; the ACCOUNTS
   accounts' baselines are written at once (how fast it catches up: lines per second
   followed, from its position in its state), then ALERTS logins from new networks, one
   every 50 ms; each alert's time from the line written to the webhook POST received (an
   HTTPS receiver here, the lab's certificate), p50 and p99; the watcher's peak memory with
   the ACCOUNTS baselines.

    python benches/watch.py [LINES] [ACCOUNTS] [ALERTS]

Writes its values to $CADENAS_BENCH_RESULTS (bench ``watch``) and prints them.
"""

from __future__ import annotations

import datetime
import http.server
import json
import os
import random
import re
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LAB = Path(os.environ.get("CADENAS_LAB_DIR", "/tmp/cadenas-lab"))
ROOT = Path(__file__).resolve().parents[1]
CLI = os.environ.get("CADENAS_BENCH_CLI", str(ROOT / "target/release/cadenas"))
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def record(what: str, n: int, value: float) -> None:
    path = os.environ.get("CADENAS_BENCH_RESULTS")
    if path:
        line = {"bench": "watch", "what": what, "n": n, "value": value}
        line["repeat"] = os.environ.get("CADENAS_BENCH_REPEAT", "")
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def stamp(t: float) -> str:
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return f"{MONTHS[d.month - 1]} {d.day:2d} {d:%H:%M:%S}"


def home(a: int) -> str:
    return f"10.{a // 250 % 250}.{a % 250}"


def login(t: float, user: str, ip: str, n: int) -> str:
    return (
        f"{stamp(t)} mail dovecot: imap-login: Login: user=<{user}>, method=PLAIN, rip={ip}, "
        f"lip=10.0.0.1, mpid={1000 + n % 60000}, TLS, session=<{n:012x}>\n"
    )


def failed(t: float, user: str, ip: str, n: int) -> str:
    return (
        f"{stamp(t)} mail dovecot: imap-login: Disconnected: Aborted login by logging out "
        f"(auth failed, 1 attempts in 2 secs): user=<{user}>, method=PLAIN, rip={ip}, lip=10.0.0.1, "
        f"TLS, session=<{n:012x}>\n"
    )


def generate(path: Path, lines: int, accounts: int) -> None:
    """The log: times over the 7 days before now, in order."""
    rnd = random.Random(36)
    end = time.time() - 3600
    start = end - 7 * 86400
    step = (end - start) / lines
    attackers = {rnd.randrange(accounts): 0 for _ in range(200)}
    with path.open("w", encoding="ascii") as f:
        n = 0
        while n < lines:
            t = start + n * step
            a = rnd.randrange(accounts)
            user = f"user{a:05d}"
            r = rnd.random()
            if n > lines // 2 and a in attackers and attackers[a] == 0:
                attackers[a] = 1  # an attacker's login, from a network of its own
                f.write(login(t, user, f"203.0.{n % 250}.{7 + n % 200}", n))
            elif r < 0.0005 and n > lines // 3:
                # password spraying: one address, 40 accounts, one try each
                ip = f"198.51.100.{n % 250}"
                for k in range(40):
                    f.write(failed(t + k * 0.5, f"user{rnd.randrange(accounts):05d}", ip, n + k))
                n += 39
            elif r < 0.08:
                f.write(failed(t, user, f"{home(a)}.{10 + n % 200}", n))  # a typo at home
            elif r < 0.085:
                f.write(login(t, user, f"192.0.{n % 250}.{1 + n % 200}", n))  # travelling
            else:
                f.write(login(t, user, f"{home(a)}.{10 + n % 200}", n))
            n += 1


def run_measured(args: list[str], stdout: int | None = subprocess.PIPE) -> tuple[float, float, float, bytes]:
    """Runs `args` as a process of its own: (wall s, CPU s, peak RSS MiB, its standard output)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=stdout, stderr=subprocess.DEVNULL)
    out = b""
    if p.stdout is not None:
        out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{args[0]}: exit {p.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def config(dir: Path, log: Path, port: int, own: str = "") -> Path:
    """The lab's config, its journal in `dir`, with [watch] over `log` and an SMS webhook."""
    text = (LAB / "openldap/cadenas.toml").read_text()
    text = re.sub(r'(?m)^path = ".*journal.*"$', f'path = "{dir}/journal.jsonl"', text)
    key = dir / "sms.key"
    key.write_text("bench-sms-key\n")
    text += (
        f'\n[watch]\ndovecot_logs = ["{log}"]\nstate = "{dir}/watch.db"\n{own}'
        "max_alerts_per_hour = 100000\n"
        f'\n[[notify]]\nname = "sms"\ntype = "webhook"\nevents = ["alert"]\n'
        f'url = "https://127.0.0.1:{port}/sms"\nca_file = "{LAB}/ca/ca.pem"\n'
        f'secret_file = "{key}"\n'
    )
    path = dir / "cadenas.toml"
    path.write_text(text)
    return path


class Receiver(http.server.BaseHTTPRequestHandler):
    """The SMS gateway: the arrival time of each alert, by account."""

    got: dict[str, float] = {}

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        now = time.monotonic()
        alert = json.loads(body).get("alert") or {}
        if alert.get("account"):
            Receiver.got.setdefault(alert["account"], now)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def receiver() -> int:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(LAB / "openldap/tls/cert.pem", LAB / "openldap/tls/key.pem")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def position(state: Path, log: Path) -> int:
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute("SELECT offset FROM watch_positions WHERE path = ?", (str(log),)).fetchone()
            return int(row[0]) if row else -1
    except sqlite3.Error:
        return -1


def vm(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def live(dir: Path, accounts: int, alerts: int) -> None:
    log = dir / "live.log"
    log.write_text("")
    port = receiver()
    cfg = config(dir, log, port)
    watcher = subprocess.Popen(
        [CLI, "--config", str(cfg), "watch"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        state = dir / "watch.db"
        deadline = time.monotonic() + 20
        while position(state, log) < 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        # the baselines: every account from its home network, written at once
        now = time.time()
        base = "".join(login(now, f"user{a:05d}", f"{home(a)}.20", a) for a in range(accounts))
        t0 = time.monotonic()
        with log.open("a", encoding="ascii") as f:
            f.write(base)
        size = log.stat().st_size
        while position(state, log) < size:
            time.sleep(0.02)
        followed = time.monotonic() - t0
        rss = vm(watcher.pid, "VmHWM")
        # the attacks: one new network each, one line every 50 ms
        written: dict[str, float] = {}
        with log.open("a", encoding="ascii") as f:
            for i in range(alerts):
                user = f"user{i * (accounts // alerts):05d}"
                f.write(login(time.time(), user, f"203.0.113.{i % 250}", accounts + i))
                f.flush()
                written[user] = time.monotonic()
                time.sleep(0.05)
        deadline = time.monotonic() + 30
        while len(Receiver.got) < alerts and time.monotonic() < deadline:
            time.sleep(0.1)
        rss = max(rss, vm(watcher.pid, "VmHWM"))
    finally:
        watcher.terminate()
        watcher.wait()
    lat = sorted(Receiver.got[u] - t for u, t in written.items() if u in Receiver.got)
    if len(lat) < alerts:
        print(f"only {len(lat)} of {alerts} alerts received", file=sys.stderr)
    p50 = statistics.median(lat) if lat else float("nan")
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan")
    print(
        f"live: {accounts} baselines followed in {followed:.2f} s ({accounts / followed:,.0f} lines/s); "
        f"{len(lat)}/{alerts} alerts: line written to webhook received p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms; watcher peak RSS {rss:.0f} MiB"
    )
    record("live_lines_per_s", accounts, accounts / followed)
    record("alert_p50_ms", alerts, p50 * 1000)
    record("alert_p99_ms", alerts, p99 * 1000)
    record("alerts_received", alerts, len(lat))
    record("live_peak_rss_mib", accounts, rss)


def main() -> int:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    accounts = int(sys.argv[2]) if len(sys.argv) > 2 else 60_000
    alerts = int(sys.argv[3]) if len(sys.argv) > 3 else 150
    with tempfile.TemporaryDirectory(prefix="cadenas-bench-watch-") as d:
        dir = Path(d)
        log = dir / "dovecot.log"
        generate(log, lines, accounts)
        n = sum(1 for _ in log.open("rb"))
        cfg = config(dir, log, 9)
        wall, cpu, rss, out = run_measured([CLI, "--config", str(cfg), "watch", "--replay", str(log)])
        raised = out.count(b"\n")
        print(
            f"cadenas watch --replay: {n:,} lines in {wall:.2f} s ({n / wall:,.0f} lines/s), "
            f"CPU {cpu:.2f} s, peak RSS {rss:.0f} MiB, {raised} alerts"
        )
        record("cadenas_replay_s", n, wall)
        record("cadenas_replay_cpu_s", n, cpu)
        record("cadenas_replay_rss_mib", n, rss)
        record("cadenas_replay_alerts", n, raised)
        f2b = [
            "fail2ban-regex",
            "--print-no-missed",
            "--print-no-ignored",
            str(log),
            "/etc/fail2ban/filter.d/dovecot.conf",
        ]
        wall2, cpu2, rss2, out2 = run_measured(f2b)
        m = re.search(rb"Lines: (\d+) lines, (\d+) ignored, (\d+) matched", out2)
        matched = int(m.group(3)) if m else -1
        print(
            f"fail2ban-regex (dovecot filter): {n:,} lines in {wall2:.2f} s ({n / wall2:,.0f} lines/s), "
            f"CPU {cpu2:.2f} s, peak RSS {rss2:.0f} MiB, {matched} failure lines matched"
        )
        print(f"lines/s: cadenas {wall2 / wall:.1f}x fail2ban")
        record("fail2ban_regex_s", n, wall2)
        record("fail2ban_regex_cpu_s", n, cpu2)
        record("fail2ban_regex_rss_mib", n, rss2)
        record("fail2ban_matched", n, matched)
        live(dir, accounts, alerts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
