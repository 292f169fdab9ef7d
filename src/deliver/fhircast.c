/*
 * fhircast.c - the FHIRcast STU3 client (issue 15, sr2fhir_cast.h, docs/fhircast.md):
 * subscription over the websocket channel (2-4, 2-5), Get Current Context (2-9), matching
 * the open DiagnosticReport context to the SR, and the DiagnosticReport-update (3-6-3, 2-10)
 * of the converted Observations and what they reference, with the context's versionId,
 * retried once per new version when stale (409 or a SyncError) and on 5xx/429 with backoff
 * (http.c) within the deadline. The hub is hostile: every answer and message is bounded,
 * parsed with a depth and cost bound, and read with a deadline.
 */
#include "deliver/fhircast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>

#include "deliver/client.h"
#include "deliver/fhirjson.h"
#include "deliver/http.h"
#include "deliver/websocket.h"
#include "sr2fhir_cast.h"
#include "util/error.h"
#include "util/escape.h"
#include "util/sized.h"

#define MAX_ANSWER (64u << 20)          /* bytes of one hub answer or message */
#define MAX_JSON_COST (512u << 20)      /* json-c memory a message may cost */
#define MAX_TOPIC 256
#define CONFIRM_SECONDS 15.0            /* wait for the hub to confirm an accepted update */
#define MAX_STALE 8                     /* stale refusals retried, each on a new version */
#define EVENTS "DiagnosticReport-open,DiagnosticReport-close,DiagnosticReport-update,SyncError"
#define STUDY_UID_SYSTEM "urn:dicom:uid"

struct s2f_cast {
    char *hub, *topic, *name, *timezone, *endpoint;
    char *cacert, *cert, *key;   /* the websocket's TLS files (copies) */
    s2f_client_options ws_opt;   /* what the channel is opened with again (its strings the
                                    copies above; no secrets) */
    s2f_http *http;
    s2f_ws *ws;
    long wait, deadline_s;
    int r4;
};

/* ---- small helpers -------------------------------------------------------------------------- */

/* Copies src (NULL: "") into dst[cap], cut to fit. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static int random_uuid(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

static void utc_now(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

/* Appends s percent-encoded (application/x-www-form-urlencoded) to buf. */
static int form_append(char *buf, size_t cap, const char *key, const char *s)
{
    size_t n = strlen(buf);
    int w = snprintf(buf + n, cap - n, "%s%s=", n ? "&" : "", key);
    if (w < 0 || (size_t)w >= cap - n)
        return -1;
    n += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (n + 4 > cap)
            return -1;
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~,", *p))
            buf[n++] = (char)*p;
        else
            n += (size_t)snprintf(buf + n, cap - n, "%%%02X", *p);
    }
    buf[n] = '\0';
    return 0;
}

/* Parses hub text with a cost bound; NULL when it is not JSON or too costly. */
static json_object *parse_bounded(const char *text, size_t len)
{
    if (len > MAX_ANSWER || s2f_fhirjson_cost(text, len, len) > MAX_JSON_COST)
        return NULL;
    return s2f_fhirjson_parse(text, len);
}

static const char *json_str(json_object *o, const char *key)
{
    return s2f_fhirjson_string(o, key);
}

/* ---- reading a context ---------------------------------------------------------------------- */

static void read_patient(json_object *patient, s2f_cast_context *ctx)
{
    copy_str(ctx->patient_id, sizeof ctx->patient_id, json_str(patient, "id"));
    json_object *ids = s2f_fhirjson_member(patient, "identifier");
    size_t n = json_object_is_type(ids, json_type_array) ? json_object_array_length(ids) : 0;
    for (size_t i = 0; i < n && ctx->n_patient < S2F_CAST_MAX_IDS; i++) {
        json_object *id = json_object_array_get_idx(ids, i);
        const char *value = json_str(id, "value");
        if (!value || strlen(value) >= S2F_CAST_ID_MAX)
            continue;
        copy_str(ctx->patient_system[ctx->n_patient], S2F_CAST_ID_MAX, json_str(id, "system"));
        copy_str(ctx->patient_value[ctx->n_patient], S2F_CAST_ID_MAX, value);
        ctx->n_patient++;
    }
}

/* The Study Instance UID an identifier holds: "urn:oid:UID" (the guide's form), or a
 * bare UID under system urn:dicom:uid. */
static const char *study_uid_of(json_object *id)
{
    const char *v = json_str(id, "value"), *sys = json_str(id, "system");
    if (!v)
        return NULL;
    if (!strncmp(v, "urn:oid:", 8))
        return v + 8;
    return sys && !strcmp(sys, STUDY_UID_SYSTEM) ? v : NULL;
}

static void read_study(json_object *study, s2f_cast_context *ctx)
{
    copy_str(ctx->study_id, sizeof ctx->study_id, json_str(study, "id"));
    json_object *ids = s2f_fhirjson_member(study, "identifier");
    size_t n = json_object_is_type(ids, json_type_array) ? json_object_array_length(ids) : 0;
    for (size_t i = 0; i < n && ctx->n_study < S2F_CAST_MAX_IDS; i++) {
        const char *uid = study_uid_of(json_object_array_get_idx(ids, i));
        if (uid && strlen(uid) < S2F_CAST_ID_MAX)
            copy_str(ctx->study_uid[ctx->n_study++], S2F_CAST_ID_MAX, uid);
    }
}

