/*
 * cli.h - what the sr2fhir subcommands share: the error line and the help texts.
 */
#ifndef S2F_CLI_H
#define S2F_CLI_H

#include "sr2fhir.h"

/* Prints "sr2fhir: WHERE: MESSAGE" on stderr (WHERE may be NULL) and returns code. */
int cli_error(const char *where, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int cmd_dump(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_help(int argc, char **argv);

/* Help text of a command, or NULL when there is no such command. */
const char *cli_help_text(const char *command);

#endif
