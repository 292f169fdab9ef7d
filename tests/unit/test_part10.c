/*
 * test_part10.c - unit tests of the binary DICOM reader (part10.c, rule M1) and of the
 * data dictionary (dictionary.c).
 *
 * Fixtures are built in memory by a small writer that encodes elements in each encoding
 * (implicit LE, explicit LE, explicit BE), with sequences and items of defined or
 * undefined length; the same content must read back the same in every transfer syntax.
 * Every error path of the reader is provoked and its code and message checked. When the
 * shared corpus ($SHARED or ../shared) exists, every .dcm file in it is read, and every
 * 97th-byte prefix of each must fail cleanly or succeed (run under `make SAN=1`).
 */
#include "check.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "dicom/dataset.h"
#include "dicom/dictionary.h"
#include "util/arena.h"
#include "util/error.h"

/* ---- a growable byte writer that encodes elements -------------------------------------- */

typedef struct writer {
    uint8_t *d;
    size_t n, cap;
    int explicit_vr, be;
    int undef_seq, undef_item; /* write sequences / items with undefined length */
} writer;

static void put(writer *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 256;
        w->d = realloc(w->d, w->cap);
        if (!w->d)
            abort();
    }
    if (n)
        memcpy(w->d + w->n, p, n);
    w->n += n;
}

static void put16(writer *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(w->be ? v >> 8 : v), (uint8_t)(w->be ? v : v >> 8)};
    put(w, b, 2);
}

static void put32(writer *w, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[w->be ? 3 - i : i] = (uint8_t)(v >> (8 * i));
    put(w, b, 4);
}

static void patch32(writer *w, size_t at, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        w->d[at + (size_t)(w->be ? 3 - i : i)] = (uint8_t)(v >> (8 * i));
}

static void put_tag(writer *w, uint32_t tag)
{
    put16(w, S2F_TAG_GROUP(tag));
    put16(w, S2F_TAG_ELEM(tag));
}

