#!/usr/bin/env python3
"""tests/integration/test_scp.py - `sr2fhir serve --dicom` (issue 12: the DICOM receiver,
src/gateway/scp.c) against DCMTK's echoscu, storescu and dcmdump:

- the start-up line 'sr2fhir: serving DICOM (C-STORE, C-ECHO) as AET at 127.0.0.1:PORT'
  (port 0 given: the real port printed, and it answers);
- C-ECHO succeeds; C-STORE of one corpus TID 1500 SR succeeds, is one job in
  `sr2fhir queue stats` and its resources (as `sr2fhir convert` makes them) reach the FHIR
  server; the audit log has its 'received' line (via dimse, status 0000) and the
  association's line (released);
- the file written is Part 10: dcmdump shows the meta header made of the command and the
  context (SOP Class/Instance, transfer syntax, our implementation, the calling AE title)
  and the bytes after it are the data set as sent;
- a non-SR SOP Class is refused per presentation context (what storescu prints), the SR
  proposed beside it in the same association is stored;
- a wrong called AE title and an unknown calling AE title (or a known one from another
  address) are rejected: what echoscu prints;
- --dicom-max-associations 1: while one association is held open (a hand-made SCU), a
  second is rejected transient, local limit exceeded (what echoscu prints); after the first
  is released, a new one is accepted;
- usage errors of the DICOM options, the options as config file keys;
- DICOM TLS with required client certificates (openssl-made CA): echoscu/storescu +tls
  succeed, anonymous TLS, another CA's certificate and plain TCP are refused.
Needs DCMTK (echoscu, storescu, dcmdump), python3-pydicom, ../shared/corpus and the FHIR
server tool; SKIPs with the reason when one is absent.
"""
import http.client
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
import fhirserver  # noqa: E402
from harness import SR2FHIR, SHARED, clean_env, short, test  # noqa: E402

NAME = "scp"
SERVE = os.path.join(os.path.dirname(SR2FHIR), "sr2fhir-serve")
CORPUS_SR = os.path.join(SHARED, "corpus", "files", "tid1500__highdicom__sr_document.dcm")
DICOM_LINE = re.compile(r"^sr2fhir: serving DICOM \(C-STORE, C-ECHO\) as (\S+) at "
                        r"127\.0\.0\.1:(\d+)$")
AET = "SR2FHIR_T"
SENDER = "SENDER"
IMPL_UID_PREFIX = "2.25."
START_TIMEOUT = 60
DRAIN_TIMEOUT = 120
TS_EXPLICIT_LE = "1.2.840.10008.1.2.1"


