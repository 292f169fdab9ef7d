/*
 * test_dicomjson.c - unit tests of the DICOM JSON reader (src/dicom/dicomjson.c, rule M1):
 * value mapping per VR, lenient cases and their strict refusal, malformed JSON, limits,
 * and the JSON files of the shared corpus when ../shared is present.
 */
#include "check.h"
#include "dicom/dataset.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One read at a time; the previous read's arena is freed by the next read (or by main). */
static s2f_arena *g_arena;
static s2f_warnings g_warn;
static s2f_error g_err;
static s2f_ds *g_ds;
static int g_strict;
static unsigned g_max_depth = 128;
static size_t g_budget;
static const char *g_ts;

static void reset(void)
{
    s2f_arena_free(g_arena);
    g_arena = NULL;
    g_ds = NULL;
}

static s2f_code rd_n(const void *data, size_t len)
{
    reset();
    g_arena = s2f_arena_new(g_budget);
    memset(&g_warn, 0, sizeof g_warn);
    g_warn.arena = g_arena;
    memset(&g_err, 0, sizeof g_err);
    s2f_read_ctx ctx = {.arena = g_arena, .warnings = &g_warn, .max_depth = g_max_depth,
                        .strict = g_strict};
    s2f_code rc = s2f_dicomjson_read(data, len, &ctx, &g_ds, &g_err);
    g_ts = ctx.transfer_syntax;
    return rc;
}

static s2f_code rd(const char *json) { return rd_n(json, strlen(json)); }

static int has_warning(const char *needle)
{
    for (size_t i = 0; i < g_warn.n; i++)
        if (strstr(g_warn.list[i].message, needle))
            return 1;
    return 0;
}

static int err_has(const char *needle) { return strstr(g_err.message, needle) != NULL; }

/* Value `index` of a string element of `ds` as a NUL-terminated string (static buffer). */
static const char *str_in(const s2f_ds *ds, uint32_t tag, uint32_t index)
{
    static char buf[256];
    const uint8_t *p;
    size_t n;
    if (!s2f_elem_string_raw(s2f_ds_find(ds, tag), index, &p, &n) || n >= sizeof buf)
        return NULL;
    memcpy(buf, p, n);
    buf[n] = 0;
    return buf;
}

static const char *str_at(uint32_t tag, uint32_t index) { return str_in(g_ds, tag, index); }

/* Whole raw value of an element as a string (static buffer). */
static const char *raw(const s2f_ds *ds, uint32_t tag)
{
    static char buf[256];
    const s2f_elem *e = s2f_ds_find(ds, tag);
    if (!e || e->len >= sizeof buf)
        return NULL;
    if (e->len)
        memcpy(buf, e->val, e->len);
    buf[e->len] = 0;
    return buf;
}

/* ---- mapping of values ---------------------------------------------------------------- */

TEST(m1_strings_with_multiplicity)
{
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"SR\"]},"
             "\"00080008\":{\"vr\":\"CS\",\"Value\":[\"ORIGINAL\",null,\"AXIAL\"]},"
             "\"00081030\":{\"vr\":\"LO\",\"Value\":[\"Caf\\u00e9 \\\\ x\"]},"
             "\"00080050\":{\"vr\":\"SH\"}}") == S2F_OK);
    CHECK(g_ds && g_ds->utf8 == 1 && g_ds->parent == NULL);
    CHECK_STR(g_ts, "DICOM-JSON");
    CHECK_STR(str_at(S2F_TAG(0x0008, 0x0060), 0), "SR");
    const s2f_elem *e = s2f_ds_find(g_ds, S2F_TAG(0x0008, 0x0008));
    CHECK(e && e->vr == S2F_VR('C', 'S') && s2f_elem_string_count(e) == 3);
    CHECK_STR(raw(g_ds, S2F_TAG(0x0008, 0x0008)), "ORIGINAL\\\\AXIAL");
    CHECK_STR(str_at(S2F_TAG(0x0008, 0x0008), 1), "");
    CHECK_STR(raw(g_ds, S2F_TAG(0x0008, 0x1030)), "Caf\xc3\xa9 \\ x");
    CHECK(g_warn.n == 1 && has_warning("$[\"00081030\"].Value[0]") && has_warning("backslash"));
    e = s2f_ds_find(g_ds, S2F_TAG(0x0008, 0x0050));
    CHECK(e && e->len == 0 && e->val == NULL && !e->is_seq);
    /* ascending tag order */
    CHECK(g_ds->n == 4);
    for (uint32_t i = 1; i < g_ds->n; i++)
        CHECK(g_ds->elems[i - 1].tag < g_ds->elems[i].tag);
}

TEST(m1_person_name_groups)
{
    CHECK(rd("{\"00100010\":{\"vr\":\"PN\",\"Value\":["
             "{\"Alphabetic\":\"Yamada^Tarou\",\"Ideographic\":\"\xe5\xb1\xb1\xe7\x94\xb0^\","
             "\"Phonetic\":\"\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0\"},"
             "{\"Alphabetic\":\"Doe^John\"},"
             "{\"Phonetic\":\"P\"},"
             "{\"Alphabetic\":\"A\",\"Ideographic\":\"\"},"
             "null]}}") == S2F_OK);
    CHECK_STR(raw(g_ds, S2F_TAG(0x0010, 0x0010)),
              "Yamada^Tarou=\xe5\xb1\xb1\xe7\x94\xb0^=\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0"
              "\\Doe^John\\==P\\A\\");
    CHECK(s2f_elem_string_count(s2f_ds_find(g_ds, S2F_TAG(0x0010, 0x0010))) == 5);
    CHECK(g_warn.n == 0);
}

