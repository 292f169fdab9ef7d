#!/usr/bin/env bash
# tests/e2e/test_check_calls.sh - scripts/check-calls.sh (issue 14): the built objects
# call down the pipeline only, with no circle between the files of a stage other than the
# known ones; and the script does fail on a call up the pipeline, on a new circle and on a
# known circle that is gone (three tiny object files compiled here).
# Prints PASS/FAIL/SKIP lines for tests/run.sh.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
CC=${CC:-cc}
command -v nm >/dev/null || { echo "SKIP check-calls: nm not installed (binutils)"; exit 0; }

out=$("$ROOT/scripts/check-calls.sh" "$ROOT/$BUILD" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q '^check-calls: OK: ' <<<"$out"; then
    echo "PASS check-calls:$BUILD"
else
    echo "FAIL check-calls:$BUILD: $(grep FAIL <<<"$out" | head -3 | tr '\n' ' ')"
fi

# A made-up build: util/low.c calls fhir/high.c (up the pipeline); json/p.c and json/q.c
# call each other (a circle); fhir/common.c calls fhir/convert.c (a higher layer of the
# FHIR stage) and fhir/high.c is in no layer; the known circles are absent (gone).
mkdir -p "$tmp/b/src/util" "$tmp/b/src/fhir" "$tmp/b/src/json"
printf 'int high(void);\nint low(void);\nint low(void) { return high(); }\n' >"$tmp/low.c"
printf 'int high(void);\nint high(void) { return 1; }\n' >"$tmp/high.c"
printf 'int conv(void);\nint comm(void);\nint comm(void) { return conv(); }\n' >"$tmp/common.c"
printf 'int conv(void);\nint conv(void) { return 2; }\n' >"$tmp/convert.c"
printf 'int q(int);\nint p(int);\nint p(int n) { return n ? q(n - 1) : 0; }\n' >"$tmp/p.c"
printf 'int p(int);\nint q(int);\nint q(int n) { return n ? p(n - 1) : 1; }\n' >"$tmp/q.c"
if "$CC" -c -o "$tmp/b/src/util/low.o" "$tmp/low.c" && "$CC" -c -o "$tmp/b/src/fhir/high.o" "$tmp/high.c" &&
   "$CC" -c -o "$tmp/b/src/fhir/common.o" "$tmp/common.c" && "$CC" -c -o "$tmp/b/src/fhir/convert.o" "$tmp/convert.c" &&
   "$CC" -c -o "$tmp/b/src/json/p.o" "$tmp/p.c" && "$CC" -c -o "$tmp/b/src/json/q.o" "$tmp/q.c"; then
    out=$("$ROOT/scripts/check-calls.sh" "$tmp/b" 2>&1); rc=$?
    [ $rc -eq 1 ] && grep -q '^check-calls: FAIL: up the pipeline: util/low.c uses fhir/high.c (high)$' <<<"$out" &&
        echo "PASS check-calls:up-call-fails" || echo "FAIL check-calls:up-call-fails: exit $rc: $out"
    grep -q '^check-calls: FAIL: circle in json/: p q: ' <<<"$out" &&
        echo "PASS check-calls:circle-fails" || echo "FAIL check-calls:circle-fails: $out"
    grep -q '^check-calls: FAIL: fhir/common.c uses a higher layer: convert.c (conv)$' <<<"$out" &&
        echo "PASS check-calls:layer-fails" || echo "FAIL check-calls:layer-fails: $out"
    grep -q '^check-calls: FAIL: fhir/high.c is in no layer' <<<"$out" &&
        echo "PASS check-calls:unlayered-file-fails" || echo "FAIL check-calls:unlayered-file-fails: $out"
    if ! "$ROOT/scripts/check-calls.sh" "$ROOT/$BUILD" 2>&1 | grep -q '^check-calls: known circle'; then
        echo "SKIP check-calls:gone-known-circle-fails: no known circle left"
    elif grep -q "^check-calls: FAIL: the known circle '.*' is gone" <<<"$out"; then
        echo "PASS check-calls:gone-known-circle-fails"
    else
        echo "FAIL check-calls:gone-known-circle-fails: $out"
    fi
else
    echo "FAIL check-calls:made-up-build: $CC could not compile the test files"
fi
