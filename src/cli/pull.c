/*
 * pull.c - `sr2fhir pull` (issue 13, docs/pull.md): finds the SR instances of a DICOMweb
 * server (QIDO-RS), retrieves the new ones (WADO-RS) into a gateway data folder's durable
 * queue with the pull engine (gateway/pull.h), and with --server delivers them in-process
 * with the gateway's workers (worker.h) until every job it queued is finished. Without
 * --data the data folder is a private temporary one, removed at exit. One summary line on
 * stdout. It is the program sr2fhir-pull (main.c execs it: it links libcurl and GnuTLS).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli.h"
#include "gateway/intake.h"
#include "gateway/log.h"
#include "gateway/pull.h"
#include "gateway/queue.h"
#include "gateway/worker.h"
#include "util/clock.h"

#define WAIT_POLL_MS 100
#define DW_PREFIX "--dicomweb-"

typedef struct pull_cfg {
    cli_client_opts client;       /* --server and send's options (the FHIR side) */
    cli_client_opts dwc;          /* --dicomweb-* (the DICOMweb side) */
    const char *dicomweb, *data, *study, *since, *until, *audit_log;
    long jobs, workers, retry_total, page_size;
    int recheck, verbose;
} pull_cfg;

/* The jobs this run queued, for waiting on their delivery (appended by fetch threads). */
typedef struct tracked {
    pthread_mutex_t lock;
    int64_t *id;
    size_t n, cap;
    int oom;
} tracked;

static int usage(const char *what)
{
    return cli_error(NULL, S2F_EUSAGE, "pull: %s (try 'sr2fhir help pull')", what);
}

/* ---- options -------------------------------------------------------------------------------- */

static const char *const dw_names[] = {"token-env", "token-file", "user", "password-file",
                                       "cert", "key", "cacert", "connect-timeout", "timeout",
                                       "retries", "retry-delay"};

/* "--dicomweb-NAME" of a client option: the "--NAME" into buf; 0 when not one. */
static int dw_option(const char *a, char *buf, size_t cap)
{
    if (strncmp(a, DW_PREFIX, strlen(DW_PREFIX)))
        return 0;
    const char *name = a + strlen(DW_PREFIX);
    for (size_t i = 0; i < sizeof dw_names / sizeof dw_names[0]; i++)
        if (!strcmp(name, dw_names[i]))
            return snprintf(buf, cap, "--%s", name), 1;
    return 0;
}

static int own_takes_value(const char *a)
{
    static const char *const names[] = {"--dicomweb", "--data", "--study", "--since", "--until",
                                        "--audit-log", "--jobs", "-j", "--workers",
                                        "--retry-total", "--page-size"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(a, names[i]))
            return 1;
    return 0;
}

/* DICOM DA (8 digits) or DT (10, 12 or 14 digits). */
static int valid_date(const char *v)
{
    size_t n = strlen(v);
    if (n != 8 && n != 10 && n != 12 && n != 14)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    return 1;
}

static int own_value(pull_cfg *cfg, const char *a, const char *v)
{
    long n;
    if (!strcmp(a, "--dicomweb"))
        cfg->dicomweb = v;
    else if (!strcmp(a, "--data"))
        cfg->data = v;
    else if (!strcmp(a, "--audit-log"))
        cfg->audit_log = v;
    else if (!strcmp(a, "--study")) {
        if (!s2f_intake_uid_valid(v, strlen(v)))
            return usage("--study takes a Study Instance UID (digits and dots, at most 64)");
        cfg->study = v;
    } else if (!strcmp(a, "--since") || !strcmp(a, "--until")) {
        if (!valid_date(v))
            return usage("--since and --until take YYYYMMDD or YYYYMMDDHH[MM[SS]]");
        *(a[2] == 's' ? &cfg->since : &cfg->until) = v;
    } else {
        long lo = 1, hi = !strcmp(a, "--retry-total") ? 366L * 86400
                          : !strcmp(a, "--page-size")  ? 10000
                          : !strcmp(a, "--workers")    ? 64
                                                       : S2F_PULL_JOBS_MAX;
        if (!cli_number_in(v, lo, hi, &n))
            return cli_error(NULL, S2F_EUSAGE, "pull: %s takes a whole number from %ld to %ld, "
                             "not '%s'", a, lo, hi, v);
        *(!strcmp(a, "--retry-total") ? &cfg->retry_total
          : !strcmp(a, "--page-size") ? &cfg->page_size
          : !strcmp(a, "--workers")   ? &cfg->workers
                                      : &cfg->jobs) = n;
    }
    return 0;
}