s2f_code s2f_cast_context_read(const char *body, size_t len, s2f_cast_context *ctx, s2f_error *err)
{
    memset(ctx, 0, sizeof *ctx);
    json_object *root = parse_bounded(body, len);
    json_object *array = s2f_fhirjson_member(root, "context");
    if (!json_object_is_type(root, json_type_object) || !json_object_is_type(array, json_type_array)) {
        json_object_put(root);
        return s2f_fail(err, S2F_EFORMAT, "the hub's current context is not an object with a "
                        "context array");
    }
    copy_str(ctx->type, sizeof ctx->type, json_str(root, "context.type"));
    const char *v = json_str(root, "context.versionId");
    copy_str(ctx->version, sizeof ctx->version, v ? v : json_str(root, "versionId"));
    for (size_t i = 0; i < json_object_array_length(array); i++) {
        json_object *e = json_object_array_get_idx(array, i);
        const char *key = json_str(e, "key");
        json_object *r = s2f_fhirjson_member(e, "resource");
        if (!key)
            continue;
        if (!strcmp(key, "report") && s2f_fhirjson_is(r, "DiagnosticReport"))
            copy_str(ctx->report_id, sizeof ctx->report_id, json_str(r, "id"));
        else if (!strcmp(key, "patient") && s2f_fhirjson_is(r, "Patient"))
            read_patient(r, ctx);
        else if (!strcmp(key, "study") && s2f_fhirjson_is(r, "ImagingStudy"))
            read_study(r, ctx);
    }
    json_object_put(root);
    return S2F_OK;
}

/* ---- the SR's side ---------------------------------------------------------------------------- */

s2f_code s2f_cast_subject_read(json_object *bundle, s2f_cast_subject *sub, s2f_error *err)
{
    memset(sub, 0, sizeof *sub);
    json_object *entries = s2f_fhirjson_member(bundle, "entry");
    size_t n = json_object_is_type(entries, json_type_array) ? json_object_array_length(entries) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *r = s2f_fhirjson_member(json_object_array_get_idx(entries, i), "resource");
        if (!s2f_fhirjson_is(r, "Observation"))
            continue;
        json_object *pid = s2f_fhirjson_member(s2f_fhirjson_member(r, "subject"), "identifier");
        json_object *part = s2f_fhirjson_member(r, "partOf");
        const char *value = json_str(pid, "value"), *uid = NULL;
        size_t np = json_object_is_type(part, json_type_array) ? json_object_array_length(part) : 0;
        for (size_t k = 0; k < np && !uid; k++) {
            json_object *ref = json_object_array_get_idx(part, k);
            const char *type = json_str(ref, "type");
            if (type && !strcmp(type, "ImagingStudy"))
                uid = study_uid_of(s2f_fhirjson_member(ref, "identifier"));
        }
        if (!value || !uid || strlen(value) >= S2F_CAST_ID_MAX || strlen(uid) >= S2F_CAST_ID_MAX)
            continue;
        copy_str(sub->patient_system, sizeof sub->patient_system, json_str(pid, "system"));
        copy_str(sub->patient_value, sizeof sub->patient_value, value);
        copy_str(sub->study_uid, sizeof sub->study_uid, uid);
        return S2F_OK;
    }
    return s2f_fail(err, S2F_ELOOKUP, "the SR gives no Patient ID and Study Instance UID to "
                    "match a context with");
}

int s2f_cast_matches(const s2f_cast_context *ctx, const s2f_cast_subject *sub, char *why, size_t cap)
{
    char a[96], b[96];
    if (strcmp(ctx->type, "DiagnosticReport"))
        return snprintf(why, cap, "no DiagnosticReport context is current (context.type '%s')",
                        s2f_escape_text(ctx->type, strlen(ctx->type), a, sizeof a)), 0;
    if (!ctx->report_id[0] || !ctx->patient_id[0] || !ctx->version[0])
        return snprintf(why, cap, "the current context lacks its report, patient or versionId"), 0;
    int patient = 0;
    for (size_t i = 0; i < ctx->n_patient && !patient; i++)
        patient = !strcmp(ctx->patient_value[i], sub->patient_value) &&
                  (!ctx->patient_system[i][0] || !sub->patient_system[0] ||
                   !strcmp(ctx->patient_system[i], sub->patient_system));
    s2f_escape_text(ctx->report_id, strlen(ctx->report_id), a, sizeof a);
    if (!patient)
        return snprintf(why, cap, "the open DiagnosticReport/%s is for another patient (no "
                        "identifier of its Patient is the SR's Patient ID)", a), 0;
    int study = 0;
    for (size_t i = 0; i < ctx->n_study && !study; i++)
        study = !strcmp(ctx->study_uid[i], sub->study_uid);
    if (!study)
        return snprintf(why, cap, "the open DiagnosticReport/%s is for another study (%s)", a,
                        ctx->n_study ? "its ImagingStudy has another Study Instance UID"
                                     : "its context names no ImagingStudy"), 0;
    (void)b;
    return 1;
}

