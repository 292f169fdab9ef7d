/*
 * httpd.c - the gateway's HTTP daemons (httpd.h): listening sockets, TLS and client
 * certificates (GnuTLS through libmicrohttpd), bearer tokens, limits, routing, and the
 * small answers (/healthz, /readyz, /metrics, errors). STOW-RS itself is stow.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "deliver/http.h"
#include "gateway/httpd.h"
#include "gateway/queue.h"
#include "util/error.h"

#define STOW_PREFIX "/dicom-web/studies"
#define READY_CACHE_SECONDS 5
#define READY_TIMEOUT_SECONDS 5
#define METRICS_CAP (64 * 1024)
#define SUBJECT_MAX 256

/* ---- bearer tokens -------------------------------------------------------------------------- */

typedef struct token_entry {
    char name[S2F_TOKEN_NAME_MAX + 1];
    unsigned char digest[32]; /* SHA-256 of the token */
} token_entry;

struct s2f_tokens {
    token_entry *v;
    size_t n;
};

static int sha256(const void *data, size_t len, unsigned char out[32])
{
    return gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, out) == 0;
}

static int valid_name(const char *s, size_t n)
{
    if (!n || n > S2F_TOKEN_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("._@-", s[i])))
            return 0;
    return 1;
}

/* RFC 6750 token68 characters, the only ones a Bearer token may have. */
static int valid_token(const char *s, size_t n)
{
    if (n < S2F_TOKEN_MIN || n > S2F_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("-._~+/=", s[i])))
            return 0;
    return 1;
}

/* One line `NAME TOKEN` (already without its newline) into t; S2F_OK or a usage error. */
static s2f_code token_line(s2f_tokens *t, char *line, long lineno, const char *path,
                           s2f_error *err)
{
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p || *p == '#')
        return S2F_OK;
    char *name = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    size_t name_len = (size_t)(p - name);
    while (*p == ' ' || *p == '\t')
        p++;
    char *tok = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    size_t tok_len = (size_t)(p - tok);
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p || !valid_name(name, name_len))
        return s2f_fail(err, S2F_EUSAGE, "%s:%ld: not a line 'NAME TOKEN' (NAME of letters, "
                        "digits, '._@-', at most %d)", path, lineno, S2F_TOKEN_NAME_MAX);
    if (!valid_token(tok, tok_len))
        return s2f_fail(err, S2F_EUSAGE, "%s:%ld: the token of '%.*s' must be %d to %d "
                        "characters of A-Z a-z 0-9 -._~+/=", path, lineno, (int)name_len,
                        name, S2F_TOKEN_MIN, S2F_TOKEN_MAX);
    if (t->n >= S2F_TOKENS_MAX)
        return s2f_fail(err, S2F_EUSAGE, "%s: more than %d tokens", path, S2F_TOKENS_MAX);
    token_entry e;
    memcpy(e.name, name, name_len);
    e.name[name_len] = '\0';
    if (!sha256(tok, tok_len, e.digest))
        return s2f_fail(err, S2F_EINTERNAL, "SHA-256 failed");
    for (size_t i = 0; i < t->n; i++) {
        if (!strcmp(t->v[i].name, e.name))
            return s2f_fail(err, S2F_EUSAGE, "%s:%ld: the name '%s' is used twice", path,
                            lineno, e.name);
        if (!memcmp(t->v[i].digest, e.digest, 32))
            return s2f_fail(err, S2F_EUSAGE, "%s:%ld: '%s' has the token of '%s'", path,
                            lineno, e.name, t->v[i].name);
    }
    token_entry *more = realloc(t->v, (t->n + 1) * sizeof *more);
    if (!more)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    t->v = more;
    t->v[t->n++] = e;
    return S2F_OK;
}

