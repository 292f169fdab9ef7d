#!/usr/bin/env bash
# scripts/check-generated.sh - the committed generated tables equal what their generators
# make (issue 16, build item 5; docs/generated.md): runs each generator of tools/ with
# Debian's /usr/bin/python3 (python3-pydicom) into a temporary folder and compares the
# result byte for byte with the committed header. Fails, naming the file and both pydicom
# versions, when
#   - the header records another pydicom version than this machine's (CI installs the
#     Debian package the tables were made from, so a different version is a finding, not a
#     reason to skip: install that version, or `make regen` and commit the new tables);
#   - the header differs from the generator's output (a hand edit, a changed generator not
#     followed by `make regen`, or a changed pydicom module: the header records its sha256);
#   - pydicom cannot be imported, or a header is missing.
# Prints "check-generated: OK: ..." or one "check-generated: FAIL: ..." line per finding.
#
#   scripts/check-generated.sh [DIR]    # checks DIR's copies of the headers (default: this
#                                       # checkout; the test gives an edited copy)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$ROOT}
PY=/usr/bin/python3
# header (relative to DIR) and the generator that writes it
TABLES='src/dicom/dictionary_table.h tools/gen_dictionary.py
src/fhir/srt_table.h tools/gen_srt_table.py'

have=$("$PY" -c 'import pydicom; print(pydicom.__version__)' 2>/dev/null) || {
    echo "check-generated: FAIL: $PY cannot import pydicom (apt-get install python3-pydicom; scripts/install-deps.sh installs it)"
    exit 1
}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0 checked=""
while read -r header generator; do
    committed=$DIR/$header
    if [ ! -f "$committed" ]; then
        echo "check-generated: FAIL: $header: no such file in $DIR"; fail=1; continue
    fi
    recorded=$(grep -m1 -o 'Inputs: pydicom [^ ]*' "$committed" | cut -d' ' -f3)
    if [ "$recorded" != "$have" ]; then
        echo "check-generated: FAIL: $header records pydicom ${recorded:-(none)}, $PY has pydicom $have: install Debian's python3-pydicom ${recorded:-of the header}, or \`make regen\` and commit the new tables"
        fail=1; continue
    fi
    fresh=$tmp/$(basename "$header")
    if ! "$PY" -B "$ROOT/$generator" "$fresh" 2>"$tmp/err"; then
        echo "check-generated: FAIL: $generator failed with pydicom $have: $(tail -1 "$tmp/err")"
        fail=1; continue
    fi
    if ! where=$(cmp "$fresh" "$committed" 2>&1); then
        line=$(sed -n 's/.* line \([0-9]*\).*/\1/p' <<<"$where")
        echo "check-generated: FAIL: $header differs from what $generator makes with pydicom $have (first difference at line ${line:-?}; \`make regen\` rewrites it: commit that, or undo the hand edit)"
        diff -u "$committed" "$fresh" | sed -n '3,12p' >&2
        fail=1; continue
    fi
    checked="$checked $header"
done <<<"$TABLES"
[ "$fail" -eq 0 ] && echo "check-generated: OK:$checked equal what the generators make with pydicom $have"
exit "$fail"
