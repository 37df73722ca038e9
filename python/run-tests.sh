#!/bin/bash
# The Python half of the test command: the package built into its own virtual environment
# (venv.sh), the stubs checked against the built module, mypy, ruff, then pytest against the
# running lab (warnings are errors, each test has a timeout: pyproject.toml).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${CADENAS_VENV:-$HERE/../target/python-venv}
# the report page is opened in a real headless browser (Debian's Chromium)
# shellcheck source=../lab/lib.sh
. "$HERE/../lab/lib.sh"
apt_install chromium:chromium
bash "$HERE/venv.sh"
export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH"
cd "$HERE"
python -m mypy.stubtest cadenas._cadenas --allowlist stubtest-allowlist.txt
python -m mypy --strict cadenas ../examples/python ../tools/public_api.py ../tools/check_docs.py ../benches/totp_python.py ../benches/report.py ../benches/outbound_e2e.py ../benches/watch.py
ruff check --config pyproject.toml cadenas tests ../tools/public_api.py ../tools/check_docs.py ../examples/python ../benches/totp_python.py ../benches/contain_ldap3.py ../benches/contain_ldap3_ad.py ../benches/report.py ../benches/outbound_e2e.py ../benches/watch.py
ruff format --config pyproject.toml --check cadenas tests ../tools/public_api.py ../tools/check_docs.py ../examples/python ../benches/totp_python.py ../benches/contain_ldap3.py ../benches/contain_ldap3_ad.py ../benches/report.py ../benches/outbound_e2e.py ../benches/watch.py
python -m pytest -q -p no:cacheprovider "$@"
bash "$HERE/package-test.sh"
