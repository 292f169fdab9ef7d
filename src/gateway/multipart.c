/*
 * multipart.c - the streaming multipart/related reader (see multipart.h) and the parser of
 * Content-Type values.
 *
 * The reader is a byte-level state machine; nothing of the body is buffered but one
 * part's header block (bounded by max_header_bytes). The delimiter "CRLF--boundary" is
 * searched with Knuth-Morris-Pratt across feeds: the bytes held as a possible delimiter
 * are always a prefix of the delimiter itself, so they need no buffer, and when the match
 * fails the prefix that can no longer start a delimiter is given to part_data from the
 * delimiter string. Each input byte is looked at a bounded number of times whatever the
 * chunking (linear; one byte per feed works).
 *
 * The CRLF that ends a delimiter line (or the header block) may also be the CRLF of the
 * next delimiter (RFC 2046: an empty body part, or a body that starts with "--boundary"
 * without a preamble): the matcher then starts with those two bytes "virtually" held,
 * and drops them without giving them as data when the match fails.
 */
#include "gateway/multipart.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/error.h"
#include "util/escape.h"

#define MP_DEFAULT_PARTS 10000
#define MP_DEFAULT_HEADER (16u * 1024)
#define MP_DEFAULT_PART (256ull * 1024 * 1024)
#define MP_DEFAULT_PREAMBLE (16u * 1024)
#define MP_DELIM_MAX (4 + S2F_MP_BOUNDARY_MAX)

enum mp_state {
    ST_PREAMBLE,   /* before the first delimiter: ignored */
    ST_AFTER,      /* just after a delimiter: "--", padding or CRLF */
    ST_AFTER_DASH, /* after "--boundary-" */
    ST_PAD,        /* transport padding */
    ST_PAD_CR,     /* the CR ending a delimiter line */
    ST_HEADERS,    /* a part's header block */
    ST_BODY,       /* a part's bytes */
    ST_EPILOGUE,   /* after the close delimiter: ignored */
    ST_FAILED
};

struct s2f_mp_reader {
    s2f_mp_callbacks cb;
    size_t max_parts, max_header, max_preamble;
    uint64_t max_part;
    char delim[MP_DELIM_MAX + 1]; /* "\r\n--" boundary */
    size_t dlen;
    size_t fail[MP_DELIM_MAX + 1]; /* KMP failure function of delim */
    enum mp_state st;
    size_t matched; /* delim[0..matched) held */
    size_t virt;    /* of which the first `virt` bytes are virtual (never data) */
    uint64_t offset; /* bytes fed before the current feed */
    uint64_t work;   /* steps taken (s2f_mp_work) */
    size_t pre;      /* preamble or padding bytes seen */
    size_t index;    /* current part */
    size_t parts_done;
    int in_part;       /* part_begin called, part_end not yet */
    uint64_t part_bytes;
    uint64_t header_at; /* offset of the current header block */
    char *hbuf;
    size_t hlen, hcap;
    int finished;
    s2f_error error; /* the sticky error */
};

/* ---------------------------------------------------------------- media types */

/* RFC 2045 token characters. */
static int is_token(unsigned char c)
{
    return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* RFC 2046 bchars. */
static int is_bchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("'()+_,-./:=? ", c));
}

