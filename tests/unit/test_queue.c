/*
 * test_queue.c - unit tests of the gateway's durable queue (src/gateway/queue_sqlite.c,
 * issue 11 Build #3): enqueue/claim/done, leases (expiry, stale holders), attempts,
 * retry_later's not-before time, dead letters, idempotent enqueue, stats, purge, and
 * durability across close/reopen and a SIGKILLed writer. Time is passed in; nothing sleeps.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "gateway/queue.h"

static char dir[64];
static char db_path[128];

/* A fresh database file in a new temporary folder for each test. */
static s2f_queue *fresh(void)
{
    snprintf(dir, sizeof dir, "/tmp/s2f-queue-XXXXXX");
    if (!mkdtemp(dir))
        return NULL;
    snprintf(db_path, sizeof db_path, "%s/queue.db", dir);
    s2f_queue *q = NULL;
    s2f_error err = {0};
    if (s2f_queue_open(db_path, NULL, &q, &err) != S2F_OK) {
        fprintf(stderr, "open: %s\n", err.message);
        return NULL;
    }
    return q;
}

static void cleanup(s2f_queue *q)
{
    char p[192];
    s2f_queue_close(q);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", db_path, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
}

static int64_t add(s2f_queue *q, const char *uid, int64_t now)
{
    int64_t id = 0;
    bool created = false;
    s2f_error err = {0};
    if (s2f_queue_enqueue(q, uid, "/data/x.dcm", "127.0.0.1 token:ai", now, &id, &created,
                          &err) != S2F_OK || !created)
        return -1;
    return id;
}

static bool claim(s2f_queue *q, const char *worker, int lease, int64_t now, s2f_job *job)
{
    bool found = false;
    s2f_error err = {0};
    return s2f_queue_claim(q, worker, lease, now, job, &found, &err) == S2F_OK && found;
}

static s2f_job_state state_of(s2f_queue *q, int64_t id, char *reason, size_t size)
{
    s2f_job_state st = S2F_JOB_NSTATES;
    s2f_error err = {0};
    s2f_queue_job_state(q, id, &st, NULL, 0, reason, size, &err);
    return st;
}

TEST(queue_enqueue_claim_done)
{
    s2f_queue *q = fresh();
    CHECK(q);
    int64_t id = add(q, "1.2.3.4", 100);
    s2f_job job;
    bool ok = id > 0 && claim(q, "w1", 60, 100, &job);
    s2f_error err = {0};
    bool done = ok && s2f_queue_done(q, &job, 110, &err) == S2F_OK;
    bool again = claim(q, "w1", 60, 1000, &job);
    s2f_job_state st = state_of(q, id, NULL, 0);
    cleanup(q);
    CHECK(ok && done);
    CHECK(job.id == id);
    CHECK_STR(job.sop_instance_uid, "1.2.3.4");
    CHECK_STR(job.path, "/data/x.dcm");
    CHECK_STR(job.source, "127.0.0.1 token:ai");
    CHECK(!again);
    CHECK(st == S2F_JOB_DONE);
}

/* A crashed worker's job comes back once its lease ends, with attempts counted. */
TEST(queue_lease_expiry_returns_job_and_counts_attempts)
{
    s2f_queue *q = fresh();
    CHECK(q);
    int64_t id = add(q, "1.2.3.5", 100);
    s2f_job a, b, c;
    bool first = claim(q, "w1", 30, 100, &a);
    bool during = claim(q, "w2", 30, 129, &b);   /* lease runs until 130 */
    bool after = claim(q, "w2", 30, 130, &b);
    bool third = claim(q, "w3", 30, 200, &c);
    cleanup(q);
    CHECK(first && !during && after && third);
    CHECK(a.id == id && b.id == id && c.id == id);
    CHECK(a.attempts == 1 && b.attempts == 2 && c.attempts == 3);
    CHECK(a.lease_until == 130 && b.lease_until == 160);
    CHECK_STR(b.worker, "w2");
}

/* A worker whose lease ended and was claimed again cannot overwrite the new holder. */
TEST(queue_stale_lease_holder_cannot_complete)
{
    s2f_queue *q = fresh();
    CHECK(q);
    int64_t id = add(q, "1.2.3.6", 100);
    s2f_job a, b;
    bool claimed = claim(q, "w1", 10, 100, &a) && claim(q, "w2", 10, 111, &b);
    s2f_error err = {0};
    s2f_code stale_done = s2f_queue_done(q, &a, 112, &err);
    s2f_code stale_dead = s2f_queue_dead(q, &a, "permanent", "old", 112, &err);
    s2f_code stale_retry = s2f_queue_retry_later(q, &a, 500, "old", &err);
    s2f_job_state mid = state_of(q, id, NULL, 0);
    s2f_code fresh_done = s2f_queue_done(q, &b, 113, &err);
    s2f_code twice = s2f_queue_done(q, &b, 114, &err);
    s2f_job_state end = state_of(q, id, NULL, 0);
    cleanup(q);
    CHECK(claimed);
    CHECK(stale_done == S2F_ELOOKUP && stale_dead == S2F_ELOOKUP && stale_retry == S2F_ELOOKUP);
    CHECK(mid == S2F_JOB_LEASED);
    CHECK(fresh_done == S2F_OK && end == S2F_JOB_DONE);
    CHECK(twice == S2F_ELOOKUP);
}

