/*
 * part10.c - the binary DICOM reader (MAPPING rule M1): Part 10 files and bare data sets.
 *
 * Input layouts: 128-byte preamble + "DICM" + file meta group; "DICM" at offset 0; a file
 * meta group at offset 0; or a bare data set (Implicit VR LE as some archives store it,
 * or explicit LE/BE, told apart by the first element). Transfer syntaxes: Implicit VR LE,
 * Explicit VR LE, Deflated Explicit VR LE (raw deflate), Explicit VR Big Endian; any other
 * (encapsulated pixel data) is read as Explicit VR LE with a warning, since an SR has no
 * pixel data.
 *
 * Output: an s2f_ds tree (dataset.h). Values point into the input (or the inflated copy)
 * without copying; only big-endian binary values are copied, swapped to little endian.
 * Elements are collected on one scratch stack in the arena and each data set gets an
 * exact-size array when it ends, so memory stays a small multiple of the input size.
 * With a content sink (ctx->content) the items of the Content Sequences of the SR tree are
 * streamed instead: each is read into the sink's scratch arena, handed over when complete,
 * and released, so the data sets of a 100,000-item report never exist all at once.
 *
 * Safety: every length is checked against the bytes left in its enclosing scope before
 * anything is allocated or read; sequence nesting (and so recursion) is bounded by
 * ctx->max_depth; inflation is bounded by ctx->max_inflated; the arena bounds the rest.
 *
 * Decisions (M1):
 *   - an explicit-VR element whose VR bytes are not a DICOM VR is refused (S2F_EFORMAT,
 *     naming tag, offset and bytes): guessing its length form would misread the rest;
 *   - odd value lengths are refused; undefined length only for SQ, UN and (7FE0,0010);
 *   - UN values (explicit "UN", or implicit with a tag the dictionary does not know) that
 *     have undefined length or start with an item tag are read as a sequence in Implicit
 *     VR LE (PS3.5 6.2.2); a defined-length one that does not parse stays raw bytes;
 *   - an explicit UN element of a tag the dictionary knows gets the dictionary VR (raw
 *     bytes kept; swapped in a big-endian data set like any binary value);
 *   - offsets in messages are byte offsets in the file, or in the inflated data set for a
 *     deflated one (the message then says so).
 */
#include "dicom/dataset.h"
#include "dicom/dictionary.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define UNDEFINED_LEN 0xFFFFFFFFu
#define TAG_ITEM S2F_TAG(0xFFFE, 0xE000)
#define TAG_ITEM_END S2F_TAG(0xFFFE, 0xE00D)
#define TAG_SEQ_END S2F_TAG(0xFFFE, 0xE0DD)
#define TAG_PIXEL_DATA S2F_TAG(0x7FE0, 0x0010)
#define TAG_META_LENGTH S2F_TAG(0x0002, 0x0000)
#define TAG_TRANSFER_SYNTAX S2F_TAG(0x0002, 0x0010)
#define DEFAULT_DEPTH 128u
/* Recursion bound whatever the caller asks: a level is one frame of read_elements, 0.35
 * KiB of stack at -O3 (gcc and clang), so this stays far from an 8 MiB stack. Under gcc's
 * AddressSanitizer a frame is 4.1 KiB, which the default depth (128) keeps near 1 MiB. */
#define DEPTH_CAP 2560u
#define PREAMBLE 128u

#define TS_IMPLICIT_LE "1.2.840.10008.1.2"
#define TS_EXPLICIT_LE "1.2.840.10008.1.2.1"
#define TS_DEFLATED_LE "1.2.840.10008.1.2.1.99"
#define TS_JPIP_DEFLATE "1.2.840.10008.1.2.4.95"
#define TS_EXPLICIT_BE "1.2.840.10008.1.2.2"

/* How the elements of a data set are encoded. */
typedef struct enc {
    int explicit_vr;
    int big_endian;
} enc;

static const enc IMPLICIT_LE = {0, 0};
static const enc EXPLICIT_LE = {1, 0};
static const enc EXPLICIT_BE = {1, 1};

typedef struct reader {
    const uint8_t *data; /* the bytes being parsed: the input or the inflated data set */
    size_t len;
    s2f_read_ctx *ctx;
    s2f_error *err;
    unsigned max_depth;
    int inflated;        /* offsets are in the inflated data set */
    size_t content_end;  /* offset after the last non-zero byte: zeros beyond are padding */
    s2f_elem *elems;     /* scratch stack of elements of the open data sets */
    size_t n_elems, cap_elems;
    s2f_ds **items;      /* scratch stack of items of the open sequences */
    size_t n_items, cap_items;
    unsigned in_content; /* open content items being streamed (ctx->content) */
    s2f_arena *ds_arena; /* where data sets go: the sink's scratch inside one, else ctx->arena */
} reader;

/* One element header as read from the data. */
typedef struct hdr {
    uint32_t tag;
    uint16_t vr;   /* 0 for item and delimiter tags */
    uint32_t len;
    size_t pos;    /* offset of the tag */
    size_t val;    /* offset of the value */
} hdr;

/* Where a run of elements is read: the data set being filled and its bounds. */
typedef enum body_kind { BODY_TOP, BODY_DEFINED, BODY_UNDEFINED } body_kind;
typedef struct scope {
    body_kind kind;
    size_t end;       /* no byte at or after this offset belongs to the scope */
    unsigned depth;   /* sequence nesting level of the data set (0 = top level) */
    s2f_ds *ds;
    size_t seq_off;   /* for items: where the enclosing sequence starts */
    int content;      /* ds is the top-level data set or a content item of its tree */
} scope;

#define TAG_CONTENT_SEQUENCE S2F_TAG(0x0040, 0xA730)
#define TAG_CHARSET S2F_TAG(0x0008, 0x0005)

/* ---- small helpers ------------------------------------------------------------------- */

