/*
 * test_worker.c - unit tests of the gateway's delivery workers (src/gateway/worker.c,
 * issue 11 Build #4): the classification of an attempt's result and the backoff, both
 * exhaustively; then the pool against a scripted FHIR server stub in this process
 * (libmicrohttpd on a free loopback port): jobs delivered once each, 503 then 200
 * retried, 401 pausing the pool until the server is fixed, 400 and garbage dead letters,
 * a non-TID-1500 report not applicable, and a prompt stop while idle. Nothing asserts on
 * wall-clock time: the tests count requests and wait (bounded) for queue states.
 */
#include <json-c/json.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "sr_json.h"
#include "gateway/queue.h"
#include "gateway/worker.h"

/* ---- classification ----------------------------------------------------------------- */

TEST(classify_every_code_and_status)
{
    static const s2f_code codes[] = {S2F_OK, S2F_EUSAGE, S2F_EIO, S2F_EFORMAT,
                                     S2F_EUNSUPPORTED, S2F_ENOTTID1500, S2F_ELIMIT, S2F_ENOMEM,
                                     S2F_EINTERNAL, S2F_EREJECTED, S2F_EUNREACHABLE, S2F_ELOOKUP};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        for (long st = 0; st <= 999; st++) {
            s2f_code rc = codes[i];
            s2f_worker_outcome want;
            if (rc == S2F_OK)
                want = S2F_WORKER_DONE;
            else if (rc == S2F_ENOTTID1500)
                want = S2F_WORKER_NOT_APPLICABLE;
            else if (st == 401 || st == 403)
                want = S2F_WORKER_AUTH;
            else if (st == 408 || st == 429 || (st >= 500 && st <= 599))
                want = S2F_WORKER_TRANSIENT;
            else if (rc == S2F_EUNREACHABLE || rc == S2F_ENOMEM)
                want = S2F_WORKER_TRANSIENT;
            else if (rc == S2F_EIO || rc == S2F_EFORMAT || rc == S2F_EUNSUPPORTED ||
                     rc == S2F_ELIMIT)
                want = S2F_WORKER_CONVERSION;
            else
                want = S2F_WORKER_PERMANENT;
            if (s2f_worker_classify(rc, st) != want) {
                printf("    code %d status %ld: %d, expected %d\n", (int)rc, st,
                       (int)s2f_worker_classify(rc, st), (int)want);
                CHECK(0);
            }
        }
    }
    /* the cases the issue names, spelled out */
    CHECK(s2f_worker_classify(S2F_EUNREACHABLE, 0) == S2F_WORKER_TRANSIENT);
    CHECK(s2f_worker_classify(S2F_EUNREACHABLE, 503) == S2F_WORKER_TRANSIENT);
    CHECK(s2f_worker_classify(S2F_EUNREACHABLE, 429) == S2F_WORKER_TRANSIENT);
    CHECK(s2f_worker_classify(S2F_EREJECTED, 408) == S2F_WORKER_TRANSIENT);
    CHECK(s2f_worker_classify(S2F_EREJECTED, 401) == S2F_WORKER_AUTH);
    CHECK(s2f_worker_classify(S2F_EREJECTED, 403) == S2F_WORKER_AUTH);
    CHECK(s2f_worker_classify(S2F_EREJECTED, 400) == S2F_WORKER_PERMANENT);
    CHECK(s2f_worker_classify(S2F_EREJECTED, 404) == S2F_WORKER_PERMANENT);
    CHECK(s2f_worker_classify(S2F_EREJECTED, 422) == S2F_WORKER_PERMANENT);
    CHECK(s2f_worker_classify(S2F_ELOOKUP, 200) == S2F_WORKER_PERMANENT);
    CHECK(s2f_worker_classify(S2F_EFORMAT, 0) == S2F_WORKER_CONVERSION);
    CHECK(s2f_worker_classify(S2F_EIO, 0) == S2F_WORKER_CONVERSION);
    CHECK(s2f_worker_classify(S2F_ENOTTID1500, 0) == S2F_WORKER_NOT_APPLICABLE);
    CHECK(s2f_worker_classify(S2F_OK, 200) == S2F_WORKER_DONE);
}

/* ---- backoff -------------------------------------------------------------------------- */

/* The formula of worker.h, written again independently. */
static long expected_backoff(int attempts, uint64_t rnd, long min_ms, long max_ms)
{
    if (min_ms < 1)
        min_ms = 1;
    if (max_ms < min_ms)
        max_ms = min_ms;
    double base = (double)min_ms;
    for (int i = 1; i < attempts; i++)
        base *= 2;
    if (base > (double)max_ms)
        base = (double)max_ms;
    long b = (long)base;
    return b / 2 + (long)(rnd % (uint64_t)(b / 2 + 1));
}

