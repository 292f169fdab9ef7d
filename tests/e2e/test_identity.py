#!/usr/bin/python3
"""tests/e2e/test_identity.py - issue 10 defects 6 and 7 over the fixtures of
tests/fixtures/gen_identity.py (made here in a temporary folder).

10#6 (M22, M10): an Observation's device is its own algorithm, else the device observer of
its observer context (the guide's Document IE ConceptMap: a participant device may override
the equipment), else the M7 equipment.
10#7 (M24, M18): resources that outlive one report take their ids from what they are, not
from the SR: a follow-up report about the same lesion, by the same algorithm and observers,
gives the same BodyStructure, Device and Practitioner ids (and so the same PUT Type/id of
`send`); a NUM-level finding site does not copy its group's tracking identifiers; no two
resources of a Bundle carry one business identifier. Every Bundle is validator-clean.
Prints PASS/FAIL/SKIP lines for tests/run.sh.

Environment: ROOT, BUILD, SR2FHIR, PYTHON (the python with pydicom), SHARED.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import SR2FHIR, VALIDATE, eq, out, test  # noqa: E402

PROFILE = "http://hl7.org/fhir/uv/dicom-sr/StructureDefinition/"
R = "1.2.826.0.1.3680043.10.1500"
TRACK_UID = R + ".9.30"
DEVICE_OBSERVER_UID = R + ".6.30"
EQUIPMENT_UID = R + ".6.1"

TMP = tempfile.mkdtemp(prefix="sr2fhir-identity-")
harness.require_pydicom("identity")
harness.require_sr2fhir("identity")
gen = harness.run_fixture_script("gen_identity.py", TMP)
if gen.returncode != 0:
    out("FAIL identity-fixtures: %s" % gen.stderr.decode()[-300:].replace("\n", " "))
    sys.exit(1)

_cache = {}


class Bundle:
    def __init__(self, path):
        self.path = path
        self.d = json.load(open(path, encoding="utf-8"))
        self.entries = self.d.get("entry", [])
        self.by_url = {e["fullUrl"]: e["resource"] for e in self.entries}
        self.resources = [e["resource"] for e in self.entries]

    def of(self, rtype, profile=None):
        return [r for r in self.resources if r["resourceType"] == rtype and
                (profile is None or PROFILE + profile in r.get("meta", {}).get("profile", []))]

    def resolve(self, ref):
        assert ref.get("reference") in self.by_url, "unresolved reference %r" % ref
        return self.by_url[ref["reference"]]

    def refs(self, r, key):
        v = r.get(key, [])
        return [self.resolve(x) for x in (v if isinstance(v, list) else [v])]


def bundle(name, *opts):
    key = (name,) + opts
    if key not in _cache:
        dst = os.path.join(TMP, re.sub(r"[^A-Za-z0-9]+", "_", "-".join(key)) + ".json")
        p = subprocess.run([SR2FHIR, "convert", os.path.join(TMP, name + ".dcm"), "-o", dst,
                            *opts], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert p.returncode == 0, "convert %s: exit %d: %s" % (name, p.returncode,
                                                                p.stderr.decode()[-300:])
        _cache[key] = Bundle(dst)
    return _cache[key]


def profile_of(r):
    p = r.get("meta", {}).get("profile", [])
    return p[0][len(PROFILE):] if p and p[0].startswith(PROFILE) else None


def code_of(r):
    return [c.get("code") for c in r.get("code", {}).get("coding", [])][0]


def value(r):
    return r.get("valueQuantity", {}).get("value")


def device_of(b, o):
    d = b.refs(o, "device")
    assert len(d) == 1, "%d devices on %s" % (len(d), code_of(o))
    return d[0]


def group_named(b, label):
    for g in b.of("Observation"):   # R4 (M25) has no profiles: groups have members
        if "hasMember" not in g:
            continue
        ids = [i.get("value") for i in g.get("identifier", [])]
        ids += [i.get("value") for s in b.refs(g, "bodyStructure") for i in s.get("identifier", [])]
        if label in ids:
            return g
    raise AssertionError("no group %r" % label)


# ---- 10#6 ---------------------------------------------------------------------------
def t_device_observer(*opts):
    def run():
        b = bundle("identity_device", *opts)
        g = group_named(b, "Radiomics")
        dev = device_of(b, g)
        eq([i.get("value") for i in dev.get("identifier", [])], ["urn:oid:" + DEVICE_OBSERVER_UID],
           "group's device (the device observer)")
        if not opts:
            eq(profile_of(dev), "dicom-participant-device", "profile of the group's device")
        nums = {value(m): device_of(b, m) for m in b.refs(g, "hasMember")}
        assert nums[11] is dev, "the NUM without an algorithm has %r, not the device observer" % (
            nums[11].get("identifier") or nums[11].get("displayName"))
        own = nums[2]
        assert own is not dev and (own.get("displayName") == "OwnAlgo" or any(
            n.get("name") == "OwnAlgo" for n in own.get("deviceName", []))), \
            "the NUM with its own algorithm has %r" % own.get("displayName")
        p = group_named(b, "Read by a person")
        for o in [p] + b.refs(p, "hasMember"):
            d = device_of(b, o)
            eq([i.get("value") for i in d.get("identifier", [])], ["urn:oid:" + EQUIPMENT_UID],
               "device where a person observer replaces the device observer (the equipment)")
    return run


test("10#6 M22/M10 device observer (TID 1004) is the device of the Observations in its "
     "context; an item's own algorithm comes first; without a device observer the "
     "equipment (R5)", t_device_observer())
test("10#6 M22/M10 the same in R4 (M25)", t_device_observer("--fhir-version", "R4"))


# ---- 10#7 ---------------------------------------------------------------------------
def ids_by(b, rtype, profile=None):
    return sorted(r["id"] for r in b.of(rtype, profile))


def t_same_ids(*opts):
    def run():
        a, c = bundle("identity_a", *opts), bundle("identity_b", *opts)
        kinds = [("Device", "algorithm-identification"), ("Device", "dicom-participant-device"),
                 ("Device", "dicom-general-equipment"), ("Practitioner", None)]
        if not opts:
            kinds.append(("BodyStructure", None))
        for rtype, prof in kinds:
            ia = ids_by(a, rtype, prof if not opts else None)
            ib = ids_by(c, rtype, prof if not opts else None)
            assert ia, "no %s %s" % (rtype, prof or "")
            eq(ib, ia, "%s %s ids of the follow-up" % (rtype, prof or ""))
        ea = {e["resource"]["id"]: e for e in a.entries}
        for e in c.entries:
            r = e["resource"]
            if r["resourceType"] in ("Device", "Practitioner", "BodyStructure"):
                eq(e["fullUrl"], ea[r["id"]]["fullUrl"], "fullUrl of %s/%s" % (r["resourceType"], r["id"]))
                eq(e["request"], ea[r["id"]]["request"], "request of %s/%s" % (r["resourceType"], r["id"]))
        oa, ob = set(ids_by(a, "Observation")), set(ids_by(c, "Observation"))
        assert oa and not oa & ob, "the two reports share Observation ids"
    return run


test("10#7 M24 a follow-up SR (other SOP Instance UID) about the same lesion, algorithm and "
     "observers: the same BodyStructure, Device and Practitioner ids, fullUrls and PUTs; "
     "its own Observations (R5)", t_same_ids())
test("10#7 M24 the same Device and Practitioner ids in R4 (M25)",
     t_same_ids("--fhir-version", "R4"))


def business_ids(r):
    """(type, system, value) of each identifier of r."""
    out_ = []
    for i in r.get("identifier", []):
        t = tuple((c.get("system"), c.get("code")) for c in i.get("type", {}).get("coding", []))
        out_.append((t, i.get("system"), i.get("value")))
    return out_


def t_num_site():
    b = bundle("identity_a")
    g = group_named(b, "Target lesion 1")
    lesion = b.refs(g, "bodyStructure")
    eq(len(lesion), 1, "the group's BodyStructure")
    lesion = lesion[0]
    tracked = [i.get("value") for i in lesion.get("identifier", [])]
    eq(tracked, ["Target lesion 1", "urn:oid:" + TRACK_UID], "the lesion's identifiers")
    vol = [m for m in b.refs(g, "hasMember") if value(m) == 2.5][0]
    own = b.refs(vol, "bodyStructure")
    eq(len(own), 1, "the NUM's own BodyStructure (Lung, left)")
    assert own[0] is not lesion, "the NUM's own site is filed under the lesion's BodyStructure"
    eq(own[0].get("identifier", []), [], "identifiers of the NUM's own site's BodyStructure")
    eq([c.get("code") for s in own[0]["includedStructure"] for c in s["structure"]["coding"]],
       ["39607008"], "the NUM's own site")


test("10#7 M18 a NUM-level finding site inside a group with tracking ids is a "
     "BodyStructure of its own without the group's tracking identifiers", t_num_site)


def t_unique_business_ids():
    for name in ("identity_a", "identity_b", "identity_device"):
        b = bundle(name)
        seen = {}
        for r in b.resources:
            if r["resourceType"] == "Observation":
                continue
            for k in business_ids(r):
                other = seen.setdefault(k, r)
                assert other is r, "%s: %s/%s and %s/%s both carry identifier %r" % (
                    name, other["resourceType"], other["id"], r["resourceType"], r["id"], k)


test("10#7 M24 no two resources of a Bundle carry one business identifier", t_unique_business_ids)


def t_distinct_reports_distinct_lesions():
    a, d = bundle("identity_a"), bundle("identity_device")
    assert not set(ids_by(a, "Practitioner")) & set(ids_by(d, "Practitioner")), \
        "different persons share a Practitioner id"
    eq(set(ids_by(a, "Device", "dicom-participant-device")),
       set(ids_by(d, "Device", "dicom-participant-device")), "one device observer, one id")


test("10#7 M24 different observers keep different ids; the same device observer in "
     "another report has the same id", t_distinct_reports_distinct_lesions)

if not os.path.exists(VALIDATE):
    out("SKIP identity fhir-validate: %s not found (../shared beside the checkout)" % VALIDATE)
else:
    for n in ("identity_device", "identity_a", "identity_b"):
        def run(n=n):
            p = harness.validator(bundle(n).path)
            if p.returncode == 2:
                raise AssertionError("validator failed: %s" % p.stderr.decode()[-300:])
            errors = [ln for ln in p.stdout.decode().splitlines() if ln.startswith("ERROR")]
            eq(errors, [], "validator errors")
        test("fhir-validate %s: no ERROR" % n, run)

sys.exit(harness.exit_code())