static uint16_t rd16(const uint8_t *p, int be)
{
    return be ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static uint32_t rd32(const uint8_t *p, int be)
{
    if (be)
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint32_t rd_tag(const uint8_t *p, int be)
{
    return S2F_TAG(rd16(p, be), rd16(p + 2, be));
}

/* 1 when the two bytes are a VR code DICOM defines. */
static int vr_bytes_known(const uint8_t *p) { return s2f_vr_is_known(S2F_VR(p[0], p[1])); }

static size_t end_of_nonzero(const uint8_t *p, size_t n)
{
    while (n && p[n - 1] == 0)
        n--;
    return n;
}

/* Where data sets go: the scratch arena inside a streamed content item, else the arena
 * (kept in the reader: asked for by every data set and sequence). */
static s2f_arena *ds_arena(const reader *r) { return r->ds_arena; }

static s2f_code fail_memory(reader *r)
{
    if (s2f_arena_over_limit(r->ctx->arena) || s2f_arena_over_limit(ds_arena(r)))
        return s2f_fail(r->err, S2F_ELIMIT, "memory limit exceeded (%zu bytes in use)",
                        s2f_arena_used(r->ctx->arena) + s2f_arena_used(ds_arena(r)));
    return s2f_fail(r->err, S2F_ENOMEM, "out of memory");
}

/* A case M1 tolerates: a warning, or S2F_EFORMAT in strict mode. */
/* noinline keeps its message buffer out of the recursive functions' frames. */
static s2f_code lenient(reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noinline));
static s2f_code lenient(reader *r, const char *fmt, ...)
{
    char msg[S2F_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->ctx->strict)
        return s2f_fail(r->err, S2F_EFORMAT, "%s (refused in strict mode)", msg);
    s2f_warn(r->ctx->warnings, "%s", msg);
    return S2F_OK;
}

/* Bytes left before `end`, worded for "... runs past the end of X (N bytes left)". */
static const char *end_name(const reader *r, size_t end)
{
    return end == r->len ? "the data" : "its enclosing item or sequence";
}

/* ---- scratch stacks ------------------------------------------------------------------ */

static s2f_code grow_elems(reader *r) __attribute__((noinline));
static s2f_code grow_elems(reader *r)
{
    size_t cap = r->cap_elems ? r->cap_elems * 2 : 256;
    s2f_elem *p = s2f_arena_realloc(r->ctx->arena, r->elems, r->cap_elems * sizeof *p,
                                    cap * sizeof *p);
    if (!p)
        return fail_memory(r);
    r->elems = p;
    r->cap_elems = cap;
    return S2F_OK;
}

/* Runs once per element: inline, with the growing out of line. */
static inline s2f_code push_elem(reader *r, const s2f_elem *e)
{
    if (r->n_elems == r->cap_elems) {
        s2f_code rc = grow_elems(r);
        if (rc)
            return rc;
    }
    r->elems[r->n_elems++] = *e;
    return S2F_OK;
}

static s2f_code push_item(reader *r, s2f_ds *ds)
{
    if (r->n_items == r->cap_items) {
        size_t cap = r->cap_items ? r->cap_items * 2 : 64;
        s2f_ds **p = s2f_arena_realloc(r->ctx->arena, r->items, r->cap_items * sizeof *p,
                                       cap * sizeof *p);
        if (!p)
            return fail_memory(r);
        r->items = p;
        r->cap_items = cap;
    }
    r->items[r->n_items++] = ds;
    return S2F_OK;
}

static s2f_ds *new_ds(reader *r, const s2f_ds *parent, size_t offset)
{
    s2f_ds *ds = s2f_arena_alloc(ds_arena(r), sizeof *ds);
    if (ds)
        *ds = (s2f_ds){.parent = parent, .offset = offset};
    return ds;
}

/* ---- closing a data set: order, duplicates, exact-size array ------------------------- */

static int in_order(const s2f_elem *e, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (e[i].tag < e[i - 1].tag)
            return 0;
    return 1;
}

/* In order and without duplicates: what nearly every data set is (one pass, no checks). */
static int strictly_ascending(const s2f_elem *e, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (e[i].tag <= e[i - 1].tag)
            return 0;
    return 1;
}

/* Stable bottom-up merge sort by tag. */
static s2f_code sort_elems(reader *r, s2f_elem *e, size_t n)
{
    s2f_elem *tmp = s2f_arena_alloc(ds_arena(r), n * sizeof *tmp);
    if (!tmp)
        return fail_memory(r);
    s2f_elem *src = e, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = src[j].tag < src[i].tag ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        s2f_elem *t = src;
        src = dst;
        dst = t;
    }
    if (src != e)
        memcpy(e, src, n * sizeof *e);
    return S2F_OK;
}

/* Keeps the first of equal tags; returns the new count or (size_t)-1 on a strict error. */
static size_t drop_duplicates(reader *r, s2f_elem *e, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && e[i].tag == e[k - 1].tag) {
            if (lenient(r, "duplicate element (%04X,%04X) at offset %zu ignored",
                        S2F_TAG_GROUP(e[i].tag), S2F_TAG_ELEM(e[i].tag), e[i].offset))
                return (size_t)-1;
            continue;
        }
        if (k != i)
            e[k] = e[i];
        k++;
    }
    return k;
}

/* Copies n elements. Fewer than 8 (a content item, a code) are copied inline in blocks of
 * constant size: a call to memcpy costs more than such a copy. */
static void copy_elems(s2f_elem *dst, const s2f_elem *src, size_t n)
{
    if (n >= 8) {
        memcpy(dst, src, n * sizeof *dst);
        return;
    }
    if (n & 4) {
        memcpy(dst, src, 4 * sizeof *dst);
        dst += 4;
        src += 4;
    }
    if (n & 2) {
        memcpy(dst, src, 2 * sizeof *dst);
        dst += 2;
        src += 2;
    }
    if (n & 1)
        *dst = *src;
}

/* Moves the elements pushed since `base` into ds, sorted and without duplicates. The
 * first n_meta of them are the file meta group, which may legitimately overlap group
 * 0002 elements of the data set itself (kept, M1), so each part is checked on its own. */
static s2f_code finish_ds(reader *r, s2f_ds *ds, size_t base, size_t n_meta)
{
    size_t n = r->n_elems - base;
    r->n_elems = base;
    if (n == 0) /* an empty item: r->elems may still be NULL */
        return S2F_OK;
    s2f_elem *e = r->elems + base;
    if (n > UINT32_MAX)
        return s2f_fail(r->err, S2F_ELIMIT, "more than %u elements in one data set",
                        (unsigned)UINT32_MAX);
    if (!strictly_ascending(e, n)) {
        if (!in_order(e, n_meta) || !in_order(e + n_meta, n - n_meta)) {
            if (lenient(r, "elements of the data set at offset %zu are not in ascending tag "
                           "order; sorted", ds->offset))
                return r->err->code;
        }
        if (!in_order(e, n)) {
            s2f_code rc = sort_elems(r, e, n);
            if (rc)
                return rc;
        }
        n = drop_duplicates(r, e, n);
        if (n == (size_t)-1)
            return r->err->code;
    }
    if (n) {
        ds->elems = s2f_arena_alloc(ds_arena(r), n * sizeof *e);
        if (!ds->elems)
            return fail_memory(r);
        copy_elems(ds->elems, e, n);
    }
    ds->n = (uint32_t)n;
    return S2F_OK;
}

