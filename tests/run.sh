#!/usr/bin/env bash
# tests/run.sh - runs every test program and script, then prints "N passed, N failed, N skipped".
#
# Each test program (tests/unit binaries, tests/*/test_*.sh, tests/*/test_*.py) prints one
# line per test case: "PASS name", "FAIL name: reason" or "SKIP name: reason". A program that
# exits non-zero without printing a FAIL line counts as one failure of its own.
# Environment: BUILD (build or build-san), SHARED (default ../shared next to the checkout).
set -u
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
export SR2FHIR=${SR2FHIR:-$PWD/$BUILD/sr2fhir}
export SHARED=${SHARED:-$(cd .. && pwd)/shared}
export PYTHON=${PYTHON:-/usr/bin/python3}   # Debian's python3, where python3-pydicom lives
export ROOT=$PWD
log=$(mktemp); trap 'rm -f "$log"' EXIT
pass=0 fail=0 skip=0

run_one() {
    local name=$1; shift
    local out rc
    out=$("$@" 2>"$log.err"); rc=$?
    printf '%s\n' "$out" | grep -E '^(PASS|FAIL|SKIP) ' | sed "s|^|[$name] |"
    local p f s
    p=$(printf '%s\n' "$out" | grep -c '^PASS ')
    f=$(printf '%s\n' "$out" | grep -c '^FAIL ')
    s=$(printf '%s\n' "$out" | grep -c '^SKIP ')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "[$name] FAIL $name: exited with status $rc"; sed 's/^/    /' "$log.err" | tail -20; f=1
    elif [ "$f" -gt 0 ]; then
        sed 's/^/    /' "$log.err" | tail -20
    fi
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] && run_one "$(basename "$t")" "$t"
done
for t in tests/*/test_*.sh; do
    [ -f "$t" ] && run_one "$(basename "$t")" bash "$t"
done
for t in tests/*/test_*.py; do
    [ -f "$t" ] && run_one "$(basename "$t")" "$PYTHON" "$t"
done
rm -f "$log.err"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