/* ---- the updates Bundle --------------------------------------------------------------------- */

static int shared_type(const char *type)
{
    return type && (!strcmp(type, "ImagingSelection") || !strcmp(type, "BodyStructure") ||
                    !strcmp(type, "Device"));
}

/* The entry index of fullUrl ref, or -1. */
static long entry_of(json_object *entries, const char *ref)
{
    for (size_t i = 0; i < json_object_array_length(entries); i++) {
        const char *full = json_str(json_object_array_get_idx(entries, i), "fullUrl");
        if (full && !strcmp(full, ref))
            return (long)i;
    }
    return -1;
}

/* Marks the shared-type entries o references (every "reference" string, any depth). */
static void mark_references(json_object *o, json_object *entries, unsigned char *take, int *grew)
{
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            mark_references(json_object_array_get_idx(o, i), entries, take, grew);
        return;
    }
    if (!json_object_is_type(o, json_type_object))
        return;
    json_object_object_foreach(o, key, val) {
        if (!strcmp(key, "reference") && json_object_is_type(val, json_type_string)) {
            long i = entry_of(entries, json_object_get_string(val));
            json_object *r = i >= 0 ? s2f_fhirjson_member(json_object_array_get_idx(entries, (size_t)i), "resource") : NULL;
            if (r && !take[i] && shared_type(json_str(r, "resourceType")))
                take[i] = 1, *grew = 1;
        } else
            mark_references(val, entries, take, grew);
    }
}

/* Rewrites references to the Bundle's entries ("urn:uuid:...") to "Type/id". */
static void rewrite_references(json_object *o, json_object *entries)
{
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            rewrite_references(json_object_array_get_idx(o, i), entries);
        return;
    }
    if (!json_object_is_type(o, json_type_object))
        return;
    json_object_object_foreach(o, key, val) {
        if (strcmp(key, "reference") || !json_object_is_type(val, json_type_string)) {
            rewrite_references(val, entries);
            continue;
        }
        long i = entry_of(entries, json_object_get_string(val));
        char *lit = i >= 0 ? s2f_fhirjson_literal(s2f_fhirjson_member(json_object_array_get_idx(entries, (size_t)i), "resource")) : NULL;
        if (lit)
            json_object_set_string(val, lit);
        free(lit);
    }
}

static json_object *put_entry(json_object *resource)
{
    char *lit = s2f_fhirjson_literal(resource);
    json_object *e = json_object_new_object(), *req = json_object_new_object();
    if (!lit || !e || !req) {
        free(lit);
        json_object_put(e);
        json_object_put(req);
        return NULL;
    }
    json_object_object_add(req, "method", json_object_new_string("PUT"));
    json_object_object_add(req, "url", json_object_new_string(lit));
    free(lit);
    json_object_object_add(e, "resource", json_object_get(resource));
    json_object_object_add(e, "request", req);
    return e;
}

json_object *s2f_cast_updates(json_object *bundle, const char *bundle_id, size_t *count)
{
    json_object *entries = s2f_fhirjson_member(bundle, "entry");
    size_t n = json_object_is_type(entries, json_type_array) ? json_object_array_length(entries) : 0;
    unsigned char *take = calloc(n ? n : 1, 1);
    json_object *out = json_object_new_object(), *list = json_object_new_array();
    *count = 0;
    if (!take || !out || !list) {
        free(take);
        json_object_put(out);
        json_object_put(list);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        take[i] = s2f_fhirjson_is(s2f_fhirjson_member(json_object_array_get_idx(entries, i), "resource"), "Observation");
    for (int grew = 1; grew;) { /* what the taken ones reference, until nothing is added */
        grew = 0;
        for (size_t i = 0; i < n; i++)
            if (take[i])
                mark_references(s2f_fhirjson_member(json_object_array_get_idx(entries, i), "resource"),
                                entries, take, &grew);
    }
    for (size_t i = 0; i < n; i++)
        if (take[i])
            rewrite_references(s2f_fhirjson_member(json_object_array_get_idx(entries, i), "resource"), entries);
    json_object_object_add(out, "resourceType", json_object_new_string("Bundle"));
    json_object_object_add(out, "id", json_object_new_string(bundle_id));
    json_object_object_add(out, "type", json_object_new_string("transaction"));
    json_object_object_add(out, "entry", list);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        if (!take[i])
            continue;
        json_object *e = put_entry(s2f_fhirjson_member(json_object_array_get_idx(entries, i), "resource"));
        ok = e && json_object_array_add(list, e) == 0;
        *count += ok;
    }
    free(take);
    if (!ok) {
        json_object_put(out);
        return NULL;
    }
    return out;
}

/* ---- the session: requests -------------------------------------------------------------------- */

