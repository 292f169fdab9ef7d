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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import FIX, ROOT, SR2FHIR, out, test  # noqa: E402

TMP = tempfile.mkdtemp(prefix="sr2fhir-safety-")


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


def t8_send_delivered_line():
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    from stub_server import SUCCESS, StubFhirServer
    stub = StubFhirServer()
    base = stub.start()
    try:
        stub.reset([SUCCESS])
        d = fresh("sendname")
        name = os.fsdecode(d.encode() + b"/in/x\x1b[2J\nsr2fhir: y.dcm")
        write(name, fixture())
        rc, o, e = run("send", "--server", base, "--retries", "0", d + "/in", cwd=d)
        assert rc == 0, "send failed: %r" % e
        assert b"\x1b" not in o and o.count(b"\n") == 1, "raw name on stdout: %r" % o
        assert b"x\\x1B[2J\\x0Asr2fhir: y.dcm: delivered to" in o, "not escaped: %r" % o
    finally:
        stub.stop()


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
                       cwd=d, timeout=30)  # cwd: the audit log goes there
    except subprocess.TimeoutExpired:
        raise AssertionError("send did not finish: it recursed through the links")
    assert b"sr2fhir: 2 files:" in e, "send did not list each file once: %r" % e[-300:]
    assert e.count(b"read already") == 2, "no loop warnings: %r" % e[-300:]


def t4_file_link_converts_once():
    d = loop_folder("filelink", [("again.dcm", "a.dcm"), ("sub/c.dcm", "../a.dcm")])
    rc, o, e = run("convert", "-q", "-o", d + "/out.ndjson", d + "/in", timeout=30)
    assert rc == 0, "exit %d: %r" % (rc, e[-300:])
    lines = open(d + "/out.ndjson", "rb").read().count(b"\n")
    assert lines == 2, "%d Bundles written for 2 files (2 more links to a.dcm)" % lines
    assert e.count(b"a second link to it") == 2, "no warning per second link: %r" % e[-300:]
    one_line_messages(e, "convert")


def t4_depth_bound_warns():
    d = fresh("deep")
    deep = d + "/in" + "/d" * 70
    write(deep + "/x.dcm", fixture())
    write(d + "/in/top.dcm", fixture())
    rc, o, e = run("convert", "-o", d + "/out", d + "/in", timeout=60)
    assert rc == 0, "exit %d: %r" % (rc, e[-300:])
    assert b"folders deep" in e, "no warning at the depth bound: %r" % e
    one_line_messages(e, "convert")


# --- 9#3: folder outputs mirror the input's subfolders, names stay distinct -------------
def tree(d):
    return sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs)


def t3_mirror_and_distinct():
    d = fresh("mirror")
    write(d + "/in/a/report.dcm", fixture())
    write(d + "/in/b/report.dcm", fixture())
    write(d + "/in/report.json", fixture("explicit_le.json"))
    write(d + "/in/report.dcm", fixture())
    rc, o, e = run("convert", "-o", d + "/out", d + "/in")
    assert rc == 0, "exit %d: %r" % (rc, e[-300:])
    got = tree(d + "/out")
    want = ["a/report.json", "b/report.json", "report.dcm.json", "report.json.json"]
    assert got == want, "outputs %r, expected %r" % (got, want)
    assert b"4 files: 4 converted, 0 failed" in e, "summary: %r" % e[-300:]
    rc, o, e = run("convert", "-q", "-o", d + "/out2//", d + "/in/")
    assert rc == 0 and tree(d + "/out2") == want, "with slashes: %d %r" % (rc, tree(d + "/out2"))


def t3_same_name_refused():
    d = fresh("clash")
    write(d + "/x/report.dcm", fixture())
    write(d + "/y/report.dcm", fixture())
    rc, o, e = run("convert", "-q", "-o", d + "/out", d + "/x/report.dcm", d + "/y/report.dcm")
    assert rc == 3, "exit %d, expected 3 (an output refused): %r" % (rc, e)
    assert tree(d + "/out") == ["report.dcm.json"], "outputs %r" % tree(d + "/out")
    one_line_messages(e, "convert")
    assert b"y/report.dcm: not converted" in e, "no message for the refused file: %r" % e


