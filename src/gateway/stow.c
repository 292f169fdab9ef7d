/*
 * stow.c - the STOW-RS receiver (stow.h; PS3.18 10.5, Annex I).
 *
 * One request, as libmicrohttpd calls the access handler:
 *   1. headers (first call): method, path, Content-Type, Content-Length, back-pressure;
 *      an answer here (405, 404, 400, 413, 415, 503) ends the request before its body;
 *   2. body pieces: fed to the multipart reader; each part goes to a temporary file of
 *      the store, and at its end the file is fsynced and its header read (SOP Class,
 *      SOP Instance and Study Instance UIDs); a refused part's file is removed at once;
 *   3. end of body: a malformed body (400) removes every file. Otherwise the accepted
 *      files are renamed to their final names, the folder is fsynced once, and their job
 *      rows go to the committer thread, which commits the rows of every request waiting
 *      in one transaction (group commit) and wakes them; only then is the answer built
 *      (200 / 202 / 409) and the audit lines written.
 * Nothing of a request is in memory but the current piece, one record per part and, while
 * its header is read, one part's file mapped read-only.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dicom/dataset.h"
#include "gateway/multipart.h"
#include "gateway/queue.h"
#include "gateway/store.h"
#include "gateway/stow.h"
#include "json/writer.h"
#include "util/arena.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/sink.h"

/* Failure Reason (0008,1197) values, PS3.18 Table I.2-2 (docs/decisions.md). */
#define FR_OUT_OF_RESOURCES 0xA700u
#define FR_STUDY_MISMATCH 0xA900u
#define FR_CANNOT_UNDERSTAND 0xC000u
#define FR_SOP_CLASS_NOT_SUPPORTED 0x0122u

#define MAX_PARTS 2000             /* parts of one request (memory: one record each) */
#define HEADER_ARENA (64u << 20)   /* reading one part's header: at most this much */
#define STATS_REFRESH_NS 1000000000LL /* queue depth re-read at most once a second */
#define RETRY_AFTER "30"
#define UID_MAX 64

typedef enum part_outcome { PART_OPEN, PART_ACCEPTED, PART_REFUSED, PART_STORED,
                            PART_DUPLICATE } part_outcome;

typedef struct part_rec {
    char sop_class[UID_MAX + 1], sop_instance[UID_MAX + 1], study[UID_MAX + 1];
    unsigned failure;            /* Failure Reason when refused */
    part_outcome outcome;
    int json;                    /* application/dicom+json */
    int64_t job_id;
    s2f_store_file file;
} part_rec;

typedef struct stow_req stow_req;

/* A request's rows, handed to the committer. */
typedef struct commit_batch {
    s2f_queue_item *items;
    size_t n;
    int done;
    s2f_code rc;
    s2f_error err;
    struct commit_batch *next;
} commit_batch;

struct s2f_stow {
    char *data_dir, *queue_path;
    s2f_stow_options opt;
    s2f_store *store;
    /* committer thread: its own queue handle */
    s2f_queue *commit_q;
    pthread_t committer;
    int committer_started;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    commit_batch *head, *tail;
    int stop;
    long long commits, batches;  /* group commits and the requests they took (committer) */
    /* back-pressure figures and /readyz: a second handle, behind its own lock */
    pthread_mutex_t stats_lock;
    s2f_queue *stats_q;
    long long stats_depth;       /* pending + leased when last read */
    long long stats_read_ns;     /* monotonic time of that read, 0 = never */
    atomic_llong enqueued_since; /* jobs this receiver created since */
};

struct stow_req {
    s2f_stow *s;
    char study_url[UID_MAX + 1];  /* "" when the URL names no study */
    int default_json;             /* the request's type parameter is application/dicom+json */
    s2f_mp_reader *mp;
    part_rec *parts;
    size_t n_parts, cap_parts;
    int out_of_memory;            /* a part record could not be allocated */
    s2f_code mp_rc;
    s2f_error mp_err;
    unsigned long long body_bytes;
    char who[128], remote[64];
    long long start_ns;
};

/* ---- small helpers -------------------------------------------------------------------- */

static void count(atomic_llong *counter, long long n)
{
    if (counter)
        atomic_fetch_add(counter, n);
}

#define METRIC(s, field) ((s)->opt.metrics ? &(s)->opt.metrics->field : NULL)

/* A DICOM UID: 1..64 characters of digits and dots. */
static int uid_valid(const char *p, size_t n)
{
    if (n == 0 || n > UID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || p[i] == '.'))
            return 0;
    return 1;
}

/* Copies text from outside into a fixed buffer, control characters replaced by '?'. */
static void copy_clean(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++)
        dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7F ? '?' : src[i];
    dst[i] = 0;
}

/* ---- JSON into a malloc'ed buffer ----------------------------------------------------- */

typedef void (*json_body_fn)(s2f_json *j, const void *ctx);