/* ---- element headers ------------------------------------------------------------------ */

static s2f_code short_header(reader *r, size_t pos, size_t end) __attribute__((noinline, cold));
static s2f_code short_header(reader *r, size_t pos, size_t end)
{
    return s2f_fail(r->err, S2F_EFORMAT,
                    "data ends inside the header of an element at offset %zu (%zu bytes left)",
                    pos, end - pos);
}

static s2f_code unknown_vr(reader *r, const hdr *h, const uint8_t *p) __attribute__((noinline, cold));
static s2f_code unknown_vr(reader *r, const hdr *h, const uint8_t *p)
{
    return s2f_fail(r->err, S2F_EFORMAT,
                    "element (%04X,%04X) at offset %zu has an unknown VR (bytes 0x%02X 0x%02X)",
                    S2F_TAG_GROUP(h->tag), S2F_TAG_ELEM(h->tag), h->pos, p[4], p[5]);
}

/* Reads the header at pos; the caller has checked that 8 bytes are there. Inlined into
 * the loops (it runs once per element); the errors are out of line. */
static inline __attribute__((always_inline)) s2f_code read_header(reader *r, enc e, size_t pos,
                                                                   size_t end, hdr *h)
{
    const uint8_t *p = r->data + pos;
    h->pos = pos;
    h->tag = rd_tag(p, e.big_endian);
    h->vr = 0;
    h->len = rd32(p + 4, e.big_endian);
    h->val = pos + 8;
    if (S2F_TAG_GROUP(h->tag) == 0xFFFE) /* items and delimiters have no VR */
        return S2F_OK;
    if (!e.explicit_vr) {
        h->vr = s2f_dict_vr(h->tag);
        if (!h->vr)
            h->vr = S2F_VR('U', 'N');
        return S2F_OK;
    }
    if (!vr_bytes_known(p + 4))
        return unknown_vr(r, h, p);
    h->vr = S2F_VR(p[4], p[5]);
    if (!s2f_vr_has_long_length(h->vr)) {
        h->len = rd16(p + 6, e.big_endian);
        return S2F_OK;
    }
    if (end - pos < 12)
        return short_header(r, pos, end);
    h->len = rd32(p + 8, e.big_endian);
    h->val = pos + 12;
    return S2F_OK;
}

/* ---- values ------------------------------------------------------------------------- */

/* A little-endian copy of a big-endian binary value (AT swaps each 16-bit half). */
static s2f_code swap_value(reader *r, s2f_elem *el)
{
    unsigned unit = el->vr == S2F_VR('A', 'T') ? 2 : s2f_vr_fixed_size(el->vr);
    uint8_t *v = s2f_arena_alloc(ds_arena(r), el->len);
    if (!v)
        return fail_memory(r);
    memcpy(v, el->val, el->len);
    for (size_t i = 0; i + unit <= el->len; i += unit)
        for (unsigned a = 0, b = unit - 1; a < b; a++, b--) {
            uint8_t t = v[i + a];
            v[i + a] = v[i + b];
            v[i + b] = t;
        }
    el->val = v;
    return S2F_OK;
}

static s2f_code set_plain_value(reader *r, enc e, const hdr *h, s2f_elem *el)
{
    el->len = h->len;
    el->val = h->len ? r->data + h->val : NULL;
    if (el->vr == S2F_VR('U', 'N')) { /* M1: private tags written as UN */
        uint16_t dict = s2f_dict_vr(h->tag);
        if (dict && dict != S2F_VR('S', 'Q'))
            el->vr = dict;
    }
    if (e.big_endian && h->len && s2f_vr_fixed_size(el->vr))
        return swap_value(r, el);
    return S2F_OK;
}

static int starts_with_item(const reader *r, const hdr *h)
{
    return h->len >= 8 && rd_tag(r->data + h->val, 0) == TAG_ITEM;
}

/* ---- sequences ------------------------------------------------------------------------ */

static s2f_code read_elements(reader *r, enc e, size_t *pos, const scope *sc);

static s2f_code sequence_unclosed(reader *r, size_t seq_off, size_t end)
{
    if (end == r->len)
        return s2f_fail(r->err, S2F_EFORMAT, "data ends inside a sequence started at offset %zu",
                        seq_off);
    return s2f_fail(r->err, S2F_EFORMAT,
                    "sequence started at offset %zu is not closed before the end of its "
                    "enclosing item at offset %zu", seq_off, end);
}

/* Reads one item whose header h was read at *pos; pushes the item data set. Inlined
 * into the loop over a sequence's items (one call less per level of nesting). */
static inline __attribute__((always_inline)) s2f_code read_item(reader *r, enc e, const hdr *h, size_t seq_end, const scope *outer,
                          int content, size_t *pos)
{
    scope sc = {BODY_UNDEFINED, seq_end, outer->depth + 1, NULL, outer->seq_off, content};
    if (h->len != UNDEFINED_LEN) {
        if (h->len > seq_end - h->val)
            return s2f_fail(r->err, S2F_EFORMAT,
                            "item length %u at offset %zu exceeds its enclosing sequence "
                            "(%zu bytes left)", (unsigned)h->len, h->pos, seq_end - h->val);
        sc.kind = BODY_DEFINED;
        sc.end = h->val + h->len;
    }
    sc.ds = new_ds(r, outer->ds, h->pos);
    if (!sc.ds)
        return fail_memory(r);
    size_t base = r->n_elems;
    *pos = h->val;
    s2f_code rc = read_elements(r, e, pos, &sc);
    if (!rc)
        rc = finish_ds(r, sc.ds, base, 0);
    return rc ? rc : push_item(r, sc.ds);
}