static int boundary_ok(const char *b, size_t n)
{
    if (n < 1 || n > S2F_MP_BOUNDARY_MAX || b[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_bchar((unsigned char)b[i]))
            return 0;
    return 1;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

static s2f_code mt_fail(s2f_error *err, const char *value, size_t at, const char *what)
{
    char shown[120];
    s2f_escape_text(value, strlen(value), shown, sizeof shown);
    return s2f_fail(err, S2F_EFORMAT, "media type \"%s\": %s at character %zu", shown, what,
                    at + 1);
}

/* A token at v[*i] into out (cap bytes); 0 when empty or too long. */
static int read_token(const char *v, size_t *i, char *out, size_t cap)
{
    size_t n = 0;
    while (is_token((unsigned char)v[*i])) {
        if (n + 1 >= cap)
            return 0;
        out[n++] = v[(*i)++];
    }
    out[n] = 0;
    return n > 0;
}

s2f_code s2f_media_type_parse(const char *value, s2f_media_type *mt, s2f_error *err)
{
    memset(mt, 0, sizeof *mt);
    if (!value)
        return s2f_fail(err, S2F_EFORMAT, "media type: no value");
    const char *v = value;
    size_t i = 0;
    char sub[128];
    while (is_ows(v[i]))
        i++;
    if (!read_token(v, &i, mt->type, sizeof mt->type))
        return mt_fail(err, value, i, "no type (or one too long)");
    if (v[i] != '/')
        return mt_fail(err, value, i, "'/' expected after the type");
    i++;
    if (!read_token(v, &i, sub, sizeof sub) || strlen(mt->type) + 1 + strlen(sub) >= sizeof mt->type)
        return mt_fail(err, value, i, "no subtype (or one too long)");
    strcat(mt->type, "/");
    strcat(mt->type, sub);
    lower(mt->type);
    int seen_b = 0, seen_t = 0, seen_ts = 0;
    for (;;) {
        while (is_ows(v[i]))
            i++;
        if (!v[i])
            break;
        if (v[i] != ';')
            return mt_fail(err, value, i, "';' or the end expected");
        i++;
        while (is_ows(v[i]))
            i++;
        if (!v[i])
            break; /* a trailing ';' is tolerated */
        char name[64];
        if (!read_token(v, &i, name, sizeof name))
            return mt_fail(err, value, i, "parameter name expected");
        lower(name);
        while (is_ows(v[i]))
            i++;
        if (v[i] != '=')
            return mt_fail(err, value, i, "'=' expected after a parameter name");
        i++;
        while (is_ows(v[i]))
            i++;
        char val[256];
        size_t n = 0;
        if (v[i] == '"') {
            i++;
            for (;;) {
                unsigned char c = (unsigned char)v[i];
                if (!c)
                    return mt_fail(err, value, i, "unterminated quoted string");
                if (c == '"')
                    break;
                if (c == '\\') {
                    i++;
                    c = (unsigned char)v[i];
                    if (!c)
                        return mt_fail(err, value, i, "unterminated quoted string");
                }
                if ((c < 32 && c != '\t') || c == 127)
                    return mt_fail(err, value, i, "control character");
                if (n + 1 >= sizeof val)
                    return mt_fail(err, value, i, "parameter value too long");
                val[n++] = (char)c;
                i++;
            }
            i++;
        } else { /* a token; '/' tolerated too (type=application/dicom, unquoted, is common) */
            while (is_token((unsigned char)v[i]) || v[i] == '/') {
                if (n + 1 >= sizeof val)
                    return mt_fail(err, value, i, "parameter value too long");
                val[n++] = v[i++];
            }
            if (n == 0)
                return mt_fail(err, value, i, "parameter value expected");
        }
        val[n] = 0;
        if (!strcmp(name, "boundary")) {
            if (seen_b++)
                return mt_fail(err, value, i, "boundary given twice");
            if (!boundary_ok(val, n))
                return mt_fail(err, value, i,
                               "boundary is not 1-200 characters allowed by RFC 2046");
            memcpy(mt->boundary, val, n + 1);
        } else if (!strcmp(name, "type")) {
            if (seen_t++)
                return mt_fail(err, value, i, "type given twice");
            if (n >= sizeof mt->param_type)
                return mt_fail(err, value, i, "type parameter too long");
            memcpy(mt->param_type, val, n + 1);
            lower(mt->param_type);
        } else if (!strcmp(name, "transfer-syntax")) {
            if (seen_ts++)
                return mt_fail(err, value, i, "transfer-syntax given twice");
            if (n >= sizeof mt->transfer_syntax)
                return mt_fail(err, value, i, "transfer-syntax too long");
            memcpy(mt->transfer_syntax, val, n + 1);
        }
    }
    return S2F_OK;
}

/* ---------------------------------------------------------------- the reader */

s2f_mp_reader *s2f_mp_new(const char *boundary, const s2f_mp_limits *limits,
                          const s2f_mp_callbacks *cb)
{
    s2f_mp_reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (cb)
        r->cb = *cb;
    s2f_mp_limits l = {0, 0, 0, 0};
    if (limits)
        l = *limits;
    r->max_parts = l.max_parts ? l.max_parts : MP_DEFAULT_PARTS;
    r->max_header = l.max_header_bytes ? l.max_header_bytes : MP_DEFAULT_HEADER;
    r->max_part = l.max_part_bytes ? l.max_part_bytes : MP_DEFAULT_PART;
    r->max_preamble = l.max_preamble_bytes ? l.max_preamble_bytes : MP_DEFAULT_PREAMBLE;
    size_t bl = boundary ? strnlen(boundary, S2F_MP_BOUNDARY_MAX + 1) : 0;
    if (!boundary || !boundary_ok(boundary, bl)) {
        r->st = ST_FAILED;
        s2f_fail(&r->error, S2F_EFORMAT, "multipart: the boundary is missing or not 1-200 "
                                         "characters allowed by RFC 2046");
        return r;
    }
    memcpy(r->delim, "\r\n--", 4);
    memcpy(r->delim + 4, boundary, bl);
    r->dlen = 4 + bl;
    r->delim[r->dlen] = 0;
    /* fail[m]: the longest proper border of delim[0..m) */
    r->fail[0] = r->fail[1] = 0;
    for (size_t m = 2, k = 0; m <= r->dlen; m++) {
        while (k > 0 && r->delim[k] != r->delim[m - 1])
            k = r->fail[k];
        if (r->delim[k] == r->delim[m - 1])
            k++;
        r->fail[m] = k;
    }
    r->st = ST_PREAMBLE;
    r->matched = r->virt = 2; /* the body may start with "--boundary" */
    return r;
}

void s2f_mp_free(s2f_mp_reader *r)
{
    if (!r)
        return;
    free(r->hbuf);
    free(r);
}

size_t s2f_mp_parts(const s2f_mp_reader *r)
{
    return r ? r->parts_done : 0;
}

uint64_t s2f_mp_work(const s2f_mp_reader *r)
{
    return r ? r->work : 0;
}

static s2f_code sticky(s2f_mp_reader *r, s2f_error *err)
{
    if (err)
        *err = r->error;
    return r->error.code;
}

static s2f_code mp_fail(s2f_mp_reader *r, s2f_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static s2f_code mp_fail(s2f_mp_reader *r, s2f_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char buf[S2F_ERROR_MAX - 16];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s2f_fail(&r->error, code, "multipart: %s", buf);
    r->st = ST_FAILED;
    return code;
}

static s2f_code stopped(s2f_mp_reader *r, const char *cb)
{
    return mp_fail(r, S2F_EUSAGE, "stopped by the caller (%s of part %zu)", cb, r->index);
}

/* Gives part bytes to part_data within max_part_bytes; `at` is the offset of data[0]. On
 * overflow the bytes up to the limit are given first, so the data seen does not depend on
 * how the body was split into feeds. */
static s2f_code emit(s2f_mp_reader *r, const uint8_t *data, size_t len, uint64_t at)
{
    if (len == 0)
        return S2F_OK;
    uint64_t room = r->max_part - r->part_bytes;
    size_t give = len <= room ? len : (size_t)room;
    if (give && r->cb.part_data && r->cb.part_data(r->cb.ctx, r->index, data, give))
        return stopped(r, "part_data");
    r->part_bytes += give;
    if (give < len)
        return mp_fail(r, S2F_ELIMIT, "part %zu is larger than %llu bytes (at byte offset %llu)",
                       r->index, (unsigned long long)r->max_part,
                       (unsigned long long)(at + give));
    return S2F_OK;
}

/* The delimiter prefix held after byte c when delim[0..m) was held (KMP). */
static size_t kmp_step(s2f_mp_reader *r, size_t m, unsigned char c)
{
    r->work++;
    while (m > 0 && (unsigned char)r->delim[m] != c) {
        m = r->fail[m];
        r->work++;
    }
    if ((unsigned char)r->delim[m] == c)
        m++;
    return m;
}

/* Header block: unfolds, checks every line, extracts Content-Type and Content-Location,
 * then calls part_begin. */
static s2f_code headers_done(s2f_mp_reader *r)
{
    char *h = r->hbuf;
    size_t n = r->hlen; /* ends with CRLF CRLF, or is CRLF alone */
    n = n >= 4 ? n - 2 : 0; /* keep the last line's CRLF */
    /* every CR must start CRLF, every LF end one; no other control character but HT */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '\r' && h[i + 1] == '\n') {
            i++;
            continue;
        }
        if ((c < 32 && c != '\t') || c == 127)
            return mp_fail(r, S2F_EFORMAT,
                           "part %zu: %s in its header block (byte offset %llu)", r->index,
                           c == '\r' ? "a CR without LF" : c == '\n' ? "an LF without CR"
                                                                     : "a control character",
                           (unsigned long long)(r->header_at + i));
    }
    /* unfold: CRLF followed by SP or HT is removed */
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '\r' && i + 2 < n && is_ows(h[i + 2]) && w > 0) {
            i++;
            continue;
        }
        h[w++] = h[i];
    }
    n = w;
    const char *ct = "", *cl = "";
    int have_ct = 0, have_cl = 0;
    size_t line = 0;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (h[e] != '\r')
            e++;
        line++;
        char shown[60];
        size_t c = i;
        while (c < e && h[c] > 32 && h[c] < 127 && h[c] != ':')
            c++;
        if (c == i || c >= e || h[c] != ':')
            return mp_fail(r, S2F_EFORMAT,
                           "part %zu: header line %zu is not \"Name: value\" (\"%s\"; header "
                           "block at byte offset %llu)",
                           r->index, line, s2f_escape_text(h + i, e - i, shown, sizeof shown),
                           (unsigned long long)r->header_at);
        size_t vs = c + 1, ve = e;
        while (vs < ve && is_ows(h[vs]))
            vs++;
        while (ve > vs && is_ows(h[ve - 1]))
            ve--;
        size_t nl = c - i;
        int is_ct = nl == 12 && !strncasecmp(h + i, "Content-Type", 12);
        int is_cl = nl == 16 && !strncasecmp(h + i, "Content-Location", 16);
        if ((is_ct && have_ct++) || (is_cl && have_cl++))
            return mp_fail(r, S2F_EFORMAT,
                           "part %zu: %s given twice (header block at byte offset %llu)",
                           r->index, is_ct ? "Content-Type" : "Content-Location",
                           (unsigned long long)r->header_at);
        h[ve] = 0; /* h[e] was '\r'; ve <= e */
        if (is_ct)
            ct = h + vs;
        if (is_cl)
            cl = h + vs;
        i = e + 2;
    }
    if (r->index >= r->max_parts)
        return mp_fail(r, S2F_ELIMIT, "more than %zu parts (part %zu at byte offset %llu)",
                       r->max_parts, r->index, (unsigned long long)r->header_at);
    r->in_part = 1;
    r->part_bytes = 0;
    if (r->cb.part_begin && r->cb.part_begin(r->cb.ctx, r->index, ct, cl))
        return stopped(r, "part_begin");
    return S2F_OK;
}

