/*
 * client_opts.c - the FHIR client options `send` and `serve` share (--server,
 * --fhir-version, credentials, TLS, timeouts, retries, ...): one parser, one set of usage
 * messages, one loading of the secrets. Secrets come from the environment or files, never
 * from the command line (where `ps` would show them), and are never printed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

#define MAX_SECRET 65536

static int usage(const char *cmd, const char *what)
{
    return cli_error(NULL, S2F_EUSAGE, "%s: %s (try 'sr2fhir help %s')", cmd, what, cmd);
}

int cli_number_in(const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        return 0;
    *out = n;
    return 1;
}

int cli_client_takes_value(const char *a)
{
    for (const cli_option *o = cli_client_options; o->name; o++)
        if (o->value && !strcmp(a, o->name))
            return 1;
    return 0;
}

int cli_client_value_option(cli_client_opts *c, const char *cmd, const char *a, const char *v)
{
    long n;
    if (!cli_client_takes_value(a))
        return 0;
    c->opt.struct_size = sizeof c->opt; /* issue 16: members after 0.1.0 are read */
    if (!strcmp(a, "--server"))
        c->server = v;
    else if (!strcmp(a, "--fhir-version")) {
        if (strcasecmp(v, "R5") && strcasecmp(v, "R4"))
            return usage(cmd, "--fhir-version takes R5 or R4"), -1;
        c->opt.version = !strcasecmp(v, "R4") ? S2F_FHIR_R4 : S2F_FHIR_R5;
    } else if (!strcmp(a, "--timezone")) {
        if (!cli_valid_zone(v))
            return usage(cmd, "--timezone takes +HHMM or -HHMM, e.g. +0100"), -1;
        c->opt.timezone = v;
    } else if (!strcmp(a, "--token-env"))
        c->token_env = v;
    else if (!strcmp(a, "--token-file"))
        c->token_file = v;
    else if (!strcmp(a, "--user"))
        c->opt.user = v;
    else if (!strcmp(a, "--password-file"))
        c->password_file = v;
    else if (!strcmp(a, "--cert"))
        c->opt.cert = v;
    else if (!strcmp(a, "--key"))
        c->opt.key = v;
    else if (!strcmp(a, "--cacert"))
        c->opt.cacert = v;
    else if (!strcmp(a, "--connect-timeout") || !strcmp(a, "--timeout")) {
        if (!cli_number_in(v, 1, 3600, &n))
            return usage(cmd, "timeouts are whole seconds from 1 to 3600"), -1;
        *(a[2] == 'c' ? &c->opt.connect_timeout : &c->opt.timeout) = n;
    } else if (!strcmp(a, "--retries")) {
        if (!cli_number_in(v, 0, 20, &n))
            return usage(cmd, "--retries takes 0 to 20"), -1;
        c->opt.retries = n ? (int)n : -1;
    } else if (!strcmp(a, "--retry-delay")) {
        if (!cli_number_in(v, 1, 600000, &n))
            return usage(cmd, "--retry-delay takes milliseconds from 1 to 600000"), -1;
        c->opt.retry_delay_ms = n;
    } else if (!strcmp(a, "--deadline")) { /* issue 9 defect 10 */
        if (!cli_number_in(v, 0, 86400, &n))
            return usage(cmd, "--deadline takes seconds from 1 to 86400, or 0 for none"), -1;
        c->opt.deadline = n ? n : -1;
    } else { /* --max-entries */
        if (!cli_number_in(v, 0, 1000000, &n))
            return usage(cmd, "--max-entries takes 0 (no limit) to 1000000"), -1;
        c->opt.max_entries = n ? n : -1;
    }
    return 1;
}

int cli_client_flag_option(cli_client_opts *c, const char *a)
{
    c->opt.struct_size = sizeof c->opt; /* issue 16: members after 0.1.0 are read */
    if (!strcmp(a, "--require-existing"))
        c->opt.require_existing = 1;
    else if (!strcmp(a, "--insecure"))
        c->opt.insecure = 1;
    else if (!strcmp(a, "--allow-http"))
        c->opt.allow_http = 1;
    else if (!strcmp(a, "--diagnostic-report")) /* issue 15 */
        c->opt.diagnostic_report = 1;
    else
        return 0;
    return 1;
}

int cli_client_is_secret_option(const char *a)
{
    return !strcmp(a, "--token") || !strcmp(a, "--password");
}

/* ---- secrets -------------------------------------------------------------------------------- */

/* The first line of a file, without trailing white space (malloc'd); NULL after a message. */
static char *read_secret_file(const char *path, const char *what)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error(path, S2F_EIO, "cannot read the %s: %s", what, strerror(errno));
        return NULL;
    }
    char *line = malloc(MAX_SECRET);
    if (line && !fgets(line, MAX_SECRET, f))
        line[0] = '\0';
    fclose(f);
    if (!line)
        return cli_error(NULL, S2F_ENOMEM, "out of memory"), NULL;
    size_t n = strlen(line);
    while (n > 0 && strchr(" \t\r\n", line[n - 1]))
        line[--n] = '\0';
    if (!n) {
        free(line);
        cli_error(path, S2F_EUSAGE, "the %s file is empty", what);
        return NULL;
    }
    return line;
}

static char *secret_from_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? strdup(v) : NULL;
}

int cli_client_load_secrets(cli_client_opts *c, const char *cmd)
{
    if (c->token_file && c->token_env)
        return usage(cmd, "--token-file and --token-env exclude each other"), 0;
    if (c->token_file) {
        if (!(c->token = read_secret_file(c->token_file, "bearer token")))
            return 0;
    } else if (c->token_env) {
        if (!(c->token = secret_from_env(c->token_env)))
            return cli_error(NULL, S2F_EUSAGE, "%s: the environment variable %s (--token-env) "
                             "is not set", cmd, c->token_env), 0;
    } else if (!c->opt.user) {
        c->token = secret_from_env("SR2FHIR_TOKEN");
    }
    if (c->opt.user) {
        if (c->token)
            return usage(cmd, "--user (HTTP basic) and a bearer token exclude each other"), 0;
        c->password = c->password_file ? read_secret_file(c->password_file, "password")
                                       : secret_from_env("SR2FHIR_PASSWORD");
        if (!c->password)
            return c->password_file ? 0 : (usage(cmd, "--user needs SR2FHIR_PASSWORD or "
                                                      "--password-file"), 0);
    } else if (c->password_file) {
        return usage(cmd, "--password-file goes with --user"), 0;
    }
    c->opt.bearer_token = c->token;
    c->opt.password = c->password;
    return 1;
}

void cli_client_forget_secrets(cli_client_opts *c)
{
    if (c->token)
        memset(c->token, 0, strlen(c->token));
    if (c->password)
        memset(c->password, 0, strlen(c->password));
    free(c->token);
    free(c->password);
    c->token = c->password = NULL;
    c->opt.bearer_token = c->opt.password = NULL;
}
