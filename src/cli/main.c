/*
 * main.c - the sr2fhir command: dispatches to the subcommands.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_error(const char *where, int code, const char *fmt, ...)
{
    va_list ap;
    fputs("sr2fhir: ", stderr);
    if (where)
        fprintf(stderr, "%s: ", where);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

static const struct {
    const char *name;
    int (*run)(int, char **);
} commands[] = {
    {"convert", cmd_convert},
    {"dump", cmd_dump},
    {"help", cmd_help},
};

int main(int argc, char **argv)
{
    if (argc < 2)
        return cmd_help(0, NULL), S2F_EUSAGE;
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
        return cmd_help(argc - 2, argv + 2);
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("sr2fhir %s\n", SR2FHIR_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].run(argc - 2, argv + 2);
    return cli_error(NULL, S2F_EUSAGE, "unknown command '%s' (try 'sr2fhir help')", cmd);
}
