#!/bin/bash
# The C half of the test command: the header is what cbindgen (pinned) makes of ffi/src, the
# library installs with its pkg-config file, every C program compiles -Wall -Wextra -Werror
# against the installed library (shared and static) and runs under valgrind memcheck, and the
# PAM module answers pamtester against the real lab (started by lab/up.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
# shellcheck source=../../lab/lib.sh
. lab/lib.sh
CBINDGEN_VERSION=0.29.4
WORK=${CADENAS_C_WORK:-$ROOT/target/c-tests}
PREFIX=$WORK/prefix

apt_install pamtester:pamtester /usr/include/security/pam_modules.h:libpam0g-dev \
  /usr/include/jansson.h:libjansson-dev valgrind:valgrind pkg-config:pkg-config oathtool:oathtool \
  ldapadd:ldap-utils
if [ "$(cbindgen --version 2>/dev/null)" != "cbindgen $CBINDGEN_VERSION" ]; then
  cargo install -q --locked cbindgen --version "$CBINDGEN_VERSION"
fi

echo "== the committed header is what cbindgen $CBINDGEN_VERSION makes of ffi/src"
rm -rf "$WORK"; mkdir -p "$WORK"
cbindgen -q --config ffi/cbindgen.toml --crate cadenas-ffi --output "$WORK/cadenas.h" ffi
if ! diff -u ffi/include/cadenas.h "$WORK/cadenas.h"; then
  echo "ffi/include/cadenas.h is stale: run 'make header' and commit it" >&2
  exit 1
fi

echo "== make install PREFIX=$PREFIX"
make -s install PREFIX="$PREFIX" FFI_PROFILE=debug
export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
CFLAGS=(-std=c11 -Wall -Wextra -Werror -g)
CADENAS_CFLAGS=$(pkg-config --cflags cadenas)
CADENAS_LIBS=$(pkg-config --libs cadenas)
CADENAS_STATIC=("$PREFIX/lib/libcadenas.a" $(pkg-config --libs-only-l --static cadenas | sed 's/-lcadenas//'))
# shellcheck disable=SC2086
{
  cc "${CFLAGS[@]}" $CADENAS_CFLAGS ffi/tests/test_api.c -o "$WORK/test_api" $CADENAS_LIBS -ljansson
  cc "${CFLAGS[@]}" $CADENAS_CFLAGS ffi/tests/test_api.c -o "$WORK/test_api_static" "${CADENAS_STATIC[@]}" -ljansson
  cc "${CFLAGS[@]}" $CADENAS_CFLAGS examples/c/contain.c -o "$WORK/contain" $CADENAS_LIBS
  cc "${CFLAGS[@]}" $CADENAS_CFLAGS examples/c/contain.c -o "$WORK/contain_static" "${CADENAS_STATIC[@]}"
  cc "${CFLAGS[@]}" -fPIC -shared $CADENAS_CFLAGS examples/c/pam/pam_cadenas.c -o "$WORK/pam_cadenas.so" \
    -Wl,--version-script=examples/c/pam/exports.map $CADENAS_LIBS -lpam
}
# The C example of the README and of the user guide compiles as it is written.
for doc in README.md docs/guide/src/c.md; do
  {
    printf '#include <stdio.h>\n'
    awk '/^```c$/{on=1; next} /^```$/{if(on){exit}} on' "$doc" | sed -n '1p'
    printf 'int main(void) {\n'
    awk '/^```c$/{on=1; next} /^```$/{if(on){exit}} on' "$doc" | sed '1d'
    printf 'return 0; }\n'
  } > "$WORK/doc_example.c"
  grep -q cadenas_responder_contain "$WORK/doc_example.c" || { echo "no C example in $doc" >&2; exit 1; }
  # shellcheck disable=SC2086
  cc "${CFLAGS[@]}" $CADENAS_CFLAGS "$WORK/doc_example.c" -o "$WORK/doc_example" $CADENAS_LIBS
done
if nm -D --defined-only "$WORK/pam_cadenas.so" | awk '{print $3}' | grep -v '^pam_sm_' | grep -q .; then
  echo "pam_cadenas.so exports more than the PAM entry points" >&2; exit 1
