#!/usr/bin/python3
"""tests/integration/test_dimse_peers.py - the DICOM receiver of `sr2fhir serve --dicom`
(issue 12, docs/gateway.md "DICOM C-STORE") with real peers (../shared/tools/dicom-peers):
DCMTK echoscu, storescu and dcmsend, and Orthanc forwarding by C-STORE; what arrives is
checked on the FHIR server tool (R5) against what `sr2fhir convert` makes of each file, and
what the peers PRINT is checked when they are refused. Prints PASS/FAIL/SKIP lines.

The service: --dicom 127.0.0.1:0 --aet SR2FHIR_GW, calling AE titles allowed: DCMTK_SCU,
PAR0..PAR3, ORTH_SRC and FARAWAY@192.0.2.7 (an address we never come from),
--dicom-max-associations 6. TCP_NODELAY=1 in every peer's environment.
- echoscu: success ("Received Echo Response (Success)"); a called AE title not ours ->
  "Association Rejected" / "Result: Rejected Permanent, Source: Service User" / "Reason:
  Called AE Title Not Recognized" (1/1/7); an unknown calling AE title, and FARAWAY from
  127.0.0.1 -> the same with "Calling AE Title Not Recognized" (1/1/3); 6 associations held
  open -> "Rejected Transient, Source: Service Provider (Presentation Related)", "Local
  Limit Exceeded" (2/3/2), and accepted again once they are released.
- storescu -R, one association: every Part 10 file of ../shared/corpus (the 11 TID 1500
  ones of INVENTORY.tsv and the 9 negatives, which are SRs but not TID 1500): one
  "Received Store Response (Success)" each; when the queue drains, the TID 1500 jobs are
  done, the others not_applicable, and the FHIR server holds exactly the resources `sr2fhir
  convert` makes of the TID 1500 files (count per type and the ids); the audit log has the
  association (released, stores 20) and a 'received' line (via dimse, 0000) per file.
- dcmsend +sd of the same files: one association, "with status SUCCESS  : 20"; no count
  or id on the FHIR server changes (each SR there once).
- The four transfer syntaxes: storescu -xf dicom-peers' storescu-sr.cfg Implicit |
  Explicit | Deflated | BigEndian (each profile proposes the SR classes with exactly one
  transfer syntax; storescu transcodes): all succeed, the files the service wrote carry
  that transfer syntax (each round drained before the next, so that each has jobs of its
  own); then the 4 x 11 jobs are done and the FHIR server (reset before the first round)
  holds exactly the expected resources, each once.
- Several associations in parallel: 4 storescu processes (PAR0..PAR3) at once, each with
  its own 11 new copies (new SOP Instance UIDs) of the TID 1500 files: every one
  acknowledged, 4 association lines, the FHIR server holds exactly what convert makes of
  the 88 copies.
- Not SRs: a CT image (pydicom) alone -> storescu prints "No Acceptable Presentation
  Contexts" and, with -d, "Context ID: 1 (Abstract Syntax Not Supported)"; with an SR in
  the same association the SR is stored and storescu prints "No presentation context for:
  (CT)"; nothing of the CT is queued.
- Orthanc (its Lua auto-forwarding by C-STORE to the service, --forward): the TID 1500 files
  loaded into it arrive, each once on the FHIR server, no Orthanc job fails;
  `orthanc-send --to dicom --all` (one association) again changes nothing; sent to the
  called AE title NOT_US, Orthanc reports "DUL Association Rejected", nothing queued.

SKIP with the reason when the service is not built or has no --dicom, or pydicom,
../shared, node/npm, DCMTK or Orthanc (its cases) are absent. Every process started here is
stopped at the end. Waits are bounded and poll counts; nothing asserts on wall-clock time.
Environment: ROOT, BUILD, SR2FHIR, PYTHON, SHARED (as tests/run.sh exports them).
"""
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import FHIR_SERVER_SH, SHARED, SR2FHIR, clean_env, eq, out, short  # noqa: E402
import fhirserver  # noqa: E402
from fhirserver import MADE_TYPES, R5_TYPES, convert, expected_ids  # noqa: E402
import gwservice  # noqa: E402
import dimsescu as d  # noqa: E402

