#!/usr/bin/env bash
# tests/e2e/test_cli_boundary.sh - the CLI is a client of the public API (issue 16): the
# sources of `sr2fhir dump`/`convert` and of `sr2fhir-send` include no project header but
# src/cli/cli.h (which includes only include/sr2fhir.h and sr2fhir_send.h). The gateway's
# programs (serve, pull, queue) and message.c's escaping are the documented exceptions
# (docs/decisions.md "Issue 16: API that can grow"). Proves itself on a file with a private
# include. Prints PASS/FAIL lines for tests/run.sh.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT" || exit 1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

CLIENT_FILES="src/cli/main.c src/cli/dump.c src/cli/convert.c src/cli/jsonout.c
src/cli/output.c src/cli/outnames.c src/cli/inputs.c src/cli/help.c src/cli/options.c
src/cli/send.c src/cli/send_main.c src/cli/client_opts.c"

# The project headers FILES include other than the allowed ones, one per line.
private_includes() {
    grep -Hn '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$@" |
        grep -v -E '#[[:space:]]*include[[:space:]]*"(cli/cli\.h|cli\.h|sr2fhir\.h|sr2fhir_send\.h)"'
}

bad=$(private_includes $CLIENT_FILES)
if [ -z "$bad" ]; then
    echo "PASS cli-boundary:public-api-only"
else
    echo "FAIL cli-boundary:public-api-only: $(echo "$bad" | head -3 | tr '\n' ' ')"
fi

if grep -q -E '#include "(util|json|fhir|sr|report|dicom|deliver|gateway)/' src/cli/cli.h; then
    echo "FAIL cli-boundary:cli-h-public-only: src/cli/cli.h includes a private header"
else
    echo "PASS cli-boundary:cli-h-public-only"
fi

# The check must be able to fail: a copy of convert.c with the writer header it used to have.
{ echo '#include "json/writer.h"'; cat src/cli/convert.c; } >"$tmp/convert.c"
if [ -n "$(private_includes "$tmp/convert.c")" ]; then
    echo "PASS cli-boundary:detects-a-private-include"
else
    echo "FAIL cli-boundary:detects-a-private-include: the check did not see json/writer.h"
fi