fi
if ldd "$WORK/contain_static" | grep -q libcadenas; then
  echo "contain_static is not static in libcadenas" >&2; exit 1
fi

VALGRIND=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
  --errors-for-leak-kinds=definite,indirect --num-callers=40 --suppressions="$ROOT/ffi/tests/valgrind.supp")

# --- lab users -----------------------------------------------------------------------------
ENV_FILE=$LAB/openldap/lab.env
[ -s "$ENV_FILE" ] || die "$ENV_FILE is missing: start the lab with 'bash lab/up.sh'"
# shellcheck disable=SC1090
. "$ENV_FILE"
export LDAPTLS_CACERT=$CADENAS_LAB_CA LDAPTLS_REQCERT=demand
admin() { "$@" -x -H "$CADENAS_LAB_LDAPS_URL" -D "$CADENAS_LAB_ADMIN_DN" -w "$CADENAS_LAB_ADMIN_PW" >/dev/null; }
tag=c$$$(date +%s | tail -c 5)
new_user() { # new_user NAME [mfa]
  local uid=$1 dn="uid=$1,$CADENAS_LAB_PEOPLE"
  printf 'dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: C\nmail: %s@example.test\nuserPassword: %s\n' \
    "$dn" "$uid" "$uid" "$uid" "$CADENAS_LAB_USER_PW" | admin ldapadd
  if [ "${2:-}" = mfa ]; then
    printf 'dn: %s\nchangetype: modify\nadd: member\nmember: %s\n' "$CADENAS_LAB_MFA_GROUP" "$dn" | admin ldapmodify
  fi
}
for u in a1 a2 a3 pm pp pc; do new_user "$tag$u"; done
new_user "${tag}mfa" mfa
new_user "${tag}dov" mfa

# A config of the test's own: the lab directory, a journal and an MFA store in $WORK.
CONFIG=$WORK/cadenas.toml
sed -e "s|^path = .*|path = \"$WORK/journal.jsonl\"|" \
  -e "s|^database = .*|database = \"$WORK/mfa/mfa.db\"|" \
  -e "s|^key_file = .*|key_file = \"$WORK/mfa/mfa.key\"|" "$CADENAS_LAB_CONFIG" > "$CONFIG"
mkdir -p "$WORK/mfa" "$WORK/api"

echo "== C API tests (shared, then static library), under valgrind"
"${VALGRIND[@]}" "$WORK/test_api" fixtures/totp/rfc6238.json "$WORK/api" "$CONFIG" \
  "$CADENAS_LAB_USER_PW" "${tag}a1" "${tag}a2" "${tag}a3"
rm -rf "$WORK/api"; mkdir -p "$WORK/api"
for u in s1 s2 s3; do new_user "$tag$u"; done
"${VALGRIND[@]}" "$WORK/test_api_static" fixtures/totp/rfc6238.json "$WORK/api" "$CONFIG" \
  "$CADENAS_LAB_USER_PW" "${tag}s1" "${tag}s2" "${tag}s3"

echo "== examples/c/contain (shared and static), under valgrind"
"${VALGRIND[@]}" "$WORK/contain" "$CONFIG" "${tag}pc" "$WORK/pc.pw" > "$WORK/contain.json"
grep -q '"done": 1' "$WORK/contain.json"
[ "$(stat -c %a "$WORK/pc.pw")" = 600 ]
set +e
"${VALGRIND[@]}" "$WORK/contain_static" "$CONFIG" "no-such-user-$tag" "$WORK/none.pw" > "$WORK/contain-unknown.json"
rc=$?
set -e
[ "$rc" = 1 ] || { echo "contain of an unknown user exited $rc, want 1" >&2; exit 1; }
grep -q '"user_not_found"' "$WORK/contain-unknown.json"
[ ! -e "$WORK/none.pw" ]

export CADENAS_LAB_USER_PW
bash "$ROOT/examples/c/pam/test-pam.sh" "$WORK" "$CONFIG" "$tag" "${VALGRIND[@]}"
bash "$ROOT/examples/c/pam/test-dovecot-pam.sh" "$WORK" "$CONFIG" "$tag"
echo "C tests: all passed"
