/*
 * send.c - `sr2fhir send`: delivers SRs to a FHIR server (docs/send.md) with s2f_send,
 * one client per worker thread (-j N), one audit line per SR, one result line per SR, a
 * summary. The client options and credentials are client_opts.c's (shared with `serve`).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define MAX_JOBS 64

typedef struct send_job {
    cli_client_opts client;     /* --server, the client options, the secrets (client_opts.c) */
    const char *audit_path;
    int jobs, quiet;
    cli_inputs in;
    int audit_fd;
    /* shared between workers, under lock */
    pthread_mutex_t lock;
    size_t next;                /* next input to take */
    int unreachable;            /* the server could not be reached: take no more inputs */
    s2f_code *status;           /* per input; -1 = not attempted */
    size_t delivered, failed, created, updated;
} send_job;

static int usage(const char *what)
{
    return cli_error(NULL, S2F_EUSAGE, "send: %s (try 'sr2fhir help send')", what);
}

/* ---- options -------------------------------------------------------------------------------- */

/* One option of the table (help.c's cli_send_command); 0, or 2 after a usage message. */
static int take_option(void *ctx, const cli_option *o, const char *v)
{
    send_job *jb = ctx;
    long n;
    switch (o->id) {
    case OPT_CLIENT_VALUE:
        return cli_client_value_option(&jb->client, "send", o->name, v) < 0 ? S2F_EUSAGE : 0;
    case OPT_CLIENT_FLAG:
        cli_client_flag_option(&jb->client, o->name);
        return 0;
    case OPT_SECRET:
        return usage("secrets are not taken on the command line (other users see it): use "
                     "--token-env, --token-file, SR2FHIR_PASSWORD or --password-file");
    case OPT_AUDIT_LOG:
        jb->audit_path = v;
        return 0;
    case OPT_JOBS:
        if (!cli_number_in(v, 1, MAX_JOBS, &n))
            return usage("-j takes 1 to 64");
        jb->jobs = (int)n;
        return 0;
    case OPT_QUIET:
        jb->quiet = 1;
        return 0;
    default:
        return cli_error(NULL, S2F_EINTERNAL, "send: option %s has no handler", o->name);
    }
}

/* ---- one SR --------------------------------------------------------------------------------- */

static const char *ref_or_logical(const char *ref, const char *type, char *buf, size_t cap)
{
    if (ref)
        return ref;
    snprintf(buf, cap, "%s logical", type);
    return buf;
}

static void print_delivered(send_job *jb, const char *input, const s2f_send_result *r)
{
    char p[64], s[64], i[64];
    cli_line(stdout, "%s: delivered to %s (FHIR %s): %zu resources (%s, %s, %s)", input, jb->client.server,
           r->version == S2F_FHIR_R4 ? "R4" : "R5", r->n_created + r->n_updated,
           ref_or_logical(r->patient_ref, "Patient", p, sizeof p),
           ref_or_logical(r->service_request_ref, "ServiceRequest", s, sizeof s),
           ref_or_logical(r->imaging_study_ref, "ImagingStudy", i, sizeof i));
}

static void record(send_job *jb, size_t index, const char *input, s2f_code rc, const s2f_error *err,
                   const s2f_doc *doc, const s2f_client *c, const s2f_send_result *res)
{
    s2f_error werr = {0};
    pthread_mutex_lock(&jb->lock);
    jb->status[index] = rc;
    if (rc) {
        jb->failed++;
        cli_error(input, rc, "%s", err->message);
        if (rc == S2F_EUNREACHABLE)
            jb->unreachable = 1;
    } else {
        jb->delivered++;
        jb->created += res->n_created;
        jb->updated += res->n_updated;
        if (!jb->quiet)
            print_delivered(jb, input, res);
    }
    fflush(stdout);
    if (s2f_audit_append(jb->audit_fd, input, doc, c, res, rc, err, &werr) != S2F_OK) {
        cli_error(jb->audit_path, werr.code, "%s", werr.message);
        if (!jb->status[index])
            jb->status[index] = werr.code;
    }
    pthread_mutex_unlock(&jb->lock);
}

/* Delivers input `index`; returns the FHIR version it was sent in (AUTO when it failed
 * before the server was asked). */
static s2f_fhir_version send_one(send_job *jb, s2f_client *c, size_t index)
{
    const char *input = jb->in.v[index];
    s2f_error err = {0};
    s2f_send_result res;
    s2f_send_result_init(&res);
    s2f_doc *doc = s2f_doc_read_file(input, NULL, &err);
    size_t n = 0;
    const s2f_warning *w = doc && !jb->quiet ? s2f_doc_warnings(doc, &n) : NULL;
    for (size_t k = 0; k < n; k++)
        cli_error(input, 0, "warning: %s", w[k].message);
    s2f_code rc = doc ? s2f_send(c, doc, &res, &err) : err.code;
    record(jb, index, input, rc, &err, doc, c, &res);
    s2f_fhir_version v = res.version;
    s2f_send_result_free(&res);
    s2f_doc_free(doc);
    return v;
}

/* ---- workers -------------------------------------------------------------------------------- */

/* The next input to deliver, or -1: all taken, or the server is unreachable. */
static long take_input(send_job *jb)
{
    pthread_mutex_lock(&jb->lock);
    long i = jb->unreachable || jb->next >= jb->in.n ? -1 : (long)jb->next++;
    pthread_mutex_unlock(&jb->lock);
    return i;
}

