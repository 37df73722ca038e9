"""The Python examples of the README and the user guide, and examples/python/, run against the lab."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyotp
from conftest import ROOT, Lab

import cadenas


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.DOTALL)


def run_blocks(path: Path, lab: Lab, tag: str, tmp_path: Path) -> dict[str, Any]:
    blocks = python_blocks(path)
    assert blocks, path
    user, _ = lab.fresh_user(tag)
    ns: dict[str, Any] = {"CONFIG": str(lab.config), "PASSWORDS": str(tmp_path / f"{tag}.tsv")}
    # the user types the code their app shows for the enrolment just made
    ns["input"] = lambda prompt: pyotp.parse_uri(ns["enrolment"].uri.reveal()).now()
    for block in blocks:
        exec(compile(block.replace("jdupont", user), str(path), "exec"), ns)  # noqa: S102
    return ns


def test_the_readme_and_guide_python_examples_run(openldap: Lab, tmp_path: Path) -> None:
    ns = run_blocks(ROOT / "README.md", openldap, "readme", tmp_path)
    assert ns["report"].done == 1
    ns = run_blocks(ROOT / "docs" / "guide" / "src" / "python.md", openldap, "guide", tmp_path)
    assert ns["report"].done == 1
    assert ns["record"].proof.intact and ns["record"].incident in ns["page"]
    assert ns["verified"].activated
    assert isinstance(ns["auth"], cadenas.Authenticator)


def test_contain_from_csv_example(openldap: Lab, tmp_path: Path) -> None:
    users = openldap.fresh_users(3, "csv")
    export = tmp_path / "alert.csv"
    with export.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time", "user", "src_ip"])
        for u in users:
            w.writerow(["2026-12-01T09:30:00Z", u, "203.0.113.66"])
        w.writerow(["2026-12-01T09:31:00Z", users[0], "203.0.113.66"])  # repeated: once
        w.writerow(["2026-12-01T09:32:00Z", "", "203.0.113.66"])  # blank: skipped
        w.writerow(["2026-12-01T09:33:00Z", "ghost-nobody", "203.0.113.66"])
    pw = tmp_path / "passwords.tsv"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "python" / "contain_from_csv.py"),
            "--config",
            str(openldap.config),
            "--csv",
            str(export),
            "--password-file",
            str(pw),
            "--reason",
            "SIEM 4711",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 6, run.stdout + run.stderr
    assert "3 contained, 1 need attention" in run.stdout
    assert "ghost-nobody: refused (user_not_found)" in run.stdout
    assert sorted(line.split("\t")[0] for line in pw.read_text().splitlines()) == sorted(users)
    for line in pw.read_text().splitlines():
        assert line.split("\t")[1] not in run.stdout + run.stderr
    r = cadenas.Responder.from_config(openldap.config, journal=tmp_path / "other.jsonl")
    assert all(r.status(u).lock.state == "locked" for u in users)
