#!/bin/bash
# A throwaway OpenLDAP 2.5 (Debian `slapd`) on loopback: ppolicy + argon2 + TLS, seeded users,
# an MFA-required group and a least-privilege service account for the responder.
#
#   lab/openldap.sh start [N]     provider on 127.0.0.1:3890 (ldap, StartTLS) and :6360 (ldaps), N users
#                                 (default 300; benches use 6000). Rebuilt from nothing on every start.
#   lab/openldap.sh replica       syncrepl replica of the provider on :3891 / :6361
#   lab/openldap.sh replica-stop | replica-start   stop it / start it again with its data
#   lab/openldap.sh notls         a slapd without TLS on :3898 (refuses StartTLS; one CLI test)
#   lab/openldap.sh tlsfaults     slapds with an expired (:6371), a wrong-host (:6372) and an
#                                 expiring (:6373, 10 days) certificate (the preflight's tests)
#   lab/openldap.sh restart       stop and start the provider keeping its data (crash tests)
#   lab/openldap.sh crash         the same with SIGKILL instead of a graceful stop
#   lab/openldap.sh stop          stop provider and replica (by PID)
#   lab/openldap.sh status        print where everything is
#
# What it writes under $CADENAS_LAB_DIR/openldap (default /tmp/cadenas-lab/openldap):
#   cadenas.toml      a ready Cadenas config acting as the service account over LDAPS
#   responder.pw      the service account's password (0600)
#   lab.env           shell/KEY=VALUE facts for tests (ports, DNs, the test-only admin password)
#
# Rebuilds from installed packages in about 0.2 s.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab/lib.sh
. "$HERE/lib.sh"

SUFFIX=dc=example,dc=test
ADMIN_DN=cn=admin,$SUFFIX
ADMIN_PW=lab-admin-secret            # rootDN: used only by the lab and by test fixtures, never by Cadenas
RESPONDER_DN=cn=responder,ou=services,$SUFFIX
RESPONDER_PW=responder-Lab-pw-1
USER_PW=Initial-Passw0rd
PEOPLE=ou=people,$SUFFIX
MFA_GROUP=cn=mfa-required,ou=groups,$SUFFIX
ADMINS_GROUP=cn=directory-admins,ou=groups,$SUFFIX
# a protected group whose members the responder may search for but not read (tests the rail
# when the groups' members cannot be listed)
SEALED_GROUP=cn=sealed-admins,ou=groups,$SUFFIX
DEFAULT_POLICY=cn=default,ou=policies,$SUFFIX

install_packages() {
  mkdir -p /etc/ldap
  # SLAPD_SENTINEL_FILE: /etc/init.d/slapd refuses to start the system slapd while it exists
  [ -e /etc/ldap/noslapd ] || touch /etc/ldap/noslapd
  apt_install slapd:slapd ldapsearch:ldap-utils openssl:openssl
  if [ -s /run/slapd/slapd.pid ] && kill -0 "$(cat /run/slapd/slapd.pid)" 2>/dev/null; then
    echo "lab: stopping the system slapd the package started" >&2
    kill "$(cat /run/slapd/slapd.pid)"
  fi
}

# tls_fault_slapd KIND PORT — a slapd on ldaps://127.0.0.1:PORT whose certificate, signed by
# the lab CA, is wrong in the way KIND says: expired (2024), wronghost (made out to
# wrong-host.example.test only) or soon (expires in 10 days).
tls_fault_slapd() {
  local kind=$1 port=$2 d=$LAB/openldap-tls-$1
  stop_pid "$d/slapd.pid"
  rm -rf "$d"; mkdir -p "$d/db" "$d/ca"
  lab_ca
  local san="DNS:localhost,IP:127.0.0.1" days=3650
  case $kind in
    wronghost) san="DNS:wrong-host.example.test" ;;
    soon) days=10 ;;
  esac
  openssl req -newkey rsa:2048 -nodes -subj "/CN=tls-$kind" -keyout "$d/key.pem" -out "$d/req.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' "$san" > "$d/ext.cnf"
  if [ "$kind" = expired ]; then
    # openssl x509 cannot date a certificate in the past; openssl ca can
    : > "$d/ca/index.txt"; echo 1000 > "$d/ca/serial"
    printf '[ca]\ndefault_ca=lab\n[lab]\ndatabase=%s\nnew_certs_dir=%s\nserial=%s\ndefault_md=sha256\npolicy=any\n[any]\ncommonName=supplied\n' \
      "$d/ca/index.txt" "$d/ca" "$d/ca/serial" > "$d/ca/ca.cnf"
    openssl ca -batch -notext -config "$d/ca/ca.cnf" -cert "$CA_DIR/ca.pem" -keyfile "$CA_DIR/ca.key" \
      -startdate 20240101000000Z -enddate 20240201000000Z -extfile "$d/ext.cnf" \
      -in "$d/req.csr" -out "$d/cert.pem" 2>/dev/null || die "openssl ca: no expired certificate"
  else
    openssl x509 -req -in "$d/req.csr" -CA "$CA_DIR/ca.pem" -CAkey "$CA_DIR/ca.key" -CAcreateserial \
      -days "$days" -out "$d/cert.pem" -extfile "$d/ext.cnf" 2>/dev/null
  fi
  chmod 600 "$d/key.pem"
  cat > "$d/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $d/slapd.pid