/* Issue 11 (throughput): done and the next claim in one transaction; a lost lease
 * changes nothing (no claim either); an empty queue claims nothing. */
TEST(queue_done_claim_is_one_step)
{
    s2f_queue *q = fresh();
    CHECK(q);
    int64_t id1 = add(q, "1.2.3.60", 100), id2 = add(q, "1.2.3.61", 101);
    s2f_job a, next, stale, none;
    bool found = false, found2 = true, found3 = true;
    s2f_error err = {0};
    bool claimed = claim(q, "w1", 60, 102, &a);
    s2f_code rc = s2f_queue_done_claim(q, &a, 103, "w1", 60, &next, &found, &err);
    s2f_job_state st1 = state_of(q, id1, NULL, 0), st2 = state_of(q, id2, NULL, 0);
    /* `a` is done now: finishing it again is a lost lease; job 2 stays with w1 */
    s2f_code lost = s2f_queue_done_claim(q, &a, 104, "w2", 60, &stale, &found2, &err);
    s2f_job_state st2b = state_of(q, id2, NULL, 0);
    s2f_code last = s2f_queue_done_claim(q, &next, 105, "w1", 60, &none, &found3, &err);
    s2f_job_state st2c = state_of(q, id2, NULL, 0);
    cleanup(q);
    CHECK(claimed && a.id == id1);
    CHECK(rc == S2F_OK && found);
    CHECK(next.id == id2 && next.attempts == 1 && next.lease_until == 163);
    CHECK_STR(next.worker, "w1");
    CHECK(st1 == S2F_JOB_DONE && st2 == S2F_JOB_LEASED);
    CHECK(lost == S2F_ELOOKUP && !found2 && st2b == S2F_JOB_LEASED);
    CHECK(last == S2F_OK && !found3 && st2c == S2F_JOB_DONE);
}

/* The claim order over pending jobs and ended leases: the earlier of not_before and
 * lease_until first, then the id (the claim reads two indexes, issue 11 throughput). */
TEST(queue_claim_order_mixes_pending_and_ended_leases)
{
    s2f_queue *q = fresh();
    CHECK(q);
    int64_t a = add(q, "1.2.3.70", 100), b = add(q, "1.2.3.71", 100), c = add(q, "1.2.3.72", 100);
    s2f_job ja, jb, x, y, z, none;
    s2f_error err = {0};
    /* a: pending again, not before 150; b: leased until 120 (ended at 200); c: pending at 100 */
    bool ok = claim(q, "w1", 60, 100, &ja) && claim(q, "w1", 20, 100, &jb) &&
              s2f_queue_retry_later(q, &ja, 150, "later", &err) == S2F_OK;
    bool first = claim(q, "w2", 60, 200, &x), second = claim(q, "w2", 60, 200, &y),
         third = claim(q, "w2", 60, 200, &z), fourth = claim(q, "w2", 60, 200, &none);
    cleanup(q);
    CHECK(ok && ja.id == a && jb.id == b);
    CHECK(first && x.id == c);
    CHECK(second && y.id == b && y.attempts == 2);
    CHECK(third && z.id == a && z.attempts == 2);
    CHECK(!fourth);
}

TEST(queue_retry_later_respects_not_before)
{
    s2f_queue *q = fresh();
    CHECK(q);
    int64_t id = add(q, "1.2.3.7", 100);
    add(q, "1.2.3.8", 101);
    s2f_job a, other, b;
    s2f_error err = {0};
    bool ok = claim(q, "w1", 60, 102, &a) && a.id == id &&
              s2f_queue_retry_later(q, &a, 300, "HTTP 503", &err) == S2F_OK;
    char reason[64] = "";
    s2f_job_state st = state_of(q, id, reason, sizeof reason);
    /* the other job is ready; the retried one is not before 300 */
    bool got_other = claim(q, "w1", 1000, 103, &other);
    bool early = claim(q, "w1", 60, 299, &b);
    bool on_time = claim(q, "w1", 60, 300, &b);
    cleanup(q);
    CHECK(ok && st == S2F_JOB_PENDING);
    CHECK_STR(reason, "HTTP 503");
    CHECK(got_other && other.id != id);
    CHECK(!early && on_time && b.id == id && b.attempts == 2);
}

