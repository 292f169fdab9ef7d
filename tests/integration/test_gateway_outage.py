#!/usr/bin/python3
"""tests/integration/test_gateway_outage.py - issue 11's outage test of `sr2fhir serve`: the
FHIR server goes away, refuses the credentials, or refuses one SR; the gateway's workers
must wait and retry, pause, or dead-letter accordingly, and deliver everything once the
cause is gone. Between the service and the FHIR server tool sits a small HTTP proxy the
test controls (gwservice.FhirProxy). The SRs are small distinct TID 1500 reports
(gwservice.make_srs); what must arrive is what `sr2fhir convert` makes of them.

- outage: 20 SRs sent and delivered, then the proxy stops listening (connections refused,
  open ones closed) for 30 s, during which 40 more SRs are sent (each 200): the failures
  are counted as transient (/metrics sr2fhir_failed_total{class="transient"} grows during
  the outage: the jobs are tried again), `sr2fhir queue stats` shows jobs pending and none
  dead; after the proxy is back the queue drains with all 60 jobs done and none dead, and
  the FHIR server holds exactly their resources.
- auth: the proxy answers 401 to everything; 5 SRs sent: /metrics sr2fhir_delivery_paused
  becomes 1, the log says delivery is paused, no job is dead; the proxy fixed: the 5 are
  delivered, sr2fhir_delivery_paused back to 0.
- permanent: the proxy answers 400 with an OperationOutcome to the transaction of one SR
  (its Observation id in the body) of 3 sent: that job is dead (`sr2fhir queue list --state
  dead`, `queue show ID`: class permanent, the reason naming the 400), the 2 others done,
  the SR's resources absent; the proxy fixed, `sr2fhir queue retry ID` makes it pending and
  it is delivered: the FHIR server then holds every SR's resources.

SKIP with the reason when the service is not built (BUILD/sr2fhir-serve), or pydicom,
../shared or node/npm are absent. Every process started here is stopped at the end, on
failure too. Waits are bounded; the only fixed duration is the issue's 30 s outage.
Environment: ROOT, BUILD, SR2FHIR, PYTHON, SHARED (tests/run.sh).
"""
import atexit
import os
import re
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import eq, out, short  # noqa: E402
import fhirserver  # noqa: E402
from fhirserver import MADE_TYPES, R5_TYPES, expected_ids  # noqa: E402
import gwservice  # noqa: E402

NAME = "gw-outage"
OUTAGE_SECONDS = 30          # the "FHIR server stopped for 30 s"
N_BEFORE, N_DURING, N_AUTH, N_PERM = 20, 40, 5, 3
WAIT = 600                   # s: bound on each wait for the queue or a metric
TRANSIENT = 'sr2fhir_failed_total{class="transient"}'
AUTH = 'sr2fhir_failed_total{class="auth"}'
PAUSED = "sr2fhir_delivery_paused"
# Short waits between attempts (200 ms doubling up to 4 s) so that the test is not slow; jobs
# retried for 10 minutes (longer than the outage); while paused, tried again every 2 s.
SERVE_OPTS = ["--workers", "4", "--retry-total", "600", "--auth-probe", "2",
              "--backoff-min", "200", "--backoff-max", "4000", "--retry-delay", "100"]

TMP = tempfile.mkdtemp(prefix="sr2fhir-gw-outage-")


def send_all(gw, srs):
    for sop, _, data in srs:
        status, body = gwservice.stow(gw.address(), data)
        assert status == 200 and gwservice.referenced_uids(body) == {sop}, \
            "STOW of %s: HTTP %d %s" % (sop, status, short(body, 300))


