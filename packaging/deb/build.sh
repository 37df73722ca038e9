#!/bin/bash
# `make package`: the Debian packages, with dpkg-deb, into target/deb/:
#   cadenas         the CLI, its man pages and shell completions, an example
#                   /etc/cadenas/cadenas.toml (root and the cadenas group only), the hardened
#                   systemd units of the outbound policy service and the watcher, the runbooks
#   libcadenas0     the C library (soname libcadenas.so.0)
#   libcadenas-dev  cadenas.h, libcadenas.a, the .so link, cadenas.pc
#   libpam-cadenas  pam_cadenas.so in the multiarch security directory
# PROFILE=release (default) or debug (what the package test builds, faster).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PROFILE=${PROFILE:-release}
CARGO=${CARGO:-cargo}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
DEBVERSION="$(sed 's/-/~/' <<<"$VERSION")-1"
ARCH=$(dpkg --print-architecture)
MA=$(gcc -print-multiarch)
OUT=$ROOT/target/deb
STAGE=$OUT/stage
rm -rf "$OUT" && mkdir -p "$STAGE"

flag=()
[ "$PROFILE" = release ] && flag=(--release)
"$CARGO" build -q "${flag[@]}" -p cadenas-cli
"$CARGO" build -q "${flag[@]}" -p cadenas-ffi
BIN=$ROOT/target/$PROFILE

copyright() { # $1: package dir
  install -d "$1/usr/share/doc/$(basename "$1")"
  cat > "$1/usr/share/doc/$(basename "$1")/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: cadenas
Source: https://example.invalid/cadenas

Files: *
Copyright: 2026 The Cadenas developers
License: Apache-2.0 or MIT
 On Debian systems the Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0.
 The MIT licence:
$(sed -e 's/^$/./' -e 's/^/ /' LICENSE-MIT)
EOF
}

control() { # $1: package dir, $2: name, $3: depends, $4: section, $5: description
  install -d "$1/DEBIAN"
  local size
  size=$(du -sk --exclude=DEBIAN "$1" | cut -f1)
  cat > "$1/DEBIAN/control" <<EOF
Package: $2
Version: $DEBVERSION
Architecture: $ARCH
Maintainer: The Cadenas developers <cadenas@example.invalid>
Installed-Size: $size
Depends: $3
Section: $4
Priority: optional
Homepage: https://example.invalid/cadenas
Description: $5
EOF
}