s2f_code s2f_tokens_load(const char *path, s2f_tokens **out, s2f_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return s2f_fail(err, S2F_EIO, "%s: cannot read the tokens file: %s", path,
                        strerror(errno));
    s2f_tokens *t = calloc(1, sizeof *t);
    char *line = malloc(S2F_TOKEN_MAX + S2F_TOKEN_NAME_MAX + 64);
    s2f_code rc = t && line ? S2F_OK : s2f_fail(err, S2F_ENOMEM, "out of memory");
    long lineno = 0;
    size_t cap = S2F_TOKEN_MAX + S2F_TOKEN_NAME_MAX + 64;
    while (!rc && fgets(line, (int)cap, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == cap - 1 && line[n - 1] != '\n') {
            rc = s2f_fail(err, S2F_EUSAGE, "%s:%ld: line too long", path, lineno);
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        rc = token_line(t, line, lineno, path, err);
    }
    if (!rc && ferror(f))
        rc = s2f_fail(err, S2F_EIO, "%s: cannot read the tokens file", path);
    if (!rc && t->n == 0)
        rc = s2f_fail(err, S2F_EUSAGE, "%s: the tokens file holds no token", path);
    fclose(f);
    if (line) {
        memset(line, 0, cap);
        free(line);
    }
    if (rc) {
        s2f_tokens_free(t);
        return rc;
    }
    *out = t;
    return S2F_OK;
}

void s2f_tokens_free(s2f_tokens *t)
{
    if (!t)
        return;
    free(t->v);
    free(t);
}

const char *s2f_tokens_match(const s2f_tokens *t, const char *token, size_t len)
{
    unsigned char d[32];
    if (!t || !sha256(token, len, d))
        return NULL;
    const char *found = NULL;
    for (size_t i = 0; i < t->n; i++) { /* every entry, every byte: no early exit */
        unsigned diff = 0;
        for (int k = 0; k < 32; k++)
            diff |= (unsigned)(t->v[i].digest[k] ^ d[k]);
        if (diff == 0)
            found = t->v[i].name;
    }
    return found;
}

/* ---- the daemon's state --------------------------------------------------------------------- */

typedef struct listener {
    struct MHD_Daemon *d;
    int tls, fd;
    char url[320];
    struct s2f_httpd *h;
} listener;

struct s2f_httpd {
    s2f_httpd_options opt;
    listener l[2];                 /* 0 plain, 1 TLS */
    atomic_long in_flight;         /* requests begun and not completed */
    /* /readyz: the FHIR server's /metadata, asked at most every READY_CACHE_SECONDS */
    pthread_mutex_t ready_lock;
    s2f_http *ready_http;
    char *metadata_url;
    int probing;
    time_t ready_at;               /* when ready_ok was found; 0 = never */
    int ready_ok;
    char ready_why[256];
    /* /metrics: a queue handle of its own */
    pthread_mutex_t queue_lock;
    s2f_queue *queue;
    /* --max-connections over both listeners (issue 11 gap 3): the accept policy reserves a
     * slot in the accepting thread, MHD_CONNECTION_NOTIFY_STARTED (same thread, same
     * accept) turns it into an open connection, NOTIFY_CLOSED frees it. A reservation that
     * never started (MHD failed in between) is found and freed at that thread's next
     * accept, so none is lost for good. */
    pthread_mutex_t conn_lock;
    unsigned conn_limit;
    unsigned conn_open;            /* started, not yet closed */
    unsigned conn_reserved;        /* admitted by the policy, not yet started */
    size_t nslots;
    struct conn_slot {
        pthread_t thread;
        int used;                  /* the slot names a thread */
        int reserved;              /* that thread holds a reservation */
    } *slots;
};

/* Per connection (MHD_OPTION_NOTIFY_CONNECTION): its peer, and on TLS with client
 * certificates whether the certificate was verified and its subject. Touched only by the
 * thread that serves the connection. */
typedef struct conn_ctx {
    int counted;                   /* holds one of --max-connections' slots */
    char remote[64];
    int checked;                   /* the certificate was looked at */
    int cert_ok;
    char subject[SUBJECT_MAX];
} conn_ctx;

/* Per request: what httpd tracks, and stow's own pointer. */
typedef struct req_ctx {
    void *stow_cls;
    const char *who;               /* token name, client subject or "-" (outlives the request) */
} req_ctx;

/* ---- answers -------------------------------------------------------------------------------- */

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *type,
                              const char *body, const char *hdr, const char *hdr_value)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (hdr)
        MHD_add_response_header(r, hdr, hdr_value);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *body)
{
    return answer(c, status, "text/plain; charset=utf-8", body, NULL, NULL);
}

/* ---- /readyz -------------------------------------------------------------------------------- */

