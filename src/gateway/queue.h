/*
 * queue.h - the gateway's durable job queue (issue 11, Build #3): one job per received SR,
 * claimed by delivery workers under a lease, finished as done, dead or not applicable.
 *
 * The interface hides the store: queue_sqlite.c is the SQLite backend (one database file
 * in the gateway's data folder, WAL, synchronous=FULL); a PostgreSQL backend (several
 * gateways sharing one queue) can implement the same functions. Time is always passed in
 * (`now`, seconds since the epoch) so callers and tests decide the clock.
 *
 * A handle is used by one thread at a time; each thread (receiver, worker) opens its own.
 * Every function returns S2F_OK or an error code with a one-line message in `err`:
 * S2F_EIO when the database cannot be opened, read or written (or stays locked past the
 * busy timeout), S2F_EUSAGE for bad arguments (a field too long, an unknown state),
 * S2F_EUNSUPPORTED for a database of another schema version, S2F_ELOOKUP when the caller
 * no longer holds the job's lease (see s2f_queue_done) or the job does not exist.
 */
#ifndef S2F_GATEWAY_QUEUE_H
#define S2F_GATEWAY_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "sr2fhir.h"

/* Job states. pending: waiting for a worker (possibly not before a time); leased: a worker
 * holds it until its lease ends; done: delivered; dead: a permanent failure, kept with its
 * failure class and reason until retried or purged; not_applicable: not a TID 1500 report,
 * accepted and never retried. */
typedef enum s2f_job_state {
    S2F_JOB_PENDING,
    S2F_JOB_LEASED,
    S2F_JOB_DONE,
    S2F_JOB_DEAD,
    S2F_JOB_NOT_APPLICABLE,
    S2F_JOB_NSTATES
} s2f_job_state;

/* The state's name as stored and printed: "pending", "leased", "done", "dead",
 * "not_applicable". */
const char *s2f_job_state_name(s2f_job_state state);

/* Limits of the stored text fields (bytes, without the NUL); longer ones are refused. */
#define S2F_QUEUE_UID_MAX 64      /* a DICOM UID is at most 64 characters */
#define S2F_QUEUE_PATH_MAX 1023
#define S2F_QUEUE_SOURCE_MAX 255
#define S2F_QUEUE_WORKER_MAX 63

typedef struct s2f_queue s2f_queue;

typedef struct s2f_queue_options {
    int busy_timeout_ms; /* how long to wait for another writer's lock; 0 = 5000 */
    bool existing_only;  /* open an existing queue database only: never create the file
                            or the schema (`sr2fhir queue`); S2F_EIO otherwise */
} s2f_queue_options;

/* A claimed job. (id, attempts, worker) identify the lease: a later claim of the same job
 * increments attempts, so the earlier holder's done/retry/dead are refused. */
typedef struct s2f_job {
    int64_t id;
    int attempts;            /* claims so far, this one included */
    int64_t enqueued_at;
    int64_t lease_until;     /* the lease ends at this time; then the job is claimable again */
    char sop_instance_uid[S2F_QUEUE_UID_MAX + 1];
    char path[S2F_QUEUE_PATH_MAX + 1];     /* the received SR's bytes, a file in the data folder */
    char source[S2F_QUEUE_SOURCE_MAX + 1]; /* who sent it: remote address, token name */
    char worker[S2F_QUEUE_WORKER_MAX + 1]; /* who holds the lease */
} s2f_job;

typedef struct s2f_queue_stats {
    int64_t count[S2F_JOB_NSTATES];
} s2f_queue_stats;

/* Opens (creating when absent) the queue database at `path`. `opt` may be NULL. */
s2f_code s2f_queue_open(const char *path, const s2f_queue_options *opt, s2f_queue **out,
                        s2f_error *err);
void s2f_queue_close(s2f_queue *q);

/* Adds a pending job for the SR stored at `path`, ready at `now`. Returns only after the
 * row is committed (WAL, synchronous=FULL: it survives a crash or power loss); the caller
 * must have made the file durable (fsync) before. Idempotent receive: when a job for the
 * same SOP Instance UID is still pending or leased, no job is added and that job's id is
 * returned with *created = false (the caller may then remove its new copy of the bytes).
 * A SOP Instance UID whose job is finished (done, dead, not applicable) gets a new job. */
s2f_code s2f_queue_enqueue(s2f_queue *q, const char *sop_instance_uid, const char *path,
                           const char *source, int64_t now, int64_t *job_id, bool *created,
                           s2f_error *err);

/* One job of a batch enqueue: the inputs, then what s2f_queue_enqueue_batch found. */
typedef struct s2f_queue_item {
    const char *sop_instance_uid;
    const char *path;
    const char *source;
    int64_t job_id;          /* out: the new job, or the open job of the same UID */
    bool created;            /* out: false when an open job of the UID existed */
} s2f_queue_item;

