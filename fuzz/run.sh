#!/usr/bin/env bash
# fuzz/run.sh - builds the libFuzzer targets and runs each for SECONDS seconds (default 60)
# on a seed corpus made from ../shared/corpus and the project's generated fixtures.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     # targets: fuzz_part10 fuzz_json fuzz_doc fuzz_answer
#
# Seeds and the grown corpora live in build-fuzz/corpus-TARGET (not committed); crashes are
# written to build-fuzz/ as crash-*, and the script exits non-zero when a target fails.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
TARGETS=${*:-fuzz_part10 fuzz_json fuzz_doc fuzz_answer}
SHARED=${SHARED:-$(cd .. && pwd)/shared}
make -s fuzz

# Seeds for fuzz_answer: FHIR server answers of each kind it reads.
seed_answers() {
    printf '%s' '{"resourceType":"CapabilityStatement","fhirVersion":"5.0.0"}' >"$1/caps.json"
    printf '%s' '{"resourceType":"Bundle","type":"searchset","total":2,"entry":[{"search":{"mode":"match"},"resource":{"resourceType":"Patient","id":"a"}},{"resource":{"resourceType":"Patient","id":"b"}}]}' >"$1/search.json"
    printf '%s' '{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created","location":"Observation/o/_history/1"}},{"response":{"status":"400","outcome":{"resourceType":"OperationOutcome","issue":[{"severity":"error","diagnostics":"x","expression":["a"]}]}}}]}' >"$1/tx.json"
    printf '%s' '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","details":{"text":"bad"},"diagnostics":"worse"}]}' >"$1/outcome.json"
}
make -s fixtures >/dev/null 2>&1 || echo "fuzz: no generated fixtures (python3-pydicom missing)" >&2
for t in $TARGETS; do
    dir=build-fuzz/corpus-$t
    mkdir -p "$dir"
    case $t in
        fuzz_json) pattern='*.json' ;;
        fuzz_part10) pattern='*.dcm' ;;
        fuzz_answer) pattern='none'; seed_answers "$dir" ;;
        *) pattern='*' ;;
    esac
    find "$SHARED/corpus/files" "$SHARED/ig/dicom" build/fixtures -maxdepth 1 -type f \
        -name "$pattern" -exec cp -n {} "$dir/" \; 2>/dev/null || true
    echo "fuzz: $t for ${SECONDS_EACH}s on $(ls "$dir" | wc -l) inputs"
    (cd build-fuzz && "./$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -max_len=1400000 -print_final_stats=1 "corpus-$t" 2>"$t.log") || {
        echo "fuzz: $t FAILED, see build-fuzz/$t.log"; tail -30 "build-fuzz/$t.log"; exit 1; }
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "build-fuzz/$t.log" | sed "s/^/fuzz: $t /"
done
