#!/usr/bin/env python3
"""Checks the documentation so it cannot rot (run by `make guide`, hence `make test`):

- every relative link of README.md, CHANGELOG.md, docs/*.md and the user guide's chapters
  leads to a file that exists, and every `#anchor` to a heading of that file;
- every `{{#include …}}` of the guide names a file that exists;
- the guide's SUMMARY.md lists every chapter, and every chapter is listed;
- every field of the configuration types (from core/public-api.txt, the pinned public API)
  is named in the configuration reference (docs/guide/src/configuration.md).

Prints one line per problem and exits 1 when there is any.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide" / "src"

# The configuration types and the section (or table) each is read from.
CONFIG_TYPES = {
    "cadenas::Config": "",
    "cadenas::directory::DirectoryConfig": "directory",
    "cadenas::journal::JournalConfig": "journal",
    "cadenas::password::PasswordPolicy": "password",
    "cadenas::mfa::MfaConfig": "mfa",
    "cadenas::session::DovecotConfig": "revokers",
    "cadenas::session::WebhookConfig": "revokers",
    "cadenas::session::CommandConfig": "revokers",
    "cadenas::investigate::MailConfig": "mail",
    "cadenas::outbound::OutboundConfig": "outbound",
    "cadenas::outbound::LimitConfig": "outbound.limits",
    "cadenas::outbound::AutoContainConfig": "outbound.auto_contain",
    "cadenas::postfix::PostfixConfig": "postfix",
    "cadenas::notify::NotifyConfig": "notify",
    "cadenas::notify::SmtpChannel": "notify",
    "cadenas::notify::WebhookChannel": "notify",
    "cadenas::notify::CommandChannel": "notify",
    "cadenas::preflight::CanaryConfig": "canary",
    "cadenas::watch::WatchConfig": "watch",
    "cadenas::watch::AutoContain": "watch.auto_contain",
}

# Public fields that are not a key of their own in the file, and what stands for them.
NOT_KEYS = {
    "cadenas::notify::NotifyConfig::channel": "type = …",
    "cadenas::notify::SmtpChannel::login": "username = … with password_file = …",
}


def code_free(text: str) -> str:
    """The text with fenced code blocks and inline code removed (links there are examples)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """The anchor GitHub and mdBook give a heading."""
    h = re.sub(r"[`*_\[\]()]", "", heading.strip().lower())
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.DOTALL | re.MULTILINE)
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)}


def check_links(files: list[Path]) -> list[str]:
    problems = []
    for f in files:
        for m in re.finditer(r"\[[^\]]*\]\(([^)\s]+)\)", code_free(f.read_text())):
            target = m.group(1)
            if re.match(r"^[a-z]+:", target):
                continue
            path_part, _, anchor = target.partition("#")
            dest = f if not path_part else (f.parent / path_part).resolve()
            where = f"{f.relative_to(ROOT)}: link {target}"
            if not dest.exists():
                problems.append(f"{where}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{where}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    return problems


def check_guide() -> list[str]:
    problems = []
    summary = (GUIDE / "SUMMARY.md").read_text()
    listed = set(re.findall(r"\]\(([^)]+\.md)\)", summary))
    chapters = {p.name for p in GUIDE.glob("*.md")} - {"SUMMARY.md"}
    for c in sorted(chapters - listed):
        problems.append(f"docs/guide/src/{c}: not in SUMMARY.md")
    for c in sorted(listed - chapters):
        problems.append(f"docs/guide/src/SUMMARY.md: {c} does not exist")
    for f in GUIDE.glob("*.md"):
        for inc in re.findall(r"\{\{#include ([^}\s]+)\}\}", f.read_text()):
            if not (f.parent / inc).exists():
                problems.append(f"{f.relative_to(ROOT)}: include {inc}: no such file")
    return problems


def check_config_reference() -> list[str]:
    api = (ROOT / "core" / "public-api.txt").read_text()
    reference = (GUIDE / "configuration.md").read_text()
    toml = "\n".join(re.findall(r"```toml\n(.*?)```", reference, re.DOTALL))
    problems = []
    for ty, section in CONFIG_TYPES.items():
        fields = re.findall(rf"^  field {re.escape(ty)}::(\w+):", api, re.MULTILINE)
        if not fields:
            problems.append(f"core/public-api.txt: no fields for {ty} (renamed? update tools/check_docs.py)")
        for field in fields:
            if f"{ty}::{field}" in NOT_KEYS:
                continue
            as_key = re.search(rf"(^|[\s#,;{{]){field}\s*=", toml, re.MULTILINE)
            as_table = re.search(rf"^#?\s*\[\[?([\w.]+\.)?{field}\]\]?", toml, re.MULTILINE)
            if not (as_key or as_table):
                name = f"[{section}] {field}" if section else f"[{field}]"
                problems.append(f"docs/guide/src/configuration.md: {name} ({ty}) is not in the reference")
    return problems


def main() -> int:
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md"]
    files += sorted((ROOT / "docs").glob("*.md")) + sorted(GUIDE.glob("*.md"))
    problems = check_links(files) + check_guide() + check_config_reference()
    for p in problems:
        print(p)
    if problems:
        print(f"check_docs: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_docs: {len(files)} files, links, chapters and the configuration reference ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
