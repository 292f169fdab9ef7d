/*
 * worker.c - the gateway's delivery workers (worker.h, issue 11 Build #4).
 *
 * A pool of threads; each owns a queue handle and a FHIR client (neither is shared). A
 * worker claims a job under a lease, reads the stored SR, delivers it with s2f_send and
 * finishes the job by the outcome's class (s2f_worker_classify): done, not applicable,
 * retried later with backoff (s2f_worker_backoff_ms), or dead-lettered with the reason.
 * A 401/403 pauses the whole pool: nobody claims, one worker at a time probes again every
 * auth_probe seconds with a job, and a probe the server accepts resumes delivery.
 *
 * Locking: the pool's mutex guards stopping, wakes and the pause state; counters are the
 * atomic metrics; everything else belongs to one worker. No global mutable state.
 * Waits use a CLOCK_MONOTONIC condition variable; s2f_workers_wake and stop signal it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver/client.h"
#include "gateway/queue.h"
#include "gateway/worker.h"
#include "util/error.h"

#define DEFAULT_THREADS 4
#define MAX_THREADS 256
#define DEFAULT_LEASE 600
#define DEFAULT_RETRY_TOTAL 86400L
#define DEFAULT_BACKOFF_MIN_MS 1000L
#define DEFAULT_BACKOFF_MAX_MS 300000L
#define DEFAULT_AUTH_PROBE 60L
#define DEFAULT_IDLE_POLL_MS 1000L
#define MAX_RETRY_AFTER_MS (86400L * 1000L)
#define LEASE_MARGIN_MIN 5   /* seconds the client's deadline stays below the lease, at least */

typedef struct worker {
    s2f_workers *pool;
    int index;
    int started;             /* the thread runs (to join) */
    pthread_t thread;
    s2f_queue *q;
    s2f_client *client;
    s2f_cast *cast;          /* the FHIRcast session (issue 15), opened at the first use */
    uint64_t rng;            /* jitter; this worker's own */
    char name[S2F_QUEUE_WORKER_MAX + 1];
    s2f_job next;            /* claimed together with the last done (s2f_queue_done_claim) */
    int has_next;
} worker;

struct s2f_workers {
    s2f_workers_options opt; /* defaults filled in */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* under lock */
    int stopping;
    int running;             /* threads not yet at their end */
    unsigned long wakes;     /* s2f_workers_wake calls so far */
    int probing;             /* a worker is delivering the probe job */
    int64_t next_probe;      /* while paused: when the next probe may start */
    char pause_reason[S2F_ERROR_MAX];
    /* read without the lock */
    atomic_int paused;
    atomic_int cancel;       /* the stop's grace ended: the clients' requests stop at once */
    int n;
    worker *w;
};

/* ---- pure parts ---------------------------------------------------------------------- */

s2f_worker_outcome s2f_worker_classify(s2f_code rc, long http_status)
{
    if (rc == S2F_OK)
        return S2F_WORKER_DONE;
    if (rc == S2F_ENOTTID1500)
        return S2F_WORKER_NOT_APPLICABLE;
    if (http_status == 401 || http_status == 403)
        return S2F_WORKER_AUTH;
    if (http_status == 408 || http_status == 429 || (http_status >= 500 && http_status <= 599))
        return S2F_WORKER_TRANSIENT;
    switch (rc) {
    case S2F_EUNREACHABLE: /* connection, TLS, timeouts, the deadline */
    case S2F_ENOMEM:       /* the system may have memory again later */
        return S2F_WORKER_TRANSIENT;
    case S2F_EIO:          /* the stored file is missing or unreadable */
    case S2F_EFORMAT:
    case S2F_EUNSUPPORTED:
    case S2F_ELIMIT:
        return S2F_WORKER_CONVERSION;
    default:               /* EREJECTED (other 4xx), ELOOKUP, EUSAGE, EINTERNAL */
        return S2F_WORKER_PERMANENT;
    }
}