/* Runs fn into a new buffer (*out, *len; the caller frees it); 0 on success. */
static int json_to_buffer(json_body_fn fn, const void *ctx, int newline, char **out,
                          size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *mem = open_memstream(out, len);
    s2f_sink *sink = malloc(sizeof *sink);
    int bad = !mem || !sink;
    if (!bad) {
        s2f_json j;
        s2f_sink_init(sink, mem);
        s2f_json_init(&j, sink, 0);
        fn(&j, ctx);
        s2f_json_finish(&j);
        if (newline)
            s2f_sink_putc(sink, '\n');
        bad = s2f_json_error(&j) || s2f_sink_finish(sink) != 0;
    }
    if (mem && fclose(mem) != 0)
        bad = 1;
    free(sink);
    if (bad) {
        free(*out);
        *out = NULL;
        *len = 0;
        return -1;
    }
    return 0;
}

/* DICOM JSON (PS3.18 F.2) element helpers. */
static void dj_uid(s2f_json *j, const char *tag, const char *uid)
{
    s2f_json_kv_begin_object(j, tag);
    s2f_json_kv_string(j, "vr", "UI");
    s2f_json_kv_begin_array(j, "Value");
    s2f_json_string(j, uid);
    s2f_json_end_array(j);
    s2f_json_end_object(j);
}

static void dj_us(s2f_json *j, const char *tag, unsigned v)
{
    s2f_json_kv_begin_object(j, tag);
    s2f_json_kv_string(j, "vr", "US");
    s2f_json_kv_begin_array(j, "Value");
    s2f_json_uint(j, v);
    s2f_json_end_array(j);
    s2f_json_end_object(j);
}

static void dj_empty(s2f_json *j, const char *tag, const char *vr)
{
    s2f_json_kv_begin_object(j, tag);
    s2f_json_kv_string(j, "vr", vr);
    s2f_json_end_object(j);
}

/* ---- answers -------------------------------------------------------------------------- */

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                              int retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body ? body : (char *)"",
                                        body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/dicom+json");
    if (retry_after)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* An answer without instances: a DICOM JSON object whose Error Comment (0000,0902) says
 * why. */
static void error_body(s2f_json *j, const void *ctx)
{
    s2f_json_begin_object(j);
    s2f_json_kv_begin_object(j, "00000902");
    s2f_json_kv_string(j, "vr", "LO");
    s2f_json_kv_begin_array(j, "Value");
    s2f_json_string(j, ctx);
    s2f_json_end_array(j);
    s2f_json_end_object(j);
    s2f_json_end_object(j);
}

static enum MHD_Result answer_error(s2f_stow *s, struct MHD_Connection *c, unsigned status,
                                    const char *why, const char *remote)
{
    char *body = NULL;
    size_t len = 0;
    json_to_buffer(error_body, why, 0, &body, &len);
    s2f_gw_logf(s->opt.log, S2F_LOG_INFO, "stow: %s: %u %s", remote, status, why);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        count(METRIC(s, busy), 1);
    count(METRIC(s, requests), 1);
    return answer(c, status, body, len, status == MHD_HTTP_SERVICE_UNAVAILABLE);
}

/* The Store Instances Response Module (PS3.18 Annex I, Table I.1-1). */
static void response_body(s2f_json *j, const void *ctx)
{
    const stow_req *rq = ctx;
    size_t stored = 0, failed = 0;
    for (size_t i = 0; i < rq->n_parts; i++) {
        if (rq->parts[i].outcome == PART_STORED || rq->parts[i].outcome == PART_DUPLICATE)
            stored++;
        else
            failed++;
    }
    s2f_json_begin_object(j);
    dj_empty(j, "00081190", "UR"); /* Retrieve URL: type 2, no retrieve service here */
    if (failed) {
        s2f_json_kv_begin_object(j, "00081198");
        s2f_json_kv_string(j, "vr", "SQ");
        s2f_json_kv_begin_array(j, "Value");
        for (size_t i = 0; i < rq->n_parts; i++) {
            const part_rec *p = &rq->parts[i];
            if (p->outcome == PART_STORED || p->outcome == PART_DUPLICATE)
                continue;
            s2f_json_begin_object(j);
            if (p->sop_class[0])
                dj_uid(j, "00081150", p->sop_class);
            if (p->sop_instance[0])
                dj_uid(j, "00081155", p->sop_instance);
            dj_us(j, "00081197", p->failure);
            s2f_json_end_object(j);
        }
        s2f_json_end_array(j);
        s2f_json_end_object(j);
    }
    if (stored) {
        s2f_json_kv_begin_object(j, "00081199");
        s2f_json_kv_string(j, "vr", "SQ");
        s2f_json_kv_begin_array(j, "Value");
        for (size_t i = 0; i < rq->n_parts; i++) {
            const part_rec *p = &rq->parts[i];
            if (p->outcome != PART_STORED && p->outcome != PART_DUPLICATE)
                continue;
            s2f_json_begin_object(j);
            dj_uid(j, "00081150", p->sop_class);
            dj_uid(j, "00081155", p->sop_instance);
            dj_empty(j, "00081190", "UR");
            s2f_json_end_object(j);
        }
        s2f_json_end_array(j);
        s2f_json_end_object(j);
    }
    s2f_json_end_object(j);
}

