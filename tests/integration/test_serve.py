#!/usr/bin/python3
"""tests/integration/test_serve.py - `sr2fhir serve` as a service (issue 11, docs/gateway.md
"Running the service"): the start-up line and port 0, usage errors (one line, exit 2, nothing
created), a port in use (exit 3), the config file (its keys are the options; the command
line wins), SIGTERM/SIGINT (exit 0), /healthz, /readyz (200 with a reachable FHIR server,
503 with the reason when it is not), /metrics (the documented names), 404/405, bearer
tokens (401 without or with a wrong token, accepted with the right one), TLS (a self-signed
certificate made here with openssl: curl --cacert works, plain HTTP to the TLS port gets no
answer) and required client certificates (none or one from another CA refused).

Every service started here is stopped (SIGTERM, then SIGKILL) even when a case fails; the
FHIR server tool (../shared/tools/fhir-server) is used for the /readyz 200 case and skipped
with the reason when absent. Nothing is timed: waits have generous bounds and count events.

Environment: ROOT, BUILD, SR2FHIR (sr2fhir-serve is beside it), SHARED.
"""
import atexit
import os
import queue
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import SR2FHIR, SkipTest, clean_env, eq, test  # noqa: E402

SERVE = os.environ.get("SR2FHIR_SERVE") or os.path.join(os.path.dirname(SR2FHIR), "sr2fhir-serve")
LINE = re.compile(r"^sr2fhir: serving STOW-RS at (https?)://127\.0\.0\.1:(\d+)/dicom-web/studies$")
TMP = tempfile.mkdtemp(prefix="s2f-serve-test-")
atexit.register(shutil.rmtree, TMP, True)
CLOSED_FHIR = None  # a FHIR URL on a port nobody listens on (set in main)
running = []        # every Service started, stopped at exit


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tmpdir(name):
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    return d