TEST(queue_dead_letter_keeps_class_and_reason)
{
    s2f_queue *q = fresh();
    CHECK(q);
    int64_t id = add(q, "1.2.3.9", 100);
    int64_t na = add(q, "1.2.3.10", 100);
    s2f_job a, b;
    s2f_error err = {0};
    bool ok = claim(q, "w1", 60, 100, &a) && claim(q, "w1", 60, 100, &b) &&
              s2f_queue_dead(q, a.id == id ? &a : &b, "permanent",
                             "HTTP 422: Observation.code missing", 101, &err) == S2F_OK &&
              s2f_queue_not_applicable(q, a.id == id ? &b : &a, "not TID 1500 (M2)", 101,
                                       &err) == S2F_OK;
    s2f_job_state st = S2F_JOB_NSTATES, st_na = state_of(q, na, NULL, 0);
    char cls[32] = "", reason[128] = "";
    s2f_queue_job_state(q, id, &st, cls, sizeof cls, reason, sizeof reason, &err);
    bool again = claim(q, "w1", 60, 100000, &a);
    cleanup(q);
    CHECK(ok && st == S2F_JOB_DEAD && st_na == S2F_JOB_NOT_APPLICABLE);
    CHECK_STR(cls, "permanent");
    CHECK_STR(reason, "HTTP 422: Observation.code missing");
    CHECK(!again);
}

/* Idempotent receive: the same SOP Instance UID while pending or leased is one job; once
 * finished, a resend is a new job. */
TEST(queue_idempotent_enqueue)
{
    s2f_queue *q = fresh();
    CHECK(q);
    int64_t id1 = 0, id2 = 0, id3 = 0, id4 = 0;
    bool c1 = false, c2 = true, c3 = true, c4 = false;
    s2f_error err = {0};
    s2f_job job;
    bool ok = s2f_queue_enqueue(q, "1.2.3.11", "/d/a", "s", 100, &id1, &c1, &err) == S2F_OK &&
              s2f_queue_enqueue(q, "1.2.3.11", "/d/b", "s", 101, &id2, &c2, &err) == S2F_OK &&
              claim(q, "w1", 60, 102, &job) &&
              s2f_queue_enqueue(q, "1.2.3.11", "/d/c", "s", 103, &id3, &c3, &err) == S2F_OK &&
              s2f_queue_done(q, &job, 104, &err) == S2F_OK &&
              s2f_queue_enqueue(q, "1.2.3.11", "/d/d", "s", 105, &id4, &c4, &err) == S2F_OK;
    s2f_queue_stats stats;
    s2f_queue_stats_get(q, &stats, &err);
    cleanup(q);
    CHECK(ok);
    CHECK(c1 && !c2 && !c3 && c4);
    CHECK(id2 == id1 && id3 == id1 && id4 != id1);
    CHECK_STR(job.path, "/d/a");
    CHECK(stats.count[S2F_JOB_PENDING] == 1 && stats.count[S2F_JOB_DONE] == 1);
}

TEST(queue_stats_and_purge)
{
    s2f_queue *q = fresh();
    CHECK(q);
    const char *uids[] = {"1.1", "1.2", "1.3", "1.4", "1.5", "1.6"};
    for (int i = 0; i < 6; i++)
        add(q, uids[i], 100 + i);
    s2f_job j[4];
    s2f_error err = {0};
    bool ok = true;
    for (int i = 0; i < 4; i++)
        ok = ok && claim(q, "w", 60, 200, &j[i]);
    ok = ok && s2f_queue_done(q, &j[0], 210, &err) == S2F_OK &&
         s2f_queue_done(q, &j[1], 300, &err) == S2F_OK &&
         s2f_queue_dead(q, &j[2], "auth", "HTTP 401", 210, &err) == S2F_OK;
    s2f_queue_stats before, after;
    int64_t removed = -1;
    ok = ok && s2f_queue_stats_get(q, &before, &err) == S2F_OK &&
         s2f_queue_purge_done(q, 250, &removed, &err) == S2F_OK &&
         s2f_queue_stats_get(q, &after, &err) == S2F_OK;
    cleanup(q);
    CHECK(ok);
    CHECK(before.count[S2F_JOB_PENDING] == 2 && before.count[S2F_JOB_LEASED] == 1);
    CHECK(before.count[S2F_JOB_DONE] == 2 && before.count[S2F_JOB_DEAD] == 1);
    CHECK(before.count[S2F_JOB_NOT_APPLICABLE] == 0);
    CHECK(removed == 1 && after.count[S2F_JOB_DONE] == 1 && after.count[S2F_JOB_DEAD] == 1);
    CHECK_STR(s2f_job_state_name(S2F_JOB_NOT_APPLICABLE), "not_applicable");
}

