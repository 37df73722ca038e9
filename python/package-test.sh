#!/bin/bash
# The Python package as a user gets it: the wheel maturin builds (abi3, manylinux) installs with
# pip into a fresh virtual environment — nothing compiled there — and works against the lab;
# the sdist carries what a build needs (sources, Cargo.lock, licences, metadata).
# Run by python/run-tests.sh after the tests (the lab must be up).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${CADENAS_VENV:-$HERE/../target/python-venv}
WORK=$HERE/../target/python-package
rm -rf "$WORK" && mkdir -p "$WORK"
LAB=${CADENAS_LAB_DIR:-/tmp/cadenas-lab}

cd "$HERE"
"$VENV/bin/maturin" build -q -o "$WORK/wheels" 2>/dev/null
wheel=$(ls "$WORK"/wheels/cadenas-*.whl)
case "$(basename "$wheel")" in
  *-cp39-abi3-manylinux*) ;;
  *) echo "package-test: not an abi3 manylinux wheel: $(basename "$wheel")" >&2; exit 1 ;;
esac

python3 -m venv "$WORK/fresh"
"$WORK/fresh/bin/pip" install -q --disable-pip-version-check --no-index "$wheel"
site=$("$WORK/fresh/bin/python" -c 'import cadenas, os; print(os.path.dirname(cadenas.__file__))')
for f in py.typed _cadenas.pyi _errors.py; do
  [ -f "$site/$f" ] || { echo "package-test: the wheel lacks cadenas/$f" >&2; exit 1; }
done
meta=$(ls -d "$WORK"/fresh/lib/python*/site-packages/cadenas-*.dist-info)
grep -q '^License-Expression: Apache-2.0 OR MIT' "$meta/METADATA"
ls "$meta"/licenses/LICENSE-APACHE "$meta"/licenses/LICENSE-MIT > /dev/null
# a short script against the lab, from the fresh environment
state=$(cd /tmp && "$WORK/fresh/bin/python" - "$LAB/openldap/cadenas.toml" <<'PY'
import sys

import cadenas

r = cadenas.Responder.from_config(sys.argv[1])
st = r.status("user0002")
try:
    r.status("x*")
except cadenas.InvalidUserName as e:
    assert e.code == 205
print(st.lock.state)
PY
)
case "$state" in
  locked|unlocked) ;;
  *) echo "package-test: unexpected status from the installed wheel: $state" >&2; exit 1 ;;
esac

"$VENV/bin/maturin" sdist -o "$WORK/sdist" > /dev/null 2>&1
sdist=$(ls "$WORK"/sdist/cadenas-*.tar.gz)
listing=$(tar tzf "$sdist")
for f in Cargo.lock Cargo.toml core/src/lib.rs python/src/lib.rs cadenas/__init__.py LICENSE-APACHE LICENSE-MIT PKG-INFO; do
  grep -q "^cadenas-[^/]*/$f$" <<<"$listing" || { echo "package-test: the sdist lacks $f" >&2; exit 1; }
done
echo "package-test: wheel $(basename "$wheel") installed and ran; sdist complete"
