#!/usr/bin/env bash
# bench/stow.sh - the gateway (`sr2fhir serve`, issue 11) measured against named peers, every
# figure from one run of this script so that ratios compare like with like. Prints Markdown
# tables (paste them into bench/README.md). Not a test: timings depend on the machine.
#
#   bench/stow.sh [N] [MEM_N] [RUNS]   # defaults 2000 10000 3; MEM_N 0 skips part 4
#   PARTS="3" bench/stow.sh ...        # only the parts listed (default "1 2 3 4")
#   BIN=DIR/sr2fhir bench/stow.sh ...  # another build's binaries (A/B runs; no make then)
#
# 1. Acknowledged STOW-RS: N small SRs, one SR per request (multipart/related, one
#    application/dicom part, Content-Length), by 1 and by 8 concurrent clients on keep-alive
#    connections (bench/stow_load.c, compiled here into bench/out/), into the service started
#    with --workers 0 (no delivery competing; if refused: --server at a closed port, and the
#    table says so). An SR counts when its request got 200, which the service answers only
#    after the file and its job row are committed (fsync). The queue is checked to hold N
#    pending jobs afterwards. The client's own ceiling is measured against its trivial sink
#    (stow_load sink: reads the request, answers 200 `{}`), so the client is not the limit.
# 2. The baseline peer: DCMTK storescu -> storescp on the same N files (storescp --fork, +xa,
#    -pm, writing each file into an empty folder, no fsync; bound to 127.0.0.1 by
#    dicom-peers' bind shim), 1 and 8 concurrent storescu processes, each sending its share
#    in one association (-R: only the contexts the files need); TCP_NODELAY=1 on both sides.
#    Wall time from the launch of the senders to the exit of the last; every file checked
#    to have arrived.
#    Parts 1 and 2 alternate RUNS times; the tables give the median wall time.
# 3. End to end: the N SRs STOWed by 8 clients into the service with --workers 4 delivering
#    to a fresh FHIR server tool (../shared/tools/fhir-server, R5, in-memory), timed from
#    the first STOW to the queue drained (`sr2fhir queue stats`: every job done, polled every
#    0.1 s), against `sr2fhir send -j 4` of the same files into another fresh instance.
# 4. Memory: MEM_N SRs STOWed (8 clients) into the service with 4 workers delivering to a
#    fresh FHIR server; VmRSS and VmHWM of the service sampled at every 1,000 acknowledged
#    and at every 1,000 delivered, until drained (or MEM_DRAIN_MAX seconds, default 1800,
#    after which the table says how many were delivered).
#
# The SRs: copies (../shared/tools/dicom-peers/make_copies.py: new SOP Instance UIDs, same
# study) of the 8 tid1500 corpus files whose Bundle has at most 50 entries (as
# bench/send.sh's "small" set; 4.4 to 77 KB), interleaved; cached in bench/out/stow_srs_K
# (bench/lib.sh small_srs).
# Needs: make, cc, dcmtk, python3-pydicom, node and npm (the FHIR server tool), ss.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
MEM_N=${2:-10000}
RUNS=${3:-3}
MEM_DRAIN_MAX=${MEM_DRAIN_MAX:-1800}
OUT=bench/out
mkdir -p "$OUT"
PARTS=" ${PARTS:-1 2 3 4} "
part() { [[ "$PARTS" == *" $1 "* ]]; }
if [ -z "${BIN:-}" ]; then make -s all; BIN=$PWD/build/sr2fhir; fi
[ -x "$(dirname "$BIN")/sr2fhir-serve" ] || { echo "bench: $(dirname "$BIN")/sr2fhir-serve not built (the gateway has not landed)" >&2; exit 1; }
PY=/usr/bin/python3
SHARED=${SHARED:-$(cd .. && pwd)/shared}
SERVER=$SHARED/tools/fhir-server/fhir-server.sh
PEERS=$SHARED/tools/dicom-peers
CORPUS=$SHARED/corpus/files
[ -x "$SERVER" ] && [ -d "$CORPUS" ] && [ -f "$PEERS/make_copies.py" ] ||
    { echo "bench: $SHARED (fhir-server, dicom-peers, corpus) absent" >&2; exit 1; }
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost TCP_NODELAY=1
LOAD=$OUT/stow_load
cc -std=c11 -O2 -Wall -Wextra -Werror -pthread -o "$LOAD" bench/stow_load.c

