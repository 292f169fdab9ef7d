#!/usr/bin/env bash
# tests/e2e/test_convert_cli.sh - the `sr2fhir convert` contract over the project's own
# fixtures: one file to a file and to stdout, stdin, several files to a folder and to
# NDJSON, a folder recursively, the conversion report, options, exit codes and one-line
# errors, byte-identical output on a second run, and nothing half-written on failure.
# Prints PASS/FAIL/SKIP lines for tests/run.sh.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
SR2FHIR=${SR2FHIR:-$ROOT/$BUILD/sr2fhir}
PYTHON=${PYTHON:-/usr/bin/python3}
FIX=$ROOT/$BUILD/fixtures
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

ok() { echo "PASS $1"; }
bad() { echo "FAIL $1: $2"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name" "command failed: $*"; fi; }

if ! "$PYTHON" -c 'import pydicom' 2>/dev/null; then
    echo "SKIP convert-cli: $PYTHON has no pydicom (apt-get install python3-pydicom)"; exit 0
fi
[ -f "$FIX/explicit_le.dcm" ] || "$PYTHON" "$ROOT/tests/fixtures/generate.py" "$FIX" >/dev/null

json_get() { "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

# one input, one output file; deterministic
"$SR2FHIR" convert -q "$FIX/explicit_le.dcm" -o "$tmp/a.json"; rc=$?
check "one-file:exit-0" test $rc -eq 0
check "one-file:is-a-transaction-bundle" test "$(json_get "$tmp/a.json" 'd["resourceType"]+"/"+d["type"]')" = "Bundle/transaction"
"$SR2FHIR" convert -q "$FIX/explicit_le.dcm" -o "$tmp/b.json"
check "deterministic:byte-identical" cmp -s "$tmp/a.json" "$tmp/b.json"
# the other encodings carry their own SOP Instance UID, so ids differ: compare with ids
# renumbered in order of appearance and the SR's UID masked
normalized() {
    "$PYTHON" - "$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
t = re.sub(r"1\.2\.826\.0\.1\.3680043\.10\.1500\.5\.\d+", "SR-UID", t)
ids = {}
print(re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
             lambda m: ids.setdefault(m.group(0), "ID%d" % len(ids)), t))
PY
}
# an output that is not a regular file is written in place, never renamed over: a FIFO
# stays a FIFO (and /dev/null a device); a symbolic link stays a link and its target gets
# the Bundle atomically
mkfifo "$tmp/fifo"
timeout 20 cat "$tmp/fifo" > "$tmp/from-fifo.json" & reader=$!  # a test, not a hang, if it breaks
"$SR2FHIR" convert -q "$FIX/explicit_le.dcm" -o "$tmp/fifo"; rc=$?
wait $reader
check "output-fifo:exit-0" test $rc -eq 0
check "output-fifo:still-a-fifo" test -p "$tmp/fifo"
check "output-fifo:bundle-through-it" cmp -s "$tmp/a.json" "$tmp/from-fifo.json"
echo '{}' > "$tmp/target.json"; ln -s target.json "$tmp/link.json"
"$SR2FHIR" convert -q "$FIX/explicit_le.dcm" -o "$tmp/link.json"; rc=$?
check "output-symlink:exit-0" test $rc -eq 0
check "output-symlink:still-a-link" test -L "$tmp/link.json"
check "output-symlink:target-written" cmp -s "$tmp/a.json" "$tmp/target.json"
check "output-symlink:no-temporary-left" test -z "$(ls "$tmp" | grep '\.tmp')"
for enc in implicit_le explicit_be deflated bare_implicit undefined_lengths; do
    "$SR2FHIR" convert -q "$FIX/$enc.dcm" -o "$tmp/$enc.json"
    if [ "$(normalized "$tmp/a.json")" = "$(normalized "$tmp/$enc.json")" ]; then
        ok "same-report-other-encoding:$enc"
    else
        bad "same-report-other-encoding:$enc" "Bundle differs from explicit_le's beyond ids"
    fi
done
"$SR2FHIR" convert -q "$FIX/explicit_le.json" -o "$tmp/d.json"
check "json-twin:same-bundle" cmp -s "$tmp/a.json" "$tmp/d.json"

# stdout and stdin
"$SR2FHIR" convert -q "$FIX/explicit_le.dcm" > "$tmp/out.json"
check "stdout:same-bundle" cmp -s "$tmp/a.json" "$tmp/out.json"
"$SR2FHIR" convert -q - < "$FIX/explicit_le.dcm" > "$tmp/in.json"
check "stdin:same-bundle" cmp -s "$tmp/a.json" "$tmp/in.json"

# options
"$SR2FHIR" convert -q --bundle-type collection "$FIX/explicit_le.dcm" -o "$tmp/col.json"
check "bundle-type:collection" test "$(json_get "$tmp/col.json" 'd["type"]+str(sum("request" in e for e in d["entry"]))')" = "collection0"
"$SR2FHIR" convert -q --fhir-version R4 "$FIX/explicit_le.dcm" -o "$tmp/r4.json"
check "fhir-version:R4-has-no-ImagingSelection-or-profiles" test "$(json_get "$tmp/r4.json" 'sum(e["resource"]["resourceType"]=="ImagingSelection" or "meta" in e["resource"] for e in d["entry"])')" = "0"
"$SR2FHIR" convert -q --pretty "$FIX/explicit_le.dcm" -o "$tmp/p.json"
check "pretty:same-content" test "$(json_get "$tmp/p.json" 'len(d["entry"])')" = "$(json_get "$tmp/a.json" 'len(d["entry"])')"

# usage errors: exit 2, one line
for args in "--bundle-type batch x" "--fhir-version R3 x" "--timezone 0100 x" "--nope x" "" "-o"; do
    # shellcheck disable=SC2086
    "$SR2FHIR" convert $args >/dev/null 2>"$tmp/err"; rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -q '^sr2fhir: ' "$tmp/err"; then
        ok "usage-error:[$args]"
    else
        bad "usage-error:[$args]" "exit $rc, stderr $(head -c 200 "$tmp/err")"
    fi
done

# a failing input leaves nothing behind and exits with its code
printf 'not dicom at all' > "$tmp/bad.dcm"
"$SR2FHIR" convert -q "$tmp/bad.dcm" -o "$tmp/bad.json" 2>"$tmp/err"; rc=$?
check "failure:exit-4" test $rc -eq 4
check "failure:no-output-file" test ! -e "$tmp/bad.json"
check "failure:no-temporary-left" test -z "$(ls "$tmp" | grep tmp)"
check "failure:one-line" test "$(wc -l < "$tmp/err")" -eq 1

# several inputs to a folder, to NDJSON, a folder recursively, with the report
mkdir -p "$tmp/in/sub"
cp "$FIX/explicit_le.dcm" "$tmp/in/one.dcm"; cp "$FIX/num_qualifier.dcm" "$tmp/in/sub/two.dcm"
cp "$tmp/bad.dcm" "$tmp/in/sub/three.dcm"
"$SR2FHIR" convert -q "$tmp/in" -o "$tmp/outdir" --report "$tmp/report.json" 2>/dev/null; rc=$?
check "folder:exit-is-first-failure" test $rc -eq 4
check "folder:bundles-written-mirroring-subfolders" test -f "$tmp/outdir/one.json" -a -f "$tmp/outdir/sub/two.json" -a ! -e "$tmp/outdir/sub/three.json" -a ! -e "$tmp/outdir/two.json"  # issue 9 #3
check "report:summary" test "$(json_get "$tmp/report.json" '"%d/%d/%d" % (d["summary"]["files"], d["summary"]["converted"], d["summary"]["failed"])')" = "3/2/1"
check "report:failed-file-has-its-error" test "$(json_get "$tmp/report.json" '[f["status"] for f in d["files"] if f["input"].endswith("three.dcm")][0]')" = "failed"
"$SR2FHIR" convert -q "$FIX/explicit_le.dcm" "$FIX/num_qualifier.dcm" -o "$tmp/all.ndjson"; rc=$?
check "ndjson:exit-0" test $rc -eq 0
check "ndjson:one-bundle-per-line" test "$("$PYTHON" -c 'import json,sys; print(sum(json.loads(l)["resourceType"]=="Bundle" for l in open(sys.argv[1])))' "$tmp/all.ndjson")" = "2"
"$SR2FHIR" convert "$FIX/explicit_le.dcm" "$FIX/num_qualifier.dcm" >/dev/null 2>"$tmp/err"; rc=$?
check "several-inputs-need-a-destination" test $rc -eq 2
"$SR2FHIR" convert "$FIX/explicit_le.dcm" "$FIX/num_qualifier.dcm" -o "$tmp/o2" 2>"$tmp/err" >/dev/null
check "summary-on-stderr" grep -q '^sr2fhir: 2 files: 2 converted, 0 failed; resources: ' "$tmp/err"
check "help:convert" grep -q -- '--bundle-type' <("$SR2FHIR" help convert)