TEST(queue_durable_across_reopen)
{
    s2f_queue *q = fresh();
    CHECK(q);
    int64_t id = add(q, "1.2.3.12", 100);
    int64_t id2 = add(q, "1.2.3.13", 100);
    s2f_job a;
    s2f_error err = {0};
    bool ok = claim(q, "w1", 60, 100, &a) && s2f_queue_dead(q, &a, "conversion", "bad", 101,
                                                           &err) == S2F_OK;
    s2f_queue_close(q);
    q = NULL;
    s2f_code rc = s2f_queue_open(db_path, NULL, &q, &err);
    s2f_job b;
    bool got = rc == S2F_OK && claim(q, "w2", 60, 102, &b);
    s2f_job_state st = rc == S2F_OK ? state_of(q, a.id, NULL, 0) : S2F_JOB_NSTATES;
    cleanup(q);
    CHECK(ok && rc == S2F_OK && got);
    CHECK(a.id == id && b.id == id2 && st == S2F_JOB_DEAD);
    CHECK_STR(b.sop_instance_uid, "1.2.3.13");
}

/* The writer is SIGKILLed right after enqueue returned: the committed job is there. */
static void child_enqueue_then_wait(int fd)
{
    s2f_queue *q = NULL;
    s2f_error err = {0};
    int64_t id = -1;
    bool created = false;
    if (s2f_queue_open(db_path, NULL, &q, &err) != S2F_OK ||
        s2f_queue_enqueue(q, "1.2.3.99", "/d/k.dcm", "child", 100, &id, &created, &err) != S2F_OK)
        id = -1;
    if (write(fd, &id, sizeof id) != (ssize_t)sizeof id)
        _exit(2);
    for (;;)
        pause();
}

TEST(queue_survives_sigkill_after_enqueue)
{
    s2f_queue *q = fresh();
    CHECK(q);
    s2f_queue_close(q);
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child_enqueue_then_wait(fds[1]);
    }
    close(fds[1]);
    int64_t id = -1;
    ssize_t n = pid > 0 ? read(fds[0], &id, sizeof id) : -1;
    close(fds[0]);
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    s2f_error err = {0};
    q = NULL;
    s2f_code rc = s2f_queue_open(db_path, NULL, &q, &err);
    s2f_job job;
    bool got = rc == S2F_OK && claim(q, "w", 60, 100, &job);
    cleanup(q);
    CHECK(pid > 0 && n == (ssize_t)sizeof id && id > 0);
    CHECK(got && job.id == id);
    CHECK_STR(job.sop_instance_uid, "1.2.3.99");
}

/* `queue retry` of a dead letter: pending again, claimable, attempts kept; refused while
 * another job of the same SOP Instance UID waits, and for a job that is not dead. */
TEST(queue_retry_dead_letter)
{
    s2f_queue *q = fresh();
    CHECK(q);
    int64_t id = add(q, "1.2.3.20", 100);
    s2f_job a, b;
    s2f_error err = {0};
    bool ok = claim(q, "w1", 60, 100, &a) &&
              s2f_queue_dead(q, &a, "permanent", "HTTP 400", 101, &err) == S2F_OK;
    int64_t dup = add(q, "1.2.3.20", 102);
    s2f_code blocked = s2f_queue_retry_dead(q, id, 103, &err);
    s2f_job d;
    bool dup_done = claim(q, "w1", 60, 104, &d) && s2f_queue_done(q, &d, 105, &err) == S2F_OK;
    s2f_code retried = s2f_queue_retry_dead(q, id, 106, &err);
    s2f_code not_dead = s2f_queue_retry_dead(q, id, 106, &err);
    bool got = claim(q, "w2", 60, 106, &b);
    cleanup(q);
    CHECK(ok && dup > 0 && dup != id && dup_done);
    CHECK(blocked == S2F_EUSAGE && retried == S2F_OK && not_dead == S2F_ELOOKUP);
    CHECK(got && b.id == id && b.attempts == 2);
}

/* Claims from several processes, each with its own connection, at the same time: every
 * job is claimed exactly once (the claim is one write transaction). */
#define RACE_JOBS 60
#define RACE_WORKERS 4

static void child_claim_all(int fd, int worker)
{
    s2f_queue *q = NULL;
    s2f_error err = {0};
    char name[16];
    snprintf(name, sizeof name, "w%d", worker);
    int64_t id = 0;
    if (s2f_queue_open(db_path, NULL, &q, &err) == S2F_OK) {
        s2f_job job;
        bool found = true;
        while (s2f_queue_claim(q, name, 600, 100, &job, &found, &err) == S2F_OK && found)
            if (write(fd, &job.id, sizeof job.id) != (ssize_t)sizeof job.id)
                break;
        if (found)
            id = -1; /* an error: tell the parent */
        s2f_queue_close(q);
    } else
        id = -1;
    if (id < 0 && write(fd, &id, sizeof id) != (ssize_t)sizeof id)
        _exit(3);
    _exit(0);
}

