#!/usr/bin/env bash
# tests/e2e/test_exports.sh - the shared libraries export exactly the public API (issue 16):
# `nm -D --defined-only` of libsr2fhir.so and libsr2fhir-send.so together list exactly the
# functions declared in include/*.h, each once, each under a version node, libsr2fhir.so
# exactly those of include/sr2fhir.h once the delivery has its own header; every name in
# the version scripts (src/*.map) is declared. The check is shown to fail on a library
# built with one private function exported. Prints PASS/FAIL/SKIP lines for tests/run.sh.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
cd "$ROOT" || exit 1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export LC_ALL=C
core=$BUILD/libsr2fhir.so send=$BUILD/libsr2fhir-send.so
if [ ! -f "$core" ] || [ ! -f "$send" ]; then
    echo "FAIL exports:built: $core or $send missing (run make)"; exit 0
fi

# The text outside braces (declarations, not struct members or inline functions' bodies).
depth0() {
    awk '{ out = ""; for (i = 1; i <= length($0); i++) { c = substr($0, i, 1)
             if (c == "{") d++; else if (c == "}") d--; else if (d == 0) out = out c }
           print out }'
}
# Function names a header declares (after the preprocessor, outside braces; static
# inline functions, compiled into the caller, are not the library's): s2f_NAME( outside a function-pointer typedef "(*s2f_x)(".
declared() {
    local h
    for h in "$@"; do gcc -E -P -Iinclude -x c "$h"; done | depth0 | grep -v '^static ' | grep -oE '(\(\*[[:space:]]*)?\bs2f_[a-z0-9_]+[[:space:]]*\(' |
        grep -v '^(' | grep -oE 's2f_[a-z0-9_]+' | sort -u
}
# What a shared library exports: name@@NODE per defined dynamic symbol (no node symbols).
exported() { nm -D --defined-only "$1" | awk '$2 != "A" {print $3}' | sort -u; }
plain() { sed 's/@.*//' | sort; }

# check NAME CORE SEND: the comparison, one PASS or FAIL line
check() {
    local name=$1 c=$2 s=$3
    exported "$c" >"$tmp/c.v"; exported "$s" >"$tmp/s.v"
    plain <"$tmp/c.v" >"$tmp/c"; plain <"$tmp/s.v" >"$tmp/s"
    declared include/*.h >"$tmp/decl"
    sort "$tmp/c" "$tmp/s" >"$tmp/both"
    local extra missing twice unversioned
    extra=$(comm -23 "$tmp/both" "$tmp/decl" | tr '\n' ' ')
    missing=$(comm -13 <(sort -u "$tmp/both") "$tmp/decl" | tr '\n' ' ')
    twice=$(uniq -d "$tmp/both" | tr '\n' ' ')
    unversioned=$(cat "$tmp/c.v" "$tmp/s.v" | grep -v '@@SR2FHIR_' | tr '\n' ' ')
    local wrong=""
    if [ -f include/sr2fhir_send.h ]; then   # the core exports exactly sr2fhir.h's functions
        declared include/sr2fhir.h >"$tmp/core.decl"
        wrong=$(diff "$tmp/core.decl" "$tmp/c" | grep '^[<>]' | tr '\n' ' ')
    fi
    if [ -z "$extra$missing$twice$unversioned$wrong" ] && [ -s "$tmp/decl" ]; then
        echo "PASS exports:$name ($(wc -l <"$tmp/c") + $(wc -l <"$tmp/s") exported = $(wc -l <"$tmp/decl") declared in $(ls include/*.h | tr '\n' ' '))"
    else
        echo "FAIL exports:$name: exported but not declared: ${extra:-none}; declared but not exported: ${missing:-none}; in both libraries: ${twice:-none}; without version: ${unversioned:-none}; core vs sr2fhir.h: ${wrong:-same}"
    fi
}

check only-public-functions "$core" "$send"

n=$(nm -g --defined-only "$BUILD/libsr2fhir.a" "$BUILD/libsr2fhir-send.a" 2>/dev/null | grep -c ' T s2f_')
echo "PASS exports:archives-for-comparison ($n global s2f_ functions in the archives, $(exported "$core" | wc -l) + $(exported "$send" | wc -l) exported by the shared libraries)"

stale=$(grep -hoE '^[[:space:]]+s2f_[a-z0-9_]+;' src/*.map | tr -d ' \t;' | sort | comm -23 - <(declared include/*.h) | tr '\n' ' ')
[ -z "$stale" ] && echo "PASS exports:version-scripts-name-declared-functions" ||
    echo "FAIL exports:version-scripts-name-declared-functions: not in any header: $stale"

# Proof that the check can fail: the core built with one private function exported.
priv=$(nm -g --defined-only "$BUILD/libsr2fhir.a" | awk '$2 == "T" {print $3}' | grep '^s2f_' | sort |
       comm -23 - <(declared include/*.h) | head -1)
sed "s/  local:/    $priv;\n  local:/" src/libsr2fhir.map >"$tmp/leak.map"
if ${CC:-cc} -shared -o "$tmp/libleak.so" -Wl,--version-script="$tmp/leak.map" \
       -Wl,--whole-archive "$BUILD/libsr2fhir.a" -Wl,--no-whole-archive -lz -lyajl -lm 2>"$tmp/ld.err"; then
    out=$(check leak-detected "$tmp/libleak.so" "$send")
    case $out in
        "FAIL exports:leak-detected: exported but not declared: $priv "*)
            echo "PASS exports:leak-detected (a library also exporting $priv fails the check)" ;;
        *) echo "FAIL exports:leak-detected: the check did not name $priv: $out" ;;
    esac
else
    echo "FAIL exports:leak-detected: could not link the leaking library: $(head -2 "$tmp/ld.err")"
fi
