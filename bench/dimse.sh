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
# KB), interleaved; cached in bench/out/dimse_srs_K.
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

tmp=$(mktemp -d)
pids=()        # processes this script started and has not stopped yet
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
forget() { local p keep=(); for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; pids=("${keep[@]}"); }
stop_pid() {   # stop_pid PID [SIGNAL]: SIGTERM (or SIGNAL), then SIGKILL after 20 s
    local i
    kill -"${2:-TERM}" "$1" 2>/dev/null || true
    for i in $(seq 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    { wait "$1"; } 2>/dev/null || true
    forget "$1"
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f\n", b - a }'; }
note() { echo "bench: $*" >&2; }
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---- the SRs ---------------------------------------------------------------------------
small=(tid1500__dcmjs__sample-sr tid1500__dcmjs__structured_report
       tid1500__dcmqi-inferred__rsna2018_ds1_sr-tid1500-ct-liver-example
       tid1500__dcmqi__tid1500fhir_dcmqi_result tid1500__highdicom__sr_document
       tid1500__highdicom__sr_document_with_multiple_groups
       tid1500__iowa2dicom__dcmqi-repo_sr-example_sr tid1500__pixelmed__rsna2018_ds4_1)
per=$(( (N + ${#small[@]} - 1) / ${#small[@]} ))
SRS=$OUT/dimse_srs_$per
if [ ! -f "$SRS/.complete" ]; then
    note "making $per copies of each of ${#small[@]} SRs in $SRS (once)"
    rm -rf "$SRS"
    for k in "${!small[@]}"; do
        "$PY" "$PEERS/make_copies.py" "$CORPUS/${small[$k]}.dcm" "$SRS/$k" "$per" >/dev/null
    done
    touch "$SRS/.complete"
fi
find "$PWD/$SRS" -name 'sr_*.dcm' | awk -F/ '{ print $NF "\t" $0 }' | sort | cut -f2 | head -n "$N" > "$tmp/list"
[ "$(wc -l < "$tmp/list")" = "$N" ] || { echo "bench: fewer than $N SRs in $SRS" >&2; exit 1; }
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
qcount() {     # qcount DATA STATE: jobs in STATE
    "$BIN" queue stats --data "$1" | awk -v s="$2" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }'
}
NODELIVERY="--workers 0"
if gw_start "$tmp/probe"; then
    stop_pid "$GW_PID"
else
    note "--workers 0 refused ($(head -c 300 "$tmp/probe.stderr")); one worker on a silent server instead"
    "$PY" -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True); time.sleep(86400)' > "$tmp/hole.port" &
    pids+=($!)
    disown $!
    for _ in $(seq 50); do [ -s "$tmp/hole.port" ] && break; sleep 0.1; done
    GW_SERVER=http://127.0.0.1:$(cat "$tmp/hole.port")/fhir
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
SHIM=$("$PEERS/dicom-peers.sh" shim)
scp_run() {    # scp_run RUN ASSOCIATIONS: R = wall seconds of N files stored by storescp
    local d=$tmp/scp_$1_$2 port sp i got
    mkdir -p "$d/in"
    for _ in 1 2 3; do
        port=$(free_port)
        ( cd "$d" && LD_PRELOAD=$SHIM exec storescp --fork -aet BENCHSCP +xa -pm -dhl \
            -od "$d/in" -fe .dcm "$port" ) > "$d/log" 2>&1 < /dev/null &
        sp=$!
        pids+=("$sp")
        for i in $(seq 100); do
            ss -ltn "sport = :$port" | grep -q "127.0.0.1:$port" && break
            kill -0 "$sp" 2>/dev/null || break
            sleep 0.05
        done
        if ss -ltn "sport = :$port" | grep -q "127.0.0.1:$port"; then break; fi
        stop_pid "$sp"; sp=
    done
    [ -n "$sp" ] || { echo "bench: storescp did not start: $(head -c 300 "$d/log")" >&2; exit 1; }
    if ss -ltn "sport = :$port" | grep -v "127.0.0.1:$port" | grep -q ":$port"; then
        echo "bench: storescp listens beyond 127.0.0.1" >&2; exit 1
    fi
    send_all "$port" BENCHSCP "$2"
    local r=$R
    for i in $(seq 100); do    # --fork: the last child may still be writing
        got=$(find "$d/in" -name '*.dcm' | wc -l)
        [ "$got" = "$N" ] && break
        sleep 0.05
    done
    stop_pid "$sp"
    [ "$got" = "$N" ] || { echo "bench: storescp wrote $got of $N files" >&2; exit 1; }
    rm -rf "$d"
    R=$r
}

machine() {
    echo "load average $(cut -d' ' -f1-3 /proc/loadavg); busiest other processes (%CPU since start):" \
        "$(ps -eo pcpu,comm --sort=-pcpu --no-headers | head -4 | awk '{ printf "%s %s%%, ", $2, $1 }' | sed 's/, $//')"
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
