#!/usr/bin/python3
"""tests/integration/test_dimse_faults.py - the DICOM receiver of `sr2fhir serve --dicom`
(issue 12, docs/gateway.md "DICOM C-STORE") against hostile and failing peers: a requestor
written by hand (tests/lib/dimsescu.py: every PDU built byte by byte), so each case sends
exactly what it says and reads exactly what comes back. Prints PASS/FAIL/SKIP lines.

The service runs with --dicom-artim 2 --dicom-timeout 3 --dicom-max-pdu 16384 and one
allowed calling AE title; its audit log (DATA/audit.jsonl) and queue are read after each
case.
- negotiation: per presentation context: CT Image -> 3 (abstract syntax not supported), an
  SR with only an unknown transfer syntax -> 4, an SR offering all four -> accepted with
  Explicit VR LE (the spec's preference: Explicit LE, Implicit LE, Deflated, BE), and with
  Implicit / Deflated / BE when those are the best offered; Verification accepted; C-ECHO
  0000; the association is never rejected as a whole for a context.
- C-STORE statuses: an SR in Implicit VR LE -> 0000 and the file written is Part 10 with
  the meta header of the spec (preamble, DICM, MediaStorage UIDs of the command, the
  context's TransferSyntaxUID, SourceApplicationEntityTitle = the calling AE title,
  sr2fhir's ImplementationClassUID) followed by the data set bytes as sent; a data set
  whose SOP Instance UID is not the command's -> A900, nothing queued; bytes that are not
  a data set -> C000 (or A900), nothing queued; the same SR again -> 0000, its job merged
  or a second one (both allowed: idempotent per SOP Instance UID downstream); a second
  service with --high-water 1 whose jobs cannot be delivered: 0000 until its queue is
  full, then A700 only, nothing queued for those, the association goes on.
- Faults, each followed by a C-ECHO on a new association (the service keeps serving), each
  leaving no job and no file in DATA/incoming, each with its association audit line:
  A-ABORT in the middle of a data set (aborted_by_peer); the connection dropped in the
  middle of a data set (dropped); a peer that connects and sends nothing (ARTIM: the
  service closes without sending anything, well before the default 30 s); half an
  A-ASSOCIATE-RQ then silence (closed by ARTIM); silence inside an established association
  and in the middle of a data set (A-ABORT received: idle deadline; timed_out).
- Malformed PDUs (each: an A-ABORT, or A-ASSOCIATE-RJ where the spec names it, then the
  connection closes; the service keeps serving): unknown PDU type first and after the
  association (A-ABORT source 2 reason 1); A-ASSOCIATE-RQ shorter than its fixed fields;
  an item whose length runs past the PDU; an unknown item type; protocol version 2
  (A-ASSOCIATE-RJ 1/2/2); a wrong application context name (A-ASSOCIATE-RJ 1/1/2);
  P-DATA-TF over the negotiated maximum length (A-ABORT 2/6); a PDV item running past its
  PDU; a PDV on a context that was not accepted.
- SIGKILL during a 1,000-SR transfer: 4 associations in parallel send 1,000 distinct small
  TID 1500 SRs (each SR's resources its own), the service is killed at 3 random numbers of
  acknowledged SRs and restarted on the same data folder; a sender whose association died
  opens a new one and sends again what was not acknowledged (0000). At the end every SR got
  0000, and the FHIR server holds each one's resources exactly once (counts per type, the
  Observation ids equal to what `sr2fhir convert` makes of them).

SKIP with the reason when the service is not built, or pydicom, ../shared, node/npm are
absent. Nothing asserts on wall-clock time except bounds (deadlines far above the
configured timeouts). Environment: ROOT, BUILD, SR2FHIR, PYTHON, SHARED (tests/run.sh).
"""
import atexit
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import BUILD, SR2FHIR, eq, out, short  # noqa: E402
from fhirserver import MADE_TYPES, R5_TYPES, expected_ids  # noqa: E402
import gwservice  # noqa: E402
import dimsescu as d  # noqa: E402

NAME = "dimse-faults"
AET = "SR2FHIR_FT"
SCU = "FAULT_SCU"
ECHO_SCU = "FAULT_ECHO"    # the C-ECHO after each case (its audit line told apart)
ARTIM = 2          # s (--dicom-artim)
IDLE = 3           # s (--dicom-timeout)
MAX_PDU = 16384    # --dicom-max-pdu
N_KILL = int(os.environ.get("DIMSE_FAULTS_N", "1000"))   # SRs of the SIGKILL case
N_EXTRA = 6        # further distinct SRs for the status cases
N_ASSOC = 4        # parallel associations in the SIGKILL case
N_KILLS = 3
BOUND = 20         # s: a bound on an answer the service owes within ARTIM/IDLE (not a timing)
SERVE_OPTS = ["--workers", "4", "--lease", "20", "--backoff-min", "200", "--backoff-max",
              "2000", "--dicom-artim", str(ARTIM), "--dicom-timeout", str(IDLE),
              "--dicom-max-pdu", str(MAX_PDU), "--dicom-peer", SCU, "--dicom-peer", ECHO_SCU]