static int long_form(const char *vr)
{
    static const char *const l[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV",
                                    "UC", "UN", "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
        if (strcmp(vr, l[i]) == 0)
            return 1;
    return 0;
}

/* Header of an element; returns where its length field is, for patching. */
static size_t header(writer *w, uint32_t tag, const char *vr, uint32_t len)
{
    put_tag(w, tag);
    if (!w->explicit_vr) {
        put32(w, len);
        return w->n - 4;
    }
    put(w, vr, 2);
    if (long_form(vr)) {
        put16(w, 0);
        put32(w, len);
        return w->n - 4;
    }
    put16(w, (uint16_t)len);
    return w->n - 2;
}

static void elem(writer *w, uint32_t tag, const char *vr, const void *val, uint32_t len)
{
    header(w, tag, vr, len);
    put(w, val, len);
}

static void elem_str(writer *w, uint32_t tag, const char *vr, const char *s)
{
    size_t n = strlen(s);
    header(w, tag, vr, (uint32_t)(n + (n & 1)));
    put(w, s, n);
    if (n & 1)
        put(w, strcmp(vr, "UI") == 0 ? "\0" : " ", 1);
}

static void elem_us(writer *w, uint32_t tag, uint16_t v)
{
    header(w, tag, "US", 2);
    put16(w, v);
}

static void elem_ul2(writer *w, uint32_t tag, uint32_t a, uint32_t b)
{
    header(w, tag, "UL", 8);
    put32(w, a);
    put32(w, b);
}

static void elem_fd(writer *w, uint32_t tag, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    header(w, tag, "FD", 8);
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[w->be ? 7 - i : i] = (uint8_t)(u >> (8 * i));
    put(w, b, 8);
}

static void elem_fl(writer *w, uint32_t tag, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    header(w, tag, "FL", 4);
    put32(w, u);
}

static void elem_at(writer *w, uint32_t tag, uint32_t v)
{
    header(w, tag, "AT", 4);
    put_tag(w, v);
}

/* Sequence and item framing; begin returns the length field position (or 0). */
static size_t seq_begin(writer *w, uint32_t tag)
{
    size_t at = header(w, tag, "SQ", w->undef_seq ? 0xFFFFFFFFu : 0);
    return w->undef_seq ? 0 : at;
}

static void seq_end(writer *w, size_t at)
{
    if (w->undef_seq) {
        put_tag(w, S2F_TAG(0xFFFE, 0xE0DD));
        put32(w, 0);
    } else {
        patch32(w, at, (uint32_t)(w->n - at - 4));
    }
}

static size_t item_begin(writer *w)
{
    put_tag(w, S2F_TAG(0xFFFE, 0xE000));
    put32(w, w->undef_item ? 0xFFFFFFFFu : 0);
    return w->n - 4;
}

static void item_end(writer *w, size_t at)
{
    if (w->undef_item) {
        put_tag(w, S2F_TAG(0xFFFE, 0xE00D));
        put32(w, 0);
    } else {
        patch32(w, at, (uint32_t)(w->n - at - 4));
    }
}

/* ---- the standard content every encoding must read back ---------------------------------- */

#define SOP_UID "1.2.826.0.1.3680043.8.498.1"

static void write_content(writer *w)
{
    elem_str(w, S2F_TAG(0x0008, 0x0005), "CS", "ISO_IR 100");
    elem_str(w, S2F_TAG(0x0008, 0x0016), "UI", "1.2.840.10008.5.1.4.1.1.88.22");
    elem_str(w, S2F_TAG(0x0008, 0x0018), "UI", SOP_UID);
    elem_at(w, S2F_TAG(0x0028, 0x0009), S2F_TAG(0x0018, 0x1063));
    elem_us(w, S2F_TAG(0x0028, 0x0010), 512);
    elem_ul2(w, S2F_TAG(0x0040, 0xA132), 7, 0x01020304);
    size_t sq = seq_begin(w, S2F_TAG(0x0040, 0xA730));
    size_t it = item_begin(w);
    elem_str(w, S2F_TAG(0x0040, 0xA040), "CS", "NUM");
    size_t mv = seq_begin(w, S2F_TAG(0x0040, 0xA300));
    size_t it2 = item_begin(w);
    elem_str(w, S2F_TAG(0x0040, 0xA30A), "DS", "12.5");
    elem_fd(w, S2F_TAG(0x0040, 0xA161), 3.25);
    item_end(w, it2);
    seq_end(w, mv);
    item_end(w, it);
    it = item_begin(w);
    elem_str(w, S2F_TAG(0x0040, 0xA040), "CS", "TEXT");
    elem_str(w, S2F_TAG(0x0040, 0xA160), "UT", "hello world");
    item_end(w, it);
    it = item_begin(w); /* an empty item */
    item_end(w, it);
    seq_end(w, sq);
    elem_fl(w, S2F_TAG(0x0070, 0x0022), -1.5f);
}

/* An AT value as a tag: s2f_elem_u32 sees the group in the low half (PS3.5 6.2: AT is two
 * 16-bit values, group first). */
static int at_is(const s2f_elem *e, uint32_t tag)
{
    uint32_t v;
    return s2f_elem_u32(e, 0, &v) && ((v << 16) | (v >> 16)) == tag;
}

static int str_is(const s2f_ds *ds, uint32_t tag, const char *want)
{
    const uint8_t *p;
    size_t n;
    const s2f_elem *e = s2f_ds_find(ds, tag);
    return e && s2f_elem_string_raw(e, 0, &p, &n) && n == strlen(want) && memcmp(p, want, n) == 0;
}

/* Returns 0 when ds holds write_content's values, else the line that failed. */
static int content_mismatch(const s2f_ds *ds)
{
    uint16_t us;
    uint32_t ul;
    double fd;
    float fl;
    uint32_t n_meta = 0;
    for (uint32_t i = 0; ds && i < ds->n; i++)
        n_meta += S2F_TAG_GROUP(ds->elems[i].tag) == 0x0002;
    if (!ds || ds->n - n_meta != 8 || ds->parent)
        return __LINE__;
    if (!str_is(ds, S2F_TAG(0x0008, 0x0005), "ISO_IR 100") ||
        !str_is(ds, S2F_TAG(0x0008, 0x0018), SOP_UID))
        return __LINE__;
    if (!at_is(s2f_ds_find(ds, S2F_TAG(0x0028, 0x0009)), S2F_TAG(0x0018, 0x1063)))
        return __LINE__;
    if (!s2f_elem_u16(s2f_ds_find(ds, S2F_TAG(0x0028, 0x0010)), 0, &us) || us != 512)
        return __LINE__;
    const s2f_elem *e = s2f_ds_find(ds, S2F_TAG(0x0040, 0xA132));
    if (s2f_elem_binary_count(e) != 2 || !s2f_elem_u32(e, 1, &ul) || ul != 0x01020304)
        return __LINE__;
    e = s2f_ds_find(ds, S2F_TAG(0x0040, 0xA730));
    if (!e || !e->is_seq || e->n_items != 3 || e->vr != S2F_VR('S', 'Q'))
        return __LINE__;
    const s2f_ds *i0 = e->items[0], *i1 = e->items[1];
    if (i0->parent != ds || !str_is(i0, S2F_TAG(0x0040, 0xA040), "NUM") || e->items[2]->n != 0)
        return __LINE__;
    const s2f_ds *mv = s2f_ds_item(i0, S2F_TAG(0x0040, 0xA300), 0);
    if (!mv || mv->parent != i0 || !str_is(mv, S2F_TAG(0x0040, 0xA30A), "12.5"))
        return __LINE__;
    if (!s2f_elem_f64(s2f_ds_find(mv, S2F_TAG(0x0040, 0xA161)), 0, &fd) || fd != 3.25)
        return __LINE__;
    if (!str_is(i1, S2F_TAG(0x0040, 0xA160), "hello world"))
        return __LINE__;
    if (!s2f_elem_f32(s2f_ds_find(ds, S2F_TAG(0x0070, 0x0022)), 0, &fl) || fl != -1.5f)
        return __LINE__;
    return 0;
}

/* ---- Part 10 framing ----------------------------------------------------------------------- */

static void meta_str(writer *m, uint16_t elem_no, const char *s)
{
    elem_str(m, S2F_TAG(0x0002, elem_no), "UI", s);
}

/* preamble + DICM + meta group (Explicit VR LE) + body. */
static writer part10(const char *ts, const writer *body)
{
    writer f = {0};
    writer m = {0};
    m.explicit_vr = 1;
    elem(&m, S2F_TAG(0x0002, 0x0001), "OB", "\0\1", 2);
    meta_str(&m, 0x0002, "1.2.840.10008.5.1.4.1.1.88.22");
    meta_str(&m, 0x0003, SOP_UID);
    meta_str(&m, 0x0010, ts);
    uint8_t zero[128] = {0};
    put(&f, zero, sizeof zero);
    put(&f, "DICM", 4);
    f.explicit_vr = 1;
    header(&f, S2F_TAG(0x0002, 0x0000), "UL", 4);
    put32(&f, (uint32_t)m.n);
    put(&f, m.d, m.n);
    put(&f, body->d, body->n);
    free(m.d);
    return f;
}

static writer deflate_raw(const writer *in)
{
    writer out = {0};
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    out.cap = deflateBound(&z, in->n) + 16;
    out.d = malloc(out.cap);
    z.next_in = in->d;
    z.avail_in = (uInt)in->n;
    z.next_out = out.d;
    z.avail_out = (uInt)out.cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    out.n = z.total_out;
    deflateEnd(&z);
    return out;
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct result {
    s2f_arena *arena;
    s2f_warnings warnings;
    s2f_read_ctx ctx;
    s2f_error err;
    s2f_ds *ds;
    s2f_code rc;
} result;

static void read_with(result *r, const void *data, size_t len, size_t limit, unsigned depth,
                      size_t max_inflated, int strict)
{
    memset(r, 0, sizeof *r);
    r->arena = s2f_arena_new(limit);
    r->warnings.arena = s2f_arena_new(0);
    r->ctx.arena = r->arena;
    r->ctx.warnings = &r->warnings;
    r->ctx.max_depth = depth;
    r->ctx.max_inflated = max_inflated;
    r->ctx.strict = strict;
    r->rc = s2f_part10_read(data, len, &r->ctx, &r->ds, &r->err);
}

static void read_buf(result *r, const writer *w) { read_with(r, w->d, w->n, 0, 128, 0, 0); }

static void done(result *r, writer *w)
{
    s2f_arena_free(r->arena);
    s2f_arena_free(r->warnings.arena);
    if (w) {
        free(w->d);
        w->d = NULL;
    }
}

static int has_warning(const result *r, const char *part)
{
    for (size_t i = 0; i < r->warnings.n; i++)
        if (strstr(r->warnings.list[i].message, part))
            return 1;
    return 0;
}

static int msg_has(const result *r, const char *part) { return strstr(r->err.message, part) != NULL; }

/* Encodes write_content in one of the encodings; mode bit 0: undefined-length sequences,
 * bit 1: undefined-length items. */
static writer content(int explicit_vr, int be, int mode)
{
    writer w = {0};
    w.explicit_vr = explicit_vr;
    w.be = be;
    w.undef_seq = mode & 1;
    w.undef_item = (mode >> 1) & 1;
    write_content(&w);
    return w;
}

/* ---- tests: dictionary --------------------------------------------------------------------- */

TEST(dictionary_lookups)
{
    CHECK(s2f_dict_vr(S2F_TAG(0x0040, 0xA730)) == S2F_VR('S', 'Q'));
    CHECK(s2f_dict_vr(S2F_TAG(0x0028, 0x0106)) == S2F_VR('U', 'S')); /* US or SS */
    CHECK(s2f_dict_vr(S2F_TAG(0x7FE0, 0x0010)) == S2F_VR('O', 'B')); /* OB or OW */
    CHECK(s2f_dict_vr(S2F_TAG(0x0002, 0x0000)) == S2F_VR('U', 'L'));
    CHECK(s2f_dict_vr(S2F_TAG(0x0011, 0x0000)) == S2F_VR('U', 'L')); /* group length */
    CHECK(s2f_dict_vr(S2F_TAG(0x0009, 0x0010)) == S2F_VR('L', 'O')); /* private creator */
    CHECK(s2f_dict_vr(S2F_TAG(0x0009, 0x1001)) == 0);
    CHECK(s2f_dict_vr(S2F_TAG(0xFFFE, 0xE000)) == 0);
    CHECK_STR(s2f_dict_keyword(S2F_TAG(0x0040, 0xA730)), "ContentSequence");
    CHECK_STR(s2f_dict_keyword(S2F_TAG(0x0008, 0x0018)), "SOPInstanceUID");
    CHECK(s2f_dict_keyword(S2F_TAG(0x0009, 0x1001)) == NULL);
    CHECK_STR(s2f_uid_name("1.2.840.10008.1.2.1"), "Explicit VR Little Endian");
    CHECK_STR(s2f_uid_name("1.2.840.10008.1.2"), "Implicit VR Little Endian");
    CHECK_STR(s2f_uid_name("1.2.840.10008.1.2.1.99"), "Deflated Explicit VR Little Endian");
    CHECK_STR(s2f_uid_name("1.2.840.10008.1.2.2"), "Explicit VR Big Endian");
    CHECK_STR(s2f_uid_name("1.2.840.10008.5.1.4.1.1.88.22"), "Enhanced SR");
    CHECK_STR(s2f_uid_name("1.2.840.10008.5.1.4.1.1.88.33"), "Comprehensive SR");
    CHECK_STR(s2f_uid_name("1.2.840.10008.5.1.4.1.1.88.34"), "Comprehensive 3D SR");
    CHECK_STR(s2f_uid_name("1.2.840.10008.5.1.4.1.1.88.35"), "Extensible SR");
    CHECK_STR(s2f_uid_name("1.2.840.10008.5.1.4.1.1.88.11"), "Basic Text SR");
    CHECK_STR(s2f_uid_name("1.2.840.10008.5.1.4.1.1.88.67"), "X-Ray Radiation Dose SR");
    CHECK_STR(s2f_uid_name("1.2.840.10008.5.1.4.1.1.66.4"), "Segmentation");
    CHECK_STR(s2f_uid_name("1.2.840.10008.5.1.4.1.1.2"), "CT Image");
    CHECK_STR(s2f_uid_name("1.2.840.10008.5.1.4.1.1.4"), "MR Image");
    CHECK(s2f_uid_name("1.2.3") == NULL);
    CHECK(s2f_uid_name(NULL) == NULL);
}

/* ---- tests: encodings (M1) ----------------------------------------------------------------- */

static const char *const TS_NAMES[] = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
                                       "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"};

/* Reads write_content in transfer syntax ts_index with framing mode; 0 or a failing line. */
static int roundtrip(int ts_index, int mode)
{
    writer body = content(ts_index != 0, ts_index == 3, mode);
    if (ts_index == 2) {
        writer z = deflate_raw(&body);
        free(body.d);
        body = z;
    }
    writer f = part10(TS_NAMES[ts_index], &body);
    free(body.d);
    result r;
    read_buf(&r, &f);
    int bad = r.rc != S2F_OK ? __LINE__ : content_mismatch(r.ds);
    if (!bad && !str_is(r.ds, S2F_TAG(0x0002, 0x0010), TS_NAMES[ts_index]))
        bad = __LINE__; /* the meta group is kept in the top-level data set */
    if (!bad && (!r.ctx.transfer_syntax || strcmp(r.ctx.transfer_syntax, TS_NAMES[ts_index])))
        bad = __LINE__;
    if (bad)
        printf("# roundtrip ts=%d mode=%d: line %d rc=%d %s\n", ts_index, mode, bad, r.rc,
               r.err.message);
    done(&r, &f);
    return bad;
}

TEST(m1_four_transfer_syntaxes_read_the_same)
{
    for (int ts = 0; ts < 4; ts++)
        for (int mode = 0; mode < 4; mode++)
            CHECK(roundtrip(ts, mode) == 0);
}

TEST(m1_bare_implicit_data_set)
{
    writer w = content(0, 0, 1);
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_OK);
    CHECK(content_mismatch(r.ds) == 0);
    CHECK_STR(r.ctx.transfer_syntax, "1.2.840.10008.1.2");
    done(&r, &w);
}

