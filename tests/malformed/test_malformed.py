#!/usr/bin/env python3
"""Malformed input through the command line (issue 2, "Malformed input"): lengths past the
end, odd lengths, a 4 GiB declared length, 10,000-deep nesting (Part 10 and JSON), invalid
JSON, JSON of the wrong types, empty and non-DICOM files, and every 97th-byte prefix of a
corpus file. Each must give exactly one line on stderr, 'sr2fhir: FILE: ...', and a
documented non-zero exit code (4 malformed, 5 unsupported, 7 limit), never a signal or a
hang; in the normal (non-sanitizer) build peak memory must stay within a small multiple of
the input (64 MiB + 16 x input, the process itself included). Crafted input too: codes
made alike are dumped (their cost is counted by tests/unit/test_code_memo.c, never timed).

The inputs are built here byte by byte, so the test does not depend on any generator.
Prints PASS/FAIL/SKIP lines for tests/run.sh.
"""
import os
import re
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import BUILD, SHARED, SR2FHIR, report  # noqa: E402

SANITIZED = "san" in BUILD
DOCUMENTED = {4: "malformed", 5: "unsupported", 7: "limit"}

# --- byte builders (Explicit VR Little Endian unless said otherwise) ---------------------
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


def tag(g, e):
    return struct.pack("<HH", g, e)


def elem(g, e, vr, value, length=None):
    n = len(value) if length is None else length
    if vr in LONG_VRS:
        return tag(g, e) + vr + b"\0\0" + struct.pack("<I", n) + value
    return tag(g, e) + vr + struct.pack("<H", n) + value


def text(g, e, vr, s):
    b = s.encode()
    if len(b) % 2:
        b += b"\0" if vr == b"UI" else b" "
    return elem(g, e, vr, b)


def item(body):
    return tag(0xFFFE, 0xE000) + struct.pack("<I", len(body)) + body


def seq(g, e, *items):
    body = b"".join(item(i) for i in items)
    return elem(g, e, b"SQ", body)


def part10(dataset, ts="1.2.840.10008.1.2.1"):
    meta = text(2, 0x10, b"UI", ts)
    meta = elem(2, 0, b"UL", struct.pack("<I", len(meta))) + meta
    return b"\0" * 128 + b"DICM" + meta + dataset


def minimal_sr(content=b""):
    code = (text(8, 0x100, b"SH", "126000") + text(8, 0x102, b"SH", "DCM") +
            text(8, 0x104, b"LO", "Imaging Measurement Report"))
    return (text(8, 0x16, b"UI", "1.2.840.10008.5.1.4.1.1.88.22") + text(8, 0x18, b"UI", "1.2.3") +
            text(0x40, 0xA040, b"CS", "CONTAINER") + seq(0x40, 0xA043, code) +
            text(0x40, 0xA050, b"CS", "SEPARATE") + content)


def deep_part10(depth):
    """depth nested sequences of undefined length, each with one undefined-length item."""
    open_ = (tag(0x40, 0xA730) + b"SQ\0\0" + b"\xff\xff\xff\xff" +
             tag(0xFFFE, 0xE000) + b"\xff\xff\xff\xff")
    close = tag(0xFFFE, 0xE00D) + b"\0\0\0\0" + tag(0xFFFE, 0xE0DD) + b"\0\0\0\0"
    return part10(minimal_sr(open_ * depth + close * depth))


def deep_json(depth):
    inner = '{"0040A040":{"vr":"CS","Value":["TEXT"]}}'
    for _ in range(depth):
        inner = '{"0040A730":{"vr":"SQ","Value":[' + inner + "]}}"
    return ('{"0040A040":{"vr":"CS","Value":["CONTAINER"]},"0040A730":{"vr":"SQ","Value":[' +
            inner + "]}}").encode()


def colliding_codes(n):
    """n TEXT items whose concept codes differ only in the middle of their meanings: the
    reader's code memo hashes the ends of each text, so every one of them collides."""
    items = []
    for i in range(n):
        code = (text(8, 0x100, b"SH", "126000") + text(8, 0x102, b"SH", "DCM") +
                text(8, 0x104, b"LO", "Mean AAAAAAAA %08d ZZZZZZZZ" % i))
        items.append(text(0x40, 0xA010, b"CS", "CONTAINS") + text(0x40, 0xA040, b"CS", "TEXT") +
                     seq(0x40, 0xA043, code) + text(0x40, 0xA160, b"UT", "x"))
    return part10(minimal_sr(seq(0x40, 0xA730, *items)))