TEST(queue_concurrent_claims_take_each_job_once)
{
    s2f_queue *q = fresh();
    CHECK(q);
    char uid[32];
    for (int i = 0; i < RACE_JOBS; i++) {
        snprintf(uid, sizeof uid, "1.2.9.%d", i);
        add(q, uid, 100);
    }
    s2f_queue_close(q);
    int fds[2];
    CHECK(pipe(fds) == 0);
    for (int w = 0; w < RACE_WORKERS; w++)
        if (fork() == 0) {
            close(fds[0]);
            child_claim_all(fds[1], w);
        }
    close(fds[1]);
    int seen[RACE_JOBS + 1] = {0}, errors = 0, total = 0;
    int64_t id;
    while (read(fds[0], &id, sizeof id) == (ssize_t)sizeof id) {
        if (id < 1 || id > RACE_JOBS)
            errors++;
        else
            seen[id]++;
        total++;
    }
    close(fds[0]);
    int status, bad_exit = 0;
    for (int w = 0; w < RACE_WORKERS; w++)
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            bad_exit++;
    int twice = 0, missing = 0;
    for (int i = 1; i <= RACE_JOBS; i++) {
        twice += seen[i] > 1;
        missing += seen[i] == 0;
    }
    s2f_error err = {0};
    q = NULL;
    s2f_queue_stats stats = {{0}};
    if (s2f_queue_open(db_path, NULL, &q, &err) == S2F_OK)
        s2f_queue_stats_get(q, &stats, &err);
    cleanup(q);
    CHECK(errors == 0 && bad_exit == 0);
    CHECK(total == RACE_JOBS && twice == 0 && missing == 0);
    CHECK(stats.count[S2F_JOB_LEASED] == RACE_JOBS && stats.count[S2F_JOB_PENDING] == 0);
}

TEST(queue_refuses_bad_arguments)
{
    s2f_queue *q = fresh();
    CHECK(q);
    char uid[80];
    memset(uid, '1', sizeof uid - 1);
    uid[sizeof uid - 1] = 0;
    int64_t id = 0;
    s2f_error err = {0};
    s2f_code long_uid = s2f_queue_enqueue(q, uid, "/p", "s", 1, &id, NULL, &err);
    s2f_code empty = s2f_queue_enqueue(q, "", "/p", "s", 1, &id, NULL, &err);
    s2f_job job;
    bool found = true;
    s2f_code lease = s2f_queue_claim(q, "w", 0, 1, &job, &found, &err);
    s2f_queue *none = NULL;
    s2f_code bad_open = s2f_queue_open("/nonexistent-dir/q.db", NULL, &none, &err);
    cleanup(q);
    CHECK(long_uid == S2F_EUSAGE && empty == S2F_EUSAGE && lease == S2F_EUSAGE && !found);
    CHECK(bad_open == S2F_EIO && none == NULL);
    CHECK(strstr(err.message, "/nonexistent-dir/q.db") != NULL);
}

/* ---- operating the queue: list, get, purge, existing-only open (issue 11 Build #5) ---- */

/* One job in each state: ids 1 pending, 2 leased (w7), 3 done, 4 dead, 5 not applicable. */
static bool five_states(s2f_queue *q)
{
    const char *uids[] = {"2.1", "2.2", "2.3", "2.4"};
    for (int i = 0; i < 4; i++)
        if (add(q, uids[i], 100 + i) != i + 1)
            return false;
    s2f_job j[4];
    s2f_error err = {0};
    bool ok = true;
    for (int i = 0; i < 4; i++)
        ok = ok && claim(q, i == 0 ? "w7" : "w", i == 0 ? 60 : 10000, 200, &j[i]);
    /* claims take ids 1..4 in order; put job 1 back as pending, retry at 500 */
    return ok && s2f_queue_retry_later(q, &j[0], 500, "HTTP 503", &err) == S2F_OK &&
           claim(q, "w7", 60, 501, &j[0]) && j[0].id == 1 &&
           s2f_queue_retry_later(q, &j[0], 900, "HTTP 503 again", &err) == S2F_OK &&
           s2f_queue_done(q, &j[2], 210, &err) == S2F_OK &&
           s2f_queue_dead(q, &j[3], "permanent", "HTTP 422: no", 220, &err) == S2F_OK &&
           add(q, "2.5", 300) == 5 && claim(q, "w", 60, 301, &j[0]) && j[0].id == 5 &&
           s2f_queue_not_applicable(q, &j[0], "not TID 1500", 230, &err) == S2F_OK;
}