TEST(m1_bare_explicit_data_sets)
{
    for (int be = 0; be < 2; be++) {
        writer w = content(1, be, 2);
        result r;
        read_buf(&r, &w);
        CHECK(r.rc == S2F_OK);
        CHECK(content_mismatch(r.ds) == 0);
        CHECK_STR(r.ctx.transfer_syntax, be ? "1.2.840.10008.1.2.2" : "1.2.840.10008.1.2.1");
        done(&r, &w);
    }
}

TEST(m1_dicm_at_offset_0_and_meta_without_prefix)
{
    writer body = content(1, 0, 0);
    writer f = part10("1.2.840.10008.1.2.1", &body);
    for (int variant = 0; variant < 2; variant++) {
        size_t skip = variant == 0 ? 128 : 132; /* "DICM" first, or the meta group first */
        result r;
        read_with(&r, f.d + skip, f.n - skip, 0, 0, 0, 0);
        CHECK(r.rc == S2F_OK);
        CHECK(content_mismatch(r.ds) == 0);
        CHECK(has_warning(&r, "preamble"));
        done(&r, NULL);
    }
    free(body.d);
    free(f.d);
}

TEST(m1_declared_explicit_but_implicit_data)
{
    writer body = content(0, 0, 0);
    writer f = part10("1.2.840.10008.1.2.1", &body);
    result r;
    read_buf(&r, &f);
    CHECK(r.rc == S2F_OK);
    CHECK(content_mismatch(r.ds) == 0);
    CHECK(has_warning(&r, "not in the encoding"));
    CHECK_STR(r.ctx.transfer_syntax, "1.2.840.10008.1.2");
    done(&r, NULL);
    read_with(&r, f.d, f.n, 0, 0, 0, 1);
    CHECK(r.rc == S2F_EFORMAT);
    done(&r, &f);
    free(body.d);
}

