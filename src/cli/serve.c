/*
 * serve.c - `sr2fhir serve`: the gateway service (issue 11; docs/gateway.md "Running the
 * service"). Reads the options (command line over an optional --config file with the same
 * keys), checks them all before anything is created, then starts the STOW-RS receiver
 * (stow.h), the DICOM C-STORE receiver when --dicom is given (scp.h, issue 12), the
 * delivery workers (worker.h) and the HTTP daemons (httpd.h), prints one
 * start-up line per listener, and waits for signals in the main thread (sigtimedwait: no
 * work in signal handlers), purging old finished jobs on the way. SIGTERM / SIGINT stop it
 * cleanly (exit 0); SIGHUP reopens the --log file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli.h"
#include "gateway/httpd.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/pull.h"
#include "gateway/queue.h"
#include "gateway/orphans.h"
#include "gateway/intake.h"
#include "gateway/scp.h"
#include "gateway/stow.h"
#include "gateway/worker.h"

#define CONFIG_MAX_BYTES (1L << 20)
#define CONFIG_LINE_MAX 4096
#define PEM_MAX_BYTES (1L << 20)
#define HOUSEKEEPING_SECONDS 60
#define DICOM_PEERS_MAX 1024

typedef struct serve_cfg {
    cli_client_opts client;       /* --server, send's options, the secrets */
    const char *http, *https, *tls_cert, *tls_key, *tls_client_ca, *tokens, *data;
    const char *audit_log, *log_path, *config;
    /* the DICOM receiver (issue 12) */
    const char *dicom, *aet, *dicom_tls_cert, *dicom_tls_key, *dicom_tls_client_ca;
    long dicom_max_associations, dicom_max_pdu, dicom_timeout, dicom_artim;
    s2f_scp_peer *peers;          /* --dicom-peer, repeatable */
    size_t n_peers;
    int peers_from_file;          /* the peers are the config file's (the command line
                                     replaces them) */
    int in_argv;                  /* parsing the command line now */
    long workers, retry_total, auth_probe, lease, backoff_min, backoff_max, high_water, min_free_mb, keep_done, max_body,
        max_part, max_connections, connection_timeout, http_threads, stop_grace;
    const char *pull_url, *pull_token_file, *pull_cacert; /* issue 13: the polling source */
    long pull_interval, pull_lookback, pull_jobs;
    const char *fhircast_hub, *fhircast_topic, *fhircast_token_file; /* issue 15 */
    s2f_log_level level;
    char **owned;                 /* the config file's values (the options point into them) */
    size_t n_owned;
} serve_cfg;

static int usage(const char *what)
{
    return cli_error(NULL, S2F_EUSAGE, "serve: %s (try 'sr2fhir help serve')", what);
}

/* ---- options -------------------------------------------------------------------------------- */

typedef enum { OPT_STR, OPT_NUM, OPT_LEVEL, OPT_PEER } opt_kind;

typedef struct opt_def {
    const char *name;
    opt_kind kind;
    size_t offset;                /* of the const char * or long in serve_cfg */
    long lo, hi;
} opt_def;

#define STR(n, f) {n, OPT_STR, offsetof(serve_cfg, f), 0, 0}
#define NUM(n, f, lo, hi) {n, OPT_NUM, offsetof(serve_cfg, f), lo, hi}

static const opt_def own_options[] = {
    STR("--http", http), STR("--https", https), STR("--tls-cert", tls_cert),
    STR("--tls-key", tls_key), STR("--tls-client-ca", tls_client_ca), STR("--tokens", tokens),
    STR("--data", data), STR("--audit-log", audit_log), STR("--log", log_path),
    {"--log-level", OPT_LEVEL, 0, 0, 0},
    NUM("--workers", workers, 1, 256),
    NUM("--retry-total", retry_total, 1, 366L * 86400),
    NUM("--auth-probe", auth_probe, 1, 86400),
    NUM("--lease", lease, 10, 86400),
    NUM("--backoff-min", backoff_min, 1, 3600000L),
    NUM("--backoff-max", backoff_max, 1, 86400000L),
    NUM("--high-water", high_water, 1, 1000000000L),
    NUM("--min-free-mb", min_free_mb, 0, 1L << 30),
    NUM("--keep-done", keep_done, 0, 3660L * 86400),
    NUM("--max-body", max_body, 1024, 1L << 40),
    NUM("--max-part", max_part, 1024, 1L << 40),
    NUM("--max-connections", max_connections, 1, 100000),
    NUM("--connection-timeout", connection_timeout, 1, 3600),
    NUM("--http-threads", http_threads, 1, 256),
    NUM("--stop-grace", stop_grace, 0, 3600),
    STR("--dicom", dicom), STR("--aet", aet), {"--dicom-peer", OPT_PEER, 0, 0, 0},
    NUM("--dicom-max-associations", dicom_max_associations, 1, 4096),
    NUM("--dicom-max-pdu", dicom_max_pdu, 4096, 16L << 20),
    NUM("--dicom-timeout", dicom_timeout, 1, 86400),
    NUM("--dicom-artim", dicom_artim, 1, 3600),
    STR("--dicom-tls-cert", dicom_tls_cert), STR("--dicom-tls-key", dicom_tls_key),
    STR("--dicom-tls-client-ca", dicom_tls_client_ca),
    STR("--pull", pull_url), STR("--pull-token-file", pull_token_file),
    STR("--pull-cacert", pull_cacert), NUM("--pull-interval", pull_interval, 1, 86400),
    NUM("--pull-lookback", pull_lookback, 0, 3660L * 86400), NUM("--pull-jobs", pull_jobs, 1, 32),
    STR("--fhircast-hub", fhircast_hub), STR("--fhircast-topic", fhircast_topic),
    STR("--fhircast-token-file", fhircast_token_file),
};

