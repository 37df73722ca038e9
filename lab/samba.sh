#!/bin/bash
# A throwaway Samba 4 AD DC (Debian) on loopback: realm EXAMPLE.TEST, LDAPS/StartTLS with the
# lab CA, Kerberos, seeded users in OU=People, an MFA-required group, and a DELEGATED helpdesk
# account (not a Domain Admin) with only the rights the responder needs.
#
#   lab/samba.sh start [N]   provision from nothing and start (N users, default 50): ~10 s once installed
#   lab/samba.sh stop
#   lab/samba.sh status
#   lab/samba.sh dc2         join a second DC (DC2, 127.0.0.2, LDAPS 636) to the running domain
#                            and start it (~10 s); a no-op when it runs. DC1 stays the PDC emulator.
#   lab/samba.sh dc2-stop | dc2-start   stop it / start it again with its data
#
# Replication between the two DCs: each DC pulls every 5 s (`dreplsrv:periodic_interval`); the
# DRS connections find a DC by `<DSA GUID>._msdcs.example.test`, and the PDC redirect by
# `dc1.example.test`: with no DNS server in the lab, `dc2` writes these names into /etc/hosts
# (between "# cadenas-lab samba" markers, replaced on every join) and adds 127.0.0.2 to lo.
#
# Samba's default password semantics are kept (notably `old password allowed period` = 60 min):
# the library must be right against the defaults. Only the minimum password age is set to 0,
# so that tests can show a user changing their own password right after a reset.
#
# Writes $CADENAS_LAB_DIR/samba/{cadenas.toml,helpdesk.pw,lab.env,krb5.conf}.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab/lib.sh
. "$HERE/lib.sh"

S=$LAB/samba
D=$S/dc
REALM=EXAMPLE.TEST; DOMAIN=EXAMPLE; HOST=dc1; BASE='DC=example,DC=test'
ADMINPASS='Adm1n-Lab-Passw0rd!'
HELPDESK_PW='Helpdesk-Lab-Passw0rd-1'
USER_PW='Init-Passw0rd-AD-1'
PEOPLE="OU=People,$BASE"
MFA_GROUP="CN=MFA Required,OU=Groups,$BASE"
URI=ldaps://127.0.0.1:636
S2=$LAB/samba-dc2
D2=$S2/dc
URI2=ldaps://127.0.0.2:636

install_packages() {
  apt_install samba:samba /usr/sbin/samba:samba-ad-dc /usr/share/samba/setup/provision.ldif:samba-ad-provision \
    /usr/lib/x86_64-linux-gnu/samba/ldb/samba_dsdb.so:samba-dsdb-modules winbindd:winbind kinit:krb5-user \
    ldapsearch:ldap-utils openssl:openssl
}

ldap_admin() { LDAPTLS_CACERT="$CA_DIR/ca.pem" "$@" -x -H $URI -D "Administrator@$REALM" -w "$ADMINPASS"; }

# seed_conf DIR DC_DIR IP — the smb.conf a DC is provisioned or joined with: its address only,
# the services replication needs, pulls every 5 s, TLS from DIR/tls.
seed_conf() {
  cat <<EOF
[global]
	interfaces = $3
	bind interfaces only = yes
	pid directory = $2/run
	ncalrpc dir = $2/run/ncalrpc
	log file = $2/log/log.%m
	ldb:nosync = true
	server services = ldap, cldap, kdc, rpc, drepl, kcc
	dreplsrv:periodic_interval = 5
	tls enabled = yes
	tls keyfile = $1/tls/key.pem
	tls certfile = $1/tls/cert.pem
	tls cafile = $CA_DIR/ca.pem
EOF
}

