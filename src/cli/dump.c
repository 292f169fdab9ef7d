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

int cmd_dump(int argc, char **argv)
{
    s2f_options opt = {0};
    int quiet = 0, status = 0, n_files = 0, i = 0;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
            quiet = 1;
        else if (!strcmp(argv[i], "--strict"))
            opt.strict = 1;
        else if (!strcmp(argv[i], "--"))  {
            i++;
            break;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return fputs(cli_help_text("dump"), stdout), 0;
        else
            return cli_error(NULL, S2F_EUSAGE, "dump: unknown option '%s'", argv[i]);
    }
    if (i == argc)
        return cli_error(NULL, S2F_EUSAGE, "dump: no input file (try 'sr2fhir help dump')");
    for (; i < argc; i++, n_files++) {
        int rc = dump_one(argv[i], &opt, quiet, n_files == 0);
        if (rc && !status)
            status = rc;
    }
    return status;
}
