/*
 * message.c - the one-line error format every sr2fhir program prints:
 * "sr2fhir: WHERE: MESSAGE".
 */
#include <stdarg.h>
#include <stdio.h>

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