static s2f_code header_byte(s2f_mp_reader *r, char c, uint64_t at)
{
    if (r->hlen == 0)
        r->header_at = at;
    if (r->hlen + 1 > r->max_header)
        return mp_fail(r, S2F_ELIMIT,
                       "part %zu: header block longer than %zu bytes (from byte offset %llu)",
                       r->index, r->max_header, (unsigned long long)r->header_at);
    if (r->hlen == r->hcap) {
        size_t cap = r->hcap ? r->hcap * 2 : 512;
        if (cap > r->max_header + 1)
            cap = r->max_header + 1;
        char *b = realloc(r->hbuf, cap);
        if (!b)
            return mp_fail(r, S2F_ENOMEM, "no memory for a header block");
        r->hbuf = b;
        r->hcap = cap;
    }
    r->hbuf[r->hlen++] = c;
    size_t n = r->hlen;
    if (c == '\n' && n >= 2 && r->hbuf[n - 2] == '\r' &&
        (n == 2 || (n >= 4 && r->hbuf[n - 3] == '\n' && r->hbuf[n - 4] == '\r'))) {
        s2f_code rc = headers_done(r);
        if (rc)
            return rc;
        r->hlen = 0;
        r->st = ST_BODY;
        r->matched = r->virt = 2; /* the header block's last CRLF may start the delimiter */
    }
    return S2F_OK;
}

