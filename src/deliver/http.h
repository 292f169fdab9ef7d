/*
 * http.h - HTTP requests for delivery (stage 5), on libcurl: TLS 1.2+ with verification,
 * credentials, timeouts, and retries with exponential backoff and jitter.
 *
 * One s2f_http per thread (it owns a curl easy handle and its connection cache). Retried:
 * connection failures and timeouts, HTTP 408, 429 and 5xx (Retry-After honoured); never
 * other answers. Secrets given in the config are handed to curl and never put in a message.
 */
#ifndef S2F_HTTP_H
#define S2F_HTTP_H

#include <stdatomic.h>
#include <stddef.h>

#include "sr2fhir_send.h"

typedef struct s2f_http s2f_http;

/* One answer. body is NUL-terminated and owned by the s2f_http until the next request. */
typedef struct s2f_http_response {
    long status;             /* HTTP status, 0 when no answer came */
    const char *body;
    size_t len;
    unsigned attempts;       /* tries made for this request */
    double seconds;          /* wall time including retries and waits */
    long retry_after;        /* the last answer's Retry-After in seconds, -1 when none */
} s2f_http_response;

/* Copies what it needs from opt; err gets why the configuration is refused. */
s2f_http *s2f_http_new(const s2f_client_options *opt, s2f_error *err);
void s2f_http_free(s2f_http *h);

/*
 * method "GET" (body NULL) or "POST" (a FHIR JSON body). Returns S2F_OK with any answer the
 * server finally gave (the caller judges the status: 4xx/5xx are answers too), or
 * S2F_EUNREACHABLE when no answer came after every retry or within the deadline, with the
 * reason in err. max_answer: the most bytes accepted of the answer (0: 256 MiB); a longer
 * one is S2F_EREJECTED. A request that cannot be built is S2F_EINTERNAL or S2F_ENOMEM.
 */
s2f_code s2f_http_request(s2f_http *h, const char *method, const char *url, const char *body,
                          size_t len, size_t max_answer, s2f_http_response *resp, s2f_error *err);

/* The Content-Type of POST bodies from now on (default application/fhir+json); the FHIRcast
 * client (issue 15) posts forms and JSON. */
s2f_code s2f_http_set_content_type(s2f_http *h, const char *type, s2f_error *err);

/* Every request from now on ends by `seconds` from now, its retries and waits included
 * (issue 9 defect 10); 0 or less: no deadline. */
void s2f_http_set_deadline(s2f_http *h, long seconds);

/* While *flag (may be NULL: never) is non-zero, requests stop at once: a transfer is cut
 * off, no retry is made, no backoff slept; the request fails with S2F_EUNREACHABLE. The
 * gateway's workers set it when their stop grace ends. The flag must outlive the object. */
void s2f_http_set_cancel(s2f_http *h, const atomic_int *flag);

/* Monotonic clock, seconds (durations of requests and deliveries). */
double s2f_http_now(void);

/* 1 when the answer is worth another try (408, 429, 5xx). */
int s2f_http_retryable(long status);

/* ---- the base URL policy (send's --server, pull's --dicomweb) ----------------------------- */

typedef enum s2f_url_verdict {
    S2F_URL_OK,
    S2F_URL_NOMEM,          /* curl could not allocate its URL handle */
    S2F_URL_MALFORMED,      /* not a URL curl takes apart into a scheme and a host */
    S2F_URL_CREDENTIALS,    /* a user (and password) in the URL: logs and `ps` would show it */
    S2F_URL_SCHEME,         /* neither http nor https */
    S2F_URL_PLAIN_REMOTE,   /* plain http to a host that is not loopback, allow_http not set */
} s2f_url_verdict;

/* Judges a server's base URL by the policy of every client here, in the order above;
 * loopback is localhost, ::1, or 127.0.0.0/8 written as an address (not a name such as
 * "127.example.org"). host gets the URL's host for the caller's message ("" when none,
 * cut at host_cap); each caller words its own messages (its option's name, what plain
 * http would expose). */
s2f_url_verdict s2f_http_judge_url(const char *url, int allow_http, char *host, size_t host_cap);

/* ---- streamed GET (issue 13: the DICOMweb client's QIDO-RS and WADO-RS answers) ---------- */

/* Where a streamed answer goes. begin and data return S2F_OK to go on; any other code stops
 * the transfer at once, is never retried, and is what s2f_http_get_stream returns, with the
 * sink's message in err. */
typedef struct s2f_http_sink {
    const char *accept;              /* the Accept header's value */
    unsigned long long max_bytes;    /* body bytes taken of a 2xx answer (0: 256 MiB): a
                                        larger Content-Length is refused as soon as the
                                        headers are in, before any of the body is read; a
                                        body growing past it is cut off; both S2F_ELIMIT */
    /* A 2xx answer's headers are in: its status and Content-Type ("" when absent). Called
     * again on each try after a failed one: the sink starts over. */
    s2f_code (*begin)(void *ctx, long status, const char *content_type, s2f_error *err);
    s2f_code (*data)(void *ctx, const char *bytes, size_t len, s2f_error *err);
    void *ctx;
} s2f_http_sink;

/*
 * GET url with the sink's Accept header; TLS, credentials, timeouts, the deadline, cancel
 * and retries as s2f_http_request (a try that failed part-way, e.g. a connection cut or a
 * timeout, is retried from the start). S2F_OK: resp->status is the final answer's status;
 * a 2xx body went to the sink whole (resp->body is ""), any other answer's first 4 KiB are
 * in resp->body (the rest is not read beyond 64 KiB). Errors as s2f_http_request, plus
 * S2F_ELIMIT for a 2xx answer over sink->max_bytes and the sink's own codes.
 */
s2f_code s2f_http_get_stream(s2f_http *h, const char *url, const s2f_http_sink *sink,
                             s2f_http_response *resp, s2f_error *err);

#endif
