/*
 * cast.c - `sr2fhir cast` (issue 15, docs/fhircast.md): shares the measurements of each SR
 * with the DiagnosticReport open on a FHIRcast hub (sr2fhir_cast.h): one session (one
 * subscription) for all inputs, one result line per SR on stdout. The program
 * sr2fhir-cast (main.c execs it). Exit code: the first failure's; 12 when no matching
 * DiagnosticReport context is open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sr2fhir_cast.h"

#define MAX_WAIT 86400

typedef struct cast_cfg {
    cli_client_opts client;
    s2f_cast_options opt;
    int quiet;
    char **inputs;
    int n_inputs;
} cast_cfg;

static int usage(const char *what)
{
    return cli_error(NULL, S2F_EUSAGE, "cast: %s (try 'sr2fhir help cast')", what);
}

/* Options the FHIR client has that mean nothing for a hub. */
static int not_for_cast(const char *a)
{
    return !strcmp(a, "--server") || !strcmp(a, "--require-existing") || !strcmp(a, "--max-entries");
}

static int take_value(cast_cfg *c, const char *a, const char *v)
{
    long n;
    if (!strcmp(a, "--hub"))
        c->opt.hub = v;
    else if (!strcmp(a, "--topic"))
        c->opt.topic = v;
    else if (!strcmp(a, "--wait")) {
        if (!cli_number_in(v, 0, MAX_WAIT, &n))
            return usage("--wait takes 0 to 86400 seconds");
        c->opt.wait = n;
    } else if (!strcmp(a, "--subscriber-name"))
        c->opt.subscriber_name = v;
    else if (cli_client_value_option(&c->client, "cast", a, v) < 0)
        return S2F_EUSAGE;
    return 0;
}

static int takes_value(const char *a)
{
    return !strcmp(a, "--hub") || !strcmp(a, "--topic") || !strcmp(a, "--wait") ||
           !strcmp(a, "--subscriber-name") || cli_client_takes_value(a);
}

static int parse(cast_cfg *c, int argc, char **argv)
{
    c->inputs = argv;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return fputs(cli_help_text("cast"), stdout), -1;
        if (a[0] != '-' || !strcmp(a, "-")) {
            c->inputs[c->n_inputs++] = argv[i];
            continue;
        }
        if (cli_client_is_secret_option(a))
            return usage("secrets are not taken on the command line: use --token-file, "
                         "--token-env or SR2FHIR_TOKEN");
        if (not_for_cast(a))
            return cli_error(NULL, S2F_EUSAGE, "cast: %s is not an option of cast", a);
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
            c->quiet = 1;
        else if (cli_client_flag_option(&c->client, a))
            continue;
        else if (takes_value(a)) {
            if (i + 1 >= argc)
                return cli_error(NULL, S2F_EUSAGE, "cast: %s needs a value", a);
            int rc = take_value(c, a, argv[++i]);
            if (rc)
                return rc;
        } else
            return cli_error(NULL, S2F_EUSAGE, "cast: unknown option '%s' (try 'sr2fhir help cast')", a);
    }
    if (!c->opt.hub || !c->opt.topic)
        return usage("--hub URL and --topic TOPIC are required");
    if (c->n_inputs == 0)
        return usage("no input");
    return 0;
}

static void print_shared(const char *input, const s2f_cast_result *r, const char *topic)
{
    cli_line(stdout, "%s: shared %zu resources with %s (%s) on topic %s: version %s -> %s%s", input,
             r->resources, r->report, r->patient, topic, r->prior_version, r->version,
             r->stale ? " (retried after a stale version)" : "");
}

static int share_all(cast_cfg *c, s2f_cast *session)
{
    int first = 0;
    cli_inputs in = {0};
    if (cli_inputs_collect(&in, c->inputs, c->n_inputs, NULL))
        return cli_error(NULL, S2F_ENOMEM, "out of memory");
    for (size_t i = 0; i < in.n; i++) {
        s2f_error err = {0};
        s2f_cast_result res;
        s2f_cast_result_init(&res);
        s2f_doc *doc = s2f_doc_read_file(in.v[i], NULL, &err);
        s2f_code rc = doc ? s2f_cast_share(session, doc, &res, &err) : err.code;
        s2f_doc_free(doc);
        if (rc)
            cli_error(in.v[i], rc, "%s", err.message);
        else if (!c->quiet)
            print_shared(in.v[i], &res, c->opt.topic);
        fflush(stdout);
        if (rc && !first)
            first = rc;
        if (rc == S2F_EUNREACHABLE)
            break; /* the hub is gone: the next inputs would fail the same way */
    }
    cli_inputs_free(&in);
    return first;
}

int cmd_cast(int argc, char **argv)
{
    cast_cfg c = {0};
    s2f_cast_options_init(&c.opt);
    s2f_client_options_init(&c.client.opt);
    int rc = parse(&c, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!cli_client_load_secrets(&c.client, "cast"))
        return S2F_EUSAGE;
    c.opt.client = &c.client.opt;
    s2f_error err = {0};
    s2f_cast *session = s2f_cast_open(&c.opt, &err);
    if (!session) {
        cli_client_forget_secrets(&c.client);
        return cli_error(NULL, err.code, "cast: %s", err.message);
    }
    rc = share_all(&c, session);
    s2f_cast_close(session);
    cli_client_forget_secrets(&c.client);
    return rc;
}
