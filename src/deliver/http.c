/*
 * http.c - HTTP requests with retries on libcurl (see http.h).
 *
 * Transport policy (docs/send.md, the guide's security section): only http and https,
 * TLS 1.2 or higher, peer and host verification unless `insecure`, no redirects (they
 * could carry credentials elsewhere), bounded answer size, connect and total timeouts.
 * Backoff: delay_n = min(30 s, first * 2^n), slept for a random 50-100 % of it, or what
 * Retry-After asks (at most 300 s). A deadline (s2f_http_set_deadline, issue 9 defect 10)
 * bounds all the tries of a delivery: each try's timeout is cut to what is left, and a wait
 * that would end after it fails the request at once instead.
 *
 * Failures are classified (issue 9 defect 7): S2F_EUNREACHABLE only for the network and the
 * server (connection, TLS, timeouts, the deadline); a request that could not even be built
 * (a malformed URL, memory) is the request's own error, and an answer larger than its kind
 * may be (the caller's max_answer) is a refused answer, not an unreachable server.
 *
 * Streamed GETs (s2f_http_get_stream, issue 13) share all of this; their answer goes to a
 * sink instead of memory. The bound is checked twice: against Content-Length when the
 * headers are in (a 10 GB declaration is refused before one byte of the body is read) and
 * against the bytes received. An error answer's body is kept for the message up to 4 KiB
 * and not read past 64 KiB.
 */
#include "deliver/http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"
#include "util/escape.h"

#define MAX_ANSWER (256u << 20)     /* bytes kept of one answer */
#define MAX_BACKOFF_MS 30000L
#define MAX_RETRY_AFTER_S 300L
#define ERROR_BODY_KEPT 4096u       /* bytes of a streamed GET's error answer kept */
#define ERROR_BODY_READ 65536u      /* ... and read before the transfer is cut off */

struct s2f_http {
    CURL *curl;
    struct curl_slist *headers;   /* Accept, Content-Type */
    char *body;                   /* the last answer */
    size_t len, cap;
    int too_big;
    size_t max_answer;            /* bytes accepted of the current answer */
    double deadline;              /* monotonic seconds; 0: none */
    long deadline_s;              /* its length, for messages */
    long timeout_ms;              /* per try, before the deadline cuts it */
    long retry_after_s;           /* -1: the last answer had none */
    int retries;
    long first_delay_ms;
    uint64_t rng;                 /* jitter; per object, no shared state */
    const atomic_int *cancel;     /* non-zero: stop at once (s2f_http_set_cancel); may be NULL */
    /* the streamed GET in progress (s2f_http_get_stream); sink NULL otherwise */
    const s2f_http_sink *sink;
    unsigned long long sink_max;  /* body bytes accepted of a 2xx answer */
    s2f_code sink_rc;             /* S2F_OK until the sink or the bound stopped the try */
    s2f_error sink_err;
    long stream_status;           /* the final answer's status once its headers are in, else 0 */
    unsigned long long stream_len; /* body bytes of this try */
    long long declared;           /* its Content-Length: -1 none, -2 beyond any bound */
    int error_cut;                /* an error answer's body was cut off (ERROR_BODY_READ) */
    char curl_error[CURL_ERROR_SIZE];
};

