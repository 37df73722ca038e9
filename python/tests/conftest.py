"""Fixtures for the lab's real servers (started by ``lab/up.sh``; a missing lab is a failure,
not a skip). Users are made fresh per test with ``ldapadd`` as the lab's administrator."""

from __future__ import annotations

import base64
import itertools
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LAB = Path(os.environ.get("CADENAS_LAB_DIR", "/tmp/cadenas-lab"))
ROOT = Path(__file__).resolve().parents[2]
_counter = itertools.count()


def read_env(rel: str) -> dict[str, str]:
    path = LAB / rel
    assert path.exists(), f"{path} is missing: start the lab with `bash lab/up.sh`"
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip().strip("'\"")
    return env


def ldap(cmd: str, url: str, ca: str, who: str, password: str, ldif: str) -> None:
    subprocess.run(
        [cmd, "-x", "-H", url, "-D", who, "-w", password],
        input=ldif.encode(),
        check=True,
        capture_output=True,
        env={**os.environ, "LDAPTLS_CACERT": ca, "LDAPTLS_REQCERT": "demand"},
    )


def unique(tag: str) -> str:
    return f"p{tag}{os.getpid() % 100000:05d}{next(_counter):03d}{time.time_ns() % 1000:03d}"


@dataclass
class Lab:
    """One directory of the lab and a Cadenas config for it with a journal and an MFA store
    of the test's own."""

    env: dict[str, str]
    config: Path
    journal: Path
    flavour: str

    def fresh_user(self, tag: str = "u") -> tuple[str, str]:
        """Adds an enabled user with the lab password; returns (login, dn)."""
        e = self.env
        if self.flavour == "openldap":
            uid = unique(tag)
            dn = f"uid={uid},{e['CADENAS_LAB_PEOPLE']}"
            ldif = (
                f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: Test\n"
                f"mail: {uid}@example.test\nuserPassword: {e['CADENAS_LAB_USER_PW']}\n"
            )
            self.add_openldap(ldif)
            return uid, dn
        sam = unique(tag)[:20]
        dn = f"CN={sam},{e['CADENAS_LAB_AD_PEOPLE']}"
        pwd = base64.b64encode(f'"{e["CADENAS_LAB_AD_USER_PW"]}"'.encode("utf-16-le")).decode()
        ldif = (
            f"dn: {dn}\nobjectClass: user\nsAMAccountName: {sam}\nuserPrincipalName: {sam}@example.test\n"
            f"mail: {sam}@example.test\nunicodePwd:: {pwd}\nuserAccountControl: 512\n"
        )
        ldap(
            "ldapadd",
            e["CADENAS_LAB_AD_LDAPS_URL"],
            e["CADENAS_LAB_CA"],
            e["CADENAS_LAB_AD_ADMIN"],
            e["CADENAS_LAB_AD_ADMIN_PW"],
            ldif,
        )
        return sam, dn

    def fresh_users(self, n: int, tag: str = "b") -> list[str]:
        return [self.fresh_user(tag)[0] for _ in range(n)]

    def fresh_users_without_password(self, n: int, tag: str = "n") -> list[str]:
        """Adds ``n`` OpenLDAP users in one ``ldapadd``, without a password (nobody can bind as
        them; the server hashes none): for runs of thousands of accounts that only lock."""
        e = self.env
        assert self.flavour == "openldap"
        prefix = unique(tag)
        uids = [f"{prefix}x{i:05d}" for i in range(n)]
        ldif = "".join(
            f"dn: uid={uid},{e['CADENAS_LAB_PEOPLE']}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn: {uid}\nsn: Test\n\n"
            for uid in uids
        )
        self.add_openldap(ldif)
        return uids

    def add_openldap(self, ldif: str) -> None:
        """``ldapadd`` of ``ldif`` on the lab OpenLDAP, as its administrator."""
        e = self.env
        ldap(
            "ldapadd",
            e["CADENAS_LAB_LDAPS_URL"],
            e["CADENAS_LAB_CA"],
            e["CADENAS_LAB_ADMIN_DN"],
            e["CADENAS_LAB_ADMIN_PW"],
            ldif,
        )

    @property
    def user_password(self) -> str:
        return self.env["CADENAS_LAB_USER_PW" if self.flavour == "openldap" else "CADENAS_LAB_AD_USER_PW"]