/* Asks the FHIR server's /metadata once (bounded by READY_TIMEOUT_SECONDS). */
static int probe_fhir(s2f_httpd *h, char *why, size_t cap)
{
    s2f_http_response resp = {0};
    s2f_error err = {0};
    s2f_http_set_deadline(h->ready_http, READY_TIMEOUT_SECONDS);
    s2f_code rc = s2f_http_request(h->ready_http, "GET", h->metadata_url, NULL, 0,
                                   16u << 20, &resp, &err);
    if (rc) {
        snprintf(why, cap, "FHIR server not reachable: %.200s", err.message);
        return 0;
    }
    if (resp.status < 200 || resp.status > 299) {
        snprintf(why, cap, "FHIR server answered HTTP %ld to GET [base]/metadata",
                 resp.status);
        return 0;
    }
    snprintf(why, cap, "ok");
    return 1;
}

/* The FHIR server's reachability, from the cache when fresh; one probe at a time (others
 * take the last result meanwhile). */
static int fhir_ready(s2f_httpd *h, char *why, size_t cap)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&h->ready_lock);
    int fresh = h->ready_at && now - h->ready_at < READY_CACHE_SECONDS && now >= h->ready_at;
    if (fresh || h->probing) {
        int ok = h->ready_at ? h->ready_ok : 0;
        snprintf(why, cap, "%s", h->ready_at ? h->ready_why : "FHIR server not checked yet");
        pthread_mutex_unlock(&h->ready_lock);
        return ok;
    }
    h->probing = 1;
    pthread_mutex_unlock(&h->ready_lock);
    char buf[256];
    int ok = probe_fhir(h, buf, sizeof buf);
    pthread_mutex_lock(&h->ready_lock);
    h->probing = 0;
    h->ready_ok = ok;
    h->ready_at = time(NULL);
    snprintf(h->ready_why, sizeof h->ready_why, "%s", buf);
    pthread_mutex_unlock(&h->ready_lock);
    snprintf(why, cap, "%s", buf);
    return ok;
}

static enum MHD_Result readyz(s2f_httpd *h, struct MHD_Connection *c)
{
    s2f_error err = {0};
    char why[320], body[400];
    if (s2f_stow_check(h->opt.stow, &err) != S2F_OK) {
        snprintf(body, sizeof body, "not ready: queue database: %.300s\n", err.message);
        return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, body);
    }
    if (!fhir_ready(h, why, sizeof why)) {
        snprintf(body, sizeof body, "not ready: %s\n", why);
        return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, body);
    }
    return text(c, MHD_HTTP_OK, "ok\n");
}

/* ---- /metrics ------------------------------------------------------------------------------- */

static int queue_figures(s2f_httpd *h, s2f_gw_queue_figures *q)
{
    s2f_error err = {0};
    s2f_queue_stats st;
    int64_t oldest = 0;
    memset(q, 0, sizeof *q);
    pthread_mutex_lock(&h->queue_lock);
    int ok = h->queue || (h->opt.queue_path &&
                          s2f_queue_open(h->opt.queue_path, NULL, &h->queue, &err) == S2F_OK);
    ok = ok && s2f_queue_stats_get(h->queue, &st, &err) == S2F_OK &&
         s2f_queue_oldest_pending(h->queue, &oldest, &err) == S2F_OK;
    pthread_mutex_unlock(&h->queue_lock);
    if (!ok) {
        s2f_gw_logf(h->opt.log, S2F_LOG_WARN, "metrics: queue figures: %s", err.message);
        return 0;
    }
    for (int s = 0; s < S2F_JOB_NSTATES; s++)
        q->depth[s] = st.count[s];
    time_t now = time(NULL);
    q->oldest_age = oldest && now > oldest ? (long long)(now - oldest) : 0;
    return 1;
}

static enum MHD_Result metrics(s2f_httpd *h, struct MHD_Connection *c)
{
    s2f_gw_queue_figures q;
    int have_q = queue_figures(h, &q);
    char *buf = malloc(METRICS_CAP);
    if (!buf)
        return MHD_NO;
    size_t n = h->opt.metrics ? s2f_gw_metrics_render(h->opt.metrics, have_q ? &q : NULL, buf,
                                                      METRICS_CAP)
                              : 0;
    enum MHD_Result ret;
    if (!n)
        ret = text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics unavailable\n");
    else
        ret = answer(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", buf, NULL,
                     NULL);
    free(buf);
    return ret;
}

/* ---- the sender: bearer token, client certificate --------------------------------------------- */

/* The client certificate of a TLS connection, checked once per connection: verified
 * against the trusted CAs (MHD_OPTION_HTTPS_MEM_TRUST) and its subject DN kept. */
