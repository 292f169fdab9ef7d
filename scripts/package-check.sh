#!/usr/bin/env bash
# scripts/package-check.sh - the Debian packages, built and used as a user would (issue 16,
# docs/packaging.md); run by .ci/run:
#   1. builds them offline with `dpkg-buildpackage -us -uc -b` in a copy of the source
#      under build/deb/ (dpkg-buildpackage writes the .debs beside the source folder, so
#      they land in build/deb/, not outside the project), and prints the time it took;
#   2. runs lintian on them: any E: or W: line fails (tags the project keeps are overridden
#      in debian/*.lintian-overrides, each with its reason);
#   3. installs them (`apt-get install -y ./build/deb/*.deb`; root, else sudo);
#   4. compiles tests/package/hello.c with `pkg-config --cflags --libs sr2fhir`, runs it
#      (the installed libsr2fhir.so.0 must be the one loaded; with pydicom, its Bundle for a
#      generated fixture must equal the installed `sr2fhir convert`'s);
#   5. shows `man sr2fhir | head` (or, where the machine's dpkg excludes /usr/share/man,
#      as Debian's docker images do, renders the package's own page with `man -l`);
#   6. runs the installed `sr2fhir send` against ../shared/tools/fhir-server (skipped with a
#      reason when ../shared is absent);
#   7. purges the packages it installed (KEEP_PACKAGES=1 keeps them).
# Exit status 0 when every step passed. Usage: scripts/package-check.sh [--build-only]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SHARED=${SHARED:-$(cd .. && pwd)/shared}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=$ROOT/build/deb
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
say() { echo "package-check: $*"; }
die() { echo "package-check: FAILED: $*" >&2; exit 1; }
export LC_ALL=C.UTF-8

# 1. build in a copy: the tracked (and new, not ignored) files of the checkout
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
header=$(sed -n 's/^#define SR2FHIR_VERSION "\(.*\)"/\1/p' include/sr2fhir.h)
[ "$version" = "$header" ] ||
    die "debian/changelog is at $version, include/sr2fhir.h's SR2FHIR_VERSION at $header: add a changelog entry (dch -v $header)"
rm -rf "$OUT"; mkdir -p "$OUT/src/sr2fhir-$version"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z -co --exclude-standard | grep -zv '^build' |
        xargs -0 cp --parents -t "$OUT/src/sr2fhir-$version"
else
    tar -C "$ROOT" --exclude='./build*' -cf - . | tar -C "$OUT/src/sr2fhir-$version" -xf -