TEST(m1_encapsulated_and_unknown_transfer_syntax_read_as_explicit_le)
{
    writer body = content(1, 0, 3);
    writer f = part10("1.2.840.10008.1.2.4.50", &body);
    result r;
    read_buf(&r, &f);
    CHECK(r.rc == S2F_OK);
    CHECK(content_mismatch(r.ds) == 0);
    CHECK(has_warning(&r, "JPEG Baseline"));
    done(&r, &f);
    f = part10("1.2.3.4", &body);
    read_buf(&r, &f);
    CHECK(r.rc == S2F_OK);
    CHECK(content_mismatch(r.ds) == 0);
    CHECK(has_warning(&r, "unknown transfer syntax"));
    done(&r, &f);
    free(body.d);
}

TEST(m1_big_endian_values_are_swapped)
{
    writer w = {0};
    w.explicit_vr = w.be = 1;
    uint8_t ow[4] = {0x12, 0x34, 0xAB, 0xCD};
    elem_at(&w, S2F_TAG(0x0028, 0x0009), S2F_TAG(0x0054, 0x0080));
    elem(&w, S2F_TAG(0x0028, 0x1201), "OW", ow, 4);
    elem(&w, S2F_TAG(0x0042, 0x0011), "OB", ow, 4);
    elem_str(&w, S2F_TAG(0x0040, 0xA160), "UT", "BE text");
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_OK);
    uint16_t v;
    CHECK(at_is(s2f_ds_find(r.ds, S2F_TAG(0x0028, 0x0009)), S2F_TAG(0x0054, 0x0080)));
    CHECK(s2f_elem_u16(s2f_ds_find(r.ds, S2F_TAG(0x0028, 0x1201)), 1, &v) && v == 0xABCD);
    const s2f_elem *ob = s2f_ds_find(r.ds, S2F_TAG(0x0042, 0x0011));
    CHECK(ob && ob->val == w.d + (ob->val - w.d) && memcmp(ob->val, ow, 4) == 0); /* not swapped */
    CHECK(str_is(r.ds, S2F_TAG(0x0040, 0xA160), "BE text"));
    done(&r, &w);
}

TEST(m1_values_point_into_the_input)
{
    writer w = content(1, 0, 0);
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_OK);
    const s2f_elem *e = s2f_ds_find(r.ds, S2F_TAG(0x0008, 0x0018));
    CHECK(e && e->val > w.d && e->val < w.d + w.n);
    CHECK(e->offset + 8 == (size_t)(e->val - w.d));
    done(&r, &w);
}

/* ---- tests: UN holding a sequence (PS3.5 6.2.2) ---------------------------------------------- */

/* An implicit-LE encoded sequence value: one item with (0008,0100) SH "ABC". */
static writer implicit_sequence_value(int undef)
{
    writer v = {0};
    v.undef_seq = v.undef_item = undef;
    size_t it = item_begin(&v);
    elem_str(&v, S2F_TAG(0x0008, 0x0100), "SH", "ABC");
    item_end(&v, it);
    if (undef) {
        put_tag(&v, S2F_TAG(0xFFFE, 0xE0DD));
        put32(&v, 0);
    }
    return v;
}