int s2f_http_retryable(long status)
{
    return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

double s2f_http_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: enough to spread retries of many clients; seeded per object. */
static uint64_t next_random(s2f_http *h)
{
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return h->rng * 2685821657736338717ULL;
}

static int cancelled(const s2f_http *h)
{
    return h->cancel && atomic_load(h->cancel);
}

/* Sleeps ms, in slices of at most 100 ms so that a cancel ends the wait. */
static void sleep_ms(const s2f_http *h, long ms)
{
    while (ms > 0 && !cancelled(h)) {
        long slice = ms > 100 ? 100 : ms;
        struct timespec ts = {0, slice * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
        ms -= slice;
    }
}

/* curl's progress callback: non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK). */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return cancelled(userdata);
}

void s2f_http_set_cancel(s2f_http *h, const atomic_int *flag)
{
    h->cancel = flag;
}

/* ---- curl callbacks ------------------------------------------------------------------------ */

static size_t on_stream_body(s2f_http *h, char *data, size_t add);

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    s2f_http *h = userdata;
    size_t add = size * n;
    if (h->sink)
        return on_stream_body(h, data, add);
    if (h->len + add + 1 > h->max_answer) {
        h->too_big = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    if (h->len + add + 1 > h->cap) {
        size_t cap = h->cap ? h->cap : 16384;
        while (cap < h->len + add + 1)
            cap *= 2;
        char *p = realloc(h->body, cap);
        if (!p)
            return 0;
        h->body = p;
        h->cap = cap;
    }
    memcpy(h->body + h->len, data, add);
    h->len += add;
    h->body[h->len] = '\0';
    return add;
}

/* Retry-After: seconds, or an HTTP date. */
static long parse_retry_after(const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v >= '0' && *v <= '9') {
        long s = strtol(v, NULL, 10);
        return s < 0 ? 0 : s;
    }
    time_t when = curl_getdate(v, NULL);
    if (when == -1)
        return -1;
    time_t now = time(NULL);
    return when > now ? (long)(when - now) : 0;
}

static size_t on_stream_header(s2f_http *h, const char *data, size_t len);

static size_t on_header(char *data, size_t size, size_t n, void *userdata)
{
    s2f_http *h = userdata;
    size_t len = size * n;
    if (h->sink && on_stream_header(h, data, len) != len)
        return 0; /* refused: curl stops with CURLE_WRITE_ERROR */
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && len < 256 && !strncasecmp(data, name, sizeof name - 1)) {
        char v[256];
        memcpy(v, data + sizeof name - 1, len - (sizeof name - 1));
        v[len - (sizeof name - 1)] = '\0';
        h->retry_after_s = parse_retry_after(v);
    }
    return len;
}

/* ---- set-up -------------------------------------------------------------------------------- */

static s2f_code set_credentials(s2f_http *h, const s2f_client_options *opt, s2f_error *err)
{
    CURL *c = h->curl;
    if (opt->bearer_token && opt->user)
        return s2f_fail(err, S2F_EUSAGE, "a bearer token and HTTP basic credentials exclude "
                        "each other");
    if (opt->bearer_token) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, opt->bearer_token);
    } else if (opt->user) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, opt->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, opt->password ? opt->password : "");
    }
    if (opt->cert && curl_easy_setopt(c, CURLOPT_SSLCERT, opt->cert) != CURLE_OK)
        return s2f_fail(err, S2F_EUSAGE, "client certificates are not supported by this libcurl");
    if (opt->key)
        curl_easy_setopt(c, CURLOPT_SSLKEY, opt->key);
    if (opt->cacert)
        curl_easy_setopt(c, CURLOPT_CAINFO, opt->cacert);
    return S2F_OK;
}

static s2f_code set_transport(s2f_http *h, const s2f_client_options *opt, s2f_error *err)
{
    CURL *c = h->curl;
    if (curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK)
        return s2f_fail(err, S2F_EUNSUPPORTED, "this libcurl cannot enforce TLS 1.2");
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, opt->insecure ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, opt->insecure ? 0L : 2L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, opt->connect_timeout > 0 ? opt->connect_timeout : 10L);
    h->timeout_ms = (opt->timeout > 0 ? opt->timeout : 120L) * 1000L;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "sr2fhir/" SR2FHIR_VERSION);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* gzip/deflate answers if offered */
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_error);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    /* "Expect:" off: some servers never answer 100-continue, costing a second per POST */
    static const char *const headers[] = {"Accept: application/fhir+json",
                                          "Content-Type: application/fhir+json", "Expect:"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        struct curl_slist *more = curl_slist_append(h->headers, headers[i]);
        if (!more)
            return s2f_fail(err, S2F_ENOMEM, "out of memory");
        h->headers = more;
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
    return set_credentials(h, opt, err);
}