long s2f_worker_backoff_ms(int attempts, long retry_after_s, uint64_t rnd, long min_ms,
                           long max_ms)
{
    if (retry_after_s >= 0)
        return retry_after_s >= MAX_RETRY_AFTER_MS / 1000 ? MAX_RETRY_AFTER_MS
                                                           : retry_after_s * 1000L;
    if (min_ms < 1)
        min_ms = 1;
    if (max_ms < min_ms)
        max_ms = min_ms;
    long base = min_ms;
    for (int i = 1; i < attempts && base < max_ms; i++)
        base = base > max_ms / 2 ? max_ms : base * 2;
    if (base > max_ms)
        base = max_ms;
    return base / 2 + (long)(rnd % (uint64_t)(base / 2 + 1));
}

/* ---- clocks and waits ---------------------------------------------------------------- */

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits on the pool's condition for at most ms (the lock held). */
static void timed_wait(s2f_workers *p, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->cond, &p->lock, &ts);
}

static uint64_t next_random(worker *w)
{
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 2685821657736338717ULL;
}

/* ---- pause ---------------------------------------------------------------------------- */

/* An auth failure: pause the pool (logged once, when it starts). */
static void pause_pool(s2f_workers *p, const char *why)
{
    pthread_mutex_lock(&p->lock);
    if (!atomic_load(&p->paused)) {
        atomic_store(&p->paused, 1);
        p->next_probe = wall_now() + p->opt.auth_probe;
        snprintf(p->pause_reason, sizeof p->pause_reason, "%s", why);
        if (p->opt.metrics)
            atomic_store(&p->opt.metrics->paused, 1);
        s2f_gw_logf(p->opt.log, S2F_LOG_ERROR, "delivery PAUSED: the FHIR server refused the "
                    "credentials (%s); no job is delivered until a try every %ld s succeeds "
                    "(fix the credentials or the server's access rules)", why, p->opt.auth_probe);
    }
    pthread_mutex_unlock(&p->lock);
}

/* The end of a probe: resume on an answer that is not 401/403, else probe again later
 * (at once when the job never reached the server). */
static void probe_done(s2f_workers *p, s2f_worker_outcome oc, int reached_server)
{
    pthread_mutex_lock(&p->lock);
    p->probing = 0;
    if (oc == S2F_WORKER_DONE || (oc == S2F_WORKER_PERMANENT && reached_server)) {
        atomic_store(&p->paused, 0);
        if (p->opt.metrics)
            atomic_store(&p->opt.metrics->paused, 0);
        s2f_gw_logf(p->opt.log, S2F_LOG_INFO, "delivery resumed: the FHIR server accepts the "
                    "credentials again");
        pthread_cond_broadcast(&p->cond);
    } else if (oc == S2F_WORKER_AUTH || oc == S2F_WORKER_TRANSIENT) {
        p->next_probe = wall_now() + p->opt.auth_probe;
        s2f_gw_logf(p->opt.log, S2F_LOG_INFO, "delivery still paused: the probe failed; "
                    "next try in %ld s", p->opt.auth_probe);
    } else {
        p->next_probe = wall_now(); /* the job never reached the server: another one */
    }
    pthread_mutex_unlock(&p->lock);
}

/* ---- one job --------------------------------------------------------------------------- */

static void count(s2f_workers *p, atomic_llong *counter, long long n)
{
    if (p->opt.metrics)
        atomic_fetch_add(counter, n);
}

/* Logs a queue update that failed: a lost lease is expected (another worker has it). */
static void queue_result(worker *w, const s2f_job *job, s2f_code rc, const s2f_error *err)
{
    if (rc == S2F_ELOOKUP)
        s2f_gw_logf(w->pool->opt.log, S2F_LOG_WARN, "job %lld: the lease was lost before the "
                    "result was recorded (%s); the job's new holder decides", (long long)job->id,
                    err->message);
    else if (rc)
        s2f_gw_logf(w->pool->opt.log, S2F_LOG_ERROR, "job %lld: the queue could not record the "
                    "result: %s (the job comes back when its lease ends)", (long long)job->id,
                    err->message);
}

