#!/usr/bin/env bash
# bench/run.sh - whole-process wall time and peak memory of `sr2fhir dump` against DCMTK
# `dsrdump`, on the largest corpus file (rsna2018_ds3) and on generated reports, all
# measured in one run so that ratios compare like with like. Prints a Markdown table
# (paste it into bench/README.md). Not a test: timings depend on the machine.
#
#   bench/run.sh [RUNS]        # RUNS per command and input, default 15
#
# Wall time: median of RUNS runs by hyperfine (-N, no shell, 3 warm-up runs).
# Peak memory: median of 5 runs of GNU time's maximum resident set size.
# Needs: make, hyperfine, time, dcmtk, python3-pydicom (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-15}
OUT=bench/out
mkdir -p "$OUT"
make -s all
BIN=$PWD/build/sr2fhir
SHARED=${SHARED:-$(cd .. && pwd)/shared}

inputs=()
ds3="$SHARED/corpus/files/tid1500__dcmqi__rsna2018_ds3_848792.dcm"
[ -f "$ds3" ] && inputs+=("$ds3") || echo "bench: $ds3 absent, skipped" >&2
for n in 100000; do
    f="$OUT/generated_$n.dcm"
    [ -f "$f" ] || /usr/bin/python3 tests/fixtures/gen_large.py "$f" "$n" >/dev/null
    inputs+=("$f")
done

median_kib() {  # median peak RSS (KiB) of 5 runs of "$@"
    for _ in 1 2 3 4 5; do /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; done | sort -n | sed -n 3p
}
median_ms() {   # median wall time (ms) from a hyperfine JSON export
    /usr/bin/python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$1"
}

echo "| input | size | items | sr2fhir dump | dsrdump | speed-up | sr2fhir peak RSS | dsrdump peak RSS | sr2fhir RSS / (3 x size + 8 MB) |"
echo "|---|---|---|---|---|---|---|---|---|"
for f in "${inputs[@]}"; do
    size=$(stat -c %s "$f")
    items=$("$BIN" dump -q "$f" | sed -n 's/^Items: //p')
    hyperfine -N -w 3 -r "$RUNS" --export-json "$OUT/s.json" "$BIN dump $f" >/dev/null 2>&1
    hyperfine -N -w 3 -r "$RUNS" --export-json "$OUT/d.json" "dsrdump +Pc $f" >/dev/null 2>&1
    s_ms=$(median_ms "$OUT/s.json"); d_ms=$(median_ms "$OUT/d.json")
    s_kib=$(median_kib "$BIN" dump "$f"); d_kib=$(median_kib dsrdump +Pc "$f")
    /usr/bin/python3 - "$f" "$size" "$items" "$s_ms" "$d_ms" "$s_kib" "$d_kib" <<'PY'
import os, sys
f, size, items, s_ms, d_ms, s_kib, d_kib = sys.argv[1:]
size, s_ms, d_ms, s_kib, d_kib = int(size), float(s_ms), float(d_ms), int(s_kib), int(d_kib)
budget_kib = (3 * size + 8 * 1024 * 1024) / 1024
print(f"| {os.path.basename(f)} | {size / 1e6:.2f} MB | {items} | {s_ms:.1f} ms | {d_ms:.1f} ms | "
      f"{d_ms / s_ms:.1f}x | {s_kib / 1024:.1f} MiB | {d_kib / 1024:.1f} MiB | {s_kib / budget_kib:.2f} |")
PY
done
echo
echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(dsrdump --version | head -1 | sed 's/^\$//; s/\$$//'), median of $RUNS runs."
