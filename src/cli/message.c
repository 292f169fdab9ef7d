/*
 * message.c - what every sr2fhir program shares on its command line: the one-line error
 * format ("sr2fhir: WHERE: MESSAGE") and checks of option values.
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

int cli_valid_zone(const char *z)
{
    return strlen(z) == 5 && (z[0] == '+' || z[0] == '-') && strspn(z + 1, "0123456789") == 4 &&
           (z[1] - '0') * 10 + (z[2] - '0') <= 14 && (z[3] - '0') * 10 + (z[4] - '0') < 60;
}