static void dead_letter(worker *w, const s2f_job *job, s2f_fail_class cls, const char *reason)
{
    s2f_workers *p = w->pool;
    s2f_error qerr = {0};
    s2f_code rc = s2f_queue_dead(w->q, job, s2f_fail_class_name(cls), reason, wall_now(), &qerr);
    queue_result(w, job, rc, &qerr);
    if (!rc) {
        count(p, p->opt.metrics ? &p->opt.metrics->dead : NULL, 1);
        s2f_gw_logf(p->opt.log, S2F_LOG_ERROR, "job %lld (SOP Instance %s) dead-lettered as %s "
                    "after %d attempt%s: %s", (long long)job->id, job->sop_instance_uid,
                    s2f_fail_class_name(cls), job->attempts, job->attempts == 1 ? "" : "s", reason);
    }
}

/* A transient failure: try again after the backoff, or give up after retry_total. */
static void retry_or_give_up(worker *w, const s2f_job *job, long retry_after, const char *reason)
{
    s2f_workers *p = w->pool;
    int64_t now = wall_now(), end = job->enqueued_at + p->opt.retry_total;
    if (now >= end) {
        char why[S2F_ERROR_MAX + 96];
        snprintf(why, sizeof why, "still failing after %ld s of retries (--retry-total): %s",
                 p->opt.retry_total, reason);
        dead_letter(w, job, S2F_FAIL_TRANSIENT, why);
        return;
    }
    long ms = s2f_worker_backoff_ms(job->attempts, retry_after, next_random(w),
                                    p->opt.backoff_min_ms, p->opt.backoff_max_ms);
    int64_t when = now + (ms + 999) / 1000;
    if (when > end)
        when = end; /* one last try when the retry time ends */
    s2f_error qerr = {0};
    s2f_code rc = s2f_queue_retry_later(w->q, job, when, reason, &qerr);
    queue_result(w, job, rc, &qerr);
    if (!rc)
        s2f_gw_logf(p->opt.log, S2F_LOG_WARN, "job %lld (SOP Instance %s): attempt %d failed, "
                    "next in %lld s: %s", (long long)job->id, job->sop_instance_uid, job->attempts,
                    (long long)(when - now), reason);
}

/* 1 while the pool is neither stopping nor paused (a claim would be used at once). */
static int delivering(s2f_workers *p)
{
    pthread_mutex_lock(&p->lock);
    int yes = !p->stopping && !atomic_load(&p->paused);
    pthread_mutex_unlock(&p->lock);
    return yes;
}

/* A delivered job is done; while the pool delivers, the worker's next job is claimed in the
 * same transaction (one commit per delivered SR instead of two: bench/README.md). */
static s2f_code record_done(worker *w, const s2f_job *job, s2f_error *qerr)
{
    s2f_workers *p = w->pool;
    if (!delivering(p))
        return s2f_queue_done(w->q, job, wall_now(), qerr);
    bool found = false;
    s2f_code rc = s2f_queue_done_claim(w->q, job, wall_now(), w->name, p->opt.lease_seconds,
                                       &w->next, &found, qerr);
    w->has_next = !rc && found;
    return rc;
}

/* The job claimed with the last done, when the pool paused or stops meanwhile: back to
 * pending at once (attempts keep the claim; it was not tried). */
static void give_back(worker *w)
{
    s2f_error qerr = {0};
    s2f_code rc = s2f_queue_retry_later(w->q, &w->next, wall_now(), "given back unstarted "
                                        "(delivery paused or stopping)", &qerr);
    queue_result(w, &w->next, rc, &qerr);
    w->has_next = 0;
}

