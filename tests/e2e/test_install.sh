#!/usr/bin/env bash
# tests/e2e/test_install.sh - `make install DESTDIR=D PREFIX=/usr` (issue 16): the programs,
# the shared libraries with their soname links, the archives, every public header, the
# pkg-config files, a man page for every command and the docs land under D; PREFIX and
# LIBDIR are honoured; a program compiled with `pkg-config --cflags --libs sr2fhir` against
# D runs with D's libsr2fhir.so.0 and writes the same Bundle as `sr2fhir convert`; every man
# page renders with `man -l`; scripts/gen-man.sh fails for a command without a help text.
# Prints PASS/FAIL/SKIP lines for tests/run.sh.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
cd "$ROOT" || exit 1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export LC_ALL=C
pass() { echo "PASS install:$1"; }
fail() { echo "FAIL install:$1: $2"; }
case $(basename "$BUILD") in *san*) san=1 ;; *) san=0 ;; esac
# make with the flags $BUILD was made with (tests/run.sh passes only BUILD), so that
# `install`'s `all` finds everything up to date instead of relinking with other flags
flags=(BUILD="$BUILD")
[ "$san" = 1 ] && flags+=(SAN=1)
case $(basename "$BUILD") in *clang*) flags+=(CC=clang) ;; esac

D=$tmp/D
if ! make -s install "${flags[@]}" DESTDIR="$D" PREFIX=/usr >"$tmp/make.log" 2>&1; then
    fail make "make install failed: $(tail -3 "$tmp/make.log" | tr '\n' ' ')"; exit 0
fi
pass make
multiarch=$(gcc -print-multiarch 2>/dev/null)
lib=$D/usr/lib${multiarch:+/$multiarch}
version=$("$BUILD/sr2fhir" --version | sed -n 's/^sr2fhir //p')

# The Must show's list, and the rest of what install promises.
missing=
for f in usr/bin/sr2fhir usr/bin/sr2fhir-send usr/bin/sr2fhir-serve usr/bin/sr2fhir-pull \
         usr/include/sr2fhir.h usr/share/man/man1/sr2fhir.1 usr/share/doc/sr2fhir/README.md; do
    [ -f "$D/$f" ] || missing="$missing $f"
done
for l in libsr2fhir libsr2fhir-send; do
    for f in "$l.so.$version" "$l.so.0" "$l.so" "$l.a" "pkgconfig/${l#lib}.pc"; do
        [ -f "$lib/$f" ] || missing="$missing ${lib#$D/}/$f"
    done
