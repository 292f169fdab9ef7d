/*
 * queue_sqlite.c - the SQLite backend of the gateway's durable queue (queue.h; issue 11).
 *
 * One database file, journal_mode=WAL and synchronous=FULL so a COMMIT that returned is on
 * disk (the WAL is fsynced at each commit), busy_timeout so receivers and workers with
 * their own connections wait for each other's short write transactions. Every change is
 * one BEGIN IMMEDIATE transaction (the write lock is taken first, so no deferred
 * transaction is refused half-way with SQLITE_BUSY). The schema version is a table of its
 * own; docs/decisions.md "Durable queue (issue 11, first part)" describes schema and lease.
 */
#include "gateway/queue.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define QUEUE_SCHEMA_VERSION 1
#define QUEUE_BUSY_DEFAULT_MS 5000

struct s2f_queue {
    sqlite3 *db;
};

static const char *const state_names[S2F_JOB_NSTATES] = {
    "pending", "leased", "done", "dead", "not_applicable",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS jobs ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " sop_instance_uid TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN"
    "  ('pending','leased','done','dead','not_applicable')),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " not_before INTEGER NOT NULL,"
    " lease_owner TEXT,"
    " lease_until INTEGER,"
    " enqueued_at INTEGER NOT NULL,"
    " finished_at INTEGER,"
    " failure_class TEXT,"
    " reason TEXT);"
    "CREATE UNIQUE INDEX IF NOT EXISTS jobs_open_sop ON jobs(sop_instance_uid)"
    " WHERE state IN ('pending','leased');"
    "CREATE INDEX IF NOT EXISTS jobs_ready ON jobs(state, not_before, id);"
    "CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(state, finished_at);"
    /* issue 13 (pull.c): the record of pulled instances and the poll cursors; additive
     * tables, so schema version 1 stays (a database of an earlier build gets them) */
    "CREATE TABLE IF NOT EXISTS pulled ("
    " sop_instance_uid TEXT PRIMARY KEY,"
    " sha256 TEXT NOT NULL,"
    " job_id INTEGER NOT NULL,"
    " source TEXT NOT NULL,"
    " pulled_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS jobs_sop ON jobs(sop_instance_uid, id);"
    "CREATE TABLE IF NOT EXISTS poll_cursors ("
    " name TEXT PRIMARY KEY,"
    " value INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);";

const char *s2f_job_state_name(s2f_job_state state)
{
    return (unsigned)state < S2F_JOB_NSTATES ? state_names[state] : "unknown";
}

static int state_from_name(const char *name)
{
    for (int i = 0; name && i < S2F_JOB_NSTATES; i++)
        if (strcmp(name, state_names[i]) == 0)
            return i;
    return -1;
}

static s2f_code db_fail(s2f_queue *q, s2f_error *err, const char *what)
{
    return s2f_fail(err, S2F_EIO, "queue database: %s: %s", what, sqlite3_errmsg(q->db));
}

static s2f_code exec(s2f_queue *q, const char *sql, const char *what, s2f_error *err)
{
    return sqlite3_exec(q->db, sql, NULL, NULL, NULL) == SQLITE_OK ? S2F_OK
                                                                  : db_fail(q, err, what);
}

static s2f_code prepare(s2f_queue *q, const char *sql, sqlite3_stmt **st, s2f_error *err)
{
    return sqlite3_prepare_v2(q->db, sql, -1, st, NULL) == SQLITE_OK
               ? S2F_OK
               : db_fail(q, err, "preparing a statement");
}

static s2f_code begin(s2f_queue *q, s2f_error *err)
{
    return exec(q, "BEGIN IMMEDIATE", "starting a transaction", err);
}

/* COMMIT on success; ROLLBACK (keeping the first error) otherwise. */
static s2f_code finish(s2f_queue *q, s2f_code rc, s2f_error *err)
{
    if (rc == S2F_OK)
        return exec(q, "COMMIT", "committing", err);
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static s2f_code check_text(const char *value, size_t max, const char *field, s2f_error *err)
{
    if (!value)
        return s2f_fail(err, S2F_EUSAGE, "queue: %s missing", field);
    if (strlen(value) > max)
        return s2f_fail(err, S2F_EUSAGE, "queue: %s longer than %zu bytes", field, max);
    return S2F_OK;
}

static void copy_column(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *text = sqlite3_column_text(st, col);
    snprintf(dst, size, "%s", text ? (const char *)text : "");
}

/* The job state named in a column; S2F_JOB_NSTATES for a name this build does not know. */
static s2f_job_state column_state(sqlite3_stmt *st, int col)
{
    int s = state_from_name((const char *)sqlite3_column_text(st, col));
    return s < 0 ? S2F_JOB_NSTATES : (s2f_job_state)s;
}

/* Text the caller keeps alive until the statement is finalized. */
static void bind_text(sqlite3_stmt *st, int index, const char *text)
{
    sqlite3_bind_text(st, index, text, -1, SQLITE_STATIC);
}

/* Prepares sql and binds `key` to ?1 (the lookups by UID or name). */
static s2f_code prepare_keyed(s2f_queue *q, const char *sql, const char *key, sqlite3_stmt **st,
                              s2f_error *err)
{
    s2f_code rc = prepare(q, sql, st, err);
    if (!rc)
        bind_text(*st, 1, key);
    return rc;
}

/* Steps a statement that returns no row once and finalizes it; the step's result. */
static int step_once(sqlite3_stmt *st)
{
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    return step;
}

/* step_once of a write: S2F_OK when it ran to the end, else what failed. */
static s2f_code run(s2f_queue *q, sqlite3_stmt *st, const char *what, s2f_error *err)
{
    return step_once(st) == SQLITE_DONE ? S2F_OK : db_fail(q, err, what);
}

/* The result of a lookup's step: a row or none are both fine. */
static s2f_code looked_up(s2f_queue *q, int step, const char *what, s2f_error *err)
{
    return step == SQLITE_ROW || step == SQLITE_DONE ? S2F_OK : db_fail(q, err, what);
}

/* ---- opening ------------------------------------------------------------------------ */

static s2f_code set_pragmas(s2f_queue *q, const s2f_queue_options *opt, s2f_error *err)
{
    int busy = opt && opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : QUEUE_BUSY_DEFAULT_MS;
    sqlite3_busy_timeout(q->db, busy);
    sqlite3_stmt *st;
    s2f_code rc = prepare(q, "PRAGMA journal_mode=WAL", &st, err);
    if (rc)
        return rc;
    int ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) &&
             strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (!ok)
        return s2f_fail(err, S2F_EIO, "queue database: WAL journal mode refused (%s)",
                        sqlite3_errmsg(q->db));
    return exec(q, "PRAGMA synchronous=FULL", "setting synchronous=FULL", err);
}

/* The schema version stored, or 0 when the table is empty (a new database). */
static s2f_code read_version(s2f_queue *q, int *version, s2f_error *err)
{
    sqlite3_stmt *st;
    s2f_code rc = prepare(q, "SELECT version FROM schema_version", &st, err);
    if (rc)
        return rc;
    int step = sqlite3_step(st);
    *version = step == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return looked_up(q, step, "reading the schema version", err);
}

static s2f_code create_schema(s2f_queue *q, s2f_error *err)
{
    s2f_code rc = begin(q, err);
    if (rc)
        return rc;
    int version = 0;
    rc = exec(q, schema_sql, "creating the schema", err);
    if (!rc)
        rc = read_version(q, &version, err);
    if (!rc && version == 0)
        rc = exec(q, "INSERT INTO schema_version(version) VALUES (1)",
                  "recording the schema version", err);
    if (!rc && version != 0 && version != QUEUE_SCHEMA_VERSION)
        rc = s2f_fail(err, S2F_EUNSUPPORTED,
                      "queue database: schema version %d, this build knows version %d",
                      version, QUEUE_SCHEMA_VERSION);
    return finish(q, rc, err);
}

/* An existing database (existing_only): its schema version must be this build's. */
static s2f_code check_schema(s2f_queue *q, const char *path, s2f_error *err)
{
    int version = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db, "SELECT version FROM schema_version", -1, &st, NULL) !=
        SQLITE_OK)
        return s2f_fail(err, S2F_EIO, "queue database %s: not a queue database (%s)", path,
                        sqlite3_errmsg(q->db));
    sqlite3_finalize(st);
    s2f_code rc = read_version(q, &version, err);
    if (!rc && version == 0)
        rc = s2f_fail(err, S2F_EIO, "queue database %s: not a queue database (no schema version)",
                      path);
    if (!rc && version != QUEUE_SCHEMA_VERSION)
        rc = s2f_fail(err, S2F_EUNSUPPORTED,
                      "queue database %s: schema version %d, this build knows version %d", path,
                      version, QUEUE_SCHEMA_VERSION);
    return rc;
}