def t3_count_equals_files_written():
    d = fresh("count")
    for sub in ("p", "q", "r"):
        write(d + "/in/%s/sr.dcm" % sub, fixture())
    write(d + "/in/sr.json", fixture("explicit_le.json"))
    rc, o, e = run("convert", "-o", d + "/out", d + "/in")
    import re
    m = re.search(rb"(\d+) converted", e)
    assert m, "no summary: %r" % e
    assert int(m.group(1)) == len(tree(d + "/out")), "%s converted, %d files written" % (
        m.group(1).decode(), len(tree(d + "/out")))


# --- 9#5: output file safety ------------------------------------------------------------
def t5_planted_link_in_folder():
    d = fresh("planted")
    write(d + "/victim", b"victim\n")
    os.makedirs(d + "/out")
    os.symlink("../victim", d + "/out/report.json")
    write(d + "/in/report.dcm", fixture())
    write(d + "/in/other.dcm", fixture())
    rc, o, e = run("convert", "-q", "-o", d + "/out", d + "/in")
    assert rc == 0, "exit %d: %r" % (rc, e)
    assert open(d + "/victim", "rb").read() == b"victim\n", "a planted link was followed"
    assert not os.path.islink(d + "/out/report.json"), "the link is still there"
    assert tree(d + "/out") == ["other.json", "report.json"], tree(d + "/out")


def t5_mode_kept():
    d = fresh("mode")
    write(d + "/out.json", b"old", mode=0o600)
    os.umask(0o022)
    rc, o, e = run("convert", "-q", "-o", d + "/out.json", os.path.join(FIX, "explicit_le.dcm"))
    assert rc == 0, e
    mode = stat.S_IMODE(os.stat(d + "/out.json").st_mode)
    assert mode == 0o600, "a 0600 Bundle became %o" % mode
    os.makedirs(d + "/dir")
    write(d + "/dir/explicit_le.json", b"old", mode=0o640)
    rc, o, e = run("convert", "-q", "-o", d + "/dir", os.path.join(FIX, "explicit_le.dcm"),
                   os.path.join(FIX, "deflated.dcm"))
    assert rc == 0, e
    mode = stat.S_IMODE(os.stat(d + "/dir/explicit_le.json").st_mode)
    assert mode == 0o640, "a 0640 Bundle in a folder became %o" % mode
    mode = stat.S_IMODE(os.stat(d + "/dir/deflated.json").st_mode)
    assert mode == 0o644, "a new Bundle is %o, not 0666 less the umask" % mode


def t5_unwritable_is_exit_3():
    d = fresh("unwritable")
    src = os.path.join(FIX, "explicit_le.dcm")
    rc, o, e = run("convert", "-q", "-o", d + "/missing/x.ndjson", src)
    assert rc == 3, "unwritable NDJSON: exit %d, expected 3 (README): %r" % (rc, e)
    one_line_messages(e, "ndjson")
    rc, o, e = run("convert", "-q", "-o", d + "/missing/deeper/", src, src)
    assert rc == 3, "unwritable output folder: exit %d, expected 3 (README): %r" % (rc, e)
    write(d + "/file", b"x")
    rc, o, e = run("convert", "-q", "-o", d + "/file/sub/", src, src)
    assert rc == 3, "output folder under a file: exit %d, expected 3: %r" % (rc, e)


def t5_ndjson_kept_until_success():
    d = fresh("ndjson")
    write(d + "/out.ndjson", b"OLD\n", mode=0o600)
    write(d + "/junk.dcm", b"junk")
    rc, o, e = run("convert", "-q", "-o", d + "/out.ndjson", d + "/junk.dcm",
                   os.path.join(FIX, "rules_not1500.dcm"))
    assert rc != 0, "failures not reported"
    assert open(d + "/out.ndjson", "rb").read() == b"OLD\n", "the old NDJSON was truncated"
    rc, o, e = run("convert", "-q", "-o", d + "/out.ndjson", d + "/junk.dcm",
                   os.path.join(FIX, "explicit_le.dcm"))
    data = open(d + "/out.ndjson", "rb").read()
    assert data.count(b"\n") == 1 and data.startswith(b'{"resourceType":"Bundle"'), data[:80]
    mode = stat.S_IMODE(os.stat(d + "/out.ndjson").st_mode)
    assert mode == 0o600, "the NDJSON's mode became %o" % mode
    assert tree(d) == ["junk.dcm", "out.ndjson"], "left behind: %r" % tree(d)


