/*
 * fuzz_multipart.c - libFuzzer target for the streaming multipart/related reader
 * (src/gateway/multipart.c), the envelope of every STOW-RS request, and for
 * s2f_media_type_parse.
 *
 * Input: [L-1][boundary: L bytes][parts][header][part hi][part lo][preamble][4 chunk
 * sizes] then the body. Boundary bytes that RFC 2046 refuses are mapped onto allowed ones
 * (so seeds can spell theirs); the limits are small so they are hit. The body is read
 * three times: in one feed, in the fuzzer-chosen chunk sizes (0-31 bytes, cycled), and one
 * byte at a time. The three must give the same callback sequence, code and message (a
 * differential check: abort on any mismatch); callbacks must come in order (begin, data,
 * end, one part after the other); the message must hold no control character; and the
 * reader's work must stay linear in the body's size.
 */
#include "gateway/multipart.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct rec {
    char *log;
    size_t len, cap;
    size_t next;  /* index of the next part_begin */
    int in_part;
    size_t ends;
} rec;

static void put(rec *r, const void *p, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->len + n + 1) * 2;
        char *l = realloc(r->log, cap);
        if (!l)
            abort();
        r->log = l;
        r->cap = cap;
    }
    memcpy(r->log + r->len, p, n);
    r->len += n;
    r->log[r->len] = 0;
}

static int on_begin(void *ctx, size_t i, const char *ct, const char *cl)
{
    rec *r = ctx;
    if (r->in_part || i != r->next)
        abort();
    r->in_part = 1;
    put(r, "\x01", 1);
    put(r, ct, strlen(ct) + 1);
    put(r, cl, strlen(cl) + 1);
    s2f_media_type mt;
    s2f_error e = {S2F_OK, ""};
    s2f_media_type_parse(ct, &mt, &e); /* part media types are outside text too */
    for (const unsigned char *p = (const unsigned char *)e.message; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            abort();
    return 0;
}

static int on_data(void *ctx, size_t i, const uint8_t *d, size_t n)
{
    rec *r = ctx;
    if (!r->in_part || i != r->next || n == 0)
        abort();
    put(r, d, n);
    return 0;
}

static int on_end(void *ctx, size_t i)
{
    rec *r = ctx;
    if (!r->in_part || i != r->next)
        abort();
    r->in_part = 0;
    r->next++;
    r->ends++;
    put(r, "\x02", 1);
    return 0;
}

static const char BCHARS[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?";

/* Reads body with chunk sizes sizes[] (nsizes 0: one feed); appends code and message. */
static void run(const char *boundary, const s2f_mp_limits *lim, const uint8_t *body, size_t n,
                const size_t *sizes, size_t nsizes, rec *r)
{
    memset(r, 0, sizeof *r);
    put(r, "", 0);
    s2f_mp_callbacks cb = {on_begin, on_data, on_end, r};
    s2f_mp_reader *mp = s2f_mp_new(boundary, lim, &cb);
    if (!mp)
        abort();
    s2f_error e = {S2F_OK, ""};
    s2f_code rc = S2F_OK;
    size_t at = 0, k = 0;
    while (at < n && !rc) {
        size_t c = nsizes ? sizes[k++ % nsizes] : n;
        if (c > n - at)
            c = n - at;
        rc = s2f_mp_feed(mp, body + at, c, &e);
        at += c;
    }
    if (!rc)
        rc = s2f_mp_finish(mp, &e);
    if (rc != S2F_OK && rc != S2F_EFORMAT && rc != S2F_ELIMIT)
        abort();
    if (rc == S2F_OK && (r->in_part || r->ends == 0))
        abort();
    if (s2f_mp_parts(mp) != r->ends)
        abort();
    /* linear: a bounded number of steps per byte, whatever the chunking */
    if (s2f_mp_work(mp) > 4 * (uint64_t)n + 8)
        abort();
    for (const unsigned char *p = (const unsigned char *)e.message; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            abort();
    char code = (char)('0' + rc);
    put(r, "\x03", 1);
    put(r, &code, 1);
    put(r, e.message, strlen(e.message));
    s2f_mp_free(mp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t bl = 1 + data[0] % S2F_MP_BOUNDARY_MAX;
    if (size < 1 + bl + 9)
        return 0;
    char boundary[S2F_MP_BOUNDARY_MAX + 1];
    for (size_t i = 0; i < bl; i++) {
        char c = (char)data[1 + i];
        boundary[i] = c && strchr(BCHARS, c) ? c : BCHARS[data[1 + i] % (sizeof BCHARS - 1)];
    }
    boundary[bl] = 0;
    const uint8_t *h = data + 1 + bl;
    s2f_mp_limits lim = {
        1 + h[0] % 32,
        16 + (size_t)h[1] * 8,
        1 + ((uint64_t)h[2] << 8 | h[3]),
        1 + (size_t)h[4] * 8,
    };
    size_t sizes[4] = {h[5] % 32u, h[6] % 32u, h[7] % 32u, h[8] % 32u};
    if (!(sizes[0] | sizes[1] | sizes[2] | sizes[3]))
        sizes[0] = 1;
    const uint8_t *body = h + 9;
    size_t n = size - (size_t)(body - data);

    rec whole, chunked, bytes;
    size_t one = 1;
    run(boundary, &lim, body, n, NULL, 0, &whole);
    run(boundary, &lim, body, n, sizes, 4, &chunked);
    run(boundary, &lim, body, n, &one, 1, &bytes);
    if (whole.len != chunked.len || memcmp(whole.log, chunked.log, whole.len) ||
        whole.len != bytes.len || memcmp(whole.log, bytes.log, whole.len))
        abort();
    free(whole.log);
    free(chunked.log);
    free(bytes.log);

    /* the Content-Type parser on the body's first line */
    char line[512];
    size_t l = 0;
    while (l < n && l < sizeof line - 1 && body[l] != '\n')
        l++;
    memcpy(line, body, l);
    line[l] = 0;
    s2f_media_type mt;
    s2f_error e = {S2F_OK, ""};
    if (s2f_media_type_parse(line, &mt, &e) == S2F_OK) {
        if (strlen(mt.boundary) > S2F_MP_BOUNDARY_MAX || mt.type[0] == 0)
            abort();
    } else {
        for (const unsigned char *p = (const unsigned char *)e.message; *p; p++)
            if (*p < 0x20 || *p == 0x7f)
                abort();
    }
    return 0;
}