TLSCACertificateFile $CA_DIR/ca.pem
TLSCertificateFile $d/cert.pem
TLSCertificateKeyFile $d/key.pem
database mdb
maxsize 10485760
suffix "dc=tls,dc=test"
rootdn "cn=admin,dc=tls,dc=test"
directory $d/db
EOF
  slapd -f "$d/slapd.conf" -h "ldaps://127.0.0.1:$port/" || die "slapd ($kind certificate) did not start"
  for _ in $(seq 100); do ss -ltn | grep -q "127.0.0.1:$port " && return 0; sleep 0.05; done
  die "slapd ($kind certificate) does not listen on :$port"
}

# start_slapd DIR LDAP_PORT LDAPS_PORT — starts the slapd of DIR (its data kept) and waits
# until it answers.
start_slapd() {
  local dir=$1 port=$2 sport=$3 sock="$1/run/ldapi"
  slapd -F "$dir/slapd.d" -h "ldap://127.0.0.1:$port/ ldaps://127.0.0.1:$sport/ ldapi://${sock//\//%2F}" \
    || die "slapd did not start (port $port/$sport taken? run: slapd -d 256 -F $dir/slapd.d)"
  for _ in $(seq 100); do
    ldapsearch -x -H "ldap://127.0.0.1:$port" -D "$ADMIN_DN" -w "$ADMIN_PW" -b '' -s base 1.1 >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "slapd on :$port does not answer"
}

