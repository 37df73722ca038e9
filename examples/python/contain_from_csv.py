#!/usr/bin/env python3
"""Contain every account listed in a CSV exported from a SIEM alert.

The CSV needs a ``user`` column (any other column is ignored; blank and repeated users are
skipped). New passwords go to a new 0600 hand-over file, never to the screen. A progress bar
is drawn on stderr (tqdm's when it is installed), and the summary lists what needs attention.

    python3 contain_from_csv.py --config /etc/cadenas/cadenas.toml \\
        --csv alert-4711.csv --password-file /root/incident/passwords.tsv

Exit code: 0 all contained, 6 some need attention, 5 nobody could be contained, 2 bad input.
Ctrl-C stops at a step boundary; run ``cadenas contain --resume JOURNAL`` (or this script's
``--resume``) to finish.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import cadenas


def users_from_csv(path: Path) -> List[str]:
    """The distinct non-empty values of the ``user`` column, in file order."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "user" not in reader.fieldnames:
            raise SystemExit(f"{path}: no 'user' column (columns: {reader.fieldnames})")
        seen: List[str] = []
        for row in reader:
            u = (row.get("user") or "").strip()
            if u and u not in seen:
                seen.append(u)
        return seen


def progress_bar(total: int) -> Callable[[cadenas.Progress], None]:
    """tqdm when installed, else a plain one-line bar on stderr."""
    try:
        from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

        bar: Any = tqdm(total=total, unit="account", file=sys.stderr)

        def with_tqdm(p: cadenas.Progress) -> None:
            bar.update(1)
            bar.set_postfix(failed=p.failed)
            if p.finished == p.total:
                bar.close()

        return with_tqdm
    except ImportError:

        def plain(p: cadenas.Progress) -> None:
            width = 30
            filled = width * p.finished // max(p.total, 1)
            end = "\n" if p.finished == p.total else ""
            print(
                f"\r[{'#' * filled}{' ' * (width - filled)}] {p.finished}/{p.total} ({p.failed} failed)",
                end=end,
                file=sys.stderr,
                flush=True,
            )

        return plain


def summary(report: cadenas.ContainReport) -> None:
    print(f"incident {report.incident}: {report.done} contained, {report.failed} need attention")
    for u in report.needs_attention():
        if u.refused is not None:
            print(f"  {u.user}: refused ({u.refused.kind}): {u.refused.message}")
            continue
        for s in u.steps:
            if s.status is cadenas.StepStatus.FAILED:
                why = s.detail.error.message if s.detail.error else s.detail.note
                print(f"  {u.user}: {s.step.value} FAILED: {why}")
        if u.interrupted:
            print(f"  {u.user}: interrupted, resume the run to finish")
    for u in report.users:
        for s in u.steps:
            for r in s.detail.revocations:
                if r.collateral:
                    print(f"  {u.user}: {r.revoker} also disconnected {', '.join(r.collateral)}")
    for n in report.not_revoked:
        print(f"not revoked: {n}")
    print(f"new passwords: {report.password_handover}; journal {report.journal} (head {report.journal_head})")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, type=Path)
    ap.add_argument("--csv", type=Path, help="the SIEM export (a 'user' column)")
    ap.add_argument("--password-file", required=True, type=Path, help="new 0600 hand-over file")
    ap.add_argument("--reason", help="alert or ticket reference, journaled")
    ap.add_argument("--resume", action="store_true", help="finish the last interrupted run")
    args = ap.parse_args(argv)

    responder = cadenas.Responder.from_config(args.config)
    if args.resume:
        report = responder.resume(password_file=args.password_file)
    else:
        if args.csv is None:
            ap.error("--csv is required unless --resume")
        users = users_from_csv(args.csv)
        if not users:
            print(f"{args.csv}: no users", file=sys.stderr)
            return 2
        report = responder.contain(
            users,
            password_file=args.password_file,
            progress=progress_bar(len(users)),
            reason=args.reason,
        )
    summary(report)
    if report.failed == 0:
        return 0
    return 5 if report.done == 0 else 6


if __name__ == "__main__":
    sys.exit(main())
