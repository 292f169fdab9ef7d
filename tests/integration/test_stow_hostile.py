#!/usr/bin/python3
"""tests/integration/test_stow_hostile.py - `sr2fhir serve` against hostile STOW-RS clients
(issue 11 Must show, bad input), over raw sockets. Prints PASS/FAIL/SKIP lines for
tests/run.sh.

The service runs with `--http 127.0.0.1:0 --data TMP --server URL` where URL is a closed
port (delivery is not needed: nothing here is ever stored), with small body and part limits
(--max-body 16 MiB, --max-part 8 MiB) so that the limits are reached by counts of bytes.
Each case checks the HTTP status PS3.18 asks for (400 malformed, 413 too large, 415 wrong
media type, 409 when no part could be stored), then that the process is still alive and
GET /healthz still answers 200:

- a truncated multipart body (no close delimiter), a body cut by the client closing, a
  missing boundary parameter, a boundary that never appears, garbage header lines in a
  part, a part that is not DICOM (409 with Failed SOP Sequence (0008,1198)), wrong media
  types, chunked bodies with bad chunk sizes, request headers without end;
- Content-Length: 1073741824 declared: 413 before any body byte is sent; then 1 GiB streamed
  chunked: refused after at most max-body + 32 MiB of bytes sent (count), the service's
  VmRSS grows by less than 64 MiB;
- slow-loris: 70 connections each sending one header byte per second while another client's
  GET /healthz and STOW requests keep being answered; the thread count
  (/proc/PID/task) does not grow with the connections; a second service with
  --max-connections 16 --connection-timeout 3 and 40 silent connections: every one of them
  is refused or closed by the service (none stays open), and a normal request is answered
  afterwards.

Waits are bounded (generous) deadlines to detect hangs; nothing asserts on wall-clock time.
Every process started here is stopped at the end, on failure too. SKIP with the reason when
BUILD/sr2fhir-serve is absent.
"""
import atexit
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import SR2FHIR, clean_env, eq, out, short  # noqa: E402
import gwservice  # noqa: E402

SERVE = os.path.join(os.path.dirname(SR2FHIR), "sr2fhir-serve")
START_LINE = re.compile(r"^sr2fhir: serving STOW-RS at http://127\.0\.0\.1:(\d+)/dicom-web/studies$")
TMP = tempfile.mkdtemp(prefix="sr2fhir-hostile-")
MAX_BODY = 16 * 1024 * 1024
MAX_PART = 8 * 1024 * 1024
IO_TIMEOUT = 60      # s: a deadline for one answer (hang detection only)
SLOW_CONNS = 70      # slow-loris connections (more than the default limit of 64)
MIB = 1024 * 1024


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Service:
    """`sr2fhir serve` on a free port with `opts`; stopped at exit."""

    def __init__(self, name, *opts):
        self.data = os.path.join(TMP, name + "-data")
        self.logpath = os.path.join(TMP, name + ".log")
        self.cmd = [SR2FHIR, "serve", "--http", "127.0.0.1:0", "--data", self.data,
                    "--server", "http://127.0.0.1:%d/fhir" % closed_port(), "--workers", "1",
                    *opts]
        self.proc = None
        self.port = None

    def start(self):
        atexit.register(self.stop)
        with open(self.logpath, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=log,
                                         env=clean_env(), cwd=TMP)
        line = gwservice.first_line(self.proc, IO_TIMEOUT) or ""
        m = START_LINE.match(line)
        if not m:
            self.stop()
            raise AssertionError("no start-up line 'sr2fhir: serving STOW-RS at ...' (got %r, "
                                 "exit %r); log: %s" % (line, self.proc.returncode, self.log()))
        self.port = int(m.group(1))
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def log(self, n=600):
        try:
            with open(self.logpath, "rb") as f:
                return short(f.read().decode("utf-8", "replace")[-4000:], 4000)[-n:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is None or self.proc.returncode is not None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def status_field(self, key):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise AssertionError("no %s in /proc/%d/status" % (key, self.proc.pid))

    def rss_kib(self):
        return self.status_field("VmRSS")

    def threads(self):
        return len(os.listdir("/proc/%d/task" % self.proc.pid))

    def assert_alive(self):
        rc = self.proc.poll()
        assert rc is None, "the service exited (status %r); log: %s" % (rc, self.log())
        st, _, body = request(self.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                         b"Connection: close\r\n\r\n")
        assert st == 200, "GET /healthz after the case: %r %r" % (st, body[:100])


# ---------------------------------------------------------------------------------------
# Raw HTTP
# ---------------------------------------------------------------------------------------
def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_answer(s):
    """(status, headers {lower: value}, body) of one answer read from s; status None when the
    connection ended (closed or reset) before a status line."""
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        pass
    if b"\r\n\r\n" not in buf:
        return None, {}, buf
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"^HTTP/1\.[01] (\d{3})", lines[0])
    assert m, "answer line %r" % lines[0]
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "-1"))
    try:
        while n < 0 or len(body) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return int(m.group(1)), headers, body