TEST(backoff_is_exponential_capped_and_jittered)
{
    static const long mins[] = {1, 2, 3, 500, 1000, 7777};
    static const long maxs[] = {1, 1000, 30000, 300000, 86400000};
    static const uint64_t rnds[] = {0, 1, 2, 499, 500, 501, 12345, UINT64_MAX / 3, UINT64_MAX};
    for (size_t a = 0; a < sizeof mins / sizeof mins[0]; a++)
        for (size_t b = 0; b < sizeof maxs / sizeof maxs[0]; b++)
            for (int att = -1; att <= 70; att++)
                for (size_t r = 0; r < sizeof rnds / sizeof rnds[0]; r++) {
                    long got = s2f_worker_backoff_ms(att, -1, rnds[r], mins[a], maxs[b]);
                    long want = expected_backoff(att, rnds[r], mins[a], maxs[b]);
                    if (got != want) {
                        printf("    attempts %d rnd %llu min %ld max %ld: %ld, expected %ld\n",
                               att, (unsigned long long)rnds[r], mins[a], maxs[b], got, want);
                        CHECK(0);
                    }
                    long cap = maxs[b] > mins[a] ? maxs[b] : mins[a];
                    CHECK(got >= 0 && got <= cap);
                }
    /* 50-100 %: the smallest and largest jitter of the 4th attempt from 1 s */
    CHECK(s2f_worker_backoff_ms(4, -1, 0, 1000, 300000) == 4000);
    CHECK(s2f_worker_backoff_ms(4, -1, 4000, 1000, 300000) == 8000);
    CHECK(s2f_worker_backoff_ms(1, -1, 0, 1000, 300000) == 500);
    CHECK(s2f_worker_backoff_ms(100, -1, 150000, 1000, 300000) == 300000);
}

TEST(backoff_honours_retry_after)
{
    CHECK(s2f_worker_backoff_ms(1, 0, 77, 1000, 300000) == 0);
    CHECK(s2f_worker_backoff_ms(1, 7, 77, 1000, 300000) == 7000);
    CHECK(s2f_worker_backoff_ms(30, 7, 77, 1000, 300000) == 7000);
    /* asked for longer than the backoff's cap: still honoured, up to a day */
    CHECK(s2f_worker_backoff_ms(1, 3600, 77, 1000, 300000) == 3600000L);
    CHECK(s2f_worker_backoff_ms(1, 86400, 77, 1000, 300000) == 86400000L);
    CHECK(s2f_worker_backoff_ms(1, 10L * 86400, 77, 1000, 300000) == 86400000L);
    CHECK(s2f_worker_backoff_ms(1, 0x7fffffffL, 77, 1000, 300000) == 86400000L);
    /* none given (-1): the exponential backoff */
    CHECK(s2f_worker_backoff_ms(3, -1, 0, 1000, 300000) == 2000);
}

/* ---- a scripted FHIR server stub --------------------------------------------------------- */

#define STUB_SCRIPT_MAX 8
#define STUB_BODY_MAX (4u << 20)
#define STUB_POSTS_MAX 256

typedef struct stub {
    struct MHD_Daemon *d;
    int port;
    char base[64];
    pthread_mutex_t lock;
    /* under lock */
    int auth_fail;                    /* 1: every request is answered 401 */
    int script[STUB_SCRIPT_MAX];      /* statuses of the transaction POSTs; 0 = success; the
                                         last one repeats */
    int nscript;
    const char *retry_after;          /* with a failing status: the Retry-After header */
    int requests, posts, posts_ok;
    int auth_delay_ms;                /* 401 answers wait this long (requests overlap) */
    int inflight, max_inflight;       /* requests being answered; the most at once */
    int post_delay_ms;                /* transaction POSTs wait this long before the answer */
    int closing;                      /* stub_stop: delays end */
    int posts_arrived;                /* transaction POSTs received (answered or not yet) */
    char *post_body[STUB_POSTS_MAX];  /* bodies of the successful POSTs */
} stub;

typedef struct upload {
    char *data;
    size_t len;
} upload;

static struct MHD_Response *json_response(const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/fhir+json");
    return r;
}

/* 201 for every entry of the posted transaction. */
static char *transaction_response(const char *body)
{
    json_object *b = json_tokener_parse(body);
    json_object *entries = NULL;
    size_t n = 0;
    if (b && json_object_object_get_ex(b, "entry", &entries))
        n = json_object_array_length(entries);
    json_object_put(b);
    size_t cap = 128 + n * 64, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    len += (size_t)snprintf(out + len, cap - len,
                            "{\"resourceType\":\"Bundle\",\"type\":\"transaction-response\","
                            "\"entry\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s{\"response\":{\"status\":\"201 Created\"}}",
                                i ? "," : "");
    snprintf(out + len, cap - len, "]}");
    return out;
}

