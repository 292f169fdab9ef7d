/*
 * jsonout.c - the pretty JSON of `sr2fhir convert --report` (M26) written by the program
 * itself over the public API (issue 16: the CLI includes no private writer header): the
 * layout here (2-space indentation, one member or element per line, "key": value, empty
 * containers as {} and [], a final newline), every string through s2f_json_quote, so the
 * text is escaped and made valid UTF-8 as in the library's own JSON.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static int put_bytes(void *ctx, const void *data, size_t len)
{
    return fwrite(data, 1, len, (FILE *)ctx) == len ? 0 : -1;
}

static void put_quoted(cli_json *j, const char *text)
{
    if (s2f_json_quote(text ? text : "", text ? strlen(text) : 0, put_bytes, j->f))
        j->failed = 1;
}

/* The comma, line break and indentation before a member or an element (a key too). */
static void separate(cli_json *j, const char *key)
{
    if (j->depth == 0)
        return;
    if (j->has_items[j->depth - 1])
        fputc(',', j->f);
    j->has_items[j->depth - 1] = 1;
    fprintf(j->f, "\n%*s", 2 * j->depth, "");
    if (key) {
        put_quoted(j, key);
        fputs(": ", j->f);
    }
}

void cli_json_open(cli_json *j, const char *key, char open)
{
    separate(j, key);
    fputc(open, j->f);
    if (j->depth < CLI_JSON_MAX_DEPTH)
        j->has_items[j->depth++] = 0;
    else
        j->failed = 1;
}

void cli_json_close(cli_json *j, char close)
{
    if (j->depth == 0) {
        j->failed = 1;
        return;
    }
    if (j->has_items[--j->depth])
        fprintf(j->f, "\n%*s", 2 * j->depth, "");
    fputc(close, j->f);
    if (j->depth == 0)
        fputc('\n', j->f);
}

void cli_json_string(cli_json *j, const char *key, const char *value)
{
    separate(j, key);
    put_quoted(j, value);
}

void cli_json_uint(cli_json *j, const char *key, unsigned long long value)
{
    separate(j, key);
    fprintf(j->f, "%llu", value);
}

void cli_json_int(cli_json *j, const char *key, long long value)
{
    separate(j, key);
    fprintf(j->f, "%lld", value);
}
