/*
 * pull.c - the pull engine and the serve's polling source (issue 13; pull.h says what they
 * do, docs/decisions.md "Issue 13: pull" why). A run walks the QIDO-RS results in the
 * caller's thread; an instance that must be retrieved is handled there (one fetch handle)
 * or handed through a small bounded ring to one thread per fetch handle. Retrieval streams
 * into a file of the data folder (dicomweb.h), the file is read once through a mapping for
 * its SHA-256 and intake's classification, then committed (intake.h: durable before the
 * record says so) and recorded in the queue database. Known instances cost one indexed
 * SELECT and no request.
 */
#include "gateway/pull.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "gateway/store.h"
#include "util/clock.h"
#include "util/error.h"

#define RING_CAP 64
#define BUSY_WAIT_MS 500
#define BATCH_MAX 32              /* instances committed together (decisions "Issue 13: batched
                                     commits") */
#define BATCH_NS 200000000LL      /* ... or those retrieved within 200 ms, whichever first */

typedef struct fetched {
    char sha[S2F_QUEUE_SHA256_HEX + 1];
    unsigned reason;              /* s2f_intake_classify: 0 or a failure reason */
    char why[200];
    s2f_intake_header h;
} fetched;

/* Retrieved, inspected instances of one retrieval thread not yet committed: their sealed
 * files belong to the batch until s2f_intake_commit took them (or they are aborted). */
typedef struct batch {
    size_t n;
    long long first_ns;           /* s2f_mono_ns() when the first one was added */
    s2f_store_file f[BATCH_MAX];
    fetched fx[BATCH_MAX];
    char uid[BATCH_MAX][S2F_DW_UID_MAX + 1];
} batch;

typedef struct run {
    s2f_dw *const *fetch;
    int nfetch;
    s2f_intake *in;
    s2f_queue *q;
    const s2f_pull_options *opt;
    s2f_pull_counts *c;
    pthread_mutex_t lock;         /* everything below, the counts and the queue handle */
    pthread_cond_t changed;       /* ring content, closed, fatal */
    s2f_dw_instance ring[RING_CAP];
    size_t head, n;
    bool closed;
    s2f_code fatal;               /* the run stops: the reason in fatal_err */
    s2f_error fatal_err;
    s2f_error first;              /* the first instance that failed */
    const char *halted;           /* why the search was stopped early (stop, deadline) */
    batch solo;                   /* the batch of the caller's thread (nfetch == 1) */
} run;

/* ---- small pieces ------------------------------------------------------------------------ */

s2f_code s2f_pull_sha256_hex(const void *data, size_t len, char hex[S2F_QUEUE_SHA256_HEX + 1],
                             s2f_error *err)
{
    unsigned char d[32];
    static const char digits[] = "0123456789abcdef";
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, d) != 0)
        return s2f_fail(err, S2F_EINTERNAL, "pull: SHA-256 not available");
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[64] = '\0';
    return S2F_OK;
}

void s2f_pull_window_since(int64_t cursor, bool has_cursor, int64_t now, long lookback,
                           char da[9])
{
    int64_t from = has_cursor && cursor < now ? cursor : now;
    time_t t = (time_t)(from - (lookback > 0 ? lookback : 0));
    struct tm tm;
    if (!localtime_r(&t, &tm) || tm.tm_year < 0 || tm.tm_year > 8099) {
        snprintf(da, 9, "19000101");
        return;
    }
    snprintf(da, 9, "%04u%02u%02u", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u);
}

static void logf_(const run *r, s2f_log_level level, const char *fmt, const char *a,
                  const char *b)
{
    if (r->opt->log)
        s2f_gw_logf(r->opt->log, level, fmt, a, b);
}

/* An error that ends the run (the server gone, the data folder or queue failing), as
 * against one that ends only this instance (an error answer, a malformed one, a bound). */
static bool ends_run(s2f_code rc)
{
    return rc == S2F_EUNREACHABLE || rc == S2F_EIO || rc == S2F_ENOMEM || rc == S2F_EINTERNAL;
}