/* A content item, streamed: read in the scratch arena, handed to the sink, released. */
static s2f_code read_content_item(reader *r, enc e, const hdr *h, size_t seq_end,
                                  const scope *outer, size_t *pos)
{
    const s2f_content_sink *sink = r->ctx->content;
    s2f_arena_mark mark = s2f_arena_get_mark(sink->scratch);
    s2f_code rc = sink->begin(sink->user);
    if (rc)
        return rc;
    r->in_content++;
    r->ds_arena = sink->scratch;
    rc = read_item(r, e, h, seq_end, outer, 1, pos);
    if (--r->in_content == 0)
        r->ds_arena = r->ctx->arena;
    if (!rc)
        rc = sink->end(sink->user, r->items[--r->n_items]);
    s2f_arena_release(sink->scratch, mark);
    return rc;
}

/* Items of the sequence el whose value starts at *pos; defined length when len != UNDEF.
 * Inlined into read_items once per encoding. */
static inline __attribute__((always_inline)) s2f_code read_items_as(reader *r, enc e,
                                                                     size_t *pos, size_t end,
                                                                     uint32_t len,
                                                                     const scope *outer,
                                                                     s2f_elem *el)
{
    int undefined = len == UNDEFINED_LEN;
    size_t seq_end = undefined ? end : *pos + len;
    scope sc = *outer;
    sc.seq_off = el->offset;
    int stream = r->ctx->content && outer->content && el->tag == TAG_CONTENT_SEQUENCE;
    for (;;) {
        if (!undefined && *pos == seq_end)
            return S2F_OK;
        if (seq_end - *pos < 8) {
            if (undefined)
                return sequence_unclosed(r, el->offset, end);
            return s2f_fail(r->err, S2F_EFORMAT, "item header at offset %zu runs past the end of "
                            "the sequence started at offset %zu", *pos, el->offset);
        }
        hdr h;
        s2f_code rc = read_header(r, e, *pos, seq_end, &h);
        if (rc)
            return rc;
        if (h.tag == TAG_SEQ_END && undefined) {
            *pos = h.val;
            return S2F_OK;
        }
        if (h.tag != TAG_ITEM)
            return s2f_fail(r->err, S2F_EFORMAT,
                            "expected an item (FFFE,E000) in the sequence started at offset %zu, "
                            "found (%04X,%04X) at offset %zu", el->offset,
                            S2F_TAG_GROUP(h.tag), S2F_TAG_ELEM(h.tag), h.pos);
        rc = stream ? read_content_item(r, e, &h, seq_end, &sc, pos)
                    : read_item(r, e, &h, seq_end, &sc, 0, pos);
        if (rc)
            return rc;
    }
}

/* Dispatches on the encoding; inlined, so that inside read_elements_as it is resolved. */
static inline __attribute__((always_inline)) s2f_code read_items(reader *r, enc e, size_t *pos,
                                                                  size_t end, uint32_t len,
                                                                  const scope *outer, s2f_elem *el)
{
    if (!e.explicit_vr)
        return read_items_as(r, IMPLICIT_LE, pos, end, len, outer, el);
    return e.big_endian ? read_items_as(r, EXPLICIT_BE, pos, end, len, outer, el)
                        : read_items_as(r, EXPLICIT_LE, pos, end, len, outer, el);
}

/* Reads the value of el (at h->val) as a sequence; fills items, sets *next. Inlined into
 * its callers, as are read_items and read_undefined_value: a level of nesting is then one
 * call of read_elements. */
static inline __attribute__((always_inline)) s2f_code read_sequence(reader *r, enc e, const hdr *h, const scope *sc, s2f_elem *el,
                              size_t *next)
{
    if (sc->depth + 1 > r->max_depth)
        return s2f_fail(r->err, S2F_ELIMIT, "sequences nested deeper than %u levels at offset %zu",
                        r->max_depth, h->pos);
    size_t base = r->n_items, pos = h->val;
    s2f_code rc = read_items(r, e, &pos, sc->end, h->len, sc, el);
    if (rc)
        return rc;
    size_t n = r->n_items - base;
    r->n_items = base;
    el->is_seq = 1;
    el->len = 0;
    el->val = NULL;
    el->n_items = (uint32_t)n;
    if (n) {
        el->items = s2f_arena_alloc(ds_arena(r), n * sizeof *el->items);
        if (!el->items)
            return fail_memory(r);
        if (n == 1) /* most sequences: no call to memcpy */
            el->items[0] = r->items[base];
        else
            memcpy(el->items, r->items + base, n * sizeof *el->items);
    }
    *next = pos;
    return S2F_OK;
}

/* M1, PS3.5 6.2.2: a defined-length UN value that starts with an item tag is tried as an
 * Implicit VR LE sequence; when that fails on malformed data it stays raw bytes.
 * noinline: the trial error buffer must not weigh on every level of the recursion. */
static s2f_code try_un_sequence(reader *r, enc e, const hdr *h, const scope *sc, s2f_elem *el)
    __attribute__((noinline));
static s2f_code try_un_sequence(reader *r, enc e, const hdr *h, const scope *sc, s2f_elem *el)
{
    s2f_error trial = {S2F_OK, ""};
    s2f_error *saved_err = r->err;
    size_t n_elems = r->n_elems, n_items = r->n_items, n_warn = 0, n_drop = 0;
    if (r->ctx->warnings) {
        n_warn = r->ctx->warnings->n;
        n_drop = r->ctx->warnings->dropped;
    }
    size_t next;
    r->err = &trial;
    s2f_code rc = read_sequence(r, IMPLICIT_LE, h, sc, el, &next);
    r->err = saved_err;
    if (rc == S2F_OK) {
        if (s2f_dict_vr(h->tag) == S2F_VR('S', 'Q'))
            el->vr = S2F_VR('S', 'Q');
        return S2F_OK;
    }
    if (rc != S2F_EFORMAT)
        return s2f_fail(r->err, rc, "%s", trial.message);
    r->n_elems = n_elems;
    r->n_items = n_items;
    if (r->ctx->warnings) {
        r->ctx->warnings->n = n_warn;
        r->ctx->warnings->dropped = n_drop;
    }
    *el = (s2f_elem){.tag = h->tag, .vr = el->vr, .offset = h->pos};
    s2f_warn(r->ctx->warnings, "value of (%04X,%04X) at offset %zu looks like a sequence but "
             "does not parse as one (%s): kept as bytes", S2F_TAG_GROUP(h->tag),
             S2F_TAG_ELEM(h->tag), h->pos, trial.message);
    return set_plain_value(r, e, h, el);
}

