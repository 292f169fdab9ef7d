#!/usr/bin/env python3
"""Issue 10 #4 (M16): a Subject Context (TID 1006) other than the patient is never filed
silently against the patient. Fixtures from tests/fixtures/gen_context.py:

  subject_fetus     every Observation keeps subject = the patient (the mother) and has
                    focus = a BodyStructure "Entire fetus" (SCT 83418008) carrying the
                    Subject UID and Subject ID, patient = the mother, Fetus Number
  subject_specimen  the first group's Observations focus on a Specimen (UID, identifier,
                    type); the second group's (the patient's) have no focus
  subject_device    focus = a Device with the Device Subject's UID, name, manufacturer,
                    model and serial
  subject_other     an unknown Subject Class is refused: exit 5, one line naming it
  R4                fetus, specimen and device in the R4 form (no longer refused): focus
                    as in R5 to a resource holding only R4 elements (BodyStructure.location
                    for the fetus, Device.deviceName of type user-friendly-name), same ids
                    as the R5 form; the validator has no R4 mode, so the element names
                    are checked against R4's (hl7.org/fhir/R4)
  subject_fetus_followup  10#4 follow-up of 10#7 (M24 amended): another SR (another SOP
                    Instance UID) about the same fetus of the same patient references the
                    same BodyStructure id as subject_fetus (a follow-up updates it)
  subject_device_equipment  the Device Subject UID is the equipment's Device UID: one Device
                    in the Bundle, referenced by focus (not two with one identifier)

Every Bundle is validator-clean (../shared/tools/fhir-validate, SKIP when absent).
Prints PASS/FAIL/SKIP lines for tests/run.sh.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import ROOT, SR2FHIR, VALIDATE, report  # noqa: E402

SUBJECT_UID = "urn:oid:1.2.826.0.1.3680043.10.1500.9.40"
PATIENT = {"system": "urn:oid:1.2.826.0.1.3680043.10.1500.99.1", "value": "PAT-0001",
           "assigner": {"display": "HOSP"}}


def convert(path, out, *args):
    return subprocess.run([SR2FHIR, "convert", "-q", path, "-o", out, *args],
                          capture_output=True, text=True)


def resources(bundle):
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    obs = [r for r in by_url.values() if r["resourceType"] == "Observation"]
    return by_url, obs


def focus_of(obs, by_url):
    f = obs.get("focus") or []
    return [by_url.get(x.get("reference")) for x in f]


def ident(res, code=None):
    for i in res.get("identifier", []):
        c = i.get("type", {}).get("coding", [{}])[0].get("code")
        if c == code:
            return i.get("value")
    return None


def validate(name, path):
    if not os.path.exists(VALIDATE):
        report(None, f"{name}:validator-clean", f"{VALIDATE} is absent")
        return
    r = subprocess.run([VALIDATE, path], capture_output=True, text=True)
    report(r.returncode == 0, f"{name}:validator-clean", (r.stdout + r.stderr).strip()[-400:])


def check_all_focus(name, obs, by_url, rtype, check):
    bad = [o["code"]["coding"][0]["code"] for o in obs
           if o.get("subject", {}).get("identifier") != PATIENT]
    report(not bad, f"{name}:subject-stays-the-patient", f"other subject on {bad}")
    targets = [focus_of(o, by_url) for o in obs]
    ok = bool(targets) and all(len(t) == 1 and t[0] and t[0]["resourceType"] == rtype for t in targets)
    report(ok, f"{name}:every-observation-focus-{rtype}", f"focus targets {targets[:2]}")
    if ok:
        problem = check(targets[0][0])
        report(not problem, f"{name}:{rtype}-content", problem or "")


def fetus_problem(bs):
    code = bs.get("includedStructure", [{}])[0].get("structure", {}).get("coding", [{}])[0].get("code")
    if code != "83418008":
        return f"includedStructure {code}, not 83418008 Entire fetus"
    if bs.get("patient", {}).get("identifier") != PATIENT:
        return f"patient {bs.get('patient')} is not the mother"
    if ident(bs, "121030") != "Fetus A":
        return f"Subject ID identifier {bs.get('identifier')}"
    if not any(i.get("value") == SUBJECT_UID for i in bs.get("identifier", [])):
        return "no Subject UID identifier"
    if bs.get("description") != "Fetus Number 1":
        return f"description {bs.get('description')!r}"
    return None


def specimen_problem(sp):
    if ident(sp, "121041") != "S-17":
        return f"Specimen Identifier {sp.get('identifier')}"
    if sp.get("type", {}).get("coding", [{}])[0].get("code") != "119376003":
        return f"type {sp.get('type')}"
    if sp.get("subject", {}).get("identifier") != PATIENT:
        return "subject is not the patient"
    return None


def device_problem(d):
    want = {"displayName": "Phantom 7", "manufacturer": "PhantomCo", "modelNumber": "QA-1",
            "serialNumber": "0042"}
    got = {k: d.get(k) for k in want}
    if got != want:
        return f"{got}"
    if not any(i.get("value") == SUBJECT_UID + ".2" for i in d.get("identifier", [])):
        return "no Device Subject UID identifier"
    return None


def focus_ids(fx, tmp, name, *args):
    """The focus references of every Observation of `name` converted, or None (FAIL reported)."""
    out = os.path.join(tmp, name + "".join(args) + ".json")
    r = convert(os.path.join(fx, name + ".dcm"), out, *args)
    if r.returncode:
        report(False, f"issue10-4:{name}:converts", r.stderr.strip())
        return None, None
    bundle = json.load(open(out))
    by_url, obs = resources(bundle)
    return {x["reference"] for o in obs for x in o.get("focus", [])}, bundle


def check_followup(fx, tmp):
    first, b1 = focus_ids(fx, tmp, "subject_fetus")
    second, b2 = focus_ids(fx, tmp, "subject_fetus_followup")
    if first is None or second is None:
        return
    ids1 = {e["fullUrl"] for e in b1["entry"] if e["resource"]["resourceType"] == "Observation"}
    ids2 = {e["fullUrl"] for e in b2["entry"] if e["resource"]["resourceType"] == "Observation"}
    report(len(first) == 1 and first == second and not ids1 & ids2,
           "issue10-4-7:subject_fetus_followup:same-fetus-same-focus-id",
           f"focus {sorted(first)} vs {sorted(second)} (Observations shared: {len(ids1 & ids2)})")


def check_device_equipment(fx, tmp):
    name = "subject_device_equipment"
    focus, bundle = focus_ids(fx, tmp, name)
    if focus is None:
        return
    devices = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Device"]
    urls = {e["fullUrl"] for e in devices}
    report(len(devices) == 1 and focus == urls,
           f"issue10-4-7:{name}:one-device-is-equipment-and-focus",
           f"{len(devices)} Devices {sorted(urls)}, focus {sorted(focus)}")
    validate(f"issue10-4-7:{name}", os.path.join(tmp, name + ".json"))


# The elements of FHIR R4 (4.0.1) BodyStructure, Specimen and Device.
R4_ELEMENTS = {
    "BodyStructure": {"identifier", "active", "morphology", "location", "locationQualifier",
                      "description", "image", "patient"},
    "Specimen": {"identifier", "accessionIdentifier", "status", "type", "subject", "receivedTime",
                 "parent", "request", "collection", "processing", "container", "condition", "note"},
    "Device": {"identifier", "definition", "udiCarrier", "status", "statusReason",
               "distinctIdentifier", "manufacturer", "manufactureDate", "expirationDate",
               "lotNumber", "serialNumber", "deviceName", "modelNumber", "partNumber", "type",
               "specialization", "version", "property", "patient", "owner", "contact",
               "location", "url", "note", "safety", "parent"},
}
R4_COMMON = {"resourceType", "id", "meta", "implicitRules", "language", "text", "contained",
             "extension", "modifierExtension"}
R4_DEVICE_NAME_TYPES = {"udi-label-name", "user-friendly-name", "patient-reported-name",
                        "manufacturer-name", "model-name", "other"}


def r4_problem(res, rtype):
    extra = sorted(set(res) - R4_ELEMENTS[rtype] - R4_COMMON)
    if extra:
        return f"not R4 elements of {rtype}: {extra}"
    if rtype == "BodyStructure":
        code = res.get("location", {}).get("coding", [{}])[0].get("code")
        if code != "83418008" or res.get("patient", {}).get("identifier") != PATIENT:
            return f"location {code}, patient {res.get('patient')}"
    if rtype == "Device":
        names = res.get("deviceName", [])
        if names != [{"name": "Phantom 7", "type": "user-friendly-name"}] or \
                any(n.get("type") not in R4_DEVICE_NAME_TYPES for n in names):
            return f"deviceName {names}"
    if rtype == "Specimen" and ident(res, "121041") != "S-17":
        return f"Specimen Identifier {res.get('identifier')}"
    return None


def check_r4(fx, tmp, name, rtype):
    """Issue 10 #4 follow-up (M25): the subject in the R4 form, same focus id as R5."""
    r4, b4 = focus_ids(fx, tmp, name, "--fhir-version", "R4")
    r5, _ = focus_ids(fx, tmp, name)
    if r4 is None or r5 is None:
        return
    by_url, obs = resources(b4)
    targets = [by_url.get(u) for u in r4]
    ok = len(targets) == 1 and targets[0] and targets[0]["resourceType"] == rtype and r4 == r5
    report(ok, f"issue10-4:{name}:R4-focus-{rtype}-same-id-as-R5",
           f"R4 focus {sorted(r4)}, R5 {sorted(r5)}")
    if ok:
        problem = r4_problem(targets[0], rtype)
        report(not problem, f"issue10-4:{name}:R4-{rtype}-R4-elements", problem or "")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        fx = os.path.join(tmp, "fx")
        r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests", "fixtures", "gen_context.py"), fx],
                           capture_output=True, text=True)
        if r.returncode:
            report(False, "subject:fixtures", r.stderr.strip()[-300:])
            return 1
        for name, rtype, check in (("subject_fetus", "BodyStructure", fetus_problem),
                                   ("subject_device", "Device", device_problem)):
            out = os.path.join(tmp, name + ".json")
            r = convert(os.path.join(fx, name + ".dcm"), out)
            if r.returncode:
                report(False, f"issue10-4:{name}:converts", r.stderr.strip())
                continue
            by_url, obs = resources(json.load(open(out)))
            check_all_focus(f"issue10-4:{name}", obs, by_url, rtype, check)
            validate(f"issue10-4:{name}", out)

        name = "subject_specimen"
        out = os.path.join(tmp, name + ".json")
        r = convert(os.path.join(fx, name + ".dcm"), out)
        if r.returncode:
            report(False, f"issue10-4:{name}:converts", r.stderr.strip())
        else:
            by_url, obs = resources(json.load(open(out)))
            first = [o for o in obs if focus_of(o, by_url)]
            rest = [o for o in obs if not o.get("focus")]
            report(len(first) == 2 and len(rest) == 2,
                   f"issue10-4:{name}:only-the-specimen-group-has-focus",
                   f"{len(first)} with focus, {len(rest)} without (want 2 and 2)")
            check_all_focus(f"issue10-4:{name}", first, by_url, "Specimen", specimen_problem)
            validate(f"issue10-4:{name}", out)

        check_followup(fx, tmp)
        check_device_equipment(fx, tmp)

        r = convert(os.path.join(fx, "subject_other.dcm"), os.path.join(tmp, "o.json"))
        lines = r.stderr.strip().splitlines()
        report(r.returncode == 5 and len(lines) == 1 and "Subject Class (SUBJ-X, 99X" in r.stderr
               and "1.5" in r.stderr and not os.path.exists(os.path.join(tmp, "o.json")),
               "issue10-4:subject_other:refused-exit-5",
               f"exit {r.returncode}, stderr {r.stderr.strip()!r}")

        for name, rtype in (("subject_fetus", "BodyStructure"), ("subject_specimen", "Specimen"),
                            ("subject_device", "Device")):
            check_r4(fx, tmp, name, rtype)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
