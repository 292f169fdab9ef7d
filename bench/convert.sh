#!/usr/bin/env bash
# bench/convert.sh - whole-process wall time and peak memory of `sr2fhir convert`: against
# DCMTK `dsr2xml` (a full export of the same tree) and a pydicom read-and-walk
# (bench/pydicom_walk.py) on the largest corpus file (rsna2018_ds3), and a scaling table
# over generated reports of 1,000, 10,000 and 100,000 content items. Everything is
# measured in one run so that ratios compare like with like. Prints two Markdown tables
# (paste them into bench/README.md), then a third: the large report shapes of issue 9
# defect 1 (tests/fixtures/gen_large.py --shape: 500, 1,000 and 2,000 groups x 10 NUMs as
# Part 10 and DICOM JSON, the deflated twin, one group of 20,000 NUMs, 5,000 distinct
# groups), each with CPU time, wall time and peak RSS from `/usr/bin/time -v` (the run of
# median CPU time of 5: CPU time varies less than wall time on a shared machine).
# Not a test: timings depend on the machine.
#
#   bench/convert.sh [RUNS]          # RUNS per command and input, default 10
#   bench/convert.sh --shapes        # only the table of the large shapes
#   bench/convert.sh --compare OLD NEW [RUNS]   # two builds of sr2fhir on rsna2018_ds3:
#       instructions (callgrind, median of 3: stable on a busy machine) and wall time
#       (one hyperfine run of both, RUNS runs each, default 30: noisy on a busy machine)
#       (issue 14: a refactoring must stay within 3% of the build before it)
#
# Wall time: median of RUNS runs by hyperfine (-N, no shell, 3 warm-up runs); every
# command writes to standard output, which hyperfine sends to /dev/null.
# Peak memory: median of 5 runs of GNU time's maximum resident set size.
# Needs: make, hyperfine, time, dcmtk, python3-pydicom (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SHAPES_ONLY=0
if [ "${1:-}" = "--shapes" ]; then SHAPES_ONLY=1; shift; fi
if [ "${1:-}" = "--compare" ]; then
    [ $# -ge 3 ] || { echo "usage: bench/convert.sh --compare OLD NEW [RUNS]" >&2; exit 2; }
    old=$(realpath "$2") new=$(realpath "$3") runs=${4:-30}
    SHARED=${SHARED:-$(cd .. && pwd)/shared}
    ds3="$SHARED/corpus/files/tid1500__dcmqi__rsna2018_ds3_848792.dcm"
    [ -f "$ds3" ] || { echo "bench: $ds3 absent" >&2; exit 1; }
    instr() {   # median instructions of 3 callgrind runs of `BIN convert -q ds3 -o /dev/null`
        for _ in 1 2 3; do
            valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" convert -q "$ds3" \
                -o /dev/null 2>&1 | sed -n 's/.*I *refs: *//p' | tr -d ,
        done | sort -n | sed -n 2p
    }
    i_old=$(instr "$old") i_new=$(instr "$new")
    mkdir -p bench/out
    hyperfine -N -w 5 -r "$runs" --export-json bench/out/compare.json \
        "$old convert -q $ds3 -o -" "$new convert -q $ds3 -o -" >/dev/null 2>&1
    /usr/bin/python3 - "$i_old" "$i_new" bench/out/compare.json <<'PY'
import json, sys
i_old, i_new = int(sys.argv[1]), int(sys.argv[2])
r = json.load(open(sys.argv[3]))["results"]
m_old, m_new = r[0]["median"] * 1000, r[1]["median"] * 1000
print("| build | instructions (callgrind) | wall time (median) |")
print("|---|---|---|")
print(f"| before | {i_old / 1e6:.2f} M | {m_old:.2f} ms |")
print(f"| after | {i_new / 1e6:.2f} M ({(i_new / i_old - 1) * 100:+.2f}%) | {m_new:.2f} ms ({(m_new / m_old - 1) * 100:+.1f}%) |")
PY
    echo
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); rsna2018_ds3, $runs runs each."
    exit 0
fi
RUNS=${1:-10}
OUT=bench/out
mkdir -p "$OUT"
make -s all
BIN=$PWD/build/sr2fhir
PY=/usr/bin/python3
SHARED=${SHARED:-$(cd .. && pwd)/shared}

