#!/usr/bin/python3
"""tests/integration/test_send.py - `sr2fhir send` (docs/send.md) against a real FHIR server
and a scripted stub. Prints PASS/FAIL/SKIP lines for tests/run.sh; each name cites the rule.

- Stub cases (tests/integration/stub_server.py, http.server in a thread, HTTP and HTTPS):
  the lookups asked for (M4-M6), version detection (M25), retries and Retry-After, exit
  codes 10/11, credentials (bearer, basic, client certificate) and that secrets never leak,
  TLS verification, plain http refused for other hosts, the audit log. They run whenever
  the binary and pydicom are there.
- Real server cases (../shared/tools/fhir-server: Medplum in memory, R5 and R4, each started
  here on a free port and always stopped): literal references when the Patient,
  ServiceRequest and ImagingStudy exist, logical ones when not, --require-existing,
  ambiguous matches, every tid1500 corpus file delivered (the large ones as several
  transactions) and found again by search, references resolving on the server, idempotent
  re-sending, -j 4, R4 and a refused R5 Bundle leaving nothing behind. Skipped (with the
  reason) when ../shared or node/npm are absent.

Searches on Medplum's in-memory repository: `Observation?subject=Patient/ID`, the chained
`Observation?subject:Patient.identifier=SYS|VAL` (and `patient.identifier=`) and
`Observation?code=SYS|CODE` work; `subject:identifier=SYS|VAL` matches nothing (the modifier
is not implemented for references: logical references cannot be searched), and
`subject.identifier=` is refused (400: subject has several target types). So the corpus
case creates the Patients first and searches by the literal reference and by the chain.

Small SRs are made here with pydicom from tests/fixtures/generate.py's explicit_le.dcm
(new SOP Instance UID, Patient ID and issuer, accession and issuer, Study Instance UID).
What the server must hold is computed from `sr2fhir convert` of the same file.

Environment: ROOT, BUILD, SR2FHIR, PYTHON (the python with pydicom), SHARED.
"""
import atexit
import base64
import collections
import email.utils
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stub_server  # noqa: E402
from stub_server import SUCCESS, StubFhirServer, answer, outcome  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import (FHIR_SERVER_SH, PYTHON, ROOT, SHARED, SR2FHIR, clean_env, eq,  # noqa: E402
                     out)
from harness import SkipTest as Skip  # noqa: E402
from harness import short  # noqa: E402
import fhirserver  # noqa: E402
from fhirserver import (MADE_TYPES, R4_TYPES, R5_TYPES, convert, http, ids_of,  # noqa: E402
                        refs_of, resources, stored)

CORPUS = os.path.join(SHARED, "corpus", "files")

R = "1.2.826.0.1.3680043.10.1500.77"        # UIDs of the SRs made here
TOKEN = "tok-5ecret-9f2b7c1d0e"              # secrets that must never be printed or logged
TOKEN2 = "tok-5ecret-other-44a1"
TOKEN3 = "tok-5ecret-file-8b3e"
USER = "sendtester"
PASSWORD = "pw-5ecret-a71e3d55"
PASSWORD2 = "pw-5ecret-file-0c9f"
SECRETS = [TOKEN, TOKEN2, TOKEN3, PASSWORD, PASSWORD2] + [
    base64.b64encode(("%s:%s" % (USER, p)).encode()).decode() for p in (PASSWORD, PASSWORD2)]
AUDIT_FIELDS = ("time", "file", "sop_instance_uid", "server", "fhir_version", "outcome",
                "http_status", "attempts", "transactions", "transactions_stored", "duration_ms",
                "patient", "service_request", "imaging_study", "created", "updated", "error")
MAX_ENTRIES = 50        # --max-entries default (docs/send.md, Large reports)


def test(name, fn, *args):
    """harness.test with FAIL reasons up to 700 characters; a Skip exception prints SKIP."""
    harness.test(name, fn, *args, width=700)


# ---------------------------------------------------------------------------------------
# Running sr2fhir
# ---------------------------------------------------------------------------------------
TMP = tempfile.mkdtemp(prefix="sr2fhir-send-")
_counter = [0]


class Run:
    def __init__(self, cmd, rc, stdout, stderr, audit_path, elapsed):
        self.cmd, self.rc, self.stdout, self.stderr = cmd, rc, stdout, stderr
        self.audit_path, self.elapsed = audit_path, elapsed
        self.audit_text = ""
        if audit_path and os.path.exists(audit_path):
            self.audit_text = open(audit_path, encoding="utf-8", errors="replace").read()
        self.audit = []
        self.audit_bad = []
        for line in self.audit_text.splitlines():
            try:
                self.audit.append(json.loads(line))
            except ValueError:
                self.audit_bad.append(line)

    def err_lines(self):
        """stderr lines, without the summary of a run with several inputs
        ("sr2fhir: 3 files: 2 delivered, 1 failed; ...") and the reading warnings
        ("sr2fhir: FILE: warning: ...", as convert prints them)."""
        return [ln for ln in self.stderr.splitlines()
                if ln.strip() and not SUMMARY.match(ln) and ": warning: " not in ln]

    def out_lines(self):
        return [ln for ln in self.stdout.splitlines() if ln.strip()]

    def what(self):
        return "exit %d, stderr: %s, stdout: %s" % (self.rc, short(self.stderr, 400),
                                                    short(self.stdout, 200))

    def audit_for(self, path):
        lines = [a for a in self.audit if a.get("file") == path]
        assert len(lines) == 1, "%d audit lines for %s (audit: %s)" % (
            len(lines), path, short(self.audit_text, 300))
        return lines[0]

    def everything(self):
        return self.stdout + self.stderr + self.audit_text


def send(*args, env=None, cwd=None, audit=True, timeout=150):
    """sr2fhir send ARGS, with --audit-log in a fresh file unless audit is False."""
    _counter[0] += 1
    audit_path = os.path.join(TMP, "audit-%d.log" % _counter[0]) if audit else None
    cmd = [SR2FHIR, "send"] + [str(a) for a in args]
    if audit_path:
        cmd += ["--audit-log", audit_path]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env or clean_env(), cwd=cwd or TMP, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s did not finish within %d s" % (" ".join(cmd[:4]), timeout))
    return Run(cmd, p.returncode, p.stdout.decode("utf-8", "replace"),
               p.stderr.decode("utf-8", "replace"), audit_path, time.monotonic() - t0)


def doc_identifiers(bundle):
    """(subject identifier, accession identifier or None, study identifier) of a Bundle."""
    o = resources(bundle, "Observation")[0]
    subj = o.get("subject", {}).get("identifier")
    acc = ([b["identifier"] for b in o.get("basedOn", []) if b.get("type") == "ServiceRequest"]
           or [None])[0]
    study = ([p["identifier"] for p in o.get("partOf", []) if p.get("type") == "ImagingStudy"]
             or [None])[0]
    return subj, acc, study


def token(ident):
    """The search token of an identifier: system|value, or value without a system."""
    return "%s|%s" % (ident["system"], ident["value"]) if ident.get("system") else ident["value"]


def walk_refs(node, path=""):
    """(path, reference string) of every Reference.reference below node."""
    if isinstance(node, list):
        for i, x in enumerate(node):
            yield from walk_refs(x, "%s[%d]" % (path, i))
    elif isinstance(node, dict):
        for k, v in node.items():
            if k == "reference" and isinstance(v, str):
                yield path, v
            elif isinstance(v, (dict, list)):
                yield from walk_refs(v, path + "." + k)


SUMMARY = re.compile(r"^sr2fhir: \d+ files?: ")
# docs/send.md: "FILE: delivered to URL: N resources (Patient/123, ServiceRequest logical, ...)";
# the implementation adds the version after the URL: "delivered to URL (FHIR R5): ...".
DELIVERED = re.compile(r"^(.*): delivered to (\S+)(?: \(FHIR R[45]\))?: (\d+) resources \((.*)\)$")


def delivered_line(run, path):
    lines = [m for m in (DELIVERED.match(ln) for ln in run.out_lines()) if m and m.group(1) == path]
    assert len(lines) == 1, "%d 'delivered' lines on stdout for %s: %s" % (
        len(lines), path, short(run.stdout, 400))
    return lines[0]


def assert_no_secrets(run, what=""):
    text = run.everything()
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, "%s: a secret appears in stdout, stderr or the audit log: %s" % (
        what, short(text, 300))


def one_error_line(run, *needles):
    lines = run.err_lines()
    assert len(lines) == 1, "%d stderr lines, expected 1: %s" % (len(lines), short(run.stderr, 500))
    assert lines[0].startswith("sr2fhir: "), \
        "stderr line %r does not start with 'sr2fhir: '" % lines[0]
    for n in needles:
        assert n.lower() in lines[0].lower(), "stderr %r does not mention %r" % (lines[0], n)
    return lines[0]


# ---------------------------------------------------------------------------------------
# SRs made with pydicom
# ---------------------------------------------------------------------------------------
BASE_SR = os.path.join(TMP, "fixtures", "explicit_le.dcm")
NEG_SR = os.path.join(TMP, "fixtures", "rules_not1500.dcm")
ISSUER = R + ".99.1"
ACC_ISSUER = "https://example.org/send-accession"