def lab_config(source: Path, tmp: Path) -> tuple[Path, Path]:
    """The lab's config with this test's own journal and MFA store."""
    text = source.read_text()
    journal = tmp / "journal.jsonl"
    text = re.sub(r'(?m)^(\[journal\]\s*\npath\s*=\s*)".*"', lambda m: f'{m.group(1)}"{journal}"', text)
    text = re.sub(r'(?m)^database\s*=\s*".*"', f'database = "{tmp / "mfa.db"}"', text)
    text = re.sub(r'(?m)^key_file\s*=\s*".*"', f'key_file = "{tmp / "mfa.key"}"', text)
    if "[journal]" not in text:
        text += f'\n[journal]\npath = "{journal}"\n'
    if "[mfa]" not in text:
        text += f'\n[mfa]\ndatabase = "{tmp / "mfa.db"}"\nkey_file = "{tmp / "mfa.key"}"\n'
    path = tmp / "cadenas.toml"
    path.write_text(text)
    return path, journal


@pytest.fixture
def openldap(tmp_path: Path) -> Iterator[Lab]:
    env = read_env("openldap/lab.env")
    cfg, journal = lab_config(Path(env["CADENAS_LAB_CONFIG"]), tmp_path)
    yield Lab(env, cfg, journal, "openldap")


@pytest.fixture
def ad(tmp_path: Path) -> Iterator[Lab]:
    env = read_env("samba/lab.env")
    cfg, journal = lab_config(Path(env["CADENAS_LAB_AD_CONFIG"]), tmp_path)
    yield Lab(env, cfg, journal, "ad")


@pytest.fixture(params=["openldap", "ad"])
def directory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    if request.param == "openldap":
        env = read_env("openldap/lab.env")
        cfg, journal = lab_config(Path(env["CADENAS_LAB_CONFIG"]), tmp_path)
    else:
        env = read_env("samba/lab.env")
        cfg, journal = lab_config(Path(env["CADENAS_LAB_AD_CONFIG"]), tmp_path)
    yield Lab(env, cfg, journal, request.param)


@pytest.fixture
def mail(tmp_path: Path) -> Iterator[Lab]:
    """The OpenLDAP lab with the lab Dovecot as revoker and its ``[mail]`` section."""
    env = read_env("openldap/lab.env")
    env.update(read_env("dovecot/lab.env"))
    base = tmp_path / "base.toml"
    base.write_text(
        Path(env["CADENAS_LAB_CONFIG"]).read_text() + "\n" + Path(env["CADENAS_LAB_REVOKERS"]).read_text()
    )
    cfg, journal = lab_config(base, tmp_path)
    yield Lab(env, cfg, journal, "openldap")


def psql(sql: str, db: str = "cadenas") -> None:
    """Runs SQL on the lab PostgreSQL as the ``cadenas`` role (TLS, the lab CA)."""
    e = read_env("postgres/lab.env")
    subprocess.run(
        [
            "psql",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            f"host=127.0.0.1 port={e['CADENAS_LAB_PG_PORT']} user=cadenas dbname={db} "
            f"sslmode=verify-full sslrootcert={e['CADENAS_LAB_PG_CA']}",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PGPASSWORD": Path(e["CADENAS_LAB_PG_PASSWORD_FILE"]).read_text().strip()},
    )


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Lab]:
    """The OpenLDAP lab with the MFA store and the journal in a fresh database of the lab's
    PostgreSQL (as several hosts would share them)."""
    env = read_env("openldap/lab.env")
    pg = read_env("postgres/lab.env")
    db = f"cadenas_py_{unique('pg')}"
    psql(f'CREATE DATABASE "{db}"')
    url = pg["CADENAS_LAB_PG_URL"].rsplit("/", 1)[0] + "/" + db
    keys = (
        f'database = "{url}"\ndatabase_password_file = "{pg["CADENAS_LAB_PG_PASSWORD_FILE"]}"\n'
        f'database_ca_file = "{pg["CADENAS_LAB_PG_CA"]}"\n'
    )
    text = Path(env["CADENAS_LAB_CONFIG"]).read_text()
    text = re.sub(r"(?ms)^\[(journal|mfa)\]\n.*?(?=^\[|\Z)", "", text)
    text += f'\n[journal]\n{keys}\n[mfa]\n{keys}key_file = "{tmp_path / "mfa.key"}"\n'
    cfg = tmp_path / "cadenas.toml"
    cfg.write_text(text)
    yield Lab(env, cfg, tmp_path / "no-journal-file", "openldap")
    psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
