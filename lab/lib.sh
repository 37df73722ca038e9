# Shared helpers for the lab scripts. Sourced, not run.
#
# Everything the lab creates lives under $CADENAS_LAB_DIR (default /tmp/cadenas-lab), one
# sub-directory per server. Keep that path short: slapd's ldapi socket path must fit in
# 108 bytes.

CADENAS_LAB_DIR=${CADENAS_LAB_DIR:-/tmp/cadenas-lab}
LAB=$CADENAS_LAB_DIR
CA_DIR=$LAB/ca

T0=$(date +%s.%N)
lap() { awk -v a="$T0" -v b="$(date +%s.%N)" -v m="$1" 'BEGIN{printf "[lab %6.2fs] %s\n", b-a, m}' >&2; }
die() { echo "lab: $*" >&2; exit 1; }

# apt_install CMD:PACKAGE ... — installs only the packages whose command is missing.
# Naming an installed package would upgrade it (seen: openssl), so only missing ones are named.
# /usr/sbin/policy-rc.d (exit 101) keeps package postinst scripts from starting system daemons;
# it is created only for the install and removed again if it was not there before.
apt_install() {
  local want="" pair cmd pkg
  for pair in "$@"; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    if [ "${cmd#/}" != "$cmd" ]; then [ -e "$cmd" ] && continue; else command -v "$cmd" >/dev/null 2>&1 && continue; fi
    want="$want $pkg"
  done
  [ -z "$want" ] && return 0
  [ "$(id -u)" = 0 ] || die "need root to install:$want"
  local created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -f "$LAB/.apt-updated" ] || [ -n "$(find "$LAB/.apt-updated" -mmin +360 2>/dev/null)" ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -q >&2
    mkdir -p "$LAB"; touch "$LAB/.apt-updated"
  fi
  # shellcheck disable=SC2086
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $want >&2
  [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  lap "installed:$want"
}

# lab_ca — a throwaway CA shared by every lab server (rustls needs a real CA + SAN certs).
lab_ca() {
  mkdir -p "$CA_DIR"
  if [ ! -s "$CA_DIR/ca.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=Cadenas Lab CA' \
      -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
      -keyout "$CA_DIR/ca.key" -out "$CA_DIR/ca.pem" 2>/dev/null
    chmod 600 "$CA_DIR/ca.key"
  fi
}

# lab_server_cert DIR NAME [IP] — key.pem/cert.pem in DIR for NAME, 127.0.0.1 (or IP), ::1,
# localhost, the host name.
lab_server_cert() {
  local dir=$1 name=$2 ip=${3:-127.0.0.1} san
  [ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ] && return 0
  lab_ca
  mkdir -p "$dir"
  san="DNS:localhost,DNS:$name,IP:$ip,IP:::1,DNS:$(hostname)"
  local fqdn; fqdn=$(hostname -f 2>/dev/null || true)
  [ -n "$fqdn" ] && [ "$fqdn" != "$(hostname)" ] && san="$san,DNS:$fqdn"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$dir/key.pem" -out "$dir/req.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' "$san" > "$dir/ext.cnf"
  openssl x509 -req -in "$dir/req.csr" -CA "$CA_DIR/ca.pem" -CAkey "$CA_DIR/ca.key" -CAcreateserial \
    -days 3650 -out "$dir/cert.pem" -extfile "$dir/ext.cnf" 2>/dev/null
  chmod 600 "$dir/key.pem"
}

# stop_pid FILE — SIGTERM the PID in FILE and wait (up to 10 s) until it is gone.
stop_pid() {
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; }
  fi
  rm -f "$f"
}

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# quote_env FILE — rewrites KEY=VALUE lines as KEY='VALUE' (a ' inside becomes '\'') so that
# `. FILE` works in a shell whatever the values hold (the AD MFA group's DN has a space), and
# checks it: a lab.env a shell cannot read fails the lab.
quote_env() {
  local f=$1
  sed -i -E "/^[A-Za-z_][A-Za-z0-9_]*=/{s/'/'\\\\''/g; s/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/\1='\2'/}" "$f"
  ( set -e; set -a; . "$f" ) || die "$f cannot be read by a shell"
}