. bench/lib.sh   # tmp, pids, stop_pid, now/elapsed/note, qcount, machine, small_srs, scp_start
bench_cleanup_more() {   # the FHIR server tool instances still running
    local f
    for f in "$tmp"/fhir*/pid; do
        [ -f "$f" ] && FHIR_PIDFILE=$f "$SERVER" stop >/dev/null 2>&1 || true
    done
}

# ---- the SRs -------------------------------------------------------------------------
small_srs stow_srs "$(( N > MEM_N ? N : MEM_N ))" "$tmp/all"
head -n "$N" "$tmp/all" > "$tmp/list"
head -n "$MEM_N" "$tmp/all" > "$tmp/memlist"
[ "$(wc -l < "$tmp/list")" = "$N" ] || { echo "bench: fewer than $N SRs in $OUT/stow_srs_*" >&2; exit 1; }
mapfile -t files < "$tmp/list"
bytes=$(cat "${files[@]}" | wc -c)

# ---- the service -----------------------------------------------------------------------
GW_PID= GW_PORT=
GW_EXTRA=()
gw_start() {   # gw_start DATA SERVER-URL WORKERS: sets GW_PID, GW_PORT; 1 when it did not start
    local data=$1 i line
    mkdir -p "$data"
    "$BIN" serve --http 127.0.0.1:0 --data "$data" --server "$2" --workers "$3" "${GW_EXTRA[@]}" \
        --log "$data.log" > "$data.stdout" 2> "$data.stderr" < /dev/null &
    GW_PID=$!
    pids+=("$GW_PID")
    for i in $(seq 150); do
        line=$(sed -n 's|^sr2fhir: serving STOW-RS at http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$data.stdout" | head -1)
        if [ -n "$line" ]; then GW_PORT=$line; return 0; fi
        kill -0 "$GW_PID" 2>/dev/null || break
        sleep 0.1
    done
    stop_pid "$GW_PID"
    return 1
}
vm() { awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { print "rss=" r " hwm=" h }' "/proc/$1/status"; }

# --workers 0 if the service takes it; else one worker whose FHIR server accepts the
# connection and never answers (a socket listening without accepting), so that worker
# waits on its first job for --timeout (3600 s) and the others stay idle: no delivery
# competes with receiving. (A closed port would not do: every job would be read,
# converted, refused and rescheduled, a queue write each.)
GW_EXTRA=()
NODELIVERY="--workers 0"
if gw_start "$tmp/probe" "http://127.0.0.1:9/fhir" 0; then
    stop_pid "$GW_PID"
else
    note "--workers 0 refused ($(head -c 300 "$tmp/probe.stderr")); one worker on a silent server instead"
    silent_server
    GW_EXTRA=(--connect-timeout 3600 --timeout 3600 --stop-grace 0)
    NODELIVERY="--workers 1 on a FHIR server that never answers"
fi
gw_nodelivery() {   # gw_nodelivery DATA
    if [ "$NODELIVERY" = "--workers 0" ]; then gw_start "$1" "http://127.0.0.1:9/fhir" 0
    else gw_start "$1" "$HOLE" 1; fi
}

# ---- part 1: STOW into the queue, and the client's ceiling ------------------------------
stow_run() {   # stow_run RUN CLIENTS: R = wall seconds of N acknowledged STOWs
    local d=$tmp/stow_$1_$2 t0 t1 pending
    gw_nodelivery "$d" || { echo "bench: the service did not start: $(head -c 500 "$d.stderr")" >&2; exit 1; }
    t0=$(now)
    "$LOAD" send 127.0.0.1 "$GW_PORT" "$2" "$tmp/list" > "$d.load" ||
        { echo "bench: STOW with $2 clients: $(tail -1 "$d.load")" >&2; exit 1; }
    t1=$(now)
    # SIGKILL: its worker waits on the silent server; the queue is read afterwards
    stop_pid "$GW_PID" KILL
    pending=$(( $(qcount "$d" pending) + $(qcount "$d" leased) ))
    [ "$pending" = "$N" ] || { echo "bench: $pending jobs pending or leased after $N STOWs" >&2; exit 1; }
    rm -rf "$d"
    R=$(elapsed "$t0" "$t1")
}
sink_run() {   # sink_run CLIENTS: R = wall seconds of N requests into stow_load's sink
    local t0 t1 port
    "$LOAD" sink 0 > "$tmp/sink_$1.out" &   # a file per run: never the last sink's port
    local sp=$!
    pids+=("$sp")
    for _ in $(seq 50); do port=$(awk '{ print $2 }' "$tmp/sink_$1.out"); [ -n "$port" ] && break; sleep 0.1; done
    t0=$(now)
    "$LOAD" send 127.0.0.1 "$port" "$1" "$tmp/list" > /dev/null
    t1=$(now)
    stop_pid "$sp"
    R=$(elapsed "$t0" "$t1")
}

# ---- part 2: storescu -> storescp ------------------------------------------------------
scp_run() {    # scp_run RUN CLIENTS: R = wall seconds of N files sent by CLIENTS storescu
    local d=$tmp/scp_$1_$2 t0 t1 got
    scp_start "$d"
    split -n "r/$2" -d "$tmp/list" "$d/share."
    local senders=()
    t0=$(now)
    for share in "$d"/share.*; do
        xargs -a "$share" -d '\n' storescu -R -aet BENCH -aec BENCHSCP 127.0.0.1 "$SCP_PORT" &
        senders+=($!)
    done
    for p in "${senders[@]}"; do wait "$p" || { echo "bench: storescu failed" >&2; exit 1; }; done
    t1=$(now)
    stop_pid "$SCP_PID"
    got=$(find "$d/in" -name '*.dcm' | wc -l)
    [ "$got" = "$N" ] || { echo "bench: storescp wrote $got of $N files" >&2; exit 1; }
    rm -rf "$d"
    R=$(elapsed "$t0" "$t1")
}

machine_before=$(machine)

declare -A t
if part 1 || part 2; then
    note "parts 1-2: $N SRs ($bytes bytes), $RUNS runs"
    for r in $(seq "$RUNS"); do
        for c in 1 8; do
            stow_run "$r" "$c"; t[gw_$c]+="$R "
            scp_run "$r" "$c"; t[scp_$c]+="$R "
        done
    done
    for c in 1 8; do sink_run "$c"; t[sink_$c]=$R; done
fi
GW_EXTRA=()

# ---- FHIR server tool instances ----------------------------------------------------------
FHIR_BASE=
fhir_start() {  # fhir_start NAME: a fresh instance; sets FHIR_BASE
    mkdir -p "$tmp/fhir_$1"
    FHIR_BASE=$(FHIR_PORT=0 FHIR_VERSION=R5 FHIR_PIDFILE=$tmp/fhir_$1/pid \
        FHIR_LOGFILE=$tmp/fhir_$1/log "$SERVER" start)
}
fhir_stop() { FHIR_PIDFILE=$tmp/fhir_$1/pid "$SERVER" stop >/dev/null 2>&1 || true; }

drain_wait() {   # drain_wait DATA TOTAL LIMIT_S [SAMPLES-FILE]: until TOTAL jobs done
    local d=$1 total=$2 limit=$3 samples=${4:-} start next=1000 done_n=0 stats
    start=$(now)
    while :; do
        stats=$("$BIN" queue stats --data "$d" 2>/dev/null || true)
        done_n=$(awk '$1 == "done" { print $2 }' <<< "$stats")
        done_n=${done_n:-0}
        if [ -n "$samples" ]; then
            while [ "$done_n" -ge "$next" ]; do echo "$next $(vm "$GW_PID")" >> "$samples"; next=$((next + 1000)); done
        fi
        [ "$done_n" -ge "$total" ] && break
        if [ "$(awk '$1 == "dead" || $1 == "not-applicable" || $1 == "not_applicable" { n += $2 } END { print n + 0 }' <<< "$stats")" != 0 ]; then
            echo "bench: jobs dead or not applicable: $stats" >&2; exit 1
        fi
        [ "$(since "$start" | cut -d. -f1)" -ge "$limit" ] && break
        sleep 0.1
    done
    echo "$done_n"
}

# ---- part 3: end to end ----------------------------------------------------------------
t_ack=
if part 3; then
    note "part 3: end to end, $N SRs"
    fhir_start e2e_send
    t0=$(now)
    "$BIN" send -q --server "$FHIR_BASE" --audit-log "$tmp/send_audit.log" -j 4 "${files[@]}" ||
        { echo "bench: sr2fhir send -j 4 failed" >&2; exit 1; }
    t1=$(now)
    t[send]=$(elapsed "$t0" "$t1")
    fhir_stop e2e_send

    fhir_start e2e_gw
    gw_start "$tmp/e2e" "$FHIR_BASE" 4 || { echo "bench: the service did not start: $(head -c 500 "$tmp/e2e.stderr")" >&2; exit 1; }
    t0=$(now)
    "$LOAD" send 127.0.0.1 "$GW_PORT" 8 "$tmp/list" > "$tmp/e2e.load" ||
        { echo "bench: STOW (end to end): $(tail -1 "$tmp/e2e.load")" >&2; exit 1; }
    t_ack=$(since "$t0")
    delivered=$(drain_wait "$tmp/e2e" "$N" 1800)
    t1=$(now)
    [ "$delivered" = "$N" ] || { echo "bench: $delivered of $N delivered after 1800 s" >&2; exit 1; }
    t[e2e]=$(elapsed "$t0" "$t1")
    stop_pid "$GW_PID"
    fhir_stop e2e_gw
fi

# ---- part 4: memory over MEM_N SRs -------------------------------------------------------
mem_received= mem_delivered= mem_done=0 mem_secs=
if [ "$MEM_N" -gt 0 ] && part 4; then
    note "part 4: memory over $MEM_N SRs"
    fhir_start mem
    gw_start "$tmp/mem" "$FHIR_BASE" 4 || { echo "bench: the service did not start" >&2; exit 1; }
    echo "0 $(vm "$GW_PID")" > "$tmp/mem.start"
    t0=$(now)
    drain_wait "$tmp/mem" "$MEM_N" "$MEM_DRAIN_MAX" "$tmp/mem.delivered" > "$tmp/mem.done" &
    dw=$!
    "$LOAD" send 127.0.0.1 "$GW_PORT" 8 "$tmp/memlist" "$GW_PID" 1000 > "$tmp/mem.load" ||
        { echo "bench: STOW (memory): $(tail -1 "$tmp/mem.load")" >&2; exit 1; }
    wait "$dw"
    mem_secs=$(since "$t0")
    mem_done=$(cat "$tmp/mem.done")
    echo "end $(vm "$GW_PID")" >> "$tmp/mem.delivered"
    stop_pid "$GW_PID"
    fhir_stop mem
    mem_received=$(grep '^sample' "$tmp/mem.load" | sed 's/^sample //; s/_kib//g')
    mem_delivered=$(cat "$tmp/mem.start" "$tmp/mem.delivered")
fi
machine_after=$(machine)

# ---- tables ----------------------------------------------------------------------------
export N MEM_N RUNS NODELIVERY bytes t_ack mem_done mem_secs mem_received mem_delivered
export T_GW1="${t[gw_1]:-}" T_GW8="${t[gw_8]:-}" T_SCP1="${t[scp_1]:-}" T_SCP8="${t[scp_8]:-}"
export T_SINK1="${t[sink_1]:-}" T_SINK8="${t[sink_8]:-}" T_SEND="${t[send]:-}" T_E2E="${t[e2e]:-}"
"$PY" - <<'PY'
import os, statistics
e = os.environ
n = int(e["N"])
med = lambda k: statistics.median(float(x) for x in e[k].split())
print(f"Inputs: {n} small TID 1500 SRs ({int(e['bytes']) / n / 1000:.1f} KB on average), copies of "
      "8 corpus files with new SOP Instance UIDs; one SR per STOW request.")
print()
if e["T_GW1"]:
    print(f"| receiver | clients | SRs | wall time (median of {e['RUNS']}) | SRs/s | vs storescp, same clients |")
    print("|---|---|---|---|---|---|")
    for c in (1, 8):
        gw, scp = med(f"T_GW{c}"), med(f"T_SCP{c}")
        print(f"| `sr2fhir serve` STOW-RS, acknowledged (200, committed), {e['NODELIVERY']} | {c} | {n} | "
              f"{gw:.2f} s | {n / gw:.0f} | {scp / gw:.2f}x |")
        print(f"| DCMTK storescu -> storescp (no fsync) | {c} | {n} | {scp:.2f} s | {n / scp:.0f} | 1.00x |")
    for c in (1, 8):
        s = float(e[f"T_SINK{c}"])
        print(f"| bench/stow_load against its own sink (the client's ceiling) | {c} | {n} | {s:.2f} s | {n / s:.0f} | |")
    print()
if e["T_E2E"]:
    send, e2e, ack = float(e["T_SEND"]), float(e["T_E2E"]), float(e["t_ack"])
    print("| path into a fresh FHIR server tool (R5) | SRs | wall time | SRs/s | vs send -j 4 |")
    print("|---|---|---|---|---|")
    print(f"| `sr2fhir send -j 4 FILES` | {n} | {send:.2f} s | {n / send:.1f} | 1.00x |")
    print(f"| STOW (8 clients) -> `sr2fhir serve --workers 4`, first STOW to queue drained "
          f"(all acknowledged after {ack:.2f} s) | {n} | {e2e:.2f} s | {n / e2e:.1f} | {send / e2e:.2f}x |")
if int(e["MEM_N"]) > 0 and e["mem_secs"]:
    print()
    def kv(line):
        d = {}
        for w in line.split()[1:]:
            k, _, v = w.partition("=")
            d[k.strip(":")] = v
        return line.split()[0], d
    print(f"Memory of the service over {e['MEM_N']} SRs (8 clients, 4 workers, fresh FHIR server); "
          f"{e['mem_done']} delivered after {float(e['mem_secs']):.0f} s.")
    print()
    print("| after | VmRSS | VmHWM |")
    print("|---|---|---|")
    def row(what, d):
        print(f"| {what} | {int(d['rss']) / 1024:.1f} MiB | {int(d['hwm']) / 1024:.1f} MiB |")
    delivered = e["mem_delivered"].splitlines()
    row("start (idle)", kv(delivered[0])[1])
    for line in e["mem_received"].splitlines():
        at, d = kv(line)
        row(f"{int(at):,} acknowledged", d)
    for line in delivered[1:]:
        at, d = kv(line)
        row("the end (before SIGTERM)" if at == "end" else f"{int(at):,} delivered", d)
PY
echo
echo "Measured $(date -u '+%Y-%m-%d %H:%M') UTC on $(nproc) cores, $("$BIN" version | head -1)," \
    "$(storescp --version 2>&1 | head -1 | sed 's/^\$//; s/\$$//'), node $(node --version)."
echo "Before: $machine_before."
echo "After: $machine_after."
