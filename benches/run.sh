#!/bin/bash
# Every comparison of benches/ in one run, then benches/RESULTS.md generated from it.
#   bash benches/run.sh [REPEATS]      (default 3; `make bench` runs this)
# Each repeat starts on a lab built anew (lab/up.sh: fresh OpenLDAP with 1000 users, Dovecot,
# Postfix, PostgreSQL, Samba), so that every method works on users nobody touched. The peers
# (python-ldap3, pyotp, argon2-cffi) are installed into the project's venv from PyPI;
# oathtool from Debian. CADENAS_BENCH_SIZES (default 600,6000,60000) lists the account counts
# of the time-to-contain comparison, run in every repeat (the python-ldap3 script only up to
# 6000: at 60 000 it would take about 20 minutes); CADENAS_BENCH_SSHA_SIZE (default 600) the
# {SSHA} one; CADENAS_BENCH_AD_WAVE_SIZES (default 600) the AD lock wave's;
# CADENAS_BENCH_ONCE_SIZES (default none) sizes run in the last repeat only (quicker runs, no
# median for them). A 60 000-account comparison takes about a quarter of an hour: with the
# default sizes, 3 repeats take about an hour. The C bench (TOTP verification through
# libcadenas) is compiled against the release library installed under target/bench-c.
# The outbound policy service is compared with policyd-rate-limit (PyPI) and run end to end
# against the lab Postfix (benches/policy.rs, benches/outbound_e2e.py: CADENAS_BENCH_E2E_RUNS,
# default 20). CADENAS_BENCH_ONLY=outbound runs those two alone (a few minutes) and splices their
# section into benches/RESULTS.md instead of writing it anew; CADENAS_BENCH_ONLY=mfa likewise runs
# the TOTP verifications alone (Rust, Python, C, and their peers; a few minutes), and
# CADENAS_BENCH_ONLY=cli the CLI seen from outside (benches/cli.rs), CADENAS_BENCH_ONLY=ad the lock
# wave on AD with the DC's reset capacity (benches/ad.rs), CADENAS_BENCH_ONLY=time_to_contain the
# OpenLDAP containment at CADENAS_BENCH_SIZES (e.g. 600,6000) with its peers and the Dovecot runs,
# CADENAS_BENCH_ONLY=time_to_contain_pinned the same with slapd and the client on separate cores,
# CADENAS_BENCH_ONLY=watch `cadenas watch` against fail2ban-regex (benches/watch.py).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
REPEATS=${1:-${CADENAS_BENCH_REPEATS:-3}}
export CADENAS_BENCH_SIZES=${CADENAS_BENCH_SIZES:-600,6000,60000}
CADENAS_BENCH_ONCE_SIZES=${CADENAS_BENCH_ONCE_SIZES:-}
# shellcheck source=lab/lib.sh
. lab/lib.sh
apt_install jq:jq oathtool:oathtool fail2ban-regex:fail2ban pkg-config:pkg-config /usr/include/liboath/oath.h:liboath-dev \
  /usr/include/sqlite3.h:libsqlite3-dev
bash python/venv.sh --release
PY=$ROOT/target/python-venv/bin/python
"$PY" -m pip install -q --disable-pip-version-check ldap3 pyotp argon2-cffi policyd-rate-limit "psycopg[binary]"
cargo build --release -q -p cadenas-benches --benches
cargo build --release -q -p cadenas-cli
export CADENAS_BENCH_CLI=$ROOT/target/release/cadenas
E2E_RUNS=${CADENAS_BENCH_E2E_RUNS:-20}
RESULTS=$ROOT/target/bench-results.jsonl
# splice SECTION: replaces benches/RESULTS.md's <!-- SECTION … --> … <!-- /SECTION --> (or, the
# first time, its "## HEADING" section) with report.py's --SECTION output
splice() {
  local name=$1 heading=$2 section
  section=$("$PY" benches/report.py "$RESULTS" "--$name")
  SECTION="$section" NAME="$name" HEADING="$heading" "$PY" - benches/RESULTS.md <<'EOF'
import os, re, sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
new, name, heading = os.environ["SECTION"], os.environ["NAME"], os.environ["HEADING"]
marked = re.compile(rf"<!-- {name}:.*?<!-- /{name} -->", re.S)
plain = re.compile(rf"^## {re.escape(heading)}.*?(?=^## |^<!-- |\Z)", re.S | re.M)
if marked.search(text):
    text = marked.sub(lambda _: new, text)
elif plain.search(text):
    text = plain.sub(lambda _: new + "\n\n", text)
else:
    text = text.rstrip("\n") + "\n\n" + new + "\n"
open(path, "w", encoding="utf-8").write(text)
EOF
}
# every measurement appends to $RESULTS (CADENAS_BENCH_REPEAT says which repeat)
export CADENAS_BENCH_RESULTS=$RESULTS CADENAS_BENCH_PYTHON=$PY
# the measurements run by more than one mode
measure_outbound() {
  cargo bench -q -p cadenas-benches --bench policy
  "$PY" benches/outbound_e2e.py "$E2E_RUNS"
}
measure_totp() { # from Python and from C (the Rust side is benches/mfa.rs)
  local dir
  "$PY" benches/totp_python.py
  dir=$(mktemp -d)
  "$CBENCH/totp_c" "$dir"
  rm -rf "$dir"
}
measure_mfa() {
  cargo bench -q -p cadenas-benches --bench mfa
  measure_totp
}
# only NAME HEADING USERS COMMAND...: REPEATS times a fresh lab of USERS users and COMMAND, then
# NAME's section of benches/RESULTS.md made anew from them (report.py --NAME, spliced); exits
only() {
  local name=$1 heading=$2 users=$3 r
  shift 3
  rm -f "$RESULTS"
  local sizes=$CADENAS_BENCH_SIZES
  for r in $(seq "$REPEATS"); do
    echo "== repeat $r of $REPEATS ($name only)"
    bash lab/up.sh "$users"
    export CADENAS_BENCH_REPEAT=$r
    # sizes asked for once (CADENAS_BENCH_ONCE_SIZES): in the last repeat only
    if [ "$r" = "$REPEATS" ] && [ -n "${CADENAS_BENCH_ONCE_SIZES:-}" ]; then
      CADENAS_BENCH_SIZES=$sizes,$CADENAS_BENCH_ONCE_SIZES "$@"
    else
      CADENAS_BENCH_SIZES=$sizes "$@"
    fi
  done
  splice "$name" "$heading"
  # a second section measured by the same runs (ALSO_NAME, ALSO_HEADING)
  if [ -n "${ALSO_NAME:-}" ]; then splice "$ALSO_NAME" "$ALSO_HEADING"; fi
  echo "== the $name section of benches/RESULTS.md written ($REPEATS repeats)"
  exit 0
}
if [ "${CADENAS_BENCH_ONLY:-}" = outbound ]; then
  only outbound "Outbound policy service" 300 measure_outbound