NAME = "dimse-peers"
AET = "SR2FHIR_GW"
SCU = "DCMTK_SCU"
PAR = ["PAR%d" % i for i in range(4)]
ORTH = "ORTH_SRC"
MAX_ASSOC = 6
CORPUS = os.path.join(SHARED, "corpus", "files")
INVENTORY = os.path.join(SHARED, "corpus", "INVENTORY.tsv")
PEERS_DIR = os.path.join(SHARED, "tools", "dicom-peers")
PEERS = os.path.join(PEERS_DIR, "dicom-peers.sh")
SR_CFG = os.path.join(PEERS_DIR, "dcmtk", "storescu-sr.cfg")
PROFILES = {"Implicit": d.IMPLICIT_LE, "Explicit": d.EXPLICIT_LE, "Deflated": d.DEFLATED_LE,
            "BigEndian": d.EXPLICIT_BE}
COPIES = 1                     # copies of each TID 1500 file per parallel sender
UID_ROOT = "1.2.826.0.1.3680043.10.1500.76."
DRAIN_TIMEOUT = 300            # s: bound on the queue draining
TOOL_TIMEOUT = 300             # s: bound on one DCMTK run
SERVE_OPTS = ["--workers", "4", "--dicom-max-associations", str(MAX_ASSOC),
              "--dicom-peer", SCU, "--dicom-peer", ORTH, "--dicom-peer", "FARAWAY@192.0.2.7"] + \
    [x for p in PAR for x in ("--dicom-peer", p)]

TMP = tempfile.mkdtemp(prefix="sr2fhir-dimse-peers-")
ENV = clean_env(TCP_NODELAY="1", DICOM_PEERS_HOME=os.path.join(TMP, "peers"))


def test(name, fn, *args):
    harness.test("%s-%s" % (NAME, name), fn, *args, width=900)


class Sr:
    def __init__(self, path):
        import pydicom
        self.path = path
        self.name = os.path.basename(path)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        self.sop, self.cls = str(ds.SOPInstanceUID), str(ds.SOPClassUID)


def inventory():
    """{file name: is_TID1500 ('yes'/'no'...)} from the corpus' INVENTORY.tsv."""
    with open(INVENTORY, encoding="utf-8") as f:
        rows = [ln.rstrip("\n").split("\t") for ln in f if ln.strip()]
    head = rows[0]
    col = head.index("is_TID1500")
    return {r[0]: r[col] for r in rows[1:]}


def run(cmd, timeout=TOOL_TIMEOUT):
    """(exit status, stdout + stderr text) of a peer tool run with TCP_NODELAY=1."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV,
                       timeout=timeout, cwd=TMP)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def dcm_args(gw, calling=SCU, called=AET):
    host, port = gw.dicom_address()
    return ["-aet", calling, "-aec", called, host, str(port)]


def has_lines(text, lines, what):
    for ln in lines:
        assert ln in text, "%s: %r not printed; it printed: %s" % (what, ln, short(text, 700))


def successes(text):
    return len(re.findall(r"Received Store Response \(Success\)", text))


def expected(paths):
    """({Type: count} over R5_TYPES, {Type: ids}) that `paths` leave on an empty server."""
    ids = expected_ids([convert(p) for p in paths])
    return {t: len(ids.get(t, ())) for t in R5_TYPES}, ids


def assert_holds(srv, paths, what, want=None):
    counts, ids = want or expected(paths)
    eq(srv.counts(R5_TYPES), counts, "%s: resources per type on the FHIR server" % what)
    got = fhirserver.stored(srv, MADE_TYPES)
    for t in MADE_TYPES:
        missing, extra = ids[t] - got[t], got[t] - ids[t]
        assert not missing and not extra, "%s: %s ids: %d missing (e.g. %s), %d not expected " \
            "(e.g. %s)" % (what, t, len(missing), sorted(missing)[:1], len(extra),
                           sorted(extra)[:1])


def delta(after, before):
    return {s: after[s] - before[s] for s in gwservice.QUEUE_STATES if after[s] != before[s]}


def audit(gw):
    try:
        with open(os.path.join(gw.data, "audit.jsonl"), encoding="utf-8") as f:
            return [json.loads(ln) for ln in f if ln.strip()]
    except (OSError, ValueError):
        return []


def job_path(gw, job_id):
    _, show, _ = gw.queue("show", job_id)
    return [ln[6:] for ln in show.splitlines() if ln.startswith("path: ")][0]


def make_ct(name):
    """A small CT Image (not an SR), Part 10, Explicit VR LE, made with pydicom."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    sop = generate_uid(prefix=UID_ROOT)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = d.CT_IMAGE
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID_ROOT + "1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = d.CT_IMAGE, sop
    ds.StudyInstanceUID = generate_uid(prefix=UID_ROOT)
    ds.SeriesInstanceUID = generate_uid(prefix=UID_ROOT)
    ds.PatientID, ds.PatientName, ds.Modality = "DIMSE-ITEST", "Dimse^Test", "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Rows = ds.Columns = 2
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    ds.PixelData = bytes(8)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    path = os.path.join(TMP, name + ".dcm")
    pydicom.dcmwrite(path, ds, write_like_original=False)
    return path