/* s2f_queue_enqueue of `n` items in ONE transaction (the receiver's group commit: one
 * fsync of the WAL for every SR that arrived meanwhile): all are committed, or none (an
 * error). Items are enqueued in order, so a later item of the same SOP Instance UID finds
 * the earlier one's job (created = false). Every item is checked before anything is
 * written: a bad one (S2F_EUSAGE) refuses the whole batch. */
s2f_code s2f_queue_enqueue_batch(s2f_queue *q, s2f_queue_item *items, size_t n, int64_t now,
                                 s2f_error *err);

/* For a readiness probe: takes the write lock (BEGIN IMMEDIATE) and gives it back
 * (ROLLBACK), changing nothing. S2F_EIO when the database cannot be written now (opened
 * read-only, locked past the busy timeout, I/O error). */
s2f_code s2f_queue_check_writable(s2f_queue *q, s2f_error *err);

/* Atomically takes the oldest ready job: a pending one whose not-before time has come, or
 * a leased one whose lease has ended (its worker crashed or hung), oldest not-before time
 * first, then enqueue order. It becomes leased by `worker` until now + lease_seconds, and
 * its attempts grow by one. *found = false (and S2F_OK) when no job is ready. */
s2f_code s2f_queue_claim(s2f_queue *q, const char *worker, int lease_seconds, int64_t now,
                         s2f_job *job, bool *found, s2f_error *err);

/* Finish a claimed job. Each checks the caller still holds the lease (the job is leased by
 * job->worker with job->attempts attempts); otherwise S2F_ELOOKUP and nothing changes, so a
 * worker whose lease ended and was claimed again cannot overwrite the new holder's
 * result. A lease that ended but was not yet claimed again may still finish.
 * retry_later: back to pending, not claimable before `not_before`, reason kept.
 * dead: dead letter with a failure class ("permanent", "auth", "conversion", ...) and a
 * reason. */
s2f_code s2f_queue_done(s2f_queue *q, const s2f_job *job, int64_t now, s2f_error *err);
s2f_code s2f_queue_retry_later(s2f_queue *q, const s2f_job *job, int64_t not_before,
                               const char *reason, s2f_error *err);
s2f_code s2f_queue_dead(s2f_queue *q, const s2f_job *job, const char *failure_class,
                        const char *reason, int64_t now, s2f_error *err);
s2f_code s2f_queue_not_applicable(s2f_queue *q, const s2f_job *job, const char *reason,
                                  int64_t now, s2f_error *err);

/* s2f_queue_done of `done` and s2f_queue_claim of the next ready job for `worker` in ONE
 * transaction (one commit, one WAL fsync per delivered job in a busy queue). All or
 * nothing: when `done`'s lease is no longer held, S2F_ELOOKUP and nothing changes (no job
 * claimed either); on success *found says whether `next` was claimed. */
s2f_code s2f_queue_done_claim(s2f_queue *q, const s2f_job *done, int64_t now,
                              const char *worker, int lease_seconds, s2f_job *next, bool *found,
                              s2f_error *err);

/* Operator's retry of a dead letter (`queue retry`, after the cause is fixed): the dead job
 * becomes pending, ready at `now`, with its attempts kept. S2F_ELOOKUP when the job is not
 * dead (or does not exist); S2F_EUSAGE when a job of the same SOP Instance UID is pending or
 * leased already (it will deliver the SR). */
s2f_code s2f_queue_retry_dead(s2f_queue *q, int64_t job_id, int64_t now, s2f_error *err);

/* The job's state, failure class and last reason (for `queue show` and tests). `cls` and
 * `reason` may be NULL; they are set to "" when none. S2F_ELOOKUP when there is no such job. */
s2f_code s2f_queue_job_state(s2f_queue *q, int64_t job_id, s2f_job_state *state, char *cls,
                             size_t cls_size, char *reason, size_t reason_size, s2f_error *err);

/* Number of jobs in each state (a leased job whose lease ended still counts as leased). */
s2f_code s2f_queue_stats_get(s2f_queue *q, s2f_queue_stats *stats, s2f_error *err);

/* When the oldest job still waiting for delivery (pending or leased) was enqueued, for the
 * age of the oldest job in /metrics; 0 when none waits. */
s2f_code s2f_queue_oldest_pending(s2f_queue *q, int64_t *enqueued_at, s2f_error *err);

/* Removes done and not-applicable jobs finished before `older_than` (kept that long for
 * audit); dead letters stay. *removed (may be NULL) is how many went. */
s2f_code s2f_queue_purge_done(s2f_queue *q, int64_t older_than, int64_t *removed,
                              s2f_error *err);

/* ---- operating the queue (`sr2fhir queue list|show|retry|purge`) ------------------ */

#define S2F_QUEUE_CLASS_MAX 31
#define S2F_QUEUE_REASON_MAX 1023 /* a longer stored reason is read cut to this */