static int un_case(int be, int undef)
{
    writer w = {0};
    w.explicit_vr = 1;
    w.be = be;
    elem_str(&w, S2F_TAG(0x0008, 0x0104), "UN", "Text"); /* known LO, written as UN */
    elem_str(&w, S2F_TAG(0x0009, 0x0010), "LO", "CREATOR");
    writer v = implicit_sequence_value(undef);
    header(&w, S2F_TAG(0x0009, 0x1001), "UN", undef ? 0xFFFFFFFFu : (uint32_t)v.n);
    put(&w, v.d, v.n);
    header(&w, S2F_TAG(0x0040, 0xA730), "UN", undef ? 0xFFFFFFFFu : (uint32_t)v.n);
    put(&w, v.d, v.n);
    free(v.d);
    result r;
    read_buf(&r, &w);
    int bad = 0;
    const s2f_elem *p = r.rc ? NULL : s2f_ds_find(r.ds, S2F_TAG(0x0009, 0x1001));
    const s2f_elem *c = r.rc ? NULL : s2f_ds_find(r.ds, S2F_TAG(0x0040, 0xA730));
    const s2f_elem *m = r.rc ? NULL : s2f_ds_find(r.ds, S2F_TAG(0x0008, 0x0104));
    if (!p || !p->is_seq || p->n_items != 1 || p->vr != S2F_VR('U', 'N') ||
        !str_is(p->items[0], S2F_TAG(0x0008, 0x0100), "ABC"))
        bad = __LINE__;
    else if (!c || !c->is_seq || c->vr != S2F_VR('S', 'Q') || c->n_items != 1)
        bad = __LINE__;
    else if (!m || m->vr != S2F_VR('L', 'O') || !str_is(r.ds, S2F_TAG(0x0008, 0x0104), "Text"))
        bad = __LINE__;
    if (bad)
        printf("# un_case be=%d undef=%d line %d rc=%d %s\n", be, undef, bad, r.rc, r.err.message);
    done(&r, &w);
    return bad;
}

TEST(m1_un_holding_a_sequence)
{
    for (int be = 0; be < 2; be++)
        for (int undef = 0; undef < 2; undef++)
            CHECK(un_case(be, undef) == 0);
}

TEST(m1_implicit_private_sequence)
{
    writer w = {0};
    elem_str(&w, S2F_TAG(0x0008, 0x0018), "UI", "1.2.3");
    elem_str(&w, S2F_TAG(0x0009, 0x0010), "LO", "CREATOR");
    writer v = implicit_sequence_value(0);
    header(&w, S2F_TAG(0x0009, 0x1001), "UN", (uint32_t)v.n);
    put(&w, v.d, v.n);
    free(v.d);
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_OK);
    CHECK(s2f_ds_find(r.ds, S2F_TAG(0x0009, 0x0010))->vr == S2F_VR('L', 'O'));
    const s2f_elem *p = s2f_ds_find(r.ds, S2F_TAG(0x0009, 0x1001));
    CHECK(p && p->is_seq && p->n_items == 1);
    done(&r, &w);
}

TEST(m1_un_that_only_looks_like_a_sequence_stays_bytes)
{
    writer w = {0};
    w.explicit_vr = 1;
    uint8_t v[12] = {0xFE, 0xFF, 0x00, 0xE0, 0x40, 0, 0, 0, 1, 2, 3, 4}; /* item too long */
    elem_str(&w, S2F_TAG(0x0008, 0x0018), "UI", "1.2.3");
    elem(&w, S2F_TAG(0x0009, 0x1001), "UN", v, sizeof v);
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_OK);
    const s2f_elem *e = s2f_ds_find(r.ds, S2F_TAG(0x0009, 0x1001));
    CHECK(e && !e->is_seq && e->len == 12 && e->vr == S2F_VR('U', 'N'));
    CHECK(has_warning(&r, "kept as bytes"));
    CHECK(r.warnings.n == 1);
    done(&r, &w);
}

/* ---- tests: leniency ------------------------------------------------------------------------ */

TEST(m1_out_of_order_and_duplicates)
{
    writer w = {0};
    w.explicit_vr = 1;
    elem_str(&w, S2F_TAG(0x0010, 0x0010), "PN", "B^B");
    elem_str(&w, S2F_TAG(0x0008, 0x0018), "UI", "1.2.3");
    elem_str(&w, S2F_TAG(0x0010, 0x0010), "PN", "C^C");
    elem_str(&w, S2F_TAG(0x0008, 0x0005), "CS", "ISO_IR 6");
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_OK);
    CHECK(r.ds->n == 3);
    CHECK(r.ds->elems[0].tag == S2F_TAG(0x0008, 0x0005));
    CHECK(r.ds->elems[1].tag == S2F_TAG(0x0008, 0x0018));
    CHECK(str_is(r.ds, S2F_TAG(0x0010, 0x0010), "B^B")); /* the first is kept */
    CHECK(has_warning(&r, "not in ascending tag order"));
    CHECK(has_warning(&r, "duplicate element (0010,0010)"));
    done(&r, NULL);
    read_with(&r, w.d, w.n, 0, 0, 0, 1);
    CHECK(r.rc == S2F_EFORMAT && msg_has(&r, "strict"));
    done(&r, &w);
}

TEST(m1_trailing_zero_padding_is_ignored)
{
    writer w = content(1, 0, 0);
    uint8_t zeros[37] = {0};
    put(&w, zeros, sizeof zeros);
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_OK);
    CHECK(content_mismatch(r.ds) == 0);
    CHECK(has_warning(&r, "37 bytes of zero padding"));
    done(&r, &w);
}

static double now_ms(void);

/* Zero runs that are not trailing padding (a hostile file) must not make the padding
 * check quadratic: 1 MiB of (0000,0000) elements then one non-zero byte pair. */
TEST(m1_zero_runs_are_read_in_linear_time)
{
    writer w = {0};
    elem_str(&w, S2F_TAG(0x0008, 0x0018), "UI", "1.2.3");
    size_t n = (size_t)1 << 20;
    uint8_t *zeros = calloc(1, n);
    put(&w, zeros, n);
    free(zeros);
    elem_str(&w, S2F_TAG(0x0010, 0x0010), "PN", "X");
    result r;
    double t0 = now_ms();
    read_buf(&r, &w);
    double t = now_ms() - t0;
    CHECK(r.rc == S2F_OK);
    CHECK(str_is(r.ds, S2F_TAG(0x0010, 0x0010), "X"));
    CHECK(t < 2000);
    done(&r, &w);
}

