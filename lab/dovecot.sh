#!/bin/bash
# Dovecot 2.3 (Debian) on loopback for session-revocation tests. Its passdb is the lab's
# OpenLDAP (auth binds), with the auth cache ON, so a stale password really survives a
# directory change unless the cache is flushed. Pigeonhole Sieve is on, with ManageSieve, so
# a user (or an attacker with the password) can upload a redirect rule. The doveadm HTTP API
# key may only run `kick`, `who`, `auth cache flush`, `sieve list`, `sieve get` and
# `sieve deactivate`. Every login is logged (Login: user=<…>, rip=…) to dovecot.log. Every
# mailbox belongs to the system user vmail but one, mailbox-other-uid (vmail-other's).
#
#   lab/dovecot.sh start     two instances (needs lab/openldap.sh start first):
#                              dedicated: IMAP 127.0.0.1:10143, ManageSieve 14190, LMTP 10024,
#                                         SASL 10026, API http://127.0.0.1:18080 (one process per session)
#                              shared:    IMAP 127.0.0.1:10144, ManageSieve 14191, LMTP 10025,
#                                         API http://127.0.0.1:18081
#                                         (client_limit=10: a kick takes down every session of the
#                                         process -> collateral)
#                            and installs sieve-connect, the ManageSieve client the tests use.
#   lab/dovecot.sh stop
#   lab/dovecot.sh status
#
# Writes $CADENAS_LAB_DIR/dovecot/{api.key,revokers.toml,lab.env}; revokers.toml also holds the
# [mail] section (local domain example.test, external redirects deactivated, the login log).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab/lib.sh
. "$HERE/lib.sh"

D=$LAB/dovecot
API_KEY=lab-doveadm-api-key-5b1e
SMTP_PASSWORD=lab-smtp-secret-71c2
OTHER_UID_USER=mailbox-other-uid

install_packages() {
  apt_install /usr/sbin/dovecot:dovecot-core /usr/lib/dovecot/imap:dovecot-imapd \
    /usr/lib/dovecot/modules/auth/libauthdb_ldap.so:dovecot-ldap \
    /usr/lib/dovecot/modules/lib90_sieve_plugin.so:dovecot-sieve \
    /usr/lib/dovecot/managesieve:dovecot-managesieved /usr/lib/dovecot/lmtp:dovecot-lmtpd \
    sieve-connect:sieve-connect
  if [ -s /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
    echo "lab: stopping the system dovecot the package started" >&2
    kill "$(cat /run/dovecot/master.pid)"
  fi
  id vmail >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmail
  id vmail-other >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmail-other
}

# instance NAME IMAP_PORT HTTP_PORT SIEVE_PORT LMTP_PORT SASL_PORT EXTRA_SERVICE_CONFIG
instance() {
  local name=$1 imap=$2 http=$3 sieve=$4 lmtp=$5 sasl=$6 extra=$7 dir=$D/$1
  stop_pid "$dir/run/master.pid"
  rm -rf "$dir"; mkdir -p "$dir/run" "$dir/state" "$dir/mail" "$dir/mail-other"
  chown vmail:vmail "$dir/mail"
  # one mailbox owned by another system user, its home readable by that user only
  chown vmail-other:vmail-other "$dir/mail-other"; chmod 700 "$dir/mail-other"
  printf '%s::%s:%s::%s::\n' "$OTHER_UID_USER" "$(id -u vmail-other)" "$(id -g vmail-other)" \
    "$dir/mail-other/$OTHER_UID_USER" > "$dir/users-other-uid"
  set -a; . "$LAB/openldap/lab.env"; set +a
  cat > "$dir/dovecot-ldap.conf.ext" <<EOF
uris = ldaps://127.0.0.1:6360
tls_ca_cert_file = $CADENAS_LAB_CA
tls_require_cert = demand
ldap_version = 3
base = $CADENAS_LAB_PEOPLE
auth_bind = yes
auth_bind_userdn = uid=%u,$CADENAS_LAB_PEOPLE
EOF
  chown root:dovecot "$dir/dovecot-ldap.conf.ext"; chmod 640 "$dir/dovecot-ldap.conf.ext"
  cat > "$dir/dovecot.conf" <<EOF
base_dir = $dir/run
state_dir = $dir/state
instance_name = cadenas-lab-$name
protocols = imap sieve lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = $dir/dovecot.log
mail_location = maildir:~/Maildir
first_valid_uid = 100
# usernames are uids: refuse anything that could reach the LDAP DN template
auth_username_chars = abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@
# the cache that makes a stolen password outlive a directory change (docs/FACTS.md)
auth_cache_size = 1M
auth_cache_ttl = 1 hours
auth_cache_negative_ttl = 0
# the lab's tests log in with wrong passwords on purpose; the default 2 s delay only slows them
auth_failure_delay = 0

# the lab MTA's SMTP AUTH (lab/smtp.sh) asks this Dovecot (SASL on 127.0.0.1:$sasl): its
# one account, then the directory's users
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT $D/smtp-users
}
passdb {
  driver = ldap
  args = $dir/dovecot-ldap.conf.ext
}
# $OTHER_UID_USER: another system uid (vmail-other) than every other user's (vmail)
userdb {
  driver = passwd-file
  args = $dir/users-other-uid
}
userdb {
  driver = static
  # allow_all_users: doveadm (sieve list/get) resolves users without a password (auth binds cannot)
  args = uid=vmail gid=vmail home=$dir/mail/%u allow_all_users=yes
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap
  }
  inet_listener imaps {
    port = 0
  }
}
service managesieve-login {
  inet_listener sieve {
    address = 127.0.0.1
    port = $sieve
  }
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
service auth {
  inet_listener sasl {
    address = 127.0.0.1
    port = $sasl
  }
}
# mail from the lab MTA (lab/smtp.sh): RCPT TO:<uid@example.test> is delivered to uid's INBOX
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp
  }
}
protocol lmtp {
  auth_username_format = %Ln
}
$extra