static int flag(pull_cfg *cfg, const char *a)
{
    if (cli_client_flag_option(&cfg->client, a)) {
        if (!strcmp(a, "--allow-http")) /* both sides: plain http to a host not on loopback */
            cfg->dwc.opt.allow_http = 1;
        return 1;
    }
    if (!strcmp(a, "--dicomweb-insecure"))
        cfg->dwc.opt.insecure = 1;
    else if (!strcmp(a, "--recheck"))
        cfg->recheck = 1;
    else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
        cfg->verbose = 1;
    else
        return 0;
    return 1;
}

/* One option with its value; 0, or an exit code after a message. */
static int value_option(pull_cfg *cfg, const char *a, const char *v)
{
    char name[64];
    if (dw_option(a, name, sizeof name)) {
        int r = cli_client_value_option(&cfg->dwc, "pull", name, v);
        return r > 0 ? 0 : S2F_EUSAGE;
    }
    if (own_takes_value(a))
        return own_value(cfg, a, v);
    int r = cli_client_value_option(&cfg->client, "pull", a, v);
    return r > 0 ? 0 : r < 0 ? S2F_EUSAGE : usage("unknown option");
}

/* 0 ok, -1 help printed, else an exit code after a message. */
static int parse(pull_cfg *cfg, int argc, char **argv)
{
    char name[64];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return fputs(cli_help_text("pull"), stdout), -1;
        if (cli_client_is_secret_option(a) || !strcmp(a, "--dicomweb-token") ||
            !strcmp(a, "--dicomweb-password"))
            return usage("secrets are not taken on the command line (other users see it): use "
                         "--token-env, --token-file, --password-file (--dicomweb-... for the "
                         "DICOMweb server) or the environment");
        if (flag(cfg, a))
            continue;
        if (!own_takes_value(a) && !cli_client_takes_value(a) && !dw_option(a, name, sizeof name))
            return cli_error(NULL, S2F_EUSAGE, "pull: %s '%s' (try 'sr2fhir help pull')",
                             a[0] == '-' ? "unknown option" : "unexpected argument", a);
        if (!v)
            return cli_error(NULL, S2F_EUSAGE, "pull: %s needs a value", a);
        int code = value_option(cfg, a, argv[++i]);
        if (code)
            return code;
    }
    return 0;
}

static int check_cfg(pull_cfg *cfg)
{
    if (!cfg->dicomweb || !*cfg->dicomweb)
        return usage("no DICOMweb server (--dicomweb URL)");
    if (!cfg->data && (!cfg->client.server || !*cfg->client.server))
        return usage("no FHIR server (--server URL or SR2FHIR_SERVER) and no data folder "
                     "(--data DIR): nothing would deliver what is pulled");
    if (cfg->study && (cfg->since || cfg->until))
        return usage("--study excludes --since and --until");
    if (cfg->until && !cfg->since)
        return usage("--until goes with --since");
    if (cfg->since && cfg->until && strncmp(cfg->since, cfg->until, 8) > 0)
        return usage("--since is after --until");
    if (strlen(cfg->dicomweb) + 5 > S2F_QUEUE_SOURCE_MAX)
        return usage("the --dicomweb URL is too long");
    return 0;
}

/* The DICOMweb server's credentials: never the FHIR server's (SR2FHIR_TOKEN and
 * SR2FHIR_PASSWORD are not read for it). 1, or 0 after a message. */