static s2f_code check_hub_url(const char *hub, const s2f_client_options *opt, s2f_error *err)
{
    char host[256];
    switch (s2f_http_judge_url(hub, opt->allow_http, host, sizeof host)) {
    case S2F_URL_OK:
        return S2F_OK;
    case S2F_URL_NOMEM:
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    case S2F_URL_MALFORMED:
        return s2f_fail(err, S2F_EUSAGE, "--hub: not a URL");
    case S2F_URL_CREDENTIALS:
        return s2f_fail(err, S2F_EUSAGE, "--hub: credentials in the URL are refused (use "
                        "--token-file)");
    case S2F_URL_SCHEME:
        return s2f_fail(err, S2F_EUSAGE, "--hub: only http and https URLs are supported");
    case S2F_URL_PLAIN_REMOTE:
        break;
    }
    return s2f_fail(err, S2F_EUSAGE, "--hub: plain http to %s, which is not loopback, would "
                    "send the token unencrypted; use https, or --allow-http", host);
}

/* One line of a refusal: the hub's OperationOutcome text, or its body's start. */
static s2f_code refused(const s2f_http_response *r, s2f_code code, const char *what, s2f_error *err)
{
    char text[300];
    s2f_client_answer_text(r->body, r->len, text, sizeof text);
    return s2f_fail(err, code, "the hub refused %s: HTTP %ld%s%s", what, r->status, text[0] ? ": " : "",
                    text);
}

/* A request to the hub with the deadline: S2F_OK with any answer; S2F_EUNREACHABLE when none
 * came, or the hub kept answering 5xx/429 after the retries. */
static s2f_code hub_request(s2f_cast *c, const char *method, const char *url, const char *type,
                            const char *body, s2f_http_response *r, s2f_error *err)
{
    s2f_code rc = s2f_http_set_content_type(c->http, type, err);
    if (!rc)
        rc = s2f_http_request(c->http, method, url, body, body ? strlen(body) : 0, MAX_ANSWER, r, err);
    if (!rc && s2f_http_retryable(r->status)) {
        char text[300];
        s2f_client_answer_text(r->body, r->len, text, sizeof text);
        return s2f_fail(err, S2F_EUNREACHABLE, "the hub kept failing: HTTP %ld after %u attempt%s%s%s",
                        r->status, r->attempts, r->attempts > 1 ? "s" : "", text[0] ? ": " : "", text);
    }
    return rc;
}

static char *topic_url(const s2f_cast *c)
{
    size_t cap = strlen(c->hub) + 3 * strlen(c->topic) + 2;
    char *u = malloc(cap), enc[3 * MAX_TOPIC + 1] = "";
    if (!u)
        return NULL;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)c->topic; *p; p++)
        n += (size_t)(strchr("-._~", *p) || (*p >= '0' && *p <= '9') || ((*p | 32) >= 'a' && (*p | 32) <= 'z')
                          ? snprintf(enc + n, sizeof enc - n, "%c", *p)
                          : snprintf(enc + n, sizeof enc - n, "%%%02X", *p));
    snprintf(u, cap, "%s%s%s", c->hub, c->hub[strlen(c->hub) - 1] == '/' ? "" : "/", enc);
    return u;
}

static s2f_code get_context(s2f_cast *c, s2f_cast_context *ctx, s2f_error *err)
{
    s2f_http_response r;
    char *url = topic_url(c);
    if (!url)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    s2f_code rc = hub_request(c, "GET", url, "application/json", NULL, &r, err);
    free(url);
    if (rc)
        return rc;
    if (r.status < 200 || r.status > 299)
        return refused(&r, S2F_EREJECTED, "Get Current Context", err);
    return s2f_cast_context_read(r.body, r.len, ctx, err);
}

/* ---- the session: the websocket channel ------------------------------------------------------- */

/* What one message from the hub was. */
typedef struct hub_message {
    char mode[32];          /* a confirmation or denial: hub.mode */
    char event[64];         /* a notification: hub.event */
    char id[128];           /* its id */
    char version[S2F_CAST_ID_MAX], prior[S2F_CAST_ID_MAX];
    char syncerror_of[128]; /* a SyncError: the event id it names */
    char reason[160];
} hub_message;

/* The event id a SyncError's OperationOutcome names (coding system .../eventid). */
static void syncerror_event(json_object *context, hub_message *m)
{
    size_t n = json_object_is_type(context, json_type_array) ? json_object_array_length(context) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *issues = s2f_fhirjson_member(s2f_fhirjson_member(json_object_array_get_idx(context, i), "resource"), "issue");
        size_t ni = json_object_is_type(issues, json_type_array) ? json_object_array_length(issues) : 0;
        for (size_t k = 0; k < ni; k++) {
            json_object *issue = json_object_array_get_idx(issues, k);
            json_object *codings = s2f_fhirjson_member(s2f_fhirjson_member(issue, "details"), "coding");
            size_t nc = json_object_is_type(codings, json_type_array) ? json_object_array_length(codings) : 0;
            const char *diag = json_str(issue, "diagnostics");
            if (diag)
                s2f_escape_text(diag, strlen(diag), m->reason, sizeof m->reason);
            for (size_t j = 0; j < nc; j++) {
                json_object *cd = json_object_array_get_idx(codings, j);
                const char *sys = json_str(cd, "system"), *code = json_str(cd, "code");
                size_t sl = sys ? strlen(sys) : 0;
                if (code && sl >= 8 && !strcmp(sys + sl - 8, "/eventid"))
                    copy_str(m->syncerror_of, sizeof m->syncerror_of, code);
            }
        }
    }
}

