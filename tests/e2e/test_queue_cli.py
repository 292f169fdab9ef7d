"""tests/e2e/test_queue_cli.py - `sr2fhir queue stats|list|show|retry|purge` (issue 11
Build #5) on queue databases built by tests/tools/queue_fill (the queue's own functions, so
this test does not depend on the SQL schema; docs/decisions.md says why).

Cases: stats prints exactly the five STATE COUNT lines; list and show print the jobs
(outside text escaped); retry makes a dead job pending and refuses others; purge removes
only old done / not applicable jobs and their files in DIR/incoming; a missing database is
exit 3 and creates nothing; usage errors are exit 2 with one line.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402

QUEUE_FILL = os.path.join(harness.ROOT, harness.BUILD, "tests", "tools", "queue_fill")
OLD = "1000"   # finished long ago (1970)
ESC_REASON = "HTTP 422: bad\x1b[31m\tred\nsr2fhir: forged"


def run(*args):
    p = subprocess.run([harness.SR2FHIR, "queue", *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def fill(db, *ops):
    p = subprocess.run([QUEUE_FILL, db, *ops], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    assert p.returncode == 0, "queue_fill: %s" % p.stderr.decode("utf-8", "replace")
    return [int(x) for x in p.stdout.split()]


class Queue:
    """A data folder with one job in each state plus extras:
    1 done (old), 2 dead (old, reason with control characters), 3 not_applicable (old),
    4 leased, 5 done (now), 6 pending; each job's file in DIR/incoming."""

    def __init__(self, top):
        self.dir = os.path.join(top, "data%d" % len(os.listdir(top)))
        self.incoming = os.path.join(self.dir, "incoming")
        os.makedirs(self.incoming)
        self.files = {}
        ops = []
        for n in range(1, 7):
            f = os.path.join(self.incoming, "%d.dcm" % n)
            with open(f, "wb") as fh:
                fh.write(b"x")
            self.files[n] = f
            t = OLD if n <= 4 else "now"
            ops += ["add", "1.2.840.99.%d" % n, f, "127.0.0.1 token:ai", t]
        ops += ["claim", "w1", "60", OLD, "done", OLD,
                "claim", "w1", "60", OLD, "dead", "permanent", ESC_REASON, OLD,
                "claim", "w1", "60", OLD, "na", "not TID 1500", OLD,
                "claim", "w2", "2000000000", OLD]
        fill(self.db, *ops)
        # job 5 finishes now, after the old ones were claimed
        fill(self.db, "claim", "w3", "60", "now", "done", "now")

    @property
    def db(self):
        return os.path.join(self.dir, "queue.sqlite")


def stats_of(q):
    rc, out, err = run("stats", "--data", q.dir)
    assert rc == 0, "stats: exit %d: %s" % (rc, err)
    return dict(line.split(" ") for line in out.splitlines())


def one_line_error(err, code, rc, prefix="sr2fhir: "):
    harness.eq(rc, code, "exit code")
    lines = err.splitlines()
    assert len(lines) == 1, "expected one stderr line, got %r" % err
    assert lines[0].startswith(prefix), "stderr %r does not start with %r" % (lines[0], prefix)


def t_stats_exact(top):
    q = Queue(top)
    rc, out, err = run("stats", "--data", q.dir)
    harness.eq(rc, 0, "exit code (%s)" % err)
    harness.eq(out, "pending 1\nleased 1\ndone 2\ndead 1\nnot_applicable 1\n", "stats output")
    empty = os.path.join(top, "empty")
    os.makedirs(empty)
    fill(os.path.join(empty, "queue.sqlite"))
    rc, out, err = run("stats", "--data", empty)
    harness.eq((rc, out), (0, "pending 0\nleased 0\ndone 0\ndead 0\nnot_applicable 0\n"),
               "stats of an empty queue")


def t_list(top):
    q = Queue(top)
    rc, out, err = run("list", "--data", q.dir)
    harness.eq(rc, 0, "exit code (%s)" % err)
    lines = out.splitlines()
    harness.eq(lines[0].split("\t"), ["ID", "STATE", "ATTEMPTS", "ENQUEUED", "TIME",
                                      "SOP_INSTANCE_UID", "SOURCE", "CLASS", "REASON"], "header")
    rows = [line.split("\t") for line in lines[1:]]
    harness.eq(len(rows), 6, "rows")
    assert all(len(r) == 9 for r in rows), "a row without 9 columns: %r" % rows
    harness.eq([(r[0], r[1]) for r in rows],
               [("1", "done"), ("2", "dead"), ("3", "not_applicable"), ("4", "leased"),
                ("5", "done"), ("6", "pending")], "ids and states")
    dead = rows[1]
    harness.eq(dead[5:], ["1.2.840.99.2", "127.0.0.1 token:ai", "permanent",
                          "HTTP 422: bad\\x1B[31m\\x09red\\x0Asr2fhir: forged"], "dead row")
    harness.eq(dead[3:5], ["1970-01-01T00:16:40Z", "1970-01-01T00:16:40Z"], "dead row times")
    assert "\x1b" not in out, "raw escape character printed"
    rc, out, err = run("list", "--data", q.dir, "--state", "dead")
    harness.eq([line.split("\t")[0] for line in out.splitlines()], ["ID", "2"], "--state dead")
    rc, out, err = run("list", "--data", q.dir, "--limit", "2", "--after", "2")
    harness.eq([line.split("\t")[0] for line in out.splitlines()], ["ID", "3", "4"],
               "--limit 2 --after 2")
    assert "--after 4" in err, "no note that more jobs follow: %r" % err
    rc, out, err = run("list", "--data", q.dir, "--after", "5")
    harness.eq((rc, [line.split("\t")[:3] for line in out.splitlines()[1:]], err),
               (0, [["6", "pending", "0"]], ""), "the last page")