static void set_fatal(run *r, s2f_code rc, const s2f_error *e)
{
    pthread_mutex_lock(&r->lock);
    if (!r->fatal) {
        r->fatal = rc;
        r->fatal_err = *e;
        r->fatal_err.code = rc;
    }
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

static void instance_failed(run *r, const s2f_dw_instance *inst, s2f_code rc, const s2f_error *e)
{
    pthread_mutex_lock(&r->lock);
    r->c->failed++;
    if (!r->first.code) {
        r->first = *e;
        r->first.code = rc;
    }
    pthread_mutex_unlock(&r->lock);
    logf_(r, S2F_LOG_WARN, "pull: instance %s not retrieved: %s", inst->sop_instance,
          e->message);
}

/* Why the run should start no more instances ("" when it may go on). */
static const char *stopping(run *r)
{
    const s2f_pull_options *o = r->opt;
    if (o->stop && atomic_load(o->stop))
        return "stopped";
    if (o->deadline_ns && s2f_mono_ns() > o->deadline_ns)
        return "deadline passed";
    pthread_mutex_lock(&r->lock);
    bool fatal = r->fatal != S2F_OK;
    pthread_mutex_unlock(&r->lock);
    return fatal ? "failed" : "";
}

/* Waits while the queue is above its high-water mark or the disk is full (the workers
 * drain it); S2F_OK, or the reason the run stops. */
static s2f_code wait_not_busy(run *r, s2f_error *err)
{
    char why[200];
    bool logged = false;
    for (;;) {
        const char *s = stopping(r);
        if (*s)
            return s2f_fail(err, S2F_EUNREACHABLE, "pull: %s", s);
        if (!s2f_intake_busy(r->in, why, sizeof why))
            return S2F_OK;
        if (!logged)
            logf_(r, S2F_LOG_INFO, "pull: waiting: %s%s", why, "");
        logged = true;
        struct timespec ts = {0, BUSY_WAIT_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- one instance ------------------------------------------------------------------------- */

/* Reads the sealed temporary file once: its SHA-256 and intake's classification. */
static s2f_code inspect(s2f_store *st, const s2f_store_file *f, fetched *out, s2f_error *err)
{
    char path[1200];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", s2f_store_dir(st), f->tmp_name) >=
        sizeof path)
        return s2f_fail(err, S2F_EIO, "pull: data folder path too long");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return s2f_fail(err, S2F_EIO, "pull: cannot read a retrieved file: %s", strerror(e));
    }
    const uint8_t *data = NULL;
    size_t len = (size_t)sb.st_size;
    if (len && (data = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
        int e = errno;
        close(fd);
        return s2f_fail(err, S2F_EIO, "pull: cannot map a retrieved file: %s", strerror(e));
    }
    close(fd);
    s2f_code rc = s2f_pull_sha256_hex(data ? (const void *)data : "", len, out->sha, err);
    out->why[0] = '\0';
    if (!rc)
        out->reason = s2f_intake_classify(data ? data : (const uint8_t *)"", len, 0, &out->h,
                                          out->why, sizeof out->why);
    if (data)
        munmap((void *)data, len);
    return rc;
}

static s2f_code record(run *r, const char *uid, const char *sha, int64_t job, s2f_error *err)
{
    pthread_mutex_lock(&r->lock);
    s2f_code rc = s2f_queue_pulled_put(r->q, uid, sha, job, r->opt->source, (int64_t)time(NULL),
                                       err);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* With recheck: the same bytes as recorded for a job that is not dead. */
static s2f_code unchanged(run *r, const char *uid, const char *sha, bool *same, s2f_error *err)
{
    s2f_pulled rec;
    bool found = false;
    pthread_mutex_lock(&r->lock);
    s2f_code rc = s2f_queue_pulled_get(r->q, uid, &rec, &found, err);
    pthread_mutex_unlock(&r->lock);
    *same = !rc && found && !strcmp(rec.sha256, sha) && rec.job_state != S2F_JOB_DEAD;
    return rc;
}

/* Commits the batch's files with ONE s2f_intake_commit (all or nothing: on failure every
 * file is removed and nothing of the batch is queued or recorded), then records them. */
static s2f_code flush(run *r, batch *b, s2f_error *err)
{
    size_t n = b->n;
    if (!n)
        return S2F_OK;
    s2f_intake_item items[BATCH_MAX];
    for (size_t i = 0; i < n; i++)
        items[i] = (s2f_intake_item){&b->f[i], b->fx[i].h.sop_instance, 0, false};
    b->n = 0;
    s2f_code rc = s2f_intake_commit(r->in, items, n, r->opt->source, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&r->lock);
    r->c->queued += (long long)n;
    r->c->commits++;
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < n && r->opt->on_queued; i++)
        r->opt->on_queued(r->opt->ctx, items[i].job_id, items[i].created);
    for (size_t i = 0; i < n && !rc; i++)
        rc = record(r, b->uid[i], b->fx[i].sha, items[i].job_id, err);
    return rc;
}

/* The run failed: the batch's files go, nothing of it was queued. */
static void abandon(run *r, batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        s2f_store_abort(s2f_intake_store(r->in), &b->f[i]);
    b->n = 0;
}

/* Adds a sealed, accepted file to the batch (the batch owns it now); commits the batch when
 * it is full or its first instance waited BATCH_NS. */
static s2f_code commit(run *r, batch *b, const s2f_store_file *f, const fetched *fx,
                       const s2f_dw_instance *inst, s2f_error *err)
{
    if (!b->n)
        b->first_ns = s2f_mono_ns();
    b->f[b->n] = *f;
    b->fx[b->n] = *fx;
    snprintf(b->uid[b->n], sizeof b->uid[b->n], "%s", inst->sop_instance);
    b->n++;
    if (b->n < BATCH_MAX && s2f_mono_ns() - b->first_ns < BATCH_NS)
        return S2F_OK;
    return flush(r, b, err);
}

/* SHA-256 of a file (a job's stored SR) into hex; 0 when it cannot be read. */
static int hash_file(const char *path, char hex[S2F_QUEUE_SHA256_HEX + 1])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    int ok = 0;
    if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
        size_t len = (size_t)sb.st_size;
        void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        s2f_error e = {0};
        ok = m != MAP_FAILED && s2f_pull_sha256_hex(m, len, hex, &e) == S2F_OK;
        if (m != MAP_FAILED)
            munmap(m, len);
    }
    if (fd >= 0)
        close(fd);
    return ok;
}

/* The same bytes are queued already for a job of the UID that is not dead (a crash
 * between a commit and its record, or the same SR received by STOW-RS or C-STORE): the
 * retrieved file goes, the record names that job, nothing is queued again. */
static s2f_code queued_before(run *r, const s2f_dw_instance *inst, s2f_store_file *f,
                              const fetched *fx, bool *same, s2f_error *err)
{
    int64_t job = 0;
    s2f_job_state st = S2F_JOB_NSTATES;
    char path[S2F_QUEUE_PATH_MAX + 1], sha[S2F_QUEUE_SHA256_HEX + 1];
    bool found = false;
    pthread_mutex_lock(&r->lock);
    s2f_code rc = s2f_queue_latest_job(r->q, fx->h.sop_instance, &job, &st, path, sizeof path,
                                       &found, err);
    pthread_mutex_unlock(&r->lock);
    *same = !rc && found && st != S2F_JOB_DEAD && hash_file(path, sha) && !strcmp(sha, fx->sha);
    if (rc || !*same)
        return rc;
    s2f_store_abort(s2f_intake_store(r->in), f);
    bool open = st == S2F_JOB_PENDING || st == S2F_JOB_LEASED;
    pthread_mutex_lock(&r->lock);
    *(open ? &r->c->queued : &r->c->skipped) += 1;
    pthread_mutex_unlock(&r->lock);
    if (open && r->opt->on_queued)
        r->opt->on_queued(r->opt->ctx, job, false);
    return record(r, inst->sop_instance, fx->sha, job, err);
}

/* Retrieve, inspect, commit, record. S2F_OK also when only this instance failed (counted);
 * otherwise the error ends the run. */
static s2f_code process(run *r, batch *b, s2f_dw *dw, const s2f_dw_instance *inst,
                        s2f_error *err)
{
    s2f_code rc = wait_not_busy(r, err);
    if (rc)
        return rc;
    s2f_store *st = s2f_intake_store(r->in);
    s2f_store_file f;
    memset(&f, 0, sizeof f);
    f.fd = -1;
    s2f_error e = {0};
    rc = s2f_dw_retrieve(dw, inst, st, &f, &e);
    if (rc) {
        if (ends_run(rc))
            return *err = e, err->code = rc, rc;
        instance_failed(r, inst, rc, &e);
        return S2F_OK;
    }
    pthread_mutex_lock(&r->lock);
    r->c->retrieved++;
    pthread_mutex_unlock(&r->lock);
    fetched fx;
    memset(&fx, 0, sizeof fx);
    rc = inspect(st, &f, &fx, err);
    bool same = false;
    if (!rc && !fx.reason && r->opt->recheck)
        rc = unchanged(r, inst->sop_instance, fx.sha, &same, err);
    if (rc || fx.reason || same) {
        s2f_store_abort(st, &f);
        if (rc)
            return rc;
        pthread_mutex_lock(&r->lock);
        *(same ? &r->c->skipped : &r->c->refused) += 1;
        pthread_mutex_unlock(&r->lock);
        if (same)
            return S2F_OK;
        logf_(r, S2F_LOG_WARN, "pull: instance %s refused: %s", inst->sop_instance, fx.why);
        /* out of resources may pass; anything else is what these bytes are */
        return fx.reason == S2F_FR_OUT_OF_RESOURCES ? S2F_OK
                                                    : record(r, inst->sop_instance, fx.sha, 0, err);
    }
    if ((rc = queued_before(r, inst, &f, &fx, &same, err)) || same)
        return rc;
    return commit(r, b, &f, &fx, inst, err); /* the batch owns the file now */
}

/* ---- the run ------------------------------------------------------------------------------ */

static void *fetch_thread(void *arg);

typedef struct fetcher {
    run *r;
    s2f_dw *dw;
    pthread_t t;
    batch b;
} fetcher;

/* A retrieval thread's end: its batch committed, or dropped when the run failed. */
static void finish_batch(run *r, batch *b)
{
    pthread_mutex_lock(&r->lock);
    bool failed = r->fatal != S2F_OK;
    pthread_mutex_unlock(&r->lock);
    if (failed) {
        abandon(r, b);
        return;
    }
    s2f_error e = {0};
    s2f_code rc = flush(r, b, &e);
    if (rc)
        set_fatal(r, rc, &e);
}

static void *fetch_thread(void *arg)
{
    fetcher *fe = arg;
    run *r = fe->r;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool idle = !r->n && !r->closed && !r->fatal;
        pthread_mutex_unlock(&r->lock);
        if (idle && fe->b.n) { /* nothing to retrieve now: commit what is waiting */
            s2f_error e = {0};
            s2f_code rc = flush(r, &fe->b, &e);
            if (rc)
                set_fatal(r, rc, &e);
        }
        pthread_mutex_lock(&r->lock);
        while (!r->n && !r->closed && !r->fatal)
            pthread_cond_wait(&r->changed, &r->lock);
        if (r->fatal || !r->n) {
            pthread_mutex_unlock(&r->lock);
            finish_batch(r, &fe->b);
            return NULL;
        }
        s2f_dw_instance inst = r->ring[r->head];
        r->head = (r->head + 1) % RING_CAP;
        r->n--;
        pthread_cond_broadcast(&r->changed);
        pthread_mutex_unlock(&r->lock);
        s2f_error e = {0};
        s2f_code rc = process(r, &fe->b, fe->dw, &inst, &e);
        if (rc)
            set_fatal(r, rc, &e);
    }
}

