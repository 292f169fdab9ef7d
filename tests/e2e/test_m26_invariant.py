#!/usr/bin/env python3
"""Issue 10 #5 (M26, nothing silently lost): for every corpus file (../shared/corpus/files),
the guide's example and every project fixture (tests/fixtures/*.py), in R5 and R4 form,
every content item position of `sr2fhir dump` is exactly once either mapped by a rule
("consumed" of the test-only --trace-consumed) or listed in the conversion report
("unmapped" of --report).

Then the fixture m26_context.dcm (tests/fixtures/gen_context.py): the context items no rule
maps (Time Point, Activity Session, Observer Organization, a second Tracking Identifier),
the children of Finding, Finding Category, Measurement Method, tracking id and a component
(e.g. a severity under a Finding), the SCOORD3D region R5 cannot hold and, in R4, the
BodyStructure laterality and the image reference are listed, each at its position.
Prints PASS/FAIL/SKIP lines for tests/run.sh.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import ROOT, SHARED, SR2FHIR, report  # noqa: E402

PY = "/usr/bin/python3"
# every fixture script that takes an OUTDIR (gen_large.py makes one file of a given size:
# a small one is generated below)
FIXTURE_SCRIPTS = ["generate.py"] + sorted(
    os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "tests", "fixtures", "gen_*.py"))
    if not p.endswith("gen_large.py"))


def positions(path):
    """The content item positions of `sr2fhir dump` (its lines "1.4.2  ...")."""
    r = subprocess.run([SR2FHIR, "dump", path], capture_output=True, text=True, errors="replace")
    if r.returncode:
        return None
    return [m.group(1) for m in (re.match(r"^(\d+(?:\.\d+)*)  ", l) for l in r.stdout.splitlines()) if m]


def convert_all(files, outdir, form, trace=True):
    """{input: report entry} of one `sr2fhir convert` over all files."""
    rep = os.path.join(outdir, f"report-{form}.json")
    args = [SR2FHIR, "convert", "-q", "--fhir-version", form, "--report", rep,
            "-o", os.path.join(outdir, form) + "/"]
    if trace:
        args.append("--trace-consumed")
    os.makedirs(os.path.join(outdir, form), exist_ok=True)
    r = subprocess.run(args + ["--"] + files, capture_output=True, text=True)
    if not os.path.exists(rep):
        return None, r.stderr.strip()
    return {f["input"]: f for f in json.load(open(rep))["files"]}, ""


def first_token(lines):
    return [l.split(" ", 1)[0] for l in lines]


def inputs(tmp):
    files = sorted(glob.glob(os.path.join(SHARED, "corpus", "files", "*")))
    example = os.path.join(SHARED, "ig", "dicom", "Example-MeasurementReport.json")
    if os.path.exists(example):
        files.append(example)
    fx = os.path.join(tmp, "fixtures")
    for script in FIXTURE_SCRIPTS:
        r = subprocess.run([PY, os.path.join(ROOT, "tests", "fixtures", script), fx],
                           capture_output=True, text=True)
        if r.returncode:
            report(False, f"m26-invariant:fixtures:{script}", r.stderr.strip()[-300:])
    large = os.path.join(fx, "large_small.dcm")
    subprocess.run([PY, os.path.join(ROOT, "tests", "fixtures", "gen_large.py"), large, "200"],
                   capture_output=True, text=True)
    files += sorted(glob.glob(os.path.join(fx, "*.dcm")) + glob.glob(os.path.join(fx, "*.json")))
    return files


def check_invariant(files, tmp):
    """Issue 10 #5: mapped + listed = all positions, each once, R5 and R4."""
    for form in ("R5", "R4"):
        entries, why = convert_all(files, tmp, form)
        if entries is None:
            report(False, f"m26-invariant:{form}", f"no conversion report: {why}")
            continue
        checked, bad = 0, []
        for f in files:
            e = entries.get(f)
            if not e or e["status"] != "converted":
                continue  # not a TID 1500 report (the corpus's negatives): nothing to map
            all_pos = positions(f)
            if all_pos is None:
                bad.append(f"{os.path.basename(f)}: dump failed")
                continue
            if "consumed" not in e:
                bad.append(f"{os.path.basename(f)}: no consumed list (--trace-consumed)")
                continue
            seen = first_token(e["consumed"]) + first_token(e["unmapped"])
            dupes = sorted({p for p in seen if seen.count(p) > 1})
            missing = sorted(set(all_pos) - set(seen))
            extra = sorted(set(seen) - set(all_pos))
            if dupes or missing or extra or len(seen) != len(all_pos):
                bad.append(f"{os.path.basename(f)}: neither mapped nor listed {missing[:5]}, "
                           f"twice {dupes[:5]}, unknown {extra[:5]}")
            checked += 1
        report(not bad and checked > 0, f"m26-invariant:issue10-5:{form}:{checked}-files",
               "; ".join(bad[:4]) or "no file converted")


# The positions of m26_context.dcm that must be listed (gen_context.py's comments).
LISTED_R5 = {
    "1.5": "Observer Organization (DCM 121009): R5 Practitioner has no place for it",
    "1.6": "root-level Time Point (UMLS C2348792)",
    "1.7.1.1.1": "a child of the Tracking Identifier",
    "1.7.1.2": "a second Tracking Identifier",
    "1.7.1.3": "Activity Session (NCIt C67447)",
    "1.7.1.4": "group-level Time Point",
    "1.7.1.5.1": "a severity modifier under the Finding",
    "1.7.1.6.1": "a child of the Finding Category",
    "1.7.1.7.1": "a child of the Measurement Method",
    "1.7.1.9": "the SCOORD3D Image Region: R5 cannot hold its coordinates",
    "1.7.1.10.1.1": "a child of a NUM's component",
}
LISTED_R4 = dict(LISTED_R5, **{"1.7.1.8.1": "laterality: R4 has no BodyStructure (M25)"})


def check_context_fixture(tmp):
    f = os.path.join(tmp, "fixtures", "m26_context.dcm")
    if not os.path.exists(f):
        report(False, "m26-context", "fixture not generated")
        return
    for form, want in (("R5", LISTED_R5), ("R4", LISTED_R4)):
        d = os.path.join(tmp, "ctx")
        os.makedirs(d, exist_ok=True)
        entries, why = convert_all([f], d, form, trace=False)
        e = (entries or {}).get(f)
        if not e or e["status"] != "converted":
            report(False, f"m26-context:{form}", f"did not convert: {why or e}")
            continue
        listed = set(first_token(e["unmapped"]))
        for pos, what in want.items():
            report(pos in listed, f"m26-context:issue10-5:{form}:{pos}-listed",
                   f"{what} is consumed silently (M26)")
        report(listed == set(want), f"m26-context:issue10-5:{form}:nothing-else-listed",
               f"listed {sorted(listed - set(want))} as well")


def main():
    if not os.path.isdir(os.path.join(SHARED, "corpus", "files")):
        report(None, "m26-invariant:corpus", f"{SHARED}/corpus is absent (../shared not beside the checkout)")
    with tempfile.TemporaryDirectory() as tmp:
        files = inputs(tmp)
        check_context_fixture(tmp)
        check_invariant(files, tmp)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
