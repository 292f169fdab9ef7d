#!/usr/bin/python3
"""tests/integration/test_dicomweb_hostile.py - the DICOMweb pull client (src/gateway/dicomweb.c,
issue 13) against a stub DICOMweb server giving bad answers, and against Orthanc. Prints
PASS/FAIL/SKIP lines for tests/run.sh.

The client is driven through BUILD/tests/tools/dw_probe (search / retrieve / pull; one
"ERROR <code> <name>: message" line on failure, "VMHWM <kB>" at exit). The stub is
http.server in a thread on a free loopback port; the first path segment names the
scenario (http://127.0.0.1:P/<scenario>/dicom-web/...), and it logs every request.

Cases: a good server (exact requests: series query with Modality=SR, StudyDate range and
includefield, instance queries per series, limit/offset paging until a short page, the
Accept headers; only SR SOP classes reported; a retrieved part stored byte for byte);
QIDO answers of the wrong shape (object, Value not an array, number for a UID, text/html);
servers ignoring limit or offset; malformed multipart (no close delimiter, two parts, not
multipart, wrong part type): one clear error each and nothing left in DIR/incoming; a
10 GB Content-Length on QIDO and WADO answers (refused when the headers are in: the stub
sends no body byte, so only that refusal can end the request with code 7); a body streamed
without a length past the bound (cut off; bytes the stub could send and the client's VmHWM
bounded); a slow drip (the per-try timeout, then the deadline across retries); 500s then
success (retried: the request counts); 503 for ever (retries + 1 tries); 401 (not retried,
credentials sent as asked). Orthanc (../shared/tools/dicom-peers; SKIP when absent): corpus
SRs and a non-SR CT loaded, search finds exactly the SRs, --study and --since select, pull
retrieves every SR byte for byte.

Nothing asserts on wall-clock time; waits are generous deadlines for hang detection only.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import BUILD, ROOT, SHARED, eq, out, short  # noqa: E402

PROBE = os.path.join(ROOT, BUILD, "tests", "tools", "dw_probe")
TMP = tempfile.mkdtemp(prefix="sr2fhir-dw-hostile-")
MIB = 1024 * 1024
SR = "1.2.840.10008.5.1.4.1.1.88.22"
CT = "1.2.840.10008.5.1.4.1.1.2"
BOUNDARY = "b0und4ry-x"
PART = b"\0" * 128 + b"DICM" + b"\r\n--not-the-boundary\r\n" + bytes(range(256)) * 8


def attr(vr, *values):
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def series_obj(study, series, date="20240105", time_="101500"):
    return {"0020000D": attr("UI", study), "0020000E": attr("UI", series),
            "00080060": attr("CS", "SR"), "00080020": attr("DA", date),
            "00080030": attr("TM", time_)}


def inst_obj(study, series, sop, cls=SR):
    return {"0020000D": attr("UI", study), "0020000E": attr("UI", series),
            "00080018": attr("UI", sop), "00080016": attr("UI", cls),
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^J"}]}}


class Stub:
    """Scenario-driven DICOMweb stand-in; every request logged as (path, query, headers)."""

    def __init__(self):
        self.log = []
        self.lock = threading.Lock()
        self.counts = {}
        self.sent = {}           # scenario -> body bytes written before the client went away
        self.closed = {}         # scenario -> the client closed the connection
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                parts = u.path.split("/")
                scenario, rest = parts[1], "/" + "/".join(parts[3:])   # /<scenario>/dicom-web/...
                q = urllib.parse.parse_qs(u.query)
                with stub.lock:
                    stub.log.append((scenario, rest, u.query, dict(self.headers)))
                    key = (scenario, rest, u.query)
                    stub.counts[key] = stub.counts.get(key, 0) + 1
                    n = stub.counts[key]
                try:
                    getattr(stub, "s_" + scenario.replace("-", "_"))(self, rest, q, n)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, scenario):
        return "http://127.0.0.1:%d/%s/dicom-web" % (self.port, scenario)

    def requests(self, scenario):
        with self.lock:
            return [(p, q) for s, p, q, _ in self.log if s == scenario]

    def headers(self, scenario):
        with self.lock:
            return [h for s, _, _, h in self.log if s == scenario]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- answers ----
    @staticmethod
    def send(h, status, body=b"", ctype="application/dicom+json", extra=None):
        if isinstance(body, (list, dict)):
            body = json.dumps(body).encode()
        h.send_response(status)
        if ctype:
            h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    @staticmethod
    def multipart(parts, boundary=BOUNDARY, close=True):
        b = b""
        for ctype, data in parts:
            b += b"--" + boundary.encode() + b"\r\nContent-Type: " + ctype.encode() + b"\r\n\r\n" + data + b"\r\n"
        if close:
            b += b"--" + boundary.encode() + b"--\r\n"
        return b

    MP_TYPE = 'multipart/related; type="application/dicom"; boundary=' + BOUNDARY

    def good_tree(self, h, rest, q, series_list, instances):
        limit = int(q.get("limit", ["1000"])[0])
        offset = int(q.get("offset", ["0"])[0])
        if rest == "/series":
            return self.send(h, 200, series_list[offset:offset + limit])
        p = rest.split("/")
        if len(p) == 6 and p[5] == "instances":
            return self.send(h, 200, instances.get(p[4], [])[offset:offset + limit])
        if len(p) == 7:
            return self.send(h, 200, self.multipart([("application/dicom", PART)]), self.MP_TYPE)
        return self.send(h, 404, b"no such thing", "text/plain")

    def s_good(self, h, rest, q, n):
        series = [series_obj("1.2.1", "1.2.1.%d" % i) for i in range(7)]
        inst = {"1.2.1.%d" % i: [inst_obj("1.2.1", "1.2.1.%d" % i, "1.2.1.%d.%d" % (i, k),
                                          CT if k == 1 else SR) for k in range(4)]
                for i in range(7)}
        return self.good_tree(h, rest, q, series, inst)

    def s_object(self, h, rest, q, n):
        self.send(h, 200, series_obj("1.2", "1.3"))

    def s_value_string(self, h, rest, q, n):
        self.send(h, 200, [{"0020000D": {"vr": "UI", "Value": "1.2"}}])

    def s_number_uid(self, h, rest, q, n):
        self.send(h, 200, b'[{"0020000D":{"vr":"UI","Value":[1.2]},"0020000E":{"vr":"UI","Value":["1.3"]}}]')

    def s_html(self, h, rest, q, n):
        self.send(h, 200, b"<html>Login</html>", "text/html")

    def s_no_limit(self, h, rest, q, n):
        if rest != "/series":
            return self.send(h, 200, [])
        self.send(h, 200, [series_obj("1.2", "1.2.%d" % i) for i in range(5)])

    def s_no_offset(self, h, rest, q, n):
        if rest != "/series":
            return self.send(h, 200, [])
        self.send(h, 200, [series_obj("1.2", "1.2.%d" % i) for i in range(int(q["limit"][0]))])

    def retrieve_only(self, h, body, ctype=MP_TYPE):
        self.send(h, 200, body, ctype)

    def s_mp_truncated(self, h, rest, q, n):
        self.retrieve_only(h, self.multipart([("application/dicom", PART)], close=False))

    def s_mp_two(self, h, rest, q, n):
        self.retrieve_only(h, self.multipart([("application/dicom", PART), ("application/dicom", PART)]))

    def s_mp_none(self, h, rest, q, n):
        self.retrieve_only(h, ("--%s--\r\n" % BOUNDARY).encode())

    def s_not_multipart(self, h, rest, q, n):
        self.retrieve_only(h, PART, "application/dicom")

    def s_part_type(self, h, rest, q, n):
        self.retrieve_only(h, self.multipart([("application/pdf", PART)]))

    def s_garbage(self, h, rest, q, n):
        self.retrieve_only(h, b"--" + BOUNDARY.encode() + b"\r\nno colon here\r\n\r\nxx\r\n--" +
                           BOUNDARY.encode() + b"--\r\n")

    def declare_huge(self, h, scenario, ctype):
        """Headers only, Content-Length 10 GB, then waits for the client to hang up."""
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(10 * 1024 * MIB))
        h.end_headers()
        h.wfile.flush()
        h.connection.settimeout(60)
        try:
            closed = h.connection.recv(1) == b""
        except OSError:
            closed = True
        with self.lock:
            self.closed[scenario] = closed
        h.close_connection = True

    def s_huge_qido(self, h, rest, q, n):
        self.declare_huge(h, "huge-qido", "application/dicom+json")

    def s_huge_wado(self, h, rest, q, n):
        self.declare_huge(h, "huge-wado", self.MP_TYPE)

    def s_endless(self, h, rest, q, n):
        """A multipart body without Content-Length that never ends (close-delimited)."""
        h.send_response(200)
        h.send_header("Content-Type", self.MP_TYPE)
        h.send_header("Connection", "close")
        h.end_headers()
        chunk = b"--" + BOUNDARY.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n"
        sent = 0
        try:
            h.wfile.write(chunk)
            block = b"\x55" * (256 * 1024)
            while sent < 1024 * MIB:
                h.wfile.write(block)
                sent += len(block)
        except OSError:
            pass
        with self.lock:
            self.sent["endless"] = sent
        h.close_connection = True

    def s_drip(self, h, rest, q, n):
        """A QIDO answer of 100 bytes at one byte per second."""
        body = json.dumps([series_obj("1.2", "1.3")]).encode()[:100]
        h.send_response(200)
        h.send_header("Content-Type", "application/dicom+json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        ev = threading.Event()
        for b in body:
            try:
                h.wfile.write(bytes([b]))
                h.wfile.flush()
            except OSError:
                break
            ev.wait(1)
        h.close_connection = True

    def s_flaky(self, h, rest, q, n):
        if n <= 2:
            return self.send(h, 500, b"busy", "text/plain")
        return self.good_tree(h, rest, q, [series_obj("1.2", "1.2.9")],
                              {"1.2.9": [inst_obj("1.2", "1.2.9", "1.2.9.1")]})

    def s_down(self, h, rest, q, n):
        self.send(h, 503, b"maintenance", "text/plain")

    def s_auth(self, h, rest, q, n):
        self.send(h, 401, b'{"error":"token expired"}', "application/json",
                  {"WWW-Authenticate": "Bearer"})

    def s_gone(self, h, rest, q, n):
        self.send(h, 404, b"instance not found", "text/plain")


def probe(*args, timeout=120):
    r = subprocess.run([PROBE] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    errors = [l for l in r.stderr.decode(errors="replace").splitlines() if l.startswith("ERROR")]
    hwm = [int(l.split()[1]) for l in r.stderr.decode().splitlines() if l.startswith("VMHWM")]
    return r.returncode, r.stdout.decode(errors="replace"), errors, hwm[0] if hwm else None


def one_error(rc, errors, code, needle):
    assert len(errors) == 1, "expected one ERROR line, got %r" % errors
    eq(rc, code, "exit code (%s)" % short(errors[0]))
    assert needle in errors[0], "%r not in %r" % (needle, errors[0])


def incoming_files(d):
    p = os.path.join(d, "incoming")
    return sorted(os.listdir(p)) if os.path.isdir(p) else []


FAST = ["--retries", "-1", "--timeout", "60"]


def main():
    if not os.access(PROBE, os.X_OK):
        out("SKIP dicomweb-hostile: %s not built (make unit)" % PROBE)
        return 0
    stub = Stub()
    try:
        run_stub_cases(stub)
    finally:
        stub.stop()
    run_orthanc_cases()
    shutil.rmtree(TMP, ignore_errors=True)
    return harness.exit_code()


def run_stub_cases(stub):
    T = harness.test

    def good_search():
        rc, o, errs, _ = probe("search", stub.url("good"), "--page", "3", "--since", "20240101",
                               "--until", "20241231")
        eq((rc, errs), (0, []), "result")
        lines = o.splitlines()
        eq(lines[-1], "FOUND 21", "count (7 series x 3 SRs; the CT left out)")
        assert not any(".1 " + CT in l or l.endswith(CT) for l in lines), "a CT instance reported"
        reqs = stub.requests("good")
        eq(reqs[0], ("/series", "Modality=SR&StudyDate=20240101-20241231&includefield=00080020"
                     "&includefield=00080030&limit=3&offset=0"), "first request")
        series_pages = [q for p, q in reqs if p == "/series"]
        eq([q.split("&offset=")[1] for q in series_pages], ["0", "3", "6"], "series offsets")
        inst = [(p, q) for p, q in reqs if p.endswith("/instances")]
        eq(inst[:2], [("/studies/1.2.1/series/1.2.1.0/instances", "limit=3&offset=0"),
                      ("/studies/1.2.1/series/1.2.1.0/instances", "limit=3&offset=3")], "paging")
        eq(len(inst), 14, "instance requests (2 pages per series)")
        accepts = {h.get("Accept") for h in stub.headers("good")}
        eq(accepts, {"application/dicom+json"}, "Accept")
    T("stub-search-pages-and-filters", good_search)

    def since_time_filters_here():
        # DT bounds: the server gets dates; the time of day (10:15:00) is checked here
        rc, o, errs, _ = probe("search", stub.url("good"), "--since", "20240105101501")
        eq((rc, o.splitlines()[-1]), (0, "FOUND 0"), "after 10:15:01")
        rc, o, errs, _ = probe("search", stub.url("good"), "--since", "20240105101500",
                               "--until", "202401051015")
        eq((rc, o.splitlines()[-1]), (0, "FOUND 21"), "10:15:00 to 10:15")
    T("stub-search-datetime-bounds", since_time_filters_here)

    def good_retrieve():
        d = os.path.join(TMP, "good")
        rc, o, errs, _ = probe("retrieve", stub.url("good"), d, "1.2.1", "1.2.1.0", "1.2.1.0.0")
        eq((rc, errs), (0, []), "result")
        path = o.split()[2]
        with open(path, "rb") as f:
            eq(f.read() == PART, True, "stored bytes equal the part")
        acc = stub.headers("good")[-1].get("Accept")
        eq(acc, 'multipart/related; type="application/dicom"; transfer-syntax=*', "Accept")
    T("stub-retrieve-stores-the-part", good_retrieve)

    def wrong_shape(scenario, needle):
        def case():
            rc, _, errs, _ = probe("search", stub.url(scenario), "--page", "3", *FAST)
            one_error(rc, errs, 4, needle)
        return case
    T("qido-object-not-array", wrong_shape("object", "an object instead of an array of results"))
    T("qido-value-not-array", wrong_shape("value-string", "Value is a string, not an array"))
    T("qido-number-for-uid", wrong_shape("number-uid", "a number where a string value belongs"))
    T("qido-not-json", wrong_shape("html", "not application/dicom+json"))
    T("qido-server-ignores-limit", wrong_shape("no-limit", "the server ignores limit"))
    T("qido-server-ignores-offset", wrong_shape("no-offset", "the server ignores offset"))

    def ignored_offset_stops():
        eq(len([r for r in stub.requests("no-offset") if r[0] == "/series"]), 2,
           "series requests before the refusal")
    T("qido-server-ignores-offset-two-requests", ignored_offset_stops)

    def bad_multipart(scenario, needle, code=4):
        def case():
            d = os.path.join(TMP, scenario)
            rc, _, errs, _ = probe("retrieve", stub.url(scenario), d, "1.2", "1.3", "1.4", *FAST)
            one_error(rc, errs, code, needle)
            eq(incoming_files(d), [], "files left in DIR/incoming")
        return case
    T("wado-multipart-truncated", bad_multipart("mp-truncated", "truncated"))
    T("wado-multipart-two-parts", bad_multipart("mp-two", "more than the one part"))
    T("wado-multipart-no-part", bad_multipart("mp-none", "close delimiter comes before any part"))
    T("wado-not-multipart", bad_multipart("not-multipart", "not multipart/related"))
    T("wado-part-not-dicom", bad_multipart("part-type", "application/pdf, not application/dicom"))
    T("wado-garbage-part-headers", bad_multipart("garbage", "header"))
    T("wado-404", bad_multipart("gone", "HTTP 404", 10))

    def huge(scenario, args):
        def case():
            d = os.path.join(TMP, scenario)
            rc, _, errs, hwm = probe(*([args[0], stub.url(scenario)] + args[1:] + FAST))
            one_error(rc, errs, 7, "declares 10737418240 bytes (Content-Length)")
            assert hwm is not None and hwm < 64 * 1024, "VmHWM %s kB" % hwm
            # the stub's thread records the hang-up after recv() returns: the probe may
            # have exited a moment before that record is made
            deadline = time.monotonic() + 10
            while stub.closed.get(scenario) is None and time.monotonic() < deadline:
                time.sleep(0.05)
            eq(stub.closed.get(scenario), True, "the client hung up without reading")
            eq(incoming_files(d), [], "files left in DIR/incoming")
        return case
    T("qido-10GB-content-length", huge("huge-qido", ["search"]))
    T("wado-10GB-content-length", huge("huge-wado", ["retrieve", os.path.join(TMP, "huge-wado"),
                                                      "1.2", "1.3", "1.4"]))

    def endless():
        d = os.path.join(TMP, "endless")
        rc, _, errs, hwm = probe("retrieve", stub.url("endless"), d, "1.2", "1.3", "1.4",
                                 "--max-instance", 8 * MIB, *FAST)
        assert len(errs) == 1 and rc == 7, "rc %d %r" % (rc, errs)
        assert "longer than" in errs[0] or "part" in errs[0], errs[0]
        for _ in range(100):   # the stub's thread notes what it sent once the write fails
            if "endless" in stub.sent:
                break
            threading.Event().wait(0.1)
        sent = stub.sent.get("endless")
        assert sent is not None and sent < 64 * MIB, "stub sent %s bytes" % sent
        assert hwm is not None and hwm < 64 * 1024, "VmHWM %s kB" % hwm
        eq(incoming_files(d), [], "files left in DIR/incoming")
    T("wado-endless-body-cut-off", endless)

    def drip_timeout():
        rc, _, errs, _ = probe("search", stub.url("drip"), "--retries", "-1", "--timeout", "2")
        one_error(rc, errs, 11, "imed out")
    T("qido-slow-drip-timeout", drip_timeout)

    def drip_deadline():
        before = len(stub.requests("drip"))
        rc, _, errs, _ = probe("search", stub.url("drip"), "--retries", "50", "--timeout", "2",
                               "--retry-delay", "100", "--deadline", "5")
        assert len(errs) == 1 and rc == 11, "rc %d %r" % (rc, errs)
        tries = len(stub.requests("drip")) - before
        assert 1 <= tries <= 4, "%d tries within a 5 s deadline of 2 s tries" % tries
    T("qido-slow-drip-deadline", drip_deadline)

    def flaky():
        rc, o, errs, _ = probe("search", stub.url("flaky"), "--retries", "3", "--retry-delay", "10")
        eq((rc, errs, o.splitlines()[-1]), (0, [], "FOUND 1"), "result")
        first = stub.requests("flaky")[0]
        eq(stub.requests("flaky").count(first), 3, "tries of the first request (500, 500, 200)")
    T("qido-500-then-success", flaky)

    def down():
        rc, _, errs, _ = probe("search", stub.url("down"), "--retries", "2", "--retry-delay", "10")
        one_error(rc, errs, 11, "HTTP 503")
        assert "after 3 attempts" in errs[0], errs[0]
        eq(len(stub.requests("down")), 3, "tries")
    T("qido-503-for-ever", down)

    def auth():
        rc, _, errs, _ = probe("search", stub.url("auth"), "--token", "s3cr3t", "--retries", "3")
        one_error(rc, errs, 10, "HTTP 401")
        assert "credentials refused" in errs[0] and "s3cr3t" not in errs[0], errs[0]
        eq(len(stub.requests("auth")), 1, "tries (401 is not retried)")
        eq(stub.headers("auth")[0].get("Authorization"), "Bearer s3cr3t", "credentials sent")
    T("qido-401", auth)


# ---- Orthanc ----------------------------------------------------------------------------------

PEERS = os.path.join(SHARED, "tools", "dicom-peers", "dicom-peers.sh")
CORPUS = os.path.join(SHARED, "corpus", "files")


def dicom_uids(path):
    """(study, series, sop, date) of a Part 10 file, through pydicom (harness.PYTHON)."""
    code = ("import pydicom,sys; d=pydicom.dcmread(sys.argv[1], stop_before_pixels=True);"
            "print(d.StudyInstanceUID, d.SeriesInstanceUID, d.SOPInstanceUID,"
            " getattr(d,'StudyDate','') or '-')")
    r = subprocess.run([harness.PYTHON, code and "-c", code, path], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, timeout=60)
    return tuple(r.stdout.decode().split()) if r.returncode == 0 else None


def make_ct(path):
    code = r"""