def make_sr(n, pid=None, issuer=ISSUER, accession="default", acc_issuer=ACC_ISSUER, study=None,
            tz=True, dst=None):
    """An SR like explicit_le.dcm with SOP Instance UID R.5.n and the given Patient ID
    (default SEND-n), issuer of Patient ID (ISO UID, or None for none), accession
    (default ACC-n; None for none) and its issuer (URI), Study Instance UID (default R.1.n);
    tz False drops Timezone Offset From UTC. Written to dst (default TMP/sr-n.dcm)."""
    import pydicom
    from pydicom.dataset import Dataset
    path = dst or os.path.join(TMP, "sr-%d.dcm" % n)
    ds = pydicom.dcmread(BASE_SR)
    uid = "%s.5.%d" % (R, n)
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.PatientID = pid or "SEND-%d" % n
    if issuer:
        q = Dataset()
        q.UniversalEntityID = issuer
        q.UniversalEntityIDType = "ISO"
        ds.IssuerOfPatientIDQualifiersSequence = [q]
        ds.IssuerOfPatientID = "SENDHOSP"
    else:
        for kw in ("IssuerOfPatientIDQualifiersSequence", "IssuerOfPatientID"):
            if kw in ds:
                delattr(ds, kw)
    if accession:
        ds.AccessionNumber = "ACC-%d" % n if accession == "default" else accession
        if acc_issuer:
            q = Dataset()
            q.UniversalEntityID = acc_issuer
            q.UniversalEntityIDType = "URI"
            ds.IssuerOfAccessionNumberSequence = [q]
        elif "IssuerOfAccessionNumberSequence" in ds:
            del ds.IssuerOfAccessionNumberSequence
    else:
        ds.AccessionNumber = ""
        if "IssuerOfAccessionNumberSequence" in ds:
            del ds.IssuerOfAccessionNumberSequence
    old_study, ds.StudyInstanceUID = ds.StudyInstanceUID, study or "%s.1.%d" % (R, n)
    for kw in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for it in ds.get(kw) or []:   # the evidence of the SR's own study moves with it
            if it.get("StudyInstanceUID") == old_study:
                it.StudyInstanceUID = ds.StudyInstanceUID
    if not tz and "TimezoneOffsetFromUTC" in ds:
        del ds.TimezoneOffsetFromUTC
    ds.save_as(path)
    return path


def sop_uid_of(path):
    if path.endswith(".json"):
        return json.load(open(path))["00080018"]["Value"][0]
    import pydicom
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


class FhirServer(fhirserver.FhirServer):
    """../shared/tools/fhir-server, started on a free port with its own pid and log file
    (tests/lib/fhirserver.py), logging the requests it sees."""

    def __init__(self, version):
        super().__init__(version, os.path.join(TMP, "fhir-" + version), FHIR_LOG="1")


def patient_resource(ident):
    r = {"resourceType": "Patient", "active": True}
    if ident:
        r["identifier"] = [{k: v for k, v in ident.items() if k in ("system", "value")}]
    return r


def service_request(ident, patient_id):
    return {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/" + patient_id},
            "identifier": [{k: v for k, v in ident.items() if k in ("type", "system", "value")}]}


def imaging_study(ident, patient_id):
    return {"resourceType": "ImagingStudy", "status": "available",
            "subject": {"reference": "Patient/" + patient_id},
            "identifier": [{k: v for k, v in ident.items() if k in ("type", "system", "value")}]}


def create_context(server, bundles):
    """Patient, ServiceRequest and ImagingStudy for the identifiers of the Bundles (one each
    per distinct identifier); returns {token: "Type/id"}."""
    made = {}
    anonymous = None
    for b in bundles:
        subj, acc, study = doc_identifiers(b)
        if subj and ("P", token(subj)) not in made:
            made[("P", token(subj))] = server.create(patient_resource(subj))
        if subj:
            pid = made[("P", token(subj))]
        else:
            if anonymous is None:
                anonymous = server.create(patient_resource(None))
            pid = anonymous
        if acc and ("S", token(acc)) not in made:
            made[("S", token(acc))] = server.create(service_request(acc, pid))
        if study and ("I", token(study)) not in made:
            made[("I", token(study))] = server.create(imaging_study(study, pid))
    return made


# ---------------------------------------------------------------------------------------
# Stub cases
# ---------------------------------------------------------------------------------------
def stub_cases():
    sr_a = make_sr(1)                                          # issuer, accession
    sr_b = make_sr(2, issuer=None, accession=None)             # neither
    b_a = convert(sr_a)
    stub = StubFhirServer()
    base = stub.start()
    atexit.register(stub.stop)
    try:
        _stub_cases(stub, base, sr_a, sr_b, b_a)
    finally:
        stub.stop()
    tls_cases(sr_a)


