#!/bin/bash
# Starts the whole lab and writes one Cadenas config for it: $CADENAS_LAB_DIR/cadenas.toml
#   lab/up.sh [NUSERS]      OpenLDAP (NUSERS users, default 300) + Dovecot + Postfix + PostgreSQL
#                           + Samba AD DC
#                           (the syncrepl replica: lab/openldap.sh replica)
#                           (CADENAS_LAB_SAMBA=0 skips Samba)
#   lab/up.sh down          stops everything
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
if [ "${1:-}" = down ]; then
  bash "$HERE/postgres.sh" stop; bash "$HERE/smtp.sh" stop; bash "$HERE/dovecot.sh" stop; bash "$HERE/openldap.sh" stop; bash "$HERE/samba.sh" stop
  exit 0
fi
bash "$HERE/openldap.sh" start "${1:-300}"
bash "$HERE/dovecot.sh" start
bash "$HERE/smtp.sh" start
bash "$HERE/postgres.sh" start
[ "${CADENAS_LAB_SAMBA:-1}" = 1 ] && bash "$HERE/samba.sh" start "${CADENAS_LAB_AD_USERS:-50}"
cat "$LAB/openldap/cadenas.toml" "$LAB/dovecot/revokers.toml" "$LAB/smtp/notify.toml" > "$LAB/cadenas.toml"
lap "lab ready; config with every server: $LAB/cadenas.toml"
