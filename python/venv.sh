#!/bin/bash
# Makes (once) the virtual environment of the Python package's tests and benchmarks, installs
# maturin and the test/bench dependencies from the package registry, and builds the extension
# into it (`maturin develop`; pass --release for benchmarks). Prints nothing on success.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${CADENAS_VENV:-$HERE/../target/python-venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  'maturin>=1.9,<2' 'pytest>=8' 'pytest-timeout>=2' 'pyotp>=2.9' 'argon2-cffi>=23' 'mypy>=1.10' 'ruff>=0.6' 'tqdm>=4.66' 'psycopg[binary]>=3.1'
cd "$HERE"
VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" maturin develop -q "$@"