import sys, pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
m = FileMetaDataset(); m.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.2'
m.MediaStorageSOPInstanceUID = generate_uid(); m.TransferSyntaxUID = ExplicitVRLittleEndian
d = FileDataset(sys.argv[1], {}, file_meta=m, preamble=b'\0' * 128)
d.SOPClassUID = m.MediaStorageSOPClassUID; d.SOPInstanceUID = m.MediaStorageSOPInstanceUID
d.StudyInstanceUID = generate_uid(); d.SeriesInstanceUID = generate_uid(); d.Modality = 'CT'
d.PatientID = 'CT1'; d.StudyDate = '20240105'; d.Rows = 2; d.Columns = 2; d.BitsAllocated = 16
d.BitsStored = 12; d.HighBit = 11; d.PixelRepresentation = 0; d.SamplesPerPixel = 1
d.PhotometricInterpretation = 'MONOCHROME2'; d.PixelData = b'\0' * 8
d.is_little_endian = True; d.is_implicit_VR = False
d.save_as(sys.argv[1], write_like_original=False)
"""
    return subprocess.run([harness.PYTHON, "-c", code, path], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=60).returncode == 0


def run_orthanc_cases():
    name = "orthanc-pull-client"
    why = None
    if not os.access(PEERS, os.X_OK):
        why = "%s absent" % PEERS
    elif not os.path.isdir(CORPUS):
        why = "%s absent" % CORPUS
    elif not harness.has_pydicom():
        why = "no pydicom for %s" % harness.PYTHON
    elif subprocess.run([PEERS, "install", "--check"], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL).returncode != 0:
        why = "dicom-peers not installed (dicom-peers.sh install)"
    if why:
        out("SKIP %s: %s" % (name, why))
        return
    env = dict(os.environ, DICOM_PEERS_HOME=os.path.join(TMP, "peers"))
    files = sorted(os.path.join(CORPUS, f) for f in os.listdir(CORPUS) if f.endswith(".dcm"))
    load = os.path.join(TMP, "load")
    os.makedirs(load)
    originals = {}
    for f in files:
        u = dicom_uids(f)
        if u:
            shutil.copy(f, load)
            originals[u[2]] = (u, f)
    ct = os.path.join(load, "ct.dcm")
    if not make_ct(ct):
        out("SKIP %s: pydicom could not write a CT" % name)
        return
    r = subprocess.run([PEERS, "orthanc-start", "dwpull", "--http", "auto", "--dicom", "auto"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=120)
    ready = dict(f.split("=", 1) for f in r.stdout.decode().split() if "=" in f)
    if r.returncode != 0 or "dicomweb" not in ready:
        harness.report(False, name, "orthanc-start: " + short(r.stderr.decode()))
        return
    try:
        orthanc_cases(ready["dicomweb"], load, originals, env)
    finally:
        subprocess.run([PEERS, "orthanc-stop", "dwpull", "--kill"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env, timeout=120)


def found(o):
    return {l.split()[3] for l in o.splitlines() if l.startswith("INSTANCE")}


def orthanc_cases(web, load, originals, env):
    T = harness.test
    r = subprocess.run([PEERS, "orthanc-load", "dwpull", load], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=300)
    total = len(originals) + 1

    def loaded():
        assert ("stored=%d" % total) in r.stdout.decode(), short(r.stdout.decode() + r.stderr.decode())
    T("orthanc-load-corpus-and-a-ct", loaded)

    def search_all():
        rc, o, errs, _ = probe("search", web, "--page", "4")
        eq((rc, errs), (0, []), "result")
        eq(found(o), set(originals), "SOP Instance UIDs found (the SRs, not the CT)")
    T("orthanc-search-finds-exactly-the-srs", search_all)

    def by_study():
        uids, _ = next(iter(sorted(originals.values())))
        want = {sop for sop, (u, _) in originals.items() if u[0] == uids[0]}
        rc, o, errs, _ = probe("search", web, "--study", uids[0])
        eq((rc, found(o)), (0, want), "--study")
    T("orthanc-search-study", by_study)

    def by_since():
        want = {sop for sop, (u, _) in originals.items() if u[3] != "-" and u[3] >= "20090101"}
        rc, o, errs, _ = probe("search", web, "--since", "20090101")
        eq((rc, found(o)), (0, want), "--since 20090101")
        want = {sop for sop, (u, _) in originals.items() if u[3] != "-" and u[3] <= "20040119"}
        rc, o, errs, _ = probe("search", web, "--until", "20040119")
        eq((rc, found(o)), (0, want), "--until 20040119 (no series without StudyDate)")
    T("orthanc-search-since-until", by_since)

    def pull_all():
        d = os.path.join(TMP, "orthanc-pull")
        rc, o, errs, _ = probe("pull", web, d, "--page", "5")
        eq((rc, errs), (0, []), "result")
        got = {l.split()[1]: l.split()[2] for l in o.splitlines() if l.startswith("RETRIEVED")}
        eq(set(got), set(originals), "retrieved")
        differ = []
        for sop, path in got.items():
            with open(path, "rb") as a, open(originals[sop][1], "rb") as b:
                if a.read() != b.read():
                    differ.append(os.path.basename(originals[sop][1]))
        eq(differ, [], "files whose retrieved bytes differ from the original")
    T("orthanc-pull-bytes-equal", pull_all)


if __name__ == "__main__":
    sys.exit(main())
