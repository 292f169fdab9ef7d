#!/usr/bin/python3
"""tests/integration/test_gateway_tsan.py - the gateway's threads under ThreadSanitizer
(issue 11 "Threads"): a ThreadSanitizer build of sr2fhir-serve (`make TSAN=1 all`:
build-tsan/sr2fhir-serve) with 4 delivery workers receives 100 small distinct TID 1500 SRs
from 8 concurrent STOW-RS senders (one SR per request, http.client) while a ninth thread
reads GET /metrics, /readyz and /healthz, and delivers them to the FHIR server tool; then
SIGTERM. The receivers (libmicrohttpd's thread pool, the stow group commit), the worker pool
(each converting with the library and delivering with its own FHIR client, in parallel:
the library's "no global mutable state" shown, not assumed), the metrics and the shutdown
all run instrumented, with TSAN_OPTIONS=halt_on_error=1:exitcode=66 and a log_path.

PASS when every SR got 200, the queue drained with all done, the FHIR server holds exactly
what `sr2fhir convert` makes of the SRs, the service exited 0 after SIGTERM, and no
ThreadSanitizer report was written (log_path files, the service's stderr). FAIL with the
report's first lines otherwise.

Runs when SR2FHIR_TSAN names the binary, or ROOT/build-tsan/sr2fhir-serve exists and BUILD
is the plain build (so `make SAN=1 test` does not run it again); SKIP with the reason
otherwise, and when pydicom, ../shared or node/npm are absent. .ci/run builds it with
`make TSAN=1 CC=clang BUILD=build-tsan all` and runs this program on its own. The plain
build's sr2fhir (BUILD) runs `convert` and `queue stats`. Every process started here is
stopped at the end, on failure too.
"""
import atexit
import glob
import os
import signal
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import BUILD, ROOT, clean_env, eq, out, short  # noqa: E402
from fhirserver import MADE_TYPES, R5_TYPES, expected_ids  # noqa: E402
import gwservice  # noqa: E402

NAME = "gw-tsan"
N_SRS = 100
N_SENDERS = 8
WORKERS = 4
EXITCODE = 66
WAIT = 1200                 # s: bound on the drain (instrumented code is 5-15x slower)

TMP = tempfile.mkdtemp(prefix="sr2fhir-gw-tsan-")


def tsan_binary():
    """(path, None) of the ThreadSanitizer service to run, or (None, why not)."""
    env = os.environ.get("SR2FHIR_TSAN")
    if env:
        path = env if os.path.isabs(env) else os.path.join(ROOT, env)
        if not os.access(path, os.X_OK):
            return None, "SR2FHIR_TSAN=%s is not an executable" % env
        return path, None
    path = os.path.join(ROOT, "build-tsan", "sr2fhir-serve")
    if not os.access(path, os.X_OK):
        return None, "no ThreadSanitizer build %s (make TSAN=1 all, or SR2FHIR_TSAN=FILE)" % path
    if os.path.basename(BUILD.rstrip("/")) != "build":
        return None, "runs with the plain build's tests only (BUILD=build), not %s" % BUILD
    return path, None


def reports(tsan_log, gw):
    """Text of every ThreadSanitizer report: log_path files, and the service's stderr."""
    found = []
    for f in sorted(glob.glob(tsan_log + "*")):
        with open(f, "rb") as fh:
            text = fh.read().decode("utf-8", "replace")
        if text.strip():
            found.append("%s: %s" % (os.path.basename(f), text))
    log = gw.log_text()
    if "ThreadSanitizer" in log:
        found.append("stderr: " + log[log.index("ThreadSanitizer") - 200:])
    return found


def first_lines(text, n=14):
    keep = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("    #1")]
    return " | ".join(ln.strip() for ln in keep[:n])


