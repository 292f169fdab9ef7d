/*
 * client.c - the FHIR REST client of delivery (see client.h): base URL policy, the
 * server's FHIR version from its CapabilityStatement, searches by identifier (M4-M6),
 * transactions, and OperationOutcome text for messages. Answers are parsed with json-c.
 */
#include "client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fhirjson.h"
#include "http.h"
#include "util/error.h"

#define OUTCOME_MAX 400   /* characters of server text kept in a message */

struct s2f_client {
    char *base;
    s2f_http *http;
    s2f_fhir_version version;
    int require_existing;
    size_t max_entries;      /* 0: no limit */
    char *timezone;
};

const char *s2f_client_base(const s2f_client *c) { return c->base; }
int s2f_client_require_existing(const s2f_client *c) { return c->require_existing; }
size_t s2f_client_max_entries(const s2f_client *c) { return c->max_entries; }
const char *s2f_client_timezone(const s2f_client *c) { return c->timezone; }

/* ---- base URL policy ----------------------------------------------------------------------- */

/* localhost, 127.0.0.0/8 as an address (not a name like "127.example.com"), ::1. */
static int is_loopback(const char *host)
{
    struct in_addr v4;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    return !strcasecmp(host, "localhost") || !strcmp(host, "::1") || !strcmp(host, "[::1]");
}

/* Refuses what the policy forbids: other schemes, credentials in the URL, plain HTTP to
 * a host that is not loopback (unless allowed). */