def _stub_cases(stub, base, sr_a, sr_b, b_a):
    subj, acc, study = doc_identifiers(b_a)
    b_a_subject = resources(b_a, "Observation")[0]["subject"]

    def t_lookups():
        stub.reset()
        r = send("--server", base, sr_a)
        assert r.rc == 0, r.what()
        searches = [(q.path.rsplit("/", 1)[-1], dict(urllib.parse.parse_qsl(q.query)))
                    for q in stub.requests if q.method == "GET" and q.query]
        eq(sorted(t for t, _ in searches), ["ImagingStudy", "Patient", "ServiceRequest"],
           "searches (one each)")
        got = {t: q for t, q in searches}
        eq(got["Patient"], {"identifier": "urn:oid:%s|SEND-1" % ISSUER, "_count": "2"},
           "M4 Patient search")
        eq(got["ServiceRequest"], {"identifier": "%s|ACC-1" % ACC_ISSUER, "_count": "2"},
           "M6 ServiceRequest search")
        eq(got["ImagingStudy"], {"identifier": "urn:dicom:uid|urn:oid:%s.1.1" % R, "_count": "2"},
           "M5 ImagingStudy search")
        eq((token(subj), token(acc), token(study)),
           ("urn:oid:%s|SEND-1" % ISSUER, "%s|ACC-1" % ACC_ISSUER,
            "urn:dicom:uid|urn:oid:%s.1.1" % R),
           "identifiers of the converted Bundle (the same as searched)")

    def t_lookups_no_issuer():
        stub.reset()
        r = send("--server", base, sr_b)
        assert r.rc == 0, r.what()
        searches = [(q.path.rsplit("/", 1)[-1], dict(urllib.parse.parse_qsl(q.query)))
                    for q in stub.requests if q.method == "GET" and q.query]
        eq(sorted(t for t, _ in searches), ["ImagingStudy", "Patient"],
           "searches (no ServiceRequest without an accession number)")
        eq(dict(searches)["Patient"], {"identifier": "SEND-2", "_count": "2"},
           "Patient search without issuer")

    def t_transaction_form():
        stub.reset()
        r = send("--server", base, sr_a)
        assert r.rc == 0, r.what()
        posts = stub.posts_received()
        eq(len(posts), 1, "POSTs")
        p = posts[0]
        eq(p.path, "/fhir", "POST path")
        assert "application/fhir+json" in p.headers.get("content-type", ""), \
            "Content-Type %r" % p.headers.get("content-type")
        b = p.json()
        eq((b.get("resourceType"), b.get("type")), ("Bundle", "transaction"), "Bundle type")
        for e in b["entry"]:
            res = e["resource"]
            eq((e["request"]["method"], e["request"]["url"]),
               ("PUT", "%s/%s" % (res["resourceType"], res["id"])), "entry request")
            assert res["resourceType"] not in ("Patient", "ServiceRequest", "ImagingStudy"), \
                "a %s is sent (never created)" % res["resourceType"]
        eq(refs_of(b), refs_of(b_a), "the same resources as `convert`")
        m = delivered_line(r, sr_a)
        eq((m.group(2), int(m.group(3))), (base, len(b_a["entry"])), "stdout URL and count")
        assert re.search(r"\bPatient logical\b", m.group(4)) and \
            re.search(r"\bServiceRequest logical\b", m.group(4)) and \
            re.search(r"\bImagingStudy logical\b", m.group(4)), "stdout references: %r" % m.group(4)

    def t_same_as_convert():
        stub.reset()
        sr_tz = make_sr(4, tz=False)
        r = send("--server", base, "--timezone", "+0530", sr_a, sr_tz)
        assert r.rc == 0, r.what()
        posts = stub.posts_received()
        eq(len(posts), 2, "POSTs")
        sent = {json.dumps(p.json(), sort_keys=True) for p in posts}
        for path, want in ((sr_a, b_a), (sr_tz, convert(sr_tz, "R5", "--timezone", "+0530"))):
            assert json.dumps(want, sort_keys=True) in sent, \
                "the Bundle sent for %s differs from `convert`'s" % os.path.basename(path)
        assert "+05:30" in json.dumps(convert(sr_tz, "R5", "--timezone", "+0530")), "no +05:30"

    def t_inputs():
        stub.reset()
        d = os.path.join(TMP, "inputs")
        os.makedirs(os.path.join(d, "sub", "deeper"), exist_ok=True)
        a = make_sr(5, dst=os.path.join(d, "a.dcm"))
        b = make_sr(6, dst=os.path.join(d, "sub", "deeper", "b.dcm"))
        r = send("--server", base, d)
        assert r.rc == 0, r.what()
        eq(len(stub.posts_received()), 2, "POSTs for a folder with 2 SRs in subfolders")
        eq(sorted(x.get("sop_instance_uid") for x in r.audit),
           sorted([sop_uid_of(a), sop_uid_of(b)]), "audit sop_instance_uid")
        stub.reset()
        _counter[0] += 1
        audit = os.path.join(TMP, "audit-%d.log" % _counter[0])
        with open(sr_a, "rb") as f:
            p = subprocess.run([SR2FHIR, "send", "--server", base, "--audit-log", audit, "-"],
                               stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=clean_env(), cwd=TMP, timeout=60)
        eq(p.returncode, 0, "exit code with - (%s)" % short(p.stderr.decode()))
        eq(len(stub.posts_received()), 1, "POSTs for -")
        sent = stub.posts_received()[0].json()
        eq(refs_of(sent), refs_of(b_a), "resources sent for -")

    def t_split():
        stub.reset()
        r = send("--server", base, "--max-entries", "5", sr_a)
        assert r.rc == 0, r.what()
        parts = [p.json() for p in stub.posts_received()]
        n = len(b_a["entry"])
        assert len(parts) >= -(-n // 5), "%d transactions for %d entries, at most 5 each" % (
            len(parts), n)
        seen, order = set(), []
        for k, p in enumerate(parts):
            eq(p.get("type"), "transaction", "Bundle type of part %d" % (k + 1))
            assert 0 < len(p["entry"]) <= 5, "part %d has %d entries" % (k + 1, len(p["entry"]))
            mine = {"%s/%s" % (e["resource"]["resourceType"], e["resource"]["id"])
                    for e in p["entry"]}
            for e in p["entry"]:
                for path, ref in walk_refs(e["resource"], e["resource"]["resourceType"]):
                    assert not ref.startswith("urn:"), "part %d: %s = %s" % (k + 1, path, ref)
                    if ref in refs_of(b_a):
                        assert ref in seen or ref in mine, \
                            "part %d: %s = %s is sent later (not dependency-ordered)" % (
                                k + 1, path, ref)
            seen |= mine
            order += [e["fullUrl"] for e in p["entry"]]
        eq(seen, refs_of(b_a), "resources of all parts")
        eq(len(order), n, "entries of all parts (none twice)")
        a = r.audit_for(sr_a)
        eq((a.get("outcome"), a.get("transactions"), a.get("transactions_stored")),
           ("delivered", len(parts), len(parts)), "audit outcome, transactions, stored")
        eq(set(a.get("created") or []), refs_of(b_a), "audit created")
        stub.reset()
        r = send("--server", base, "--max-entries", "0", sr_a)
        assert r.rc == 0, r.what()
        eq(len(stub.posts_received()), 1, "transactions with --max-entries 0")
        stub.reset()
        r = send("--server", base, "--max-entries", str(n), sr_a)
        assert r.rc == 0, r.what()
        eq(len(stub.posts_received()), 1, "transactions with --max-entries %d (= entries)" % n)

    def t_split_fails_part_way():
        stub.reset([SUCCESS, answer(400, outcome("stub: part two refused QWERTY"))])
        r = send("--server", base, "--max-entries", "5", "--retry-delay", "10", sr_a)
        eq(r.rc, 10, "exit code (%s)" % r.what())
        posts = stub.posts_received()
        eq(len(posts), 2, "POSTs (stops at the refused part)")
        line = one_error_line(r, sr_a, "stub: part two refused QWERTY")
        a = r.audit_for(sr_a)
        first = {"%s/%s" % (e["resource"]["resourceType"], e["resource"]["id"])
                 for e in posts[0].json()["entry"]}
        eq((a.get("outcome"), a.get("transactions_stored")), ("failed", 1),
           "audit outcome, transactions_stored")
        assert a.get("transactions", 0) >= 3, "audit transactions %r" % a.get("transactions")
        eq(set(a.get("created") or []) | set(a.get("updated") or []), first,
           "audit resources = those of the stored part")
        assert "1" in line and "stored" in line.lower(), \
            "the message does not say that part 1 is stored: %r" % line

    def t_literal_from_search():
        stub.reset(search_results={
            "Patient": [{"resourceType": "Patient", "id": "p77"}],
            "ServiceRequest": [{"resourceType": "ServiceRequest", "id": "s78"}],
            "ImagingStudy": [{"resourceType": "ImagingStudy", "id": "i79"}]})
        r = send("--server", base, sr_a)
        assert r.rc == 0, r.what()
        b = stub.posts_received()[0].json()
        for o in resources(b, "Observation"):
            eq(o["subject"], dict(b_a_subject, reference="Patient/p77"), "subject")
            eq([x.get("reference") for x in o.get("basedOn", [])], ["ServiceRequest/s78"],
               "basedOn")
            eq([x.get("reference") for x in o.get("partOf", []) if x.get("type") == "ImagingStudy"],
               ["ImagingStudy/i79"], "partOf")
        m = delivered_line(r, sr_a)
        for ref in ("Patient/p77", "ServiceRequest/s78", "ImagingStudy/i79"):
            assert ref in m.group(4), "stdout does not name %s: %r" % (ref, m.group(0))
        a = r.audit_for(sr_a)
        eq((a.get("patient"), a.get("service_request"), a.get("imaging_study")),
           ("Patient/p77", "ServiceRequest/s78", "ImagingStudy/i79"), "audit literal references")

    def t_metadata_once():
        stub.reset()
        r = send("--server", base, sr_a, sr_b)
        assert r.rc == 0, r.what()
        eq(sum(1 for q in stub.requests if q.path.endswith("/metadata")), 1, "GET metadata (2 SRs)")
        stub.reset()
        srs = [make_sr(n) for n in (41, 42, 43, 44)]
        r = send("--server", base, "-j", "4", *srs)
        assert r.rc == 0, r.what()
        eq(sum(1 for q in stub.requests if q.path.endswith("/metadata")), 1,
           "GET metadata (4 SRs, -j 4)")
        stub.reset()
        r = send("--server", base, "--fhir-version", "R5", sr_a)
        assert r.rc == 0, r.what()
        eq(sum(1 for q in stub.requests if q.path.endswith("/metadata")), 0,
           "GET metadata with --fhir-version R5")

    def t_autodetect(version, want):
        def run():
            stub.reset()
            stub.fhir_version = version
            try:
                r = send("--server", base, sr_a)
            finally:
                stub.fhir_version = "5.0.0"
            assert r.rc == 0, r.what()
            b = stub.posts_received()[0].json()
            types = collections.Counter(x["resourceType"] for x in resources(b))
            eq(refs_of(b), refs_of(convert(sr_a, want)), "resources sent (as convert %s)" % want)
            if want == "R4":
                assert not types["ImagingSelection"], "ImagingSelection sent to %s" % version
                assert not any("bodyStructure" in o for o in resources(b, "Observation")), \
                    "Observation.bodyStructure sent to %s" % version
            else:
                assert types["ImagingSelection"], "no ImagingSelection sent to %s" % version
            eq(r.audit_for(sr_a).get("fhir_version"), want, "audit fhir_version")
        return run

    def t_retry_503():
        stub.reset([answer(503, outcome("stub: busy")), SUCCESS])
        r = send("--server", base, "--retry-delay", "10", sr_a)
        assert r.rc == 0, r.what()
        eq(len(stub.posts_received()), 2, "POSTs")
        a = r.audit_for(sr_a)
        eq((a.get("outcome"), a.get("attempts")), ("delivered", 2), "audit outcome, attempts")

    def t_retry_after(header):
        def run():
            stub.reset([answer(429, outcome("stub: slow down"), {"Retry-After": header()}),
                        SUCCESS])
            r = send("--server", base, "--retry-delay", "10", sr_a)
            assert r.rc == 0, r.what()
            posts = stub.posts_received()
            eq(len(posts), 2, "POSTs")
            waited = posts[1].time - posts[0].time
            assert waited >= 0.9, "waited %.3f s between the 429 and the retry" % waited
            eq(r.audit_for(sr_a).get("attempts"), 2, "audit attempts")
        return run

    def t_no_retry_400():
        stub.reset([answer(400, outcome("stub: entry 3 has a bad code XYZZY"))])
        r = send("--server", base, "--retry-delay", "10", sr_a)
        eq(r.rc, 10, "exit code (%s)" % r.what())
        eq(len(stub.posts_received()), 1, "POSTs (a 400 is not retried)")
        line = one_error_line(r, sr_a, "stub: entry 3 has a bad code XYZZY")
        a = r.audit_for(sr_a)
        eq((a.get("outcome"), a.get("attempts"), a.get("http_status")), ("failed", 1, 400),
           "audit outcome, attempts, http_status")
        assert a.get("error") and a["error"] in line, "audit error %r is not the message %r" % (
            a.get("error"), line)
        assert not a.get("created") and not a.get("updated"), "failed line lists resources"

    def t_500_forever():
        stub.reset([answer(500, outcome("stub: broken"))])
        r = send("--server", base, "--retries", "2", "--retry-delay", "10", sr_a)
        eq(r.rc, 11, "exit code (%s)" % r.what())
        eq(len(stub.posts_received()), 3, "POSTs (1 + 2 retries)")
        one_error_line(r, sr_a)
        a = r.audit_for(sr_a)
        eq((a.get("outcome"), a.get("attempts")), ("failed", 3), "audit outcome, attempts")

    def t_not_fhir():
        stub.reset([answer(200, "<html><body>proxy login</body></html>",
                           content_type="text/html")])
        r = send("--server", base, "--retry-delay", "10", sr_a)
        eq(r.rc, 10, "exit code (%s)" % r.what())
        one_error_line(r, sr_a)

    def t_timeout():
        stub.reset([answer(200, outcome("late"), delay=4)])
        r = send("--server", base, "--timeout", "1", "--retries", "0", sr_a)
        eq(r.rc, 11, "exit code (%s)" % r.what())  # the stub answers 200 after 4 s: only
        one_error_line(r, sr_a)                    # the 1 s timeout makes this exit 11

    def t_redirect():
        other = StubFhirServer()
        other_base = other.start()
        try:
            stub.reset([answer(307, outcome("moved"), {"Location": other_base})])
            r = send("--server", base, "--retry-delay", "10", sr_a,
                     env=clean_env(SR2FHIR_TOKEN=TOKEN))
            eq(other.requests, [], "requests that reached the redirect target")
            eq(r.rc, 10, "exit code (%s)" % r.what())
            assert_no_secrets(r)
        finally:
            other.stop()

    def t_auth(args, env, want):
        def run():
            stub.reset()
            r = send("--server", base, *args, sr_a, env=clean_env(**env))
            assert r.rc == 0, r.what()
            got = {q.headers.get("authorization") for q in stub.requests}
            eq(got, {want}, "Authorization headers of the %d requests" % len(stub.requests))
            assert_no_secrets(r)
        return run

    token_file = os.path.join(TMP, "token.txt")
    with open(token_file, "w") as f:
        f.write(TOKEN3 + "\nsecond line is not the token\n")
    password_file = os.path.join(TMP, "password.txt")
    with open(password_file, "w") as f:
        f.write(PASSWORD2 + "\n")
    basic = lambda p: "Basic " + base64.b64encode(("%s:%s" % (USER, p)).encode()).decode()  # noqa

    def t_no_auth():
        stub.reset()
        r = send("--server", base, sr_a)
        assert r.rc == 0, r.what()
        eq({q.headers.get("authorization") for q in stub.requests}, {None}, "Authorization")

    def t_secrets_failure():
        stub.reset([answer(401, outcome("stub: token rejected"))])
        r = send("--server", base, sr_a, env=clean_env(SR2FHIR_TOKEN=TOKEN))
        eq(r.rc, 10, "exit code on 401 (%s)" % r.what())
        assert_no_secrets(r, "401")
        stub.reset([answer(500, outcome("stub: broken"))])
        r = send("--server", base, "--user", USER, "--retries", "1", "--retry-delay", "10", sr_a,
                 env=clean_env(SR2FHIR_PASSWORD=PASSWORD))
        eq(r.rc, 11, "exit code on 500 (%s)" % r.what())
        assert_no_secrets(r, "500")
        port = stub_server.free_port()
        r = send("--server", "http://127.0.0.1:%d/fhir" % port, "--token-file", token_file,
                 "--retries", "0", sr_a)
        eq(r.rc, 11, "exit code, nothing listening (%s)" % r.what())
        assert_no_secrets(r, "connection refused")

    def t_url_credentials():
        stub.reset()
        url = base.replace("http://", "http://%s:%s@" % (USER, PASSWORD))
        r = send("--server", url, sr_a)
        eq(r.rc, 2, "exit code (%s)" % short(r.stderr))
        eq(stub.requests, [], "requests sent")
        assert_no_secrets(r)

    def t_default_audit_log():
        stub.reset()
        cwd = tempfile.mkdtemp(dir=TMP)
        r = send("--server", base, "-q", sr_a, cwd=cwd, audit=False)
        assert r.rc == 0, r.what()
        eq(r.stdout, "", "stdout with -q")
        path = os.path.join(cwd, "sr2fhir-audit.log")
        assert os.path.exists(path), "no sr2fhir-audit.log in the current folder"
        lines = open(path).read().splitlines()
        eq(len(lines), 1, "audit lines")
        eq(json.loads(lines[0]).get("sop_instance_uid"), "%s.5.1" % R, "sop_instance_uid")

    def t_audit_fields():
        stub.reset()
        r = send("--server", base, sr_a, sr_b)
        assert r.rc == 0, r.what()
        assert not r.audit_bad, "audit lines that are not JSON: %r" % r.audit_bad[:2]
        eq(len(r.audit), 2, "audit lines")
        for path, b in ((sr_a, b_a), (sr_b, convert(sr_b))):
            a = r.audit_for(path)
            missing = [k for k in AUDIT_FIELDS if k not in a]
            assert not missing, "audit fields missing: %s" % missing
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", a["time"]), a["time"]
            eq((a["sop_instance_uid"], a["server"], a["fhir_version"], a["outcome"],
                a["http_status"], a["attempts"], a["transactions"], a["transactions_stored"],
                a["patient"], a["service_request"], a["imaging_study"], a["error"]),
               (sop_uid_of(path), base, "R5", "delivered", 200, 1, 1, 1, None, None, None, None),
               "audit values")
            assert isinstance(a["duration_ms"], int) and a["duration_ms"] >= 0, a["duration_ms"]
            eq(set(a["created"]) | set(a["updated"]), refs_of(b), "created + updated")
            eq(set(a["created"]) & set(a["updated"]), set(), "created and updated overlap")
            eq(set(a["created"]), refs_of(b), "created (the stub answers 201)")

    def t_first_failure_exit():
        stub.reset()
        r = send("--server", base, sr_a, NEG_SR, sr_b)
        eq(r.rc, 6, "exit code (%s)" % r.what())
        eq(len(stub.posts_received()), 2, "POSTs (the other two SRs are delivered)")
        delivered_line(r, sr_a)
        delivered_line(r, sr_b)
        one_error_line(r, NEG_SR, "not a TID 1500")
        eq(sorted(a.get("outcome") for a in r.audit), ["delivered", "delivered", "failed"],
           "audit outcomes (every SR has a line)")

    def t_parallel_first_failure():
        stub.reset([SUCCESS, answer(400, outcome("stub: refused")), SUCCESS, SUCCESS])
        srs = [make_sr(n) for n in (11, 12, 13, 14)]
        r = send("--server", base, "-j", "4", "--retry-delay", "10", *srs)
        eq(r.rc, 10, "exit code (%s)" % r.what())
        eq(len(r.audit), 4, "audit lines")
        assert not r.audit_bad, "audit lines that are not JSON (interleaved?): %r" % r.audit_bad[:2]

    test("m4-m6-lookup-queries: one search each, Patient?identifier=urn:oid:<issuer>|SEND-1, "
         "ServiceRequest?identifier=<issuer URI>|ACC-1, ImagingStudy?identifier="
         "urn:dicom:uid|urn:oid:<Study UID>, _count=2", t_lookups)
    test("m4-m6-lookup-no-issuer: Patient?identifier=SEND-2 without issuer; M6 no ServiceRequest "
         "search without an accession number", t_lookups_no_issuer)
    test("m24-transaction-form: one POST to the base URL, a transaction of PUT Type/id, the "
         "resources of convert, no Patient/ServiceRequest/ImagingStudy; stdout names the logical "
         "references", t_transaction_form)
    test("send-bundle-as-convert: the Bundle sent is the one `convert` writes (JSON-equal), "
         "--timezone passed on", t_same_as_convert)
    test("send-inputs: a folder searched recursively, and - for standard input", t_inputs)
    test("large-reports-split: --max-entries 5 splits the SR into dependency-ordered transactions "
         "of at most 5 entries, literal references, no urn:; 0 and = entries: one",
         t_split)
    test("large-reports-part-way: part 2 refused: exit 10, part 1 stays (audit transactions_stored"
         " 1, its resources only), the message says so", t_split_fails_part_way)
    test("m4-m6-literal-from-search: one match: subject, basedOn, partOf become literal and keep "
         "type and identifier; stdout names them", t_literal_from_search)
    test("m25-metadata-once: GET /metadata once per run (2 SRs; 4 SRs with -j 4), never with "
         "--fhir-version R5", t_metadata_once)
    test("m25-detect-4.0.1: fhirVersion 4.0.1 sends the R4 form (no ImagingSelection, no "
         "bodyStructure)", t_autodetect("4.0.1", "R4"))
    test("m25-detect-4.3.0: fhirVersion 4.3.0 sends the R4 form", t_autodetect("4.3.0", "R4"))
    test("m25-detect-5.0.0: fhirVersion 5.0.0 sends R5 (ImagingSelection)",
         t_autodetect("5.0.0", "R5"))
    test("retry-503: 503 then success: exit 0, 2 POSTs, audit attempts 2", t_retry_503)
    test("retry-after-seconds: 429 with Retry-After: 1 honoured: waited >= 0.9 s, exit 0",
         t_retry_after(lambda: "1"))
    test("retry-after-date: 429 with Retry-After: an HTTP date 2 s ahead honoured: waited >= 0.9 "
         "s, exit 0", t_retry_after(lambda: email.utils.formatdate(time.time() + 2, usegmt=True)))
    test("exit10-400-not-retried: a 400 with an OperationOutcome: not retried (1 POST, attempts "
         "1), one stderr line with the diagnostics, audit failed without resources", t_no_retry_400)
    test("exit11-500-forever: 500 forever: --retries 2 makes 3 POSTs, audit attempts 3",
         t_500_forever)
    test("exit10-not-fhir: an answer that is not FHIR (200 text/html)", t_not_fhir)
    test("exit11-timeout: a timeout (--timeout 1, server answers after 4 s)", t_timeout)
    test("security-no-redirect: redirects are not followed (307 to another server: nothing reaches"
         " it, exit 10)", t_redirect)
    test("security-bearer-env: bearer token from SR2FHIR_TOKEN on every request",
         t_auth([], {"SR2FHIR_TOKEN": TOKEN}, "Bearer " + TOKEN))
    test("security-bearer-token-env: bearer token from --token-env MY_SEND_TOKEN",
         t_auth(["--token-env", "MY_SEND_TOKEN"], {"MY_SEND_TOKEN": TOKEN2}, "Bearer " + TOKEN2))
    test("security-bearer-token-file: bearer token from --token-file (first line)",
         t_auth(["--token-file", token_file], {}, "Bearer " + TOKEN3))
    test("security-basic-env: basic auth from --user and SR2FHIR_PASSWORD",
         t_auth(["--user", USER], {"SR2FHIR_PASSWORD": PASSWORD}, basic(PASSWORD)))
    test("security-basic-password-file: basic auth from --user and --password-file",
         t_auth(["--user", USER, "--password-file", password_file], {}, basic(PASSWORD2)))
    test("security-no-credentials: no credentials, no Authorization header", t_no_auth)
    test("security-secrets-not-leaked: secrets never in stdout, stderr or the audit log on failure"
         " (401, 500, connection refused)", t_secrets_failure)
    test("security-url-credentials: a URL with user:password@ is refused (exit 2, nothing sent, "
         "not echoed)", t_url_credentials)
    test("audit-default-file: default sr2fhir-audit.log in the current folder; -q prints nothing",
         t_default_audit_log)
    test("audit-fields: every field of docs/send.md, created = the Bundle's resources (201)",
         t_audit_fields)
    test("exit-first-failure: the exit code of the first failure in input order (ok, not TID 1500,"
         " ok: exit 6, both others delivered, three audit lines)", t_first_failure_exit)
    test("parallel-one-refused: -j 4 with one refused SR: exit 10, four whole JSON audit lines",
         t_parallel_first_failure)


