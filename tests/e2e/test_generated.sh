#!/usr/bin/env bash
# tests/e2e/test_generated.sh - scripts/check-generated.sh (issue 16, build item 5): the
# committed dictionary and SRT tables equal what tools/gen_*.py make with Debian's pydicom;
# and the check does fail, naming the file and the pydicom version, on a copy with one
# table entry edited (each table), with another recorded pydicom version, and with a header
# missing. Prints PASS/FAIL/SKIP lines for tests/run.sh.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
CHECK=$ROOT/scripts/check-generated.sh
have=$(/usr/bin/python3 -c 'import pydicom; print(pydicom.__version__)' 2>/dev/null) || {
    echo "SKIP generated: /usr/bin/python3 has no pydicom (python3-pydicom not installed)"; exit 0; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
DICT=src/dicom/dictionary_table.h SRT=src/fhir/srt_table.h

# copy NAME: a fresh copy of the committed headers in $tmp/NAME (the tree the check reads)
copy() {
    rm -rf "${tmp:?}/$1"; mkdir -p "$tmp/$1/src/dicom" "$tmp/$1/src/fhir"
    cp "$ROOT/$DICT" "$tmp/$1/$DICT" && cp "$ROOT/$SRT" "$tmp/$1/$SRT"
}
# expect NAME WANT-RC REGEX DIR: the check of DIR exits WANT-RC and prints a line matching REGEX
expect() {
    local out rc
    out=$("$CHECK" "$4" 2>/dev/null); rc=$?
    if [ "$rc" -eq "$2" ] && grep -Eq "$3" <<<"$out"; then echo "PASS generated:$1"
    else echo "FAIL generated:$1: exit $rc: $(tr '\n' ' ' <<<"$out")"; fi
}

expect committed-equal 0 "^check-generated: OK: $DICT $SRT equal what the generators make with pydicom $have\$" "$ROOT"

# One SRT pair's SNOMED CT id changed: the SRT table is named, the dictionary is not.
copy srt
sed -i '0,/{"A-00004", "260787004"}/s//{"A-00004", "260787005"}/' "$tmp/srt/$SRT"
if cmp -s "$ROOT/$SRT" "$tmp/srt/$SRT"; then echo "FAIL generated:edited-srt-fails: the edit did not apply"
else
    expect edited-srt-fails 1 "^check-generated: FAIL: $SRT differs from what tools/gen_srt_table.py makes with pydicom $have \\(first difference at line [0-9]+" "$tmp/srt"
    out=$("$CHECK" "$tmp/srt" 2>/dev/null)
    grep -q "$DICT" <<<"$out" && echo "FAIL generated:edited-srt-names-only-srt: $out" || echo "PASS generated:edited-srt-names-only-srt"
fi

# One tag's VR changed in the dictionary (PatientName, PN -> LO).
copy dict
sed -i '0,/{0x00100010U, S2F_VR(.P., .N.),/s//{0x00100010U, S2F_VR('"'L', 'O'"'),/' "$tmp/dict/$DICT"
if cmp -s "$ROOT/$DICT" "$tmp/dict/$DICT"; then echo "FAIL generated:edited-dictionary-fails: the edit did not apply"
else expect edited-dictionary-fails 1 "^check-generated: FAIL: $DICT differs from what tools/gen_dictionary.py makes with pydicom $have" "$tmp/dict"
fi

# Another pydicom version recorded: both versions named, what to do said.
copy version
sed -i "s/Inputs: pydicom $have /Inputs: pydicom 0.9.9 /" "$tmp/version/$SRT"
expect other-version-fails 1 "^check-generated: FAIL: $SRT records pydicom 0\\.9\\.9, /usr/bin/python3 has pydicom $have: install Debian's python3-pydicom 0\\.9\\.9, or \`make regen\`" "$tmp/version"

# A header missing.
copy missing; rm "$tmp/missing/$DICT"
expect missing-header-fails 1 "^check-generated: FAIL: $DICT: no such file in $tmp/missing\$" "$tmp/missing"

# The generators write where they are told and leave the committed headers alone.
before=$(cat "$ROOT/$DICT" "$ROOT/$SRT" | sha256sum)
/usr/bin/python3 -B "$ROOT/tools/gen_srt_table.py" "$tmp/out.h" && /usr/bin/python3 -B "$ROOT/tools/gen_dictionary.py" "$tmp/out2.h"
after=$(cat "$ROOT/$DICT" "$ROOT/$SRT" | sha256sum)
if [ "$before" = "$after" ] && cmp -s "$tmp/out.h" "$ROOT/$SRT" && cmp -s "$tmp/out2.h" "$ROOT/$DICT"; then
    echo "PASS generated:generators-write-to-given-path"
else echo "FAIL generated:generators-write-to-given-path: committed headers touched or output differs"; fi