class Gateway:
    """`sr2fhir serve --http 127.0.0.1:0 --dicom 127.0.0.1:0 --aet AET ...` with its two
    start-up lines read; stopped with SIGTERM at the end."""

    def __init__(self, workdir, server_url, *opts,
                 dicom=("--dicom", "127.0.0.1:0", "--aet", AET)):
        self.data = os.path.join(workdir, "data")
        self.logpath = os.path.join(workdir, "serve.log")
        self.cmd = [SR2FHIR, "serve", "--http", "127.0.0.1:0", "--data", self.data,
                    "--server", server_url, *dicom, "--workers", "1", "--stop-grace", "2",
                    *opts]
        self.proc = None
        self.lines = []
        self.port = None

    def start(self):
        with open(self.logpath, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=log,
                                         env=clean_env(), cwd=os.path.dirname(self.data))
        self.lines = read_lines(self.proc, 2, START_TIMEOUT)
        m = DICOM_LINE.match(self.lines[1] if len(self.lines) > 1 else "")
        if not m:
            self.stop()
            raise AssertionError("start-up lines %r (exit %r); log: %s" % (
                self.lines, self.proc.returncode, self.log_tail()))
        self.port = int(m.group(2))
        return m

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        return self.proc.returncode if self.proc else None

    def log_tail(self, n=1500):
        try:
            with open(self.logpath, "rb") as f:
                return short(f.read().decode("utf-8", "replace")[-6000:], 6000)[-n:]
        except OSError:
            return ""

    def metrics(self):
        """{name: value} of GET /metrics on the STOW-RS listener."""
        port = int(self.lines[0].split(":")[-1].split("/")[0])
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            c.request("GET", "/metrics")
            r = c.getresponse()
            text = r.read().decode("utf-8", "replace")
        finally:
            c.close()
        assert r.status == 200, "GET /metrics: %d" % r.status
        got = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                got[k] = float(v)
        return got

    def audit(self):
        try:
            with open(os.path.join(self.data, "audit.jsonl"), encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    def stats(self):
        p = subprocess.run([SR2FHIR, "queue", "stats", "--data", self.data],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert p.returncode == 0, "queue stats: %s" % short(p.stderr)
        got = {}
        for line in p.stdout.decode().splitlines():
            k, _, v = line.strip().partition(" ")
            got[k] = int(v)
        return got

    def wait_drained(self, finished):
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while True:
            st = self.stats()
            done = sum(st.get(s, 0) for s in ("done", "dead", "not_applicable"))
            if st.get("pending", 0) == 0 and st.get("leased", 0) == 0 and done >= finished:
                return st
            assert self.proc.poll() is None, "the gateway exited; log: %s" % self.log_tail()
            assert time.monotonic() < deadline, "queue not drained: %s; log: %s" % (
                st, self.log_tail())
            time.sleep(0.5)


def read_lines(proc, n, timeout):
    """The first n lines proc writes to stdout (fewer when it exits or stays silent)."""
    buf = b""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while buf.count(b"\n") < n and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        elif proc.poll() is not None:
            break
    return [ln.decode("utf-8", "replace") for ln in buf.split(b"\n")[:n] if ln]


def dcmtk(tool, *args, timeout=60):
    """(exit code, stdout + stderr as text) of a DCMTK tool."""
    p = subprocess.run([tool, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def echo(port, calling=SENDER, called=AET):
    return dcmtk("echoscu", "-v", "-aet", calling, "-aec", called, "127.0.0.1", str(port))


def store(port, *files, calling=SENDER):
    """storescu of files (options after them, e.g. --no-halt); -R: propose only the files'
    SOP Classes (storescu's default list lacks some SR classes)."""
    return dcmtk("storescu", "-v", "-R", "-aet", calling, "-aec", AET, "127.0.0.1", str(port),
                 *files, timeout=120)


# ---- a hand-made SCU: one association held open ------------------------------------------
def _item(kind, body):
    return struct.pack(">BBH", kind, 0, len(body)) + body


def associate_rq(calling, called):
    """An A-ASSOCIATE-RQ PDU (PS3.8 9.3.2) proposing Verification in Implicit VR LE."""
    pc = bytes([1, 0, 0, 0]) + _item(0x30, b"1.2.840.10008.1.1") + \
        _item(0x40, b"1.2.840.10008.1.2")
    user = _item(0x51, struct.pack(">I", 16384)) + _item(0x52, b"1.2.826.0.1.3680043.9.1") + \
        _item(0x55, b"TEST_SCU")
    body = struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() + \
        bytes(32) + _item(0x10, b"1.2.840.10008.3.1.1.1") + _item(0x20, pc) + _item(0x50, user)
    return struct.pack(">BBI", 1, 0, len(body)) + body


def read_pdu(sock):
    head = b""
    while len(head) < 6:
        chunk = sock.recv(6 - len(head))
        assert chunk, "the connection closed before a PDU"
        head += chunk
    kind, _, n = struct.unpack(">BBI", head)
    body = b""
    while len(body) < n:
        chunk = sock.recv(min(65536, n - len(body)))
        assert chunk, "the connection closed inside a PDU"
        body += chunk
    return kind, body


# ---- cases ---------------------------------------------------------------------------------
def case_start_line(gw, m):
    harness.eq(m.group(1), AET, "AE title in the start-up line")
    assert gw.port > 0, "port %d" % gw.port
    assert gw.lines[0].startswith("sr2fhir: serving STOW-RS at http://127.0.0.1:"), gw.lines
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10):
        pass


def case_echo(gw):
    rc, out = echo(gw.port)
    assert rc == 0 and "Received Echo Response (Success)" in out, "echoscu exit %d: %s" % (
        rc, short(out, 800))


def case_store(gw, srv, bundle):
    rc, out = store(gw.port, CORPUS_SR)
    assert rc == 0 and "Received Store Response (Success)" in out, "storescu exit %d: %s" % (
        rc, short(out, 800))
    st = gw.wait_drained(1)
    harness.eq((st["done"], st["dead"], st["not_applicable"]), (1, 0, 0), "queue stats")
    want = fhirserver.expected_ids([bundle])
    got = fhirserver.stored(srv, want.keys())
    for t, ids in want.items():
        assert ids <= got[t], "%s on the FHIR server: %d of %d (missing %s)" % (
            t, len(ids & got[t]), len(ids), sorted(ids - got[t])[:3])
    uid = bundle_uid(CORPUS_SR)
    rec = [a for a in gw.audit() if a.get("event") == "received" and a.get("via") == "dimse"]
    harness.eq([(a["sop_instance_uid"], a["outcome"], a["status"], a["calling_aet"])
                for a in rec], [(uid, "stored", "0000", SENDER)], "audit 'received' lines")
    m = gw.metrics()
    harness.eq((m.get("sr2fhir_dimse_stored_total"), m.get("sr2fhir_dimse_refused_total")),
               (1.0, 0.0), "/metrics sr2fhir_dimse_stored_total, sr2fhir_dimse_refused_total")
    assoc = [a for a in gw.audit() if a.get("event") == "association" and a.get("stores")]
    harness.eq([(a["calling_aet"], a["called_aet"], a["remote"], a["outcome"], a["stores"])
                for a in assoc], [(SENDER, AET, "127.0.0.1", "released", 1)],
               "audit 'association' lines with stores")


def bundle_uid(path):
    import pydicom
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def meta_end(data):
    """The offset where group 0002 of a Part 10 file ends."""
    assert data[128:132] == b"DICM", "no DICM prefix"
    glen = struct.unpack("<I", data[140:144])[0]
    return 144 + glen


def case_part10(gw):
    import pydicom
    files = [f for f in os.listdir(os.path.join(gw.data, "incoming")) if f.endswith(".dcm")]
    harness.eq(len(files), 1, "files in DATA/incoming")
    path = os.path.join(gw.data, "incoming", files[0])
    rc, out = dcmtk("dcmdump", "-M", "-Un", path)
    assert rc == 0, "dcmdump exit %d: %s" % (rc, short(out))
    src = pydicom.dcmread(CORPUS_SR, stop_before_pixels=True)
    checks = [("(0002,0001) OB 00\\01", "FileMetaInformationVersion"),
              ("(0002,0002) UI [%s]" % src.SOPClassUID, "MediaStorageSOPClassUID"),
              ("(0002,0003) UI [%s]" % src.SOPInstanceUID, "MediaStorageSOPInstanceUID"),
              ("(0002,0010) UI [%s]" % TS_EXPLICIT_LE, "TransferSyntaxUID"),
              ("(0002,0013) SH [SR2FHIR_", "ImplementationVersionName"),
              ("(0002,0016) AE [%s]" % SENDER, "SourceApplicationEntityTitle")]
    for text, what in checks:
        assert text in out, "%s: %r not in dcmdump's output: %s" % (what, text, short(out, 1500))
    m = re.search(r"\(0002,0012\) UI \[([0-9.]+)\]", out)
    assert m and m.group(1).startswith(IMPL_UID_PREFIX), "ImplementationClassUID: %s" % (
        short(out, 1500))
    assert "(0002,0000) UL" in out, "no FileMetaInformationGroupLength"
    with open(path, "rb") as f:
        got = f.read()
    with open(CORPUS_SR, "rb") as f:
        orig = f.read()
    harness.eq(pydicom.dcmread(CORPUS_SR).file_meta.TransferSyntaxUID, TS_EXPLICIT_LE,
               "the corpus file's transfer syntax")
    assert got[meta_end(got):] == orig[meta_end(orig):], (
        "the data set after the meta header (%d bytes) is not the one sent (%d bytes)" % (
            len(got) - meta_end(got), len(orig) - meta_end(orig)))


def make_ct(path):
    """A tiny CT Image (a SOP Class that is not an SR) written with pydicom."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.PatientID = "SCPTEST"
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(8)
    pydicom.dcmwrite(path, ds, write_like_original=False)
    return str(ds.SOPInstanceUID)


def case_non_sr(gw, workdir):
    ct = os.path.join(workdir, "ct.dcm")
    make_ct(ct)
    before = gw.stats()
    rc, out = store(gw.port, ct, CORPUS_SR, "--no-halt")
    low = out.lower()
    assert "no presentation context for: (ct)" in low, "storescu did not report the CT's " \
        "context rejected (exit %d): %s" % (rc, short(out, 1200))
    assert "received store response (success)" in low, "the SR beside it was not stored: " \
        "%s" % short(out, 1200)
    after = gw.stats()
    total = lambda s: sum(s.values())  # noqa: E731
    # the same SR again: its job is finished, so a new job is made (intake.h), the CT none
    harness.eq(total(after) - total(before), 1, "jobs made by the CT and the SR")


def case_called_aet(gw):
    rc, out = echo(gw.port, called="NOT_US")
    assert rc != 0 and "called ae title not recognized" in out.lower(), (
        "echoscu exit %d: %s" % (rc, short(out, 800)))


def case_calling_aet(gw):
    rc, out = echo(gw.port, calling="STRANGER")
    assert rc != 0 and "calling ae title not recognized" in out.lower(), (
        "echoscu exit %d: %s" % (rc, short(out, 800)))
    rc, out = echo(gw.port, calling="FAR")   # allowed only from 10.255.255.1
    assert rc != 0 and "calling ae title not recognized" in out.lower(), (
        "echoscu as FAR from 127.0.0.1: exit %d: %s" % (rc, short(out, 800)))
    rc, out = echo(gw.port, calling="NEAR")  # allowed from 127.0.0.1
    assert rc == 0, "echoscu as NEAR: exit %d: %s" % (rc, short(out, 800))
    rej = [a for a in gw.audit() if a.get("event") == "association" and
           a.get("outcome") == "rejected"]
    harness.eq(sorted(a["calling_aet"] for a in rej), ["FAR", "SENDER", "STRANGER"],
               "rejected associations in the audit log (called NOT_US by SENDER first)")


def case_limit(workdir):
    gw = Gateway(os.path.join(workdir, "limit"), "http://127.0.0.1:9/fhir",
                 "--allow-http", "--dicom-max-associations", "1")
    os.makedirs(os.path.join(workdir, "limit"))
    gw.start()
    try:
        with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
            s.sendall(associate_rq(SENDER, AET))
            kind, _ = read_pdu(s)
            harness.eq(kind, 2, "PDU type answering the held association (2: A-ASSOCIATE-AC)")
            rc, out = echo(gw.port)
            low = out.lower()
            assert rc != 0 and "rejected transient" in low and "local limit exceeded" in low, (
                "second association: echoscu exit %d: %s" % (rc, short(out, 800)))
            s.sendall(bytes([5, 0, 0, 0, 0, 4, 0, 0, 0, 0]))   # A-RELEASE-RQ
            kind, _ = read_pdu(s)
            harness.eq(kind, 6, "PDU type answering A-RELEASE-RQ (6: A-RELEASE-RP)")
        deadline = time.monotonic() + 30
        while True:   # the slot is free once its thread ended (bounded wait, not timed)
            rc, out = echo(gw.port)
            if rc == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert rc == 0, "after the release: echoscu exit %d: %s" % (rc, short(out, 800))
        outcomes = [a["outcome"] for a in gw.audit() if a.get("event") == "association"]
        assert "rejected" in outcomes and outcomes.count("released") >= 2, outcomes
    finally:
        rc = gw.stop()
    harness.eq(rc, 0, "exit status after SIGTERM")


def run_serve(*args, config=None):
    """(exit code, stderr) of `sr2fhir serve ARGS` that must stop at its option checks."""
    p = subprocess.run([SR2FHIR, "serve", *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30, env=clean_env())
    return p.returncode, p.stderr.decode("utf-8", "replace")


def case_options(workdir):
    base = ["--http", "127.0.0.1:0", "--data", os.path.join(workdir, "never"), "--server",
            "http://127.0.0.1:9/fhir", "--allow-http"]
    bad = [
        (["--dicom", "127.0.0.1:0"], "--dicom needs --aet"),
        (["--aet", "X"], "--aet, --dicom-peer and --dicom-tls-* go with --dicom"),
        (["--dicom", "127.0.0.1", "--aet", "X"], "not HOST:PORT"),
        (["--dicom", "127.0.0.1:0", "--aet", "X" * 17], "--aet takes 1 to 16"),
        (["--dicom", "127.0.0.1:0", "--aet", "X", "--dicom-peer", "P@host.example"],
         "numeric IPv4 or IPv6"),
        (["--dicom", "127.0.0.1:0", "--aet", "X", "--dicom-max-associations", "0"],
         "from 1 to 4096"),
        (["--dicom", "127.0.0.1:0", "--aet", "X", "--dicom-tls-cert", "c.pem"],
         "needs --dicom-tls-cert FILE and --dicom-tls-key FILE"),
        (["--dicom-tls-cert", "c.pem", "--dicom-tls-key", "k.pem"], "go with --dicom"),
    ]
    for args, want in bad:
        rc, err = run_serve(*(base + args))
        assert rc == 2 and want in err, "serve %s: exit %d, stderr %r (expected 2 and %r)" % (
            " ".join(args), rc, short(err), want)
    assert not os.path.exists(os.path.join(workdir, "never")), "a refused start made DIR"
    with socket.socket() as s:   # a port in use: exit 3 with the address
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        busy = s.getsockname()[1]
        rc, err = run_serve(*(base + ["--dicom", "127.0.0.1:%d" % busy, "--aet", "X"]))
        assert rc == 3 and "127.0.0.1:%d" % busy in err, "port in use: exit %d: %s" % (
            rc, short(err))


def case_config(workdir):
    """The DICOM options as config file keys (dicom-peer repeated)."""
    d = os.path.join(workdir, "config")
    os.makedirs(d)
    conf = os.path.join(d, "serve.conf")
    with open(conf, "w") as f:
        f.write("dicom = 127.0.0.1:0\naet = CONFAET\ndicom-peer = ONE\n"
                "dicom-peer = TWO@127.0.0.1\ndicom-max-associations = 2\n")
    gw = Gateway(d, "http://127.0.0.1:9/fhir", "--allow-http", "--config", conf, dicom=())
    m = gw.start()
    try:
        harness.eq(m.group(1), "CONFAET", "AE title from the config file")
        rc, out = echo(gw.port, calling="TWO", called="CONFAET")
        assert rc == 0, "echoscu as TWO: exit %d: %s" % (rc, short(out, 600))
        rc, out = echo(gw.port, calling=SENDER, called="CONFAET")
        assert rc != 0 and "calling ae title not recognized" in out.lower(), (
            "echoscu as SENDER (not in the config's peers): exit %d: %s" % (rc, short(out)))
    finally:
        gw.stop()


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate (CN modality1)
    signed by it, with the openssl command: {name: path}."""
    os.makedirs(d)
    p = {n: os.path.join(d, n) for n in ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt",
                                         "cli.key", "cli.csr", "cli.crt", "other.key",
                                         "other.crt", "ext")}
    with open(p["ext"], "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    cmds = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p["ca.key"], "-out",
         p["ca.crt"], "-days", "2", "-subj", "/CN=sr2fhir test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", p["srv.key"], "-out", p["srv.csr"],
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", p["srv.csr"], "-CA", p["ca.crt"], "-CAkey", p["ca.key"],
         "-CAcreateserial", "-out", p["srv.crt"], "-days", "2", "-extfile", p["ext"]],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", p["cli.key"], "-out", p["cli.csr"],
         "-subj", "/CN=modality1"],
        ["x509", "-req", "-in", p["cli.csr"], "-CA", p["ca.crt"], "-CAkey", p["ca.key"],
         "-CAcreateserial", "-out", p["cli.crt"], "-days", "2"],
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p["other.key"], "-out",
         p["other.crt"], "-days", "2", "-subj", "/CN=self-signed stranger"],
    ]
    for c in cmds:
        r = subprocess.run(["openssl", *c], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60, cwd=d)
        assert r.returncode == 0, "openssl %s: %s" % (c[0], short(r.stderr))
    return p