s2f_code s2f_queue_open(const char *path, const s2f_queue_options *opt, s2f_queue **out,
                        s2f_error *err)
{
    *out = NULL;
    if (!path || !*path)
        return s2f_fail(err, S2F_EUSAGE, "queue: no database path");
    s2f_queue *q = calloc(1, sizeof *q);
    if (!q)
        return s2f_fail(err, S2F_ENOMEM, "queue: out of memory");
    bool existing = opt && opt->existing_only;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX |
                (existing ? 0 : SQLITE_OPEN_CREATE);
    s2f_code rc = S2F_OK;
    if (sqlite3_open_v2(path, &q->db, flags, NULL) != SQLITE_OK)
        rc = s2f_fail(err, S2F_EIO, "queue database %s: cannot open: %s", path,
                      q->db ? sqlite3_errmsg(q->db) : "out of memory");
    if (!rc)
        rc = set_pragmas(q, opt, err);
    if (!rc)
        rc = existing ? check_schema(q, path, err) : create_schema(q, err);
    if (rc) {
        s2f_queue_close(q);
        return rc;
    }
    *out = q;
    return S2F_OK;
}

void s2f_queue_close(s2f_queue *q)
{
    if (!q)
        return;
    sqlite3_close(q->db);
    free(q);
}

/* ---- enqueue ------------------------------------------------------------------------ */

