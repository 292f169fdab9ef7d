"""tests/lib/gwservice.py - what the gateway's crash, outage and ThreadSanitizer tests
(tests/integration/test_gateway_{crash,outage,tsan}.py) share: the `sr2fhir serve` process
(started on a free port, its start-up line parsed, SIGKILLed, restarted on the same --data,
stopped with SIGTERM), `sr2fhir queue stats|list|show|retry` on its data folder, its
/metrics, STOW-RS requests with http.client (one SR per request), and many small distinct
TID 1500 reports made with pydicom from one fixture of tests/fixtures/generate.py; and
what the other gateway tests (test_gateway, test_dimse_*, test_pull) use too: the FHIR
server tool started or the test skipped (start_fhir_server), and the end of a test
program on every path (finish: stop what runs, remove or keep its temporary folder).

A test program imports it as it imports harness:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    import gwservice
"""
import atexit
import http.client
import json
import os
import re
import select
import signal
import subprocess
import threading
import time
import uuid

import harness
from harness import SR2FHIR, clean_env, short

SERVE = os.path.join(os.path.dirname(SR2FHIR), "sr2fhir-serve")
START_LINE = re.compile(r"^sr2fhir: serving STOW-RS at http://(127\.0\.0\.1):(\d+)(/dicom-web)/studies$")
# issue 12: printed when --dicom is given (spec: with port 0 the real port)
DICOM_LINE = re.compile(r"^sr2fhir: serving DICOM \(C-STORE, C-ECHO\) as (\S+) at "
                        r"(127\.0\.0\.1):(\d+)$")
QUEUE_STATES = ("pending", "leased", "done", "dead", "not_applicable")
FINISHED = ("done", "dead", "not_applicable")
UID_ROOT = "1.2.826.0.1.3680043.10.1500.79."   # UIDs made by these tests
START_TIMEOUT = 120                             # s: the start-up line (TSan builds are slow)


def first_line(proc, timeout):
    """The first line `proc` writes to its stdout (a pipe), decoded, without the newline;
    None when it exits, closes stdout or stays silent for `timeout` seconds first."""
    buf = b""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            buf += chunk
            if b"\n" in buf:
                return buf.split(b"\n")[0].decode("utf-8", "replace")
        elif proc.poll() is not None:
            return None
    return None