TEST(m1_ds_keeps_number_text)
{
    CHECK(rd("{\"00181050\":{\"vr\":\"DS\",\"Value\":[1.50,1e3,-0.0,12345678901234567890.5,"
             "\"2.5\",0.1E-2,7]}}") == S2F_OK);
    CHECK_STR(raw(g_ds, S2F_TAG(0x0018, 0x1050)),
              "1.50\\1e3\\-0.0\\12345678901234567890.5\\2.5\\0.1E-2\\7");
}

TEST(m1_is_keeps_integer_text_even_beyond_64_bits)
{
    /* json-c clamps integers outside int64/uint64 and turns -0 into 0: the reader must not */
    CHECK(rd("{\"00200013\":{\"vr\":\"IS\",\"Value\":[42,-7,\"12\",123456789012345678901234567890,"
             "-0,-98765432109876543210,18446744073709551615]}}") == S2F_OK);
    CHECK_STR(raw(g_ds, S2F_TAG(0x0020, 0x0013)),
              "42\\-7\\12\\123456789012345678901234567890\\-0\\-98765432109876543210"
              "\\18446744073709551615");
}

TEST(m1_lossy_integer_does_not_touch_strings)
{
    /* the pre-scan quotes long integers; digits inside strings must stay as they are */
    CHECK(rd("{\"00081030\":{\"vr\":\"LO\",\"Value\":[\"x 123456789012345678901234 'y\"]},"
             "\"00200013\":{\"vr\":\"IS\",\"Value\":[99999999999999999999999]},"
             "\"00204000\":{\"vr\":\"LT\",\"Value\":[\"\\\" -0 \\\\\"]}}") == S2F_OK);
    CHECK_STR(raw(g_ds, S2F_TAG(0x0008, 0x1030)), "x 123456789012345678901234 'y");
    CHECK_STR(raw(g_ds, S2F_TAG(0x0020, 0x0013)), "99999999999999999999999");
    CHECK_STR(raw(g_ds, S2F_TAG(0x0020, 0x4000)), "\" -0 \\");
    /* a string that looks like a quoted number stays a string */
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"\\u0001-0\"]}}") == S2F_OK);
    /* an error after a quoted number still names the right byte */
    CHECK(rd("{\"00200013\":{\"vr\":\"IS\",\"Value\":[99999999999999999999999]}} x") ==
          S2F_EFORMAT);
    CHECK(err_has("at byte 59"));
}

TEST(m1_binary_numbers_little_endian)
{
    s2f_code rc = rd("{\"00280010\":{\"vr\":\"US\",\"Value\":[512,65535,0]},"
             "\"00280106\":{\"vr\":\"SS\",\"Value\":[-32768]},"
             "\"0040A0B0\":{\"vr\":\"UL\",\"Value\":[4294967295,1e2]},"
             "\"00186020\":{\"vr\":\"SL\",\"Value\":[-2147483648]},"
             "\"0040A30A\":{\"vr\":\"FD\",\"Value\":[1.5,-2,1e300]},"
             "\"00720076\":{\"vr\":\"FL\",\"Value\":[0.25]},"
             "\"00189219\":{\"vr\":\"SV\",\"Value\":[-9223372036854775808]},"
             "\"00189220\":{\"vr\":\"UV\",\"Value\":[18446744073709551615]}}");
    CHECK(rc == S2F_OK);
    uint16_t u16;
    uint32_t u32;
    int32_t i32;
    double d;
    float f;
    const s2f_elem *e = s2f_ds_find(g_ds, S2F_TAG(0x0028, 0x0010));
    CHECK(e && e->len == 6 && e->val[0] == 0x00 && e->val[1] == 0x02);
    CHECK(s2f_elem_u16(e, 1, &u16) && u16 == 65535);
    e = s2f_ds_find(g_ds, S2F_TAG(0x0028, 0x0106));
    CHECK(e && e->len == 2 && e->val[0] == 0x00 && e->val[1] == 0x80);
    e = s2f_ds_find(g_ds, S2F_TAG(0x0040, 0xA0B0));
    CHECK(s2f_elem_u32(e, 0, &u32) && u32 == 4294967295u);
    CHECK(s2f_elem_u32(e, 1, &u32) && u32 == 100);
    e = s2f_ds_find(g_ds, S2F_TAG(0x0018, 0x6020));
    CHECK(s2f_elem_i32(e, 0, &i32) && i32 == INT32_MIN);
    e = s2f_ds_find(g_ds, S2F_TAG(0x0040, 0xA30A));
    CHECK(s2f_elem_binary_count(e) == 3);
    CHECK(s2f_elem_f64(e, 0, &d) && d == 1.5);
    CHECK(s2f_elem_f64(e, 1, &d) && d == -2.0);
    CHECK(s2f_elem_f64(e, 2, &d) && d == 1e300);
    CHECK(s2f_elem_f32(s2f_ds_find(g_ds, S2F_TAG(0x0072, 0x0076)), 0, &f) && f == 0.25f);
    e = s2f_ds_find(g_ds, S2F_TAG(0x0018, 0x9219));
    CHECK(e && e->len == 8 && e->val[7] == 0x80 && e->val[0] == 0);
    e = s2f_ds_find(g_ds, S2F_TAG(0x0018, 0x9220));
    CHECK(e && e->len == 8);
    for (int i = 0; i < 8; i++)
        CHECK(e->val[i] == 0xFF);
}