/* Encapsulated pixel data: fragments up to the sequence delimiter are skipped. */
static s2f_code skip_fragments(reader *r, enc e, const hdr *h, size_t end, size_t *next)
{
    size_t pos = h->val;
    for (;;) {
        if (end - pos < 8)
            return sequence_unclosed(r, h->pos, end);
        uint32_t tag = rd_tag(r->data + pos, e.big_endian);
        uint32_t len = rd32(r->data + pos + 4, e.big_endian);
        pos += 8;
        if (tag == TAG_SEQ_END)
            break;
        if (tag != TAG_ITEM || len > end - pos)
            return s2f_fail(r->err, S2F_EFORMAT, "bad pixel data fragment at offset %zu",
                            pos - 8);
        pos += len;
    }
    *next = pos;
    s2f_warn(r->ctx->warnings, "encapsulated pixel data at offset %zu skipped", h->pos);
    return S2F_OK;
}

/* ---- elements ------------------------------------------------------------------------- */

static inline __attribute__((always_inline)) s2f_code read_undefined_value(reader *r, enc e,
                                                                            const hdr *h,
                                                                            const scope *sc,
                                                                            s2f_elem *el,
                                                                            size_t *next)
{
    if (el->vr == S2F_VR('S', 'Q'))
        return read_sequence(r, e, h, sc, el, next);
    if (el->vr == S2F_VR('U', 'N')) { /* M1, PS3.5 6.2.2 */
        s2f_code rc = read_sequence(r, IMPLICIT_LE, h, sc, el, next);
        if (!rc && s2f_dict_vr(h->tag) == S2F_VR('S', 'Q'))
            el->vr = S2F_VR('S', 'Q');
        return rc;
    }
    if (h->tag == TAG_PIXEL_DATA) {
        el->vr = S2F_VR('O', 'B');
        return skip_fragments(r, e, h, sc->end, next);
    }
    return s2f_fail(r->err, S2F_EFORMAT, "element (%04X,%04X) with VR %c%c at offset %zu has "
                    "undefined length", S2F_TAG_GROUP(h->tag), S2F_TAG_ELEM(h->tag),
                    (char)(el->vr >> 8), (char)(el->vr & 0xFF), h->pos);
}

static s2f_code bad_length(reader *r, const hdr *h, size_t end) __attribute__((noinline, cold));
static s2f_code bad_length(reader *r, const hdr *h, size_t end)
{
    if (h->len > end - h->val)
        return s2f_fail(r->err, S2F_EFORMAT,
                        "element (%04X,%04X) length %u at offset %zu runs past the end of %s "
                        "(%zu bytes left)", S2F_TAG_GROUP(h->tag), S2F_TAG_ELEM(h->tag),
                        (unsigned)h->len, h->pos, end_name(r, end), end - h->val);
    return s2f_fail(r->err, S2F_EFORMAT, "odd length %u of element (%04X,%04X) at offset %zu",
                    (unsigned)h->len, S2F_TAG_GROUP(h->tag), S2F_TAG_ELEM(h->tag), h->pos);
}

static s2f_code check_length(reader *r, const hdr *h, size_t end)
{
    if (h->len > end - h->val || (h->len & 1))
        return bad_length(r, h, end);
    return S2F_OK;
}

static void note_top_charset(reader *r, const scope *sc, const s2f_elem *el)
{
    if (sc->kind == BODY_TOP && el->tag == TAG_CHARSET) {
        r->ctx->top_charset = *el;
        r->ctx->has_top_charset = 1;
    }
}

/* An element with a defined length that is no sequence (nearly all of them): made in
 * place on the scratch stack, with no copy to push. */
static inline __attribute__((always_inline)) s2f_code read_plain_element(reader *r, enc e,
                                                                          const hdr *h,
                                                                          const scope *sc,
                                                                          size_t *next)
{
    s2f_code rc = check_length(r, h, sc->end);
    if (rc)
        return rc;
    *next = h->val + h->len;
    if (r->n_elems == r->cap_elems && (rc = grow_elems(r)) != S2F_OK)
        return rc;
    s2f_elem *el = &r->elems[r->n_elems];
    *el = (s2f_elem){.tag = h->tag, .vr = h->vr, .offset = h->pos};
    rc = set_plain_value(r, e, h, el);
    if (rc)
        return rc;
    r->n_elems++;
    note_top_charset(r, sc, el);
    return S2F_OK;
}

/* Issue 9 defect 9: a standard sequence (Content Sequence (0040,A730) and the like) written
 * with VR OB is read as if it were UN (PS3.5 6.2.2: Implicit VR LE items), with a warning,
 * instead of vanishing as opaque bytes. 1 and *out = h as UN when h is one. */
static int ob_as_un(reader *r, const hdr *h, hdr *out) __attribute__((noinline, cold));
static int ob_as_un(reader *r, const hdr *h, hdr *out)
{
    if (h->tag == TAG_PIXEL_DATA || s2f_dict_vr(h->tag) != S2F_VR('S', 'Q'))
        return 0;
    s2f_warn(r->ctx->warnings, "sequence (%04X,%04X) at offset %zu has VR OB: read as UN (an "
             "Implicit VR Little Endian sequence)", S2F_TAG_GROUP(h->tag), S2F_TAG_ELEM(h->tag),
             h->pos);
    *out = *h;
    out->vr = S2F_VR('U', 'N');
    return 1;
}

/* Reads the element whose header is h and pushes it; *next = offset after it. Inlined
 * into the loop over a data set's elements. */
