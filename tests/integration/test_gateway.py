#!/usr/bin/python3
"""tests/integration/test_gateway.py - `sr2fhir serve` (docs/gateway.md) end to end with real
peers: the FHIR server tool (R5), the real curl binary and Orthanc's DICOMweb plugin as
STOW-RS senders (../shared/tools/dicom-peers). Prints PASS/FAIL/SKIP lines for tests/run.sh.

- curl: every TID 1500 file of ../shared/corpus (Part 10 as application/dicom parts, DICOM
  JSON, the guide's own example among them, as application/dicom+json parts), one request
  per file, then all in one request (chunked): each answer 200 with an
  application/dicom+json body whose Referenced SOP Sequence (0008,1199) lists the file's
  SOP Instance and Class UIDs. When `sr2fhir queue stats` shows nothing pending or leased,
  the FHIR server holds exactly the resources `sr2fhir convert` makes of those files (count
  per type and the ids; Patient, ServiceRequest and ImagingStudy none). Sending everything
  again changes no count and no id.
- PS3.18 10.5.3 answers, bodies parsed: an SR plus a non-SR image (made with pydicom) -> 202,
  the SR in (0008,1199), the image in (0008,1198) with Failure Reason (0008,1197) 0x0122;
  only the image -> 409; a truncated multipart body -> 400; application/json and
  multipart/related; type="image/jpeg" -> 415; POST /dicom-web/studies/{another study} ->
  409 with the SR in (0008,1198), nothing queued; the corpus' non-TID-1500 SRs -> 200, their
  jobs end not_applicable, nothing of them reaches the FHIR server.
- Orthanc: started with the gateway as its STOW-RS target (chunked, the plugin's default)
  and Lua auto-forwarding (one STOW request per instance); the corpus' Part 10 TID 1500
  files loaded into it arrive in the FHIR server exactly once (the counts and ids above),
  no Orthanc job fails (its client parses the gateway's answers); `orthanc-send --all` (one
  request with every instance) changes nothing.

Every process started here (FHIR server, gateway, Orthanc) is stopped at the end, on
failure too (finally and atexit). SKIP with the reason when the service is not built
(BUILD/sr2fhir-serve), pydicom, ../shared, node/npm, curl or Orthanc are absent.
Waits are bounded (generous) and poll counts; nothing asserts on wall-clock time.

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
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import FHIR_SERVER_SH, SHARED, SR2FHIR, clean_env, eq, out, short  # noqa: E402
import fhirserver  # noqa: E402
from fhirserver import MADE_TYPES, R5_TYPES, convert, expected_ids  # noqa: E402
import gwservice  # noqa: E402

SERVE = os.path.join(os.path.dirname(SR2FHIR), "sr2fhir-serve")
CORPUS = os.path.join(SHARED, "corpus", "files")
IG_EXAMPLE = os.path.join(SHARED, "ig", "dicom", "Example-MeasurementReport.json")
PEERS = os.path.join(SHARED, "tools", "dicom-peers", "dicom-peers.sh")
CURL = shutil.which("curl")

START_LINE = re.compile(r"^sr2fhir: serving STOW-RS at (http://127\.0\.0\.1:(\d+)/dicom-web)/studies$")
DICOM_JSON = "application/dicom+json"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"      # Secondary Capture Image Storage: not an SR
REASON_SOP_CLASS = 0x0122                    # Failure Reason: SOP Class not supported
REASON_WRONG_STUDY = 0xA900                  # docs/gateway.md: not of the study of the URL
UID_ROOT = "1.2.826.0.1.3680043.10.1500.78."  # UIDs made here
QUEUE_STATES = ("pending", "leased", "done", "dead", "not_applicable")

START_TIMEOUT = 60       # s: the gateway prints its start-up line
DRAIN_TIMEOUT = 300      # s: the queue empties (the corpus is ~2,000 resources, 2 cores)
CURL_TIMEOUT = 300       # s: one STOW request

TMP = tempfile.mkdtemp(prefix="sr2fhir-gateway-")


def test(name, fn, *args):
    harness.test(name, fn, *args, width=900)


# ---------------------------------------------------------------------------------------
# The files sent and what they are
# ---------------------------------------------------------------------------------------
class Sr:
    """A file sent: its path, media type and UIDs."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.json = path.endswith(".json")
        self.media = DICOM_JSON if self.json else "application/dicom"
        if self.json:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
            d = d[0] if isinstance(d, list) else d
            val = lambda tag: d[tag]["Value"][0]  # noqa: E731
            self.sop, self.cls, self.study = val("00080018"), val("00080016"), val("0020000D")
        else:
            import pydicom
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            self.sop, self.cls = str(ds.SOPInstanceUID), str(ds.SOPClassUID)
            self.study = str(ds.StudyInstanceUID)
        with open(path, "rb") as f:
            self.data = f.read()


