#!/bin/bash
# The Debian packages as a sysadmin meets them, on this machine (a disposable CI host or a lab
# VM: it installs into /usr and /etc, then purges): built (PROFILE=debug by default, for speed),
# installed with dpkg, used — `cadenas --version`, `man`, completions, `pkg-config` and a C
# program linked against the installed library, the PAM module's place, the systemd unit
# verified, `cadenas check` against the lab from the installed binary — then purged, with
# nothing of theirs left behind. Run by `make test` (the lab must be up).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
LAB=${CADENAS_LAB_DIR:-/tmp/cadenas-lab}
export PROFILE=${PROFILE:-debug}
PKGS=(cadenas libcadenas0 libcadenas-dev libpam-cadenas)
MA=$(gcc -print-multiarch)
fail() { echo "package test: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
  echo "package test: skipped (needs root to install packages)"; exit 0
fi
. lab/lib.sh
apt_install man:man-db systemd-analyze:systemd pkg-config:pkg-config dpkg-deb:dpkg \
  /usr/include/security/pam_modules.h:libpam0g-dev
for p in "${PKGS[@]}"; do
  if dpkg -s "$p" > /dev/null 2>&1; then fail "$p is installed already: purge it first"; fi
done
bash packaging/deb/build.sh > /dev/null
dpkg -i target/deb/*.deb > /dev/null
trap 'dpkg --purge "${PKGS[@]}" > /dev/null 2>&1 || true' EXIT

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ "$(/usr/bin/cadenas --version)" = "cadenas $VERSION" ] || fail "cadenas --version: $(/usr/bin/cadenas --version)"
man -w cadenas-drill > /dev/null || fail "man cannot find cadenas-drill(1)"
[ -s /usr/share/bash-completion/completions/cadenas ] || fail "no bash completion"
[ "$(stat -c %a:%U:%G /etc/cadenas/cadenas.toml)" = 640:root:cadenas ] ||
  fail "/etc/cadenas/cadenas.toml is $(stat -c %a:%U:%G /etc/cadenas/cadenas.toml)"
[ "$(stat -c %a:%U /var/lib/cadenas)" = 750:cadenas ] || fail "/var/lib/cadenas"
[ -f "/lib/$MA/security/pam_cadenas.so" ] || fail "pam_cadenas.so is not in /lib/$MA/security"
systemd-analyze verify /lib/systemd/system/cadenas-outbound.service 2>&1 | grep -v "^$" &&
  fail "systemd-analyze verify found problems in cadenas-outbound.service" || true

# a C program built with pkg-config against the installed library, and run
work=$(mktemp -d)
cat > "$work/v.c" <<'EOF'
#include <stdio.h>
#include <cadenas.h>
int main(void) { puts(cadenas_version()); return 0; }
EOF
# shellcheck disable=SC2046
cc "$work/v.c" -o "$work/v" $(pkg-config --cflags --libs cadenas)
[ "$("$work/v")" = "$VERSION" ] || fail "the installed library says $("$work/v")"
ldd "$work/v" | grep -q "/lib/$MA/libcadenas.so.0\|/usr/lib/$MA/libcadenas.so.0" ||
  fail "the program does not load the installed libcadenas.so.0"
rm -rf "$work"

# the example config parses (the directory is not there: a check fails, not the config)
set +e
/usr/bin/cadenas --config /etc/cadenas/cadenas.toml check > /dev/null 2>&1
code=$?
/usr/bin/cadenas --config "$LAB/cadenas.toml" check > "$ROOT/target/deb/check.txt" 2>&1
lab=$?
set -e
[ "$code" = 9 ] || fail "the example config: check exited $code (9 expected: nothing answers)"
[ "$lab" = 1 ] || [ "$lab" = 0 ] || { cat "$ROOT/target/deb/check.txt"; fail "cadenas check against the lab exited $lab"; }
grep -q "^ok   directory: connect over TLS" "$ROOT/target/deb/check.txt" || fail "the lab's check"

# purge: nothing of the packages left
files=$(dpkg -L "${PKGS[@]}" | sort -u)
dpkg --purge "${PKGS[@]}" > /dev/null
trap - EXIT
left=()
while read -r f; do
  case "$f" in /. | /usr | /usr/* | /lib | /lib/* | /etc | /etc/*) ;; *) continue ;; esac
  if [ -e "$f" ] && [ ! -d "$f" ]; then left+=("$f"); fi
done <<<"$files"
[ ${#left[@]} = 0 ] || fail "left after purge: ${left[*]}"
[ ! -e /etc/cadenas ] || fail "/etc/cadenas left after purge"
[ ! -e /var/lib/cadenas ] || fail "/var/lib/cadenas left after purge"
echo "package test: ${PKGS[*]} built, installed, used and purged (the cadenas system user stays, as Debian does)"
