#!/usr/bin/python3
"""tests/e2e/test_mapping_rules.py - the MAPPING rules (M2..M26), fact by fact, over the
project's rule fixtures (tests/fixtures/generate.py, rules_*.dcm).

Each fixture is converted with the CLI (R5, and R4 for M25); every test asserts concrete
output facts and carries its rule id in its name. Every R5 Bundle is also checked by the
guide's validator (../shared/tools/fhir-validate) when it is beside the checkout.
Prints PASS/FAIL/SKIP lines for tests/run.sh.

Environment: ROOT, BUILD, SR2FHIR, PYTHON (the python with pydicom), SHARED.
"""
import collections
import decimal
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import FIX, SR2FHIR, VALIDATE, eq, out, test  # noqa: E402

# Identifiers of tests/fixtures/generate.py
R = "1.2.826.0.1.3680043.10.1500"
STUDY, OTHER_STUDY = R + ".1.1", R + ".1.2"
CT_SERIES, SEG_SERIES, MR_SERIES, RTSS_SERIES, RWVM_SERIES, SC_SERIES, PM_SERIES = (
    R + ".2.%d" % i for i in range(1, 8))
CT1, CT2, SEG, MR, _ECG, RTSS, RWVM, SC, PM = (R + ".3.%d" % i for i in range(1, 10))
FOR1, FOR2 = R + ".7.1", R + ".7.2"
EQUIPMENT_UID, DEVICE_OBSERVER_UID = R + ".6.1", R + ".6.2"
NUMBERS = {"rules_derived": 101, "rules_nested": 102, "rules_qualitative": 103,
           "rules_site": 104, "rules_nvq": 105, "rules_selections": 106, "rules_codes": 107,
           "rules_observers": 108, "rules_tz": 109, "rules_notz": 110, "rules_extensible": 111}
FLAGS = [(p, c, v) for p in (None, "PRELIMINARY", "FINAL")
         for c in ("PARTIAL", "COMPLETE") for v in ("UNVERIFIED", "VERIFIED")]

DCM = "http://dicom.nema.org/resources/ontology/DCM"
SCT = "http://snomed.info/sct"
UMLS = "http://terminology.hl7.org/CodeSystem/umls"
UCUM = "http://unitsofmeasure.org"
PROFILE = "http://hl7.org/fhir/uv/dicom-sr/StructureDefinition/"
SOP_SYSTEM = "https://dicom.nema.org/medical/dicom/current/output/chtml/part04/sect_B.5"
DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
OBS_UID_TYPE = "http://hl7.org/fhir/uv/dicom-sr/CodeSystem/dicom-identifier-type"

# ---------------------------------------------------------------------------------------
# Conversion and Bundle helpers
# ---------------------------------------------------------------------------------------
TMP = tempfile.mkdtemp(prefix="sr2fhir-rules-")
_cache = {}


class Bundle:
    def __init__(self, path):
        self.path = path
        self.text = open(path, encoding="utf-8").read()
        self.d = json.loads(self.text, parse_float=decimal.Decimal)
        self.entries = self.d.get("entry", [])
        self.by_url = {e.get("fullUrl"): e["resource"] for e in self.entries}
        self.resources = [e["resource"] for e in self.entries]

    def of(self, rtype, profile=None):
        return [r for r in self.resources if r["resourceType"] == rtype and
                (profile is None or PROFILE + profile in r.get("meta", {}).get("profile", []))]

    def obs(self, profile=None):
        return self.of("Observation", profile)

    def resolve(self, ref):
        url = ref.get("reference") if isinstance(ref, dict) else ref
        assert url in self.by_url, "reference %r does not resolve in the Bundle" % url
        return self.by_url[url]

    def refs(self, r, key):
        v = r.get(key, [])
        return [self.resolve(x) for x in (v if isinstance(v, list) else [v]) if "reference" in x]

    def url_of(self, res):
        for e in self.entries:
            if e["resource"] is res:
                return e["fullUrl"]
        raise AssertionError("resource not in Bundle")


def convert(name, *opts, report=False):
    """(exit code, Bundle or None, stderr, report dict or None); cached per arguments."""
    key = (name,) + opts + (report,)
    if key in _cache:
        return _cache[key]
    tag = re.sub(r"[^A-Za-z0-9]+", "_", "-".join(key[:-1] + (str(report),)))
    dst = os.path.join(TMP, tag + ".json")
    rep = os.path.join(TMP, tag + ".report.json")
    cmd = [SR2FHIR, "convert", os.path.join(FIX, name + ".dcm"), "-o", dst, *opts]
    if report:
        cmd += ["--report", rep]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    b = Bundle(dst) if p.returncode == 0 and os.path.exists(dst) else None
    r = json.load(open(rep)) if report and os.path.exists(rep) else None
    _cache[key] = (p.returncode, b, p.stderr.decode("utf-8", "replace"), r)
    return _cache[key]


def bundle(name, *opts):
    rc, b, err, _ = convert(name, *opts)
    assert rc == 0 and b is not None, "convert %s %s: exit %d: %s" % (name, " ".join(opts), rc,
                                                                      err.strip()[:300])
    return b


def codings(cc):
    return [(c.get("system"), c.get("code")) for c in (cc or {}).get("coding", [])]


def code_of(r):
    c = codings(r.get("code"))
    assert c, "no code in %s" % r.get("id")
    return c[0]


def profile_of(r):
    p = r.get("meta", {}).get("profile", [])
    return p[0][len(PROFILE):] if p and p[0].startswith(PROFILE) else None


def ident(r, type_system, type_code):
    return [i for i in r.get("identifier", [])
            if (type_system, type_code) in codings(i.get("type"))]


def tracking_label(r):
    ids = ident(r, DCM, "112039")
    return ids[0]["value"] if ids else None


def group_by_label(b, label):
    gs = [g for g in b.obs("imaging-measurement-group") if tracking_label(g) == label]
    if not gs:  # tracking ids may sit on a BodyStructure (M18)
        gs = [g for g in b.obs("imaging-measurement-group")
              if any(tracking_label(s) == label for s in b.refs(g, "bodyStructure"))]
    assert len(gs) == 1, "%d groups with tracking identifier %r" % (len(gs), label)
    return gs[0]


def members(b, g):
    return b.refs(g, "hasMember")


def value(r):
    return r.get("valueQuantity", {}).get("value")


def sr_uid(name):
    return "%s.5.%d" % (R, NUMBERS[name])


def obs_uid(name, n):
    return "%s.8.%d.%d" % (R, NUMBERS[name], n)


def instances(sel):
    return sel.get("instance", [])


def sop_class(inst):
    s = inst.get("sopClass", {})
    return (s.get("system"), s.get("code"))