static const opt_def *own_option(const char *name)
{
    for (size_t i = 0; i < sizeof own_options / sizeof own_options[0]; i++)
        if (!strcmp(name, own_options[i].name))
            return &own_options[i];
    return NULL;
}

static int takes_value(const char *name)
{
    return own_option(name) || cli_client_takes_value(name) || !strcmp(name, "--config");
}

static int set_level(serve_cfg *cfg, const char *v)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(v, names[i]))
            return cfg->level = (s2f_log_level)i, 1;
    return usage("--log-level takes error, warn, info or debug"), 0;
}

/* --dicom-peer AET[@ADDRESS] (repeatable; the command line's replace the config file's);
 * 1, or 0 after a usage message. */
static int add_peer(serve_cfg *cfg, const char *v)
{
    if (cfg->in_argv && cfg->peers_from_file)
        cfg->n_peers = cfg->peers_from_file = 0;
    if (!cfg->in_argv)
        cfg->peers_from_file = 1;
    const char *at = strchr(v, '@');
    size_t n = at ? (size_t)(at - v) : strlen(v);
    unsigned char probe[sizeof(struct in6_addr)];
    if (!n || n > S2F_DIMSE_AET_MAX || strspn(v, " ") >= n || memchr(v, '\\', n))
        return cli_error(NULL, S2F_EUSAGE, "serve: --dicom-peer '%s': the AE title takes 1 to "
                         "16 characters (not only spaces, no backslash)", v), 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
            return cli_error(NULL, S2F_EUSAGE, "serve: --dicom-peer '%s': the AE title takes "
                             "printable ASCII only", v), 0;
    if (at && (strlen(at + 1) >= sizeof cfg->peers[0].address ||
               (inet_pton(AF_INET, at + 1, probe) != 1 && inet_pton(AF_INET6, at + 1, probe) != 1)))
        return cli_error(NULL, S2F_EUSAGE, "serve: --dicom-peer '%s': the address after '@' "
                         "must be a numeric IPv4 or IPv6 address", v), 0;
    if (cfg->n_peers >= DICOM_PEERS_MAX)
        return usage("more than 1024 --dicom-peer"), 0;
    s2f_scp_peer *more = realloc(cfg->peers, (cfg->n_peers + 1) * sizeof *more);
    if (!more)
        return cli_error(NULL, S2F_ENOMEM, "out of memory"), 0;
    cfg->peers = more;
    s2f_scp_peer *p = &cfg->peers[cfg->n_peers++];
    memset(p, 0, sizeof *p);
    while (n && v[n - 1] == ' ')   /* the DIMSE layer compares AE titles trimmed */
        n--;
    size_t lead = strspn(v, " ");
    memcpy(p->aet, v + lead, n - lead);
    if (at && inet_pton(AF_INET, at + 1, probe) == 1)   /* one spelling: the receiver's */
        inet_ntop(AF_INET, probe, p->address, sizeof p->address);
    else if (at && inet_pton(AF_INET6, at + 1, probe) == 1)
        inet_ntop(AF_INET6, probe, p->address, sizeof p->address);
    return 1;
}

/* An option with its value; 1, or 0 after a usage message. */
static int set_value(serve_cfg *cfg, const char *name, const char *v)
{
    const opt_def *d = own_option(name);
    if (!d) {
        int r = cli_client_value_option(&cfg->client, "serve", name, v);
        return r > 0;
    }
    if (d->kind == OPT_LEVEL)
        return set_level(cfg, v);
    if (d->kind == OPT_PEER)
        return add_peer(cfg, v);
    if (d->kind == OPT_STR) {
        if (!*v)
            return cli_error(NULL, S2F_EUSAGE, "serve: %s needs a value", name), 0;
        *(const char **)((char *)cfg + d->offset) = v;
        return 1;
    }
    long n;
    if (!cli_number_in(v, d->lo, d->hi, &n))
        return cli_error(NULL, S2F_EUSAGE, "serve: %s takes a whole number from %ld to %ld, "
                         "not '%s'", name, d->lo, d->hi, v), 0;
    *(long *)((char *)cfg + d->offset) = n;
    return 1;
}

