/*
 * test_pulled.c - unit tests of the queue's record of pulled instances and the pollers'
 * cursors (src/gateway/queue_sqlite.c, issue 13): absent, put, replaced, the job's state
 * joined (pending, dead, purged), refused input, cursors per name, and both surviving a
 * close and reopen of the database; the newest job of a SOP Instance UID.
 */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "gateway/queue.h"

static char dir[64];
static char db_path[128];

static const char SHA_A[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char SHA_B[] = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

static s2f_queue *open_db(void)
{
    s2f_queue *q = NULL;
    s2f_error err = {0};
    if (s2f_queue_open(db_path, NULL, &q, &err) != S2F_OK) {
        fprintf(stderr, "open: %s\n", err.message);
        return NULL;
    }
    return q;
}

static s2f_queue *fresh(void)
{
    snprintf(dir, sizeof dir, "/tmp/s2f-pulled-XXXXXX");
    if (!mkdtemp(dir))
        return NULL;
    snprintf(db_path, sizeof db_path, "%s/queue.db", dir);
    return open_db();
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

TEST(pulled_absent_then_put)
{
    s2f_queue *q = fresh();
    CHECK(q);
    s2f_pulled rec;
    bool found = true;
    s2f_error err = {0};
    CHECK(s2f_queue_pulled_get(q, "1.2.3", &rec, &found, &err) == S2F_OK);
    CHECK(!found);
    int64_t job = 0;
    bool created = false;
    CHECK(s2f_queue_enqueue(q, "1.2.3", "/d/x.dcm", "pull http://x", 100, &job, &created,
                            &err) == S2F_OK);
    CHECK(s2f_queue_pulled_put(q, "1.2.3", SHA_A, job, "pull http://x", 101, &err) == S2F_OK);
    CHECK(s2f_queue_pulled_get(q, "1.2.3", &rec, &found, &err) == S2F_OK);
    CHECK(found);
    CHECK_STR(rec.sha256, SHA_A);
    CHECK(rec.job_id == job);
    CHECK(rec.pulled_at == 101);
    CHECK(rec.job_state == S2F_JOB_PENDING);
    CHECK(s2f_queue_pulled_get(q, "1.2.4", &rec, &found, &err) == S2F_OK && !found);
    cleanup(q);
}

TEST(pulled_replaced_and_job_state_joined)
{
    s2f_queue *q = fresh();
    CHECK(q);
    s2f_error err = {0};
    int64_t job = 0;
    bool created = false, found = false;
    CHECK(s2f_queue_enqueue(q, "1.2.3", "/d/x.dcm", "s", 100, &job, &created, &err) == S2F_OK);
    CHECK(s2f_queue_pulled_put(q, "1.2.3", SHA_A, job, "s", 100, &err) == S2F_OK);
    s2f_job j;
    CHECK(s2f_queue_claim(q, "w", 60, 100, &j, &found, &err) == S2F_OK && found);
    CHECK(s2f_queue_dead(q, &j, "permanent", "HTTP 400", 101, &err) == S2F_OK);
    s2f_pulled rec;
    CHECK(s2f_queue_pulled_get(q, "1.2.3", &rec, &found, &err) == S2F_OK && found);
    CHECK(rec.job_state == S2F_JOB_DEAD);
    /* pulled again: a new job, the record replaced */
    int64_t job2 = 0;
    CHECK(s2f_queue_enqueue(q, "1.2.3", "/d/y.dcm", "s", 102, &job2, &created, &err) == S2F_OK);
    CHECK(created && job2 != job);
    CHECK(s2f_queue_pulled_put(q, "1.2.3", SHA_B, job2, "s", 102, &err) == S2F_OK);
    CHECK(s2f_queue_pulled_get(q, "1.2.3", &rec, &found, &err) == S2F_OK && found);
    CHECK_STR(rec.sha256, SHA_B);
    CHECK(rec.job_id == job2 && rec.job_state == S2F_JOB_PENDING && rec.pulled_at == 102);
    /* refused instance: no job */
    CHECK(s2f_queue_pulled_put(q, "1.2.9", SHA_A, 0, "s", 103, &err) == S2F_OK);
    CHECK(s2f_queue_pulled_get(q, "1.2.9", &rec, &found, &err) == S2F_OK && found);
    CHECK(rec.job_id == 0 && rec.job_state == S2F_JOB_NSTATES);
    cleanup(q);
}

TEST(pulled_job_purged_reads_as_none)
{
    s2f_queue *q = fresh();
    CHECK(q);
    s2f_error err = {0};
    int64_t job = 0, removed = 0;
    bool created = false, found = false;
    CHECK(s2f_queue_enqueue(q, "1.2.3", "/d/x.dcm", "s", 100, &job, &created, &err) == S2F_OK);
    CHECK(s2f_queue_pulled_put(q, "1.2.3", SHA_A, job, "s", 100, &err) == S2F_OK);
    s2f_job j;
    CHECK(s2f_queue_claim(q, "w", 60, 100, &j, &found, &err) == S2F_OK && found);
    CHECK(s2f_queue_done(q, &j, 101, &err) == S2F_OK);
    s2f_pulled rec;
    CHECK(s2f_queue_pulled_get(q, "1.2.3", &rec, &found, &err) == S2F_OK && found);
    CHECK(rec.job_state == S2F_JOB_DONE);
    CHECK(s2f_queue_purge_done(q, 200, &removed, &err) == S2F_OK && removed == 1);
    CHECK(s2f_queue_pulled_get(q, "1.2.3", &rec, &found, &err) == S2F_OK && found);
    CHECK(rec.job_id == job && rec.job_state == S2F_JOB_NSTATES);
    cleanup(q);
}

TEST(pulled_refuses_bad_input)
{
    s2f_queue *q = fresh();
    CHECK(q);
    s2f_error err = {0};
    CHECK(s2f_queue_pulled_put(q, "1.2.3", "abc", 1, "s", 1, &err) == S2F_EUSAGE);
    CHECK(s2f_queue_pulled_put(q, "1.2.3", SHA_A + 1, 1, "s", 1, &err) == S2F_EUSAGE);
    char upper[65];
    snprintf(upper, sizeof upper, "%s", SHA_A);
    upper[10] = 'A';
    CHECK(s2f_queue_pulled_put(q, "1.2.3", upper, 1, "s", 1, &err) == S2F_EUSAGE);
    CHECK(s2f_queue_pulled_put(q, "", SHA_A, 1, "s", 1, &err) == S2F_EUSAGE);
    char longuid[80];
    memset(longuid, '1', 65);
    longuid[65] = '\0';
    CHECK(s2f_queue_pulled_put(q, longuid, SHA_A, 1, "s", 1, &err) == S2F_EUSAGE);
    s2f_pulled rec;
    bool found = true;
    CHECK(s2f_queue_pulled_get(q, longuid, &rec, &found, &err) == S2F_EUSAGE);
    CHECK(s2f_queue_pulled_get(q, "1.2.3", &rec, &found, &err) == S2F_OK && !found);
    cleanup(q);
}

TEST(cursor_per_name_survives_reopen)
{
    s2f_queue *q = fresh();
    CHECK(q);
    s2f_error err = {0};
    int64_t v = -1;
    bool found = true;
    CHECK(s2f_queue_cursor_get(q, "pull http://a", &v, &found, &err) == S2F_OK);
    CHECK(!found && v == 0);
    CHECK(s2f_queue_cursor_set(q, "pull http://a", 1000, 1001, &err) == S2F_OK);
    CHECK(s2f_queue_cursor_set(q, "pull http://b", 7, 8, &err) == S2F_OK);
    CHECK(s2f_queue_cursor_set(q, "pull http://a", 2000, 2001, &err) == S2F_OK);
    CHECK(s2f_queue_pulled_put(q, "1.2.3", SHA_A, 5, "s", 1, &err) == S2F_OK);
    s2f_queue_close(q);
    q = open_db();
    CHECK(q);
    CHECK(s2f_queue_cursor_get(q, "pull http://a", &v, &found, &err) == S2F_OK);
    CHECK(found && v == 2000);
    CHECK(s2f_queue_cursor_get(q, "pull http://b", &v, &found, &err) == S2F_OK);
    CHECK(found && v == 7);
    s2f_pulled rec;
    CHECK(s2f_queue_pulled_get(q, "1.2.3", &rec, &found, &err) == S2F_OK && found);
    CHECK(rec.job_id == 5);
    cleanup(q);
}

TEST(latest_job_of_uid)
{
    s2f_queue *q = fresh();
    CHECK(q);
    s2f_error err = {0};
    int64_t j1 = 0, j2 = 0, id = -1;
    bool created = false, found = true;
    s2f_job_state st;
    char path[64];
    CHECK(s2f_queue_latest_job(q, "1.2.3", &id, &st, path, sizeof path, &found, &err) == S2F_OK);
    CHECK(!found);
    CHECK(s2f_queue_enqueue(q, "1.2.3", "/d/a.dcm", "s", 100, &j1, &created, &err) == S2F_OK);
    s2f_job j;
    CHECK(s2f_queue_claim(q, "w", 60, 100, &j, &found, &err) == S2F_OK && found);
    CHECK(s2f_queue_done(q, &j, 101, &err) == S2F_OK);
    CHECK(s2f_queue_enqueue(q, "1.2.3", "/d/b.dcm", "s", 102, &j2, &created, &err) == S2F_OK);
    CHECK(s2f_queue_enqueue(q, "1.2.4", "/d/c.dcm", "s", 103, &id, &created, &err) == S2F_OK);
    CHECK(s2f_queue_latest_job(q, "1.2.3", &id, &st, path, sizeof path, &found, &err) == S2F_OK);
    CHECK(found && id == j2 && j2 > j1 && st == S2F_JOB_PENDING);
    CHECK_STR(path, "/d/b.dcm");
    CHECK(s2f_queue_latest_job(q, "1.2.5", &id, &st, NULL, 0, &found, &err) == S2F_OK && !found);
    cleanup(q);
}

int main(void)
{
    RUN(pulled_absent_then_put);
    RUN(pulled_replaced_and_job_state_joined);
    RUN(pulled_job_purged_reads_as_none);
    RUN(pulled_refuses_bad_input);
    RUN(cursor_per_name_survives_reopen);
    RUN(latest_job_of_uid);
    return check_failed_total != 0;
}