static inline __attribute__((always_inline)) s2f_code read_element(reader *r, enc e,
                                                                    const hdr *h, const scope *sc,
                                                                    size_t *next)
{
    s2f_code rc;
    if (h->len != UNDEFINED_LEN && h->vr != S2F_VR('S', 'Q') && h->vr != S2F_VR('U', 'N') &&
        h->vr != S2F_VR('O', 'B'))
        return read_plain_element(r, e, h, sc, next);
    hdr as_un;
    if (h->vr == S2F_VR('O', 'B') && ob_as_un(r, h, &as_un))
        h = &as_un;
    else if (h->vr == S2F_VR('O', 'B') && h->len != UNDEFINED_LEN)
        return read_plain_element(r, e, h, sc, next);
    s2f_elem el = {.tag = h->tag, .vr = h->vr, .offset = h->pos};
    if (h->len == UNDEFINED_LEN) {
        rc = read_undefined_value(r, e, h, sc, &el, next);
    } else {
        rc = check_length(r, h, sc->end);
        if (rc)
            return rc;
        *next = h->val + h->len;
        if (el.vr == S2F_VR('S', 'Q')) {
            size_t after;
            rc = read_sequence(r, e, h, sc, &el, &after);
        } else if (el.vr == S2F_VR('U', 'N') && starts_with_item(r, h) &&
                   s2f_dict_vr(h->tag) == S2F_VR('S', 'Q')) {
            size_t after; /* a standard sequence written as UN: no fallback to bytes */
            rc = read_sequence(r, IMPLICIT_LE, h, sc, &el, &after);
            el.vr = S2F_VR('S', 'Q');
        } else if (el.vr == S2F_VR('U', 'N') && starts_with_item(r, h)) {
            rc = try_un_sequence(r, e, h, sc, &el);
        } else {
            rc = set_plain_value(r, e, h, &el);
        }
    }
    if (rc)
        return rc;
    note_top_charset(r, sc, &el);
    return push_elem(r, &el);
}

/* An item or delimiter tag met among the elements of a data set. *closed = 1 when it
 * ends an undefined-length item. */
static s2f_code delimiter_in_body(reader *r, const hdr *h, const scope *sc, int *closed)
{
    if (h->tag == TAG_ITEM_END && sc->kind == BODY_UNDEFINED) {
        if (h->len != 0)
            s2f_warn(r->ctx->warnings, "item delimiter at offset %zu has length %u, not 0",
                     h->pos, (unsigned)h->len);
        *closed = 1;
        return S2F_OK;
    }
    if ((h->tag == TAG_ITEM_END || h->tag == TAG_SEQ_END) && sc->kind == BODY_TOP && h->len == 0)
        return lenient(r, "stray %s delimiter at offset %zu ignored",
                       h->tag == TAG_ITEM_END ? "item" : "sequence", h->pos);
    return s2f_fail(r->err, S2F_EFORMAT, "unexpected (%04X,%04X) at offset %zu outside a sequence",
                    S2F_TAG_GROUP(h->tag), S2F_TAG_ELEM(h->tag), h->pos);
}

static s2f_code item_unclosed(reader *r, const scope *sc)
{
    if (sc->end == r->len)
        return s2f_fail(r->err, S2F_EFORMAT, "data ends inside a sequence started at offset %zu "
                        "(item at offset %zu has no delimiter)", sc->seq_off, sc->ds->offset);
    return s2f_fail(r->err, S2F_EFORMAT, "item at offset %zu has no delimiter before the end of "
                    "its enclosing sequence or item at offset %zu", sc->ds->offset, sc->end);
}

/* Trailing zeros after the top-level data set: 1 when the rest is padding. */
static int trailing_padding(reader *r, size_t pos, size_t end)
{
    if (pos < r->content_end)
        return 0;
    s2f_warn(r->ctx->warnings, "%zu bytes of zero padding after the data set at offset %zu "
             "ignored", end - pos, pos);
    return 1;
}

/* Reads elements into sc->ds's scratch run until the scope ends. Inlined into
 * read_elements once per encoding. */
static inline __attribute__((always_inline)) s2f_code read_elements_as(reader *r, enc e,
                                                                        size_t *pos,
                                                                        const scope *sc)
{
    while (*pos < sc->end) {
        if (sc->kind == BODY_TOP && trailing_padding(r, *pos, sc->end)) {
            *pos = sc->end;
            break;
        }
        if (sc->end - *pos < 8)
            return sc->kind == BODY_UNDEFINED ? item_unclosed(r, sc)
                                              : short_header(r, *pos, sc->end);
        hdr h;
        s2f_code rc = read_header(r, e, *pos, sc->end, &h);
        if (rc)
            return rc;
        if (S2F_TAG_GROUP(h.tag) == 0xFFFE) {
            int closed = 0;
            rc = delimiter_in_body(r, &h, sc, &closed);
            if (rc)
                return rc;
            *pos = h.val;
            if (closed)
                return S2F_OK;
            continue;
        }
        rc = read_element(r, e, &h, sc, pos);
        if (rc)
            return rc;
    }
    return sc->kind == BODY_UNDEFINED ? item_unclosed(r, sc) : S2F_OK;
}

/* The loop above compiled once for each encoding, so that the byte order and the VR form
 * are constants on the path every element takes. */
static s2f_code read_elements(reader *r, enc e, size_t *pos, const scope *sc)
{
    if (!e.explicit_vr)
        return read_elements_as(r, IMPLICIT_LE, pos, sc);
    return e.big_endian ? read_elements_as(r, EXPLICIT_BE, pos, sc)
                        : read_elements_as(r, EXPLICIT_LE, pos, sc);
}

/* ---- detecting the encoding ------------------------------------------------------------ */

/* 1 when p[0..n) starts with a data element that makes sense in encoding e. */
static int plausible_first(const uint8_t *p, size_t n, enc e)
{
    if (n < 8)
        return 0;
    uint16_t group = rd16(p, e.big_endian);
    if (group == 0 || (group & 1) || group == 0xFFFE)
        return 0;
    uint32_t len = rd32(p + 4, e.big_endian);
    size_t head = 8;
    uint16_t vr = S2F_VR('U', 'N');
    if (e.explicit_vr) {
        if (!vr_bytes_known(p + 4))
            return 0;
        vr = S2F_VR(p[4], p[5]);
        if (!s2f_vr_has_long_length(vr))
            len = rd16(p + 6, e.big_endian);
        else if (n < 12)
            return 0;
        else {
            len = rd32(p + 8, e.big_endian);
            head = 12;
        }
    }
    if (len == UNDEFINED_LEN)
        return vr == S2F_VR('S', 'Q') || vr == S2F_VR('U', 'N');
    return len <= n - head;
}

/* M1: a bare data set's encoding from its first element; 0 when it is not DICOM. */
static int sniff_encoding(const uint8_t *p, size_t n, enc *out)
{
    if (n >= 8 && vr_bytes_known(p + 4)) {
        enc e = p[0] == 0 && p[1] != 0 ? EXPLICIT_BE : EXPLICIT_LE;
        if (plausible_first(p, n, e)) {
            *out = e;
            return 1;
        }
    }
    if (plausible_first(p, n, IMPLICIT_LE)) {
        *out = IMPLICIT_LE;
        return 1;
    }
    return 0;
}

