/*
 * options.c - the one option table of each command (issue 14): the same table parses the
 * command line and prints the command's help, so an option cannot be accepted without
 * being listed, or listed without being accepted. Options may stand anywhere among the
 * inputs (or only before them: dump), "--" ends them, -h/--help prints the help.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define NEEDS_PAD 2 /* a label longer than the column gets its text on the next line */

static const cli_option *find(const cli_command *cmd, const char *arg)
{
    for (const cli_option *const *t = cmd->tables; *t; t++)
        for (const cli_option *o = *t; o->name; o++)
            if (!strcmp(arg, o->name) || (o->alias && !strcmp(arg, o->alias)))
                return o;
    return NULL;
}

const cli_option *cli_option_find(const cli_command *cmd, const char *arg)
{
    return find(cmd, arg);
}

/* "  -o, --output PATH" padded to the column, then the text, continuation lines indented. */
static void print_option(FILE *f, const cli_option *o, int column)
{
    char label[128];
    int n = snprintf(label, sizeof label, "  %s%s%s%s%s", o->alias ? o->alias : "",
                     o->alias ? ", " : "", o->name, o->value ? " " : "", o->value ? o->value : "");
    fputs(label, f);
    if (n > column - 1) {
        fputc('\n', f);
        n = 0;
    }
    for (const char *p = o->help; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        fprintf(f, "%*s%.*s\n", column - n, "", (int)len, p);
        n = 0;
        p += len + (end != NULL);
    }
}

void cli_command_help(const cli_command *cmd, FILE *f)
{
    fputs(cmd->usage, f);
    fputs("\noptions:\n", f);
    for (const cli_option *const *t = cmd->tables; *t; t++)
        for (const cli_option *o = *t; o->name; o++)
            if (o->help)
                print_option(f, o, cmd->column);
    fputs("  -h, --help", f);
    fprintf(f, "%*sthis help\n", cmd->column - 12, "");
    if (cmd->after)
        fprintf(f, "\n%s", cmd->after);
}

static int usage(const char *who, const char *cmd, const char *what, const char *arg)
{
    return cli_error(NULL, S2F_EUSAGE, "%s: %s%s%s (try 'sr2fhir help %s')", who, arg ? arg : "",
                     arg ? " " : "", what, cmd);
}

int cli_parse(const cli_command *cmd, const char *who, int argc, char **argv, int *n,
              cli_take_fn take, void *ctx)
{
    int only_inputs = 0;
    *n = 0;
    who = who ? who : cmd->name;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_inputs || a[0] != '-' || !a[1]) {
            argv[(*n)++] = argv[i];
            only_inputs |= cmd->options_first;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_inputs = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_command_help(cmd, stdout);
            return CLI_HELP_SHOWN;
        }
        const cli_option *o = find(cmd, a);
        if (!o) {
            char what[200];
            snprintf(what, sizeof what, "unknown option '%.150s'", a);
            return usage(who, cmd->name, what, NULL);
        }
        const char *v = NULL;
        if (o->value) {
            if (i + 1 == argc)
                return usage(who, cmd->name, "needs a value", a);
            v = argv[++i];
        }
        int rc = take(ctx, o, v);
        if (rc)
            return rc;
    }
    return 0;
}