def request(port, raw, shut=False):
    """Sends raw bytes on a new connection, (status, headers, body) of the answer."""
    s = connect(port)
    try:
        try:
            s.sendall(raw)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_answer(s)
    finally:
        s.close()


def stow_raw(ctype, body, extra=b""):
    head = (b"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAccept: application/dicom+json\r\n"
            b"Connection: close\r\nContent-Type: " + ctype.encode() + b"\r\n" + extra)
    if b"content-length" not in extra.lower() and b"transfer-encoding" not in extra.lower():
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body


CT = 'multipart/related; type="application/dicom"; boundary=hostile'


def part(data, ctype="application/dicom", boundary=b"hostile"):
    return (b"--" + boundary + b"\r\nContent-Type: " + ctype.encode() + b"\r\n\r\n" + data +
            b"\r\n")


def close_delim(boundary=b"hostile"):
    return b"--" + boundary + b"--\r\n"


def chunked(body, size=1000):
    out_ = b""
    for i in range(0, len(body), size):
        c = body[i:i + size]
        out_ += b"%x\r\n%s\r\n" % (len(c), c)
    return out_ + b"0\r\n\r\n"


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------
def expect(svc, raw, statuses, what, shut=False):
    st, _, body = request(svc.port, raw, shut=shut)
    assert st in statuses, "%s: got HTTP %r (body %r), expected %s" % (
        what, st, body[:200], " or ".join(str(x) for x in statuses))
    svc.assert_alive()
    return st, body