struct seen {
    int n;
    int64_t ids[16];
    s2f_job_info last;
    int stop_after;
};

static int collect(void *ctx, const s2f_job_info *info)
{
    struct seen *s = ctx;
    if (s->n < 16)
        s->ids[s->n] = info->id;
    s->n++;
    s->last = *info;
    return s->stop_after && s->n >= s->stop_after;
}

TEST(queue_list_filters_and_pages)
{
    s2f_queue *q = fresh();
    CHECK(q);
    bool ok = five_states(q);
    s2f_error err = {0};
    struct seen all = {0}, dead = {0}, page = {0}, stopped = {.stop_after = 2}, none = {0};
    s2f_queue_filter f_all = {S2F_JOB_NSTATES, 0, 100};
    s2f_queue_filter f_dead = {S2F_JOB_DEAD, 0, 100};
    s2f_queue_filter f_page = {S2F_JOB_NSTATES, 2, 2};
    s2f_queue_filter f_bad = {S2F_JOB_NSTATES, 0, 0};
    s2f_queue_filter f_after = {S2F_JOB_NSTATES, 5, 10};
    s2f_code rc_all = s2f_queue_list(q, &f_all, collect, &all, &err);
    s2f_code rc_dead = s2f_queue_list(q, &f_dead, collect, &dead, &err);
    s2f_code rc_page = s2f_queue_list(q, &f_page, collect, &page, &err);
    s2f_code rc_stop = s2f_queue_list(q, &f_all, collect, &stopped, &err);
    s2f_code rc_after = s2f_queue_list(q, &f_after, collect, &none, &err);
    s2f_code rc_bad = s2f_queue_list(q, &f_bad, collect, &none, &err);
    cleanup(q);
    CHECK(ok);
    CHECK(rc_all == S2F_OK && all.n == 5);
    CHECK(all.ids[0] == 1 && all.ids[1] == 2 && all.ids[2] == 3 && all.ids[3] == 4 &&
          all.ids[4] == 5);
    CHECK(rc_dead == S2F_OK && dead.n == 1 && dead.ids[0] == 4);
    CHECK(dead.last.state == S2F_JOB_DEAD && dead.last.finished_at == 220);
    CHECK_STR(dead.last.failure_class, "permanent");
    CHECK_STR(dead.last.reason, "HTTP 422: no");
    CHECK_STR(dead.last.sop_instance_uid, "2.4");
    CHECK(rc_page == S2F_OK && page.n == 2 && page.ids[0] == 3 && page.ids[1] == 4);
    CHECK(rc_stop == S2F_OK && stopped.n == 2);
    CHECK(rc_after == S2F_OK && none.n == 0);
    CHECK(rc_bad == S2F_EUSAGE);
}

TEST(queue_get_reads_every_field)
{
    s2f_queue *q = fresh();
    CHECK(q);
    bool ok = five_states(q);
    s2f_error err = {0};
    s2f_job_info p, l, d, missing;
    s2f_code rc_p = s2f_queue_get(q, 1, &p, &err);
    s2f_code rc_l = s2f_queue_get(q, 2, &l, &err);
    s2f_code rc_d = s2f_queue_get(q, 3, &d, &err);
    s2f_code rc_m = s2f_queue_get(q, 6, &missing, &err);
    cleanup(q);
    CHECK(ok && rc_p == S2F_OK && rc_l == S2F_OK && rc_d == S2F_OK);
    CHECK(p.state == S2F_JOB_PENDING && p.attempts == 2 && p.enqueued_at == 100);
    CHECK(p.not_before == 900 && p.lease_until == -1 && p.finished_at == -1);
    CHECK_STR(p.failure_class, "transient");
    CHECK_STR(p.reason, "HTTP 503 again");
    CHECK_STR(p.worker, "");
    CHECK_STR(p.path, "/data/x.dcm");
    CHECK_STR(p.source, "127.0.0.1 token:ai");
    CHECK(l.state == S2F_JOB_LEASED && l.attempts == 1 && l.lease_until == 10200);
    CHECK_STR(l.worker, "w");
    CHECK(d.state == S2F_JOB_DONE && d.finished_at == 210);
    CHECK(rc_m == S2F_ELOOKUP);
}

struct purge_log {
    int n;
    int64_t id_sum;
    int bad_path;
};

static void on_purged(void *ctx, int64_t id, const char *path)
{
    struct purge_log *log = ctx;
    log->n++;
    log->id_sum += id;
    log->bad_path += strcmp(path, "/data/x.dcm") != 0;
}

