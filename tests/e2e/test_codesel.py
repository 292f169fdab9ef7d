#!/usr/bin/python3
"""tests/e2e/test_codesel.py - issue 10 defects 1, 2 and 8, end to end with the CLI over the
fixtures of tests/fixtures/gen_codesel.py (generated into a temporary folder):

  10#1 Coding Scheme URL in Coding Scheme Resources Sequence, chosen by URL Type (M23)
  10#2 Source series for segmentation (DCM 121232) as a source-image-for-segmentation
       ImagingSelection the segment's selection focuses on (M19, M26)
  10#8 several Referenced Frame / Segment Numbers: one instance element per number (M19)

Every Bundle is also checked by ../shared/tools/fhir-validate when it is there (SKIP
otherwise). Prints PASS/FAIL/SKIP lines for tests/run.sh.
Environment: ROOT, BUILD, SR2FHIR, PYTHON (the python with pydicom), SHARED.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import SR2FHIR, VALIDATE, eq, out, test  # noqa: E402

R = "1.2.826.0.1.3680043.10.1500"            # tests/fixtures/generate.py identifiers
CT_SERIES, CT1, CT2, SEG = R + ".2.1", R + ".3.1", R + ".3.2", R + ".3.3"
OTHER_SOURCE_SERIES = R + ".2.301"
PROFILE = "http://hl7.org/fhir/uv/dicom-sr/StructureDefinition/"
DCM = "http://dicom.nema.org/resources/ontology/DCM"

TMP = tempfile.mkdtemp(prefix="sr2fhir-codesel-")
_cache = {}


def convert(name):
    """(Bundle dict, report dict, path of the Bundle) of fixture `name`."""
    if name not in _cache:
        src = os.path.join(TMP, name + ".dcm")
        dst = os.path.join(TMP, name + ".json")
        rep = os.path.join(TMP, name + ".report.json")
        p = subprocess.run([SR2FHIR, "convert", "-q", src, "-o", dst, "--report", rep],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert p.returncode == 0, "convert %s: exit %d: %s" % (name, p.returncode,
                                                               p.stderr.decode()[:300])
        _cache[name] = (json.load(open(dst)), json.load(open(rep)), dst)
    return _cache[name]


def resources(b, rtype, profile=None):
    return [e["resource"] for e in b.get("entry", [])
            if e["resource"]["resourceType"] == rtype and
            (profile is None or PROFILE + profile in e["resource"].get("meta", {}).get("profile", []))]


def full_url(b, res):
    for e in b["entry"]:
        if e["resource"] is res:
            return e["fullUrl"]
    raise AssertionError("resource not in the Bundle")


def by_url(b, url):
    for e in b["entry"]:
        if e["fullUrl"] == url:
            return e["resource"]
    raise AssertionError("reference %r does not resolve in the Bundle" % url)


def codings_of(b):
    """{(code): system} of every Coding in the Bundle."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            if "code" in node and "system" in node and isinstance(node["code"], str):
                found.setdefault(node["code"], set()).add(node["system"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(b)
    return found


# ---- 10#1: Coding Scheme URL --------------------------------------------------------------

def t_scheme_url_nested_fhir_type_wins():
    b, _, _ = convert("codesel_scheme_url")
    c = codings_of(b)
    # 99NEST declares DOC, untyped, OWL and FHIR URLs in Coding Scheme Resources Sequence
    eq(c.get("N1"), {"http://example.org/fhir/CodeSystem/nest"}, "N1 system")
    eq(c.get("N2"), {"http://example.org/fhir/CodeSystem/nest"}, "N2 system")


def t_scheme_url_nested_doc_alone():
    b, _, _ = convert("codesel_scheme_url")
    eq(codings_of(b).get("D1"), {"http://example.org/doc/doconly.html"}, "D1 system")


def t_scheme_url_flat_form_still_read():
    b, _, _ = convert("codesel_scheme_url")
    eq(codings_of(b).get("F1"), {"http://example.org/flat"}, "F1 system")


def t_scheme_url_no_fallback_codes():
    _, rep, _ = convert("codesel_scheme_url")
    eq(rep["files"][0]["fallbackCodes"], 0, "fallbackCodes")


# ---- 10#2: Source series for segmentation ------------------------------------------------

def source_selection_of(b, segment):
    """The selection a segment's focus names that has the source-image profile or code."""
    found = []
    for f in segment.get("focus", []):
        r = by_url(b, f["reference"])
        codes = [c.get("code") for c in r.get("code", {}).get("coding", [])]
        if "121233" in codes or "121232" in codes:
            found.append(r)
    return found


def segments_by_subset(b):
    return {s["instance"][0]["subset"][0]: s for s in resources(b, "ImagingSelection",
                                                                   "referenced-segment")}


def t_source_series_with_evidence_instances():
    b, _, _ = convert("codesel_source_series")
    seg = segments_by_subset(b)["1"]
    src = source_selection_of(b, seg)
    eq(len(src), 1, "source selections in the segment's focus")
    s = src[0]
    eq(s.get("meta", {}).get("profile"), [PROFILE + "source-image-for-segmentation"], "profile")
    eq(s.get("seriesUid"), CT_SERIES, "seriesUid")
    eq(sorted(i["uid"] for i in s.get("instance", [])), [CT1, CT2], "instances from the evidence")
    eq([(c["system"], c["code"]) for c in s["code"]["coding"]], [(DCM, "121233")], "code")


def t_source_series_without_evidence_instances():
    b, _, _ = convert("codesel_source_series")
    seg = segments_by_subset(b)["2"]
    src = source_selection_of(b, seg)
    eq(len(src), 1, "source selections in the segment's focus")
    s = src[0]
    assert "meta" not in s or not s["meta"].get("profile"), "no profile: it has no instances"
    eq(s.get("seriesUid"), OTHER_SOURCE_SERIES, "seriesUid")
    assert "instance" not in s, "no instance"
    eq([(c["system"], c["code"]) for c in s["code"]["coding"]], [(DCM, "121232")], "code")


def t_source_series_not_unmapped():
    _, rep, _ = convert("codesel_source_series")
    left = [u for u in rep["files"][0]["unmapped"] if "121232" in u]
    eq(left, [], "121232 items listed as unmapped")


# ---- 10#8: several frames / segments ----------------------------------------------------

def t_segmentation_frames_one_instance_per_frame():
    b, _, _ = convert("codesel_seg_frames")
    s = resources(b, "ImagingSelection", "referenced-segmentation-frame")
    eq(len(s), 1, "referenced-segmentation-frame selections")
    inst = s[0]["instance"]
    eq([(i["uid"], i["subset"]) for i in inst], [(SEG, ["3"]), (SEG, ["4"])], "instances")
    eq({i["sopClass"]["code"] for i in inst}, {"1.2.840.10008.5.1.4.1.1.66.4"}, "sopClass")


def t_segments_one_instance_per_segment():
    b, _, _ = convert("codesel_seg_frames")
    s = resources(b, "ImagingSelection", "referenced-segment")
    eq(len(s), 1, "referenced-segment selections")
    eq([(i["uid"], i["subset"]) for i in s[0]["instance"]], [(SEG, ["1"]), (SEG, ["2"])],
       "instances")


# ---- validator ----------------------------------------------------------------------------

def validator_case(name):
    def run():
        _, _, path = convert(name)
        p = harness.validator(path, "--external-refs-ok")
        assert p.returncode == 0, (p.stdout + p.stderr).decode()[-600:]
    return run


def main():
    p = harness.run_fixture_script("gen_codesel.py", TMP)
    if p.returncode != 0:
        out("FAIL codesel_fixtures: gen_codesel.py exit %d: %s" % (p.returncode,
                                                                  p.stderr.decode()[-300:]))
        return 1
    test("issue10_1_m23_scheme_url_nested_fhir_type_wins", t_scheme_url_nested_fhir_type_wins)
    test("issue10_1_m23_scheme_url_nested_doc_alone", t_scheme_url_nested_doc_alone)
    test("issue10_1_m23_scheme_url_flat_form_still_read", t_scheme_url_flat_form_still_read)
    test("issue10_1_m23_scheme_url_no_fallback_codes", t_scheme_url_no_fallback_codes)
    test("issue10_2_m19_source_series_with_evidence_instances",
         t_source_series_with_evidence_instances)
    test("issue10_2_m19_source_series_without_evidence_instances",
         t_source_series_without_evidence_instances)
    test("issue10_2_m26_source_series_not_unmapped", t_source_series_not_unmapped)
    test("issue10_8_m19_segmentation_frames_one_instance_per_frame",
         t_segmentation_frames_one_instance_per_frame)
    test("issue10_8_m19_segments_one_instance_per_segment", t_segments_one_instance_per_segment)
    for name in ("codesel_scheme_url", "codesel_source_series", "codesel_seg_frames"):
        if not os.path.exists(VALIDATE):
            out("SKIP issue10_validator_clean_%s: %s absent" % (name, VALIDATE))
        else:
            test("issue10_validator_clean_%s" % name, validator_case(name))
    return harness.exit_code()


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(rc)
