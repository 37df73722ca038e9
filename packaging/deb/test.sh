#!/bin/bash
# The Debian packages as a sysadmin meets them, in a clean Debian 12 root made from Debian's
# own packages (mmdebstrap): built (PROFILE=debug by default, for speed), installed there by
# apt with the dependencies they declare and nothing else, used — `cadenas --version`, `man`,
# completions, the config's owner and mode, the PAM module's place, the systemd unit verified,
# `pkg-config` and a C program built against the installed library, `cadenas check` against
# the lab from the installed binary — then purged, with nothing of theirs left behind. Run by
# `make test` (the lab must be up; the root needs root and deb.debian.org).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
LAB=${CADENAS_LAB_DIR:-/tmp/cadenas-lab}
export PROFILE=${PROFILE:-debug}
PKGS=(cadenas libcadenas0 libcadenas-dev libpam-cadenas)
fail() { echo "package test: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
  echo "package test: skipped (needs root to make a Debian root)"; exit 0
fi
. lab/lib.sh
apt_install mmdebstrap:mmdebstrap dpkg-deb:dpkg /usr/include/security/pam_modules.h:libpam0g-dev
bash packaging/deb/build.sh > /dev/null

R=$ROOT/target/deb/root
cleanup() {
  mountpoint -q "$R$LAB" && umount "$R$LAB"
  mountpoint -q "$R/proc" && umount "$R/proc"
  rm -rf "$R"
}
cleanup
trap cleanup EXIT
# the root: Debian 12 with apt, man-db, pkg-config and a C compiler; the packages installed by
# apt from their files, so a missing dependency in their control files fails here
debs=$(ls "$ROOT"/target/deb/*.deb | paste -sd' ')
mmdebstrap --quiet --variant=apt --include=man-db,pkg-config,gcc,libc6-dev,systemd \
  --customize-hook='mkdir -p "$1/tmp/debs"' \
  --customize-hook="copy-in $debs /tmp/debs" \
  --customize-hook='chroot "$1" sh -c "apt-get install -y -q --no-install-recommends /tmp/debs/*.deb > /tmp/debs/apt.log 2>&1 || { cat /tmp/debs/apt.log; exit 1; }"' \
  bookworm "$R" > "$ROOT/target/deb/mmdebstrap.log" 2>&1 ||
  { tail -30 "$ROOT/target/deb/mmdebstrap.log"; fail "mmdebstrap: no Debian root with the packages"; }
mkdir -p "$R$LAB"
# the lab's files at the same paths inside the root; where this host refuses mounts (no
# CAP_SYS_ADMIN), the installed binary runs the lab's check from outside the root instead
MOUNTED=1
if ! { mount --bind "$LAB" "$R$LAB" && mount -t proc proc "$R/proc"; } 2>/dev/null; then
  MOUNTED=0
  echo "package test: mounts refused here; the lab's check runs the root's binary from outside it"
fi
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
in_root() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

[ "$(in_root cadenas --version)" = "cadenas $VERSION" ] || fail "cadenas --version: $(in_root cadenas --version)"
in_root man cadenas 2>/dev/null | grep -q "cadenas" || fail "man cadenas shows nothing"
in_root man -w cadenas-drill > /dev/null || fail "man cannot find cadenas-drill(1)"
in_root man -w cadenas-watch > /dev/null || fail "man cannot find cadenas-watch(1)"
[ -s "$R/usr/share/bash-completion/completions/cadenas" ] || fail "no bash completion"
[ "$(in_root stat -c %a:%U:%G /etc/cadenas/cadenas.toml)" = 640:root:cadenas ] ||
  fail "/etc/cadenas/cadenas.toml is $(in_root stat -c %a:%U:%G /etc/cadenas/cadenas.toml)"
[ "$(in_root stat -c %a:%U /var/lib/cadenas)" = 750:cadenas ] || fail "/var/lib/cadenas"
MA=$(in_root gcc -print-multiarch)
[ -f "$R/lib/$MA/security/pam_cadenas.so" ] || fail "pam_cadenas.so is not in /lib/$MA/security"
[ -f "$R/lib/systemd/system/cadenas-watch.service" ] || fail "no cadenas-watch.service"
if [ "$MOUNTED" = 1 ]; then
  for unit in cadenas-outbound cadenas-watch; do
    in_root systemd-analyze verify "/lib/systemd/system/$unit.service" 2>&1 | grep -v "^$" &&
      fail "systemd-analyze verify found problems in $unit.service" || true
  done
fi

# a C program built with pkg-config against the installed library, and run
cat > "$R/tmp/v.c" <<'C'
#include <stdio.h>
#include <cadenas.h>
int main(void) { puts(cadenas_version()); return 0; }
C
in_root sh -c 'cc /tmp/v.c -o /tmp/v $(pkg-config --cflags --libs cadenas)' || fail "cc with pkg-config"
[ "$(in_root /tmp/v)" = "$VERSION" ] || fail "the installed library says $(in_root /tmp/v)"
in_root ldd /tmp/v | grep -q "/lib/$MA/libcadenas.so.0" || fail "the program does not load the installed libcadenas.so.0"

# the example config parses (nothing answers: a check fails, not the config); the lab's passes
set +e
in_root cadenas --config /etc/cadenas/cadenas.toml check > /dev/null 2>&1
code=$?
if [ "$MOUNTED" = 1 ]; then
  in_root cadenas --config "$LAB/cadenas.toml" check > "$ROOT/target/deb/check.txt" 2>&1
else
  "$R/usr/bin/cadenas" --config "$LAB/cadenas.toml" check > "$ROOT/target/deb/check.txt" 2>&1
fi
lab=$?
set -e
[ "$code" = 9 ] || fail "the example config: check exited $code (9 expected: nothing answers)"
[ "$lab" = 1 ] || [ "$lab" = 0 ] || { cat "$ROOT/target/deb/check.txt"; fail "cadenas check against the lab exited $lab"; }
grep -q "^ok   directory: connect over TLS" "$ROOT/target/deb/check.txt" || fail "the lab's check"
grep -q "^ok   directory: the server's TLS certificate" "$ROOT/target/deb/check.txt" || fail "the lab's certificate"

# purge: nothing of the packages left
files=$(in_root dpkg -L "${PKGS[@]}" | sort -u)
in_root dpkg --purge "${PKGS[@]}" > /dev/null
left=()
while read -r f; do
  case "$f" in /. | /usr | /usr/* | /lib | /lib/* | /etc | /etc/*) ;; *) continue ;; esac
  if [ -e "$R$f" ] && [ ! -d "$R$f" ]; then left+=("$f"); fi
done <<<"$files"
[ ${#left[@]} = 0 ] || fail "left after purge: ${left[*]}"
[ ! -e "$R/etc/cadenas" ] || fail "/etc/cadenas left after purge"
[ ! -e "$R/var/lib/cadenas" ] || fail "/var/lib/cadenas left after purge"
echo "package test: ${PKGS[*]} built, installed in a clean Debian 12 root, used and purged (the cadenas system user stays, as Debian does)"