/* A flag given in the config file as `key = yes|no|true|false|1|0`. */
static int set_flag_from_file(serve_cfg *cfg, const char *name, const char *v)
{
    int on = !strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1");
    int off = !strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0");
    if (!on && !off)
        return cli_error(NULL, S2F_EUSAGE, "serve: %s takes yes or no", name), 0;
    if (on)
        return cli_client_flag_option(&cfg->client, name);
    s2f_client_options *o = &cfg->client.opt;
    *(!strcmp(name, "--insecure")            ? &o->insecure
      : !strcmp(name, "--allow-http")        ? &o->allow_http
      : !strcmp(name, "--diagnostic-report") ? &o->diagnostic_report
                                             : &o->require_existing) = 0;
    return 1;
}

static int is_flag(const char *name)
{
    return !strcmp(name, "--require-existing") || !strcmp(name, "--insecure") ||
           !strcmp(name, "--allow-http") || !strcmp(name, "--diagnostic-report");
}

/* ---- the config file ------------------------------------------------------------------------ */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && strchr(" \t\r\n", s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int keep(serve_cfg *cfg, char *s)
{
    char **more = realloc(cfg->owned, (cfg->n_owned + 1) * sizeof *more);
    if (!more)
        return 0;
    cfg->owned = more;
    cfg->owned[cfg->n_owned++] = s;
    return 1;
}

/* One `key = value` line of the config file; 1, or 0 after a message naming FILE:LINE. */
static int config_line(serve_cfg *cfg, const char *path, long lineno, char *line)
{
    char *s = trim(line);
    if (!*s || *s == '#')
        return 1;
    char *eq = strchr(s, '=');
    if (!eq)
        return cli_error(NULL, S2F_EUSAGE, "serve: %s:%ld: not a line 'key = value'", path,
                         lineno), 0;
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    char name[80];
    if (!*key || strlen(key) > 60 || key[0] == '-')
        return cli_error(NULL, S2F_EUSAGE, "serve: %s:%ld: not a line 'key = value'", path,
                         lineno), 0;
    snprintf(name, sizeof name, "--%s", key);
    if (cli_client_is_secret_option(name))
        return cli_error(NULL, S2F_EUSAGE, "serve: %s:%ld: secrets are not taken in the config "
                         "file: use token-file, token-env, password-file or the environment",
                         path, lineno), 0;
    if (!strcmp(name, "--config") || (!is_flag(name) && !takes_value(name)))
        return cli_error(NULL, S2F_EUSAGE, "serve: %s:%ld: unknown key '%s'", path, lineno,
                         key), 0;
    if (is_flag(name))
        return set_flag_from_file(cfg, name, value);
    char *copy = strdup(value);
    if (!copy || !keep(cfg, copy)) {
        free(copy);
        return cli_error(NULL, S2F_ENOMEM, "out of memory"), 0;
    }
    return set_value(cfg, name, copy);
}

/* Reads --config FILE; 0 (usage or I/O error printed, *code set) or 1. */
static int read_config(serve_cfg *cfg, const char *path, int *code)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return *code = cli_error(path, S2F_EIO, "cannot read the config file: %s",
                                 strerror(errno)), 0;
    char *line = malloc(CONFIG_LINE_MAX);
    long lineno = 0, total = 0;
    int ok = line != NULL;
    *code = ok ? S2F_EUSAGE : S2F_ENOMEM;
    while (ok && fgets(line, CONFIG_LINE_MAX, f)) {
        lineno++;
        size_t n = strlen(line);
        total += (long)n;
        if ((n == CONFIG_LINE_MAX - 1 && line[n - 1] != '\n') || total > CONFIG_MAX_BYTES) {
            cli_error(NULL, S2F_EUSAGE, "serve: %s:%ld: %s", path, lineno,
                      total > CONFIG_MAX_BYTES ? "the config file is larger than 1 MiB"
                                               : "line too long");
            ok = 0;
        } else {
            ok = config_line(cfg, path, lineno, line);
        }
    }
    if (ok && ferror(f)) {
        *code = cli_error(path, S2F_EIO, "cannot read the config file");
        ok = 0;
    }
    free(line);
    fclose(f);
    return ok;
}

/* ---- the command line ----------------------------------------------------------------------- */

/* --config FILE from argv (NULL when absent); 0 after a usage message. */
static int find_config(int argc, char **argv, const char **config)
{
    *config = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc)
                return cli_error(NULL, S2F_EUSAGE, "serve: --config needs a value"), 0;
            if (*config)
                return usage("--config is given twice"), 0;
            *config = argv[++i];
        } else if (takes_value(argv[i])) {
            i++;
        }
    }
    return 1;
}

/* 1 ok, 0 usage error printed, -1 help printed. */
static int parse_argv(serve_cfg *cfg, int argc, char **argv)
{
    cfg->in_argv = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return fputs(cli_help_text("serve"), stdout), -1;
        if (cli_client_is_secret_option(a))
            return usage("secrets are not taken on the command line (other users see it): use "
                         "--token-env, --token-file, SR2FHIR_PASSWORD or --password-file"), 0;
        if (cli_client_flag_option(&cfg->client, a))
            continue;
        if (a[0] != '-')
            return cli_error(NULL, S2F_EUSAGE, "serve: unexpected argument '%s' (try 'sr2fhir "
                             "help serve')", a), 0;
        if (!takes_value(a))
            return cli_error(NULL, S2F_EUSAGE, "serve: unknown option '%s' (try 'sr2fhir help "
                             "serve')", a), 0;
        if (!v)
            return cli_error(NULL, S2F_EUSAGE, "serve: %s needs a value", a), 0;
        i++;
        if (strcmp(a, "--config") && !set_value(cfg, a, v))
            return 0;
    }
    return 1;
}