/* Reads msg; answers a notification with status 200 (2-5). */
static s2f_code take_message(s2f_cast *c, const char *msg, size_t len, hub_message *m, s2f_error *err)
{
    memset(m, 0, sizeof *m);
    json_object *root = parse_bounded(msg, len);
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return s2f_fail(err, S2F_EFORMAT, "the hub sent a websocket message that is not a JSON object");
    }
    copy_str(m->mode, sizeof m->mode, json_str(root, "hub.mode"));
    const char *reason = json_str(root, "hub.reason");
    if (reason)
        s2f_escape_text(reason, strlen(reason), m->reason, sizeof m->reason);
    json_object *event = s2f_fhirjson_member(root, "event");
    const char *id = json_str(root, "id");
    s2f_code rc = S2F_OK;
    if (event && id && strlen(id) < sizeof m->id) {
        copy_str(m->id, sizeof m->id, id);
        copy_str(m->event, sizeof m->event, json_str(event, "hub.event"));
        copy_str(m->version, sizeof m->version, json_str(event, "context.versionId"));
        copy_str(m->prior, sizeof m->prior, json_str(event, "context.priorVersionId"));
        if (!strcasecmp(m->event, "SyncError"))
            syncerror_event(s2f_fhirjson_member(event, "context"), m);
        json_object *answer = json_object_new_object();
        json_object_object_add(answer, "id", json_object_new_string(id));
        json_object_object_add(answer, "status", json_object_new_string("200"));
        const char *text = json_object_to_json_string_ext(answer, JSON_C_TO_STRING_PLAIN);
        rc = text ? s2f_ws_send_text(c->ws, text, strlen(text), err) : s2f_fail(err, S2F_ENOMEM, "out of memory");
        json_object_put(answer);
    }
    json_object_put(root);
    return rc;
}

/* The next message before deadline: S2F_OK, or S2F_EUNREACHABLE with *timed_out. */
static s2f_code next_message(s2f_cast *c, double deadline, hub_message *m, int *timed_out, s2f_error *err)
{
    const char *msg;
    size_t len;
    s2f_code rc = s2f_ws_receive(c->ws, deadline, &msg, &len, timed_out, err);
    if (rc)
        return rc;
    rc = take_message(c, msg, len, m, err);
    if (!rc && !strcmp(m->mode, "denied"))
        return s2f_fail(err, S2F_EREJECTED, "the hub ended the subscription: %s", m->reason);
    return rc;
}

static s2f_code subscribe(s2f_cast *c, const char *mode, s2f_error *err)
{
    char body[4096] = "";
    if (form_append(body, sizeof body, "hub.channel.type", "websocket") ||
        form_append(body, sizeof body, "hub.mode", mode) ||
        form_append(body, sizeof body, "hub.topic", c->topic) ||
        (!strcmp(mode, "subscribe") && (form_append(body, sizeof body, "hub.events", EVENTS) ||
                                        form_append(body, sizeof body, "hub.lease_seconds", "3600") ||
                                        form_append(body, sizeof body, "subscriber.name", c->name))) ||
        (c->endpoint && form_append(body, sizeof body, "hub.channel.endpoint", c->endpoint)))
        return s2f_fail(err, S2F_EUSAGE, "the topic or subscriber name is too long");
    s2f_http_response r;
    s2f_code rc = hub_request(c, "POST", c->hub, "application/x-www-form-urlencoded", body, &r, err);
    if (rc)
        return rc;
    if (r.status < 200 || r.status > 299)
        return refused(&r, S2F_EREJECTED, mode[0] == 's' ? "the subscription" : "the unsubscription", err);
    if (c->endpoint)
        return S2F_OK;
    json_object *root = parse_bounded(r.body, r.len);
    const char *ep = json_str(root, "hub.channel.endpoint");
    if (ep && strlen(ep) < 4096)
        c->endpoint = strdup(ep);
    json_object_put(root);
    if (!c->endpoint)
        return s2f_fail(err, ep ? S2F_ENOMEM : S2F_EFORMAT, "the hub's subscription answer names "
                        "no hub.channel.endpoint");
    return S2F_OK;
}

/* Connects the channel and waits for the hub's confirmation. */
static s2f_code open_channel(s2f_cast *c, const s2f_client_options *o, s2f_error *err)
{
    s2f_ws_options wo = {.connect_timeout_ms = (o->connect_timeout > 0 ? o->connect_timeout : 10) * 1000,
                         .max_message = MAX_ANSWER, .cacert = o->cacert, .cert = o->cert,
                         .key = o->key, .insecure = o->insecure};
    if (!(c->ws = s2f_ws_connect(c->endpoint, &wo, err)))
        return err->code;
    double deadline = s2f_http_now() + (double)(o->timeout > 0 ? o->timeout : 30);
    for (;;) {
        hub_message m;
        int timed_out = 0;
        s2f_code rc = next_message(c, deadline, &m, &timed_out, err);
        if (rc)
            return timed_out ? s2f_fail(err, S2F_EUNREACHABLE, "the hub did not confirm the "
                                        "subscription in time") : rc;
        if (!strcmp(m.mode, "subscribe"))
            return S2F_OK;
    }
}