/* Everything stored about one job. A time that is not set is -1: lease_until and worker
 * ("") outside the leased state, finished_at before the job finished. */
typedef struct s2f_job_info {
    int64_t id;
    s2f_job_state state;
    int attempts;
    int64_t enqueued_at;
    int64_t not_before;      /* pending: not claimed before this time */
    int64_t lease_until;
    int64_t finished_at;     /* done, dead, not applicable: when */
    char sop_instance_uid[S2F_QUEUE_UID_MAX + 1];
    char path[S2F_QUEUE_PATH_MAX + 1];
    char source[S2F_QUEUE_SOURCE_MAX + 1];
    char worker[S2F_QUEUE_WORKER_MAX + 1];
    char failure_class[S2F_QUEUE_CLASS_MAX + 1]; /* "" when none */
    char reason[S2F_QUEUE_REASON_MAX + 1];       /* the last failure's reason, "" when none */
} s2f_job_info;

/* Which jobs s2f_queue_list reads: those of `state` (S2F_JOB_NSTATES: every state) with
 * an id above `after_id`, in id order, at most `limit` (1 .. S2F_QUEUE_LIST_MAX). */
#define S2F_QUEUE_LIST_MAX 1000000
typedef struct s2f_queue_filter {
    s2f_job_state state;
    int64_t after_id;
    int64_t limit;
} s2f_queue_filter;

/* Calls `each` with every job the filter selects, in id order; `each` returns non-zero to
 * stop early (S2F_OK is still returned). `info` is valid during the call only. */
s2f_code s2f_queue_list(s2f_queue *q, const s2f_queue_filter *filter,
                        int (*each)(void *ctx, const s2f_job_info *info), void *ctx,
                        s2f_error *err);

/* The job `job_id`; S2F_ELOOKUP when there is none. */
s2f_code s2f_queue_get(s2f_queue *q, int64_t job_id, s2f_job_info *info, s2f_error *err);

/* Bit of a state for s2f_queue_purge's `states`. */
#define S2F_JOB_BIT(state) (1u << (state))

/* Removes the finished jobs of `states` (bits of done, dead, not_applicable; other bits are
 * refused with S2F_EUSAGE) finished before `older_than`. Works in batches of a few hundred
 * jobs, each its own transaction; after a batch is committed, `removed_job` (may be NULL)
 * is called with each removed job's id and file path, so the caller can delete the file.
 * *removed (may be NULL) is how many jobs went (also when an error stopped it part-way). */
s2f_code s2f_queue_purge(s2f_queue *q, unsigned states, int64_t older_than,
                         void (*removed_job)(void *ctx, int64_t id, const char *path), void *ctx,
                         int64_t *removed, s2f_error *err);

/* ---- pulled instances and poll cursors (issue 13: pull.c, serve's polling source) -- */

/* The record of instances `pull` retrieved (SOP Instance UID, SHA-256 of the bytes, the
 * job that delivers them; 0 when refused) and named cursors of the pollers, in tables of
 * their own (docs/decisions.md "Issue 13: pull"). Each put is its own transaction. */
#define S2F_QUEUE_SHA256_HEX 64

typedef struct s2f_pulled {
    char sha256[S2F_QUEUE_SHA256_HEX + 1];  /* lower-case hex */
    int64_t job_id;                         /* 0: none (the instance was refused) */
    int64_t pulled_at;
    s2f_job_state job_state;                /* S2F_JOB_NSTATES: no such job (none, or purged) */
} s2f_pulled;

/* The record of `sop_instance_uid`; *found = false when there is none. */
s2f_code s2f_queue_pulled_get(s2f_queue *q, const char *sop_instance_uid, s2f_pulled *rec,
                              bool *found, s2f_error *err);
/* Adds or replaces the record of `sop_instance_uid` (sha256: 64 lower-case hex digits). */
s2f_code s2f_queue_pulled_put(s2f_queue *q, const char *sop_instance_uid, const char *sha256,
                              int64_t job_id, const char *source, int64_t now, s2f_error *err);

/* The newest job of `sop_instance_uid` (any state, any source): its id, state and file
 * path (path may be NULL); *found = false when there is none. An index makes it cheap. */
s2f_code s2f_queue_latest_job(s2f_queue *q, const char *sop_instance_uid, int64_t *job_id,
                              s2f_job_state *state, char *path, size_t path_size, bool *found,
                              s2f_error *err);

/* A poller's cursor `name` (at most S2F_QUEUE_SOURCE_MAX bytes): *found = false when never
 * set. */
s2f_code s2f_queue_cursor_get(s2f_queue *q, const char *name, int64_t *value, bool *found,
                              s2f_error *err);
s2f_code s2f_queue_cursor_set(s2f_queue *q, const char *name, int64_t value, int64_t now,
                              s2f_error *err);

#endif