fi
# TOTP verification from C: benches/totp_c.c against the release libcadenas, installed here
CBENCH=$ROOT/target/bench-c
make -s install PREFIX="$CBENCH" FFI_PROFILE=release
# shellcheck disable=SC2046
cc -std=c11 -O2 -Wall -Wextra -Werror $(PKG_CONFIG_PATH=$CBENCH/lib/pkgconfig pkg-config --cflags cadenas) \
  benches/totp_c.c -o "$CBENCH/totp_c" $(PKG_CONFIG_PATH=$CBENCH/lib/pkgconfig pkg-config --libs cadenas) \
  -loath -lsqlite3 -Wl,-rpath,"$CBENCH/lib"
# The pinned method (issue 35): slapd, every thread, on core 0; this bench, its peers (ldapmodify,
# python-ldap3) and Dovecot on core 1 — the capacity run in the same process, pinned the same way.
# Recorded apart (`time_to_contain_pinned`), beside the unpinned figures.
pinned_time_to_contain() {
  local lab=${CADENAS_LAB_DIR:-/tmp/cadenas-lab} p
  taskset -a -p -c 0 "$(cat "$lab/openldap/run/slapd.pid")" > /dev/null
  for p in $(pgrep -f "$lab/dovecot/"); do taskset -a -p -c 1 "$p" > /dev/null; done
  CADENAS_BENCH_PINNED=1 taskset -c 1 cargo bench -q -p cadenas-benches --bench time_to_contain
}
case "${CADENAS_BENCH_ONLY:-}" in
  cli) only cli "The CLI from outside" 300 cargo bench -q -p cadenas-benches --bench cli ;;
  ad) only ad_wave "The lock wave on AD" 1000 cargo bench -q -p cadenas-benches --bench ad ;;
  time_to_contain)
    # the incident record of each containment is measured by the same runs
    ALSO_NAME=incident_report ALSO_HEADING="The incident record (\`cadenas report\`), from each containment's journal"
    only time_to_contain "Time to contain" 1000 cargo bench -q -p cadenas-benches --bench time_to_contain ;;
  time_to_contain_pinned) only time_to_contain_pinned "Time to contain, pinned" 1000 pinned_time_to_contain ;;
  mfa) only mfa "TOTP verification and argon2id" 300 measure_mfa ;;
  watch) only watch "Noticing an attack" 300 "$PY" benches/watch.py ;;
esac
rm -f "$RESULTS"
for r in $(seq "$REPEATS"); do
  echo "== repeat $r of $REPEATS: a fresh lab"
  bash lab/up.sh 1000
  export CADENAS_BENCH_REPEAT=$r
  sizes=$CADENAS_BENCH_SIZES
  # sizes asked for once: in the last repeat only
  [ "$r" = "$REPEATS" ] && [ -n "${CADENAS_BENCH_ONCE_SIZES:-}" ] && sizes=$sizes,$CADENAS_BENCH_ONCE_SIZES
  CADENAS_BENCH_SIZES=$sizes cargo bench -q -p cadenas-benches
  measure_totp
  "$PY" benches/outbound_e2e.py "$E2E_RUNS"
  "$PY" benches/watch.py
done
cp benches/RESULTS.md "$RESULTS.previous.md" 2>/dev/null || true
"$PY" benches/report.py "$RESULTS" > benches/RESULTS.md
# the sections only a mode of their own measures (the pinned method) are kept from the last
# RESULTS.md, each with its own date
"$PY" - benches/RESULTS.md "$RESULTS.previous.md" <<'EOF'
import os, re, sys
new_path, old_path = sys.argv[1], sys.argv[2]
if os.path.exists(old_path):
    new, old = open(new_path, encoding="utf-8").read(), open(old_path, encoding="utf-8").read()
    # the sections the full run does not measure
    for m in re.finditer(r"<!-- (time_to_contain_pinned):.*?<!-- /\1 -->", old, re.S):
        if f"<!-- {m.group(1)}:" not in new:
            new = new.rstrip("\n") + "\n\n" + m.group(0) + "\n"
    open(new_path, "w", encoding="utf-8").write(new)
EOF
echo "== benches/RESULTS.md written ($REPEATS repeats)"
