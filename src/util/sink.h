/*
 * sink.h - a small buffered output stream for the writers (the dump now, the FHIR JSON
 * writer next): appends go to a fixed buffer that is flushed to a FILE* when full, so
 * writing a large report costs no per-call stdio locking or format parsing.
 *
 * Ownership: the caller owns the sink (usually on the stack) and the FILE*. Errors are
 * sticky: after a failed write every call is a no-op and s2f_sink_finish reports it.
 *
 * A sink may write through a function instead (s2f_sink_init_fn: s2f_convert_write's
 * callback, issue 16), called with each full buffer.
 *
 * A sink without a FILE* nor a function (out NULL) keeps what is written in its buffer (buf, len) for
 * the caller to take: writing more than the buffer holds fails.
 */
#ifndef S2F_SINK_H
#define S2F_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define S2F_SINK_BUFFER 65536

typedef struct s2f_sink {
    FILE *out;
    int (*write_fn)(void *ctx, const void *p, size_t n); /* 0 ok; set: used, not out */
    void *ctx;
    size_t len;
    int failed;
    char buf[S2F_SINK_BUFFER];
} s2f_sink;

void s2f_sink_init(s2f_sink *s, FILE *out);
void s2f_sink_init_fn(s2f_sink *s, int (*write_fn)(void *ctx, const void *p, size_t n), void *ctx);
/* The slow paths of the inline functions below: buffer full, or a block bigger than it. */
void s2f_sink_write_slow(s2f_sink *s, const void *p, size_t n);
void s2f_sink_putc_slow(s2f_sink *s, char c);

static inline void s2f_sink_write(s2f_sink *s, const void *p, size_t n)
{
    if (n <= sizeof s->buf - s->len) {
        memcpy(s->buf + s->len, p, n);
        s->len += n;
    } else {
        s2f_sink_write_slow(s, p, n);
    }
}

static inline void s2f_sink_putc(s2f_sink *s, char c)
{
    if (s->len < sizeof s->buf)
        s->buf[s->len++] = c;
    else
        s2f_sink_putc_slow(s, c);
}

/* Empties the buffer into the FILE* (a memory sink fails when it has anything to empty). */
void s2f_sink_flush(s2f_sink *s);

/* Where n more bytes can be written directly into the buffer (flushed first when they
 * would not fit), to be followed by s2f_sink_commit(s, bytes written); NULL when the
 * buffer cannot hold n bytes or the sink failed: write piece by piece then. */
static inline char *s2f_sink_room(s2f_sink *s, size_t n)
{
    if (n > sizeof s->buf - s->len) {
        if (n > sizeof s->buf || s->failed || (!s->out && !s->write_fn))
            return NULL;
        s2f_sink_flush(s);
        if (s->failed)
            return NULL;
    }
    return s->buf + s->len;
}

static inline void s2f_sink_commit(s2f_sink *s, size_t n) { s->len += n; }

void s2f_sink_puts(s2f_sink *s, const char *str);
void s2f_sink_u64(s2f_sink *s, uint64_t v);
void s2f_sink_i64(s2f_sink *s, int64_t v);
void s2f_sink_printf(s2f_sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Flushes; returns 0 on success, -1 when any write failed. */
int s2f_sink_finish(s2f_sink *s);

#endif