static int dw_secrets(pull_cfg *cfg)
{
    cli_client_opts *d = &cfg->dwc;
    const char *env_token = getenv("SR2FHIR_DICOMWEB_TOKEN");
    const char *env_pass = getenv("SR2FHIR_DICOMWEB_PASSWORD");
    if (d->opt.user && !d->password_file) {
        if (!env_pass || !*env_pass)
            return usage("--dicomweb-user needs SR2FHIR_DICOMWEB_PASSWORD or "
                         "--dicomweb-password-file"), 0;
        if (d->token_file || d->token_env)
            return usage("--dicomweb-user and a DICOMweb token exclude each other"), 0;
        if (!(d->password = strdup(env_pass)))
            return cli_error(NULL, S2F_ENOMEM, "out of memory"), 0;
        d->opt.password = d->password;
        return 1;
    }
    if (!d->opt.user && !d->token_file && !d->token_env && !d->password_file) {
        if (env_token && *env_token)
            d->token_env = "SR2FHIR_DICOMWEB_TOKEN";
        else
            return 1;
    }
    return cli_client_load_secrets(d, "pull");
}

/* ---- the data folder ------------------------------------------------------------------------ */

/* Removes the regular files of `dir` and the folder (a private data folder: one level). */
static void remove_flat(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[PATH_MAX];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            (size_t)snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < sizeof p)
            unlink(p);
    if (d)
        closedir(d);
    rmdir(dir);
}

static void remove_private(const char *dir)
{
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof p, "%s/incoming", dir) < sizeof p)
        remove_flat(p);
    remove_flat(dir);
}

/* ---- the run -------------------------------------------------------------------------------- */

typedef struct pull_run {
    pull_cfg *cfg;
    char dir[PATH_MAX], queue_path[PATH_MAX + 16], source[S2F_QUEUE_SOURCE_MAX + 1];
    int private_dir, audit_fd;
    s2f_gw_log log;
    s2f_intake *in;
    s2f_queue *q;
    s2f_dw *search, *fetch[S2F_PULL_JOBS_MAX];
    int nfetch;
    s2f_workers *workers;
    tracked jobs;
    s2f_pull_counts c;
    long long delivered, not_applicable, dead;
    int dead_code;                /* exit code of the first dead job */
} pull_run;

static void on_queued(void *ctx, int64_t job_id, bool created)
{
    (void)created;
    tracked *t = ctx;
    pthread_mutex_lock(&t->lock);
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        int64_t *more = realloc(t->id, cap * sizeof *more);
        if (more)
            t->id = more, t->cap = cap;
    }
    if (t->n < t->cap)
        t->id[t->n++] = job_id;
    else
        t->oom = 1;
    pthread_mutex_unlock(&t->lock);
}

static void wake(void *ctx)
{
    pull_run *pr = ctx;
    if (pr->workers)
        s2f_workers_wake(pr->workers);
}