TEST(m1_binary_number_out_of_range_or_not_integer)
{
    CHECK(rd("{\"00280010\":{\"vr\":\"US\",\"Value\":[1,65536]}}") == S2F_EFORMAT);
    CHECK(err_has("$[\"00280010\"].Value[1]") && err_has("out of range"));
    CHECK(rd("{\"00280010\":{\"vr\":\"US\",\"Value\":[-1]}}") == S2F_EFORMAT);
    CHECK(rd("{\"00280010\":{\"vr\":\"US\",\"Value\":[1.5]}}") == S2F_EFORMAT);
    CHECK(err_has("not an integer"));
    CHECK(rd("{\"00280010\":{\"vr\":\"UL\",\"Value\":[\"12\"]}}") == S2F_EFORMAT);
    CHECK(err_has("expected a number") && err_has("got a string"));
    CHECK(rd("{\"00189220\":{\"vr\":\"UV\",\"Value\":[18446744073709551616]}}") == S2F_EFORMAT);
    CHECK(err_has("out of range"));
    CHECK(rd("{\"00189219\":{\"vr\":\"SV\",\"Value\":[-9223372036854775809]}}") == S2F_EFORMAT);
    CHECK(rd("{\"00720076\":{\"vr\":\"FL\",\"Value\":[1e300]}}") == S2F_EFORMAT);
    CHECK(err_has("out of range for VR FL"));
    CHECK(rd("{\"00280010\":{\"vr\":\"US\",\"Value\":[null]}}") == S2F_EFORMAT);
    CHECK(rd("{\"00280010\":{\"vr\":\"US\",\"Value\":[-0]}}") == S2F_OK);
    uint16_t u;
    CHECK(s2f_elem_u16(s2f_ds_find(g_ds, S2F_TAG(0x0028, 0x0010)), 0, &u) && u == 0);
}

TEST(m1_attribute_tag)
{
    CHECK(rd("{\"00209165\":{\"vr\":\"AT\",\"Value\":[\"00100010\",\"7FE00010\"]}}") == S2F_OK);
    const s2f_elem *e = s2f_ds_find(g_ds, S2F_TAG(0x0020, 0x9165));
    static const uint8_t want[8] = {0x10, 0x00, 0x10, 0x00, 0xE0, 0x7F, 0x10, 0x00};
    CHECK(e && e->len == 8 && memcmp(e->val, want, 8) == 0);
    CHECK(rd("{\"00209165\":{\"vr\":\"AT\",\"Value\":[\"0010001\"]}}") == S2F_EFORMAT);
    CHECK(err_has("$[\"00209165\"].Value[0]"));
    CHECK(rd("{\"00209165\":{\"vr\":\"AT\",\"Value\":[1048592]}}") == S2F_EFORMAT);
}

TEST(m1_sequences_nest)
{
    CHECK(rd("{\"0040A730\":{\"vr\":\"SQ\",\"Value\":["
             "{\"0040A010\":{\"vr\":\"CS\",\"Value\":[\"CONTAINS\"]},"
             " \"0040A730\":{\"vr\":\"SQ\",\"Value\":[{\"0040A040\":{\"vr\":\"CS\","
             "\"Value\":[\"TEXT\"]}}]}},"
             "{}]},"
             "\"00081111\":{\"vr\":\"SQ\"},"
             "\"00081115\":{\"vr\":\"SQ\",\"Value\":[]}}") == S2F_OK);
    const s2f_elem *e = s2f_ds_find(g_ds, S2F_TAG(0x0040, 0xA730));
    CHECK(e && e->is_seq && e->n_items == 2 && e->len == 0);
    const s2f_ds *item = s2f_ds_item(g_ds, S2F_TAG(0x0040, 0xA730), 0);
    CHECK(item && item->parent == g_ds && item->utf8 == 1);
    CHECK_STR(str_in(item, S2F_TAG(0x0040, 0xA010), 0), "CONTAINS");
    const s2f_ds *inner = s2f_ds_item(item, S2F_TAG(0x0040, 0xA730), 0);
    CHECK(inner && inner->parent == item);
    CHECK_STR(str_in(inner, S2F_TAG(0x0040, 0xA040), 0), "TEXT");
    const s2f_ds *empty = s2f_ds_item(g_ds, S2F_TAG(0x0040, 0xA730), 1);
    CHECK(empty && empty->n == 0);
    e = s2f_ds_find(g_ds, S2F_TAG(0x0008, 0x1111));
    CHECK(e && e->is_seq && e->n_items == 0 && e->items == NULL);
    e = s2f_ds_find(g_ds, S2F_TAG(0x0008, 0x1115));
    CHECK(e && e->is_seq && e->n_items == 0);
}

TEST(m1_inline_binary)
{
    CHECK(rd("{\"00420011\":{\"vr\":\"OB\",\"InlineBinary\":\"AQIDBA==\"},"
             "\"00660023\":{\"vr\":\"OW\",\"InlineBinary\":\"AAEC/w\"},"
             "\"00091010\":{\"vr\":\"UN\",\"InlineBinary\":\"\"}}") == S2F_OK);
    const s2f_elem *e = s2f_ds_find(g_ds, S2F_TAG(0x0042, 0x0011));
    CHECK(e && e->len == 4 && memcmp(e->val, "\x01\x02\x03\x04", 4) == 0);
    e = s2f_ds_find(g_ds, S2F_TAG(0x0066, 0x0023));
    CHECK(e && e->len == 4 && memcmp(e->val, "\x00\x01\x02\xff", 4) == 0);
    e = s2f_ds_find(g_ds, S2F_TAG(0x0009, 0x1010));
    CHECK(e && e->len == 0 && e->vr == S2F_VR('U', 'N'));
    CHECK(rd("{\"00420011\":{\"vr\":\"OB\",\"InlineBinary\":\"AQ*D\"}}") == S2F_EFORMAT);
    CHECK(err_has("$[\"00420011\"].InlineBinary") && err_has("base64"));
    CHECK(rd("{\"00420011\":{\"vr\":\"OB\",\"InlineBinary\":\"A\"}}") == S2F_EFORMAT);
    CHECK(rd("{\"00420011\":{\"vr\":\"OB\",\"InlineBinary\":\"AQ==AQ==\"}}") == S2F_EFORMAT);
    CHECK(rd("{\"00420011\":{\"vr\":\"OB\",\"InlineBinary\":12}}") == S2F_EFORMAT);
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"InlineBinary\":\"AQID\"}}") == S2F_EFORMAT);
    CHECK(rd("{\"00420011\":{\"vr\":\"OB\",\"Value\":[1]}}") == S2F_EFORMAT);
    CHECK(rd("{\"00420011\":{\"vr\":\"OB\",\"InlineBinary\":\"AQID\",\"BulkDataURI\":\"x\"}}") ==
          S2F_EFORMAT);
    CHECK(err_has("more than one"));
}

