#!/bin/bash
# A demo incident against the lab: an attacker reads mail with a stolen password, then one
# `cadenas contain` takes them out.      bash lab/demo.sh path/to/cadenas
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CADENAS=${1:-cadenas}
set -a; . "$LAB/openldap/lab.env"; . "$LAB/dovecot/lab.env"; set +a
CONFIG=$LAB/cadenas.toml
VICTIM=user0042
OUT=$LAB/demo; rm -rf "$OUT"; mkdir -p "$OUT"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The attacker: logs in over IMAP with the stolen password and idles, like a mail client.
python3 - "$VICTIM" "$CADENAS_LAB_USER_PW" > "$OUT/attacker.log" 2>&1 <<'PY' &
import imaplib, sys, time
m = imaplib.IMAP4("127.0.0.1", 10143)
m.login(sys.argv[1], sys.argv[2]); m.select("INBOX")
print("attacker: logged in as", sys.argv[1], flush=True)
tag = m._new_tag().decode(); m.send(f"{tag} IDLE\r\n".encode()); m.readline()
line = m.readline()
print("attacker: server said:", line.decode().strip() or "(connection closed)", flush=True)
PY
ATTACKER=$!
for _ in $(seq 50); do grep -q "logged in" "$OUT/attacker.log" 2>/dev/null && break; sleep 0.1; done

say "Holiday morning: $VICTIM's password was keylogged. The attacker is reading mail over IMAP:"
cat "$OUT/attacker.log"

say "On-call sysadmin: what does the account look like?"
"$CADENAS" --config "$CONFIG" status "$VICTIM"

say "Dry run first: what would containment change?"
"$CADENAS" --config "$CONFIG" plan "$VICTIM"

say "Contain it: lock, reset (forced change), revoke sessions (Dovecot cache flush + kick), require MFA"
"$CADENAS" --config "$CONFIG" contain "$VICTIM" --password-file "$OUT/$VICTIM.pw"
ls -l "$OUT/$VICTIM.pw"

say "The attacker's session:"
wait "$ATTACKER" || true
cat "$OUT/attacker.log"

say "The attacker tries the stolen password again:"
python3 - "$VICTIM" "$CADENAS_LAB_USER_PW" <<'PY' || true
import imaplib, sys
try:
    imaplib.IMAP4("127.0.0.1", 10143).login(sys.argv[1], sys.argv[2]); print("   -> IMAP login: WORKS")
except imaplib.IMAP4.error as e:
    print("   -> IMAP login: refused (%s)" % e)
PY

say "After containment"
"$CADENAS" --config "$CONFIG" status "$VICTIM"

say "The journal: every step, hash-chained"
"$CADENAS" --config "$CONFIG" journal show | tail -12
"$CADENAS" --config "$CONFIG" journal verify

say "Days later: $VICTIM proves their identity at the helpdesk and enrols a new TOTP device"
"$CADENAS" --config "$CONFIG" mfa enroll "$VICTIM" --uri-file "$OUT/$VICTIM.otpauth"
# (the authenticator app, simulated: RFC 6238 with the secret from the QR code)
python3 - "$OUT/$VICTIM.otpauth" <<'PY' | "$CADENAS" --config "$CONFIG" mfa verify "$VICTIM"
import base64, hmac, struct, sys, time, urllib.parse
q = urllib.parse.parse_qs(urllib.parse.urlparse(open(sys.argv[1]).read().strip()).query)
key = base64.b32decode(q["secret"][0] + "=" * (-len(q["secret"][0]) % 8))
mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), "sha1").digest()
o = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000))
PY

say "Release: the account's original flags come back; the new password (must change) and MFA stay"
"$CADENAS" --config "$CONFIG" release "$VICTIM"
"$CADENAS" --config "$CONFIG" status "$VICTIM"
echo
echo "The new password is in $OUT/$VICTIM.pw (0600), handed to $VICTIM; they must change it at first login."
