/*
 * dicomjson.c - the DICOM JSON reader (PS3.18 Annex F, MAPPING rule M1).
 *
 * The text is parsed by yajl 2, an event-driven (SAX-style) parser, fed in bounded chunks
 * (1 MiB); the data set is built directly from its events, with no document tree in
 * between (issue 9 defect 2: json-c's DOM took ~32x the file). The result is the same s2f_ds
 * a Part 10 file gives (see dataset.h): elements sorted by tag, strings joined with '\' as
 * UTF-8, PN rebuilt as "Alphabetic=Ideographic=Phonetic", DS/IS numbers kept as the text
 * written in the JSON (yajl hands over a number's text as written), binary numbers encoded
 * little-endian, InlineBinary decoded. Everything the data set holds is in the arena.
 *
 * The reader is a stack of frames (top-level array, data set, element, Value array, person
 * name object), each collecting what it builds in a reusable scratch vector that is copied
 * into the arena, exactly sized, when the frame closes. An element whose "Value" comes
 * before its "vr" has that value recorded as a compact event tape and replayed once the VR
 * is known. Syntax errors and the JSON nesting limit take precedence over the first error
 * about the content (as when the whole text was parsed first): after a content error the
 * events are only checked for syntax and depth.
 *
 * Decisions (docs/decisions.md, issue 9 defects 2 and 9): a string holding U+0000 is
 * refused (a DICOM value cannot hold NUL and truncating it would change the value
 * silently); an object key given twice keeps the first value, with a warning.
 */
#include "dicom/dataset.h"
#include "util/escape.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#define FEED_CHUNK ((size_t)1 << 20) /* bytes handed to yajl at a time */
#define PATH_TEXT_MAX 240

/* ---- growable scratch buffers (malloc'd, reused, outside the arena) ----------------------- */

typedef struct sbuf {
    uint8_t *p;
    size_t n, cap;
} sbuf;

/* Room for `more` bytes at the end; 0 when out of memory. */
static int sbuf_reserve(sbuf *b, size_t more)
{
    if (b->cap - b->n >= more)
        return 1;
    if (more > SIZE_MAX / 2 - b->n)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->n < more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return 0;
    b->p = p;
    b->cap = cap;
    return 1;
}

static int sbuf_put(sbuf *b, const void *src, size_t n)
{
    if (!sbuf_reserve(b, n))
        return 0;
    if (n)
        memcpy(b->p + b->n, src, n);
    b->n += n;
    return 1;
}

/* ---- events and frames -------------------------------------------------------------------- */

/* A JSON value as an event: the start of a container, or a scalar with its text. */
enum kind { K_NULL, K_BOOL, K_NUMBER, K_STRING, K_OBJECT, K_ARRAY, K_KEY, K_END };

static const char *kind_name(int k)
{
    switch (k) {
    case K_NULL: return "null";
    case K_BOOL: return "true/false";
    case K_NUMBER: return "a number";
    case K_STRING: return "a string";
    case K_OBJECT: return "an object";
    case K_ARRAY: return "an array";
    default: return "something else";
    }
}

enum frame_kind { F_TOP_ARRAY, F_DATASET, F_ELEMENT, F_VALUES, F_PN };

/* What the next value in an element or person name object is for. */
enum member { M_NONE, M_VR, M_VALUE, M_INLINE, M_BULK, M_GROUP };
enum { SEEN_VR = 1, SEEN_VALUE = 2, SEEN_INLINE = 4, SEEN_BULK = 8 };

typedef struct frame {
    int kind;
    unsigned depth;    /* F_DATASET: sequence nesting depth */
    int in_top_array;  /* F_DATASET: the data set is item [0] of a top-level array */
    int content;       /* F_DATASET: the top level or a content item of its tree */
    int streamed;      /* F_DATASET: a content item handed to ctx->content when complete */
    s2f_arena_mark mark; /* F_DATASET, streamed: the scratch arena before the item */
    s2f_ds *ds;        /* F_DATASET: data set built; F_VALUES of SQ: parent of the items */
    size_t index;      /* F_VALUES: current entry; F_TOP_ARRAY: entries seen */
    int single;        /* F_VALUES: a bare value read as a one-element array */
    int opened;        /* F_ELEMENT: its '{' was seen */
    int member;        /* F_ELEMENT, F_PN: what the next value is (enum member) */
    int group;         /* F_PN: which group the next value is */
    unsigned seen;     /* F_ELEMENT: SEEN_* bits; F_PN: groups seen */
    int data_kind;     /* F_ELEMENT: kind of the InlineBinary / BulkDataURI value */
    int taped;         /* F_ELEMENT: vec holds the recorded "Value" */
    s2f_elem e;        /* F_ELEMENT: the element built */
    sbuf vec;          /* elements, joined values, item pointers, a tape, or bulk text */
} frame;

/* Events not processed but only checked (skipped values) or recorded (a "Value" before
 * its "vr"), until the value they belong to ends. */
enum divert { D_NONE, D_SKIP, D_RECORD };

typedef struct reader {
    s2f_read_ctx *ctx;
    s2f_error *err;
    frame *frames;
    size_t top, cap;        /* frames[0..top) are open */
    int divert;             /* enum divert */
    size_t divert_depth;    /* containers open inside the diverted value */
    size_t divert_frame;    /* D_RECORD: the element frame whose tape records */
    size_t json_depth, json_depth_max;
    int depth_exceeded;
    int failed;             /* a content error is in err; only syntax is checked further */
    s2f_code rc;
    int root_started, root_done;
    s2f_ds *result;
    sbuf pn[3];             /* the groups of the person name being read */
    sbuf num;               /* a number's text, NUL-terminated */
    yajl_handle h;          /* for the offset of the key being read (look-ahead) */
    const uint8_t *text;    /* the whole input, and where the current chunk starts */
    size_t text_len, chunk_base;
    size_t lookahead_left;  /* bytes the look-ahead for "vr" may still scan */
    int replaying;          /* events come from a tape: no offsets, no look-ahead */
    s2f_arena *arena;       /* where data sets go: ctx->arena, or the sink's scratch arena
                               inside a streamed content item */
    unsigned in_content;    /* streamed content items open */
} reader;

/* ---- JSON paths for messages: $["0040A730"].Value[2]["0040A043"] ---------------------- */

static int frame_piece(const frame *f, char *piece, size_t cap)
{
    switch (f->kind) {
    case F_DATASET: return f->in_top_array ? snprintf(piece, cap, "[0]") : 0;
    case F_ELEMENT: return snprintf(piece, cap, "[\"%08X\"]", (unsigned)f->e.tag);
    case F_VALUES: return snprintf(piece, cap, ".Value[%zu]", f->index);
    default: return 0;
    }
}