def run(srv, binary, srs, bundles):
    tsan_log = os.path.join(TMP, "tsan")
    env = clean_env(TSAN_OPTIONS="halt_on_error=1:exitcode=%d:log_path=%s:second_deadlock_stack=1"
                    % (EXITCODE, tsan_log))
    gw = gwservice.Service(os.path.join(TMP, "data"), srv.base, os.path.join(TMP, "serve.log"),
                           "--workers", str(WORKERS), binary=binary, env=env)
    srv.reset()
    try:
        gw.start()
    except AssertionError as e:
        found = reports(tsan_log, gw)
        raise AssertionError("start: %s%s" % (short(e, 600), ("; ThreadSanitizer: " + first_lines(
            found[0])) if found else ""))
    lock = threading.Lock()
    todo = list(range(len(srs)))
    acked, errors, probes = [], [], [0]
    stop = threading.Event()

    def sender():
        while True:
            with lock:
                if not todo or errors:
                    return
                i = todo.pop()
            sop, _, data = srs[i]
            try:
                status, body = gwservice.stow(gw.address() or ("127.0.0.1", 1), data, timeout=600)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append("SR %d: %s: %s" % (i, type(e).__name__, e))
                return
            with lock:
                if status == 200 and gwservice.referenced_uids(body) == {sop}:
                    acked.append(i)
                else:
                    errors.append("SR %d: HTTP %d %s" % (i, status, short(body, 200)))

    def prober():
        while not stop.is_set():
            for path in ("/metrics", "/readyz", "/healthz"):
                try:
                    gw.get(path, timeout=120)
                    probes[0] += 1
                except Exception:  # noqa: BLE001 - the service's state is judged elsewhere
                    pass
            stop.wait(0.05)

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(N_SENDERS)]
    pt = threading.Thread(target=prober, daemon=True)
    for t in threads + [pt]:
        t.start()
    for t in threads:
        t.join()
    st = None
    try:
        if not errors:
            st = gw.wait_idle(N_SRS, timeout=WAIT)
    finally:
        stop.set()
        pt.join(180)
        rc = gw.stop(grace=180)
    found = reports(tsan_log, gw)
    out("%s figures: %d SRs, %d senders, %d workers, %d acknowledged, %d monitoring requests, "
        "queue %s, exit %s, %d ThreadSanitizer reports" % (NAME, N_SRS, N_SENDERS, WORKERS,
                                                           len(acked), probes[0], st, rc,
                                                           len(found)))
    assert not found, "ThreadSanitizer report: %s" % first_lines(found[0])
    assert not errors, "senders: %s (log: %s)" % (errors[:3], gw.log_tail(400))
    eq(rc, 0, "exit status after SIGTERM (%d: a ThreadSanitizer report; log: %s)" % (
        EXITCODE, gw.log_tail(400)))
    eq(len(acked), N_SRS, "SRs acknowledged with 200")
    eq({k: st[k] for k in gwservice.QUEUE_STATES},
       {"pending": 0, "leased": 0, "done": N_SRS, "dead": 0, "not_applicable": 0},
       "queue stats")
    ids = expected_ids(bundles)
    eq(srv.counts(R5_TYPES), {t: len(ids.get(t, ())) for t in R5_TYPES},
       "resources per type on the FHIR server")
    for t in MADE_TYPES:
        eq(set(srv.all(t)), ids[t], "%s ids on the FHIR server" % t)


def skip(why):
    out("SKIP %s: %s" % (NAME, why))
    return 0


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    atexit.register(gwservice.finish, TMP)  # removed (or kept) on every path, early returns too
    binary, why = tsan_binary()
    if not binary:
        return skip(why)
    rc, srs, bundles, srv = gwservice.prepare(NAME, N_SRS, TMP, serve=binary)
    if rc is not None:
        return rc
    try:
        harness.test("%s: %s with %d workers, %d concurrent senders of %d SRs, /metrics, "
                     "/readyz and /healthz read meanwhile, then SIGTERM: no ThreadSanitizer "
                     "report, exit 0, every SR acknowledged and delivered exactly (queue all "
                     "done, the FHIR server's resources as convert makes them)"
                     % (NAME, os.path.relpath(binary, ROOT), WORKERS, N_SENDERS, N_SRS),
                     run, srv, binary, srs, bundles, width=1500)
    finally:
        gwservice.finish(None, srv)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
