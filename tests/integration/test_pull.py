#!/usr/bin/python3
"""tests/integration/test_pull.py - `sr2fhir pull` (docs/pull.md, issue 13) against Orthanc's
DICOMweb plugin (../shared/tools/dicom-peers) and the FHIR server tool (R5). Prints
PASS/FAIL/SKIP lines for tests/run.sh.

- pull-all: Orthanc holds the corpus' Part 10 files (TID 1500 SRs, non-TID-1500 SRs) and two
  Secondary Capture images made with pydicom. One `pull --server --data` run: the summary
  line counts every SR found, retrieved, queued; every TID 1500 SR's jobs is done, every
  other SR's job not_applicable, no image queued (no job has an image's UID); the FHIR
  server holds exactly what `sr2fhir convert` makes of the TID 1500 files.
- pull-again: the same run again: found N, new 0, skipped N, queued 0, delivered 0; the FHIR
  server's counts and ids unchanged; no job added.
- pull-study / pull-since / pull-until: queue-only runs (--data, no --server) into fresh data
  folders: the jobs' SOP Instance UIDs are exactly the SRs of that study / StudyDate range
  (computed from the files with pydicom).
- pull-private: without --data (a private temporary folder, removed) the run delivers too.
- pull-outage: Orthanc killed while a queue-only run retrieves 400 SRs: exit 11 with one
  line on stderr; Orthanc restarted on its kept storage: a rerun completes (exit 0): every
  SR has exactly one job, those queued before the outage were skipped.
- usage: a missing --dicomweb, --study with --since: exit 2, one line.

Waits are bounded and count work; nothing asserts on wall-clock time. Every process started
is stopped at the end. SKIP with the reason when sr2fhir-pull, pydicom, ../shared, node/npm
or Orthanc are absent. Environment: ROOT, BUILD, SR2FHIR, PYTHON, SHARED.
"""
import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import FHIR_SERVER_SH, SHARED, SR2FHIR, clean_env, eq, out, short  # noqa: E402
import fhirserver  # noqa: E402
from fhirserver import MADE_TYPES, R5_TYPES, convert, expected_ids  # noqa: E402
import gwservice  # noqa: E402

PULL = os.path.join(os.path.dirname(SR2FHIR), "sr2fhir-pull")
CORPUS = os.path.join(SHARED, "corpus", "files")
PEERS = os.path.join(SHARED, "tools", "dicom-peers", "dicom-peers.sh")
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"
UID_ROOT = "1.2.826.0.1.3680043.10.1500.77."
SUMMARY = re.compile(r"^pull: found (\d+), new (\d+), skipped (\d+), queued (\d+), "
                     r"delivered (\d+), not_applicable (\d+), failed (\d+)$")
KEYS = ("found", "new", "skipped", "queued", "delivered", "not_applicable", "failed")
PULL_TIMEOUT = 600

TMP = tempfile.mkdtemp(prefix="sr2fhir-pull-test-")
PEERS_ENV = clean_env(DICOM_PEERS_HOME=os.path.join(TMP, "peers"), TCP_NODELAY="1")


def test(name, fn, *args):
    harness.test(name, fn, *args, width=900)


class Obj:
    """A DICOM file loaded into Orthanc: path and UIDs."""

    def __init__(self, path):
        import pydicom
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        self.path, self.name = path, os.path.basename(path)
        self.sop, self.cls = str(ds.SOPInstanceUID), str(ds.SOPClassUID)
        self.study, self.date = str(ds.StudyInstanceUID), str(ds.get("StudyDate", "") or "")
        self.sr = self.cls.startswith("1.2.840.10008.5.1.4.1.1.88.")


def make_image(name):
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    sop = generate_uid(prefix=UID_ROOT)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SC_IMAGE, sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID_ROOT + "1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SC_IMAGE, sop
    ds.StudyInstanceUID = generate_uid(prefix=UID_ROOT)
    ds.SeriesInstanceUID = generate_uid(prefix=UID_ROOT)
    ds.PatientID, ds.PatientName, ds.Modality, ds.StudyDate = "PULL-T", "Pull^Test", "OT", "20240101"
    ds.ConversionType = "WSD"
    ds.Rows = ds.Columns = 2
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(4)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    path = os.path.join(TMP, name + ".dcm")
    pydicom.dcmwrite(path, ds, write_like_original=False)
    return Obj(path)