/* ---- audit ---------------------------------------------------------------------------- */

typedef struct audit_ctx {
    const stow_req *rq;
    const part_rec *p;
} audit_ctx;

static void nullable(s2f_json *j, const char *key, const char *v)
{
    if (v && *v) {
        s2f_json_kv_string(j, key, v);
    } else {
        s2f_json_key(j, key);
        s2f_json_null(j);
    }
}

static void audit_body(s2f_json *j, const void *ctx)
{
    const audit_ctx *a = ctx;
    const part_rec *p = a->p;
    char now[40], reason[8];
    s2f_utc_now(now, sizeof now);
    int ok = p->outcome == PART_STORED || p->outcome == PART_DUPLICATE;
    s2f_json_begin_object(j);
    s2f_json_kv_string(j, "time", now);
    s2f_json_kv_string(j, "event", "received");
    s2f_json_kv_string(j, "remote", a->rq->remote);
    s2f_json_kv_string(j, "who", a->rq->who);
    nullable(j, "sop_instance_uid", p->sop_instance);
    nullable(j, "sop_class_uid", p->sop_class);
    nullable(j, "study_instance_uid", p->study);
    s2f_json_kv_string(j, "outcome", p->outcome == PART_STORED      ? "stored"
                                     : p->outcome == PART_DUPLICATE ? "duplicate"
                                                                    : "refused");
    s2f_json_key(j, "job_id");
    if (ok)
        s2f_json_int(j, p->job_id);
    else
        s2f_json_null(j);
    snprintf(reason, sizeof reason, "%04X", p->failure);
    nullable(j, "failure_reason", ok ? NULL : reason);
    s2f_json_end_object(j);
}

static void audit_part(s2f_stow *s, const stow_req *rq, const part_rec *p)
{
    if (s->opt.audit_fd < 0)
        return;
    audit_ctx a = {rq, p};
    char *line;
    size_t len;
    if (json_to_buffer(audit_body, &a, 1, &line, &len) != 0) {
        s2f_gw_logf(s->opt.log, S2F_LOG_ERROR, "stow: cannot format an audit line");
        return;
    }
    /* one write(2) on an O_APPEND descriptor: lines of threads never interleave */
    ssize_t w;
    do
        w = write(s->opt.audit_fd, line, len);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)len)
        s2f_gw_logf(s->opt.log, S2F_LOG_ERROR, "stow: cannot append to the audit log: %s",
                    w < 0 ? strerror(errno) : "short write");
    free(line);
}

/* ---- committer (group commit) --------------------------------------------------------- */

static void settle_batches(s2f_stow *s, commit_batch *list, s2f_code rc, const s2f_error *err)
{
    pthread_mutex_lock(&s->lock);
    for (commit_batch *b = list; b; b = b->next) {
        if (rc) {
            b->rc = rc;
            b->err = *err;
        }
        b->done = 1;
    }
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->lock);
}

/* Makes the renames of every batch in `list` durable (one fsync of DIR/incoming), then
 * commits their rows in one transaction; when that fails, each batch alone, so one
 * request's bad row cannot fail another's. */
static void commit_list(s2f_stow *s, commit_batch *list)
{
    size_t total = 0;
    for (commit_batch *b = list; b; b = b->next)
        total += b->n;
    s2f_error err = {0};
    if (s2f_store_sync(s->store, &err) != S2F_OK) {
        settle_batches(s, list, err.code, &err);
        return;
    }
    s->commits++; /* committer thread only; read after it is joined */
    for (commit_batch *b = list; b; b = b->next)
        s->batches++;
    int64_t now = (int64_t)time(NULL);
    s2f_queue_item *all = total ? malloc(total * sizeof *all) : NULL;
    s2f_code rc = total && !all ? S2F_ENOMEM : S2F_OK;
    if (all) {
        size_t k = 0;
        for (commit_batch *b = list; b; b = b->next)
            for (size_t i = 0; i < b->n; i++)
                all[k++] = b->items[i];
        rc = s2f_queue_enqueue_batch(s->commit_q, all, total, now, &err);
        if (!rc) {
            k = 0;
            for (commit_batch *b = list; b; b = b->next)
                for (size_t i = 0; i < b->n; i++)
                    b->items[i] = all[k++];
        }
    }
    free(all);
    if (!rc || !list->next) {
        if (rc && rc == S2F_ENOMEM)
            s2f_fail(&err, S2F_ENOMEM, "out of memory");
        settle_batches(s, list, rc, &err);
        return;
    }
    for (commit_batch *b = list; b;) {
        commit_batch *next = b->next;
        b->next = NULL;
        rc = s2f_queue_enqueue_batch(s->commit_q, b->items, b->n, now, &err);
        settle_batches(s, b, rc, &err);
        b = next;
    }
}

static void *committer_main(void *arg)
{
    s2f_stow *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->head && !s->stop)
            pthread_cond_wait(&s->wake, &s->lock);
        if (!s->head && s->stop)
            break;
        commit_batch *list = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->lock);
        commit_list(s, list);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Hands the batch to the committer and waits until its rows are committed (or failed). */