# build ROLE DIR LDAP_PORT LDAPS_PORT NUSERS
build() {
  local role=$1 dir=$2 port=$3 sport=$4 nusers=$5
  stop_pid "$dir/run/slapd.pid"
  rm -rf "$dir/slapd.d" "$dir/data" "$dir/run" "$dir/accesslog"
  mkdir -p "$dir/slapd.d" "$dir/data" "$dir/run"
  lab_server_cert "$LAB/openldap/tls" localhost

  local role_module="" role_db="" role_overlay=""
  if [ "$role" = provider ]; then
    # syncprov for the replica; slapo-accesslog (every successful write; old values for
    # people's entries only — for a group, reqOld would copy the whole member list into every
    # log record of a member add: 1 GiB after the 6000-account test, and a full log database
    # silently stops recording) in its own database cn=accesslog, readable by the responder
    mkdir -p "$dir/accesslog"
    role_module="olcModuleLoad: syncprov.so
olcModuleLoad: accesslog.so"
    role_overlay="
dn: olcOverlay={1}syncprov,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {1}syncprov
olcSpCheckpoint: 100 10
olcSpSessionlog: 10000

dn: olcDatabase={2}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {2}mdb
olcSuffix: cn=accesslog
olcRootDN: $ADMIN_DN
olcDbDirectory: $dir/accesslog
olcDbMaxSize: 4294967296
olcDbNoSync: TRUE
olcDbIndex: objectClass,reqDN,reqStart eq
olcLimits: dn.exact=\"$RESPONDER_DN\" size=unlimited time=unlimited
olcAccess: {0}to * by dn.exact=\"$RESPONDER_DN\" read by * none

dn: olcOverlay={2}accesslog,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcAccessLogConfig
olcOverlay: {2}accesslog
olcAccessLogDB: cn=accesslog
olcAccessLogOps: writes
olcAccessLogSuccess: TRUE
olcAccessLogPurge: 07+00:00 01+00:00
olcAccessLogOld: (uid=*)
"
  else
    role_db="olcSyncrepl: rid=001 provider=ldap://127.0.0.1:3890 bindmethod=simple binddn=\"$ADMIN_DN\" credentials=$ADMIN_PW searchbase=\"$SUFFIX\" scope=sub attrs=\"*,+\" type=refreshAndPersist retry=\"1 +\" timeout=5 network-timeout=5
olcUpdateRef: ldap://127.0.0.1:3890"
  fi

  cat > "$dir/config.ldif" <<EOF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $dir/run/slapd.pid
olcArgsFile: $dir/run/slapd.args
olcLogLevel: none
olcTLSCertificateFile: $LAB/openldap/tls/cert.pem
olcTLSCertificateKeyFile: $LAB/openldap/tls/key.pem
olcTLSCACertificateFile: $CA_DIR/ca.pem

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb.so
olcModuleLoad: ppolicy.so
olcModuleLoad: argon2.so
$role_module

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: cn=openssh-lpk,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: openssh-lpk
olcAttributeTypes: ( 1.3.6.1.4.1.24552.500.1.1.1.13 NAME 'sshPublicKey' DESC 'OpenSSH public key' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )
olcObjectClasses: ( 1.3.6.1.4.1.24552.500.1.1.2.0 NAME 'ldapPublicKey' SUP top AUXILIARY DESC 'OpenSSH LPK objectclass' MAY ( sshPublicKey $ uid ) )

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcPasswordHash: {ARGON2}
olcSortVals: member

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth manage by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: $SUFFIX
olcRootDN: $ADMIN_DN
olcRootPW: $ADMIN_PW
olcDbDirectory: $dir/data
olcDbMaxSize: 4294967296
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid,mail eq
olcDbIndex: member eq
olcDbIndex: entryCSN,entryUUID eq
olcLimits: dn.exact="$RESPONDER_DN" size=unlimited time=unlimited
olcAccess: {0}to attrs=pwdHistory by * none
olcAccess: {1}to dn.subtree="$PEOPLE" attrs=userPassword by dn.exact="$RESPONDER_DN" manage by self write by anonymous auth by * none
olcAccess: {2}to dn.subtree="$PEOPLE" attrs=pwdAccountLockedTime,pwdReset,pwdFailureTime by dn.exact="$RESPONDER_DN" manage by self read by * none
olcAccess: {3}to dn.exact="$MFA_GROUP" attrs=member by dn.exact="$RESPONDER_DN" write by * read
olcAccess: {4}to dn.exact="$SEALED_GROUP" attrs=member by dn.exact="$RESPONDER_DN" search by * none
olcAccess: {5}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {6}to dn.subtree="$PEOPLE" attrs=mobile,telephoneNumber,sshPublicKey by self write by * read
olcAccess: {7}to * by * read
$role_db

dn: olcOverlay={0}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {0}ppolicy
olcPPolicyDefault: $DEFAULT_POLICY
olcPPolicyHashCleartext: TRUE
olcPPolicyUseLockout: TRUE
$role_overlay
EOF
  slapadd -n0 -F "$dir/slapd.d" -l "$dir/config.ldif" >/dev/null

  if [ "$role" = provider ]; then
    local user_hash resp_hash
    user_hash=$(slappasswd -o module-load=argon2 -h '{ARGON2}' -s "$USER_PW")
    resp_hash=$(slappasswd -o module-load=argon2 -h '{ARGON2}' -s "$RESPONDER_PW")
    {
      cat <<EOF
dn: $SUFFIX
objectClass: dcObject
objectClass: organization
dc: example
o: Example Test

dn: $PEOPLE
objectClass: organizationalUnit
ou: people

dn: ou=groups,$SUFFIX
objectClass: organizationalUnit
ou: groups

dn: ou=policies,$SUFFIX
objectClass: organizationalUnit
ou: policies

dn: ou=services,$SUFFIX
objectClass: organizationalUnit
ou: services

dn: ou=elsewhere,$SUFFIX
objectClass: organizationalUnit
ou: elsewhere

dn: $RESPONDER_DN
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: responder
userPassword: $resp_hash

dn: $DEFAULT_POLICY
objectClass: device
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 5
pwdLockoutDuration: 900
pwdFailureCountInterval: 0
pwdMustChange: TRUE
pwdAllowUserChange: TRUE
pwdSafeModify: FALSE
pwdCheckQuality: 1
pwdMinLength: 8
pwdInHistory: 5
pwdMaxAge: 0

dn: cn=no-lockout,ou=policies,$SUFFIX
objectClass: device
objectClass: pwdPolicy
cn: no-lockout
pwdAttribute: userPassword
pwdLockout: FALSE
pwdMustChange: TRUE

dn: $MFA_GROUP
objectClass: groupOfNames
cn: mfa-required
description: Members must present a TOTP code. groupOfNames needs one member: the placeholder below.
member: cn=placeholder,ou=groups,$SUFFIX

dn: $ADMINS_GROUP
objectClass: groupOfNames
cn: directory-admins
member: uid=admin0001,$PEOPLE

dn: $SEALED_GROUP
objectClass: groupOfNames
cn: sealed-admins
member: cn=placeholder,ou=groups,$SUFFIX

dn: uid=outsider,ou=elsewhere,$SUFFIX
objectClass: inetOrgPerson
uid: outsider
cn: Outside Scope
sn: Outsider
userPassword: $user_hash

EOF
      awk -v n="$nusers" -v h="$user_hash" -v p="$PEOPLE" 'BEGIN{
        printf "dn: uid=admin0001,%s\nobjectClass: inetOrgPerson\nuid: admin0001\ncn: Admin 0001\nsn: Admin\nmail: admin0001@example.test\nuserPassword: %s\n\n", p, h;
        for(i=1;i<=n;i++){u=sprintf("user%04d",i);
        printf "dn: uid=%s,%s\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: %s\ncn: User %04d\nsn: %04d\nmail: %s@example.test\nuidNumber: %d\ngidNumber: 10000\nhomeDirectory: /home/%s\nuserPassword: %s\n\n",u,p,u,i,i,u,10000+i,u,h}}'
    } > "$dir/seed.ldif"
    slapadd -q -n1 -F "$dir/slapd.d" -l "$dir/seed.ldif"
  fi

  start_slapd "$dir" "$port" "$sport"
  if [ "$role" = consumer ]; then
    local n=0
    for _ in $(seq 300); do
      n=$(ldapsearch -x -H "ldap://127.0.0.1:$port" -D "$ADMIN_DN" -w "$ADMIN_PW" -b "$PEOPLE" -s one -LLL 1.1 2>/dev/null | grep -c '^dn:' || true)
      [ "$n" -ge "$nusers" ] && break; sleep 0.1
    done
    # and the service account (another subtree) can bind there
    for _ in $(seq 100); do
      ldapwhoami -x -H "ldap://127.0.0.1:$port" -D "$RESPONDER_DN" -w "$RESPONDER_PW" >/dev/null 2>&1 && break
      sleep 0.1
    done
    lap "replica has $n users"
  fi
}