provision() {
  rm -rf "$S"; mkdir -p "$D/run" "$D/log" "$S/tls"
  lab_server_cert "$S/tls" "$HOST.example.test"
  seed_conf "$S" "$D" 127.0.0.1 > "$S/seed.conf"
  samba-tool domain provision -s "$S/seed.conf" --targetdir="$D" \
    --realm=$REALM --domain=$DOMAIN --host-name=$HOST --server-role=dc \
    --dns-backend=NONE --adminpass="$ADMINPASS" > "$D/log/provision.log" 2>&1 \
    || { tail -20 "$D/log/provision.log" >&2; die "samba-tool domain provision failed"; }
  samba-tool domain passwordsettings set -s "$D/etc/smb.conf" --min-pwd-age=0 > /dev/null
  samba_spnupdate -s "$D/etc/smb.conf" > /dev/null 2>&1 || true
  cat > "$S/krb5.conf" <<EOF
[libdefaults]
	default_realm = $REALM
	dns_lookup_realm = false
	dns_lookup_kdc = false
	rdns = false
	dns_canonicalize_hostname = false
[realms]
	$REALM = {
		kdc = 127.0.0.1:88
		kpasswd_server = 127.0.0.1:464
	}
[domain_realm]
	.example.test = $REALM
	example.test = $REALM
EOF
}

# run_dc SMB_CONF PID_FILE URL LOG_DIR — starts a samba AD DC and waits until it answers on URL.
# KRB5_CONFIG: the DRS connections between DCs authenticate with Kerberos and find the KDC here.
run_dc() {
  local conf=$1 pidf=$2 url=$3 log=$4
  KRB5_CONFIG=$S/krb5.conf setsid samba -i -s "$conf" --maximum-runtime=14400 > "$log/samba.stdout" 2>&1 < /dev/null &
  echo $! > "$pidf"
  for _ in $(seq 300); do
    if LDAPTLS_CACERT="$CA_DIR/ca.pem" ldapsearch -x -H "$url" -D "Administrator@$REALM" -w "$ADMINPASS" -b '' -s base 1.1 > /dev/null 2>&1; then return 0; fi
    kill -0 "$(cat "$pidf")" 2>/dev/null || { cat "$log/samba.stdout" >&2; die "samba ($conf) exited"; }
    sleep 0.1
  done
  die "samba did not answer on $url"
}