static void finish(worker *w, const s2f_job *job, s2f_worker_outcome oc, const s2f_error *err,
                   long retry_after, double seconds)
{
    s2f_workers *p = w->pool;
    s2f_gw_metrics *m = p->opt.metrics;
    s2f_error qerr = {0};
    s2f_code rc;
    switch (oc) {
    case S2F_WORKER_DONE:
        rc = record_done(w, job, &qerr);
        queue_result(w, job, rc, &qerr);
        if (!rc && m) {
            atomic_fetch_add(&m->delivered, 1);
            atomic_fetch_add(&m->deliver_us_sum, (long long)(seconds * 1e6));
        }
        if (!rc)
            s2f_gw_logf(p->opt.log, S2F_LOG_DEBUG, "job %lld (SOP Instance %s) delivered",
                        (long long)job->id, job->sop_instance_uid);
        break;
    case S2F_WORKER_NOT_APPLICABLE:
        rc = s2f_queue_not_applicable(w->q, job, err->message, wall_now(), &qerr);
        queue_result(w, job, rc, &qerr);
        if (!rc && m)
            atomic_fetch_add(&m->not_applicable, 1);
        if (!rc)
            s2f_gw_logf(p->opt.log, S2F_LOG_INFO, "job %lld (SOP Instance %s) not applicable: "
                        "%s", (long long)job->id, job->sop_instance_uid, err->message);
        break;
    case S2F_WORKER_CONVERSION:
    case S2F_WORKER_PERMANENT: {
        s2f_fail_class cls = oc == S2F_WORKER_CONVERSION ? S2F_FAIL_CONVERSION : S2F_FAIL_PERMANENT;
        count(p, m ? &m->failed[cls] : NULL, 1);
        dead_letter(w, job, cls, err->message);
        break;
    }
    case S2F_WORKER_TRANSIENT:
        count(p, m ? &m->failed[S2F_FAIL_TRANSIENT] : NULL, 1);
        retry_or_give_up(w, job, retry_after, err->message);
        break;
    case S2F_WORKER_AUTH:
        count(p, m ? &m->failed[S2F_FAIL_AUTH] : NULL, 1);
        pause_pool(p, err->message);
        rc = s2f_queue_retry_later(w->q, job, wall_now(), err->message, &qerr);
        queue_result(w, job, rc, &qerr);
        break;
    }
}

/* Issue 15: after a delivery is recorded, the SR goes to the report open on the FHIRcast hub
 * for its patient and study, best effort: no such report is the usual case (logged at
 * debug); a failure is logged and the session opened again for the next SR; nothing is
 * retried (the hub's context is transient, docs/fhircast.md). */
static void share_on_hub(worker *w, const s2f_job *job, const s2f_doc *doc)
{
    s2f_workers *p = w->pool;
    s2f_error err = {0};
    if (!w->cast && !(w->cast = s2f_cast_open(p->opt.fhircast, &err))) {
        s2f_gw_logf(p->opt.log, S2F_LOG_WARN, "job %lld: FHIRcast hub: %s", (long long)job->id,
                    err.message);
        return;
    }
    s2f_cast_result res;
    s2f_cast_result_init(&res);
    s2f_code rc = s2f_cast_share(w->cast, doc, &res, &err);
    if (rc == S2F_OK)
        s2f_gw_logf(p->opt.log, S2F_LOG_INFO, "job %lld: shared %zu resources with %s on the "
                    "FHIRcast hub (version %s)", (long long)job->id, res.resources, res.report,
                    res.version);
    else if (rc == S2F_ELOOKUP)
        s2f_gw_logf(p->opt.log, S2F_LOG_DEBUG, "job %lld: FHIRcast: not shared: %s",
                    (long long)job->id, err.message);
    else {
        s2f_gw_logf(p->opt.log, S2F_LOG_WARN, "job %lld: FHIRcast: not shared: %s",
                    (long long)job->id, err.message);
        s2f_cast_close(w->cast);
        w->cast = NULL;
    }
}