/* The id of the open (pending or leased) job of this SOP Instance UID, 0 when none. */
static s2f_code find_open_job(s2f_queue *q, const char *uid, int64_t *id, s2f_error *err)
{
    sqlite3_stmt *st;
    s2f_code rc = prepare_keyed(q,
                                "SELECT id FROM jobs WHERE sop_instance_uid = ?1"
                                " AND state IN ('pending','leased')",
                                uid, &st, err);
    if (rc)
        return rc;
    int step = sqlite3_step(st);
    *id = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return looked_up(q, step, "looking up the SOP Instance UID", err);
}

static s2f_code insert_job(s2f_queue *q, const char *uid, const char *path, const char *source,
                           int64_t now, int64_t *id, s2f_error *err)
{
    sqlite3_stmt *st;
    s2f_code rc = prepare(q,
                          "INSERT INTO jobs(sop_instance_uid, path, source, state, not_before,"
                          " enqueued_at) VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
                          &st, err);
    if (rc)
        return rc;
    bind_text(st, 1, uid);
    bind_text(st, 2, path);
    bind_text(st, 3, source);
    sqlite3_bind_int64(st, 4, now);
    rc = run(q, st, "adding a job", err);
    if (rc)
        return rc;
    *id = sqlite3_last_insert_rowid(q->db);
    return S2F_OK;
}

static s2f_code check_item(const char *uid, const char *path, const char *source,
                           s2f_error *err)
{
    s2f_code rc = check_text(uid, S2F_QUEUE_UID_MAX, "SOP Instance UID", err);
    if (!rc)
        rc = check_text(path, S2F_QUEUE_PATH_MAX, "file path", err);
    if (!rc)
        rc = check_text(source, S2F_QUEUE_SOURCE_MAX, "source", err);
    if (!rc && !*uid)
        rc = s2f_fail(err, S2F_EUSAGE, "queue: empty SOP Instance UID");
    return rc;
}

s2f_code s2f_queue_enqueue(s2f_queue *q, const char *sop_instance_uid, const char *path,
                           const char *source, int64_t now, int64_t *job_id, bool *created,
                           s2f_error *err)
{
    s2f_code rc = check_item(sop_instance_uid, path, source, err);
    if (!rc)
        rc = begin(q, err);
    if (rc)
        return rc;
    int64_t id = 0;
    rc = find_open_job(q, sop_instance_uid, &id, err);
    bool added = !rc && id == 0;
    if (added)
        rc = insert_job(q, sop_instance_uid, path, source, now, &id, err);
    rc = finish(q, rc, err);
    if (rc)
        return rc;
    *job_id = id;
    if (created)
        *created = added;
    return S2F_OK;
}

s2f_code s2f_queue_enqueue_batch(s2f_queue *q, s2f_queue_item *items, size_t n, int64_t now,
                                 s2f_error *err)
{
    s2f_code rc = S2F_OK;
    for (size_t i = 0; i < n && !rc; i++)
        rc = check_item(items[i].sop_instance_uid, items[i].path, items[i].source, err);
    if (!rc && n > 0)
        rc = begin(q, err);
    if (rc || n == 0)
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        int64_t id = 0;
        rc = find_open_job(q, items[i].sop_instance_uid, &id, err);
        items[i].created = !rc && id == 0;
        if (items[i].created)
            rc = insert_job(q, items[i].sop_instance_uid, items[i].path, items[i].source, now,
                            &id, err);
        items[i].job_id = id;
    }
    return finish(q, rc, err);
}