/* Known with a job that is not dead (or refused for what its bytes are): skipped. */
static s2f_code known(run *r, const s2f_dw_instance *inst, bool *skip, s2f_error *err)
{
    s2f_pulled rec;
    bool found = false;
    s2f_code rc = s2f_queue_pulled_get(r->q, inst->sop_instance, &rec, &found, err);
    *skip = !rc && found && rec.job_state != S2F_JOB_DEAD;
    return rc;
}

static int on_found(void *ctx, const s2f_dw_instance *inst)
{
    run *r = ctx;
    const char *why = stopping(r);
    if (*why) {
        pthread_mutex_lock(&r->lock);
        r->halted = why;
        pthread_mutex_unlock(&r->lock);
        return 1;
    }
    s2f_error e = {0};
    bool skip = false;
    pthread_mutex_lock(&r->lock);
    r->c->found++;
    s2f_code rc = r->opt->recheck ? S2F_OK : known(r, inst, &skip, &e);
    if (skip)
        r->c->skipped++;
    pthread_mutex_unlock(&r->lock);
    if (!rc && !skip && r->nfetch == 1)
        rc = process(r, &r->solo, r->fetch[0], inst, &e);
    if (rc)
        return set_fatal(r, rc, &e), 1;
    if (skip || r->nfetch == 1)
        return 0;
    pthread_mutex_lock(&r->lock);
    while (r->n == RING_CAP && !r->fatal)
        pthread_cond_wait(&r->changed, &r->lock);
    if (!r->fatal) {
        r->ring[(r->head + r->n) % RING_CAP] = *inst;
        r->n++;
        pthread_cond_broadcast(&r->changed);
    }
    bool stop = r->fatal != S2F_OK;
    pthread_mutex_unlock(&r->lock);
    return stop;
}