static void defaults(serve_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->client.server = getenv("SR2FHIR_SERVER");
    cfg->workers = 4;
    cfg->retry_total = 86400;
    cfg->auth_probe = 60;
    cfg->high_water = 100000;
    cfg->min_free_mb = 256;
    cfg->keep_done = 604800;
    cfg->max_body = 512L << 20;
    cfg->max_part = 256L << 20;
    cfg->max_connections = 64;
    cfg->connection_timeout = 30;
    cfg->http_threads = 8;
    cfg->stop_grace = 10;
    cfg->dicom_max_associations = 16;
    cfg->dicom_max_pdu = 262144;
    cfg->dicom_timeout = 60;
    cfg->dicom_artim = 30;
    cfg->pull_interval = 60;
    cfg->pull_jobs = 2;
    cfg->level = S2F_LOG_INFO;
}

/* The DICOM receiver's options (issue 12); 0 or an exit code. */
static int check_dicom(const serve_cfg *cfg)
{
    int tls = cfg->dicom_tls_cert || cfg->dicom_tls_key || cfg->dicom_tls_client_ca;
    if (!cfg->dicom)
        return cfg->aet || cfg->n_peers || tls
                   ? usage("--aet, --dicom-peer and --dicom-tls-* go with --dicom")
                   : 0;
    if (tls && (!cfg->dicom_tls_cert || !cfg->dicom_tls_key))
        return usage("DICOM TLS needs --dicom-tls-cert FILE and --dicom-tls-key FILE (PEM)");
    if (!cfg->aet)
        return usage("--dicom needs --aet AET (the AE title senders call)");
    size_t n = strlen(cfg->aet);
    if (n > S2F_DIMSE_AET_MAX || strspn(cfg->aet, " ") == n || strchr(cfg->aet, '\\'))
        return usage("--aet takes 1 to 16 characters (not only spaces, no backslash)");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)cfg->aet[i] < 0x20 || (unsigned char)cfg->aet[i] > 0x7e ||
            (cfg->aet[i] == ' ' && (i == 0 || i == n - 1)))
            return usage("--aet takes printable ASCII without leading or trailing spaces");
    const char *colon = strrchr(cfg->dicom, ':');
    if (!colon || colon == cfg->dicom || !colon[1] || strspn(colon + 1, "0123456789") !=
        strlen(colon + 1) || strlen(colon + 1) > 5 || atol(colon + 1) > 65535)
        return cli_error(NULL, S2F_EUSAGE, "serve: --dicom '%s': not HOST:PORT (PORT 0: any "
                         "free port)", cfg->dicom);
    return 0;
}

/* Everything that can be checked before anything is created; 0 or an exit code. */
static int check_cfg(serve_cfg *cfg)
{
    s2f_error err = {0};
    if (!cfg->data)
        return usage("no data folder (--data DIR)");
    if (!cfg->client.server || !*cfg->client.server)
        return usage("no FHIR server (--server URL or SR2FHIR_SERVER)");
    if (!cfg->http && !cfg->https)
        return usage("no listener (--http HOST:PORT or --https HOST:PORT)");
    if (cfg->https && (!cfg->tls_cert || !cfg->tls_key))
        return usage("--https needs --tls-cert FILE and --tls-key FILE");
    if (!cfg->https && (cfg->tls_cert || cfg->tls_key || cfg->tls_client_ca))
        return usage("--tls-cert, --tls-key and --tls-client-ca go with --https");
    if (cfg->max_part > cfg->max_body)
        return usage("--max-part is larger than --max-body");
    int code = check_dicom(cfg);
    if (code)
        return code;
    if (cfg->http &&
        s2f_httpd_check_listen(cfg->http, 0, cfg->client.opt.allow_http, &err) != S2F_OK)
        return cli_error(NULL, err.code, "serve: %s", err.message);
    if (cfg->https && s2f_httpd_check_listen(cfg->https, 1, 1, &err) != S2F_OK)
        return cli_error(NULL, err.code, "serve: %s", err.message);
    return 0;
}

/* ---- start-up ------------------------------------------------------------------------------- */

/* A PEM file's contents, NUL-terminated (malloc'd); NULL after a message (*code set). */
static char *read_pem(const char *path, const char *what, int *code)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > PEM_MAX_BYTES) {
        *code = cli_error(path, S2F_EIO, "cannot read the %s: %s", what,
                          fd < 0 ? strerror(errno) : "not a regular file of at most 1 MiB");
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        *code = cli_error(NULL, S2F_ENOMEM, "out of memory");
    } else {
        ssize_t n = read(fd, buf, (size_t)st.st_size);
        if (n != (ssize_t)st.st_size || !strstr((buf[n < 0 ? 0 : n] = '\0', buf), "-----BEGIN")) {
            *code = cli_error(path, S2F_EIO, "cannot read the %s: not a PEM file", what);
            free(buf);
            buf = NULL;
        }
    }
    if (fd >= 0)
        close(fd);
    return buf;
}

