#!/usr/bin/env python3
"""Issue 3: the guide's own example report (../shared/ig/dicom/Example-MeasurementReport.json)
converts into resources that match the guide's example instances (../shared/ig/generated):
the measurement group, measurements 001-003, qualitative evaluations 001-002, the equipment
and algorithm Devices, the BodyStructure and the referenced-segment ImagingSelection.

Both sides are flattened to leaf paths and compared element by element. References are
compared by what they point at (our urn:uuid fullUrls are mapped back to the guide's ids).
Every difference must match an entry of DELIBERATE exactly (resource, leaf path, our value,
the guide's value), which names the MAPPING rule or the fact behind it; anything else fails.
Issue 10 #10: the entries used to be path prefixes that hid whole elements (derivedFrom,
identifier, performer, bodySite, focus); MUTATIONS now prove that deleting or changing what
we map makes the comparison fail. Prints PASS/FAIL/SKIP lines for tests/run.sh.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import SHARED, SR2FHIR, report  # noqa: E402

IG = os.path.join(SHARED, "ig")

# Every deliberate difference is named exactly (issue 10 #10): which resources, the exact leaf
# path, the value sr2fhir writes there and the value the guide's instance holds (ABSENT: the
# element is not there), with the rule or fact behind it. A difference with any other path or
# value fails, so deleting or changing a mapped element is caught (see the mutation checks).
ABSENT = None
OBS = r"Observation/.*"
ALL_WITH_CONTEXT = r"Observation/.*|ImagingSelection/.*"
STUDY_UID = "1.2.840.113747.20080222.83311413144566317081790268995"
WHEN = "2019-03-23T08:24:28+00:00"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def logical(resources, prefix, rtype, ident, guide_target, reason):
    """A reference the guide writes literally (prefix.reference = guide_target) and sr2fhir
    writes by identifier (prefix.type, prefix.identifier.*): one exact entry per leaf."""
    ours = {f"{prefix}.type": rtype}
    ours.update({f"{prefix}.identifier.{k}": v for k, v in ident.items()})
    # the guide's literal reference is excused only where ours holds the logical one
    rows = [(resources, f"{prefix}.reference", ABSENT, guide_target, reason, ours)]
    rows += [(resources, path, v, ABSENT, reason) for path, v in ours.items()]
    return rows


PATIENT_ID = {"system": "test-hospital.org", "value": "PID-11235", "assigner.display": "Test Hospital"}
STUDY_ID = {"system": "urn:dicom:uid", "value": f"urn:oid:{STUDY_UID}",
            "type.coding[0].system": DCM, "type.coding[0].code": "110180",
            "type.coding[0].display": "Study Instance UID"}
ACSN_ID = {"system": "http://test-hospital.org/acsn", "value": "ACSN-235813",
           "type.coding[0].system": V2_0203, "type.coding[0].code": "ACSN",
           "type.coding[0].display": "Accession ID"}
M4 = ("M4: the Patient is referenced by identifier (Patient ID + issuer), not by a literal "
      "reference to a resource the converter does not create")
M5 = "M5: the ImagingStudy is referenced by Study Instance UID identifier"
M6 = "M6: the ServiceRequest is referenced by accession number identifier"
SEG = "ImagingSelection/measurement-report-referenced-segment"
GUIDE_SEG_STUDY = "1.2.840.113747.20080222.83341314456631405221767081790268995"

DELIBERATE = (
    logical(ALL_WITH_CONTEXT, "subject", "Patient", PATIENT_ID, "Patient/measurement-report-patient", M4)
    + logical(r"BodyStructure/.*", "patient", "Patient", PATIENT_ID, "Patient/measurement-report-patient", M4)
    + logical(ALL_WITH_CONTEXT, "basedOn[0]", "ServiceRequest", ACSN_ID,
              "ServiceRequest/measurement-report-service-request", M6)
    + logical(OBS, "partOf[0]", "ImagingStudy", STUDY_ID, "ImagingStudy/measurement-report-imaging-study", M5)
    + logical(SEG, "derivedFrom[0]", "ImagingStudy", STUDY_ID, "ImagingStudy/measurement-report-imaging-study",
              "M5: an ImagingSelection's ImagingStudy is referenced by Study Instance UID identifier")
    + [
        (r".*", "id", lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f-]{36}", v), lambda v: True,
         "ids are deterministic UUIDs (M24)"),
        (r".*", "text.status", ABSENT, "generated", "narrative is not generated"),
        (r".*", "text.div", ABSENT, lambda v: isinstance(v, str), "narrative is not generated"),
        (r"Practitioner/.*", "meta.profile[0]",
         "http://hl7.org/fhir/uv/dicom-sr/StructureDefinition/dicom-participant-person", ABSENT,
         "M10: the person observer's Practitioner claims the guide's participant-person profile"),
        (OBS, "issued", WHEN, "2024-07-24T08:23:42+00:00",
         "M9: the instant comes from the report (2019-03-23 Content Date/Time, UTC); the guide's "
         "instances carry an unrelated 2024 date"),
        (OBS, "effectiveDateTime", WHEN, "2024-07-24T08:23:42+00:00", "M9: as issued"),
        ("Observation/imaging-measurement-group", "derivedFrom[1].reference", ABSENT,
         "ImagingSelection/measurement-report-source-sr-content-item",
         "the guide's group also cites the SR content item itself; the report has no Source SR "
         "content item reference for the group, so sr2fhir cites only the segment"),
        ("Observation/imaging-measurement-001", "valueQuantity.value", 31112.2, 6705.54990898997,
         "M20: the value is the report's Numeric Value (3.111220E+04); the guide's instance holds another number"),
        ("Observation/imaging-measurement-002", "valueQuantity.value", 49.94462, 6705.54990898997,
         "M20: the value is the report's Numeric Value (4.994462E+01); the guide's instance holds another number"),
        ("Observation/imaging-measurement-003", "device.reference", "Device/measurement-report-algorithm",
         "Device/measurement-report-general-equipment",
         "M22: the report gives this NUM (1.4.1.11, Body surface area) its own Algorithm "
         "Identification (pylidc 0.2.0), so its device is that algorithm; the guide's instance "
         "points at the equipment, unlike 001 and 002 which carry the same algorithm"),
        (r"Observation/qualitative-evaluation-00[12]", "valueCodeableConcept.coding[0].system",
         "urn:sr2fhir:coding-scheme:99LIDCQIICR", "http://cancerimagingarchive.net",
         "M23: the private scheme 99LIDCQIICR is declared by no Coding Scheme Identification "
         "Sequence in the report; the guide hand-picks http://cancerimagingarchive.net, sr2fhir "
         "uses its documented fallback"),
        ("Observation/qualitative-evaluation-002", "code.coding[0].display", "Malignancy", ABSENT,
         "the report's Code Meaning is written as display; the guide's instance 002 omits it"),
        ("Device/measurement-report-general-equipment", "identifier[0].value",
         f"urn:oid:{STUDY_UID}.8888", f"{STUDY_UID}.8888",
         "M7: the Device UID as urn:oid: (the identifier's system is urn:dicom:uid); the guide writes the bare UID"),
        ("Device/measurement-report-general-equipment", "udiCarrier[0].carrierHRF", ABSENT,
         "{01}00844588003288{17}141120{10}7654321D{21}10987654d329",
         "M7: the report has no UDI Sequence; the guide's instance invents one"),
        ("Device/measurement-report-general-equipment", "udiCarrier[0].deviceIdentifier", ABSENT,
         "00844588003288", "M7: as carrierHRF"),
        ("Device/measurement-report-general-equipment", "udiCarrier[0].issuer", ABSENT,
         "http://hl7.org/fhir/NamingSystem/gs1", "M7: as carrierHRF"),
        ("BodyStructure/measurement-report-finding-site", "includedStructure[0].structure.coding[0].code",
         "39607008", "44029006", "M18: the finding site as the report codes it (39607008 Lung); "
         "the guide's instance uses 44029006 Left lung structure"),
        ("BodyStructure/measurement-report-finding-site", "includedStructure[0].structure.coding[0].display",
         "Lung", "Left lung structure", "M18: as the code"),
        (SEG, "bodySite.reference.reference", ABSENT, "BodyStructure/measurement-report-finding-site",
         "M18: the finding site is referenced from the Observations; the selection's bodySite is optional"),
        (SEG, "focus[0].reference", ABSENT,
         "ImagingSelection/measurement-report-source-image-for-segmentation",
         "issue 10 #2: the report's Source series for segmentation UID has 66 characters, more "
         "than an id/seriesUid may hold, so no source selection is made (listed as unmapped, M26)"),
        (SEG, "focus[1].reference", ABSENT, "ImagingSelection/measurement-report-source-sr-content-item",
         "the report makes no Source SR content item reference (TID 1501 row)"),
        (SEG, "instance[0].uid", f"{STUDY_UID}.2.1", f"{GUIDE_SEG_STUDY}.2.1",
         "M19: the report's own Referenced Segment SOP Instance UID; the guide's instance uses another"),
        (SEG, "seriesUid", ABSENT, f"{GUIDE_SEG_STUDY}.2",
         "M19: the report's evidence does not give the SEG instance's series"),
        (SEG, "studyUid", STUDY_UID, ABSENT, "M19: the SEG instance's study from the report's evidence"),
    ])

def flatten(node, path="", out=None):
    out = {} if out is None else out
    if isinstance(node, dict):
        for k, v in node.items():
            flatten(v, f"{path}.{k}" if path else k, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            flatten(v, f"{path}[{i}]", out)
    else:
        out[path] = node
    return out


def matches(want, value):
    return want(value) if callable(want) else value == want


def must_have(resource):
    """(path, value) our resource must hold: the entries where the guide has nothing, so a
    missing element would compare equal and slip through."""
    return [(p, want) for resources, p, want, want_guide, *_ in DELIBERATE
            if want_guide is ABSENT and want is not ABSENT and not callable(want)
            and re.fullmatch(resources, resource)]


def deliberate(resource, path, ours, guide, mine):
    """The reason when this exact difference is one of DELIBERATE (and ours holds what the
    entry requires beside it), else None. mine: our resource, flattened."""
    for resources, p, want_ours, want_guide, reason, *requires in DELIBERATE:
        if p == path and re.fullmatch(resources, resource) and matches(want_ours, ours) \
                and matches(want_guide, guide) \
                and all(mine.get(k) == v for k, v in (requires[0] if requires else {}).items()):
            return reason
    return None


def profile(res):
    return res.get("meta", {}).get("profile", [""])[0].rsplit("/", 1)[-1]


def code(res):
    return res.get("code", {}).get("coding", [{}])[0].get("code")


def load_guide():
    guide = {}
    for name in os.listdir(os.path.join(IG, "generated")):
        if name.endswith(".json"):
            g = json.load(open(os.path.join(IG, "generated", name)))
            guide[f"{g['resourceType']}/{g['id']}"] = g
    return guide


def compare(bundle, guide):
    """{guide instance: [undeclared differences]} for each resource pair; None: ours is missing."""
    ours = [e["resource"] for e in bundle["entry"]]
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}

    def find(prof, c=None):
        hits = [x for x in ours if profile(x) == prof and (c is None or code(x) == c)]
        return hits[0] if hits else None

    pairs = {
        "Observation/imaging-measurement-group": find("imaging-measurement-group"),
        "Observation/imaging-measurement-001": find("imaging-measurement", "118565006"),
        "Observation/imaging-measurement-002": find("imaging-measurement", "81827009"),
        "Observation/imaging-measurement-003": find("imaging-measurement", "301898006"),
        "Observation/qualitative-evaluation-001": find("imaging-qualitative-evaluation", "C45992"),
        "Observation/qualitative-evaluation-002": find("imaging-qualitative-evaluation", "RID36042"),
        "Device/measurement-report-general-equipment": find("dicom-general-equipment"),
        "Device/measurement-report-algorithm": find("algorithm-identification"),
        "Practitioner/measurement-report-practitioner": find("dicom-participant-person"),
        "BodyStructure/measurement-report-finding-site": find("dicom-sr-finding-site"),
        "ImagingSelection/measurement-report-referenced-segment": find("referenced-segment"),
    }
    # our fullUrl -> the guide's Type/id, so references compare by target
    name_of = {}
    for gname, res in pairs.items():
        if res:
            for url, r2 in by_url.items():
                if r2 is res:
                    name_of[url] = gname
    found = {}
    for gname, res in pairs.items():
        g = guide.get(gname)
        if g is None or res is None:
            found[gname] = None if res is None else []
            continue
        mine = flatten(res)
        for k, v in list(mine.items()):
            if k.endswith("reference") and isinstance(v, str) and v in name_of:
                mine[k] = name_of[v]
        theirs = flatten(g)
        undeclared = []
        for path in sorted(set(mine) | set(theirs)):
            a, b = mine.get(path), theirs.get(path)
            if a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float)) and float(a) == float(b)):
                continue
            if not deliberate(gname, path, a, b, mine):
                undeclared.append(f"{path}: ours {a!r}, guide {b!r}")
        undeclared += [f"{path}: ours missing, must be {want!r}" for path, want in must_have(gname) if path not in mine]
        found[gname] = undeclared
    return found


def mutate_each(bundle, kind, fn):
    """A deep copy of bundle with fn applied to every resource of resourceType kind."""
    copy = json.loads(json.dumps(bundle))
    for e in copy["entry"]:
        if e["resource"]["resourceType"] == kind:
            fn(e["resource"])
    return copy


def change_identifiers(res):
    for ident in res.get("identifier", []):
        ident["value"] = ident.get("value", "") + ".9"


def wrong_tracking_id(res):
    for ident in res.get("identifier", []):
        if ident.get("type", {}).get("coding", [{}])[0].get("code") == "112039":
            ident["value"] = "WRONG"


# Issue 10 #10: each of these changes to our Bundle must make the comparison fail; if one
# passes, a deliberate-difference entry hides a mapped element.
MUTATIONS = [
    ("no-derivedFrom", lambda b: mutate_each(b, "Observation", lambda r: r.pop("derivedFrom", None))),
    ("no-performer", lambda b: mutate_each(b, "Observation", lambda r: r.pop("performer", None))),
    ("observation-identifier-added", lambda b: mutate_each(
        b, "Observation", lambda r: r.setdefault("identifier", [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}]))),
    ("device-identifiers-changed", lambda b: mutate_each(b, "Device", change_identifiers)),
    ("bodystructure-identifiers-changed", lambda b: mutate_each(b, "BodyStructure", change_identifiers)),
    ("tracking-id-WRONG", lambda b: mutate_each(b, "BodyStructure", wrong_tracking_id)),
    ("no-bodyStructure", lambda b: mutate_each(b, "Observation", lambda r: r.pop("bodyStructure", None))),
    ("no-subject", lambda b: mutate_each(b, "Observation", lambda r: r.pop("subject", None))),
    ("no-partOf", lambda b: mutate_each(b, "Observation", lambda r: r.pop("partOf", None))),
    ("segment-no-studyUid", lambda b: mutate_each(b, "ImagingSelection", lambda r: r.pop("studyUid", None))),
]


def main():
    example = os.path.join(IG, "dicom", "Example-MeasurementReport.json")
    if not os.path.exists(example):
        report(None, "guide-example", f"{example} is absent (../shared not beside the checkout)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bundle.json")
        r = subprocess.run([SR2FHIR, "convert", "-q", example, "-o", out], capture_output=True, text=True)
        if r.returncode != 0:
            report(False, "guide-example:converts", r.stderr.strip())
            return 1
        bundle = json.load(open(out))
    guide = load_guide()
    for gname, undeclared in compare(bundle, guide).items():
        if gname not in guide:
            report(None, f"guide-example:{gname}", "the guide has no such instance")
        elif undeclared is None:
            report(False, f"guide-example:{gname}", "no matching resource in the Bundle")
        else:
            report(not undeclared, f"guide-example:{gname}", "; ".join(undeclared[:6]))
    for name, mutate in MUTATIONS:
        caught = [g for g, u in compare(mutate(bundle), guide).items() if u]
        report(bool(caught), f"guide-example:issue10-10-mutation-caught:{name}",
               "the comparison still passes: a deliberate difference hides this change")
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
