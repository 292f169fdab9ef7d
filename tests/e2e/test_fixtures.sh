#!/usr/bin/env bash
# tests/e2e/test_fixtures.sh - `sr2fhir dump` over the project's own fixtures.
#
# Generates tests/fixtures/generate.py's fixtures into $ROOT/$BUILD/fixtures and checks
# concrete facts of `sr2fhir dump` (docs/dump-format.md): exact tree lines at given
# positions, header lines, and that every encoding of the same report (five transfer
# syntaxes, undefined lengths, DICOM JSON) yields the identical content tree.
# Prints "PASS name" / "FAIL name: reason" / "SKIP name: reason" per case (tests/run.sh).
# Environment (set by tests/run.sh, defaulted here): ROOT, BUILD, SR2FHIR, PYTHON.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
SR2FHIR=${SR2FHIR:-$ROOT/$BUILD/sr2fhir}
PYTHON=${PYTHON:-/usr/bin/python3}
FIX=$ROOT/$BUILD/fixtures
export LC_ALL=C   # byte-wise comparisons of the UTF-8 output

if ! "$PYTHON" -c 'import pydicom' >/dev/null 2>&1; then
    echo "SKIP fixtures: $PYTHON has no pydicom (apt-get install python3-pydicom)"
    exit 0
fi

OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
nfail=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }

# --- generate -------------------------------------------------------------------------
rm -rf "$FIX"
if ! "$PYTHON" "$ROOT/tests/fixtures/generate.py" "$FIX" 2>"$OUT/gen.err"; then
    fail generate "generate.py failed: $(tail -1 "$OUT/gen.err")"
    exit 1
fi
pass generate

# deterministic: a second run gives byte-identical files
if "$PYTHON" "$ROOT/tests/fixtures/generate.py" "$OUT/again" 2>/dev/null &&
   diff -r -q "$FIX" "$OUT/again" >/dev/null; then
    pass generate_deterministic
else
    fail generate_deterministic "a second generate.py run differs: $(diff -r -q "$FIX" "$OUT/again" 2>&1 | head -1)"
fi

