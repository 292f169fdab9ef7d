/*
 * client.c - the FHIR REST client of delivery (see client.h): base URL policy, the
 * server's FHIR version from its CapabilityStatement, searches by identifier (M4-M6),
 * transactions, and OperationOutcome text for messages. Answers are parsed with json-c.
 *
 * A server's answer is untrusted input (issue 9 defect 6): each kind has a size cap (the
 * version and the searches need little) and the memory json-c would take for it is
 * estimated before parsing (s2f_fhirjson_cost) and bounded; ids and locations are used
 * only when they are valid FHIR ids; server text in messages is escaped (defect 8).
 */
#include "deliver/client.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/id.h"
#include "deliver/fhirjson.h"
#include "deliver/http.h"
#include "util/error.h"
#include "util/escape.h"
#include "util/sized.h"

#define OUTCOME_MAX 400   /* characters of server text kept in a message */

/* Answers (issue 9 defect 6, docs/send.md "Limits"): bytes accepted, and the memory their
 * parse may take. A transaction-response may take more per entry sent. */
#define SMALL_ANSWER_BYTES (8u << 20)       /* /metadata, searches */
#define SMALL_ANSWER_MEMORY (64u << 20)
#define ENTRY_ANSWER_MEMORY (16u << 10)     /* per entry of a transaction */
#define MAX_IDENTIFIER 64                   /* LO: Patient ID; SH Accession Number is 16 */
#define MAX_SEARCH_URL 8192                 /* the path and query of a search */

struct s2f_client {
    char *base;
    s2f_http *http;
    s2f_fhir_version version;
    int require_existing;
    size_t max_entries;      /* 0: no limit */
    long deadline;           /* seconds per SR (issue 9 defect 10); 0: none */
    char *timezone;
    int diagnostic_report;   /* issue 15: a DiagnosticReport per SR */
};

const char *s2f_client_base(const s2f_client *c) { return c->base; }
int s2f_client_require_existing(const s2f_client *c) { return c->require_existing; }
size_t s2f_client_max_entries(const s2f_client *c) { return c->max_entries; }
const char *s2f_client_timezone(const s2f_client *c) { return c->timezone; }
int s2f_client_diagnostic_report(const s2f_client *c) { return c->diagnostic_report; }

/* ---- base URL policy ----------------------------------------------------------------------- */

/* Refuses what the policy forbids (deliver/http.c s2f_http_judge_url): other schemes,
 * credentials in the URL, plain HTTP to a host that is not loopback (unless allowed). */
static s2f_code check_base(const char *base, const s2f_client_options *opt, s2f_error *err)
{
    char host[256];
    switch (s2f_http_judge_url(base, opt->allow_http, host, sizeof host)) {
    case S2F_URL_OK:
        return S2F_OK;
    case S2F_URL_NOMEM:
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    case S2F_URL_MALFORMED:
        return s2f_fail(err, S2F_EUSAGE, "--server: not a URL: %s", base);
    case S2F_URL_CREDENTIALS:
        return s2f_fail(err, S2F_EUSAGE, "--server: credentials in the URL are refused (use "
                        "--user, --token-env or --token-file)");
    case S2F_URL_SCHEME:
        return s2f_fail(err, S2F_EUSAGE, "--server: only http and https URLs are supported");
    case S2F_URL_PLAIN_REMOTE:
        break;
    }
    return s2f_fail(err, S2F_EUSAGE, "--server: plain http to %s would send the reports and "
                    "any credentials unencrypted; use https, or --allow-http", host);
}

s2f_client *s2f_client_new(const char *base, const s2f_client_options *options, s2f_error *err)
{
    s2f_client_options full; /* as far as the caller's struct reaches (issue 16) */
    s2f_sized_read(&full, sizeof full, options, S2F_V01_CLIENT_OPTIONS_SIZE);
    const s2f_client_options *opt = &full;
    if (!base || !*base)
        return s2f_fail(err, S2F_EUSAGE, "no server URL"), NULL;
    if (check_base(base, opt, err))
        return NULL;
    s2f_client *c = calloc(1, sizeof *c);
    if (!c || !(c->base = strdup(base)) ||
        (opt->timezone && !(c->timezone = strdup(opt->timezone)))) {
        s2f_client_free(c);
        return s2f_fail(err, S2F_ENOMEM, "out of memory"), NULL;
    }
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    c->version = opt->version;
    c->require_existing = opt->require_existing;
    c->diagnostic_report = opt->diagnostic_report;
    c->deadline = opt->deadline == 0 ? S2F_DEFAULT_DEADLINE : opt->deadline < 0 ? 0 : opt->deadline;
    c->max_entries = opt->max_entries == 0 ? 50 : opt->max_entries < 0 ? 0 : (size_t)opt->max_entries;
    if (!(c->http = s2f_http_new(opt, err))) {
        s2f_client_free(c);
        return NULL;
    }
    return c;
}