static void check_client_cert(struct MHD_Connection *c, conn_ctx *cc)
{
    cc->checked = 1;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return;
    gnutls_session_t s = (gnutls_session_t)ci->tls_session;
    unsigned status = 0;
    if (gnutls_certificate_type_get(s) != GNUTLS_CRT_X509 ||
        gnutls_certificate_verify_peers2(s, &status) != 0 || status != 0)
        return;
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
    gnutls_x509_crt_t crt;
    if (!peers || !n || gnutls_x509_crt_init(&crt) != 0)
        return;
    size_t len = sizeof cc->subject;
    if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) == 0 &&
        gnutls_x509_crt_get_dn(crt, cc->subject, &len) == 0)
        cc->cert_ok = 1;
    else
        cc->subject[0] = '\0';
    gnutls_x509_crt_deinit(crt);
}

/* The name of the sender's token, or NULL after queueing a 401 (*ret set). */
static const char *bearer(s2f_httpd *h, struct MHD_Connection *c, const char *remote,
                          enum MHD_Result *ret)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *name = NULL;
    if (v && !strncasecmp(v, "Bearer ", 7)) {
        const char *tok = v + 7;
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len && tok[len - 1] == ' ')
            len--;
        if (len <= S2F_TOKEN_MAX)
            name = s2f_tokens_match(h->opt.tokens, tok, len);
    }
    if (name)
        return name;
    s2f_gw_logf(h->opt.log, S2F_LOG_WARN, "%s: STOW-RS refused: %s bearer token", remote,
                v ? "wrong" : "no");
    *ret = answer(c, MHD_HTTP_UNAUTHORIZED, "text/plain; charset=utf-8",
                  v ? "invalid bearer token\n" : "bearer token required\n",
                  MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                  v ? "Bearer realm=\"sr2fhir\", error=\"invalid_token\""
                    : "Bearer realm=\"sr2fhir\"");
    return NULL;
}

/* ---- routing -------------------------------------------------------------------------------- */

static int is_stow_path(const char *url)
{
    size_t n = strlen(STOW_PREFIX);
    return !strncmp(url, STOW_PREFIX, n) && (url[n] == '\0' || url[n] == '/');
}

static enum MHD_Result get_only(s2f_httpd *h, struct MHD_Connection *c, const char *url,
                                const char *method)
{
    int get = !strcmp(method, MHD_HTTP_METHOD_GET), head = !strcmp(method, MHD_HTTP_METHOD_HEAD);
    if (!get && !head)
        return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                      "method not allowed\n", MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (!strcmp(url, "/healthz"))
        return text(c, MHD_HTTP_OK, "ok\n");
    if (!strcmp(url, "/readyz"))
        return readyz(h, c);
    return metrics(h, c);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)version;
    listener *l = cls;
    s2f_httpd *h = l->h;
    req_ctx *rq = *req_cls;
    const union MHD_ConnectionInfo *si =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_ctx *cc = si ? si->socket_context : NULL;
    if (!cc)
        return MHD_NO;
    if (rq) /* a later call of a STOW request under way */
        return s2f_stow_handle(h->opt.stow, c, url, method, upload_data, upload_data_size,
                               &rq->stow_cls, rq->who, cc->remote);
    /* Issue 11 gap 5: liveness and readiness answer without a client certificate (load
     * balancers and orchestrators probe them; they tell nothing about the reports);
     * STOW-RS and /metrics need one (docs/decisions.md). */
    if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz"))
        return get_only(h, c, url, method);
    if (l->tls && h->opt.tls_client_ca_pem) {
        if (!cc->checked)
            check_client_cert(c, cc);
        if (!cc->cert_ok) {
            s2f_gw_logf(h->opt.log, S2F_LOG_WARN, "%s: refused: no valid client certificate",
                        cc->remote);
            return text(c, MHD_HTTP_FORBIDDEN, "a valid client certificate is required\n");
        }
    }
    if (!strcmp(url, "/metrics"))
        return get_only(h, c, url, method);
    if (!is_stow_path(url))
        return text(c, MHD_HTTP_NOT_FOUND, "not found\n");
    if (strcmp(method, MHD_HTTP_METHOD_POST))
        return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                      "method not allowed\n", MHD_HTTP_HEADER_ALLOW, "POST");
    const char *who = "-";
    if (h->opt.tokens) {
        enum MHD_Result ret = MHD_NO;
        if (!(who = bearer(h, c, cc->remote, &ret)))
            return ret;
    } else if (cc->cert_ok) {
        who = cc->subject;
    }
    if (!(rq = calloc(1, sizeof *rq)))
        return MHD_NO;
    rq->who = who;
    *req_cls = rq;
    atomic_fetch_add(&h->in_flight, 1);
    return s2f_stow_handle(h->opt.stow, c, url, method, upload_data, upload_data_size,
                           &rq->stow_cls, who, cc->remote);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    listener *l = cls;
    req_ctx *rq = *req_cls;
    if (!rq)
        return;
    s2f_stow_completed(l->h->opt.stow, &rq->stow_cls);
    free(rq);
    *req_cls = NULL;
    atomic_fetch_sub(&l->h->in_flight, 1);
}