static s2f_code commit_rows(s2f_stow *s, commit_batch *b, s2f_error *err)
{
    b->done = 0;
    b->rc = S2F_OK;
    b->next = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->stop) {
        pthread_mutex_unlock(&s->lock);
        return s2f_fail(err, S2F_EIO, "the receiver is stopping");
    }
    if (s->tail)
        s->tail->next = b;
    else
        s->head = b;
    s->tail = b;
    pthread_cond_signal(&s->wake);
    while (!b->done)
        pthread_cond_wait(&s->done, &s->lock);
    pthread_mutex_unlock(&s->lock);
    if (b->rc)
        *err = b->err;
    return b->rc;
}

/* ---- back-pressure -------------------------------------------------------------------- */

/* Pending + leased jobs: read from the database at most once a second, plus the jobs
 * this receiver created since. */
static s2f_code queue_depth(s2f_stow *s, long long *depth, s2f_error *err)
{
    s2f_code rc = S2F_OK;
    long long now = s2f_mono_ns();
    pthread_mutex_lock(&s->stats_lock);
    if (!s->stats_read_ns || now - s->stats_read_ns >= STATS_REFRESH_NS) {
        s2f_queue_stats st;
        long long since = atomic_load(&s->enqueued_since);
        rc = s2f_queue_stats_get(s->stats_q, &st, err);
        if (!rc) {
            s->stats_depth = st.count[S2F_JOB_PENDING] + st.count[S2F_JOB_LEASED];
            s->stats_read_ns = now;
            atomic_fetch_sub(&s->enqueued_since, since);
        }
    }
    *depth = s->stats_depth + atomic_load(&s->enqueued_since);
    pthread_mutex_unlock(&s->stats_lock);
    return rc;
}

/* NULL when the request may go on, else why it gets 503. */
static const char *busy_reason(s2f_stow *s, char *buf, size_t cap)
{
    s2f_error err = {0};
    long long depth = 0;
    if (queue_depth(s, &depth, &err)) {
        snprintf(buf, cap, "queue unavailable: %s", err.message);
        return buf;
    }
    if (depth > s->opt.high_water) {
        snprintf(buf, cap, "queue above its high-water mark (%lld jobs waiting)", depth);
        return buf;
    }
    unsigned long long free_bytes = 0;
    if (s2f_store_free_bytes(s->store, &free_bytes, &err)) {
        snprintf(buf, cap, "%s", err.message);
        return buf;
    }
    if (free_bytes < s->opt.min_free_bytes) {
        snprintf(buf, cap, "free disk below the minimum (%llu MiB left)", free_bytes >> 20);
        return buf;
    }
    return NULL;
}

/* ---- parts ---------------------------------------------------------------------------- */

static s2f_code no_begin(void *user)
{
    (void)user;
    return S2F_OK;
}

static s2f_code no_end(void *user, const s2f_ds *item)
{
    (void)user;
    (void)item;
    return S2F_OK;
}

/* The string value of `tag` into out when it is a valid UID; 0 when absent or invalid. */
static int get_uid(const s2f_ds *ds, uint32_t tag, char out[UID_MAX + 1])
{
    const s2f_elem *e = s2f_ds_find(ds, tag);
    const uint8_t *p;
    size_t n;
    out[0] = 0;
    if (!e || e->is_seq || !s2f_elem_string_raw(e, 0, &p, &n) || !uid_valid((const char *)p, n))
        return 0;
    memcpy(out, p, n);
    out[n] = 0;
    return 1;
}