# ---------------------------------------------------------------------------------------
def echo_cases(gw):
    def t_echo():
        rc, text = run(["echoscu", "-v"] + dcm_args(gw))
        eq(rc, 0, "echoscu exit status (%s)" % short(text))
        has_lines(text, ["Received Echo Response (Success)"], "echoscu -v")

    test("echoscu: C-ECHO succeeds: exit 0, 'Received Echo Response (Success)'", t_echo)

    def rejected(args, reason, what):
        def t():
            rc, text = run(["echoscu"] + args)
            eq(rc, 1, "echoscu exit status (%s)" % short(text))
            has_lines(text, ["Association Rejected:", "Result: Rejected Permanent, Source: "
                             "Service User", "Reason: " + reason], what)
        return t

    test("echoscu-called-aet: called AE title NOT_US -> echoscu prints 'Association "
         "Rejected:', 'Result: Rejected Permanent, Source: Service User', 'Reason: Called AE "
         "Title Not Recognized' (A-ASSOCIATE-RJ 1/1/7), exit 1",
         rejected(dcm_args(gw, called="NOT_US"), "Called AE Title Not Recognized",
                  "echoscu to the wrong called AE title"))
    test("echoscu-calling-aet: calling AE title STRANGER (not a --dicom-peer) -> 'Reason: "
         "Calling AE Title Not Recognized' (1/1/3), exit 1",
         rejected(dcm_args(gw, calling="STRANGER"), "Calling AE Title Not Recognized",
                  "echoscu with an unknown calling AE title"))
    test("echoscu-calling-address: FARAWAY, allowed only from 192.0.2.7, calling from "
         "127.0.0.1 -> 'Calling AE Title Not Recognized' (1/1/3), exit 1",
         rejected(dcm_args(gw, calling="FARAWAY"), "Calling AE Title Not Recognized",
                  "echoscu as FARAWAY from the wrong address"))

    def t_limit():
        held = []
        try:
            for _ in range(MAX_ASSOC):
                held.append(d.Assoc.connect(gw.dicom_address(), SCU, AET,
                                            [(d.VERIFICATION, [d.IMPLICIT_LE])]))
            rc, text = run(["echoscu"] + dcm_args(gw))
            eq(rc, 1, "echoscu exit status with %d associations open (%s)" % (MAX_ASSOC,
                                                                              short(text)))
            has_lines(text, ["Association Rejected:", "Result: Rejected Transient, Source: "
                             "Service Provider (Presentation Related)",
                             "Reason: Local Limit Exceeded"], "echoscu over the limit")
            eq(held[0].echo(1), 0, "C-ECHO on a held association meanwhile")
        finally:
            for a in held:
                a.release()
        for _ in range(100):            # the released associations' threads end
            rc, text = run(["echoscu"] + dcm_args(gw))
            if rc == 0:
                break
            time.sleep(0.1)
        eq(rc, 0, "echoscu exit status after the held associations were released (%s)"
           % short(text))

    test("echoscu-limit: with --dicom-max-associations %d associations open, echoscu prints "
         "'Result: Rejected Transient, Source: Service Provider (Presentation Related)', "
         "'Reason: Local Limit Exceeded' (2/3/2); once they are released it succeeds"
         % MAX_ASSOC, t_limit)