# ---------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------
harness.require_pydicom("mapping-rules")
ALL = list(NUMBERS) + ["rules_not1500"] + [
    "rules_flags_%s_%s_%s" % (p or "absent", c, v) for p, c, v in FLAGS]
if not all(os.path.exists(os.path.join(FIX, n + ".dcm")) for n in ALL):
    g = harness.run_fixture_script("generate.py", FIX)
    if g.returncode != 0:
        out("FAIL generate-fixtures: %s" % g.stderr.decode()[-300:].replace("\n", " "))
        sys.exit(1)
harness.require_sr2fhir("mapping-rules")


# ---------------------------------------------------------------------------------------
# M2 accepted SOP classes and roots
# ---------------------------------------------------------------------------------------
def t_m2_extensible():
    b = bundle("rules_extensible")
    obs = b.obs()
    eq(sorted(code_of(o) for o in obs), [(DCM, "125007"), (SCT, "410668003")], "Observations")
    eq(value(b.obs("imaging-measurement")[0]), 1, "value")


def t_m2_not1500():
    rc, b, err, _ = convert("rules_not1500")
    eq(rc, 6, "exit code")
    assert b is None and not os.path.exists(os.path.join(TMP, "rules_not1500_False.json"))
    lines = err.strip().splitlines()
    eq(len(lines), 1, "stderr lines")
    assert "not a TID 1500 Measurement Report" in lines[0] and "18748-4" in lines[0], lines[0]


test("M2 Extensible SR (1.2.840.10008.5.1.4.1.1.88.35) with root LN 18748-4 accepted by "
     "Content Template TID 1500: group + NUM Observations", t_m2_extensible)
test("M2 root concept LN 18748-4 with template 2000 refused: exit 6, one line naming the "
     "root concept, no Bundle", t_m2_not1500)


# ---------------------------------------------------------------------------------------
# M4-M7 document level
# ---------------------------------------------------------------------------------------
def t_m4():
    b = bundle("rules_codes")
    for r in b.obs() + b.of("ImagingSelection") + b.of("BodyStructure"):
        s = r.get("subject") or r.get("patient")
        ident_ = s["identifier"]
        eq((s.get("type"), ident_.get("system"), ident_.get("value"),
            ident_.get("assigner", {}).get("display")),
           ("Patient", "urn:oid:%s.99.1" % R, "PAT-0001", "HOSP"), "subject of %s" % r["id"])
    assert not b.of("Patient"), "a Patient resource was created"


def t_m5():
    b = bundle("rules_codes")
    for o in b.obs():
        po = [p for p in o.get("partOf", []) if p.get("type") == "ImagingStudy"]
        eq(len(po), 1, "partOf ImagingStudy of %s" % o["id"])
        i = po[0]["identifier"]
        eq((codings(i.get("type")), i.get("system"), i.get("value")),
           ([(DCM, "110180")], "urn:dicom:uid", "urn:oid:" + STUDY), "partOf identifier")


def t_m6():
    b = bundle("rules_codes")
    for o in b.obs():
        bo = o.get("basedOn", [])
        eq(len(bo), 1, "basedOn of %s" % o["id"])
        i = bo[0]["identifier"]
        eq((codings(i.get("type")), i.get("system"), i.get("value")),
           ([("http://terminology.hl7.org/CodeSystem/v2-0203", "ACSN")],
            "https://example.org/acc", "ACC-0042"), "basedOn identifier (issuer type URI)")
    b = bundle("rules_derived")   # issuer of type ISO
    eq(b.obs()[0]["basedOn"][0]["identifier"]["system"], "urn:oid:%s.99.2" % R, "ISO issuer")


def t_m7():
    b = bundle("rules_derived")
    devs = b.of("Device", "dicom-general-equipment")
    eq(len(devs), 1, "equipment Devices")
    d = devs[0]
    eq((d.get("identifier"), d.get("manufacturer"), d.get("displayName"), d.get("serialNumber"),
        [v.get("value") for v in d.get("version", [])]),
       ([{"system": "urn:dicom:uid", "value": "urn:oid:" + EQUIPMENT_UID}], "sr2fhir fixtures",
        "generate.py", "SN-1500", ["1.0", "pydicom-fixture"]), "equipment Device")


test("M4 subject: Patient identifier urn:oid:<issuer>/PAT-0001, assigner HOSP, on every "
     "Observation, ImagingSelection and BodyStructure; no Patient resource", t_m4)
test("M5 partOf: ImagingStudy identifier type DCM 110180, urn:dicom:uid, urn:oid:<Study UID>",
     t_m5)
test("M6 basedOn: ACSN identifier ACC-0042; issuer of type URI kept as is, ISO as urn:oid:",
     t_m6)
test("M7 equipment Device: identifier Device UID, manufacturer, model as displayName, "
     "serialNumber, one version per Software Versions value", t_m7)


# ---------------------------------------------------------------------------------------
# M8 status, every flag combination
# ---------------------------------------------------------------------------------------
def t_m8(p, c, v):
    def run():
        b = bundle("rules_flags_%s_%s_%s" % (p or "absent", c, v))
        want = p.lower() if p else ("final" if (c, v) == ("COMPLETE", "VERIFIED")
                                    else "preliminary")
        eq(len(b.obs()), 2, "Observations")
        eq(sorted({o["status"] for o in b.obs()}), [want], "statuses")
    return run


for p, c, v in FLAGS:
    want = p.lower() if p else ("final" if (c, v) == ("COMPLETE", "VERIFIED") else "preliminary")
    test("M8 status for P=%s C=%s V=%s is %s" % (p or "absent", c, v, want), t_m8(p, c, v))


# ---------------------------------------------------------------------------------------
# M9 issued / effectiveDateTime and time zones
# ---------------------------------------------------------------------------------------
def issued_by_value(b):
    return {(code_of(o)[1], str(value(o))): o.get("issued") for o in b.obs()}


def t_m9_tz():
    b = bundle("rules_tz")
    for o in b.obs():
        # M9, issue 10 defect 9: effective keeps the SR's precision (DT 202402: "2024-02")
        want = "2024-02" if o.get("issued") == "2024-02-01T00:00:00-05:00" else o.get("issued")
        eq(o.get("effectiveDateTime"), want, "effectiveDateTime = issued at the SR's precision")
    got = issued_by_value(b)
    eq(got[("410668003", "1")], "2024-01-31T10:30:00.5-05:00", "Content Date/Time, -0500")
    eq(group_by_label(b, "Zone").get("issued"), "2024-01-31T10:30:00.5-05:00", "group")