def lines_until(proc, patterns, timeout, logpath=None):
    """The lines `proc` writes to its stdout (a pipe) until each regex of `patterns` matched
    one of them (those lines also looked for in the file `logpath`, where a line may go to
    standard error: after its last '---- start ' line, which Service.start writes): [match or None per pattern]; the ones still None when it exits, closes
    stdout or `timeout` s pass first."""
    found = [None] * len(patterns)
    buf = b""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()

    def look(line):
        for k, pat in enumerate(patterns):
            if found[k] is None:
                m = pat.match(line)
                if m:
                    found[k] = m

    while time.monotonic() < deadline and None in found:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                look(line.decode("utf-8", "replace").rstrip("\r"))
        elif proc.poll() is not None:
            break
        if logpath and None in found:
            try:
                with open(logpath, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
                for line in text.split("---- start ")[-1].splitlines():   # this start's
                    look(line)
            except OSError:
                pass
    return found


class Service:
    """`sr2fhir serve --http 127.0.0.1:0 --data DATA --server URL OPTS` (or `binary` with the
    same options, e.g. a ThreadSanitizer build of sr2fhir-serve); its stderr appended to LOG.
    start() may be called again after kill() or stop(): the same data folder, a new port.
    dicom_aet: also `--dicom 127.0.0.1:0 --aet AET` (issue 12); start() then waits for the
    DICOM start-up line too and dicom_address() tells where it listens."""

    def __init__(self, data, server_url, logpath, *opts, binary=None, env=None, cwd=None,
                 dicom_aet=None):
        self.data, self.logpath = data, logpath
        head = [binary] if binary else [SR2FHIR, "serve"]
        self.cmd = head + ["--http", "127.0.0.1:0", "--data", data, "--server", server_url,
                           *opts]
        self.dicom_aet = dicom_aet
        self.dicom_port = None
        if dicom_aet:
            self.cmd += ["--dicom", "127.0.0.1:0", "--aet", dicom_aet]
        self.env = env or clean_env()
        self.cwd = cwd or os.path.dirname(data)
        self.proc = None
        self.host = self.port = None
        self.starts = self.kills = 0
        self.lock = threading.Lock()
        atexit.register(self.stop)

    def start(self):
        """Start it; the start-up line. AssertionError (the log's end) when it does not print
        'sr2fhir: serving STOW-RS at http://127.0.0.1:PORT/dicom-web/studies'."""
        with open(self.logpath, "ab") as log:
            log.write(b"---- start %d\n" % (self.starts + 1))
            log.flush()
            proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=log,
                                    env=self.env, cwd=self.cwd)
        if self.dicom_aet:
            return self._start_dicom(proc)
        line = first_line(proc, START_TIMEOUT)
        m = START_LINE.match(line or "")
        if not m:
            _end(proc)
            raise AssertionError("start-up line %r (exit %r), expected 'sr2fhir: serving STOW-RS "
                                 "at http://127.0.0.1:PORT/dicom-web/studies'; log: %s" % (
                                     line, proc.returncode, self.log_tail()))
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        with self.lock:
            self.proc, self.host, self.port = proc, m.group(1), int(m.group(2))
            self.starts += 1
        return line

    def _start_dicom(self, proc):
        """start() with --dicom: both start-up lines, in either order."""
        m, d = lines_until(proc, [START_LINE, DICOM_LINE], START_TIMEOUT, self.logpath)
        if not m or not d or d.group(1) != self.dicom_aet:
            _end(proc)
            raise AssertionError(
                "start-up lines: STOW-RS %s, DICOM %s (exit %r); expected 'sr2fhir: serving "
                "STOW-RS at http://127.0.0.1:PORT/dicom-web/studies' and 'sr2fhir: serving "
                "DICOM (C-STORE, C-ECHO) as %s at 127.0.0.1:PORT'; log: %s" % (
                    m and m.group(0), d and d.group(0), proc.returncode, self.dicom_aet,
                    self.log_tail()))
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        with self.lock:
            self.proc, self.host, self.port = proc, m.group(1), int(m.group(2))
            self.dicom_port = int(d.group(3))
            self.starts += 1
        return d.group(0)

    def dicom_address(self):
        """(host, port) of the DICOM listener of the running service, or None while down."""
        with self.lock:
            return (self.host, self.dicom_port) if self.proc and self.proc.poll() is None \
                and self.dicom_port else None

    def address(self):
        """(host, port) of the running service, or None while it is down."""
        with self.lock:
            return (self.host, self.port) if self.proc and self.proc.poll() is None else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL, as a crash: nothing of it runs after this returns."""
        with self.lock:
            proc, self.proc = self.proc, None
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            self.kills += 1
        if proc:
            proc.wait(30)

    def stop(self, grace=60):
        """SIGTERM, SIGKILL after `grace` s; the exit status (None when it was not running,
        negative when killed)."""
        with self.lock:
            proc, self.proc = self.proc, None
        return _end(proc, grace) if proc else None

    def log_text(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=800):
        return short(self.log_text()[-6000:], 6000)[-n:]

    # ---- sr2fhir queue ----------------------------------------------------------------
    def queue(self, *args, check=True):
        """`sr2fhir queue ARGS --data DATA`: the CompletedProcess (text)."""
        p = subprocess.run([SR2FHIR, "queue", *args, "--data", self.data], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        if check:
            assert p.returncode == 0, "sr2fhir queue %s: exit %d: %s" % (
                " ".join(args), p.returncode, short(err))
        return p.returncode, out, err

    def stats(self):
        """{state: count} from `sr2fhir queue stats` (every state present)."""
        _, out, _ = self.queue("stats")
        got = {}
        for line in out.splitlines():
            m = re.match(r"^(\w+) (\d+)$", line.strip())
            assert m, "queue stats line %r is not 'STATE COUNT'" % line
            got[m.group(1)] = int(m.group(2))
        for s in QUEUE_STATES:
            got.setdefault(s, 0)
        return got

    def jobs(self, state=None):
        """`sr2fhir queue list [--state S]` as dicts of its columns (ID, STATE, ATTEMPTS,
        ENQUEUED, TIME, SOP_INSTANCE_UID, SOURCE, CLASS, REASON)."""
        args = ["list", "--limit", "100000"] + (["--state", state] if state else [])
        _, out, _ = self.queue(*args)
        lines = out.splitlines()
        if not lines:
            return []
        head = lines[0].split("\t")
        return [dict(zip(head, ln.split("\t"))) for ln in lines[1:] if ln.strip()]

    def wait_idle(self, finished_at_least=0, since=None, timeout=900, poll=1.0, alive=True):
        """Poll queue stats until nothing is pending or leased and at least
        `finished_at_least` more jobs are finished than in `since` (an earlier stats). The
        last stats; AssertionError after `timeout` s (a bound, not a measurement)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.stats()
            fin = sum(st[s] for s in FINISHED) - (sum(since[s] for s in FINISHED) if since else 0)
            if st["pending"] == 0 and st["leased"] == 0 and fin >= finished_at_least:
                return st
            if alive and not self.alive():
                raise AssertionError("the gateway is not running, jobs left: %s; log: %s" % (
                    st, self.log_tail()))
            if time.monotonic() > deadline:
                raise AssertionError("queue not drained within %d s: %s (%d of %d more jobs "
                                     "finished); log: %s" % (timeout, st, fin, finished_at_least,
                                                             self.log_tail()))
            time.sleep(poll)

    # ---- HTTP -------------------------------------------------------------------------
    def get(self, path, timeout=30):
        """(status, body text) of GET path on the service."""
        host, port = self.address()
        c = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        finally:
            c.close()

    def metrics(self):
        """{'name{labels}': value} of GET /metrics."""
        status, text = self.get("/metrics")
        assert status == 200, "GET /metrics: HTTP %d %s" % (status, short(text))
        got = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    got[k.strip()] = float(v)
                except ValueError:
                    pass
        return got