fi
start=$(date +%s)
(cd "$OUT/src/sr2fhir-$version" && nice dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$OUT/build.log" 2>&1 ||
    { tail -30 "$OUT/build.log"; die "dpkg-buildpackage failed (log: $OUT/build.log)"; }
secs=$(( $(date +%s) - start ))
mv "$OUT"/src/*.deb "$OUT"/src/*.changes "$OUT"/src/*.buildinfo "$OUT"/ 2>/dev/null || true
rm -rf "$OUT/src"
debs=()   # the packages a user installs (the -dbgsym ones are only built)
for d in "$OUT"/*.deb; do case $d in *-dbgsym_*) ;; *) debs+=("$d") ;; esac; done
say "built in ${secs} s: $(cd "$OUT" && ls *.deb | tr '\n' ' ')"
grep -E '^dpkg-(gensymbols|shlibdeps): warning' "$OUT/build.log" && die "dpkg-gensymbols/dpkg-shlibdeps warned (above)"

# 2. lintian
if command -v lintian >/dev/null; then
    lintian --display-info "$OUT"/*.changes >"$OUT/lintian.txt" 2>&1 || true
    say "lintian: $(grep -c '^[EWIP]:' "$OUT/lintian.txt" || true) tags shown (E/W/I/P), $(grep -c '^[EW]:' "$OUT/lintian.txt" || true) errors or warnings"
    sed 's/^/  /' "$OUT/lintian.txt"
    grep -q '^[EW]:' "$OUT/lintian.txt" && die "lintian errors or warnings (docs/packaging.md)"
else
    die "no lintian (scripts/install-deps.sh installs it)"
fi
[ "${1:-}" = --build-only ] && exit 0

# 3. install
installed=()
for d in "${debs[@]}"; do installed+=("$(dpkg-deb -f "$d" Package)"); done
cleanup() {
    [ -n "${FHIR_PIDFILE:-}" ] && "$SHARED/tools/fhir-server/fhir-server.sh" stop >/dev/null 2>&1
    [ -n "${tmp:-}" ] && rm -rf "$tmp"
    if [ "${KEEP_PACKAGES:-0}" != 1 ] && [ "${#installed[@]}" -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get purge -y -qq "${installed[@]}" >/dev/null 2>&1 &&
            echo "package-check: purged ${installed[*]}"
    fi
}
trap cleanup EXIT
tmp=$(mktemp -d)
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${debs[@]}" >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log"; die "apt-get install failed"; }
say "installed ${installed[*]}: $(dpkg-query -W -f '${Package} ${Version}, ' "${installed[@]}")"

# 4. a program against the installed library, found through pkg-config
flags=$(pkg-config --cflags --libs sr2fhir) || die "pkg-config sr2fhir failed"
cc -o "$tmp/hello" tests/package/hello.c $flags || die "cc tests/package/hello.c $flags failed"
out=$("$tmp/hello")
loaded=$(ldd "$tmp/hello" | awk '/libsr2fhir.so.0/ {print $3}')
[ "$out" = "hello: sr2fhir $version, code 4 is 'malformed input'" ] || die "hello printed '$out'"
[ "$(readlink -f "$loaded")" = "$(readlink -f "$(dpkg -L libsr2fhir0 | grep 'libsr2fhir.so.0$')")" ] ||
    die "hello loads '$loaded', not libsr2fhir0's library"
say "hello (cc hello.c $flags): '$out', loads $loaded"
if "$PYTHON" -c 'import pydicom' 2>/dev/null && "$PYTHON" tests/fixtures/generate.py "$tmp/fix" >/dev/null 2>&1; then
    "$tmp/hello" "$tmp/fix/explicit_le.dcm" >"$tmp/hello.json" 2>/dev/null || die "hello could not convert the fixture"
    /usr/bin/sr2fhir convert -q "$tmp/fix/explicit_le.dcm" -o "$tmp/cli.json" || die "installed sr2fhir convert failed"
    cmp -s "$tmp/hello.json" "$tmp/cli.json" || die "hello's Bundle differs from sr2fhir convert's"
    say "hello's Bundle = installed sr2fhir convert's ($(wc -c <"$tmp/cli.json") bytes)"
else
    say "SKIP hello on a fixture: $PYTHON has no pydicom"
fi

# 5. the man page
if grep -qs 'path-exclude[= ]*/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
    dpkg-deb -x "$OUT"/sr2fhir_*.deb "$tmp/x"
    say "dpkg excludes /usr/share/man here ($(grep -ls 'path-exclude[= ]*/usr/share/man' /etc/dpkg/dpkg.cfg.d/* | tr '\n' ' ')): the package's own page with man -l"
    page=$(MANPAGER=cat MANWIDTH=80 man -l "$tmp/x/usr/share/man/man1/sr2fhir.1.gz")
else
    page=$(MANPAGER=cat MANWIDTH=80 man sr2fhir)
fi
printf '%s\n' "$page" | head -12 | sed 's/^/  | /'
grep -q 'sr2fhir - DICOM SR TID 1500' <<<"$page" || die "man sr2fhir shows no NAME line"

# 6. the installed sr2fhir send against the FHIR server tool
server=$SHARED/tools/fhir-server/fhir-server.sh
if [ ! -x "$server" ]; then
    say "SKIP send: $server absent (../shared not beside the checkout)"
elif [ ! -f "$tmp/fix/explicit_le.dcm" ]; then
    say "SKIP send: no fixture (pydicom missing)"
else
    export FHIR_PORT=0 FHIR_PIDFILE=$tmp/fhir.pid FHIR_LOGFILE=$tmp/fhir.log
    base=$("$server" start) || die "the FHIR server did not start"
    /usr/bin/sr2fhir send -q --server "$base" --audit-log "$tmp/audit.jsonl" "$tmp/fix/explicit_le.dcm" ||
        die "installed sr2fhir send failed (exit $?)"
    n=$(curl -sf "$base/Observation?_summary=count" | sed -n 's/.*"total": *\([0-9]*\).*/\1/p')
    want=$(grep -o '"resourceType":"Observation"' "$tmp/cli.json" | wc -l)
    [ -n "$n" ] && [ "$n" -eq "$want" ] || die "the server holds ${n:-no} Observations, the Bundle has $want"
    say "installed sr2fhir send (/usr/bin/sr2fhir -> sr2fhir-send): $n Observations stored at $base"
fi
say "OK"
