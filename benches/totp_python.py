"""TOTP verification from Python: cadenas (through the binding) side by side with pyotp, in
one run, same secret, same window (±1 step). Prints medians over repeats and the ratios.

1. in memory: ``cadenas.totp_verify`` vs ``pyotp.TOTP.verify(valid_window=1)``;
2. with a durable replay guard: ``cadenas.Mfa.verify`` (SQLite in WAL mode, synchronous FULL:
   throttling and the replay guard in one transaction) vs pyotp plus the guard a sysadmin
   writes in Python on sqlite3 — one conditional UPDATE — with sqlite3's defaults (rollback
   journal, synchronous FULL), and the same tuned to WAL (synchronous FULL): equal durability;
3. four processes at once on the lab's PostgreSQL (one user each): ``cadenas.Mfa.verify``
   vs pyotp plus the same conditional UPDATE through psycopg (autocommit, TLS), both with
   ``synchronous_commit = on``.

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


def durable(
    tmp: Path,
) -> tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]:
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

    def peer(db: sqlite3.Connection) -> Callable[[int], None]:
        db.execute("CREATE TABLE IF NOT EXISTS guard(user TEXT PRIMARY KEY, last_step INTEGER)")
        db.execute("INSERT OR REPLACE INTO guard VALUES ('bench', -1)")
        db.commit()
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
                    db.commit()
                    assert cur.rowcount == 1

        return with_pyotp

    # as a sysadmin writes it: sqlite3's defaults (journal_mode=delete, synchronous=FULL)
    plain = sqlite3.connect(tmp / "pyotp-default.db")
    assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert plain.execute("PRAGMA synchronous").fetchone()[0] == 2
    # tuned: WAL, synchronous still FULL (the durability Cadenas' default gives)
    wal = sqlite3.connect(tmp / "pyotp-wal.db")
    wal.execute("PRAGMA journal_mode=WAL")
    assert wal.execute("PRAGMA synchronous").fetchone()[0] == 2
    return (
        median_rate(500, peer(plain)),
        median_rate(500, peer(wal)),
        median_rate(500, with_cadenas),
    )


PROCESSES = 4
SHARED_CODES = 500


def lab_pg() -> dict[str, str] | None:
    """The lab's PostgreSQL (``postgres/lab.env``), if it runs."""
    env = Path(os.environ.get("CADENAS_LAB_DIR", "/tmp/cadenas-lab")) / "postgres" / "lab.env"
    if not env.exists():
        return None
    values = dict(line.split("=", 1) for line in env.read_text().splitlines() if "=" in line)
    return {k: v.strip("'") for k, v in values.items()}