def t5_dangling_link_failed_conversion():
    d = fresh("dangling")
    os.symlink("target.json", d + "/link.json")
    rc, o, e = run("convert", "-q", "-o", d + "/link.json", os.path.join(FIX, "rules_not1500.dcm"))
    assert rc == 6, "exit %d, expected 6 (not TID 1500): %r" % (rc, e)
    assert not os.path.exists(d + "/target.json"), "a failed conversion left a file at the target"
    assert os.listdir(d) == ["link.json"], "left behind: %r" % os.listdir(d)
    rc, o, e = run("convert", "-q", "-o", d + "/link.json", os.path.join(FIX, "explicit_le.dcm"))
    assert rc == 0, e
    assert os.path.islink(d + "/link.json"), "the named link was replaced"
    assert open(d + "/target.json", "rb").read().startswith(b"{"), "not written through the link"


def t5_longest_name():
    d = fresh("longname")
    dest = d + "/" + "a" * 250 + ".json"  # 255 bytes: the temporary name must still be valid
    rc, o, e = run("convert", "-q", "-o", dest, os.path.join(FIX, "explicit_le.dcm"))
    assert rc == 0, "exit %d: %r" % (rc, e)
    assert os.listdir(d) == [os.path.basename(dest)], os.listdir(d)


def main():
    if not os.path.exists(SR2FHIR):
        out("SKIP output-safety: %s is not built" % SR2FHIR)
        return 0
    harness.require_pydicom("output-safety", python=sys.executable)  # the fixtures need it
    if not os.path.exists(os.path.join(FIX, "explicit_le.dcm")):
        subprocess.run([sys.executable, os.path.join(ROOT, "tests/fixtures/generate.py"), FIX],
                       check=True, capture_output=True)
    test("9#8:unknown-transfer-syntax-escaped", t8_transfer_syntax)
    test("9#8:relationship-type-newline-escaped-in-dump", t8_relationship_newline)
    test("9#8:folder-file-name-escaped", t8_folder_file_name)
    test("9#8:dump-file-line-escaped", t8_dump_file_line)
    test("9#8:send-delivered-line-file-name-escaped", t8_send_delivered_line)
    test("9#4:two-self-links-each-folder-once", t4_two_self_links)
    test("9#4:self-link-converts-each-file-once", t4_self_link_converts_once)
    test("9#4:send-reads-each-folder-once", t4_send_follows_once)
    test("9#4:second-link-to-a-file-converts-it-once", t4_file_link_converts_once)
    test("9#4:depth-bound-warns", t4_depth_bound_warns)
    test("9#3:folder-output-mirrors-subfolders-names-distinct", t3_mirror_and_distinct)
    test("9#3:same-output-name-refused-not-overwritten", t3_same_name_refused)
    test("9#3:converted-count-equals-files-written", t3_count_equals_files_written)
    test("9#5:planted-link-in-output-folder-not-followed", t5_planted_link_in_folder)
    test("9#5:replaced-file-keeps-its-mode", t5_mode_kept)
    test("9#5:unwritable-ndjson-or-folder-exit-3", t5_unwritable_is_exit_3)
    test("9#5:ndjson-not-truncated-before-success", t5_ndjson_kept_until_success)
    test("9#5:failed-conversion-nothing-at-dangling-link-target", t5_dangling_link_failed_conversion)
    test("9#5:temporary-name-valid-for-a-255-byte-name", t5_longest_name)
    shutil.rmtree(TMP, ignore_errors=True)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