/* Reads and delivers one claimed job; returns its outcome. *reached: the server answered. */
static s2f_worker_outcome deliver(worker *w, const s2f_job *job, int *reached)
{
    s2f_workers *p = w->pool;
    s2f_error err = {0};
    s2f_send_result res;
    s2f_send_result_init(&res);
    res.retry_after = -1;
    double start = mono_now();
    s2f_doc *doc = NULL;
    s2f_code rc;
    if (!job->path[0] || !strcmp(job->path, "-"))
        rc = s2f_fail(&err, S2F_EIO, "the job names no stored file");
    else if (!(doc = s2f_doc_read_file(job->path, &p->opt.read, &err)))
        rc = err.code ? err.code : S2F_EIO;
    else
        rc = s2f_send(w->client, doc, &res, &err);
    double seconds = mono_now() - start;
    if (p->opt.audit_fd >= 0) {
        s2f_error aerr;
        if (s2f_audit_append(p->opt.audit_fd, job->path, doc, w->client, &res, rc, &err, &aerr))
            s2f_gw_logf(p->opt.log, S2F_LOG_WARN, "job %lld: %s", (long long)job->id,
                        aerr.message);
    }
    s2f_worker_outcome oc = s2f_worker_classify(rc, res.http_status);
    *reached = res.http_status != 0;
    if (rc && atomic_load(&p->cancel)) {
        /* cut off by the stop: not the job's failure; it is claimable again at once */
        s2f_error qerr = {0};
        s2f_code qrc = s2f_queue_retry_later(w->q, job, wall_now(), "delivery cut off by the "
                                             "service's stop", &qerr);
        queue_result(w, job, qrc, &qerr);
        s2f_gw_logf(p->opt.log, S2F_LOG_WARN, "job %lld (SOP Instance %s): delivery cut off by "
                    "the stop; it is delivered again after the restart", (long long)job->id,
                    job->sop_instance_uid);
        oc = S2F_WORKER_TRANSIENT;
    } else {
        finish(w, job, oc, &err, res.retry_after, seconds);
        if (oc == S2F_WORKER_DONE && p->opt.fhircast)
            share_on_hub(w, job, doc);
    }
    s2f_send_result_free(&res);
    s2f_doc_free(doc);
    return oc;
}

/* Issue 11 gap 2: paused and no job to probe with (the queue is empty): a search that
 * changes nothing, with this worker's client and credentials, so delivery resumes on its
 * own schedule and not only when a job arrives. 2xx: the server takes the credentials
 * (DONE); 401/403: still refused (AUTH); anything else: not known yet (TRANSIENT). */
static s2f_worker_outcome probe_without_job(worker *w, int *reached)
{
    s2f_send_result res;
    s2f_send_result_init(&res);
    res.retry_after = -1;
    s2f_error err = {0};
    char *ref = NULL;
    s2f_client_begin(w->client);
    s2f_code rc = s2f_client_find(w->client, "Patient", "urn:ietf:rfc:3986",
                                  "urn:sr2fhir:auth-probe", &ref, &res, &err);
    free(ref);
    long status = res.http_status;
    s2f_send_result_free(&res);
    *reached = status != 0;
    if (status == 401 || status == 403)
        return S2F_WORKER_AUTH;
    if (status >= 200 && status <= 299)
        return S2F_WORKER_DONE; /* also when the search's result was refused (rc) */
    s2f_gw_logf(w->pool->opt.log, S2F_LOG_INFO, "auth probe: %s",
                rc ? err.message : "no answer");
    return S2F_WORKER_TRANSIENT;
}

/* ---- the loop -------------------------------------------------------------------------- */

/* Under the lock: 1 when this worker may claim now (as the probe when paused), 0 after
 * having waited (the caller looks again), -1 when stopping. */
static int may_claim(worker *w, int *probe, unsigned long *wakes)
{
    s2f_workers *p = w->pool;
    *probe = 0;
    if (p->stopping)
        return -1;
    if (atomic_load(&p->paused)) {
        int64_t now = wall_now();
        if (!p->probing && now >= p->next_probe) {
            p->probing = 1;
            *probe = 1;
            *wakes = p->wakes;
            return 1;
        }
        int64_t until = p->probing ? now + 1 : p->next_probe;
        long ms = (long)(until - now) * 1000L;
        timed_wait(p, ms < 1 ? 1 : ms > p->opt.idle_poll_ms ? p->opt.idle_poll_ms : ms);
        return 0;
    }
    *wakes = p->wakes;
    return 1;
}

