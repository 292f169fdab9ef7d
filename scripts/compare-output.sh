#!/usr/bin/env bash
# scripts/compare-output.sh - proves a change left `sr2fhir convert`'s output byte-identical
# (issue 14): builds a previous commit (in a temporary copy made by `git archive`) and the
# current tree (with uncommitted changes), runs both `sr2fhir convert` over the same inputs
# with every combination of the options that shape the output, and compares every output
# file, the conversion report, stderr and the exit code byte for byte (cmp). Prints one
# line per combination and a summary; exits 1 on any difference, 2 on a usage/build error.
#
#   scripts/compare-output.sh [BASE]                compare BASE (a commit) with the tree
#   scripts/compare-output.sh --bins OLD NEW        compare two given binaries (no build)
#
# BASE defaults to the merge-base of HEAD and main, or HEAD~1 when that is HEAD itself
# (a clean main: "what did the last commit change?"); with uncommitted changes and HEAD
# on main it is HEAD.
# Inputs (generated once, the same for both sides): every file of ../shared/corpus/files
# (SHARED=... to move it; skipped with a note when absent), the project's fixtures
# (tests/fixtures/generate.py = `make fixtures`), the other fixture generators
# (gen_codesel, gen_context, gen_identity, gen_values) and small generated reports of
# gen_large.py (the benchmark form and each --shape, Part 10, DICOM JSON and deflated).
# Option combinations: --bundle-type transaction|collection x --fhir-version R5|R4 x
# --timezone default|-0530 x --pretty or not x --diagnostic-report or not (32; 16 when the
# previous commit has no --diagnostic-report), each written as a folder of Bundles
# with --report --trace-consumed, and as NDJSON; and each input alone to standard output
# with default options (stdout, stderr and exit code per input).
# Needs: make, git, cmp, /usr/bin/python3 with pydicom (Debian python3-pydicom).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-/usr/bin/python3}
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
export LC_ALL=C

