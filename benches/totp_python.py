"""TOTP verification from Python: cadenas (through the binding) side by side with pyotp, in
one run, same secret, same window (±1 step). Prints medians over repeats and the ratios.

1. in memory: ``cadenas.totp_verify`` vs ``pyotp.TOTP.verify(valid_window=1)``;
2. with a durable replay guard: ``cadenas.Mfa.verify`` (SQLite, the step recorded with one
   conditional UPDATE) vs pyotp plus the same guard written in Python on sqlite3.

Run by ``make bench`` (release build of the extension).
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List

import pyotp

import cadenas

REPEATS = 7


def median_rate(n: int, run: Callable[[int], None]) -> tuple[float, float, float]:
    """(median, min, max) operations per second over REPEATS runs of n operations."""
    rates: List[float] = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        run(n)
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates), min(rates), max(rates)


def row(name: str, r: tuple[float, float, float]) -> str:
    return f"| {name} | {r[0]:,.0f}/s | {r[1]:,.0f}–{r[2]:,.0f} |"


def in_memory() -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    b32 = pyotp.random_base32(32)
    raw = base64.b32decode(b32)
    totp = pyotp.TOTP(b32)
    now = int(time.time())
    code = totp.at(now)
    assert totp.verify(code, for_time=now, valid_window=1)
    assert cadenas.totp_verify(raw, code, now) == now // 30

    def with_pyotp(n: int) -> None:
        for _ in range(n):
            totp.verify(code, for_time=now, valid_window=1)

    def with_cadenas(n: int) -> None:
        for _ in range(n):
            cadenas.totp_verify(raw, code, now)

    return median_rate(20_000, with_pyotp), median_rate(200_000, with_cadenas)


def durable(tmp: Path) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    cfg = tmp / "cadenas.toml"
    cfg.write_text(
        '[directory]\nurl = "ldaps://127.0.0.1:6360"\nbind_dn = "cn=x,dc=test"\n'
        'bind_password_env = "UNUSED"\nbase_dns = ["dc=test"]\n'
        f'[mfa]\ndatabase = "{tmp / "mfa.db"}"\nkey_file = "{tmp / "mfa.key"}"\n'
    )
    mfa = cadenas.Mfa.from_config(cfg)
    e = mfa.enroll("bench")
    b32 = e.secret.reveal()
    totp = pyotp.TOTP(b32)
    start = int(time.time())
    step = [0]

    def with_cadenas(n: int) -> None:
        for _ in range(n):
            t = start + 30 * step[0]
            step[0] += 1
            mfa.verify("bench", totp.at(t), now=t)

    db = sqlite3.connect(tmp / "pyotp.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS guard(user TEXT PRIMARY KEY, last_step INTEGER)")
    db.execute("INSERT OR REPLACE INTO guard VALUES ('bench', -1)")
    pstep = [0]

    def with_pyotp(n: int) -> None:
        for _ in range(n):
            t = start + 30 * pstep[0]
            pstep[0] += 1
            code = totp.at(t)
            if totp.verify(code, for_time=t, valid_window=1):
                cur = db.execute(
                    "UPDATE guard SET last_step = ? WHERE user = 'bench' AND last_step < ?",
                    (t // 30, t // 30),
                )
                assert cur.rowcount == 1

    return median_rate(500, with_pyotp), median_rate(500, with_cadenas)


def record(what: str, value: float) -> None:
    """Appends a measurement to $CADENAS_BENCH_RESULTS (see benches/report.py)."""
    path = os.environ.get("CADENAS_BENCH_RESULTS")
    if not path:
        return
    line = {
        "bench": "python",
        "what": what,
        "n": 0,
        "value": value,
        "repeat": os.environ.get("CADENAS_BENCH_REPEAT", ""),
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def argon2_ms() -> float:
    """argon2-cffi at the parameters Cadenas hashes {ARGON2} passwords with (argon2id,
    m=19456 KiB, t=2, p=1, 16-byte salt, 32-byte hash): ms per hash, median of REPEATS."""
    from argon2 import PasswordHasher, Type

    ph = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)
    assert ph.hash("x").startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    per: List[float] = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        for i in range(20):
            ph.hash(f"Bench-Passw0rd-{i}")
        per.append((time.perf_counter() - t) * 1000 / 20)
    return statistics.median(per)


def main() -> int:
    py_mem, rs_mem = in_memory()
    with tempfile.TemporaryDirectory() as d:
        py_dur, rs_dur = durable(Path(d))
    print(
        f"TOTP verification from Python {sys.version.split()[0]}, {os.cpu_count()} cores, median of {REPEATS}"
    )
    print("| what | median | min–max |\n|---|---|---|")
    print(row("pyotp.TOTP.verify (±1 step)", py_mem))
    print(row("cadenas.totp_verify (±1 step)", rs_mem))
    print(row("pyotp + sqlite3 replay guard", py_dur))
    print(row("cadenas.Mfa.verify (durable replay guard, throttling, encrypted store)", rs_dur))
    print(f"ratio in memory: {rs_mem[0] / py_mem[0]:.1f}x (target >= 10x)")
    print(f"ratio durable: {rs_dur[0] / py_dur[0]:.2f}x")
    a2 = argon2_ms()
    print(f"argon2-cffi argon2id m=19456,t=2,p=1: {a2:.1f} ms per hash")
    record("pyotp_in_memory_per_s", py_mem[0])
    record("cadenas_in_memory_per_s", rs_mem[0])
    record("pyotp_sqlite_guard_per_s", py_dur[0])
    record("cadenas_mfa_verify_per_s", rs_dur[0])
    record("argon2_cffi_ms_per_hash", a2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