void s2f_client_free(s2f_client *c)
{
    if (!c)
        return;
    s2f_http_free(c->http);
    free(c->base);
    free(c->timezone);
    free(c);
}

/* ---- answers ------------------------------------------------------------------------------- */

/* Appends s to buf (size cap) with control characters escaped (defect 8). */
static void append_clean(char *buf, size_t cap, const char *s)
{
    size_t n = strlen(buf);
    if (n + 1 < cap)
        s2f_escape_text(s, strlen(s), buf + n, cap - n);
}

/* 1 when ref is "Type/id" with a resource type's name and a valid id. */
static int valid_reference(const char *ref)
{
    const char *slash = strchr(ref, '/');
    if (!slash || slash == ref || slash - ref > 64 || !(ref[0] >= 'A' && ref[0] <= 'Z'))
        return 0;
    for (const char *p = ref; p < slash; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
            return 0;
    return s2f_fhir_id_valid(slash + 1, strlen(slash + 1));
}

/* The JSON of an answer when the memory its parse takes stays within max_memory; else
 * NULL and err (S2F_ELIMIT). A text that is not JSON parses as NULL without error. */
static s2f_code parse_answer(const char *body, size_t len, size_t max_memory, const char *what,
                             json_object **o, s2f_error *err)
{
    *o = NULL;
    size_t cost = s2f_fhirjson_cost(body, len, max_memory);
    if (cost > max_memory)
        return s2f_fail(err, S2F_ELIMIT, "%s: the answer (%zu bytes) has more JSON values than "
                        "the %zu MiB accepted for it would hold (a hostile or broken server?)",
                        what, len, max_memory >> 20);
    *o = s2f_fhirjson_parse(body, len);
    return S2F_OK;
}

/* The issues of an OperationOutcome as "severity: text [where]; ..." (errors first). */
static void outcome_text(json_object *oo, char *buf, size_t cap)
{
    json_object *issues = s2f_fhirjson_member(oo, "issue");
    size_t n = issues && json_object_is_type(issues, json_type_array) ? json_object_array_length(issues) : 0;
    buf[0] = '\0';
    for (int pass = 0; pass < 2 && !buf[0]; pass++) {
        for (size_t i = 0; i < n; i++) {
            json_object *is = json_object_array_get_idx(issues, i);
            const char *sev = s2f_fhirjson_string(is, "severity");
            int serious = sev && (!strcmp(sev, "error") || !strcmp(sev, "fatal"));
            if (pass == 0 && !serious)
                continue;
            const char *text = s2f_fhirjson_string(s2f_fhirjson_member(is, "details"), "text");
            const char *diag = s2f_fhirjson_string(is, "diagnostics");
            json_object *expr = s2f_fhirjson_member(is, "expression");
            const char *where = expr && json_object_is_type(expr, json_type_array)
                                    ? json_object_get_string(json_object_array_get_idx(expr, 0)) : NULL;
            if (buf[0])
                append_clean(buf, cap, "; ");
            append_clean(buf, cap, sev ? sev : "issue");
            append_clean(buf, cap, ": ");
            append_clean(buf, cap, text ? text : diag ? diag : "(no text)");
            if (text && diag && strcmp(text, diag)) {
                append_clean(buf, cap, " (");
                append_clean(buf, cap, diag);
                append_clean(buf, cap, ")");
            }
            if (where) {
                append_clean(buf, cap, " at ");
                append_clean(buf, cap, where);
            }
        }
    }
}

void s2f_client_answer_text(const char *body, size_t len, char *buf, size_t cap)
{
    json_object *o = NULL;
    s2f_error ignored;
    parse_answer(body, len, SMALL_ANSWER_MEMORY, "", &o, &ignored); /* too big: its start */
    buf[0] = '\0';
    if (s2f_fhirjson_is(o, "OperationOutcome"))
        outcome_text(o, buf, cap);
    else if (s2f_fhirjson_is(o, "Bundle"))  /* a failed transaction may wrap it in an entry */
        snprintf(buf, cap, "a Bundle instead of an OperationOutcome");
    else if (len) {
        char head[201];
        size_t n = len < 200 ? len : 200;
        memcpy(head, body, n);
        head[n] = '\0';
        append_clean(buf, cap, head);
    }
    json_object_put(o);
}

/* The failure for an answer that is not 2xx: rejected (4xx) or unreachable (429/5xx after
 * every retry), with the server's text. */
static s2f_code failed_answer(const char *what, const s2f_http_response *r, s2f_error *err)
{
    char text[OUTCOME_MAX];
    s2f_client_answer_text(r->body, r->len, text, sizeof text);
    if (s2f_http_retryable(r->status))
        return s2f_fail(err, S2F_EUNREACHABLE, "%s: the server kept failing: HTTP %ld%s%s "
                        "(%u attempt%s over %.2f s)", what, r->status, text[0] ? ": " : "", text,
                        r->attempts, r->attempts > 1 ? "s" : "", r->seconds);
    return s2f_fail(err, S2F_EREJECTED, "%s: refused by the server: HTTP %ld%s%s%s", what,
                    r->status, r->status == 401 || r->status == 403 ? " (check the credentials)" : "",
                    text[0] ? ": " : "", text);
}

/* GETs base/path; S2F_OK with a 2xx answer in *r (valid until the next request). */
static s2f_code get_answer(s2f_client *c, const char *path, const char *what, s2f_http_response *r,
                           s2f_send_result *res, s2f_error *err)
{
    char *url = malloc(strlen(c->base) + strlen(path) + 2);
    if (!url)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    sprintf(url, "%s/%s", c->base, path);
    s2f_error why;
    s2f_code rc = s2f_http_request(c->http, "GET", url, NULL, 0, SMALL_ANSWER_BYTES, r, &why);
    free(url);
    if (res) {
        res->attempts = r->attempts;
        res->http_status = r->status;
        res->retry_after = r->retry_after;
    }
    if (rc == S2F_EUNREACHABLE)
        return s2f_fail(err, rc, "%s: cannot reach %s: %s", what, c->base, why.message);
    if (rc)
        return s2f_fail(err, rc, "%s: %s", what, why.message);
    if (r->status < 200 || r->status > 299)
        return failed_answer(what, r, err);
    return S2F_OK;
}

/* ---- version (M25) ------------------------------------------------------------------------- */

s2f_code s2f_client_version(s2f_client *c, s2f_fhir_version *version, s2f_error *err)
{
    s2f_client_begin(c);
    return s2f_client_settle_version(c, version, NULL, err);
}

s2f_code s2f_client_answer_version(const char *body, size_t len, s2f_fhir_version *version, s2f_error *err)
{
    json_object *cap;
    s2f_code rc = parse_answer(body, len, SMALL_ANSWER_MEMORY, "reading the server's "
                               "CapabilityStatement", &cap, err);
    if (rc)
        return rc;
    const char *v = s2f_fhirjson_is(cap, "CapabilityStatement") ? s2f_fhirjson_string(cap, "fhirVersion") : NULL;
    char text[64];
    if (!v)
        rc = s2f_fail(err, S2F_EREJECTED, "/metadata is not a CapabilityStatement with a "
                      "fhirVersion (use --fhir-version R5|R4)");
    else if (v[0] == '5' && v[1] == '.')
        *version = S2F_FHIR_R5;
    else if (v[0] == '4' && v[1] == '.')
        *version = S2F_FHIR_R4; /* 4.0.1 and R4B's 4.3.0 take the R4 form */
    else
        rc = s2f_fail(err, S2F_EUNSUPPORTED, "the server speaks FHIR %s; sr2fhir sends R5 or R4",
                      s2f_escape_text(v, strlen(v), text, 24));
    json_object_put(cap);
    return rc;
}

s2f_code s2f_client_settle_version(s2f_client *c, s2f_fhir_version *version, s2f_send_result *res,
                                   s2f_error *err)
{
    if (c->version == S2F_FHIR_AUTO) {
        s2f_http_response r;
        s2f_fhir_version v = S2F_FHIR_AUTO;
        s2f_code rc = get_answer(c, "metadata", "reading the server's CapabilityStatement", &r, res, err);
        if (!rc)
            rc = s2f_client_answer_version(r.body, r.len, &v, err);
        if (rc)
            return rc;
        c->version = v;
    }
    *version = c->version;
    return S2F_OK;
}

/* ---- searches (M4-M6) ---------------------------------------------------------------------- */

/* A token search value: FHIR escapes \ | , $ with a backslash (Search "Escaping"). */
static void put_token_part(char *out, size_t *n, const char *s)
{
    for (; *s; s++) {
        if (strchr("\\|,$", *s))
            out[(*n)++] = '\\';
        out[(*n)++] = *s;
    }
}

/* Refuses identifiers no search should carry (issue 9 defect 7: a 10 MB Patient ID made the
 * URL unbuildable and the run took the server for unreachable): that SR's own error. */
static s2f_code check_identifier(const char *type, const char *system, const char *value,
                                 s2f_error *err)
{
    size_t n = strlen(value), ns = system ? strlen(system) : 0;
    size_t own = !strncmp(value, "urn:oid:", 8) ? n - 8 : n; /* a UID's prefix is ours (M5) */
    char head[48];
    if (own > MAX_IDENTIFIER)
        return s2f_fail(err, S2F_ELIMIT, "the identifier to search the %s by is %zu characters "
                        "long (\"%s\"), more than the %d accepted: not searched", type, own,
                        s2f_escape_text(value, n, head, 24), MAX_IDENTIFIER);
    if (2 * 3 * (n + ns) + strlen(type) + 32 > MAX_SEARCH_URL)
        return s2f_fail(err, S2F_ELIMIT, "the identifier system to search the %s by is %zu "
                        "characters long (\"%s\"): the search would be longer than %d bytes; not "
                        "searched", type, ns, s2f_escape_text(system, ns, head, 40), MAX_SEARCH_URL);
    return S2F_OK;
}

static char *search_path(const char *type, const char *system, const char *value)
{
    size_t cap = 2 * (strlen(value) + (system ? strlen(system) : 0)) + 2;
    char *token = malloc(cap), *path = NULL;
    if (!token)
        return NULL;
    size_t n = 0;
    if (system) {
        put_token_part(token, &n, system);
        token[n++] = '|';
    }
    put_token_part(token, &n, value);
    token[n] = '\0';
    char *escaped = curl_easy_escape(NULL, token, (int)n);
    if (escaped && (path = malloc(strlen(type) + strlen(escaped) + 32)))
        sprintf(path, "%s?identifier=%s&_count=2", type, escaped);
    curl_free(escaped);
    free(token);
    return path;
}

/* "Type/id" of each matching resource of a searchset; returns how many. *bad: the first
 * id that is not a FHIR id (then not counted), else NULL. */
static size_t collect_matches(json_object *bundle, const char *type, char *names, size_t cap,
                              char **first, const char **bad)
{
    json_object *entries = s2f_fhirjson_member(bundle, "entry");
    size_t n = entries && json_object_is_type(entries, json_type_array) ? json_object_array_length(entries) : 0;
    size_t found = 0;
    names[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(entries, i);
        json_object *r = s2f_fhirjson_member(e, "resource");
        const char *mode = s2f_fhirjson_string(s2f_fhirjson_member(e, "search"), "mode");
        const char *id = s2f_fhirjson_string(r, "id");
        if (!s2f_fhirjson_is(r, type) || !id || (mode && strcmp(mode, "match")))
            continue;
        if (!s2f_fhir_id_valid(id, strlen(id))) {
            if (!*bad)
                *bad = id;
            continue;
        }
        char ref[256];
        snprintf(ref, sizeof ref, "%s/%.200s", type, id);
        if (found++ == 0)
            *first = strdup(ref);
        if (names[0])
            append_clean(names, cap, ", ");
        append_clean(names, cap, ref);
    }
    return found;
}

/* "3" from Bundle.total, else "at least 2" (the search asks for two). */
static const char *total_text(json_object *bundle, size_t n, char *buf, size_t cap)
{
    json_object *t = s2f_fhirjson_member(bundle, "total");
    if (t && json_object_is_type(t, json_type_int) && json_object_get_int64(t) >= (int64_t)n)
        snprintf(buf, cap, "%lld", (long long)json_object_get_int64(t));
    else
        snprintf(buf, cap, "at least %zu", n);
    return buf;
}

s2f_code s2f_client_answer_search(const char *body, size_t len, const char *type, const char *what,
                           int require_existing, char **ref, s2f_error *err)
{
    json_object *bundle;
    char names[300], total[32], doing[460], text[96];
    const char *bad = NULL;
    *ref = NULL;
    snprintf(doing, sizeof doing, "searching %s", what);
    s2f_code rc = parse_answer(body, len, SMALL_ANSWER_MEMORY, doing, &bundle, err);
    if (rc)
        return rc;
    size_t n = s2f_fhirjson_is(bundle, "Bundle")
                   ? collect_matches(bundle, type, names, sizeof names, ref, &bad) : 0;
    if (!s2f_fhirjson_is(bundle, "Bundle"))
        rc = s2f_fail(err, S2F_EREJECTED, "searching %s: the answer is not a Bundle", what);
    else if (bad)
        rc = s2f_fail(err, S2F_EREJECTED, "searching %s: the server answered a %s with the id "
                      "\"%s\", which is not a FHIR id ([A-Za-z0-9-.]{1,64}): not used", what, type,
                      s2f_escape_text(bad, strlen(bad), text, 72));
    else if (n > 1)
        rc = s2f_fail(err, S2F_ELOOKUP, "the search for %s found %s matches on the server (%s): "
                      "which one the SR means is unclear", what,
                      total_text(bundle, n, total, sizeof total), names);
    else if (n == 1 && !*ref)
        rc = s2f_fail(err, S2F_ENOMEM, "out of memory");
    else if (n == 0 && require_existing)
        rc = s2f_fail(err, S2F_ELOOKUP, "no %s on the server (--require-existing)", what);
    json_object_put(bundle);
    if (rc) {
        free(*ref);
        *ref = NULL;
    }
    return rc;
}

s2f_code s2f_client_find(s2f_client *c, const char *type, const char *system, const char *value,
                         char **ref, s2f_send_result *res, s2f_error *err)
{
    char what[400], doing[460], sys_text[160], value_text[160];
    *ref = NULL;
    s2f_code rc = check_identifier(type, system, value, err);
    if (rc)
        return rc;
    snprintf(what, sizeof what, "%s with identifier %s%s%s", type,
             system ? s2f_escape_text(system, strlen(system), sys_text, sizeof sys_text) : "",
             system ? "|" : "", s2f_escape_text(value, strlen(value), value_text, sizeof value_text));
    snprintf(doing, sizeof doing, "searching %s", what);
    char *path = search_path(type, system, value);
    if (!path)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    s2f_http_response r;
    rc = get_answer(c, path, doing, &r, res, err);
    free(path);
    return rc ? rc : s2f_client_answer_search(r.body, r.len, type, what, c->require_existing, ref, err);
}

/* ---- transactions (M24) -------------------------------------------------------------------- */

/* "Observation/abc" from a location ("[base/]Observation/abc[/_history/2]"). */
static char *reference_of(const char *location)
{
    size_t n = strlen(location);
    const char *h = strstr(location, "/_history/");
    if (h)
        n = (size_t)(h - location);
    size_t slashes = 0, start = 0;
    for (size_t i = n; i > 0; i--)
        if (location[i - 1] == '/' && ++slashes == 2) {
            start = i;
            break;
        }
    return strndup(location + start, n - start);
}

static int push_ref(char ***list, size_t *n, char *ref)
{
    char **p = ref ? realloc(*list, (*n + 1) * sizeof *p) : NULL;
    if (!p) {
        free(ref);
        return 0;
    }
    p[(*n)++] = ref;
    *list = p;
    return 1;
}

/* Records each entry's outcome; the first entry that failed makes the whole a failure, and
 * so does an answer with another number of entries than were sent (defect 6). */
static s2f_code read_entries(json_object *bundle, size_t expected, s2f_send_result *res,
                             s2f_error *err)
{
    json_object *entries = s2f_fhirjson_member(bundle, "entry");
    size_t n = entries && json_object_is_type(entries, json_type_array) ? json_object_array_length(entries) : 0;
    char text[OUTCOME_MAX];
    if (n != expected)
        return s2f_fail(err, S2F_EREJECTED, "the server's transaction-response has %zu entr%s for "
                        "the %zu sent: what it stored is unknown", n, n == 1 ? "y" : "ies", expected);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(entries, i);
        json_object *resp = s2f_fhirjson_member(e, "response");
        const char *status = s2f_fhirjson_string(resp, "status");
        const char *loc = s2f_fhirjson_string(resp, "location");
        json_object *r = s2f_fhirjson_member(e, "resource");
        long code = status ? strtol(status, NULL, 10) : 0;
        if (code < 200 || code > 299) {
            char st[40];
            outcome_text(s2f_fhirjson_member(resp, "outcome"), text, sizeof text);
            return s2f_fail(err, S2F_EREJECTED, "entry %zu of the transaction failed: %s%s%s", i + 1,
                            status ? s2f_escape_text(status, strlen(status), st, sizeof st) : "no status",
                            text[0] ? ": " : "", text);
        }
        char *ref = NULL;
        if (loc)
            ref = reference_of(loc);
        if (!ref)
            ref = s2f_fhirjson_literal(r);
        if (!ref)
            continue; /* nothing to name it by: counted by neither list */
        if (!valid_reference(ref)) {
            s2f_escape_text(ref, strlen(ref), text, 100);
            free(ref);
            return s2f_fail(err, S2F_EREJECTED, "entry %zu of the transaction-response names "
                            "\"%s\", not a Type/id with a FHIR id", i + 1, text);
        }
        int ok = code == 201 ? push_ref(&res->created, &res->n_created, ref)
                             : push_ref(&res->updated, &res->n_updated, ref);
        if (!ok)
            return s2f_fail(err, S2F_ENOMEM, "out of memory");
    }
    return S2F_OK;
}