s2f_code s2f_http_set_content_type(s2f_http *h, const char *type, s2f_error *err)
{
    char line[128];
    if (snprintf(line, sizeof line, "Content-Type: %s", type) >= (int)sizeof line)
        return s2f_fail(err, S2F_EINTERNAL, "a Content-Type over %zu bytes", sizeof line);
    struct curl_slist *list = NULL;
    for (struct curl_slist *p = h->headers; p; p = p->next) {
        struct curl_slist *more = curl_slist_append(
            list, strncasecmp(p->data, "Content-Type:", 13) ? p->data : line);
        if (!more) {
            curl_slist_free_all(list);
            return s2f_fail(err, S2F_ENOMEM, "out of memory");
        }
        list = more;
    }
    curl_slist_free_all(h->headers);
    h->headers = list;
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->headers);
    return S2F_OK;
}

s2f_http *s2f_http_new(const s2f_client_options *opt, s2f_error *err)
{
    /* thread-safe since libcurl 7.84 (Debian 12 has 7.88); reference-counted */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return s2f_fail(err, S2F_EINTERNAL, "libcurl failed to initialise"), NULL;
    s2f_http *h = calloc(1, sizeof *h);
    if (!h || !(h->curl = curl_easy_init())) {
        free(h);
        curl_global_cleanup();
        return s2f_fail(err, S2F_ENOMEM, "out of memory"), NULL;
    }
    h->retries = opt->retries == 0 ? 4 : opt->retries < 0 ? 0 : opt->retries;
    h->first_delay_ms = opt->retry_delay_ms > 0 ? opt->retry_delay_ms : 500;
    h->max_answer = MAX_ANSWER;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)h ^
             ((uint64_t)getpid() << 40) ^ 0x9E3779B97F4A7C15ULL;
    if (set_transport(h, opt, err)) {
        s2f_http_free(h);
        return NULL;
    }
    return h;
}

void s2f_http_free(s2f_http *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->headers);
    free(h->body);
    free(h);
    curl_global_cleanup();
}

/* ---- requests ------------------------------------------------------------------------------ */

/* One try: 0 and *status on an answer, else the curl code (err text in h->curl_error). */
static CURLcode attempt(s2f_http *h, const char *method, const char *url, const char *body,
                        size_t len, long *status)
{
    CURL *c = h->curl;
    h->len = 0;
    h->too_big = 0;
    h->retry_after_s = -1;
    h->curl_error[0] = '\0';
    if (h->body)
        h->body[0] = '\0';
    long timeout = h->timeout_ms;
    if (h->deadline > 0) {
        double left_ms = (h->deadline - s2f_http_now()) * 1000.0;
        if (left_ms < (double)timeout)
            timeout = left_ms < 1.0 ? 1L : (long)left_ms;
    }
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_URL, url);
    h->sink_rc = S2F_OK;
    h->stream_status = 0;
    h->stream_len = 0;
    h->declared = -1;
    h->error_cut = 0;
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    if (rc == CURLE_WRITE_ERROR && h->error_cut)
        rc = CURLE_OK; /* a streamed GET's error answer, cut off after ERROR_BODY_READ bytes */
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return rc;
}

/* Failures another try may cure (network, timeouts); not certificate or usage problems,
 * which would fail the same way after every backoff. */
static int transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_WRITE_ERROR:                /* our own refusal (size, memory) */
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:   /* certificate not trusted or wrong host name */
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:            /* our client certificate */
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_LOGIN_DENIED:
        return 0;
    default:
        return 1;
    }
}

static long backoff_ms(s2f_http *h, unsigned retry)
{
    long ms = h->first_delay_ms;
    for (unsigned i = 0; i < retry && ms < MAX_BACKOFF_MS; i++)
        ms *= 2;
    if (ms > MAX_BACKOFF_MS)
        ms = MAX_BACKOFF_MS;
    return ms / 2 + (long)(next_random(h) % (uint64_t)(ms / 2 + 1));
}

static const char *curl_reason(s2f_http *h, CURLcode rc)
{
    return h->curl_error[0] ? h->curl_error : curl_easy_strerror(rc);
}

