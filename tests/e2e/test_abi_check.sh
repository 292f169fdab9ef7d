#!/usr/bin/env bash
# tests/e2e/test_abi_check.sh - the ABI record (issue 16, docs/abi.md): the shared
# libraries of the plain build have exactly the ABI committed in abi/*.abi
# (scripts/abi-check.sh: abidw + abidiff), and the check fails on a difference: against a
# doctored baseline that lacks one exported function it reports the function as added.
# SKIPs without abigail-tools or in a sanitizer build. PASS/FAIL lines for tests/run.sh.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT" || exit 1
BUILD=${BUILD:-build}
case "$(basename "$BUILD")" in
    *san*) echo "SKIP abi-check: $BUILD is a sanitizer build (the ABI is the plain build's)"; exit 0 ;;
esac
command -v abidiff >/dev/null || { echo "SKIP abi-check: abidiff not installed (abigail-tools)"; exit 0; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

if BUILD=$BUILD scripts/abi-check.sh >"$tmp/out" 2>&1; then
    echo "PASS abi-check:libraries-match-the-baseline"
else
    echo "FAIL abi-check:libraries-match-the-baseline: $(grep '^abi-check' "$tmp/out" | tr '\n' ' ')"
fi

# The doctored baseline: libsr2fhir without s2f_version_num (its symbol and declaration).
mkdir -p "$tmp/abi"
cp abi/*.abi "$tmp/abi/"
sed -e "/<elf-symbol name='s2f_version_num'/d" \
    -e "/<function-decl name='s2f_version_num'/,/<\/function-decl>/d" \
    abi/libsr2fhir.abi >"$tmp/abi/libsr2fhir.abi"
if cmp -s abi/libsr2fhir.abi "$tmp/abi/libsr2fhir.abi"; then
    echo "FAIL abi-check:fails-on-a-difference: s2f_version_num not found in abi/libsr2fhir.abi"
elif ABI_DIR=$tmp/abi BUILD=$BUILD scripts/abi-check.sh >"$tmp/out" 2>&1; then
    echo "FAIL abi-check:fails-on-a-difference: a baseline without s2f_version_num passed"
elif grep -q "s2f_version_num" "$tmp/out" && grep -q "libsr2fhir.so differs" "$tmp/out"; then
    echo "PASS abi-check:fails-on-a-difference"
else
    echo "FAIL abi-check:fails-on-a-difference: $(tail -2 "$tmp/out" | tr '\n' ' ')"
fi