# ---- peers, runs, queue -----------------------------------------------------------------
def peers(*args, timeout=180):
    p = subprocess.run([PEERS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=PEERS_ENV, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def orthanc_start(name, *extra):
    rc, o, e = peers("orthanc-start", name, "--http", "auto", "--dicom", "auto", *extra)
    ready = dict(f.split("=", 1) for f in o.split() if "=" in f)
    assert rc == 0 and "dicomweb" in ready, "orthanc-start %s: exit %d: %s %s" % (
        name, rc, short(o), short(e))
    atexit.register(peers, "orthanc-stop", name, "--kill")
    return ready["dicomweb"]


def orthanc_load(name, paths):
    rc, o, e = peers("orthanc-load", name, *paths, timeout=600)
    assert rc == 0 and "failed=0" in o, "orthanc-load: exit %d: %s %s" % (rc, short(o), short(e))


def pull_cmd(url, *opts):
    return [SR2FHIR, "pull", "--dicomweb", url, *opts]


def run_pull(url, *opts):
    """(exit status, summary dict or None, stdout, stderr) of one run."""
    p = subprocess.run(pull_cmd(url, *opts), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=clean_env(), timeout=PULL_TIMEOUT)
    o, e = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    return p.returncode, summary(o), o, e


def summary(text):
    lines = [ln for ln in text.splitlines() if ln.strip()]
    m = SUMMARY.match(lines[-1]) if len(lines) == 1 else None
    return dict(zip(KEYS, map(int, m.groups()))) if m else None


def queue_jobs(data):
    """{sop_instance_uid: [state, ...]} of every job in DATA's queue."""
    p = subprocess.run([SR2FHIR, "queue", "list", "--limit", "100000", "--data", data],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 0, "queue list: %s" % short(p.stderr.decode())
    lines = p.stdout.decode().splitlines()
    head = lines[0].split("\t") if lines else []
    jobs = {}
    for ln in lines[1:]:
        row = dict(zip(head, ln.split("\t")))
        jobs.setdefault(row["SOP_INSTANCE_UID"], []).append(row["STATE"])
    return jobs


def expected(objs):
    ids = expected_ids([convert(o.path) for o in objs])
    return {t: len(ids.get(t, ())) for t in R5_TYPES}, ids


def assert_holds(srv, objs, what):
    counts, ids = expected(objs)
    eq(srv.counts(R5_TYPES), counts, "%s: resources per type on the FHIR server" % what)
    got = fhirserver.stored(srv, MADE_TYPES)
    for t in MADE_TYPES:
        eq(sorted(got[t] ^ ids[t])[:3], [], "%s: %s ids differing from convert's" % (what, t))


def unique(objs):
    seen = {}
    for o in objs:
        seen.setdefault(o.sop, o)
    return list(seen.values())


# ---- cases ------------------------------------------------------------------------------
def main_cases(srv, url, tid, neg, images):
    d1 = os.path.join(TMP, "data1")
    n_tid, n_neg = len(tid), len(neg)
    n = n_tid + n_neg

    def t_all():
        rc, s, o, e = run_pull(url, "--server", srv.base, "--data", d1)
        eq((rc, s), (0, {"found": n, "new": n, "skipped": 0, "queued": n, "delivered": n_tid,
                         "not_applicable": n_neg, "failed": 0}),
           "exit and summary (stdout %r, stderr %r)" % (short(o), short(e)))
        jobs = queue_jobs(d1)
        eq({u: st for u, st in jobs.items()},
           {**{x.sop: ["done"] for x in tid}, **{x.sop: ["not_applicable"] for x in neg}},
           "jobs per SOP Instance UID")
        assert not any(i.sop in jobs for i in images), "an image was queued"
        assert_holds(srv, tid, "after the first pull")

    test("pull-all: %d TID 1500 SRs, %d other SRs and %d images in Orthanc: one run finds "
         "the %d SRs, delivers each TID 1500 one once (the FHIR server holds exactly what "
         "convert makes), the others end not_applicable, no image queued"
         % (n_tid, n_neg, len(images), n), t_all)

    def t_again():
        counts0, ids0 = srv.counts(R5_TYPES), fhirserver.stored(srv, MADE_TYPES)
        jobs0 = queue_jobs(d1)
        rc, s, o, e = run_pull(url, "--server", srv.base, "--data", d1)
        eq((rc, s), (0, {"found": n, "new": 0, "skipped": n, "queued": 0, "delivered": 0,
                         "not_applicable": 0, "failed": 0}),
           "exit and summary (stdout %r, stderr %r)" % (short(o), short(e)))
        eq(queue_jobs(d1), jobs0, "jobs after the second pull")
        eq(srv.counts(R5_TYPES), counts0, "resource counts after the second pull")
        eq(fhirserver.stored(srv, MADE_TYPES), ids0, "resource ids after the second pull")

    test("pull-again: a second run retrieves nothing (new 0, skipped %d), queues nothing, "
         "the FHIR server's counts and ids unchanged" % n, t_again)

    def t_recheck():
        rc, s, o, e = run_pull(url, "--data", d1, "--recheck")
        eq((rc, s), (0, {"found": n, "new": n, "skipped": n, "queued": 0, "delivered": 0,
                         "not_applicable": 0, "failed": 0}),
           "exit and summary (stdout %r, stderr %r)" % (short(o), short(e)))

    test("pull-recheck: --recheck retrieves all %d again, finds the same SHA-256 and queues "
         "nothing" % n, t_recheck)

    srs = tid + neg
    studies = {}
    for x in srs:
        studies.setdefault(x.study, []).append(x)
    study, members = max(studies.items(), key=lambda kv: (len(kv[1]), kv[0]))

    def selected(name, opts, want):
        data = os.path.join(TMP, "data-" + name)
        rc, s, o, e = run_pull(url, "--data", data, *opts)
        assert rc == 0 and s, "exit %d, stdout %r, stderr %r" % (rc, short(o), short(e))
        eq((s["found"], s["queued"]), (len(want), len(want)), "found and queued")
        eq(sorted(queue_jobs(data)), sorted(x.sop for x in want), "SOP Instance UIDs queued")

    test("pull-study: --study %s (queue only) queues exactly its %d SRs" % (study, len(members)),
         selected, "study", ["--study", study], members)
    since = [x for x in srs if x.date and x.date >= "20140101"]
    test("pull-since: --since 20140101 queues exactly the %d SRs of StudyDate from then on"
         % len(since), selected, "since", ["--since", "20140101"], since)
    rng = [x for x in srs if x.date and "19860101" <= x.date <= "19881231"]
    test("pull-until: --since 19860101 --until 19881231 queues exactly the %d SRs of StudyDate "
         "in that range" % len(rng), selected, "until",
         ["--since", "19860101", "--until", "19881231"], rng)

    def t_private():
        srv.reset()
        before = set(os.listdir(tempfile.gettempdir()))
        rc, s, o, e = run_pull(url, "--server", srv.base, "--study", study)
        members_tid = [x for x in members if x in tid]
        eq((rc, s["delivered"] if s else None), (0, len(members_tid)),
           "exit and delivered (stdout %r, stderr %r)" % (short(o), short(e)))
        left = [f for f in set(os.listdir(tempfile.gettempdir())) - before
                if f.startswith("sr2fhir-pull-") and not f.startswith("sr2fhir-pull-test-")]
        eq(left, [], "temporary data folders left behind")
        assert_holds(srv, members_tid, "after the private pull")

    test("pull-private: without --data the run delivers through a temporary data folder "
         "and removes it", t_private)


def outage_case(workdir):
    name = "pullout%d" % os.getpid()
    src = os.path.join(workdir, "base.dcm")
    shutil.copy(os.path.join(CORPUS, "tid1500__highdicom__sr_document.dcm"), src)
    copies = os.path.join(workdir, "copies")
    rc, o, e = peers("copies", src, copies, "400", "--new-study", timeout=600)
    assert rc == 0, "copies: %s %s" % (short(o), short(e))
    url = orthanc_start(name)
    orthanc_load(name, [copies])
    data = os.path.join(workdir, "data-outage")
    proc = subprocess.Popen(pull_cmd(url, "--data", data, "--jobs", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    try:
        deadline = time.monotonic() + 300
        qdb = os.path.join(data, "queue.sqlite")
        while proc.poll() is None and time.monotonic() < deadline:
            if os.path.exists(qdb) and len(queue_jobs(data)) >= 20:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before Orthanc could be stopped (exit %r)" \
            % proc.returncode
        peers("orthanc-stop", name, "--kill")
        o, e = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    o, e = o.decode("utf-8", "replace"), e.decode("utf-8", "replace")
    lines = [ln for ln in e.splitlines() if ln.strip()]
    eq(proc.returncode, 11, "exit status with Orthanc gone (stderr %r)" % short(e))
    assert len(lines) == 1 and lines[0].startswith("sr2fhir: " + url), \
        "stderr: expected one line 'sr2fhir: %s: ...', got %r" % (url, short(e, 600))
    before = queue_jobs(data)
    assert 20 <= len(before) < 400, "%d jobs before the outage" % len(before)
    url2 = orthanc_start(name, "--keep")
    rc, s, o, e = run_pull(url2, "--data", data)
    eq((rc, s and s["found"], s and s["skipped"], s and s["queued"]),
       (0, 400, len(before), 400 - len(before)),
       "rerun: exit, found, skipped, queued (stdout %r, stderr %r)" % (short(o), short(e)))
    jobs = queue_jobs(data)
    eq(len(jobs), 400, "SOP Instance UIDs queued")
    eq([u for u, st in jobs.items() if len(st) != 1], [], "UIDs with more than one job")
    peers("orthanc-stop", name, "--kill")


def usage_cases():
    def t_usage(opts, what):
        p = subprocess.run([SR2FHIR, "pull", *opts], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        e = p.stderr.decode()
        eq((p.returncode, len(e.splitlines()), p.stdout), (2, 1, b""), "exit, stderr lines, "
           "stdout (stderr %r)" % e)
        assert what in e, "stderr %r lacks %r" % (e, what)

    test("usage-no-dicomweb: no --dicomweb: exit 2, one line", t_usage,
         ["--server", "http://127.0.0.1:1/fhir"], "--dicomweb")
    test("usage-study-since: --study with --since: exit 2, one line", t_usage,
         ["--dicomweb", "http://127.0.0.1:1/dicom-web", "--data", TMP, "--study", "1.2.3",
          "--since", "20200101"], "--study excludes")
    test("usage-secret: --dicomweb-token on the command line: exit 2", t_usage,
         ["--dicomweb", "http://127.0.0.1:1/dicom-web", "--data", TMP, "--dicomweb-token",
          "x"], "secrets")


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    atexit.register(gwservice.finish, TMP)  # removed, or kept on a failure with SR2FHIR_KEEP_TMP
    atexit.register(peers, "stop-all", "--kill")
    if not harness.has_pydicom():
        out("SKIP pull: %s has no pydicom (apt-get install python3-pydicom)" % harness.PYTHON)
        return 0
    if not os.access(PULL, os.X_OK):
        out("SKIP pull: no executable %s (run make)" % PULL)
        return 0
    usage_cases()
    if not os.path.isdir(CORPUS) or not os.path.exists(FHIR_SERVER_SH) or \
            not os.path.exists(PEERS):
        out("SKIP pull: %s is absent (../shared not beside the checkout)" % SHARED)
        return harness.exit_code()
    if not shutil.which("node") or not shutil.which("npm"):
        out("SKIP pull: node and npm are needed by the FHIR server (../shared/tools/fhir-server)")
        return harness.exit_code()
    if subprocess.run([PEERS, "install", "--check"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL, env=PEERS_ENV, timeout=60).returncode:
        out("SKIP pull: Orthanc or its DICOMweb plugin is not installed (%s install --check)"
            % PEERS)
        return harness.exit_code()
    try:
        files = sorted(os.path.join(CORPUS, f) for f in os.listdir(CORPUS)
                       if f.endswith(".dcm") and f.startswith(("tid1500__", "neg__")))
        objs = unique([Obj(p) for p in files])
        tid = [x for x in objs if x.name.startswith("tid1500__")]
        neg = [x for x in objs if x.name.startswith("neg__")]
        images = [make_image("image%d" % i) for i in range(2)]
        for x in tid:
            convert(x.path)
        url = orthanc_start("pullsrc%d" % os.getpid())
        orthanc_load("pullsrc%d" % os.getpid(), [x.path for x in objs + images])
    except Exception as e:  # noqa: BLE001
        harness.report(False, "pull-setup", short(e, 600))
        return 1
    srv, rc = gwservice.start_fhir_server("pull", os.path.join(TMP, "fhir-R5"))
    if srv is None:
        return rc
    try:
        main_cases(srv, url, tid, neg, images)
        test("pull-outage: Orthanc killed mid-run: exit 11 and one error line; a rerun after "
             "its restart completes, every SR queued exactly once", outage_case, TMP)
    finally:  # TMP: removed at exit (atexit above), the SKIP paths' returns included
        gwservice.finish(None, srv, lambda: peers("stop-all", "--kill"))
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