/* s2f_cast_options as s2f_cast_open uses them: the client options copied in, each struct
 * read as far as the caller's reaches (issue 16: the public struct points to the client's,
 * so both can grow). */
typedef struct cast_opts {
    const char *hub, *topic, *subscriber_name;
    long wait;
    s2f_client_options client;
} cast_opts;

static void read_cast_options(const s2f_cast_options *given, cast_opts *o)
{
    s2f_cast_options full;
    s2f_sized_read(&full, sizeof full, given, sizeof full); /* new in 0.2: no 0.1.0 layout */
    o->hub = full.hub;
    o->topic = full.topic;
    o->subscriber_name = full.subscriber_name;
    o->wait = full.wait;
    s2f_sized_read(&o->client, sizeof o->client, full.client, S2F_V01_CLIENT_OPTIONS_SIZE);
}

s2f_cast *s2f_cast_open(const s2f_cast_options *given, s2f_error *err)
{
    cast_opts full;
    const cast_opts *opt = &full;
    read_cast_options(given, &full);
    if (!given || !opt->hub || !opt->topic || !opt->topic[0] || strlen(opt->topic) > MAX_TOPIC)
        return s2f_fail(err, S2F_EUSAGE, "a hub URL and a topic (at most %d bytes) are needed",
                        MAX_TOPIC), NULL;
    if (check_hub_url(opt->hub, &opt->client, err))
        return NULL;
    s2f_cast *c = calloc(1, sizeof *c);
    if (!c || !(c->hub = strdup(opt->hub)) || !(c->topic = strdup(opt->topic)) ||
        !(c->name = strdup(opt->subscriber_name ? opt->subscriber_name : "sr2fhir")) ||
        (opt->client.timezone && !(c->timezone = strdup(opt->client.timezone)))) {
        s2f_cast_close(c);
        return s2f_fail(err, S2F_ENOMEM, "out of memory"), NULL;
    }
    if ((opt->client.cacert && !(c->cacert = strdup(opt->client.cacert))) ||
        (opt->client.cert && !(c->cert = strdup(opt->client.cert))) ||
        (opt->client.key && !(c->key = strdup(opt->client.key)))) {
        s2f_cast_close(c);
        return s2f_fail(err, S2F_ENOMEM, "out of memory"), NULL;
    }
    c->ws_opt.connect_timeout = opt->client.connect_timeout;
    c->ws_opt.timeout = opt->client.timeout;
    c->ws_opt.insecure = opt->client.insecure;
    c->ws_opt.cacert = c->cacert;
    c->ws_opt.cert = c->cert;
    c->ws_opt.key = c->key;
    c->wait = opt->wait > 0 ? opt->wait : 0;
    c->deadline_s = opt->client.deadline == 0 ? S2F_DEFAULT_DEADLINE : opt->client.deadline;
    c->r4 = opt->client.version == S2F_FHIR_R4;
    if (!(c->http = s2f_http_new(&opt->client, err))) {
        s2f_cast_close(c);
        return NULL;
    }
    s2f_http_set_deadline(c->http, c->deadline_s);
    if (subscribe(c, "subscribe", err) || open_channel(c, &c->ws_opt, err)) {
        s2f_cast_close(c);
        return NULL;
    }
    return c;
}

void s2f_cast_close(s2f_cast *c)
{
    if (!c)
        return;
    if (c->ws && c->endpoint) {
        s2f_error ignored = {0};
        s2f_http_set_deadline(c->http, 10);
        subscribe(c, "unsubscribe", &ignored);
    }
    s2f_ws_close(c->ws, 1000, 2000);
    s2f_http_free(c->http);
    free(c->hub);
    free(c->topic);
    free(c->name);
    free(c->timezone);
    free(c->endpoint);
    free(c->cacert);
    free(c->cert);
    free(c->key);
    free(c);
}

/* Answers what the hub sent since the last SR: S2F_OK when the channel is still open. */
static s2f_code drain(s2f_cast *c, s2f_error *err)
{
    if (!c->ws)
        return s2f_fail(err, S2F_EUNREACHABLE, "no channel");
    for (;;) {
        hub_message m;
        int timed_out = 0;
        s2f_code rc = next_message(c, s2f_http_now(), &m, &timed_out, err);
        if (rc)
            return timed_out ? S2F_OK : rc;
    }
}

/* A subscription the hub ended meanwhile (lease over, a notification not answered in time
 * while no SR was being shared, the hub restarted) is made again. */
static s2f_code keep_channel(s2f_cast *c, s2f_error *err)
{
    s2f_error why = {0};
    if (drain(c, &why) == S2F_OK)
        return S2F_OK;
    s2f_ws_close(c->ws, 1000, 1000);
    c->ws = NULL;
    free(c->endpoint);
    c->endpoint = NULL;
    s2f_code rc = subscribe(c, "subscribe", err);
    return rc ? rc : open_channel(c, &c->ws_opt, err);
}