static void free_pem(char *p)
{
    if (p) {
        memset(p, 0, strlen(p));
        free(p);
    }
}

/* Creates DIR (0700, with its missing parents) when absent and checks it is a folder; 0
 * or an exit code. */
static int make_folder(const char *path)
{
    struct stat st;
    int code = cli_make_folder(path);
    if (code)
        return code;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_error(path, S2F_EIO, "the data folder is not a folder");
    return 0;
}

typedef struct service {
    serve_cfg *cfg;
    char queue_path[PATH_MAX], incoming[PATH_MAX], audit_path[PATH_MAX];
    FILE *log_file;
    s2f_gw_log log;
    s2f_gw_metrics metrics;
    int audit_fd;
    s2f_tokens *tokens;
    char *cert, *key, *client_ca;
    s2f_intake *intake;           /* the receivers' way into the queue */
    s2f_stow *stow;
    s2f_scp *scp;                 /* the DICOM receiver (--dicom), or NULL */
    s2f_workers *workers;
    s2f_httpd *httpd;
    s2f_queue *queue;             /* the main thread's, for housekeeping */
    s2f_poller *poller;           /* --pull (issue 13) */
    cli_client_opts pull_secret;  /* --pull-token-file's token */
    cli_client_opts cast_secret;  /* --fhircast-token-file's token (issue 15) */
    s2f_cast_options cast;        /* --fhircast-hub: the workers' FHIRcast destination */
    s2f_client_options cast_client; /* its client options (cast.client points here) */
} service;

static void wake_workers(void *ctx)
{
    service *sv = ctx;
    if (sv->workers)
        s2f_workers_wake(sv->workers);
}

static int paths(service *sv)
{
    const char *d = sv->cfg->data;
    if ((size_t)snprintf(sv->queue_path, sizeof sv->queue_path, "%s/queue.sqlite", d) >=
            sizeof sv->queue_path ||
        (size_t)snprintf(sv->incoming, sizeof sv->incoming, "%s/incoming", d) >=
            sizeof sv->incoming ||
        (size_t)snprintf(sv->audit_path, sizeof sv->audit_path, "%s/audit.jsonl", d) >=
            sizeof sv->audit_path)
        return usage("the --data path is too long");
    return 0;
}

/* The FHIR client configuration is checked once (URL policy, credentials). */
static int check_client(service *sv)
{
    s2f_error err = {0};
    s2f_client *c = s2f_client_new(sv->cfg->client.server, &sv->cfg->client.opt, &err);
    if (!c)
        return cli_error(NULL, err.code, "serve: %s", err.message);
    s2f_client_free(c);
    if (sv->cfg->client.opt.insecure)
        s2f_gw_logf(&sv->log, S2F_LOG_WARN,
                    "--insecure: the FHIR server's certificate is not verified");
    return 0;
}

/* Log, TLS files, tokens, the client check, then the data folder and the audit log;
 * 0 or an exit code. */
