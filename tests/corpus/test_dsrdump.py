#!/usr/bin/env python3
"""Corpus test for issue 2: `sr2fhir dump` reads every file of ../shared/corpus/files, and
for every TID 1500 file finds the same content tree as DCMTK's dsrdump.

Both outputs are normalised to one record per content item:
(position, relationship, value type, concept code, normalised value), then compared.
Deliberate differences (how each tool prints the same fact) are handled in normalize_*
below and listed in DELIBERATE; anything else is a failure.

Prints one line per case: PASS/FAIL/SKIP name (tests/run.sh counts them).
Environment: SR2FHIR (binary), SHARED (../shared), PYTHON (Debian python3 for pydicom).
"""
import os
import re
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import ROOT, SHARED, SR2FHIR, report  # noqa: E402

FILES = os.path.join(SHARED, "corpus", "files")
DSRDUMP_ARGS = ["dsrdump", "-Ph", "+Pn", "+Pl", "+Pu", "+Psu", "+Pc", "+U8",
                "-Er", "-Ev", "-Ec", "-Ee"]

# How the two tools differ on purpose; the normalisers below undo exactly these.
DELIBERATE = [
    "NUM without Measured Value: dsrdump prints 'empty', sr2fhir '(no value)' (+ qualifier)",
    "NUM Floating Point Value / rational: printed by sr2fhir as ' fp=' / ' rational=', not by dsrdump",
    "references: dsrdump quotes UIDs and appends frames as ',N'; sr2fhir prints ' frames=N'",
    "relationship: dsrdump lower case ('has obs context'), sr2fhir upper case",
    "Observation DateTime: dsrdump ' {YYYY-MM-DD hh:mm:ss}', sr2fhir '{dt=YYYYMMDDhhmmss}': "
    "compared as digits",
    "SCOORD/SCOORD3D coordinates: compared as float32 values (dsrdump prints up to 10 "
    "significant digits, sr2fhir 9, both exact for a float32)",
    "the guide's JSON example: its DS values are JSON numbers such as 3.111220E+04, which "
    "sr2fhir keeps verbatim; pydicom rewrites them (31112.2) when it makes the Part 10 twin "
    "for dsrdump, so for that file only NUM values are compared as numbers",
    "text escapes: dsrdump leaves '\"' unescaped inside values, sr2fhir writes '\\\"'",
]

def split_quoted(s, i):
    """Reads a "..." string at s[i] honouring backslash escapes; returns (text, next index)."""
    assert s[i] == '"'
    out, i = [], i + 1
    while i < len(s) and s[i] != '"':
        if s[i] == "\\" and i + 1 < len(s):
            out.append(s[i:i + 2])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out), i + 1


def unescape(s):
    return (s.replace('\\"', '"').replace("\\n", "\n").replace("\\r", "\r")
            .replace("\\t", "\t").replace("\\\\", "\\"))


def code_at(s, i):
    """Parses (value,scheme,"meaning") at s[i]; returns ((value, scheme, meaning), next)."""
    assert s[i] == "("
    j = s.index(",", i)
    k = s.index(",", j + 1)
    if s[k + 1] != '"':
        raise ValueError("unquoted meaning")
    meaning, end = split_quoted(s, k + 1)
    return (s[i + 1:j], s[j + 1:k], unescape(meaning)), end + 1


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def as_float32(text):
    """Graphic Data is FL: both tools print a float32, with different digit counts."""
    return struct.unpack("<f", struct.pack("<f", float(text)))[0]


def norm_value(vt, v):
    v = v.strip()
    if vt in ("TEXT", "DATETIME", "DATE", "TIME", "UIDREF", "PNAME"):
        if v.startswith('"') and v.endswith('"'):
            return unescape(v[1:-1])
        return v
    if vt == "CODE":
        return code_at(v, 0)[0] if v.startswith("(") else v
    if vt == "NUM":
        if v.startswith("empty") or v.startswith("(no value)"):
            return ("empty",)
        text, end = split_quoted(v, 0)
        rest = v[end:].strip()
        unit = code_at(rest, 0)[0] if rest.startswith("(") else None
        return (text, unit)
    if vt in ("IMAGE", "COMPOSITE", "WAVEFORM"):
        uids = re.findall(r"\d+(?:\.\d+)+", v)
        nums = [n for n in re.findall(r"(?<![\d.])\d+(?![\d.])", v.split(")")[0] + " " +
                                       v.split(")", 1)[1].split("pstate")[0] if ")" in v else v)]
        return (tuple(uids[:2]), tuple(nums))
    if vt in ("SCOORD", "SCOORD3D", "TCOORD"):
        inner = v[1:v.rindex(")")] if v.startswith("(") else v
        kind = inner.split(",")[0]
        fr = re.findall(r'"([^"]*)"', inner)
        nums = tuple(as_float32(n) for n in NUMBER.findall(re.sub(r'"[^"]*"', "", inner[len(kind):])))
        return (kind, tuple(fr), nums)
    return v


REL_WORDS = ["HAS OBS CONTEXT", "HAS ACQ CONTEXT", "HAS CONCEPT MOD", "HAS PROPERTIES",
             "INFERRED FROM", "SELECTED FROM", "CONTAINS"]