def t_m9_item_dt():
    got = issued_by_value(bundle("rules_tz"))
    eq(got[("410668003", "2")], "2024-02-15T08:15:00-05:00", "item Observation DateTime")
    eq(got[("410668003", "3")], "2024-02-16T12:00:00.25+02:00", "value's own offset")
    eq(got[("410668003", "4")], "2024-02-01T00:00:00-05:00", "reduced precision 202402")


def t_m9_inherited():
    b = bundle("rules_tz")
    g = group_by_label(b, "Group time")
    eq(g.get("issued"), "2024-02-20T07:00:00-05:00", "group's Observation DateTime")
    eq([m.get("issued") for m in members(b, g)], ["2024-02-20T07:00:00-05:00"],
       "child inherits the nearest ancestor's")


def t_tz_option():
    b = bundle("rules_notz", "--timezone", "+0100")
    eq(sorted({o.get("issued") for o in b.obs()}), ["2024-01-31T10:30:00.5+01:00"], "issued")


def t_tz_default():
    b = bundle("rules_notz")
    eq(sorted({o.get("issued") for o in b.obs()}), ["2024-01-31T10:30:00.5+00:00"], "issued")


def t_tz_option_loses():
    a = issued_by_value(bundle("rules_tz"))
    b = issued_by_value(bundle("rules_tz", "--timezone", "+0100"))
    eq(b, a, "issued with --timezone +0100")


test("M9 issued = 2024-01-31T10:30:00.5-05:00 from Content Date/Time and Timezone Offset "
     "From UTC -0500; effectiveDateTime the same moment at the SR's precision", t_m9_tz)
test("M9 item Observation DateTime wins (-05:00), its own +0200 suffix is kept, 202402 is "
     "completed to 2024-02-01T00:00:00-05:00", t_m9_item_dt)
test("M9 Observation DateTime of the group is inherited by its measurements", t_m9_inherited)
test("M9 --timezone +0100 used when the SR has no Timezone Offset From UTC", t_tz_option)
test("M9 no zone anywhere: +00:00, never an instant without a zone", t_tz_default)
test("M9 --timezone does not override the SR's Timezone Offset From UTC", t_tz_option_loses)


# ---------------------------------------------------------------------------------------
# M10 observers, M22 algorithms
# ---------------------------------------------------------------------------------------
def t_m10_person():
    b = bundle("rules_observers")
    ps = b.of("Practitioner", "dicom-participant-person")
    eq(len(ps), 1, "Practitioners")
    eq(ps[0].get("name"), [{"family": "Smith", "given": ["John", "Quincy"], "prefix": ["Dr"],
                            "suffix": ["Jr"]}], "name from Smith^John^Quincy^Dr^Jr")
    g = group_by_label(b, "Person observed")
    for o in [g] + members(b, g):
        eq([r["resourceType"] for r in b.refs(o, "performer")], ["Practitioner"],
           "performer of %s" % code_of(o)[1])


def t_m10_device():
    b = bundle("rules_observers")
    ds = b.of("Device", "dicom-participant-device")
    eq(len(ds), 1, "device observer Devices")
    d = ds[0]
    eq((d.get("identifier"), d.get("displayName"), d.get("manufacturer"), d.get("modelNumber"),
        d.get("serialNumber")),
       ([{"system": "urn:dicom:uid", "value": "urn:oid:" + DEVICE_OBSERVER_UID}], "CAD-1",
        "Acme", "Finder", "SN-77"), "device observer Device")


def t_m10_override():
    b = bundle("rules_observers")
    g = group_by_label(b, "Device observed")
    for o in [g] + members(b, g):
        assert not [r for r in b.refs(o, "performer") if r["resourceType"] == "Practitioner"], \
            "the root's person observer is still performer of %s inside the group whose " \
            "device observer overrides it" % code_of(o)[1]


def t_m10_participant():
    b = bundle("rules_observers")
    with_uid = [d for d in b.of("Device") if {"system": "urn:dicom:uid",
                                             "value": "urn:oid:" + EQUIPMENT_UID}
                in d.get("identifier", [])]
    eq(len(with_uid), 1, "Devices with the equipment's Device UID")


def t_m22_group():
    b = bundle("rules_observers")
    g = group_by_label(b, "Device observed")
    d = b.refs(g, "device")
    eq(len(d), 1, "group device")
    d = d[0]
    eq(profile_of(d), "algorithm-identification", "profile")
    eq((d.get("displayName"), [v.get("value") for v in d.get("version", [])]),
       ("SegAlgo", ["1.2"]), "name/version")
    props = [(codings(p.get("type")), p.get("valueString")) for p in d.get("property", [])]
    eq(props, [([(DCM, "111002")], "threshold=0.5")], "parameters property")
    eq([c[1] for t in d.get("type", []) for c in codings(t)], ["123456"], "family as type")
    eq(profile_of(b.resolve(d["parent"])), "dicom-general-equipment", "parent")
    # no inheritance of the group's algorithm (M22): the NUM of that group has the device
    # observer of its observer context (issue 10 defect 6)
    eq([profile_of(x) for m in members(b, g) for x in b.refs(m, "device")],
       ["dicom-participant-device"], "device of the group's NUM")


def t_m22_shared():
    b = bundle("rules_observers")
    algs = b.of("Device", "algorithm-identification")
    eq(sorted(a.get("displayName") for a in algs), ["MeasureAlgo", "SegAlgo"], "algorithm Devices")
    g = group_by_label(b, "Person observed")
    devs = {str(value(m)): b.refs(m, "device") for m in members(b, g)}
    a, c = devs["22"], devs["3"]
    assert len(a) == 1 and a[0] is c[0], "the two NUMs with one algorithm share no Device"
    eq(a[0].get("displayName"), "MeasureAlgo", "shared algorithm")
    eq(profile_of(b.resolve(a[0]["parent"])), "dicom-general-equipment", "parent")
    eq([profile_of(x) for x in devs["4"]], ["dicom-general-equipment"], "NUM without algorithm")
    eq([profile_of(x) for x in b.refs(g, "device")], ["dicom-general-equipment"], "group device")


test("M10 person observer -> Practitioner (dicom-participant-person), PN split into family, "
     "given + middle, prefix, suffix; performer of the group and its measurements", t_m10_person)
test("M10 device observer Device (dicom-participant-device) with identifier urn:oid:<121012>, "
     "displayName 121013, manufacturer 121014, modelNumber 121015, serialNumber 121016",
     t_m10_device)
test("M10 a group's own observer context overrides the inherited person observer", t_m10_override)
test("M10 Participant Sequence entry equal to the equipment is not created twice",
     t_m10_participant)
test("M22 algorithm on a group -> AlgorithmIdentification Device (displayName, version, "
     "parameters property, family type, parent = the equipment Device); not inherited by "
     "the group's NUM, whose device is the device observer (10#6)", t_m22_group)