static s2f_code start_fetchers(run *r, fetcher *fe, int *started, s2f_error *err)
{
    *started = 0;
    for (int i = 0; r->nfetch > 1 && i < r->nfetch; i++) {
        fe[i].r = r;
        fe[i].dw = r->fetch[i];
        if (pthread_create(&fe[i].t, NULL, fetch_thread, &fe[i]) != 0)
            return s2f_fail(err, S2F_ENOMEM, "pull: cannot start a retrieval thread");
        (*started)++;
    }
    return S2F_OK;
}

static void join_fetchers(run *r, fetcher *fe, int started)
{
    pthread_mutex_lock(&r->lock);
    r->closed = true;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    for (int i = 0; i < started; i++)
        pthread_join(fe[i].t, NULL);
}

s2f_code s2f_pull_run(s2f_dw *search, s2f_dw *const *fetch, int nfetch, s2f_intake *in,
                      s2f_queue *q, const s2f_dw_query *query, const s2f_pull_options *opt,
                      s2f_pull_counts *counts, s2f_error *err)
{
    memset(counts, 0, sizeof *counts);
    if (!search || !fetch || nfetch < 1 || nfetch > S2F_PULL_JOBS_MAX || !in || !q || !opt ||
        !opt->source)
        return s2f_fail(err, S2F_EUSAGE, "pull: bad arguments");
    run *r = calloc(1, sizeof *r);
    if (!r)
        return s2f_fail(err, S2F_ENOMEM, "pull: out of memory");
    *r = (run){.fetch = fetch, .nfetch = nfetch, .in = in, .q = q, .opt = opt, .c = counts};
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->changed, NULL);
    fetcher *fe = calloc(S2F_PULL_JOBS_MAX, sizeof *fe); /* batches: not on the stack */
    int started = 0;
    s2f_error e = {0};
    s2f_code rc = fe ? start_fetchers(r, fe, &started, &e)
                     : s2f_fail(&e, S2F_ENOMEM, "pull: out of memory");
    if (!rc)
        rc = s2f_dw_search(search, query, on_found, r, &e);
    if (rc) /* the run failed: the retrieval threads drop their batches */
        set_fatal(r, rc, &e);
    join_fetchers(r, fe, started);
    finish_batch(r, &r->solo);
    char nq[32], nc[32];
    snprintf(nq, sizeof nq, "%lld", counts->queued);
    snprintf(nc, sizeof nc, "%lld", counts->commits);
    logf_(r, S2F_LOG_INFO, "pull: %s instances committed in %s commits", nq, nc);
    const char *why = r->halted;
    if (r->fatal)
        rc = r->fatal, e = r->fatal_err;
    else if (!rc && why)
        rc = s2f_fail(&e, S2F_EUNREACHABLE, "pull: %s after %lld of the instances found", why,
                      counts->found);
    if (rc) {
        *err = e;
        err->code = rc;
    } else if (r->first.code) {
        *err = r->first;
    }
    pthread_cond_destroy(&r->changed);
    pthread_mutex_destroy(&r->lock);
    free(fe);
    free(r);
    return rc;
}