static void drop_refs(char **list, size_t *n, size_t keep)
{
    while (*n > keep)
        free(list[--*n]);
}

/* An entry that failed fails the whole: what earlier entries recorded is dropped (a
 * transaction is all or nothing). */
static s2f_code read_transaction_response(json_object *bundle, size_t expected,
                                          s2f_send_result *res, s2f_error *err)
{
    size_t created = res->n_created, updated = res->n_updated;
    s2f_code rc = read_entries(bundle, expected, res, err);
    if (rc) {
        drop_refs(res->created, &res->n_created, created);
        drop_refs(res->updated, &res->n_updated, updated);
    }
    return rc;
}

s2f_code s2f_client_answer_transaction(const char *body, size_t len, size_t entries, s2f_send_result *res,
                                s2f_error *err)
{
    json_object *answer;
    s2f_code rc = parse_answer(body, len, SMALL_ANSWER_MEMORY + entries * ENTRY_ANSWER_MEMORY,
                               "the server's answer to the transaction", &answer, err);
    if (rc)
        return rc;
    const char *type = s2f_fhirjson_string(answer, "type");
    if (!s2f_fhirjson_is(answer, "Bundle") || !type || strcmp(type, "transaction-response"))
        rc = s2f_fail(err, S2F_EREJECTED, "the server's answer to the transaction is not a "
                      "transaction-response Bundle");
    else
        rc = read_transaction_response(answer, entries, res, err);
    json_object_put(answer);
    return rc;
}

s2f_code s2f_client_transaction(s2f_client *c, const char *bundle, size_t len, size_t entries,
                                s2f_send_result *res, s2f_error *err)
{
    s2f_http_response r;
    s2f_error why;
    size_t max = SMALL_ANSWER_BYTES + entries * ENTRY_ANSWER_MEMORY;
    s2f_code rc = s2f_http_request(c->http, "POST", c->base, bundle, len, max, &r, &why);
    res->attempts = r.attempts;
    res->http_status = r.status;
    res->retry_after = r.retry_after;
    if (rc == S2F_EUNREACHABLE)
        return s2f_fail(err, rc, "cannot deliver to %s: %s", c->base, why.message);
    if (rc)
        return s2f_fail(err, rc, "the transaction: %s", why.message);
    if (r.status < 200 || r.status > 299)
        return failed_answer("the transaction", &r, err);
    return s2f_client_answer_transaction(r.body, r.len, entries, res, err);
}

void s2f_client_set_cancel(s2f_client *c, const atomic_int *flag)
{
    s2f_http_set_cancel(c->http, flag);
}

void s2f_client_begin(s2f_client *c)
{
    s2f_http_set_deadline(c->http, c->deadline);
}
