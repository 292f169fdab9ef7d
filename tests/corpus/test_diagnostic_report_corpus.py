#!/usr/bin/python3
"""tests/corpus/test_diagnostic_report_corpus.py - issue 15 over the real files of
../shared/corpus: `sr2fhir convert --diagnostic-report` for every TID 1500 corpus file, in
R5 and R4:
  - the Bundle is the Bundle without the option plus one last entry, a DiagnosticReport
    (the bytes before it identical);
  - its result is exactly the group, derived and document-level Observations (those no
    group's hasMember names), in Bundle order; every reference resolves to an earlier entry;
  - code DCM 126000, status the Observations' (M8), subject the Observations', study (R5) /
    imagingStudy (R4) the Observations' partOf ImagingStudy;
  - R5: ../shared/tools/fhir-validate reports no error (and does report one for a broken
    DiagnosticReport: the check can fail); R4: only elements FHIR R4 DiagnosticReport has;
  - the conversion report and summary count the DiagnosticReports;
  - the guide's own example SR gives the guide's example DiagnosticReport's code and status
    (../shared/ig/generated/DiagnosticReport-dicom-sr-measurement-report.json).
SKIP when ../shared is absent (the validator cases when the validator is).
Prints PASS/FAIL/SKIP lines for tests/run.sh.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import SHARED, SR2FHIR, VALIDATE, eq, test  # noqa: E402

FILES = os.path.join(SHARED, "corpus", "files")
GUIDE_SR = "tid1500__hl7-handwritten__Example-MeasurementReport.json"
GUIDE_DR = os.path.join(SHARED, "ig", "generated", "DiagnosticReport-dicom-sr-measurement-report.json")
PROFILE = "http://hl7.org/fhir/uv/dicom-sr/StructureDefinition/"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
# The elements of FHIR R4 (4.0.1) DiagnosticReport.
R4_ELEMENTS = {"resourceType", "id", "meta", "implicitRules", "language", "text", "contained",
               "extension", "modifierExtension", "identifier", "basedOn", "status", "category",
               "code", "subject", "encounter", "effectiveDateTime", "effectivePeriod", "issued",
               "performer", "resultsInterpreter", "specimen", "result", "imagingStudy", "media",
               "conclusion", "conclusionCode", "presentedForm"}


def convert(src, dst, *opts):
    p = subprocess.run([SR2FHIR, "convert", "-q", *opts, src, "-o", dst],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 0, "convert %s: exit %d: %s" % (opts, p.returncode,
                                                           harness.short(p.stderr.decode()))
    with open(dst, "rb") as f:
        return f.read()


def profile_of(r):
    return (r.get("meta", {}).get("profile") or [""])[0]


def expected_result(entries):
    """fullUrls of the group, derived and document-level Observations, in Bundle order."""
    obs = [e for e in entries if e["resource"]["resourceType"] == "Observation"]
    members = {m["reference"] for e in obs for m in e["resource"].get("hasMember", [])}
    want = []
    for e in obs:
        r = e["resource"]
        p = profile_of(r)
        if p.endswith("imaging-measurement-group") or p.endswith("derived-imaging-measurement"):
            want.append(e["fullUrl"])
        elif p.endswith("imaging-qualitative-evaluation") and e["fullUrl"] not in members:
            want.append(e["fullUrl"])
    return want


def expected_result_r4(entries, r5_want, r5_entries):
    """R4 has no meta.profile: the same Observations by fullUrl (ids do not change)."""
    urls = {e["fullUrl"] for e in entries}
    return [u for u in r5_want if u in urls]


def check_bundle(name, plain, with_dr, r4, r5_entries=None):
    """The checks every form shares; returns the parsed Bundle."""
    keep = plain.rstrip(b" \n]}")
    assert with_dr.startswith(keep) and len(with_dr) > len(plain), \
        "%s: the Bundle without the option is not a prefix of the one with it" % name
    b0, b = json.loads(plain), json.loads(with_dr)
    entries = b["entry"]
    eq(entries[:-1], b0["entry"], "%s: the entries before the DiagnosticReport" % name)
    last = entries[-1]
    dr = last["resource"]
    eq(dr["resourceType"], "DiagnosticReport", "%s: last entry" % name)
    eq(sum(e["resource"]["resourceType"] == "DiagnosticReport" for e in entries), 1,
       "%s: DiagnosticReports" % name)
    eq(last["fullUrl"], "urn:uuid:" + dr["id"], "%s: fullUrl" % name)
    eq(last.get("request"), {"method": "PUT", "url": "DiagnosticReport/" + dr["id"]},
       "%s: request" % name)
    eq(dr["code"], {"coding": [{"system": DCM, "code": "126000",
                                "display": "Imaging Measurement Report"}]}, "%s: code" % name)
    obs = [e["resource"] for e in entries if e["resource"]["resourceType"] == "Observation"]
    eq({o["status"] for o in obs}, {dr["status"]}, "%s: status (M8) as the Observations'" % name)
    eq(dr["subject"], obs[0]["subject"], "%s: subject as the Observations'" % name)
    study = [p for p in obs[0].get("partOf", []) if p.get("type") == "ImagingStudy"]
    eq(dr.get("imagingStudy" if r4 else "study"), study or None, "%s: study" % name)
    assert ("study" if r4 else "imagingStudy") not in dr, "%s: both study forms" % name
    want = expected_result(entries) if not r4 else expected_result_r4(
        entries, expected_result(r5_entries), r5_entries)
    eq([x["reference"] for x in dr.get("result", [])], want, "%s: result" % name)
    earlier = {e["fullUrl"] for e in entries[:-1]}
    for key in ("result", "performer"):
        for x in dr.get(key, []):
            assert x["reference"] in earlier, "%s: %s %s resolves to no earlier entry" % (
                name, key, x["reference"])
    for x in dr.get("performer", []):
        target = [e["resource"] for e in entries if e["fullUrl"] == x["reference"]][0]
        eq(target["resourceType"], "Practitioner", "%s: performer type" % name)
    return b


def main():
    if not os.path.isdir(FILES):
        print("SKIP issue15_corpus: %s absent" % FILES)
        return 0
    harness.require_sr2fhir("issue15_corpus")
    tmp = tempfile.mkdtemp(prefix="sr2fhir-dr15-")
    names = sorted(n for n in os.listdir(FILES) if n.startswith("tid1500__"))
    have_validator = os.path.exists(VALIDATE) and shutil.which("node") is not None
    r5_bundles = {}
    try:
        for name in names:
            src = os.path.join(FILES, name)
            out = os.path.join(tmp, name)

            def t_r5(name=name, src=src, out=out):
                plain = convert(src, out + ".plain.json")
                with_dr = convert(src, out + ".r5.json", "--diagnostic-report")
                r5_bundles[name] = check_bundle(name, plain, with_dr, False)
                if not have_validator:
                    return
                v = harness.validator(out + ".r5.json", "--external-refs-ok")
                text = (v.stdout + v.stderr).decode("utf-8", "replace")
                assert v.returncode == 0, "validator: " + harness.short(text[-600:], 600)
                assert " 0 failed" in text, "validator summary: " + harness.short(text[-200:])

            def t_r4(name=name, src=src, out=out):
                if name not in r5_bundles:
                    raise harness.SkipTest("the R5 case failed")
                plain = convert(src, out + ".plain4.json", "--fhir-version", "R4")
                with_dr = convert(src, out + ".r4.json", "--fhir-version", "R4",
                                  "--diagnostic-report")
                b = check_bundle(name, plain, with_dr, True, r5_bundles[name]["entry"])
                dr = b["entry"][-1]["resource"]
                extra = set(dr) - R4_ELEMENTS
                assert not extra, "elements R4 DiagnosticReport lacks: %s" % sorted(extra)
                eq(dr["id"], r5_bundles[name]["entry"][-1]["resource"]["id"], "id R4 = R5")

            test("issue15_corpus_r5 %s: DiagnosticReport last, result/status/subject/study as "
                 "the Observations', validator-clean" % name, t_r5)
            test("issue15_corpus_r4 %s: the R4 form (imagingStudy, R4 elements only)" % name, t_r4)

        def t_validator_can_fail():
            if not have_validator:
                raise harness.SkipTest("no validator (%s) or no node" % VALIDATE)
            if not r5_bundles:
                raise harness.SkipTest("no R5 Bundle")
            name = sorted(r5_bundles)[0]
            b = json.loads(json.dumps(r5_bundles[name]))
            dr = b["entry"][-1]["resource"]
            dr["status"] = "done"
            dr["result"] = dr.get("result", []) + [
                {"reference": "urn:uuid:00000000-0000-5000-8000-000000000000"}]
            path = os.path.join(tmp, "broken.json")
            with open(path, "w") as f:
                json.dump(b, f)
            v = harness.validator(path, "--external-refs-ok")
            text = v.stdout.decode("utf-8", "replace")
            eq(v.returncode, 1, "validator exit on a broken DiagnosticReport")
            assert "DiagnosticReport.status" in text and "unresolved reference" in text, \
                "validator did not name both faults: " + harness.short(text[-400:])

        test("issue15_corpus_validator_catches_a_broken_report: bad status and a dangling "
             "result reference are errors", t_validator_can_fail)

        def t_report_counts():
            rep = os.path.join(tmp, "report.json")
            srcs = [os.path.join(FILES, n) for n in names]
            p = subprocess.run([SR2FHIR, "convert", "--diagnostic-report", *srcs, "-o",
                                os.path.join(tmp, "folder"), "--report", rep],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
            eq(p.returncode, 0, "exit code")
            r = json.load(open(rep))
            eq(r["summary"]["DiagnosticReport"], len(names), "summary DiagnosticReport")
            eq([f["resources"]["DiagnosticReport"] for f in r["files"]], [1] * len(names),
               "per file")
            assert (", %d DiagnosticReport;" % len(names)) in p.stderr.decode(), \
                "summary line: " + harness.short(p.stderr.decode()[-300:])
            p = subprocess.run([SR2FHIR, "convert", *srcs, "-o", os.path.join(tmp, "folder0"),
                                "--report", rep], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=300)
            r = json.load(open(rep))
            assert "DiagnosticReport" not in r["summary"] and "DiagnosticReport" not in \
                r["files"][0]["resources"], "without the option the report names none"
            assert "DiagnosticReport" not in p.stderr.decode(), "summary without the option"

        def t_guide_example():
            if not os.path.exists(GUIDE_DR) or GUIDE_SR not in r5_bundles:
                raise harness.SkipTest("no %s or no Bundle of %s" % (GUIDE_DR, GUIDE_SR))
            guide = json.load(open(GUIDE_DR))
            ours = r5_bundles[GUIDE_SR]["entry"][-1]["resource"]
            eq(ours["code"], guide["code"], "code")
            eq(ours["status"], guide["status"], "status (COMPLETE + VERIFIED: final)")
            eq(ours["subject"].get("type"), "Patient", "subject type (the guide: a Patient)")
            assert not set(guide) - set(ours) - {"id", "text"}, \
                "elements of the guide's example we lack: %s" % sorted(set(guide) - set(ours))

        test("issue15_corpus_guide_example: the guide's example SR gives the code, status and "
             "elements of the guide's example DiagnosticReport", t_guide_example)

        test("issue15_corpus_report_counts: --report and the summary count one "
             "DiagnosticReport per SR (none named without the option)", t_report_counts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
