#!/usr/bin/python3
"""tests/integration/test_identity_send.py - issue 10 defect 7 (M24 amended) against a real
FHIR server: two different SRs about the same lesion (same patient and Tracking UID), made
by the same algorithm and observers (tests/fixtures/gen_identity.py identity_a.dcm and
identity_b.dcm, different SOP Instance UIDs) are sent one after the other with
`sr2fhir send`. The server must then hold exactly one lesion BodyStructure (the one the
tracking UID names), one AlgorithmIdentification Device, one device observer Device, one
equipment Device and one Practitioner, and both reports' Observations must reference them.
Then R4 (M25): one of each Device and one Practitioner.

The server is ../shared/tools/fhir-server (Medplum in memory), started here on a free port
and always stopped. SKIP when ../shared, node/npm or pydicom are absent.
Prints PASS/FAIL/SKIP lines for tests/run.sh.

Environment: ROOT, BUILD, SR2FHIR, PYTHON (the python with pydicom), SHARED.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import FHIR_SERVER_SH, SR2FHIR, clean_env, eq, out  # noqa: E402

PROFILE = "http://hl7.org/fhir/uv/dicom-sr/StructureDefinition/"
TRACK_UID = "1.2.826.0.1.3680043.10.1500.9.30"


def test(name, fn, *args):
    harness.test(name, fn, *args, width=700)


if not os.path.exists(FHIR_SERVER_SH):
    out("SKIP identity-send: %s not found (../shared beside the checkout)" % FHIR_SERVER_SH)
    sys.exit(0)
if not shutil.which("node") or not shutil.which("npm"):
    out("SKIP identity-send: the FHIR server tool needs node and npm")
    sys.exit(0)
harness.require_pydicom("identity-send", hint="")
harness.require_sr2fhir("identity-send")

TMP = tempfile.mkdtemp(prefix="sr2fhir-identity-send-")
gen = harness.run_fixture_script("gen_identity.py", TMP)
if gen.returncode != 0:
    out("FAIL identity-send-fixtures: %s" % gen.stderr.decode()[-300:].replace("\n", " "))
    sys.exit(1)
A, B = os.path.join(TMP, "identity_a.dcm"), os.path.join(TMP, "identity_b.dcm")
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method, url):
    req = urllib.request.Request(url, method=method, headers={"Accept": "application/fhir+json"})
    try:
        with _opener.open(req, timeout=60) as r:
            return r.status, json.loads(r.read().decode("utf-8") or "null")
    except urllib.error.HTTPError as e:
        return e.code, None


class Server(harness.FhirServerTool):
    def __init__(self, version):
        super().__init__(version, os.path.join(TMP, "fhir-" + version))

    def all(self, rtype):
        url, found = "%s/%s?_count=1000" % (self.base, rtype), []
        while url:
            status, body = http("GET", url)
            assert status == 200, "GET %s: HTTP %d" % (url, status)
            found += [e["resource"] for e in body.get("entry", [])]
            url = ([ln["url"] for ln in body.get("link", []) if ln.get("relation") == "next"]
                   or [None])[0]
        return found


def send(server, path, version):
    p = subprocess.run([SR2FHIR, "send", "--server", server.base, "--fhir-version", version,
                        path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=clean_env(), cwd=TMP, timeout=150)
    assert p.returncode == 0, "send %s: exit %d: %s" % (os.path.basename(path), p.returncode,
                                                       p.stderr.decode()[-400:])


def profile_of(r):
    p = r.get("meta", {}).get("profile", [])
    return p[0][len(PROFILE):] if p and p[0].startswith(PROFILE) else None


def sop_of(o):
    """The SR an Observation came from: its Observations are told apart by their values."""
    return o.get("valueQuantity", {}).get("value")


def refs(o, key):
    v = o.get(key, [])
    return [x.get("reference") for x in (v if isinstance(v, list) else [v])]


def r5_case(srv):
    send(srv, A, "R5")
    send(srv, B, "R5")
    devs = srv.all("Device")
    by_profile = {}
    for d in devs:
        by_profile.setdefault(profile_of(d), []).append(d)
    eq({k: len(v) for k, v in by_profile.items()},
       {"algorithm-identification": 1, "dicom-participant-device": 1,
        "dicom-general-equipment": 1}, "Devices on the server by profile")
    prs = srv.all("Practitioner")
    eq(len(prs), 1, "Practitioners on the server")
    bss = srv.all("BodyStructure")
    lesion = [b for b in bss if any(i.get("value") == "urn:oid:" + TRACK_UID
                                    for i in b.get("identifier", []))]
    eq(len(lesion), 1, "BodyStructures carrying the Tracking UID")
    # the NUM's own, untracked site (left lung) is that structure of the patient: one too
    eq(len(bss), 2, "BodyStructures on the server (the lesion, the NUM's own site)")
    obs = srv.all("Observation")
    groups = [o for o in obs if profile_of(o) == "imaging-measurement-group"]
    eq(len(groups), 2, "group Observations (one per report)")
    alg = "Device/" + by_profile["algorithm-identification"][0]["id"]
    dev = "Device/" + by_profile["dicom-participant-device"][0]["id"]
    for g in groups:
        eq(refs(g, "bodyStructure"), ["BodyStructure/" + lesion[0]["id"]], "group bodyStructure")
        eq(refs(g, "device"), [alg], "group device (its algorithm)")
        eq(refs(g, "performer"), ["Practitioner/" + prs[0]["id"]], "group performer")
    nums = [o for o in obs if profile_of(o) == "imaging-measurement"]
    eq(sorted(sop_of(o) for o in nums), [1.5, 2.5, 9, 12], "measurement values of both reports")
    for o in nums:
        eq(refs(o, "device"), [dev], "device of measurement %s (the device observer)" % sop_of(o))
        eq(refs(o, "performer"), ["Practitioner/" + prs[0]["id"]], "performer of %s" % sop_of(o))


def r4_case(srv):
    send(srv, A, "R4")
    send(srv, B, "R4")
    eq(len(srv.all("Device")), 3, "Devices on the R4 server (algorithm, device observer, "
                                  "equipment)")
    eq(len(srv.all("Practitioner")), 1, "Practitioners on the R4 server")
    eq(len(srv.all("Observation")), 6, "Observations on the R4 server (3 per report)")


def with_server(version, fn):
    srv = Server(version)
    try:
        srv.start()
    except RuntimeError as e:
        if "npm install failed" in str(e):
            out("SKIP identity-send-%s: %s" % (version, str(e)[:300]))
            return
        raise
    try:
        fn(srv)
    finally:
        srv.stop()


test("10#7 M24 two SRs about one lesion (same patient + Tracking UID, algorithm, observers) "
     "sent one after the other: one lesion BodyStructure, one algorithm Device, one device "
     "observer Device, one equipment Device, one Practitioner on the server, both reports' "
     "Observations referencing them (R5)", with_server, "R5", r5_case)
test("10#7 M24 the same two SRs in R4 (M25): one of each Device, one Practitioner",
     with_server, "R4", r4_case)
sys.exit(harness.exit_code())
