/*
 * sink.c - buffered output stream (see sink.h).
 */
#include "util/sink.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void s2f_sink_init(s2f_sink *s, FILE *out)
{
    s->out = out;
    s->write_fn = NULL;
    s->ctx = NULL;
    s->len = 0;
    s->failed = 0;
}

void s2f_sink_init_fn(s2f_sink *s, int (*write_fn)(void *ctx, const void *p, size_t n), void *ctx)
{
    s2f_sink_init(s, NULL);
    s->write_fn = write_fn;
    s->ctx = ctx;
}

/* Hands n > 0 bytes to the function or the FILE*; 1 when taken. */
static int emit(s2f_sink *s, const void *p, size_t n)
{
    if (s->write_fn)
        return s->write_fn(s->ctx, p, n) == 0;
    return s->out && fwrite(p, 1, n, s->out) == n;
}

void s2f_sink_flush(s2f_sink *s)
{
    if (s->len && !s->failed && !emit(s, s->buf, s->len))
        s->failed = 1;
    s->len = 0;
}

void s2f_sink_write_slow(s2f_sink *s, const void *p, size_t n)
{
    if (n > sizeof s->buf - s->len) {
        s2f_sink_flush(s);
        if (n > sizeof s->buf) {
            if (!s->failed && !emit(s, p, n))
                s->failed = 1;
            return;
        }
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

void s2f_sink_puts(s2f_sink *s, const char *str) { s2f_sink_write(s, str, strlen(str)); }

void s2f_sink_putc_slow(s2f_sink *s, char c)
{
    s2f_sink_flush(s);
    s->buf[s->len++] = c;
}

void s2f_sink_u64(s2f_sink *s, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    s2f_sink_write(s, tmp + i, sizeof tmp - i);
}

void s2f_sink_i64(s2f_sink *s, int64_t v)
{
    if (v < 0) {
        s2f_sink_putc(s, '-');
        s2f_sink_u64(s, (uint64_t)0 - (uint64_t)v);
    } else {
        s2f_sink_u64(s, (uint64_t)v);
    }
}

void s2f_sink_printf(s2f_sink *s, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        s2f_sink_write(s, tmp, (size_t)n);
        return;
    }
    s2f_sink_flush(s);
    if (s->write_fn) { /* formatted again into a buffer of its size */
        char *big = s->failed ? NULL : malloc((size_t)n + 1);
        va_start(ap, fmt);
        if (!big || vsnprintf(big, (size_t)n + 1, fmt, ap) != n || !emit(s, big, (size_t)n))
            s->failed = 1;
        va_end(ap);
        free(big);
        return;
    }
    va_start(ap, fmt);
    if (!s->failed && (!s->out || vfprintf(s->out, fmt, ap) < 0))
        s->failed = 1;
    va_end(ap);
}

int s2f_sink_finish(s2f_sink *s)
{
    if (!s->out && !s->write_fn) /* a memory sink keeps its bytes */
        return s->failed ? -1 : 0;
    s2f_sink_flush(s);
    if (!s->failed && s->out && fflush(s->out) != 0)
        s->failed = 1;
    return s->failed ? -1 : 0;
}