CASES = {
    # lengths past the end: a Content Sequence that claims 4096 bytes and has 20
    "length_past_end.dcm": (part10(minimal_sr(elem(0x40, 0xA730, b"SQ", b"\0" * 20, 4096))), {4}),
    "item_past_sequence.dcm": (part10(minimal_sr(elem(0x40, 0xA730, b"SQ",
                                                      tag(0xFFFE, 0xE000) + struct.pack("<I", 400) + b"\0" * 8))), {4}),
    "length_4gib.dcm": (part10(minimal_sr(elem(0x40, 0xA160, b"UT", b"abcd", 0xFFFFFFFE))), {4}),
    "short_length_4gib_bare.dcm": (minimal_sr() + elem(0x40, 0xA160, b"UT", b"", 0xFFFFFFF0), {4}),
    "odd_length.dcm": (part10(text(8, 0x16, b"UI", "1.2.840.10008.5.1.4.1.1.88.22") +
                              elem(8, 0x104, b"LO", b"abcdefghijklm")), {4}),
    "deep_10000.dcm": (deep_part10(10000), {7}),
    "deep_10000.json": (deep_json(10000), {7}),
    "truncated_meta.dcm": (b"\0" * 128 + b"DICM" + tag(2, 0x10) + b"UI\x40\x00abc", {4}),
    "empty.dcm": (b"", {4}),
    "not_dicom.txt": (b"hello, this is not a DICOM file at all\n" * 10, {4}),
    "random.bin": (bytes((i * 7919 + 13) % 256 for i in range(5000)), {4}),
    "not_sr.dcm": (part10(text(8, 0x16, b"UI", "1.2.840.10008.5.1.4.1.1.2") + text(8, 0x18, b"UI", "1.2")), {5}),
    "invalid_syntax.json": (b'{"0040A040": {"vr": "CS", "Value": ["CONTAINER"]', {4}),
    "invalid_comma.json": (b'{,}', {4}),
    "trailing_garbage.json": (b'{"0040A040":{"vr":"CS","Value":["CONTAINER"]}} xyz', {4}),
    "vr_is_number.json": (b'{"0040A040":{"vr":12,"Value":["CONTAINER"]}}', {4}),
    "vr_missing.json": (b'{"0040A040":{"Value":["CONTAINER"]}}', {4}),
    "bad_tag_key.json": (b'{"hello":{"vr":"CS","Value":["CONTAINER"]}}', {4}),
    "item_is_string.json": (b'{"0040A040":{"vr":"CS","Value":["CONTAINER"]},"0040A730":{"vr":"SQ","Value":["x"]}}', {4}),
    "us_is_string.json": (b'{"0040A040":{"vr":"CS","Value":["CONTAINER"]},"00280010":{"vr":"US","Value":["x"]}}', {4}),
    "several_datasets.json": (b'[{"0040A040":{"vr":"CS","Value":["CONTAINER"]}},{}]', {5}),
    "top_is_number.json": (b'[42]', {4}),
}


def run(path):
    """Exit code (None after a 60 s hang, negative for a signal) and stderr of one dump."""
    proc = subprocess.Popen([SR2FHIR, "dump", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, ""
    return proc.returncode, err.decode(errors="replace")


def peak_kib(path):
    """Peak resident memory of one dump, from wait4's per-child rusage."""
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execv(SR2FHIR, [SR2FHIR, "dump", path])
    _, _, usage = os.wait4(pid, 0)
    return usage.ru_maxrss


def check(name, path, expected, input_len):
    rc, err = run(path)
    if rc is None:
        return report(False, name, "hung for 60 s")
    lines = err.splitlines()
    problems = []
    if rc < 0:
        problems.append(f"killed by signal {-rc}")
    elif rc not in expected:
        problems.append(f"exit {rc}, expected {sorted(expected)}")
    if len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines: {err[:300]!r}")
    elif not re.match(r"^sr2fhir: " + re.escape(path) + r": \S.*$", lines[0]):
        problems.append(f"stderr is not 'sr2fhir: FILE: message': {lines[0]!r}")
    if not SANITIZED:
        kib = peak_kib(path)
        limit = 64 * 1024 + 16 * input_len // 1024
        if kib > limit:
            problems.append(f"peak memory {kib} KiB > {limit} KiB")
    report(not problems, name, "; ".join(problems))
    return lines[0] if lines else ""


def main():
    if not os.access(SR2FHIR, os.X_OK):
        report(False, "binary", f"{SR2FHIR} is not built")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        for name, (data, expected) in CASES.items():
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(data)
            check(f"malformed:{name}", path, expected, len(data))
        # one small corpus file, every 97th-byte prefix, through the command line (the
        # in-process test_truncation covers every corpus file)
        src = os.path.join(SHARED, "corpus", "files", "tid1500__pixelmed__rsna2018_ds4_1.dcm")
        if not os.path.exists(src):
            print(f"SKIP malformed:corpus-prefixes: {src} is absent (../shared not beside the checkout)")
        else:
            data = open(src, "rb").read()
            bad = []
            for cut in range(0, len(data), 97):
                path = os.path.join(tmp, f"prefix_{cut}.dcm")
                with open(path, "wb") as f:
                    f.write(data[:cut])
                rc, err = run(path)
                lines = err.splitlines()
                if rc is None or rc not in DOCUMENTED or len(lines) != 1 or not lines[0].startswith(f"sr2fhir: {path}: "):
                    bad.append(f"cut {cut}: exit {rc}, stderr {err[:200]!r}")
            report(not bad, f"malformed:corpus-prefixes({len(data) // 97 + 1} cuts)", "; ".join(bad[:3]))
        # codes made alike (they shared one hash in the old reader's memo) still convert;
        # that reading them costs linear work is counted, not timed, by
        # tests/unit/test_code_memo.c (issue 9 defect 11: wall-clock ratios failed on a
        # busy machine)
        path = os.path.join(tmp, "colliding_codes_40000.dcm")
        with open(path, "wb") as f:
            f.write(colliding_codes(40000))
        rc, err = run(path)
        report(rc == 0, "crafted:colliding-codes-read", f"exit {rc}: {err[:200]!r}")
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