def t_show(top):
    q = Queue(top)
    rc, out, err = run("show", "--data", q.dir, "2")
    harness.eq(rc, 0, "exit code (%s)" % err)
    fields = dict(line.split(": ", 1) for line in out.splitlines())
    harness.eq(list(fields), ["id", "state", "attempts", "sop_instance_uid", "path", "source",
                              "enqueued_at", "not_before", "lease_until", "worker",
                              "finished_at", "failure_class", "reason"], "keys")
    harness.eq(fields["state"], "dead", "state")
    harness.eq(fields["path"], q.files[2], "path")
    harness.eq(fields["finished_at"], "1970-01-01T00:16:40Z", "finished_at")
    harness.eq(fields["failure_class"], "permanent", "class")
    harness.eq(fields["reason"], "HTTP 422: bad\\x1B[31m\\x09red\\x0Asr2fhir: forged", "reason")
    rc, out, err = run("show", "--data", q.dir, "4")
    fields = dict(line.split(": ", 1) for line in out.splitlines())
    harness.eq((fields["state"], fields["worker"], fields["lease_until"]),
               ("leased", "w2", "2033-05-18T03:50:00Z"), "leased job")
    rc, out, err = run("show", "--data", q.dir, "99")
    one_line_error(err, 12, rc, "sr2fhir: %s: no job 99" % q.db)
    harness.eq(out, "", "stdout of a missing job")


def t_retry(top):
    q = Queue(top)
    rc, out, err = run("retry", "--data", q.dir, "2")
    harness.eq((rc, out, err), (0, "job 2: pending again\n", ""), "retry of the dead job")
    harness.eq(stats_of(q), {"pending": "2", "leased": "1", "done": "2", "dead": "0",
                             "not_applicable": "1"}, "stats after retry")
    rc, out, err = run("retry", "--data", q.dir, "1")
    one_line_error(err, 12, rc, "sr2fhir: %s: job 1 is done, not dead" % q.db)
    harness.eq(out, "", "stdout of a refused retry")
    rc, out, err = run("retry", "--data", q.dir, "77")
    one_line_error(err, 12, rc, "sr2fhir: %s: no job 77" % q.db)
    harness.eq(stats_of(q)["done"], "2", "done after refused retry")


def t_retry_all_dead(top):
    q = Queue(top)
    # a second dead job (7) and a third (8) whose SOP Instance UID is waiting again (9)
    fill(q.db, "add", "1.2.9.7", q.files[1], "s", "500", "claim", "w", "60", "500",
         "dead", "auth", "HTTP 401", "now",
         "add", "1.2.9.8", q.files[1], "s", "500", "claim", "w", "60", "500",
         "dead", "permanent", "HTTP 400", "now", "add", "1.2.9.8", q.files[1], "s", "500")
    rc, out, err = run("retry", "--data", q.dir, "--all-dead")
    harness.eq(out, "job 2: pending again\njob 7: pending again\n"
               "2 dead jobs pending again, 1 not retried\n", "stdout")
    one_line_error(err, 2, rc, "sr2fhir: %s: job 8: not retried" % q.db)
    harness.eq(stats_of(q)["dead"], "1", "dead after --all-dead")


def t_purge(top):
    q = Queue(top)
    outside = os.path.join(top, "outside.dcm")
    with open(outside, "wb") as fh:
        fh.write(b"x")
    fill(q.db, "add", "1.2.9.10", outside, "s", "500", "claim", "w", "60", "500", "done", OLD)
    rc, out, err = run("purge", "--data", q.dir, "--older-than", "3600")
    harness.eq(rc, 0, "exit code (%s)" % err)
    harness.eq(out, "3 jobs purged (done, not_applicable finished more than 3600 seconds ago),"
               " 2 files removed\n", "stdout")
    assert "1 purged jobs' files are not in" in err, "no warning of the file kept: %r" % err
    rc, out, _ = run("list", "--data", q.dir)
    harness.eq([line.split("\t")[0] for line in out.splitlines()[1:]], ["2", "4", "5", "6"],
               "jobs left")
    harness.eq(sorted(os.listdir(q.incoming)), ["2.dcm", "4.dcm", "5.dcm", "6.dcm"],
               "files left in incoming")
    assert os.path.exists(outside), "a file outside DIR/incoming was removed"
    rc, out, err = run("purge", "--data", q.dir, "--older-than", "3600", "--dead")
    harness.eq((rc, out.split(" ")[0]), (0, "1"), "purge --dead")
    harness.eq(stats_of(q), {"pending": "1", "leased": "1", "done": "1", "dead": "0",
                             "not_applicable": "0"}, "stats after purge --dead")