static int open_data(pull_run *pr)
{
    pull_cfg *cfg = pr->cfg;
    if (cfg->data) {
        int code = cli_make_folder(cfg->data);
        if (code)
            return code;
        snprintf(pr->dir, sizeof pr->dir, "%s", cfg->data);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(pr->dir, sizeof pr->dir, "%s/sr2fhir-pull-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(pr->dir))
            return cli_error(pr->dir, S2F_EIO, "cannot create a temporary data folder: %s",
                             strerror(errno));
        pr->private_dir = 1;
    }
    snprintf(pr->queue_path, sizeof pr->queue_path, "%s/queue.sqlite", pr->dir);
    const char *audit = cfg->audit_log;
    char def[PATH_MAX + 16];
    if (!audit && cfg->data)
        snprintf(def, sizeof def, "%s/audit.jsonl", pr->dir), audit = def;
    if (audit && (pr->audit_fd = open(audit, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return cli_error(audit, S2F_EIO, "cannot open the audit log: %s", strerror(errno));
    return 0;
}

static int start_parts(pull_run *pr)
{
    pull_cfg *cfg = pr->cfg;
    s2f_error err = {0};
    s2f_intake_options io = {0};
    io.data_dir = pr->dir;
    io.queue_path = pr->queue_path;
    io.high_water = 100000;
    io.min_free_bytes = 64ULL << 20;
    io.audit_fd = pr->audit_fd;
    io.log = &pr->log;
    io.on_enqueued = wake;
    io.on_enqueued_ctx = pr;
    if (s2f_intake_new(&io, &pr->in, &err) != S2F_OK ||
        s2f_queue_open(pr->queue_path, NULL, &pr->q, &err) != S2F_OK)
        return cli_error(pr->dir, err.code, "%s", err.message);
    s2f_dw_options dwo = {0};
    dwo.client = cfg->dwc.opt;
    dwo.page_size = (unsigned)cfg->page_size;
    pr->nfetch = (int)cfg->jobs;
    s2f_code rc = s2f_dw_new(cfg->dicomweb, &dwo, &pr->search, &err);
    for (int i = 0; !rc && i < pr->nfetch; i++)
        rc = s2f_dw_new(cfg->dicomweb, &dwo, &pr->fetch[i], &err);
    if (rc)
        return cli_error(cfg->dicomweb, err.code, "%s", err.message);
    if (!cfg->client.server)
        return 0;
    s2f_workers_options wo = {0};
    wo.queue_path = pr->queue_path;
    wo.server = cfg->client.server;
    wo.client = cfg->client.opt;
    wo.threads = (int)cfg->workers;
    wo.retry_total = cfg->retry_total;
    wo.backoff_max_ms = 30000;
    wo.auth_probe = 5;
    wo.idle_poll_ms = 200;
    wo.audit_fd = pr->audit_fd;
    wo.log = &pr->log;
    if (s2f_workers_start(&wo, &pr->workers, &err) != S2F_OK)
        return cli_error(cfg->client.server, err.code, "%s", err.message);
    return 0;
}

static int dead_code(const char *cls)
{
    if (!strcmp(cls, "transient"))
        return S2F_EUNREACHABLE;
    if (!strcmp(cls, "conversion"))
        return S2F_EFORMAT;
    return S2F_EREJECTED;
}

/* Counts the finished of the tracked jobs from *next on; 1 when all are finished. */
static int settle(pull_run *pr, size_t *next, int *code)
{
    s2f_error err = {0};
    char cls[S2F_QUEUE_CLASS_MAX + 1];
    for (; *next < pr->jobs.n; (*next)++) {
        s2f_job_state st;
        s2f_code rc = s2f_queue_job_state(pr->q, pr->jobs.id[*next], &st, cls, sizeof cls, NULL,
                                          0, &err);
        if (rc == S2F_ELOOKUP) /* purged by a running service: it was finished */
            continue;
        if (rc)
            return *code = cli_error(pr->queue_path, rc, "%s", err.message), 1;
        if (st == S2F_JOB_PENDING || st == S2F_JOB_LEASED)
            return 0;
        *(st == S2F_JOB_DONE ? &pr->delivered
          : st == S2F_JOB_DEAD ? &pr->dead
                               : &pr->not_applicable) += 1;
        if (st == S2F_JOB_DEAD && !pr->dead_code)
            pr->dead_code = dead_code(cls);
    }
    return 1;
}

/* Waits until every job this run queued is finished (the workers' retry_total bounds the
 * wait: a job retried that long is dead), or delivery is paused by refused credentials. */
static int wait_delivered(pull_run *pr)
{
    size_t next = 0;
    int code = 0;
    long long limit = s2f_mono_ns() + (pr->cfg->retry_total + 900) * 1000000000LL;
    while (!settle(pr, &next, &code)) {
        if (s2f_workers_paused(pr->workers))
            return cli_error(pr->cfg->client.server, S2F_EREJECTED, "pull: the FHIR server "
                             "refused the credentials (401/403); %zu jobs not delivered",
                             pr->jobs.n - next);
        if (s2f_mono_ns() > limit)
            return cli_error(pr->cfg->client.server, S2F_EUNREACHABLE, "pull: %zu jobs not "
                             "delivered in time", pr->jobs.n - next);
        struct timespec ts = {0, WAIT_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return code;
}

static int pull_now(pull_run *pr)
{
    pull_cfg *cfg = pr->cfg;
    snprintf(pr->source, sizeof pr->source, "pull %s", cfg->dicomweb);
    s2f_dw_query q = {cfg->study, cfg->since, cfg->until};
    s2f_pull_options po = {0};
    po.source = pr->source;
    po.recheck = cfg->recheck != 0;
    po.on_queued = on_queued;
    po.ctx = &pr->jobs;
    po.log = &pr->log;
    s2f_error err = {0};
    s2f_code rc = s2f_pull_run(pr->search, pr->fetch, pr->nfetch, pr->in, pr->q, &q, &po, &pr->c,
                               &err);
    int code = 0;
    if (rc || err.code)
        code = cli_error(cfg->dicomweb, rc ? rc : err.code, "%s%s", err.message,
                         rc ? "" : (pr->c.failed > 1 ? " (and more instances failed)" : ""));
    if (pr->jobs.oom && !code)
        code = cli_error(NULL, S2F_ENOMEM, "pull: out of memory");
    if (pr->workers) {
        int w = wait_delivered(pr);
        if (!code)
            code = w;
    }
    if (!code && pr->dead_code)
        code = cli_error(cfg->client.server, pr->dead_code, "pull: %lld jobs failed (dead "
                         "letters: 'sr2fhir queue list --state dead%s%s')", pr->dead,
                         cfg->data ? " --data " : "", cfg->data ? cfg->data : "");
    return code;
}

static void summary(const pull_run *pr)
{
    printf("pull: found %lld, new %lld, skipped %lld, queued %lld, delivered %lld, "
           "not_applicable %lld, failed %lld\n", pr->c.found, pr->c.retrieved, pr->c.skipped,
           pr->c.queued, pr->delivered, pr->not_applicable,
           pr->c.failed + pr->c.refused + pr->dead);
    fflush(stdout);
}

static void stop_parts(pull_run *pr)
{
    if (pr->workers)
        s2f_workers_stop(pr->workers, 5);
    for (int i = 0; i < pr->nfetch; i++)
        if (pr->fetch[i])
            s2f_dw_free(pr->fetch[i]);
    if (pr->search)
        s2f_dw_free(pr->search);
    if (pr->q)
        s2f_queue_close(pr->q);
    if (pr->in)
        s2f_intake_free(pr->in);
    if (pr->audit_fd >= 0)
        close(pr->audit_fd);
    if (pr->private_dir)
        remove_private(pr->dir);
}

static int run(pull_cfg *cfg)
{
    pull_run *pr = calloc(1, sizeof *pr);
    if (!pr)
        return cli_error(NULL, S2F_ENOMEM, "out of memory");
    pr->cfg = cfg;
    pr->audit_fd = -1;
    pthread_mutex_init(&pr->jobs.lock, NULL);
    s2f_gw_log_init(&pr->log, stderr, cfg->verbose ? S2F_LOG_INFO : S2F_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int code = open_data(pr);
    if (!code)
        code = start_parts(pr);
    if (!code)
        code = pull_now(pr);
    summary(pr);
    stop_parts(pr);
    curl_global_cleanup();
    s2f_gw_log_destroy(&pr->log);
    pthread_mutex_destroy(&pr->jobs.lock);
    free(pr->jobs.id);
    free(pr);
    return code;
}

int cmd_pull(int argc, char **argv)
{
    pull_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.client.server = getenv("SR2FHIR_SERVER");
    cfg.jobs = 4;
    cfg.workers = 4;
    cfg.retry_total = 300;
    int code = parse(&cfg, argc, argv);
    if (code < 0)
        return 0;
    if (!code)
        code = check_cfg(&cfg);
    if (!code && cfg.client.server && !cli_client_load_secrets(&cfg.client, "pull"))
        code = S2F_EUSAGE;
    if (!code && !dw_secrets(&cfg))
        code = S2F_EUSAGE;
    if (!code)
        code = run(&cfg);
    cli_client_forget_secrets(&cfg.client);
    cli_client_forget_secrets(&cfg.dwc);
    return code;
}