test("M22 one algorithm Device for two identical algorithms on two NUMs, parent = the "
     "equipment Device; others keep the equipment Device", t_m22_shared)


# ---------------------------------------------------------------------------------------
# M11, M12 identifiers and source SR content items
# ---------------------------------------------------------------------------------------
def t_m11():
    for name, pick, n in [("rules_derived", lambda b: group_by_label(b, "Lesion A"), 1),
                          ("rules_derived", lambda b: b.obs("derived-imaging-measurement")[0], 2),
                          ("rules_qualitative", lambda b: [
                              o for o in b.obs() if code_of(o)[1] == "246112005"][0], 1),
                          ("rules_qualitative", lambda b: [
                              o for o in b.obs() if code_of(o)[1] == "RID5741"][0], 3)]:
        o = pick(bundle(name))
        ids = ident(o, OBS_UID_TYPE, "observation-uid")
        eq([(i.get("system"), i.get("value")) for i in ids],
           [("urn:dicom:uid", "urn:oid:" + obs_uid(name, n))], "%s %s" % (name, code_of(o)))


def t_m12():
    name = "rules_derived"
    b = bundle(name)
    sels = b.of("ImagingSelection", "source-sr-content-item")
    eq(len(sels), 2, "source-sr-content-item selections")
    for who, n in [(group_by_label(b, "Lesion A"), 1),
                   ([o for o in b.obs("derived-imaging-measurement")
                     if code_of(o)[1] == "103355008"][0], 2)]:
        s = [x for x in b.refs(who, "derivedFrom") if x["resourceType"] == "ImagingSelection"]
        eq(len(s), 1, "selections in derivedFrom of %s" % code_of(who)[1])
        s = s[0]
        eq(profile_of(s), "source-sr-content-item", "profile")
        eq(codings(s["code"]), [(DCM, "111040")], "code")
        eq((s.get("studyUid"), s.get("seriesUid")), (STUDY, "%s.4.%d" % (R, NUMBERS[name])),
           "study/series")
        i = instances(s)
        eq([(x.get("uid"), sop_class(x), x.get("subset")) for x in i],
           [(sr_uid(name), (SOP_SYSTEM, "1.2.840.10008.5.1.4.1.1.88.33"), [obs_uid(name, n)])],
           "instance")


def t_m12_not_for_evaluations():
    b = bundle("rules_qualitative")
    eq(b.of("ImagingSelection"), [], "ImagingSelections for evaluations with Observation UID")


test("M11 Observation UID -> identifier type observation-uid, urn:dicom:uid, urn:oid:<UID> "
     "(group, derived measurement, qualitative evaluations)", t_m11)
test("M12 group and derived measurement with Observation UID -> source-sr-content-item "
     "ImagingSelection (DCM 111040, SR study/series/instance/sopClass, subset = UID) in "
     "its derivedFrom", t_m12)
test("M12 evaluations with an Observation UID get no source-sr-content-item",
     t_m12_not_for_evaluations)


# ---------------------------------------------------------------------------------------
# M13-M17 containers and groups
# ---------------------------------------------------------------------------------------
def t_m13():
    b = bundle("rules_selections")
    gs = b.obs("imaging-measurement-group")
    eq(len(gs), 11, "groups")
    eq(len(b.obs("imaging-measurement")), 11, "measurements")
    for g in gs:
        eq(len(members(b, g)), 1, "hasMember of %s" % tracking_label(g))


def t_m14(name):
    def run():
        b = bundle(name)
        ds = b.obs("derived-imaging-measurement")
        eq(len(ds), 2, "derived measurements")
        by = {code_of(d)[1]: d for d in ds}
        for d in ds:
            eq(codings(d["category"][0]) if d.get("category") else None, [(DCM, "126011")],
               "category")
        eq((value(by["103355008"]), by["103355008"]["valueQuantity"].get("code")),
           (42, "mm"), "Sum of diameters")
        eq((value(by["C25244"]), by["C25244"]["valueQuantity"].get("code")), (7.5, "cm3"),
           "Total volume")
        own = group_by_label(b, "Derived source")
        shared = group_by_label(b, "Container group")
        for g, n in [(own, 2), (shared, 1)]:
            eq(profile_of(g), "imaging-measurement-group", "profile of the derived's group")
            eq(len(members(b, g)), n, "members of %s" % tracking_label(g))
        groups_of = lambda d: sorted(tracking_label(x) for x in b.refs(d, "derivedFrom")  # noqa
                                     if x["resourceType"] == "Observation")
        eq(groups_of(by["103355008"]), ["Container group", "Derived source"],
           "derivedFrom of the NUM with its own INFERRED FROM group")
        eq(groups_of(by["C25244"]), ["Container group"], "derivedFrom of the other NUM")
        eq(len(b.obs("imaging-measurement-group")), 3, "groups")
    return run


def facts(b):
    """Observation facts independent of ids and entry order."""
    res = []
    for o in b.obs():
        res.append((profile_of(o), code_of(o), str(value(o)),
                    json.dumps(o.get("valueCodeableConcept"), sort_keys=True, default=str),
                    tuple(sorted(str(code_of(x)) + str(tracking_label(x))
                                 for x in b.refs(o, "derivedFrom"))),
                    tuple(sorted(str(code_of(x)) for x in b.refs(o, "hasMember"))),
                    json.dumps(o.get("category"), sort_keys=True)))
    return sorted(res)


def t_placements():
    eq(facts(bundle("rules_nested")), facts(bundle("rules_derived")),
       "Observations with the containers inside Imaging Measurements")


def t_m15():
    b = bundle("rules_qualitative")
    in_groups = {id(m) for g in b.obs("imaging-measurement-group") for m in members(b, g)}
    doc = [o for o in b.obs("imaging-qualitative-evaluation") if id(o) not in in_groups]
    eq(len(doc), 2, "document-level evaluations")
    by = {code_of(o)[1]: o for o in doc}
    eq(codings(by["246112005"].get("valueCodeableConcept")), [(SCT, "24484000")], "CODE value")
    eq(by["121106"].get("valueCodeableConcept"), {"text": "No change since prior"}, "TEXT value")
    for o in doc:
        eq([codings(c) for c in o.get("category", [])], [[(UMLS, "C0034375")]], "category")


def t_m16():
    for name in ("rules_derived", "rules_observers", "rules_site"):
        b = bundle(name)
        bad = [code_of(o) for o in b.obs()
               if code_of(o)[1] in ("121049", "121005", "121008", "121058", "111028")]
        eq(bad, [], "context items as Observations in %s" % name)


