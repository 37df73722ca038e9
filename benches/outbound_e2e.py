"""End to end against the lab's real Postfix: an attacker keeps sending on an SMTP session
opened with a stolen password (its own loopback address), `cadenas contain` runs, and we
measure when the attacker's first message is refused, relative to `contain` returning
(negative: before it returned), and how many of the attacker's messages were accepted after
`contain` returned — over N runs (default 20), each on
a fresh account, with `cadenas outbound serve` where the lab Postfix asks.

    CADENAS_BENCH_CLI=target/release/cadenas python benches/outbound_e2e.py [RUNS]

Writes its values to $CADENAS_BENCH_RESULTS (bench ``outbound_e2e``) and prints them.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LAB = Path(os.environ.get("CADENAS_LAB_DIR", "/tmp/cadenas-lab"))
ROOT = Path(__file__).resolve().parents[1]


def env_of(server: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (LAB / server / "lab.env").read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v.strip("'")
    return out


def record(what: str, value: float) -> None:
    path = os.environ.get("CADENAS_BENCH_RESULTS")
    if path:
        line = {"bench": "outbound_e2e", "what": what, "n": 0, "value": value}
        line["repeat"] = os.environ.get("CADENAS_BENCH_REPEAT", "")
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def fresh_user(ldap: dict[str, str], tag: str) -> str:
    uid = f"e2e-{tag}-{os.getpid()}-{time.time_ns() % 10**9}"
    ldif = (
        f"dn: uid={uid},{ldap['CADENAS_LAB_PEOPLE']}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
        f"sn: Bench\nmail: {uid}@example.test\nuserPassword: {ldap['CADENAS_LAB_USER_PW']}\n"
    )
    subprocess.run(
        ["ldapadd", "-x", "-H", ldap["CADENAS_LAB_LDAPS_URL"], "-D", ldap["CADENAS_LAB_ADMIN_DN"], "-w"]
        + [ldap["CADENAS_LAB_ADMIN_PW"]],
        input=ldif.encode(),
        check=True,
        capture_output=True,
        env={**os.environ, "LDAPTLS_CACERT": ldap["CADENAS_LAB_CA"]},
    )
    return uid


class Attacker(threading.Thread):
    """Sends messages back to back on one authenticated session; records each one's start,
    end and whether Postfix accepted it."""

    def __init__(self, source: str, user: str, password: str, smtp_env: dict[str, str], ca: str) -> None:
        super().__init__(daemon=True)
        host, port = smtp_env["CADENAS_LAB_SMTP_STARTTLS"].split(":")
        self.s = smtplib.SMTP(host, int(port), source_address=(source, 0))
        self.s.starttls(context=ssl.create_default_context(cafile=ca))
        self.s.login(user, password)
        self.sends: list[tuple[float, float, bool]] = []
        self.stop = threading.Event()
        self.sent_one = threading.Event()
        self.queued: list[str] = []

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                self.s.sendmail("ceo@bank.test", [f"t{i}@e2e-target.test"], "Subject: x\r\n\r\nclick\r\n")
                ok = True
            except smtplib.SMTPException:
                ok = False
            self.sends.append((t0, time.monotonic(), ok))
            self.sent_one.set()
            i += 1
        try:
            self.s.quit()
        except smtplib.SMTPException:
            pass


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    cli = os.environ.get("CADENAS_BENCH_CLI", str(ROOT / "target/release/cadenas"))
    ldap, dovecot, smtp = env_of("openldap"), env_of("dovecot"), env_of("smtp")
    work = Path(tempfile.mkdtemp(prefix="cadenas-e2e-"))
    base = Path(ldap["CADENAS_LAB_CONFIG"]).read_text()
    base = "\n".join(
        f'path = "{work / "journal.jsonl"}"' if line.startswith("path = ") else line
        for line in base.splitlines()
    )
    config = work / "cadenas.toml"
    config.write_text(
        base
        + "\n"
        + Path(dovecot["CADENAS_LAB_REVOKERS"]).read_text()
        + "\n"
        + Path(smtp["CADENAS_LAB_OUTBOUND_CONFIG"]).read_text()
    )
    service = subprocess.Popen(
        [cli, "--config", str(config), "outbound", "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    refused_ms: list[float] = []
    accepted_after: list[int] = []
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                host, port = smtp["CADENAS_LAB_POLICY"].split(":")
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        for i in range(runs):
            user = fresh_user(ldap, str(i))
            a = Attacker(
                f"127.0.1.{10 + i % 200}", user, ldap["CADENAS_LAB_USER_PW"], smtp, ldap["CADENAS_LAB_CA"]
            )
            a.start()
            a.sent_one.wait(10)
            out = subprocess.run(
                [cli, "--config", str(config), "contain", user, "--password-file", str(work / f"pw{i}.tsv")],
                capture_output=True,
            )
            returned = time.monotonic()
            assert out.returncode == 0, out.stdout + out.stderr
            time.sleep(1.5)
            a.stop.set()
            a.join(10)
            # the attacker's first refused message, relative to contain returning (negative:
            # refused before it returned — the revoke step waits for the service to refuse)
            refusals = [s for s in a.sends if not s[2]]
            refused_ms.append((refusals[0][1] - returned) * 1000 if refusals else float("inf"))
            accepted_after.append(sum(1 for s in a.sends if s[2] and s[1] > returned))
            print(
                f"run {i + 1}: first message refused {refused_ms[-1]:+.1f} ms from contain returning; "
                f"accepted after contain returned: {accepted_after[-1]} (of {len(a.sends)} sent)"
            )
            record("next_refused_ms", refused_ms[-1])
            record("accepted_after", accepted_after[-1])
    finally:
        service.terminate()
        service.wait(10)
        # the lab keeps outside mail queued: remove this run's
        subprocess.run(
            ["postsuper", "-c", smtp["CADENAS_LAB_SMTP_CONFIG_DIR"], "-d", "ALL", "deferred"],
            capture_output=True,
        )
    worst = max(refused_ms)
    print(
        f"{runs} runs: first message refused {sorted(refused_ms)[len(refused_ms) // 2]:+.1f} ms from contain "
        f"returning (median), {worst:+.1f} ms (latest); accepted after contain returned: "
        f"{sum(accepted_after)} in total"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