def openssl_cert(name, cn, san, dst_dir):
    cert, key = os.path.join(dst_dir, name + ".pem"), os.path.join(dst_dir, name + ".key")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=" + cn, "-addext", "subjectAltName=" + san,
                        "-keyout", key, "-out", cert],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, "openssl: %s" % short(p.stderr.decode())
    return cert, key


def tls_cases(sr_a):
    def t_http_non_loopback():
        r = send("--server", "http://192.0.2.1/fhir", "--connect-timeout", "1", "--retries", "0",
                 sr_a)
        eq(r.rc, 2, "exit code (%s)" % r.what())
        one_error_line(r)

    test("security-http-non-loopback: http:// to a non-loopback host refused without --allow-http "
         "(exit 2)", t_http_non_loopback)
    if not shutil.which("openssl"):
        for n in ("default", "cacert", "localhost", "insecure", "hostname", "client-cert"):
            out("SKIP tls-%s: the openssl command is missing" % n)
        return
    d = os.path.join(TMP, "tls")
    os.makedirs(d, exist_ok=True)
    server = openssl_cert("server", "localhost", "DNS:localhost,IP:127.0.0.1", d)
    other = openssl_cert("other", "otherhost", "DNS:otherhost", d)
    client = openssl_cert("client", "sr2fhir-test-client", "DNS:sr2fhir-test-client", d)
    stubs = []

    def tls_stub(cert, client_ca=None):
        s = StubFhirServer(tls=cert, client_ca=client_ca)
        s.start()
        stubs.append(s)
        atexit.register(s.stop)
        return s

    try:
        s = tls_stub(server)
        o = tls_stub(other)
        c = tls_stub(server, client_ca=client[0])

        def t_default():
            s.reset()
            r = send("--server", s.base, "--retries", "0", sr_a)
            eq(r.rc, 11, "exit code (%s)" % r.what())
            one_error_line(r, "certificate")
            eq(s.posts_received(), [], "POSTs")

        def t_cacert():
            s.reset()
            r = send("--server", s.base, "--cacert", server[0], sr_a)
            eq(r.rc, 0, "exit code (%s)" % r.what())
            eq(len(s.posts_received()), 1, "POSTs")

        def t_localhost_name():
            s.reset()
            r = send("--server", s.base.replace("127.0.0.1", "localhost"), "--cacert", server[0],
                     sr_a)
            eq(r.rc, 0, "exit code (%s)" % r.what())

        def t_insecure():
            s.reset()
            r = send("--server", s.base, "--insecure", sr_a)
            eq(r.rc, 0, "exit code (%s)" % r.what())
            assert r.stderr.strip(), "no warning on stderr with --insecure"

        def t_hostname():
            o.reset()
            r = send("--server", o.base, "--cacert", other[0], "--retries", "0", sr_a)
            eq(r.rc, 11, "exit code, certificate for 'otherhost' at 127.0.0.1 (%s)" % r.what())
            one_error_line(r)
            eq(o.posts_received(), [], "POSTs")

        def t_client_cert():
            c.reset()
            r = send("--server", c.base, "--cacert", server[0], "--cert", client[0], "--key",
                     client[1], sr_a)
            eq(r.rc, 0, "exit code (%s)" % r.what())
            eq({(q.peer or {}).get("commonName") for q in c.requests}, {"sr2fhir-test-client"},
               "client certificate subjects")
            c.reset()
            r = send("--server", c.base, "--cacert", server[0], "--retries", "0", sr_a)
            eq(r.rc, 11, "exit code without the client certificate (%s)" % r.what())
            eq(c.posts_received(), [], "POSTs without the client certificate")

        test("tls-default: verification on by default: a self-signed certificate fails "
             "(exit 11, the message mentions the certificate)", t_default)
        test("tls-cacert: --cacert trusts the self-signed certificate (exit 0)", t_cacert)
        test("tls-localhost: host name 'localhost' matches the certificate (exit 0)",
             t_localhost_name)
        test("tls-insecure: --insecure delivers and prints a warning", t_insecure)
        test("tls-hostname: host name verification: a trusted certificate for another name fails "
             "(exit 11)", t_hostname)
        test("tls-client-cert: client certificate with --cert/--key reaches the server; without it "
             "exit 11", t_client_cert)
    finally:
        for x in stubs:
            x.stop()