/* 1 for an SR Storage SOP Class (PS3.4 B.5: 1.2.840.10008.5.1.4.1.1.88.x). */
static int is_sr_class(const char *uid)
{
    static const char prefix[] = "1.2.840.10008.5.1.4.1.1.88.";
    size_t n = sizeof prefix - 1;
    if (strncmp(uid, prefix, n) != 0 || !uid[n])
        return 0;
    for (const char *p = uid + n; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

/* Reads the part's header with the library's readers (bounded) and decides: 0 when it is
 * accepted, else its Failure Reason. */
static unsigned classify(stow_req *rq, part_rec *p, const uint8_t *data, size_t len,
                         char *why, size_t why_cap)
{
    if (len == 0) {
        snprintf(why, why_cap, "empty part");
        return FR_CANNOT_UNDERSTAND;
    }
    s2f_arena *arena = s2f_arena_new(HEADER_ARENA), *scratch = s2f_arena_new(HEADER_ARENA);
    s2f_error err = {0};
    s2f_code rc = S2F_OK;
    s2f_ds *ds = NULL;
    if (!arena || !scratch) {
        rc = s2f_fail(&err, S2F_ENOMEM, "out of memory");
    } else {
        s2f_warnings warnings = {.arena = arena};
        s2f_content_sink sink = {NULL, no_begin, no_end, scratch};
        s2f_read_ctx ctx = {
            .arena = arena,
            .warnings = &warnings,
            .max_depth = 2 * 128 + 8,
            .max_inflated = HEADER_ARENA / 2,
            .content = &sink,
        };
        rc = (p->json ? s2f_dicomjson_read : s2f_part10_read)(data, len, &ctx, &ds, &err);
    }
    unsigned failure = 0;
    if (rc) {
        snprintf(why, why_cap, "%s", err.message);
        failure = rc == S2F_ENOMEM ? FR_OUT_OF_RESOURCES : FR_CANNOT_UNDERSTAND;
    } else {
        int has_class = get_uid(ds, S2F_TAG(0x0008, 0x0016), p->sop_class);
        int has_inst = get_uid(ds, S2F_TAG(0x0008, 0x0018), p->sop_instance);
        int has_study = get_uid(ds, S2F_TAG(0x0020, 0x000D), p->study);
        if (!has_class || !has_inst) {
            snprintf(why, why_cap, "no valid %s", has_class ? "SOP Instance UID" : "SOP Class UID");
            failure = FR_CANNOT_UNDERSTAND;
        } else if (!is_sr_class(p->sop_class)) {
            snprintf(why, why_cap, "SOP Class %s is not a Structured Report", p->sop_class);
            failure = FR_SOP_CLASS_NOT_SUPPORTED;
        } else if (!has_study) {
            snprintf(why, why_cap, "no valid Study Instance UID");
            failure = FR_CANNOT_UNDERSTAND;
        } else if (rq->study_url[0] && strcmp(rq->study_url, p->study) != 0) {
            snprintf(why, why_cap, "Study Instance UID %s is not the study of the URL",
                     p->study);
            failure = FR_STUDY_MISMATCH;
        }
    }
    s2f_arena_free(scratch);
    s2f_arena_free(arena);
    return failure;
}

static void refuse(stow_req *rq, part_rec *p, unsigned failure, const char *why)
{
    p->outcome = PART_REFUSED;
    p->failure = failure;
    s2f_store_abort(rq->s->store, &p->file);
    s2f_gw_logf(rq->s->opt.log, S2F_LOG_INFO, "stow: %s: part %zu refused (%04X): %s",
                rq->remote, (size_t)(p - rq->parts) + 1, failure, why);
}

static int on_part_begin(void *ctx, size_t index, const char *content_type,
                         const char *content_location)
{
    (void)index;
    (void)content_location;
    stow_req *rq = ctx;
    if (rq->n_parts == rq->cap_parts) {
        size_t cap = rq->cap_parts ? 2 * rq->cap_parts : 8;
        part_rec *np = realloc(rq->parts, cap * sizeof *np);
        if (!np) {
            rq->out_of_memory = 1;
            return 1; /* stops the reader; answered 503 */
        }
        rq->parts = np;
        rq->cap_parts = cap;
    }
    part_rec *p = &rq->parts[rq->n_parts++];
    memset(p, 0, sizeof *p);
    p->file.fd = -1;
    p->outcome = PART_OPEN;
    /* the part's own type, else the request's type parameter */
    s2f_media_type mt;
    s2f_error err;
    if (content_type && *content_type) {
        if (s2f_media_type_parse(content_type, &mt, &err) != S2F_OK ||
            (strcmp(mt.type, "application/dicom") != 0 &&
             strcmp(mt.type, "application/dicom+json") != 0)) {
            refuse(rq, p, FR_CANNOT_UNDERSTAND, "part of an unsupported media type");
            return 0;
        }
        p->json = strcmp(mt.type, "application/dicom+json") == 0;
    } else {
        p->json = rq->default_json;
    }
    if (s2f_store_begin(rq->s->store, p->json ? ".json" : ".dcm", &p->file, &err) != S2F_OK)
        refuse(rq, p, FR_OUT_OF_RESOURCES, err.message);
    return 0;
}

static int on_part_data(void *ctx, size_t index, const uint8_t *data, size_t len)
{
    (void)index;
    stow_req *rq = ctx;
    part_rec *p = &rq->parts[rq->n_parts - 1];
    if (p->outcome != PART_OPEN)
        return 0; /* refused: the rest of it is dropped */
    s2f_error err;
    if (s2f_store_write(&p->file, data, len, &err) != S2F_OK)
        refuse(rq, p, FR_OUT_OF_RESOURCES, err.message);
    return 0;
}

static int on_part_end(void *ctx, size_t index)
{
    (void)index;
    stow_req *rq = ctx;
    part_rec *p = &rq->parts[rq->n_parts - 1];
    count(METRIC(rq->s, received), 1);
    if (p->outcome != PART_OPEN)
        return 0;
    s2f_error err = {0};
    char why[S2F_ERROR_MAX];
    const uint8_t *data = NULL;
    if (s2f_store_map(&p->file, &data, &err) != S2F_OK) {
        refuse(rq, p, FR_OUT_OF_RESOURCES, err.message);
        return 0;
    }
    unsigned failure = classify(rq, p, data, (size_t)p->file.size, why, sizeof why);
    s2f_store_unmap(&p->file, data);
    if (failure) {
        refuse(rq, p, failure, why);
        return 0;
    }
    if (s2f_store_seal(&p->file, &err) != S2F_OK) {
        refuse(rq, p, FR_OUT_OF_RESOURCES, err.message);
        return 0;
    }
    p->outcome = PART_ACCEPTED;
    return 0;
}

/* ---- the request ---------------------------------------------------------------------- */

static void req_free(s2f_stow *s, stow_req *rq)
{
    if (!rq)
        return;
    for (size_t i = 0; i < rq->n_parts; i++) {
        part_rec *p = &rq->parts[i];
        if (p->outcome != PART_STORED) /* a stored part's file belongs to its job now */
            s2f_store_abort(s->store, &p->file);
    }
    s2f_mp_free(rq->mp);
    free(rq->parts);
    free(rq);
}

/* "/dicom-web/studies" or "/dicom-web/studies/{uid}" (a final '/' allowed): 0 and the
 * study UID ("" for none), 404 for another path, 400 for an invalid UID. */
static unsigned parse_url(const char *url, char study[UID_MAX + 1])
{
    static const char base[] = "/dicom-web/studies";
    size_t n = sizeof base - 1;
    study[0] = 0;
    if (!url || strncmp(url, base, n) != 0)
        return MHD_HTTP_NOT_FOUND;
    const char *rest = url + n;
    if (!*rest || strcmp(rest, "/") == 0)
        return 0;
    if (*rest != '/')
        return MHD_HTTP_NOT_FOUND;
    rest++;
    size_t len = strcspn(rest, "/");
    if (rest[len] && strcmp(rest + len, "/") != 0)
        return MHD_HTTP_NOT_FOUND;
    if (!uid_valid(rest, len))
        return MHD_HTTP_BAD_REQUEST;
    memcpy(study, rest, len);
    study[len] = 0;
    return 0;
}

/* The first call of a request: everything decided from its headers. */
static enum MHD_Result start_request(s2f_stow *s, struct MHD_Connection *c, const char *url,
                                     const char *method, void **req_cls, const char *who,
                                     const char *remote)
{
    char study[UID_MAX + 1], msg[S2F_ERROR_MAX + 64];
    char rem[64];
    copy_clean(rem, sizeof rem, remote ? remote : "-");
    if (!method || strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return answer_error(s, c, MHD_HTTP_METHOD_NOT_ALLOWED, "STOW-RS takes POST only", rem);
    unsigned st = parse_url(url, study);
    if (st)
        return answer_error(s, c, st,
                            st == MHD_HTTP_NOT_FOUND ? "no such resource"
                                                     : "the URL's Study Instance UID is not a UID",
                            rem);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    s2f_media_type mt;
    s2f_error err = {0};
    if (!ct)
        return answer_error(s, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "no Content-Type", rem);
    if (s2f_media_type_parse(ct, &mt, &err) != S2F_OK) {
        snprintf(msg, sizeof msg, "Content-Type: %s", err.message);
        return answer_error(s, c, MHD_HTTP_BAD_REQUEST, msg, rem);
    }
    if (strcmp(mt.type, "multipart/related") != 0)
        return answer_error(s, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                            "Content-Type is not multipart/related", rem);
    int json = strcmp(mt.param_type, "application/dicom+json") == 0;
    if (!json && mt.param_type[0] && strcmp(mt.param_type, "application/dicom") != 0)
        return answer_error(s, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                            "type is neither application/dicom nor application/dicom+json", rem);
    if (!mt.boundary[0])
        return answer_error(s, c, MHD_HTTP_BAD_REQUEST, "multipart/related without a boundary",
                            rem);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long declared = strtoull(cl, &end, 10);
        if (errno == ERANGE || declared > s->opt.max_body) {
            snprintf(msg, sizeof msg, "body larger than %llu bytes", s->opt.max_body);
            return answer_error(s, c, MHD_HTTP_CONTENT_TOO_LARGE, msg, rem);
        }
    }
    const char *busy = busy_reason(s, msg, sizeof msg);
    if (busy) {
        s2f_gw_logf(s->opt.log, S2F_LOG_WARN, "stow: busy: %s", busy);
        return answer_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, busy, rem);
    }
    stow_req *rq = calloc(1, sizeof *rq);
    if (!rq)
        return answer_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", rem);
    rq->s = s;
    rq->start_ns = s2f_mono_ns();
    memcpy(rq->study_url, study, sizeof study);
    rq->default_json = json;
    copy_clean(rq->who, sizeof rq->who, who && *who ? who : "-");
    memcpy(rq->remote, rem, sizeof rem);
    s2f_mp_limits lim = {.max_parts = MAX_PARTS, .max_part_bytes = s->opt.max_part};
    s2f_mp_callbacks cb = {on_part_begin, on_part_data, on_part_end, rq};
    rq->mp = s2f_mp_new(mt.boundary, &lim, &cb);
    if (!rq->mp) {
        free(rq);
        return answer_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", rem);
    }
    *req_cls = rq;
    return MHD_YES;
}

/* The rows of the accepted parts: rename, then the committer's folder fsync and group
 * commit. On failure every
 * accepted part becomes refused with "out of resources". */
static void store_accepted(s2f_stow *s, stow_req *rq)
{
    size_t n = 0;
    s2f_error err = {0};
    for (size_t i = 0; i < rq->n_parts; i++) {
        part_rec *p = &rq->parts[i];
        if (p->outcome != PART_ACCEPTED)
            continue;
        if (s2f_store_commit(s->store, &p->file, &err) != S2F_OK)
            refuse(rq, p, FR_OUT_OF_RESOURCES, err.message);
        else
            n++;
    }
    if (n == 0)
        return;
    char source[S2F_QUEUE_SOURCE_MAX + 1];
    snprintf(source, sizeof source, "%s %s", rq->who, rq->remote);
    char (*paths)[S2F_QUEUE_PATH_MAX + 1] = malloc(n * sizeof *paths);
    s2f_queue_item *items = calloc(n, sizeof *items);
    s2f_code rc = !paths || !items ? s2f_fail(&err, S2F_ENOMEM, "out of memory") : S2F_OK;
    size_t k = 0;
    for (size_t i = 0; i < rq->n_parts && !rc; i++) {
        part_rec *p = &rq->parts[i];
        if (p->outcome != PART_ACCEPTED)
            continue;
        rc = s2f_store_path(s->store, &p->file, paths[k], sizeof paths[k], &err);
        items[k] = (s2f_queue_item){p->sop_instance, paths[k], source, 0, false};
        k++;
    }
    if (!rc) {
        commit_batch b = {.items = items, .n = n};
        rc = commit_rows(s, &b, &err);
    }
    k = 0;
    size_t created = 0;
    for (size_t i = 0; i < rq->n_parts; i++) {
        part_rec *p = &rq->parts[i];
        if (p->outcome != PART_ACCEPTED)
            continue;
        if (rc) {
            refuse(rq, p, FR_OUT_OF_RESOURCES, err.message);
            continue;
        }
        p->job_id = items[k].job_id;
        if (items[k].created) {
            p->outcome = PART_STORED;
            created++;
        } else {
            p->outcome = PART_DUPLICATE; /* its job holds the bytes already */
            s2f_store_abort(s->store, &p->file);
        }
        k++;
    }
    if (rc)
        s2f_gw_logf(s->opt.log, S2F_LOG_ERROR, "stow: %s: cannot commit %zu jobs: %s",
                    rq->remote, n, err.message);
    free(paths);
    free(items);
    if (created) {
        atomic_fetch_add(&s->enqueued_since, (long long)created);
        if (s->opt.on_enqueued)
            s->opt.on_enqueued(s->opt.on_enqueued_ctx);
    }
}

/* The last call: the body is complete. */
static enum MHD_Result finish_request(s2f_stow *s, struct MHD_Connection *c, stow_req *rq)
{
    s2f_error err = {0};
    s2f_code rc = rq->mp_rc;
    if (!rc)
        rc = s2f_mp_finish(rq->mp, &err);
    else
        err = rq->mp_err;
    if (!rc && rq->n_parts == 0)
        rc = s2f_fail(&err, S2F_EFORMAT, "no parts");
    if (rc) {
        char msg[S2F_ERROR_MAX + 32];
        snprintf(msg, sizeof msg, "malformed multipart body: %s", err.message);
        for (size_t i = 0; i < rq->n_parts; i++)
            s2f_store_abort(s->store, &rq->parts[i].file);
        count(METRIC(s, receive_us_sum), (s2f_mono_ns() - rq->start_ns) / 1000);
        if (rq->out_of_memory)
            return answer_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", rq->remote);
        return answer_error(s, c, rc == S2F_ELIMIT ? MHD_HTTP_CONTENT_TOO_LARGE
                                                   : MHD_HTTP_BAD_REQUEST,
                            msg, rq->remote);
    }
    store_accepted(s, rq);
    size_t stored = 0, refused = 0;
    for (size_t i = 0; i < rq->n_parts; i++) {
        const part_rec *p = &rq->parts[i];
        if (p->outcome == PART_STORED || p->outcome == PART_DUPLICATE)
            stored++;
        else
            refused++;
        audit_part(s, rq, p);
    }
    count(METRIC(s, stored), (long long)stored);
    count(METRIC(s, refused), (long long)refused);
    count(METRIC(s, requests), 1);
    count(METRIC(s, receive_us_sum), (s2f_mono_ns() - rq->start_ns) / 1000);
    unsigned status = refused == 0 ? MHD_HTTP_OK : stored ? MHD_HTTP_ACCEPTED : MHD_HTTP_CONFLICT;
    s2f_gw_logf(s->opt.log, S2F_LOG_INFO, "stow: %s (%s): %u, %zu stored, %zu refused",
                rq->remote, rq->who, status, stored, refused);
    char *body;
    size_t len;
    if (json_to_buffer(response_body, rq, 0, &body, &len) != 0)
        return MHD_NO; /* the rows are committed; the sender will resend (idempotent) */
    return answer(c, status, body, len, 0);
}

enum MHD_Result s2f_stow_handle(s2f_stow *s, struct MHD_Connection *c, const char *url,
                                const char *method, const char *upload_data,
                                size_t *upload_data_size, void **req_cls, const char *who,
                                const char *remote)
{
    stow_req *rq = *req_cls;
    if (!rq)
        return start_request(s, c, url, method, req_cls, who, remote);
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        rq->body_bytes += n;
        if (rq->body_bytes > s->opt.max_body) {
            /* a body without Content-Length (chunked) ran past the limit: libmicrohttpd
             * takes no answer in the middle of a body, so the connection is closed */
            s2f_gw_logf(s->opt.log, S2F_LOG_WARN,
                        "stow: %s: body larger than %llu bytes, connection closed", rq->remote,
                        s->opt.max_body);
            count(METRIC(s, requests), 1);
            return MHD_NO;
        }
        if (!rq->mp_rc) /* after an error the rest is read and dropped */
            rq->mp_rc = s2f_mp_feed(rq->mp, (const uint8_t *)upload_data, n, &rq->mp_err);
        return MHD_YES;
    }
    return finish_request(s, c, rq);
}

