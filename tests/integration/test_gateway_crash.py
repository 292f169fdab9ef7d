#!/usr/bin/python3
"""tests/integration/test_gateway_crash.py - issue 11's crash test of `sr2fhir serve`: 1,000
small TID 1500 SRs sent by 8 concurrent STOW-RS clients while the service is killed with
SIGKILL at random moments (at least 5 times) and restarted on the same --data; every SR
whose STOW got 200 must be in the FHIR server exactly once, none twice.

- The SRs: copies of tests/fixtures/generate.py's rules_notz.dcm, each with its own SOP
  Instance, Study and Series UIDs; `sr2fhir convert` of each gives the resources a delivery
  must leave (2 Observations of its own; one Device and one Practitioner shared by all).
- Senders: 8 threads, http.client, one SR per request (multipart/related;
  type="application/dicom"), each SR sent until it gets 200 whose Referenced SOP Sequence
  lists it, as a real sender would: a request that failed, got no answer (the service died
  under it) or got 503 is sent again, so an SR may arrive twice.
- Kills: at 6 random counts of acknowledged SRs (plus a random few ms) the service gets
  SIGKILL and is started again on the same data folder; once more after the senders are
  done, while jobs are still waiting (deliveries in flight), when any are.
- Then (bounded wait) `sr2fhir queue stats` shows nothing pending or leased, and: every SR
  got 200; no job dead or not applicable; a done job for every SOP Instance UID; the FHIR
  server holds exactly the expected resources: count per type equal, the Observation ids
  equal to the union of what convert makes (none missing: nothing acknowledged was lost;
  none extra: nothing delivered under a second identity). Printed: kills, requests, 200s,
  retries, answers that never came, jobs, and jobs claimed again after a kill (their
  worker died under them; delivering again is harmless: PUTs to deterministic ids).

Long (minutes): runs in the plain build only; SKIP with the reason under a sanitizer build
(BUILD=build-san, build-clang-san), when the service is not built (BUILD/sr2fhir-serve),
or pydicom, ../shared or node/npm are absent. Every process started here is stopped at the
end, on failure too. Environment: ROOT, BUILD, SR2FHIR, PYTHON, SHARED (tests/run.sh).
"""
import atexit
import os
import random
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import BUILD, out, short  # noqa: E402
from fhirserver import MADE_TYPES, R5_TYPES, expected_ids  # noqa: E402
import gwservice  # noqa: E402

NAME = "gw-crash"
N_SRS = 1000
N_CLIENTS = 8
N_KILLS = 6                 # at random acknowledged counts; at least 5 are required
MAX_ATTEMPTS = 200          # per SR: a bound, so a service that never answers ends the test
REQUEST_TIMEOUT = 120       # s: one STOW request
DRAIN_TIMEOUT = 1500        # s: bound on the queue draining after the last kill
# Worker options: a short lease so that the jobs a killed service held come back within
# 20 s (the default is 10 minutes), short backoff.
SERVE_OPTS = ["--workers", "4", "--lease", "20", "--backoff-min", "200", "--backoff-max", "2000"]

TMP = tempfile.mkdtemp(prefix="sr2fhir-gw-crash-")


class Senders:
    """N_CLIENTS threads sending every SR until it gets 200; figures for the report."""

    def __init__(self, gw, srs):
        self.gw, self.srs = gw, srs
        self.lock = threading.Lock()
        self.next = 0
        self.ok = [False] * len(srs)
        self.requests = self.acked = self.retries = self.unanswered = self.busy = 0
        self.wrong = []           # (sr index, status, body) of answers no valid SR should get
        self.gave_up = []
        self.acked_event = threading.Condition(self.lock)

    def take(self):
        with self.lock:
            if self.next >= len(self.srs):
                return None
            self.next += 1
            return self.next - 1

    def send(self, i):
        sop, _, data = self.srs[i]
        for attempt in range(MAX_ATTEMPTS):
            addr = self.gw.address()
            while addr is None:           # down between a kill and its restart
                time.sleep(0.02)
                addr = self.gw.address()
            with self.lock:
                self.requests += 1
                if attempt:
                    self.retries += 1
            try:
                status, body = gwservice.stow(addr, data, timeout=REQUEST_TIMEOUT)
            except (OSError, gwservice.http.client.HTTPException):
                with self.lock:
                    self.unanswered += 1
                time.sleep(0.01)
                continue
            if status == 200:
                refs = gwservice.referenced_uids(body)
                with self.lock:
                    if refs != {sop}:
                        self.wrong.append((i, status, short(body, 200)))
                        return
                    self.ok[i] = True
                    self.acked += 1
                    self.acked_event.notify_all()
                return
            if status == 503 or status >= 500:
                with self.lock:
                    self.busy += 1
                time.sleep(0.05)
                continue
            with self.lock:
                self.wrong.append((i, status, short(body, 200)))
            return
        with self.lock:
            self.gave_up.append(i)

    def run(self):
        while True:
            i = self.take()
            if i is None:
                return
            self.send(i)

    def start(self):
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(N_CLIENTS)]
        for t in self.threads:
            t.start()

    def running(self):
        return any(t.is_alive() for t in self.threads)


