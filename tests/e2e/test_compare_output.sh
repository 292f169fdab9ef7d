#!/usr/bin/env bash
# tests/e2e/test_compare_output.sh - scripts/compare-output.sh, the byte-identity check of
# issue 14, in its cheap form (--bins: no builds): the built sr2fhir against itself must
# compare equal (exit 0: 32 option combinations and each input alone the same), and
# against a wrapper whose output differs (every conversion given --timezone +0100, which
# moves the times of reports without a Timezone Offset) it must report the difference and
# exit 1. The full form (building a previous commit) is run by hand before landing
# conversion changes: `scripts/compare-output.sh [BASE]`.
# Prints PASS/FAIL/SKIP lines for tests/run.sh.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
SR2FHIR=${SR2FHIR:-$ROOT/$BUILD/sr2fhir}
PYTHON=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

case "$(basename "$BUILD")" in
    *san*) echo "SKIP compare-output: runs once, in the plain build (BUILD=$BUILD)"; exit 0 ;;
esac
if ! "$PYTHON" -c 'import pydicom' 2>/dev/null; then
    echo "SKIP compare-output: $PYTHON has no pydicom (apt-get install python3-pydicom)"; exit 0
fi
[ -x "$SR2FHIR" ] || { echo "FAIL compare-output: $SR2FHIR not built"; exit 1; }

PYTHON=$PYTHON "$ROOT/scripts/compare-output.sh" --bins "$SR2FHIR" "$SR2FHIR" >"$tmp/same.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q '^compare-output: OK: byte-identical' "$tmp/same.log" &&
   [ "$(grep -c '^same ' "$tmp/same.log")" -eq 33 ]; then
    echo "PASS compare-output:same-binary"
else
    echo "FAIL compare-output:same-binary: exit $rc, $(tail -1 "$tmp/same.log")"
fi

printf '#!/bin/sh\nexec "%s" "$@" --timezone +0100\n' "$SR2FHIR" >"$tmp/changed"
chmod +x "$tmp/changed"
PYTHON=$PYTHON "$ROOT/scripts/compare-output.sh" --bins "$SR2FHIR" "$tmp/changed" >"$tmp/diff.log" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q '^compare-output: FAIL: ' "$tmp/diff.log" &&
   grep -q '^DIFF transaction.R5.default.compact.plain: ' "$tmp/diff.log"; then
    echo "PASS compare-output:changed-output-fails"
else
    echo "FAIL compare-output:changed-output-fails: exit $rc, $(tail -1 "$tmp/diff.log")"
fi