# ---------------------------------------------------------------------------------------
# Issue 9: a hostile server (defects 6, 8, 10) and a bad SR in a batch (defect 7)
# ---------------------------------------------------------------------------------------
def child_peak_mb():
    """The largest peak RSS of the children waited for so far (MB): the runs before the
    memory cases are small, so a large value is the case's own."""
    import resource
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def make_long_pid_sr(n, length):
    """An SR whose Patient ID is `length` characters long: Implicit VR Little Endian (4-byte
    lengths), as a hostile or broken sender could write it."""
    import pydicom
    from pydicom.uid import ImplicitVRLittleEndian
    path = make_sr(n)
    import warnings
    ds = pydicom.dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # "exceeds the maximum length of 64"
        ds.PatientID = "P" * length
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.is_implicit_VR, ds.is_little_endian = True, True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path)
    return path


def no_raw_controls(run, what):
    """Nothing from outside reaches stderr, stdout or the audit log with a control character
    (C0 other than the newline ending lines, DEL, C1 U+0080..U+009F) (defect 8)."""
    for name, text in (("stderr", run.stderr), ("stdout", run.stdout), ("audit", run.audit_text)):
        bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
        assert not bad, "%s: %s has raw control characters %r: %s" % (
            what, name, sorted(set(bad)), short(text, 300))


def hostile_cases():
    stub = StubFhirServer()
    base = stub.start()
    atexit.register(stub.stop)
    try:
        _hostile_cases(stub, base)
    finally:
        stub.stop()


