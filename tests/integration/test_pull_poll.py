#!/usr/bin/python3
"""tests/integration/test_pull_poll.py - the polling source of `sr2fhir serve --pull URL`
(docs/pull.md, issue 13) against Orthanc's DICOMweb plugin (../shared/tools/dicom-peers) and
the FHIR server tool (R5). Prints PASS/FAIL/SKIP lines for tests/run.sh.

- poll-first: 5 distinct TID 1500 SRs (tests/lib/gwservice.make_srs) in Orthanc before the
  service starts with --pull-interval 2: all delivered, the FHIR server holds exactly what
  `sr2fhir convert` makes of them.
- poll-added: 5 more loaded into Orthanc while it runs: all queued by the end of the second
  poll that started after the load (counted in the log's poll lines, not timed), delivered.
- poll-sigkill: 100 more loaded; the service is SIGKILLed once polling has queued some of
  them and restarted on the same data folder (--lease 15: a job the killed worker held is
  claimed again after that): every one of the 110 SRs has exactly one job,
  done, and the FHIR server holds exactly the resources of the 110 (nothing missed, nothing
  duplicated).
- poll-sigterm: SIGTERM stops the service (and its polling thread) with exit 0.

Waits are bounded and poll counts; nothing asserts on wall-clock time. SKIP with the reason
when sr2fhir-serve, pydicom, ../shared, node/npm or Orthanc are absent.
Environment: ROOT, BUILD, SR2FHIR, PYTHON, SHARED.
"""
import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import SHARED, clean_env, eq, out, short  # noqa: E402
import fhirserver  # noqa: E402
from fhirserver import MADE_TYPES  # noqa: E402
import gwservice  # noqa: E402

PEERS = os.path.join(SHARED, "tools", "dicom-peers", "dicom-peers.sh")
POLL_LINE = re.compile(r"pull: poll of \S+: found (\d+), new (\d+), skipped (\d+), queued (\d+)")
TMP = tempfile.mkdtemp(prefix="sr2fhir-pull-poll-")
PEERS_ENV = clean_env(DICOM_PEERS_HOME=os.path.join(TMP, "peers"), TCP_NODELAY="1")
N_FIRST, N_ADDED, N_KILL = 5, 5, 100
INTERVAL = 2
WAIT = 300  # s: a bound on each wait, not a measurement


def test(name, fn, *args):
    harness.test(name, fn, *args, width=900)


