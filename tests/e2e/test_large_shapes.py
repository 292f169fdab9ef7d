#!/usr/bin/python3
"""tests/e2e/test_large_shapes.py - large honest reports convert (issue 9 defect 1, M12-M22).

The old hash index bounded each lookup to 128 occupied slots and its hash's low bits were
weak for keys that differ in few bytes (item positions "1.6.N.7", "1.6.N"), so a report
of 2,000 measurement groups, each with an Observation UID and a SCOORD, exited 7 "too many
distinct resource keys share a hash". Each shape of tests/fixtures/gen_large.py (many
groups, many NUMs in one group, many distinct tracking UIDs, sites and algorithms), as
Part 10, deflated and DICOM JSON, must convert with exit 0 and exactly the resources the
generator counts; one shape also goes through the validator when ../shared has it.
Environment (tests/run.sh): ROOT, BUILD, SR2FHIR, SHARED, PYTHON.
"""
import collections
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import PYTHON, ROOT, SR2FHIR, report  # noqa: E402

GEN = os.path.join(ROOT, "tests", "fixtures", "gen_large.py")

# (case name, shape, groups, NUMs per group, format); sizes keep the test to seconds while
# staying far past what the old index refused (it failed from about 600 groups)
CASES = [
    ("groups-2000x2-part10", "groups", 2000, 2, "part10"),
    ("groups-2000x2-deflated", "groups", 2000, 2, "deflated"),
    ("groups-1000x2-json", "groups", 1000, 2, "json"),
    ("nums-1x6000-part10", "nums", 1, 6000, "part10"),
    ("distinct-3000x1-part10", "distinct", 3000, 1, "part10"),
    ("distinct-1000x1-json", "distinct", 1000, 1, "json"),
]
VALIDATE = "distinct-1000x1-json"
TYPES = {"Observation": "observations", "BodyStructure": "body_structures",
         "Device": "devices", "ImagingSelection": "imaging_selections"}

def counts(bundle_path):
    with open(bundle_path, encoding="utf-8") as f:
        bundle = json.load(f)
    c = collections.Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    return {key: c.get(t, 0) for t, key in TYPES.items()}


def one_case(tmp, name, shape, groups, nums, fmt):
    ext = ".json" if fmt == "json" else ".dcm"
    src = os.path.join(tmp, name + ext)
    gen = subprocess.run([PYTHON, GEN, "--shape", shape, "--groups", str(groups), "--nums", str(nums),
                          "--format", fmt, src], capture_output=True, text=True)
    if gen.returncode != 0:
        report(False, f"large:{name}", f"gen_large.py failed: {gen.stderr.strip()[-200:]}")
        return None
    expected = json.loads(gen.stdout)
    out = os.path.join(tmp, name + ".bundle.json")
    proc = subprocess.run([SR2FHIR, "convert", src, "-o", out], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        report(False, f"large:{name}", f"exit {proc.returncode}: {proc.stderr.strip()[:200]}")
        return None
    got = counts(out)
    want = {k: expected[k] for k in TYPES.values()}
    report(got == want, f"large:{name}", f"resources {got}, expected {want}")
    return out


def main():
    if not os.access(SR2FHIR, os.X_OK):
        report(False, "large:binary", f"{SR2FHIR} is not built")
        return 1
    harness.require_pydicom("large")
    validator = harness.VALIDATE
    with tempfile.TemporaryDirectory() as tmp:
        outs = {}
        for name, shape, groups, nums, fmt in CASES:
            outs[name] = one_case(tmp, name, shape, groups, nums, fmt)
        # the same report in three encodings gives the same bytes (M24: deterministic; the
        # random hash keys only place entries in memo tables)
        a, b = outs.get("groups-2000x2-part10"), outs.get("groups-2000x2-deflated")
        if a and b:
            same = open(a, "rb").read() == open(b, "rb").read()
            report(same, "large:part10-and-deflated-give-identical-bundles", "the Bundles differ")
            again = os.path.join(tmp, "again.json")
            subprocess.run([SR2FHIR, "convert", os.path.join(tmp, "groups-2000x2-part10.dcm"), "-o", again],
                           capture_output=True)
            report(os.path.exists(again) and open(a, "rb").read() == open(again, "rb").read(),
                   "large:second-conversion-byte-identical", "two runs gave different bytes")
        if not os.access(validator, os.X_OK):
            print(f"SKIP large:validator: {validator} is absent (../shared not beside the checkout)")
        elif outs.get(VALIDATE):
            proc = subprocess.run([validator, "--external-refs-ok", outs[VALIDATE]],
                                  capture_output=True, text=True, timeout=1200)
            errors = [l for l in proc.stdout.splitlines() if l.startswith("ERROR")]
            report(proc.returncode == 0, f"large:{VALIDATE}-validates",
                   f"exit {proc.returncode}: {errors[:3] or proc.stderr.strip()[-200:]}")
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