static enum MHD_Result stub_answer(stub *s, struct MHD_Connection *c, const char *url,
                                   const char *method, upload *u)
{
    static const char caps[] = "{\"resourceType\":\"CapabilityStatement\",\"status\":\"active\","
                               "\"kind\":\"instance\",\"fhirVersion\":\"5.0.0\"}";
    static const char empty[] = "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":0}";
    char outcome[256];
    int status = 200;
    char *own = NULL;
    const char *text;
    const char *retry_after = NULL;
    pthread_mutex_lock(&s->lock);
    s->requests++;
    if (++s->inflight > s->max_inflight)
        s->max_inflight = s->inflight;
    int is_post = !strcmp(method, "POST");
    if (s->auth_fail && s->auth_delay_ms) {
        struct timespec ts = {0, s->auth_delay_ms * 1000000L};
        pthread_mutex_unlock(&s->lock);
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&s->lock);
    }
    if (s->auth_fail) {
        status = 401;
        text = "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\","
               "\"code\":\"login\",\"diagnostics\":\"stub: bad token\"}]}";
        if (is_post)
            s->posts++;
    } else if (!is_post) {
        text = strstr(url, "/metadata") ? caps : empty;
    } else {
        s->posts_arrived++;
        for (int waited = 0; waited < s->post_delay_ms && !s->closing; waited += 10) {
            struct timespec ts = {0, 10 * 1000000L};
            pthread_mutex_unlock(&s->lock);
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&s->lock);
        }
        int st = s->nscript ? s->script[s->posts < s->nscript ? s->posts : s->nscript - 1] : 0;
        s->posts++;
        if (st) {
            status = st;
            snprintf(outcome, sizeof outcome, "{\"resourceType\":\"OperationOutcome\",\"issue\":"
                     "[{\"severity\":\"error\",\"code\":\"invalid\",\"diagnostics\":\"stub says "
                     "%d\"}]}", st);
            text = outcome;
            retry_after = s->retry_after;
        } else {
            text = own = transaction_response(u->data ? u->data : "");
            if (s->posts_ok < STUB_POSTS_MAX && u->data)
                s->post_body[s->posts_ok] = strdup(u->data);
            s->posts_ok++;
        }
    }
    s->inflight--;
    pthread_mutex_unlock(&s->lock);
    struct MHD_Response *r = json_response(text ? text : "{}");
    if (retry_after)
        MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    free(own);
    return ret;
}

static enum MHD_Result stub_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **req_cls)
{
    (void)version;
    stub *s = cls;
    upload *u = *req_cls;
    if (!u) {
        if (!(u = calloc(1, sizeof *u)))
            return MHD_NO;
        *req_cls = u;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t add = *upload_data_size;
        if (u->len + add > STUB_BODY_MAX)
            return MHD_NO;
        char *p = realloc(u->data, u->len + add + 1);
        if (!p)
            return MHD_NO;
        memcpy(p + u->len, upload_data, add);
        u->data = p;
        u->len += add;
        u->data[u->len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }
    return stub_answer(s, c, url, method, u);
}

static void stub_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    upload *u = *req_cls;
    if (u) {
        free(u->data);
        free(u);
        *req_cls = NULL;
    }
}

static int stub_start(stub *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0; /* any free port */
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, stub_handler, s, MHD_OPTION_SOCK_ADDR, &a,
                            MHD_OPTION_NOTIFY_COMPLETED, stub_completed, s, MHD_OPTION_END);
    if (!s->d)
        return 0;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d/fhir", s->port);
    return s->port != 0;
}

static void stub_stop(stub *s)
{
    pthread_mutex_lock(&s->lock);
    s->closing = 1;
    pthread_mutex_unlock(&s->lock);
    if (s->d)
        MHD_stop_daemon(s->d);
    for (int i = 0; i < s->posts_ok && i < STUB_POSTS_MAX; i++)
        free(s->post_body[i]);
    pthread_mutex_destroy(&s->lock);
}

static void stub_set(stub *s, int auth_fail, const int *script, int n, const char *retry_after)
{
    pthread_mutex_lock(&s->lock);
    s->auth_fail = auth_fail;
    s->nscript = n;
    for (int i = 0; i < n && i < STUB_SCRIPT_MAX; i++)
        s->script[i] = script[i];
    s->retry_after = retry_after;
    pthread_mutex_unlock(&s->lock);
}

static int stub_get(stub *s, const int *field)
{
    pthread_mutex_lock(&s->lock);
    int v = *field;
    pthread_mutex_unlock(&s->lock);
    return v;
}

/* How many successful POSTs carried the report with tracking identifier "job-<i>-end". */
static int stub_deliveries_of(stub *s, int i)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"job-%d-end\"", i);
    int n = 0;
    pthread_mutex_lock(&s->lock);
    for (int k = 0; k < s->posts_ok && k < STUB_POSTS_MAX; k++)
        if (s->post_body[k] && strstr(s->post_body[k], needle))
            n++;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* ---- reports, the queue, the pool -------------------------------------------------------- */

#define NUMITEM(rel, v, s, m, value)                                                        \
    "{" ITEM(rel, "NUM") "," CONCEPT(v, s, m) ",\"0040A300\":{\"vr\":\"SQ\",\"Value\":[{"    \
    "\"0040A30A\":{\"vr\":\"DS\",\"Value\":[\"" value "\"]},"                                \
    "\"004008EA\":{\"vr\":\"SQ\",\"Value\":[" CODE("mm", "UCUM", "millimeter") "]}}]}}"
#define CONTAINERITEM(rel, v, s, m, ...)                                                    \
    "{" ITEM(rel, "CONTAINER") "," CONCEPT(v, s, m) ","                                     \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" KIDS(__VA_ARGS__) "}"

/* A TID 1500 report (root 126000) or another SR (root 18748-4), with SOP Instance UID
 * 2.25.777.<i> and the tracking identifier "job-<i>-end" the stub can find. */