/* The path of frames[0..upto) plus `extra` (a last piece, or NULL), rendered right to left
 * so that, when it is too long, the leaf end is kept. */
static void path_render(const reader *r, size_t upto, const char *extra, char *out, size_t cap)
{
    char buf[PATH_TEXT_MAX + 64];
    size_t start = sizeof buf - 1;
    buf[start] = 0;
    for (size_t i = upto + 1; i-- > 0;) {
        char piece[48];
        int n = i == upto ? snprintf(piece, sizeof piece, "%s", extra ? extra : "")
                          : frame_piece(&r->frames[i], piece, sizeof piece);
        if (n < 0 || (size_t)n >= sizeof piece || (size_t)n + 4 > start ||
            sizeof buf - 1 - start + (size_t)n > PATH_TEXT_MAX) {
            memcpy(buf + start - 4, "$...", 4);
            start -= 4;
            snprintf(out, cap, "%s", buf + start);
            return;
        }
        start -= (size_t)n;
        memcpy(buf + start, piece, (size_t)n);
    }
    buf[--start] = '$';
    snprintf(out, cap, "%s", buf + start);
}

/* ---- messages ----------------------------------------------------------------------------- */

/* Input text echoed in a message: at most cap - 1 bytes, escaped the one way every message
 * is (src/util/escape.h, issue 9 defect 8), so that messages stay one line of valid UTF-8. */
static const char *printable(const char *s, size_t n, char *buf, size_t cap)
{
    return s2f_escape_to_buf(s, n, 0, buf, cap);
}

