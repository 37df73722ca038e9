#!/bin/bash
# pam_cadenas.so behind Dovecot's PAM passdb (one_prompt: Dovecot answers every hidden prompt
# with the IMAP password, so "password+code" comes in one string), IMAP logins from Python's
# imaplib. Two instances show why the passdb must not be cached:
#   nocache (127.0.0.1:10146): passdb pam without cache_key -> a replayed password+code is refused
#   cache   (127.0.0.1:10147): passdb pam with cache_key=%u%s -> the replay is answered from
#                              Dovecot's auth cache, never reaching the replay guard (the hazard
#                              the README warns about)
#   test-dovecot-pam.sh WORK CONFIG TAG
set -euo pipefail
WORK=$1 CONFIG=$2 TAG=$3
PW=$CADENAS_LAB_USER_PW
CLI=${CADENAS_CLI:-$(cd "$(dirname "$0")/../../.." && pwd)/target/debug/cadenas}
USER_MFA=${TAG}dov
failed=0
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -f "/etc/pam.d/dovecot-cadenas-$$"
}
trap cleanup EXIT

cat > "/etc/pam.d/dovecot-cadenas-$$" <<PAM
auth required $WORK/pam_cadenas.so config=$CONFIG one_prompt
account required pam_permit.so
PAM

# instance NAME PORT CACHE_KEY_ARG
instance() {
  local name=$1 port=$2 cache=$3 dir=$WORK/dovecot-$1
  rm -rf "$dir"; mkdir -p "$dir/run" "$dir/state" "$dir/mail"; chown vmail:vmail "$dir/mail"
  cat > "$dir/dovecot.conf" <<CONF
base_dir = $dir/run
state_dir = $dir/state
instance_name = cadenas-pam-$name-$$
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = $dir/dovecot.log
mail_location = maildir:~/Maildir
first_valid_uid = 100
auth_cache_size = 1M
auth_cache_ttl = 1 hours
auth_failure_delay = 0
passdb {
  driver = pam
  args = $cache dovecot-cadenas-$$
}
userdb {
  driver = static
  args = uid=vmail gid=vmail home=$dir/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
service doveadm {
  inet_listener http {
    port = 0
  }
}
CONF
  setsid dovecot -c "$dir/dovecot.conf" -F > "$dir/stdout" 2>&1 < /dev/null &
  PIDS+=($!)
  for _ in $(seq 100); do ss -ltn | grep -q "127.0.0.1:$port " && return 0; sleep 0.1; done
  cat "$dir/stdout" "$dir/dovecot.log" >&2 || true
  echo "dovecot $name did not start" >&2; exit 1
}
instance nocache 10146 ""
instance cache 10147 "cache_key=%u%s"

imap_login() { # imap_login PORT USER PASSWORD -> 0 if logged in
  python3 - "$@" <<'PY'
import imaplib, sys
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = imaplib.IMAP4("127.0.0.1", port)
try:
    m.login(user, password)
except imaplib.IMAP4.error:
    sys.exit(1)
m.logout()
PY
}
expect() { # expect ok|refused WHAT PORT USER PASSWORD
  local want=$1 what=$2 rc=0; shift 2
  imap_login "$@" || rc=$?
  if { [ "$want" = ok ] && [ "$rc" = 0 ]; } || { [ "$want" = refused ] && [ "$rc" = 1 ]; }; then
    echo "ok: $what"
  else
    echo "FAIL: $what (exit $rc)"; failed=1
  fi
}

"$CLI" --config "$CONFIG" mfa enroll "$USER_MFA" --uri-file "$WORK/dov.uri" >/dev/null
SECRET=$(sed -n 's/.*secret=\([A-Z2-7]*\).*/\1/p' "$WORK/dov.uri")
now=$(date +%s)
code_at() { oathtool --totp -b "$SECRET" -N "@$1"; }
code_at $((now - 30)) | "$CLI" --config "$CONFIG" mfa verify "$USER_MFA" >/dev/null

echo "== Dovecot's PAM passdb with pam_cadenas.so"
C1=$(code_at "$now")
expect refused "IMAP, password without code" 10146 "$USER_MFA" "$PW"
expect ok "IMAP, password+code (passdb not cached)" 10146 "$USER_MFA" "$PW$C1"
expect refused "IMAP, the same password+code replayed (passdb not cached)" 10146 "$USER_MFA" "$PW$C1"
C2=$(code_at $((now + 30)))
expect ok "IMAP, password+next code (passdb cached)" 10147 "$USER_MFA" "$PW$C2"
expect ok "IMAP, the same password+code replayed, answered by Dovecot's cache (the hazard)" 10147 "$USER_MFA" "$PW$C2"
exit "$failed"
