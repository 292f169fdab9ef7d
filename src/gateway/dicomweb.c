/*
 * dicomweb.c - the gateway's DICOMweb client (issue 13, see dicomweb.h): QIDO-RS search of
 * SR instances and WADO-RS retrieve of one instance into the data folder's store.
 *
 * Search (docs/decisions.md "Issue 13: DICOMweb client"): two standard QIDO-RS levels,
 *   GET {base}/series?Modality=SR[&StudyDate=A-B]&includefield=00080020&includefield=00080030
 *   (or {base}/studies/{study}/series?Modality=SR with --study), then for each series
 *   GET {base}/studies/{study}/series/{series}/instances,
 * each paged with limit/offset until a page holds fewer than `limit` results. Series- and
 * instance-level QIDO are what every origin server offers (PS3.18 10.6, Orthanc 1.10 with
 * DICOMweb 1.7 included); the SOP Class is filtered here (SR Storage classes only), not
 * by a server-side UID list, whose support varies. StudyDate ranges go to the server by
 * date; the time of a DT bound and the date itself are checked again here (Orthanc matches
 * series without a StudyDate against "-DATE").
 *
 * Answers are bounded: a QIDO answer by max_qido bytes (held in one buffer, parsed by yajl
 * event by event: no document tree), a page by `limit` results (a server that ignores
 * limit or offset is refused, not followed forever), a search by max_results; a retrieved
 * instance streams through the multipart reader into a store file, never into memory, at
 * most max_instance bytes. HTTP, TLS, credentials, timeouts and retries are deliver/http.c's
 * (s2f_http_get_stream), as `send` has them.
 */
#include "gateway/dicomweb.h"

#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "deliver/http.h"
#include "gateway/multipart.h"
#include "util/error.h"
#include "util/escape.h"

#define DEFAULT_PAGE 200u
#define MAX_PAGE 10000u
#define DEFAULT_MAX_QIDO (64ull << 20)
#define DEFAULT_MAX_INSTANCE (256ull << 20)
#define DEFAULT_MAX_RESULTS 10000000ull
#define MAX_BASE 2048u
#define URL_MAX (MAX_BASE + 512u)
#define MAX_DEPTH 32 /* JSON nesting accepted in a QIDO answer */

struct s2f_dw {
    s2f_http *http;
    char base[MAX_BASE + 1];        /* without trailing '/' */
    unsigned page;
    unsigned long long max_qido, max_instance, max_results;
    long deadline;                  /* seconds per request with its retries; <= 0: none */
    char *buf;                      /* the current QIDO answer */
    size_t len, cap;
    int json_type;                  /* the current answer's Content-Type is JSON */
};

/* One QIDO result as read here: the instance's UIDs plus the study's date and time. */
typedef struct dw_record {
    s2f_dw_instance uids;
    char date[9];                   /* StudyDate YYYYMMDD, "" when absent or not a date */
    char time[7];                   /* StudyTime HHMMSS (padded with 0), "" when absent */
} dw_record;

typedef int (*record_fn)(void *ctx, const dw_record *rec);

/* ---- values --------------------------------------------------------------------------------- */

/* A UID as PS3.5 9.1 has it: 1-64 characters, digits and dots. It goes into URLs, so
 * nothing else may pass. */