write_config() {
  local dir=$LAB/openldap
  rm -rf "$LAB/mfa"; mkdir -p "$LAB/mfa"; chmod 700 "$LAB/mfa"; rm -f "$dir/journal.jsonl"
  umask 077
  printf '%s\n' "$RESPONDER_PW" > "$dir/responder.pw"
  umask 022
  cat > "$dir/cadenas.toml" <<EOF
# Cadenas config for the lab OpenLDAP (written by lab/openldap.sh).
[directory]
url = "ldaps://127.0.0.1:6360"
ca_file = "$CA_DIR/ca.pem"
bind_dn = "$RESPONDER_DN"
bind_password_file = "$dir/responder.pw"
base_dns = ["$PEOPLE"]
mfa_group_dn = "$MFA_GROUP"
protected_group_dns = ["$ADMINS_GROUP"]
password_policy_dn = "$DEFAULT_POLICY"
accesslog_base = "cn=accesslog"
connect_timeout_secs = 5
operation_timeout_secs = 30

[password]
length = 20

[journal]
path = "$dir/journal.jsonl"

[mfa]
database = "$LAB/mfa/mfa.db"
key_file = "$LAB/mfa/mfa.key"
issuer = "Cadenas Lab"
EOF
  cat > "$dir/lab.env" <<EOF
CADENAS_LAB_LDAP_URL=ldap://127.0.0.1:3890
CADENAS_LAB_LDAPS_URL=ldaps://127.0.0.1:6360
CADENAS_LAB_REPLICA_URL=ldap://127.0.0.1:3891
CADENAS_LAB_CA=$CA_DIR/ca.pem
CADENAS_LAB_SUFFIX=$SUFFIX
CADENAS_LAB_PEOPLE=$PEOPLE
CADENAS_LAB_ADMIN_DN=$ADMIN_DN
CADENAS_LAB_ADMIN_PW=$ADMIN_PW
CADENAS_LAB_RESPONDER_DN=$RESPONDER_DN
CADENAS_LAB_RESPONDER_PW_FILE=$dir/responder.pw
CADENAS_LAB_USER_PW=$USER_PW
CADENAS_LAB_MFA_GROUP=$MFA_GROUP
CADENAS_LAB_ADMINS_GROUP=$ADMINS_GROUP
CADENAS_LAB_SEALED_GROUP=$SEALED_GROUP
CADENAS_LAB_DEFAULT_POLICY=$DEFAULT_POLICY
CADENAS_LAB_CONFIG=$dir/cadenas.toml
EOF
  quote_env "$dir/lab.env"
}

