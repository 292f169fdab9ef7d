/*
 * error.c - error formatting and warning lists (see error.h).
 */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>

const char *s2f_code_name(s2f_code code)
{
    switch (code) {
    case S2F_OK: return "success";
    case S2F_EUSAGE: return "usage error";
    case S2F_EIO: return "input/output error";
    case S2F_EFORMAT: return "malformed input";
    case S2F_EUNSUPPORTED: return "unsupported input";
    case S2F_ENOTTID1500: return "not a TID 1500 Measurement Report";
    case S2F_ELIMIT: return "safety limit exceeded";
    case S2F_ENOMEM: return "out of memory";
    case S2F_EINTERNAL: return "internal error";
    case S2F_EREJECTED: return "refused by the server";
    case S2F_EUNREACHABLE: return "server unreachable";
    case S2F_ELOOKUP: return "lookup failed";
    }
    return "unknown error";
}

s2f_code s2f_fail(s2f_error *err, s2f_code code, const char *fmt, ...)
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

void s2f_warn(s2f_warnings *w, const char *fmt, ...)
{
    if (!w || !w->arena)
        return;
    if (w->n >= S2F_WARN_MAX) {
        w->dropped++;
        return;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        s2f_warning *l = s2f_arena_realloc(w->arena, w->list, w->cap * sizeof *l, cap * sizeof *l);
        if (!l)
            return;
        w->list = l;
        w->cap = cap;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *m = s2f_arena_strdup(w->arena, buf);
    if (!m)
        return;
    w->list[w->n++].message = m;
}