/* More jobs than one purge batch (256): all old done / not-applicable ones go, each path
 * reported once; dead letters, recent and unfinished jobs stay; dead ones go when asked. */
#define PURGE_JOBS 300
TEST(queue_purge_by_state_and_age_in_batches)
{
    s2f_queue *q = fresh();
    CHECK(q);
    char uid[32];
    s2f_error err = {0};
    bool ok = true;
    int64_t expect_sum = 0;
    for (int i = 0; i < PURGE_JOBS && ok; i++) {
        snprintf(uid, sizeof uid, "3.%d", i);
        s2f_job job;
        int64_t id = add(q, uid, 100);
        ok = id > 0 && claim(q, "w", 60, 100, &job) && job.id == id;
        if (ok && i % 3 == 0)
            ok = s2f_queue_not_applicable(q, &job, "no", 150, &err) == S2F_OK;
        else if (ok)
            ok = s2f_queue_done(q, &job, 150, &err) == S2F_OK;
        expect_sum += id;
    }
    s2f_job job;
    int64_t recent = add(q, "3.recent", 100), dead = add(q, "3.dead", 100);
    int64_t open = add(q, "3.open", 100);
    ok = ok && recent > 0 && dead > 0 && open > 0 && claim(q, "w", 60, 100, &job) &&
         s2f_queue_done(q, &job, 500, &err) == S2F_OK && claim(q, "w", 60, 100, &job) &&
         s2f_queue_dead(q, &job, "permanent", "x", 150, &err) == S2F_OK;
    struct purge_log log = {0}, log_dead = {0};
    int64_t removed = -1, removed_dead = -1;
    s2f_code bad = s2f_queue_purge(q, S2F_JOB_BIT(S2F_JOB_PENDING), 1000, NULL, NULL, NULL, &err);
    s2f_code rc = s2f_queue_purge(q, S2F_JOB_BIT(S2F_JOB_DONE) |
                                        S2F_JOB_BIT(S2F_JOB_NOT_APPLICABLE),
                                  200, on_purged, &log, &removed, &err);
    s2f_queue_stats mid;
    s2f_queue_stats_get(q, &mid, &err);
    s2f_code rc_dead = s2f_queue_purge(q, S2F_JOB_BIT(S2F_JOB_DEAD), 200, on_purged, &log_dead,
                                       &removed_dead, &err);
    s2f_queue_stats end;
    s2f_queue_stats_get(q, &end, &err);
    cleanup(q);
    CHECK(ok);
    CHECK(bad == S2F_EUSAGE);
    CHECK(rc == S2F_OK && removed == PURGE_JOBS && log.n == PURGE_JOBS);
    CHECK(log.id_sum == expect_sum && log.bad_path == 0);
    CHECK(mid.count[S2F_JOB_DONE] == 1 && mid.count[S2F_JOB_NOT_APPLICABLE] == 0);
    CHECK(mid.count[S2F_JOB_DEAD] == 1 && mid.count[S2F_JOB_PENDING] == 1);
    CHECK(rc_dead == S2F_OK && removed_dead == 1 && log_dead.id_sum == dead);
    CHECK(end.count[S2F_JOB_DEAD] == 0 && end.count[S2F_JOB_DONE] == 1);
}

/* `sr2fhir queue` opens an existing queue only: a missing file is not created, another
 * SQLite database is refused and left as it was. */
TEST(queue_open_existing_only)
{
    s2f_queue *q = fresh();
    CHECK(q);
    add(q, "4.1", 100);
    s2f_queue_close(q);
    s2f_queue_options opt = {.existing_only = true};
    s2f_error err = {0};
    char missing[192], other[192];
    snprintf(missing, sizeof missing, "%s/missing.db", dir);
    snprintf(other, sizeof other, "%s/other.db", dir);
    s2f_queue *m = NULL, *o = NULL, *e = NULL;
    s2f_code rc_missing = s2f_queue_open(missing, &opt, &m, &err);
    bool created = access(missing, F_OK) == 0;
    sqlite3 *db = NULL;
    bool other_made = sqlite3_open(other, &db) == SQLITE_OK &&
                      sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    s2f_code rc_other = s2f_queue_open(other, &opt, &o, &err);
    bool other_msg = strstr(err.message, "not a queue database") != NULL;
    s2f_code rc_existing = s2f_queue_open(db_path, &opt, &e, &err);
    s2f_queue_stats stats = {{0}};
    if (e)
        s2f_queue_stats_get(e, &stats, &err);
    s2f_queue_close(e);
    unlink(missing);
    unlink(other);
    cleanup(NULL);
    CHECK(rc_missing == S2F_EIO && !m && !created);
    CHECK(other_made && rc_other == S2F_EIO && !o && other_msg);
    CHECK(rc_existing == S2F_OK && stats.count[S2F_JOB_PENDING] == 1);
}