/* The calling thread's slot (a free one is taken); NULL when all are taken. Under
 * conn_lock. */
static struct conn_slot *thread_slot(s2f_httpd *h)
{
    pthread_t self = pthread_self();
    struct conn_slot *free_slot = NULL;
    for (size_t i = 0; i < h->nslots; i++) {
        if (h->slots[i].used && pthread_equal(h->slots[i].thread, self))
            return &h->slots[i];
        if (!h->slots[i].used && !free_slot)
            free_slot = &h->slots[i];
    }
    if (free_slot) {
        free_slot->used = 1;
        free_slot->thread = self;
        free_slot->reserved = 0;
    }
    return free_slot;
}

/* MHD's accept policy: admits a connection while fewer than --max-connections are open
 * or admitted on both listeners together; beyond, MHD closes the socket at once. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addr, (void)addrlen;
    listener *l = cls;
    s2f_httpd *h = l->h;
    pthread_mutex_lock(&h->conn_lock);
    struct conn_slot *slot = thread_slot(h);
    if (slot && slot->reserved) { /* this thread's last admission never started */
        slot->reserved = 0;
        h->conn_reserved--;
    }
    int admit = h->conn_open + h->conn_reserved < h->conn_limit;
    if (admit && slot) {
        slot->reserved = 1;
        h->conn_reserved++;
    }
    pthread_mutex_unlock(&h->conn_lock);
    if (!admit)
        s2f_gw_logf(h->opt.log, S2F_LOG_DEBUG, "http: connection refused: %u open "
                    "(--max-connections, both listeners)", h->conn_limit);
    return admit ? MHD_YES : MHD_NO;
}

/* A connection started (counted = 1: it holds a slot) or ended. */
static void count_connection(s2f_httpd *h, int started, int counted)
{
    pthread_mutex_lock(&h->conn_lock);
    if (started) {
        struct conn_slot *slot = thread_slot(h);
        if (slot && slot->reserved) {
            slot->reserved = 0;
            h->conn_reserved--;
        }
        if (counted)
            h->conn_open++;
    } else if (counted && h->conn_open > 0) {
        h->conn_open--;
    }
    pthread_mutex_unlock(&h->conn_lock);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    listener *l = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_ctx *old = *socket_context;
        count_connection(l->h, 0, old && old->counted);
        free(old);
        *socket_context = NULL;
        return;
    }
    conn_ctx *cc = calloc(1, sizeof *cc);
    count_connection(l->h, 1, cc != NULL);
    if (!cc)
        return; /* on_request refuses the connection's requests */
    cc->counted = 1;
    snprintf(cc->remote, sizeof cc->remote, "-");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                               : sizeof(struct sockaddr_in);
        if (getnameinfo(ci->client_addr, len, cc->remote, sizeof cc->remote, NULL, 0,
                        NI_NUMERICHOST) != 0)
            snprintf(cc->remote, sizeof cc->remote, "-");
    }
    *socket_context = cc;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    s2f_httpd *h = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    s2f_gw_logf(h->opt.log, S2F_LOG_DEBUG, "http: %s", msg);
}

/* ---- listening ------------------------------------------------------------------------------ */

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT" resolved into *ai (freeaddrinfo it), checked against the
 * loopback rule for a plain listener. */
