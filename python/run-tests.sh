#!/bin/bash
# The Python half of the test command: a virtual environment made here (maturin, pytest and
# the test dependencies from the package registry), the extension built into it, then the
# stubs checked against the built module, ruff, and pytest against the running lab.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${CADENAS_VENV:-$HERE/../target/python-venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  'maturin>=1.9,<2' 'pytest>=8' 'pytest-timeout>=2' 'pyotp>=2.9' 'mypy>=1.10' 'ruff>=0.6'
export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH"
cd "$HERE"
maturin develop -q
python -m mypy.stubtest cadenas._cadenas --allowlist stubtest-allowlist.txt
python -m mypy --strict cadenas ../examples/python
ruff check --config pyproject.toml cadenas tests ../examples/python
ruff format --config pyproject.toml --check cadenas tests ../examples/python
python -m pytest -q -p no:cacheprovider "$@"
