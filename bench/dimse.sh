#!/usr/bin/env bash
# bench/dimse.sh - the gateway's DICOM receiver (`sr2fhir serve --dicom`, issue 12) against
# DCMTK storescp on this machine, every figure from one run of this script so that the ratios
# compare like with like. Prints a Markdown table (paste it into bench/README.md). Not a
# test: timings depend on the machine.
#
#   bench/dimse.sh [N] [RUNS]      # defaults 1000 3
#
# The sender is DCMTK storescu in both cases: N small SRs over ONE association (one storescu
# process), and over 4 associations in parallel (4 storescu processes, N/4 files each), -R
# (only the contexts the files need), TCP_NODELAY=1 in every process' environment (DCMTK
# leaves Nagle on otherwise; the service sets TCP_NODELAY itself). Wall time from the launch
# of the senders to the exit of the last; a run counts only when every storescu exited 0
# and every SR arrived: N jobs in the service's queue (`sr2fhir queue stats`: pending +
# leased), N files in storescp's folder.
# - `sr2fhir serve --dicom 127.0.0.1:0 --aet BENCHGW`: each C-STORE-RSP 0000 is sent only
#   after the file and its job row are committed (fsync, intake.h group commit). Delivery
#   does not compete: --workers 0 when the service takes it, else one worker on a FHIR
#   server that accepts connections and never answers (as bench/stow.sh part 1).
# - DCMTK storescp --fork (one process per association, so 4 associations run at once as
#   they do in the service), +xa, -pm, writing each file into an empty folder, no fsync;
#   bound to 127.0.0.1 by dicom-peers' bind shim.
# The two alternate RUNS times; the table gives the median wall time and the ratio of the
# service's rate to storescp's (issue 12's goal: at least 1.0).
#
# The SRs: copies (../shared/tools/dicom-peers/make_copies.py: new SOP Instance UIDs) of the
# 8 tid1500 corpus files whose Bundle has at most 50 entries (bench/stow.sh's set, 4.4 to 77
# KB), interleaved; cached in bench/out/dimse_srs_K (bench/lib.sh small_srs).
# Needs: make, dcmtk, python3-pydicom, ss, ../shared (corpus, dicom-peers).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
RUNS=${2:-3}
PAR=4
OUT=bench/out
mkdir -p "$OUT"
[ -n "${BENCH_NO_MAKE:-}" ] || make -s all
BIN=$PWD/build/sr2fhir
[ -x build/sr2fhir-serve ] || { echo "bench: build/sr2fhir-serve not built" >&2; exit 1; }
grep -q "serving DICOM" build/sr2fhir-serve ||
    { echo "bench: sr2fhir serve has no --dicom (issue 12 not landed)" >&2; exit 1; }
PY=/usr/bin/python3
SHARED=${SHARED:-$(cd .. && pwd)/shared}
PEERS=$SHARED/tools/dicom-peers
CORPUS=$SHARED/corpus/files
[ -d "$CORPUS" ] && [ -f "$PEERS/make_copies.py" ] ||
    { echo "bench: $SHARED (dicom-peers, corpus) absent" >&2; exit 1; }
command -v storescu > /dev/null && command -v storescp > /dev/null ||
    { echo "bench: DCMTK storescu/storescp absent (apt-get install dcmtk)" >&2; exit 1; }
export TCP_NODELAY=1 no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

. bench/lib.sh   # tmp, pids, stop_pid, now/elapsed/note, qcount, machine, small_srs, scp_start

# ---- the SRs ---------------------------------------------------------------------------
small_srs dimse_srs "$N" "$tmp/all"
head -n "$N" "$tmp/all" > "$tmp/list"
[ "$(wc -l < "$tmp/list")" = "$N" ] || { echo "bench: fewer than $N SRs in $OUT/dimse_srs_*" >&2; exit 1; }
bytes=$(xargs -a "$tmp/list" -d '\n' cat | wc -c)
mkdir -p "$tmp/shares" "$tmp/logs"
split -n "r/$PAR" -d "$tmp/list" "$tmp/shares/share."

send_all() {   # send_all PORT AET ASSOCIATIONS: storescu of the N files; R = wall seconds
    local port=$1 aet=$2 k t0 t1 p ok=1 senders=() lists
    if [ "$3" = 1 ]; then lists=("$tmp/list"); else lists=("$tmp"/shares/share.*); fi
    rm -f "$tmp"/logs/*
    t0=$(now)
    for k in "${lists[@]}"; do
        mapfile -t f < "$k"
        storescu -R -aet BENCH -aec "$aet" 127.0.0.1 "$port" "${f[@]}" > "$tmp/logs/${k##*/}" 2>&1 &
        senders+=($!)
    done
    for p in "${senders[@]}"; do wait "$p" || ok=0; done
    t1=$(now)
    [ "$ok" = 1 ] || { echo "bench: storescu failed: $(cat "$tmp"/logs/* | head -c 600)" >&2; exit 1; }
    R=$(elapsed "$t0" "$t1")
}

