#!/bin/bash
# A demo incident against the lab: a stolen password, then one `cadenas contain`.
#   bash lab/demo.sh path/to/cadenas
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CADENAS=${1:-cadenas}
set -a; . "$LAB/openldap/lab.env"; set +a
export LDAPTLS_CACERT=$CADENAS_LAB_CA
VICTIM=user0042
VICTIM_DN=uid=$VICTIM,$CADENAS_LAB_PEOPLE
OUT=$LAB/demo; rm -rf "$OUT"; mkdir -p "$OUT"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
can_login() {
  if ldapsearch -x -H "$CADENAS_LAB_LDAPS_URL" -D "$VICTIM_DN" -w "$1" -b "$VICTIM_DN" -s base 1.1 >/dev/null 2>&1; then
    echo "   -> login with the $2 password: WORKS"; else echo "   -> login with the $2 password: refused"; fi
}

say "Holiday morning: $VICTIM's password was keylogged. The attacker logs in with it."
can_login "$CADENAS_LAB_USER_PW" "stolen"

say "On-call sysadmin: what does the account look like?"
"$CADENAS" --config "$CADENAS_LAB_CONFIG" status "$VICTIM"

say "Contain it: lock, reset to a random password with forced change, require MFA"
"$CADENAS" --config "$CADENAS_LAB_CONFIG" contain "$VICTIM" --password-file "$OUT/$VICTIM.pw"
ls -l "$OUT/$VICTIM.pw"

say "The attacker tries again"
can_login "$CADENAS_LAB_USER_PW" "stolen"

say "After containment"
"$CADENAS" --config "$CADENAS_LAB_CONFIG" status "$VICTIM"
echo
echo "The new password is in $OUT/$VICTIM.pw (0600), to hand to $VICTIM once their identity is proven."