TEST(m1_encapsulated_pixel_data_is_skipped)
{
    writer w = {0};
    w.explicit_vr = 1;
    elem_str(&w, S2F_TAG(0x0008, 0x0018), "UI", "1.2.3");
    header(&w, S2F_TAG(0x7FE0, 0x0010), "OB", 0xFFFFFFFFu);
    put_tag(&w, S2F_TAG(0xFFFE, 0xE000));
    put32(&w, 0);
    put_tag(&w, S2F_TAG(0xFFFE, 0xE000));
    put32(&w, 4);
    put(&w, "\1\2\3\4", 4);
    put_tag(&w, S2F_TAG(0xFFFE, 0xE0DD));
    put32(&w, 0);
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_OK && r.ds->n == 2);
    done(&r, &w);
}

/* ---- tests: errors --------------------------------------------------------------------------- */

TEST(m1_not_dicom)
{
    result r;
    read_with(&r, "", 0, 0, 0, 0, 0);
    CHECK(r.rc == S2F_EFORMAT);
    CHECK_STR(r.err.message,
              "not a DICOM file: no DICM prefix and no plausible data element at offset 0");
    done(&r, NULL);
    const char *text = "hello, this is plainly not a DICOM file at all\n";
    read_with(&r, text, strlen(text), 0, 0, 0, 0);
    CHECK(r.rc == S2F_EFORMAT && msg_has(&r, "not a DICOM file"));
    done(&r, NULL);
    read_with(&r, "{\"00080018\":1}", 14, 0, 0, 0, 0);
    CHECK(r.rc == S2F_EFORMAT && msg_has(&r, "not a DICOM file"));
    done(&r, NULL);
}

TEST(m1_length_past_the_end)
{
    writer w = {0};
    w.explicit_vr = 1;
    elem_str(&w, S2F_TAG(0x0008, 0x0018), "UI", "1.2.3.4");
    size_t off = w.n;
    header(&w, S2F_TAG(0x0040, 0xA730), "SQ", 0xFFFFFFFEu);
    uint8_t pad[200] = {1};
    put(&w, pad, sizeof pad);
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_EFORMAT);
    char want[200];
    snprintf(want, sizeof want,
             "element (0040,A730) length 4294967294 at offset %zu runs past the end of the data "
             "(200 bytes left)", off);
    CHECK_STR(r.err.message, want);
    done(&r, &w);
}

TEST(m1_length_past_the_end_of_an_item)
{
    writer w = {0};
    w.explicit_vr = 1;
    size_t sq = seq_begin(&w, S2F_TAG(0x0040, 0xA730));
    size_t it = item_begin(&w);
    size_t off = w.n;
    header(&w, S2F_TAG(0x0040, 0xA160), "UT", 100);
    put(&w, "abcd", 4);
    item_end(&w, it);
    seq_end(&w, sq);
    put(&w, "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789", 100);
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_EFORMAT);
    char want[64];
    snprintf(want, sizeof want, "at offset %zu runs past the end", off);
    CHECK(msg_has(&r, want) && msg_has(&r, "(0040,A160)"));
    done(&r, &w);
}

TEST(m1_odd_length)
{
    writer w = {0};
    w.explicit_vr = 1;
    elem_str(&w, S2F_TAG(0x0008, 0x0100), "SH", "AB");
    size_t off = w.n;
    elem(&w, S2F_TAG(0x0008, 0x0104), "LO", "thirteen char", 13);
    put(&w, " ", 1);
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_EFORMAT);
    char want[80];
    snprintf(want, sizeof want, "odd length 13 of element (0008,0104) at offset %zu", off);
    CHECK_STR(r.err.message, want);
    done(&r, &w);
}

TEST(m1_unknown_vr_and_undefined_length_on_a_string)
{
    writer w = {0};
    w.explicit_vr = 1;
    elem_str(&w, S2F_TAG(0x0008, 0x0005), "CS", "ISO_IR 6");
    size_t off = w.n;
    elem(&w, S2F_TAG(0x0008, 0x0018), "XY", "12", 2);
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_EFORMAT);
    char want[100];
    snprintf(want, sizeof want, "element (0008,0018) at offset %zu has an unknown VR (bytes 0x58 "
             "0x59)", off);
    CHECK_STR(r.err.message, want);
    done(&r, &w);

    w = (writer){0};
    w.explicit_vr = 1;
    elem_str(&w, S2F_TAG(0x0008, 0x0018), "UI", "1.2.3.4");
    header(&w, S2F_TAG(0x0040, 0xA160), "UT", 0xFFFFFFFFu);
    put(&w, "abcdefgh", 8);
    read_buf(&r, &w);
    CHECK(r.rc == S2F_EFORMAT && msg_has(&r, "(0040,A160) with VR UT at offset 16 has undefined"));
    done(&r, &w);
}

TEST(m1_item_longer_than_its_sequence)
{
    writer w = {0};
    w.explicit_vr = 1;
    header(&w, S2F_TAG(0x0040, 0xA730), "SQ", 16);
    size_t off = w.n;
    put_tag(&w, S2F_TAG(0xFFFE, 0xE000));
    put32(&w, 40);
    elem_str(&w, S2F_TAG(0x0040, 0xA040), "CS", "TEXT");
    elem_str(&w, S2F_TAG(0x0040, 0xA160), "UT", "0123456789012345678");
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_EFORMAT);
    char want[64];
    snprintf(want, sizeof want, "item length 40 at offset %zu exceeds", off);
    CHECK(msg_has(&r, want));
    done(&r, &w);
}

TEST(m1_missing_delimiters_at_the_end)
{
    for (int cut = 0; cut < 3; cut++) {
        writer w = {0};
        w.explicit_vr = w.undef_seq = w.undef_item = 1;
        elem_str(&w, S2F_TAG(0x0008, 0x0018), "UI", "1.2.3.4");
        size_t off = w.n;
        seq_begin(&w, S2F_TAG(0x0040, 0xA730));
        item_begin(&w);
        elem_str(&w, S2F_TAG(0x0040, 0xA040), "CS", "TEXT");
        if (cut >= 1) {
            put_tag(&w, S2F_TAG(0xFFFE, 0xE00D));
            put32(&w, 0);
        }
        if (cut == 2) { /* half a delimiter */
            put_tag(&w, S2F_TAG(0xFFFE, 0xE0DD));
        }
        result r;
        read_buf(&r, &w);
        CHECK(r.rc == S2F_EFORMAT);
        char want[80];
        snprintf(want, sizeof want, "data ends inside a sequence started at offset %zu", off);
        CHECK(msg_has(&r, want));
        done(&r, &w);
    }
}