/* Delivers inputs until none is left (or the server is unreachable). */
static void deliver_all(send_job *jb, s2f_client *c, const s2f_error *why)
{
    long i;
    while ((i = take_input(jb)) >= 0) {
        if (c)
            send_one(jb, c, (size_t)i);
        else
            record(jb, (size_t)i, jb->in.v[i], why->code, why, NULL, NULL, NULL);
    }
}

static void *worker(void *arg)
{
    send_job *jb = arg;
    s2f_error err = {0};
    s2f_client *c = s2f_client_new(jb->client.server, &jb->client.opt, &err);
    deliver_all(jb, c, &err);
    s2f_client_free(c);
    return NULL;
}

/* The first reports go alone until one settles the server's FHIR version (GET /metadata,
 * once per run); then -j N workers share it. */
static void run_workers(send_job *jb)
{
    s2f_error err = {0};
    s2f_client *c = s2f_client_new(jb->client.server, &jb->client.opt, &err);
    long i;
    while (c && jb->client.opt.version == S2F_FHIR_AUTO && (i = take_input(jb)) >= 0)
        jb->client.opt.version = send_one(jb, c, (size_t)i);
    pthread_t threads[MAX_JOBS];
    size_t left = jb->in.n - jb->next;
    int n = jb->jobs < (int)left ? jb->jobs : (int)left, started = 0;
    for (; started < n - 1; started++)
        if (pthread_create(&threads[started], NULL, worker, jb) != 0)
            break;
    deliver_all(jb, c, &err); /* this thread works too */
    for (int t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    s2f_client_free(c);
}

/* ---- the run -------------------------------------------------------------------------------- */

static void summary(const send_job *jb)
{
    size_t skipped = jb->in.n - jb->delivered - jb->failed;
    if (jb->quiet || (jb->in.n < 2 && !skipped))
        return;
    fprintf(stderr, "sr2fhir: %zu files: %zu delivered, %zu failed", jb->in.n, jb->delivered, jb->failed);
    if (skipped)
        fprintf(stderr, ", %zu not attempted (the server is unreachable)", skipped);
    fprintf(stderr, "; resources: %zu created, %zu updated\n", jb->created, jb->updated);
}

/* The first failure in input order; S2F_EUNREACHABLE for inputs never attempted. */
static int exit_status(const send_job *jb)
{
    for (size_t i = 0; i < jb->in.n; i++)
        if (jb->status[i])
            return jb->status[i] < 0 ? S2F_EUNREACHABLE : jb->status[i];
    return 0;
}

/* Checks the configuration once (URL policy, credentials) before any file is read. */
static int check_client(send_job *jb)
{
    s2f_error err = {0};
    s2f_client *c = s2f_client_new(jb->client.server, &jb->client.opt, &err);
    if (!c)
        return cli_error(NULL, err.code, "send: %s", err.message);
    s2f_client_free(c);
    if (jb->client.opt.insecure && !jb->quiet)
        cli_error(NULL, 0, "warning: --insecure: the server's certificate is not verified");
    return 0;
}

static int run(send_job *jb, char **args, int n_args)
{
    int rc = check_client(jb);
    if (rc)
        return rc;
    if (cli_inputs_collect(&jb->in, args, n_args, NULL))
        return cli_error(NULL, S2F_ENOMEM, "out of memory");
    if (jb->in.n == 0)
        return cli_error(NULL, S2F_EIO, "send: the folder(s) hold no files");
    const char *audit = jb->audit_path ? jb->audit_path : (jb->audit_path = "sr2fhir-audit.log");
    jb->audit_fd = open(audit, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (jb->audit_fd < 0)
        return cli_error(audit, S2F_EIO, "cannot open the audit log: %s", strerror(errno));
    jb->status = malloc(jb->in.n * sizeof *jb->status);
    if (!jb->status) {
        close(jb->audit_fd);
        return cli_error(NULL, S2F_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < jb->in.n; i++)
        jb->status[i] = (s2f_code)-1;
    pthread_mutex_init(&jb->lock, NULL);
    run_workers(jb);
    pthread_mutex_destroy(&jb->lock);
    summary(jb);
    rc = exit_status(jb);
    if (close(jb->audit_fd) != 0 && !rc)
        rc = cli_error(audit, S2F_EIO, "cannot write the audit log: %s", strerror(errno));
    free(jb->status);
    return rc;
}

int cmd_send(int argc, char **argv)
{
    send_job jb;
    memset(&jb, 0, sizeof jb);
    jb.jobs = 1;
    jb.client.server = getenv("SR2FHIR_SERVER");
    int n_args, parsed = cli_parse(&cli_send_command, NULL, argc, argv, &n_args, take_option, &jb);
    if (parsed)
        return parsed == CLI_HELP_SHOWN ? 0 : parsed;
    if (!jb.client.server || !*jb.client.server)
        return usage("no server (--server URL or SR2FHIR_SERVER)");
    if (n_args == 0)
        return usage("no input (a file, a folder, or - for standard input)");
    int status = S2F_EUSAGE;
    if (cli_client_load_secrets(&jb.client, "send"))
        status = run(&jb, argv, n_args);
    cli_client_forget_secrets(&jb.client);
    cli_inputs_free(&jb.in);
    return status;
}
