/*
 * pull.h - the pull engine (issue 13): finds the SR instances a DICOMweb server holds
 * (QIDO-RS, dicomweb.h), skips those the record of pulled instances (queue.h) knows with a
 * job that is not dead, retrieves the others (WADO-RS) into the data folder, classifies
 * them and commits them to the durable queue through intake.h, exactly as STOW-RS and
 * C-STORE do, then records them (SOP Instance UID, SHA-256 of the bytes, job id).
 * `sr2fhir pull` (src/cli/pull.c) runs it once; `sr2fhir serve --pull URL` runs it every
 * interval in a thread of its own (s2f_poller). docs/pull.md, docs/decisions.md
 * "Issue 13: pull".
 */
#ifndef S2F_GATEWAY_PULL_H
#define S2F_GATEWAY_PULL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sr2fhir.h"
#include "gateway/dicomweb.h"
#include "gateway/intake.h"
#include "gateway/log.h"
#include "gateway/queue.h"

#define S2F_PULL_JOBS_MAX 32

/* What one run did. */
typedef struct s2f_pull_counts {
    long long found;      /* SR instances the search listed */
    long long skipped;    /* known already: not retrieved (or, with recheck, the same bytes) */
    long long retrieved;  /* retrieved ("new") */
    long long queued;     /* committed to the queue: a job created, or an open one joined */
    long long refused;    /* retrieved, but not an SR object the queue takes (never queued) */
    long long failed;     /* retrieval failed (an error answer, a malformed one, a bound) */
    long long commits;    /* s2f_intake_commit calls: batches of up to 32 instances */
} s2f_pull_counts;

typedef struct s2f_pull_options {
    const char *source;         /* stored with the jobs and records: "pull URL" */
    bool recheck;               /* retrieve known instances too and compare their SHA-256 */
    long long deadline_ns;      /* s2f_mono_ns() after which no instance is started; 0: none */
    const atomic_int *stop;     /* non-zero: stop after the instances in flight; may be NULL */
    /* each queued instance's job (created: false when an open job of its UID took it) */
    void (*on_queued)(void *ctx, int64_t job_id, bool created);
    void *ctx;
    s2f_gw_log *log;            /* may be NULL */
} s2f_pull_options;

/* One run: search with `search`, retrieve with fetch[0..nfetch) (1..S2F_PULL_JOBS_MAX
 * handles, one thread each when more than one; none of them `search`). The queue handle `q`
 * is used under the engine's own lock. S2F_OK when the search went through to its end
 * (instances that failed are counted in `failed`, the first one's reason in err with
 * err->code set); otherwise the run stopped: S2F_EUNREACHABLE (the server, after retries,
 * or the deadline or stop), S2F_EREJECTED, S2F_EFORMAT or S2F_ELIMIT of the search, S2F_EIO
 * or S2F_ENOMEM of the data folder or queue, with the counts so far. */
s2f_code s2f_pull_run(s2f_dw *search, s2f_dw *const *fetch, int nfetch, s2f_intake *in,
                      s2f_queue *q, const s2f_dw_query *query, const s2f_pull_options *opt,
                      s2f_pull_counts *counts, s2f_error *err);

/* SHA-256 of data as 64 lower-case hex digits and a NUL into hex. */
s2f_code s2f_pull_sha256_hex(const void *data, size_t len, char hex[S2F_QUEUE_SHA256_HEX + 1],
                             s2f_error *err);

/* The poller's StudyDate window start (DICOM DA, local time) into da[9]: the day of
 * (the last completed poll's start, or now when there was none, whichever is earlier)
 * minus lookback seconds. Pure apart from the time zone. */
void s2f_pull_window_since(int64_t cursor, bool has_cursor, int64_t now, long lookback,
                           char da[9]);

/* ---- the serve's polling source ---------------------------------------------------------- */

typedef struct s2f_poller_options {
    const char *base;           /* DICOMweb root */
    s2f_dw_options dw;          /* as for s2f_dw_new */
    s2f_intake *intake;         /* the service's; must outlive the poller */
    const char *queue_path;     /* the poller opens its own handle */
    long interval;              /* seconds between polls (>= 1) */
    long lookback;              /* seconds of StudyDate window before the cursor; 0: none */
    int jobs;                   /* parallel retrievals; 0 = 1 */
    s2f_gw_log *log;            /* may be NULL */
} s2f_poller_options;

typedef struct s2f_poller s2f_poller;

/* Opens the handles (so a bad URL or queue fails here) and starts the thread: it polls
 * at once unless the cursor says the last completed poll started less than an interval
 * ago, then every interval. Strings are copied. */
s2f_code s2f_poller_start(const s2f_poller_options *opt, s2f_poller **out, s2f_error *err);

/* Polls completed so far (for tests and logs). */
long long s2f_poller_polls(const s2f_poller *p);

/* Stops the thread (a request in flight is cancelled: s2f_dw_set_cancel), joins it and
 * frees everything. */
void s2f_poller_stop(s2f_poller *p);

#endif