TEST(m1_truncated_header)
{
    writer w = content(1, 0, 0);
    put(&w, "\x08\x00\x30", 3);
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_EFORMAT && msg_has(&r, "data ends inside the header of an element"));
    done(&r, &w);
}

/* nesting levels of (0040,A730) SQ, each with one undefined-length item */
static writer deep_nesting(int levels, int explicit_vr)
{
    writer w = {0};
    w.explicit_vr = explicit_vr;
    w.undef_seq = w.undef_item = 1;
    for (int i = 0; i < levels; i++) {
        seq_begin(&w, S2F_TAG(0x0040, 0xA730));
        item_begin(&w);
    }
    for (int i = 0; i < levels; i++) {
        item_end(&w, 0);
        seq_end(&w, 0);
    }
    return w;
}

TEST(m1_deep_nesting_is_refused)
{
    for (int explicit_vr = 0; explicit_vr < 2; explicit_vr++) {
        writer w = deep_nesting(10000, explicit_vr);
        result r;
        read_buf(&r, &w);
        CHECK(r.rc == S2F_ELIMIT);
        CHECK(msg_has(&r, "sequences nested deeper than 128 levels at offset"));
        done(&r, &w);
    }
    writer w = deep_nesting(128, 1);
    result r;
    read_buf(&r, &w);
    CHECK(r.rc == S2F_OK);
    done(&r, &w);
    w = deep_nesting(5, 1);
    read_with(&r, w.d, w.n, 0, 4, 0, 0);
    CHECK(r.rc == S2F_ELIMIT && msg_has(&r, "deeper than 4 levels"));
    done(&r, &w);
}

TEST(m1_inflate_bomb_is_limited)
{
    writer big = {0};
    big.explicit_vr = 1;
    size_t n = (size_t)8 << 20;
    uint8_t *zeros = calloc(1, n);
    header(&big, S2F_TAG(0x0042, 0x0011), "OB", (uint32_t)n);
    put(&big, zeros, n);
    free(zeros);
    writer z = deflate_raw(&big);
    free(big.d);
    writer f = part10("1.2.840.10008.1.2.1.99", &z);
    free(z.d);
    result r;
    read_with(&r, f.d, f.n, 0, 0, (size_t)1 << 20, 0);
    CHECK(r.rc == S2F_ELIMIT);
    CHECK_STR(r.err.message, "deflated data set inflates beyond 1048576 bytes");
    CHECK(s2f_arena_used(r.arena) < ((size_t)1 << 20));
    done(&r, NULL);
    read_with(&r, f.d, f.n, 0, 0, (size_t)16 << 20, 0);
    CHECK(r.rc == S2F_OK && r.ds->n == 6);
    done(&r, &f);
}

TEST(m1_corrupt_deflate)
{
    writer body = {0};
    put(&body, "\xff\xff\xff\xff garbage that is not deflate", 32);
    writer f = part10("1.2.840.10008.1.2.1.99", &body);
    result r;
    read_buf(&r, &f);
    CHECK(r.rc == S2F_EFORMAT && msg_has(&r, "corrupt or truncated"));
    done(&r, &f);
    free(body.d);
}

TEST(m1_memory_budget)
{
    writer w = {0};
    w.explicit_vr = 1;
    size_t sq = seq_begin(&w, S2F_TAG(0x0040, 0xA730));
    for (int i = 0; i < 20000; i++) {
        size_t it = item_begin(&w);
        elem_str(&w, S2F_TAG(0x0040, 0xA040), "CS", "TEXT");
        item_end(&w, it);
    }
    seq_end(&w, sq);
    result r;
    read_with(&r, w.d, w.n, 100000, 0, 0, 0);
    CHECK(r.rc == S2F_ELIMIT && msg_has(&r, "memory limit"));
    done(&r, NULL);
    read_with(&r, w.d, w.n, 0, 0, 0, 0);
    CHECK(r.rc == S2F_OK);
    CHECK(s2f_arena_used(r.arena) < 16 * w.n); /* a small multiple of the input */
    done(&r, &w);
}

/* ---- tests: the shared corpus ----------------------------------------------------------------- */

static char *load_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *d = malloc(size > 0 ? (size_t)size + 1 : 1);
    *n = d && size > 0 ? fread(d, 1, (size_t)size, f) : 0;
    if (d)
        d[*n] = 0;
    fclose(f);
    return d;
}

static const char *shared_dir(void)
{
    const char *s = getenv("SHARED");
    return s && *s ? s : "../shared";
}

/* sop_instance_uid of `name` from INVENTORY.tsv (copied into out). */
static int inventory_uid(const char *inventory, const char *name, char *out, size_t cap)
{
    const char *line = strchr(inventory, '\n');
    int col = 0;
    for (const char *p = inventory; p < line && *p; p++) /* which column is the UID */
        if (*p == '\t')
            col++;
        else if (strncmp(p, "sop_instance_uid", 16) == 0)
            break;
    while (line && *++line) {
        size_t len = strlen(name);
        if (strncmp(line, name, len) == 0 && line[len] == '\t') {
            const char *f = line;
            for (int c = 0; c < col && f; c++)
                f = strchr(f, '\t') ? strchr(f, '\t') + 1 : NULL;
            if (!f)
                return 0;
            size_t k = strcspn(f, "\t\n");
            if (k >= cap)
                return 0;
            memcpy(out, f, k);
            out[k] = 0;
            return 1;
        }
        line = strchr(line, '\n');
    }
    return 0;
}

typedef void corpus_fn(const char *name, const uint8_t *d, size_t n, const char *inventory,
                       int *failures);