TEST(m1_bulk_data_uri_is_not_fetched)
{
    CHECK(rd("{\"00420011\":{\"vr\":\"OB\",\"BulkDataURI\":\"http://x/bulk/1\"}}") == S2F_OK);
    const s2f_elem *e = s2f_ds_find(g_ds, S2F_TAG(0x0042, 0x0011));
    CHECK(e && e->len == 0);
    CHECK(has_warning("http://x/bulk/1") && has_warning("not fetched"));
}

TEST(m1_top_level_array)
{
    CHECK(rd("[{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"SR\"]}}]") == S2F_OK);
    CHECK_STR(str_at(S2F_TAG(0x0008, 0x0060), 0), "SR");
    CHECK(rd("[{},{},{}]") == S2F_EUNSUPPORTED);
    CHECK(err_has("JSON array holds 3 data sets; one SR per input is read"));
    CHECK(rd("[]") == S2F_EFORMAT);
    CHECK(rd("[\"x\"]") == S2F_EFORMAT);
    CHECK(err_has("$[0]"));
    CHECK(rd("\"x\"") == S2F_EFORMAT);
    CHECK(rd("42") == S2F_EFORMAT);
    CHECK(rd("[{\"0040A730\":{\"vr\":\"SQ\",\"Value\":[{\"x\":1}]}}]") == S2F_EFORMAT);
    CHECK(err_has("at $[0][\"0040A730\"].Value[0]: member key \"x\""));
}

TEST(m1_bom_and_looks_like_json)
{
    static const char bom[] = "\xEF\xBB\xBF  {\"00080060\":{\"vr\":\"CS\",\"Value\":[\"SR\"]}}";
    CHECK(rd(bom) == S2F_OK);
    CHECK(s2f_dicomjson_looks_like((const uint8_t *)bom, sizeof bom - 1));
    CHECK(s2f_dicomjson_looks_like((const uint8_t *)" \r\n\t[", 5));
    CHECK(!s2f_dicomjson_looks_like((const uint8_t *)"DICM", 4));
    CHECK(!s2f_dicomjson_looks_like((const uint8_t *)"  ", 2));
    CHECK(!s2f_dicomjson_looks_like((const uint8_t *)"\xEF\xBB\xBF", 3));
    CHECK(!s2f_dicomjson_looks_like(NULL, 0));
}

/* ---- lenient cases (warning) and strict mode (refusal) ------------------------------------ */

TEST(m1_lenient_bare_value_string)
{
    const char *j = "{\"00080050\":{\"vr\":\"SH\",\"Value\":\"ACSN-235813\"}}";
    CHECK(rd(j) == S2F_OK);
    CHECK_STR(str_at(S2F_TAG(0x0008, 0x0050), 0), "ACSN-235813");
    CHECK(has_warning("$[\"00080050\"]") && has_warning("one-element array"));
    g_strict = 1;
    s2f_code rc = rd(j);
    g_strict = 0;
    CHECK(rc == S2F_EFORMAT && err_has("$[\"00080050\"]") && err_has("strict"));
}

TEST(m1_lenient_bare_value_number_and_object)
{
    const char *j = "{\"00280010\":{\"vr\":\"US\",\"Value\":512},"
                    "\"00081115\":{\"vr\":\"SQ\",\"Value\":{\"00080060\":{\"vr\":\"CS\","
                    "\"Value\":[\"SR\"]}}},"
                    "\"00100010\":{\"vr\":\"PN\",\"Value\":{\"Alphabetic\":\"A^B\"}}}";
    CHECK(rd(j) == S2F_OK);
    uint16_t u;
    CHECK(s2f_elem_u16(s2f_ds_find(g_ds, S2F_TAG(0x0028, 0x0010)), 0, &u) && u == 512);
    const s2f_ds *item = s2f_ds_item(g_ds, S2F_TAG(0x0008, 0x1115), 0);
    CHECK(item && item->parent == g_ds);
    CHECK_STR(str_in(item, S2F_TAG(0x0008, 0x0060), 0), "SR");
    CHECK_STR(raw(g_ds, S2F_TAG(0x0010, 0x0010)), "A^B");
    CHECK(g_warn.n == 3);
    g_strict = 1;
    s2f_code rc = rd(j);
    g_strict = 0;
    CHECK(rc == S2F_EFORMAT);
}

TEST(m1_lenient_person_name_string)
{
    const char *j = "{\"00100010\":{\"vr\":\"PN\",\"Value\":[\"Doe^Jane\",{\"Alphabetic\":\"X\"}]}}";
    CHECK(rd(j) == S2F_OK);
    CHECK_STR(raw(g_ds, S2F_TAG(0x0010, 0x0010)), "Doe^Jane\\X");
    CHECK(g_warn.n == 1 && has_warning("$[\"00100010\"].Value[0]") &&
          has_warning("Alphabetic"));
    g_strict = 1;
    s2f_code rc = rd(j);
    g_strict = 0;
    CHECK(rc == S2F_EFORMAT && err_has("$[\"00100010\"].Value[0]"));
}