/* ---- sharing one SR ------------------------------------------------------------------------ */

/* The SR converted (transaction form), parsed. */
static s2f_code convert_doc(s2f_cast *c, const s2f_doc *doc, const char *patient_ref,
                            const char *study_ref, json_object **out, s2f_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    s2f_convert_options o;
    s2f_convert_options_init(&o);
    o.fhir_version = c->r4 ? S2F_FHIR_R4 : S2F_FHIR_R5;
    o.timezone = c->timezone;
    o.patient_ref = patient_ref;
    o.imaging_study_ref = study_ref;
    s2f_code rc = s2f_convert(doc, &o, f, NULL, err);
    if (fclose(f) != 0 && !rc)
        rc = s2f_fail(err, S2F_ENOMEM, "out of memory");
    if (!rc && !(*out = s2f_fhirjson_parse(buf, len)))
        rc = s2f_fail(err, S2F_EINTERNAL, "the converted Bundle does not parse");
    free(buf);
    return rc;
}

/* Waits (until end) for a matching context: the current context read again after each
 * notification. S2F_ELOOKUP with why when none opened. */
static s2f_code find_context(s2f_cast *c, const s2f_cast_subject *sub, s2f_cast_context *ctx,
                             s2f_error *err)
{
    double end = s2f_http_now() + (double)c->wait;
    char why[400];
    for (;;) {
        s2f_code rc = get_context(c, ctx, err);
        if (rc)
            return rc;
        if (s2f_cast_matches(ctx, sub, why, sizeof why))
            return S2F_OK;
        hub_message m;
        int timed_out = 0;
        while (s2f_http_now() < end) {
            rc = next_message(c, end, &m, &timed_out, err);
            if (rc && !timed_out)
                return rc;
            if (!rc && m.event[0])
                break; /* something changed: read the context again */
        }
        if (s2f_http_now() >= end)
            return s2f_fail(err, S2F_ELOOKUP, "no matching context on topic '%s': %s%s", c->topic, why,
                            c->wait ? " (waited --wait seconds)" : "");
    }
}

static char *update_event(const s2f_cast *c, const s2f_cast_context *ctx, json_object *updates,
                          const char *event_id)
{
    char now[32], ref[S2F_CAST_ID_MAX + 32];
    utc_now(now);
    json_object *root = json_object_new_object(), *ev = json_object_new_object(), *arr = json_object_new_array();
    json_object *report = json_object_new_object(), *rref = json_object_new_object();
    json_object *patient = json_object_new_object(), *pref = json_object_new_object();
    json_object *upd = json_object_new_object();
    json_object_object_add(root, "timestamp", json_object_new_string(now));
    json_object_object_add(root, "id", json_object_new_string(event_id));
    json_object_object_add(root, "event", ev);
    json_object_object_add(ev, "hub.topic", json_object_new_string(c->topic));
    json_object_object_add(ev, "hub.event", json_object_new_string("DiagnosticReport-update"));
    json_object_object_add(ev, "context.versionId", json_object_new_string(ctx->version));
    json_object_object_add(ev, "context", arr);
    snprintf(ref, sizeof ref, "DiagnosticReport/%s", ctx->report_id);
    json_object_object_add(rref, "reference", json_object_new_string(ref));
    json_object_object_add(report, "key", json_object_new_string("report"));
    json_object_object_add(report, "reference", rref);
    snprintf(ref, sizeof ref, "Patient/%s", ctx->patient_id);
    json_object_object_add(pref, "reference", json_object_new_string(ref));
    json_object_object_add(patient, "key", json_object_new_string("patient"));
    json_object_object_add(patient, "reference", pref);
    json_object_object_add(upd, "key", json_object_new_string("updates"));
    json_object_object_add(upd, "resource", json_object_get(updates));
    json_object_array_add(arr, report);
    json_object_array_add(arr, patient);
    json_object_array_add(arr, upd);
    const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *copy = text ? strdup(text) : NULL;
    json_object_put(root);
    return copy;
}

/* After a 2xx: waits for the hub to forward the update back (success: the new version) or
 * to reject it with a SyncError (*stale = 1). */
static s2f_code await_confirmation(s2f_cast *c, const char *event_id, s2f_cast_result *res,
                                   int *stale, s2f_error *err)
{
    double deadline = s2f_http_now() + CONFIRM_SECONDS;
    *stale = 0;
    for (;;) {
        hub_message m;
        int timed_out = 0;
        s2f_code rc = next_message(c, deadline, &m, &timed_out, err);
        if (rc)
            return timed_out ? s2f_fail(err, S2F_EUNREACHABLE, "the hub accepted the update but "
                                        "neither forwarded it nor refused it within %.0f s",
                                        CONFIRM_SECONDS) : rc;
        if (!strcmp(m.id, event_id) && !strcasecmp(m.event, "DiagnosticReport-update")) {
            copy_str(res->version, sizeof res->version, m.version);
            return S2F_OK;
        }
        if (!strcasecmp(m.event, "SyncError") && !strcmp(m.syncerror_of, event_id)) {
            *stale = 1;
            return s2f_fail(err, S2F_EREJECTED, "the hub rejected the update with a SyncError: %s",
                            m.reason);
        }
    }
}