def _hostile_cases(stub, base):
    sr = make_sr(41)
    ok_sr = make_sr(42)

    def t_metadata_dense():
        body = "[" + "{}," * 700000 + "{}]"          # 2.1 MB: within the bytes of /metadata
        stub.reset(get_answers={"metadata": answer(200, body)})
        r = send("--server", base, sr)
        eq(r.rc, 7, "exit code (%s)" % r.what())
        one_error_line(r, sr, "CapabilityStatement", "MiB accepted")
        eq(len(stub.posts_received()), 0, "POSTs")
        peak = child_peak_mb()
        assert peak < 150, "peak RSS of a send %.0f MB (a 2 MB answer)" % peak

    def t_metadata_huge():
        body = "[" + "{}," * 4000000 + "{}]"         # 12 MB
        stub.reset(get_answers={"metadata": answer(200, body)})
        r = send("--server", base, sr)
        eq(r.rc, 10, "exit code (%s)" % r.what())
        one_error_line(r, sr, "CapabilityStatement", "larger than")
        peak = child_peak_mb()
        assert peak < 150, "peak RSS of a send %.0f MB (a 12 MB answer)" % peak

    def t_search_id(bad_id):
        def run():
            stub.reset(search_results={"Patient": [{"resourceType": "Patient", "id": bad_id}]})
            r = send("--server", base, sr)
            eq(r.rc, 10, "exit code (%s)" % r.what())
            one_error_line(r, sr, "not a FHIR id")
            eq(len(stub.posts_received()), 0, "POSTs (the SR must not be sent)")
            eq(r.audit_for(sr).get("patient"), None, "audit patient")
            assert "Patient/" + bad_id not in r.everything(), \
                "the id reached the output as a reference: %s" % short(r.everything())
            no_raw_controls(r, "bad id")
        return run

    def tx_answer(entries):
        return answer(200, {"resourceType": "Bundle", "type": "transaction-response",
                            "entry": entries})

    def t_tx_fewer(n):
        def run():
            created = {"response": {"status": "201 Created", "location": "Observation/x/_history/1"}}
            stub.reset([tx_answer([created] * n)])
            r = send("--server", base, "--retry-delay", "10", sr)
            eq(r.rc, 10, "exit code (%s)" % r.what())
            one_error_line(r, sr, "transaction-response has %d entr" % n)
            eq(r.out_lines(), [], "stdout (nothing is 'delivered')")
            eq(r.audit_for(sr).get("outcome"), "failed", "audit outcome")
        return run

    def t_tx_entry_status():
        n = len(resources(convert(sr)))
        entries = [{"response": {"status": "201 Created", "location": "Observation/x%d" % i}}
                   for i in range(n - 1)]
        entries.append({"response": {"status": "409 Conflict\x1b[2J"}})
        stub.reset([tx_answer(entries)])
        r = send("--server", base, "--retry-delay", "10", sr)
        eq(r.rc, 10, "exit code (%s)" % r.what())
        one_error_line(r, sr, "entry %d of the transaction failed: 409" % n)
        no_raw_controls(r, "entry status")

    def t_tx_bad_location():
        n = len(resources(convert(sr)))
        entries = [{"response": {"status": "201 Created",
                                 "location": "Observation/x%d/_history/1" % i}}
                   for i in range(n - 1)]
        entries.append({"response": {"status": "201", "location": "Patient/1?_method=DELETE"}})
        stub.reset([tx_answer(entries)])
        r = send("--server", base, "--retry-delay", "10", sr)
        eq(r.rc, 10, "exit code (%s)" % r.what())
        one_error_line(r, sr, "not a Type/id")
        for a in r.audit:
            assert not any("DELETE" in x for x in a.get("created", []) + a.get("updated", [])), \
                "the location is listed in the audit: %r" % a

    def t_long_patient_id():
        bad = make_long_pid_sr(43, 10 * 1024 * 1024)
        stub.reset()
        r = send("--server", base, bad, ok_sr)
        eq(r.rc, 7, "exit code (%s)" % r.what())
        one_error_line(r, bad, "Patient", "more than the 64")
        delivered_line(r, ok_sr)
        eq(len(stub.posts_received()), 1, "POSTs (the valid SR after the bad one)")
        searched = [q for q in stub.requests if q.path.endswith("/Patient")]
        eq(len(searched), 1, "Patient searches (only the valid SR's)")
        eq(sorted(a.get("outcome") for a in r.audit), ["delivered", "failed"], "audit outcomes")

    def t_longest_identifiers():
        uid = (R + ".1.") + "9" * (64 - len(R) - 3)           # a 64-character UID
        good = make_sr(44, pid="Q" * 64, study=uid)
        stub.reset()
        r = send("--server", base, good)
        assert r.rc == 0, r.what()
        got = {q.path.rsplit("/", 1)[-1]: dict(urllib.parse.parse_qsl(q.query))
               for q in stub.requests if q.method == "GET" and q.query}
        eq(got.get("Patient", {}).get("identifier"), "urn:oid:%s|%s" % (ISSUER, "Q" * 64),
           "Patient search")
        eq(got.get("ImagingStudy", {}).get("identifier"), "urn:dicom:uid|urn:oid:" + uid,
           "ImagingStudy search")

    def t_retry_after_beyond(args, header, seconds):
        def run():
            stub.reset([answer(429, outcome("stub: come back later"), {"Retry-After": header})])
            r = send("--server", base, *args, sr, timeout=60)
            eq(r.rc, 11, "exit code (%s)" % r.what())
            one_error_line(r, sr, "retry after %s s" % header, "deadline of %d s" % seconds)
            eq(len(stub.posts_received()), 1, "POSTs (no retry can end within the deadline)")
            eq(r.audit_for(sr).get("attempts"), 1, "audit attempts")
        return run

    def t_version_escaped():
        stub.reset()
        stub.fhir_version = "\x1b[31m9.9\nsr2fhir: forged line\u009b2J"
        try:
            r = send("--server", base, sr)
        finally:
            stub.fhir_version = "5.0.0"
        eq(r.rc, 5, "exit code (%s)" % r.what())
        line = one_error_line(r, sr, "\\x1B[31m9.9")
        no_raw_controls(r, "fhirVersion")
        assert "forged" not in line or "\\x0A" in line, line

    def t_outcome_escaped():
        stub.reset([answer(400, outcome("bad\u009b31m code\x1b]0;title\x07 here"))])
        r = send("--server", base, "--retry-delay", "10", sr)
        eq(r.rc, 10, "exit code (%s)" % r.what())
        one_error_line(r, sr, "bad\\u009B31m code\\x1B]0;title\\x07 here")
        no_raw_controls(r, "OperationOutcome")

    test("issue9-6-metadata-density: a 2 MB /metadata of {}s is refused before parsing (exit 7, "
         "the limit named, peak RSS < 150 MB; it was ~0.5 GB)", t_metadata_dense)
    test("issue9-6-metadata-size: a 12 MB /metadata is larger than a CapabilityStatement may be "
         "(exit 10, peak RSS < 150 MB; it was 3.1 GB)", t_metadata_huge)
    for bad_id in ("../../Observation/x", "http://evil.example/Patient/1", "1?_method=DELETE",
                   "a" * 65, "x\x1b[2Jy"):
        test("issue9-6-search-id-%s: M4 a search answer's id %r is not a FHIR id: the SR fails "
             "(exit 10), nothing sent, the id not used nor echoed raw" % (
                 re.sub(r"[^a-z0-9]+", "-", bad_id.lower())[:20].strip("-"), bad_id[:30]),
             t_search_id(bad_id))
    test("issue9-6-tx-no-entries: M24 a transaction-response without entries is a failure (exit "
         "10), not 'delivered 0 resources'", t_tx_fewer(0))
    test("issue9-6-tx-fewer-entries: M24 a transaction-response with 1 entry for many is a "
         "failure (exit 10)", t_tx_fewer(1))
    test("issue9-6-tx-entry-status: M24 an entry with 409 fails the SR, its status escaped",
         t_tx_entry_status)
    test("issue9-6-tx-location: M24 a location that is not Type/id fails the SR and is not "
         "listed in the audit log", t_tx_bad_location)
    test("issue9-7-long-patient-id: an SR with a 10 MB Patient ID fails alone (exit 7, not "
         "searched); the valid SR after it is delivered", t_long_patient_id)
    test("issue9-7-longest-identifiers: a 64-character Patient ID (LO) and Study Instance UID "
         "(UI) are searched and delivered", t_longest_identifiers)
    test("issue9-10-retry-after-999999: Retry-After 999999 beyond the default deadline (300 s): "
         "the SR fails at once (1 POST, exit 11, the deadline named)",
         t_retry_after_beyond([], "999999", 300))
    test("issue9-10-deadline-option: --deadline 5 with Retry-After 10: 1 POST, exit 11",
         t_retry_after_beyond(["--deadline", "5"], "10", 5))
    test("issue9-8-fhirversion-escaped: a fhirVersion with ESC, newline and C1 CSI is escaped "
         "in the one error line", t_version_escaped)
    test("issue9-8-outcome-escaped: an OperationOutcome's C1 CSI, ESC and BEL are escaped",
         t_outcome_escaped)


def t_connection_refused():
    sr = make_sr(3)
    port = stub_server.free_port()
    for extra in ([], ["--fhir-version", "R5"]):
        r = send("--server", "http://127.0.0.1:%d/fhir" % port, "--retries", "2",
                 "--retry-delay", "10", *extra, sr)
        what = " ".join(extra) or "version detection"
        eq(r.rc, 11, "exit code, %s (%s)" % (what, r.what()))
        line = one_error_line(r, sr)
        a = r.audit_for(sr)
        eq((a.get("outcome"), a.get("attempts")), ("failed", 3),
           "audit outcome, attempts (%s)" % what)
        assert a.get("error") and a["error"] in line, "audit error %r is not the message %r" % (
            a.get("error"), line)


# ---------------------------------------------------------------------------------------
# Real server cases
# ---------------------------------------------------------------------------------------
def server_cases():
    r5 = FhirServer("R5")
    try:
        r5.start()
    except RuntimeError as e:
        if "npm install failed" in str(e):
            out("SKIP send-integration-server: %s" % short(e))
            return
        harness.report(False, "send-integration-server", short(e, 600))
        return
    try:
        r5_cases(r5)
    finally:
        r5.stop()
    r4 = FhirServer("R4")
    try:
        r4.start()
    except RuntimeError as e:
        harness.report(False, "send-integration-server-r4", short(e, 600))
        return
    try:
        r4_cases(r4)
    finally:
        r4.stop()