TEST(m1_tag_order_and_duplicates)
{
    CHECK(rd("{\"00100020\":{\"vr\":\"LO\",\"Value\":[\"B\"]},"
             "\"00080060\":{\"vr\":\"CS\",\"Value\":[\"SR\"]},"
             "\"0008103e\":{\"vr\":\"LO\",\"Value\":[\"first\"]},"
             "\"0008103E\":{\"vr\":\"LO\",\"Value\":[\"second\"]}}") == S2F_OK);
    CHECK(g_ds->n == 3);
    CHECK(g_ds->elems[0].tag == S2F_TAG(0x0008, 0x0060));
    CHECK(g_ds->elems[1].tag == S2F_TAG(0x0008, 0x103E));
    CHECK(g_ds->elems[2].tag == S2F_TAG(0x0010, 0x0020));
    CHECK_STR(str_at(S2F_TAG(0x0008, 0x103E), 0), "first");
    CHECK(has_warning("twice"));
    for (uint32_t i = 0; i < g_ds->n; i++)
        CHECK(g_ds->elems[i].offset == 0);
}

/* ---- malformed input ---------------------------------------------------------------------- */

TEST(m1_invalid_json)
{
    CHECK(rd("{\"00080060\": {\"vr\": \"CS\",}}") == S2F_EFORMAT);
    CHECK(err_has("invalid JSON: ") && err_has("at byte 25"));
    CHECK(rd("{\"00080060\": {\"vr\": \"CS\"}} x") == S2F_EFORMAT);
    CHECK(rd("{} {}") == S2F_EFORMAT);
    CHECK(rd("{\"00080060\": {\"vr\": \"CS\", \"Value\": [\"SR\"") == S2F_EFORMAT);
    CHECK(err_has("invalid JSON"));
    CHECK(rd("") == S2F_EFORMAT);
    CHECK(rd("   ") == S2F_EFORMAT);
    CHECK(rd("{\"00080060\": {\"vr\": \"CS\", \"Value\": [\"\xff\"]}}") == S2F_EFORMAT);
    CHECK(rd_n("{}\0", 3) == S2F_EFORMAT);
    static const char nul_in_string[] = "{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"S\0R\"]}}";
    s2f_code rc = rd_n(nul_in_string, sizeof nul_in_string - 1); /* must not crash */
    CHECK(rc == S2F_OK || rc == S2F_EFORMAT);
    CHECK(rd_n(NULL, 0) == S2F_EFORMAT);
    CHECK(rd("{} \n\t\r ") == S2F_OK);
}

TEST(m1_wrong_types_name_the_path)
{
    CHECK(rd("{\"0040A730\":{\"vr\":\"SQ\",\"Value\":[{},{},{\"0040A043\":{\"Value\":[]}}]}}") ==
          S2F_EFORMAT);
    CHECK_STR(g_err.message, "at $[\"0040A730\"].Value[2][\"0040A043\"]: \"vr\" missing");
    CHECK(rd("{\"00080060\":{\"vr\":12}}") == S2F_EFORMAT);
    CHECK(err_has("$[\"00080060\"]") && err_has("\"vr\" is a number"));
    CHECK(rd("{\"00080060\":{\"vr\":\"cs\"}}") == S2F_EFORMAT);
    CHECK(rd("{\"00080060\":{\"vr\":\"XX\"}}") == S2F_EFORMAT);
    CHECK(err_has("not a DICOM VR"));
    CHECK(rd("{\"00080060\":{\"vr\":\"CSS\"}}") == S2F_EFORMAT);
    CHECK(rd("{\"0008\\n060\":{\"vr\":\"CS\"}}") == S2F_EFORMAT);
    CHECK(err_has("\"0008\\x0A060\"") && !strchr(g_err.message, '\n')); /* escaped: issue 9 #8 */
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"Value\":{\"a\":1}}}") == S2F_EFORMAT);
    CHECK(err_has("$[\"00080060\"].Value[0]") && err_has("got an object"));
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"Value\":[true]}}") == S2F_EFORMAT);
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"Value\":[12]}}") == S2F_EFORMAT);
    CHECK(err_has("expected a string for VR CS"));
    CHECK(rd("{\"0040A730\":{\"vr\":\"SQ\",\"Value\":[\"item\"]}}") == S2F_EFORMAT);
    CHECK(err_has("$[\"0040A730\"].Value[0]") && err_has("sequence item object"));
    CHECK(rd("{\"00080060\":\"SR\"}") == S2F_EFORMAT);
    CHECK(err_has("$[\"00080060\"]") && err_has("got a string"));
    CHECK(rd("{\"0008006\":{\"vr\":\"CS\"}}") == S2F_EFORMAT);
    CHECK(err_has("at $: member key \"0008006\""));
    CHECK(rd("{\"0008006G\":{\"vr\":\"CS\"}}") == S2F_EFORMAT);
    CHECK(rd("{\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":1}]}}") == S2F_EFORMAT);
    CHECK(err_has("$[\"00100010\"].Value[0]") && err_has("Alphabetic"));
    CHECK(rd("{\"00100010\":{\"vr\":\"PN\",\"Value\":[[\"x\"]]}}") == S2F_EFORMAT);
    CHECK(rd("{\"00420011\":{\"vr\":\"OB\",\"BulkDataURI\":5}}") == S2F_EFORMAT);
}

/* ---- limits ------------------------------------------------------------------------------- */

static char *repeat_wrap(const char *open, const char *close, size_t n, const char *middle)
{
    size_t lo = strlen(open), lc = strlen(close), lm = strlen(middle);
    char *s = malloc(n * (lo + lc) + lm + 1), *p = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, middle, lm);
    p += lm;
    for (size_t i = 0; i < n; i++, p += lc)
        memcpy(p, close, lc);
    *p = 0;
    return s;
}

TEST(m1_deep_json_nesting_is_a_limit)
{
    char *s = repeat_wrap("[", "]", 10000, "");
    CHECK(s);
    s2f_code rc = rd(s);
    free(s);
    CHECK(rc == S2F_ELIMIT && err_has("JSON nested deeper than 520 levels at byte"));
    s = repeat_wrap("{\"0040A730\":{\"vr\":\"SQ\",\"Value\":[", "]}}", 10000, "{}");
    CHECK(s);
    rc = rd(s);
    free(s);
    CHECK(rc == S2F_ELIMIT);
}