doveadm_api_key = $API_KEY
doveadm_allowed_commands = kick,who,auth cache flush,sieve list,sieve get,sieve deactivate
service doveadm {
  inet_listener http {
    address = 127.0.0.1
    port = $http
  }
}
EOF
  doveconf -c "$dir/dovecot.conf" -n >/dev/null
  setsid dovecot -c "$dir/dovecot.conf" -F > "$dir/dovecot.stdout" 2>&1 < /dev/null &
  for _ in $(seq 100); do
    if [ -s "$dir/run/master.pid" ] && ss -ltn | grep -q "127.0.0.1:$http " && ss -ltn | grep -q "127.0.0.1:$imap " \
      && ss -ltn | grep -q "127.0.0.1:$sieve "; then
      lap "dovecot $name: IMAP 127.0.0.1:$imap, ManageSieve $sieve, API http://127.0.0.1:$http/doveadm/v1 (pid $(cat "$dir/run/master.pid"))"
      return 0
    fi
    sleep 0.1
  done
  cat "$dir/dovecot.stdout" "$dir/dovecot.log" >&2 || true
  die "dovecot $name did not start"
}

# The account the lab MTA's clients log in with (SMTP AUTH, checked by Dovecot's SASL).
smtp_account() {
  umask 077
  printf '%s\n' "$SMTP_PASSWORD" > "$D/smtp.password"
  umask 022
  printf 'cadenas-notify:%s\n' "$(doveadm pw -s SHA512-CRYPT -p "$SMTP_PASSWORD")" > "$D/smtp-users"
  chown root:dovecot "$D/smtp-users"; chmod 640 "$D/smtp-users"
}

write_config() {
  umask 077
  printf '%s\n' "$API_KEY" > "$D/api.key"
  umask 022
  cat > "$D/revokers.toml" <<EOF
# Revokers for the lab Dovecot (written by lab/dovecot.sh); append to the OpenLDAP lab config.
[[revokers]]
type = "dovecot"
name = "mail"
url = "http://127.0.0.1:18080/doveadm/v1"
api_key_file = "$D/api.key"
timeout_secs = 10

[mail]
local_domains = ["example.test"]
disable_external_redirects = true
auth_logs = ["$D/dedicated/dovecot.log"]
EOF
  cat > "$D/lab.env" <<EOF
CADENAS_LAB_IMAP=127.0.0.1:10143
CADENAS_LAB_MANAGESIEVE=127.0.0.1:14190
CADENAS_LAB_LMTP=127.0.0.1:10024
CADENAS_LAB_SASL=127.0.0.1:10026
CADENAS_LAB_SMTP_USER=cadenas-notify
CADENAS_LAB_SMTP_PASSWORD_FILE=$D/smtp.password
CADENAS_LAB_DOVECOT_CONF=$D/dedicated/dovecot.conf
CADENAS_LAB_DOVECOT_LOG=$D/dedicated/dovecot.log
CADENAS_LAB_DOVECOT_OTHER_UID_USER=$OTHER_UID_USER
CADENAS_LAB_DOVEADM_URL=http://127.0.0.1:18080/doveadm/v1
CADENAS_LAB_IMAP_SHARED=127.0.0.1:10144
CADENAS_LAB_DOVEADM_URL_SHARED=http://127.0.0.1:18081/doveadm/v1
CADENAS_LAB_DOVEADM_KEY_FILE=$D/api.key
CADENAS_LAB_REVOKERS=$D/revokers.toml
EOF
  quote_env "$D/lab.env"
}

case "${1:-}" in
  start)
    [ -s "$LAB/openldap/lab.env" ] && running "$LAB/openldap/run/slapd.pid" || die "start lab/openldap.sh first"
    install_packages
    mkdir -p "$D"
    smtp_account
    instance dedicated 10143 18080 14190 10024 10026 ""
    instance shared 10144 18081 14191 10025 10027 "service imap {
  client_limit = 10
  service_count = 0
  process_limit = 1
}"
    write_config ;;
  stop)
    stop_pid "$D/dedicated/run/master.pid"; stop_pid "$D/shared/run/master.pid"; echo "dovecot: stopped" ;;
  status)
    for n in dedicated shared; do
      if running "$D/$n/run/master.pid"; then echo "dovecot $n: pid $(cat "$D/$n/run/master.pid")"; else echo "dovecot $n: stopped"; fi
    done ;;
  *) echo "usage: $0 start | stop | status" >&2; exit 2 ;;
esac