def malformed_cases(svc):
    not_dicom = b"this is not DICOM at all " * 40

    def t_truncated():
        expect(svc, stow_raw(CT, part(not_dicom)[:-2]), (400,), "no close delimiter")
        expect(svc, stow_raw(CT, b"--hostile\r\nContent-Type: application/dicom\r\n"), (400,),
               "ends in a part's headers")

    def t_cut_by_client():
        # declares 100,000 bytes, sends 300, closes: no answer is possible, nothing may break
        raw = stow_raw(CT, part(not_dicom)[:300], b"Content-Length: 100000\r\n")
        st, _, _ = request(svc.port, raw, shut=True)
        assert st in (None, 400), "body cut by the client: HTTP %r" % st
        svc.assert_alive()

    def t_missing_boundary():
        expect(svc, stow_raw('multipart/related; type="application/dicom"',
                             part(not_dicom) + close_delim()), (400,), "no boundary parameter")

    def t_boundary_never_appears():
        body = b"".join(b"line %d of a body without its boundary\r\n" % i for i in range(5000))
        expect(svc, stow_raw('multipart/related; type="application/dicom"; boundary=nothere',
                             body), (400,), "boundary never appears")

    def t_garbage_headers():
        body = b"--hostile\r\nthis is no header\r\n\r\nDICM\r\n" + close_delim()
        expect(svc, stow_raw(CT, body), (400,), "a header line without a colon")
        body = b"--hostile\r\nContent-Type: application/dicom\r\n\x01\x02\r\n\r\nx\r\n" + close_delim()
        expect(svc, stow_raw(CT, body), (400,), "control characters in part headers")
        body = b"--hostile\r\nX-Long: " + b"v" * 100000 + b"\r\n\r\nx\r\n" + close_delim()
        expect(svc, stow_raw(CT, body), (400, 413), "a 100 kB part header")
        body = b"--hostileXYZ\r\n\r\nx\r\n" + close_delim()
        expect(svc, stow_raw(CT, body), (400,), "garbage after a delimiter")

    def t_not_dicom():
        st, body = expect(svc, stow_raw(CT, part(not_dicom) + part(b"\0" * 200) + close_delim()),
                          (409,), "parts that are not DICOM")
        ans = json.loads(body.decode("utf-8"))
        failed = ans.get("00081198", {}).get("Value", [])
        eq(len(failed), 2, "Failed SOP Sequence (0008,1198) items")
        for item in failed:
            assert "00081197" in item, "no Failure Reason (0008,1197) in %r" % item

    def t_media_types():
        body = part(not_dicom) + close_delim()
        expect(svc, stow_raw("application/json", b"{}"), (415,), "application/json")
        expect(svc, stow_raw('multipart/related; type="image/jpeg"; boundary=hostile', body),
               (415,), "type image/jpeg")
        expect(svc, stow_raw("multipart/mixed; boundary=hostile", body), (415,),
               "multipart/mixed")
        expect(svc, stow_raw("multipart/related; boundary=\"unterminated", body), (400,),
               "an unterminated quoted boundary")

    def t_bad_chunks():
        te = b"Transfer-Encoding: chunked\r\n"
        body = part(not_dicom) + close_delim()
        for what, raw_body in (
                ("a chunk size that is not hex", b"zz\r\n" + body + b"\r\n0\r\n\r\n"),
                ("a negative chunk size", b"-5\r\nhello\r\n0\r\n\r\n"),
                ("a chunk size of 2^80", b"100000000000000000000\r\n" + body + b"\r\n0\r\n\r\n"),
                ("a chunk longer than its size", b"4\r\n" + body + b"\r\n0\r\n\r\n"),
                ("a chunk size line of 100 kB", b"1" + b"0" * 100000 + b"\r\nx\r\n0\r\n\r\n")):
            expect(svc, stow_raw(CT, raw_body, te), (400, 413), what)
        # a valid chunked body with a bad multipart inside still gets the multipart answer
        expect(svc, stow_raw(CT, chunked(part(not_dicom)), te), (400,),
               "chunked, no close delimiter")

    def t_endless_headers():
        raw = b"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-Filler-%d: %s\r\n" % (i, b"y" * 100) for i in range(20000))
        st, _, _ = request(svc.port, raw)
        assert st is None or 400 <= st < 500, "2 MB of request headers: HTTP %r" % st
        svc.assert_alive()

    test("hostile:truncated-multipart-400", t_truncated)
    test("hostile:body-cut-by-the-client", t_cut_by_client)
    test("hostile:missing-boundary-400", t_missing_boundary)
    test("hostile:boundary-never-appears-400", t_boundary_never_appears)
    test("hostile:garbage-part-headers-400", t_garbage_headers)
    test("hostile:parts-not-dicom-409", t_not_dicom)
    test("hostile:wrong-media-type-415", t_media_types)
    test("hostile:bad-chunk-sizes-4xx", t_bad_chunks)
    test("hostile:endless-request-headers", t_endless_headers)


