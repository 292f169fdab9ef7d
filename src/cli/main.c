/*
 * main.c - the sr2fhir command: dispatches to the subcommands. `send` is a program of its
 * own, sr2fhir-send, installed beside this one: it links libcurl, whose start-up (some 30
 * shared libraries, about 10 ms) `dump` and `convert` should not pay on every file. `serve`,
 * the gateway service, is sr2fhir-serve for the same reason (libmicrohttpd and libcurl),
 * and `pull` (issue 13) is sr2fhir-pull (libcurl, GnuTLS), `cast` (issue 15, FHIRcast) is
 * sr2fhir-cast (libcurl, OpenSSL).
 * `queue` (the gateway's queue, SQLite only) is a command of this program.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
} commands[] = {
    {"convert", cmd_convert},
    {"dump", cmd_dump},
    {"help", cmd_help},
    {"queue", cmd_queue},
};

/* Replaces this process with the program sr2fhir-COMMAND (beside this program, else on
 * PATH): `send`, `serve`, `pull` and `cast`. argv[0] is the command's name, argv[argc] NULL. Returns only
 * on failure. */
static int exec_program(const char *command, char **argv)
{
    char name[32], path[PATH_MAX];
    snprintf(name, sizeof name, "sr2fhir-%s", command);
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - sizeof name - 1);
    argv[0] = name;
    if (n > 0) {
        path[n] = '\0';
        char *slash = strrchr(path, '/');
        if (slash) {
            strcpy(slash + 1, name);
            execv(path, argv);
        }
    }
    execvp(name, argv);
    return cli_error(NULL, S2F_EIO, "%s: cannot run %s (installed beside sr2fhir): %s", command,
                     name, strerror(errno));
}

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
    if (!strcmp(cmd, "send") || !strcmp(cmd, "serve") || !strcmp(cmd, "pull") ||
        !strcmp(cmd, "cast"))
        return exec_program(cmd, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].run(argc - 2, argv + 2);
    return cli_error(NULL, S2F_EUSAGE, "unknown command '%s' (try 'sr2fhir help')", cmd);
}