/* The first content error: kept, and later events are only checked for syntax. */
static int fail_path(reader *r, size_t upto, const char *extra, s2f_code code,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail_path(reader *r, size_t upto, const char *extra, s2f_code code,
                     const char *fmt, ...)
{
    char where[PATH_TEXT_MAX + 8], what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    path_render(r, upto, extra, where, sizeof where);
    r->rc = s2f_fail(r->err, code, "at %s: %s", where, what);
    r->failed = 1;
    return 1;
}

/* An error at the innermost open frame. */
#define FAIL(r, code, ...) fail_path((r), (r)->top, NULL, (code), __VA_ARGS__)

static void warn_path(reader *r, size_t upto, const char *extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void warn_path(reader *r, size_t upto, const char *extra, const char *fmt, ...)
{
    char where[PATH_TEXT_MAX + 8], what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    path_render(r, upto, extra, where, sizeof where);
    s2f_warn(r->ctx->warnings, "at %s: %s", where, what);
}

/* A lenient case (M1) at frames[0..upto): a warning normally, an error with ctx->strict.
 * Returns 1 when reading goes on. */
static int lenient(reader *r, size_t upto, const char *what)
{
    if (r->ctx->strict) {
        fail_path(r, upto, NULL, S2F_EFORMAT, "%s (refused in strict mode)", what);
        return 0;
    }
    warn_path(r, upto, NULL, "%s (M1)", what);
    return 1;
}

static int out_of_memory(reader *r)
{
    if (s2f_arena_over_limit(r->ctx->arena) || s2f_arena_over_limit(r->arena))
        r->rc = s2f_fail(r->err, S2F_ELIMIT, "memory limit exceeded while reading DICOM JSON");
    else
        r->rc = s2f_fail(r->err, S2F_ENOMEM, "out of memory while reading DICOM JSON");
    r->failed = 1;
    return 1;
}

static void vr_name(uint16_t vr, char out[3])
{
    out[0] = (char)(vr >> 8);
    out[1] = (char)(vr & 0xFF);
    out[2] = 0;
}

/* ---- small helpers kept from the DOM reader ------------------------------------------------ */

static int is_blank(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static size_t bom_length(const uint8_t *d, size_t n)
{
    return n >= 3 && d[0] == 0xEF && d[1] == 0xBB && d[2] == 0xBF ? 3 : 0;
}

int s2f_dicomjson_looks_like(const uint8_t *data, size_t len)
{
    if (!data)
        return 0;
    size_t i = bom_length(data, len);
    while (i < len && is_blank(data[i]))
        i++;
    return i < len && (data[i] == '{' || data[i] == '[');
}

static int json_depth_for(unsigned max_depth)
{
    /* Each sequence level is 4 JSON levels: data set, element, Value, item. */
    if (max_depth > (unsigned)(INT_MAX - 8) / 4)
        return INT_MAX;
    return (int)(4 * max_depth + 8);
}

/* LT ST UT UR: one value, a backslash is text. */
static int single_valued(uint16_t vr)
{
    return vr == S2F_VR('L', 'T') || vr == S2F_VR('S', 'T') || vr == S2F_VR('U', 'T') ||
           vr == S2F_VR('U', 'R');
}

static int vr_takes_binary(uint16_t vr)
{
    switch (vr) {
    case S2F_VR('O', 'B'): case S2F_VR('O', 'D'): case S2F_VR('O', 'F'):
    case S2F_VR('O', 'L'): case S2F_VR('O', 'V'): case S2F_VR('O', 'W'):
    case S2F_VR('U', 'N'):
        return 1;
    default:
        return 0;
    }
}

/* ---- binary numbers (US SS UL SL FL FD SV UV AT) ------------------------------------------- */

/* A JSON number as an integer: sign and magnitude. */
typedef struct integer {
    int neg;
    uint64_t mag;
} integer;

/* 1 for JSON integer grammar: -?digits. */
static int is_integer_token(const char *s, size_t n)
{
    size_t i = n > 0 && s[0] == '-';
    if (i == n)
        return 0;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int integer_from_text(const char *s, size_t n, integer *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    out->neg = buf[0] == '-';
    char *end;
    errno = 0;
    out->mag = strtoull(buf + out->neg, &end, 10);
    return errno == 0 && *end == 0 && end != buf + out->neg;
}

/* A number with a fraction or exponent that is integral and in range (1e2 -> 100). */
static int integer_from_double(double d, integer *out)
{
    if (!isfinite(d) || d < -9223372036854775808.0 || d >= 18446744073709551616.0)
        return 0;
    out->neg = d < 0;
    out->mag = d < 0 ? (uint64_t)(-d) : (uint64_t)d;
    return (out->neg ? -(double)out->mag : (double)out->mag) == d;
}

static void put_le(uint8_t *dst, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        dst[i] = (uint8_t)(v >> (8 * i));
}

/* Integer VRs: range-checks the value and writes it little-endian. */
static int encode_integer(reader *r, uint16_t vr, const integer *x, uint8_t *dst)
{
    unsigned size = s2f_vr_fixed_size(vr);
    int is_signed = vr == S2F_VR('S', 'S') || vr == S2F_VR('S', 'L') || vr == S2F_VR('S', 'V');
    unsigned bits = 8 * size;
    uint64_t max_pos = is_signed ? (UINT64_C(1) << (bits - 1)) - 1
                                 : (bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1);
    uint64_t max_neg = is_signed ? UINT64_C(1) << (bits - 1) : 0;
    if ((x->neg && x->mag > max_neg) || (!x->neg && x->mag > max_pos)) {
        char vrs[3];
        vr_name(vr, vrs);
        return FAIL(r, S2F_EFORMAT, "number %s%llu is out of range for VR %s",
                    x->neg ? "-" : "", (unsigned long long)x->mag, vrs);
    }
    put_le(dst, x->neg ? (uint64_t)0 - x->mag : x->mag, size);
    return 1;
}

static int encode_float(reader *r, uint16_t vr, int kind, const char *s, uint8_t *dst)
{
    if (kind != K_NUMBER)
        return FAIL(r, S2F_EFORMAT, "expected a number for VR %s, got %s",
                    vr == S2F_VR('F', 'L') ? "FL" : "FD", kind_name(kind));
    double d = strtod(s, NULL);
    uint64_t bits;
    if (vr == S2F_VR('F', 'L')) {
        if (isfinite(d) && (d > FLT_MAX || d < -FLT_MAX))
            return FAIL(r, S2F_EFORMAT, "number %.40s is out of range for VR FL", s);
        float f = (float)d;
        uint32_t b32;
        memcpy(&b32, &f, sizeof b32);
        bits = b32;
    } else {
        memcpy(&bits, &d, sizeof bits);
    }
    put_le(dst, bits, s2f_vr_fixed_size(vr));
    return 1;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* "GGGGEEEE" -> tag; 0 when the text is not 8 hex digits. */
static int parse_tag(const char *s, size_t n, uint32_t *tag)
{
    uint32_t t = 0;
    if (n != 8)
        return 0;
    for (size_t i = 0; i < 8; i++) {
        int h = hex_value(s[i]);
        if (h < 0)
            return 0;
        t = (t << 4) | (uint32_t)h;
    }
    *tag = t;
    return 1;
}

static int encode_at(reader *r, int kind, const char *s, size_t n, uint8_t *dst)
{
    uint32_t tag;
    char text[21];
    if (kind != K_STRING)
        return FAIL(r, S2F_EFORMAT, "expected a \"GGGGEEEE\" string for VR AT, got %s",
                    kind_name(kind));
    if (!parse_tag(s, n, &tag))
        return FAIL(r, S2F_EFORMAT, "AT value \"%s\" is not 8 hex digits",
                    printable(s, n, text, sizeof text));
    put_le(dst, S2F_TAG_GROUP(tag), 2);
    put_le(dst + 2, S2F_TAG_ELEM(tag), 2);
    return 1;
}

/* One value of a binary-number VR, s[0..n) NUL-terminated for numbers. */
static int encode_number(reader *r, uint16_t vr, int kind, const char *s, size_t n,
                         uint8_t *dst)
{
    char vrs[3];
    integer x;
    vr_name(vr, vrs);
    if (vr == S2F_VR('A', 'T'))
        return encode_at(r, kind, s, n, dst);
    if (vr == S2F_VR('F', 'L') || vr == S2F_VR('F', 'D'))
        return encode_float(r, vr, kind, s, dst);
    if (kind != K_NUMBER)
        return FAIL(r, S2F_EFORMAT, "expected a number for VR %s, got %s", vrs,
                    kind_name(kind));
    if (is_integer_token(s, n)) {
        if (!integer_from_text(s, n, &x))
            return FAIL(r, S2F_EFORMAT, "number %.40s is out of range for VR %s", s, vrs);
    } else if (!integer_from_double(strtod(s, NULL), &x)) {
        return FAIL(r, S2F_EFORMAT, "number %.40s is not an integer (VR %s)", s, vrs);
    }
    return encode_integer(r, vr, &x, dst);
}

/* ---- InlineBinary ---------------------------------------------------------------------------- */

static int base64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes base64 (RFC 4648; blanks skipped, padding optional) into out, which must hold
 * 3 * n / 4 + 3 bytes. Returns the byte count, or -1 - (index of the bad character). */
static long long base64_decode(const char *s, size_t n, uint8_t *out)
{
    size_t o = 0, quad = 0, pad = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (is_blank((uint8_t)c))
            continue;
        if (c == '=') {
            if (quad < 2 || ++pad > 2)
                return -1 - (long long)i;
            continue;
        }
        int v = base64_value(c);
        if (v < 0 || pad)
            return -1 - (long long)i;
        acc = (acc << 6) | (uint32_t)v;
        if (++quad == 4) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            quad = 0;
            acc = 0;
        }
    }
    if (quad == 1 || (pad && quad + pad != 4))
        return -1 - (long long)n;
    if (quad == 2) {
        out[o++] = (uint8_t)(acc >> 4);
    } else if (quad == 3) {
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    return (long long)o;
}


/* ---- frames ------------------------------------------------------------------------------- */

#define TOP(r) (&(r)->frames[(r)->top - 1])

/* A new innermost frame; its scratch vector keeps the capacity of the slot's last use.
 * NULL when out of memory. Frame pointers taken before a push are invalid after it. */
static frame *push(reader *r, int kind)
{
    if (r->top == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        frame *f = realloc(r->frames, cap * sizeof *f);
        if (!f)
            return NULL;
        memset(f + r->cap, 0, (cap - r->cap) * sizeof *f);
        r->frames = f;
        r->cap = cap;
    }
    frame *f = &r->frames[r->top++];
    sbuf keep = f->vec;
    memset(f, 0, sizeof *f);
    f->vec = keep;
    f->vec.n = 0;
    f->kind = kind;
    return f;
}

/* The next value (and everything inside it) is skipped or recorded, not read. */
static void divert_next(reader *r, int how)
{
    r->divert = how;
    r->divert_depth = 0;
    r->divert_frame = r->top - 1;
}

/* The tape: per event a kind byte, then for keys, strings and numbers a length and bytes. */
static int tape_put(sbuf *t, int kind, const char *s, size_t n)
{
    uint8_t k = (uint8_t)kind;
    if (!sbuf_put(t, &k, 1))
        return 0;
    if (kind != K_KEY && kind != K_STRING && kind != K_NUMBER)
        return 1;
    return sbuf_put(t, &n, sizeof n) && sbuf_put(t, s, n);
}

static int divert_event(reader *r, int kind, const char *s, size_t n)
{
    if (r->divert == D_RECORD && !tape_put(&r->frames[r->divert_frame].vec, kind, s, n))
        return out_of_memory(r);
    if (kind == K_OBJECT || kind == K_ARRAY)
        r->divert_depth++;
    else if (kind == K_END)
        r->divert_depth--;
    if (r->divert_depth == 0 && kind != K_KEY)
        r->divert = D_NONE;
    return 1;
}

static int skip_value(reader *r, int kind)
{
    divert_next(r, D_SKIP);
    return divert_event(r, kind, NULL, 0);
}

static int on_value(reader *r, int kind, const char *s, size_t n);
static int on_key(reader *r, const char *s, size_t n);
static int on_end(reader *r);

/* ---- data sets ------------------------------------------------------------------------------- */

/* With a content sink (ctx->content, as for Part 10) each item of a Content Sequence of the
 * top level or of such an item is read into the sink's scratch arena, handed to the sink
 * when complete and released; its sequence is left empty (dataset.h). */
static int begin_content_item(reader *r, s2f_arena_mark *mark)
{
    const s2f_content_sink *sink = r->ctx->content;
    *mark = s2f_arena_get_mark(sink->scratch);
    s2f_code rc = sink->begin(sink->user);
    if (rc) {
        r->rc = rc;
        r->failed = 1;
        return 0;
    }
    r->in_content++;
    r->arena = sink->scratch;
    return 1;
}

static int end_content_item(reader *r, const s2f_ds *ds, s2f_arena_mark mark)
{
    const s2f_content_sink *sink = r->ctx->content;
    s2f_code rc = sink->end(sink->user, ds);
    s2f_arena_release(sink->scratch, mark);
    if (--r->in_content == 0)
        r->arena = r->ctx->arena;
    if (rc) {
        r->rc = rc;
        r->failed = 1;
        return 0;
    }
    return 1;
}

static int push_dataset(reader *r, const s2f_ds *parent, unsigned depth, int in_top_array,
                        int stream)
{
    s2f_arena_mark mark = {0};
    if (depth > r->ctx->max_depth)
        return FAIL(r, S2F_ELIMIT, "sequences nested deeper than %u levels", r->ctx->max_depth);
    if (stream && !begin_content_item(r, &mark))
        return 1;
    s2f_ds *ds = s2f_arena_calloc(r->arena, 1, sizeof *ds);
    frame *f = ds ? push(r, F_DATASET) : NULL;
    if (!f)
        return out_of_memory(r);
    ds->parent = parent;
    ds->utf8 = 1;
    f->ds = ds;
    f->depth = depth;
    f->in_top_array = in_top_array;
    f->content = !parent || stream;
    f->streamed = stream;
    f->mark = mark;
    return 1;
}

static int elem_order(const void *a, const void *b)
{
    const s2f_elem *x = a, *y = b;
    if (x->tag != y->tag)
        return x->tag < y->tag ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Ascending tag order; of elements with the same tag (a key given twice, or in two
 * spellings), the first in the text is kept, with a warning. */
static void sort_elements(reader *r, s2f_ds *ds)
{
    int sorted = 1;
    for (uint32_t i = 1; i < ds->n && sorted; i++)
        sorted = ds->elems[i - 1].tag < ds->elems[i].tag;
    if (sorted)
        return;
    for (uint32_t i = 0; i < ds->n; i++)
        ds->elems[i].offset = i; /* tie-break: text order (offset is 0 in JSON anyway) */
    qsort(ds->elems, ds->n, sizeof *ds->elems, elem_order);
    uint32_t w = 0;
    for (uint32_t i = 0; i < ds->n; i++) {
        ds->elems[i].offset = 0;
        if (w > 0 && ds->elems[w - 1].tag == ds->elems[i].tag) {
            char piece[16];
            snprintf(piece, sizeof piece, "[\"%08X\"]", (unsigned)ds->elems[i].tag);
            warn_path(r, r->top, piece, "tag appears twice in the data set; the first is kept");
            continue;
        }
        ds->elems[w++] = ds->elems[i];
    }
    ds->n = w;
}

static int dataset_key(reader *r, const char *s, size_t n)
{
    uint32_t tag;
    char text[41];
    if (!parse_tag(s, n, &tag))
        return FAIL(r, S2F_EFORMAT, "member key \"%s\" is not a tag (8 hex digits)",
                    printable(s, n, text, sizeof text));
    frame *f = push(r, F_ELEMENT);
    if (!f)
        return out_of_memory(r);
    f->e.tag = tag;
    return 1;
}

static int entry_done(reader *r);

static int dataset_end(reader *r)
{
    frame *f = TOP(r);
    s2f_ds *ds = f->ds;
    size_t count = f->vec.n / sizeof(s2f_elem);
    if (count > UINT32_MAX)
        return FAIL(r, S2F_ELIMIT, "more than 2^32 elements in a data set");
    if (count) {
        ds->elems = s2f_arena_alloc(r->arena, f->vec.n);
        if (!ds->elems)
            return out_of_memory(r);
        memcpy(ds->elems, f->vec.p, f->vec.n);
        ds->n = (uint32_t)count;
    }
    sort_elements(r, ds);
    int streamed = f->streamed;
    s2f_arena_mark mark = f->mark;
    r->top--;
    if (streamed)
        return end_content_item(r, ds, mark) ? entry_done(r) : 1;
    if (r->top == 0 || TOP(r)->kind == F_TOP_ARRAY) {
        r->result = ds;
        return 1;
    }
    if (!sbuf_put(&TOP(r)->vec, &ds, sizeof ds))
        return out_of_memory(r);
    return entry_done(r);
}

/* M1: the text is one data set object, or an array holding exactly one. */
static int root_value(reader *r, int kind)
{
    if (kind == K_OBJECT)
        return push_dataset(r, NULL, 0, 0, 0);
    if (kind == K_ARRAY)
        return push(r, F_TOP_ARRAY) ? 1 : out_of_memory(r);
    r->rc = s2f_fail(r->err, S2F_EFORMAT, "DICOM JSON must be an object (a data set) or an "
                     "array holding one, not %s", kind_name(kind));
    r->failed = 1;
    return 1;
}

static int top_array_value(reader *r, int kind)
{
    if (TOP(r)->index++ > 0)
        return skip_value(r, kind);
    if (kind != K_OBJECT)
        return fail_path(r, r->top, "[0]", S2F_EFORMAT, "expected a data set object, got %s",
                         kind_name(kind));
    return push_dataset(r, NULL, 0, 1, 0);
}

static int top_array_end(reader *r)
{
    size_t n = TOP(r)->index;
    r->top--;
    if (n == 1)
        return 1;
    r->failed = 1;
    if (n == 0)
        r->rc = s2f_fail(r->err, S2F_EFORMAT, "JSON array holds no data set");
    else
        r->rc = s2f_fail(r->err, S2F_EUNSUPPORTED,
                         "JSON array holds %zu data sets; one SR per input is read", n);
    return 1;
}

/* ---- values ------------------------------------------------------------------------------- */

/* The Value array is complete: its entries go into the element (frame below). */
static int values_end(reader *r)
{
    frame *v = TOP(r);
    s2f_elem *e = &r->frames[r->top - 2].e;
    if (v->vec.n > UINT32_MAX && e->vr != S2F_VR('S', 'Q'))
        return fail_path(r, r->top - 1, NULL, S2F_ELIMIT, "value longer than 4 GiB");
    if (v->vec.n / sizeof(s2f_ds *) > UINT32_MAX)
        return fail_path(r, r->top - 1, NULL, S2F_ELIMIT, "more than 2^32 sequence items");
    if (v->vec.n) {
        uint8_t *copy = s2f_arena_alloc(r->arena, v->vec.n);
        if (!copy)
            return out_of_memory(r);
        memcpy(copy, v->vec.p, v->vec.n);
        if (e->vr == S2F_VR('S', 'Q')) {
            e->items = (s2f_ds **)(void *)copy;
            e->n_items = (uint32_t)(v->vec.n / sizeof(s2f_ds *));
        } else {
            e->val = copy;
            e->len = (uint32_t)v->vec.n;
        }
    }
    r->top--;
    return 1;
}

static int entry_done(reader *r)
{
    frame *v = TOP(r);
    v->index++;
    return v->single ? values_end(r) : 1;
}

/* One value of a string VR other than PN: appended to the joined value. */
static int string_entry(reader *r, uint16_t vr, int kind, const char *s, size_t n)
{
    int numeric_vr = vr == S2F_VR('D', 'S') || vr == S2F_VR('I', 'S');
    char vrs[3];
    vr_name(vr, vrs);
    if (kind == K_NUMBER && !numeric_vr)
        return FAIL(r, S2F_EFORMAT, "expected a string for VR %s, got a number", vrs);
    if (kind != K_NULL && kind != K_STRING && kind != K_NUMBER)
        return FAIL(r, S2F_EFORMAT, "expected a string for VR %s, got %s", vrs,
                    kind_name(kind));
    if (kind == K_STRING && !single_valued(vr) && memchr(s, '\\', n))
        warn_path(r, r->top, NULL, "value holds a backslash, which DICOM reads as a value "
                  "separator");
    if (!sbuf_put(&TOP(r)->vec, s, n))
        return out_of_memory(r);
    return entry_done(r);
}

/* One PN value: an object of groups (frame F_PN), null, or (lenient) a bare string. */
static int pn_entry(reader *r, int kind, const char *s, size_t n)
{
    if (kind == K_OBJECT) {
        for (int k = 0; k < 3; k++)
            r->pn[k].n = 0;
        return push(r, F_PN) ? 1 : out_of_memory(r);
    }
    if (kind == K_NULL)
        return entry_done(r);
    if (kind != K_STRING)
        return FAIL(r, S2F_EFORMAT, "expected a person name object, got %s", kind_name(kind));
    if (!lenient(r, r->top, "person name is a bare string, not an object: read as the "
                 "Alphabetic group"))
        return 1;
    if (!sbuf_put(&TOP(r)->vec, s, n))
        return out_of_memory(r);
    return entry_done(r);
}

static const char *const pn_groups[3] = {"Alphabetic", "Ideographic", "Phonetic"};

static int pn_key(reader *r, const char *s, size_t n)
{
    frame *p = TOP(r);
    char text[41];
    int k = 0;
    while (k < 3 && !(strlen(pn_groups[k]) == n && memcmp(s, pn_groups[k], n) == 0))
        k++;
    if (k == 3) {
        warn_path(r, r->top, NULL, "unknown person name group \"%s\" ignored",
                  printable(s, n, text, sizeof text));
        divert_next(r, D_SKIP);
        return 1;
    }
    if (p->seen & (1u << k)) {
        warn_path(r, r->top, NULL, "person name group \"%s\" given twice; the first is kept",
                  pn_groups[k]);
        divert_next(r, D_SKIP);
        return 1;
    }
    p->seen |= 1u << k;
    p->group = k;
    return 1;
}

static int pn_value(reader *r, int kind, const char *s, size_t n)
{
    int k = TOP(r)->group;
    if (kind == K_NULL)
        return 1;
    if (kind != K_STRING)
        return FAIL(r, S2F_EFORMAT, "\"%s\" is %s, expected a string", pn_groups[k],
                    kind_name(kind));
    return sbuf_put(&r->pn[k], s, n) ? 1 : out_of_memory(r);
}

/* "Alphabetic=Ideographic=Phonetic", trailing empty groups dropped. */
static int pn_end(reader *r)
{
    r->top--;
    sbuf *out = &TOP(r)->vec;
    int last = 2;
    while (last >= 0 && r->pn[last].n == 0)
        last--;
    for (int k = 0; k <= last; k++)
        if ((k && !sbuf_put(out, "=", 1)) || !sbuf_put(out, r->pn[k].p, r->pn[k].n))
            return out_of_memory(r);
    return entry_done(r);
}

/* One entry of "Value" (frame F_VALUES on top, the element below it). */
static int values_entry(reader *r, int kind, const char *s, size_t n)
{
    frame *v = TOP(r);
    uint16_t vr = r->frames[r->top - 2].e.vr;
    if (vr == S2F_VR('S', 'Q')) {
        if (kind != K_OBJECT)
            return FAIL(r, S2F_EFORMAT, "expected a sequence item object, got %s",
                        kind_name(kind));
        const frame *holder = &r->frames[r->top - 3];
        int stream = r->ctx->content && holder->content &&
                     r->frames[r->top - 2].e.tag == S2F_TAG(0x0040, 0xA730);
        return push_dataset(r, v->ds, holder->depth + 1, 0, stream);
    }
    if (s2f_vr_is_string(vr)) {
        if (v->index > 0 && !sbuf_put(&v->vec, "\\", 1))
            return out_of_memory(r);
        return vr == S2F_VR('P', 'N') ? pn_entry(r, kind, s, n)
                                      : string_entry(r, vr, kind, s, n);
    }
    unsigned size = s2f_vr_fixed_size(vr);
    if (!sbuf_reserve(&v->vec, size))
        return out_of_memory(r);
    encode_number(r, vr, kind, s, n, v->vec.p + v->vec.n);
    if (r->failed)
        return 1;
    v->vec.n += size;
    return entry_done(r);
}

/* ---- elements ------------------------------------------------------------------------------ */

static int element_vr(reader *r, int kind, const char *s, size_t n)
{
    char text[9];
    if (kind != K_STRING)
        return FAIL(r, S2F_EFORMAT, "\"vr\" is %s, expected a string such as \"CS\"",
                    kind_name(kind));
    if (n != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' ||
        !s2f_vr_is_known(S2F_VR(s[0], s[1])))
        return FAIL(r, S2F_EFORMAT, "\"vr\" \"%s\" is not a DICOM VR",
                    printable(s, n, text, sizeof text));
    TOP(r)->e.vr = S2F_VR(s[0], s[1]);
    return 1;
}

/* "Value" with the VR known: entries are read through an F_VALUES frame. */
static int element_values(reader *r, int kind, const char *s, size_t n)
{
    uint16_t vr = TOP(r)->e.vr;
    char vrs[3], what[96];
    vr_name(vr, vrs);
    if (kind != K_ARRAY) {
        snprintf(what, sizeof what, "\"Value\" is %s, not an array: read as a one-element "
                 "array", kind_name(kind));
        if (!lenient(r, r->top, what))
            return 1;
    }
    if (vr_takes_binary(vr))
        return FAIL(r, S2F_EFORMAT, "VR %s takes \"InlineBinary\" or \"BulkDataURI\", not "
                    "\"Value\"", vrs);
    s2f_ds *parent = r->frames[r->top - 2].ds;
    frame *v = push(r, F_VALUES);
    if (!v)
        return out_of_memory(r);
    v->ds = parent;
    v->single = kind != K_ARRAY;
    return v->single ? values_entry(r, kind, s, n) : 1;
}

static int element_value(reader *r, int kind, const char *s, size_t n)
{
    frame *f = TOP(r);
    int member = f->member;
    if (!f->opened) {
        if (kind != K_OBJECT)
            return FAIL(r, S2F_EFORMAT, "expected an object with \"vr\", got %s",
                        kind_name(kind));
        f->opened = 1;
        return 1;
    }
    f->member = M_NONE;
    if (member == M_VR)
        return element_vr(r, kind, s, n);
    if (member == M_VALUE)
        return element_values(r, kind, s, n);
    f->data_kind = kind; /* InlineBinary, BulkDataURI: read when the element ends */
    if (kind == K_STRING)
        return sbuf_put(&f->vec, s, n) ? 1 : out_of_memory(r);
    return kind == K_OBJECT || kind == K_ARRAY ? skip_value(r, kind) : 1;
}

/* ---- looking ahead for "vr" in the raw text ------------------------------------------------ */

static size_t skip_blanks(const uint8_t *d, size_t len, size_t i)
{
    while (i < len && is_blank(d[i]))
        i++;
    return i;
}

/* d[i] is '"': the offset after the closing quote, 0 when there is none. */
static size_t skip_string(const uint8_t *d, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (d[i] == '"')
            return i + 1;
        if (d[i] == '\\')
            i++;
    }
    return 0;
}

/* The offset after the JSON value at d[i] (syntax checked only roughly: yajl checks it when
 * it gets there), 0 when it does not end. */
static size_t skip_raw_value(const uint8_t *d, size_t len, size_t i)
{
    size_t depth = 0;
    do {
        i = skip_blanks(d, len, i);
        if (i >= len)
            return 0;
        switch (d[i]) {
        case '"':
            if (!(i = skip_string(d, len, i)))
                return 0;
            break;
        case '{': case '[':
            depth++;
            i++;
            break;
        case '}': case ']':
            if (depth-- == 0)
                return 0;
            i++;
            break;
        case ',': case ':':
            if (depth == 0)
                return 0;
            i++;
            break;
        default: { /* a number or literal */
            size_t start = i;
            while (i < len && ((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'z') ||
                               d[i] == '-' || d[i] == '+' || d[i] == '.' || d[i] == 'E'))
                i++;
            if (i == start)
                return 0;
        }
        }
    } while (depth > 0);
    return i;
}

/*
 * "Value" came before "vr" (pydicom writes keys sorted): rather than record the value, the
 * raw text after it is scanned for the element's "vr" member. Works from yajl's offset just
 * past the key token (checked to be the plain text "Value"); 0 when anything is unusual (an
 * escaped key, no "vr", a VR that is not known, the scan budget spent): then the value is
 * recorded and replayed, which handles every case.
 */
static uint16_t vr_ahead(reader *r)
{
    const uint8_t *d = r->text;
    size_t len = r->text_len, at = r->chunk_base + yajl_get_bytes_consumed(r->h), i;
    if (r->replaying || at < 7 || at > len || memcmp(d + at - 7, "\"Value\"", 7) != 0)
        return 0;
    i = skip_blanks(d, len, at);
    if (i >= len || d[i] != ':' || !(i = skip_raw_value(d, len, i + 1)))
        return 0;
    for (;;) {
        i = skip_blanks(d, len, i);
        if (i - at > r->lookahead_left || i >= len || d[i] != ',')
            return 0;
        size_t key = skip_blanks(d, len, i + 1), end;
        if (key >= len || d[key] != '"' || !(end = skip_string(d, len, key)))
            return 0;
        i = skip_blanks(d, len, end);
        if (i >= len || d[i] != ':')
            return 0;
        i = skip_blanks(d, len, i + 1);
        if (end - key == 4 && memcmp(d + key, "\"vr\"", 4) == 0)
            break;
        if (!(i = skip_raw_value(d, len, i)))
            return 0;
    }
    r->lookahead_left -= i - at;
    if (i + 4 > len || d[i] != '"' || d[i + 3] != '"' || d[i + 1] < 'A' || d[i + 1] > 'Z' ||
        d[i + 2] < 'A' || d[i + 2] > 'Z' || !s2f_vr_is_known(S2F_VR(d[i + 1], d[i + 2])))
        return 0;
    return S2F_VR(d[i + 1], d[i + 2]);
}

static int element_key(reader *r, const char *s, size_t n)
{
    static const char *const names[4] = {"vr", "Value", "InlineBinary", "BulkDataURI"};
    static const int members[4] = {M_VR, M_VALUE, M_INLINE, M_BULK};
    frame *f = TOP(r);
    char text[41];
    int k = 0;
    while (k < 4 && !(strlen(names[k]) == n && memcmp(s, names[k], n) == 0))
        k++;
    if (k == 4) {
        warn_path(r, r->top, NULL, "unknown member \"%s\" ignored",
                  printable(s, n, text, sizeof text));
        divert_next(r, D_SKIP);
        return 1;
    }
    unsigned bit = 1u << k; /* SEEN_VR, SEEN_VALUE, SEEN_INLINE, SEEN_BULK */
    if (f->seen & bit) {
        warn_path(r, r->top, NULL, "member \"%s\" given twice; the first is kept", names[k]);
        divert_next(r, D_SKIP);
        return 1;
    }
    if (k > 0 && (f->seen & (SEEN_VALUE | SEEN_INLINE | SEEN_BULK)))
        return FAIL(r, S2F_EFORMAT,
                    "more than one of \"Value\", \"InlineBinary\", \"BulkDataURI\"");
    f->seen |= bit;
    f->member = members[k];
    if (f->member == M_VALUE && !(f->seen & SEEN_VR)) {
        f->e.vr = vr_ahead(r); /* "vr" still comes and is checked as usual */
        if (!f->e.vr) { /* recorded, replayed at the end */
            f->taped = 1;
            divert_next(r, D_RECORD);
        }
    }
    return 1;
}

/* Feeds the recorded "Value" of frames[fi] through the reader, now that the VR is known. */
static void replay(reader *r, size_t fi)
{
    const uint8_t *t = r->frames[fi].vec.p;
    size_t len = r->frames[fi].vec.n, pos = 0;
    r->frames[fi].member = M_VALUE;
    r->replaying++;
    while (pos < len && !r->failed) {
        int kind = t[pos++];
        size_t n = 0;
        const char *s = NULL;
        if (kind == K_KEY || kind == K_STRING || kind == K_NUMBER) {
            memcpy(&n, t + pos, sizeof n);
            s = (const char *)t + pos + sizeof n;
            pos += sizeof n + n;
        }
        if (kind == K_KEY)
            on_key(r, s, n);
        else if (kind == K_END)
            on_end(r);
        else
            on_value(r, kind, s, n);
    }
    r->replaying--;
}

static int inline_binary(reader *r, frame *f)
{
    if (f->data_kind != K_STRING)
        return fail_path(r, r->top, ".InlineBinary", S2F_EFORMAT,
                         "expected a base64 string, got %s", kind_name(f->data_kind));
    size_t n = f->vec.n;
    if (n == 0)
        return 1;
    uint8_t *buf = s2f_arena_alloc(r->arena, n / 4 * 3 + 3);
    if (!buf)
        return out_of_memory(r);
    long long got = base64_decode((const char *)f->vec.p, n, buf);
    if (got < 0)
        return fail_path(r, r->top, ".InlineBinary", S2F_EFORMAT,
                         "not valid base64 at character %lld", -got - 1);
    if ((unsigned long long)got > UINT32_MAX)
        return FAIL(r, S2F_ELIMIT, "value longer than 4 GiB");
    f->e.val = got ? buf : NULL;
    f->e.len = (uint32_t)got;
    return 1;
}

static int element_end(reader *r)
{
    size_t fi = r->top - 1;
    char vrs[3], text[121];
    if (!(TOP(r)->seen & SEEN_VR))
        return FAIL(r, S2F_EFORMAT, "\"vr\" missing");
    if (TOP(r)->taped) {
        TOP(r)->taped = 0;
        replay(r, fi);
        if (r->failed)
            return 1;
    }
    frame *f = &r->frames[fi];
    vr_name(f->e.vr, vrs);
    f->e.is_seq = f->e.vr == S2F_VR('S', 'Q');
    if ((f->seen & SEEN_INLINE) && !vr_takes_binary(f->e.vr))
        return FAIL(r, S2F_EFORMAT, "\"InlineBinary\" is not allowed for VR %s", vrs);
    if ((f->seen & SEEN_INLINE) && !inline_binary(r, f))
        return 1;
    if ((f->seen & SEEN_BULK) && (f->e.is_seq || f->data_kind != K_STRING))
        return FAIL(r, S2F_EFORMAT, "\"BulkDataURI\" must be a string on a non-SQ element");
    if (f->seen & SEEN_BULK)
        warn_path(r, r->top, NULL, "bulk data at \"%s\" not fetched; the element is read as "
                  "empty", printable((const char *)f->vec.p, f->vec.n, text, sizeof text));
    if (r->failed)
        return 1;
    s2f_elem e = f->e;
    r->top--;
    return sbuf_put(&TOP(r)->vec, &e, sizeof e) ? 1 : out_of_memory(r);
}

/* ---- event dispatch --------------------------------------------------------------------------- */

static int refuse_nul(reader *r, const char *s, size_t n)
{
    if (!memchr(s, 0, n))
        return 0;
    /* issue 9 defect 9: json-c truncated "abc\u0000def" to "abc" silently */
    FAIL(r, S2F_EFORMAT, "string holds U+0000 (\\u0000), which a DICOM value cannot hold");
    return 1;
}

static int on_value(reader *r, int kind, const char *s, size_t n)
{
    if (r->failed || (kind == K_STRING && refuse_nul(r, s, n)))
        return 1;
    if (r->divert)
        return divert_event(r, kind, s, n);
    if (kind == K_NUMBER) { /* NUL-terminated for strtod and messages */
        r->num.n = 0;
        if (!sbuf_put(&r->num, s, n) || !sbuf_put(&r->num, "", 1))
            return out_of_memory(r);
        s = (const char *)r->num.p;
    }
    if (r->top == 0)
        return root_value(r, kind);
    switch (TOP(r)->kind) {
    case F_TOP_ARRAY: return top_array_value(r, kind);
    case F_ELEMENT: return element_value(r, kind, s, n);
    case F_VALUES: return values_entry(r, kind, s, n);
    case F_PN: return pn_value(r, kind, s, n);
    default: return FAIL(r, S2F_EINTERNAL, "JSON reader: value without a key");
    }
}

static int on_key(reader *r, const char *s, size_t n)
{
    if (r->failed || refuse_nul(r, s, n))
        return 1;
    if (r->divert)
        return divert_event(r, K_KEY, s, n);
    switch (TOP(r)->kind) {
    case F_DATASET: return dataset_key(r, s, n);
    case F_ELEMENT: return element_key(r, s, n);
    case F_PN: return pn_key(r, s, n);
    default: return FAIL(r, S2F_EINTERNAL, "JSON reader: key outside an object");
    }
}

static int on_end(reader *r)
{
    if (r->failed)
        return 1;
    if (r->divert)
        return divert_event(r, K_END, NULL, 0);
    switch (TOP(r)->kind) {
    case F_TOP_ARRAY: return top_array_end(r);
    case F_DATASET: return dataset_end(r);
    case F_ELEMENT: return element_end(r);
    case F_VALUES: return values_end(r);
    default: return pn_end(r);
    }
}

/* ---- yajl callbacks: a non-zero return goes on; 0 stops the parse (depth, end of root) --- */

static int cb_null(void *c) { return on_value(c, K_NULL, NULL, 0), 1; }
static int cb_bool(void *c, int b) { return (void)b, on_value(c, K_BOOL, NULL, 0), 1; }
static int cb_number(void *c, const char *s, size_t n) { return on_value(c, K_NUMBER, s, n), 1; }

static int cb_string(void *c, const unsigned char *s, size_t n)
{
    return on_value(c, K_STRING, (const char *)s, n), 1;
}

static int cb_key(void *c, const unsigned char *s, size_t n)
{
    return on_key(c, (const char *)s, n), 1;
}

static int cb_start(reader *r, int kind)
{
    if (++r->json_depth > r->json_depth_max) {
        r->depth_exceeded = 1;
        return 0;
    }
    on_value(r, kind, NULL, 0);
    return 1;
}

static int cb_start_map(void *c) { return cb_start(c, K_OBJECT); }
static int cb_start_array(void *c) { return cb_start(c, K_ARRAY); }

static int cb_end(void *c)
{
    reader *r = c;
    on_end(r);
    if (--r->json_depth > 0)
        return 1;
    r->root_done = 1; /* stop: what follows the value is checked by finish_text */
    return 0;
}

static const yajl_callbacks callbacks = {cb_null,   cb_bool, NULL,         NULL,   cb_number,
                                         cb_string, cb_start_map, cb_key, cb_end,
                                         cb_start_array, cb_end};

/* ---- feeding the text ------------------------------------------------------------------------ */

static s2f_code syntax_error(reader *r, yajl_handle h, size_t at)
{
    unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
    char text[160];
    const char *m = msg ? (const char *)msg : "parse error";
    if (strncmp(m, "parse error: ", 13) == 0)
        m += 13;
    else if (strncmp(m, "lexical error: ", 15) == 0)
        m += 15;
    size_t n = strcspn(m, "\n");
    printable(m, n, text, sizeof text);
    if (msg)
        yajl_free_error(h, msg);
    if (strcmp(text, "premature EOF") == 0)
        return s2f_fail(r->err, S2F_EFORMAT, "invalid JSON: unexpected end of data at byte %zu",
                        at);
    return s2f_fail(r->err, S2F_EFORMAT, "invalid JSON: %s at byte %zu", text, at);
}

/* yajl stopped at `at` (input offset just past its last token): why, and what now. */
static s2f_code stopped(reader *r, const uint8_t *data, size_t len, size_t at)
{
    if (r->depth_exceeded)
        return s2f_fail(r->err, S2F_ELIMIT, "JSON nested deeper than %zu levels at byte %zu",
                        r->json_depth_max, at ? at - 1 : 0);
    while (at < len && is_blank(data[at]))
        at++;
    if (at < len)
        return s2f_fail(r->err, S2F_EFORMAT, "invalid JSON: data after the JSON value at byte "
                        "%zu", at);
    return r->failed ? r->rc : S2F_OK;
}

static s2f_code feed(reader *r, yajl_handle h, const uint8_t *data, size_t len, size_t start,
                     size_t chunk)
{
    for (size_t pos = start; pos < len;) {
        size_t n = len - pos < chunk ? len - pos : chunk;
        r->chunk_base = pos;
        yajl_status st = yajl_parse(h, data + pos, n);
        size_t at = pos + yajl_get_bytes_consumed(h);
        if (st == yajl_status_client_canceled)
            return stopped(r, data, len, at);
        if (st != yajl_status_ok)
            return syntax_error(r, h, at ? at - 1 : 0);
        pos += n;
    }
    yajl_status st = yajl_complete_parse(h);
    if (st == yajl_status_client_canceled)
        return stopped(r, data, len, len);
    if (st != yajl_status_ok)
        return syntax_error(r, h, len);
    if (r->failed)
        return r->rc;
    if (!r->root_done)
        return s2f_fail(r->err, S2F_EFORMAT, "invalid JSON: unexpected end of data at byte %zu",
                        len);
    return S2F_OK;
}

static void reader_free(reader *r)
{
    for (size_t i = 0; i < r->cap; i++)
        free(r->frames[i].vec.p);
    free(r->frames);
    for (int k = 0; k < 3; k++)
        free(r->pn[k].p);
    free(r->num.p);
}

s2f_code s2f_dicomjson_read_chunked(const uint8_t *data, size_t len, s2f_read_ctx *ctx,
                                    s2f_ds **out, s2f_error *err, size_t chunk)
{
    reader r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.err = err;
    r.arena = ctx->arena;
    r.json_depth_max = (size_t)json_depth_for(ctx->max_depth);
    *out = NULL;
    ctx->transfer_syntax = "DICOM-JSON";
    if (!data) {
        data = (const uint8_t *)"";
        len = 0;
    }
    yajl_handle h = yajl_alloc(&callbacks, NULL, &r);
    if (!h)
        return s2f_fail(err, S2F_ENOMEM, "out of memory while reading DICOM JSON");
    r.h = h;
    r.text = data;
    r.text_len = len;
    r.lookahead_left = len > SIZE_MAX / 16 ? SIZE_MAX : 16 * len + 4096;
    s2f_code rc = feed(&r, h, data, len, bom_length(data, len), chunk ? chunk : FEED_CHUNK);
    yajl_free(h);
    reader_free(&r);
    if (rc == S2F_OK)
        *out = r.result;
    return rc;
}

s2f_code s2f_dicomjson_read(const uint8_t *data, size_t len, s2f_read_ctx *ctx, s2f_ds **out,
                            s2f_error *err)
{
    return s2f_dicomjson_read_chunked(data, len, ctx, out, err, FEED_CHUNK);
}