/* A whole delimiter was matched. */
static s2f_code delimiter_seen(s2f_mp_reader *r)
{
    if (r->st == ST_BODY) {
        if (r->cb.part_end && r->cb.part_end(r->cb.ctx, r->index))
            return stopped(r, "part_end");
        r->in_part = 0;
        r->parts_done++;
        r->index++;
    }
    r->matched = r->virt = 0;
    r->pre = 0;
    r->st = ST_AFTER;
    return S2F_OK;
}

static s2f_code no_delimiter(s2f_mp_reader *r, uint64_t at)
{
    return mp_fail(r, S2F_EFORMAT,
                   "no delimiter \"--%s\" in the first %zu bytes (byte offset %llu): wrong "
                   "boundary, or not a multipart body",
                   r->delim + 4, r->max_preamble, (unsigned long long)at);
}

/* Delimiter search in the preamble (nothing given; at most max_preamble bytes before the
 * delimiter) or a body (data given). Stops after a delimiter; *pi is the next byte. */
static s2f_code scan(s2f_mp_reader *r, const uint8_t *p, size_t n, size_t *pi)
{
    size_t i = *pi, span = i;
    int body = r->st == ST_BODY;
    uint64_t base = r->offset;
    size_t limit = r->max_preamble + r->dlen;
    s2f_code rc = S2F_OK;
    while (i < n) {
        if (r->matched == 0) {
            const uint8_t *q = memchr(p + i, '\r', n - i);
            size_t to = q ? (size_t)(q - p) : n;
            r->work += to - i;
            if (!body) {
                if (to - i > limit - r->pre)
                    return no_delimiter(r, base + i + (limit - r->pre));
                r->pre += to - i;
            }
            i = to;
            if (i == n)
                break;
        }
        if (!body && ++r->pre > limit)
            return no_delimiter(r, base + i);
        unsigned char c = p[i];
        size_t old = r->matched, now = kmp_step(r, old, c);
        if (now == old + 1) { /* c extends the held prefix */
            if (old == 0 && body && (rc = emit(r, p + span, i - span, base + span)))
                return rc;
            r->matched = now;
            i++;
            span = i;
            if (now == r->dlen) {
                *pi = i;
                return delimiter_seen(r);
            }
            continue;
        }
        /* fell back: the first `drop` held bytes (and c when now == 0) are data; the
         * virtual ones are not */
        size_t drop = now == 0 ? old : old + 1 - now;
        size_t skip = r->virt < drop ? r->virt : drop;
        r->virt -= skip;
        if (body && (rc = emit(r, (const uint8_t *)r->delim + skip, drop - skip, base + i)))
            return rc;
        r->matched = now;
        i++;
        span = now == 0 ? i - 1 : i; /* when now == 0, c starts a new span of data */
    }
    if (body && r->matched == 0 && (rc = emit(r, p + span, n - span, base + span)))
        return rc;
    *pi = n;
    return S2F_OK;
}

