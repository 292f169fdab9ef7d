#!/usr/bin/env bash
# bench/convert.sh - whole-process wall time and peak memory of `sr2fhir convert`: against
# DCMTK `dsr2xml` (a full export of the same tree) and a pydicom read-and-walk
# (bench/pydicom_walk.py) on the largest corpus file (rsna2018_ds3), and a scaling table
# over generated reports of 1,000, 10,000 and 100,000 content items. Everything is
# measured in one run so that ratios compare like with like. Prints two Markdown tables
# (paste them into bench/README.md). Not a test: timings depend on the machine.
#
#   bench/convert.sh [RUNS]    # RUNS per command and input, default 10
#
# Wall time: median of RUNS runs by hyperfine (-N, no shell, 3 warm-up runs); every
# command writes to standard output, which hyperfine sends to /dev/null.
# Peak memory: median of 5 runs of GNU time's maximum resident set size.
# Needs: make, hyperfine, time, dcmtk, python3-pydicom (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
OUT=bench/out
mkdir -p "$OUT"
make -s all
BIN=$PWD/build/sr2fhir
PY=/usr/bin/python3
SHARED=${SHARED:-$(cd .. && pwd)/shared}

ds3="$SHARED/corpus/files/tid1500__dcmqi__rsna2018_ds3_848792.dcm"
[ -f "$ds3" ] || { echo "bench: $ds3 absent, comparison skipped" >&2; ds3=; }
generated=()
for n in 1000 10000 100000; do
    f="$OUT/generated_$n.dcm"
    if [ ! -f "$f" ]; then   # slow for 100,000 (about 20 s): cached in bench/out/
        "$PY" tests/fixtures/gen_large.py "$OUT/generated_$n.tmp.dcm" "$n" >/dev/null
        mv "$OUT/generated_$n.tmp.dcm" "$f"
    fi
    generated+=("$f")
done

median_kib() {  # median peak RSS (KiB) of 5 runs of "$@"
    for _ in 1 2 3 4 5; do /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; done | sort -n | sed -n 3p
}
median_ms() {   # median wall time (ms) from a hyperfine JSON export
    "$PY" -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$1"
}
time_ms() {     # time_ms NAME CMD...: median wall time (ms) of CMD over RUNS runs
    local name=$1; shift
    hyperfine -N -w 3 -r "$RUNS" --export-json "$OUT/convert_$name.json" "$*" >/dev/null 2>&1
    median_ms "$OUT/convert_$name.json"
}

# rows of the scaling table: "file size items ms kib bundle_bytes"
rows=()
convert_row() {
    local f=$1 ms=$2 kib=$3
    rows+=("$f $(stat -c %s "$f") $("$BIN" dump -q "$f" | sed -n 's/^Items: //p') $ms $kib \
$("$BIN" convert -q "$f" -o - | wc -c)")
}

if [ -n "$ds3" ]; then
    items=$("$BIN" dump -q "$ds3" | sed -n 's/^Items: //p')
    walked=$("$PY" bench/pydicom_walk.py "$ds3")
    [ "$walked" = "$items" ] || echo "bench: pydicom walked $walked items, sr2fhir $items" >&2
    s_ms=$(time_ms sr2fhir "$BIN" convert -q "$ds3" -o -)
    x_ms=$(time_ms dsr2xml dsr2xml "$ds3")
    p_ms=$(time_ms pydicom "$PY" bench/pydicom_walk.py "$ds3")
    s_kib=$(median_kib "$BIN" convert -q "$ds3" -o -)
    x_kib=$(median_kib dsr2xml "$ds3")
    p_kib=$(median_kib "$PY" bench/pydicom_walk.py "$ds3")
    echo "Input: $(basename "$ds3"), $(stat -c %s "$ds3") bytes, $items content items."
    echo
    echo "| command | wall time | time vs sr2fhir | peak RSS | RSS vs sr2fhir |"
    echo "|---|---|---|---|---|"
    "$PY" - "$s_ms" "$s_kib" \
        "sr2fhir convert -q FILE -o -" "$s_ms" "$s_kib" \
        "dsr2xml FILE" "$x_ms" "$x_kib" \
        "python3 bench/pydicom_walk.py FILE" "$p_ms" "$p_kib" <<'PY'
import sys
s_ms, s_kib = float(sys.argv[1]), int(sys.argv[2])
a = sys.argv[3:]
for i in range(0, len(a), 3):
    cmd, ms, kib = a[i], float(a[i + 1]), int(a[i + 2])
    print(f"| `{cmd}` | {ms:.1f} ms | {ms / s_ms:.1f}x | {kib / 1024:.1f} MiB | {kib / s_kib:.1f}x |")
PY
    echo
fi

for f in "${generated[@]}"; do
    n=$(basename "$f")
    convert_row "$f" "$(time_ms "${n%.dcm}" "$BIN" convert -q "$f" -o -)" \
        "$(median_kib "$BIN" convert -q "$f" -o -)"
done
[ -z "$ds3" ] || convert_row "$ds3" "$s_ms" "$s_kib"

echo "| input | size | items | sr2fhir convert | time per 1,000 items | peak RSS | RSS / file size | Bundle size |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}" | "$PY" -c '
import os, sys
for line in sys.stdin:
    f, size, items, ms, kib, bundle = line.split()
    size, items, ms, kib, bundle = int(size), int(items), float(ms), int(kib), int(bundle)
    print(f"| {os.path.basename(f)} | {size / 1e6:.2f} MB | {items} | {ms:.1f} ms | "
          f"{ms * 1000 / items:.2f} ms | {kib / 1024:.1f} MiB | {kib * 1024 / size:.1f} | "
          f"{bundle / 1e6:.1f} MB |")
'
echo
echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $("$BIN" version | head -1)," \
    "DCMTK $(dsr2xml --version | head -1 | sed 's/^\$//; s/ *\$$//; s/^dcmtk: //'), pydicom" \
    "$("$PY" -c 'import pydicom; print(pydicom.__version__)') (Python $("$PY" -c 'import platform; print(platform.python_version())')),"\
    "$(hyperfine --version); median of $RUNS runs."