def case_tls(workdir):
    """DICOM TLS (PS3.15 Annex B) with required client certificates: echoscu/storescu +tls
    with a certificate of the CA succeed (the SR queued, the subject in the audit line);
    without a certificate, with one of another CA, or without TLS they are refused at the
    handshake; an unreadable certificate file: exit 3 naming it."""
    if not shutil.which("openssl"):
        raise harness.SkipTest("no openssl command")
    d = os.path.join(workdir, "tls")
    p = make_certs(os.path.join(d, "pki"))
    gw = Gateway(d, "http://127.0.0.1:9/fhir", "--allow-http", "--dicom-tls-cert", p["srv.crt"],
                 "--dicom-tls-key", p["srv.key"], "--dicom-tls-client-ca", p["ca.crt"])
    gw.start()
    try:
        tls = ["+tls", p["cli.key"], p["cli.crt"], "+cf", p["ca.crt"]]
        rc, out = dcmtk("echoscu", "-v", *tls, "-aet", SENDER, "-aec", AET, "127.0.0.1",
                        str(gw.port))
        assert rc == 0 and "Received Echo Response (Success)" in out, "echoscu +tls: exit "             "%d: %s" % (rc, short(out, 800))
        rc, out = dcmtk("storescu", "-v", "-R", *tls, "-aet", SENDER, "-aec", AET,
                        "127.0.0.1", str(gw.port), CORPUS_SR, timeout=120)
        assert rc == 0 and "Received Store Response (Success)" in out, "storescu +tls: exit "             "%d: %s" % (rc, short(out, 800))
        st = gw.stats()
        harness.eq(st["pending"] + st["leased"], 1, "jobs queued by the C-STORE over TLS")
        refused = [
            ("no client certificate", ["+tla", "+cf", p["ca.crt"]]),
            ("another CA's certificate", ["+tls", p["other.key"], p["other.crt"], "+cf",
                                          p["ca.crt"]]),
            ("no TLS", []),
        ]
        for what, opts in refused:
            rc, out = dcmtk("echoscu", "-to", "20", *opts, "-aet", SENDER, "-aec", AET,
                            "127.0.0.1", str(gw.port))
            assert rc != 0 and "Echo Response (Success)" not in out, "%s: echoscu exit %d: "                 "%s" % (what, rc, short(out, 600))
        lines = [a for a in gw.audit() if a.get("event") == "association"]
        ok = [(a["outcome"], a.get("tls"), a.get("tls_subject")) for a in lines
              if a["outcome"] == "released"]
        harness.eq(ok, [("released", True, "/CN=modality1")] * 2, "released associations")
        failed = [a["detail"] for a in lines if a["outcome"] == "dropped"]
        harness.eq(len(failed), 3, "dropped handshakes in the audit log")
        assert all(f.startswith("TLS handshake failed") for f in failed), failed
        assert "did not return a certificate" in failed[0], failed
    finally:
        gw.stop()
    rc, err = run_serve("--http", "127.0.0.1:0", "--data", os.path.join(d, "data2"), "--server",
                        "http://127.0.0.1:9/fhir", "--allow-http", "--dicom", "127.0.0.1:0",
                        "--aet", AET, "--dicom-tls-cert", os.path.join(d, "absent.pem"),
                        "--dicom-tls-key", p["srv.key"])
    assert rc == 3 and "absent.pem" in err, "absent certificate: exit %d: %s" % (rc, short(err))