def parse_ours(text):
    tree = text.split("\n\n", 1)[1] if "\n\n" in text else ""
    items = {}
    for line in tree.splitlines():
        pos, rest = line.split("  ", 1)
        rel = ""
        for w in REL_WORDS:
            if rest.startswith(w + " "):
                rel, rest = w, rest[len(w) + 1:]
                break
        if rest.startswith("->"):
            items[pos] = (rel, "BYREF", None, rest[2:].strip(), "")
            continue
        vt, rest = rest.split(" ", 1)
        concept = None
        if rest.startswith("("):
            concept, end = code_at(rest, 0)
            rest = rest[end:]
        else:
            rest = " " + rest
        if not rest.startswith(" = "):
            raise ValueError(f"unparsable sr2fhir dump line: {line}")
        value = rest[3:]
        dt = ""
        m = re.search(r" \{([^{}]*)\}$", value)
        if m and re.match(r"(uid|dt|template)=", m.group(1)):
            value = value[:m.start()]
            d = re.search(r"dt=(\S+)", m.group(1))
            dt = re.sub(r"\D", "", d.group(1))[:14] if d else ""
        value = re.sub(r" (fp|rational)=\S+", "", value)
        value = re.sub(r" qualifier=\(.*\)$", "", value)
        items[pos] = (rel, vt, concept, norm_value(vt, value), dt)
    return items


DSR_LINE = re.compile(r"^(\d+(?:\.\d+)*)  <(.*)>(?: \{([^{}]*)\})?$")


def parse_dsrdump(text):
    items = {}
    for line in text.splitlines():
        m = DSR_LINE.match(line)
        if not m:
            continue
        pos, body, dt = m.group(1), m.group(2), m.group(3) or ""
        rel = ""
        for w in REL_WORDS:
            if body.startswith(w.lower() + " "):
                rel, body = w, body[len(w) + 1:]
                break
        if re.fullmatch(r"\d+(\.\d+)*", body):
            items[pos] = (rel, "BYREF", None, body, "")
            continue
        vt, body = body.split(":", 1)
        concept = None
        if body.startswith("("):
            concept, end = code_at(body, 0)
            body = body[end:]
        if not body.startswith("="):
            raise ValueError(f"unparsable dsrdump line: {line}")
        items[pos] = (rel, vt, concept, norm_value(vt, body[1:]), re.sub(r"\D", "", dt))
    return items


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", **kw)


def same_number(x, y):
    try:
        return x[1] == y[1] and float(x[0]) == float(y[0])
    except (ValueError, TypeError, IndexError):
        return False


def compare(name, ours_text, dsr_text, numeric_num=False):
    ours, theirs = parse_ours(ours_text), parse_dsrdump(dsr_text)
    if not theirs:
        return report(False, name, "dsrdump printed no tree")
    diffs = []
    for pos in sorted(set(ours) | set(theirs), key=lambda p: [int(x) for x in p.split(".")]):
        a, b = ours.get(pos), theirs.get(pos)
        if a is None or b is None:
            diffs.append(f"{pos}: only in {'dsrdump' if a is None else 'sr2fhir'}")
            continue
        for field, x, y in zip(("relationship", "value type", "concept", "value", "datetime"), a, b):
            if field == "datetime" and (not x or not y):
                continue
            if x != y and not (numeric_num and field == "value" and a[1] == "NUM" and same_number(x, y)):
                diffs.append(f"{pos} {field}: sr2fhir {x!r} vs dsrdump {y!r}")
    report(not diffs, name, "; ".join(diffs[:5]) + (f" (+{len(diffs) - 5} more)" if len(diffs) > 5 else ""))


def main():
    if not os.path.isdir(FILES):
        report(None, "corpus", f"{FILES} is absent (../shared not beside the checkout)")
        return 0
    have_dsrdump = run(["which", "dsrdump"]).returncode == 0
    names = sorted(os.listdir(FILES))
    for n in names:
        path = os.path.join(FILES, n)
        r = run([SR2FHIR, "dump", "-q", path])
        report(r.returncode == 0 and "\n1  CONTAINER" in r.stdout, f"reads:{n}",
               f"exit {r.returncode}: {r.stderr.strip()[:300]}")
        if not n.startswith("tid1500__"):
            continue
        if n.endswith(".json"):
            continue
        if not have_dsrdump:
            report(None, f"same-tree:{n}", "dsrdump not installed (apt-get install dcmtk)")
            continue
        d = run(DSRDUMP_ARGS + [path])
        compare(f"same-tree:{n}", r.stdout, d.stdout)

    # M1: the Part 10 and JSON copies of the dcmjs sample give the same tree.
    a = run([SR2FHIR, "dump", "-q", os.path.join(FILES, "tid1500__dcmjs__sample-sr.dcm")])
    b = run([SR2FHIR, "dump", "-q", os.path.join(FILES, "tid1500__dcmjs__sample-sr.json")])
    ta, tb = a.stdout.split("\n\n", 1)[-1], b.stdout.split("\n\n", 1)[-1]
    diff = [f"{x!r} vs {y!r}" for x, y in zip(ta.splitlines(), tb.splitlines()) if x != y]
    report(a.returncode == 0 and b.returncode == 0 and ta == tb and ta.count("\n") > 10,
           "json-equals-part10:dcmjs-sample", "; ".join(diff[:3]) or "dump failed")

    # The guide's JSON example has no Part 10 twin: pydicom writes one for dsrdump.
    example = os.path.join(FILES, "tid1500__hl7-handwritten__Example-MeasurementReport.json")
    py = os.environ.get("PYTHON", "/usr/bin/python3")
    if not have_dsrdump or run([py, "-c", "import pydicom"]).returncode != 0:
        report(None, "same-tree:hl7-example-json", "needs dsrdump and python3-pydicom")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "example.dcm")
            conv = run([py, os.path.join(ROOT, "tests", "corpus", "json2part10.py"), example, out])
            if conv.returncode != 0:
                report(False, "same-tree:hl7-example-json", "json2part10: " + conv.stderr[-300:])
            else:
                r = run([SR2FHIR, "dump", "-q", example])
                compare("same-tree:hl7-example-json", r.stdout, run(DSRDUMP_ARGS + [out]).stdout,
                        numeric_num=True)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