/* /metrics' age of the oldest job: the earliest enqueue time among pending and leased jobs,
 * 0 when none waits; finished jobs do not count. */
TEST(queue_oldest_pending)
{
    s2f_queue *q = fresh();
    CHECK(q);
    s2f_error err = {0};
    int64_t t = -1;
    CHECK(s2f_queue_oldest_pending(q, &t, &err) == S2F_OK && t == 0);
    int64_t a = add(q, "1.2.3.10", 100), b = add(q, "1.2.3.11", 200);
    CHECK(a > 0 && b > 0);
    CHECK(s2f_queue_oldest_pending(q, &t, &err) == S2F_OK && t == 100);
    s2f_job job;
    CHECK(claim(q, "w1", 60, 300, &job) && job.id == a);
    CHECK(s2f_queue_oldest_pending(q, &t, &err) == S2F_OK && t == 100); /* leased counts */
    CHECK(s2f_queue_done(q, &job, 301, &err) == S2F_OK);
    CHECK(s2f_queue_oldest_pending(q, &t, &err) == S2F_OK && t == 200);
    CHECK(claim(q, "w1", 60, 302, &job) && job.id == b);
    CHECK(s2f_queue_done(q, &job, 303, &err) == S2F_OK);
    CHECK(s2f_queue_oldest_pending(q, &t, &err) == S2F_OK && t == 0);
    cleanup(q);
}

/* Batch enqueue (the receiver's group commit): one transaction; a later item of the same
 * UID finds the earlier one's job; an open job outside the batch is found too; one bad
 * item refuses the whole batch and nothing of it is stored. */
TEST(queue_enqueue_batch)
{
    s2f_queue *q = fresh();
    CHECK(q);
    s2f_error err = {0};
    int64_t old = add(q, "1.2.3.90", 100);
    s2f_queue_item items[4] = {
        {"1.2.3.91", "/d/a", "s", 0, false},
        {"1.2.3.92", "/d/b", "s", 0, false},
        {"1.2.3.91", "/d/c", "s", 0, true},
        {"1.2.3.90", "/d/d", "s", 0, true},
    };
    s2f_code rc = s2f_queue_enqueue_batch(q, items, 4, 101, &err);
    char long_uid[S2F_QUEUE_UID_MAX + 2];
    memset(long_uid, '1', sizeof long_uid - 1);
    long_uid[sizeof long_uid - 1] = 0;
    s2f_queue_item bad[2] = {{"1.2.3.93", "/d/e", "s", 0, false}, {long_uid, "/d/f", "s", 0, false}};
    s2f_error err2 = {0};
    s2f_code rc2 = s2f_queue_enqueue_batch(q, bad, 2, 102, &err2);
    s2f_queue_stats stats;
    s2f_queue_stats_get(q, &stats, &err);
    s2f_job_info info;
    s2f_code rc3 = s2f_queue_get(q, items[1].job_id, &info, &err);
    cleanup(q);
    CHECK(old > 0 && rc == S2F_OK);
    CHECK(items[0].created && items[1].created && !items[2].created && !items[3].created);
    CHECK(items[2].job_id == items[0].job_id && items[3].job_id == old);
    CHECK(items[0].job_id != items[1].job_id && items[0].job_id > old);
    CHECK(rc2 == S2F_EUSAGE);
    CHECK(stats.count[S2F_JOB_PENDING] == 3); /* 90, 91, 92: nothing of the bad batch */
    CHECK(rc3 == S2F_OK);
    CHECK_STR(info.path, "/d/b");
    CHECK_STR(info.sop_instance_uid, "1.2.3.92");
}

int main(void)
{
    RUN(queue_enqueue_claim_done);
    RUN(queue_done_claim_is_one_step);
    RUN(queue_claim_order_mixes_pending_and_ended_leases);
    RUN(queue_lease_expiry_returns_job_and_counts_attempts);
    RUN(queue_stale_lease_holder_cannot_complete);
    RUN(queue_retry_later_respects_not_before);
    RUN(queue_dead_letter_keeps_class_and_reason);
    RUN(queue_idempotent_enqueue);
    RUN(queue_stats_and_purge);
    RUN(queue_durable_across_reopen);
    RUN(queue_survives_sigkill_after_enqueue);
    RUN(queue_retry_dead_letter);
    RUN(queue_concurrent_claims_take_each_job_once);
    RUN(queue_refuses_bad_arguments);
    RUN(queue_list_filters_and_pages);
    RUN(queue_get_reads_every_field);
    RUN(queue_purge_by_state_and_age_in_batches);
    RUN(queue_open_existing_only);
    RUN(queue_oldest_pending);
    RUN(queue_enqueue_batch);
    CHECK_DONE();
}
