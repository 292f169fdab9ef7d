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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway/multipart.h"
#include "gateway/intake.h"
#include "gateway/queue.h"
#include "gateway/stow.h"
#include "json/writer.h"
#include "util/clock.h"
#include "util/error.h"

/* Failure Reason (0008,1197) values, PS3.18 Table I.2-2 (docs/decisions.md). */
#define FR_OUT_OF_RESOURCES S2F_FR_OUT_OF_RESOURCES
#define FR_STUDY_MISMATCH 0xA900u
#define FR_CANNOT_UNDERSTAND S2F_FR_CANNOT_UNDERSTAND

#define MAX_PARTS 2000             /* parts of one request (memory: one record each) */
#define RETRY_AFTER "30"
#define UID_MAX S2F_INTAKE_UID_MAX

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

struct s2f_stow {
    s2f_stow_options opt;
    s2f_intake *intake;          /* store, back-pressure, commits, audit (not owned) */
    s2f_store *store;            /* the intake's */
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

/* Copies text from outside into a fixed buffer, control characters replaced by '?'. */
static void copy_clean(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++)
        dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7F ? '?' : src[i];
    dst[i] = 0;
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
    s2f_json_to_buffer(error_body, why, 0, &body, &len);
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
    audit_ctx a = {rq, p};
    char *line;
    size_t len;
    if (s2f_json_to_buffer(audit_body, &a, 1, &line, &len) != 0) {
        s2f_gw_logf(s->opt.log, S2F_LOG_ERROR, "stow: cannot format an audit line");
        return;
    }
    s2f_intake_audit(s->intake, line, len);
    free(line);
}

/* ---- parts ---------------------------------------------------------------------------- */

/* Reads the part's header (intake.h) and decides: 0 when it is accepted, else its Failure
 * Reason; a part of another study than the URL's is refused with A900. */
static unsigned classify(stow_req *rq, part_rec *p, const uint8_t *data, size_t len,
                         char *why, size_t why_cap)
{
    s2f_intake_header h;
    unsigned failure = s2f_intake_classify(data, len, p->json, &h, why, why_cap);
    memcpy(p->sop_class, h.sop_class, sizeof p->sop_class);
    memcpy(p->sop_instance, h.sop_instance, sizeof p->sop_instance);
    memcpy(p->study, h.study, sizeof p->study);
    if (!failure && rq->study_url[0] && strcmp(rq->study_url, p->study) != 0) {
        snprintf(why, why_cap, "Study Instance UID %s is not the study of the URL", p->study);
        failure = FR_STUDY_MISMATCH;
    }
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
    if (!s2f_intake_uid_valid(rest, len))
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
    const char *busy = s2f_intake_busy(s->intake, msg, sizeof msg);
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

/* The accepted parts into the queue (intake.h: rename, folder fsync, group commit). On
 * failure every accepted part becomes refused with "out of resources". */
static void store_accepted(s2f_stow *s, stow_req *rq)
{
    size_t n = 0;
    for (size_t i = 0; i < rq->n_parts; i++)
        n += rq->parts[i].outcome == PART_ACCEPTED;
    if (n == 0)
        return;
    char source[S2F_QUEUE_SOURCE_MAX + 1];
    snprintf(source, sizeof source, "%s %s", rq->who, rq->remote);
    s2f_intake_item *items = calloc(n, sizeof *items);
    s2f_error err = {0};
    s2f_code rc = !items ? s2f_fail(&err, S2F_ENOMEM, "out of memory") : S2F_OK;
    size_t k = 0;
    for (size_t i = 0; i < rq->n_parts && !rc; i++)
        if (rq->parts[i].outcome == PART_ACCEPTED)
            items[k++] = (s2f_intake_item){&rq->parts[i].file, rq->parts[i].sop_instance, 0, false};
    if (!rc)
        rc = s2f_intake_commit(s->intake, items, n, source, &err);
    k = 0;
    for (size_t i = 0; i < rq->n_parts; i++) {
        part_rec *p = &rq->parts[i];
        if (p->outcome != PART_ACCEPTED)
            continue;
        if (rc) {
            refuse(rq, p, FR_OUT_OF_RESOURCES, err.message);
            continue;
        }
        p->job_id = items[k].job_id;
        /* a duplicate's file was removed: the open job of its UID holds the bytes */
        p->outcome = items[k].created ? PART_STORED : PART_DUPLICATE;
        k++;
    }
    free(items);
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
    if (s2f_json_to_buffer(response_body, rq, 0, &body, &len) != 0)
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
    return s2f_intake_check(s->intake, err);
}

/* ---- life cycle ----------------------------------------------------------------------- */

s2f_code s2f_stow_new(const s2f_stow_options *opt, s2f_stow **out, s2f_error *err)
{
    *out = NULL;
    if (!opt || !opt->intake)
        return s2f_fail(err, S2F_EUSAGE, "stow: an intake is required");
    s2f_stow *s = calloc(1, sizeof *s);
    if (!s)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    s->opt = *opt;
    if (!s->opt.max_body)
        s->opt.max_body = 512ull << 20;
    if (!s->opt.max_part)
        s->opt.max_part = 256ull << 20;
    s->intake = opt->intake;
    s->store = s2f_intake_store(opt->intake);
    *out = s;
    return S2F_OK;
}

void s2f_stow_free(s2f_stow *s)
{
    free(s);
}