TEST(m1_sequence_depth_limit)
{
    g_max_depth = 2;
    char *two = repeat_wrap("{\"0040A730\":{\"vr\":\"SQ\",\"Value\":[", "]}}", 2, "{}");
    char *three = repeat_wrap("{\"0040A730\":{\"vr\":\"SQ\",\"Value\":[", "]}}", 3, "{}");
    s2f_code rc2 = two ? rd(two) : S2F_EINTERNAL;
    s2f_code rc3 = three ? rd(three) : S2F_EINTERNAL;
    free(two);
    free(three);
    g_max_depth = 128;
    CHECK(rc2 == S2F_OK);
    CHECK(rc3 == S2F_ELIMIT && err_has("sequences nested deeper than 2 levels"));
}

TEST(m1_memory_budget)
{
    size_t n = 20000;
    char *big = malloc(n * 40 + 16), *p = big;
    CHECK(big);
    p += sprintf(p, "{");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s\"%08zX\":{\"vr\":\"LO\",\"Value\":[\"v\"]}", i ? "," : "", i + 8);
    sprintf(p, "}");
    g_budget = 64 * 1024;
    s2f_code rc = rd(big);
    g_budget = 0;
    free(big);
    CHECK(rc == S2F_ELIMIT && err_has("memory limit"));
}

/* Issue 9 defect 2: the data set is built from parser events, with no document tree, so
 * dense JSON costs only what the data set holds (in the arena, under its budget). */
TEST(m1_dense_json_read_within_the_memory_budget)
{
    /* 200,000 empty items: 600 kB of text that json-c's DOM turned into ~160 MB */
    size_t n = 200000;
    char *big = malloc(3 * n + 64), *p = big;
    CHECK(big);
    p += sprintf(p, "{\"0040A730\":{\"vr\":\"SQ\",\"Value\":[");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s{}", i ? "," : "");
    sprintf(p, "]}}");
    g_budget = 24 * 1024 * 1024;
    s2f_code rc = rd(big);
    CHECK(rc == S2F_OK && g_ds->n == 1 && g_ds->elems[0].n_items == n);
    g_budget = 1024 * 1024;
    rc = rd(big);
    g_budget = 0;
    free(big);
    CHECK(rc == S2F_ELIMIT && err_has("memory limit"));
}

/* ---- issue 9: the streaming reader (defect 2), NUL and duplicate keys (defect 9) ----------- */

/* 1 when two data sets hold the same elements, values and items. */
static int ds_equal(const s2f_ds *a, const s2f_ds *b)
{
    if (!a || !b || a->n != b->n || a->utf8 != b->utf8)
        return 0;
    for (uint32_t i = 0; i < a->n; i++) {
        const s2f_elem *x = &a->elems[i], *y = &b->elems[i];
        if (x->tag != y->tag || x->vr != y->vr || x->is_seq != y->is_seq)
            return 0;
        if (x->is_seq) {
            if (x->n_items != y->n_items)
                return 0;
            for (uint32_t k = 0; k < x->n_items; k++)
                if (!ds_equal(x->items[k], y->items[k]) || x->items[k]->parent != a ||
                    y->items[k]->parent != b)
                    return 0;
        } else if (x->len != y->len || (x->len && memcmp(x->val, y->val, x->len) != 0)) {
            return 0;
        }
    }
    return 1;
}

/* Reads `json` into its own arena (the caller frees it) feeding `chunk` bytes at a time. */
static s2f_code rd_chunked(const char *json, size_t chunk, s2f_arena **arena, s2f_ds **ds,
                           size_t *warnings)
{
    static s2f_warnings w;
    s2f_error err;
    *arena = s2f_arena_new(0);
    memset(&w, 0, sizeof w);
    w.arena = *arena;
    s2f_read_ctx ctx = {.arena = *arena, .warnings = &w, .max_depth = 128};
    s2f_code rc = s2f_dicomjson_read_chunked((const uint8_t *)json, strlen(json), &ctx, ds, &err,
                                             chunk);
    *warnings = w.n;
    return rc;
}

/* Every token kind split across two chunks, at every position: the same data set. */
static const char chunk_doc[] =
    "\xef\xbb\xbf {\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 192\"]},"
    "\"00081030\":{\"vr\":\"LO\",\"Value\":[\"Caf\\u00e9 \\\"q\\\" \\ud83d\\ude00 \\/ x\"]},"
    "\"00100010\":{\"Value\":[{\"Alphabetic\":\"Doe^Jane\",\"Ideographic\":\"\xe5\xb1\xb1\"}],"
    "\"vr\":\"PN\"},"
    "\"00181050\":{\"vr\":\"DS\",\"Value\":[1.50, -0.0e-10, 12345678901234567890123]},"
    "\"00280010\":{\"vr\":\"US\",\"Value\":[65535, 1e2]},"
    "\"00189219\":{\"vr\":\"FD\",\"Value\":[-2.5E+3]},"
    "\"00420011\":{\"vr\":\"OB\",\"InlineBinary\":\"AAEC/w==\"},"
    "\"0040A730\":{\"Value\":[{\"0040A010\":{\"Value\":[\"CONTAINS\"],\"vr\":\"CS\"},"
    "\"0040A730\":{\"vr\":\"SQ\",\"Value\":[{\"0040A040\":{\"vr\":\"CS\",\"Value\":[\"TEXT\"]},"
    "\"0040A160\":{\"vr\":\"UT\",\"Value\":[null]}}]}},{}],\"vr\":\"SQ\"},"
    "\"00080060\":{\"vr\":\"CS\",\"Value\":[\"SR\"],\"x-extra\":[1,{\"a\":[true,false,null]}]}"
    "} \n";