/* Runs fn on every .dcm of the corpus; returns the number of files, -1 without corpus. */
static int for_each_corpus_file(corpus_fn *fn, int *failures)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/corpus/files", shared_dir());
    DIR *dir = opendir(path);
    if (!dir)
        return -1;
    snprintf(path, sizeof path, "%s/corpus/INVENTORY.tsv", shared_dir());
    size_t inv_n;
    char *inventory = load_file(path, &inv_n);
    int count = 0;
    struct dirent *de;
    while (inventory && (de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 4, ".dcm") != 0)
            continue;
        snprintf(path, sizeof path, "%s/corpus/files/%s", shared_dir(), de->d_name);
        size_t n;
        char *d = load_file(path, &n);
        if (!d) {
            printf("# cannot read %s\n", path);
            ++*failures;
            continue;
        }
        fn(de->d_name, (const uint8_t *)d, n, inventory, failures);
        free(d);
        count++;
    }
    closedir(dir);
    free(inventory);
    return inventory ? count : -1;
}

static void check_corpus_file(const char *name, const uint8_t *d, size_t n, const char *inventory,
                              int *failures)
{
    char want[256];
    result r;
    read_with(&r, d, n, 64 * n + ((size_t)64 << 20), 0, 0, 0);
    if (r.rc != S2F_OK) {
        printf("# %s: rc=%d %s\n", name, r.rc, r.err.message);
        ++*failures;
    } else if (!inventory_uid(inventory, name, want, sizeof want) ||
               !str_is(r.ds, S2F_TAG(0x0008, 0x0018), want)) {
        printf("# %s: SOP Instance UID differs from INVENTORY.tsv\n", name);
        ++*failures;
    }
    done(&r, NULL);
}

static void cut_corpus_file(const char *name, const uint8_t *d, size_t n, const char *inventory,
                            int *failures)
{
    (void)inventory;
    for (size_t len = 0; len < n; len += 97) {
        uint8_t *copy = malloc(len ? len : 1); /* exact size, so ASan sees any overread */
        memcpy(copy, d, len);
        result r;
        read_with(&r, copy, len, 0, 0, 0, 0);
        if (r.rc != S2F_OK && r.rc != S2F_EFORMAT && r.rc != S2F_ELIMIT) {
            printf("# %s cut at %zu: rc=%d %s\n", name, len, r.rc, r.err.message);
            ++*failures;
        }
        if (r.rc != S2F_OK && (!r.err.message[0] || strchr(r.err.message, '\n'))) {
            printf("# %s cut at %zu: bad message\n", name, len);
            ++*failures;
        }
        done(&r, NULL);
        free(copy);
    }
}

TEST(m1_corpus_files_read)
{
    int failures = 0;
    int count = for_each_corpus_file(check_corpus_file, &failures);
    if (count < 0)
        SKIP("no shared corpus ($SHARED/corpus/files and INVENTORY.tsv)");
    CHECK(count > 0);
    CHECK(failures == 0);
}

TEST(m1_corpus_prefixes_never_crash)
{
    int failures = 0;
    int count = for_each_corpus_file(cut_corpus_file, &failures);
    if (count < 0)
        SKIP("no shared corpus ($SHARED/corpus/files and INVENTORY.tsv)");
    CHECK(failures == 0);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

TEST(m1_large_report_reads_in_bounded_memory)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/corpus/files/tid1500__dcmqi__rsna2018_ds3_848792.dcm",
             shared_dir());
    size_t n;
    char *d = load_file(path, &n);
    if (!d)
        SKIP("no shared corpus file tid1500__dcmqi__rsna2018_ds3_848792.dcm");
    double best = 1e9;
    size_t used = 0;
    for (int i = 0; i < 5; i++) {
        result r;
        double t0 = now_ms();
        read_with(&r, d, n, 0, 0, 0, 0);
        double t = now_ms() - t0;
        best = t < best ? t : best;
        used = s2f_arena_used(r.arena);
        int ok = r.rc == S2F_OK;
        done(&r, NULL);
        if (!ok) {
            free(d);
            CHECK(ok);
        }
    }
    printf("# %zu bytes read in %.2f ms, arena %zu bytes\n", n, best, used);
    free(d);
    /* no bound on the time (issue 9 defect 11: wall-clock assertions fail on a busy
     * machine; bench/ keeps timings): the memory it takes is what is asserted */
    CHECK(used < 8 * n);
}

int main(void)
{
    RUN(dictionary_lookups);
    RUN(m1_four_transfer_syntaxes_read_the_same);
    RUN(m1_bare_implicit_data_set);
    RUN(m1_bare_explicit_data_sets);
    RUN(m1_dicm_at_offset_0_and_meta_without_prefix);
    RUN(m1_declared_explicit_but_implicit_data);
    RUN(m1_encapsulated_and_unknown_transfer_syntax_read_as_explicit_le);
    RUN(m1_big_endian_values_are_swapped);
    RUN(m1_values_point_into_the_input);
    RUN(m1_un_holding_a_sequence);
    RUN(m1_implicit_private_sequence);
    RUN(m1_un_that_only_looks_like_a_sequence_stays_bytes);
    RUN(m1_out_of_order_and_duplicates);
    RUN(m1_trailing_zero_padding_is_ignored);
    RUN(m1_encapsulated_pixel_data_is_skipped);
    RUN(m1_zero_runs_are_read_in_linear_time);
    RUN(m1_not_dicom);
    RUN(m1_length_past_the_end);
    RUN(m1_length_past_the_end_of_an_item);
    RUN(m1_odd_length);
    RUN(m1_unknown_vr_and_undefined_length_on_a_string);
    RUN(m1_item_longer_than_its_sequence);
    RUN(m1_missing_delimiters_at_the_end);
    RUN(m1_truncated_header);
    RUN(m1_deep_nesting_is_refused);
    RUN(m1_inflate_bomb_is_limited);
    RUN(m1_corrupt_deflate);
    RUN(m1_memory_budget);
    RUN(m1_corpus_files_read);
    RUN(m1_corpus_prefixes_never_crash);
    RUN(m1_large_report_reads_in_bounded_memory);
    CHECK_DONE();
}
