"""The containment script an Active Directory administrator writes today with python ldap3,
as the same delegated helpdesk account Cadenas uses: for each account, in order — find it,
disable it (userAccountControl | ACCOUNTDISABLE), set a new password with a change required
at next logon (unicodePwd and pwdLastSet: 0 in one modify), add it to the MFA group. Run by
benches/ad.rs on its own fresh users of the same DC, in the same run; prints one JSON line of
timings.

    python benches/contain_ldap3_ad.py SAMBA_LAB_ENV_FILE HELPDESK_PASSWORD_FILE USERS_FILE
"""

from __future__ import annotations

import json
import secrets
import ssl
import sys
import time

import ldap3
from ldap3.utils.conv import escape_filter_chars

ACCOUNTDISABLE = 0x2


def read_env(path: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in open(path, encoding="utf-8"):
        if "=" in line and not line.startswith("#"):
            k, v = line.rstrip("\n").split("=", 1)
            env[k] = v.strip("'\"")
    return env


def main() -> None:
    env = read_env(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        bind_pw = f.read().strip()
    users = [u for u in open(sys.argv[3], encoding="utf-8").read().split() if u]
    tls = ldap3.Tls(ca_certs_file=env["CADENAS_LAB_CA"], validate=ssl.CERT_REQUIRED)
    server = ldap3.Server(env["CADENAS_LAB_AD_LDAPS_URL"], use_ssl=True, tls=tls)
    conn = ldap3.Connection(
        server, env["CADENAS_LAB_AD_HELPDESK_DN"], bind_pw, auto_bind=True, raise_exceptions=True
    )
    start = time.monotonic()
    last_lock = start
    for name in users:
        conn.search(
            env["CADENAS_LAB_AD_PEOPLE"],
            f"(sAMAccountName={escape_filter_chars(name)})",
            attributes=["userAccountControl"],
        )
        entry = conn.entries[0]
        dn = entry.entry_dn
        uac = int(entry.userAccountControl.value)
        conn.modify(dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [str(uac | ACCOUNTDISABLE)])]})
        last_lock = time.monotonic()
        password = f'"{secrets.token_urlsafe(15)}-Aa1"'.encode("utf-16-le")
        conn.modify(
            dn,
            {
                "unicodePwd": [(ldap3.MODIFY_REPLACE, [password])],
                "pwdLastSet": [(ldap3.MODIFY_REPLACE, ["0"])],
            },
        )
        conn.modify(env["CADENAS_LAB_AD_MFA_GROUP"], {"member": [(ldap3.MODIFY_ADD, [dn])]})
    end = time.monotonic()
    conn.unbind()
    # 4 operations per account: search, disable, password + pwdLastSet, group add
    print(
        json.dumps({"all_locked_s": last_lock - start, "all_contained_s": end - start, "ops_per_account": 4})
    )


if __name__ == "__main__":
    main()