static const char *ts_of(enc e)
{
    if (!e.explicit_vr)
        return TS_IMPLICIT_LE;
    return e.big_endian ? TS_EXPLICIT_BE : TS_EXPLICIT_LE;
}

/* ---- file meta information -------------------------------------------------------------- */

/* Offset of the file meta group, or (size_t)-1 for a bare data set. */
static size_t find_meta(reader *r)
{
    const uint8_t *d = r->data;
    if (r->len >= PREAMBLE + 4 && memcmp(d + PREAMBLE, "DICM", 4) == 0)
        return PREAMBLE + 4;
    if (r->len >= 4 && memcmp(d, "DICM", 4) == 0) {
        s2f_warn(r->ctx->warnings, "file has no 128-byte preamble: \"DICM\" at offset 0");
        return 4;
    }
    if (r->len >= 8 && d[0] == 2 && d[1] == 0 && vr_bytes_known(d + 4)) {
        s2f_warn(r->ctx->warnings, "file has no preamble and no \"DICM\" prefix: file meta "
                 "information at offset 0");
        return 0;
    }
    return (size_t)-1;
}

/* Reads group 0002 (always Explicit VR LE) from *pos while the tags are in group 0002;
 * the group length is used to stop only where it agrees with the data. */
static s2f_code read_meta(reader *r, size_t *pos, s2f_ds *top)
{
    scope sc = {BODY_DEFINED, r->len, 0, top, 0, 0};
    size_t declared_end = (size_t)-1;
    while (r->len - *pos >= 8 && *pos != declared_end && rd16(r->data + *pos, 0) == 0x0002) {
        enc e = EXPLICIT_LE;
        if (!vr_bytes_known(r->data + *pos + 4)) {
            e = IMPLICIT_LE;
            if (lenient(r, "file meta element at offset %zu is not in Explicit VR", *pos))
                return r->err->code;
        }
        hdr h;
        s2f_code rc = read_header(r, e, *pos, r->len, &h);
        if (!rc)
            rc = read_element(r, e, &h, &sc, pos);
        if (rc)
            return rc;
        if (h.tag == TAG_META_LENGTH && h.len == 4)
            declared_end = *pos + rd32(r->data + h.val, 0);
    }
    if (declared_end != (size_t)-1 && *pos != declared_end)
        s2f_warn(r->ctx->warnings, "file meta group length says the group ends at offset %zu, "
                 "but it ends at offset %zu", declared_end, *pos);
    return S2F_OK;
}

/* The Transfer Syntax UID among the meta elements pushed so far, trimmed, in the arena;
 * *ts stays NULL when there is none. */
static s2f_code meta_transfer_syntax(reader *r, const char **ts)
{
    for (size_t i = 0; i < r->n_elems; i++) {
        const s2f_elem *el = &r->elems[i];
        if (el->tag != TAG_TRANSFER_SYNTAX)
            continue;
        size_t n = el->len;
        while (n && (el->val[n - 1] == 0 || el->val[n - 1] == ' '))
            n--;
        *ts = s2f_arena_strndup(r->ctx->arena, n ? (const char *)el->val : "", n);
        return *ts ? S2F_OK : fail_memory(r);
    }
    return S2F_OK;
}

typedef struct layout {
    enc e;
    int deflated;
    const char *ts;
} layout;

/* M1: the encoding a transfer syntax UID names. */
static void layout_of_ts(reader *r, const char *ts, layout *lo)
{
    lo->e = EXPLICIT_LE;
    lo->deflated = 0;
    lo->ts = ts;
    if (strcmp(ts, TS_IMPLICIT_LE) == 0) {
        lo->e = IMPLICIT_LE;
        lo->ts = TS_IMPLICIT_LE;
    } else if (strcmp(ts, TS_EXPLICIT_LE) == 0) {
        lo->ts = TS_EXPLICIT_LE;
    } else if (strcmp(ts, TS_EXPLICIT_BE) == 0) {
        lo->e = EXPLICIT_BE;
        lo->ts = TS_EXPLICIT_BE;
    } else if (strcmp(ts, TS_DEFLATED_LE) == 0 || strcmp(ts, TS_JPIP_DEFLATE) == 0) {
        lo->deflated = 1;
    } else if (s2f_uid_name(ts)) {
        s2f_warn(r->ctx->warnings, "transfer syntax %s (%s) is for encapsulated pixel data: "
                 "reading the data set as Explicit VR Little Endian", ts, s2f_uid_name(ts));
    } else {
        s2f_warn(r->ctx->warnings, "unknown transfer syntax \"%s\": trying Explicit VR Little "
                 "Endian", ts);
    }
}

/* When the data set plainly is not in the declared encoding but in another one. */
static s2f_code check_encoding(reader *r, size_t pos, layout *lo)
{
    const uint8_t *p = r->data + pos;
    size_t n = r->len - pos;
    enc found;
    if (n == 0 || plausible_first(p, n, lo->e) || !sniff_encoding(p, n, &found))
        return S2F_OK;
    if (lenient(r, "data set at offset %zu is not in the encoding of transfer syntax %s: read as "
                   "%s", pos, lo->ts, s2f_uid_name(ts_of(found))))
        return r->err->code;
    lo->e = found;
    lo->ts = ts_of(found);
    return S2F_OK;
}

/* ---- deflate ------------------------------------------------------------------------------ */

/* Runs inflate over src; writes to dst when given, else only counts. Returns the inflated
 * size, or (size_t)-1 past `cap` bytes, (size_t)-2 on corrupt/truncated data. */
static size_t inflate_pass(const uint8_t *src, size_t n, int window, uint8_t *dst, size_t cap,
                           size_t *unused)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, window) != Z_OK)
        return (size_t)-2;
    uint8_t scratch[16384];
    size_t total = 0, in_left = n;
    const uint8_t *in = src;
    int zrc = Z_OK;
    while (zrc == Z_OK) {
        if (z.avail_in == 0 && in_left) {
            z.next_in = (Bytef *)(uintptr_t)in;
            z.avail_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
            in += z.avail_in;
            in_left -= z.avail_in;
        }
        size_t room = dst ? cap - total : sizeof scratch;
        z.next_out = dst ? dst + total : scratch;
        z.avail_out = room > (1u << 30) ? (1u << 30) : (uInt)room;
        if (dst && room == 0) { /* full: only the end-of-stream marker may remain */
            z.next_out = scratch;
            z.avail_out = 1;
        }
        uInt before = z.avail_out;
        zrc = inflate(&z, Z_NO_FLUSH);
        total += before - z.avail_out;
        if (total > cap) {
            inflateEnd(&z);
            return (size_t)-1;
        }
        if (zrc == Z_BUF_ERROR && (z.avail_in || in_left))
            zrc = Z_OK; /* output space was the limit: go on */
    }
    *unused = z.avail_in + in_left;
    inflateEnd(&z);
    return zrc == Z_STREAM_END ? total : (size_t)-2;
}

