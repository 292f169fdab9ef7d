/*
 * dump.c - `sr2fhir dump FILE...`: reads each SR and prints it (see src/sr/dump.c).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static int dump_one(const char *path, const s2f_options *opt, int quiet, int first)
{
    s2f_error err = {0};
    s2f_doc *doc = s2f_doc_read_file(path, opt, &err);
    if (!doc)
        return cli_error(path, err.code, "%s", err.message);
    size_t n;
    const s2f_warning *w = s2f_doc_warnings(doc, &n);
    for (size_t i = 0; i < n && !quiet; i++)
        cli_error(path, 0, "warning: %s", w[i].message);
    if (!first)
        putchar('\n');
    cli_line(stdout, "File: %s", path);
    s2f_code rc = s2f_dump(doc, stdout, &err);
    s2f_doc_free(doc);
    if (rc)
        return cli_error(path, rc, "%s", err.message);
    if (fflush(stdout) != 0)
        return cli_error(path, S2F_EIO, "cannot write to standard output");
    return 0;
}

typedef struct dump_job {
    s2f_options opt;
    int quiet;
} dump_job;

/* One option of the table (help.c's cli_dump_command). */
static int take_option(void *ctx, const cli_option *o, const char *v)
{
    dump_job *jb = ctx;
    (void)v;
    if (o->id == OPT_QUIET)
        jb->quiet = 1;
    else if (o->id == OPT_STRICT)
        jb->opt.strict = 1;
    else
        return cli_error(NULL, S2F_EINTERNAL, "dump: option %s has no handler", o->name);
    return 0;
}

int cmd_dump(int argc, char **argv)
{
    dump_job jb = {{0}, 0};
    s2f_options_init(&jb.opt);
    int status = 0, n_files = 0;
    int parsed = cli_parse(&cli_dump_command, NULL, argc, argv, &n_files, take_option, &jb);
    if (parsed)
        return parsed == CLI_HELP_SHOWN ? 0 : parsed;
    if (n_files == 0)
        return cli_error(NULL, S2F_EUSAGE, "dump: no input file (try 'sr2fhir help dump')");
    for (int i = 0; i < n_files; i++) {
        int rc = dump_one(argv[i], &jb.opt, jb.quiet, i == 0);
        if (rc && !status)
            status = rc;
    }
    return status;
}
