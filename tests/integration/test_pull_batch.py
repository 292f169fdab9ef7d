#!/usr/bin/python3
"""tests/integration/test_pull_batch.py - `sr2fhir pull` commits retrieved instances in
batches (issue 13, docs/decisions.md "Issue 13: batched commits"), against a stub DICOMweb
server (http.server in a thread on a free loopback port) serving 40 small SR Part 10
objects made with pydicom. Prints PASS/FAIL/SKIP lines for tests/run.sh.

- batch-jobs1 / batch-jobs4: a queue-only run (--data, -v) with --jobs 1 and 4: 40 queued,
  exactly one job per SOP Instance UID, and the run's count of s2f_intake_commit calls
  (the -v line "pull: N instances committed in M commits") is 40 instances in fewer than
  40 commits (at least 2: a batch holds at most 32).
- batch-failure: the second instance's retrieval answers 503 for ever (the run ends, exit
  11): the first instance, retrieved and waiting in the batch, is not queued (no job, no
  pulled record, no file left in DIR/incoming); the stub repaired, a rerun queues all 40,
  one job each. (Committed one by one, the first instance would have been queued.)

Nothing asserts on wall-clock time. SKIP when pydicom is absent. Environment: ROOT, BUILD,
SR2FHIR, PYTHON, SHARED.
"""
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import SR2FHIR, clean_env, eq, out, short  # noqa: E402

SR = "1.2.840.10008.5.1.4.1.1.88.22"
STUDY = "1.2.826.0.1.3680043.10.1500.88.1"
SERIES = STUDY + ".1"
N = 40
BOUNDARY = "b4tch-b0undary"
MP_TYPE = 'multipart/related; type="application/dicom"; boundary=' + BOUNDARY
COMMITS = re.compile(r"pull: (\d+) instances committed in (\d+) commits")
TMP = tempfile.mkdtemp(prefix="sr2fhir-pull-batch-")


def sop(i):
    return "%s.%d" % (SERIES, i + 1)


def make_sr(uid):
    """A small Enhanced SR Part 10 object (what intake's classification needs)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SR
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SR, uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, SERIES
    ds.Modality, ds.StudyDate, ds.PatientName = "SR", "20240105", "Doe^J"
    ds.ValueType = "CONTAINER"
    buf = io.BytesIO()
    try:
        ds.save_as(buf, enforce_file_format=True)
    except TypeError:  # pydicom < 3
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(buf, write_like_original=False)
    return buf.getvalue()


def attr(vr, *values):
    return {"vr": vr, "Value": list(values)}


class Stub:
    """QIDO-RS: one series of N SR instances; WADO-RS: their bytes (instance `broken`: 503)."""

    def __init__(self, objs):
        self.objs = objs
        self.broken = None
        self.lock = threading.Lock()
        self.retrieved = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                try:
                    stub.answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d/dicom-web" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def send(h, status, body, ctype):
        if isinstance(body, list):
            body = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def answer(self, h):
        u = urllib.parse.urlsplit(h.path)
        q = urllib.parse.parse_qs(u.query)
        limit, offset = int(q.get("limit", ["1000"])[0]), int(q.get("offset", ["0"])[0])
        p = u.path.split("/")[2:]   # after /dicom-web
        if p == ["series"]:
            rows = [{"0020000D": attr("UI", STUDY), "0020000E": attr("UI", SERIES),
                     "00080060": attr("CS", "SR"), "00080020": attr("DA", "20240105")}]
            return self.send(h, 200, rows[offset:offset + limit], "application/dicom+json")
        if len(p) == 5 and p[4] == "instances":
            rows = [{"0020000D": attr("UI", STUDY), "0020000E": attr("UI", SERIES),
                     "00080018": attr("UI", sop(i)), "00080016": attr("UI", SR)}
                    for i in range(N)] if p[3] == SERIES else []
            return self.send(h, 200, rows[offset:offset + limit], "application/dicom+json")
        if len(p) == 6 and p[4] == "instances" and p[5] in self.objs:
            with self.lock:
                self.retrieved[p[5]] = self.retrieved.get(p[5], 0) + 1
                broken = self.broken == p[5]
            if broken:
                return self.send(h, 503, b"maintenance", "text/plain")
            body = (b"--" + BOUNDARY.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" +
                    self.objs[p[5]] + b"\r\n--" + BOUNDARY.encode() + b"--\r\n")
            return self.send(h, 200, body, MP_TYPE)
        return self.send(h, 404, b"no such thing", "text/plain")


def run_pull(url, data, *opts):
    p = subprocess.run([SR2FHIR, "pull", "--dicomweb", url, "--data", data, "-v", *opts],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                       timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def queue_jobs(data):
    """{sop_instance_uid: number of jobs} of DATA's queue."""
    p = subprocess.run([SR2FHIR, "queue", "list", "--limit", "100000", "--data", data],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 0, "queue list: %s" % short(p.stderr.decode())
    lines = p.stdout.decode().splitlines()
    head = lines[0].split("\t") if lines else []
    jobs = {}
    for ln in lines[1:]:
        uid = dict(zip(head, ln.split("\t")))["SOP_INSTANCE_UID"]
        jobs[uid] = jobs.get(uid, 0) + 1
    return jobs


def pulled_records(data):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data, "queue.sqlite"), uri=True)
    try:
        return db.execute("SELECT count(*) FROM pulled").fetchone()[0]
    finally:
        db.close()