# halt_dc PID_FILE — stops a DC started by run_dc (all its renamed children).
halt_dc() {
  local pidf=$1 pid; pid=$(cat "$pidf" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || true
  # samba renames its children; setsid made the session id equal to the root pid
  for _ in $(seq 150); do
    pgrep -s "$pid" > /dev/null || { rm -f "$pidf"; return 0; }
    sleep 0.1
  done
  pkill -KILL -s "$pid" 2>/dev/null || true; rm -f "$pidf"
}

start_samba() { run_dc "$D/etc/smb.conf" "$S/samba.pid" "$URI" "$D/log"; }
stop_samba() { halt_dc "$S/samba.pid"; }

seed() {
  local n=$1 f=$S/seed.ldif
  {
    printf 'dn: %s\nobjectClass: organizationalUnit\nou: People\n\n' "$PEOPLE"
    printf 'dn: OU=Groups,%s\nobjectClass: organizationalUnit\nou: Groups\n\n' "$BASE"
    printf 'dn: OU=Services,%s\nobjectClass: organizationalUnit\nou: Services\n\n' "$BASE"
    printf 'dn: %s\nobjectClass: group\nsAMAccountName: mfa-required\ndescription: Members must present a TOTP code\n\n' "$MFA_GROUP"
    printf 'dn: CN=helpdesk,OU=Services,%s\nobjectClass: user\nsAMAccountName: helpdesk\nuserPrincipalName: helpdesk@example.test\nunicodePwd:: %s\nuserAccountControl: 66048\n\n' \
      "$BASE" "$(printf '"%s"' "$HELPDESK_PW" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)"
    local pw; pw=$(printf '"%s"' "$USER_PW" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)
    for i in $(seq -f '%04g' 1 "$n"); do
      printf 'dn: CN=user%s,%s\nobjectClass: user\nsAMAccountName: user%s\nuserPrincipalName: user%s@example.test\nmail: user%s@example.test\nunicodePwd:: %s\nuserAccountControl: 512\n\n' \
        "$i" "$PEOPLE" "$i" "$i" "$i" "$pw"
    done
  } > "$f"
  ldap_admin ldapadd -f "$f" > /dev/null
  # a protected account: member of Domain Admins, inside OU=People
  printf 'dn: CN=admin0001,%s\nobjectClass: user\nsAMAccountName: admin0001\nunicodePwd:: %s\nuserAccountControl: 512\n\n' \
    "$PEOPLE" "$(printf '"%s"' "$USER_PW" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)" | ldap_admin ldapadd > /dev/null
  printf 'dn: CN=Domain Admins,CN=Users,%s\nchangetype: modify\nadd: member\nmember: CN=admin0001,%s\n' "$BASE" "$PEOPLE" \
    | ldap_admin ldapmodify > /dev/null
}

delegate() {
  local sid
  sid=$(samba-tool user show helpdesk -s "$D/etc/smb.conf" --attributes=objectSid 2>/dev/null | awk '/^objectSid:/{print $2}')
  [ -n "$sid" ] || die "no SID for helpdesk"
  local user_class=bf967aba-0de6-11d0-a285-00aa003049e2
  # reset password (extended right), write userAccountControl, pwdLastSet, lockoutTime on users under OU=People
  local sddl="(OA;CI;CR;00299570-246d-11d0-a768-00aa006e0529;$user_class;$sid)"
  sddl="$sddl(OA;CI;RPWP;bf967a68-0de6-11d0-a285-00aa003049e2;$user_class;$sid)"
  sddl="$sddl(OA;CI;RPWP;bf967a0a-0de6-11d0-a285-00aa003049e2;$user_class;$sid)"
  sddl="$sddl(OA;CI;RPWP;28630ebf-41d5-11d1-a9c1-0000f80367c1;$user_class;$sid)"
  samba-tool dsacl set -s "$D/etc/smb.conf" --objectdn="$PEOPLE" --sddl="$sddl" > /dev/null
  # write member on the MFA group only
  samba-tool dsacl set -s "$D/etc/smb.conf" --objectdn="$MFA_GROUP" \
    --sddl="(OA;;RPWP;bf9679c0-0de6-11d0-a285-00aa003049e2;;$sid)" > /dev/null
}

write_config() {
  umask 077; printf '%s\n' "$HELPDESK_PW" > "$S/helpdesk.pw"; umask 022
  cat > "$S/cadenas.toml" <<EOF
# Cadenas config for the lab Samba AD DC (written by lab/samba.sh), acting as the delegated helpdesk.
[directory]
url = "ldaps://127.0.0.1:636"
ca_file = "$CA_DIR/ca.pem"
bind_dn = "CN=helpdesk,OU=Services,$BASE"
bind_password_file = "$S/helpdesk.pw"
base_dns = ["$PEOPLE"]
mfa_group_dn = "$MFA_GROUP"
protected_group_dns = ["CN=Domain Admins,CN=Users,$BASE"]
operation_timeout_secs = 30

[password]
length = 20

[journal]
path = "$S/journal.jsonl"
EOF
  cat > "$S/lab.env" <<EOF
CADENAS_LAB_AD_LDAPS_URL=$URI
CADENAS_LAB_AD_LDAP_URL=ldap://127.0.0.1:389
CADENAS_LAB_AD_BASE=$BASE
CADENAS_LAB_AD_PEOPLE=$PEOPLE
CADENAS_LAB_AD_ADMIN=Administrator@$REALM
CADENAS_LAB_AD_ADMIN_PW=$ADMINPASS
CADENAS_LAB_AD_USER_PW=$USER_PW
CADENAS_LAB_AD_MFA_GROUP=$MFA_GROUP
CADENAS_LAB_AD_CONFIG=$S/cadenas.toml
CADENAS_LAB_AD_HELPDESK_DN=CN=helpdesk,OU=Services,$BASE
CADENAS_LAB_AD_REALM=$REALM
CADENAS_LAB_AD_KRB5_CONFIG=$S/krb5.conf
CADENAS_LAB_CA=$CA_DIR/ca.pem
EOF
  quote_env "$S/lab.env"
}

dc2_running() { [ -s "$S2/samba.pid" ] && kill -0 "$(cat "$S2/samba.pid")" 2>/dev/null; }

start_dc2() { run_dc "$D2/etc/smb.conf" "$S2/samba.pid" "$URI2" "$D2/log"; }
stop_dc2() { halt_dc "$S2/samba.pid"; }

# The names the DCs look each other up by, in /etc/hosts between markers (no DNS in the lab).
write_hosts() {
  local guids
  guids=$(ldap_admin ldapsearch -LLL -o ldif-wrap=no -b "CN=Sites,CN=Configuration,$BASE" '(objectClass=nTDSDSA)' objectGUID \
    | python3 -c '
import base64, re, sys, uuid
for dc, guid in re.findall(r"^dn: CN=NTDS Settings,CN=(\w+),[^\n]*\nobjectGUID:: (\S+)", sys.stdin.read(), re.M):
    ip = "127.0.0.1" if dc.upper() == "DC1" else "127.0.0.2"
    print(ip, str(uuid.UUID(bytes_le=base64.b64decode(guid))) + "._msdcs.example.test")
')
  [ -n "$guids" ] || die "no DSA GUIDs read"
  local tmp; tmp=$(mktemp)
  sed '/^# cadenas-lab samba >>>$/,/^# cadenas-lab samba <<<$/d' /etc/hosts > "$tmp"
  { echo "# cadenas-lab samba >>>"; echo "$guids"; echo "127.0.0.1 dc1.example.test"; echo "127.0.0.2 dc2.example.test"; echo "# cadenas-lab samba <<<"; } >> "$tmp"
  cat "$tmp" > /etc/hosts; rm -f "$tmp"
}

join_dc2() {
  [ -s "$S/samba.pid" ] && kill -0 "$(cat "$S/samba.pid")" 2>/dev/null || die "start the lab DC first (lab/samba.sh start)"
  ip -4 addr show dev lo | grep -q '127.0.0.2/' || ip addr add 127.0.0.2/8 dev lo
  stop_dc2
  # DC1 forgets an earlier DC2 (a join of the same name would fail)
  samba-tool domain demote -s "$D/etc/smb.conf" --remove-other-dead-server=DC2 > /dev/null 2>&1 || true
  rm -rf "$S2"; mkdir -p "$D2/run" "$D2/log"
  lab_server_cert "$S2/tls" dc2.example.test 127.0.0.2
  { printf '[global]\n\tworkgroup = %s\n\trealm = %s\n' "$DOMAIN" "$REALM"; seed_conf "$S2" "$D2" 127.0.0.2 | tail -n +2; } > "$S2/seed.conf"
  samba-tool domain join example.test DC -s "$S2/seed.conf" --targetdir="$D2" --server=127.0.0.1 \
    -U "$DOMAIN\\Administrator%$ADMINPASS" --option="netbios name=DC2" --dns-backend=NONE > "$D2/log/join.log" 2>&1 \
    || { tail -20 "$D2/log/join.log" >&2; die "samba-tool domain join failed"; }
  write_hosts
  start_dc2
  printf 'CADENAS_LAB_AD_DC2_LDAPS_URL=%s\n' "$URI2" > "$S2/lab.env"
  quote_env "$S2/lab.env"
}

case "${1:-}" in
  start)
    install_packages
    stop_dc2 2>/dev/null || true
    stop_samba 2>/dev/null || true
    provision; lap "provisioned $REALM"
    start_samba; lap "samba answering on $URI"
    seed "${2:-50}"; lap "seeded ${2:-50} users"
    delegate; lap "helpdesk delegated on $PEOPLE"
    write_config
    echo "samba AD DC: pid $(cat "$S/samba.pid"), $URI (StartTLS on 389), KDC 127.0.0.1:88; config $S/cadenas.toml" ;;
  stop) stop_dc2; stop_samba; echo "samba: stopped" ;;
  dc2) if dc2_running; then echo "DC2 runs"; else join_dc2; lap "DC2 joined and answering on $URI2"; fi ;;
  dc2-stop) stop_dc2 ;;
  dc2-start) dc2_running || start_dc2 ;;
  status)
    if [ -s "$S/samba.pid" ] && kill -0 "$(cat "$S/samba.pid")" 2>/dev/null; then echo "samba AD DC: pid $(cat "$S/samba.pid")"; else echo "samba AD DC: stopped"; fi ;;
  *) echo "usage: $0 start [N] | stop | status" >&2; exit 2 ;;
esac