# ---- the service -------------------------------------------------------------------------
GW_PID= GW_PORT=
GW_WORKERS=(--workers 0)
GW_SERVER=http://127.0.0.1:9/fhir
gw_start() {   # gw_start DATA: sets GW_PID, GW_PORT (the DICOM port); 1 when it did not start
    local data=$1 i line
    mkdir -p "$data"
    "$BIN" serve --http 127.0.0.1:0 --dicom 127.0.0.1:0 --aet BENCHGW --data "$data" \
        --server "$GW_SERVER" "${GW_WORKERS[@]}" --log "$data.log" \
        > "$data.stdout" 2> "$data.stderr" < /dev/null &
    GW_PID=$!
    pids+=("$GW_PID")
    disown "$GW_PID"    # no "Killed" job notice for the SIGKILL at the end of a run
    for i in $(seq 150); do
        line=$(cat "$data.stdout" "$data.stderr" "$data.log" 2>/dev/null |
            sed -n 's|^sr2fhir: serving DICOM (C-STORE, C-ECHO) as BENCHGW at 127\.0\.0\.1:\([0-9]*\)$|\1|p' | head -1)
        if [ -n "$line" ]; then GW_PORT=$line; return 0; fi
        kill -0 "$GW_PID" 2>/dev/null || break
        sleep 0.1
    done
    stop_pid "$GW_PID"
    return 1
}
NODELIVERY="--workers 0"
if gw_start "$tmp/probe"; then
    stop_pid "$GW_PID"
else
    note "--workers 0 refused ($(head -c 300 "$tmp/probe.stderr")); one worker on a silent server instead"
    silent_server
    GW_SERVER=$HOLE
    GW_WORKERS=(--workers 1 --connect-timeout 3600 --timeout 3600 --stop-grace 0)
    NODELIVERY="--workers 1 on a FHIR server that never answers"
    gw_start "$tmp/probe2" || { echo "bench: the service did not start: $(head -c 500 "$tmp/probe2.stderr")" >&2; exit 1; }
    stop_pid "$GW_PID"
fi

gw_run() {     # gw_run RUN ASSOCIATIONS: R = wall seconds of N acknowledged C-STOREs
    local d=$tmp/gw_$1_$2 queued
    gw_start "$d" || { echo "bench: the service did not start: $(head -c 500 "$d.stderr")" >&2; exit 1; }
    send_all "$GW_PORT" BENCHGW "$2"
    stop_pid "$GW_PID" KILL
    queued=$(( $(qcount "$d" pending) + $(qcount "$d" leased) ))
    [ "$queued" = "$N" ] || { echo "bench: $queued jobs queued after $N C-STOREs" >&2; exit 1; }
    rm -rf "$d"
}

# ---- storescp ----------------------------------------------------------------------------
scp_run() {    # scp_run RUN ASSOCIATIONS: R = wall seconds of N files stored by storescp
    local d=$tmp/scp_$1_$2 i got
    scp_start "$d"
    send_all "$SCP_PORT" BENCHSCP "$2"
    local r=$R
    for i in $(seq 100); do    # --fork: the last child may still be writing
        got=$(find "$d/in" -name '*.dcm' | wc -l)
        [ "$got" = "$N" ] && break
        sleep 0.05
    done
    stop_pid "$SCP_PID"
    [ "$got" = "$N" ] || { echo "bench: storescp wrote $got of $N files" >&2; exit 1; }
    rm -rf "$d"
    R=$r
}

machine_before=$(machine)

note "$N SRs ($bytes bytes), $RUNS runs, 1 and $PAR associations"
declare -A t
for r in $(seq "$RUNS"); do
    for c in 1 "$PAR"; do
        gw_run "$r" "$c"; t[gw_$c]+="$R "
        scp_run "$r" "$c"; t[scp_$c]+="$R "
    done
done
machine_after=$(machine)

export N RUNS PAR NODELIVERY bytes
export T_GW1="${t[gw_1]}" T_GWP="${t[gw_$PAR]}" T_SCP1="${t[scp_1]}" T_SCPP="${t[scp_$PAR]}"
"$PY" - <<'PY'
import os, statistics
e = os.environ
n, par = int(e["N"]), int(e["PAR"])
med = lambda k: statistics.median(float(x) for x in e[k].split())
runs = lambda k: ", ".join("%.2f" % float(x) for x in e[k].split())
print(f"Inputs: {n} small TID 1500 SRs ({int(e['bytes']) / n / 1000:.1f} KB on average), copies of "
      "8 corpus files with new SOP Instance UIDs, sent by DCMTK storescu -R (TCP_NODELAY=1).")
print()
print(f"| associations | receiver | wall time (median of {e['RUNS']}; runs) | acknowledged SRs/s | sr2fhir / storescp |")
print("|---|---|---|---|---|")
for c, kg, ks in ((1, "T_GW1", "T_SCP1"), (par, "T_GWP", "T_SCPP")):
    gw, scp = med(kg), med(ks)
    print(f"| {c} | `sr2fhir serve --dicom` (0000 after the durable commit; {e['NODELIVERY']}) | "
          f"{gw:.2f} s ({runs(kg)}) | {n / gw:.0f} | **{scp / gw:.2f}x** |")
    print(f"| {c} | DCMTK storescp --fork (no fsync) | {scp:.2f} s ({runs(ks)}) | {n / scp:.0f} | 1.00x |")
PY
echo
echo "Measured $(date -u '+%Y-%m-%d %H:%M') UTC on $(nproc) cores at $(git rev-parse --short HEAD)," \
    "$(storescp --version 2>&1 | head -1 | sed 's/^\$//; s/\$$//')."
echo "Before: $machine_before."
echo "After: $machine_after."