# DCMTK cross-check of the fixtures themselves: dsrdump reads each one, with the expected
# number of content items (independent of sr2fhir).
if command -v dsrdump >/dev/null 2>&1; then
    for fc in explicit_le:32 implicit_le:32 explicit_be:32 deflated:32 bare_implicit:32 \
              undefined_lengths:32 charset_latin1:32 charset_jis:32 charset_gb18030:32 \
              by_reference:33 num_qualifier:38 scoord3d:37 tcoord:48; do
        f=${fc%%:*}.dcm want=${fc#*:}
        got=$(dsrdump -Ee -Er -Ev -Ec +Pn -Ph "$FIX/$f" 2>/dev/null | grep -c '^1')
        if [ "$got" -eq "$want" ]; then pass "dsrdump:$f"; else fail "dsrdump:$f" "DCMTK reads $got items, expected $want"; fi
    done
else
    echo "SKIP dsrdump: DCMTK's dsrdump not installed"
fi

if [ ! -x "$SR2FHIR" ]; then
    fail fixtures "$SR2FHIR not built (run make)"
    exit 1
fi

# --- dump every fixture ---------------------------------------------------------------
FIXTURES="explicit_le.dcm explicit_le.json implicit_le.dcm explicit_be.dcm deflated.dcm
bare_implicit.dcm undefined_lengths.dcm charset_latin1.dcm charset_jis.dcm
charset_gb18030.dcm by_reference.dcm num_qualifier.dcm scoord3d.dcm tcoord.dcm"
declare -A OK
for f in $FIXTURES; do
    timeout 30 "$SR2FHIR" dump "$FIX/$f" >"$OUT/$f.out" 2>"$OUT/$f.err"; rc=$?
    # header: lines before the first blank line; tree: lines after it
    awk 'NF == 0 { exit } { print }' "$OUT/$f.out" >"$OUT/$f.head"
    awk 'seen { print } NF == 0 { seen = 1 }' "$OUT/$f.out" >"$OUT/$f.tree"
    if [ "$rc" -ne 0 ]; then
        fail "$f:dump" "exit status $rc: $(head -1 "$OUT/$f.err")"
    elif [ ! -s "$OUT/$f.tree" ]; then
        fail "$f:dump" "no blank line / no content tree in the output"
    else
        OK[$f]=1
        pass "$f:dump"
    fi
done

# expect_tree FIXTURE < lines: each expected line must equal the tree line at its position
expect_tree() {
    local f=$1 line pos got
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        pos=${line%%  *}
        if [ -z "${OK[$f]:-}" ]; then fail "$f:$pos" "no dump"; continue; fi
        got=$(awk -v p="$pos  " 'index($0, p) == 1' "$OUT/$f.tree")
        if [ "$got" == "$line" ]; then
            pass "$f:$pos"
        else
            fail "$f:$pos" "expected [$line] got [$got]"
        fi
    done
}

# expect_head FIXTURE NAME 'KEY' 'ERE for the value' - header line "KEY: value" must match
expect_head() {
    local f=$1 name=$2 key=$3 re=$4 got
    if [ -z "${OK[$f]:-}" ]; then fail "$f:$name" "no dump"; return; fi
    got=$(grep -m1 "^$key: " "$OUT/$f.head")
    if [ -z "$got" ]; then
        fail "$f:$name" "no '$key:' header line"
    elif printf '%s\n' "${got#"$key: "}" | grep -Eq -- "$re"; then
        pass "$f:$name"
    else
        fail "$f:$name" "[$got] does not match /$re/"
    fi
}

# expect_value FIXTURE KEY VALUE - header "KEY: VALUE" (the value may be quoted)
expect_value() {
    local f=$1 key=$2 val=$3 got
    if [ -z "${OK[$f]:-}" ]; then fail "$f:$key" "no dump"; return; fi
    got=$(grep -m1 "^$key: " "$OUT/$f.head")
    if [ "$got" == "$key: $val" ] || [ "$got" == "$key: \"$val\"" ]; then
        pass "$f:${key// /_}"
    else
        fail "$f:${key// /_}" "expected [$key: $val] got [$got]"
    fi
}

# expect_no_warnings FIXTURE - "Warnings: 0" or no Warnings line
expect_no_warnings() {
    local f=$1 got
    if [ -z "${OK[$f]:-}" ]; then fail "$f:warnings" "no dump"; return; fi
    got=$(grep -m1 '^Warnings: ' "$OUT/$f.head")
    if [ -z "$got" ] || [ "$got" == "Warnings: 0" ]; then
        pass "$f:warnings"
    else
        fail "$f:warnings" "[$got]; stderr: $(head -1 "$OUT/$f.err")"
    fi
}

# expect_items FIXTURE N - "Items: N" and N tree lines
expect_items() {
    local f=$1 n=$2 lines got
    if [ -z "${OK[$f]:-}" ]; then fail "$f:items" "no dump"; return; fi
    lines=$(grep -c . "$OUT/$f.tree")
    got=$(grep -m1 '^Items: ' "$OUT/$f.head")
    if [ "$lines" -eq "$n" ] && [ "$got" == "Items: $n" ]; then
        pass "$f:items"
    else
        fail "$f:items" "expected $n items and tree lines, got [$got] and $lines tree lines"
    fi
}

# same_tree NAME A B [positions to leave out...] - identical tree sections
same_tree() {
    local name=$1 a=$2 b=$3 d; shift 3
    if [ -z "${OK[$a]:-}" ] || [ -z "${OK[$b]:-}" ]; then fail "$name" "no dump"; return; fi
    local filt='{ print }'
    if [ $# -gt 0 ]; then
        filt="!(\$1 == \"$1\""; shift
        for p in "$@"; do filt="$filt || \$1 == \"$p\""; done
        filt="$filt) { print }"
    fi
    d=$(diff <(awk "$filt" "$OUT/$a.tree") <(awk "$filt" "$OUT/$b.tree") | grep '^[<>]' | head -2 | tr '\n' ' ')
    if [ -z "$d" ]; then pass "$name"; else fail "$name" "trees differ: $d"; fi
}

# --- explicit_le.dcm: the whole reference tree ----------------------------------------
BASE_TREE=$(cat <<'EOF'
1  CONTAINER (126000,DCM,"Imaging Measurement Report") = SEPARATE {template=DCMR/1500}
1.1  HAS CONCEPT MOD CODE (121049,DCM,"Language of Content Item and Descendants") = (en-US,RFC5646,"English (United States)")
1.2  HAS OBS CONTEXT CODE (121005,DCM,"Observer Type") = (121006,DCM,"Person")
1.3  HAS OBS CONTEXT PNAME (121008,DCM,"Person Observer Name") = "Observer^Olga"
1.4  HAS CONCEPT MOD CODE (121058,DCM,"Procedure reported") = (77477000,SCT,"Computerized tomography")
1.5  CONTAINS CONTAINER (111028,DCM,"Image Library") = SEPARATE
1.5.1  CONTAINS CONTAINER (126200,DCM,"Image Library Group") = SEPARATE
1.5.1.1  CONTAINS IMAGE = (1.2.840.10008.5.1.4.1.1.2,1.2.826.0.1.3680043.10.1500.3.1)
1.5.1.2  CONTAINS IMAGE = (1.2.840.10008.5.1.4.1.1.2,1.2.826.0.1.3680043.10.1500.3.2)
1.6  CONTAINS CONTAINER (126010,DCM,"Imaging Measurements") = SEPARATE
1.6.1  CONTAINS CONTAINER (125007,DCM,"Measurement Group") = SEPARATE {template=DCMR/1410}
1.6.1.1  HAS OBS CONTEXT TEXT (112039,DCM,"Tracking Identifier") = "Lesion 1"
1.6.1.2  HAS OBS CONTEXT UIDREF (112040,DCM,"Tracking Unique Identifier") = "1.2.826.0.1.3680043.10.1500.9.1"
1.6.1.3  CONTAINS CODE (121071,DCM,"Finding") = (108369006,SCT,"Neoplasm")
1.6.1.4  HAS CONCEPT MOD CODE (363698007,SCT,"Finding Site") = (64033007,SCT,"Kidney")
1.6.1.4.1  HAS CONCEPT MOD CODE (272741003,SCT,"Laterality") = (7771000,SCT,"Left")
1.6.1.5  CONTAINS SCOORD (111030,DCM,"Image Region") = (POLYLINE,10/20,30.5/20,30.5/40.25,10/20)
1.6.1.5.1  SELECTED FROM IMAGE = (1.2.840.10008.5.1.4.1.1.2,1.2.826.0.1.3680043.10.1500.3.1)
1.6.1.6  CONTAINS NUM (410668003,SCT,"Length") = "12.5" (mm,UCUM,"millimeter")
1.6.1.7  CONTAINS NUM (42798000,SCT,"Area") = "98.5" (mm2,UCUM,"square millimeter")
1.6.2  CONTAINS CONTAINER (125007,DCM,"Measurement Group") = SEPARATE {template=DCMR/1411}
1.6.2.1  HAS OBS CONTEXT TEXT (112039,DCM,"Tracking Identifier") = "Lesion 2"
1.6.2.2  HAS OBS CONTEXT UIDREF (112040,DCM,"Tracking Unique Identifier") = "1.2.826.0.1.3680043.10.1500.9.2"
1.6.2.3  CONTAINS CODE (121071,DCM,"Finding") = (4147007,SCT,"Mass")
1.6.2.4  HAS CONCEPT MOD CODE (363698007,SCT,"Finding Site") = (10200004,SCT,"Liver")
1.6.2.5  CONTAINS IMAGE (121191,DCM,"Referenced Segment") = (1.2.840.10008.5.1.4.1.1.66.4,1.2.826.0.1.3680043.10.1500.3.3) segments=1
1.6.2.6  CONTAINS UIDREF (121232,DCM,"Source series for segmentation") = "1.2.826.0.1.3680043.10.1500.2.1"
1.6.2.7  CONTAINS NUM (118565006,SCT,"Volume") = "3.25" (cm3,UCUM,"cubic centimeter")
1.6.2.8  CONTAINS NUM (112031,DCM,"Attenuation Coefficient") = "42.5" ([hnsf'U],UCUM,"Hounsfield unit")
1.6.2.8.1  HAS CONCEPT MOD CODE (121401,DCM,"Derivation") = (373098007,SCT,"Mean")
1.7  CONTAINS CONTAINER (C0034375,UMLS,"Qualitative Evaluations") = SEPARATE
1.7.1  CONTAINS TEXT (121071,DCM,"Finding") = "No other findings"
EOF
)
printf '%s\n' "$BASE_TREE" | expect_tree explicit_le.dcm
expect_items explicit_le.dcm 32

# --- explicit_le.dcm: the header the converter uses -----------------------------------
R=1.2.826.0.1.3680043.10.1500
f=explicit_le.dcm
expect_head  $f format          Format '^1\.2\.840\.10008\.1\.2\.1( |$).*[Ee]xplicit.*[Ll]ittle'
expect_head  $f sop_class       'SOP Class' '^1\.2\.840\.10008\.5\.1\.4\.1\.1\.88\.33( |$)'
expect_value $f 'SOP Instance'  "$R.5.1"
expect_value $f 'Character Set' 'ISO_IR 100'
expect_value $f 'Patient Name'  'Doe^Jane'
expect_value $f 'Patient ID'    'PAT-0001'
expect_value $f 'Issuer of Patient ID' 'HOSP'
expect_head  $f patient_id_issuer 'Patient ID Issuer' "$R\.99\.1.*ISO"
expect_head  $f birth_date      'Birth Date' '^"?(19700101|1970-01-01)"?$'
expect_value $f 'Sex'           'F'
expect_value $f 'Study UID'     "$R.1.1"
expect_value $f 'Study ID'      'S1'
expect_value $f 'Accession Number' 'ACC-0042'
expect_head  $f accession_issuer 'Accession Issuer' "$R\.99\.2|RADIS"
expect_value $f 'Series UID'    "$R.4.1"
expect_value $f 'Modality'      'SR'
expect_value $f 'Manufacturer'  'sr2fhir fixtures'
expect_value $f 'Model'         'generate.py'
expect_value $f 'Device UID'    "$R.6.1"
expect_value $f 'Device Serial' 'SN-1500'
expect_head  $f software_versions 'Software Versions' '1\.0.*pydicom-fixture'
expect_value $f 'Preliminary Flag'  'FINAL'
expect_value $f 'Completion Flag'   'COMPLETE'
expect_value $f 'Verification Flag' 'VERIFIED'
expect_value $f 'Content Date'  '20240131'
expect_value $f 'Content Time'  '103000.5'
expect_value $f 'Timezone Offset' '+0100'
# 1 study, 2 series, 3 instances in Current Requested Procedure Evidence
expect_head  $f evidence        Evidence '(^|[^0-9])1[^0-9]+2[^0-9]+3([^0-9]|$)'
expect_no_warnings $f

# --- the same report in every encoding: identical trees -------------------------------
expect_head explicit_le.json format       Format '^DICOM JSON$'
expect_head implicit_le.dcm  format       Format '^1\.2\.840\.10008\.1\.2( |$).*[Ii]mplicit'
expect_head explicit_be.dcm  format       Format '^1\.2\.840\.10008\.1\.2\.2( |$).*[Bb]ig'
expect_head deflated.dcm     format       Format '^1\.2\.840\.10008\.1\.2\.1\.99( |$).*[Dd]eflate'
expect_head bare_implicit.dcm format      Format '^1\.2\.840\.10008\.1\.2( |$).*[Ii]mplicit'
expect_head undefined_lengths.dcm format  Format '^1\.2\.840\.10008\.1\.2\.1( |$)'
for f in explicit_le.json implicit_le.dcm explicit_be.dcm deflated.dcm bare_implicit.dcm \
         undefined_lengths.dcm; do
    same_tree "same_tree:$f" explicit_le.dcm "$f"
    expect_value "$f" 'Patient Name' 'Doe^Jane'
    expect_items "$f" 32
    expect_no_warnings "$f"
done

# --- character sets -------------------------------------------------------------------
f=charset_latin1.dcm
expect_value $f 'Character Set' 'ISO_IR 100'
expect_value $f 'Patient Name'  'Buc^Jérôme'
expect_tree $f <<'EOF'
1.3  HAS OBS CONTEXT PNAME (121008,DCM,"Person Observer Name") = "Müller^Käthe"
1.7.1  CONTAINS TEXT (121071,DCM,"Finding") = "Größe Ø 12 µm"
EOF
same_tree "same_tree:$f" explicit_le.dcm $f 1.3 1.7.1

f=charset_jis.dcm
expect_head  $f character_set 'Character Set' '^"?\\?ISO 2022 IR 87"?$'
expect_value $f 'Patient Name' 'Yamada^Tarou=山田^太郎=やまだ^たろう'
expect_tree $f <<'EOF'
1.3  HAS OBS CONTEXT PNAME (121008,DCM,"Person Observer Name") = "Yamada^Tarou=山田^太郎=やまだ^たろう"
1.7.1  CONTAINS TEXT (121071,DCM,"Finding") = "肝臓に腫瘤あり 12 mm"
EOF
same_tree "same_tree:$f" explicit_le.dcm $f 1.3 1.7.1

f=charset_gb18030.dcm
expect_value $f 'Character Set' 'GB18030'
expect_value $f 'Patient Name' 'Wang^XiaoDong=王^小东'
expect_tree $f <<'EOF'
1.3  HAS OBS CONTEXT PNAME (121008,DCM,"Person Observer Name") = "Wang^XiaoDong=王^小东"
1.7.1  CONTAINS TEXT (121071,DCM,"Finding") = "肝脏肿块 12 毫米"
EOF
same_tree "same_tree:$f" explicit_le.dcm $f 1.3 1.7.1

# --- by-reference relationships -------------------------------------------------------
f=by_reference.dcm
expect_tree $f <<'EOF'
1.6.1.5  CONTAINS SCOORD (111030,DCM,"Image Region") = (POLYLINE,10/20,30.5/20,30.5/40.25,10/20)
1.6.1.5.1  SELECTED FROM -> 1.5.1.1
1.6.1.6  CONTAINS NUM (410668003,SCT,"Length") = "12.5" (mm,UCUM,"millimeter")
1.6.1.6.1  INFERRED FROM -> 1.6.1.5
1.6.1.7  CONTAINS NUM (42798000,SCT,"Area") = "98.5" (mm2,UCUM,"square millimeter")
EOF
expect_items $f 33
expect_no_warnings $f

# --- NUM details ----------------------------------------------------------------------
f=num_qualifier.dcm
expect_tree $f <<'EOF'
1.6.3  CONTAINS CONTAINER (125007,DCM,"Measurement Group") = SEPARATE {template=DCMR/1411}
1.6.3.1  HAS OBS CONTEXT TEXT (112039,DCM,"Tracking Identifier") = "Lesion 3"
1.6.3.2  HAS OBS CONTEXT UIDREF (112040,DCM,"Tracking Unique Identifier") = "1.2.826.0.1.3680043.10.1500.9.3"
1.6.3.3  CONTAINS NUM (118565006,SCT,"Volume") = (no value) qualifier=(114000,DCM,"Not a number")
1.6.3.4  CONTAINS NUM (410668003,SCT,"Length") = "12.25" (mm,UCUM,"millimeter") fp=12.25
1.6.3.5  CONTAINS NUM (410668003,SCT,"Length") = "0.000012345678901234" (m,UCUM,"meter")
EOF
expect_items $f 38

# --- SCOORD3D -------------------------------------------------------------------------
f=scoord3d.dcm
expect_head $f sop_class 'SOP Class' '^1\.2\.840\.10008\.5\.1\.4\.1\.1\.88\.34( |$)'
expect_tree $f <<'EOF'
1.6.3  CONTAINS CONTAINER (125007,DCM,"Measurement Group") = SEPARATE {template=DCMR/1410}
1.6.3.3  CONTAINS SCOORD3D (111030,DCM,"Image Region") = (POLYLINE,"1.2.826.0.1.3680043.10.1500.7.1",1/2/3,4.5/5.5/6.5,-7.25/8/9.125)
1.6.3.4  CONTAINS NUM (410668003,SCT,"Length") = "7.5" (mm,UCUM,"millimeter")
EOF
expect_items $f 37

# --- TCOORD, WAVEFORM, COMPOSITE, dates, frames, segments, annotations, escapes -------
f=tcoord.dcm
expect_tree $f <<'EOF'
1.6.3  CONTAINS CONTAINER (125007,DCM,"Measurement Group") = SEPARATE
1.6.3.1  HAS OBS CONTEXT TEXT (112039,DCM,"Tracking Identifier") = "Misc"
1.6.3.2  CONTAINS TCOORD (T1,99TEST,"Time Segment") = (SEGMENT,offsets=0.5/1.25)
1.6.3.2.1  SELECTED FROM WAVEFORM = (1.2.840.10008.5.1.4.1.1.9.1.1,1.2.826.0.1.3680043.10.1500.3.5) channels=1/1,1/2
1.6.3.3  CONTAINS TCOORD (T2,99TEST,"Time Points") = (MULTIPOINT,samples=3/7)
1.6.3.3.1  SELECTED FROM WAVEFORM = (1.2.840.10008.5.1.4.1.1.9.1.1,1.2.826.0.1.3680043.10.1500.3.5)
1.6.3.4  CONTAINS COMPOSITE (C1,99TEST,"Structure Set") = (1.2.840.10008.5.1.4.1.1.481.3,1.2.826.0.1.3680043.10.1500.3.6)
1.6.3.5  CONTAINS DATE (D1,99TEST,"Some Date") = "20240131"
1.6.3.6  CONTAINS TIME (D2,99TEST,"Some Time") = "235959.123"
1.6.3.7  CONTAINS DATETIME (D3,99TEST,"Some DateTime") = "20240131235959.123456+0100"
1.6.3.8  CONTAINS IMAGE (121112,DCM,"Source of Measurement") = (1.2.840.10008.5.1.4.1.1.4.1,1.2.826.0.1.3680043.10.1500.3.4) frames=1,3
1.6.3.9  CONTAINS IMAGE (121191,DCM,"Referenced Segment") = (1.2.840.10008.5.1.4.1.1.66.4,1.2.826.0.1.3680043.10.1500.3.3) segments=1,3
1.6.3.10  CONTAINS TEXT (121106,DCM[01],"Comment") = "line one\nsaid \"hi\"" {uid=1.2.826.0.1.3680043.10.1500.8.1 dt=20240131120000}
1.6.3.11  CONTAINS CODE (L1,99TEST,"Long code") = (ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,99TEST,"A long code value")
1.6.3.12  CONTAINS TCOORD (T3,99TEST,"Time DateTimes") = (POINT,datetimes=20240131120000.5)
1.6.3.12.1  SELECTED FROM WAVEFORM = (1.2.840.10008.5.1.4.1.1.9.1.1,1.2.826.0.1.3680043.10.1500.3.5)
EOF
expect_items $f 48

# --- gen_large.py (bench input) -------------------------------------------------------
n=$("$PYTHON" "$ROOT/tests/fixtures/gen_large.py" "$OUT/large.dcm" 200 2>"$OUT/large.err")
if [ -z "$n" ]; then
    fail gen_large "gen_large.py failed: $(tail -1 "$OUT/large.err")"
elif ! timeout 60 "$SR2FHIR" dump "$OUT/large.dcm" >"$OUT/large.out" 2>/dev/null; then
    fail gen_large "sr2fhir dump failed on gen_large.py output"
elif [ "$(grep -m1 '^Items: ' "$OUT/large.out")" != "Items: $n" ] || [ "$n" -lt 180 ] || [ "$n" -gt 220 ]; then
    fail gen_large "gen_large.py says $n items, dump says [$(grep -m1 '^Items: ' "$OUT/large.out")]"
else
    pass gen_large
fi

[ "$nfail" -eq 0 ]