die() { echo "compare-output: $*" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/compare-output.XXXXXX") || die "no temporary folder"
trap 'rm -rf "$TMP"' EXIT

OLD_BIN= NEW_BIN=
if [ "${1:-}" = "--bins" ]; then
    [ $# -eq 3 ] || die "usage: $0 --bins OLD NEW"
    OLD_BIN=$(realpath "$2") NEW_BIN=$(realpath "$3")
    [ -x "$OLD_BIN" ] && [ -x "$NEW_BIN" ] || die "--bins: both must be executables"
else
    BASE=${1:-}
    if [ -z "$BASE" ]; then
        BASE=$(git merge-base HEAD main 2>/dev/null || git rev-parse HEAD)
        if [ "$BASE" = "$(git rev-parse HEAD)" ] && [ -z "$(git status --porcelain --untracked-files=no)" ]; then
            BASE=$(git rev-parse HEAD~1)
        fi
    fi
    BASE=$(git rev-parse --verify "$BASE^{commit}") || die "no such commit: $BASE"
    echo "compare-output: base $(git log --oneline -1 "$BASE" | cut -c1-70)"
    echo "compare-output: new  the working tree at $(git rev-parse --short HEAD)$([ -n "$(git status --porcelain --untracked-files=no)" ] && echo ' + uncommitted changes')"
    mkdir -p "$TMP/base-src"
    git archive "$BASE" | tar -x -C "$TMP/base-src" || die "git archive $BASE failed"
    # Only the command is needed; objects go to temporary folders so that build/ is untouched.
    nice make -s -C "$TMP/base-src" -j2 BUILD="$TMP/base-build" "$TMP/base-build/sr2fhir" \
        >"$TMP/base-make.log" 2>&1 || { tail -20 "$TMP/base-make.log"; die "building $BASE failed"; }
    nice make -s -j2 BUILD="$TMP/new-build" "$TMP/new-build/sr2fhir" \
        >"$TMP/new-make.log" 2>&1 || { tail -20 "$TMP/new-make.log"; die "building the tree failed"; }
    OLD_BIN=$TMP/base-build/sr2fhir NEW_BIN=$TMP/new-build/sr2fhir
fi

# ---- inputs --------------------------------------------------------------------------------
IN=$TMP/in
mkdir -p "$IN/gen"
"$PY" -c 'import pydicom' 2>/dev/null || die "$PY has no pydicom (apt-get install python3-pydicom)"
for g in generate gen_codesel gen_context gen_identity gen_values; do
    "$PY" tests/fixtures/$g.py "$IN/$g" >/dev/null 2>"$TMP/gen.err" ||
        die "tests/fixtures/$g.py failed: $(tail -1 "$TMP/gen.err")"
done
L=tests/fixtures/gen_large.py
gen_large() { "$PY" $L "$@" >/dev/null 2>"$TMP/gen.err" || die "$L $*: $(tail -1 "$TMP/gen.err")"; }
gen_large "$IN/gen/large_300.dcm" 300
gen_large --shape groups --groups 12 --nums 4 --format part10 "$IN/gen/groups.dcm"
gen_large --shape groups --groups 12 --nums 4 --format json "$IN/gen/groups.json"
gen_large --shape groups --groups 12 --nums 4 --format deflated "$IN/gen/groups_deflated.dcm"
gen_large --shape nums --nums 60 "$IN/gen/nums.dcm"
gen_large --shape distinct --groups 30 "$IN/gen/distinct.dcm"
if [ -d "$SHARED/corpus/files" ]; then
    mkdir -p "$IN/corpus"
    cp "$SHARED"/corpus/files/* "$IN/corpus/"
else
    echo "compare-output: NOTE: $SHARED/corpus/files absent, the corpus is not compared"
fi
cd "$IN"
mapfile -t inputs < <(find . -type f | sed 's|^\./||' | sort)
echo "compare-output: ${#inputs[@]} inputs"

# ---- runs ----------------------------------------------------------------------------------
# run SIDE NAME OPTS...: one combination into $TMP/SIDE/NAME (folder of Bundles + report,
# NDJSON + its report, and the exit codes and stderr of both runs).
run() {
    local side=$1 name=$2; shift 2
    local bin=$OLD_BIN; [ "$side" = new ] && bin=$NEW_BIN
    local o=$TMP/$side/$name
    mkdir -p "$o/dir"
    "$bin" convert -q "$@" --trace-consumed --report "$o/dir.report.json" -o "$o/dir" \
        "${inputs[@]}" >"$o/dir.stdout" 2>"$o/dir.stderr"
    echo $? >"$o/dir.rc"
    "$bin" convert -q "$@" --trace-consumed --report "$o/nd.report.json" -o "$o/all.ndjson" \
        "${inputs[@]}" >"$o/nd.stdout" 2>"$o/nd.stderr"
    echo $? >"$o/nd.rc"
}
# single SIDE: each input alone, default options, to standard output, warnings on stderr
single() {
    local side=$1 bin=$OLD_BIN; [ "$side" = new ] && bin=$NEW_BIN
    local o=$TMP/$side/single i=0
    mkdir -p "$o"
    for f in "${inputs[@]}"; do
        i=$((i + 1))
        "$bin" convert "$f" -o - >"$o/$i.stdout" 2>"$o/$i.stderr"
        echo $? >"$o/$i.rc"
    done
}

# compare NAME: every file of the two sides' NAME folders, byte for byte
ndiff=0 nfiles=0
compare() {
    local name=$1 a=$TMP/old/$1 b=$TMP/new/$1 bad=0 f
    local la lb
    la=$(cd "$a" && find . -type f | sort) lb=$(cd "$b" && find . -type f | sort)
    if [ "$la" != "$lb" ]; then
        echo "DIFF $name: the sets of output files differ:"
        diff <(echo "$la") <(echo "$lb") | head -5
        bad=1
    fi
    while IFS= read -r f; do
        [ -f "$b/$f" ] || continue
        nfiles=$((nfiles + 1))
        if ! cmp -s "$a/$f" "$b/$f"; then
            [ $bad -lt 5 ] && echo "DIFF $name: ${f#./}: $(cmp "$a/$f" "$b/$f" 2>&1 | head -1)"
            bad=$((bad + 1))
        fi
    done <<<"$la"
    if [ $bad -eq 0 ]; then echo "same $name"; else ndiff=$((ndiff + 1)); fi
}

# --diagnostic-report (issue 15) doubles the combinations when both sides know it
reports=(plain)
"$OLD_BIN" help convert 2>&1 | grep -q -- --diagnostic-report && reports+=(dr)
combos=()
for bt in transaction collection; do
    for fv in R5 R4; do
        for tz in default -0530; do
            for pr in compact pretty; do
                for dr in "${reports[@]}"; do
                    combos+=("$bt.$fv.$tz.$pr.$dr")
                done
            done
        done
    done
done
for c in "${combos[@]}"; do
    IFS=. read -r bt fv tz pr dr <<<"$c"
    opts=(--bundle-type "$bt" --fhir-version "$fv")
    [ "$tz" = default ] || opts+=(--timezone "$tz")
    [ "$pr" = pretty ] && opts+=(--pretty)
    [ "$dr" = dr ] && opts+=(--diagnostic-report)
    run old "$c" "${opts[@]}"
    run new "$c" "${opts[@]}"
    compare "$c"
done
single old; single new; compare single

bundles=$(find "$TMP/new" -name '*.json' -path '*/dir/*' | wc -l)
echo "compare-output: ${#inputs[@]} inputs, ${#combos[@]} option combinations + each input alone;" \
     "$nfiles files compared ($bundles Bundles)"
if [ $ndiff -ne 0 ]; then
    echo "compare-output: FAIL: $ndiff of $(( ${#combos[@]} + 1 )) runs differ"
    exit 1
fi
echo "compare-output: OK: byte-identical"
