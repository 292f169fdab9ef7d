#!/usr/bin/env bash
# tests/e2e/test_rule_ids.sh - the mapping rule ids the code and the tests cite resolve
# inside the repository (issue 14 Build #5): every id M<n> in src/ and tests/ has its
# section "### M<n> ..." in docs/mapping.md, each section appears once, every file
# docs/mapping.md points to (`src/...`, `tests/...`, `scripts/...`) exists, and so does every
# function or test name it gives. The check is
# shown to fail on a copy of docs/mapping.md with one section removed.
# Prints PASS/FAIL lines for tests/run.sh.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT" || exit 1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export LC_ALL=C

# The ids cited in src/ and tests/ (this file excepted: it names ids as examples).
cited=$(grep -rhoE --exclude=test_rule_ids.sh '\bM[0-9]+\b' src tests | sort -u -V)

# Ids cited that have no section in mapping file $1; prints them, empty when none.
missing_in() {
    local id
    for id in $cited; do
        grep -qE "^### $id( |$)" "$1" || printf '%s ' "$id"
    done
}

if [ -z "$cited" ]; then
    echo "FAIL rule-ids:cited: no rule id found in src/ and tests/ (grep broken?)"
else
    miss=$(missing_in docs/mapping.md)
    if [ -z "$miss" ]; then
        echo "PASS rule-ids:every-cited-id-has-a-section ($(wc -w <<<"$cited") ids: $(echo $cited | tr ' ' ','))"
    else
        echo "FAIL rule-ids:every-cited-id-has-a-section: no section in docs/mapping.md for: $miss"
    fi
fi

dups=$(grep -oE '^### M[0-9]+' docs/mapping.md | sort | uniq -d | tr '\n' ' ')
n=$(grep -cE '^### M[0-9]+( |$)' docs/mapping.md)
if [ -z "$dups" ] && [ "$n" -ge 26 ]; then
    echo "PASS rule-ids:sections-once ($n sections)"
else
    echo "FAIL rule-ids:sections-once: $n sections, repeated: ${dups:-none}"
fi

# Files named in docs/mapping.md exist (after a file is renamed the docs must follow).
gone=
for f in $(grep -oE '`(src|tests|scripts|include|docs)/[A-Za-z0-9_./-]+`' docs/mapping.md | tr -d '`' | sort -u); do
    [ -e "$f" ] || gone="$gone $f"
done
if [ -z "$gone" ]; then
    echo "PASS rule-ids:files-named-in-mapping-exist"
else
    echo "FAIL rule-ids:files-named-in-mapping-exist: missing:$gone"
fi

# Functions and tests named in docs/mapping.md (`read_group`, `m17_...`) exist in src/ or
# tests/: a renamed function takes its mention along.
stale=
for w in $(grep -oE '`[a-z][a-z0-9_]*_[a-z0-9_]+`' docs/mapping.md | tr -d '`' | sort -u); do
    grep -rqw -- "$w" src tests || stale="$stale $w"
done
if [ -z "$stale" ]; then
    echo "PASS rule-ids:names-in-mapping-exist"
else
    echo "FAIL rule-ids:names-in-mapping-exist: not in src/ or tests/:$stale"
fi

# Each "`src/x.c` (`name`, ...)" of docs/mapping.md: every name is in that file (a function
# moved to another file takes its pointer along).
PY=${PYTHON:-python3}
moved=$("$PY" - docs/mapping.md <<'PYEOF'
import os, re, sys
text = re.sub(r"\s+", " ", open(sys.argv[1]).read())
for m in re.finditer(r"`((?:src|tests)/[\w./-]+\.(?:c|h|py|sh))` \(([^()]*)\)", text):
    path, inner = m.group(1), m.group(2)
    if not os.path.exists(path):
        continue  # reported by files-named-in-mapping-exist
    src = open(path, errors="replace").read()
    for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", inner):
        if not re.search(r"\b%s\b" % re.escape(name), src):
            print("%s:%s" % (path, name))
PYEOF
)
if [ -z "$moved" ]; then
    echo "PASS rule-ids:names-in-the-file-named"
else
    echo "FAIL rule-ids:names-in-the-file-named: not found there: $(echo $moved)"
fi

# The check fails when a section is missing: drop the section of a cited id.
victim=$(echo "$cited" | tail -1)
grep -vE "^### $victim( |$)" docs/mapping.md >"$tmp/mapping.md"
miss=$(missing_in "$tmp/mapping.md")
if [ "$miss" = "$victim " ]; then
    echo "PASS rule-ids:check-fails-without-section-$victim"
else
    echo "FAIL rule-ids:check-fails-without-section-$victim: reported '${miss}'"
fi
