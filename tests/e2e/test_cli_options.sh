#!/usr/bin/env bash
# tests/e2e/test_cli_options.sh - one option table per command (issue 14): for convert,
# dump, send and queue, every option the help lists is accepted by the parser (no
# "unknown option"), an option the help does not list is refused (exit 2, one line),
# `sr2fhir help CMD` and `CMD --help` print the same text, and the test-only
# --trace-consumed is accepted but not listed. Prints PASS/FAIL lines for tests/run.sh.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
SR2FHIR=${SR2FHIR:-$ROOT/$BUILD/sr2fhir}
SEND=$(dirname "$SR2FHIR")/sr2fhir-send
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
[ -x "$SR2FHIR" ] || { echo "FAIL cli-options: no $SR2FHIR (run make)"; exit 1; }

# The command line of CMD ("convert", "queue list", ...) as run.
run() {
    local cmd=$1; shift
    case $cmd in
        send) "$SEND" "$@" ;;
        *) "$SR2FHIR" $cmd "$@" ;;
    esac
}

for cmd in convert dump send "queue list"; do
    name=${cmd%% *}
    [ "$name" = send ] && [ ! -x "$SEND" ] && { echo "SKIP cli-options:send: no $SEND"; continue; }
    "$SR2FHIR" help "$name" >"$tmp/help" 2>&1
    run "$cmd" --help >"$tmp/own" 2>&1
    if [ -s "$tmp/help" ] && cmp -s "$tmp/help" "$tmp/own"; then
        echo "PASS cli-options:$name:help-is-the-same-both-ways"
    else
        echo "FAIL cli-options:$name:help-is-the-same-both-ways: $(diff "$tmp/help" "$tmp/own" | head -3 | tr '\n' ' ')"
    fi
    # "  -o, --output PATH   text" / "  --pretty   text": spelling(s), and whether a value follows.
    listed=0 refused=
    while IFS= read -r line; do
        opt=$(sed -E 's/^  (-[a-z], )?(--[a-z-]+)( [A-Z+|0-9]+)?( .*)?$/\2\3/' <<<"$line")
        alias=$(sed -nE 's/^  (-[a-z]), .*/\1/p' <<<"$line")
        set -- $opt
        [ "$1" = --help ] && continue
        listed=$((listed + 1))
        for spelling in "$1" $alias; do
            args=("$spelling"); [ $# -gt 1 ] && args+=(x)
            run "$cmd" "${args[@]}" --help >/dev/null 2>"$tmp/err"
            grep -q "unknown option" "$tmp/err" && refused="$refused $spelling"
        done
    done < <(grep -E '^  (-[a-z], )?--[a-z]' "$tmp/help")
    if [ "$listed" -gt 1 ] && [ -z "$refused" ]; then
        echo "PASS cli-options:$name:every-listed-option-is-accepted ($listed)"
    else
        echo "FAIL cli-options:$name:every-listed-option-is-accepted: $listed listed, refused:$refused"
    fi
    run "$cmd" --not-an-option x >/dev/null 2>"$tmp/err"; rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
       grep -q "^sr2fhir: $cmd: unknown option '--not-an-option' (try 'sr2fhir help $name')$" "$tmp/err"; then
        echo "PASS cli-options:$name:unlisted-option-refused"
    else
        echo "FAIL cli-options:$name:unlisted-option-refused: exit $rc, $(head -c 200 "$tmp/err")"
    fi
done

"$SR2FHIR" convert --trace-consumed --help >/dev/null 2>"$tmp/err"; rc=$?
if [ $rc -eq 0 ] && ! grep -q -- --trace-consumed <("$SR2FHIR" help convert); then
    echo "PASS cli-options:convert:test-only-option-accepted-not-listed"
else
    echo "FAIL cli-options:convert:test-only-option-accepted-not-listed: exit $rc"
fi
