#!/usr/bin/env bash
# bench/pull.sh - `sr2fhir pull` (issue 13) against the floor Orthanc allows: N small SRs
# (dicom-peers' `copies` of one corpus TID 1500 file, new SOP Instance UIDs, one series) in
# Orthanc 1.10.1 + DICOMweb plugin 1.7 (../shared/tools/dicom-peers), pulled into a fresh
# data folder's queue (queue only: no delivery competing), against one curl process
# fetching the same WADO-RS instance URLs one after another on one keep-alive connection
# (curl -K: a config file of url/output lines). Every figure from one run, RUNS runs each
# alternating, the median printed. Not a test: timings depend on the machine.
#
#   bench/pull.sh [N] [RUNS]        # defaults 1000 3
#   JOBS="1 4 8" bench/pull.sh      # the --jobs values measured (default "1 4")
#   OLD=DIR/sr2fhir bench/pull.sh   # another build's binary measured too, in the same runs
#                                   # (before/after figures from one run)
#
# Counts are checked: every curl output file is a multipart answer, every pull run's
# summary says found N, new N, queued N, and its queue holds N jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
RUNS=${2:-3}
JOBS=${JOBS:-"1 4"}
P=${SHARED:-../shared}/tools/dicom-peers/dicom-peers.sh
SRC=${SHARED:-../shared}/corpus/files/tid1500__dcmjs__sample-sr.dcm
PY=/usr/bin/python3
[ -x build/sr2fhir-pull ] || nice make -j2 all >/dev/null
W=$(mktemp -d /tmp/sr2fhir-bench-pull-XXXXXX)
export DICOM_PEERS_HOME=$W/peers TCP_NODELAY=1
trap '"$P" stop-all --kill >/dev/null 2>&1; rm -rf "$W"' EXIT
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }

"$P" copies "$SRC" "$W/srs" "$N" >/dev/null
ready=$("$P" orthanc-start bench --http auto --dicom auto)
DW=$(kv "$ready" dicomweb)
"$P" orthanc-load bench "$W/srs" >/dev/null
# the WADO-RS URL of every instance, from the files
"$PY" - "$W/srs" "$DW" >"$W/curl.cfg" <<'PY'
import os, sys
import pydicom
d, base = sys.argv[1], sys.argv[2]
for i, f in enumerate(sorted(os.listdir(d))):
    ds = pydicom.dcmread(os.path.join(d, f), stop_before_pixels=True)
    print('url = "%s/studies/%s/series/%s/instances/%s"' % (base, ds.StudyInstanceUID,
          ds.SeriesInstanceUID, ds.SOPInstanceUID))
    print('output = "%s/curl-out/%06d"' % (os.path.dirname(d), i))
PY
now() { date +%s.%N; }
declare -A T
run_curl() {
    rm -rf "$W/curl-out"; mkdir "$W/curl-out"
    local t0; t0=$(now)
    curl -sS --fail --noproxy '*' -H 'Accept: multipart/related; type="application/dicom"' \
        -K "$W/curl.cfg"
    T[curl]+="$(echo "$(now) - $t0" | bc) "
    local got; got=$(grep -l -a 'application/dicom' "$W"/curl-out/* | wc -l)
    [ "$got" -eq "$N" ] || { echo "curl: $got of $N answers are multipart" >&2; exit 1; }
}
run_pull() {  # run_pull JOBS BINARY KEY
    local j=$1 bin=$2 d=$W/data-$1 t0 out
    rm -rf "$d"
    t0=$(now)
    out=$("$bin" pull --dicomweb "$DW" --data "$d" --jobs "$j")
    T[$3$j]+="$(echo "$(now) - $t0" | bc) "
    [ "$out" = "pull: found $N, new $N, skipped 0, queued $N, delivered 0, not_applicable 0, failed 0" ] ||
        { echo "$bin pull --jobs $j: $out" >&2; exit 1; }
    [ "$("$bin" queue stats --data "$d" | sed -n 's/^pending //p')" -eq "$N" ] ||
        { echo "$bin pull --jobs $j: queue does not hold $N pending jobs" >&2; exit 1; }
}
for _ in $(seq "$RUNS"); do
    run_curl
    for j in $JOBS; do
        run_pull "$j" build/sr2fhir pull
        [ -z "${OLD:-}" ] || run_pull "$j" "$OLD" old
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mc=$(echo "${T[curl]}" | median)
echo "N=$N runs=$RUNS commit=$(git rev-parse --short HEAD) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| what | median s | instances/s | vs curl |"
echo "| --- | --- | --- | --- |"
printf '| curl, one connection, one URL after another | %.2f | %.0f | 1.00x |\n' "$mc" "$(echo "$N / $mc" | bc -l)"
row() {  # row KEY JOBS LABEL
    local m; m=$(echo "${T[$1$2]}" | median)
    printf '| %s --jobs %s (search + retrieve + SHA-256 + classify + durable commit) | %.2f | %.0f | %.2fx |\n' \
        "$3" "$2" "$m" "$(echo "$N / $m" | bc -l)" "$(echo "$mc / $m" | bc -l)"
}
for j in $JOBS; do
    [ -z "${OLD:-}" ] || row old "$j" "$OLD pull"
    row pull "$j" "sr2fhir pull"
done