class Service:
    """sr2fhir-serve with `args`; start() waits (bounded) for the start-up line(s)."""

    def __init__(self, *args, env=None, lines=1):
        self.args = [SERVE, *args]
        self.env = env or clean_env()
        self.lines = lines
        self.p = None
        self.urls = []
        self.stderr_path = os.path.join(TMP, "serve-%d.err" % len(running))

    def start(self, timeout=60):
        self.err = open(self.stderr_path, "wb")
        self.p = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.err,
                                  env=self.env)
        running.append(self)
        got = queue.Queue()

        def reader():
            for raw in self.p.stdout:
                got.put(raw.decode("utf-8", "replace").rstrip("\n"))
            got.put(None)
        threading.Thread(target=reader, daemon=True).start()
        while len(self.urls) < self.lines:
            try:
                line = got.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError("no start-up line within %d s: %s" % (timeout, self.stderr()))
            if line is None:
                raise AssertionError("exited %s before its start-up line: %s" % (
                    self.p.wait(timeout=60), self.stderr()))
            m = LINE.match(line)
            assert m, "start-up line %r does not match %s" % (line, LINE.pattern)
            self.urls.append((m.group(1), int(m.group(2))))
        return self

    def base(self, i=0):
        scheme, port = self.urls[i]
        return "%s://127.0.0.1:%d" % (scheme, port)

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return " ".join(f.read().decode("utf-8", "replace").split())[-600:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends sig; the exit code (SIGKILL after `timeout` s: then an AssertionError)."""
        if self.p is None or self.p.poll() is not None:
            return self.p.returncode if self.p else None
        self.p.send_signal(sig)
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("did not stop within %d s after signal %d" % (timeout, sig))
        finally:
            self.err.close()


def stop_all():
    for s in running:
        if s.p and s.p.poll() is None:
            s.p.kill()
            s.p.wait()


atexit.register(stop_all)


def run_serve(*args, env=None, timeout=60):
    """sr2fhir-serve that is expected to exit at once (usage or I/O errors)."""
    return subprocess.run([SERVE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env or clean_env(), timeout=timeout)


def one_line_exit(p, code, *needles):
    err = p.stderr.decode("utf-8", "replace")
    eq(p.returncode, code, "exit code (stderr %r)" % err)
    eq(p.stdout, b"", "stdout")
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sr2fhir: "), "want one error line: %r" % err
    for n in needles:
        assert n in lines[0], "%r not in %r" % (n, lines[0])


def curl(url, *opts, method=None, data=None):
    """(status, headers text, body bytes); status 0 when curl got no HTTP answer (with
    curl's exit code in headers)."""
    hdr = os.path.join(TMP, "curl.h")
    body = os.path.join(TMP, "curl.b")
    for p in (hdr, body):
        if os.path.exists(p):
            os.unlink(p)
    cmd = ["curl", "-sS", "--max-time", "60", "-o", body, "-D", hdr, "-w", "%{http_code}"]
    if method:
        cmd += ["-X", method]
    if data is not None:
        cmd += ["--data-binary", "@-"]
    p = subprocess.run(cmd + list(opts) + [url], input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=clean_env(), timeout=120)
    code = int(p.stdout.decode() or "0") if p.returncode == 0 else 0
    h = open(hdr, encoding="latin-1").read() if os.path.exists(hdr) else "curl exit %d" % p.returncode
    b = open(body, "rb").read() if os.path.exists(body) else b""
    return code, h, b


def minimal(name, *extra, server=None):
    """The minimal form: --http 127.0.0.1:0 --data DIR --server URL."""
    return ["--http", "127.0.0.1:0", "--data", os.path.join(tmpdir(name), "data"),
            "--server", server or CLOSED_FHIR, *extra]


# ---- start, stop, usage ------------------------------------------------------------------

def t_startup_line_and_port_0():
    data = os.path.join(TMP, "start", "a", "b", "data")  # missing parents are made too
    s = Service("--http", "127.0.0.1:0", "--data", data, "--server", CLOSED_FHIR).start()
    scheme, port = s.urls[0]
    eq(scheme, "http", "scheme")
    assert port > 0, "port 0 must be replaced by the bound port"
    code, _, body = curl(s.base() + "/healthz")
    eq((code, body), (200, b"ok\n"), "GET /healthz on the announced port")
    for p in ("queue.sqlite", "incoming", "audit.jsonl"):
        assert os.path.exists(os.path.join(data, p)), "DIR/%s not created" % p
    eq(oct(os.stat(data).st_mode & 0o777), "0o700", "data folder mode")
    eq(s.stop(), 0, "exit code after SIGTERM")


def t_sigterm_sigint_exit_0():
    for sig in (signal.SIGTERM, signal.SIGINT):
        s = Service(*minimal("sig%d" % sig)).start()
        port = s.urls[0][1]
        # an idle keep-alive connection must not hold the shutdown
        idle = socket.create_connection(("127.0.0.1", port))
        eq(s.stop(sig), 0, "exit code after signal %d (%s)" % (sig, s.stderr()))
        idle.close()
        with socket.socket() as c:
            assert c.connect_ex(("127.0.0.1", port)) != 0, "still listening after exit"


def wait_for(cond, what, polls=600):
    for _ in range(polls):  # 0.1 s apart: a bound, not a measurement
        if cond():
            return
        threading.Event().wait(0.1)
    raise AssertionError("never happened: %s" % what)


def t_sigterm_with_request_in_flight():
    """A STOW-RS whose body never completes does not hold the stop past --stop-grace: exit 0,
    and nothing of it was acknowledged or queued."""
    d = tmpdir("inflight")
    s = Service(*minimal("inflight", "--stop-grace", "1", "--connection-timeout", "600")).start()
    c = socket.create_connection(("127.0.0.1", s.urls[0][1]))
    try:
        c.sendall(b"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/"
                  b"related; type=\"application/dicom\"; boundary=b\r\nContent-Length: 100000"
                  b"\r\n\r\n--b\r\nContent-Type: application/dicom\r\n\r\n" + b"x" * 1000)
        eq(curl(s.base() + "/healthz")[0], 200, "healthz while the upload hangs")
        eq(s.stop(), 0, "exit code with a request in flight")
        c.settimeout(60)
        answer = c.recv(65536)
        assert b"200 OK" not in answer and b"202" not in answer, \
            "the cut request was acknowledged: %r" % answer[:200]
    finally:
        c.close()
    jobs = subprocess.run([SR2FHIR, "queue", "stats", "--data", os.path.join(d, "data")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if jobs.returncode == 0:
        assert b"pending 0" in jobs.stdout, "a job from a cut request: %r" % jobs.stdout


def t_sighup_reopens_log():
    d = tmpdir("hup")
    log = os.path.join(d, "serve.log")
    s = Service(*minimal("hup", "--log", log)).start()
    try:
        os.rename(log, log + ".1")
        s.p.send_signal(signal.SIGHUP)
        wait_for(lambda: os.path.exists(log) and b"log file reopened" in open(log, "rb").read(),
                 "a new log file after SIGHUP")
        assert s.p.poll() is None, "SIGHUP stopped the service"
    finally:
        eq(s.stop(), 0, "exit code")
    assert b"stopped" in open(log, "rb").read(), "later lines go to the new file"
    assert b"serving STOW-RS" in open(log + ".1", "rb").read(), "earlier lines in the old one"


def t_usage_errors():
    d = os.path.join(tmpdir("usage"), "data")
    one_line_exit(run_serve("--http", "127.0.0.1:0", "--server", CLOSED_FHIR), 2, "--data")
    one_line_exit(run_serve("--http", "127.0.0.1:0", "--data", d), 2, "--server")
    one_line_exit(run_serve("--data", d, "--server", CLOSED_FHIR), 2, "--http")
    one_line_exit(run_serve(*minimal("usage", "--bogus")), 2, "unknown option '--bogus'")
    one_line_exit(run_serve(*minimal("usage", "--workers", "0")), 2, "--workers")
    one_line_exit(run_serve(*minimal("usage", "--token", "x")), 2, "secrets")
    one_line_exit(run_serve("--https", "127.0.0.1:0", "--data", d, "--server", CLOSED_FHIR), 2,
                  "--tls-cert")
    one_line_exit(run_serve("--http", "127.0.0.1", "--data", d, "--server", CLOSED_FHIR), 2,
                  "HOST:PORT")
    one_line_exit(run_serve("--http", "0.0.0.0:0", "--data", d, "--server", CLOSED_FHIR), 2,
                  "loopback", "--allow-http")
    one_line_exit(run_serve("--http", "127.0.0.1:0", "--data", d, "--server",
                            "http://fhir.example.org/r5"), 2, "plain http")
    one_line_exit(run_serve("--http", "127.0.0.1:0", "--data", d, "--server", CLOSED_FHIR,
                            "--tokens", os.path.join(TMP, "no-tokens")), 3, "no-tokens")
    assert not os.path.exists(d), "a refused start created the data folder"
    p = run_serve("--help")
    eq(p.returncode, 0, "--help exit code")
    assert b"--max-connections" in p.stdout and b"--config" in p.stdout, "help text"


def t_allow_http_binds_any_address():
    s = Service("--http", "0.0.0.0:0", "--allow-http", "--data",
                os.path.join(tmpdir("anyaddr"), "data"), "--server", CLOSED_FHIR)
    s.args = [a for a in s.args]
    s.p = subprocess.Popen(s.args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           env=clean_env())
    running.append(s)
    line = s.p.stdout.readline().decode()
    assert re.match(r"^sr2fhir: serving STOW-RS at http://0\.0\.0\.0:\d+/dicom-web/studies$",
                    line), "start-up line %r" % line
    s.p.send_signal(signal.SIGTERM)
    eq(s.p.wait(timeout=60), 0, "exit code")


def t_port_in_use_exit_3():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        d = os.path.join(tmpdir("inuse"), "data")
        one_line_exit(run_serve("--http", "127.0.0.1:%d" % port, "--data", d, "--server",
                                CLOSED_FHIR), 3, "cannot listen")


def t_config_file():
    d = tmpdir("config")
    cfg = os.path.join(d, "serve.conf")
    with open(cfg, "w") as f:
        f.write("# the gateway\n\nhttp = 127.0.0.1:0\n  data = %s/data  \nserver = %s\n"
                "workers = 2\nlog-level = debug\nlog = %s/serve.log\nkeep-done = 3600\n"
                "insecure = no\n" % (d, CLOSED_FHIR, d))
    s = Service("--config", cfg).start()
    eq(curl(s.base() + "/healthz")[0], 200, "healthz of the service configured by file")
    eq(s.stop(), 0, "exit code")
    log = open(os.path.join(d, "serve.log")).read()
    assert "serving STOW-RS at " + s.base() in log, "the log key was not used: %r" % log[:300]
    assert os.path.exists(os.path.join(d, "data", "queue.sqlite")), "the data key was not used"
    # the command line wins over the file: a data folder that cannot be made is overridden
    with open(cfg, "w") as f:
        f.write("http = 127.0.0.1:0\ndata = /proc/no/such/folder\nserver = %s\n" % CLOSED_FHIR)
    one_line_exit(run_serve("--config", cfg), 3, "/proc/no/such/folder")
    s = Service("--config", cfg, "--data", os.path.join(d, "data2")).start()
    eq(s.stop(), 0, "exit code with --data over the file's data")
    # errors name the file and line
    for text, needle in (("http = 127.0.0.1:0\nbogus = 1\n", "serve.conf:2: unknown key 'bogus'"),
                         ("workers = many\n", "--workers"),
                         ("just words\n", "serve.conf:1: not a line 'key = value'"),
                         ("token = secret\n", "secrets"),
                         ("allow-http = maybe\n", "yes or no")):
        with open(cfg, "w") as f:
            f.write(text)
        one_line_exit(run_serve("--config", cfg, *minimal("config")), 2, needle)
    # a flag in the file: allow-http = yes lets a non-loopback plain listener start
    with open(cfg, "w") as f:
        f.write("allow-http = yes\n")
    p = subprocess.Popen([SERVE, "--config", cfg, "--http", "0.0.0.0:0", "--data",
                          os.path.join(d, "data3"), "--server", CLOSED_FHIR],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=clean_env())
    try:
        line = p.stdout.readline().decode()
        assert "serving STOW-RS at http://0.0.0.0:" in line, "allow-http from the file: %r" % line
        p.send_signal(signal.SIGTERM)
        eq(p.wait(timeout=60), 0, "exit code")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    one_line_exit(run_serve("--config", os.path.join(d, "absent.conf"), *minimal("config")), 3,
                  "absent.conf")


# ---- the HTTP endpoints ----------------------------------------------------------------------

def t_routes(s):
    code, h, body = curl(s.base() + "/healthz")
    eq((code, body), (200, b"ok\n"), "/healthz")
    eq(curl(s.base() + "/nope")[0], 404, "GET /nope")
    eq(curl(s.base() + "/healthz", method="DELETE")[0], 405, "DELETE /healthz")
    code, h, _ = curl(s.base() + "/dicom-web/studies")
    eq(code, 405, "GET /dicom-web/studies")
    assert re.search(r"(?im)^allow: POST", h), "405 without Allow: POST: %r" % h


def t_readyz_503_closed_port(s):
    code, _, body = curl(s.base() + "/readyz")
    eq(code, 503, "/readyz with the FHIR server on a closed port")
    assert body.startswith(b"not ready: FHIR server not reachable"), "reason: %r" % body


def fixture_sr():
    path = os.path.join(harness.FIX, "explicit_le.dcm")
    if not os.path.exists(path):
        raise SkipTest("no %s (make fixtures)" % path)
    return open(path, "rb").read()


def stow_one(s, sr):
    body = (b"--XyZb\r\nContent-Type: application/dicom\r\n\r\n" + sr + b"\r\n--XyZb--\r\n")
    return curl(s.base() + "/dicom-web/studies", "-H", "Content-Type: multipart/related; "
                "type=\"application/dicom\"; boundary=XyZb", data=body)


def metric_values(s):
    code, _, body = curl(s.base() + "/metrics")
    eq(code, 200, "/metrics")
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def t_stow_queued_while_fhir_down(s):
    """A STOW-RS with the FHIR server unreachable is acknowledged and waits in the queue."""
    code, _, body = stow_one(s, fixture_sr())
    eq(code, 200, "STOW-RS of one SR (%r)" % body[:200])
    v = metric_values(s)
    eq(v["sr2fhir_stored_total"], 1.0, "stored_total")
    eq(v['sr2fhir_queue_jobs{state="pending"}'] + v['sr2fhir_queue_jobs{state="leased"}'], 1.0,
       "jobs waiting for the unreachable FHIR server")
    eq(v['sr2fhir_queue_jobs{state="done"}'], 0.0, "jobs done")


def t_readyz_200_reachable():
    if not os.path.exists(harness.FHIR_SERVER_SH):
        raise SkipTest("no FHIR server tool at %s" % harness.FHIR_SERVER_SH)
    tool = harness.FhirServerTool("R5", tmpdir("fhir"))
    try:
        base = tool.start()
    except RuntimeError as e:
        raise SkipTest(str(e)[:300])
    try:
        s = Service(*minimal("ready", server=base)).start()
        code, _, body = curl(s.base() + "/readyz")
        eq((code, body), (200, b"ok\n"), "/readyz with a reachable FHIR server")
        if os.path.exists(os.path.join(harness.FIX, "explicit_le.dcm")):
            eq(stow_one(s, fixture_sr())[0], 200, "STOW-RS of one SR")
            for _ in range(600):  # polls, 0.1 s apart: the worker delivers it
                v = metric_values(s)
                if v["sr2fhir_delivered_total"] >= 1:
                    break
                threading.Event().wait(0.1)
            eq(v["sr2fhir_delivered_total"], 1.0, "delivered_total after one STOW-RS")
            eq(v['sr2fhir_queue_jobs{state="done"}'], 1.0, "done jobs")
        eq(s.stop(), 0, "exit code")
    finally:
        tool.stop()


METRIC_NAMES = ("sr2fhir_stow_requests_total", "sr2fhir_received_total", "sr2fhir_stored_total",
                "sr2fhir_refused_total", "sr2fhir_busy_total", "sr2fhir_receive_seconds_sum",
                "sr2fhir_delivered_total", "sr2fhir_not_applicable_total",
                'sr2fhir_failed_total{class="transient"}', 'sr2fhir_failed_total{class="auth"}',
                'sr2fhir_failed_total{class="permanent"}', "sr2fhir_dead_total",
                "sr2fhir_deliver_seconds_count", "sr2fhir_delivery_paused",
                'sr2fhir_queue_jobs{state="pending"}', 'sr2fhir_queue_jobs{state="dead"}',
                "sr2fhir_queue_oldest_age_seconds")


def t_metrics(s):
    code, h, body = curl(s.base() + "/metrics")
    eq(code, 200, "/metrics")
    assert re.search(r"(?im)^content-type: text/plain; version=0\.0\.4", h), h
    text = body.decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    for n in METRIC_NAMES:
        assert n in values, "%s missing from /metrics" % n
    eq(values['sr2fhir_queue_jobs{state="pending"}'], 0.0, "pending jobs of a new queue")


GARBAGE_PART = b"--b\r\nContent-Type: application/dicom\r\n\r\nnot dicom\r\n--b--\r\n"


def t_tokens():
    d = tmpdir("tokens")
    tok = os.path.join(d, "tokens")
    with open(tok, "w") as f:
        f.write("# senders\nai-box  abcdefghijklmnop0123456789\npacs QRSTUVWXYZ-._~+/=0123\n")
    s = Service(*minimal("tokens", "--tokens", tok)).start()
    try:
        url = s.base() + "/dicom-web/studies"
        ct = ["-H", "Content-Type: multipart/related; type=\"application/dicom\"; boundary=b"]
        code, h, _ = curl(url, *ct, data=b"--b--\r\n")
        eq(code, 401, "STOW-RS without a token")
        assert re.search(r"(?im)^www-authenticate: Bearer", h), "401 without WWW-Authenticate"
        code, h, _ = curl(url, *ct, "-H", "Authorization: Bearer abcdefghijklmnop0123456780",
                          data=b"--b--\r\n")
        eq(code, 401, "STOW-RS with a wrong token")
        assert 'error="invalid_token"' in h, "wrong token's WWW-Authenticate: %r" % h
        eq(curl(url, *ct, "-H", "Authorization: Basic YTpi", data=b"--b--\r\n")[0], 401,
           "STOW-RS with basic credentials")
        for good in ("abcdefghijklmnop0123456789", "QRSTUVWXYZ-._~+/=0123"):
            code, _, body = curl(url, *ct, "-H", "Authorization: Bearer " + good,
                                 data=GARBAGE_PART)
            assert code not in (0, 401, 403), "STOW-RS with the right token got %d %r" % (
                code, body[:200])
        audit = open(os.path.join(TMP, "tokens", "data", "audit.jsonl"), "rb").read()
        assert b'"ai-box"' in audit and b'"pacs"' in audit, \
            "the token names are not the senders in the audit log: %r" % audit[:400]
        eq(curl(s.base() + "/healthz")[0], 200, "/healthz needs no token")
        eq(curl(s.base() + "/metrics")[0], 200, "/metrics needs no token")
    finally:
        eq(s.stop(), 0, "exit code")
    for text, needle in (("ai-box short\n", "tokens:1"), ("a b c\n", "tokens:1"),
                         ("a abcdefghijklmnop0123\nb abcdefghijklmnop0123\n", "tokens:2"),
                         ("# none\n", "no token")):
        with open(tok, "w") as f:
            f.write(text)
        one_line_exit(run_serve(*minimal("tokens", "--tokens", tok)), 2, needle)


def closed_by_server(sock):
    """1 when the server has closed `sock` (EOF waiting), 0 when it is still open."""
    sock.setblocking(False)
    try:
        return 1 if sock.recv(1) == b"" else 0
    except BlockingIOError:
        return 0
    finally:
        sock.setblocking(True)


def t_connection_limit_and_idle_timeout():
    """--max-connections: at the limit no further connection is served (it waits in the
    listen backlog) until one closes; --connection-timeout: idle connections are closed by
    the server. Ordering, not time: when the third connection gets its answer, the idle
    ones that held the limit must already be closed."""
    s = Service(*minimal("limits", "--max-connections", "2", "--http-threads", "1",
                         "--connection-timeout", "2")).start()
    port = s.urls[0][1]
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    try:
        eq([closed_by_server(c) for c in held], [0, 0], "idle connections just opened")
        code, _, _ = curl(s.base() + "/healthz")
        eq(code, 200, "the third connection, once a slot is free")
        assert sum(closed_by_server(c) for c in held) >= 1, \
            "the third connection was served while 2 connections held the limit of 2"
        for c in held:  # both are closed by the server in the end (bounded wait)
            c.settimeout(60)
            eq(c.recv(1), b"", "an idle connection past --connection-timeout")
    finally:
        for c in held:
            c.close()
        eq(s.stop(), 0, "exit code")
    # the control: without the limit the third connection is served while both are open
    s = Service(*minimal("limits2", "--connection-timeout", "30")).start()
    held = [socket.create_connection(("127.0.0.1", s.urls[0][1])) for _ in range(2)]
    try:
        eq(curl(s.base() + "/healthz")[0], 200, "a third connection, limit 64")
        eq([closed_by_server(c) for c in held], [0, 0], "idle connections under the limit")
    finally:
        for c in held:
            c.close()
        eq(s.stop(), 0, "exit code")


# ---- TLS -------------------------------------------------------------------------------------

def openssl(*args):
    p = subprocess.run(["openssl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    assert p.returncode == 0, "openssl %s: %s" % (args[0], p.stderr.decode()[-300:])


def make_ca(d, name):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
            "-days", "2", "-subj", "/CN=%s" % name)
    return key, crt


def make_signed(d, name, ca_key, ca_crt, ext):
    key, csr, crt = (os.path.join(d, name + s) for s in (".key", ".csr", ".pem"))
    extfile = os.path.join(d, name + ".ext")
    with open(extfile, "w") as f:
        f.write(ext + "\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
            "/O=sr2fhir tests/CN=%s" % name)
    openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", extfile)
    return key, crt


def tls_material():
    if not shutil.which("openssl") or not shutil.which("curl"):
        raise SkipTest("openssl or curl not installed")
    d = tmpdir("tls")
    if not os.path.exists(os.path.join(d, "server.pem")):
        ca_key, ca = make_ca(d, "ca")
        make_signed(d, "server", ca_key, ca, "subjectAltName=IP:127.0.0.1\n"
                    "extendedKeyUsage=serverAuth")
        make_signed(d, "client", ca_key, ca, "extendedKeyUsage=clientAuth")
        other_key, other = make_ca(d, "otherca")
        make_signed(d, "stranger", other_key, other, "extendedKeyUsage=clientAuth")
    return d


def t_tls():
    d = tls_material()
    ca = os.path.join(d, "ca.pem")
    s = Service("--https", "127.0.0.1:0", "--tls-cert", os.path.join(d, "server.pem"),
                "--tls-key", os.path.join(d, "server.key"), "--data",
                os.path.join(tmpdir("tlsdata"), "data"), "--server", CLOSED_FHIR).start()
    try:
        eq(s.urls[0][0], "https", "start-up line scheme")
        code, _, body = curl(s.base() + "/healthz", "--cacert", ca)
        eq((code, body), (200, b"ok\n"), "https /healthz with --cacert")
        eq(curl(s.base() + "/healthz")[0], 0, "https with the system CAs (must not verify)")
        plain = "http://127.0.0.1:%d/healthz" % s.urls[0][1]
        eq(curl(plain)[0], 0, "plain HTTP to the TLS port")
        code, _, _ = curl(s.base() + "/healthz", "--cacert", ca, "--tls-max", "1.1")
        eq(code, 0, "TLS 1.1 must be refused")
    finally:
        eq(s.stop(), 0, "exit code")


def t_tls_both_listeners():
    d = tls_material()
    s = Service("--http", "127.0.0.1:0", "--https", "127.0.0.1:0", "--tls-cert",
                os.path.join(d, "server.pem"), "--tls-key", os.path.join(d, "server.key"),
                "--data", os.path.join(tmpdir("both"), "data"), "--server", CLOSED_FHIR,
                lines=2).start()
    eq(sorted(u[0] for u in s.urls), ["http", "https"], "one start-up line per listener")
    eq(s.stop(), 0, "exit code")


def t_connection_limit_both_listeners():
    """--max-connections is the total over both listeners (issue 11 gap 3): with
    --max-connections 2, two connections to the HTTP listener and one to the HTTPS listener,
    each mid-request (headers not finished): exactly one of the three is closed by the
    server at once, the other two stay open (per listener, all three would be served);
    once one closes, HTTPS is served again. Ordering and bounds, not time."""
    d = tls_material()
    ca = os.path.join(d, "ca.pem")
    s = Service("--http", "127.0.0.1:0", "--https", "127.0.0.1:0", "--tls-cert",
                os.path.join(d, "server.pem"), "--tls-key", os.path.join(d, "server.key"),
                "--data", os.path.join(tmpdir("bothlimit"), "data"), "--server", CLOSED_FHIR,
                "--max-connections", "2", "--connection-timeout", "120", lines=2).start()
    ports = dict(s.urls)
    conns = []
    try:
        for _ in range(2):
            c = socket.create_connection(("127.0.0.1", ports["http"]))
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the request goes on
            conns.append(c)
        conns.append(socket.create_connection(("127.0.0.1", ports["https"])))
        # a bound, not a measure: the refused one ends at once, the idle timeout is 120 s
        readable, _, _ = select.select(conns, [], [], 30)
        ended = [c for c in conns if c in readable and ended_by_server(c)]
        eq(len(ended), 1, "connections of 3 closed by the server with a total of 2")
        kept = [c for c in conns if c not in ended]
        eq([closed_by_server(c) for c in kept], [0, 0], "the two within the total")
        for c in conns:
            c.close()
        conns = []
        code = 0
        https = s.base(0 if s.urls[0][0] == "https" else 1)
        for _ in range(100):  # the server sees the closes soon; a bound, not a measure
            code = curl(https + "/healthz", "--cacert", ca)[0]
            if code == 200:
                break
            time.sleep(0.1)
        eq(code, 200, "HTTPS served once the connections closed")
    finally:
        for c in conns:
            c.close()
        eq(s.stop(), 0, "exit code")


def ended_by_server(sock):
    """1 when a readable `sock` was closed by the server (EOF or reset)."""
    try:
        return 1 if sock.recv(1) == b"" else 0
    except OSError:
        return 1


def t_tls_client_certificates():
    d = tls_material()
    ca = os.path.join(d, "ca.pem")
    s = Service("--https", "127.0.0.1:0", "--tls-cert", os.path.join(d, "server.pem"),
                "--tls-key", os.path.join(d, "server.key"), "--tls-client-ca", ca, "--data",
                os.path.join(tmpdir("mtls"), "data"), "--server", CLOSED_FHIR).start()
    try:
        url = s.base() + "/metrics"
        code, _, _ = curl(url, "--cacert", ca)
        assert code in (0, 403), "a client without a certificate got %d" % code
        code, _, _ = curl(url, "--cacert", ca, "--cert", os.path.join(d, "stranger.pem"),
                          "--key", os.path.join(d, "stranger.key"))
        assert code in (0, 403), "a client certificate of another CA got %d" % code
        code, _, body = curl(url, "--cacert", ca, "--cert", os.path.join(d, "client.pem"),
                             "--key", os.path.join(d, "client.key"))
        eq(code, 200, "/metrics with a client certificate of the trusted CA")
        assert b"sr2fhir_" in body, "/metrics body: %r" % body[:200]
        # issue 11 gap 5: liveness and readiness need no client certificate
        code, _, body = curl(s.base() + "/healthz", "--cacert", ca)
        eq((code, body), (200, b"ok\n"), "/healthz without a client certificate")
        code, _, body = curl(s.base() + "/healthz", "--cacert", ca, "--cert",
                             os.path.join(d, "stranger.pem"), "--key",
                             os.path.join(d, "stranger.key"))
        eq((code, body), (200, b"ok\n"), "/healthz with a certificate of another CA")
        code, _, body = curl(s.base() + "/readyz", "--cacert", ca)
        eq(code, 503, "/readyz without a client certificate (the FHIR server is closed)")
        assert body.startswith(b"not ready: "), "/readyz body: %r" % body[:200]
        curl(s.base() + "/dicom-web/studies", "--cacert", ca, "--cert",
             os.path.join(d, "client.pem"), "--key", os.path.join(d, "client.key"), "-H",
             "Content-Type: multipart/related; type=\"application/dicom\"; boundary=b",
             data=GARBAGE_PART)
        audit = open(os.path.join(TMP, "mtls", "data", "audit.jsonl"), "rb").read()
        assert b"CN=client" in audit, "the client certificate's subject is not the sender " \
            "in the audit log: %r" % audit[:400]
    finally:
        eq(s.stop(), 0, "exit code")
    one_line_exit(run_serve("--https", "127.0.0.1:0", "--tls-cert", os.path.join(d, "absent.pem"),
                            "--tls-key", os.path.join(d, "server.key"),
                            *minimal("mtls")[2:]), 3, "absent.pem")


def main():
    global CLOSED_FHIR
    if not os.access(SERVE, os.X_OK):
        harness.out("FAIL serve: no executable %s (run make)" % SERVE)
        return 1
    CLOSED_FHIR = "http://127.0.0.1:%d/fhir" % free_port()
    test("serve:startup-line-port-0", t_startup_line_and_port_0)
    test("serve:sigterm-sigint-exit-0", t_sigterm_sigint_exit_0)
    test("serve:sigterm-request-in-flight", t_sigterm_with_request_in_flight)
    test("serve:sighup-reopens-log", t_sighup_reopens_log)
    test("serve:usage-errors-one-line-exit-2", t_usage_errors)
    test("serve:allow-http-any-address", t_allow_http_binds_any_address)
    test("serve:port-in-use-exit-3", t_port_in_use_exit_3)
    test("serve:config-file-keys", t_config_file)
    s = None
    try:
        s = Service(*minimal("routes")).start()
    except AssertionError as e:
        harness.report(False, "serve:routes", str(e))
    if s:
        test("serve:routes-404-405-healthz", t_routes, s)
        test("serve:readyz-503-closed-port", t_readyz_503_closed_port, s)
        test("serve:metrics-names", t_metrics, s)
        test("serve:stow-queued-while-fhir-down", t_stow_queued_while_fhir_down, s)
        test("serve:stop", lambda: eq(s.stop(), 0, "exit code"))
    test("serve:readyz-200-reachable-and-delivered", t_readyz_200_reachable)
    test("serve:connection-limit-idle-timeout", t_connection_limit_and_idle_timeout)
    test("serve:bearer-tokens", t_tokens)
    test("serve:tls-cacert", t_tls)
    test("serve:tls-and-http-listeners", t_tls_both_listeners)
    test("serve:tls-client-certificates", t_tls_client_certificates)
    test("serve:connection-limit-both-listeners", t_connection_limit_both_listeners)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