def size_cases(svc):
    def t_declared_gib():
        rss0 = svc.rss_kib()
        head = stow_raw(CT, b"", b"Content-Length: 1073741824\r\n")
        s = connect(svc.port)
        try:
            s.sendall(head)  # headers only: the answer must come before any body byte
            st, _, body = read_answer(s)
        finally:
            s.close()
        eq(st, 413, "Content-Length: 1073741824 (headers only) %r" % body[:200])
        svc.assert_alive()
        # the same with a small body, then the client closes
        st, _, _ = request(svc.port, head + part(b"x" * 1000), shut=True)
        assert st in (None, 413), "declared 1 GiB, small body, close: HTTP %r" % st
        svc.assert_alive()
        grown = svc.rss_kib() - rss0
        assert grown < 64 * 1024, "VmRSS grew by %d KiB" % grown

    def t_stream_gib():
        rss0 = svc.rss_kib()
        s = connect(svc.port)
        sent, st = 0, None
        block = b"A" * MIB
        try:
            s.sendall(stow_raw(CT, b"", b"Transfer-Encoding: chunked\r\n"))
            first = b"--hostile\r\nContent-Type: application/dicom\r\n\r\n"
            s.sendall(b"%x\r\n%s\r\n" % (len(first), first))
            while sent < 1024 * MIB:
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    break  # the service answered (or closed): stop sending
                try:
                    s.sendall(b"%x\r\n%s\r\n" % (len(block), block))
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(block)
            st, _, _ = read_answer(s)
        finally:
            s.close()
        assert sent < MAX_BODY + 32 * MIB, (
            "%d MiB sent before the service refused the body (max-body %d MiB)" % (
                sent // MIB, MAX_BODY // MIB))
        assert st in (None, 413), "1 GiB streamed: HTTP %r" % st
        svc.assert_alive()
        grown = svc.rss_kib() - rss0
        out("INFO hostile:stream-1GiB: %d MiB sent before refusal, HTTP %r, VmRSS %+d KiB" % (
            sent // MIB, st, grown))
        assert grown < 64 * 1024, "VmRSS grew by %d KiB" % grown

    test("hostile:declared-1GiB-413-before-the-body", t_declared_gib)
    test("hostile:streamed-1GiB-refused-early-rss-bounded", t_stream_gib)


def slow_loris(svc):
    def t():
        threads0 = svc.threads()
        socks = []
        try:
            for _ in range(SLOW_CONNS):
                try:
                    socks.append(connect(svc.port))
                except OSError:
                    break
            line = b"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 64
            answered = 0
            max_threads = threads0
            for i in range(8):  # 8 rounds: one header byte per connection per second
                for s in list(socks):
                    try:
                        s.send(line[i:i + 1])
                    except OSError:
                        socks.remove(s)  # refused or closed by the service: allowed
                st, _, _ = request(svc.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                             b"Connection: close\r\n\r\n")
                answered += st == 200
                st, _, _ = request(svc.port, stow_raw(CT, b"--hostile\r\n"))
                answered += st == 400
                max_threads = max(max_threads, svc.threads())
                time.sleep(1)
            eq(answered, 16, "normal requests answered during the slow-loris")
            assert max_threads <= threads0 + 4, (
                "threads grew from %d to %d with %d slow connections" % (
                    threads0, max_threads, SLOW_CONNS))
            out("INFO hostile:slow-loris: %d slow connections, threads %d -> max %d, "
                "VmRSS %d KiB" % (len(socks), threads0, max_threads, svc.rss_kib()))
        finally:
            for s in socks:
                s.close()
        svc.assert_alive()

    test("hostile:slow-loris-others-answered-threads-bounded", t)


def connection_limit():
    def t():
        svc = Service("limited", "--max-connections", "16", "--connection-timeout", "3")
        svc.start()
        socks = []
        try:
            threads0 = svc.threads()
            for _ in range(40):
                try:
                    socks.append(connect(svc.port))
                except OSError:
                    pass
            # every silent connection is refused (closed at once) or times out: each sees
            # EOF or a reset within the deadline, none stays open
            ended = 0
            deadline = time.monotonic() + IO_TIMEOUT
            pending = list(socks)
            while pending and time.monotonic() < deadline:
                r, _, _ = select.select(pending, [], [], 1)
                for s in r:
                    try:
                        data = s.recv(4096)
                    except OSError:
                        data = b""
                    if not data or data.startswith(b"HTTP/1.1 408") or data.startswith(b"HTTP/1.1 503"):
                        pending.remove(s)
                        ended += 1
            eq(ended + (40 - len(socks)), 40, "silent connections ended by the service")
            threads = svc.threads()
            assert threads <= threads0 + 4, "threads %d -> %d" % (threads0, threads)
            svc.assert_alive()
        finally:
            for s in socks:
                s.close()
            svc.stop()

    test("hostile:connections-beyond-the-limit-refused-or-timed-out", t)


def test(name, fn, *args):
    harness.test(name, fn, *args, width=900)


def main():
    if not os.access(SERVE, os.X_OK):
        out("SKIP hostile: %s is not built (the serve command has not landed)" % SERVE)
        return 0
    svc = Service("main", "--max-body", str(MAX_BODY), "--max-part", str(MAX_PART),
                  "--max-connections", "100", "--connection-timeout", "10")
    try:
        svc.start()
    except AssertionError as e:
        out("FAIL hostile:start: %s" % short(e, 900))
        return 1
    try:
        rss0, threads0 = svc.rss_kib(), svc.threads()
        malformed_cases(svc)
        size_cases(svc)
        slow_loris(svc)
        connection_limit()

        def t_bounded():
            svc.assert_alive()
            grown = svc.rss_kib() - rss0
            out("INFO hostile: VmRSS %d -> %d KiB, VmHWM %d KiB, threads %d -> %d" % (
                rss0, svc.rss_kib(), svc.status_field("VmHWM"), threads0, svc.threads()))
            assert grown < 64 * 1024, "VmRSS grew by %d KiB over every case" % grown
            assert svc.threads() <= threads0 + 4, "threads %d -> %d" % (threads0, svc.threads())
        test("hostile:memory-and-threads-bounded-after-all", t_bounded)
    finally:
        svc.stop()
        rc = svc.proc.returncode
        harness.report(rc == 0, "hostile:clean-exit-on-sigterm", "exit status %r" % rc)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
