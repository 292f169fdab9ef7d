#!/usr/bin/env bash
# scripts/abi-check.sh - the ABI record of the shared libraries (issue 16, docs/abi.md):
# builds libsr2fhir.so and libsr2fhir-send.so (`make shared`), describes each with abidw
# (Debian's abigail-tools; only the types the public headers in include/ declare) and
# compares that with the committed baseline abi/LIB.abi using abidiff. Any difference -
# an added, removed or changed function, a struct that grew, a new soname - fails, so an
# ABI change is always a visible, deliberate step:
#
#   scripts/abi-check.sh            compare (CI, .ci/run); exit 1 on any difference
#   scripts/abi-check.sh --update   rewrite abi/*.abi from the current build; commit them
#
# Env: BUILD (default build; a sanitizer build is refused), ABI_DIR (default abi/: where
# the baselines are; the tests point it at a doctored copy). Exit 2: a usage or build
# error, or abidw/abidiff missing (apt-get install abigail-tools).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
ABI_DIR=${ABI_DIR:-$ROOT/abi}
LIBS="libsr2fhir libsr2fhir-send"

die() { echo "abi-check: $*" >&2; exit 2; }

update=0
case "${1:-}" in
    --update) update=1 ;;
    "") ;;
    *) die "usage: $0 [--update]" ;;
esac
case "$(basename "$BUILD")" in
    *san*) die "BUILD=$BUILD is a sanitizer build: its libraries are not the ABI" ;;
esac
command -v abidw >/dev/null && command -v abidiff >/dev/null ||
    die "abidw/abidiff not found (apt-get install abigail-tools)"
make -s BUILD="$BUILD" shared >/dev/null || die "make BUILD=$BUILD shared failed"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/abi-check.XXXXXX") || die "no temporary folder"
trap 'rm -rf "$TMP"' EXIT

# The ABI of $BUILD/LIB.so.0 as abidw writes it: no paths nor source lines (they move
# with every edit), the types of the public headers only.
describe() {
    abidw --no-corpus-path --no-comp-dir-path --no-show-locs --headers-dir include \
          --drop-private-types --out-file "$2" "$BUILD/$1.so.0"
}

status=0
for lib in $LIBS; do
    [ -e "$BUILD/$lib.so.0" ] || die "no $BUILD/$lib.so.0 after make shared"
    describe "$lib" "$TMP/$lib.abi" || die "abidw failed on $BUILD/$lib.so.0"
    if [ $update = 1 ]; then
        mkdir -p "$ABI_DIR" && cp "$TMP/$lib.abi" "$ABI_DIR/$lib.abi" ||
            die "cannot write $ABI_DIR/$lib.abi"
        echo "abi-check: $ABI_DIR/$lib.abi updated: review 'git diff abi/' and commit it"
        continue
    fi
    [ -f "$ABI_DIR/$lib.abi" ] || die "no baseline $ABI_DIR/$lib.abi (scripts/abi-check.sh --update)"
    abidiff --no-show-locs --harmless "$ABI_DIR/$lib.abi" "$TMP/$lib.abi" >"$TMP/$lib.diff" 2>&1
    rc=$?
    if [ $rc = 0 ]; then
        echo "abi-check: $lib.so: the same ABI as $(basename "$ABI_DIR")/$lib.abi"
    else
        status=1
        sed 's/^/    /' "$TMP/$lib.diff"
        echo "abi-check: $lib.so differs from $(basename "$ABI_DIR")/$lib.abi (abidiff exit $rc:" \
             "$( [ $((rc & 8)) != 0 ] && echo incompatible || echo compatible ) change)." \
             "If deliberate: scripts/abi-check.sh --update, commit abi/, and see docs/abi.md" \
             "(an incompatible change needs a new soname)"
    fi
done
exit $status