/* The code of a failed try: the request's own (it could not be built or its answer was
 * refused here) or S2F_EUNREACHABLE (network, TLS, timeouts). */
static s2f_code failure_code(s2f_http *h, CURLcode rc)
{
    switch (rc) {
    case CURLE_WRITE_ERROR:
        return h->too_big ? S2F_EREJECTED : S2F_ENOMEM;
    case CURLE_OUT_OF_MEMORY:
        return S2F_ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return S2F_EINTERNAL; /* identifiers are bounded before (client.c): a bug */
    default:
        return S2F_EUNREACHABLE;
    }
}

static s2f_code fail_try(s2f_http *h, CURLcode rc, unsigned tries, double seconds, s2f_error *err)
{
    char reason[CURL_ERROR_SIZE + 64];
    s2f_code code = failure_code(h, rc);
    if (rc == CURLE_WRITE_ERROR && h->too_big)
        return s2f_fail(err, code, "the answer is larger than the %zu bytes accepted for it",
                        h->max_answer - 1);
    s2f_escape_text(curl_reason(h, rc), strlen(curl_reason(h, rc)), reason, sizeof reason);
    if (code != S2F_EUNREACHABLE)
        return s2f_fail(err, code, "the request could not be made: %s", reason);
    return s2f_fail(err, code, "%s (%u attempt%s over %.2f s)", reason, tries, tries > 1 ? "s" : "",
                    seconds);
}

void s2f_http_set_deadline(s2f_http *h, long seconds)
{
    h->deadline_s = seconds;
    h->deadline = seconds > 0 ? s2f_http_now() + (double)seconds : 0;
}

/* 1 when a wait of ms would end after the deadline (or it has passed). */
static int beyond_deadline(const s2f_http *h, double ms)
{
    return h->deadline > 0 && s2f_http_now() + ms / 1000.0 >= h->deadline;
}

/* Fails the request before a wait that the deadline does not leave time for. */
static s2f_code fail_deadline(s2f_http *h, CURLcode rc, long status, unsigned tries, double start,
                              s2f_error *err)
{
    char why[CURL_ERROR_SIZE + 64];
    if (rc != CURLE_OK)
        s2f_escape_text(curl_reason(h, rc), strlen(curl_reason(h, rc)), why, sizeof why);
    else
        snprintf(why, sizeof why, "HTTP %ld", status);
    if (rc == CURLE_OK && h->retry_after_s >= 0)
        return s2f_fail(err, S2F_EUNREACHABLE, "the server asks to retry after %ld s (%s), beyond "
                        "the delivery deadline of %ld s per SR (--deadline); gave up after %u "
                        "attempt%s over %.2f s", h->retry_after_s, why, h->deadline_s, tries,
                        tries > 1 ? "s" : "", s2f_http_now() - start);
    return s2f_fail(err, S2F_EUNREACHABLE, "%s: the delivery deadline of %ld s per SR "
                    "(--deadline) passed after %u attempt%s over %.2f s", why, h->deadline_s,
                    tries, tries > 1 ? "s" : "", s2f_http_now() - start);
}