static s2f_code resolve_listen(const char *spec, int tls, int allow_http, struct addrinfo **ai,
                               s2f_error *err)
{
    const char *opt_name = tls ? "--https" : "--http";
    char host[256];
    const char *colon = strrchr(spec, ':');
    size_t hl = colon ? (size_t)(colon - spec) : 0;
    *ai = NULL;
    if (!colon || !hl || hl >= sizeof host || !colon[1] || strlen(colon + 1) > 5 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || atoi(colon + 1) > 65535)
        return s2f_fail(err, S2F_EUSAGE, "%s takes HOST:PORT (PORT 0 to 65535), not '%s'",
                        opt_name, spec);
    memcpy(host, spec, hl);
    host[hl] = '\0';
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {0};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    int gr = getaddrinfo(host, colon + 1, &hints, ai);
    if (gr != 0 || !*ai)
        return s2f_fail(err, S2F_EUSAGE, "%s %s: cannot resolve '%s': %s", opt_name, spec,
                        host, gai_strerror(gr));
    if (!tls && !allow_http && !is_loopback((*ai)->ai_addr)) {
        freeaddrinfo(*ai);
        *ai = NULL;
        return s2f_fail(err, S2F_EUSAGE, "--http %s: plain HTTP only on a loopback address "
                        "(use --https, or --allow-http)", spec);
    }
    return S2F_OK;
}

s2f_code s2f_httpd_check_listen(const char *spec, int tls, int allow_http, s2f_error *err)
{
    struct addrinfo *ai = NULL;
    s2f_code rc = resolve_listen(spec, tls, allow_http, &ai, err);
    if (ai)
        freeaddrinfo(ai);
    return rc;
}

/* The listener bound and listening into l->fd; l->url set. */
static s2f_code listen_on(s2f_httpd *h, listener *l, const char *spec, s2f_error *err)
{
    const char *opt_name = l->tls ? "--https" : "--http";
    struct addrinfo *ai = NULL;
    s2f_code rc0 = resolve_listen(spec, l->tls, h->opt.allow_http, &ai, err);
    if (rc0)
        return rc0;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    s2f_code rc = S2F_OK;
    if (fd < 0)
        rc = s2f_fail(err, S2F_EIO, "%s %s: socket: %s", opt_name, spec, strerror(errno));
    else {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0)
            rc = s2f_fail(err, S2F_EIO, "%s %s: cannot listen: %s", opt_name, spec,
                          strerror(errno));
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[INET6_ADDRSTRLEN + 2] = "", port[8] = "";
    if (!rc && (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
                getnameinfo((struct sockaddr *)&ss, sl, addr, sizeof addr, port, sizeof port,
                            NI_NUMERICHOST | NI_NUMERICSERV) != 0))
        rc = s2f_fail(err, S2F_EIO, "%s %s: cannot read the bound address", opt_name, spec);
    int v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (rc) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    l->fd = fd;
    snprintf(l->url, sizeof l->url, "%s://%s%s%s:%s%s", l->tls ? "https" : "http",
             v6 ? "[" : "", addr, v6 ? "]" : "", port, STOW_PREFIX);
    return S2F_OK;
}