s2f_code s2f_queue_check_writable(s2f_queue *q, s2f_error *err)
{
    s2f_code rc = begin(q, err);
    if (!rc)
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- claim -------------------------------------------------------------------------- */

/* The oldest ready pending job (index jobs_ready, one row read) and the oldest ended lease
 * (few leased rows), the earlier of the two. One query with OR and ORDER BY CASE sorted
 * every ready row at each claim: 4.8 ms at 10,000 pending, under the write lock
 * (bench/README.md, issue 11 throughput); this is 0.01 ms. */
static const char claim_sql[] =
    "UPDATE jobs SET state = 'leased', lease_owner = ?1, lease_until = ?2 + ?3,"
    " attempts = attempts + 1"
    " WHERE id = (SELECT id FROM ("
    "  SELECT * FROM (SELECT id, not_before AS k FROM jobs"
    "   WHERE state = 'pending' AND not_before <= ?2 ORDER BY not_before, id LIMIT 1)"
    "  UNION ALL"
    "  SELECT * FROM (SELECT id, lease_until AS k FROM jobs"
    "   WHERE state = 'leased' AND lease_until <= ?2 ORDER BY lease_until, id LIMIT 1))"
    " ORDER BY k, id LIMIT 1)"
    " RETURNING id, attempts, enqueued_at, lease_until, sop_instance_uid, path, source,"
    " lease_owner";

static void read_job(sqlite3_stmt *st, s2f_job *job)
{
    memset(job, 0, sizeof *job);
    job->id = sqlite3_column_int64(st, 0);
    job->attempts = sqlite3_column_int(st, 1);
    job->enqueued_at = sqlite3_column_int64(st, 2);
    job->lease_until = sqlite3_column_int64(st, 3);
    copy_column(job->sop_instance_uid, sizeof job->sop_instance_uid, st, 4);
    copy_column(job->path, sizeof job->path, st, 5);
    copy_column(job->source, sizeof job->source, st, 6);
    copy_column(job->worker, sizeof job->worker, st, 7);
}

static s2f_code claim_one(s2f_queue *q, const char *worker, int lease_seconds, int64_t now,
                          s2f_job *job, bool *found, s2f_error *err)
{
    sqlite3_stmt *st;
    s2f_code rc = prepare(q, claim_sql, &st, err);
    if (rc)
        return rc;
    bind_text(st, 1, worker);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int(st, 3, lease_seconds);
    int step = sqlite3_step(st);
    *found = step == SQLITE_ROW;
    if (*found) {
        read_job(st, job);
        step = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? S2F_OK : db_fail(q, err, "claiming a job");
}

/* The worker and lease of a claim; then BEGIN IMMEDIATE. */
static s2f_code begin_claim(s2f_queue *q, const char *worker, int lease_seconds, s2f_error *err)
{
    s2f_code rc = check_text(worker, S2F_QUEUE_WORKER_MAX, "worker id", err);
    if (!rc && lease_seconds <= 0)
        rc = s2f_fail(err, S2F_EUSAGE, "queue: lease of %d seconds (must be positive)",
                      lease_seconds);
    return rc ? rc : begin(q, err);
}

s2f_code s2f_queue_claim(s2f_queue *q, const char *worker, int lease_seconds, int64_t now,
                         s2f_job *job, bool *found, s2f_error *err)
{
    *found = false;
    s2f_code rc = begin_claim(q, worker, lease_seconds, err);
    if (rc)
        return rc;
    bool got = false;
    rc = finish(q, claim_one(q, worker, lease_seconds, now, job, &got, err), err);
    *found = !rc && got;
    return rc;
}

/* ---- finishing a claimed job -------------------------------------------------------- */

/* Moves the job to `state` when the caller still holds its lease, in one UPDATE, inside the
 * caller's transaction. */
static s2f_code settle_in(s2f_queue *q, const s2f_job *job, s2f_job_state state,
                          int64_t not_before, int64_t finished_at, const char *cls,
                          const char *reason, s2f_error *err)
{
    sqlite3_stmt *st;
    s2f_code rc = prepare(q,
                          "UPDATE jobs SET state = ?1, not_before = ?2, finished_at = ?3,"
                          " failure_class = ?4, reason = ?5, lease_owner = NULL, lease_until = NULL"
                          " WHERE id = ?6 AND state = 'leased' AND attempts = ?7 AND lease_owner = ?8",
                          &st, err);
    if (rc)
        return rc;
    bind_text(st, 1, state_names[state]);
    sqlite3_bind_int64(st, 2, not_before);
    if (finished_at >= 0)
        sqlite3_bind_int64(st, 3, finished_at);
    bind_text(st, 4, cls);
    bind_text(st, 5, reason);
    sqlite3_bind_int64(st, 6, job->id);
    sqlite3_bind_int(st, 7, job->attempts);
    bind_text(st, 8, job->worker);
    rc = run(q, st, "updating a job", err);
    if (rc)
        return rc;
    if (sqlite3_changes(q->db) != 1)
        return s2f_fail(err, S2F_ELOOKUP,
                        "queue: job %lld: lease of attempt %d by %s no longer held (it ended and"
                        " the job was claimed again, or the job is finished)",
                        (long long)job->id, job->attempts, job->worker);
    return S2F_OK;
}

/* settle_in in a transaction of its own. */
static s2f_code settle(s2f_queue *q, const s2f_job *job, s2f_job_state state, int64_t not_before,
                       int64_t finished_at, const char *cls, const char *reason, s2f_error *err)
{
    s2f_code rc = begin(q, err);
    if (rc)
        return rc;
    return finish(q, settle_in(q, job, state, not_before, finished_at, cls, reason, err), err);
}

/* Issue 11 (bench: end to end below `send -j 4`): a worker's done and its next claim in
 * one transaction, so each delivered SR costs one commit (one WAL fsync) instead of two. */
s2f_code s2f_queue_done_claim(s2f_queue *q, const s2f_job *done, int64_t now,
                              const char *worker, int lease_seconds, s2f_job *next, bool *found,
                              s2f_error *err)
{
    *found = false;
    s2f_code rc = begin_claim(q, worker, lease_seconds, err);
    if (rc)
        return rc;
    bool got = false;
    rc = settle_in(q, done, S2F_JOB_DONE, now, now, NULL, NULL, err);
    if (!rc)
        rc = claim_one(q, worker, lease_seconds, now, next, &got, err);
    rc = finish(q, rc, err);
    *found = !rc && got;
    return rc;
}

s2f_code s2f_queue_done(s2f_queue *q, const s2f_job *job, int64_t now, s2f_error *err)
{
    return settle(q, job, S2F_JOB_DONE, now, now, NULL, NULL, err);
}

s2f_code s2f_queue_retry_later(s2f_queue *q, const s2f_job *job, int64_t not_before,
                               const char *reason, s2f_error *err)
{
    return settle(q, job, S2F_JOB_PENDING, not_before, -1, "transient", reason, err);
}

s2f_code s2f_queue_dead(s2f_queue *q, const s2f_job *job, const char *failure_class,
                        const char *reason, int64_t now, s2f_error *err)
{
    return settle(q, job, S2F_JOB_DEAD, now, now, failure_class ? failure_class : "permanent",
                  reason, err);
}

s2f_code s2f_queue_not_applicable(s2f_queue *q, const s2f_job *job, const char *reason,
                                  int64_t now, s2f_error *err)
{
    return settle(q, job, S2F_JOB_NOT_APPLICABLE, now, now, "not_applicable", reason, err);
}

static s2f_code revive(s2f_queue *q, int64_t job_id, int64_t now, s2f_error *err)
{
    sqlite3_stmt *st;
    s2f_code rc = prepare(q,
                          "UPDATE jobs SET state = 'pending', not_before = ?2, finished_at = NULL"
                          " WHERE id = ?1 AND state = 'dead'",
                          &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, now);
    int step = step_once(st);
    if (step == SQLITE_CONSTRAINT)
        return s2f_fail(err, S2F_EUSAGE,
                        "queue: job %lld: another job of its SOP Instance UID is waiting already",
                        (long long)job_id);
    if (step != SQLITE_DONE)
        return db_fail(q, err, "retrying a dead job");
    return sqlite3_changes(q->db) == 1
               ? S2F_OK
               : s2f_fail(err, S2F_ELOOKUP, "queue: no dead job %lld", (long long)job_id);
}

s2f_code s2f_queue_retry_dead(s2f_queue *q, int64_t job_id, int64_t now, s2f_error *err)
{
    s2f_code rc = begin(q, err);
    return rc ? rc : finish(q, revive(q, job_id, now, err), err);
}

/* ---- reading and housekeeping ------------------------------------------------------- */

s2f_code s2f_queue_job_state(s2f_queue *q, int64_t job_id, s2f_job_state *state, char *cls,
                             size_t cls_size, char *reason, size_t reason_size, s2f_error *err)
{
    sqlite3_stmt *st;
    s2f_code rc = prepare(q, "SELECT state, failure_class, reason FROM jobs WHERE id = ?1",
                          &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, job_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *state = column_state(st, 0);
        if (cls)
            copy_column(cls, cls_size, st, 1);
        if (reason)
            copy_column(reason, reason_size, st, 2);
    }
    sqlite3_finalize(st);
    if (step == SQLITE_DONE)
        return s2f_fail(err, S2F_ELOOKUP, "queue: no job %lld", (long long)job_id);
    if (step != SQLITE_ROW)
        return db_fail(q, err, "reading a job");
    return (unsigned)*state < S2F_JOB_NSTATES
               ? S2F_OK
               : s2f_fail(err, S2F_EIO, "queue: job %lld has an unknown state", (long long)job_id);
}

s2f_code s2f_queue_stats_get(s2f_queue *q, s2f_queue_stats *stats, s2f_error *err)
{
    memset(stats, 0, sizeof *stats);
    sqlite3_stmt *st;
    s2f_code rc = prepare(q, "SELECT state, count(*) FROM jobs GROUP BY state", &st, err);
    if (rc)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        s2f_job_state s = column_state(st, 0);
        if (s != S2F_JOB_NSTATES)
            stats->count[s] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? S2F_OK : db_fail(q, err, "counting jobs");
}

s2f_code s2f_queue_oldest_pending(s2f_queue *q, int64_t *enqueued_at, s2f_error *err)
{
    *enqueued_at = 0;
    sqlite3_stmt *st;
    s2f_code rc = prepare(q,
                          "SELECT min(enqueued_at) FROM jobs"
                          " WHERE state IN ('pending','leased')",
                          &st, err);
    if (rc)
        return rc;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *enqueued_at = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return step == SQLITE_ROW ? S2F_OK : db_fail(q, err, "reading the oldest job");
}

s2f_code s2f_queue_purge_done(s2f_queue *q, int64_t older_than, int64_t *removed,
                              s2f_error *err)
{
    sqlite3_stmt *st;
    s2f_code rc = begin(q, err);
    if (!rc)
        rc = prepare(q,
                     "DELETE FROM jobs WHERE state IN ('done','not_applicable')"
                     " AND finished_at < ?1",
                     &st, err);
    if (rc)
        return finish(q, rc, err);
    sqlite3_bind_int64(st, 1, older_than);
    rc = run(q, st, "purging finished jobs", err);
    if (!rc && removed)
        *removed = sqlite3_changes(q->db);
    return finish(q, rc, err);
}

/* ---- operating the queue: list, get, purge ------------------------------------------ */

#define INFO_COLUMNS                                                                        \
    "id, state, attempts, enqueued_at, not_before, lease_until, finished_at,"               \
    " sop_instance_uid, path, source, lease_owner, failure_class, reason"

static int64_t column_time(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, col);
}

static void read_info(sqlite3_stmt *st, s2f_job_info *info)
{
    memset(info, 0, sizeof *info);
    info->id = sqlite3_column_int64(st, 0);
    info->state = column_state(st, 1);
    info->attempts = sqlite3_column_int(st, 2);
    info->enqueued_at = column_time(st, 3);
    info->not_before = column_time(st, 4);
    info->lease_until = column_time(st, 5);
    info->finished_at = column_time(st, 6);
    copy_column(info->sop_instance_uid, sizeof info->sop_instance_uid, st, 7);
    copy_column(info->path, sizeof info->path, st, 8);
    copy_column(info->source, sizeof info->source, st, 9);
    copy_column(info->worker, sizeof info->worker, st, 10);
    copy_column(info->failure_class, sizeof info->failure_class, st, 11);
    copy_column(info->reason, sizeof info->reason, st, 12);
}

s2f_code s2f_queue_list(s2f_queue *q, const s2f_queue_filter *filter,
                        int (*each)(void *ctx, const s2f_job_info *info), void *ctx,
                        s2f_error *err)
{
    if ((unsigned)filter->state > S2F_JOB_NSTATES)
        return s2f_fail(err, S2F_EUSAGE, "queue: unknown job state %d", (int)filter->state);
    if (filter->limit < 1 || filter->limit > S2F_QUEUE_LIST_MAX)
        return s2f_fail(err, S2F_EUSAGE, "queue: list limit %lld outside 1..%d",
                        (long long)filter->limit, S2F_QUEUE_LIST_MAX);
    sqlite3_stmt *st;
    s2f_code rc = prepare(q,
                          "SELECT " INFO_COLUMNS " FROM jobs WHERE id > ?1"
                          " AND (?2 IS NULL OR state = ?2) ORDER BY id LIMIT ?3",
                          &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, filter->after_id);
    if (filter->state != S2F_JOB_NSTATES)
        bind_text(st, 2, state_names[filter->state]);
    sqlite3_bind_int64(st, 3, filter->limit);
    s2f_job_info *info = malloc(sizeof *info);
    if (!info) {
        sqlite3_finalize(st);
        return s2f_fail(err, S2F_ENOMEM, "queue: out of memory");
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        read_info(st, info);
        if (each(ctx, info))
            break;
    }
    free(info);
    sqlite3_finalize(st);
    return looked_up(q, step, "listing jobs", err);
}

s2f_code s2f_queue_get(s2f_queue *q, int64_t job_id, s2f_job_info *info, s2f_error *err)
{
    sqlite3_stmt *st;
    s2f_code rc = prepare(q, "SELECT " INFO_COLUMNS " FROM jobs WHERE id = ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, job_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        read_info(st, info);
    sqlite3_finalize(st);
    if (step == SQLITE_DONE)
        return s2f_fail(err, S2F_ELOOKUP, "queue: no job %lld", (long long)job_id);
    return step == SQLITE_ROW ? S2F_OK : db_fail(q, err, "reading a job");
}

#define PURGE_BATCH 256

struct purged {
    int64_t id;
    char path[S2F_QUEUE_PATH_MAX + 1];
};

/* Deletes one batch of at most PURGE_BATCH jobs in one transaction; *n how many. */
static s2f_code purge_batch(s2f_queue *q, unsigned states, int64_t older_than,
                            struct purged *batch, size_t *n, s2f_error *err)
{
    *n = 0;
    sqlite3_stmt *st;
    s2f_code rc = begin(q, err);
    if (!rc)
        rc = prepare(q,
                     "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
                     " WHERE ((state = 'done' AND ?1) OR (state = 'dead' AND ?2)"
                     "  OR (state = 'not_applicable' AND ?3)) AND finished_at < ?4"
                     " ORDER BY id LIMIT ?5) RETURNING id, path",
                     &st, err);
    if (rc)
        return finish(q, rc, err);
    sqlite3_bind_int(st, 1, (states & S2F_JOB_BIT(S2F_JOB_DONE)) != 0);
    sqlite3_bind_int(st, 2, (states & S2F_JOB_BIT(S2F_JOB_DEAD)) != 0);
    sqlite3_bind_int(st, 3, (states & S2F_JOB_BIT(S2F_JOB_NOT_APPLICABLE)) != 0);
    sqlite3_bind_int64(st, 4, older_than);
    sqlite3_bind_int(st, 5, PURGE_BATCH);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW && *n < PURGE_BATCH) {
        batch[*n].id = sqlite3_column_int64(st, 0);
        copy_column(batch[*n].path, sizeof batch[*n].path, st, 1);
        (*n)++;
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        rc = db_fail(q, err, "purging finished jobs");
    rc = finish(q, rc, err);
    if (rc)
        *n = 0;
    return rc;
}

s2f_code s2f_queue_purge(s2f_queue *q, unsigned states, int64_t older_than,
                         void (*removed_job)(void *ctx, int64_t id, const char *path), void *ctx,
                         int64_t *removed, s2f_error *err)
{
    unsigned finished = S2F_JOB_BIT(S2F_JOB_DONE) | S2F_JOB_BIT(S2F_JOB_DEAD) |
                        S2F_JOB_BIT(S2F_JOB_NOT_APPLICABLE);
    if (removed)
        *removed = 0;
    if (states & ~finished)
        return s2f_fail(err, S2F_EUSAGE, "queue: only finished jobs can be purged");
    struct purged *batch = malloc(PURGE_BATCH * sizeof *batch);
    if (!batch)
        return s2f_fail(err, S2F_ENOMEM, "queue: out of memory");
    s2f_code rc = S2F_OK;
    size_t n = PURGE_BATCH;
    while (!rc && n == PURGE_BATCH) {
        rc = purge_batch(q, states, older_than, batch, &n, err);
        for (size_t i = 0; i < n; i++)
            if (removed_job)
                removed_job(ctx, batch[i].id, batch[i].path);
        if (removed)
            *removed += (int64_t)n;
    }
    free(batch);
    return rc;
}

/* ---- pulled instances and poll cursors (issue 13) ----------------------------------- */

s2f_code s2f_queue_pulled_get(s2f_queue *q, const char *sop_instance_uid, s2f_pulled *rec,
                              bool *found, s2f_error *err)
{
    *found = false;
    memset(rec, 0, sizeof *rec);
    s2f_code rc = check_text(sop_instance_uid, S2F_QUEUE_UID_MAX, "SOP Instance UID", err);
    sqlite3_stmt *st;
    if (!rc)
        rc = prepare_keyed(q,
                           "SELECT p.sha256, p.job_id, p.pulled_at, j.state FROM pulled p"
                           " LEFT JOIN jobs j ON j.id = p.job_id WHERE p.sop_instance_uid = ?1",
                           sop_instance_uid, &st, err);
    if (rc)
        return rc;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *found = true;
        copy_column(rec->sha256, sizeof rec->sha256, st, 0);
        rec->job_id = sqlite3_column_int64(st, 1);
        rec->pulled_at = sqlite3_column_int64(st, 2);
        rec->job_state = column_state(st, 3);
    }
    sqlite3_finalize(st);
    return looked_up(q, step, "reading a pulled instance", err);
}

static s2f_code check_sha256(const char *hex, s2f_error *err)
{
    size_t n = hex ? strlen(hex) : 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdef", hex[i]))
            n = 0;
    return n == S2F_QUEUE_SHA256_HEX ? S2F_OK
                                     : s2f_fail(err, S2F_EUSAGE, "queue: not a SHA-256 in hex");
}

s2f_code s2f_queue_pulled_put(s2f_queue *q, const char *sop_instance_uid, const char *sha256,
                              int64_t job_id, const char *source, int64_t now, s2f_error *err)
{
    s2f_code rc = check_item(sop_instance_uid, "-", source, err);
    if (!rc)
        rc = check_sha256(sha256, err);
    sqlite3_stmt *st;
    if (!rc)
        rc = prepare(q,
                     "INSERT INTO pulled(sop_instance_uid, sha256, job_id, source, pulled_at)"
                     " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(sop_instance_uid) DO UPDATE SET"
                     " sha256 = excluded.sha256, job_id = excluded.job_id,"
                     " source = excluded.source, pulled_at = excluded.pulled_at",
                     &st, err);
    if (rc)
        return rc;
    bind_text(st, 1, sop_instance_uid);
    bind_text(st, 2, sha256);
    sqlite3_bind_int64(st, 3, job_id);
    bind_text(st, 4, source);
    sqlite3_bind_int64(st, 5, now);
    /* no fsync of its own: a record lost in a crash costs one retrieval, which finds the
     * same bytes in its job's file and queues nothing (pull.c); the job row was FULL */
    sqlite3_exec(q->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    int step = step_once(st);
    sqlite3_exec(q->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    return step == SQLITE_DONE ? S2F_OK : db_fail(q, err, "recording a pulled instance");
}

s2f_code s2f_queue_cursor_get(s2f_queue *q, const char *name, int64_t *value, bool *found,
                              s2f_error *err)
{
    *found = false;
    *value = 0;
    s2f_code rc = check_text(name, S2F_QUEUE_SOURCE_MAX, "cursor name", err);
    sqlite3_stmt *st;
    if (!rc)
        rc = prepare_keyed(q, "SELECT value FROM poll_cursors WHERE name = ?1", name, &st, err);
    if (rc)
        return rc;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *found = true;
        *value = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return looked_up(q, step, "reading a poll cursor", err);
}

s2f_code s2f_queue_cursor_set(s2f_queue *q, const char *name, int64_t value, int64_t now,
                              s2f_error *err)
{
    s2f_code rc = check_text(name, S2F_QUEUE_SOURCE_MAX, "cursor name", err);
    sqlite3_stmt *st;
    if (!rc)
        rc = prepare_keyed(q,
                           "INSERT INTO poll_cursors(name, value, updated_at) VALUES (?1, ?2, ?3)"
                           " ON CONFLICT(name) DO UPDATE SET value = excluded.value,"
                           " updated_at = excluded.updated_at",
                           name, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 2, value);
    sqlite3_bind_int64(st, 3, now);
    return run(q, st, "writing a poll cursor", err);
}

s2f_code s2f_queue_latest_job(s2f_queue *q, const char *sop_instance_uid, int64_t *job_id,
                              s2f_job_state *state, char *path, size_t path_size, bool *found,
                              s2f_error *err)
{
    *found = false;
    s2f_code rc = check_text(sop_instance_uid, S2F_QUEUE_UID_MAX, "SOP Instance UID", err);
    sqlite3_stmt *st;
    if (!rc)
        rc = prepare_keyed(q,
                           "SELECT id, state, path FROM jobs WHERE sop_instance_uid = ?1"
                           " ORDER BY id DESC LIMIT 1",
                           sop_instance_uid, &st, err);
    if (rc)
        return rc;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *job_id = sqlite3_column_int64(st, 0);
        *state = column_state(st, 1);
        *found = *state != S2F_JOB_NSTATES;
        if (path)
            copy_column(path, path_size, st, 2);
    }
    sqlite3_finalize(st);
    return looked_up(q, step, "looking up a job", err);
}