def corpus_cases(gw, srv, tid, neg):
    every = tid + neg

    def t_storescu():
        srv.reset()
        st0, n0 = gw.stats(), len(audit(gw))
        rc, text = run(["storescu", "-v", "-R"] + dcm_args(gw) + [s.path for s in every])
        eq(rc, 0, "storescu exit status (%s)" % short(text[-600:]))
        eq(successes(text), len(every), "'Received Store Response (Success)' lines")
        eq(text.count("Requesting Association"), 1, "associations")
        st = gw.wait_idle(len(every), since=st0, timeout=DRAIN_TIMEOUT)
        eq(delta(st, st0), {"done": len(tid), "not_applicable": len(neg)}, "queue stats change "
           "(TID 1500 done, the others not applicable)")
        na = {j["SOP_INSTANCE_UID"] for j in gw.jobs("not_applicable")}
        assert {s.sop for s in neg} <= na, "not applicable: %s" % ({s.name for s in neg if
                                                                    s.sop not in na})
        assert_holds(srv, [s.path for s in tid], "after storescu")
        lines = audit(gw)[n0:]
        assoc = [x for x in lines if x.get("event") == "association"
                 and x.get("calling_aet") == SCU]
        eq([(x.get("called_aet"), x.get("outcome"), x.get("stores")) for x in assoc],
           [(AET, "released", len(every))], "association audit lines (called_aet, outcome, "
           "stores)")
        got = {x.get("sop_instance_uid"): (x.get("via"), x.get("status"), x.get("outcome"))
               for x in lines if x.get("event") == "received"}
        eq(got, {s.sop: ("dimse", "0000", "stored") for s in every},
           "'received' audit lines {sop_instance_uid: (via, status, outcome)}")

    test("storescu-corpus: storescu -R sends the %d Part 10 corpus files (%d TID 1500, %d not) "
         "in one association: %d successes; TID 1500 jobs done, the others not_applicable; "
         "the FHIR server holds exactly what convert makes; audit lines" % (
             len(every), len(tid), len(neg), len(every)), t_storescu)

    def t_dcmsend():
        counts0 = srv.counts(R5_TYPES)
        ids0 = fhirserver.stored(srv, MADE_TYPES)
        folder = os.path.join(TMP, "dcmsend-in")
        os.makedirs(folder, exist_ok=True)
        for s in every:
            os.symlink(s.path, os.path.join(folder, s.name))
        st0 = gw.stats()
        rc, text = run(["dcmsend", "-v", "+sd"] + dcm_args(gw) + [folder])
        eq(rc, 0, "dcmsend exit status (%s)" % short(text[-600:]))
        has_lines(text, ["Number of associations   : 1",
                         "* with status SUCCESS  : %d" % len(every)], "dcmsend -v")
        st = gw.wait_idle(len(every), since=st0, timeout=DRAIN_TIMEOUT)
        eq(delta(st, st0), {"done": len(tid), "not_applicable": len(neg)}, "queue stats change")
        eq(srv.counts(R5_TYPES), counts0, "resource counts after dcmsend sent all again")
        eq(fhirserver.stored(srv, MADE_TYPES), ids0, "resource ids after dcmsend")

    test("dcmsend-corpus: dcmsend +sd of the same files: one association, 'with status "
         "SUCCESS  : %d'; no count or id on the FHIR server changes" % len(every), t_dcmsend)