def commits(err):
    m = COMMITS.findall(err)
    assert len(m) == 1, "expected one 'committed in' line, stderr %r" % short(err, 600)
    return int(m[0][0]), int(m[0][1])


def all_queued(stub, jobs):
    data = os.path.join(TMP, "data-jobs%s" % jobs)
    rc, o, e = run_pull(stub.url, data, "--jobs", jobs)
    eq(rc, 0, "exit status (stdout %r, stderr %r)" % (short(o), short(e)))
    queued, made = commits(e)
    eq(queued, N, "instances committed")
    assert 2 <= made < N, "%d commits for %d instances: not batched" % (made, N)
    eq(queue_jobs(data), {sop(i): 1 for i in range(N)}, "one job per SOP Instance UID")
    eq(pulled_records(data), N, "pulled records")


def failure_mid_batch(stub):
    data = os.path.join(TMP, "data-failure")
    stub.broken = sop(1)
    try:
        rc, o, e = run_pull(stub.url, data, "--jobs", "1")
    finally:
        stub.broken = None
    eq(rc, 11, "exit status with the second instance failing (stderr %r)" % short(e))
    eq(stub.retrieved.get(sop(0), 0) >= 1, True, "the first instance was retrieved")
    eq(queue_jobs(data), {}, "jobs after the failure (the first instance's batch dropped)")
    eq(pulled_records(data), 0, "pulled records after the failure")
    eq(os.listdir(os.path.join(data, "incoming")), [], "files left in DIR/incoming")
    rc, o, e = run_pull(stub.url, data, "--jobs", "1")
    eq(rc, 0, "rerun exit status (stderr %r)" % short(e))
    eq(commits(e)[0], N, "rerun: instances committed")
    eq(queue_jobs(data), {sop(i): 1 for i in range(N)}, "rerun: one job per SOP Instance UID")


def main():
    if not os.access(SR2FHIR, os.X_OK):
        out("SKIP pull-batch: %s not built" % SR2FHIR)
        return 0
    try:
        import pydicom  # noqa: F401
    except ImportError:
        out("SKIP pull-batch: no pydicom for %s" % sys.executable)
        return 0
    stub = Stub({sop(i): make_sr(sop(i)) for i in range(N)})
    try:
        harness.test("batch-jobs1", all_queued, stub, "1")
        harness.test("batch-jobs4", all_queued, stub, "4")
        harness.test("batch-failure", failure_mid_batch, stub)
    finally:
        stub.stop()
        shutil.rmtree(TMP, ignore_errors=True)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