static s2f_code check_base(const char *base, const s2f_client_options *opt, s2f_error *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL;
    s2f_code rc = S2F_OK;
    if (!u)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        rc = s2f_fail(err, S2F_EUSAGE, "--server: not a URL: %s", base);
    else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
        rc = s2f_fail(err, S2F_EUSAGE, "--server: credentials in the URL are refused (use "
                      "--user, --token-env or --token-file)");
    else if (strcasecmp(scheme, "https") && strcasecmp(scheme, "http"))
        rc = s2f_fail(err, S2F_EUSAGE, "--server: only http and https URLs are supported");
    else if (!strcasecmp(scheme, "http") && !is_loopback(host) && !opt->allow_http)
        rc = s2f_fail(err, S2F_EUSAGE, "--server: plain http to %s would send the reports and "
                      "any credentials unencrypted; use https, or --allow-http", host);
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

s2f_client *s2f_client_new(const char *base, const s2f_client_options *opt, s2f_error *err)
{
    static const s2f_client_options defaults;
    if (!opt)
        opt = &defaults;
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

/* Appends s to buf (size cap) with control characters as spaces. */
static void append_clean(char *buf, size_t cap, const char *s)
{
    size_t n = strlen(buf);
    for (; *s && n + 1 < cap; s++)
        buf[n++] = (unsigned char)*s < 0x20 ? ' ' : *s;
    buf[n] = '\0';
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

void s2f_answer_text(const char *body, size_t len, char *buf, size_t cap)
{
    json_object *o = s2f_fhirjson_parse(body, len);
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
    s2f_answer_text(r->body, r->len, text, sizeof text);
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
    s2f_code rc = s2f_http_request(c->http, "GET", url, NULL, 0, r, &why);
    free(url);
    if (res) {
        res->attempts = r->attempts;
        res->http_status = r->status;
    }
    if (rc)
        return s2f_fail(err, rc, "%s: cannot reach %s: %s", what, c->base, why.message);
    if (r->status < 200 || r->status > 299)
        return failed_answer(what, r, err);
    return S2F_OK;
}

/* ---- version (M25) ------------------------------------------------------------------------- */

s2f_code s2f_client_version(s2f_client *c, s2f_fhir_version *version, s2f_error *err)
{
    return s2f_client_settle_version(c, version, NULL, err);
}

s2f_code s2f_answer_version(const char *body, size_t len, s2f_fhir_version *version, s2f_error *err)
{
    json_object *cap = s2f_fhirjson_parse(body, len);
    const char *v = s2f_fhirjson_is(cap, "CapabilityStatement") ? s2f_fhirjson_string(cap, "fhirVersion") : NULL;
    s2f_code rc = S2F_OK;
    if (!v)
        rc = s2f_fail(err, S2F_EREJECTED, "/metadata is not a CapabilityStatement with a "
                      "fhirVersion (use --fhir-version R5|R4)");
    else if (v[0] == '5' && v[1] == '.')
        *version = S2F_FHIR_R5;
    else if (v[0] == '4' && v[1] == '.')
        *version = S2F_FHIR_R4; /* 4.0.1 and R4B's 4.3.0 take the R4 form */
    else
        rc = s2f_fail(err, S2F_EUNSUPPORTED, "the server speaks FHIR %.20s; sr2fhir sends R5 or R4", v);
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
            rc = s2f_answer_version(r.body, r.len, &v, err);
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

/* "Type/id" of each matching resource of a searchset; returns how many. */
static size_t collect_matches(json_object *bundle, const char *type, char *names, size_t cap,
                              char **first)
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

s2f_code s2f_answer_search(const char *body, size_t len, const char *type, const char *what,
                           int require_existing, char **ref, s2f_error *err)
{
    json_object *bundle = s2f_fhirjson_parse(body, len);
    char names[300], total[32];
    s2f_code rc = S2F_OK;
    *ref = NULL;
    size_t n = s2f_fhirjson_is(bundle, "Bundle") ? collect_matches(bundle, type, names, sizeof names, ref) : 0;
    if (!s2f_fhirjson_is(bundle, "Bundle"))
        rc = s2f_fail(err, S2F_EREJECTED, "searching %s: the answer is not a Bundle", what);
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
    char what[400], doing[460];
    snprintf(what, sizeof what, "%s with identifier %.150s%s%.150s", type, system ? system : "",
             system ? "|" : "", value);
    snprintf(doing, sizeof doing, "searching %s", what);
    *ref = NULL;
    char *path = search_path(type, system, value);
    if (!path)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    s2f_http_response r;
    s2f_code rc = get_answer(c, path, doing, &r, res, err);
    free(path);
    return rc ? rc : s2f_answer_search(r.body, r.len, type, what, c->require_existing, ref, err);
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

/* Records each entry's outcome; the first entry that failed makes the whole a failure. */
static s2f_code read_entries(json_object *bundle, s2f_send_result *res, s2f_error *err)
{
    json_object *entries = s2f_fhirjson_member(bundle, "entry");
    size_t n = entries && json_object_is_type(entries, json_type_array) ? json_object_array_length(entries) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(entries, i);
        json_object *resp = s2f_fhirjson_member(e, "response");
        const char *status = s2f_fhirjson_string(resp, "status");
        const char *loc = s2f_fhirjson_string(resp, "location");
        json_object *r = s2f_fhirjson_member(e, "resource");
        long code = status ? strtol(status, NULL, 10) : 0;
        if (code < 200 || code > 299) {
            char text[OUTCOME_MAX];
            outcome_text(s2f_fhirjson_member(resp, "outcome"), text, sizeof text);
            return s2f_fail(err, S2F_EREJECTED, "entry %zu of the transaction failed: %s%s%s", i + 1,
                            status ? status : "no status", text[0] ? ": " : "", text);
        }
        char *ref = NULL;
        if (loc)
            ref = reference_of(loc);
        if (!ref)
            ref = s2f_fhirjson_literal(r);
        if (!ref)
            continue; /* nothing to name it by: counted by neither list */
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
static s2f_code read_transaction_response(json_object *bundle, s2f_send_result *res, s2f_error *err)
{
    size_t created = res->n_created, updated = res->n_updated;
    s2f_code rc = read_entries(bundle, res, err);
    if (rc) {
        drop_refs(res->created, &res->n_created, created);
        drop_refs(res->updated, &res->n_updated, updated);
    }
    return rc;
}

s2f_code s2f_answer_transaction(const char *body, size_t len, s2f_send_result *res, s2f_error *err)
{
    json_object *answer = s2f_fhirjson_parse(body, len);
    const char *type = s2f_fhirjson_string(answer, "type");
    s2f_code rc;
    if (!s2f_fhirjson_is(answer, "Bundle") || !type || strcmp(type, "transaction-response"))
        rc = s2f_fail(err, S2F_EREJECTED, "the server's answer to the transaction is not a "
                      "transaction-response Bundle");
    else
        rc = read_transaction_response(answer, res, err);
    json_object_put(answer);
    return rc;
}

s2f_code s2f_client_transaction(s2f_client *c, const char *bundle, size_t len,
                                s2f_send_result *res, s2f_error *err)
{
    s2f_http_response r;
    s2f_error why;
    s2f_code rc = s2f_http_request(c->http, "POST", c->base, bundle, len, &r, &why);
    res->attempts = r.attempts;
    res->http_status = r.status;
    if (rc)
        return s2f_fail(err, rc, "cannot deliver to %s: %s", c->base, why.message);
    if (r.status < 200 || r.status > 299)
        return failed_answer("the transaction", &r, err);
    return s2f_answer_transaction(r.body, r.len, res, err);
}