TEST(issue9_d2_tokens_split_across_chunks)
{
    s2f_arena *ref_arena, *arena;
    s2f_ds *ref, *ds;
    size_t ref_warn, warn;
    CHECK(rd_chunked(chunk_doc, 0, &ref_arena, &ref, &ref_warn) == S2F_OK);
    CHECK(ref && ref->n == 9 && ref_warn == 1); /* the unknown member "x-extra" */
    size_t bad = 0;
    for (size_t chunk = 1; chunk <= 64 && ref; chunk++) {
        s2f_code rc = rd_chunked(chunk_doc, chunk, &arena, &ds, &warn);
        if (rc != S2F_OK || !ds_equal(ref, ds) || warn != ref_warn)
            bad = bad ? bad : chunk;
        s2f_arena_free(arena);
    }
    CHECK(bad == 0);
    s2f_arena_free(ref_arena);
    /* and the reference is right: escapes, numbers as written, PN groups, base64 */
    CHECK(rd(chunk_doc) == S2F_OK);
    CHECK_STR(raw(g_ds, S2F_TAG(0x0008, 0x1030)), "Caf\xc3\xa9 \"q\" \xf0\x9f\x98\x80 / x");
    CHECK_STR(raw(g_ds, S2F_TAG(0x0010, 0x0010)), "Doe^Jane=\xe5\xb1\xb1");
    CHECK_STR(raw(g_ds, S2F_TAG(0x0018, 0x1050)), "1.50\\-0.0e-10\\12345678901234567890123");
    const s2f_elem *us = s2f_ds_find(g_ds, S2F_TAG(0x0028, 0x0010));
    CHECK(us && us->len == 4 && us->val[0] == 0xFF && us->val[1] == 0xFF && us->val[2] == 100);
    const s2f_elem *ob = s2f_ds_find(g_ds, S2F_TAG(0x0042, 0x0011));
    CHECK(ob && ob->len == 4 && ob->val[3] == 0xFF);
    const s2f_ds *item = s2f_ds_item(g_ds, S2F_TAG(0x0040, 0xA730), 0);
    const s2f_ds *inner = item ? s2f_ds_item(item, S2F_TAG(0x0040, 0xA730), 0) : NULL;
    CHECK(inner && inner->parent == item && item->parent == g_ds);
    CHECK(s2f_ds_find(g_ds, S2F_TAG(0x0040, 0xA730))->n_items == 2);
}

/* pydicom writes keys sorted ("Value" before "vr"): the VR is found ahead in the text, or,
 * when that text is unusual (escaped key or VR), the value is recorded and replayed. */
TEST(issue9_d2_value_before_vr)
{
    static const char *const docs[] = {
        "{\"0040A730\":{\"vr\":\"SQ\",\"Value\":[{\"0040A043\":{\"vr\":\"SQ\",\"Value\":[{"
        "\"00080100\":{\"vr\":\"SH\",\"Value\":[\"121071\"]}}]},\"00100010\":{\"vr\":\"PN\","
        "\"Value\":[{\"Alphabetic\":\"A^B\"}]},\"00280010\":{\"vr\":\"US\",\"Value\":[7]}}]}}",
        "{\"0040A730\":{\"Value\":[{\"0040A043\":{\"Value\":[{\"00080100\":{\"Value\":"
        "[\"121071\"],\"vr\":\"SH\"}}],\"vr\":\"SQ\"},\"00100010\":{\"Value\":[{\"Alphabetic\":"
        "\"A^B\"}],\"vr\":\"PN\"},\"00280010\":{\"Value\":[7],\"vr\":\"US\"}}],\"vr\":\"SQ\"}}",
        "{\"0040A730\":{\"V\\u0061lue\":[{\"0040A043\":{\"Value\":[{\"00080100\":{\"Value\":"
        "[\"121071\"],\"vr\":\"S\\u0048\"}}],\"vr\":\"SQ\"},\"00100010\":{\"Value\":[{"
        "\"Alphabetic\":\"A^B\"}],\"x\":{\"vr\":\"CS\"},\"vr\":\"PN\"},\"00280010\":{\"Value\":[7],"
        "\"vr\":\"U\\u0053\"}}],\"vr\":\"SQ\"}}",
    };
    s2f_arena *arenas[3];
    s2f_ds *ds[3];
    size_t warn[3];
    for (int i = 0; i < 3; i++)
        CHECK(rd_chunked(docs[i], 5, &arenas[i], &ds[i], &warn[i]) == S2F_OK);
    CHECK(ds_equal(ds[0], ds[1]) && ds_equal(ds[0], ds[2]));
    CHECK(warn[0] == 0 && warn[1] == 0 && warn[2] == 1);
    for (int i = 0; i < 3; i++)
        s2f_arena_free(arenas[i]);
    /* a VR given after its value is still checked */
    CHECK(rd("{\"00080060\":{\"Value\":[\"SR\"],\"vr\":\"XX\"}}") == S2F_EFORMAT);
    CHECK(err_has("not a DICOM VR"));
    CHECK(rd("{\"00080060\":{\"Value\":[1],\"vr\":\"CS\"}}") == S2F_EFORMAT);
    CHECK(err_has("$[\"00080060\"].Value[0]") && err_has("expected a string for VR CS"));
}

/* 9#9: json-c read "S\u0000R" as "S"; a NUL cannot be in a DICOM value: refused. */
TEST(issue9_d9_nul_in_json_string_refused)
{
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"S\\u0000R\"]}}") == S2F_EFORMAT);
    CHECK(err_has("at $[\"00080060\"].Value[0]") && err_has("U+0000"));
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"SR\\u0000\"]}}") == S2F_EFORMAT);
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"SR\"],\"a\\u0000\":1}}") == S2F_EFORMAT);
    CHECK(rd("{\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"A\\u0000B\"}]}}") ==
          S2F_EFORMAT);
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"S\\u0001R\"]}}") == S2F_OK);
}