def _end(proc, grace=60):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
    return proc.returncode


def finish(tmp, *parts):
    """The end of a test program, on every path (its `finally`): stops each of `parts` in
    order (a Service or FHIR server: stop(); a FhirProxy: close(); a function: called;
    None: skipped; one that raises is reported as a FAIL line and the others still stop),
    then removes the folder `tmp`, or keeps it, printing '# kept TMP', when a case failed
    and SR2FHIR_KEEP_TMP is set (tmp None: none). The tests register
    `atexit.register(finish, TMP)` first thing in main, so that every path (a SKIP's early
    return, SIGTERM's SystemExit) removes it, and call finish(None, what runs...) in their
    `finally` (not `return`ed there: that would swallow the SystemExit)."""
    import shutil

    for part in parts:
        if part is None:
            continue
        end = getattr(part, "stop", None) or getattr(part, "close", None) or part
        try:
            end()
        except Exception as e:  # noqa: BLE001 - the other parts must still stop
            harness.report(False, "cleanup", "%s: %s" % (type(e).__name__, short(e, 300)))
    if tmp is not None:
        if harness.nfail and os.environ.get("SR2FHIR_KEEP_TMP"):
            harness.out("# kept %s" % tmp)
        else:
            shutil.rmtree(tmp, True)


# ---- STOW-RS ----------------------------------------------------------------------------
def multipart(parts):
    """(Content-Type, body) of multipart/related; type="application/dicom" of `parts`."""
    b = "gwtest-" + uuid.uuid4().hex
    body = b"".join(b"--%s\r\nContent-Type: application/dicom\r\n\r\n%s\r\n" % (b.encode(), d)
                    for d in parts) + b"--%s--\r\n" % b.encode()
    return 'multipart/related; type="application/dicom"; boundary=%s' % b, body


