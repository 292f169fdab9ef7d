/*
 * message.c - what every sr2fhir program shares on its command line: the one-line error
 * format ("sr2fhir: WHERE: MESSAGE"), the escaping of every printed message (issue 9
 * defect 8: file names, values and server text never reach the terminal raw) and checks of
 * option values.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/escape.h"

void cli_put_escaped(FILE *f, const char *text)
{
    if (text)
        s2f_escape_to_file(f, text, strlen(text), 0);
}

const char *cli_escaped(const char *text, char *buf, size_t cap)
{
    return s2f_escape_to_buf(text ? text : "", text ? strlen(text) : 0, 0, buf, cap);
}

/* The formatted text, in small when it fits, else malloc'd (cut to small when memory ran
 * out); the caller frees it when it is not small. */
static char *format_text(char *small, size_t cap, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, cap, fmt, ap);
    char *text = small;
    if (n < 0)
        small[0] = 0;
    else if ((size_t)n >= cap && (text = malloc((size_t)n + 1)) != NULL)
        vsnprintf(text, (size_t)n + 1, fmt, again);
    else
        text = small;
    va_end(again);
    return text;
}

static void put_line(FILE *f, const char *prefix, const char *where, const char *fmt, va_list ap)
{
    char small[1024];
    char *text = format_text(small, sizeof small, fmt, ap);
    if (prefix)
        fputs(prefix, f);
    if (where) {
        cli_put_escaped(f, where);
        fputs(": ", f);
    }
    cli_put_escaped(f, text);
    fputc('\n', f);
    if (text != small)
        free(text);
}

void cli_line(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    put_line(f, NULL, NULL, fmt, ap);
    va_end(ap);
}

int cli_error(const char *where, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    put_line(stderr, "sr2fhir: ", where, fmt, ap);
    va_end(ap);
    return code;
}

s2f_code cli_fail(s2f_error *err, s2f_code code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int cli_valid_zone(const char *z)
{
    return strlen(z) == 5 && (z[0] == '+' || z[0] == '-') && strspn(z + 1, "0123456789") == 4 &&
           (z[1] - '0') * 10 + (z[2] - '0') <= 14 && (z[3] - '0') * 10 + (z[4] - '0') < 60;
}
