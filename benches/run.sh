#!/bin/bash
# Every comparison of benches/ in one run, then benches/RESULTS.md generated from it.
#   bash benches/run.sh [REPEATS]      (default 3; `make bench` runs this)
# Each repeat starts on a lab built anew (lab/up.sh: fresh OpenLDAP with 1000 users, Dovecot,
# Postfix, PostgreSQL, Samba), so that every method works on users nobody touched. The peers
# (python-ldap3, pyotp, argon2-cffi) are installed into the project's venv from PyPI;
# oathtool from Debian. CADENAS_BENCH_SIZES (default 600,6000) lists the account counts of the
# time-to-contain comparison; CADENAS_BENCH_SSHA_SIZE (default 600) the {SSHA} one.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
REPEATS=${1:-${CADENAS_BENCH_REPEATS:-3}}
export CADENAS_BENCH_SIZES=${CADENAS_BENCH_SIZES:-600,6000}
# shellcheck source=lab/lib.sh
. lab/lib.sh
apt_install oathtool:oathtool
bash python/venv.sh --release
PY=$ROOT/target/python-venv/bin/python
"$PY" -m pip install -q --disable-pip-version-check ldap3 pyotp argon2-cffi
cargo build --release -q -p cadenas-benches --benches
RESULTS=$ROOT/target/bench-results.jsonl
rm -f "$RESULTS"
for r in $(seq "$REPEATS"); do
  echo "== repeat $r of $REPEATS: a fresh lab"
  bash lab/up.sh 1000
  CADENAS_BENCH_RESULTS=$RESULTS CADENAS_BENCH_REPEAT=$r CADENAS_BENCH_PYTHON=$PY \
    cargo bench -q -p cadenas-benches
  CADENAS_BENCH_RESULTS=$RESULTS CADENAS_BENCH_REPEAT=$r "$PY" benches/totp_python.py
done
"$PY" benches/report.py "$RESULTS" > benches/RESULTS.md
echo "== benches/RESULTS.md written ($REPEATS repeats)"