done
for h in include/*.h; do [ -f "$D/usr/$h" ] || missing="$missing usr/$h"; done
[ -z "$missing" ] && pass "files-under-destdir (lib${multiarch:+/$multiarch})" \
    || fail files-under-destdir "missing:$missing"

links=$(readlink "$lib/libsr2fhir.so.0") soname=$(readelf -d "$lib/libsr2fhir.so.$version" 2>/dev/null |
    sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$links" = "libsr2fhir.so.$version" ] && [ "$(readlink "$lib/libsr2fhir.so")" = libsr2fhir.so.0 ] &&
    [ "$soname" = libsr2fhir.so.0 ] && pass "soname-and-links (libsr2fhir.so -> .so.0 -> .so.$version, soname $soname)" \
    || fail soname-and-links "so.0 -> '$links', soname '$soname'"

pc=$lib/pkgconfig/sr2fhir.pc
grep -qx 'prefix=/usr' "$pc" && grep -qxF 'libdir=${prefix}'"${lib#$D/usr}" "$pc" && grep -qx "Version: $version" "$pc" \
    && pass "pkgconfig-paths (prefix=/usr, libdir=\${prefix}${lib#$D/usr}, Version $version)" \
    || fail pkgconfig-paths "$(tr '\n' ' ' <"$pc")"

# PREFIX and LIBDIR elsewhere: everything follows them.
if make -s install "${flags[@]}" DESTDIR="$tmp/E" PREFIX=/opt/s2f LIBDIR=/opt/s2f/lib64 >"$tmp/make2.log" 2>&1 &&
   [ -f "$tmp/E/opt/s2f/bin/sr2fhir" ] && [ -f "$tmp/E/opt/s2f/lib64/libsr2fhir.so.0" ] &&
   [ -f "$tmp/E/opt/s2f/share/man/man1/sr2fhir.1" ] && grep -qxF 'libdir=${prefix}/lib64' "$tmp/E/opt/s2f/lib64/pkgconfig/sr2fhir.pc" &&
   [ -z "$(find "$tmp/E" -path "$tmp/E/opt" -prune -o -type f -print)" ]; then
    pass "prefix-and-libdir (PREFIX=/opt/s2f LIBDIR=/opt/s2f/lib64)"
else
    fail prefix-and-libdir "$(cd "$tmp/E" 2>/dev/null && find . -type f | head -5 | tr '\n' ' ')"
fi

# A program built against the installed library through pkg-config.
if [ "$san" = 1 ]; then
    echo "SKIP install:hello-via-pkg-config: $BUILD's libraries need the sanitizer runtime (checked in the plain build)"
elif ! command -v pkg-config >/dev/null; then
    echo "SKIP install:hello-via-pkg-config: no pkg-config (scripts/install-deps.sh installs it)"
else
    # D's files through the .pc's own ${prefix} (a sysroot would move /usr/include/yajl too)
    export PKG_CONFIG_PATH=$lib/pkgconfig
    pcd=--define-variable=prefix=$D/usr
    if ! flags=$(pkg-config "$pcd" --cflags --libs sr2fhir 2>"$tmp/pc.err"); then
        fail hello-via-pkg-config "pkg-config: $(cat "$tmp/pc.err")"
    elif ! cc -o "$tmp/hello" tests/package/hello.c $flags 2>"$tmp/cc.err"; then
        fail hello-via-pkg-config "cc $flags: $(head -3 "$tmp/cc.err")"
    else
        out=$(LD_LIBRARY_PATH=$lib "$tmp/hello")
        loaded=$(LD_LIBRARY_PATH=$lib ldd "$tmp/hello" | awk '/libsr2fhir.so.0/ {print $3}')
        [ "$out" = "hello: sr2fhir $version, code 4 is 'malformed input'" ] && [ "$loaded" = "$lib/libsr2fhir.so.0" ] &&
            pass "hello-via-pkg-config ($flags; loads ${loaded#$D})" ||
            fail hello-via-pkg-config "printed '$out', loads '$loaded'"
        if "$PYTHON" -c 'import pydicom' 2>/dev/null && "$PYTHON" tests/fixtures/generate.py "$tmp/fix" >/dev/null 2>&1; then
            LD_LIBRARY_PATH=$lib "$tmp/hello" "$tmp/fix/explicit_le.dcm" >"$tmp/hello.json" 2>"$tmp/hello.err"
            "$BUILD/sr2fhir" convert -q "$tmp/fix/explicit_le.dcm" -o "$tmp/cli.json"
            cmp -s "$tmp/hello.json" "$tmp/cli.json" && [ -s "$tmp/cli.json" ] &&
                pass "hello-converts-like-the-cli ($(cat "$tmp/hello.err"), $(wc -c <"$tmp/cli.json") bytes identical)" ||
                fail hello-converts-like-the-cli "the Bundles differ: $(cat "$tmp/hello.err")"
        else
            echo "SKIP install:hello-converts-like-the-cli: $PYTHON has no pydicom for the fixture"
        fi
    fi
    # the delivery library links beside it (Requires: sr2fhir)
    if flags=$(pkg-config "$pcd" --cflags --libs sr2fhir-send 2>"$tmp/pc.err") && [[ " $flags " == *" -lsr2fhir-send "*"-lsr2fhir "* ]]; then
        pass "pkg-config-sr2fhir-send ($flags)"
    else
        fail pkg-config-sr2fhir-send "'$flags' $(cat "$tmp/pc.err")"
    fi
    unset PKG_CONFIG_PATH
fi

# A page for every command the general help lists, each rendering with man -l.
commands=$("$BUILD/sr2fhir" help | awk '/^commands:/ {on=1; next} on && /^$/ {exit} on && /^  [a-z]/ {print $1}')
bad=
for c in $commands; do
    case $c in help|version) continue ;; esac
    page=$D/usr/share/man/man1/sr2fhir-$c.1
    [ -f "$page" ] || { bad="$bad $c(no page)"; continue; }
    text=$(MANWIDTH=100 man --warnings -E UTF-8 -l "$page" 2>"$tmp/man.err")
    usage=$("$BUILD/sr2fhir" help "$c" | sed -n '1s/^usage: //p')
    [ -s "$tmp/man.err" ] && bad="$bad $c(groff: $(head -1 "$tmp/man.err"))"
    grep -qE -- "sr2fhir-$c +- " <<<"$text" || bad="$bad $c(no NAME line)"
    grep -qF -- "$usage" <<<"$text" || bad="$bad $c(usage '$usage' not shown)"
done
for p in "$D"/usr/bin/*; do   # and every installed program has its page
    [ -f "$D/usr/share/man/man1/$(basename "$p").1" ] || bad="$bad $(basename "$p")(program without a page)"
done
if ! command -v man >/dev/null; then
    echo "SKIP install:man-pages: no man (scripts/install-deps.sh installs man-db)"
elif [ -z "$bad" ] && [ -n "$commands" ]; then
    pass "man-pages ($(echo $commands | wc -w) commands listed, pages: $(cd "$D/usr/share/man/man1" && ls | tr '\n' ' '))"
else
    fail man-pages "${bad:- no commands listed by 'sr2fhir help'}"
fi
# The generator refuses a listed command that has no help text (no page can be missing).
printf '#!/bin/sh\ncase "$1 $2" in\n"--version ") echo "sr2fhir 9.9.9" ;;\n"help ") printf "commands:\\n  bogus       a command\\n\\n" ;;\n*) exit 2 ;;\nesac\n' >"$tmp/fake"
chmod +x "$tmp/fake"
if scripts/gen-man.sh "$tmp/fake" "$tmp/fakeman" 2>"$tmp/gen.err"; then
    fail gen-man-refuses-missing-help "gen-man.sh succeeded without 'help bogus'"
else
    grep -q "help bogus' failed" "$tmp/gen.err" && pass "gen-man-refuses-missing-help ($(cat "$tmp/gen.err"))" ||
        fail gen-man-refuses-missing-help "$(cat "$tmp/gen.err")"
fi

# -Werror: on by default (the checkout's and CI's builds), off with WERROR=0 (the Debian build)
on=$(make -n -B BUILD="$tmp/w" "$tmp/w/src/util/arena.o" 2>/dev/null | grep -c -- ' -Werror ')
off=$(make -n -B WERROR=0 BUILD="$tmp/w" "$tmp/w/src/util/arena.o" 2>/dev/null | grep -c -- ' -Werror ')
rules=$(grep -c 'WERROR=0' debian/rules 2>/dev/null)
[ "$on" = 1 ] && [ "$off" = 0 ] && [ "${rules:-0}" -ge 1 ] && pass "werror-switch (default -Werror, WERROR=0 without, debian/rules passes WERROR=0)" ||
    fail werror-switch "default: $on compile lines with -Werror, WERROR=0: $off, debian/rules: ${rules:-0}"