TMP = tempfile.mkdtemp(prefix="sr2fhir-dimse-faults-")


def test(name, fn, *args):
    harness.test("%s-%s" % (NAME, name), fn, *args, width=900)


# ---------------------------------------------------------------------------------------
class Env:
    """The service, its data folder's audit log and incoming folder, the SRs."""

    def __init__(self, gw, srv, srs, bundles):
        self.gw, self.srv, self.srs, self.bundles = gw, srv, srs, bundles
        self.audit = os.path.join(gw.data, "audit.jsonl")
        self.incoming = os.path.join(gw.data, "incoming")
        self.sop_class, _, ts, _ = d.dataset_of(srs[0][1])
        assert ts == d.EXPLICIT_LE, "make_srs wrote %s, not Explicit VR LE" % ts
        self.extra = srs[N_KILL:]       # the status cases' SRs
        self.kill_srs = srs[:N_KILL]

    def addr(self):
        a = self.gw.dicom_address()
        assert a, "the service is not running; log: %s" % self.gw.log_tail()
        return a

    def assoc(self, contexts=None, calling=SCU, called=AET, max_pdu=MAX_PDU):
        return d.Assoc.connect(self.addr(), calling, called, contexts or [
            (d.VERIFICATION, [d.IMPLICIT_LE]), (self.sop_class, [d.EXPLICIT_LE])],
            max_pdu=max_pdu, timeout=BOUND)

    def audit_lines(self):
        try:
            with open(self.audit, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            return []
        got = []
        for line in text.splitlines():
            try:
                got.append(json.loads(line))
            except ValueError:
                got.append({"unparsed": line})
        return got

    def assoc_lines(self, since):
        """Association audit lines after line number `since`, but those of echo_ok()."""
        return [x for x in self.audit_lines()[since:] if x.get("event") == "association"
                and x.get("calling_aet") != ECHO_SCU]

    def wait_assoc_line(self, since, timeout=BOUND):
        """The first association audit line after line number `since` (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.assoc_lines(since)
            if lines:
                return lines[0]
            if time.monotonic() > deadline:
                raise AssertionError("no association line in the audit log %s within %d s "
                                     "(after line %d); log: %s" % (self.audit, timeout, since,
                                                                   self.gw.log_tail()))
            time.sleep(0.05)

    def njobs(self):
        """Jobs in the queue, whatever their state (workers move them on meanwhile)."""
        return sum(self.gw.stats().values())

    def files(self):
        try:
            return sorted(os.listdir(self.incoming))
        except OSError:
            return []

    def echo_ok(self):
        """A new association, C-ECHO 0000, released: the service keeps serving."""
        a = self.assoc([(d.VERIFICATION, [d.IMPLICIT_LE])], calling=ECHO_SCU)
        try:
            eq(a.echo(1), 0x0000, "C-ECHO status after the fault")
        finally:
            a.release()


def fault_case(env, name, what, run, outcome=None):
    """A fault case: run(env) does the fault; then no job was queued, no file is left in
    DATA/incoming, the association's audit line says `outcome` (when given), and a C-ECHO on
    a new association succeeds."""
    def body():
        st0, files0, n0 = env.njobs(), env.files(), len(env.audit_lines())
        run(env)
        if outcome:
            line = env.wait_assoc_line(n0)
            eq(line.get("outcome"), outcome, "outcome of the association audit line %s" % line)
        else:
            time.sleep(0.2)
        env.echo_ok()
        eq(env.njobs(), st0, "jobs in the queue (none added)")
        eq(env.files(), files0, "files in DATA/incoming (the partial data set removed)")
    test(name + ": " + what, body)


def half_store(env, a, sr):
    """C-STORE-RQ and the first fragment (not the last) of the data set on context 3."""
    cls, sop, _, ds = d.dataset_of(sr[1])
    a.send(d.p_data(3, d.store_rq(1, cls, sop), True, True))
    a.send(d.p_data(3, ds[:len(ds) // 2], False, False))


def expect_abort_then_close(a, what, source=None, reason=None, timeout=BOUND):
    """The acceptor sends an A-ABORT (with source/reason when given) and closes."""
    got, closed = a.read_until_closed(timeout)
    pdus = d.pdus_in(got)
    types = [d.PDU_NAMES.get(t, t) for t, _ in pdus]
    assert pdus and pdus[-1][0] == d.ABORT, "%s: expected an A-ABORT, got %s (%d bytes)" % (
        what, types, len(got))
    body = pdus[-1][1]
    if source is not None:
        eq((body[2], body[3]), (source, reason), "%s: A-ABORT (source, reason)" % what)
    assert closed, "%s: the connection stayed open %d s after the A-ABORT" % (what, timeout)
    return body


def expect_end(a, what, allowed=(d.ABORT, d.ASSOCIATE_RJ), timeout=BOUND):
    """The acceptor answers with one of `allowed` (PDU types) and closes."""
    got, closed = a.read_until_closed(timeout)
    pdus = d.pdus_in(got)
    types = [d.PDU_NAMES.get(t, t) for t, _ in pdus]
    assert pdus and pdus[-1][0] in allowed and len(pdus) == 1, \
        "%s: expected one of %s, got %s (%d bytes)" % (
            what, [d.PDU_NAMES[t] for t in allowed], types, len(got))
    assert closed, "%s: the connection stayed open %d s after it" % (what, timeout)
    return pdus[-1]


# ---------------------------------------------------------------------------------------
def negotiation_cases(env):
    cls = env.sop_class

    def t_contexts():
        a = env.assoc([(d.CT_IMAGE, [d.EXPLICIT_LE]), (cls, ["1.2.3.4.5.6"]),
                       (cls, [d.EXPLICIT_BE, d.DEFLATED_LE, d.IMPLICIT_LE, d.EXPLICIT_LE]),
                       (cls, [d.EXPLICIT_BE, d.DEFLATED_LE, d.IMPLICIT_LE]),
                       (cls, [d.EXPLICIT_BE, d.DEFLATED_LE]), (cls, [d.EXPLICIT_BE]),
                       (d.VERIFICATION, [d.IMPLICIT_LE])])
        try:
            eq(a.results, {1: 3, 3: 4, 5: 0, 7: 0, 9: 0, 11: 0, 13: 0},
               "result per context id (0 accepted, 3 abstract syntax not supported, 4 transfer "
               "syntaxes not supported)")
            eq(a.accepted, {5: d.EXPLICIT_LE, 7: d.IMPLICIT_LE, 9: d.DEFLATED_LE,
                            11: d.EXPLICIT_BE, 13: d.IMPLICIT_LE},
               "transfer syntax chosen per context (preference Explicit LE, Implicit LE, "
               "Deflated, BE)")
            eq(a.peer_max_pdu, MAX_PDU, "Maximum Length in the A-ASSOCIATE-AC (--dicom-max-pdu)")
            eq(a.echo(13), 0x0000, "C-ECHO status")
        finally:
            a.release()

    test("negotiation: CT Image -> 3, an SR with only an unknown transfer syntax -> 4, SRs "
         "accepted with the preferred syntax offered, Verification accepted, the maximum PDU "
         "length announced is --dicom-max-pdu, C-ECHO 0000, A-RELEASE-RP", t_contexts)

    def t_only_refused():
        a = env.assoc([(d.CT_IMAGE, [d.EXPLICIT_LE]), (d.SC_IMAGE, [d.IMPLICIT_LE])])
        try:
            eq(a.results, {1: 3, 3: 3}, "result per context id")
        finally:
            a.release()

    test("negotiation-no-sr: only image SOP classes proposed: A-ASSOCIATE-AC with both "
         "contexts rejected 3 (never A-ASSOCIATE-RJ for contexts), A-RELEASE answered",
         t_only_refused)


def status_cases(env):
    import pydicom
    cls = env.sop_class
    sr = env.extra[0]

    def t_implicit_meta():
        st0 = env.njobs()
        implicit = os.path.join(TMP, "implicit.dcm")
        ds = pydicom.dcmread(sr[1])
        ds.file_meta.TransferSyntaxUID = d.IMPLICIT_LE
        ds.is_implicit_VR, ds.is_little_endian = True, True
        ds.save_as(implicit, write_like_original=False)
        c, sop, ts, data = d.dataset_of(implicit)
        eq(ts, d.IMPLICIT_LE, "pydicom's copy")
        a = env.assoc([(cls, [d.IMPLICIT_LE])])
        try:
            eq(a.accepted, {1: d.IMPLICIT_LE}, "accepted contexts")
            eq(a.store(1, c, sop, data, max_pdv=1000), 0x0000, "C-STORE status")
        finally:
            a.release()
        eq(env.njobs() - st0, 1, "jobs added")
        job = [j for j in env.gw.jobs() if j["SOP_INSTANCE_UID"] == sop]
        assert len(job) == 1, "jobs of %s: %s" % (sop, job)
        _, show, _ = env.gw.queue("show", job[0]["ID"])
        path = [ln[6:] for ln in show.splitlines() if ln.startswith("path: ")][0]
        with open(path, "rb") as f:
            stored = f.read()
        eq(stored[:128], bytes(128), "preamble")
        eq(stored[128:132], b"DICM", "magic")
        mc, msop, mts, mdata = d.dataset_of(path)
        eq((mc, msop, mts), (c, sop, d.IMPLICIT_LE), "MediaStorageSOPClassUID, "
           "MediaStorageSOPInstanceUID, TransferSyntaxUID")
        eq(mdata, data, "the data set after the meta header is the bytes sent")
        meta = pydicom.dcmread(path).file_meta
        eq(bytes(meta.FileMetaInformationVersion), b"\x00\x01", "FileMetaInformationVersion")
        eq(str(meta.get("SourceApplicationEntityTitle", "")).strip(), SCU,
           "SourceApplicationEntityTitle")
        impl = str(meta.get("ImplementationClassUID", ""))
        assert impl and impl != d.IMPL_UID and impl != str(ds.file_meta.get(
            "ImplementationClassUID", "")), "ImplementationClassUID %r: not sr2fhir's" % impl
        assert str(meta.get("ImplementationVersionName", "")).strip(), \
            "no ImplementationVersionName"

    test("store-implicit-part10: an SR in Implicit VR LE -> 0000, one job; its file is Part 10 "
         "(preamble, DICM, the command's UIDs, the context's transfer syntax, "
         "SourceApplicationEntityTitle %s, sr2fhir's ImplementationClassUID and version "
         "name) followed by the data set as sent" % SCU, t_implicit_meta)

    def mismatch(which):
        def t():
            st0, files0 = env.njobs(), env.files()
            c, sop, _, data = d.dataset_of(env.extra[1][1])
            other = d.COMPREHENSIVE_SR if c != d.COMPREHENSIVE_SR else d.ENHANCED_SR
            if which == "instance":        # the command names another instance
                a = env.assoc([(c, [d.EXPLICIT_LE])])
                args = (c, sop[:-1] + ("1" if sop[-1] != "1" else "2"))
            else:                          # the command (and context) name another SR class
                a = env.assoc([(other, [d.EXPLICIT_LE])])
                args = (other, sop)
            try:
                eq(a.accepted, {1: d.EXPLICIT_LE}, "accepted contexts")
                eq("%04X" % a.store(1, args[0], args[1], data), "A900", "C-STORE status when "
                   "the data set's SOP %s UID is not the command's" % which.title())
            finally:
                a.release()
            eq(env.njobs(), st0, "jobs in the queue (none added)")
            eq(env.files(), files0, "files in DATA/incoming")
        return t

    test("store-mismatch-a900-instance: the command's SOP Instance UID is not the data set's "
         "-> A900, nothing queued, no file left", mismatch("instance"))
    test("store-mismatch-a900-class: the command's SOP Class UID (and its context's abstract "
         "syntax) another SR class than the data set's -> A900, nothing queued, no file left",
         mismatch("class"))

    def t_packing():
        sr1, sr2 = env.extra[4], env.extra[5]
        c, sop, _, data = d.dataset_of(sr1[1])
        a = env.assoc(max_pdu=128)
        try:
            # the command in two PDVs of two PDUs, then the data set as 7 PDVs in ONE PDU
            cmd = d.store_rq(a.next_id(), c, sop)
            a.send(d.p_data(3, cmd[:30], True, False) + d.p_data(3, cmd[30:], True, True))
            parts = [data[i * len(data) // 7:(i + 1) * len(data) // 7] for i in range(7)]
            a.send(d.pdu(d.P_DATA_TF, b"".join(d.pdv(3, x, False, k == 6)
                                              for k, x in enumerate(parts))))
            rsp = a.read_response()
            eq("%04X" % struct.unpack("<H", rsp[0x0900])[0], "0000", "C-STORE status")
            # the command and the whole data set in one PDU
            c2, sop2, _, data2 = d.dataset_of(sr2[1])
            a.send(d.pdu(d.P_DATA_TF, d.pdv(3, d.store_rq(a.next_id(), c2, sop2), True, True) +
                         d.pdv(3, data2, False, True)))
            rsp = a.read_response()
            eq("%04X" % struct.unpack("<H", rsp[0x0900])[0], "0000", "C-STORE status")
            sizes = [n for t, n in a.pdu_sizes if t == d.P_DATA_TF]
            eq([n for n in sizes if n > 128], [], "lengths of the P-DATA-TF PDUs the service "
               "sent over our maximum of 128")
            assert len(sizes) > 2, "the 2 responses came in P-DATA-TF PDUs of %s bytes: " \
                "expected fragments of at most 128 bytes" % sizes
        finally:
            a.release()

    test("store-packing: a command split over two PDVs, a data set as 7 PDVs in one PDU, a "
         "command and its data set in one PDU -> 0000 each; with our maximum PDU length 128 "
         "the service's responses come in PDUs of at most 128 bytes", t_packing)

    def t_garbage():
        st0, files0 = env.njobs(), env.files()
        c, sop, _, _ = d.dataset_of(env.extra[2][1])
        a = env.assoc()
        try:
            status = a.store(3, c, sop, b"\xfe\xff\x00\xe0garbage, not a data set" * 10)
            assert status in (0xC000, 0xA900), "C-STORE status 0x%04X for bytes that are " \
                "not a data set, expected C000 (or A900)" % status
            eq(a.echo(1), 0x0000, "C-ECHO on the same association afterwards")
        finally:
            a.release()
        eq(env.njobs(), st0, "jobs in the queue (none added)")
        eq(env.files(), files0, "files in DATA/incoming")

    test("store-garbage-c000: bytes that are not a data set -> C000, the association goes "
         "on (C-ECHO 0000), nothing queued", t_garbage)

    def t_again():
        c, sop, _, data = d.dataset_of(env.extra[3][1])
        a = env.assoc()
        try:
            eq(a.store(3, c, sop, data), 0x0000, "C-STORE status")
            eq(a.store(3, c, sop, data), 0x0000, "C-STORE status of the same SR again")
        finally:
            a.release()
        jobs = [j for j in env.gw.jobs() if j["SOP_INSTANCE_UID"] == sop]
        assert 1 <= len(jobs) <= 2, "jobs of the SR sent twice: %s" % jobs
        lines = [x for x in env.audit_lines() if x.get("event") == "received"
                 and x.get("sop_instance_uid") == sop]
        eq(len(lines), 2, "'received' audit lines of it")
        for x in lines:
            eq((x.get("via"), x.get("calling_aet"), x.get("status"), x.get("sop_class_uid")),
               ("dimse", SCU, "0000", c), "via, calling_aet, status, sop_class_uid of %s" % x)
            assert x.get("outcome") in ("stored", "duplicate"), "outcome %r" % x.get("outcome")

    test("store-twice: the same SR twice in one association -> 0000 both times, one or two "
         "jobs, two 'received' audit lines (via dimse, the calling AE title, status 0000)",
         t_again)


def busy_case(env):
    """A second service whose queue is full: --high-water 1, its FHIR server unreachable and
    a long backoff, so every job it takes stays waiting."""
    def t_busy():
        data = os.path.join(TMP, "busy-data")
        gw2 = gwservice.Service(data, "http://127.0.0.1:9/fhir", os.path.join(TMP, "busy.log"),
                                "--workers", "1", "--high-water", "1", "--backoff-min", "600000",
                                "--backoff-max", "600000", "--dicom-peer", SCU, dicom_aet=AET)
        gw2.start()
        try:
            srs = env.extra[:6]
            a = d.Assoc.connect(gw2.dicom_address(), SCU, AET, [
                (d.VERIFICATION, [d.IMPLICIT_LE]), (env.sop_class, [d.EXPLICIT_LE])],
                timeout=BOUND)
            try:
                got = []
                for sop, path, _ in srs:
                    c, s_, _, data_ = d.dataset_of(path)
                    got.append("%04X" % a.store(3, c, s_, data_))
                eq(a.echo(1), 0x0000, "C-ECHO after the refusals (the association goes on)")
            finally:
                a.release()
            ok = got.count("0000")
            assert got[0] == "0000" and "A700" in got, "statuses %s: expected 0000 first, " \
                "then A700 (out of resources) once the queue is above --high-water 1" % got
            eq(got, ["0000"] * ok + ["A700"] * (len(got) - ok), "statuses (0000 until the "
               "queue is full, then A700 only)")
            eq(sum(gw2.stats().values()), ok, "jobs queued (one per 0000)")
            lines = [x for x in _audit(data) if x.get("event") == "received"]
            eq(sorted((x.get("status"), x.get("outcome")) for x in lines),
               sorted([("0000", "stored")] * ok + [("A700", "refused")] * (len(got) - ok)),
               "'received' audit lines (status, outcome)")
        finally:
            gw2.stop()

    test("busy-a700: a service with --high-water 1 and jobs that cannot be delivered: "
         "C-STORE answers 0000 until the queue is full, then A700 (out of resources), nothing "
         "queued for those; the association goes on", t_busy)


def _audit(data):
    try:
        with open(os.path.join(data, "audit.jsonl"), encoding="utf-8") as f:
            return [json.loads(ln) for ln in f if ln.strip()]
    except (OSError, ValueError):
        return []


# ---------------------------------------------------------------------------------------
def fault_cases(env):
    sr = env.extra[0]

    def abort_mid(env):
        a = env.assoc()
        half_store(env, a, sr)
        time.sleep(0.2)
        a.abort()

    fault_case(env, "abort-mid-dataset", "C-STORE-RQ and half the data set, then A-ABORT: no "
               "response, no job, no file; audit outcome aborted_by_peer", abort_mid,
               "aborted_by_peer")

    def drop_mid(env):
        a = env.assoc()
        half_store(env, a, sr)
        time.sleep(0.2)
        a.sock.shutdown(socket.SHUT_RDWR)
        a.close()

    fault_case(env, "dropped-mid-dataset", "C-STORE-RQ and half the data set, then the "
               "connection closed: no job, no file; audit outcome dropped", drop_mid, "dropped")

    def reset_mid(env):
        a = env.assoc()
        half_store(env, a, sr)
        time.sleep(0.2)
        a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        a.close()                     # RST

    fault_case(env, "reset-mid-dataset", "C-STORE-RQ and half the data set, then TCP RST: no "
               "job, no file; audit outcome dropped", reset_mid, "dropped")

    def silent(env):
        a = d.Assoc.open(env.addr(), timeout=BOUND)
        got, closed = a.read_until_closed(BOUND)
        a.close()
        eq(got, b"", "bytes sent to a peer that never sent an A-ASSOCIATE-RQ (PS3.8 Sta2, "
           "ARTIM expiry: close the transport, no PDU)")
        assert closed, "the service did not close within %d s (--dicom-artim %d)" % (BOUND,
                                                                                   ARTIM)

    fault_case(env, "artim-silent-peer", "a peer that connects and sends nothing: the "
               "service closes the connection, sending nothing, within the bound (ARTIM %d s, "
               "default 30)" % ARTIM, silent)

    def half_rq(env):
        a = d.Assoc.open(env.addr(), timeout=BOUND)
        a.send(d.associate_rq(SCU, AET, [(d.VERIFICATION, [d.IMPLICIT_LE])])[:40])
        got, closed = a.read_until_closed(BOUND)
        a.close()
        assert closed, "the service did not close within %d s of half an A-ASSOCIATE-RQ" % BOUND
        pdus = d.pdus_in(got)
        assert all(t == d.ABORT for t, _ in pdus), "sent %s" % pdus

    fault_case(env, "artim-half-request", "40 bytes of an A-ASSOCIATE-RQ, then silence: the "
               "service closes (ARTIM), sending nothing but perhaps an A-ABORT", half_rq)

    def idle(env):
        a = env.assoc()
        try:
            expect_abort_then_close(a, "silence inside the association")
        finally:
            a.close()

    fault_case(env, "idle-association", "an association, then silence: A-ABORT received "
               "(--dicom-timeout %d s), closed; audit outcome timed_out" % IDLE, idle,
               "timed_out")

    def idle_mid(env):
        a = env.assoc()
        try:
            half_store(env, a, sr)
            expect_abort_then_close(a, "silence in the middle of a data set")
        finally:
            a.close()

    fault_case(env, "idle-mid-dataset", "C-STORE-RQ and half the data set, then silence: "
               "A-ABORT received, closed, no job, no file; audit outcome timed_out", idle_mid,
               "timed_out")


def malformed_cases(env):
    def raw(first_bytes, check):
        def run(env):
            a = d.Assoc.open(env.addr(), timeout=BOUND)
            try:
                a.send(first_bytes)
                check(a)
            finally:
                a.close()
        return run

    def after_ac(payload, check):
        def run(env):
            a = env.assoc()
            try:
                a.send(payload)
                check(a)
            finally:
                a.close()
        return run

    rq = d.associate_rq(SCU, AET, [(d.VERIFICATION, [d.IMPLICIT_LE])])
    cases = [
        ("unknown-pdu-type-first", "PDU type 0x09 instead of an A-ASSOCIATE-RQ: A-ABORT "
         "(source 2, reason 1 unrecognized PDU), closed",
         raw(d.pdu(0x09, bytes(20)), lambda a: expect_abort_then_close(a, "PDU 0x09", 2, 1)),
         None),
        ("rq-too-short", "an A-ASSOCIATE-RQ of 10 bytes (its fixed fields are 68): A-ABORT or "
         "A-ASSOCIATE-RJ, closed",
         raw(d.pdu(d.ASSOCIATE_RQ, rq[6:16]), lambda a: expect_end(a, "a short RQ")), None),
        ("item-length-overrun", "an A-ASSOCIATE-RQ whose presentation context item claims "
         "60,000 bytes: A-ABORT or A-ASSOCIATE-RJ, closed",
         raw(d.pdu(d.ASSOCIATE_RQ, rq[6:6 + 68] + b"\x10\x00\x00\x15" +
                   d.APP_CONTEXT.encode() + b"\x20\x00\xea\x60" + bytes(40)),
             lambda a: expect_end(a, "an item overrunning the PDU")), None),
        ("unknown-item-type", "an A-ASSOCIATE-RQ with an item of type 0x99: A-ABORT or "
         "A-ASSOCIATE-RJ, closed",
         raw(d.pdu(d.ASSOCIATE_RQ, rq[6:] + b"\x99\x00\x00\x04abcd"),
             lambda a: expect_end(a, "an unknown item type")), None),
        ("protocol-version", "an A-ASSOCIATE-RQ of protocol version 2: A-ASSOCIATE-RJ 1/2/2 "
         "(protocol version not supported)",
         raw(d.associate_rq(SCU, AET, [(d.VERIFICATION, [d.IMPLICIT_LE])], version=2),
             lambda a: eq(expect_end(a, "version 2", (d.ASSOCIATE_RJ,))[1][1:4], b"\x01\x02\x02",
                          "A-ASSOCIATE-RJ result, source, reason")), "rejected"),
        ("application-context", "an A-ASSOCIATE-RQ with another application context name: "
         "A-ASSOCIATE-RJ 1/1/2 (application context name not supported)",
         raw(rq.replace(d.APP_CONTEXT.encode(), b"1.2.840.10008.3.1.1.9"),
             lambda a: eq(expect_end(a, "app context", (d.ASSOCIATE_RJ,))[1][1:4],
                          b"\x01\x01\x02", "A-ASSOCIATE-RJ result, source, reason")), "rejected"),
        ("unknown-pdu-type-established", "PDU type 0x0A inside the association: A-ABORT "
         "(2, 1), closed",
         after_ac(d.pdu(0x0A, bytes(8)), lambda a: expect_abort_then_close(a, "PDU 0x0A", 2, 1)),
         "aborted"),
        ("oversized-pdu", "a P-DATA-TF announcing 10 MB (negotiated maximum %d): A-ABORT "
         "(2, 6 invalid PDU parameter value), closed" % MAX_PDU,
         after_ac(struct.pack(">BBL", d.P_DATA_TF, 0, 10 * 1024 * 1024) + bytes(1000),
                  lambda a: expect_abort_then_close(a, "a 10 MB PDU", 2, 6)), "aborted"),
        ("pdv-overrun", "a P-DATA-TF whose PDV item claims more bytes than the PDU holds: "
         "A-ABORT, closed",
         after_ac(d.pdu(d.P_DATA_TF, struct.pack(">LBB", 5000, 3, 3) + bytes(20)),
                  lambda a: expect_abort_then_close(a, "a PDV past its PDU")), "aborted"),
        ("pdv-unaccepted-context", "a command on presentation context 99 (never proposed): "
         "A-ABORT, closed",
         after_ac(d.p_data(99, d.echo_rq(1), True, True),
                  lambda a: expect_abort_then_close(a, "context 99")), "aborted"),
        ("command-garbage", "a command set whose element lengths run past it: A-ABORT (or "
         "a failure response), the service keeps serving",
         after_ac(d.p_data(1, b"\x00\x00\x00\x00\x04\x00\x00\x00\xff\xff\xff\x7f" + bytes(8),
                           True, True),
                  lambda a: a.read_until_closed(BOUND)), None),
    ]
    for name, what, run, outcome in cases:
        fault_case(env, "malformed-" + name, what, run, outcome)


# ---------------------------------------------------------------------------------------
class Senders:
    """N_ASSOC threads, each with its own association, sending the SRs; an SR counts as
    acknowledged when its C-STORE-RSP said 0000. A sender whose association failed (the
    service was killed) waits for the service and sends again on a new association."""

    def __init__(self, env):
        self.env = env
        self.srs = env.kill_srs
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.todo = list(range(len(self.srs)))
        self.acked = [0] * len(self.srs)      # 0000 responses per SR (1 expected)
        self.nacked = 0
        self.statuses = {}                    # status -> count
        self.assocs = self.failures = self.unanswered = 0
        self.errors = []

    def take(self):
        with self.lock:
            return self.todo.pop(0) if self.todo else None

    def put_back(self, i):
        with self.lock:
            self.todo.append(i)

    def run(self):
        a = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            i = self.take()
            if i is None:
                break
            sop, path, _ = self.srs[i]
            try:
                if a is None:
                    addr = self.env.gw.dicom_address()
                    if addr is None:
                        self.put_back(i)
                        time.sleep(0.02)
                        continue
                    a = d.Assoc.connect(addr, SCU, AET, [(self.env.sop_class, [d.EXPLICIT_LE])],
                                        timeout=60)
                    with self.lock:
                        self.assocs += 1
                c, s, _, data = d.dataset_of(path)
                status = a.store(1, c, s, data)
            except (OSError, d.PeerClosed, d.Aborted, d.Rejected, ValueError,
                    AssertionError) as e:
                with self.lock:
                    self.unanswered += 1
                    if isinstance(e, (ValueError, AssertionError)):
                        self.errors.append(short(e, 200))
                if a:
                    a.close()
                a = None
                self.put_back(i)
                time.sleep(0.02)
                continue
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 0x0000:
                    self.acked[i] += 1
                    self.nacked += 1
                    self.cond.notify_all()
            if status != 0x0000:
                self.put_back(i)
                time.sleep(0.05)
        if a:
            try:
                a.release()
            except (OSError, d.PeerClosed, d.Aborted, ValueError):
                a.close()

    def start(self):
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(N_ASSOC)]
        for t in self.threads:
            t.start()

    def running(self):
        return any(t.is_alive() for t in self.threads)


def kill_case(env):
    gw, srv = env.gw, env.srv
    bundles = env.bundles[:N_KILL]
    obs = gwservice.per_sr_ids(bundles)
    want_ids = expected_ids(bundles)
    want_counts = {t: len(want_ids.get(t, ())) for t in R5_TYPES}
    rng = random.Random(int.from_bytes(os.urandom(8), "little"))
    points = sorted(rng.sample(range(N_KILL // 10, N_KILL - N_KILL // 10), N_KILLS))

    gw.wait_idle(timeout=300)
    srv.reset()
    st0 = gw.stats()
    snd = Senders(env)
    snd.start()
    for p in points:
        with snd.lock:
            while snd.nacked < p and snd.running():
                snd.cond.wait(timeout=1)
        time.sleep(rng.random() * 0.02)
        gw.kill()
        gw.start()
    for t in snd.threads:
        t.join(600)
    st = gw.wait_idle(N_KILL, since=st0, timeout=600)
    out("%s-kill figures: kills=%d at acknowledged %s, associations=%d, statuses=%s, "
        "unanswered (no response: killed under it)=%d, queue=%s" % (
            NAME, gw.kills, points, snd.assocs,
            {"%04X" % k: v for k, v in snd.statuses.items()}, snd.unanswered, st))

    def t_acked():
        assert not snd.errors, "protocol errors: %s" % snd.errors[:3]
        missing = [i for i, n in enumerate(snd.acked) if n == 0]
        assert not missing, "%d SRs never got 0000 (e.g. %s)" % (len(missing), missing[:3])
        assert gw.kills >= N_KILLS, "only %d kills" % gw.kills

    test("kill-acknowledged: SIGKILL %d times during %d C-STOREs on %d parallel associations, "
         "restarted on the same data folder: every SR got 0000 (re-sent when no response "
         "came)" % (N_KILLS, N_KILL, N_ASSOC), t_acked)

    def t_queue():
        eq({k: st[k] - st0[k] for k in ("pending", "leased", "dead", "not_applicable")},
           {"pending": 0, "leased": 0, "dead": 0, "not_applicable": 0},
           "queue stats other than done (log: %s)" % gw.log_tail(300))
        done = {j["SOP_INSTANCE_UID"] for j in gw.jobs("done")}
        missing = [sop for sop, _, _ in env.kill_srs if sop not in done]
        assert not missing, "%d acknowledged SRs without a done job (e.g. %s)" % (
            len(missing), missing[:2])

    test("kill-queue: the queue drains: a done job for every acknowledged SOP Instance UID, "
         "none dead", t_queue)

    def t_fhir():
        eq(srv.counts(R5_TYPES), want_counts, "resources per type on the FHIR server")
        have = set(srv.all("Observation"))
        lost = [i for i, ids in enumerate(obs) if not ids <= have]
        extra = have - want_ids["Observation"]
        assert not lost, "%d acknowledged SRs' Observations missing (e.g. SR %s)" % (
            len(lost), lost[:2])
        assert not extra, "%d Observations no SR makes (e.g. %s)" % (len(extra),
                                                                    sorted(extra)[:2])
        for t in MADE_TYPES:
            eq(set(srv.all(t)), want_ids[t], "%s ids on the FHIR server" % t)

    test("kill-fhir-exactly-once: the FHIR server holds each acknowledged SR's resources "
         "exactly once (%s)" % ", ".join("%s %d" % (t, n) for t, n in want_counts.items()
                                         if n), t_fhir)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    atexit.register(gwservice.finish, TMP)  # removed (or kept) on every path, early returns too
    if not os.access(gwservice.SERVE, os.X_OK):
        out("SKIP %s: no executable %s: the gateway service is not built" % (NAME,
                                                                            gwservice.SERVE))
        return 0
    with open(gwservice.SERVE, "rb") as f:
        has_dicom = b"serving DICOM" in f.read()
    if not has_dicom:
        out("SKIP %s: `sr2fhir serve` has no --dicom option yet (issue 12 not landed)" % NAME)
        return 0
    global N_KILL
    sanitizer = "san" in os.path.basename(BUILD.rstrip("/"))
    if sanitizer:
        N_KILL = 0          # the SIGKILL soak is skipped: no 1,000 SRs to make
    rc, srs, bundles, srv = gwservice.prepare(NAME, N_KILL + N_EXTRA, TMP)
    if rc is not None:
        return rc
    gw = gwservice.Service(os.path.join(TMP, "data"), srv.base, os.path.join(TMP, "serve.log"),
                           *SERVE_OPTS, dicom_aet=AET)
    try:
        try:
            gw.start()
        except AssertionError as e:
            harness.report(False, NAME + "-start", short(e, 900))
            return 1
        env = Env(gw, srv, srs, bundles)
        negotiation_cases(env)
        status_cases(env)
        busy_case(env)
        fault_cases(env)
        malformed_cases(env)
        if sanitizer:
            out("SKIP %s-kill: the SIGKILL soak runs in the plain build only (BUILD=%s)" % (
                NAME, BUILD))
        else:
            kill_case(env)

        def t_sigterm():
            eq(gw.stop(), 0, "exit status after SIGTERM (log: %s)" % gw.log_tail(300))

        test("sigterm: SIGTERM stops the service with exit 0", t_sigterm)
    except Exception as e:  # noqa: BLE001
        harness.report(False, NAME, "%s: %s" % (type(e).__name__, short(e, 900)))
    finally:
        gwservice.finish(None, gw, srv)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
