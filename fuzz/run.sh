#!/usr/bin/env bash
# fuzz/run.sh - builds the libFuzzer targets and runs each for SECONDS seconds (default 60)
# on a seed corpus made from ../shared/corpus and the project's generated fixtures.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     # targets: fuzz_part10 fuzz_json fuzz_doc fuzz_convert fuzz_answer
#                                          #          fuzz_multipart fuzz_dimse fuzz_qido fuzz_websocket
#
# Seeds and the grown corpora live in build-fuzz/corpus-TARGET (not committed); crashes are
# written to build-fuzz/ as crash-*, and the script exits non-zero when a target fails.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
TARGETS=${*:-fuzz_part10 fuzz_json fuzz_doc fuzz_convert fuzz_answer fuzz_multipart fuzz_dimse fuzz_qido fuzz_websocket}
SHARED=${SHARED:-$(cd .. && pwd)/shared}
make -s fuzz

# Seeds for fuzz_answer: FHIR server answers of each kind it reads.
seed_answers() {
    printf '%s' '{"resourceType":"CapabilityStatement","fhirVersion":"5.0.0"}' >"$1/caps.json"
    printf '%s' '{"resourceType":"CapabilityStatement","status":"active","date":"2026-01-01","kind":"instance","software":{"name":"srv","version":"3.2.1"},"implementation":{"description":"FHIR","url":"https://h.example/fhir/R4"},"fhirVersion":"4.0.1","format":["application/fhir+json","json"],"rest":[{"mode":"server","security":{"cors":true,"service":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/restful-security-service","code":"SMART-on-FHIR"}]}]},"resource":[{"type":"Patient","interaction":[{"code":"read"},{"code":"search-type"}],"searchParam":[{"name":"identifier","type":"token"}]},{"type":"Observation","interaction":[{"code":"update"}]}],"interaction":[{"code":"transaction"}]}]}' >"$1/caps-r4.json"
    printf '%s' '{"resourceType":"Bundle","type":"searchset","total":2,"entry":[{"search":{"mode":"match"},"resource":{"resourceType":"Patient","id":"a"}},{"resource":{"resourceType":"Patient","id":"b"}}]}' >"$1/search.json"
    printf '%s' '{"resourceType":"Bundle","id":"f1e2","meta":{"lastUpdated":"2026-12-04T10:00:00Z"},"type":"searchset","total":1,"link":[{"relation":"self","url":"https://h.example/fhir/Patient?identifier=urn%3Aoid%3A1.2.3%7CP-1&_count=2"}],"entry":[{"fullUrl":"https://h.example/fhir/Patient/8f3a-1.x","resource":{"resourceType":"Patient","id":"8f3a-1.x","meta":{"versionId":"3"},"identifier":[{"system":"urn:oid:1.2.3","value":"P-1"}],"name":[{"family":"Doe"}]},"search":{"mode":"match"}},{"fullUrl":"https://h.example/fhir/OperationOutcome/w","resource":{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"informational","diagnostics":"paging"}]},"search":{"mode":"outcome"}}]}' >"$1/search-real.json"
    printf '%s' '{"resourceType":"Bundle","type":"searchset","total":0}' >"$1/search-empty.json"
    printf '%s' '{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created","location":"Observation/o/_history/1"}},{"response":{"status":"400","outcome":{"resourceType":"OperationOutcome","issue":[{"severity":"error","diagnostics":"x","expression":["a"]}]}}}]}' >"$1/tx.json"
    printf '%s' '{"resourceType":"Bundle","id":"t9","type":"transaction-response","entry":[{"response":{"status":"201 Created","location":"https://h.example/fhir/Observation/1.2.826.0.1.3680043.10.1500-obs-1/_history/1","etag":"W/\"1\"","lastModified":"2026-12-04T10:00:00.000Z"}},{"response":{"status":"200 OK","location":"Device/dev-2/_history/4","etag":"W/\"4\""}},{"resource":{"resourceType":"ImagingSelection","id":"sel-3","status":"available"},"response":{"status":"200"}}]}' >"$1/tx-real.json"
    printf '%s' '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","details":{"text":"bad"},"diagnostics":"worse"}]}' >"$1/outcome.json"
    printf '%s' '{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"processing","diagnostics":"late"},{"severity":"fatal","code":"exception","details":{"coding":[{"system":"http://hl7.org/fhir/issue-type","code":"exception"}],"text":"Transaction failed \u001b[31m"},"expression":["Bundle.entry[3].resource"]}]}' >"$1/outcome-real.json"
}
# Seeds for fuzz_multipart: STOW-RS-like bodies behind the target's 14-byte header
# ([boundary length - 1] "XyZ" [parts][header][part hi][part lo][preamble][4 chunk sizes]:
# 16 parts, 528-byte headers, 4097-byte parts, 257-byte preamble, chunks 1, 7, 13, 0).
seed_multipart() {
    local h='\x02XyZ\x0f\x40\x10\x00\x20\x01\x07\x0d\x00'
    printf "$h"'--XyZ\r\nContent-Type: application/dicom\r\n\r\nDICM\x02\x00\x10\x00UI\x04\x001.2\x00\r\n--XyZ\r\nContent-Type: application/dicom\r\nContent-Location: b.dcm\r\n\r\n\r\n--XyZ\r\n--XyY\r\n--XyZ--\r\n' >"$1/stow-two.bin"
    printf "$h"'multipart/related; type="application/dicom+json"; boundary=XyZ\r\n--XyZ \t\r\ncontent-type: application/dicom+json;\r\n transfer-syntax=1.2.840.10008.1.2.1\r\n\r\n[{"00080016":{"vr":"UI","Value":["1.2.840.10008.5.1.4.1.1.88.22"]}}]\r\n--XyZ--epilogue' >"$1/stow-json.bin"
    printf "$h"'--XyZ\r\nContent-Type: application/dicom\r\n\r\nDICM\r\n--Xy' >"$1/truncated.bin"
    printf "$h"'--XyZ\r\n\r\n--XyZ\r\nX: 1\r\n\r\n\r\n\r\n--XyZ\r\nBad header\r\n\r\n--XyZ--' >"$1/empty-and-garbage.bin"
    printf '\x01ab\x01\x02\x00\x04\x01\x03\x05\x00\x02--ab\r\n\r\n0123456789\r\n--ab\r\n\r\nx\r\n--ab--' >"$1/limits.bin"
}
# Seeds for fuzz_qido: QIDO-RS answers as Orthanc's DICOMweb plugin writes them, and
# wrong shapes (issue 13).
seed_qido() {
    printf '%s' '[{"00080005":{"vr":"CS","Value":["ISO_IR 100"]},"00080016":{"vr":"UI","Value":["1.2.840.10008.5.1.4.1.1.88.22"]},"00080018":{"vr":"UI","Value":["1.2.3.4.5.6"]},"00080020":{"vr":"DA","Value":["20240105"]},"00080030":{"vr":"TM","Value":["101500.123"]},"00100010":{"vr":"PN","Value":[{"Alphabetic":"Doe^J"}]},"00081190":{"vr":"UR","Value":["http://h/dicom-web/studies/1.2.3"]},"00200013":{"vr":"IS","Value":[1]},"0020000D":{"vr":"UI","Value":["1.2.3"]},"0020000E":{"vr":"UI","Value":["1.2.3.4"]}},{"0020000d":{"Value":[null],"vr":"UI"}}]' >"$1/orthanc.json"
    printf '%s' '[{"00400275":{"vr":"SQ","Value":[{"00400009":{"vr":"SH","Value":["x"]}}]},"0020000E":{"vr":"UI"}},{}]' >"$1/sequence.json"
    printf '%s' '{"0020000D":{"vr":"UI","Value":"1.2"}}' >"$1/object.json"
    printf '%s' '[{"0020000D":{"vr":"UI","Value":[1.2]},"00080018":{"Value":["1.2","1.3"]}}]' >"$1/wrong.json"
    printf '%s' '[]' >"$1/empty.json"
}
# Seeds for fuzz_websocket (issue 15): [bound exponent] then server frames: a text message in
# two fragments with a ping between them, a close, 16- and 64-bit lengths, protocol errors.
seed_websocket() {
    printf '\x10\x01\x03{"a\x89\x02p1\x80\x04":1}\x88\x02\x03\xe8' >"$1/fragments.bin"
    printf '\x10\x81\x7e\x00\x7e%0126d\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00' 0 >"$1/lengths.bin"
    printf '\x04\x81\x85\x01\x02\x03\x04abcde\xc1\x00\x81\x02\xc3\x28' >"$1/errors.bin"
}
make -s fixtures >/dev/null 2>&1 || echo "fuzz: no generated fixtures (python3-pydicom missing)" >&2
for t in $TARGETS; do
    dir=build-fuzz/corpus-$t
    mkdir -p "$dir"
    case $t in
        fuzz_json) pattern='*.json' ;;
        fuzz_part10) pattern='*.dcm' ;;
        fuzz_answer) pattern='none'; seed_answers "$dir" ;;
        fuzz_multipart) pattern='none'; seed_multipart "$dir" ;;
        fuzz_dimse) pattern='none'; /usr/bin/python3 fuzz/seed_dimse.py "$dir" || echo "fuzz: no fuzz_dimse seeds" >&2 ;;
        fuzz_qido) pattern='none'; seed_qido "$dir" ;;
        fuzz_websocket) pattern='none'; seed_websocket "$dir" ;;
        *) pattern='*' ;;
    esac
    find "$SHARED/corpus/files" "$SHARED/ig/dicom" build/fixtures -maxdepth 1 -type f \
        -name "$pattern" -exec cp -n {} "$dir/" \; 2>/dev/null || true
    echo "fuzz: $t for ${SECONDS_EACH}s on $(ls "$dir" | wc -l) inputs"
    # fuzz_convert reads, converts and splits whole reports of up to 1.2 MB (0.8 s under the
    # sanitizers): on a busy machine one such unit can take more than 10 s of wall time
    timeout=10; [ "$t" = fuzz_convert ] && timeout=60
    (cd build-fuzz && "./$t" -max_total_time="$SECONDS_EACH" -timeout="$timeout" -rss_limit_mb=2048 \
        -max_len=1400000 -print_final_stats=1 "corpus-$t" 2>"$t.log") || {
        echo "fuzz: $t FAILED, see build-fuzz/$t.log"; tail -30 "build-fuzz/$t.log"; exit 1; }
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "build-fuzz/$t.log" | sed "s/^/fuzz: $t /"
done