def first_site_group(b):
    """rules_site 1.5.1: the group with a Finding Category (1.5.4 repeats its site/ids)."""
    gs = [g for g in b.obs("imaging-measurement-group") if code_of(g) == (SCT, "49755003")]
    eq(len(gs), 1, "groups with Finding Category 49755003")
    return gs[0]


def t_m17_category():
    b = bundle("rules_site")
    g = first_site_group(b)
    eq(code_of(g), (SCT, "49755003"), "code = Finding Category")
    eq([codings(c) for c in g.get("category", [])], [[(DCM, "125007")]], "category")
    eq(codings(g.get("valueCodeableConcept")), [(SCT, "108369006")], "value = Finding")
    eq(codings(g.get("method")), [(SCT, "258083009")], "method")
    eq([codings(m.get("method")) for m in members(b, g)], [[(SCT, "258083009")]],
       "method of the NUM (inherited from the group, M20)")


def t_m17_no_category():
    b = bundle("rules_site")
    g = group_by_label(b, "Lesion S3")
    eq(code_of(g), (DCM, "125007"), "code")
    assert (DCM, "125007") not in [c for cat in g.get("category", []) for c in codings(cat)], \
        "category DCM 125007 with code DCM 125007 (decisions.md: M17 amended)"


def t_m17_members():
    b = bundle("rules_qualitative")
    g = group_by_label(b, "Lesion Q")
    eq(sorted(code_of(m)[1] for m in members(b, g)), ["121106", "410668003", "RID5741"],
       "hasMember")


test("M13 each Measurement Group -> one imaging-measurement-group Observation with its "
     "measurements as hasMember", t_m13)
test("M14 derived: 2 Observations with meta.profile derived-imaging-measurement, category "
     "DCM 126011, derivedFrom references resolving to the group Observations in the same "
     "Bundle (own INFERRED FROM group + the group directly under the container)",
     t_m14("rules_derived"))
test("M14 derived inside Imaging Measurements (the guide's placement): same facts",
     t_m14("rules_nested"))
test("M13-M15 containers side by side or inside Imaging Measurements give the same "
     "Observations", t_placements)
test("M15 document-level Qualitative Evaluations: CODE -> valueCodeableConcept coding, TEXT "
     "-> valueCodeableConcept.text, category UMLS C0034375", t_m15)
test("M16 root context items (language, observer, procedure reported, image library) are "
     "not Observations", t_m16)
test("M17 Finding Category -> code, category DCM 125007, Finding -> value, Measurement "
     "Method -> method", t_m17_category)
test("M17 group without Finding Category: code DCM 125007 and no 125007 category "
     "(decisions.md)", t_m17_no_category)
test("M17 hasMember = every measurement and evaluation of the group", t_m17_members)


# ---------------------------------------------------------------------------------------
# M18 finding site, laterality, modifier, tracking ids
# ---------------------------------------------------------------------------------------
def t_m18_full():
    b = bundle("rules_site")
    g = first_site_group(b)
    bs = b.refs(g, "bodyStructure")
    eq(len(bs), 1, "bodyStructure")
    s = bs[0]
    eq(profile_of(s), "dicom-sr-finding-site", "profile")
    inc = s.get("includedStructure", [])
    eq(len(inc), 1, "includedStructure")
    eq(codings(inc[0].get("structure")), [(SCT, "64033007")], "structure")
    eq(codings(inc[0].get("laterality")), [(SCT, "24028007")], "laterality")
    eq([codings(q) for q in inc[0].get("qualifier", [])], [[(SCT, "261183002")]], "qualifier")
    eq(sorted((codings(i.get("type"))[0][1], i.get("system"), i.get("value"))
              for i in s.get("identifier", [])),
       [("112039", None, "Lesion S1"), ("112040", "urn:dicom:uid", "urn:oid:%s.9.1" % R)],
       "identifiers")
    eq(s["patient"]["identifier"]["value"], "PAT-0001", "patient")
    assert "bodySite" not in g, "bodySite beside bodyStructure"
    for m in members(b, g):
        eq(b.refs(m, "bodyStructure"), [s], "bodyStructure of the group's NUM")


def t_m18_site_alone():
    b = bundle("rules_site")
    gs = [g for g in b.obs("imaging-measurement-group")
          if codings(g.get("bodySite")) == [(SCT, "10200004")]]
    eq(len(gs), 1, "groups with bodySite Liver")
    g = gs[0]
    assert "bodyStructure" not in g, "bodyStructure for a site alone"
    assert not [s for s in b.of("BodyStructure")
                if any(codings(i.get("structure")) == [(SCT, "10200004")]
                       for i in s.get("includedStructure", []))], "a Liver BodyStructure"
    by = {code_of(m)[1]: m for m in members(b, g)}
    eq(codings(by["410668003"].get("bodySite")), [(SCT, "10200004")], "NUM: the group's site")
    eq(codings(by["118565006"].get("bodySite")), [(SCT, "39607008")], "NUM: its own site")


def t_m18_tracking_only():
    b = bundle("rules_site")
    g = [g for g in b.obs("imaging-measurement-group") if tracking_label(g) == "Lesion S3"]
    eq(len(g), 1, "group with tracking identifier Lesion S3 as an identifier")
    g = g[0]
    assert "bodyStructure" not in g and "bodySite" not in g, "site element without a site"
    eq([(i.get("system"), i.get("value")) for i in ident(g, DCM, "112040")],
       [("urn:dicom:uid", "urn:oid:%s.9.3" % R)], "tracking UID identifier")


def t_m18_one_per_distinct():
    b = bundle("rules_site")
    kidney = [s for s in b.of("BodyStructure")
              if any(codings(i.get("structure")) == [(SCT, "64033007")]
                     for i in s.get("includedStructure", []))]
    eq(len(kidney), 1, "BodyStructures for two identical (site, laterality, modifier, ids)")
    users = [g for g in b.obs("imaging-measurement-group")
             if b.refs(g, "bodyStructure") == kidney]
    eq(len(users), 2, "groups referring to it")


test("M18 BodyStructure (dicom-sr-finding-site) with structure, laterality and qualifier "
     "(topographical modifier), tracking identifier/UID identifiers; group and NUMs refer "
     "to it", t_m18_full)
test("M18 site alone -> bodySite, no BodyStructure; a NUM's own site wins over the group's",
     t_m18_site_alone)
test("M18 tracking ids without site -> identifiers DCM 112039/112040 of the group",
     t_m18_tracking_only)
test("M18 one BodyStructure per distinct (site, laterality, modifier, tracking ids)",
     t_m18_one_per_distinct)


# ---------------------------------------------------------------------------------------
# M19 ImagingSelection profiles
# ---------------------------------------------------------------------------------------
def sel_of(b, label, profile):
    g = group_by_label(b, label)
    s = [x for x in b.refs(g, "derivedFrom") if profile_of(x) == profile]
    eq(len(s), 1, "%s selections of group %r" % (profile, label))
    return g, s[0]


