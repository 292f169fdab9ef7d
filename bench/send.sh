#!/usr/bin/env bash
# bench/send.sh - SRs delivered per second by `sr2fhir send` to a real FHIR server
# (../shared/tools/fhir-server: Medplum's FHIR router with its in-memory repository, R5, on
# 127.0.0.1), sequential (-j 1) against -j 4, on two sets of SRs, next to a reference point
# for the server's own cost: the same Bundles, converted beforehand, POSTed one after another
# by one curl process (one keep-alive connection, no /metadata, no lookups). Prints a Markdown table (paste it into
# bench/README.md). Not a test: timings depend on the machine.
#
#   bench/send.sh [RUNS] [COPIES]   # RUNS per command (default 5), COPIES per SR (default 4)
#
# Inputs:
# - "small": COPIES copies of every tid1500 corpus file (.dcm) whose Bundle has at most 50
#   entries (one transaction each), each copy with its own SOP Instance UID (pydicom), so
#   that every SR writes its own resources: 32 SRs by default;
# - "corpus": the 13 tid1500 corpus files as they are, three of them large (53, 284 and
#   1,565 resources), which go as several transactions of at most 50 entries (--max-entries,
#   Medplum's cap). curl is not measured for this set (Medplum refuses the large Bundles
#   whole).
# Every run starts from an empty server (hyperfine --prepare posts $reset), so every PUT
# creates. What is timed is the whole process: reading, converting, one /metadata request,
# the lookups (Patient, ServiceRequest, ImagingStudy; none found) and the transactions. The
# server handles one request at a time, so -j 4 gains only what the client's own work and
# the round trips overlap.
# Wall time: median of RUNS runs by hyperfine (-N, no shell, 1 warm-up run); SRs/s = SRs /
# median, resources/s = Bundle entries / median. Needs: make, node, npm, hyperfine, curl,
# python3-pydicom (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
COPIES=${2:-4}
OUT=bench/out
mkdir -p "$OUT"
make -s all
BIN=$PWD/build/sr2fhir
PY=/usr/bin/python3
SHARED=${SHARED:-$(cd .. && pwd)/shared}
SERVER=$SHARED/tools/fhir-server/fhir-server.sh
CORPUS=$SHARED/corpus/files
[ -x "$SERVER" ] && [ -d "$CORPUS" ] || { echo "bench: $SHARED (server, corpus) absent" >&2; exit 1; }
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

tmp=$(mktemp -d)
export FHIR_PORT=0 FHIR_VERSION=R5 FHIR_PIDFILE=$tmp/fhir.pid FHIR_LOGFILE=$tmp/fhir.log
trap '"$SERVER" stop; rm -rf "$tmp"' EXIT
BASE=$("$SERVER" start)

entries() {    # entries FILE...: Bundle entries of the SRs, in all
    local f n=0
    for f in "$@"; do
        n=$((n + $("$BIN" convert -q "$f" -o - | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["entry"]))')))
    done
    echo "$n"
}

# ---- "small": copies with distinct SOP Instance UIDs, and their Bundles for curl
mkdir -p "$tmp/small" "$tmp/bundles"
small=()
for f in "$CORPUS"/tid1500__*.dcm; do
    [ "$(entries "$f")" -le 50 ] && small+=("$f")
done
"$PY" - "$tmp/small" "$COPIES" "${small[@]}" <<'PY'
import os, sys
import pydicom
dst, copies, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for i, f in enumerate(files):
    for k in range(copies):
        ds = pydicom.dcmread(f)
        uid = "1.2.826.0.1.3680043.10.1500.78.%d.%d" % (i + 1, k + 1)
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.save_as(os.path.join(dst, "%02d_%d_%s" % (i + 1, k + 1, os.path.basename(f))))
PY
set_small=("$tmp"/small/*.dcm)
set_corpus=("$CORPUS"/tid1500__*)
"$BIN" convert -q "${set_small[@]}" -o "$tmp/bundles"
sep=
for f in "$tmp"/bundles/*.json; do   # one curl process, one keep-alive connection
    printf '%surl = "%s"\nrequest = "POST"\nheader = "Content-Type: application/fhir+json"\n' "$sep" "$BASE"
    printf 'data-binary = "@%s"\noutput = "/dev/null"\nfail\nsilent\n' "$f"
    sep=$'next\n'
done > "$tmp/curl.cfg"
printf '#!/bin/bash\nexec curl -K "%s"\n' "$tmp/curl.cfg" > "$tmp/floor.sh"
printf '#!/bin/bash\nexec curl -sf -o /dev/null -X POST "%s/\\$reset"\n' "$BASE" > "$tmp/reset.sh"
chmod +x "$tmp/floor.sh" "$tmp/reset.sh"

# ---- every command must deliver everything before it is timed
for set in small corpus; do
    declare -n files="set_$set"
    for j in 1 4; do
        "$tmp/reset.sh"
        "$BIN" send -q --server "$BASE" --audit-log "$tmp/check.log" -j $j "${files[@]}" \
            || { echo "bench: sr2fhir send -j $j ($set) failed" >&2; exit 1; }
    done
    unset -n files
done
"$tmp/reset.sh"
"$tmp/floor.sh" || { echo "bench: curl -K failed" >&2; exit 1; }

median_s() {   # median wall time (s) from a hyperfine JSON export
    "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"
}
time_s() {     # time_s NAME CMD...: median wall time (s) of CMD over RUNS runs, empty server each
    local name=$1; shift
    hyperfine -N -w 1 -r "$RUNS" --prepare "$tmp/reset.sh" --export-json "$OUT/send_$name.json" \
        "$*" >/dev/null 2>&1
    median_s "$OUT/send_$name.json"
}
rows=()   # "set|SRs|resources|command|seconds"
for set in small corpus; do
    declare -n files="set_$set"
    n=${#files[@]}
    res=$(entries "${files[@]}")
    for j in 1 4; do
        s=$(time_s "${set}_j$j" "$BIN" send -q --server "$BASE" --audit-log "$tmp/audit.log" -j $j "${files[@]}")
        rows+=("$set|$n|$res|sr2fhir send -j $j|$s")
    done
    if [ "$set" = small ]; then
        rows+=("$set|$n|$res|curl -K: POST the converted Bundles, one connection|$(time_s floor "$tmp/floor.sh")")
    fi
    unset -n files
done

echo "Inputs: \"small\" = $COPIES copies of each of the ${#small[@]} tid1500 corpus files with at" \
    "most 50 resources (distinct SOP Instance UIDs); \"corpus\" = the ${#set_corpus[@]} tid1500" \
    "corpus files as they are (the large ones in transactions of at most 50 entries). R5 server" \
    "on 127.0.0.1, emptied before every run."
echo
echo "| inputs | SRs | resources | command | wall time | SRs/s | resources/s | vs -j 1 |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}" | "$PY" -c '
import sys
base = {}
for line in sys.stdin:
    name, n, res, cmd, s = line.rstrip("\n").split("|")
    n, res, s = int(n), int(res), float(s)
    base.setdefault(name, s)
    print(f"| {name} | {n} | {res} | `{cmd}` | {s * 1000:.0f} ms | {n / s:.1f} | {res / s:.0f} | "
          f"{base[name] / s:.2f}x |")
'
echo
echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $("$BIN" version | head -1)," \
    "node $(node --version), $(hyperfine --version); median of $RUNS runs."