static void *run(void *arg)
{
    worker *w = arg;
    s2f_workers *p = w->pool;
    for (;;) {
        int probe = 0;
        unsigned long wakes = 0;
        pthread_mutex_lock(&p->lock);
        int may = may_claim(w, &probe, &wakes);
        pthread_mutex_unlock(&p->lock);
        if (w->has_next && (may < 0 || probe || atomic_load(&p->paused)))
            give_back(w);
        if (may < 0)
            break;
        if (!may)
            continue;
        s2f_job job;
        bool found = false;
        s2f_error err = {0};
        s2f_code rc = S2F_OK;
        if (w->has_next) {
            job = w->next;
            found = true;
            w->has_next = 0;
        } else {
            rc = s2f_queue_claim(w->q, w->name, p->opt.lease_seconds, wall_now(), &job, &found,
                                 &err);
        }
        if (rc)
            s2f_gw_logf(p->opt.log, S2F_LOG_ERROR, "worker %s: cannot claim a job: %s", w->name,
                        err.message);
        if (!rc && !found && probe) {
            int reached = 0;
            probe_done(p, probe_without_job(w, &reached), reached);
            continue;
        }
        if (rc || !found) {
            pthread_mutex_lock(&p->lock);
            if (probe) {
                p->probing = 0;
                p->next_probe = wall_now() + p->opt.auth_probe; /* the queue failed */
            }
            if (!p->stopping && p->wakes == wakes)
                timed_wait(p, p->opt.idle_poll_ms);
            pthread_mutex_unlock(&p->lock);
            continue;
        }
        int reached = 0;
        s2f_worker_outcome oc = deliver(w, &job, &reached);
        if (probe)
            probe_done(p, oc, reached);
    }
    pthread_mutex_lock(&p->lock);
    p->running--;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- the pool -------------------------------------------------------------------------- */

/* The options with their defaults; S2F_EUSAGE for values out of range. */
static s2f_code settle_options(const s2f_workers_options *in, s2f_workers_options *o,
                               s2f_error *err)
{
    *o = *in;
    if (!o->queue_path || !o->server)
        return s2f_fail(err, S2F_EUSAGE, "workers: the queue and the server are required");
    if (o->threads == 0)
        o->threads = DEFAULT_THREADS;
    if (o->threads < 1 || o->threads > MAX_THREADS)
        return s2f_fail(err, S2F_EUSAGE, "--workers: %d is not in 1..%d", o->threads, MAX_THREADS);
    if (o->lease_seconds == 0)
        o->lease_seconds = DEFAULT_LEASE;
    if (o->retry_total == 0)
        o->retry_total = DEFAULT_RETRY_TOTAL;
    if (o->backoff_min_ms == 0)
        o->backoff_min_ms = DEFAULT_BACKOFF_MIN_MS;
    if (o->backoff_max_ms == 0)
        o->backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
    if (o->auth_probe == 0)
        o->auth_probe = DEFAULT_AUTH_PROBE;
    if (o->idle_poll_ms == 0)
        o->idle_poll_ms = DEFAULT_IDLE_POLL_MS;
    if (o->lease_seconds < 2 * LEASE_MARGIN_MIN || o->retry_total < 0 || o->backoff_min_ms < 0 ||
        o->backoff_max_ms < o->backoff_min_ms || o->auth_probe < 0 || o->idle_poll_ms < 0)
        return s2f_fail(err, S2F_EUSAGE, "workers: a lease of at least %d s and non-negative "
                        "times are required", 2 * LEASE_MARGIN_MIN);
    /* The client's deadline ends every delivery before the lease does, so a job is never
     * delivered by two workers at once. */
    long margin = o->lease_seconds / 10 > LEASE_MARGIN_MIN ? o->lease_seconds / 10 : LEASE_MARGIN_MIN;
    long limit = o->lease_seconds - margin;
    if (o->client.deadline == 0)
        o->client.deadline = S2F_DEFAULT_DEADLINE < limit ? S2F_DEFAULT_DEADLINE : limit;
    else if (o->client.deadline < 0)
        o->client.deadline = limit;
    else if (o->client.deadline > limit)
        return s2f_fail(err, S2F_EUSAGE, "--deadline %ld s: a delivery must end before its "
                        "lease of %d s does (at most %ld s)", o->client.deadline,
                        o->lease_seconds, limit);
    if (o->client.retries == 0)
        o->client.retries = 1; /* the workers do the long-term backoff */
    return S2F_OK;
}

static void free_pool(s2f_workers *p)
{
    for (int i = 0; i < p->n; i++) {
        s2f_queue_close(p->w[i].q);
        s2f_client_free(p->w[i].client);
        s2f_cast_close(p->w[i].cast);
    }
    free(p->w);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Stops the threads: idle ones at once; those delivering get grace_seconds to finish,
 * then their requests are cancelled (the job goes back to pending). */
static void join_all(s2f_workers *p, int grace_seconds)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cond);
    double end = mono_now() + (grace_seconds > 0 ? grace_seconds : 0);
    while (p->running > 0 && mono_now() < end)
        timed_wait(p, 100);
    pthread_mutex_unlock(&p->lock);
    atomic_store(&p->cancel, 1);
    for (int i = 0; i < p->n; i++)
        if (p->w[i].started)
            pthread_join(p->w[i].thread, NULL);
}

