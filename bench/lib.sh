# bench/lib.sh - what the gateway benchmarks (bench/stow.sh, bench/dimse.sh) share; sourced
# by them after they set PY (Debian's python3), BIN (build/sr2fhir), OUT (bench/out),
# PEERS (../shared/tools/dicom-peers) and CORPUS (../shared/corpus/files):
#   - the processes a script started (pids) and its temporary folder (tmp), both cleaned up
#     on exit (a script may define bench_cleanup_more for its own servers);
#   - clock and message helpers, a free port, a queue count, the machine's load;
#   - the SR set: copies of the 8 small tid1500 corpus files, interleaved;
#   - DCMTK storescp started on 127.0.0.1 (the baseline peer of both).
# Not a test: nothing here checks timings.

tmp=$(mktemp -d)
pids=()        # processes this script started and has not stopped yet
bench_cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    if declare -F bench_cleanup_more > /dev/null; then bench_cleanup_more; fi
    rm -rf "$tmp"
}
trap bench_cleanup EXIT
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
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f\n", b - a }'; }   # seconds from $1 to $2
since() { elapsed "$1" "$(now)"; }
note() { echo "bench: $*" >&2; }
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
qcount() {     # qcount DATA STATE: jobs in STATE (`sr2fhir queue stats`)
    "$BIN" queue stats --data "$1" | awk -v s="$2" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }'
}
machine() {    # the load and the busiest processes, printed before and after the runs
    echo "load average $(cut -d' ' -f1-3 /proc/loadavg); busiest other processes (%CPU since start):" \
        "$(ps -eo pcpu,comm --sort=-pcpu --no-headers | head -4 | awk '{ printf "%s %s%%, ", $2, $1 }' | sed 's/, $//')"
}

# silent_server: a socket listening without accepting (a FHIR server that never answers:
# a worker waits on it for its --timeout, so no delivery competes); sets HOLE (its URL)
silent_server() {
    "$PY" -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True); time.sleep(86400)' > "$tmp/hole.port" &
    pids+=($!)
    disown $!    # no "Killed" job notice at the end
    for _ in $(seq 50); do [ -s "$tmp/hole.port" ] && break; sleep 0.1; done
    HOLE=http://127.0.0.1:$(cat "$tmp/hole.port")/fhir
}

# small_srs NAME COUNT LIST: at least COUNT copies (dicom-peers' make_copies.py: new SOP
# Instance UIDs) of the 8 tid1500 corpus files whose Bundle has at most 50 entries (4.4 to
# 77 KB), made once into $OUT/NAME_K; every copy's absolute path written to LIST,
# interleaved (sr_0000 of every source, then sr_0001 ...)
small_srs() {
    local small=(tid1500__dcmjs__sample-sr tid1500__dcmjs__structured_report
        tid1500__dcmqi-inferred__rsna2018_ds1_sr-tid1500-ct-liver-example
        tid1500__dcmqi__tid1500fhir_dcmqi_result tid1500__highdicom__sr_document
        tid1500__highdicom__sr_document_with_multiple_groups
        tid1500__iowa2dicom__dcmqi-repo_sr-example_sr tid1500__pixelmed__rsna2018_ds4_1)
    local per=$(( ($2 + ${#small[@]} - 1) / ${#small[@]} )) k
    local srs=$PWD/$OUT/$1_$per
    if [ ! -f "$srs/.complete" ]; then
        note "making $per copies of each of ${#small[@]} SRs in $srs (once)"
        rm -rf "$srs"
        for k in "${!small[@]}"; do
            "$PY" "$PEERS/make_copies.py" "$CORPUS/${small[$k]}.dcm" "$srs/$k" "$per" >/dev/null
        done
        touch "$srs/.complete"
    fi
    find "$srs" -name 'sr_*.dcm' | awk -F/ '{ print $NF "\t" $0 }' | sort | cut -f2 > "$3"
}

# scp_start DIR: DCMTK storescp --fork (one process per association), +xa, -pm, writing
# each file into DIR/in, no fsync, bound to 127.0.0.1 by dicom-peers' bind shim (3 tries
# at a free port); sets SCP_PID and SCP_PORT, or stops the script
scp_start() {
    local d=$1 port sp= i
    [ -n "${SCP_SHIM:-}" ] || SCP_SHIM=$("$PEERS/dicom-peers.sh" shim)   # built once
    mkdir -p "$d/in"
    for _ in 1 2 3; do
        port=$(free_port)
        ( cd "$d" && LD_PRELOAD=$SCP_SHIM exec storescp --fork -aet BENCHSCP +xa -pm -dhl \
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
    SCP_PID=$sp SCP_PORT=$port
}
