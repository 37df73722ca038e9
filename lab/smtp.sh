#!/bin/bash
# A real MTA on loopback for notification tests: Postfix (Debian's `postfix`) as its own
# instance under $CADENAS_LAB_DIR/smtp, taking mail only over TLS (certificate from the lab CA)
# from clients that logged in (SMTP AUTH, checked by the lab Dovecot's SASL service), for
# example.test, and delivering it over LMTP into the lab's Dovecot (dedicated instance), where
# a test reads it back over IMAP.
#
#   lab/smtp.sh start    (needs lab/dovecot.sh start first)
#                          submission, STARTTLS required: 127.0.0.1:10587
#                          implicit TLS (smtps):          127.0.0.1:10465
#                          login: CADENAS_LAB_SMTP_USER / CADENAS_LAB_SMTP_PASSWORD_FILE (dovecot/lab.env)
#   lab/smtp.sh stop | status
#
# Postfix asks the outbound policy service at 127.0.0.1:10040 (cadenas outbound serve, started
# by the tests that need it; DUNNO while none listens) at every RCPT and end of message, and
# keeps mail for outside domains in its queue (defer_transports = smtp).
#
# Writes $CADENAS_LAB_DIR/smtp/{etc/main.cf,etc/master.cf,postfix.log,lab.env,notify.toml}.
# (OpenSMTPD 6.8 from Debian 12 was tried first: its TLS handshakes all end in "EVP lib"
# under OpenSSL 3, whatever the key type.)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab/lib.sh
. "$HERE/lib.sh"

D=$LAB/smtp
POLICY=127.0.0.1:10040

running_postfix() { [ -f "$D/etc/main.cf" ] && postfix -c "$D/etc" status >/dev/null 2>&1; }

stop() {
  if running_postfix; then postfix -c "$D/etc" stop >/dev/null 2>&1 || true; fi
  for _ in $(seq 50); do running_postfix || break; sleep 0.1; done
}

start() {
  [ -s "$LAB/dovecot/lab.env" ] && running "$LAB/dovecot/dedicated/run/master.pid" || die "start lab/dovecot.sh first"
  if [ ! -x /usr/sbin/postfix ]; then
    # no questions, no system configuration: this lab runs its own instance
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  fi
  apt_install /usr/sbin/postfix:postfix
  stop
  rm -rf "$D"; mkdir -p "$D/etc" "$D/spool" "$D/data"
  chown postfix "$D/data"
  lab_server_cert "$D" smtp
  chmod 644 "$D/cert.pem"
  cat > "$D/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $D/spool
data_directory = $D/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $D/postfix.log
maillog_file_prefixes = $LAB
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mail.example.test
mydomain = example.test
mydestination =
mynetworks = 127.0.0.1/32
local_transport = error:no local delivery here
virtual_mailbox_domains = example.test
virtual_transport = lmtp:inet:127.0.0.1:10024
smtpd_tls_chain_files = $D/key.pem, $D/cert.pem
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:10026
smtpd_relay_restrictions = permit_sasl_authenticated, reject
# the outbound policy service (cadenas outbound serve; started by the tests that use it):
# asked at every RCPT and at the end of every message. While it is down, DUNNO: mail flows
# (the lab's other tests send notifications through this Postfix)
smtpd_recipient_restrictions = check_policy_service inet:$POLICY, permit_sasl_authenticated, reject
smtpd_end_of_data_restrictions = check_policy_service inet:$POLICY
smtpd_policy_service_default_action = DUNNO
smtpd_policy_service_try_limit = 2
smtpd_policy_service_retry_delay = 1s
smtpd_policy_service_timeout = 10s
# mail for outside domains stays in the queue (deferred): the lab never sends out
defer_transports = smtp
EOF
  # Debian's service table, without the port 25 listener, with the two lab ones
  sed -e '/^smtp      inet/d' /usr/share/postfix/master.cf.dist > "$D/etc/master.cf"
  cat >> "$D/etc/master.cf" <<EOF
127.0.0.1:10587 inet n - n - - smtpd
127.0.0.1:10465 inet n - n - - smtpd -o smtpd_tls_wrappermode=yes
EOF
  postfix -c "$D/etc" check
  postfix -c "$D/etc" start >/dev/null 2>&1 || { cat "$D/postfix.log" >&2 2>/dev/null; die "postfix did not start"; }
  for _ in $(seq 100); do
    if ss -ltn | grep -q "127.0.0.1:10587 " && ss -ltn | grep -q "127.0.0.1:10465 "; then
      cat > "$D/lab.env" <<EOF
CADENAS_LAB_SMTP_STARTTLS=127.0.0.1:10587
CADENAS_LAB_SMTP_TLS=127.0.0.1:10465
CADENAS_LAB_SMTP_LOG=$D/postfix.log
CADENAS_LAB_SMTP_CONFIG_DIR=$D/etc
CADENAS_LAB_POLICY=$POLICY
CADENAS_LAB_OUTBOUND_CONFIG=$D/outbound.toml
EOF
      cat > "$D/outbound.toml" <<EOF
# The outbound policy service the lab Postfix asks (written by lab/smtp.sh; tests append it).
[outbound]
listen = ["$POLICY"]
journal_poll_ms = 50
EOF
      quote_env "$D/lab.env"
      cat > "$D/notify.toml" <<EOF
# The lab's on-call list (written by lab/smtp.sh; lab/up.sh appends it to the lab config).
[[notify]]
name = "oncall"
type = "smtp"
events = ["contained", "needs_attention", "released", "mfa_reset"]
url = "smtp://127.0.0.1:10587"
ca_file = "$CA_DIR/ca.pem"
username = "cadenas-notify"
password_file = "$LAB/dovecot/smtp.password"
from = "Cadenas <cadenas@example.test>"
to = ["oncall@example.test"]
EOF
      lap "smtp: Postfix 127.0.0.1:10587 (STARTTLS) and :10465 (TLS), SMTP AUTH via Dovecot -> LMTP 127.0.0.1:10024"
      return 0
    fi
    sleep 0.1
  done
  cat "$D/postfix.log" >&2 || true
  die "postfix did not listen"
}

case "${1:-}" in
  start) start ;;
  stop) stop; echo "smtp: stopped" ;;
  status) if running_postfix; then echo "smtp: running"; else echo "smtp: stopped"; fi ;;
  *) echo "usage: $0 start | stop | status" >&2; exit 2 ;;
esac