def ts_cases(gw, srv, tid):
    want = expected([s.path for s in tid])
    state = {}

    def t_profile(prof, ts):
        def t():
            if not state:
                srv.reset()
                state["st0"] = gw.stats()
            last = max([int(j["ID"]) for j in gw.jobs()] or [0])
            st1 = gw.stats()
            rc, text = run(["storescu", "-v", "-xf", SR_CFG, prof] + dcm_args(gw) +
                           [s.path for s in tid])
            eq(rc, 0, "storescu exit status (%s)" % short(text[-600:]))
            eq(successes(text), len(tid), "'Received Store Response (Success)' lines")
            # drained before the next round: a SOP Instance received again while its job
            # waits is merged into that job (queue.h), and each round must have its own
            gw.wait_idle(len(tid), since=st1, timeout=DRAIN_TIMEOUT)
            new = [j for j in gw.jobs() if int(j["ID"]) > last]
            eq(len(new), len(tid), "new jobs")
            got = {}
            for j in new:
                _, _, jts, _ = d.dataset_of(job_path(gw, j["ID"]))
                got[jts] = got.get(jts, 0) + 1
            eq(got, {ts: len(tid)}, "TransferSyntaxUID of the files written")
            state["n"] = state.get("n", 0) + len(tid)
        return t

    for prof, ts in PROFILES.items():
        test("transfer-syntax-%s: storescu -xf storescu-sr.cfg %s (only %s proposed): the %d "
             "TID 1500 files succeed, each a new job whose file is written as %s"
             % (prof.lower(), prof, ts, len(tid), ts), t_profile(prof, ts))

    def t_delivered():
        assert state.get("n") == len(tid) * len(PROFILES), "not every profile was sent"
        st = gw.stats()
        eq(delta(st, state["st0"]), {"done": state["n"]}, "queue stats change (every job done)")
        assert_holds(srv, [s.path for s in tid], "after the four transfer syntaxes", want)

    test("transfer-syntax-delivered: the %d jobs of the four rounds all done; the FHIR server "
         "(reset before) holds each SR's resources once, exactly what convert makes"
         % (len(tid) * len(PROFILES)), t_delivered)