def crash_loop(gw, senders, rng):
    """Kill and restart the service at N_KILLS random acknowledged counts; the kill points."""
    points = sorted(rng.sample(range(N_SRS // 20, N_SRS - N_SRS // 20), N_KILLS))
    for p in points:
        with senders.lock:
            while senders.acked < p and senders.running():
                senders.acked_event.wait(timeout=1)
            if senders.acked < p:
                break
        time.sleep(rng.random() * 0.05)
        gw.kill()
        gw.start()
    return points


def figures(gw, senders, st, njobs, claimed_again):
    return ("kills=%d starts=%d requests=%d acknowledged(200)=%d retries=%d unanswered=%d "
            "busy(5xx/503)=%d wrong-answers=%d gave-up=%d queue=%s jobs=%d "
            "jobs-claimed-again-after-a-kill=%d"
            % (gw.kills, gw.starts, senders.requests, senders.acked, senders.retries,
               senders.unanswered, senders.busy, len(senders.wrong), len(senders.gave_up),
               " ".join("%s:%d" % (k, st[k]) for k in gwservice.QUEUE_STATES) if st else "?",
               njobs, claimed_again))


def run(srv, gw, srs, bundles):
    rng = random.Random(int.from_bytes(os.urandom(8), "little"))
    obs = gwservice.per_sr_ids(bundles)       # each SR's Observations are its own
    want_ids = expected_ids(bundles)
    want_counts = {t: len(want_ids.get(t, ())) for t in R5_TYPES}

    srv.reset()
    gw.start()
    senders = Senders(gw, srs)
    senders.start()
    points = crash_loop(gw, senders, rng)
    for t in senders.threads:
        t.join()
    # once more while deliveries are in flight (jobs waiting), when any still wait
    st = gw.stats()
    drain_kill = st["pending"] + st["leased"] > 0
    if drain_kill:
        time.sleep(rng.random() * 0.2)
        gw.kill()
        gw.start()
    st = gw.wait_idle(N_SRS, timeout=DRAIN_TIMEOUT)

    got = srv.counts(R5_TYPES)
    observations = srv.all("Observation")
    jobs = gw.jobs()
    claimed_again = sum(1 for j in jobs if int(j.get("ATTEMPTS") or 0) > 1)
    out("%s figures: %s; kill points (acknowledged SRs): %s%s" % (
        NAME, figures(gw, senders, st, len(jobs), claimed_again), points,
        " + one while delivering" if drain_kill else ""))

    def t_kills():
        assert gw.kills >= 5, "only %d kills (kill points %s)" % (gw.kills, points)

    harness.test("%s-kills: the service was killed with SIGKILL at least 5 times while 8 "
                 "clients sent, and restarted on the same data folder each time" % NAME, t_kills)

    def t_acked():
        eq_ = [i for i, ok in enumerate(senders.ok) if not ok]
        assert not senders.wrong, "answers no valid SR should get: %s" % senders.wrong[:3]
        assert not eq_, "%d SRs never got 200 (e.g. %s, gave up after %d attempts: %d)" % (
            len(eq_), eq_[:3], MAX_ATTEMPTS, len(senders.gave_up))

    harness.test("%s-acknowledged: every one of the %d SRs got 200 listing it in (0008,1199) "
                 "(retried after failed or unanswered requests)" % (NAME, N_SRS), t_acked)

    def t_queue():
        harness.eq({k: st[k] for k in ("pending", "leased", "dead", "not_applicable")},
                   {"pending": 0, "leased": 0, "dead": 0, "not_applicable": 0},
                   "queue stats other than done (log: %s)" % gw.log_tail(300))
        done = {j["SOP_INSTANCE_UID"] for j in gw.jobs("done")}
        missing = [sop for sop, _, _ in srs if sop not in done]
        assert not missing, "%d acknowledged SRs without a done job (e.g. %s)" % (
            len(missing), missing[:2])

    harness.test("%s-queue: after the last restart the queue drains: nothing pending, leased, "
                 "dead or not applicable; a done job for every SOP Instance UID" % NAME, t_queue)

    def t_fhir():
        harness.eq(got, want_counts, "resources per type on the FHIR server")
        have = set(observations)
        lost = [i for i, ids in enumerate(obs) if senders.ok[i] and not ids <= have]
        extra = have - want_ids["Observation"]
        assert not lost, "%d acknowledged SRs' Observations missing on the FHIR server (e.g. " \
            "SR %s: %s)" % (len(lost), lost[:1], sorted(obs[lost[0]] - have)[:2])
        assert not extra, "%d Observations that no SR makes (e.g. %s)" % (len(extra),
                                                                          sorted(extra)[:2])
        for t in MADE_TYPES:
            harness.eq(set(srv.all(t)), want_ids[t], "%s ids on the FHIR server" % t)

    harness.test("%s-fhir-exactly-once: the FHIR server holds each acknowledged SR's resources "
                 "once: %s per type, every SR's Observation ids present, none else"
                 % (NAME, ", ".join("%s %d" % (t, want_counts[t]) for t in R5_TYPES
                                    if want_counts[t])), t_fhir)

    def t_sigterm():
        rc = gw.stop()
        harness.eq(rc, 0, "exit status after SIGTERM (log: %s)" % gw.log_tail(300))

    harness.test("%s-sigterm: after all that, SIGTERM stops the service with exit 0" % NAME,
                 t_sigterm)


def skip(why):
    out("SKIP %s: %s" % (NAME, why))
    return 0


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    atexit.register(gwservice.finish, TMP)  # removed (or kept) on every path, early returns too
    if "san" in os.path.basename(BUILD.rstrip("/")):
        return skip("long crash soak: runs once, in the plain build (BUILD=build), not under "
                    "the sanitizer build %s" % BUILD)
    rc, srs, bundles, srv = gwservice.prepare(NAME, N_SRS, TMP)
    if rc is not None:
        return rc
    gw = gwservice.Service(os.path.join(TMP, "data"), srv.base, os.path.join(TMP, "serve.log"),
                           *SERVE_OPTS)
    try:
        run(srv, gw, srs, bundles)
    except Exception as e:  # noqa: BLE001
        harness.report(False, NAME, "%s: %s" % (type(e).__name__, short(e, 900)))
    finally:
        gwservice.finish(None, gw, srv)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
