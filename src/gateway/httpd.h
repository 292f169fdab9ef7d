/*
 * httpd.h - the gateway's HTTP side (issue 11): libmicrohttpd daemons for a plain HTTP and
 * a TLS listener, bearer-token and client-certificate checks, limits (connections, memory
 * per connection, idle timeout, thread pool), and the routing: /dicom-web/studies* to the
 * STOW-RS receiver (stow.h), GET /healthz, /readyz, /metrics; 404 / 405 otherwise.
 *
 * It knows nothing of DICOM or FHIR beyond asking the FHIR server's /metadata for /readyz.
 * One s2f_httpd per service; no global state.
 */
#ifndef S2F_GATEWAY_HTTPD_H
#define S2F_GATEWAY_HTTPD_H

#include <stddef.h>

#include "sr2fhir_send.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/stow.h"

/* The senders' bearer tokens (a --tokens file): lines `NAME TOKEN`, '#' comments and blank
 * lines ignored. Kept as SHA-256 digests and compared in constant time. */
typedef struct s2f_tokens s2f_tokens;

#define S2F_TOKENS_MAX 10000      /* tokens in one file */
#define S2F_TOKEN_NAME_MAX 64     /* bytes of a name ([A-Za-z0-9._@-]) */
#define S2F_TOKEN_MIN 16          /* bytes of a token, at least */
#define S2F_TOKEN_MAX 4096

/* Reads `path`: S2F_EIO when it cannot be read, S2F_EUSAGE (with the line number) when a
 * line is not `NAME TOKEN`, a token is too short, or a name or token repeats. */
s2f_code s2f_tokens_load(const char *path, s2f_tokens **out, s2f_error *err);
void s2f_tokens_free(s2f_tokens *t);
/* The name of the token `token` (len bytes), or NULL when none matches. Every stored
 * token is compared, each in constant time. */
const char *s2f_tokens_match(const s2f_tokens *t, const char *token, size_t len);

typedef struct s2f_httpd_options {
    const char *http;            /* "HOST:PORT" of the plain listener, or NULL */
    const char *https;           /* "HOST:PORT" of the TLS listener, or NULL */
    const char *tls_cert_pem;    /* contents of the certificate (chain) and key files */
    const char *tls_key_pem;
    const char *tls_client_ca_pem; /* non-NULL: client certificates verified against these
                                      CAs, required for STOW-RS and /metrics (/healthz and
                                      /readyz answer without one) */
    int allow_http;              /* 1: the plain listener may be on a non-loopback address */
    const s2f_tokens *tokens;    /* NULL: STOW needs no token */
    unsigned max_connections;    /* both listeners together; beyond, refused; 0 = 64 */
    unsigned connection_timeout; /* idle seconds; 0 = 30 */
    unsigned threads;            /* thread pool per listener; 0 = 8 */
    size_t memory_limit;         /* bytes per connection (headers, upload buffer); 0 = 256 KiB */
    s2f_stow *stow;              /* the receiver; required */
    const char *queue_path;      /* /metrics opens its own queue handle here */
    const char *fhir_base;       /* /readyz asks GET [fhir_base]/metadata */
    const s2f_client_options *client; /* TLS and credentials for that request */
    s2f_gw_metrics *metrics;
    s2f_gw_log *log;
} s2f_httpd_options;

typedef struct s2f_httpd s2f_httpd;

/* Binds the listeners and starts serving. S2F_EUSAGE for a bad address (or a plain
 * listener not on loopback without allow_http), S2F_EIO when it cannot listen or the TLS
 * material is refused. Strings in opt must outlive the daemon. */
s2f_code s2f_httpd_start(const s2f_httpd_options *opt, s2f_httpd **out, s2f_error *err);

/* Checks a listener's "HOST:PORT" (resolves it; a plain one, tls 0, must be loopback
 * unless allow_http) without binding: S2F_OK or S2F_EUSAGE. */
s2f_code s2f_httpd_check_listen(const char *spec, int tls, int allow_http, s2f_error *err);

/* The URL STOW-RS is served at on listener `tls` (0 plain, 1 TLS) into buf, e.g.
 * "http://127.0.0.1:8080/dicom-web/studies"; 0 when there is no such listener. */
int s2f_httpd_url(const s2f_httpd *h, int tls, char *buf, size_t cap);

/* Stops accepting connections, lets requests in flight finish for up to grace_seconds,
 * then closes everything and frees h. */
void s2f_httpd_stop(s2f_httpd *h, int grace_seconds);

#endif