s2f_code s2f_mp_feed(s2f_mp_reader *r, const uint8_t *data, size_t len, s2f_error *err)
{
    if (r->st == ST_FAILED)
        return sticky(r, err);
    if (r->finished)
        return s2f_fail(err, S2F_EUSAGE, "multipart: fed after the end of the body");
    size_t i = 0;
    s2f_code rc = S2F_OK;
    while (i < len && !rc) {
        uint64_t at = r->offset + i;
        unsigned char c = data[i];
        r->work++;
        switch (r->st) {
        case ST_PREAMBLE:
        case ST_BODY:
            rc = scan(r, data, len, &i);
            break;
        case ST_AFTER:
            i++;
            if (c == '-')
                r->st = ST_AFTER_DASH;
            else if (c == ' ' || c == '\t')
                r->st = ST_PAD;
            else if (c == '\r')
                r->st = ST_PAD_CR;
            else
                rc = mp_fail(r, S2F_EFORMAT,
                             "a delimiter followed by 0x%02x, not \"--\", padding or CRLF "
                             "(before part %zu, byte offset %llu)",
                             c, r->index, (unsigned long long)at);
            break;
        case ST_AFTER_DASH:
            i++;
            if (c != '-')
                rc = mp_fail(r, S2F_EFORMAT,
                             "a delimiter followed by \"-\" and 0x%02x, not \"--\" (before "
                             "part %zu, byte offset %llu)",
                             c, r->index, (unsigned long long)at);
            else if (r->parts_done == 0)
                rc = mp_fail(r, S2F_EFORMAT,
                             "the close delimiter comes before any part (byte offset %llu)",
                             (unsigned long long)at);
            else
                r->st = ST_EPILOGUE;
            break;
        case ST_PAD:
            i++;
            if (c == '\r')
                r->st = ST_PAD_CR;
            else if (c != ' ' && c != '\t')
                rc = mp_fail(r, S2F_EFORMAT,
                             "0x%02x in the padding after a delimiter (before part %zu, byte "
                             "offset %llu)",
                             c, r->index, (unsigned long long)at);
            else if (++r->pre > r->max_preamble)
                rc = mp_fail(r, S2F_EFORMAT,
                             "more than %zu bytes of padding after a delimiter (byte offset "
                             "%llu)",
                             r->max_preamble, (unsigned long long)at);
            break;
        case ST_PAD_CR:
            i++;
            if (c != '\n')
                rc = mp_fail(r, S2F_EFORMAT,
                             "a delimiter line ends with CR without LF (before part %zu, byte "
                             "offset %llu)",
                             r->index, (unsigned long long)at);
            else {
                r->st = ST_HEADERS;
                r->hlen = 0;
            }
            break;
        case ST_HEADERS:
            i++;
            rc = header_byte(r, (char)c, at);
            break;
        case ST_EPILOGUE:
            i = len; /* ignored */
            break;
        case ST_FAILED:
            rc = r->error.code;
            break;
        }
    }
    r->offset += len;
    if (rc)
        return sticky(r, err);
    return S2F_OK;
}