def parallel_cases(gw, srv, tid):
    groups = []
    for k, aet in enumerate(PAR):
        folder = os.path.join(TMP, "par-%d" % k)
        paths = []
        for i, s in enumerate(tid):
            sub = os.path.join(folder, "%02d" % i)
            rc, text = run([PEERS, "copies", s.path, sub, str(COPIES)], timeout=120)
            assert rc == 0, "copies: %s" % short(text)
            paths += sorted(os.path.join(sub, f) for f in os.listdir(sub) if f.endswith(".dcm"))
        groups.append((aet, paths))
    every = [p for _, ps in groups for p in ps]
    bundles = gwservice.convert_all(every, os.path.join(TMP, "par-convert"))
    ids = expected_ids(bundles)
    want = ({t: len(ids.get(t, ())) for t in R5_TYPES}, ids)

    def t_parallel():
        srv.reset()
        st0, n0 = gw.stats(), len(audit(gw))
        res = [None] * len(groups)

        def send(k):
            aet, paths = groups[k]
            res[k] = run(["storescu", "-v", "-R"] + dcm_args(gw, calling=aet) + paths)

        threads = [threading.Thread(target=send, args=(k,)) for k in range(len(groups))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for k, (rc, text) in enumerate(res):
            eq(rc, 0, "storescu %s exit status (%s)" % (PAR[k], short(text[-400:])))
            eq(successes(text), len(groups[k][1]), "successes of storescu %s" % PAR[k])
        st = gw.wait_idle(len(every), since=st0, timeout=DRAIN_TIMEOUT)
        eq(delta(st, st0), {"done": len(every)}, "queue stats change")
        assoc = sorted((x.get("calling_aet"), x.get("outcome"), x.get("stores"))
                       for x in audit(gw)[n0:] if x.get("event") == "association")
        eq(assoc, [(p, "released", len(groups[0][1])) for p in PAR], "association audit lines")
        assert_holds(srv, every, "after 4 parallel storescu", want)

    test("parallel: 4 storescu at once (%s), each %d new copies of the TID 1500 files in one "
         "association: all acknowledged, 4 association audit lines, the FHIR server holds "
         "exactly what convert makes of the %d copies" % (",".join(PAR), len(groups[0][1]),
                                                          len(every)), t_parallel)


def non_sr_cases(gw, tid):
    ct = make_ct("ct")

    def t_ct_alone():
        st0 = gw.stats()
        rc, text = run(["storescu", "-R"] + dcm_args(gw) + [ct])
        eq(rc, 1, "storescu exit status (%s)" % short(text))
        has_lines(text, ["No Acceptable Presentation Contexts"], "storescu of a CT image")
        rc, text = run(["storescu", "-d", "-R"] + dcm_args(gw) + [ct])
        assert re.search(r"Context ID:\s+1 \(Abstract Syntax Not Supported\)", text), \
            "storescu -d: no 'Context ID: 1 (Abstract Syntax Not Supported)' in the " \
            "negotiated parameters: %s" % short(text[-900:], 900)
        eq(gw.stats(), st0, "queue stats (nothing queued)")

    test("non-sr-ct: a CT image alone: storescu prints 'No Acceptable Presentation Contexts', "
         "and with -d 'Context ID: 1 (Abstract Syntax Not Supported)'; nothing queued",
         t_ct_alone)

    def t_ct_with_sr():
        st0 = gw.stats()
        rc, text = run(["storescu", "-v", "-R"] + dcm_args(gw) + [tid[0].path, ct])
        has_lines(text, ["No presentation context for: (CT)"], "storescu of an SR and a CT")
        eq(successes(text), 1, "'Received Store Response (Success)' lines (the SR)")
        eq(text.count("Association Rejected"), 0, "association rejections")
        st = gw.wait_idle(1, since=st0, timeout=DRAIN_TIMEOUT)
        eq(delta(st, st0), {"done": 1}, "queue stats change (the SR only)")

    test("non-sr-ct-with-sr: an SR and a CT image in one association: the SR stored (1 "
         "success), storescu prints 'No presentation context for: (CT)', the association is "
         "not rejected, only the SR queued", t_ct_with_sr)


def orthanc_cases(gw, srv, tid):
    name = "dimsesrc%d" % os.getpid()

    def peers(*args, timeout=180):
        return run([PEERS, *args], timeout=timeout)

    atexit.register(lambda: peers("orthanc-stop", name, "--kill", timeout=60))
    try:
        host, port = gw.dicom_address()
        rc, o = peers("orthanc-start", name, "--http", "auto", "--dicom", "auto", "--aet", ORTH,
                      "--forward", "%s@%s:%d" % (AET, host, port), "--auto", "dicom")
        ready = dict(f.split("=", 1) for f in o.split() if "=" in f)
        if rc != 0 or "url" not in ready:
            harness.report(False, NAME + "-orthanc-start", "exit %d: %s" % (rc, short(o)))
            return
        url = ready["url"]
        want = expected([s.path for s in tid])

        def t_forward():
            srv.reset()
            st0 = gw.stats()
            rc, o = peers("orthanc-load", name, *[s.path for s in tid])
            assert rc == 0 and "failed=0" in o, "orthanc-load: exit %d: %s" % (rc, short(o))
            st = gw.wait_idle(len(tid), since=st0, timeout=DRAIN_TIMEOUT)
            status, jobs = fhirserver.http("GET", url + "/jobs?expand", timeout=30)
            bad = [j for j in jobs or [] if j.get("State") == "Failure"]
            assert not bad, "Orthanc jobs failed: %s" % short(json.dumps(bad), 600)
            eq(delta(st, st0), {"done": len(tid)}, "queue stats change (one job per instance)")
            assert_holds(srv, [s.path for s in tid], "after Orthanc's forwarding", want)

        test("orthanc-forward: the %d TID 1500 files loaded into Orthanc, forwarded by its Lua "
             "C-STORE to the service (%s): each on the FHIR server once, no Orthanc job failed"
             % (len(tid), ORTH), t_forward)

        def t_send_all():
            counts0 = srv.counts(R5_TYPES)
            ids0 = fhirserver.stored(srv, MADE_TYPES)
            st0 = gw.stats()
            rc, o = peers("orthanc-send", name, "--to", "dicom", "--all", timeout=300)
            assert rc == 0 and "failed=0" in o, "orthanc-send: exit %d: %s" % (rc, short(o))
            gw.wait_idle(len(tid), since=st0, timeout=DRAIN_TIMEOUT)
            eq(srv.counts(R5_TYPES), counts0, "resource counts after Orthanc sent all again")
            eq(fhirserver.stored(srv, MADE_TYPES), ids0, "resource ids after sending again")

        test("orthanc-send-all: orthanc-send --to dicom --all (one association): failed=0, no "
             "count or id on the FHIR server changes", t_send_all)

        def t_wrong_aet():
            rc, o = peers("orthanc-target", name, "--name", "wrongaet", "--dicom",
                          "NOT_US@%s:%d" % (host, port))
            assert rc == 0, "orthanc-target: exit %d: %s" % (rc, short(o))
            st0 = gw.stats()
            rc, o = peers("orthanc-send", name, "--to", "dicom", "--target", "wrongaet",
                          "--instance", tid[0].sop, timeout=120)
            eq(rc, 1, "orthanc-send exit status (%s)" % short(o))
            has_lines(o, ["DUL Association Rejected"], "orthanc-send to a called AE title not "
                      "the service's")
            eq(gw.stats(), st0, "queue stats (nothing queued)")

        test("orthanc-wrong-called-aet: Orthanc sending to the service under the called AE "
             "title NOT_US: orthanc-send exits 1 and reports 'DUL Association Rejected', "
             "nothing queued", t_wrong_aet)
    finally:
        peers("orthanc-stop", name, "--kill", timeout=60)


def skip(why):
    out("SKIP %s: %s" % (NAME, why))
    return 0


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    atexit.register(gwservice.finish, TMP)  # removed, or kept on a failure with SR2FHIR_KEEP_TMP
    if not harness.has_pydicom():
        return skip("%s has no pydicom (apt-get install python3-pydicom)" % harness.PYTHON)
    if not os.access(SR2FHIR, os.X_OK):
        out("FAIL %s: no executable %s (run make)" % (NAME, SR2FHIR))
        return 1
    if not os.access(gwservice.SERVE, os.X_OK):
        return skip("no executable %s: the gateway service is not built" % gwservice.SERVE)
    with open(gwservice.SERVE, "rb") as f:
        has_dicom = b"serving DICOM" in f.read()
    if not has_dicom:
        return skip("`sr2fhir serve` has no --dicom option yet (issue 12 not landed)")
    if not os.path.isdir(CORPUS) or not os.path.exists(FHIR_SERVER_SH) or \
            not os.path.exists(PEERS):
        return skip("%s is absent (../shared not beside the checkout)" % SHARED)
    if not shutil.which("node") or not shutil.which("npm"):
        return skip("node and npm are needed by the FHIR server (../shared/tools/fhir-server)")
    missing = [t for t in ("echoscu", "storescu", "dcmsend") if not shutil.which(t)]
    if missing:
        return skip("DCMTK's %s absent (apt-get install dcmtk)" % ", ".join(missing))
    try:
        inv = inventory()
        files = sorted(f for f in os.listdir(CORPUS) if f.endswith(".dcm"))
        tid = [Sr(os.path.join(CORPUS, f)) for f in files if inv.get(f, "").lower() == "yes"]
        neg = [Sr(os.path.join(CORPUS, f)) for f in files if inv.get(f, "").lower() != "yes"]
        assert tid and neg, "INVENTORY.tsv: %d TID 1500 and %d other Part 10 files" % (
            len(tid), len(neg))
        for s in tid:
            convert(s.path)
    except Exception as e:  # noqa: BLE001
        harness.report(False, NAME + "-setup", short(e, 600))
        return 1
    srv, rc = gwservice.start_fhir_server(NAME, os.path.join(TMP, "fhir-R5"))
    if srv is None:
        return rc
    gw = gwservice.Service(os.path.join(TMP, "data"), srv.base, os.path.join(TMP, "serve.log"),
                           *SERVE_OPTS, dicom_aet=AET, env=clean_env(TCP_NODELAY="1"))
    try:
        try:
            line = gw.start()
            harness.report(True, "%s-start: %s" % (NAME, line))
        except AssertionError as e:
            harness.report(False, NAME + "-start", short(e, 900))
            return 1
        echo_cases(gw)
        corpus_cases(gw, srv, tid, neg)
        ts_cases(gw, srv, tid)
        parallel_cases(gw, srv, tid)
        non_sr_cases(gw, tid)
        if subprocess.run([PEERS, "install", "--check"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, env=ENV, timeout=60).returncode:
            out("SKIP %s-orthanc: Orthanc is not installed (%s install --check)" % (NAME, PEERS))
        else:
            orthanc_cases(gw, srv, tid)

        def t_sigterm():
            eq(gw.stop(), 0, "exit status after SIGTERM (log: %s)" % gw.log_tail(300))

        test("sigterm: SIGTERM stops the service with exit 0", t_sigterm)
    except Exception as e:  # noqa: BLE001
        harness.report(False, NAME, "%s: %s" % (type(e).__name__, short(e, 900)))
    finally:
        gwservice.finish(None, gw, srv)  # TMP: removed at exit (atexit)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