static int valid_uid(const char *s, size_t n)
{
    if (n == 0 || n > S2F_DW_UID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
            return 0;
    return 1;
}

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* SR Storage SOP Classes (PS3.4 B.5, PS3.6 Annex A): the only instances passed on. */
static int is_sr_class(const char *uid)
{
    static const char *const classes[] = {
        "1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.88.22",
        "1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.88.34",
        "1.2.840.10008.5.1.4.1.1.88.35", "1.2.840.10008.5.1.4.1.1.88.40",
        "1.2.840.10008.5.1.4.1.1.88.50", "1.2.840.10008.5.1.4.1.1.88.65",
        "1.2.840.10008.5.1.4.1.1.88.67", "1.2.840.10008.5.1.4.1.1.88.68",
        "1.2.840.10008.5.1.4.1.1.88.69", "1.2.840.10008.5.1.4.1.1.88.70",
        "1.2.840.10008.5.1.4.1.1.88.71", "1.2.840.10008.5.1.4.1.1.88.72",
        "1.2.840.10008.5.1.4.1.1.88.73", "1.2.840.10008.5.1.4.1.1.88.74",
        "1.2.840.10008.5.1.4.1.1.88.75", "1.2.840.10008.5.1.4.1.1.88.76",
    };
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (!strcmp(uid, classes[i]))
            return 1;
    return 0;
}

/* ---- the QIDO-RS answer parser (yajl events, no tree) --------------------------------------- */

enum field { F_OTHER = -1, F_STUDY, F_SERIES, F_SOP, F_CLASS, F_DATE, F_TIME, F_COUNT };
static const char *const field_tags[F_COUNT] = {"0020000D", "0020000E", "00080018",
                                                "00080016", "00080020", "00080030"};
static const char *const field_names[F_COUNT] = {"Study Instance UID", "Series Instance UID",
                                                 "SOP Instance UID", "SOP Class UID",
                                                 "StudyDate", "StudyTime"};

enum member { M_OTHER, M_VR, M_VALUE };

/* Depths: 1 in the answer's array, 2 in a result object, 3 in an attribute object, 4 in
 * its Value array, deeper in values' own objects and arrays (person names, sequences). */
typedef struct qido_parser {
    int depth;
    int field;                      /* the attribute being read (enum field) */
    int member;                     /* the attribute's member being read (enum member) */
    unsigned values;                /* values seen in a wanted Value array */
    unsigned seen;                  /* wanted attributes met in this result (bits) */
    dw_record rec;
    size_t count;                   /* results read */
    record_fn each;
    void *ctx;
    int stopped;                    /* `each` asked to stop */
    yajl_handle h;
    s2f_code rc;
    s2f_error *err;
} qido_parser;

static int shape_error(qido_parser *p, const char *fmt, const char *what)
{
    char where[96];
    size_t at = p->h ? yajl_get_bytes_consumed(p->h) : 0;
    if (p->depth >= 2)
        snprintf(where, sizeof where, "result %zu%s%s%s, near byte %zu", p->count + 1,
                 p->field >= 0 ? " (" : "", p->field >= 0 ? field_tags[p->field] : "",
                 p->field >= 0 ? ")" : "", at);
    else
        snprintf(where, sizeof where, "near byte %zu", at);
    char msg[256];
    snprintf(msg, sizeof msg, fmt, what);
    p->rc = s2f_fail(p->err, S2F_EFORMAT, "QIDO-RS answer of the wrong shape: %s, at %s", msg,
                     where);
    return 0;
}

/* A value that is not a container, at the current depth: where may it be? kind names it. */
static int scalar(qido_parser *p, const char *kind)
{
    switch (p->depth) {
    case 0:
        return shape_error(p, "%s instead of an array of results", kind);
    case 1:
        return shape_error(p, "%s instead of a result object", kind);
    case 2:
        return shape_error(p, "%s instead of an attribute object", kind);
    case 3:
        if (p->member == M_VALUE)
            return shape_error(p, "Value is %s, not an array", kind);
        return 1;
    case 4:
        if (p->field >= 0)
            return shape_error(p, "%s where a string value belongs", kind);
        return 1;
    default:
        return 1;
    }
}

static int deeper(qido_parser *p)
{
    if (++p->depth > MAX_DEPTH) {
        p->rc = s2f_fail(p->err, S2F_ELIMIT, "QIDO-RS answer nested deeper than %d levels, "
                         "near byte %zu", MAX_DEPTH, yajl_get_bytes_consumed(p->h));
        return 0;
    }
    return 1;
}

static int on_start_map(void *ctx)
{
    qido_parser *p = ctx;
    switch (p->depth) {
    case 0:
        return shape_error(p, "%s instead of an array of results", "an object");
    case 1:
        memset(&p->rec, 0, sizeof p->rec);
        p->seen = 0;
        p->field = F_OTHER;
        break;
    case 2:
        p->member = M_OTHER;
        break;
    case 3:
        if (p->member == M_VALUE)
            return shape_error(p, "Value is %s, not an array", "an object");
        break;
    case 4:
        if (p->field >= 0)
            return shape_error(p, "%s where a string value belongs", "an object");
        break;
    default:
        break;
    }
    return deeper(p);
}

static int on_start_array(void *ctx)
{
    qido_parser *p = ctx;
    switch (p->depth) {
    case 1:
        return shape_error(p, "%s instead of a result object", "an array");
    case 2:
        return shape_error(p, "%s instead of an attribute object", "an array");
    case 3:
        p->values = 0;
        break;
    case 4:
        if (p->field >= 0)
            return shape_error(p, "%s where a string value belongs", "an array");
        break;
    default:
        break;
    }
    return deeper(p);
}

static int on_end_map(void *ctx)
{
    qido_parser *p = ctx;
    p->depth--;
    if (p->depth == 2)
        p->field = F_OTHER; /* an attribute ended */
    if (p->depth != 1)
        return 1;
    p->count++; /* a result ended */
    if (p->each && p->each(p->ctx, &p->rec)) {
        p->stopped = 1;
        return 0;
    }
    return 1;
}

static int on_end_array(void *ctx)
{
    qido_parser *p = ctx;
    p->depth--;
    return 1;
}

/* "0020000D": 8 hexadecimal digits (PS3.18 F.2.1.1). */
static int on_key(void *ctx, const unsigned char *key, size_t n)
{
    qido_parser *p = ctx;
    if (p->depth == 2) {
        char k[9] = "";
        int hex = n == 8;
        for (size_t i = 0; hex && i < 8; i++)
            hex = (key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f') ||
                  (key[i] >= 'A' && key[i] <= 'F');
        if (!hex) {
            char shown[40];
            s2f_escape_to_buf((const char *)key, n > 24 ? 24 : n, S2F_ESC_QUOTED, shown,
                              sizeof shown);
            return shape_error(p, "key \"%s\" is not a tag (8 hexadecimal digits)", shown);
        }
        for (int i = 0; i < 8; i++)
            k[i] = (char)(key[i] >= 'a' && key[i] <= 'f' ? key[i] - 'a' + 'A' : key[i]);
        p->field = F_OTHER;
        for (int f = 0; f < F_COUNT; f++)
            if (!strcmp(k, field_tags[f]))
                p->field = f;
        if (p->field >= 0 && (p->seen & (1u << p->field)))
            return shape_error(p, "%s given twice", field_names[p->field]);
        if (p->field >= 0)
            p->seen |= 1u << p->field;
    } else if (p->depth == 3) {
        p->member = n == 5 && !memcmp(key, "Value", 5) ? M_VALUE
                    : n == 2 && !memcmp(key, "vr", 2) ? M_VR : M_OTHER;
    }
    return 1;
}

static void copy_time(char *dst, const char *s, size_t n)
{
    size_t d = 0;
    while (d < n && d < 6 && s[d] >= '0' && s[d] <= '9')
        d++;
    if (d < 2 || d % 2) {
        dst[0] = '\0';
        return;
    }
    memcpy(dst, s, d);
    memset(dst + d, '0', 6 - d);
    dst[6] = '\0';
}

/* A string in a wanted attribute's Value array. */
static int wanted_string(qido_parser *p, const char *s, size_t n)
{
    if (p->values++)
        return shape_error(p, "%s has more than one value", field_names[p->field]);
    char *dst = NULL;
    switch (p->field) {
    case F_STUDY: dst = p->rec.uids.study; break;
    case F_SERIES: dst = p->rec.uids.series; break;
    case F_SOP: dst = p->rec.uids.sop_instance; break;
    case F_CLASS: dst = p->rec.uids.sop_class; break;
    case F_DATE:
        if (n == 8 && all_digits(s, 8))
            memcpy(p->rec.date, s, 8), p->rec.date[8] = '\0';
        return 1; /* not YYYYMMDD: as if absent (a --since/--until search leaves it out) */
    default:
        copy_time(p->rec.time, s, n);
        return 1;
    }
    if (!valid_uid(s, n))
        return shape_error(p, "%s is not a UID of 1-64 digits and dots", field_names[p->field]);
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 1;
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
    qido_parser *p = ctx;
    if (p->depth == 4 && p->field >= 0)
        return wanted_string(p, (const char *)s, n);
    return scalar(p, "a string");
}

static int on_null(void *ctx)
{
    qido_parser *p = ctx;
    if (p->depth == 4 && p->field >= 0) {
        if (p->values++)
            return shape_error(p, "%s has more than one value", field_names[p->field]);
        return 1; /* an empty value */
    }
    return scalar(p, "null");
}

static int on_bool(void *ctx, int b)
{
    (void)b;
    return scalar(ctx, "a boolean");
}

static int on_number(void *ctx, const char *s, size_t n)
{
    (void)s, (void)n;
    return scalar(ctx, "a number");
}

static const yajl_callbacks qido_callbacks = {
    on_null, on_bool, NULL, NULL, on_number, on_string,
    on_start_map, on_key, on_end_map, on_start_array, on_end_array,
};

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* The parse behind s2f_dw_parse_qido and the search: every result to each (which returns
 * non-zero to stop: then S2F_OK). */
static s2f_code parse_records(const char *json, size_t len, record_fn each, void *ctx,
                              size_t *count, s2f_error *err)
{
    qido_parser p = {.field = F_OTHER, .each = each, .ctx = ctx, .rc = S2F_OK, .err = err};
    if (count)
        *count = 0;
    if (!json || blank(json, len))
        return S2F_OK; /* an empty answer: no results */
    p.h = yajl_alloc(&qido_callbacks, NULL, &p);
    if (!p.h)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    yajl_status st = yajl_parse(p.h, (const unsigned char *)json, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(p.h);
    s2f_code rc = S2F_OK;
    if (p.stopped)
        rc = S2F_OK;
    else if (p.rc != S2F_OK)
        rc = p.rc;
    else if (st != yajl_status_ok) {
        unsigned char *m = yajl_get_error(p.h, 0, NULL, 0);
        char why[160];
        s2f_escape_to_buf(m ? (const char *)m : "syntax error", m ? strlen((const char *)m) : 12,
                          0, why, sizeof why);
        if (m)
            yajl_free_error(p.h, m);
        rc = s2f_fail(err, S2F_EFORMAT, "QIDO-RS answer is not valid JSON: %s, near byte %zu",
                      why, yajl_get_bytes_consumed(p.h));
    }
    yajl_free(p.h);
    if (count)
        *count = p.count;
    return rc;
}

typedef struct public_each {
    int (*each)(void *ctx, const s2f_dw_instance *inst);
    void *ctx;
} public_each;

static int call_public(void *ctx, const dw_record *rec)
{
    public_each *pe = ctx;
    return pe->each ? pe->each(pe->ctx, &rec->uids) : 0;
}

s2f_code s2f_dw_parse_qido(const char *json, size_t len,
                           int (*each)(void *ctx, const s2f_dw_instance *inst), void *ctx,
                           size_t *count, s2f_error *err)
{
    public_each pe = {each, ctx};
    return parse_records(json, len, call_public, &pe, count, err);
}

/* ---- set-up --------------------------------------------------------------------------------- */

/* The base URL policy of `send` (deliver/http.c s2f_http_judge_url): http or https, no
 * credentials, plain http only to loopback unless allowed; and here no query or fragment. */
static s2f_code check_base(const char *base, const s2f_client_options *opt, s2f_error *err)
{
    if (strlen(base) > MAX_BASE)
        return s2f_fail(err, S2F_EUSAGE, "--dicomweb: URL longer than %u characters", MAX_BASE);
    for (const char *c = base; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '?' || *c == '#')
            return s2f_fail(err, S2F_EUSAGE, "--dicomweb: the URL may hold no blanks, control "
                            "characters, query nor fragment");
    char host[256];
    switch (s2f_http_judge_url(base, opt->allow_http, host, sizeof host)) {
    case S2F_URL_OK:
        return S2F_OK;
    case S2F_URL_NOMEM:
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    case S2F_URL_MALFORMED:
        return s2f_fail(err, S2F_EUSAGE, "--dicomweb: not a URL");
    case S2F_URL_CREDENTIALS:
        return s2f_fail(err, S2F_EUSAGE, "--dicomweb: credentials in the URL are refused (use "
                        "--dicomweb-user or --dicomweb-token)");
    case S2F_URL_SCHEME:
        return s2f_fail(err, S2F_EUSAGE, "--dicomweb: only http and https URLs are supported");
    case S2F_URL_PLAIN_REMOTE:
        break;
    }
    return s2f_fail(err, S2F_EUSAGE, "--dicomweb: plain http to %s would send any credentials "
                    "and receive the reports unencrypted; use https, or --allow-http", host);
}

s2f_code s2f_dw_new(const char *base, const s2f_dw_options *opt, s2f_dw **out, s2f_error *err)
{
    static const s2f_dw_options defaults;
    *out = NULL;
    if (!opt)
        opt = &defaults;
    if (!base || !*base)
        return s2f_fail(err, S2F_EUSAGE, "--dicomweb: no URL");
    s2f_code rc = check_base(base, &opt->client, err);
    if (rc)
        return rc;
    s2f_dw *dw = calloc(1, sizeof *dw);
    if (!dw)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    memcpy(dw->base, base, strlen(base) + 1);
    for (size_t n = strlen(dw->base); n > 0 && dw->base[n - 1] == '/';)
        dw->base[--n] = '\0';
    dw->page = opt->page_size ? (opt->page_size > MAX_PAGE ? MAX_PAGE : opt->page_size)
                              : DEFAULT_PAGE;
    dw->max_qido = opt->max_qido ? opt->max_qido : DEFAULT_MAX_QIDO;
    dw->max_instance = opt->max_instance ? opt->max_instance : DEFAULT_MAX_INSTANCE;
    dw->max_results = opt->max_results ? opt->max_results : DEFAULT_MAX_RESULTS;
    dw->deadline = opt->client.deadline == 0 ? S2F_DEFAULT_DEADLINE : opt->client.deadline;
    if (dw->max_qido > ((size_t)-1) / 2)
        dw->max_qido = ((size_t)-1) / 2;
    dw->http = s2f_http_new(&opt->client, err);
    if (!dw->http) {
        free(dw);
        return err ? err->code : S2F_EINTERNAL;
    }
    *out = dw;
    return S2F_OK;
}

void s2f_dw_free(s2f_dw *dw)
{
    if (!dw)
        return;
    s2f_http_free(dw->http);
    free(dw->buf);
    free(dw);
}

void s2f_dw_set_cancel(s2f_dw *dw, const atomic_int *flag)
{
    s2f_http_set_cancel(dw->http, flag);
}

/* ---- HTTP answers --------------------------------------------------------------------------- */

/* Why a non-2xx answer is refused: "HTTP 404 from GET URL: body". */
static s2f_code http_refused(const char *url, const s2f_http_response *resp, s2f_error *err)
{
    char body[200], where[300];
    s2f_escape_to_buf(resp->body ? resp->body : "", resp->body ? (resp->len > 150 ? 150 : resp->len) : 0,
                      0, body, sizeof body);
    s2f_escape_to_buf(url, strlen(url), 0, where, sizeof where);
    const char *hint = resp->status == 401 || resp->status == 403
                           ? " (credentials refused: --dicomweb-token / --dicomweb-user)" : "";
    if (s2f_http_retryable(resp->status))
        return s2f_fail(err, S2F_EUNREACHABLE, "HTTP %ld from GET %s after %u attempt%s%s%s",
                        resp->status, where, resp->attempts, resp->attempts > 1 ? "s" : "",
                        body[0] ? ": " : "", body);
    return s2f_fail(err, S2F_EREJECTED, "HTTP %ld from GET %s%s%s%s", resp->status, where, hint,
                    body[0] ? ": " : "", body);
}

/* A media type's type/subtype, lower-cased ("" when it cannot be parsed). */
static void media_type_of(const char *value, char *type, size_t cap)
{
    s2f_media_type mt;
    s2f_error e;
    type[0] = '\0';
    if (s2f_media_type_parse(value, &mt, &e) == S2F_OK)
        snprintf(type, cap, "%s", mt.type);
}

static s2f_code qido_begin(void *ctx, long status, const char *content_type, s2f_error *err)
{
    s2f_dw *dw = ctx;
    char type[128];
    (void)status;
    dw->len = 0;
    media_type_of(content_type, type, sizeof type);
    dw->json_type = !strcmp(type, "application/dicom+json") || !strcmp(type, "application/json");
    (void)err;
    return S2F_OK;
}

static s2f_code qido_data(void *ctx, const char *bytes, size_t len, s2f_error *err)
{
    s2f_dw *dw = ctx;
    if (!dw->json_type)
        return s2f_fail(err, S2F_EFORMAT, "QIDO-RS answer is not application/dicom+json");
    if (dw->len + len + 1 > dw->cap) {
        size_t cap = dw->cap ? dw->cap : 65536;
        while (cap < dw->len + len + 1)
            cap *= 2;
        char *p = realloc(dw->buf, cap);
        if (!p)
            return s2f_fail(err, S2F_ENOMEM, "out of memory for a QIDO-RS answer");
        dw->buf = p;
        dw->cap = cap;
    }
    memcpy(dw->buf + dw->len, bytes, len);
    dw->len += len;
    dw->buf[dw->len] = '\0';
    return S2F_OK;
}

/* Prefixes err's message with the URL's path after the base ("QIDO-RS /series?...: "). */
static s2f_code with_where(s2f_dw *dw, const char *url, s2f_code rc, s2f_error *err)
{
    if (rc == S2F_OK || !err)
        return rc;
    char msg[S2F_ERROR_MAX], where[200];
    const char *rel = url + strlen(dw->base);
    s2f_escape_to_buf(rel, strlen(rel), 0, where, sizeof where);
    snprintf(msg, sizeof msg, "%s", err->message);
    return s2f_fail(err, rc, "GET %s: %s", where, msg);
}

/* One QIDO-RS request; its answer into dw->buf / dw->len. */
static s2f_code qido_get(s2f_dw *dw, const char *url, s2f_error *err)
{
    s2f_http_sink sink = {"application/dicom+json", dw->max_qido, qido_begin, qido_data, dw};
    s2f_http_response resp;
    dw->len = 0;
    s2f_http_set_deadline(dw->http, dw->deadline);
    s2f_code rc = s2f_http_get_stream(dw->http, url, &sink, &resp, err);
    if (rc != S2F_OK)
        return with_where(dw, url, rc, err);
    if (resp.status < 200 || resp.status > 299)
        return http_refused(url, &resp, err);
    if (resp.status == 204)
        dw->len = 0;
    return S2F_OK;
}

/* ---- search --------------------------------------------------------------------------------- */

/* A --since/--until bound: DA (8 digits) or DT (10, 12 or 14 digits: to the hour, minute,
 * second). */
typedef struct bound {
    int set;
    char date[9];
    char time[7];                   /* "" for a DA bound */
} bound;

static s2f_code parse_bound(const char *v, const char *name, bound *b, s2f_error *err)
{
    memset(b, 0, sizeof *b);
    if (!v)
        return S2F_OK;
    size_t n = strlen(v);
    if (!((n == 8 || n == 10 || n == 12 || n == 14) && all_digits(v, n)))
        return s2f_fail(err, S2F_EUSAGE, "--%s: a date YYYYMMDD or date-time YYYYMMDDHH[MM[SS]] "
                        "is expected", name);
    b->set = 1;
    memcpy(b->date, v, 8);
    if (n > 8) {
        memcpy(b->time, v + 8, n - 8);
        memset(b->time + (n - 8), '0', 6 - (n - 8));
    }
    return S2F_OK;
}

typedef struct search {
    s2f_dw *dw;
    bound since, until;
    int (*each)(void *ctx, const s2f_dw_instance *inst);
    void *ctx;
    dw_record *page;                /* the current page's results, at most dw->page */
    size_t n;
    int over;                       /* the page held more than limit results */
    unsigned long long series, instances;   /* results met so far */
} search;

static int collect(void *ctx, const dw_record *rec)
{
    search *s = ctx;
    if (s->n >= s->dw->page) {
        s->over = 1;
        return 1;
    }
    s->page[s->n++] = *rec;
    return 0;
}

/* One page: GET, parse into s->page. Refuses a server that ignores limit or offset (a
 * full page starting where the last one did). */
static s2f_code get_page(search *s, const char *url, char *first, s2f_error *err)
{
    s2f_dw *dw = s->dw;
    s2f_code rc = qido_get(dw, url, err);
    if (rc)
        return rc;
    s->n = 0;
    s->over = 0;
    rc = parse_records(dw->buf, dw->len, collect, s, NULL, err);
    if (rc)
        return with_where(dw, url, rc, err);
    if (s->over)
        return with_where(dw, url, s2f_fail(err, S2F_EFORMAT, "more than limit=%u results: the "
                                            "server ignores limit", dw->page), err);
    if (s->n == dw->page) {
        const char *uid = s->page[0].uids.sop_instance[0] ? s->page[0].uids.sop_instance
                                                           : s->page[0].uids.series;
        if (first[0] && !strcmp(first, uid))
            return with_where(dw, url, s2f_fail(err, S2F_EFORMAT, "the same results again at the "
                                                "next offset: the server ignores offset"), err);
        snprintf(first, S2F_DW_UID_MAX + 1, "%s", uid);
    }
    return S2F_OK;
}

/* StudyDate (and StudyTime, for a DT bound) within [since, until]. A series without a
 * StudyDate is outside any bounded search. */
static int in_range(const search *s, const dw_record *r)
{
    if (!s->since.set && !s->until.set)
        return 1;
    if (!r->date[0])
        return 0;
    int c;
    if (s->since.set && ((c = strcmp(r->date, s->since.date)) < 0 ||
                         (c == 0 && s->since.time[0] && r->time[0] &&
                          strcmp(r->time, s->since.time) < 0)))
        return 0;
    if (s->until.set && ((c = strcmp(r->date, s->until.date)) > 0 ||
                         (c == 0 && s->until.time[0] && r->time[0] &&
                          strcmp(r->time, s->until.time) > 0)))
        return 0;
    return 1;
}

static s2f_code over_results(s2f_dw *dw, const char *what, s2f_error *err)
{
    return s2f_fail(err, S2F_ELIMIT, "the search found more than %llu %s (the bound of one "
                    "search)", dw->max_results, what);
}

/* Every page of the instances of one series; the SR ones to s->each. *stop: each asked. */
static s2f_code series_instances(search *s, const dw_record *series, int *stop, s2f_error *err)
{
    s2f_dw *dw = s->dw;
    char url[URL_MAX], first[S2F_DW_UID_MAX + 1] = "";
    for (unsigned long long offset = 0;; offset += dw->page) {
        snprintf(url, sizeof url, "%s/studies/%s/series/%s/instances?limit=%u&offset=%llu",
                 dw->base, series->uids.study, series->uids.series, dw->page, offset);
        s2f_code rc = get_page(s, url, first, err);
        if (rc)
            return rc;
        size_t n = s->n;
        for (size_t i = 0; i < n; i++) {
            s2f_dw_instance inst = s->page[i].uids;
            if (!inst.sop_instance[0])
                return with_where(dw, url, s2f_fail(err, S2F_EFORMAT, "result %zu has no SOP "
                                                    "Instance UID", i + 1), err);
            if ((inst.study[0] && strcmp(inst.study, series->uids.study)) ||
                (inst.series[0] && strcmp(inst.series, series->uids.series)))
                return with_where(dw, url, s2f_fail(err, S2F_EFORMAT, "result %zu belongs to "
                                                    "another series", i + 1), err);
            if (++s->instances > dw->max_results)
                return over_results(dw, "instances", err);
            memcpy(inst.study, series->uids.study, sizeof inst.study);
            memcpy(inst.series, series->uids.series, sizeof inst.series);
            if (inst.sop_class[0] && !is_sr_class(inst.sop_class))
                continue; /* not an SR (a KOS, an image filed under an SR series) */
            if (s->each(s->ctx, &inst)) {
                *stop = 1;
                return S2F_OK;
            }
        }
        if (n < dw->page)
            return S2F_OK;
    }
}

static void series_url(const search *s, const s2f_dw_query *q, unsigned long long offset,
                       char *url, size_t cap)
{
    const s2f_dw *dw = s->dw;
    char dates[40] = "";
    if (s->since.set || s->until.set)
        snprintf(dates, sizeof dates, "&StudyDate=%s-%s", s->since.date, s->until.date);
    if (q->study)
        snprintf(url, cap, "%s/studies/%s/series?Modality=SR%s&includefield=00080020"
                 "&includefield=00080030&limit=%u&offset=%llu", dw->base, q->study, dates,
                 dw->page, offset);
    else
        snprintf(url, cap, "%s/series?Modality=SR%s&includefield=00080020"
                 "&includefield=00080030&limit=%u&offset=%llu", dw->base, dates, dw->page,
                 offset);
}

/* One page of series, kept (copied: the instance pages reuse s->page) and searched. */
static s2f_code series_page(search *s, const s2f_dw_query *q, dw_record *series, size_t n,
                            int *stop, s2f_error *err)
{
    for (size_t i = 0; i < n && !*stop; i++) {
        const dw_record *r = &series[i];
        if (!r->uids.study[0] || !r->uids.series[0])
            return s2f_fail(err, S2F_EFORMAT, "QIDO-RS series result without Study or Series "
                            "Instance UID (series %llu)", s->series - n + i + 1);
        if (q->study && strcmp(r->uids.study, q->study))
            return s2f_fail(err, S2F_EFORMAT, "QIDO-RS series result of another study than "
                            "asked for");
        if (!in_range(s, r))
            continue;
        s2f_code rc = series_instances(s, r, stop, err);
        if (rc)
            return rc;
    }
    return S2F_OK;
}

s2f_code s2f_dw_search(s2f_dw *dw, const s2f_dw_query *q,
                       int (*each)(void *ctx, const s2f_dw_instance *inst), void *ctx,
                       s2f_error *err)
{
    static const s2f_dw_query everything;
    search s = {.dw = dw, .each = each, .ctx = ctx};
    if (!q)
        q = &everything;
    if (!each)
        return s2f_fail(err, S2F_EUSAGE, "no callback for the search");
    if (q->study && !valid_uid(q->study, strlen(q->study)))
        return s2f_fail(err, S2F_EUSAGE, "--study: not a UID of 1-64 digits and dots");
    s2f_code rc = parse_bound(q->since, "since", &s.since, err);
    if (!rc)
        rc = parse_bound(q->until, "until", &s.until, err);
    if (rc)
        return rc;
    s.page = malloc(sizeof *s.page * dw->page);
    dw_record *series = malloc(sizeof *series * dw->page);
    if (!s.page || !series) {
        free(s.page);
        free(series);
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    }
    char url[URL_MAX], first[S2F_DW_UID_MAX + 1] = "";
    int stop = 0;
    for (unsigned long long offset = 0; !rc && !stop; offset += dw->page) {
        series_url(&s, q, offset, url, sizeof url);
        rc = get_page(&s, url, first, err);
        if (rc)
            break;
        size_t n = s.n;
        s.series += n;
        if (s.series > dw->max_results) {
            rc = over_results(dw, "series", err);
            break;
        }
        memcpy(series, s.page, sizeof *series * n);
        rc = series_page(&s, q, series, n, &stop, err);
        if (n < dw->page)
            break;
    }
    free(s.page);
    free(series);
    return rc;
}

/* ---- retrieve ------------------------------------------------------------------------------- */

typedef struct retrieve {
    s2f_dw *dw;
    s2f_store *st;
    s2f_store_file *f;
    int begun;                      /* f holds a temporary file */
    s2f_mp_reader *mp;
    s2f_code rc;                    /* why a callback stopped the reader */
    s2f_error err;
} retrieve;

static void retrieve_reset(retrieve *r)
{
    if (r->begun)
        s2f_store_abort(r->st, r->f);
    r->begun = 0;
    s2f_mp_free(r->mp);
    r->mp = NULL;
    r->rc = S2F_OK;
}

static int part_begin(void *ctx, size_t index, const char *content_type,
                      const char *content_location)
{
    retrieve *r = ctx;
    char type[128];
    (void)content_location;
    if (index > 0) {
        r->rc = s2f_fail(&r->err, S2F_EFORMAT, "WADO-RS answer holds more than the one part "
                         "asked for");
        return 1;
    }
    media_type_of(content_type, type, sizeof type);
    if (content_type[0] && strcmp(type, "application/dicom")) {
        char shown[80];
        s2f_escape_to_buf(content_type, strlen(content_type), 0, shown, sizeof shown);
        r->rc = s2f_fail(&r->err, S2F_EFORMAT, "WADO-RS part is %s, not application/dicom",
                         shown);
        return 1;
    }
    r->rc = s2f_store_begin(r->st, ".dcm", r->f, &r->err);
    r->begun = r->rc == S2F_OK;
    return r->rc != S2F_OK;
}

static int part_data(void *ctx, size_t index, const uint8_t *data, size_t len)
{
    retrieve *r = ctx;
    (void)index;
    r->rc = s2f_store_write(r->f, data, len, &r->err);
    return r->rc != S2F_OK;
}

static int part_end(void *ctx, size_t index)
{
    (void)ctx, (void)index;
    return 0;
}

static s2f_code retrieve_begin(void *ctx, long status, const char *content_type, s2f_error *err)
{
    retrieve *r = ctx;
    s2f_media_type mt;
    (void)status;
    retrieve_reset(r); /* a new try starts over */
    char shown[120];
    s2f_escape_to_buf(content_type, strlen(content_type), 0, shown, sizeof shown);
    if (s2f_media_type_parse(content_type, &mt, err) != S2F_OK || strcmp(mt.type, "multipart/related"))
        return s2f_fail(err, S2F_EFORMAT, "WADO-RS answer is \"%s\", not multipart/related", shown);
    if (mt.param_type[0] && strcmp(mt.param_type, "application/dicom"))
        return s2f_fail(err, S2F_EFORMAT, "WADO-RS answer holds %s, not application/dicom",
                        mt.param_type);
    if (!mt.boundary[0])
        return s2f_fail(err, S2F_EFORMAT, "WADO-RS answer is multipart without a boundary");
    s2f_mp_limits lim = {.max_parts = 2, .max_part_bytes = r->dw->max_instance};
    s2f_mp_callbacks cb = {part_begin, part_data, part_end, r};
    r->mp = s2f_mp_new(mt.boundary, &lim, &cb);
    if (!r->mp)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    return S2F_OK;
}

static s2f_code retrieve_data(void *ctx, const char *bytes, size_t len, s2f_error *err)
{
    retrieve *r = ctx;
    s2f_code rc = s2f_mp_feed(r->mp, (const uint8_t *)bytes, len, err);
    if (rc && r->rc) {
        *err = r->err;
        return r->rc;
    }
    return rc;
}

/* After the transfer: the body ended as a whole multipart body of exactly one part. */
static s2f_code retrieve_finish(retrieve *r, s2f_error *err)
{
    if (!r->mp)
        return s2f_fail(err, S2F_EFORMAT, "WADO-RS answer without a body");
    s2f_code rc = s2f_mp_finish(r->mp, err);
    if (rc)
        return rc;
    if (s2f_mp_parts(r->mp) != 1 || !r->begun)
        return s2f_fail(err, S2F_EFORMAT, "WADO-RS answer holds no instance");
    return s2f_store_seal(r->f, err);
}

s2f_code s2f_dw_retrieve(s2f_dw *dw, const s2f_dw_instance *inst, s2f_store *st,
                         s2f_store_file *f, s2f_error *err)
{
    if (!valid_uid(inst->study, strlen(inst->study)) ||
        !valid_uid(inst->series, strlen(inst->series)) ||
        !valid_uid(inst->sop_instance, strlen(inst->sop_instance)))
        return s2f_fail(err, S2F_EUSAGE, "retrieve: the study, series and SOP Instance UIDs "
                        "must be UIDs of 1-64 digits and dots");
    memset(f, 0, sizeof *f);
    f->fd = -1;
    char url[URL_MAX];
    snprintf(url, sizeof url, "%s/studies/%s/series/%s/instances/%s", dw->base, inst->study,
             inst->series, inst->sop_instance);
    retrieve r = {.dw = dw, .st = st, .f = f};
    /* the multipart envelope adds a few hundred bytes to the instance */
    s2f_http_sink sink = {"multipart/related; type=\"application/dicom\"; transfer-syntax=*",
                          dw->max_instance + 65536, retrieve_begin, retrieve_data, &r};
    s2f_http_response resp;
    s2f_http_set_deadline(dw->http, dw->deadline);
    s2f_code rc = s2f_http_get_stream(dw->http, url, &sink, &resp, err);
    if (rc == S2F_OK && (resp.status < 200 || resp.status > 299))
        rc = http_refused(url, &resp, err);
    else if (rc == S2F_OK)
        rc = with_where(dw, url, retrieve_finish(&r, err), err);
    else
        rc = with_where(dw, url, rc, err);
    if (rc) {
        retrieve_reset(&r);
        memset(f, 0, sizeof *f);
        f->fd = -1;
    } else {
        s2f_mp_free(r.mp);
    }
    return rc;
}
