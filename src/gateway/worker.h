/*
 * worker.h - the gateway's delivery workers (issue 11 Build #4): a pool of threads, each
 * with its own queue handle and FHIR client, that claim jobs, read and convert the stored
 * SR and deliver it with s2f_send (lookups, transactions, splitting, idempotent PUTs).
 *
 * Failure classes (metrics.h): transient ones are retried with exponential backoff, jitter
 * and the server's Retry-After, until retry_total seconds since the job was enqueued have
 * passed (then dead-lettered as "transient"); an auth failure (401, 403) pauses the whole
 * pool, logged loudly, re-probed every auth_probe seconds with the paused job; permanent
 * failures and conversion failures are dead letters with the reason; a report that is
 * not TID 1500 is finished as not applicable.
 */
#ifndef S2F_GATEWAY_WORKER_H
#define S2F_GATEWAY_WORKER_H

#include <stdint.h>

#include "sr2fhir_cast.h"
#include "sr2fhir_send.h"
#include "gateway/log.h"
#include "gateway/metrics.h"

typedef struct s2f_workers_options {
    const char *queue_path;       /* the queue database */
    const char *server;           /* FHIR base URL */
    s2f_client_options client;    /* as for `send` */
    s2f_options read;             /* reading limits for the stored SRs */
    int threads;                  /* 0 = 4 */
    int lease_seconds;            /* 0 = 600 (above client.deadline) */
    long retry_total;             /* seconds a transient failure is retried; 0 = 86400 */
    long backoff_min_ms;          /* 0 = 1000 */
    long backoff_max_ms;          /* 0 = 300000 */
    long auth_probe;              /* seconds between tries while paused; 0 = 60 */
    long idle_poll_ms;            /* claim again after this long without a wake; 0 = 1000 */
    int audit_fd;                 /* -1: no audit log, else s2f_audit_append lines */
    s2f_gw_metrics *metrics;      /* may be NULL */
    s2f_gw_log *log;              /* may be NULL */
    /* issue 15: after each delivery, share the SR with the DiagnosticReport open on this
     * FHIRcast hub (sr2fhir_cast.h; one session per worker), best effort; NULL: none.
     * Must outlive the pool. */
    const s2f_cast_options *fhircast;
} s2f_workers_options;

typedef struct s2f_workers s2f_workers;

/* What a worker does with a job after one attempt (s2f_worker_classify). */
typedef enum s2f_worker_outcome {
    S2F_WORKER_DONE,            /* delivered: done */
    S2F_WORKER_NOT_APPLICABLE,  /* not a TID 1500 report: finished, never retried */
    S2F_WORKER_TRANSIENT,       /* retried later with backoff, until retry_total */
    S2F_WORKER_AUTH,            /* 401/403: the job goes back, the pool pauses */
    S2F_WORKER_PERMANENT,       /* dead letter, class "permanent" */
    S2F_WORKER_CONVERSION       /* dead letter, class "conversion" */
} s2f_worker_outcome;

/* The class of an attempt's result: `rc` from reading the stored SR or from s2f_send,
 * `http_status` the server's last answer (s2f_send_result.http_status, 0 when none).
 * Pure (docs/decisions.md "Issue 11: delivery workers" has the table). */
s2f_worker_outcome s2f_worker_classify(s2f_code rc, long http_status);

/* The wait before a transient failure's next attempt, in milliseconds: with the server's
 * Retry-After (retry_after_s >= 0) that many seconds (at most a day); else exponential,
 * base = min(max_ms, min_ms * 2^(attempts-1)), and a random 50-100 % of it taken from
 * `rnd` (any 64-bit value): base/2 + rnd % (base/2 + 1). attempts < 1 counts as 1. Pure. */
long s2f_worker_backoff_ms(int attempts, long retry_after_s, uint64_t rnd, long min_ms,
                           long max_ms);

/* Starts the threads. Strings in opt must outlive the pool. */
s2f_code s2f_workers_start(const s2f_workers_options *opt, s2f_workers **out, s2f_error *err);

/* A job was enqueued: wake an idle worker now instead of at its next poll. */
void s2f_workers_wake(s2f_workers *w);

/* 1 while delivery is paused by an authentication failure. */
int s2f_workers_paused(const s2f_workers *w);

/* Stops claiming (idle workers at once), lets each worker finish its current delivery
 * within `grace_seconds`, then cancels the requests still running (their jobs go back to
 * pending, claimable at once: delivered again after a restart, idempotent PUTs), joins
 * the threads and frees the pool. */
void s2f_workers_stop(s2f_workers *w, int grace_seconds);

#endif
