"""The containment script a sysadmin writes today with python ldap3: for each account, in
order — find it, lock it, reset it (RFC 3062), lock it again with a forced change (ppolicy
drops the lock on a password set), add it to the MFA group. Run by benches/contain.rs on its
own fresh users of the same server, in the same run; prints one JSON line of timings.

    python benches/contain_ldap3.py LAB_ENV_FILE USERS_FILE
"""

from __future__ import annotations

import json
import secrets
import ssl
import sys
import time

import ldap3
from ldap3.utils.conv import escape_filter_chars


def read_env(path: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in open(path, encoding="utf-8"):
        if "=" in line and not line.startswith("#"):
            k, v = line.rstrip("\n").split("=", 1)
            env[k] = v.strip("'\"")
    return env


def main() -> None:
    env = read_env(sys.argv[1])
    users = [u for u in open(sys.argv[2], encoding="utf-8").read().split() if u]
    with open(env["CADENAS_LAB_RESPONDER_PW_FILE"], encoding="utf-8") as f:
        bind_pw = f.read().strip()
    tls = ldap3.Tls(ca_certs_file=env["CADENAS_LAB_CA"], validate=ssl.CERT_REQUIRED)
    server = ldap3.Server(env["CADENAS_LAB_LDAPS_URL"], use_ssl=True, tls=tls)
    conn = ldap3.Connection(
        server, env["CADENAS_LAB_RESPONDER_DN"], bind_pw, auto_bind=True, raise_exceptions=True
    )
    lock = {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, ["000001010000Z"])]}
    start = time.monotonic()
    last_lock = start
    for uid in users:
        conn.search(env["CADENAS_LAB_PEOPLE"], f"(uid={escape_filter_chars(uid)})", attributes=["1.1"])
        dn = conn.entries[0].entry_dn
        conn.modify(dn, lock)
        last_lock = time.monotonic()
        conn.extend.standard.modify_password(dn, new_password=secrets.token_urlsafe(15))
        conn.modify(
            dn,
            {
                "pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, ["000001010000Z"])],
                "pwdReset": [(ldap3.MODIFY_REPLACE, ["TRUE"])],
            },
        )
        conn.modify(env["CADENAS_LAB_MFA_GROUP"], {"member": [(ldap3.MODIFY_ADD, [dn])]})
    end = time.monotonic()
    conn.unbind()
    # 5 operations per account: search, lock, password modify, re-lock + pwdReset, group add
    print(
        json.dumps({"all_locked_s": last_lock - start, "all_contained_s": end - start, "ops_per_account": 5})
    )


if __name__ == "__main__":
    main()