static const char report_format[] =
    "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"" ENHANCED "\"]},"
    "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"2.25.777.%d\"]},"
    "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"2.25.777.1\"]},"
    "\"00100020\":{\"vr\":\"LO\",\"Value\":[\"PAT-1\"]},"
    ITEM("x", "CONTAINER") ",\"0040A043\":{\"vr\":\"SQ\",\"Value\":[%s]},"
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}"
    KIDS(CONTAINERITEM("CONTAINS", "126010", "DCM", "Imaging Measurements",
                       CONTAINERITEM("CONTAINS", "125007", "DCM", "Measurement Group",
                                     "{" ITEM("HAS OBS CONTEXT", "TEXT") ","
                                     CONCEPT("112039", "DCM", "Tracking Identifier") ","
                                     "\"0040A160\":{\"vr\":\"UT\",\"Value\":[\"job-%d-end\"]}},"
                                     NUMITEM("CONTAINS", "81827009", "SCT", "Diameter", "10.5"))))
    "}";

typedef struct fixture {
    char dir[64];
    char db[128];
    s2f_queue *q;
    stub srv;
    s2f_gw_metrics m;
    s2f_gw_log log;
    char log_path[128];
    FILE *log_file;
    s2f_workers *pool;
    int64_t ids[64];
    int audit_fd;                 /* -1, or the audit log a test asked for */
    char audit_path[128];
} fixture;

static int fixture_open(fixture *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/s2f-worker-XXXXXX");
    if (!mkdtemp(f->dir))
        return 0;
    snprintf(f->db, sizeof f->db, "%s/queue.sqlite", f->dir);
    snprintf(f->log_path, sizeof f->log_path, "%s/log", f->dir);
    snprintf(f->audit_path, sizeof f->audit_path, "%s/audit.jsonl", f->dir);
    f->audit_fd = -1;
    s2f_error err = {0};
    if (s2f_queue_open(f->db, NULL, &f->q, &err)) {
        printf("    queue: %s\n", err.message);
        return 0;
    }
    if (!(f->log_file = fopen(f->log_path, "w")))
        return 0;
    s2f_gw_log_init(&f->log, f->log_file, S2F_LOG_DEBUG);
    if (!stub_start(&f->srv)) {
        printf("    the stub server did not start\n");
        return 0;
    }
    return 1;
}

/* Writes the report of job i (kind 0: TID 1500, 1: another SR, 2: garbage bytes) and
 * enqueues it; f->ids[i] is its job. */
static int add_job(fixture *f, int i, int kind)
{
    char path[160], body[8192];
    snprintf(path, sizeof path, "%s/sr-%d.json", f->dir, i);
    if (kind == 2)
        snprintf(body, sizeof body, "\x01\x02 this is not DICOM %d", i);
    else
        snprintf(body, sizeof body, report_format, i,
                 kind == 0 ? CODE("126000", "DCM", "Imaging Measurement Report")
                           : CODE("18748-4", "LN", "Diagnostic imaging report"),
                 i);
    FILE *out = fopen(path, "w");
    if (!out)
        return 0;
    fputs(body, out);
    fclose(out);
    char uid[64];
    snprintf(uid, sizeof uid, "2.25.777.%d", i);
    bool created;
    s2f_error err = {0};
    if (s2f_queue_enqueue(f->q, uid, path, "test", (int64_t)time(NULL), &f->ids[i], &created,
                          &err)) {
        printf("    enqueue: %s\n", err.message);
        return 0;
    }
    return created;
}

static int pool_start(fixture *f, int threads, long idle_poll_ms)
{
    s2f_workers_options o = {0};
    o.queue_path = f->db;
    o.server = f->srv.base;
    o.client.retries = -1;        /* each attempt of a worker is one request */
    o.threads = threads;
    o.lease_seconds = 60;
    o.backoff_min_ms = 10;
    o.backoff_max_ms = 20;
    o.auth_probe = 1;
    o.idle_poll_ms = idle_poll_ms;
    o.audit_fd = f->audit_fd;
    o.metrics = &f->m;
    o.log = &f->log;
    s2f_error err = {0};
    if (s2f_workers_start(&o, &f->pool, &err)) {
        printf("    start: %s\n", err.message);
        return 0;
    }
    return 1;
}