def t_missing_database(top):
    empty = os.path.join(top, "nodb")
    os.makedirs(empty)
    for args in (["stats"], ["list"], ["show", "1"], ["retry", "1"],
                 ["purge", "--older-than", "1"]):
        rc, out, err = run(*args, "--data", empty)
        one_line_error(err, 3, rc, "sr2fhir: %s/queue.sqlite: " % empty)
        harness.eq(os.listdir(empty), [], "files created by %s" % args[0])
    absent = os.path.join(top, "absent")
    rc, out, err = run("stats", "--data", absent)
    one_line_error(err, 3, rc, "sr2fhir: %s/queue.sqlite: " % absent)
    assert not os.path.exists(absent), "the data folder was created"
    notq = os.path.join(top, "notq")
    os.makedirs(notq)
    with open(os.path.join(notq, "queue.sqlite"), "wb") as fh:
        fh.write(b"this is not a database, just some text" * 100)
    rc, out, err = run("stats", "--data", notq)
    one_line_error(err, 3, rc, "sr2fhir: %s/queue.sqlite: " % notq)


def t_usage(top):
    q = Queue(top)
    cases = [[], ["frobnicate", "--data", q.dir], ["stats"], ["stats", "--data"],
             ["stats", "--data", q.dir, "--bogus"], ["stats", "--data", q.dir, "1"],
             ["list", "--data", q.dir, "--state", "lost"],
             ["list", "--data", q.dir, "--limit", "0"],
             ["list", "--data", q.dir, "--limit", "100001"],
             ["list", "--data", q.dir, "--after", "-1"],
             ["show", "--data", q.dir], ["show", "--data", q.dir, "1", "2"],
             ["show", "--data", q.dir, "x"], ["retry", "--data", q.dir],
             ["retry", "--data", q.dir, "2", "--all-dead"], ["retry", "--data", q.dir, "0"],
             ["purge", "--data", q.dir], ["purge", "--data", q.dir, "--older-than", "-5"],
             ["purge", "--data", q.dir, "--older-than", "1x"],
             ["show", "--data", os.path.join(top, "absent"), "x"]]
    before = stats_of(q)
    for args in cases:
        rc, out, err = run(*args)
        try:
            one_line_error(err, 2, rc)
        except AssertionError as e:
            raise AssertionError("%s: %s" % (args, e))
        harness.eq(out, "", "stdout of %s" % args)
    harness.eq(stats_of(q), before, "stats after usage errors")


def t_exec_beside(top):
    """`sr2fhir serve|send ARGS` run sr2fhir-serve|send beside the binary (else on PATH)
    with the same arguments (src/cli/main.c exec_program)."""
    d = os.path.join(top, "bin")
    os.makedirs(d)
    exe = os.path.join(d, "sr2fhir")
    shutil.copy(harness.SR2FHIR, exe)
    for prog in ("serve", "send"):
        fake = os.path.join(d, "sr2fhir-" + prog)
        with open(fake, "w") as fh:
            fh.write('#!/bin/sh\necho "$0|$*"\nexit 7\n')
        os.chmod(fake, 0o755)
        p = subprocess.run([exe, prog, "--http", "127.0.0.1:0", "a b"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=harness.clean_env(PATH="/usr/bin:/bin"),
                           timeout=60)
        harness.eq((p.returncode, p.stdout.decode()), (7, "%s|--http 127.0.0.1:0 a b\n" % fake),
                   prog + " beside")
    os.unlink(os.path.join(d, "sr2fhir-serve"))
    p = subprocess.run([exe, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=harness.clean_env(PATH="/nonexistent"), timeout=60)
    one_line_error(p.stderr.decode(), 3, p.returncode, "sr2fhir: serve: cannot run sr2fhir-serve")


def main():
    harness.require_sr2fhir("queue_cli")
    if not os.access(QUEUE_FILL, os.X_OK):
        harness.out("FAIL queue_cli: no %s (run make unit)" % QUEUE_FILL)
        return 1
    top = tempfile.mkdtemp(prefix="s2f-queue-cli-")
    try:
        for name, fn in [("stats_exact", t_stats_exact), ("list", t_list), ("show", t_show),
                         ("retry_dead_and_refusals", t_retry),
                         ("retry_all_dead", t_retry_all_dead),
                         ("purge_old_done_and_not_applicable", t_purge),
                         ("missing_database_exit_3_creates_nothing", t_missing_database),
                         ("usage_errors_exit_2", t_usage),
                         ("serve_and_send_exec_the_program_beside", t_exec_beside)]:
            harness.test("queue_cli:" + name, fn, top)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