/* The tries of one request (s2f_http_request, s2f_http_get_stream). */
static s2f_code perform(s2f_http *h, const char *method, const char *url, const char *body,
                        size_t len, s2f_http_response *resp, s2f_error *err)
{
    double start = s2f_http_now();
    memset(resp, 0, sizeof *resp);
    resp->retry_after = -1;
    if (cancelled(h))
        return s2f_fail(err, S2F_EUNREACHABLE, "cancelled: the service is stopping");
    if (beyond_deadline(h, 0))
        return s2f_fail(err, S2F_EUNREACHABLE, "the delivery deadline of %ld s per SR "
                        "(--deadline) passed before this request", h->deadline_s);
    for (unsigned n = 0;; n++) {
        long status;
        CURLcode rc = attempt(h, method, url, body, len, &status);
        resp->attempts = n + 1;
        if (rc != CURLE_OK && h->sink && h->sink_rc != S2F_OK) {
            resp->seconds = s2f_http_now() - start;
            if (err)
                *err = h->sink_err; /* the sink's or the bound's refusal: never retried */
            return h->sink_rc;
        }
        resp->status = rc == CURLE_OK ? status : 0;
        resp->retry_after = rc == CURLE_OK ? h->retry_after_s : -1;
        int again = rc != CURLE_OK ? transient(rc) : s2f_http_retryable(status);
        if (cancelled(h) && (rc != CURLE_OK || again)) {
            resp->seconds = s2f_http_now() - start;
            return s2f_fail(err, S2F_EUNREACHABLE, "cancelled: the service is stopping "
                            "(%u attempt%s over %.2f s)", n + 1, n ? "s" : "", resp->seconds);
        }
        if (!again || n >= (unsigned)h->retries) {
            resp->seconds = s2f_http_now() - start;
            if (rc != CURLE_OK)
                return fail_try(h, rc, n + 1, resp->seconds, err);
            resp->body = h->body ? h->body : "";
            resp->len = h->len;
            return S2F_OK;
        }
        long wait = rc == CURLE_OK && h->retry_after_s >= 0
                        ? (h->retry_after_s > MAX_RETRY_AFTER_S ? MAX_RETRY_AFTER_S : h->retry_after_s) * 1000
                        : backoff_ms(h, n);
        double asked = rc == CURLE_OK && h->retry_after_s >= 0 ? (double)h->retry_after_s * 1000.0 : (double)wait;
        if (beyond_deadline(h, asked)) {
            resp->seconds = s2f_http_now() - start;
            return fail_deadline(h, rc, status, n + 1, start, err);
        }
        sleep_ms(h, wait);
    }
}

s2f_code s2f_http_request(s2f_http *h, const char *method, const char *url, const char *body,
                          size_t len, size_t max_answer, s2f_http_response *resp, s2f_error *err)
{
    h->max_answer = (max_answer && max_answer < MAX_ANSWER ? max_answer : MAX_ANSWER) + 1;
    return perform(h, method, url, body, len, resp, err);
}

/* ---- streamed GET (issue 13) --------------------------------------------------------------- */

/* Content-Length's value: -1 when it is not a plain number, -2 when beyond 2^62. */
static long long parse_content_length(const char *v, size_t n)
{
    size_t i = 0;
    long long x = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (i == n || v[i] < '0' || v[i] > '9')
        return -1;
    for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
        if (x > (1LL << 62) / 10)
            return -2;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

/* The end of the final answer's headers: its status known, the bound checked against
 * Content-Length before any of the body is read, the sink told. */
static size_t stream_headers_done(s2f_http *h, size_t len)
{
    long status = 0;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200)
        return len; /* 1xx: an interim answer, the final one follows */
    h->stream_status = status;
    if (status > 299)
        return len;
    if (h->declared == -2 || (h->declared >= 0 && (unsigned long long)h->declared > h->sink_max)) {
        char n[32];
        snprintf(n, sizeof n, h->declared == -2 ? "more than 2^62" : "%lld", h->declared);
        h->sink_rc = s2f_fail(&h->sink_err, S2F_ELIMIT, "the answer declares %s bytes "
                              "(Content-Length), more than the %llu accepted: refused before "
                              "reading it", n, h->sink_max);
        return 0;
    }
    const char *ct = NULL;
    curl_easy_getinfo(h->curl, CURLINFO_CONTENT_TYPE, &ct);
    h->sink_rc = h->sink->begin(h->sink->ctx, status, ct ? ct : "", &h->sink_err);
    return h->sink_rc == S2F_OK ? len : 0;
}

static size_t on_stream_header(s2f_http *h, const char *data, size_t len)
{
    static const char cl[] = "content-length:";
    if (len >= 5 && !strncmp(data, "HTTP/", 5)) { /* a status line: a new answer begins */
        h->declared = -1;
        h->stream_status = 0;
    } else if (len > sizeof cl - 1 && !strncasecmp(data, cl, sizeof cl - 1)) {
        h->declared = parse_content_length(data + sizeof cl - 1, len - (sizeof cl - 1));
    } else if ((len == 2 && data[0] == '\r' && data[1] == '\n') || (len == 1 && data[0] == '\n')) {
        return stream_headers_done(h, len);
    }
    return len;
}