/* Publishes one update for ctx: S2F_OK, or *stale = 1 when refused for its version. */
static s2f_code publish(s2f_cast *c, const s2f_cast_context *ctx, json_object *updates,
                        s2f_cast_result *res, int *stale, s2f_error *err)
{
    *stale = 0;
    if (random_uuid(res->event_id))
        return s2f_fail(err, S2F_EINTERNAL, "no random bytes for the event id");
    char *event = update_event(c, ctx, updates, res->event_id);
    if (!event)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    s2f_http_response r;
    copy_str(res->prior_version, sizeof res->prior_version, ctx->version);
    s2f_code rc = hub_request(c, "POST", c->hub, "application/json", event, &r, err);
    free(event);
    res->http_status = rc ? 0 : r.status;
    if (rc)
        return rc;
    if (r.status == 409) {
        *stale = 1;
        return refused(&r, S2F_EREJECTED, "the update", err);
    }
    if (r.status < 200 || r.status > 299)
        return refused(&r, S2F_EREJECTED, "the update", err);
    return await_confirmation(c, res->event_id, res, stale, err);
}

static void fill_context(s2f_cast_result *res, const s2f_cast_context *ctx)
{
    snprintf(res->report, sizeof res->report, "DiagnosticReport/%.100s", ctx->report_id);
    snprintf(res->patient, sizeof res->patient, "Patient/%.100s", ctx->patient_id);
}

/* Converts with literal references to the context's Patient and ImagingStudy and builds the
 * updates Bundle. */
static s2f_code build_updates(s2f_cast *c, const s2f_doc *doc, const s2f_cast_context *ctx,
                              json_object **updates, size_t *count, s2f_error *err)
{
    char pref[S2F_CAST_ID_MAX + 16], sref[S2F_CAST_ID_MAX + 16], id[37];
    snprintf(pref, sizeof pref, "Patient/%s", ctx->patient_id);
    snprintf(sref, sizeof sref, "ImagingStudy/%s", ctx->study_id);
    json_object *bundle = NULL;
    s2f_code rc = convert_doc(c, doc, pref, ctx->study_id[0] ? sref : NULL, &bundle, err);
    if (rc)
        return rc;
    if (random_uuid(id))
        rc = s2f_fail(err, S2F_EINTERNAL, "no random bytes for the Bundle id");
    else if (!(*updates = s2f_cast_updates(bundle, id, count)))
        rc = s2f_fail(err, S2F_ENOMEM, "out of memory");
    json_object_put(bundle);
    return rc;
}

/* Publishes, re-reading the context after each stale refusal and retrying once per new
 * version. */
static s2f_code share_matched(s2f_cast *c, const s2f_doc *doc, const s2f_cast_subject *sub,
                              s2f_cast_context *ctx, s2f_cast_result *res, s2f_error *err)
{
    json_object *updates = NULL;
    s2f_code rc = build_updates(c, doc, ctx, &updates, &res->resources, err);
    char why[400];
    while (!rc) {
        int stale = 0;
        fill_context(res, ctx);
        rc = publish(c, ctx, updates, res, &stale, err);
        if (!rc || !stale || res->stale >= MAX_STALE)
            break;
        res->stale++;
        char tried[S2F_CAST_ID_MAX];
        copy_str(tried, sizeof tried, ctx->version);
        s2f_error first = *err;
        if ((rc = get_context(c, ctx, err)))
            break;
        if (!s2f_cast_matches(ctx, sub, why, sizeof why)) {
            rc = s2f_fail(err, S2F_ELOOKUP, "the context changed before the update was taken: %s", why);
            break;
        }
        if (!strcmp(tried, ctx->version)) { /* refused, but not for a stale version */
            *err = first;
            rc = first.code;
            break;
        }
        rc = S2F_OK;
    }
    json_object_put(updates);
    return rc;
}

static s2f_code share(s2f_cast *c, const s2f_doc *doc, s2f_cast_result *res, s2f_error *err)
{
    json_object *bundle = NULL;
    s2f_cast_subject sub;
    s2f_cast_context *ctx = malloc(sizeof *ctx);
    if (!ctx)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    s2f_http_set_deadline(c->http, c->deadline_s > 0 ? c->deadline_s + c->wait : 0);
    s2f_code rc = keep_channel(c, err);
    if (!rc)
        rc = convert_doc(c, doc, NULL, NULL, &bundle, err);
    if (!rc)
        rc = s2f_cast_subject_read(bundle, &sub, err);
    json_object_put(bundle);
    if (!rc)
        rc = find_context(c, &sub, ctx, err);
    if (!rc)
        rc = share_matched(c, doc, &sub, ctx, res, err);
    free(ctx);
    return rc;
}

s2f_code s2f_cast_share(s2f_cast *c, const s2f_doc *doc, s2f_cast_result *res, s2f_error *err)
{
    s2f_cast_result full;
    s2f_cast_result_init(&full);
    s2f_code rc = share(c, doc, &full, err);
    if (res)
        s2f_sized_write(res, &full, sizeof full, sizeof full);
    return rc;
}