static s2f_code start_listener(s2f_httpd *h, listener *l, const char *spec, s2f_error *err)
{
    l->h = h;
    s2f_code rc = listen_on(h, l, spec, err);
    if (rc)
        return rc;
    const s2f_httpd_options *o = &h->opt;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    if (l->tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)o->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)o->tls_key_pem},
        {MHD_OPTION_HTTPS_PRIORITIES, 0,
         (void *)"NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1:-VERS-DTLS-ALL"},
        {o->tls_client_ca_pem ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0,
         (void *)o->tls_client_ca_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
    unsigned limit = o->max_connections ? o->max_connections : 64u;
    unsigned threads = o->threads ? o->threads : 8u;
    if (threads > limit) /* the limit is shared out among the pool's threads */
        threads = limit;
    l->d = MHD_start_daemon(
        flags, 0, on_accept, l, on_request, l,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, /* first, so every message comes here */
        MHD_OPTION_LISTEN_SOCKET, l->fd,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_CONNECTION_TIMEOUT, o->connection_timeout ? o->connection_timeout : 30u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(o->memory_limit ? o->memory_limit : 256u * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
        MHD_OPTION_ARRAY, l->tls ? tls_opts : none,
        MHD_OPTION_END);
    if (!l->d) {
        close(l->fd);
        l->fd = -1;
        return s2f_fail(err, S2F_EIO, "%s %s: the HTTP server did not start%s",
                        l->tls ? "--https" : "--http", spec,
                        l->tls ? " (is the certificate or key refused?)" : "");
    }
    l->fd = -1; /* the daemon's now */
    return S2F_OK;
}

/* The daemon owns the listening socket until it is quiesced (then l->fd holds it again). */
static void stop_listener(listener *l)
{
    if (l->d)
        MHD_stop_daemon(l->d);
    l->d = NULL;
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}

static void free_httpd(s2f_httpd *h)
{
    stop_listener(&h->l[0]);
    stop_listener(&h->l[1]);
    s2f_http_free(h->ready_http);
    free(h->metadata_url);
    if (h->queue)
        s2f_queue_close(h->queue);
    pthread_mutex_destroy(&h->ready_lock);
    pthread_mutex_destroy(&h->queue_lock);
    pthread_mutex_destroy(&h->conn_lock);
    free(h->slots);
    free(h);
}

static s2f_code ready_client(s2f_httpd *h, s2f_error *err)
{
    if (!h->opt.fhir_base)
        return s2f_fail(err, S2F_EUSAGE, "no FHIR base URL for /readyz");
    s2f_client_options co = {0};
    if (h->opt.client)
        co = *h->opt.client;
    co.retries = -1; /* one try; the cache asks again soon */
    co.connect_timeout = READY_TIMEOUT_SECONDS;
    co.timeout = READY_TIMEOUT_SECONDS;
    if (!(h->ready_http = s2f_http_new(&co, err)))
        return err->code;
    size_t n = strlen(h->opt.fhir_base);
    while (n && h->opt.fhir_base[n - 1] == '/')
        n--;
    if (!(h->metadata_url = malloc(n + sizeof "/metadata")))
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    memcpy(h->metadata_url, h->opt.fhir_base, n);
    memcpy(h->metadata_url + n, "/metadata", sizeof "/metadata");
    return S2F_OK;
}

s2f_code s2f_httpd_start(const s2f_httpd_options *opt, s2f_httpd **out, s2f_error *err)
{
    *out = NULL;
    if (!opt->stow || (!opt->http && !opt->https))
        return s2f_fail(err, S2F_EUSAGE, "no listener (--http or --https)");
    if (opt->https && (!opt->tls_cert_pem || !opt->tls_key_pem))
        return s2f_fail(err, S2F_EUSAGE, "--https needs --tls-cert and --tls-key");
    s2f_httpd *h = calloc(1, sizeof *h);
    if (!h)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    h->opt = *opt;
    h->l[0].fd = h->l[1].fd = -1;
    h->l[1].tls = 1;
    pthread_mutex_init(&h->ready_lock, NULL);
    pthread_mutex_init(&h->queue_lock, NULL);
    pthread_mutex_init(&h->conn_lock, NULL);
    h->conn_limit = opt->max_connections ? opt->max_connections : 64u;
    h->nslots = 2u * (opt->threads ? opt->threads : 8u); /* every pool thread, both listeners */
    s2f_code rc = S2F_OK;
    if (!(h->slots = calloc(h->nslots, sizeof *h->slots)))
        rc = s2f_fail(err, S2F_ENOMEM, "out of memory");
    if (!rc)
        rc = ready_client(h, err);
    if (!rc && opt->http)
        rc = start_listener(h, &h->l[0], opt->http, err);
    if (!rc && opt->https)
        rc = start_listener(h, &h->l[1], opt->https, err);
    if (rc) {
        free_httpd(h);
        return rc;
    }
    *out = h;
    return S2F_OK;
}

int s2f_httpd_url(const s2f_httpd *h, int tls, char *buf, size_t cap)
{
    const listener *l = &h->l[tls ? 1 : 0];
    if (!l->d)
        return 0;
    snprintf(buf, cap, "%s", l->url);
    return 1;
}

void s2f_httpd_stop(s2f_httpd *h, int grace_seconds)
{
    if (!h)
        return;
    for (int i = 0; i < 2; i++) { /* no new connections */
        if (h->l[i].d) {
            MHD_socket fd = MHD_quiesce_daemon(h->l[i].d);
            if (fd != MHD_INVALID_SOCKET)
                h->l[i].fd = fd; /* ours again: closed after the daemon stops */
        }
    }
    struct timespec tick = {0, 20 * 1000 * 1000};
    for (long waited = 0; atomic_load(&h->in_flight) > 0 && waited < grace_seconds * 50L;
         waited++)
        nanosleep(&tick, NULL);
    long left = atomic_load(&h->in_flight);
    if (left > 0)
        s2f_gw_logf(h->opt.log, S2F_LOG_WARN, "stopping with %ld STOW-RS request(s) still "
                    "in flight (not acknowledged)", left);
    free_httpd(h);
}