/* ---- the serve's polling source ------------------------------------------------------------ */

#define POLL_DEADLINE_MIN 300     /* seconds one poll may take at least (10 intervals else) */

struct s2f_poller {
    s2f_poller_options o;
    char *base;
    char cursor_name[S2F_QUEUE_SOURCE_MAX + 1];  /* "pull URL": also the jobs' source */
    s2f_dw *search;
    s2f_dw *fetch[S2F_PULL_JOBS_MAX];
    int nfetch;
    s2f_queue *q;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    pthread_cond_t wake;          /* CLOCK_MONOTONIC */
    atomic_int stop;
    atomic_llong polls;
};

static void poller_free(s2f_poller *p)
{
    if (p->search)
        s2f_dw_free(p->search);
    for (int i = 0; i < p->nfetch; i++)
        if (p->fetch[i])
            s2f_dw_free(p->fetch[i]);
    s2f_queue_close(p->q);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->base);
    free(p);
}

/* Sleeps until wall time `until` or stop; true when stopped. */
static bool sleep_until(s2f_poller *p, int64_t until)
{
    pthread_mutex_lock(&p->lock);
    while (!atomic_load(&p->stop)) {
        int64_t left = until - (int64_t)time(NULL);
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left > 1 ? 1 : left; /* wall time may jump: look again each second */
        pthread_cond_timedwait(&p->wake, &p->lock, &ts);
    }
    pthread_mutex_unlock(&p->lock);
    return atomic_load(&p->stop) != 0;
}