def expect_sel(label, profile, code, study, series, insts, extra=None):
    def run():
        b = bundle("rules_selections")
        g, s = sel_of(b, label, profile)
        eq(codings(s.get("code")), [(DCM, code)], "code")
        eq((s.get("studyUid"), s.get("seriesUid")), (study, series), "studyUid/seriesUid")
        got = [(i.get("uid"), sop_class(i)[1], i.get("subset"),
                [(r.get("regionType"), [float(c) for c in r.get("coordinate", [])])
                 for r in i.get("imageRegion2D", [])] or None) for i in instances(s)]
        eq(got, insts, "instances")
        for i in instances(s):
            eq(sop_class(i)[0], SOP_SYSTEM, "sopClass system (decisions.md M19 amended)")
        eq(s.get("status"), "available", "status")
        refs = [x.get("identifier", {}).get("value") for x in s.get("derivedFrom", [])
                if x.get("type") == "ImagingStudy"]
        eq(refs, ["urn:oid:" + study], "derivedFrom ImagingStudy")
        for m in members(b, g):   # copied to each child Observation's derivedFrom
            assert s in b.refs(m, "derivedFrom"), "selection not in the NUM's derivedFrom"
        if extra:
            extra(b, g, s)
    return run


def focus_source_image(b, g, s):
    f = b.refs(s, "focus")
    src = [x for x in f if profile_of(x) == "source-image-for-segmentation"]
    eq(len(src), 1, "focus on a source-image-for-segmentation selection")
    x = src[0]
    eq(codings(x.get("code")), [(DCM, "121233")], "source image code")
    eq((x.get("seriesUid"), [(i.get("uid"), sop_class(i)[1]) for i in instances(x)]),
       (CT_SERIES, [(CT1, "1.2.840.10008.5.1.4.1.1.2")]), "source image series/instance")
    assert x in b.refs(g, "derivedFrom"), "source image selection not in the group's derivedFrom"


def frame_of_reference(want):
    def check(b, g, s):
        eq(s.get("frameOfReferenceUid"), want, "frameOfReferenceUid")
    return check


def focus_source_sr(b, g, s):
    src = [x for x in b.refs(s, "focus") if profile_of(x) == "source-sr-content-item"]
    eq(len(src), 1, "focus on the group's source-sr-content-item")
    eq(instances(src[0])[0].get("subset"), [obs_uid("rules_selections", 1)], "subset")


CT, MRE = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4.1"
SEGC = "1.2.840.10008.5.1.4.1.1.66.4"
for label, profile, code, study, series, insts, extra in [
        ("Polyline", "image-region-2d", "111030", STUDY, CT_SERIES,
         [(CT1, CT, None, [("polyline", [1, 2, 3.5, 2, 3.5, 4.25])])], focus_source_sr),
        ("Circle", "image-region-2d", "111030", STUDY, MR_SERIES,
         [(MR, MRE, ["2"], [("circle", [50, 50, 60, 50])])], None),
        ("Multipoint", "image-region-2d", "111030", STUDY, CT_SERIES,
         [(CT2, CT, None, [("point", [5, 6])]), (CT2, CT, None, [("point", [7, 8])]),
          (CT2, CT, None, [("point", [9, 10])])], None),
        ("Region 3D", "image-region-3d", "111030", STUDY, None, [], frame_of_reference(FOR1)),
        ("Segment", "referenced-segment", "121191", STUDY, SEG_SERIES,
         [(SEG, SEGC, ["2"], None)], focus_source_image),
        ("Segmentation frame", "referenced-segmentation-frame", "121214", STUDY, SEG_SERIES,
         [(SEG, SEGC, ["3"], None)], focus_source_image),
        ("Region in space", "region-in-space", "130488", STUDY, RTSS_SERIES,
         [(RTSS, "1.2.840.10008.5.1.4.1.1.481.3", ["4"], None)], None),
        ("Volume surface", "volume-surface", "121231", STUDY, None, [],
         frame_of_reference(FOR2)),
        ("Real world value map", "real-world-value-map", "126100", STUDY, RWVM_SERIES,
         [(RWVM, "1.2.840.10008.5.1.4.1.1.67", None, None)], None),
        ("Illustration", "illustration-of-roi", "121200", OTHER_STUDY, SC_SERIES,
         [(SC, "1.2.840.10008.5.1.4.1.1.7", None, None)], None),
        ("Visual explanation", "visual-explanation", "130401", STUDY, PM_SERIES,
         [(PM, "1.2.840.10008.5.1.4.1.1.30", None, None)], None)]:
    what = {"Polyline": "SCOORD POLYLINE SELECTED FROM IMAGE, focus = source SR content item",
            "Circle": "SCOORD CIRCLE on frame 2 of a multi-frame MR: subset [2]",
            "Multipoint": "SCOORD MULTIPOINT: one point instance per point",
            "Region 3D": "SCOORD3D: frameOfReferenceUid",
            "Segment": "segment 2, series from evidence, focus source-image-for-segmentation",
            "Segmentation frame": "IMAGE 121214 frame 3, focus source-image-for-segmentation",
            "Region in space": "RT Structure Set 1.2.840.10008.5.1.4.1.1.481.3, ROI 4 as subset",
            "Volume surface": "SCOORD3D 121231: frameOfReferenceUid",
            "Real world value map": "COMPOSITE 126100, RWVM SOP class",
            "Illustration": "IMAGE 121200, study/series from Pertinent Other Evidence",
            "Visual explanation": "IMAGE 130401"}[label]
    test("M19 %s: %s" % (profile, what),
         expect_sel(label, profile, code, study, series, insts, extra))


def t_m19_all_profiles():
    b = bundle("rules_selections")
    eq(sorted({profile_of(s) for s in b.of("ImagingSelection")}),
       sorted(["image-region-2d", "image-region-3d", "referenced-segment",
               "source-image-for-segmentation", "referenced-segmentation-frame",
               "region-in-space", "volume-surface", "real-world-value-map",
               "illustration-of-roi", "visual-explanation", "source-sr-content-item"]),
       "ImagingSelection profiles")


test("M19 every ImagingSelection profile of the guide present in rules_selections",
     t_m19_all_profiles)


# ---------------------------------------------------------------------------------------
# M20 measurements, M21 evaluations
# ---------------------------------------------------------------------------------------
NVQ = [("114000", "not-a-number"), ("114001", "negative-infinity"),
       ("114002", "positive-infinity"), ("114003", "error"), ("114004", "error"),
       ("114005", "error"), ("114006", "error"), ("114007", "error"), ("114008", "error"),
       ("114009", "error"), ("114010", "unknown"), ("114011", "unknown")]