def wait_for(what, cond, gw, timeout=WAIT, poll=0.5):
    """Poll cond() until it returns a true value (returned); AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if not gw.alive():
            raise AssertionError("the gateway exited while waiting for %s; log: %s" % (
                what, gw.log_tail()))
        if time.monotonic() > deadline:
            raise AssertionError("%s not seen within %d s; log: %s" % (what, timeout,
                                                                        gw.log_tail()))
        time.sleep(poll)


def delta(after, before):
    return {s: after[s] - before[s] for s in gwservice.QUEUE_STATES if after[s] != before[s]}


def assert_holds(srv, bundles, what):
    ids = expected_ids(bundles)
    eq(srv.counts(R5_TYPES), {t: len(ids.get(t, ())) for t in R5_TYPES},
       "%s: resources per type on the FHIR server" % what)
    got = fhirserver.stored(srv, MADE_TYPES)
    for t in MADE_TYPES:
        missing, extra = ids[t] - got[t], got[t] - ids[t]
        assert not missing and not extra, "%s: %s ids: %d missing (e.g. %s), %d not expected " \
            "(e.g. %s)" % (what, t, len(missing), sorted(missing)[:1], len(extra),
                           sorted(extra)[:1])


def outage_case(gw, srv, proxy, srs, bundles):
    before, during = srs[:N_BEFORE], srs[N_BEFORE:N_BEFORE + N_DURING]
    st0 = gw.stats()
    send_all(gw, before)
    gw.wait_idle(N_BEFORE, st0, timeout=WAIT)
    assert_holds(srv, bundles[:N_BEFORE], "before the outage")
    m0 = gw.metrics()

    proxy.down()
    t0 = time.monotonic()
    send_all(gw, during)
    seen = {}

    def retrying():
        m, st = gw.metrics(), gw.stats()
        seen["first"] = (m.get(TRANSIENT, 0), st)
        return m.get(TRANSIENT, 0) > m0.get(TRANSIENT, 0) and st["pending"] > 0

    wait_for("transient failures counted and jobs pending during the outage", retrying, gw,
             timeout=OUTAGE_SECONDS)
    first = seen["first"][0]
    time.sleep(max(0.0, t0 + OUTAGE_SECONDS - time.monotonic()))
    m1, st1 = gw.metrics(), gw.stats()
    refused = sum(v for (mode, _), v in proxy.seen.items() if mode == "down")
    proxy.up()
    out("%s figures: during the %d s outage: transient failures %d -> %d -> %d, queue %s, "
        "requests that reached the closed proxy %d" % (
            NAME, OUTAGE_SECONDS, m0.get(TRANSIENT, 0), first, m1.get(TRANSIENT, 0),
            st1, refused))
    eq(st1["dead"] - st0["dead"], 0, "jobs dead at the end of the outage (queue %s)" % st1)
    assert st1["pending"] + st1["leased"] > 0, "no job waiting at the end of the outage " \
        "(queue %s)" % st1
    assert m1.get(TRANSIENT, 0) > first, "sr2fhir_failed_total{class=\"transient\"} did not " \
        "grow after its first rise during the outage (%d then %d): jobs are not tried again" % (
            first, m1.get(TRANSIENT, 0))
    eq(m1.get(AUTH, 0), m0.get(AUTH, 0), "auth failures counted during the outage")
    eq(m1.get(PAUSED, 0), 0, "sr2fhir_delivery_paused during an outage")

    st = gw.wait_idle(N_BEFORE + N_DURING, st0, timeout=WAIT)
    eq(delta(st, st0), {"done": N_BEFORE + N_DURING}, "queue stats change (every job done, "
       "none dead)")
    assert_holds(srv, bundles[:N_BEFORE + N_DURING], "after the outage")


def auth_case(gw, srv, proxy, srs, bundles, sent_bundles):
    st0, m0 = gw.stats(), gw.metrics()
    log0 = len(gw.log_text())
    proxy.set("401")
    send_all(gw, srs)
    wait_for("sr2fhir_delivery_paused 1", lambda: gw.metrics().get(PAUSED) == 1, gw)
    st1, m1 = gw.stats(), gw.metrics()
    log = gw.log_text()[log0:]
    lines = [ln for ln in log.splitlines() if re.search(r"paus", ln, re.I)]
    assert lines, "no log line saying delivery is paused; log since: %s" % short(log, 600)
    eq(st1["dead"], st0["dead"], "dead jobs while the credentials are refused")
    eq(st1["done"], st0["done"], "done jobs while the credentials are refused")
    eq(st1["pending"] + st1["leased"], N_AUTH, "jobs waiting while paused (queue %s)" % st1)
    assert m1.get(AUTH, 0) > m0.get(AUTH, 0), "no failure counted as auth"
    out("%s figures: auth: paused with %d jobs waiting, auth failures %d, 401 answers %d; "
        "log: %s" % (NAME, N_AUTH, m1.get(AUTH, 0) - m0.get(AUTH, 0), proxy.answered.get(401, 0),
                     short(lines[0], 200)))

    proxy.set("pass")
    st = gw.wait_idle(N_AUTH, st0, timeout=WAIT)
    eq(delta(st, st0), {"done": N_AUTH}, "queue stats change after the credentials work again")
    eq(gw.metrics().get(PAUSED), 0, "sr2fhir_delivery_paused after delivery resumed")
    assert_holds(srv, sent_bundles + bundles, "after the pause")


def permanent_case(gw, srv, proxy, srs, bundles, sent_bundles):
    sop_x = srs[0][0]
    obs_x = gwservice.per_sr_ids(bundles)[0]
    st0 = gw.stats()
    proxy.set("reject", marker=sorted(obs_x)[0])
    send_all(gw, srs)
    st = gw.wait_idle(N_PERM, st0, timeout=WAIT)
    eq(delta(st, st0), {"done": N_PERM - 1, "dead": 1}, "queue stats change (the refused SR "
       "dead, the others done)")
    dead = [j for j in gw.jobs("dead") if j.get("SOP_INSTANCE_UID") == sop_x]
    eq(len(dead), 1, "dead jobs of the refused SR in `queue list --state dead`")
    job = dead[0]["ID"]
    _, show, _ = gw.queue("show", job)
    fields = dict(ln.split(": ", 1) for ln in show.splitlines() if ": " in ln)
    eq(fields.get("state"), "dead", "queue show: state")
    eq(fields.get("failure_class"), "permanent", "queue show: failure_class")
    assert "400" in fields.get("reason", ""), "queue show: reason %r does not name the HTTP " \
        "400" % fields.get("reason")
    have = set(srv.all("Observation"))
    assert not obs_x & have, "the refused SR's Observations are on the FHIR server"
    out("%s figures: permanent: job %s dead: %s" % (NAME, job, short(fields.get("reason"), 200)))

    proxy.set("pass")
    rc, o, e = gw.queue("retry", job, check=False)
    eq(rc, 0, "sr2fhir queue retry %s: exit status (%s %s)" % (job, short(o), short(e)))
    st1 = gw.stats()
    st = gw.wait_idle(1, st1, timeout=WAIT)
    eq(delta(st, st0), {"done": N_PERM}, "queue stats change after `queue retry` (all done)")
    _, show, _ = gw.queue("show", job)
    assert "state: done" in show, "queue show %s after the retry: %s" % (job, short(show))
    assert_holds(srv, sent_bundles + bundles, "after `queue retry`")


def skip(why):
    out("SKIP %s: %s" % (NAME, why))
    return 0


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    atexit.register(gwservice.finish, TMP)  # removed (or kept) on every path, early returns too
    rc, srs, bundles, srv = gwservice.prepare(NAME, N_BEFORE + N_DURING + N_AUTH + N_PERM, TMP)
    if rc is not None:
        return rc
    proxy = gwservice.FhirProxy(srv.base)
    gw = None
    try:
        srv.reset()
        proxy.listen()
        gw = gwservice.Service(os.path.join(TMP, "data"), proxy.base,
                               os.path.join(TMP, "serve.log"), *SERVE_OPTS)
        try:
            gw.start()
        except AssertionError as e:
            harness.report(False, NAME + "-start", short(e, 900))
            return 1
        a = N_BEFORE + N_DURING
        b = a + N_AUTH
        harness.test("%s-fhir-down-30s: FHIR server unreachable for %d s mid-stream (%d SRs "
                     "delivered before, %d sent during it): transient failures counted and "
                     "growing, jobs pending, none dead; after it returns all %d done, none "
                     "dead, the FHIR server holds exactly their resources"
                     % (NAME, OUTAGE_SECONDS, N_BEFORE, N_DURING, a),
                     outage_case, gw, srv, proxy, srs[:a], bundles[:a], width=900)
        if not proxy.httpd:
            proxy.up()
        harness.test("%s-auth-401-pauses: the FHIR server answers 401 to everything: "
                     "sr2fhir_delivery_paused 1, a log line says delivery is paused, no job "
                     "dead; credentials accepted again: the %d SRs delivered, paused 0"
                     % (NAME, N_AUTH), auth_case, gw, srv, proxy, srs[a:b], bundles[a:b],
                     bundles[:a], width=900)
        proxy.set("pass")
        harness.test("%s-permanent-400-dead-letter: a 400 with an OperationOutcome for one SR's "
                     "transaction: its job dead (queue list/show: permanent, the reason), the "
                     "others done; cause fixed, `sr2fhir queue retry ID` delivers it"
                     % NAME, permanent_case, gw, srv, proxy, srs[b:], bundles[b:], bundles[:b],
                     width=900)
        proxy.set("pass")

        def t_sigterm():
            rc = gw.stop()
            eq(rc, 0, "exit status after SIGTERM (log: %s)" % gw.log_tail(300))

        harness.test("%s-sigterm: SIGTERM stops the service with exit 0" % NAME, t_sigterm)
    finally:
        gwservice.finish(None, gw, proxy, srv)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