def stow(address, data, timeout=120):
    """POST one SR (bytes) to STOW-RS at address (host, port): (status, body bytes).
    OSError / http.client.HTTPException when the connection fails or no answer comes."""
    ctype, body = multipart([data])
    c = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    try:
        c.request("POST", "/dicom-web/studies", body,
                  {"Content-Type": ctype, "Accept": "application/dicom+json"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def referenced_uids(body):
    """SOP Instance UIDs of Referenced SOP Sequence (0008,1199) of a STOW answer, or None when
    the body is not DICOM JSON."""
    try:
        obj = json.loads(body.decode("utf-8"))
        items = obj.get("00081199", {}).get("Value", []) or []
        return {i["00081155"]["Value"][0] for i in items}
    except (ValueError, KeyError, AttributeError, IndexError, TypeError):
        return None


# ---- reports ----------------------------------------------------------------------------
BASE_FIXTURE = "rules_notz.dcm"   # 2 Observations, a Device and a Practitioner (shared)


def make_srs(n, workdir, base=BASE_FIXTURE):
    """n copies of a generate.py fixture, each with its own SOP Instance, Study and Series
    UIDs (so each converts to its own Observations), as files in workdir/srs: a list of
    (sop_instance_uid, path, bytes)."""
    import pydicom
    from pydicom.uid import generate_uid
    fix = os.path.join(workdir, "fixtures")
    p = harness.run_fixture_script("generate.py", fix)
    assert p.returncode == 0, "generate.py: %s" % short(p.stderr.decode("utf-8", "replace"))
    outdir = os.path.join(workdir, "srs")
    os.makedirs(outdir, exist_ok=True)
    srs = []
    for i in range(n):
        ds = pydicom.dcmread(os.path.join(fix, base))
        uid = generate_uid(prefix=UID_ROOT)
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.StudyInstanceUID = generate_uid(prefix=UID_ROOT)
        ds.SeriesInstanceUID = generate_uid(prefix=UID_ROOT)
        path = os.path.join(outdir, "sr_%05d.dcm" % i)
        ds.save_as(path, write_like_original=False)
        with open(path, "rb") as f:
            srs.append((uid, path, f.read()))
    return srs


def convert_all(paths, workdir):
    """The Bundles `sr2fhir convert` makes of `paths` (one run into a folder), in order."""
    src = os.path.join(workdir, "convert-in")
    dst = os.path.join(workdir, "convert-out")
    os.makedirs(src, exist_ok=True)
    for i, p in enumerate(paths):
        os.symlink(p, os.path.join(src, "%06d.dcm" % i))
    p = subprocess.run([SR2FHIR, "convert", "-q", src, "-o", dst], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=900)
    assert p.returncode == 0, "sr2fhir convert: exit %d: %s" % (
        p.returncode, short(p.stderr.decode("utf-8", "replace")))
    bundles = []
    for i in range(len(paths)):
        with open(os.path.join(dst, "%06d.json" % i), encoding="utf-8") as f:
            bundles.append(json.load(f))
    return bundles


def per_sr_ids(bundles, rtype="Observation"):
    """[set of `rtype` ids] per Bundle; AssertionError when two Bundles share one (then the
    counts could not tell one SR's resources from another's)."""
    seen, out = {}, []
    for i, b in enumerate(bundles):
        ids = {e["resource"]["id"] for e in b.get("entry", [])
               if e["resource"]["resourceType"] == rtype}
        assert ids, "Bundle %d has no %s" % (i, rtype)
        for x in ids:
            assert x not in seen, "%s/%s in Bundles %d and %d" % (rtype, x, seen[x], i)
            seen[x] = i
        out.append(ids)
    return out


def prepare(name, n_srs, workdir, serve=None):
    """The common start of the crash, outage and TSan tests: their prerequisites, n_srs
    distinct SRs with what `sr2fhir convert` makes of each (each SR's Observations its own)
    and a started FHIR server tool (R5). Returns (None, srs, bundles, server), or (exit code,
    None, None, None) after printing the SKIP line (a tool absent) or the FAIL line.
    serve: the sr2fhir-serve to check for (default SERVE; the TSan test checks its own)."""
    import shutil

    def stop(rc, line):
        harness.out(line)
        return rc, None, None, None

    if not harness.has_pydicom():
        return stop(0, "SKIP %s: %s has no pydicom (apt-get install python3-pydicom)"
                    % (name, harness.PYTHON))
    if not os.access(SR2FHIR, os.X_OK):
        return stop(1, "FAIL %s: no executable %s (run make)" % (name, SR2FHIR))
    if serve is None and not os.access(SERVE, os.X_OK):
        return stop(0, "SKIP %s: no executable %s: the gateway service is not built"
                    % (name, SERVE))
    if not os.path.exists(harness.FHIR_SERVER_SH):
        return stop(0, "SKIP %s: %s is absent (../shared not beside the checkout)"
                    % (name, harness.FHIR_SERVER_SH))
    if not shutil.which("node") or not shutil.which("npm"):
        return stop(0, "SKIP %s: node and npm are needed by the FHIR server "
                    "(../shared/tools/fhir-server)" % name)
    try:
        srs = make_srs(n_srs, workdir)
        bundles = convert_all([p for _, p, _ in srs], workdir)
        per_sr_ids(bundles)
    except Exception as e:  # noqa: BLE001 - any failure of the set-up is one FAIL line
        return stop(1, "FAIL %s-setup: %s" % (name, " ".join(short(e, 600).split())))
    srv, rc = start_fhir_server(name, os.path.join(workdir, "fhir"))
    return (rc, None, None, None) if srv is None else (None, srs, bundles, srv)


def start_fhir_server(name, workdir):
    """The FHIR server tool (R5, fhirserver.FhirServer) started in `workdir`: (server, None);
    or (None, exit code) after printing 'SKIP NAME: ...' (npm could not install it: exit
    code as harness says so far) or 'FAIL NAME-fhir-server: ...' (exit code 1)."""
    import fhirserver

    srv = fhirserver.FhirServer("R5", workdir)
    try:
        srv.start()
    except RuntimeError as e:
        if "npm install failed" in str(e):
            harness.report(None, name, short(e))
            return None, harness.exit_code()
        harness.report(False, name + "-fhir-server", short(e, 600))
        return None, 1
    return srv, None


# ---- a FHIR server that fails on demand -----------------------------------------------
class FhirProxy:
    """An HTTP proxy on a free loopback port in front of the FHIR server tool, which the test
    switches between modes:
      "pass"    forward every request (the FHIR server's answer, whole);
      "down"    the port refuses connections (listener closed) and every open connection is
                closed: the FHIR server is gone (an outage);
      "401"     answer 401 with an OperationOutcome to everything (credentials refused);
      "reject"  answer 400 with an OperationOutcome to a POST whose body contains `marker`
                (one SR's transaction), forward the rest.
    `seen` counts requests per (mode, method); `answered` counts statuses sent."""

    def __init__(self, upstream):
        import urllib.parse
        u = urllib.parse.urlsplit(upstream)
        self.up_host, self.up_port, self.path = u.hostname, u.port, u.path
        self.mode, self.marker = "pass", None
        self.lock = threading.Lock()
        self.seen, self.answered = {}, {}
        self.conns = set()
        self.httpd = None
        self.port = 0
        atexit.register(self.close)

    @property
    def base(self):
        return "http://127.0.0.1:%d%s" % (self.port, self.path)

    def count(self, table, key):
        with self.lock:
            table[key] = table.get(key, 0) + 1

    def listen(self):
        import http.server
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with proxy.lock:
                    proxy.conns.add(self.connection)

            def finish(self):
                with proxy.lock:
                    proxy.conns.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def answer(self, status, body, ctype="application/fhir+json", extra=()):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                proxy.count(proxy.answered, status)

            def outcome(self, status, code, text):
                self.answer(status, json.dumps({
                    "resourceType": "OperationOutcome", "issue": [
                        {"severity": "error", "code": code, "diagnostics": text}]}).encode(),
                    extra=[("WWW-Authenticate", 'Bearer realm="test"')] if status == 401 else [])

            def handle_any(self):
                data = self.body()
                mode = proxy.mode
                proxy.count(proxy.seen, (mode, self.command))
                if mode == "down":
                    self.close_connection = True
                    return
                if mode == "401":
                    return self.outcome(401, "login", "test proxy: credentials refused")
                if (mode == "reject" and self.command == "POST" and proxy.marker
                        and proxy.marker.encode() in data):
                    return self.outcome(400, "invalid", "test proxy: this transaction is "
                                        "refused")
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                                "expect", "content-length", "host")}
                c = http.client.HTTPConnection(proxy.up_host, proxy.up_port, timeout=300)
                try:
                    c.request(self.command, self.path, data if data or self.command in (
                        "POST", "PUT") else None, headers)
                    r = c.getresponse()
                    rbody = r.read()
                    keep = [(k, v) for k, v in r.getheaders()
                            if k.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                                 "content-length", "content-type")]
                    self.answer(r.status, rbody, r.getheader("Content-Type") or
                                "application/fhir+json", keep)
                except (OSError, http.client.HTTPException):
                    self.close_connection = True
                finally:
                    c.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any

        for _ in range(100):
            try:
                srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
                break
            except OSError:
                if not self.port:
                    raise
                time.sleep(0.1)          # the port was just closed: try again shortly
        else:
            raise AssertionError("test proxy: cannot listen on port %d again" % self.port)
        srv.daemon_threads = True
        self.port = srv.server_address[1]
        self.httpd = srv
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()
        return self.base

    def down(self):
        """The outage: stop listening, close every open connection."""
        import socket
        self.mode = "down"
        srv, self.httpd = self.httpd, None
        if srv:
            srv.shutdown()
            srv.server_close()
        with self.lock:
            conns = list(self.conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def up(self, mode="pass", marker=None):
        self.mode, self.marker = mode, marker
        if self.httpd is None:
            self.listen()

    def set(self, mode, marker=None):
        self.mode, self.marker = mode, marker

    def close(self):
        srv, self.httpd = self.httpd, None
        if srv:
            srv.shutdown()
            srv.server_close()