status() {
  local p=$LAB/openldap/run/slapd.pid r=$LAB/openldap-replica/run/slapd.pid
  if running "$p"; then echo "openldap provider: pid $(cat "$p"), ldap://127.0.0.1:3890 (StartTLS), ldaps://127.0.0.1:6360"
  else echo "openldap provider: stopped"; fi
  if running "$r"; then echo "openldap replica:  pid $(cat "$r"), ldap://127.0.0.1:3891, ldaps://127.0.0.1:6361"
  else echo "openldap replica:  stopped"; fi
  echo "CA:                $CA_DIR/ca.pem"
  echo "cadenas config:    $LAB/openldap/cadenas.toml"
  echo "service account:   $RESPONDER_DN (password in $LAB/openldap/responder.pw)"
  echo "users:             uid=userNNNN,$PEOPLE / $USER_PW"
}

case "${1:-}" in
  start)
    install_packages
    stop_pid "$LAB/openldap-replica/run/slapd.pid"
    build provider "$LAB/openldap" 3890 6360 "${2:-300}"
    write_config
    lap "openldap provider ready with ${2:-300} users"
    status ;;
  replica)
    running "$LAB/openldap/run/slapd.pid" || die "start the provider first"
    build consumer "$LAB/openldap-replica" 3891 6361 "$(grep -c '^dn: uid=user' "$LAB/openldap/seed.ldif")"
    lap "openldap replica ready" ;;
  replica-stop)
    stop_pid "$LAB/openldap-replica/run/slapd.pid"; echo "openldap replica: stopped" ;;
  replica-start)
    # start the replica again with its data: syncrepl catches up with the provider
    running "$LAB/openldap-replica/run/slapd.pid" && { echo "openldap replica: running"; exit 0; }
    start_slapd "$LAB/openldap-replica" 3891 6361
    echo "openldap replica: started again, pid $(cat "$LAB/openldap-replica/run/slapd.pid")" ;;
  restart|crash)
    # stop (crash: SIGKILL, no chance to flush or answer) and start the provider keeping its
    # data (crash tests)
    if [ "$1" = crash ] && running "$LAB/openldap/run/slapd.pid"; then
      pid=$(cat "$LAB/openldap/run/slapd.pid")
      kill -KILL "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
      rm -f "$LAB/openldap/run/slapd.pid" "$LAB/openldap/run/ldapi"
    fi
    stop_pid "$LAB/openldap/run/slapd.pid"
    start_slapd "$LAB/openldap" 3890 6360
    echo "openldap provider restarted after $1: pid $(cat "$LAB/openldap/run/slapd.pid")" ;;
  notls)
    # a slapd with no TLS at all, on ldap://127.0.0.1:3898: it refuses StartTLS ("unsupported
    # extended operation"), which the CLI must report as a TLS failure (exit 4)
    d=$LAB/openldap-notls
    stop_pid "$d/slapd.pid"
    rm -rf "$d"; mkdir -p "$d/db"
    cat > "$d/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $d/slapd.pid
database mdb
maxsize 10485760
suffix "dc=notls,dc=test"
rootdn "cn=admin,dc=notls,dc=test"
directory $d/db
EOF
    slapd -f "$d/slapd.conf" -h "ldap://127.0.0.1:3898/"
    for _ in $(seq 100); do ss -ltn | grep -q "127.0.0.1:3898 " && break; sleep 0.05; done
    echo "openldap without TLS: ldap://127.0.0.1:3898, pid $(cat "$d/slapd.pid")" ;;
  tlsfaults)
    # three slapds whose certificates are wrong for real (the preflight's certificate check):
    # ldaps://127.0.0.1:6371 expired, :6372 made out to another host, :6373 expires in 10 days
    tls_fault_slapd expired 6371
    tls_fault_slapd wronghost 6372
    tls_fault_slapd soon 6373
    echo "openldap TLS faults: ldaps://127.0.0.1:6371 (expired), :6372 (wrong host), :6373 (expires in 10 days)" ;;
  stop)
    for f in expired wronghost soon; do stop_pid "$LAB/openldap-tls-$f/slapd.pid"; done
    stop_pid "$LAB/openldap-notls/slapd.pid"
    stop_pid "$LAB/openldap-replica/run/slapd.pid"
    stop_pid "$LAB/openldap/run/slapd.pid"
    echo "openldap: stopped" ;;
  status) status ;;
  *) echo "usage: $0 start [NUSERS] | replica | replica-stop | replica-start | notls | tlsfaults | restart | crash | stop | status" >&2; exit 2 ;;
esac