def r5_cases(srv):
    base = srv.base

    # ---- M4-M6 present: literal references --------------------------------------------
    sr = make_sr(21)
    b = convert(sr)
    subj, acc, study = doc_identifiers(b)
    state = {}

    def t_present():
        srv.reset()
        pid = srv.create(patient_resource(subj))
        sid = srv.create(service_request(acc, pid))
        iid = srv.create(imaging_study(study, pid))
        state.update(pid=pid, sid=sid, iid=iid)
        mark = len(srv.log())
        r = send("--server", base, sr)
        state["run"] = r
        eq(r.rc, 0, "exit code (%s)" % r.what())
        logged = srv.lookups_logged(mark)
        want = [("Patient", {"identifier": token(subj), "_count": "2"}),
                ("ServiceRequest", {"identifier": token(acc), "_count": "2"}),
                ("ImagingStudy", {"identifier": token(study), "_count": "2"})]
        eq(sorted(logged, key=str), sorted(want, key=str), "searches in the server log")
        obs = srv.all("Observation")
        eq(set(obs), ids_of(b, "Observation"), "Observations on the server")
        for o in obs.values():
            eq(o["subject"].get("reference"), "Patient/" + pid, "M4 subject.reference")
            eq((o["subject"].get("type"), o["subject"].get("identifier")), ("Patient", subj),
               "M4 subject keeps type and identifier")
            eq([(x.get("reference"), x.get("identifier")) for x in o.get("basedOn", [])],
               [("ServiceRequest/" + sid, acc)], "M6 basedOn")
            eq([(x.get("reference"), x.get("identifier")) for x in o.get("partOf", [])
                if x.get("type") == "ImagingStudy"], [("ImagingStudy/" + iid, study)], "M5 partOf")
        m = delivered_line(r, sr)
        for ref in ("Patient/" + pid, "ServiceRequest/" + sid, "ImagingStudy/" + iid):
            assert ref in m.group(4), "stdout does not name %s: %r" % (ref, m.group(0))
        a = r.audit_for(sr)
        eq((a.get("patient"), a.get("service_request"), a.get("imaging_study")),
           ("Patient/" + pid, "ServiceRequest/" + sid, "ImagingStudy/" + iid),
           "audit literal references")

    def t_present_everywhere():
        if "run" not in state or state["run"].rc != 0:
            raise Skip("not delivered (see m4-m6-present)")
        pid, iid = state["pid"], state["iid"]
        sels = srv.all("ImagingSelection")
        bodies = srv.all("BodyStructure")
        eq(set(sels), ids_of(b, "ImagingSelection"), "ImagingSelections")
        assert sels and bodies, "the SR has no ImagingSelection or BodyStructure"
        problems = []
        own = 0
        for s in sels.values():
            if s.get("subject", {}).get("reference") != "Patient/" + pid:
                problems.append("ImagingSelection/%s.subject = %s" % (s["id"], s.get("subject")))
            for x in s.get("derivedFrom", []):
                if x.get("type") == "ImagingStudy" and x.get("identifier") == study:
                    own += 1
                    if x.get("reference") != "ImagingStudy/" + iid:
                        problems.append("ImagingSelection/%s.derivedFrom (study %s) has no "
                                        "reference ImagingStudy/%s"
                                        % (s["id"], study["value"], iid))
        for x in bodies.values():
            if x.get("patient", {}).get("reference") != "Patient/" + pid:
                problems.append("BodyStructure/%s.patient = %s" % (x["id"], x.get("patient")))
        assert own, "no ImagingSelection.derivedFrom names the SR's study"
        assert not problems, "; ".join(problems)

    test("m4-m6-present: Patient, ServiceRequest, ImagingStudy on the server: one lookup each "
         "(server log), Observation.subject/basedOn/partOf literal keeping type and identifier",
         t_present)
    test("m4-m5-present-everywhere: ImagingSelection.subject/derivedFrom and "
         "BodyStructure.patient literal too", t_present_everywhere)

    # ---- absent: logical references; --require-existing --------------------------------
    def t_absent():
        srv.reset()
        r = send("--server", base, sr)
        eq(r.rc, 0, "exit code (%s)" % r.what())
        obs = srv.all("Observation")
        eq(set(obs), ids_of(b, "Observation"), "Observations on the server")
        for o in obs.values():
            eq(o["subject"], {"type": "Patient", "identifier": subj}, "M4 logical subject")
            assert all("reference" not in x for x in o.get("basedOn", []) + o.get("partOf", [])), \
                "basedOn/partOf with a reference: %r" % (o.get("basedOn"), o.get("partOf"))
        m = delivered_line(r, sr)
        assert re.search(r"\bPatient logical\b", m.group(4)), "stdout: %r" % m.group(0)
        a = r.audit_for(sr)
        eq((a.get("patient"), a.get("service_request"), a.get("imaging_study")),
           (None, None, None), "audit literal references")

    def t_require_existing():
        srv.reset()
        r = send("--server", base, "--require-existing", sr)
        eq(r.rc, 12, "exit code (%s)" % r.what())
        one_error_line(r, sr)
        eq({t: n for t, n in srv.counts(R5_TYPES).items() if n}, {}, "resources on the server")
        eq(r.audit_for(sr).get("outcome"), "failed", "audit outcome")

    def t_require_existing_partial():
        # Patient present, ImagingStudy absent: fails; without accession and with Patient and
        # ImagingStudy present: delivered (no ServiceRequest is looked for)
        srv.reset()
        srv.create(patient_resource(subj))
        r = send("--server", base, "--require-existing", sr)
        eq(r.rc, 12, "exit code, ServiceRequest and ImagingStudy absent (%s)" % r.what())
        one_error_line(r, sr)
        eq(srv.count("Observation"), 0, "Observations")
        sr_noacc = make_sr(22, accession=None)
        s2, _, st2 = doc_identifiers(convert(sr_noacc))
        pid = srv.create(patient_resource(s2))
        srv.create(imaging_study(st2, pid))
        r = send("--server", base, "--require-existing", sr_noacc)
        eq(r.rc, 0, "exit code, no accession, Patient and ImagingStudy present (%s)" % r.what())

    def t_ambiguous():
        srv.reset()
        p1 = srv.create(patient_resource(subj))
        p2 = srv.create(patient_resource(subj))
        r = send("--server", base, sr)
        eq(r.rc, 12, "exit code (%s)" % r.what())
        line = one_error_line(r, sr)
        assert p1 in line and p2 in line, "the message does not name both Patients %s, %s: %r" % (
            p1, p2, line)
        eq({t: n for t, n in srv.counts(R5_TYPES).items() if n}, {"Patient": 2},
           "resources on the server")

    test("m4-patient-absent: logical references kept (subject.identifier, no reference), "
         "stdout 'Patient logical'", t_absent)
    test("m4-require-existing: nothing matches: exit 12, one stderr line, nothing stored",
         t_require_existing)
    test("m4-m6-require-existing: one lookup missing is enough to fail; an SR without "
         "accession needs no ServiceRequest", t_require_existing_partial)
    test("m4-ambiguous: two Patients with the identifier: exit 12, the message names both, "
         "nothing stored", t_ambiguous)

    # ---- the corpus -----------------------------------------------------------------------
    files = sorted(os.path.join(CORPUS, f) for f in os.listdir(CORPUS) if f.startswith("tid1500__"))
    try:
        bundles = {f: convert(f) for f in files}
        srv.reset()
        ctx = create_context(srv, bundles.values())
        r = send("--server", base, *files, timeout=170)
    except Exception as e:  # noqa: BLE001
        harness.report(False, "send-corpus", short(e, 600))
        return
    out("# send-corpus: %d files sent sequentially to the R5 server in %.1f s" % (len(files),
                                                                                 r.elapsed))

    def t_corpus_exit():
        eq(r.rc, 0, "exit code (%s)" % r.what())
        eq(r.err_lines(), [], "stderr")

    test("send-corpus: every tid1500 corpus file delivered to the R5 server: exit 0",
         t_corpus_exit)
    delivered = set()
    for f in files:
        def t_delivered(f=f):
            a = r.audit_for(f)
            puts = sum(1 for e in bundles[f]["entry"] if e["request"]["method"] == "PUT")
            assert a.get("outcome") == "delivered", "audit: %s; stderr: %s%s" % (
                short(a.get("error")), short("\n".join(ln for ln in r.err_lines() if f in ln)),
                " (the Bundle has %d PUT entries; Medplum refuses a transaction of more than "
                "50 updates: @medplum/fhir-router maxUpdates)" % puts if puts > 50 else "")
            m = delivered_line(r, f)
            eq(int(m.group(3)), len(bundles[f]["entry"]), "resources on stdout")
            delivered.add(f)
        test("send-corpus-delivered:%s" % os.path.basename(f), t_delivered)

    index = {t: srv.all(t) for t in MADE_TYPES}

    for f in files:
        name = os.path.basename(f)
        bf = bundles[f]
        subj, acc, study = doc_identifiers(bf)

        def need(f=f):
            if f not in delivered:
                raise Skip("not delivered (see send-corpus-delivered)")

        def t_stored(f=f, bf=bf):
            need(f)
            for t in MADE_TYPES:
                missing = ids_of(bf, t) - set(index[t])
                assert not missing, "%d %s not on the server, e.g. %s" % (len(missing), t,
                                                                         sorted(missing)[0])

        def t_literal(f=f, bf=bf, subj=subj, acc=acc, study=study):
            need(f)
            want_s = "Patient/" + ctx[("P", token(subj))] if subj else None
            want_b = "ServiceRequest/" + ctx[("S", token(acc))] if acc else None
            want_p = "ImagingStudy/" + ctx[("I", token(study))] if study else None
            for oid in ids_of(bf, "Observation"):
                o = index["Observation"][oid]
                eq(o["subject"].get("reference"), want_s, "M4 subject of %s" % oid)
                eq([x.get("reference") for x in o.get("basedOn", [])], [want_b] if acc else [],
                   "M6 basedOn of %s" % oid)
                eq([x.get("reference") for x in o.get("partOf", [])
                    if x.get("type") == "ImagingStudy"], [want_p], "M5 partOf of %s" % oid)

        def t_by_subject(f=f, subj=subj):
            need(f)
            if not subj:
                raise Skip("the SR has no Patient ID")
            same = [g for g in files if g in delivered and doc_identifiers(bundles[g])[0] == subj]
            want = set().union(*(ids_of(bundles[g], "Observation") for g in same))
            pid = ctx[("P", token(subj))]
            got = {o["id"] for o in srv.search("Observation?subject=Patient/" + pid)}
            eq(got == want, True, "Observation?subject=Patient/%s: %d found, %d expected" % (
                pid, len(got), len(want)))
            q = "Observation?subject:Patient.identifier=" + urllib.parse.quote(token(subj), safe="")
            got = {o["id"] for o in srv.search(q)}
            eq(got == want, True, "%s: %d found, %d expected" % (q, len(got), len(want)))

        def t_by_code(f=f, bf=bf):
            need(f)
            meas = [o for o in resources(bf, "Observation") if "valueQuantity" in o] or \
                resources(bf, "Observation")
            c = meas[0]["code"]["coding"][0]
            tok = "%s|%s" % (c["system"], c["code"])
            want = {o["id"] for o in resources(bf, "Observation")
                    if any((x.get("system"), x.get("code")) == (c["system"], c["code"])
                           for x in o["code"].get("coding", []))}
            got = srv.search("Observation?code=" + urllib.parse.quote(tok, safe=""))
            ids = {o["id"] for o in got}
            assert want <= ids, "Observation?code=%s: %d of the file's %d missing" % (
                tok, len(want - ids), len(want))
            assert all(any((x.get("system"), x.get("code")) == (c["system"], c["code"])
                           for x in o["code"].get("coding", [])) for o in got), \
                "a search result without the code"

        def t_refs(f=f, bf=bf):
            need(f)
            checked = 0
            for t in ("Observation", "ImagingSelection"):
                for rid in ids_of(bf, t):
                    res = index[t][rid]
                    for path, ref in walk_refs(res, t):
                        assert not ref.startswith("urn:"), "%s/%s %s = %s unresolved" % (
                            t, rid, path, ref)
                        if t == "ImagingSelection" and ".derivedFrom" not in path:
                            continue
                        if re.match(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]+$", ref):
                            st = srv.get_status(ref)
                            eq(st, 200, "GET %s (%s/%s %s)" % (ref, t, rid, path))
                            checked += 1
            assert checked, "no literal reference to check"

        test("send-corpus-stored:%s: every resource of the Bundle is on the server" % name,
             t_stored)
        test("m4-m6-literal:%s: subject, basedOn, partOf literal (Patient, ServiceRequest, "
             "ImagingStudy created first)" % name, t_literal)
        test("search-by-subject:%s: Observation?subject=Patient/id and chained "
             "subject:Patient.identifier=sys|val find exactly its Observations" % name,
             t_by_subject)
        test("search-by-code:%s: Observation?code=system|code finds its measurements" % name,
             t_by_code)
        test("references-resolve:%s: every literal reference of its Observations and "
             "ImagingSelection.derivedFrom GETs 200, no urn: left" % name, t_refs)

    # Not tested: Observation?subject:identifier=sys|val (a search on the logical reference
    # itself). Medplum's in-memory repository answers it with 0 results (the :identifier
    # modifier is not supported), so the searches above go through a Patient on the server.

    # ---- audit ---------------------------------------------------------------------------
    def t_audit_corpus():
        assert not r.audit_bad, "audit lines that are not JSON: %r" % r.audit_bad[:2]
        eq(len(r.audit), len(files), "audit lines")
        for f in files:
            a = r.audit_for(f)
            missing = [k for k in AUDIT_FIELDS if k not in a]
            assert not missing, "%s: audit fields missing: %s" % (f, missing)
            eq((a["sop_instance_uid"], a["server"], a["fhir_version"]),
               (sop_uid_of(f), base, "R5"), "audit of %s" % os.path.basename(f))
            if a["outcome"] == "delivered":
                n = len(bundles[f]["entry"])
                eq((a["http_status"], a["attempts"], a["error"]), (200, 1, None),
                   "audit of %s" % os.path.basename(f))
                eq(a["transactions_stored"], a["transactions"], "transactions_stored of %s" % f)
                if n <= MAX_ENTRIES:
                    eq(a["transactions"], 1, "transactions of %s (%d entries)" % (f, n))
                else:
                    assert a["transactions"] >= -(-n // MAX_ENTRIES), \
                        "%s: %d transactions for %d entries" % (f, a["transactions"], n)
                subj, acc, study = doc_identifiers(bundles[f])
                eq((a["patient"], a["service_request"], a["imaging_study"]),
                   tuple("%s/%s" % (t, ctx[(k, token(i))]) if i else None
                         for t, k, i in (("Patient", "P", subj), ("ServiceRequest", "S", acc),
                                         ("ImagingStudy", "I", study))),
                   "audit literal references of %s" % os.path.basename(f))
            else:
                assert a.get("error") and not a.get("created") and not a.get("updated"), \
                    "failed line of %s: %s" % (f, short(a))

    def t_audit_refs():
        some = False
        for f in files:
            a = r.audit_for(f)
            if a.get("outcome") != "delivered":
                continue
            some = True
            got = set(a.get("created") or []) | set(a.get("updated") or [])
            eq(got, refs_of(bundles[f]), "created + updated of %s" % os.path.basename(f))
            for ref in got:
                t, rid = ref.split("/", 1)
                assert rid in index[t], "%s (audit of %s) is not on the server" % (ref, f)
        assert some, "nothing delivered"

    test("audit-corpus: one JSON line per SR with the fields of docs/send.md (corpus, R5)",
         t_audit_corpus)
    test("audit-corpus-references: created + updated = the resources the server holds for each SR",
         t_audit_refs)

    # ---- idempotency ---------------------------------------------------------------------
    counts1 = srv.counts(R5_TYPES)
    ids1 = {t: set(index[t]) for t in MADE_TYPES}

    def t_idempotent():
        r2 = send("--server", base, *files, timeout=170)
        eq(r2.rc, r.rc, "exit code of the second run (%s)" % r2.what())
        eq(srv.counts(R5_TYPES), counts1, "resource counts after sending everything again")
        eq(stored(srv, MADE_TYPES), ids1, "resource ids after sending everything again")

    test("m24-idempotent: sending the corpus again leaves every count (Type?_summary=count) "
         "and id unchanged", t_idempotent)

    # ---- -j 4 ----------------------------------------------------------------------------
    def t_parallel():
        srv.reset()
        create_context(srv, bundles.values())
        rj = send("--server", base, "-j", "4", *files, timeout=170)
        eq(rj.rc, 0, "exit code (%s)" % rj.what())
        assert not rj.audit_bad, \
            "audit lines that are not JSON (interleaved?): %r" % rj.audit_bad[:2]
        eq(len(rj.audit), len(files), "audit lines")
        eq(srv.counts(R5_TYPES), counts1, "resource counts (-j 4 against sequential)")
        eq(stored(srv, MADE_TYPES), ids1, "resource ids (-j 4 against sequential)")
        files_n = lambda run: sorted((m.group(1), m.group(3)) for m in  # noqa: E731
                                     map(DELIVERED.match, run.out_lines()) if m)
        eq(files_n(rj), files_n(r), "stdout (file, resources) lines, in any order")

    test("send-parallel-j4: -j 4 over the corpus: exit 0, the same counts and ids as "
         "sequential, whole audit lines", t_parallel)


def r4_cases(srv):
    base = srv.base
    files = sorted(os.path.join(CORPUS, f) for f in os.listdir(CORPUS) if f.startswith("tid1500__"))
    try:
        srv.reset()
        r = send("--server", base, *files, timeout=170)
        index = {t: srv.all(t) for t in ("Observation", "Device", "Practitioner")}
    except Exception as e:  # noqa: BLE001
        harness.report(False, "m25-r4-corpus", short(e, 600))
        return

    def t_corpus():
        eq(r.rc, 0, "exit code (%s)" % r.what())
        eq(sorted(a.get("fhir_version") for a in r.audit), ["R4"] * len(files),
           "audit fhir_version (detected from /metadata 4.0.1)")

    def t_observations():
        some = False
        for f in files:
            a = r.audit_for(f)
            if a.get("outcome") != "delivered":
                continue
            some = True
            b4 = convert(f, "R4")
            missing = ids_of(b4, "Observation") - set(index["Observation"])
            assert not missing, "%s: %d Observations missing" % (os.path.basename(f), len(missing))
            got = set(a.get("created") or []) | set(a.get("updated") or [])
            eq(got, refs_of(b4), "created + updated of %s (as convert --fhir-version R4)" % f)
        assert some, "nothing delivered"

    def t_no_selection():
        for a in r.audit:
            sent = [x for x in (a.get("created") or []) + (a.get("updated") or [])
                    if x.startswith("ImagingSelection/")]
            assert not sent, "%s: %s" % (a.get("file"), sent[:2])
        assert not any("ImagingSelection/" in ln for ln in r.out_lines()), "stdout names one"
        for o in index["Observation"].values():
            assert "bodyStructure" not in o, "Observation/%s has bodyStructure" % o["id"]

    test("m25-r4-corpus: version detected from /metadata (4.0.1), every tid1500 corpus file "
         "delivered to the R4 server, exit 0", t_corpus)
    test("m25-r4-observations: the R4 Observations of every delivered SR are on the server",
         t_observations)
    test("m25-r4-no-imagingselection: no ImagingSelection sent, no Observation.bodyStructure",
         t_no_selection)

    def t_forced_r5():
        sr = make_sr(31)
        b5 = convert(sr, "R5")
        before = srv.counts(R4_TYPES)
        rr = send("--server", base, "--fhir-version", "R5", sr)
        eq(rr.rc, 10, "exit code (%s)" % rr.what())
        line = one_error_line(rr, sr)
        eq(srv.counts(R4_TYPES), before, "counts after the refused transaction")
        left = [ref for ref in sorted(refs_of(b5)) if not ref.startswith("ImagingSelection/")
                and srv.get_status(ref) == 200]
        eq(left, [], "resources of the refused SR on the server (half-written)")
        # the text the server gives for this Bundle
        status, oo = http("POST", base, b5)
        texts = [i.get("diagnostics") or i.get("details", {}).get("text")
                 for i in (oo or {}).get("issue", [])] if isinstance(oo, dict) else []
        assert status >= 400 and texts, "the R4 server accepted the R5 Bundle: %d" % status
        assert any(t and t in line for t in texts), \
            "stderr %r has none of the server's OperationOutcome texts %r" % (line, texts)
        a = rr.audit_for(sr)
        eq((a.get("outcome"), a.get("http_status") is not None and a.get("http_status") >= 400),
           ("failed", True), "audit outcome, http_status")

    test("m25-forced-r5-on-r4: --fhir-version R5 to the R4 server is refused: exit 10, one "
         "stderr line with the server's OperationOutcome text, nothing half-written",
         t_forced_r5)


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------
def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    atexit.register(shutil.rmtree, TMP, True)
    try:
        import pydicom  # noqa: F401
    except ImportError:
        out("SKIP send-integration: %s has no pydicom (apt-get install python3-pydicom)"
            % sys.executable)
        return 0
    if not os.access(SR2FHIR, os.X_OK):
        out("FAIL send-integration: no executable %s (run make)" % SR2FHIR)
        return 1
    p = subprocess.run([SR2FHIR, "send", "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if p.returncode != 0:
        out("FAIL send-integration: %s send --help: exit %d: %s" % (
            SR2FHIR, p.returncode, short(p.stderr.decode("utf-8", "replace"))))
        return 1
    g = subprocess.run([PYTHON, os.path.join(ROOT, "tests/fixtures/generate.py"),
                        os.path.join(TMP, "fixtures")], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    if g.returncode != 0 or not os.path.exists(BASE_SR):
        out("FAIL send-integration: tests/fixtures/generate.py: %s" % short(g.stderr.decode()))
        return 1

    if os.environ.get("SEND_CASES") == "hostile":   # only issue 9's cases (quick)
        hostile_cases()
        return harness.exit_code()
    hostile_cases()
    stub_cases()
    test("exit11-connection-refused: nothing listening: --retries 2 gives attempts 3 in the audit "
         "log, one stderr line (with and without version detection)", t_connection_refused)

    if os.environ.get("SEND_CASES") == "stub":      # no real server (quick)
        return harness.exit_code()
    if not os.path.isdir(CORPUS) or not os.path.exists(FHIR_SERVER_SH):
        out("SKIP send-integration: %s is absent (../shared not beside the checkout): no real "
            "FHIR server cases" % SHARED)
    elif not shutil.which("node") or not shutil.which("npm"):
        out("SKIP send-integration: node and npm are needed by the FHIR server "
            "(../shared/tools/fhir-server): no real FHIR server cases")
    else:
        server_cases()
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