static int open_files(service *sv)
{
    serve_cfg *cfg = sv->cfg;
    int code = paths(sv);
    if (code)
        return code;
    sv->log_file = stderr;
    if (cfg->log_path) {
        int fd = open(cfg->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || !(sv->log_file = fdopen(fd, "a"))) {
            if (fd >= 0)
                close(fd);
            sv->log_file = stderr;
            return cli_error(cfg->log_path, S2F_EIO, "cannot open the log: %s", strerror(errno));
        }
    }
    s2f_gw_log_init(&sv->log, sv->log_file, cfg->level);
    if (cfg->https && (!(sv->cert = read_pem(cfg->tls_cert, "TLS certificate", &code)) ||
                       !(sv->key = read_pem(cfg->tls_key, "TLS key", &code)) ||
                       (cfg->tls_client_ca &&
                        !(sv->client_ca = read_pem(cfg->tls_client_ca, "client CA file", &code)))))
        return code;
    s2f_error err = {0};
    if (cfg->tokens && s2f_tokens_load(cfg->tokens, &sv->tokens, &err) != S2F_OK)
        return cli_error(NULL, err.code, "serve: %s", err.message);
    if ((code = check_client(sv))) /* before anything is created */
        return code;
    if ((code = make_folder(cfg->data)) || (code = make_folder(sv->incoming)))
        return code;
    const char *audit = cfg->audit_log ? cfg->audit_log : sv->audit_path;
    sv->audit_fd = open(audit, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (sv->audit_fd < 0)
        return cli_error(audit, S2F_EIO, "cannot open the audit log: %s", strerror(errno));
    return 0;
}

/* The DICOM receiver (issue 12) when --dicom is given; 0 or an exit code. */
static int start_dicom(service *sv)
{
    serve_cfg *cfg = sv->cfg;
    if (!cfg->dicom)
        return 0;
    s2f_error err = {0};
    s2f_scp_options o = {0};
    o.bind = cfg->dicom;
    o.aet = cfg->aet;
    o.peers = cfg->peers;
    o.n_peers = cfg->n_peers;
    o.max_associations = (int)cfg->dicom_max_associations;
    o.limits.max_pdu = (uint32_t)cfg->dicom_max_pdu;
    o.limits.idle_ms = (int)cfg->dicom_timeout * 1000;
    o.limits.artim_ms = (int)cfg->dicom_artim * 1000;
    o.limits.max_dataset = (uint64_t)cfg->max_part; /* one SR, as a STOW-RS part */
    o.tls_cert = cfg->dicom_tls_cert;   /* PS3.15 Annex B (NULL: plain TCP) */
    o.tls_key = cfg->dicom_tls_key;
    o.tls_client_ca = cfg->dicom_tls_client_ca;
    o.intake = sv->intake;
    o.log = &sv->log;
    o.metrics = &sv->metrics;
    if (s2f_scp_start(&o, &sv->scp, &err) != S2F_OK)
        return cli_error(NULL, err.code, "serve: --dicom %s: %s", cfg->dicom, err.message);
    return 0;
}

/* --pull URL: the DICOMweb polling source (gateway/pull.h), into the same intake. */
static int start_poller(service *sv)
{
    serve_cfg *cfg = sv->cfg;
    s2f_error err = {0};
    if (!cfg->pull_url)
        return 0;
    sv->pull_secret.token_file = cfg->pull_token_file;
    if (cfg->pull_token_file && !cli_client_load_secrets(&sv->pull_secret, "serve"))
        return S2F_EUSAGE;
    s2f_poller_options po = {0};
    po.base = cfg->pull_url;
    po.dw.client.bearer_token = sv->pull_secret.opt.bearer_token;
    po.dw.client.cacert = cfg->pull_cacert;
    po.dw.client.allow_http = cfg->client.opt.allow_http;
    po.dw.client.timeout = 60;
    po.intake = sv->intake;
    po.queue_path = sv->queue_path;
    po.interval = cfg->pull_interval;
    po.lookback = cfg->pull_lookback;
    po.jobs = (int)cfg->pull_jobs;
    po.log = &sv->log;
    if (s2f_poller_start(&po, &sv->poller, &err) != S2F_OK)
        return cli_error(cfg->pull_url, err.code, "serve: --pull: %s", err.message);
    s2f_gw_logf(&sv->log, S2F_LOG_INFO, "pulling from %s every %ld s", cfg->pull_url,
                cfg->pull_interval);
    return 0;
}

/* --fhircast-hub URL --fhircast-topic T (issue 15): the workers share each delivered SR
 * with the report open there (docs/fhircast.md). 0, or the exit code after a message. */
static int settle_fhircast(service *sv)
{
    serve_cfg *cfg = sv->cfg;
    if (!cfg->fhircast_hub && !cfg->fhircast_topic && !cfg->fhircast_token_file)
        return 0;
    if (!cfg->fhircast_hub || !cfg->fhircast_topic)
        return usage("--fhircast-hub and --fhircast-topic go together");
    sv->cast_secret.token_file = cfg->fhircast_token_file;
    if (cfg->fhircast_token_file && !cli_client_load_secrets(&sv->cast_secret, "serve"))
        return S2F_EUSAGE;
    s2f_cast_options_init(&sv->cast);
    sv->cast.hub = cfg->fhircast_hub;
    sv->cast.topic = cfg->fhircast_topic;
    sv->cast.subscriber_name = "sr2fhir-serve";
    s2f_client_options_init(&sv->cast_client);
    sv->cast_client.bearer_token = sv->cast_secret.opt.bearer_token;
    sv->cast_client.allow_http = cfg->client.opt.allow_http;
    sv->cast_client.version = cfg->client.opt.version;
    sv->cast_client.timezone = cfg->client.opt.timezone;
    sv->cast_client.timeout = 30;
    sv->cast_client.deadline = 30; /* a worker's stop grace is not held up long */
    sv->cast.client = &sv->cast_client;
    return 0;
}

static int start_parts(service *sv)
{
    serve_cfg *cfg = sv->cfg;
    s2f_error err = {0};
    s2f_intake_options io = {0};
    io.data_dir = cfg->data;
    io.queue_path = sv->queue_path;
    io.high_water = cfg->high_water;
    io.min_free_bytes = (unsigned long long)cfg->min_free_mb << 20;
    io.audit_fd = sv->audit_fd;
    io.metrics = &sv->metrics;
    io.log = &sv->log;
    io.on_enqueued = wake_workers;
    io.on_enqueued_ctx = sv;
    io.keep_exclusive = true; /* until the orphan sweep below is done */
    if (s2f_intake_new(&io, &sv->intake, &err) != S2F_OK)
        return cli_error(NULL, err.code, "serve: %s", err.message);
    s2f_stow_options so = {0};
    so.intake = sv->intake;
    so.max_body = (unsigned long long)cfg->max_body;
    so.max_part = (unsigned long long)cfg->max_part;
    so.metrics = &sv->metrics;
    so.log = &sv->log;
    if (s2f_stow_new(&so, &sv->stow, &err) != S2F_OK)
        return cli_error(NULL, err.code, "serve: %s", err.message);
    if (s2f_queue_open(sv->queue_path, NULL, &sv->queue, &err) != S2F_OK)
        return cli_error(NULL, err.code, "serve: %s", err.message);
    int64_t orphans = 0; /* before any receiver starts (issue 11 gap 4), and only when no
                            other process (`sr2fhir pull --data`) uses the data folder */
    if (s2f_intake_sole(sv->intake) &&
        s2f_orphans_sweep(cfg->data, sv->queue, &orphans, &err) != S2F_OK)
        return cli_error(NULL, err.code, "serve: %s", err.message);
    if (s2f_intake_share(sv->intake, &err) != S2F_OK)
        return cli_error(NULL, err.code, "serve: %s", err.message);
    if (orphans)
        s2f_gw_logf(&sv->log, S2F_LOG_INFO, "removed %lld orphan file(s) of %s: no job names "
                    "them (a crash between a file's rename and its job's commit)",
                    (long long)orphans, sv->incoming);
    s2f_workers_options wo = {0};
    wo.queue_path = sv->queue_path;
    wo.server = cfg->client.server;
    wo.client = cfg->client.opt;
    wo.threads = (int)cfg->workers;
    wo.retry_total = cfg->retry_total;
    wo.auth_probe = cfg->auth_probe;
    wo.lease_seconds = (int)cfg->lease;       /* 0: the worker's defaults (worker.h) */
    wo.backoff_min_ms = cfg->backoff_min;
    wo.backoff_max_ms = cfg->backoff_max;
    wo.audit_fd = sv->audit_fd;
    wo.metrics = &sv->metrics;
    wo.log = &sv->log;
    int cast_rc = settle_fhircast(sv);
    if (cast_rc)
        return cast_rc;
    wo.fhircast = sv->cast.hub ? &sv->cast : NULL;
    if (s2f_workers_start(&wo, &sv->workers, &err) != S2F_OK)
        return cli_error(NULL, err.code, "serve: %s", err.message);
    s2f_httpd_options ho = {0};
    ho.http = cfg->http;
    ho.https = cfg->https;
    ho.tls_cert_pem = sv->cert;
    ho.tls_key_pem = sv->key;
    ho.tls_client_ca_pem = sv->client_ca;
    ho.allow_http = cfg->client.opt.allow_http;
    ho.tokens = sv->tokens;
    ho.max_connections = (unsigned)cfg->max_connections;
    ho.connection_timeout = (unsigned)cfg->connection_timeout;
    ho.threads = (unsigned)cfg->http_threads;
    ho.stow = sv->stow;
    ho.queue_path = sv->queue_path;
    ho.fhir_base = cfg->client.server;
    ho.client = &cfg->client.opt;
    ho.metrics = &sv->metrics;
    ho.log = &sv->log;
    if (s2f_httpd_start(&ho, &sv->httpd, &err) != S2F_OK)
        return cli_error(NULL, err.code, "serve: %s", err.message);
    int code = start_dicom(sv); /* after the workers: a stored SR wakes them */
    return code ? code : start_poller(sv);
}

static void announce(service *sv)
{
    char url[400];
    for (int tls = 0; tls < 2; tls++) {
        if (!s2f_httpd_url(sv->httpd, tls, url, sizeof url))
            continue;
        cli_line(stdout, "sr2fhir: serving STOW-RS at %s", url);
        s2f_gw_logf(&sv->log, S2F_LOG_INFO, "serving STOW-RS at %s (data %s, FHIR server %s, "
                    "%ld workers)", url, sv->cfg->data, sv->cfg->client.server,
                    sv->cfg->workers);
    }
    if (sv->scp) {
        const char *bind = sv->cfg->dicom, *colon = strrchr(bind, ':');
        int host_len = (int)(colon - bind), port = s2f_scp_port(sv->scp);
        cli_line(stdout, "sr2fhir: serving DICOM (C-STORE, C-ECHO) as %s at %.*s:%d",
                 sv->cfg->aet, host_len, bind, port);
        s2f_gw_logf(&sv->log, S2F_LOG_INFO, "serving DICOM (C-STORE, C-ECHO) as %s at %.*s:%d "
                    "(%s, %zu allowed peers, at most %ld associations)", sv->cfg->aet,
                    host_len, bind, port,
                    !sv->cfg->dicom_tls_cert        ? "plain TCP"
                    : sv->cfg->dicom_tls_client_ca ? "TLS, client certificates required"
                                                   : "TLS",
                    sv->cfg->n_peers, sv->cfg->dicom_max_associations);
    }
    fflush(stdout);
}

/* ---- running -------------------------------------------------------------------------------- */

typedef struct purge_ctx {
    service *sv;
    long unlinked;
} purge_ctx;

/* A purged job's file is removed when it is one of ours (in DIR/incoming). */
static void purged_file(void *ctx, int64_t id, const char *path)
{
    (void)id;
    purge_ctx *pc = ctx;
    size_t n = strlen(pc->sv->incoming);
    if (strncmp(path, pc->sv->incoming, n) || path[n] != '/' || strstr(path, "/../"))
        return;
    if (unlink(path) == 0)
        pc->unlinked++;
}

static void housekeeping(service *sv)
{
    s2f_error err = {0};
    int64_t removed = 0;
    purge_ctx pc = {sv, 0};
    int64_t before = (int64_t)time(NULL) - sv->cfg->keep_done;
    if (s2f_queue_purge(sv->queue, S2F_JOB_BIT(S2F_JOB_DONE) | S2F_JOB_BIT(S2F_JOB_NOT_APPLICABLE),
                        before, purged_file, &pc, &removed, &err) != S2F_OK)
        s2f_gw_logf(&sv->log, S2F_LOG_WARN, "housekeeping: %s", err.message);
    if (removed)
        s2f_gw_logf(&sv->log, S2F_LOG_INFO, "housekeeping: %lld finished jobs older than %ld s "
                    "purged, %ld files removed", (long long)removed, sv->cfg->keep_done,
                    pc.unlinked);
}

static void reopen_log(service *sv)
{
    if (!sv->cfg->log_path)
        return;
    pthread_mutex_lock(&sv->log.lock);
    FILE *f = freopen(sv->cfg->log_path, "a", sv->log_file);
    pthread_mutex_unlock(&sv->log.lock);
    if (f)
        s2f_gw_logf(&sv->log, S2F_LOG_INFO, "SIGHUP: log file reopened");
}

/* Waits for SIGTERM / SIGINT; returns the signal. */
static int run_until_signal(service *sv, const sigset_t *set)
{
    time_t next = time(NULL);
    for (;;) {
        time_t now = time(NULL);
        if (now >= next) {
            housekeeping(sv);
            next = now + HOUSEKEEPING_SECONDS;
        }
        struct timespec wait = {1, 0};
        int sig = sigtimedwait(set, NULL, &wait);
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
        if (sig == SIGHUP)
            reopen_log(sv);
    }
}

static void stop_service(service *sv)
{
    int grace = (int)sv->cfg->stop_grace;
    s2f_poller_stop(sv->poller); /* between two instances; before intake goes */
    sv->poller = NULL;
    cli_client_forget_secrets(&sv->pull_secret);
    s2f_httpd_stop(sv->httpd, grace);
    sv->httpd = NULL;
    s2f_scp_stop(sv->scp, grace); /* before intake is freed */
    sv->scp = NULL;
    if (sv->workers)
        s2f_workers_stop(sv->workers, grace);
    sv->workers = NULL;
    cli_client_forget_secrets(&sv->cast_secret); /* the workers open FHIRcast sessions */
    s2f_stow_free(sv->stow);
    sv->stow = NULL;
    s2f_intake_free(sv->intake); /* after every receiver stopped */
    sv->intake = NULL;
    if (sv->queue)
        s2f_queue_close(sv->queue);
    sv->queue = NULL;
}

static int serve(serve_cfg *cfg)
{
    service sv;
    memset(&sv, 0, sizeof sv);
    sv.cfg = cfg;
    sv.audit_fd = -1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* blocked before any thread starts, so every thread inherits it and only
     * sigtimedwait in this thread takes them */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int code = open_files(&sv);
    if (!code)
        code = start_parts(&sv);
    if (!code) {
        announce(&sv);
        int sig = run_until_signal(&sv, &set);
        s2f_gw_logf(&sv.log, S2F_LOG_INFO, "%s: stopping (grace %ld s)",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg->stop_grace);
    }
    stop_service(&sv);
    if (!code)
        s2f_gw_logf(&sv.log, S2F_LOG_INFO, "stopped");
    if (sv.audit_fd >= 0 && close(sv.audit_fd) != 0 && !code)
        code = cli_error(NULL, S2F_EIO, "serve: cannot write the audit log: %s", strerror(errno));
    s2f_tokens_free(sv.tokens);
    free_pem(sv.cert);
    free_pem(sv.key);
    free_pem(sv.client_ca);
    if (sv.log_file) {
        s2f_gw_log_destroy(&sv.log);
        if (sv.log_file != stderr)
            fclose(sv.log_file);
    }
    curl_global_cleanup();
    return code;
}

int cmd_serve(int argc, char **argv)
{
    serve_cfg cfg;
    defaults(&cfg);
    const char *config = NULL;
    int code = S2F_EUSAGE, parsed = 0;
    for (int i = 0; i < argc; i++) /* help wins over everything else */
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return fputs(cli_help_text("serve"), stdout), 0;
    if (find_config(argc, argv, &config) && (!config || read_config(&cfg, config, &code)))
        parsed = parse_argv(&cfg, argc, argv);
    if (parsed > 0 && !(code = check_cfg(&cfg)))
        code = cli_client_load_secrets(&cfg.client, "serve") ? serve(&cfg) : S2F_EUSAGE;
    else if (parsed < 0)
        code = 0;
    cli_client_forget_secrets(&cfg.client);
    for (size_t i = 0; i < cfg.n_owned; i++)
        free(cfg.owned[i]);
    free(cfg.owned);
    free(cfg.peers);
    return code;
}
