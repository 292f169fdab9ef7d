#!/usr/bin/env python3
"""tests/e2e/test_output_safety.py - issue 9 defects 3, 4, 5 and 8 (the command-line half):
folder outputs mirror the input's subfolders and never overwrite silently (#3), symlink
loops in input folders are followed once (#4), output files are written safely (#5), and
text from outside is escaped in every message and dump field (#8).

Each case failed on the d39ad0f build. Inputs are the project's own fixtures
(tests/fixtures/generate.py), copied and byte-patched here. Prints PASS/FAIL/SKIP lines
for tests/run.sh."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

ROOT = os.environ.get("ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("BUILD", "build")
SR2FHIR = os.environ.get("SR2FHIR") or os.path.join(ROOT, BUILD, "sr2fhir")
FIX = os.path.join(ROOT, BUILD, "fixtures")
TMP = tempfile.mkdtemp(prefix="sr2fhir-safety-")
nfail = 0


def out(line):
    print(line, flush=True)


def test(name, fn):
    global nfail
    try:
        fn()
        out("PASS " + name)
    except Exception as e:  # noqa: BLE001 - every failure is a FAIL line
        nfail += 1
        msg = str(e) if isinstance(e, AssertionError) else "%s: %s" % (type(e).__name__, e)
        out("FAIL %s: %s" % (name, " ".join(msg.split())[:600]))


def run(*args, cwd=None, timeout=60):
    p = subprocess.run([SR2FHIR] + list(args), cwd=cwd, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def fresh(name):
    d = os.path.join(TMP, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def fixture(name="explicit_le.dcm"):
    return open(os.path.join(FIX, name), "rb").read()


def patched(data, old, new):
    assert len(old) == len(new) and old in data, "patch %r" % old
    return data.replace(old, new, 1)


def write(path, data, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)


def one_line_messages(err, what):
    """Every line on stderr is a message of its own: starts with "sr2fhir: ", and nothing
    from outside (ESC, other controls, bytes that are not UTF-8) got through raw."""
    for line in err.split(b"\n")[:-1]:
        assert line.startswith(b"sr2fhir: "), "%s: a line not starting with 'sr2fhir: ': %r" % (what, line)
        assert not any(c < 0x20 or c == 0x7F for c in line), "%s: raw control in %r" % (what, line)
        line.decode("utf-8")
    assert err.endswith(b"\n"), "%s: stderr does not end a line: %r" % (what, err[-80:])


# --- 9#8: text from outside is escaped -------------------------------------------------
FORGED = b"\x1b[2J\nsr2fhir: FAKE!!"  # as long as "1.2.840.10008.1.2.1\0"


def t8_transfer_syntax():
    d = fresh("ts")
    write(d + "/ts.dcm", patched(fixture(), b"1.2.840.10008.1.2.1\x00", FORGED))
    for cmd in (["dump"], ["convert", "-o", d + "/ts.json"]):
        rc, o, e = run(*cmd, d + "/ts.dcm")  # a warning: read as Explicit VR Little Endian
        one_line_messages(e, cmd[0])
        assert b"\\x1B[2J\\x0Asr2fhir: FAKE" in e, "%s: not shown escaped: %r" % (cmd[0], e)
    rc, o, e = run("dump", "-q", d + "/ts.dcm")
    assert b"Format: \\x1B[2J\\x0Asr2fhir: FAKE!!\n" in o, "the dump's Format line: %r" % o[:300]


def t8_relationship_newline():
    d = fresh("rel")
    write(d + "/rel.dcm", patched(fixture(), b"CONTAINS", b"CON\nAINS"))
    rc, o, e = run("dump", d + "/rel.dcm")
    assert b"CON\\x0AAINS" in o, "the Relationship Type is not shown escaped: %r" % o[:2000]
    assert b"\nAINS" not in o, "a dump item was split over two lines"
    assert not any(c < 0x20 and c != 0x0A for c in o), "raw control in the dump"
    if e:
        one_line_messages(e, "dump")
    rc, o, e = run("convert", "-o", d + "/rel.json", d + "/rel.dcm")
    if e:
        one_line_messages(e, "convert")


def t8_folder_file_name():
    d = fresh("names")
    write(os.fsdecode(d.encode() + b"/in/bad\x1b[2J\nsr2fhir: x\xff.dcm"),
          b"not a DICOM file at all, and long enough to be read as one" * 4)
    rc, o, e = run("convert", "-o", d + "/out", d + "/in")
    assert rc != 0, "a file that is not an SR converted"
    one_line_messages(e, "convert")
    assert b"bad\\x1B[2J\\x0Asr2fhir: x\\xFF.dcm" in e, "the file name is not shown escaped: %r" % e


def t8_dump_file_line():
    d = fresh("dumpname")
    name = os.fsdecode(d.encode() + b"/a\x1b]0;t\x07b.dcm")
    write(name, fixture())
    rc, o, e = run("dump", name)
    assert rc == 0, "dump failed: %r" % e
    assert b"\x1b" not in o and b"\x07" not in o, "raw controls on stdout"
    assert b"a\\x1B]0;t\\x07b.dcm" in o, "the File: line is not escaped"


# --- 9#4: symbolic link loops in input folders ------------------------------------------
def loop_folder(name, links):
    d = fresh(name)
    write(d + "/in/a.dcm", fixture())
    write(d + "/in/sub/b.dcm", fixture())
    for link, target in links:
        os.symlink(target, d + "/in/" + link)
    return d


def t4_two_self_links():
    d = loop_folder("loop2", [("s1", "."), ("s2", "."), ("sub/up", "..")])
    try:
        rc, o, e = run("convert", "-o", d + "/out", d + "/in", timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("convert did not finish: it recursed through the links")
    assert rc == 0, "exit %d: %r" % (rc, e[-300:])
    assert b"2 files: 2 converted, 0 failed" in e, "not each file once: %r" % e[-300:]
    warnings = [l for l in e.split(b"\n") if b"read already" in l]
    assert len(warnings) == 3, "one warning per looping link expected: %r" % e
    one_line_messages(e, "convert")


def t4_self_link_converts_once():
    d = loop_folder("loop1", [("self", ".")])
    rc, o, e = run("convert", "-q", "-o", d + "/out.ndjson", d + "/in", timeout=30)
    assert rc == 0, "exit %d: %r" % (rc, e[-300:])
    lines = open(d + "/out.ndjson", "rb").read().count(b"\n")
    assert lines == 2, "%d Bundles written for 2 files" % lines


def t4_send_follows_once():
    d = loop_folder("loop3", [("s1", "."), ("s2", ".")])
    try:
        rc, o, e = run("send", "--server", "http://127.0.0.1:9/", "--retries", "0", d + "/in",
                       timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("send did not finish: it recursed through the links")
    assert b"sr2fhir: 2 files:" in e, "send did not list each file once: %r" % e[-300:]
    assert e.count(b"read already") == 2, "no loop warnings: %r" % e[-300:]


def main():
    if not os.path.exists(SR2FHIR):
        out("SKIP output-safety: %s is not built" % SR2FHIR)
        return 0
    try:
        import pydicom  # noqa: F401 - the fixtures need it
    except ImportError:
        out("SKIP output-safety: %s has no pydicom (apt-get install python3-pydicom)" % sys.executable)
        return 0
    if not os.path.exists(os.path.join(FIX, "explicit_le.dcm")):
        subprocess.run([sys.executable, os.path.join(ROOT, "tests/fixtures/generate.py"), FIX],
                       check=True, capture_output=True)
    test("9#8:unknown-transfer-syntax-escaped", t8_transfer_syntax)
    test("9#8:relationship-type-newline-escaped-in-dump", t8_relationship_newline)
    test("9#8:folder-file-name-escaped", t8_folder_file_name)
    test("9#8:dump-file-line-escaped", t8_dump_file_line)
    test("9#4:two-self-links-each-folder-once", t4_two_self_links)
    test("9#4:self-link-converts-each-file-once", t4_self_link_converts_once)
    test("9#4:send-reads-each-folder-once", t4_send_follows_once)
    shutil.rmtree(TMP, ignore_errors=True)
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