def main():
    for tool in ("echoscu", "storescu", "dcmdump"):
        if not shutil.which(tool):
            harness.out("SKIP %s: DCMTK's %s is absent (apt-get install dcmtk)" % (NAME, tool))
            return 0
    if not harness.has_pydicom():
        harness.out("SKIP %s: no pydicom (apt-get install python3-pydicom)" % NAME)
        return 0
    if not os.access(SERVE, os.X_OK):
        harness.out("SKIP %s: no %s: the gateway service is not built" % (NAME, SERVE))
        return 0
    if not os.path.exists(CORPUS_SR):
        harness.out("SKIP %s: %s is absent (../shared not beside the checkout)" % (
            NAME, CORPUS_SR))
        return 0
    workdir = tempfile.mkdtemp(prefix="sr2fhir-test-scp-")
    srv = None
    try:
        srv = fhirserver.FhirServer("R5", os.path.join(workdir, "fhir"))
        try:
            srv.start()
        except RuntimeError as e:
            harness.out("SKIP %s-fhir: %s" % (NAME, short(e)))
            srv = None
        bundle = fhirserver.convert(CORPUS_SR)
        gw = Gateway(workdir, srv.base if srv else "http://127.0.0.1:9/fhir", "--allow-http",
                     "--dicom-peer", SENDER, "--dicom-peer", "FAR@10.255.255.1",
                     "--dicom-peer", "NEAR@127.0.0.1")
        try:
            m = gw.start()
        except AssertionError as e:
            harness.report(False, NAME + "-start-line", short(e, 1500))
            return harness.exit_code()
        try:
            test(NAME + "-start-line", case_start_line, gw, m)
            test(NAME + "-echo", case_echo, gw)
            if srv:
                test(NAME + "-store-queue-fhir", case_store, gw, srv, bundle)
                test(NAME + "-part10-meta", case_part10, gw)
            else:
                harness.out("SKIP %s-store-queue-fhir: no FHIR server" % NAME)
            test(NAME + "-non-sr-context-refused", case_non_sr, gw, workdir)
            test(NAME + "-called-aet-rejected", case_called_aet, gw)
            test(NAME + "-calling-aet-rejected", case_calling_aet, gw)
        finally:
            rc = gw.stop()
        harness.report(rc == 0, NAME + "-sigterm-exit-0", "exit %r; log: %s" % (
            rc, gw.log_tail()))
        test(NAME + "-max-associations", case_limit, workdir)
        test(NAME + "-usage-errors", case_options, workdir)
        test(NAME + "-config-keys", case_config, workdir)
        test(NAME + "-tls", case_tls, workdir)
    finally:
        if srv:
            srv.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