def corpus_files(prefix):
    return sorted(os.path.join(CORPUS, f) for f in os.listdir(CORPUS) if f.startswith(prefix))


def tid1500_files():
    """The corpus' TID 1500 files, the guide's example taken from ../shared/ig (its corpus
    copy dropped when it is the same bytes)."""
    files = corpus_files("tid1500__")
    if os.path.exists(IG_EXAMPLE):
        with open(IG_EXAMPLE, "rb") as f:
            ig = f.read()
        files = [p for p in files if open(p, "rb").read() != ig] + [IG_EXAMPLE]
    return [Sr(p) for p in files]


def make_image(name, study=None):
    """A small Secondary Capture image (not an SR), Part 10, made with pydicom."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    sop = generate_uid(prefix=UID_ROOT)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SC_IMAGE
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID_ROOT + "1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SC_IMAGE, sop
    ds.StudyInstanceUID = study or generate_uid(prefix=UID_ROOT)
    ds.SeriesInstanceUID = generate_uid(prefix=UID_ROOT)
    ds.PatientID, ds.PatientName, ds.Modality = "GW-ITEST", "Gateway^Test", "OT"
    ds.ConversionType = "WSD"
    ds.Rows = ds.Columns = 2
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(4)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    path = os.path.join(TMP, name + ".dcm")
    pydicom.dcmwrite(path, ds, write_like_original=False)
    return Sr(path)


# ---------------------------------------------------------------------------------------
# STOW-RS with curl
# ---------------------------------------------------------------------------------------
def multipart(parts, root_type=None, boundary=None):
    """(Content-Type, body) of a multipart/related request of `parts` ([(media, bytes)])."""
    b = boundary or "itest-" + uuid.uuid4().hex
    body = b"".join(b"--%s\r\nContent-Type: %s\r\n\r\n%s\r\n" % (b.encode(), m.encode(), d)
                    for m, d in parts) + b"--%s--\r\n" % b.encode()
    return 'multipart/related; type="%s"; boundary=%s' % (root_type or parts[0][0], b), body


class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def what(self):
        return "HTTP %d, Content-Type %r, body %s" % (self.status, self.headers.get("content-type"),
                                                      short(self.body.decode("utf-8", "replace"),
                                                            400))

    def dicom_json(self):
        """The body, an application/dicom+json object (PS3.18 10.5.3)."""
        ctype = self.headers.get("content-type", "")
        assert ctype.split(";")[0].strip().lower() == DICOM_JSON, \
            "Content-Type %r, expected %s (%s)" % (ctype, DICOM_JSON, self.what())
        try:
            obj = json.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise AssertionError("body is not JSON (%s): %s" % (e, self.what()))
        assert isinstance(obj, dict), "body is not a DICOM JSON object: %s" % self.what()
        return obj


_nreq = [0]


def curl_post(url, ctype, body, chunked=False, headers=()):
    """POST body with the curl binary; an Answer (the last response's headers)."""
    _nreq[0] += 1
    base = os.path.join(TMP, "req-%d" % _nreq[0])
    with open(base + ".body", "wb") as f:
        f.write(body)
    cmd = [CURL, "-sS", "--max-time", str(CURL_TIMEOUT), "--noproxy", "*", "-X", "POST",
           "-o", base + ".resp", "-D", base + ".hdr", "-w", "%{http_code}",
           "-H", "Content-Type: " + ctype, "-H", "Accept: " + DICOM_JSON,
           "--data-binary", "@" + base + ".body"]
    if chunked:
        cmd += ["-H", "Transfer-Encoding: chunked"]
    for h in headers:
        cmd += ["-H", h]
    p = subprocess.run(cmd + [url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=CURL_TIMEOUT + 30, env=clean_env())
    assert p.returncode == 0, "curl exit %d: %s" % (p.returncode, short(p.stderr.decode()))
    hdrs = {}
    with open(base + ".hdr", "rb") as f:
        blocks = [b for b in f.read().decode("latin-1").split("\r\n\r\n") if b.strip()]
    for line in (blocks[-1].splitlines()[1:] if blocks else []):
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    with open(base + ".resp", "rb") as f:
        resp = f.read()
    for ext in (".body", ".resp", ".hdr"):
        os.unlink(base + ext)
    return Answer(int(p.stdout.decode() or 0), hdrs, resp)


ACKED = set()   # SOP Instance UIDs a 200/202 answer listed as stored (what the queue must hold)


def stow(gw, srs, study=None, chunked=False):
    """One STOW-RS request carrying `srs` (all of one media type); the SOP Instance UIDs it
    acknowledges are added to ACKED, so waits for the queue count only those."""
    ctype, body = multipart([(s.media, s.data) for s in srs])
    url = gw.root + "/studies" + ("/" + study if study else "")
    ans = curl_post(url, ctype, body, chunked=chunked)
    if ans.status in (200, 202):
        try:
            ACKED.update(u for u in referenced(ans.dicom_json()) if u)
        except AssertionError:
            pass
    return ans


def sequence(obj, tag):
    v = obj.get(tag)
    if v is None:
        return []
    assert isinstance(v, dict) and v.get("vr") == "SQ", "(%s,%s) is not an SQ: %r" % (
        tag[:4], tag[4:], v)
    return v.get("Value", []) or []


def value(item, tag):
    v = item.get(tag, {}).get("Value") or [None]
    return v[0]


def referenced(obj):
    """{SOP Instance UID: SOP Class UID} of Referenced SOP Sequence (0008,1199)."""
    return {value(i, "00081155"): value(i, "00081150") for i in sequence(obj, "00081199")}


def failed(obj):
    """{SOP Instance UID: Failure Reason} of Failed SOP Sequence (0008,1198)."""
    return {value(i, "00081155"): value(i, "00081197") for i in sequence(obj, "00081198")}


def assert_stored(ans, srs, status=200):
    """The answer is `status` and lists exactly `srs` as stored, none failed."""
    eq(ans.status, status, "HTTP status (%s)" % ans.what())
    obj = ans.dicom_json()
    eq(referenced(obj), {s.sop: s.cls for s in srs}, "Referenced SOP Sequence (0008,1199) "
       "{SOP Instance UID: SOP Class UID}")
    eq(failed(obj), {}, "Failed SOP Sequence (0008,1198)")


# ---------------------------------------------------------------------------------------
# The gateway
# ---------------------------------------------------------------------------------------
class Gateway:
    """`sr2fhir serve` on a free port, its log in TMP; stopped at exit."""

    def __init__(self, name, server_url, *opts):
        self.name = name
        self.data = os.path.join(TMP, name + "-data")
        self.logpath = os.path.join(TMP, name + ".log")
        self.cmd = [SR2FHIR, "serve", "--http", "127.0.0.1:0", "--data", self.data,
                    "--server", server_url, "--workers", "4", *opts]
        self.proc = None
        self.root = None
        self.rc = None

    def start(self):
        atexit.register(self.stop)
        log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=log,
                                     env=clean_env(), cwd=TMP)
        log.close()
        line = gwservice.first_line(self.proc, START_TIMEOUT)
        if line is None:
            self.stop()
            raise AssertionError("no start-up line on stdout within %d s (exit %r); log: %s" % (
                START_TIMEOUT, self.rc, self.log_tail()))
        m = START_LINE.match(line)
        if not m:
            self.stop()
            raise AssertionError("start-up line %r is not 'sr2fhir: serving STOW-RS at "
                                 "http://127.0.0.1:PORT/dicom-web/studies'" % line)
        self.root, self.port = m.group(1), int(m.group(2))
        # keep reading stdout so that nothing the service prints later can block it
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        return line

    def log_tail(self, n=600):
        try:
            with open(self.logpath, "rb") as f:
                return short(f.read().decode("utf-8", "replace")[-4000:], 4000)[-n:]
        except OSError:
            return ""

    def stop(self):
        """SIGTERM, then SIGKILL after 30 s; the exit status (negative: killed)."""
        if self.proc is None or self.rc is not None:
            return self.rc
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.rc = self.proc.returncode
        return self.rc

    def stats(self):
        """{state: count} from `sr2fhir queue stats --data DIR` (every state present)."""
        p = subprocess.run([SR2FHIR, "queue", "stats", "--data", self.data],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert p.returncode == 0, "sr2fhir queue stats: exit %d: %s" % (
            p.returncode, short(p.stderr.decode("utf-8", "replace")))
        got = {}
        for line in p.stdout.decode("utf-8", "replace").splitlines():
            m = re.match(r"^(\w+) (\d+)$", line.strip())
            assert m, "queue stats line %r is not 'STATE COUNT'" % line
            got[m.group(1)] = int(m.group(2))
        for s in QUEUE_STATES:
            got.setdefault(s, 0)
        return got

    def wait_idle(self, finished_at_least=0, since=None, timeout=DRAIN_TIMEOUT):
        """Poll queue stats until nothing is pending or leased and (when `since`, an earlier
        stats, is given) at least `finished_at_least` more jobs are finished (done, dead or
        not applicable) than then. The last stats; AssertionError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.stats()
            fin = sum(st[s] for s in ("done", "dead", "not_applicable"))
            fin0 = sum(since[s] for s in ("done", "dead", "not_applicable")) if since else 0
            if st["pending"] == 0 and st["leased"] == 0 and fin - fin0 >= finished_at_least:
                return st
            if self.proc.poll() is not None:
                raise AssertionError("the gateway exited (%d) with jobs left: %s; log: %s" % (
                    self.proc.returncode, st, self.log_tail()))
            if time.monotonic() > deadline:
                raise AssertionError("queue not drained after %d s: %s (%d of %d more jobs "
                                     "finished); log: %s" % (timeout, st, fin - fin0,
                                                             finished_at_least, self.log_tail()))
            time.sleep(0.5)


def delta(after, before):
    return {s: after[s] - before[s] for s in QUEUE_STATES if after[s] != before[s]}


def assert_all_done(after, before, srs, nrequests):
    """Every job since `before` done: one per SOP Instance UID, or up to one per request
    carrying it (the queue merges a UID received again only while its job waits; the corpus
    has one SR as Part 10 and as DICOM JSON)."""
    d = delta(after, before)
    done = d.pop("done", 0)
    eq(d, {}, "queue stats change other than done")
    assert len(unique(srs)) <= done <= nrequests, "%d jobs done, expected %d to %d" % (
        done, len(unique(srs)), nrequests)


# ---------------------------------------------------------------------------------------
# What the FHIR server must hold
# ---------------------------------------------------------------------------------------
def expected(srs):
    """({Type: count} over R5_TYPES, {Type: ids} over MADE_TYPES) that `srs` leave on an
    empty server: what `sr2fhir convert` makes of each, shared resources once."""
    ids = expected_ids([convert(s.path) for s in srs])
    counts = {t: len(ids.get(t, ())) for t in R5_TYPES}
    return counts, ids


def assert_holds(srv, srs, what):
    counts, ids = expected(srs)
    eq(srv.counts(R5_TYPES), counts, "%s: resources per type on the FHIR server" % what)
    got = fhirserver.stored(srv, MADE_TYPES)
    for t in MADE_TYPES:
        missing, extra = ids[t] - got[t], got[t] - ids[t]
        assert not missing and not extra, "%s: %s ids: %d missing (e.g. %s), %d not expected " \
            "(e.g. %s)" % (what, t, len(missing), sorted(missing)[:1], len(extra),
                           sorted(extra)[:1])


def unique(srs):
    return {s.sop for s in srs}


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------
def curl_cases(gw, srv, srs):
    dcm = [s for s in srs if not s.json]
    js = [s for s in srs if s.json]
    state = {}

    # one request per file
    def t_each(s):
        assert_stored(stow(gw, [s]), [s])

    srv.reset()
    before = gw.stats()
    ACKED.clear()
    for s in srs:
        test("gw-curl-one-per-request:%s: 200, (0008,1199) lists the SR (%s part)"
             % (s.name, s.media), t_each, s)

    def t_each_delivered():
        st = gw.wait_idle(len(ACKED), before)
        assert_all_done(st, before, srs, len(srs))
        assert_holds(srv, srs, "after one request per file")
        state["each"] = True

    test("gw-curl-delivered: every corpus TID 1500 file (%d files, %d SOP Instances) reaches "
         "the FHIR server: queue drained, counts per type and ids as `sr2fhir convert` makes "
         "them" % (len(srs), len(unique(srs))), t_each_delivered)

    # all in one request, chunked
    def t_one_request():
        srv.reset()
        st0 = gw.stats()
        ACKED.clear()
        try:
            assert_stored(stow(gw, dcm, chunked=True), dcm)
            if js:
                assert_stored(stow(gw, js), js)
        finally:
            gw.wait_idle(len(ACKED), st0)
        st = gw.wait_idle(len(ACKED), st0)
        assert_all_done(st, st0, srs, len(srs))
        assert_holds(srv, srs, "after the multipart requests")

    test("gw-curl-multipart: the %d Part 10 files in one chunked request, the %d DICOM JSON "
         "files in another: 200 listing each, then the same resources on the (emptied) FHIR "
         "server" % (len(dcm), len(js)), t_one_request)

    # everything again
    def t_resend():
        counts0 = srv.counts(R5_TYPES)
        ids0 = fhirserver.stored(srv, MADE_TYPES)
        st0 = gw.stats()
        ACKED.clear()
        try:
            for s in srs:
                assert_stored(stow(gw, [s]), [s])
            assert_stored(stow(gw, dcm), dcm)
        finally:
            gw.wait_idle(len(ACKED), st0)
        st = gw.wait_idle(len(ACKED), st0)
        assert_all_done(st, st0, srs, len(srs) + len(dcm))
        eq(srv.counts(R5_TYPES), counts0, "resource counts after sending everything twice more")
        eq(fhirserver.stored(srv, MADE_TYPES), ids0, "resource ids after sending again")
        assert_holds(srv, srs, "after resending")

    test("gw-curl-resend-idempotent: every file sent again (alone and all together): each "
         "200, the queue drains, no count and no id changes", t_resend)
    return state


def ps318_cases(gw, srv, srs):
    sr = [s for s in srs if not s.json][0]
    image = make_image("sc-image", study=sr.study)
    counts0 = srv.counts(R5_TYPES)

    def t_mixed():
        st0 = gw.stats()
        ACKED.clear()
        ans = stow(gw, [sr, image])
        gw.wait_idle(len(ACKED), st0)
        eq(ans.status, 202, "HTTP status (%s)" % ans.what())
        obj = ans.dicom_json()
        eq(referenced(obj), {sr.sop: sr.cls}, "(0008,1199) {SOP Instance UID: SOP Class UID}")
        eq(failed(obj), {image.sop: REASON_SOP_CLASS}, "(0008,1198) {SOP Instance UID: "
           "Failure Reason (0008,1197)}")
        item = sequence(obj, "00081198")[0]
        eq(value(item, "00081150"), SC_IMAGE, "(0008,1198) item's SOP Class UID (0008,1150)")
        st = gw.wait_idle(len(ACKED), st0)
        eq(delta(st, st0), {"done": 1}, "queue stats change (one job: the SR)")

    test("ps318-mixed-202: an SR and a Secondary Capture image in one request: 202, the SR in "
         "(0008,1199), the image in (0008,1198) with Failure Reason (0008,1197) 0x0122",
         t_mixed)

    def t_non_sr():
        st0 = gw.stats()
        ans = stow(gw, [image])
        eq(ans.status, 409, "HTTP status (%s)" % ans.what())
        obj = ans.dicom_json()
        eq(referenced(obj), {}, "(0008,1199)")
        eq(failed(obj), {image.sop: REASON_SOP_CLASS}, "(0008,1198) {SOP Instance UID: "
           "Failure Reason}")
        eq(gw.stats(), st0, "queue stats (nothing queued)")

    test("ps318-non-sr-409: only a non-SR image: 409, (0008,1198) with 0x0122, nothing queued",
         t_non_sr)

    def t_truncated():
        st0 = gw.stats()
        ctype, body = multipart([(sr.media, sr.data)])
        ans = curl_post(gw.root + "/studies", ctype, body[:len(body) // 2])
        eq(ans.status, 400, "HTTP status of a body cut in the middle of its part (%s)" % ans.what())
        ans.dicom_json()
        eq(gw.stats(), st0, "queue stats (nothing queued)")
        ans = curl_post(gw.root + "/studies", ctype, body[:-len("--\r\n")])
        eq(ans.status, 400, "HTTP status of a body without its close delimiter (%s)" % ans.what())
        ans.dicom_json()
        eq(gw.stats(), st0, "queue stats (nothing queued)")

    test("ps318-malformed-400: a multipart body truncated in its part, or without the close "
         "delimiter: 400 with a DICOM JSON body, nothing queued", t_truncated)

    def t_media(ctype, body):
        def run():
            st0 = gw.stats()
            ans = curl_post(gw.root + "/studies", ctype, body)
            eq(ans.status, 415, "HTTP status (%s)" % ans.what())
            ans.dicom_json()
            eq(gw.stats(), st0, "queue stats (nothing queued)")
        return run

    test("ps318-media-type-415:application/json: a DICOM JSON body as application/json: 415",
         t_media("application/json", open(IG_EXAMPLE, "rb").read()))
    jtype, jbody = multipart([("image/jpeg", b"\xff\xd8\xff\xe0" + bytes(60))])
    test("ps318-media-type-415:image/jpeg: multipart/related; type=\"image/jpeg\": 415",
         t_media(jtype, jbody))

    def t_wrong_study():
        other = UID_ROOT + "999.%d" % os.getpid()
        assert other != sr.study
        st0 = gw.stats()
        ans = stow(gw, [sr], study=other)
        eq(ans.status, 409, "HTTP status (%s)" % ans.what())
        obj = ans.dicom_json()
        eq(referenced(obj), {}, "(0008,1199)")
        f = failed(obj)
        eq(list(f), [sr.sop], "(0008,1198) SOP Instance UIDs")
        eq(f[sr.sop], REASON_WRONG_STUDY, "Failure Reason (0008,1197) of an SR of another study "
           "(docs/gateway.md)")
        eq(gw.stats(), st0, "queue stats (nothing queued)")

    test("ps318-wrong-study: POST /dicom-web/studies/{another study} with an SR of its own "
         "study: 409, the SR in (0008,1198) with the documented Failure Reason 0x%04X, nothing "
         "queued" % REASON_WRONG_STUDY, t_wrong_study)

    negs = [Sr(p) for p in corpus_files("neg__")]

    def t_neg(s):
        assert_stored(stow(gw, [s]), [s])

    st0 = gw.stats()
    ACKED.clear()
    for s in negs:
        test("ps318-not-tid1500:%s: 200, (0008,1199) lists it" % s.name, t_neg, s)

    def t_neg_jobs():
        st = gw.wait_idle(len(ACKED), st0)
        eq(delta(st, st0), {"not_applicable": len(unique(negs))}, "queue stats change "
           "(every non-TID-1500 SR not applicable, none done, dead or retried)")
        eq(srv.counts(R5_TYPES), counts0, "resources on the FHIR server (none added)")

    test("ps318-not-tid1500-not-applicable: the %d non-TID-1500 SRs' jobs end not_applicable; "
         "nothing reaches the FHIR server" % len(negs), t_neg_jobs)


def orthanc_cases(gw, srv, srs, peers_env):
    dcm = [s for s in srs if not s.json]
    name = "gwsrc%d" % os.getpid()

    def peers(*args, timeout=180):
        p = subprocess.run([PEERS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=peers_env, timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8",
                                                                                   "replace")

    def stop():
        peers("orthanc-stop", name, "--kill", timeout=60)

    atexit.register(stop)
    try:
        rc, o, e = peers("orthanc-start", name, "--http", "auto", "--dicom", "auto",
                         "--stow-url", gw.root + "/", "--auto", "stow", "--jobs", "4")
        ready = dict(f.split("=", 1) for f in o.split() if "=" in f)
        if rc != 0 or "url" not in ready:
            harness.report(False, "orthanc-start", "exit %d: %s %s" % (rc, short(o), short(e)))
            return
        url = ready["url"]
        srv.reset()
        st0 = gw.stats()

        def t_forwarded():
            rc, o, e = peers("orthanc-load", name, *[s.path for s in dcm])
            assert rc == 0 and "failed=0" in o, "orthanc-load: exit %d: %s %s" % (rc, short(o),
                                                                                  short(e))
            n = len(unique(dcm))
            st, jobs = wait_forwarded(gw, st0, url, n)
            bad = [j for j in jobs if j.get("State") == "Failure"]
            assert not bad, "Orthanc jobs failed (its STOW client rejected the " \
                "gateway's answer?): %s; gateway log: %s" % (short(json.dumps(bad), 600),
                                                            gw.log_tail())
            eq(delta(st, st0), {"done": n}, "queue stats change (one job per instance)")
            assert_holds(srv, dcm, "after Orthanc's forwarding")

        test("orthanc-auto-stow: the %d Part 10 TID 1500 files loaded into Orthanc, forwarded "
             "by its DICOMweb plugin (one chunked STOW request each): each arrives once, the "
             "FHIR server holds exactly what `sr2fhir convert` makes of them, no Orthanc job "
             "failed" % len(dcm), t_forwarded)

        def t_send_all():
            counts0 = srv.counts(R5_TYPES)
            ids0 = fhirserver.stored(srv, MADE_TYPES)
            st1 = gw.stats()
            rc, o, e = peers("orthanc-send", name, "--to", "stow", "--all", timeout=300)
            assert rc == 0 and "failed=0" in o, "orthanc-send: exit %d: %s %s" % (rc, short(o),
                                                                                  short(e))
            gw.wait_idle(len(unique(dcm)), st1)
            eq(srv.counts(R5_TYPES), counts0, "resource counts after Orthanc sent all again")
            eq(fhirserver.stored(srv, MADE_TYPES), ids0, "resource ids after sending again")

        test("orthanc-send-all: Orthanc sends every instance again in one chunked STOW request: "
             "accepted, the queue drains, no count and no id changes", t_send_all)
    finally:
        stop()


def wait_forwarded(gw, st0, url, n, timeout=DRAIN_TIMEOUT):
    """Poll until the gateway has finished n more jobs than `st0` with nothing pending or
    leased, or one of Orthanc's jobs failed, or `timeout` s: (queue stats, Orthanc's jobs).
    (Orthanc keeps only its last 10 finished jobs: JobsHistorySize.)"""
    deadline = time.monotonic() + timeout
    while True:
        st = gw.stats()
        status, jobs = fhirserver.http("GET", url + "/jobs?expand", timeout=30)
        assert status == 200 and isinstance(jobs, list), "GET /jobs: HTTP %d" % status
        fin = sum(st[s] - st0[s] for s in ("done", "dead", "not_applicable"))
        if any(j.get("State") == "Failure" for j in jobs) or time.monotonic() > deadline or (
                st["pending"] == 0 and st["leased"] == 0 and fin >= n):
            return st, jobs
        time.sleep(0.5)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    atexit.register(gwservice.finish, TMP)  # removed, or kept on a failure with SR2FHIR_KEEP_TMP
    if not harness.has_pydicom():
        out("SKIP gateway-integration: %s has no pydicom (apt-get install python3-pydicom)"
            % harness.PYTHON)
        return 0
    if not os.access(SR2FHIR, os.X_OK):
        out("FAIL gateway-integration: no executable %s (run make)" % SR2FHIR)
        return 1
    if not os.access(SERVE, os.X_OK):
        out("SKIP gateway-integration: no executable %s: the gateway service is not built "
            "(src/cli/serve_main.c absent)" % SERVE)
        return 0
    if not os.path.isdir(CORPUS) or not os.path.exists(FHIR_SERVER_SH):
        out("SKIP gateway-integration: %s is absent (../shared not beside the checkout)" % SHARED)
        return 0
    if not shutil.which("node") or not shutil.which("npm"):
        out("SKIP gateway-integration: node and npm are needed by the FHIR server "
            "(../shared/tools/fhir-server)")
        return 0
    if not CURL:
        out("SKIP gateway-integration: no curl binary (apt-get install curl)")
        return 0
    try:
        srs = tid1500_files()
        for s in srs:
            convert(s.path)
    except Exception as e:  # noqa: BLE001
        harness.report(False, "gateway-integration-setup", short(e, 600))
        return 1

    srv, rc = gwservice.start_fhir_server("gateway-integration", os.path.join(TMP, "fhir-R5"))
    if srv is None:
        return rc
    gw = Gateway("gw", srv.base)
    try:
        try:
            gw.start()
            harness.report(True, "gw-start: `sr2fhir serve --http 127.0.0.1:0` prints "
                           "'sr2fhir: serving STOW-RS at http://127.0.0.1:PORT/dicom-web/studies'")
        except AssertionError as e:
            harness.report(False, "gw-start", short(e, 900))
            return harness.exit_code()
        curl_cases(gw, srv, srs)
        ps318_cases(gw, srv, srs)

        peers_env = clean_env(DICOM_PEERS_HOME=os.path.join(TMP, "peers"))
        if not os.path.exists(PEERS):
            out("SKIP orthanc: %s is absent" % PEERS)
        elif subprocess.run([PEERS, "install", "--check"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=peers_env, timeout=60).returncode:
            out("SKIP orthanc: Orthanc or its DICOMweb plugin is not installed (%s install "
                "--check)" % PEERS)
        else:
            orthanc_cases(gw, srv, srs, peers_env)

        def t_sigterm():
            rc = gw.stop()
            eq(rc, 0, "exit status after SIGTERM (log: %s)" % gw.log_tail())

        test("gw-sigterm: SIGTERM stops the gateway with exit 0", t_sigterm)
    finally:
        gwservice.finish(None, gw, srv)  # TMP: removed at exit (atexit)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