static int looks_like_zlib(const uint8_t *p, size_t n)
{
    return n >= 2 && (p[0] & 0x0F) == 8 && ((unsigned)p[0] << 8 | p[1]) % 31 == 0;
}

/* M1: inflates the deflated data set at pos into the arena; r->data then points to it. */
static s2f_code inflate_dataset(reader *r, size_t pos)
{
    const uint8_t *src = r->data + pos;
    size_t n = r->len - pos, unused = 0;
    size_t cap = r->ctx->max_inflated ? r->ctx->max_inflated : 64 * n + ((size_t)64 << 20);
    int window = -MAX_WBITS;
    size_t size = inflate_pass(src, n, window, NULL, cap, &unused);
    if (size == (size_t)-2 && looks_like_zlib(src, n)) {
        window = MAX_WBITS;
        size = inflate_pass(src, n, window, NULL, cap, &unused);
        if (size != (size_t)-2)
            s2f_warn(r->ctx->warnings, "deflated data set has a zlib header (PS3.5 A.5 wants "
                     "raw deflate)");
    }
    if (size == (size_t)-1)
        return s2f_fail(r->err, S2F_ELIMIT, "deflated data set inflates beyond %zu bytes", cap);
    if (size == (size_t)-2)
        return s2f_fail(r->err, S2F_EFORMAT, "deflated data set at offset %zu is corrupt or "
                        "truncated", pos);
    uint8_t *dst = s2f_arena_alloc(r->ctx->arena, size ? size : 1);
    if (!dst)
        return fail_memory(r);
    if (inflate_pass(src, n, window, dst, size, &unused) != size)
        return s2f_fail(r->err, S2F_EINTERNAL, "inflating the data set twice gave two sizes");
    if (unused)
        s2f_warn(r->ctx->warnings, "%zu bytes after the end of the deflated data set ignored",
                 unused);
    r->data = dst;
    r->len = size;
    r->inflated = 1;
    return S2F_OK;
}

/* ---- entry point ------------------------------------------------------------------------- */

static s2f_code not_dicom(reader *r)
{
    return s2f_fail(r->err, S2F_EFORMAT, "not a DICOM file: no DICM prefix and no plausible data "
                    "element at offset 0");
}

/* Reads the meta group at *pos and decides how the rest is encoded. */
static s2f_code read_part10_header(reader *r, size_t *pos, s2f_ds *top, layout *lo)
{
    s2f_code rc = read_meta(r, pos, top);
    if (rc)
        return rc;
    const char *ts = NULL;
    rc = meta_transfer_syntax(r, &ts);
    if (rc)
        return rc;
    if (!ts || !*ts) {
        enc e = EXPLICIT_LE;
        sniff_encoding(r->data + *pos, r->len - *pos, &e);
        s2f_warn(r->ctx->warnings, "file meta information has no Transfer Syntax UID "
                 "(0002,0010): reading as %s", s2f_uid_name(ts_of(e)));
        lo->e = e;
        lo->deflated = 0;
        lo->ts = ts_of(e);
        return S2F_OK;
    }
    layout_of_ts(r, ts, lo);
    return lo->deflated ? S2F_OK : check_encoding(r, *pos, lo);
}

static void note_inflated_offsets(reader *r)
{
    size_t n = strlen(r->err->message);
    const char *note = " (offset in the inflated data set)";
    if (n + strlen(note) < sizeof r->err->message)
        memcpy(r->err->message + n, note, strlen(note) + 1);
}

static s2f_code read_all(reader *r, s2f_ds *top, const char **ts)
{
    layout lo = {EXPLICIT_LE, 0, TS_EXPLICIT_LE};
    size_t pos = find_meta(r);
    s2f_code rc;
    if (pos != (size_t)-1) {
        rc = read_part10_header(r, &pos, top, &lo);
        if (rc)
            return rc;
    } else {
        pos = 0;
        if (!sniff_encoding(r->data, r->len, &lo.e))
            return not_dicom(r);
        lo.ts = ts_of(lo.e);
    }
    if (lo.deflated) {
        rc = inflate_dataset(r, pos);
        if (rc)
            return rc;
        pos = 0;
    }
    *ts = lo.ts;
    top->offset = pos;
    size_t n_meta = r->n_elems;
    r->content_end = end_of_nonzero(r->data, r->len);
    scope sc = {BODY_TOP, r->len, 0, top, 0, 1};
    rc = read_elements(r, lo.e, &pos, &sc);
    if (rc && r->inflated && rc == S2F_EFORMAT)
        note_inflated_offsets(r);
    return rc ? rc : finish_ds(r, top, 0, n_meta);
}

s2f_code s2f_part10_read(const uint8_t *data, size_t len, s2f_read_ctx *ctx, s2f_ds **out,
                         s2f_error *err)
{
    s2f_error local;
    if (!err)
        err = &local;
    if (out)
        *out = NULL;
    if (!ctx || !ctx->arena || !out || (!data && len))
        return s2f_fail(err, S2F_EINTERNAL, "s2f_part10_read called without arena or output");
    reader r;
    memset(&r, 0, sizeof r);
    r.data = data;
    r.len = data ? len : 0;
    r.ctx = ctx;
    r.ds_arena = ctx->arena;
    r.err = err;
    r.max_depth = ctx->max_depth ? ctx->max_depth : DEFAULT_DEPTH;
    if (r.max_depth > DEPTH_CAP)
        r.max_depth = DEPTH_CAP;
    if (r.len == 0)
        return not_dicom(&r);
    s2f_ds *top = new_ds(&r, NULL, 0);
    if (!top)
        return fail_memory(&r);
    const char *ts = NULL;
    s2f_code rc = read_all(&r, top, &ts);
    if (rc)
        return rc;
    ctx->transfer_syntax = ts;
    *out = top;
    return S2F_OK;
}