# --- cadenas: the CLI ----------------------------------------------------------------------
P=$STAGE/cadenas
install -D -m 755 "$BIN/cadenas" "$P/usr/bin/cadenas"
strip --strip-unneeded "$P/usr/bin/cadenas"
"$BIN/cadenas" man --output "$OUT/man"
install -d "$P/usr/share/man/man1"
for page in "$OUT"/man/*.1; do
  gzip -9n < "$page" > "$P/usr/share/man/man1/$(basename "$page").gz"
done
install -d "$P/usr/share/bash-completion/completions" "$P/usr/share/zsh/vendor-completions" \
  "$P/usr/share/fish/vendor_completions.d"
"$BIN/cadenas" completions bash > "$P/usr/share/bash-completion/completions/cadenas"
"$BIN/cadenas" completions zsh > "$P/usr/share/zsh/vendor-completions/_cadenas"
"$BIN/cadenas" completions fish > "$P/usr/share/fish/vendor_completions.d/cadenas.fish"
install -D -m 640 packaging/cadenas.toml "$P/etc/cadenas/cadenas.toml"
install -D -m 644 packaging/systemd/cadenas-outbound.service "$P/lib/systemd/system/cadenas-outbound.service"
install -D -m 644 packaging/systemd/cadenas-watch.service "$P/lib/systemd/system/cadenas-watch.service"
install -d "$P/usr/share/doc/cadenas"
for f in README.md CHANGELOG.md docs/runbook.md docs/runbook.fr.md docs/guide/src/configuration.md; do
  gzip -9n < "$f" > "$P/usr/share/doc/cadenas/$(basename "$f").gz"
done
copyright "$P"
control "$P" cadenas "libc6 (>= 2.34), libgcc-s1, passwd" admin \
  "compromised-credential response for LDAP and Active Directory
 Locks a stolen account, resets its password with a forced change, revokes its sessions
 (IMAP, mail rules, SMTP), requires MFA and journals every step in a tamper-evident journal;
 releases it later to exactly its original state. For one account or thousands, with a dry
 run first, a preflight (cadenas check) and a fire drill (cadenas drill)."
echo "/etc/cadenas/cadenas.toml" > "$P/DEBIAN/conffiles"
cat > "$P/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  getent group cadenas > /dev/null || groupadd --system cadenas
  getent passwd cadenas > /dev/null || useradd --system --gid cadenas --home-dir /var/lib/cadenas \
    --no-create-home --shell /usr/sbin/nologin --comment "Cadenas services" cadenas
  install -d -m 0750 -o cadenas -g cadenas /var/lib/cadenas
  chgrp cadenas /etc/cadenas /etc/cadenas/cadenas.toml
  chmod 0750 /etc/cadenas
  chmod 0640 /etc/cadenas/cadenas.toml
fi
EOF
cat > "$P/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
  # the journals and MFA stores are the incident record: a purge removes them, on purpose
  rm -rf /var/lib/cadenas
  rm -rf /etc/cadenas
fi
EOF
chmod 755 "$P/DEBIAN/postinst" "$P/DEBIAN/postrm"

# --- libcadenas0 and libcadenas-dev -----------------------------------------------------------
L=$STAGE/libcadenas0
install -D -m 644 "$BIN/libcadenas.so" "$L/usr/lib/$MA/libcadenas.so.$VERSION"
strip --strip-unneeded "$L/usr/lib/$MA/libcadenas.so.$VERSION"
ln -s "libcadenas.so.$VERSION" "$L/usr/lib/$MA/libcadenas.so.0"
copyright "$L"
control "$L" libcadenas0 "libc6 (>= 2.34), libgcc-s1" libs \
  "compromised-credential response for LDAP and Active Directory - C library
 libcadenas: containment, release, MFA (TOTP with a durable replay guard) and password + code
 authentication for C programs (PAM modules, RADIUS plugins)."
echo "libcadenas 0 libcadenas0 (>= $DEBVERSION)" > "$L/DEBIAN/shlibs"
echo "activate-noawait ldconfig" > "$L/DEBIAN/triggers"

D=$STAGE/libcadenas-dev
install -D -m 644 ffi/include/cadenas.h "$D/usr/include/cadenas.h"
install -D -m 644 "$BIN/libcadenas.a" "$D/usr/lib/$MA/libcadenas.a"
strip --strip-debug "$D/usr/lib/$MA/libcadenas.a"
ln -s libcadenas.so.0 "$D/usr/lib/$MA/libcadenas.so"
install -d "$D/usr/lib/$MA/pkgconfig"
sed -e 's|@PREFIX@|/usr|' -e "s|@VERSION@|$VERSION|" \
  -e "s|^libdir=.*|libdir=\${prefix}/lib/$MA|" -e 's| -Wl,-rpath,${libdir}||' \
  ffi/cadenas.pc.in > "$D/usr/lib/$MA/pkgconfig/cadenas.pc"
copyright "$D"
control "$D" libcadenas-dev "libcadenas0 (= $DEBVERSION)" libdevel \
  "compromised-credential response for LDAP and Active Directory - C development files
 The header cadenas.h, the static library and the pkg-config file of libcadenas."

# --- libpam-cadenas ---------------------------------------------------------------------------
M=$STAGE/libpam-cadenas
install -d "$M/lib/$MA/security"
cc -std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -I ffi/include examples/c/pam/pam_cadenas.c \
  -o "$M/lib/$MA/security/pam_cadenas.so" -Wl,--version-script=examples/c/pam/exports.map \
  -L "$BIN" -l:libcadenas.so -lpam -Wl,--no-undefined
chmod 644 "$M/lib/$MA/security/pam_cadenas.so"
copyright "$M"
control "$M" libpam-cadenas "libcadenas0 (= $DEBVERSION), libpam0g" admin \
  "compromised-credential response for LDAP and Active Directory - PAM module
 pam_cadenas.so: password + TOTP code against the directory and the Cadenas MFA store."

for p in cadenas libcadenas0 libcadenas-dev libpam-cadenas; do
  # xz for a release; a debug build (the tests') is compressed lightly, it is thrown away
  if [ "$PROFILE" = release ]; then z=(-Zxz); else z=(-Zgzip -z1); fi
  dpkg-deb "${z[@]}" --build --root-owner-group "$STAGE/$p" "$OUT/${p}_${DEBVERSION}_${ARCH}.deb" > /dev/null
done
ls "$OUT"/*.deb