static s2f_code init_sync(s2f_workers *p, s2f_error *err)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
        pthread_cond_init(&p->cond, &ca)) {
        return s2f_fail(err, S2F_ENOMEM, "workers: cannot create a condition variable");
    }
    pthread_condattr_destroy(&ca);
    if (pthread_mutex_init(&p->lock, NULL)) {
        pthread_cond_destroy(&p->cond);
        return s2f_fail(err, S2F_ENOMEM, "workers: cannot create a mutex");
    }
    return S2F_OK;
}

/* Opens worker i's queue handle and client. */
static s2f_code open_worker(s2f_workers *p, int i, s2f_error *err)
{
    worker *w = &p->w[i];
    s2f_code rc;
    w->pool = p;
    w->index = i;
    snprintf(w->name, sizeof w->name, "pid%ld-w%d", (long)getpid(), i);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    w->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)w ^
             ((uint64_t)(unsigned)i << 48) ^ 0x9E3779B97F4A7C15ULL;
    if ((rc = s2f_queue_open(p->opt.queue_path, NULL, &w->q, err)))
        return rc;
    if (!(w->client = s2f_client_new(p->opt.server, &p->opt.client, err)))
        return err->code ? err->code : S2F_EINTERNAL;
    s2f_client_set_cancel(w->client, &p->cancel);
    return S2F_OK;
}

s2f_code s2f_workers_start(const s2f_workers_options *opt, s2f_workers **out, s2f_error *err)
{
    *out = NULL;
    s2f_workers *p = calloc(1, sizeof *p);
    if (!p)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    s2f_code rc = settle_options(opt, &p->opt, err);
    if (rc || (rc = init_sync(p, err))) {
        free(p);
        return rc;
    }
    atomic_init(&p->paused, 0);
    atomic_init(&p->cancel, 0);
    if (!(p->w = calloc((size_t)p->opt.threads, sizeof *p->w))) {
        free_pool(p);
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    }
    p->n = p->opt.threads;
    for (int i = 0; i < p->n && !rc; i++)
        rc = open_worker(p, i, err);
    for (int i = 0; i < p->n && !rc; i++) {
        pthread_mutex_lock(&p->lock);
        p->running++;
        pthread_mutex_unlock(&p->lock);
        if (pthread_create(&p->w[i].thread, NULL, run, &p->w[i])) {
            rc = s2f_fail(err, S2F_ENOMEM, "workers: cannot start thread %d", i + 1);
            pthread_mutex_lock(&p->lock);
            p->running--;
            pthread_mutex_unlock(&p->lock);
        } else {
            p->w[i].started = 1;
        }
    }
    if (rc) {
        join_all(p, 0);
        free_pool(p);
        return rc;
    }
    *out = p;
    return S2F_OK;
}

void s2f_workers_wake(s2f_workers *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->wakes++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

int s2f_workers_paused(const s2f_workers *p)
{
    return p ? atomic_load(&((s2f_workers *)p)->paused) : 0;
}

void s2f_workers_stop(s2f_workers *p, int grace_seconds)
{
    if (!p)
        return;
    join_all(p, grace_seconds);
    free_pool(p);
}