def t_m20_nvq(i, qual, reason):
    def run():
        b = bundle("rules_nvq")
        o = [o for o in b.obs() if code_of(o)[1] == "Q%d" % i]
        eq(len(o), 1, "Observation Q%d" % i)
        q = o[0].get("valueQuantity")
        assert q is not None, "no valueQuantity"
        assert "value" not in q, "a value beside data-absent-reason"
        eq([(e.get("url"), e.get("valueCode")) for e in q.get("extension", [])],
           [(DAR, reason)], "data-absent-reason for %s" % qual)
    return run


for i, (qual, reason) in enumerate(NVQ):
    test("M20 data-absent-reason per qualifier: DCM %s -> %s" % (qual, reason),
         t_m20_nvq(i, qual, reason))


def t_m20_no_nan():
    t = bundle("rules_nvq").text
    assert not re.search(r"\b(NaN|Infinity|inf|nan)\b", t), "NaN/Infinity in the JSON"


def t_m20_values():
    b = bundle("rules_nvq")
    g = group_by_label(b, "Values")
    got = [(value(m), m["valueQuantity"].get("unit"), m["valueQuantity"].get("system"),
            m["valueQuantity"].get("code")) for m in members(b, g)]
    eq(got[0], (decimal.Decimal("3.141592653589793"), "millimeter", UCUM, "mm"),
       "Floating Point Value preferred over Numeric Value 3.1416")
    eq(got[1], (decimal.Decimal("0.000012345678901234"), "meter", UCUM, "m"),
       "20-digit Numeric Value kept exactly")
    eq(got[2][0], decimal.Decimal("-150"), "-1.50E+02")
    assert '"value":0.000012345678901234' in b.text.replace(" ", ""), "decimal text not as given"


def t_m20_component():
    b = bundle("rules_nvq")
    o = [o for o in b.obs() if code_of(o) == (DCM, "112031")][0]
    eq([(codings(c.get("code")), codings(c.get("valueCodeableConcept")))
        for c in o.get("component", [])], [([(DCM, "121401")], [(SCT, "255619001")])],
       "Derivation component")


def t_m21():
    b = bundle("rules_qualitative")
    g = group_by_label(b, "Lesion Q")
    ev = {code_of(m)[1]: m for m in members(b, g) if profile_of(m) ==
          "imaging-qualitative-evaluation"}
    eq(sorted(ev), ["121106", "RID5741"], "group evaluations")
    eq(codings(ev["RID5741"].get("valueCodeableConcept")), [("http://radlex.org", "RID5713")],
       "CODE value")
    eq(ev["121106"].get("valueCodeableConcept"), {"text": "Irregular rim"}, "TEXT value")
    for o in ev.values():
        eq([codings(c) for c in o.get("category", [])], [[(UMLS, "C0034375")]], "category")
    eq([code_of(o) for o in b.obs() if code_of(o)[1] in ("121071", "112039")], [],
       "Finding / Tracking Identifier as evaluations")


test("M20 no NaN or Infinity in the JSON", t_m20_no_nan)
test("M20 valueQuantity: Floating Point Value first, Numeric Value text exact, UCUM "
     "unit/system/code", t_m20_values)
test("M20 unconsumed concept modifier (Derivation) -> component", t_m20_component)
test("M21 group CODE/TEXT children -> ImagingQualitativeEvaluation (category UMLS "
     "C0034375, coding / text); Finding and Tracking Identifier are not evaluations", t_m21)


# ---------------------------------------------------------------------------------------
# M23 codes
# ---------------------------------------------------------------------------------------
def all_codings(node):
    if isinstance(node, dict):
        if "code" in node and isinstance(node.get("code"), str) and "system" in node:
            yield node
        for v in node.values():
            yield from all_codings(v)
    elif isinstance(node, list):
        for v in node:
            yield from all_codings(v)


def coding_for(b, code):
    cs = [c for c in all_codings(b.d) if c.get("code") == code]
    assert cs, "no Coding with code %s" % code
    return cs[0]


def t_m23(code, system, version=None, check_version=False):
    def run():
        c = coding_for(bundle("rules_codes"), code)
        eq(c.get("system"), system, "system of %s" % code)
        if check_version:
            eq(c.get("version"), version, "version of %s" % code)
    return run


def t_m23_srt_no_leftover():
    b = bundle("rules_codes")
    eq([c for c in all_codings(b.d) if c.get("code") in ("T-71000", "M-80003")], [],
       "SRT codes left untranslated")


def t_m23_fallback_report():
    _, _, _, rep = convert("rules_codes", report=True)
    assert rep is not None, "no report"
    eq(rep["files"][0].get("fallbackCodes"), 1, "fallbackCodes (99UNDECL)")


for code, system, version, cv, what in [
        ("86049000", SCT, None, True, "SRT M-80003 translated to SCT"),
        ("64033007", SCT, None, True, "SRT T-71000 (version 2008) translated to SCT, no version"),
        ("G-F160", "http://snomed.info/srt", None, False, "untranslated SRT under snomed.info/srt"),
        ("P1", "https://example.org/fhir/CodeSystem/priv-a", "3", True,
         "private 99PRIVA declared with a Coding Scheme URL, version kept"),
        ("P2", "https://example.org/fhir/CodeSystem/priv-a", None, False,
         "declared URL also for a NUM concept name"),
        ("B1", "urn:oid:%s.99.11" % R, None, False, "private 99PRIVB declared by UID only"),
        ("U1", "urn:sr2fhir:coding-scheme:99UNDECL", None, False,
         "undeclared fallback urn:sr2fhir:coding-scheme:99UNDECL"),
        ("X1", "http://loinc.org", None, False, "declared UID of a known scheme -> its URI"),
        ("Y1", DCM, None, False, "a declaration never overrides a table designator (DCM)"),
        ("mm", UCUM, None, False, "UCUM units")]:
    test("M23 systems: %s" % what, t_m23(code, system, version, cv))
test("M23 no SRT code with an SCT translation is left as SRT", t_m23_srt_no_leftover)
test("M23 undeclared private scheme is reported as a fallback code", t_m23_fallback_report)


# ---------------------------------------------------------------------------------------
# M24 Bundle identity, M25 R4, M26 report
# ---------------------------------------------------------------------------------------
def r5_names():
    return [n for n in ALL if n != "rules_not1500"]


def walk_refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "reference" and isinstance(v, str):
                yield v
            else:
                yield from walk_refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk_refs(v)


def t_m24_refs():
    for n in r5_names():
        b = bundle(n)
        missing = [r for r in walk_refs(b.d) if r not in b.by_url]
        eq(missing, [], "unresolved references in %s" % n)