s2f_code s2f_mp_finish(s2f_mp_reader *r, s2f_error *err)
{
    if (r->st == ST_FAILED)
        return sticky(r, err);
    r->finished = 1;
    unsigned long long end = (unsigned long long)r->offset;
    switch (r->st) {
    case ST_EPILOGUE:
        return S2F_OK;
    case ST_PREAMBLE:
        mp_fail(r, S2F_EFORMAT,
                "no delimiter \"--%s\" in the body (%llu bytes): wrong boundary, or not a "
                "multipart body",
                r->delim + 4, end);
        break;
    case ST_HEADERS:
        mp_fail(r, S2F_EFORMAT,
                "truncated: the body ends inside the header block of part %zu (byte offset "
                "%llu)",
                r->index, end);
        break;
    case ST_BODY:
        mp_fail(r, S2F_EFORMAT,
                "truncated: part %zu has no closing delimiter (the body ends at byte offset "
                "%llu)",
                r->index, end);
        break;
    default:
        mp_fail(r, S2F_EFORMAT,
                "truncated: no close delimiter \"--%s--\" after part %zu (the body ends at "
                "byte offset %llu)",
                r->delim + 4, r->parts_done ? r->parts_done - 1 : 0, end);
        break;
    }
    return sticky(r, err);
}