def pg_worker(args: tuple[str, str, str, int]) -> int:
    """One process: ``kind`` (cadenas or pyotp) verifies SHARED_CODES successive codes of
    its user; ``spec`` is ``CONFIG|BASE32`` (cadenas) or ``DSN|BASE32`` (pyotp)."""
    kind, spec, user, start = args
    where, b32 = spec.split("|", 1)
    totp = pyotp.TOTP(b32)
    ok = 0
    if kind == "cadenas":
        mfa = cadenas.Mfa.from_config(where)
        for i in range(SHARED_CODES):
            t = start + 30 * i
            mfa.verify(user, totp.at(t), now=t)
            ok += 1
        return ok
    import psycopg

    with psycopg.connect(where, autocommit=True) as db:
        for i in range(SHARED_CODES):
            t = start + 30 * i
            code = totp.at(t)
            if totp.verify(code, for_time=t, valid_window=1):
                cur = db.execute(
                    "UPDATE guard SET last_step = %s WHERE login = %s AND last_step < %s",
                    (t // 30, user, t // 30),
                )
                ok += cur.rowcount
    return ok


def shared_postgres(tmp: Path) -> tuple[float, float] | None:
    """Accepted codes per second, 4 processes at once: (pyotp + psycopg, cadenas)."""
    pg = lab_pg()
    if pg is None:
        return None
    import multiprocessing

    import psycopg

    password = Path(pg["CADENAS_LAB_PG_PASSWORD_FILE"]).read_text().strip()
    port, ca = pg["CADENAS_LAB_PG_PORT"], pg["CADENAS_LAB_PG_CA"]
    base = f"host=127.0.0.1 port={port} user=cadenas sslmode=verify-full sslrootcert={ca} password={password}"
    name = f"cadenas_bench_py_{os.getpid()}"
    with psycopg.connect(f"{base} dbname=cadenas", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = f"{base} dbname={name}"
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute("CREATE TABLE guard(login TEXT PRIMARY KEY, last_step BIGINT NOT NULL)")
            for w in range(PROCESSES):
                db.execute("INSERT INTO guard VALUES (%s, -1)", (f"u{w}",))
        cfg = tmp / "pg.toml"
        cfg.write_text(
            '[directory]\nurl = "ldaps://127.0.0.1:6360"\nbind_dn = "cn=x,dc=test"\n'
            'bind_password_env = "UNUSED"\nbase_dns = ["dc=test"]\n'
            f'[mfa]\ndatabase = "postgresql://cadenas@127.0.0.1:{port}/{name}"\n'
            f'database_password_file = "{pg["CADENAS_LAB_PG_PASSWORD_FILE"]}"\n'
            f'database_ca_file = "{ca}"\nkey_file = "{tmp / "pg.key"}"\n'
        )
        setup = cadenas.Mfa.from_config(cfg)
        secrets = [setup.enroll(f"u{w}").secret.reveal() for w in range(PROCESSES)]
        start = int(time.time())
        ctx = multiprocessing.get_context("spawn")  # fresh processes: no handle crosses a fork
        rates = []
        for kind, spec in (("pyotp", dsn), ("cadenas", str(cfg))):
            jobs = [(kind, f"{spec}|{secrets[w]}", f"u{w}", start) for w in range(PROCESSES)]
            with ctx.Pool(PROCESSES) as pool:
                t = time.perf_counter()
                accepted = sum(pool.map(pg_worker, jobs))
                rates.append(accepted / (time.perf_counter() - t))
            assert accepted == PROCESSES * SHARED_CODES, (kind, accepted)
        return rates[0], rates[1]
    finally:
        with psycopg.connect(f"{base} dbname=cadenas", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
        py_default, py_wal, rs_dur = durable(Path(d))
        shared = shared_postgres(Path(d))
    print(
        f"TOTP verification from Python {sys.version.split()[0]}, {os.cpu_count()} cores, median of {REPEATS}"
    )
    print("| what | median | min–max |\n|---|---|---|")
    print(row("pyotp.TOTP.verify (±1 step)", py_mem))
    print(row("cadenas.totp_verify (±1 step)", rs_mem))
    print(
        row("pyotp + sqlite3 replay guard, sqlite3 defaults (rollback journal, synchronous FULL)", py_default)
    )
    print(row("pyotp + sqlite3 replay guard, WAL (synchronous FULL)", py_wal))
    print(row("cadenas.Mfa.verify (WAL, synchronous FULL; throttling, encrypted store)", rs_dur))
    print(f"ratio in memory: {rs_mem[0] / py_mem[0]:.1f}x (target >= 10x)")
    print(
        f"ratio durable: {rs_dur[0] / py_default[0]:.2f}x the sqlite3 defaults, "
        f"{rs_dur[0] / py_wal[0]:.2f}x WAL"
    )
    if shared:
        print(
            f"4 processes, PostgreSQL: pyotp + psycopg {shared[0]:,.0f}/s, cadenas {shared[1]:,.0f}/s "
            f"({shared[1] / shared[0]:.2f}x)"
        )
        record("pyotp_psycopg_4proc_per_s", shared[0])
        record("cadenas_pg_4proc_per_s", shared[1])
    a2 = argon2_ms()
    print(f"argon2-cffi argon2id m=19456,t=2,p=1: {a2:.1f} ms per hash")
    record("pyotp_in_memory_per_s", py_mem[0])
    record("cadenas_in_memory_per_s", rs_mem[0])
    record("pyotp_sqlite_default_guard_per_s", py_default[0])
    record("pyotp_sqlite_guard_per_s", py_wal[0])
    record("cadenas_mfa_verify_per_s", rs_dur[0])
    record("argon2_cffi_ms_per_hash", a2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