# ---- issue 9 defect 1: the large shapes, time and peak RSS per shape -------------------
shape_file() {  # shape_file NAME GEN-ARGS...: bench/out/shape_NAME, generated once
    local f=$OUT/shape_$1; shift
    if [ ! -f "$f" ]; then
        "$PY" tests/fixtures/gen_large.py "$@" "$f.tmp" >/dev/null
        mv "$f.tmp" "$f"
    fi
    echo "$f"
}
time_v() {      # time_v FILE: "cpu_seconds wall_seconds kib" of `convert -q FILE -o -`,
    for _ in 1 2 3 4 5; do  # the run of median CPU time (user + system) of 5
        /usr/bin/time -v "$BIN" convert -q "$1" -o - 2>&1 >/dev/null |
            awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = t[n] + (n > 1 ? 60 * t[n-1] : 0) }
                        /User time|System time/ { c += $2 }
                        /Maximum resident set size/ { k = $2 } END { print c, s, k }'
    done | sort -n | sed -n 3p
}
shapes_table() {
    local rows=() name f
    for spec in "groups-500x10 groups 500 10 part10" "groups-1000x10 groups 1000 10 part10" \
                "groups-2000x10 groups 2000 10 part10" "groups-2000x10-deflated groups 2000 10 deflated" \
                "groups-500x10-json groups 500 10 json" "groups-1000x10-json groups 1000 10 json" \
                "groups-2000x10-json groups 2000 10 json" "nums-1x20000 nums 1 20000 part10" \
                "distinct-5000x1 distinct 5000 1 part10"; do
        set -- $spec
        name=$1; ext=.dcm; [ "$5" = json ] && ext=.json
        f=$(shape_file "$name$ext" --shape "$2" --groups "$3" --nums "$4" --format "$5")
        rows+=("$name $(stat -c %s "$f") $("$BIN" dump -q "$f" | sed -n 's/^Items: //p') $(time_v "$f")")
    done
    echo "| shape | file size | items | CPU time (user + sys) | CPU per 1,000 items | wall time | peak RSS | RSS / file size |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}" | "$PY" -c '
import sys
for line in sys.stdin:
    name, size, items, c, s, kib = line.split()
    size, items, c, s, kib = int(size), int(items), float(c), float(s), int(kib)
    print(f"| {name} | {size / 1e6:.2f} MB | {items} | {c:.2f} s | {c * 1e6 / items:.1f} ms |"
          f" {s:.2f} s | {kib / 1024:.1f} MiB | {kib * 1024 / size:.1f} |")
'
    echo
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $("$BIN" version | head -1); the run of median CPU time of 5 (/usr/bin/time -v)."
}
if [ "$SHAPES_ONLY" = 1 ]; then shapes_table; exit 0; fi

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
# issue 9 defect 2: the DICOM JSON twin of each generated report (pydicom's to_json, keys
# sorted so "Value" precedes "vr"), to compare JSON with Part 10 per MB.
json_twins=()
for f in "${generated[@]}"; do
    j="${f%.dcm}.json"
    [ -f "$j" ] || "$PY" -c 'import sys, pydicom
open(sys.argv[2] + ".tmp", "w").write(pydicom.dcmread(sys.argv[1]).to_json())' "$f" "$j"
    [ -f "$j" ] || mv "$j.tmp" "$j"
    json_twins+=("$j")
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
for j in "${json_twins[@]}"; do
    n=$(basename "$j")
    convert_row "$j" "$(time_ms "${n%.json}_json" "$BIN" convert -q "$j" -o -)" \
        "$(median_kib "$BIN" convert -q "$j" -o -)"
done

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
# JSON twins against Part 10: the goal of issue 9 defect 2 is JSON time per MB within 3x
# Part 10's and peak RSS within 4 x file + 16 MiB.
echo "| report | Part 10 MB/s | DICOM JSON MB/s | JSON time per MB vs Part 10 | JSON peak RSS | 4 x JSON + 16 MiB |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}" | "$PY" -c '
import os, sys
rows = {}
for line in sys.stdin:
    f, size, items, ms, kib, bundle = line.split()
    rows[os.path.basename(f)] = (int(size), float(ms), int(kib))
for name, (size, ms, kib) in rows.items():
    if not name.endswith(".json") or name[:-5] + ".dcm" not in rows:
        continue
    psize, pms, _ = rows[name[:-5] + ".dcm"]
    p_rate, j_rate = psize / 1e3 / pms, size / 1e3 / ms
    print(f"| {name[:-5]} | {p_rate:.1f} | {j_rate:.1f} | {p_rate / j_rate:.2f}x | "
          f"{kib / 1024:.1f} MiB | {(4 * size + 16 * 2**20) / 2**20:.1f} MiB |")
'
echo
echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $("$BIN" version | head -1)," \
    "DCMTK $(dsr2xml --version | head -1 | sed 's/^\$//; s/ *\$$//; s/^dcmtk: //'), pydicom" \
    "$("$PY" -c 'import pydicom; print(pydicom.__version__)') (Python $("$PY" -c 'import platform; print(platform.python_version())')),"\
    "$(hyperfine --version); median of $RUNS runs."
echo
shapes_table
