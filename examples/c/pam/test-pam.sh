#!/bin/bash
# pam_cadenas.so under Debian's pamtester, against the real lab, each run under valgrind.
#   test-pam.sh WORK CONFIG TAG VALGRIND...
# Users made by ffi/tests/run-c-tests.sh: ${TAG}mfa (in the MFA group), ${TAG}pp (not),
# ${TAG}pc (contained by examples/c/contain). The service file is written to /etc/pam.d and
# removed at the end; what the module logs is caught on /dev/log.
set -euo pipefail
WORK=$1 CONFIG=$2 TAG=$3; shift 3
VALGRIND=("$@")
PW=$CADENAS_LAB_USER_PW
CLI=${CADENAS_CLI:-$(cd "$(dirname "$0")/../../.." && pwd)/target/debug/cadenas}
SERVICE=cadenas-test-$$
SYSLOG=$WORK/syslog.txt
failed=0

[ -x "$CLI" ] || cargo build -q -p cadenas-cli
[ ! -e /dev/log ] || { echo "/dev/log exists: the test catches the module's log lines there and needs it free" >&2; exit 1; }
python3 - "$SYSLOG" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
with open(sys.argv[1], "a", buffering=1) as out:
    while True:
        out.write(s.recv(65536).decode(errors="replace").rstrip("\n") + "\n")
PY
LOGGER=$!
cleanup() { kill "$LOGGER" 2>/dev/null || true; rm -f /dev/log "/etc/pam.d/$SERVICE" "/etc/pam.d/$SERVICE-one"; }
trap cleanup EXIT
for _ in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done

cat > "/etc/pam.d/$SERVICE" <<PAM
auth required $WORK/pam_cadenas.so config=$CONFIG prompt=Password:
account required pam_permit.so
PAM
cat > "/etc/pam.d/$SERVICE-one" <<PAM
auth required $WORK/pam_cadenas.so config=$CONFIG one_prompt
account required pam_permit.so
PAM

# pam USER SERVICE ANSWERS... -> pamtester's exit status (0: authenticated)
pam() {
  local user=$1 service=$2; shift 2
  printf '%s\n' "$@" | "${VALGRIND[@]}" pamtester "$service" "$user" authenticate >"$WORK/pamtester.out" 2>&1
}
expect() { # expect WANT DESCRIPTION USER SERVICE ANSWERS...
  local want=$1 what=$2 rc=0; shift 2
  pam "$@" || rc=$?
  if [ "$want" = ok ] && [ "$rc" != 0 ]; then
    echo "FAIL: $what: refused (exit $rc)"; cat "$WORK/pamtester.out"; failed=1
  elif [ "$want" = refused ] && [ "$rc" != 1 ]; then
    # pamtester exits 1 on a refusal; 99 is valgrind finding an error
    echo "FAIL: $what: exit $rc, want a refusal (1)"; cat "$WORK/pamtester.out"; failed=1
  else
    echo "ok: $what"
  fi
}

# Enrol the MFA user: the URI from the CLI, codes from oathtool (an independent TOTP).
"$CLI" --config "$CONFIG" mfa enroll "${TAG}mfa" --uri-file "$WORK/mfa.uri" >/dev/null
SECRET=$(sed -n 's/.*secret=\([A-Z2-7]*\).*/\1/p' "$WORK/mfa.uri")
[ -n "$SECRET" ]
now=$(date +%s)
code_at() { oathtool --totp -b "$SECRET" -N "@$1"; }
code_at $((now - 30)) | "$CLI" --config "$CONFIG" mfa verify "${TAG}mfa" >/dev/null # activates (previous step)
CODE=$(code_at "$now")
WRONG=$(printf '%06d' $(( (10#$CODE + 1) % 1000000 )))

echo "== pam_cadenas.so under pamtester (two prompts)"
expect refused "MFA user, right password, wrong code" "${TAG}mfa" "$SERVICE" "$PW" "$WRONG"
expect ok "MFA user, right password, fresh code" "${TAG}mfa" "$SERVICE" "$PW" "$CODE"
expect refused "MFA user, the same code again (replay)" "${TAG}mfa" "$SERVICE" "$PW" "$CODE"
expect refused "MFA user, no code" "${TAG}mfa" "$SERVICE" "$PW" ""
expect refused "MFA user, wrong password, fresh-looking code" "${TAG}mfa" "$SERVICE" "wrong-$PW" "$(code_at $((now + 30)))"
expect ok "user outside the MFA group: password alone" "${TAG}pp" "$SERVICE" "$PW"
expect refused "user outside the MFA group, wrong password" "${TAG}pp" "$SERVICE" "wrong-$PW" ""
expect refused "contained (locked) user, the password they had" "${TAG}pc" "$SERVICE" "$PW" ""
expect refused "contained user, the new password" "${TAG}pc" "$SERVICE" "$(cut -f2 "$WORK/pc.pw")" ""
expect refused "unknown user" "no-such-user-$TAG" "$SERVICE" "$PW" ""
expect refused "user name with filter syntax" "*)(uid=*" "$SERVICE" "$PW" ""
expect refused "user name with a newline and a forged field" $'ch\xc3\xa9p\nevil user=root' "$SERVICE" "$PW" ""

echo "== pam_cadenas.so one_prompt (password+code in one answer, as Dovecot sends)"
# the step after the current one, computed now: the two-prompt tests above can take longer
# than the ±1 step window under valgrind, and the step of $CODE is used already
NEXT=$(code_at $(( $(date +%s) + 30 )))
expect ok "MFA user, password+code" "${TAG}mfa" "$SERVICE-one" "$PW$NEXT"
expect refused "MFA user, the same password+code again (replay)" "${TAG}mfa" "$SERVICE-one" "$PW$NEXT"
expect refused "MFA user, password alone" "${TAG}mfa" "$SERVICE-one" "$PW"
expect ok "user outside the MFA group, password alone" "${TAG}pp" "$SERVICE-one" "$PW"

echo "== what the module logged"
sleep 0.2
cat "$SYSLOG"
# Every refusal logs the same line; nothing says which case it was.
if grep -E 'cadenas' "$SYSLOG" | grep -viE 'authentication failure; user=' | grep -q .; then
  echo "FAIL: the module logged more than 'authentication failure' lines"; failed=1
fi
unknown=$(grep -c "user=no-such-user-$TAG" "$SYSLOG" || true)
wrong=$(grep -c "user=${TAG}pp\$" "$SYSLOG" || true)
[ "$unknown" = 1 ] && [ "$wrong" = 1 ] || { echo "FAIL: want one line for the unknown user ($unknown) and one for the wrong password ($wrong)"; failed=1; }
# a user name from outside never starts a line of its own: escaped on the one line
if grep -q '^evil user=root' "$SYSLOG" || ! grep -qF $'user=ch\xc3\xa9p\\nevil user=root' "$SYSLOG"; then
  echo "FAIL: a user name's newline reached the log as a line of its own"; failed=1
fi
if grep -qF -- "$PW" "$SYSLOG" || grep -qF -- "$CODE" "$SYSLOG"; then
  echo "FAIL: a password or a code reached the log"; failed=1
fi
[ "$failed" = 0 ] && echo "PAM tests: all passed"
exit "$failed"