static void fixture_close(fixture *f)
{
    if (f->pool)
        s2f_workers_stop(f->pool, 5);
    f->pool = NULL;
    stub_stop(&f->srv);
    s2f_queue_close(f->q);
    if (f->audit_fd >= 0)
        close(f->audit_fd);
    if (f->log_file) {
        s2f_gw_log_destroy(&f->log);
        fclose(f->log_file);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        printf("    could not remove %s\n", f->dir);
}

static s2f_job_state job_state(fixture *f, int i, char *cls, char *reason)
{
    s2f_job_state st = S2F_JOB_NSTATES;
    char c[64], r[1100];
    s2f_error err = {0};
    if (s2f_queue_job_state(f->q, f->ids[i], &st, cls ? cls : c, 64, reason ? reason : r, 1100,
                            &err))
        return S2F_JOB_NSTATES;
    return st;
}

static void nap(void)
{
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (at most about 60 s, a bound against hangs, not a measure) until the jobs
 * 0..n-1 are all finished (done, dead or not applicable). */
static int wait_finished(fixture *f, int n)
{
    for (int round = 0; round < 3000; round++) {
        int finished = 0;
        for (int i = 0; i < n; i++) {
            s2f_job_state st = job_state(f, i, NULL, NULL);
            finished += st == S2F_JOB_DONE || st == S2F_JOB_DEAD || st == S2F_JOB_NOT_APPLICABLE;
        }
        if (finished == n)
            return 1;
        nap();
    }
    return 0;
}

static int wait_counter(atomic_llong *c, long long at_least)
{
    for (int round = 0; round < 3000 && atomic_load(c) < at_least; round++)
        nap();
    return atomic_load(c) >= at_least;
}

/* Lines of the log holding `needle`. */
static int log_lines(fixture *f, const char *needle)
{
    fflush(f->log_file);
    FILE *in = fopen(f->log_path, "r");
    char line[4200];
    int n = 0;
    while (in && fgets(line, sizeof line, in))
        n += strstr(line, needle) != NULL;
    if (in)
        fclose(in);
    return n;
}

/* ---- the pool's cases ------------------------------------------------------------------- */

/* A deadline that would outlast the lease, thread counts out of range, a missing server
 * or queue: refused at start with S2F_EUSAGE, no thread started. */
TEST(start_refuses_bad_options)
{
    s2f_workers_options o = {0};
    s2f_workers *pool = NULL;
    s2f_error err = {0};
    o.queue_path = "/nonexistent-dir/queue.sqlite";
    o.server = "http://127.0.0.1:9/fhir";
    o.audit_fd = -1;
    o.lease_seconds = 600;
    o.client.deadline = 541; /* the limit is 600 - 60 */
    CHECK(s2f_workers_start(&o, &pool, &err) == S2F_EUSAGE && !pool);
    CHECK(strstr(err.message, "--deadline 541 s") && strstr(err.message, "at most 540 s"));
    o.client.deadline = 0;
    o.threads = 257;
    CHECK(s2f_workers_start(&o, &pool, &err) == S2F_EUSAGE && !pool);
    o.threads = -1;
    CHECK(s2f_workers_start(&o, &pool, &err) == S2F_EUSAGE && !pool);
    o.threads = 1;
    o.lease_seconds = 9;
    CHECK(s2f_workers_start(&o, &pool, &err) == S2F_EUSAGE && !pool);
    o.lease_seconds = 600;
    o.server = NULL;
    CHECK(s2f_workers_start(&o, &pool, &err) == S2F_EUSAGE && !pool);
    /* within the limits, the queue that cannot be opened is the error */
    o.server = "http://127.0.0.1:9/fhir";
    o.client.deadline = 540;
    CHECK(s2f_workers_start(&o, &pool, &err) == S2F_EIO && !pool);
}

TEST(pool_delivers_each_job_once)
{
    enum { N = 24 };
    fixture f;
    int ok = fixture_open(&f);
    for (int i = 0; ok && i < N; i++)
        ok = add_job(&f, i, 0);
    ok = ok && pool_start(&f, 4, 50);
    ok = ok && wait_finished(&f, N);
    int each_once = 1, all_done = 1;
    for (int i = 0; ok && i < N; i++) {
        all_done &= job_state(&f, i, NULL, NULL) == S2F_JOB_DONE;
        each_once &= stub_deliveries_of(&f.srv, i) == 1;
    }
    int posts = stub_get(&f.srv, &f.srv.posts);
    long long delivered = atomic_load(&f.m.delivered);
    fixture_close(&f);
    CHECK(ok);
    CHECK(all_done);
    CHECK(each_once);
    CHECK(posts == N);
    CHECK(delivered == N);
}

/* The audit lines holding `needle`. */
static int audit_lines(fixture *f, const char *needle)
{
    FILE *in = fopen(f->audit_path, "r");
    char line[8192];
    int n = 0;
    while (in && fgets(line, sizeof line, in))
        n += strstr(line, needle) != NULL;
    if (in)
        fclose(in);
    return n;
}

TEST(pool_retries_503_then_delivers)
{
    static const int script[] = {503, 503, 0};
    fixture f;
    int ok = fixture_open(&f);
    ok = ok && (f.audit_fd = open(f.audit_path, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0;
    stub_set(&f.srv, 0, script, 3, NULL);
    ok = ok && add_job(&f, 0, 0) && pool_start(&f, 2, 50) && wait_finished(&f, 1);
    s2f_job_info info = {0};
    s2f_error err = {0};
    int got = ok && !s2f_queue_get(f.q, f.ids[0], &info, &err);
    int posts = stub_get(&f.srv, &f.srv.posts);
    long long transient = atomic_load(&f.m.failed[S2F_FAIL_TRANSIENT]);
    int retry_lines = log_lines(&f, "attempt 1 failed, next in");
    /* one audit line per attempt: two failed with 503, then delivered */
    int audit_all = audit_lines(&f, "\"sop_instance_uid\":\"2.25.777.0\"");
    int audit_503 = audit_lines(&f, "\"outcome\":\"failed\",\"http_status\":503");
    int audit_ok = audit_lines(&f, "\"outcome\":\"delivered\"");
    fixture_close(&f);
    CHECK(ok && got);
    CHECK(info.state == S2F_JOB_DONE);
    CHECK(info.attempts == 3);
    CHECK(posts == 3);
    CHECK(transient == 2);
    CHECK(retry_lines == 1);
    CHECK(audit_all == 3 && audit_503 == 2 && audit_ok == 1);
}

TEST(pool_honours_retry_after)
{
    static const int script[] = {503};
    fixture f;
    int ok = fixture_open(&f);
    stub_set(&f.srv, 0, script, 1, "3600");
    ok = ok && add_job(&f, 0, 0) && pool_start(&f, 2, 50) &&
         wait_counter(&f.m.failed[S2F_FAIL_TRANSIENT], 1);
    s2f_workers_stop(f.pool, 5); /* the job is back to pending by now */
    f.pool = NULL;
    s2f_job_info info = {0};
    s2f_error err = {0};
    int got = ok && !s2f_queue_get(f.q, f.ids[0], &info, &err);
    int64_t now = (int64_t)time(NULL);
    int posts = stub_get(&f.srv, &f.srv.posts);
    fixture_close(&f);
    CHECK(ok && got);
    CHECK(info.state == S2F_JOB_PENDING);
    /* the backoff alone would be 1 s (20 ms rounded up); the server asked for an hour */
    CHECK(info.not_before >= now + 3500);
    CHECK(posts == 1);
}

TEST(pool_pauses_on_401_and_resumes)
{
    enum { N = 6 };
    fixture f;
    int ok = fixture_open(&f);
    stub_set(&f.srv, 1, NULL, 0, NULL);
    pthread_mutex_lock(&f.srv.lock);
    f.srv.auth_delay_ms = 100;
    pthread_mutex_unlock(&f.srv.lock);
    for (int i = 0; ok && i < N; i++)
        ok = add_job(&f, i, 0);
    /* at least three auth failures: the first pauses, the later ones are probes */
    ok = ok && pool_start(&f, 4, 50) && wait_counter(&f.m.failed[S2F_FAIL_AUTH], 3);
    int paused = ok && s2f_workers_paused(f.pool) == 1 && atomic_load(&f.m.paused) == 1;
    int none_dead = 1, none_done = 1;
    for (int i = 0; ok && i < N; i++) {
        s2f_job_state st = job_state(&f, i, NULL, NULL);
        none_dead &= st != S2F_JOB_DEAD;
        none_done &= st != S2F_JOB_DONE;
    }
    /* paused: one probe at a time, while before the pause the four workers overlapped */
    pthread_mutex_lock(&f.srv.lock);
    f.srv.max_inflight = 0;
    pthread_mutex_unlock(&f.srv.lock);
    long long auth = atomic_load(&f.m.failed[S2F_FAIL_AUTH]);
    ok = ok && wait_counter(&f.m.failed[S2F_FAIL_AUTH], auth + 2);
    int probes_alone = stub_get(&f.srv, &f.srv.max_inflight) == 1;
    auth = atomic_load(&f.m.failed[S2F_FAIL_AUTH]);
    int pause_lines = log_lines(&f, "delivery PAUSED");
    stub_set(&f.srv, 0, NULL, 0, NULL); /* the credentials are fixed */
    ok = ok && wait_finished(&f, N);
    int all_done = 1;
    for (int i = 0; ok && i < N; i++)
        all_done &= job_state(&f, i, NULL, NULL) == S2F_JOB_DONE;
    int resumed = ok && s2f_workers_paused(f.pool) == 0 && atomic_load(&f.m.paused) == 0;
    int resume_lines = log_lines(&f, "delivery resumed");
    pause_lines = log_lines(&f, "delivery PAUSED");
    long long dead = atomic_load(&f.m.dead);
    fixture_close(&f);
    CHECK(ok);
    CHECK(paused);
    CHECK(none_dead && none_done);
    CHECK(auth >= 5);
    CHECK(probes_alone);
    CHECK(pause_lines == 1);
    CHECK(all_done);
    CHECK(resumed);
    CHECK(resume_lines == 1);
    CHECK(dead == 0);
}

/* Waits (bounded, about 60 s) until the pool's pause is `want`. */
static int wait_paused(fixture *f, int want)
{
    for (int round = 0; round < 3000 && s2f_workers_paused(f->pool) != want; round++)
        nap();
    return s2f_workers_paused(f->pool) == want;
}

/* Issue 11 gap 2: paused while no job is left to probe with: the probe runs on its own
 * schedule (a search that changes nothing), stays paused on 401 and resumes on 200, without
 * a job arriving. */
TEST(pool_probe_resumes_with_empty_queue)
{
    fixture f;
    int ok = fixture_open(&f);
    stub_set(&f.srv, 1, NULL, 0, NULL);
    ok = ok && add_job(&f, 0, 0) && pool_start(&f, 2, 50) && wait_paused(&f, 1);
    /* the test holds the job itself (a long lease): the queue has nothing to claim */
    s2f_job held;
    bool found = false;
    s2f_error err = {0};
    for (int round = 0; ok && !found && round < 3000; round++) {
        if (s2f_queue_claim(f.q, "test", 600, (int64_t)time(NULL), &held, &found, &err))
            ok = 0;
        if (!found)
            nap();
    }
    int posts = stub_get(&f.srv, &f.srv.posts);
    int requests = stub_get(&f.srv, &f.srv.requests);
    /* a jobless probe refused: still paused */
    for (int round = 0; round < 3000 && stub_get(&f.srv, &f.srv.requests) < requests + 1; round++)
        nap();
    int refused_probe = stub_get(&f.srv, &f.srv.requests) >= requests + 1;
    int still_paused = s2f_workers_paused(f.pool) == 1;
    stub_set(&f.srv, 0, NULL, 0, NULL); /* the credentials are fixed */
    int resumed = ok && found && wait_paused(&f, 0);
    int resume_lines = log_lines(&f, "delivery resumed");
    int posts_after = stub_get(&f.srv, &f.srv.posts);
    if (found)
        s2f_queue_done(f.q, &held, (int64_t)time(NULL), &err);
    fixture_close(&f);
    CHECK(ok && found);
    CHECK(refused_probe && still_paused);
    CHECK(resumed);
    CHECK(resume_lines == 1);
    CHECK(posts_after == posts); /* the probes posted nothing */
}

TEST(pool_dead_letters_400_as_permanent)
{
    static const int script[] = {400};
    fixture f;
    char cls[64] = "", reason[1100] = "";
    int ok = fixture_open(&f);
    stub_set(&f.srv, 0, script, 1, NULL);
    ok = ok && add_job(&f, 0, 0) && pool_start(&f, 2, 50) && wait_finished(&f, 1);
    s2f_job_state st = job_state(&f, 0, cls, reason);
    int posts = stub_get(&f.srv, &f.srv.posts);
    long long dead = atomic_load(&f.m.dead), perm = atomic_load(&f.m.failed[S2F_FAIL_PERMANENT]);
    fixture_close(&f);
    CHECK(ok);
    CHECK(st == S2F_JOB_DEAD);
    CHECK_STR(cls, "permanent");
    CHECK(strstr(reason, "HTTP 400") && strstr(reason, "stub says 400"));
    CHECK(posts == 1);
    CHECK(dead == 1 && perm == 1);
}

TEST(pool_dead_letters_garbage_as_conversion)
{
    fixture f;
    char cls[64] = "", reason[1100] = "", cls2[64] = "", reason2[1100] = "";
    int ok = fixture_open(&f);
    ok = ok && add_job(&f, 0, 2) && add_job(&f, 1, 0);
    char path[160];
    snprintf(path, sizeof path, "%s/sr-1.json", f.dir);
    ok = ok && unlink(path) == 0; /* job 1's file is gone */
    ok = ok && pool_start(&f, 2, 50) && wait_finished(&f, 2);
    s2f_job_state st = job_state(&f, 0, cls, reason);
    s2f_job_state st2 = job_state(&f, 1, cls2, reason2);
    int requests = stub_get(&f.srv, &f.srv.requests);
    long long conv = atomic_load(&f.m.failed[S2F_FAIL_CONVERSION]);
    fixture_close(&f);
    CHECK(ok);
    CHECK(st == S2F_JOB_DEAD && st2 == S2F_JOB_DEAD);
    CHECK_STR(cls, "conversion");
    CHECK_STR(cls2, "conversion");
    CHECK(reason[0] && reason2[0]);
    CHECK(requests == 0);
    CHECK(conv == 2);
}

TEST(pool_finishes_other_sr_as_not_applicable)
{
    fixture f;
    char reason[1100] = "";
    int ok = fixture_open(&f);
    ok = ok && add_job(&f, 0, 1) && pool_start(&f, 2, 50) && wait_finished(&f, 1);
    s2f_job_state st = job_state(&f, 0, NULL, reason);
    int requests = stub_get(&f.srv, &f.srv.requests);
    long long na = atomic_load(&f.m.not_applicable), dead = atomic_load(&f.m.dead);
    fixture_close(&f);
    CHECK(ok);
    CHECK(st == S2F_JOB_NOT_APPLICABLE);
    CHECK(strstr(reason, "TID 1500") || strstr(reason, "Measurement Report"));
    CHECK(requests == 0);
    CHECK(na == 1 && dead == 0);
}

/* Stops the pool on another thread and waits (bounded, about 30 s: a guard against a
 * hang, not a measure) for it to return; 0 when it did not (the pool is then left alone). */
typedef struct stopper {
    s2f_workers *pool;
    int grace;
    atomic_int done;
} stopper;

static void *stop_thread(void *arg)
{
    stopper *st = arg;
    s2f_workers_stop(st->pool, st->grace);
    atomic_store(&st->done, 1);
    return NULL;
}

static int stop_bounded(fixture *f, int grace)
{
    static stopper st; /* outlives a stop that hangs */
    st.pool = f->pool;
    st.grace = grace;
    atomic_store(&st.done, 0);
    pthread_t t;
    if (pthread_create(&t, NULL, stop_thread, &st))
        return 0;
    for (int round = 0; round < 1500 && !atomic_load(&st.done); round++)
        nap();
    if (!atomic_load(&st.done)) {
        pthread_detach(t);
        return 0;
    }
    pthread_join(t, NULL);
    f->pool = NULL;
    return 1;
}

/* A delivery in flight when the stop's grace (0 here) ends is cut off and its job goes
 * back to pending; without the cancel the stop would wait 30 s and end it as done. */
TEST(pool_stop_cuts_off_delivery_after_grace)
{
    fixture f;
    int ok = fixture_open(&f);
    pthread_mutex_lock(&f.srv.lock);
    f.srv.post_delay_ms = 30000;
    pthread_mutex_unlock(&f.srv.lock);
    ok = ok && add_job(&f, 0, 0) && pool_start(&f, 1, 50);
    for (int round = 0; ok && round < 1500 && !stub_get(&f.srv, &f.srv.posts_arrived); round++)
        nap(); /* until the transaction waits for its answer */
    int stopped = ok && stop_bounded(&f, 0);
    if (ok && !stopped) {
        CHECK(stopped); /* the pool still runs: leave the fixture */
    }
    s2f_job_state st = job_state(&f, 0, NULL, NULL);
    int posts = stub_get(&f.srv, &f.srv.posts_arrived);
    fixture_close(&f);
    CHECK(ok && stopped);
    CHECK(st == S2F_JOB_PENDING);
    CHECK(posts == 1); /* it was the transaction that was cut off */
}

/* A worker whose lease was taken over while it delivered (another claim: attempts grew)
 * cannot record its result: it logs the lost lease, counts nothing and goes on with the
 * next job. The takeover is made in the database directly, as another gateway would. */
TEST(pool_lost_lease_is_logged_and_skipped)
{
    fixture f;
    int ok = fixture_open(&f);
    pthread_mutex_lock(&f.srv.lock);
    f.srv.post_delay_ms = 1000;
    pthread_mutex_unlock(&f.srv.lock);
    ok = ok && add_job(&f, 0, 0) && pool_start(&f, 1, 50);
    for (int round = 0; ok && round < 1500 && !stub_get(&f.srv, &f.srv.posts_arrived); round++)
        nap(); /* the transaction waits for its answer: take the lease over now */
    sqlite3 *db = NULL;
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE jobs SET attempts = attempts + 1, lease_owner = 'other' "
             "WHERE id = %lld", (long long)f.ids[0]);
    ok = ok && sqlite3_open(f.db, &db) == SQLITE_OK && sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
         sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    ok = ok && add_job(&f, 1, 0); /* the worker goes on with the next job */
    for (int round = 0; ok && round < 1500 && job_state(&f, 1, NULL, NULL) != S2F_JOB_DONE; round++)
        nap();
    s2f_job_state st0 = job_state(&f, 0, NULL, NULL), st1 = job_state(&f, 1, NULL, NULL);
    int lost_lines = log_lines(&f, "the lease was lost");
    long long delivered = atomic_load(&f.m.delivered);
    fixture_close(&f);
    CHECK(ok);
    CHECK(st0 == S2F_JOB_LEASED); /* the other holder's, untouched */
    CHECK(st1 == S2F_JOB_DONE);
    CHECK(lost_lines == 1);
    CHECK(delivered == 1);
}

/* Idle workers polling once an hour: stop must wake them. */
TEST(pool_stop_while_idle_returns)
{
    fixture f;
    int ok = fixture_open(&f) && pool_start(&f, 4, 3600L * 1000L);
    for (int round = 0; round < 10; round++)
        nap(); /* all idle */
    int stopped = ok && stop_bounded(&f, 5);
    if (ok && !stopped) {
        CHECK(stopped);
    }
    fixture_close(&f);
    CHECK(ok && stopped);
}

/* With an hour between polls, only the wake can make the idle workers claim the job. */
TEST(pool_wake_claims_at_once)
{
    fixture f;
    int ok = fixture_open(&f);
    ok = ok && pool_start(&f, 2, 3600L * 1000L);
    /* let both workers find the queue empty and go idle */
    for (int round = 0; round < 10; round++)
        nap();
    ok = ok && add_job(&f, 0, 0);
    if (ok)
        s2f_workers_wake(f.pool);
    ok = ok && wait_finished(&f, 1);
    s2f_job_state st = job_state(&f, 0, NULL, NULL);
    fixture_close(&f);
    CHECK(ok);
    CHECK(st == S2F_JOB_DONE);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(classify_every_code_and_status);
    RUN(backoff_is_exponential_capped_and_jittered);
    RUN(backoff_honours_retry_after);
    RUN(start_refuses_bad_options);
    RUN(pool_delivers_each_job_once);
    RUN(pool_retries_503_then_delivers);
    RUN(pool_honours_retry_after);
    RUN(pool_pauses_on_401_and_resumes);
    RUN(pool_probe_resumes_with_empty_queue);
    RUN(pool_dead_letters_400_as_permanent);
    RUN(pool_dead_letters_garbage_as_conversion);
    RUN(pool_finishes_other_sr_as_not_applicable);
    RUN(pool_lost_lease_is_logged_and_skipped);
    RUN(pool_stop_while_idle_returns);
    RUN(pool_stop_cuts_off_delivery_after_grace);
    RUN(pool_wake_claims_at_once);
    CHECK_DONE();
}