static void plog(s2f_poller *p, s2f_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void plog(s2f_poller *p, s2f_log_level level, const char *fmt, ...)
{
    char buf[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (p->o.log)
        s2f_gw_logf(p->o.log, level, "%s", buf);
}

/* One poll; true when it completed (every instance found handled). */
static bool poll_once(s2f_poller *p, int64_t cursor, bool has_cursor, int64_t start)
{
    char since[9];
    s2f_dw_query query = {0};
    if (p->o.lookback > 0) {
        s2f_pull_window_since(cursor, has_cursor, start, p->o.lookback, since);
        query.since = since;
    }
    long limit = p->o.interval * 10 > POLL_DEADLINE_MIN ? p->o.interval * 10 : POLL_DEADLINE_MIN;
    s2f_pull_options po = {0};
    po.source = p->cursor_name;
    po.deadline_ns = s2f_mono_ns() + (long long)limit * 1000000000LL;
    po.stop = &p->stop;
    po.log = p->o.log;
    s2f_pull_counts c;
    s2f_error err = {0};
    s2f_code rc = s2f_pull_run(p->search, p->fetch, p->nfetch, p->o.intake, p->q, &query, &po,
                               &c, &err);
    s2f_log_level level = rc || c.failed ? S2F_LOG_WARN
                          : c.retrieved ? S2F_LOG_INFO : S2F_LOG_DEBUG;
    plog(p, level, "pull: poll of %s%s%s: found %lld, new %lld, skipped %lld, queued %lld, "
         "refused %lld, failed %lld%s%s", p->base, query.since ? " since " : "",
         query.since ? query.since : "", c.found, c.retrieved, c.skipped, c.queued, c.refused,
         c.failed, err.code ? ": " : "", err.code ? err.message : "");
    return rc == S2F_OK && c.failed == 0;
}

static void *poll_thread(void *arg)
{
    s2f_poller *p = arg;
    s2f_error err = {0};
    int64_t cursor = 0;
    bool has = false;
    if (s2f_queue_cursor_get(p->q, p->cursor_name, &cursor, &has, &err) != S2F_OK)
        plog(p, S2F_LOG_WARN, "pull: %s", err.message);
    int64_t next = has && cursor + p->o.interval > (int64_t)time(NULL) ? cursor + p->o.interval
                                                                       : (int64_t)time(NULL);
    while (!sleep_until(p, next)) {
        int64_t start = (int64_t)time(NULL);
        if (poll_once(p, cursor, has, start)) {
            if (s2f_queue_cursor_set(p->q, p->cursor_name, start, (int64_t)time(NULL), &err))
                plog(p, S2F_LOG_WARN, "pull: %s", err.message);
            else
                cursor = start, has = true;
        }
        atomic_fetch_add(&p->polls, 1);
        int64_t now = (int64_t)time(NULL);
        next = start + p->o.interval > now ? start + p->o.interval : now;
    }
    return NULL;
}

static s2f_code poller_open(s2f_poller *p, s2f_error *err)
{
    s2f_code rc = s2f_dw_new(p->base, &p->o.dw, &p->search, err);
    if (!rc) /* SIGTERM cuts a request in flight short */
        s2f_dw_set_cancel(p->search, &p->stop);
    for (int i = 0; !rc && i < p->nfetch; i++)
        if (!(rc = s2f_dw_new(p->base, &p->o.dw, &p->fetch[i], err)))
            s2f_dw_set_cancel(p->fetch[i], &p->stop);
    if (!rc)
        rc = s2f_queue_open(p->o.queue_path, NULL, &p->q, err);
    return rc;
}

s2f_code s2f_poller_start(const s2f_poller_options *opt, s2f_poller **out, s2f_error *err)
{
    *out = NULL;
    if (!opt || !opt->base || !opt->intake || !opt->queue_path || opt->interval < 1 ||
        opt->jobs < 0 || opt->jobs > S2F_PULL_JOBS_MAX)
        return s2f_fail(err, S2F_EUSAGE, "pull: bad poller options");
    if (strlen(opt->base) + 5 > S2F_QUEUE_SOURCE_MAX)
        return s2f_fail(err, S2F_EUSAGE, "pull: the DICOMweb URL is longer than %d bytes",
                        S2F_QUEUE_SOURCE_MAX - 5);
    s2f_poller *p = calloc(1, sizeof *p);
    if (!p || !(p->base = strdup(opt->base))) {
        free(p);
        return s2f_fail(err, S2F_ENOMEM, "pull: out of memory");
    }
    p->o = *opt;
    p->o.base = p->base;
    p->nfetch = opt->jobs ? opt->jobs : 1;
    snprintf(p->cursor_name, sizeof p->cursor_name, "pull %s", p->base);
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);
    s2f_code rc = poller_open(p, err);
    if (!rc && pthread_create(&p->thread, NULL, poll_thread, p) != 0)
        rc = s2f_fail(err, S2F_ENOMEM, "pull: cannot start the polling thread");
    if (rc) {
        poller_free(p);
        return rc;
    }
    p->running = true;
    *out = p;
    return S2F_OK;
}

long long s2f_poller_polls(const s2f_poller *p)
{
    return atomic_load(&p->polls);
}

void s2f_poller_stop(s2f_poller *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    if (p->running)
        pthread_join(p->thread, NULL);
    poller_free(p);
}