/* 9#9: a key given twice keeps the first value, with a warning (json-c kept the last). */
TEST(issue9_d9_duplicate_keys_keep_the_first)
{
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"A\"]},"
             "\"00080060\":{\"vr\":\"CS\",\"Value\":[\"B\"]}}") == S2F_OK);
    CHECK(g_ds->n == 1);
    CHECK_STR(str_at(S2F_TAG(0x0008, 0x0060), 0), "A");
    CHECK(has_warning("twice"));
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"A\"],\"Value\":[\"B\"]}}") == S2F_OK);
    CHECK_STR(str_at(S2F_TAG(0x0008, 0x0060), 0), "A");
    CHECK(has_warning("\"Value\" given twice; the first is kept"));
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"vr\":\"LO\",\"Value\":[\"A\"]}}") == S2F_OK);
    CHECK(g_ds->elems[0].vr == S2F_VR('C', 'S') && has_warning("\"vr\" given twice"));
    CHECK(rd("{\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"A^B\","
             "\"Alphabetic\":\"C^D\"}]}}") == S2F_OK);
    CHECK_STR(raw(g_ds, S2F_TAG(0x0010, 0x0010)), "A^B");
    CHECK(has_warning("group \"Alphabetic\" given twice"));
    CHECK(rd("{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"A\"],\"BulkDataURI\":\"x\"}}") ==
          S2F_EFORMAT);
    CHECK(err_has("more than one of"));
}

/* ---- the shared corpus -------------------------------------------------------------------- */

static char *shared_dir(void)
{
    const char *env = getenv("SHARED");
    const char *dir = env && *env ? env : "../shared";
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    closedir(d);
    return strdup(dir);
}

static uint8_t *load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static const char *expected_uid(const char *name)
{
    if (strstr(name, "dcmjs__sample-sr"))
        return "2.25.207531512123152126366313659525989051510";
    if (strstr(name, "Example-MeasurementReport"))
        return "1.2.840.113747.20080222.83311413144566317081790268995.1.1";
    return NULL;
}

/* Reads one file: S2F_OK, the expected SOP Instance UID, and prefixes cut every 97 bytes
 * that fail cleanly. Returns 0 on success, else a line number for the failure message. */
static int check_file(const char *path, const char *name)
{
    size_t len;
    uint8_t *data = load(path, &len);
    if (!data)
        return __LINE__;
    int bad = 0;
    const char *uid = expected_uid(name);
    if (rd_n(data, len) != S2F_OK)
        bad = __LINE__;
    else if (uid && strcmp(str_at(S2F_TAG(0x0008, 0x0018), 0) ? str_at(S2F_TAG(0x0008, 0x0018), 0)
                                                                 : "",
                             uid) != 0)
        bad = __LINE__;
    else if (strstr(name, "Example-MeasurementReport") && !has_warning("$[\"00080050\"]"))
        bad = __LINE__;
    size_t end = len;
    while (end > 0 && strchr(" \t\r\n", data[end - 1]))
        end--;
    for (size_t cut = 97; !bad && cut < end; cut += 97)
        if (rd_n(data, cut) == S2F_OK || g_ds != NULL)
            bad = __LINE__;
    free(data);
    return bad;
}

TEST(m1_shared_corpus_json)
{
    char *dir = shared_dir();
    if (!dir)
        SKIP("../shared not found (set SHARED to the shared checkout)");
    char path[4096], files[4096];
    snprintf(files, sizeof files, "%.3800s/corpus/files", dir);
    DIR *d = opendir(files);
    int seen = 0, bad = 0;
    char failed[256] = "";
    struct dirent *de;
    while (d && !bad && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        snprintf(path, sizeof path, "%.3800s/%.255s", files, de->d_name);
        bad = check_file(path, de->d_name);
        snprintf(failed, sizeof failed, "%.60s (%.180s)", de->d_name, g_err.message);
        seen++;
    }
    if (d)
        closedir(d);
    if (!bad) {
        snprintf(path, sizeof path, "%.3800s/ig/dicom/Example-MeasurementReport.json", dir);
        bad = check_file(path, "Example-MeasurementReport.json");
        snprintf(failed, sizeof failed, "ig Example-MeasurementReport.json (%.180s)", g_err.message);
        seen++;
    }
    free(dir);
    if (bad)
        fprintf(stderr, "corpus failure at test line %d: %s\n", bad, failed);
    CHECK(bad == 0);
    CHECK(seen >= 3);
}

int main(void)
{
    RUN(m1_strings_with_multiplicity);
    RUN(m1_person_name_groups);
    RUN(m1_ds_keeps_number_text);
    RUN(m1_is_keeps_integer_text_even_beyond_64_bits);
    RUN(m1_lossy_integer_does_not_touch_strings);
    RUN(m1_binary_numbers_little_endian);
    RUN(m1_binary_number_out_of_range_or_not_integer);
    RUN(m1_attribute_tag);
    RUN(m1_sequences_nest);
    RUN(m1_inline_binary);
    RUN(m1_bulk_data_uri_is_not_fetched);
    RUN(m1_top_level_array);
    RUN(m1_bom_and_looks_like_json);
    RUN(m1_lenient_bare_value_string);
    RUN(m1_lenient_bare_value_number_and_object);
    RUN(m1_lenient_person_name_string);
    RUN(m1_tag_order_and_duplicates);
    RUN(m1_invalid_json);
    RUN(m1_wrong_types_name_the_path);
    RUN(m1_deep_json_nesting_is_a_limit);
    RUN(m1_sequence_depth_limit);
    RUN(m1_memory_budget);
    RUN(m1_dense_json_read_within_the_memory_budget);
    RUN(issue9_d2_tokens_split_across_chunks);
    RUN(issue9_d2_value_before_vr);
    RUN(issue9_d9_nul_in_json_string_refused);
    RUN(issue9_d9_duplicate_keys_keep_the_first);
    RUN(m1_shared_corpus_json);
    reset();
    CHECK_DONE();
}