/* An error answer's body: its first ERROR_BODY_KEPT bytes kept for the message. */
static size_t keep_error_body(s2f_http *h, const char *data, size_t add)
{
    h->stream_len += add;
    if (h->stream_len > ERROR_BODY_READ) {
        h->error_cut = 1;
        return 0;
    }
    size_t room = h->len < ERROR_BODY_KEPT ? ERROR_BODY_KEPT - h->len : 0;
    size_t take = add < room ? add : room;
    if (take && h->len + take + 1 > h->cap) {
        char *p = realloc(h->body, ERROR_BODY_KEPT + 1);
        if (!p)
            return 0;
        h->body = p;
        h->cap = ERROR_BODY_KEPT + 1;
    }
    if (take) {
        memcpy(h->body + h->len, data, take);
        h->len += take;
        h->body[h->len] = '\0';
    }
    return add;
}

static size_t on_stream_body(s2f_http *h, char *data, size_t add)
{
    if (h->stream_status < 200 || h->stream_status > 299)
        return keep_error_body(h, data, add);
    if (h->sink_rc != S2F_OK)
        return 0;
    if (add > h->sink_max - h->stream_len) {
        h->sink_rc = s2f_fail(&h->sink_err, S2F_ELIMIT, "the answer is longer than the %llu "
                              "bytes accepted for it: cut off", h->sink_max);
        return 0;
    }
    h->stream_len += add;
    h->sink_rc = h->sink->data(h->sink->ctx, data, add, &h->sink_err);
    return h->sink_rc == S2F_OK ? add : 0;
}

s2f_code s2f_http_get_stream(s2f_http *h, const char *url, const s2f_http_sink *sink,
                             s2f_http_response *resp, s2f_error *err)
{
    char accept[256];
    if (!sink || !sink->accept || !sink->begin || !sink->data ||
        snprintf(accept, sizeof accept, "Accept: %s", sink->accept) >= (int)sizeof accept ||
        strpbrk(sink->accept, "\r\n"))
        return s2f_fail(err, S2F_EINTERNAL, "a streamed GET without a valid sink");
    struct curl_slist *headers = curl_slist_append(NULL, accept);
    if (!headers)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    h->sink = sink;
    h->sink_max = sink->max_bytes ? sink->max_bytes : MAX_ANSWER;
    h->len = 0;
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers);
    s2f_code rc = perform(h, "GET", url, NULL, 0, resp, err);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->headers);
    curl_slist_free_all(headers);
    h->sink = NULL;
    if (rc == S2F_OK && resp->status >= 200 && resp->status <= 299) {
        resp->body = "";
        resp->len = 0;
    }
    return rc;
}

/* ---- the base URL policy ------------------------------------------------------------------- */

/* localhost, 127.0.0.0/8 as an address (not a name like "127.example.com"), ::1. */
static int is_loopback(const char *host)
{
    struct in_addr v4;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    return !strcasecmp(host, "localhost") || !strcmp(host, "::1") || !strcmp(host, "[::1]");
}

s2f_url_verdict s2f_http_judge_url(const char *url, int allow_http, char *host, size_t host_cap)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *name = NULL, *user = NULL;
    s2f_url_verdict v = S2F_URL_OK;
    if (host_cap)
        host[0] = '\0';
    if (!u)
        return S2F_URL_NOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &name, 0) != CURLUE_OK)
        v = S2F_URL_MALFORMED;
    else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
        v = S2F_URL_CREDENTIALS;
    else if (strcasecmp(scheme, "https") && strcasecmp(scheme, "http"))
        v = S2F_URL_SCHEME;
    else if (!strcasecmp(scheme, "http") && !is_loopback(name) && !allow_http)
        v = S2F_URL_PLAIN_REMOTE;
    if (name && host_cap)
        snprintf(host, host_cap, "%s", name);
    curl_free(scheme);
    curl_free(name);
    curl_free(user);
    curl_url_cleanup(u);
    return v;
}