def peers(*args, timeout=300):
    p = subprocess.run([PEERS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=PEERS_ENV, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def orthanc_load(name, paths):
    rc, o, e = peers("orthanc-load", name, *paths)
    assert rc == 0 and "failed=0" in o, "orthanc-load: exit %d: %s %s" % (rc, short(o), short(e))


def polls(gw):
    """[(found, new, skipped, queued)] of the poll lines in the service's log so far."""
    return [tuple(map(int, m.groups())) for m in POLL_LINE.finditer(gw.log_text())]


def jobs_by_uid(gw):
    got = {}
    for j in gw.jobs():
        got.setdefault(j["SOP_INSTANCE_UID"], []).append(j["STATE"])
    return got


def wait_queued(gw, uids, at_least):
    """Until at least `at_least` of `uids` have a job; the jobs by UID."""
    deadline = time.monotonic() + WAIT
    while True:
        jobs = jobs_by_uid(gw)
        if sum(1 for u in uids if u in jobs) >= at_least:
            return jobs
        assert gw.alive(), "the service stopped: %s" % gw.log_tail()
        assert time.monotonic() < deadline, "%d of %d queued after %d s; log: %s" % (
            sum(1 for u in uids if u in jobs), at_least, WAIT, gw.log_tail())
        time.sleep(0.2)


def assert_holds(srv, bundles, what):
    ids = fhirserver.expected_ids(bundles)
    got = fhirserver.stored(srv, MADE_TYPES)
    for t in MADE_TYPES:
        eq((len(got[t]), sorted(got[t] ^ ids[t])[:3]), (len(ids[t]), []),
           "%s: %s on the FHIR server (count, ids differing)" % (what, t))


def cases(gw, srv, srs, bundles, name):
    first, added, killed = srs[:N_FIRST], srs[N_FIRST:N_FIRST + N_ADDED], srs[N_FIRST + N_ADDED:]

    def t_first():
        gw.start()
        wait_queued(gw, [u for u, _, _ in first], N_FIRST)
        gw.wait_idle(N_FIRST, timeout=WAIT)
        eq(jobs_by_uid(gw), {u: ["done"] for u, _, _ in first}, "jobs")
        assert_holds(srv, bundles[:N_FIRST], "after the first poll")

    test("poll-first: %d SRs in Orthanc before start: each delivered once" % N_FIRST, t_first)

    def t_added():
        orthanc_load(name, [p for _, p, _ in added])
        n0 = len(polls(gw))
        uids = [u for u, _, _ in added]
        wait_queued(gw, uids, N_ADDED)
        deadline = time.monotonic() + WAIT
        while True:  # the poll that queued the last of them logs once it ends
            after = polls(gw)[n0:]
            new = [p[1] for p in after]
            if sum(new) >= N_ADDED or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        total, k = 0, 0
        for k, n in enumerate(new, 1):
            total += n
            if total >= N_ADDED:
                break
        assert total >= N_ADDED and k <= 2, "polls after the load: %r (new per poll); all %d " \
            "queued by poll %d, expected at most 2" % (after, N_ADDED, k)
        gw.wait_idle(N_FIRST + N_ADDED, timeout=WAIT)
        assert_holds(srv, bundles[:N_FIRST + N_ADDED], "after the added ones")

    test("poll-added: %d SRs added to Orthanc while the service runs: queued by the second "
         "poll after the load (interval %d s), delivered" % (N_ADDED, INTERVAL), t_added)

    def t_sigkill():
        orthanc_load(name, [p for _, p, _ in killed])
        uids = [u for u, _, _ in killed]
        before = wait_queued(gw, uids, 1)
        gw.kill()
        n_before = sum(1 for u in uids if u in before)
        gw.start()
        wait_queued(gw, uids, N_KILL)
        gw.wait_idle(len(srs), timeout=WAIT)
        jobs = jobs_by_uid(gw)
        eq(sorted(jobs), sorted(u for u, _, _ in srs), "SOP Instance UIDs with jobs")
        eq([u for u, st in jobs.items() if st != ["done"]], [], "UIDs without exactly one "
           "done job (%d of the %d were queued before the SIGKILL)" % (n_before, N_KILL))
        assert_holds(srv, bundles, "after SIGKILL and restart")

    test("poll-sigkill: %d SRs added, the service SIGKILLed while polling queues them and "
         "restarted: each of the %d SRs has exactly one job, done; the FHIR server holds "
         "exactly their resources" % (N_KILL, len(srs)), t_sigkill)

    def t_sigterm():
        eq(gw.stop(), 0, "exit status after SIGTERM (log: %s)" % gw.log_tail())

    test("poll-sigterm: SIGTERM stops the service and its polling thread: exit 0", t_sigterm)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    atexit.register(shutil.rmtree, TMP, True)
    if not os.path.exists(PEERS):
        out("SKIP pull-poll: %s is absent (../shared not beside the checkout)" % PEERS)
        return 0
    if subprocess.run([PEERS, "install", "--check"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL, env=PEERS_ENV, timeout=60).returncode:
        out("SKIP pull-poll: Orthanc or its DICOMweb plugin is not installed (%s install "
            "--check)" % PEERS)
        return 0
    rc, srs, bundles, srv = gwservice.prepare("pull-poll", N_FIRST + N_ADDED + N_KILL, TMP)
    if rc is not None:
        return rc
    name = "pollsrc%d" % os.getpid()
    atexit.register(peers, "stop-all", "--kill")
    try:
        rc, o, e = peers("orthanc-start", name, "--http", "auto", "--dicom", "auto")
        ready = dict(f.split("=", 1) for f in o.split() if "=" in f)
        if rc != 0 or "dicomweb" not in ready:
            harness.report(False, "pull-poll-orthanc", "exit %d: %s %s" % (rc, short(o), short(e)))
            return 1
        orthanc_load(name, [p for _, p, _ in srs[:N_FIRST]])
        gw = gwservice.Service(os.path.join(TMP, "data"), srv.base, os.path.join(TMP, "serve.log"),
                               "--pull", ready["dicomweb"], "--pull-interval", str(INTERVAL),
                               "--pull-jobs", "1", "--log-level", "debug", "--workers", "2",
                               "--lease", "15", "--deadline", "10",
                               "--stop-grace", "5")
        cases(gw, srv, srs, bundles, name)
    finally:
        srv.stop()
        peers("stop-all", "--kill")
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