void s2f_stow_completed(s2f_stow *s, void **req_cls)
{
    if (!req_cls || !*req_cls)
        return;
    req_free(s, *req_cls);
    *req_cls = NULL;
}

/* Ready when the queue takes writes and the data folder has its minimum free space. */
s2f_code s2f_stow_check(s2f_stow *s, s2f_error *err)
{
    pthread_mutex_lock(&s->stats_lock);
    s2f_code rc = s2f_queue_check_writable(s->stats_q, err);
    pthread_mutex_unlock(&s->stats_lock);
    unsigned long long free_bytes = 0;
    if (!rc)
        rc = s2f_store_free_bytes(s->store, &free_bytes, err);
    if (!rc && free_bytes < s->opt.min_free_bytes)
        rc = s2f_fail(err, S2F_EIO, "free disk of %s below the minimum (%llu MiB left)",
                      s2f_store_dir(s->store), free_bytes >> 20);
    return rc;
}

/* ---- life cycle ----------------------------------------------------------------------- */

s2f_code s2f_stow_new(const s2f_stow_options *opt, s2f_stow **out, s2f_error *err)
{
    *out = NULL;
    if (!opt || !opt->data_dir || !opt->queue_path)
        return s2f_fail(err, S2F_EUSAGE, "stow: data folder and queue path required");
    s2f_stow *s = calloc(1, sizeof *s);
    if (!s)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    s->opt = *opt;
    s->data_dir = strdup(opt->data_dir);
    s->queue_path = strdup(opt->queue_path);
    s->opt.data_dir = s->data_dir;
    s->opt.queue_path = s->queue_path;
    if (!s->opt.max_body)
        s->opt.max_body = 512ull << 20;
    if (!s->opt.max_part)
        s->opt.max_part = 256ull << 20;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->stats_lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->done, NULL);
    s2f_code rc = !s->data_dir || !s->queue_path ? s2f_fail(err, S2F_ENOMEM, "out of memory")
                                                 : S2F_OK;
    if (!rc)
        rc = s2f_store_open(s->data_dir, &s->store, err);
    int swept = 0;
    /* reads never wait in WAL mode; only the readiness probe's write lock does, briefly */
    s2f_queue_options stats_opt = {.busy_timeout_ms = 1000};
    if (!rc)
        rc = s2f_store_sweep(s->store, &swept, err);
    if (!rc)
        rc = s2f_queue_open(s->queue_path, NULL, &s->commit_q, err);
    if (!rc)
        rc = s2f_queue_open(s->queue_path, &stats_opt, &s->stats_q, err);
    if (!rc) {
        int e = pthread_create(&s->committer, NULL, committer_main, s);
        if (e)
            rc = s2f_fail(err, S2F_ENOMEM, "cannot start the committer thread: %s", strerror(e));
        else
            s->committer_started = 1;
    }
    if (rc) {
        s2f_stow_free(s);
        return rc;
    }
    if (swept)
        s2f_gw_logf(s->opt.log, S2F_LOG_INFO, "stow: removed %d unfinished files of %s", swept,
                    s2f_store_dir(s->store));
    *out = s;
    return S2F_OK;
}

void s2f_stow_free(s2f_stow *s)
{
    if (!s)
        return;
    if (s->committer_started) {
        pthread_mutex_lock(&s->lock);
        s->stop = 1;
        pthread_cond_broadcast(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->committer, NULL);
        if (s->commits)
            s2f_gw_logf(s->opt.log, S2F_LOG_INFO,
                        "stow: %lld requests' jobs committed in %lld transactions", s->batches,
                        s->commits);
    }
    s2f_queue_close(s->commit_q);
    s2f_queue_close(s->stats_q);
    s2f_store_close(s->store);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->done);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->stats_lock);
    free(s->data_dir);
    free(s->queue_path);
    free(s);
}