def t_m24_entries():
    for n in r5_names():
        b = bundle(n)
        eq(b.d.get("type"), "transaction", "type")
        ids = set()
        for e in b.entries:
            r = e["resource"]
            eq(e.get("fullUrl"), "urn:uuid:" + r.get("id", ""), "fullUrl of %s" % r.get("id"))
            eq(e.get("request"), {"method": "PUT", "url": "%s/%s" % (r["resourceType"], r["id"])},
               "request of %s in %s" % (r["id"], n))
            assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                r"[0-9a-f]{12}", r["id"]), "id %s is not a UUID v5" % r["id"]
            assert r["id"] not in ids, "id %s twice in %s" % (r["id"], n)
            ids.add(r["id"])


def t_m24_deterministic():
    for n in ("rules_selections", "rules_observers", "rules_codes"):
        a = bundle(n).text
        dst = os.path.join(TMP, "again.json")
        subprocess.run([SR2FHIR, "convert", "-q", os.path.join(FIX, n + ".dcm"), "-o", dst],
                       check=True)
        assert open(dst, encoding="utf-8").read() == a, "%s: second run differs" % n


def t_m24_collection():
    b = bundle("rules_selections", "--bundle-type", "collection")
    eq(b.d.get("type"), "collection", "type")
    eq([e for e in b.entries if "request" in e], [], "entries with request")
    eq([e["fullUrl"] for e in b.entries], [e["fullUrl"] for e in bundle("rules_selections").entries],
       "same fullUrls as the transaction")


def r4_facts(b):
    return sorted((code_of(o), str(value(o)),
                   json.dumps(o.get("valueCodeableConcept"), sort_keys=True, default=str),
                   o.get("status"), o.get("issued")) for o in b.obs())


def t_m25(name):
    def run():
        r5 = bundle(name)
        r4 = bundle(name, "--fhir-version", "R4")
        eq(len(r4.obs()), len(r5.obs()), "number of Observations")
        eq(r4_facts(r4), r4_facts(r5), "codes/values/status/issued")
        eq(r4.of("ImagingSelection"), [], "ImagingSelections in R4")
        eq([r["id"] for r in r4.resources if "meta" in r and "profile" in r["meta"]], [],
           "meta.profile in R4")
        eq([o["id"] for o in r4.obs() if "bodyStructure" in o], [], "bodyStructure in R4")
        missing = [r for r in walk_refs(r4.d) if r not in r4.by_url]
        eq(missing, [], "unresolved references in R4")
        # R5 bodyStructure -> R4 bodySite with the structure's site
        r4_by = {(code_of(o), str(value(o)), tracking_label(o)): o for o in r4.obs()}
        for o in r5.obs():
            for s in r5.refs(o, "bodyStructure"):
                site = codings(s["includedStructure"][0]["structure"])
                twins = [x for x in r4.obs() if (code_of(x), str(value(x))) ==
                         (code_of(o), str(value(o)))]
                assert any(codings(x.get("bodySite"))[:1] == site for x in twins), \
                    "no R4 bodySite %s for %s" % (site, code_of(o))
        assert r4_by is not None
    return run


for n in ("rules_derived", "rules_qualitative", "rules_site", "rules_nvq", "rules_selections",
          "rules_codes", "rules_observers"):
    test("M25 R4 %s: same number of Observations and same codes/values as R5, no "
         "ImagingSelection, no bodyStructure (bodySite instead), no meta.profile" % n,
         t_m25(n))


def t_m26_unmapped():
    _, _, _, rep = convert("rules_qualitative", report=True)
    f = rep["files"][0]
    eq(len(f["unmapped"]), 1, "unmapped items")
    assert f["unmapped"][0].startswith("1.5.1.6 ") and "111536" in f["unmapped"][0], \
        f["unmapped"][0]
    eq(rep["summary"].get("unmapped"), 1, "summary count")


def t_m26_consumed():
    for n in ("rules_selections", "rules_site", "rules_observers", "rules_derived",
              "rules_codes", "rules_nvq", "rules_tz"):
        _, _, _, rep = convert(n, report=True)
        # issue 10 #5: a SCOORD3D region makes its ImagingSelection, but R5 has no place for
        # its coordinates (selections.c), so it is listed as mapped in part
        partly = [] if n != "rules_selections" else [
            '1.5.4.2 CONTAINS SCOORD3D (111030,DCM,"Image Region"): ' + SCOORD3D_WHY,
            '1.5.8.2 CONTAINS SCOORD3D (121231,DCM,"Volume Surface"): ' + SCOORD3D_WHY]
        eq(rep["files"][0]["unmapped"], partly, "unmapped items of %s (all are consumed)" % n)


SCOORD3D_WHY = "its 3D coordinates have no place in an R5 ImagingSelection (M19)"


test("M24 every reference resolves to a fullUrl in the Bundle (all rule fixtures)",
     t_m24_refs)
test("M24 transaction entries PUT Type/id with fullUrl urn:uuid:<id>, id = resource.id, "
     "UUID v5, unique", t_m24_entries)
test("M24 same SR -> byte-identical Bundle", t_m24_deterministic)
test("M24 collection: no request, same fullUrls", t_m24_collection)
test("M26 unconsumed DATE item listed with position and concept, counted in the summary",
     t_m26_unmapped)
test("M26 items consumed by a rule (Region In Space ROI number, observer context, source "
     "series, algorithm, modifiers) are not listed as unmapped", t_m26_consumed)


# ---------------------------------------------------------------------------------------
# The guide's validator over every R5 Bundle
# ---------------------------------------------------------------------------------------
KNOWN = re.compile(r"481\.3|11\.2\.840")   # M19: the guide's region-in-space UID typo
if not os.path.exists(VALIDATE):
    out("SKIP M19-M24 fhir-validate: %s not found (../shared beside the checkout)" % VALIDATE)
else:
    for n in r5_names():
        def run(n=n):
            p = harness.validator(bundle(n).path)
            lines = p.stdout.decode("utf-8", "replace").splitlines()
            if p.returncode == 2:
                raise AssertionError("validator failed: %s" %
                                     p.stderr.decode("utf-8", "replace")[-300:])
            errors = [l for l in lines if l.startswith("ERROR") and not KNOWN.search(l)]
            eq(errors, [], "validator errors")
            if n == "rules_selections":   # the known one is expected, listed here
                known = [l for l in lines if l.startswith("ERROR") and KNOWN.search(l)]
                eq(len(known), 1, "known region-in-space error (M19)")
        test("fhir-validate %s: no ERROR (except the known region-in-space UID typo, M19)" % n,
             run)

sys.exit(harness.exit_code())
