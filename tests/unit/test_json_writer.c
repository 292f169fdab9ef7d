/*
 * test_json_writer.c - unit tests of the streaming JSON writer (src/json/writer.c):
 * exact output for structure (compact and pretty), string escaping, UTF-8 validation,
 * decimal strings, doubles, integers and misuse; then a large generated document read
 * back with an independent parser (json-c) and every value compared.
 */
#include <errno.h>
#include <float.h>
#include <iconv.h>
#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json/writer.h"
#include "sr2fhir.h"

/* ---- an in-memory output -------------------------------------------------------- */

typedef struct mem {
    char *buf;
    size_t len;
    FILE *f;
    s2f_sink sink;
    s2f_json j;
} mem;

static void mem_open(mem *m, int pretty)
{
    m->buf = NULL;
    m->len = 0;
    m->f = open_memstream(&m->buf, &m->len);
    s2f_sink_init(&m->sink, m->f);
    s2f_json_init(&m->j, &m->sink, pretty);
}

/* Everything written so far, NUL-terminated. */
static const char *mem_text(mem *m)
{
    s2f_sink_finish(&m->sink);
    return m->buf ? m->buf : "";
}

static void mem_close(mem *m)
{
    fclose(m->f);
    free(m->buf);
}

/* The output of one top-level string value; *replaced gets the replacement count. */
static char *one_string(const char *p, size_t n, size_t *replaced)
{
    mem m;
    mem_open(&m, 0);
    s2f_json_string_n(&m.j, p, n);
    *replaced = s2f_json_replaced(&m.j);
    char *out = s2f_json_error(&m.j) ? NULL : strdup(mem_text(&m));
    mem_close(&m);
    return out;
}

/* The output of one top-level decimal; *error gets the writer's error code. */
static char *one_decimal(const char *text, int *error)
{
    mem m;
    mem_open(&m, 0);
    s2f_json_decimal(&m.j, text);
    *error = s2f_json_error(&m.j);
    char *out = strdup(mem_text(&m));
    mem_close(&m);
    return out;
}

static char *one_double(double v, int *error)
{
    mem m;
    mem_open(&m, 0);
    s2f_json_double(&m.j, v);
    *error = s2f_json_error(&m.j);
    char *out = strdup(mem_text(&m));
    mem_close(&m);
    return out;
}

/* ---- structure ------------------------------------------------------------------- */

/* {"a":1,"b":[true,false,null,"x",{},[]],"c":{"d":[]},"e":-5} */
static void write_sample(s2f_json *j)
{
    s2f_json_begin_object(j);
    s2f_json_kv_int(j, "a", 1);
    s2f_json_kv_begin_array(j, "b");
    s2f_json_bool(j, 1);
    s2f_json_bool(j, 0);
    s2f_json_null(j);
    s2f_json_string(j, "x");
    s2f_json_begin_object(j);
    s2f_json_end_object(j);
    s2f_json_begin_array(j);
    s2f_json_end_array(j);
    s2f_json_end_array(j);
    s2f_json_kv_begin_object(j, "c");
    s2f_json_key(j, "d");
    s2f_json_begin_array(j);
    s2f_json_end_array(j);
    s2f_json_end_object(j);
    s2f_json_kv_int(j, "e", -5);
    s2f_json_end_object(j);
}

TEST(compact_nested)
{
    mem m;
    mem_open(&m, 0);
    write_sample(&m.j);
    CHECK(s2f_json_finish(&m.j) == 0);
    CHECK(s2f_json_error(&m.j) == 0);
    CHECK_STR(s2f_json_message(&m.j), "");
    CHECK_STR(mem_text(&m), "{\"a\":1,\"b\":[true,false,null,\"x\",{},[]],\"c\":{\"d\":[]},\"e\":-5}");
    mem_close(&m);
}

TEST(pretty_nested)
{
    mem m;
    mem_open(&m, 1);
    write_sample(&m.j);
    CHECK(s2f_json_finish(&m.j) == 0);
    CHECK(s2f_json_finish(&m.j) == 0); /* a second finish adds nothing */
    CHECK_STR(mem_text(&m), "{\n"
                            "  \"a\": 1,\n"
                            "  \"b\": [\n"
                            "    true,\n"
                            "    false,\n"
                            "    null,\n"
                            "    \"x\",\n"
                            "    {},\n"
                            "    []\n"
                            "  ],\n"
                            "  \"c\": {\n"
                            "    \"d\": []\n"
                            "  },\n"
                            "  \"e\": -5\n"
                            "}\n");
    mem_close(&m);
}

TEST(pretty_empty_and_scalar_documents)
{
    mem m;
    mem_open(&m, 1);
    s2f_json_begin_object(&m.j);
    s2f_json_end_object(&m.j);
    CHECK(s2f_json_finish(&m.j) == 0);
    CHECK_STR(mem_text(&m), "{}\n");
    mem_close(&m);

    mem_open(&m, 0);
    s2f_json_string(&m.j, "top");
    CHECK(s2f_json_finish(&m.j) == 0);
    CHECK_STR(mem_text(&m), "\"top\"");
    mem_close(&m);

    mem_open(&m, 1);
    s2f_json_begin_array(&m.j);
    s2f_json_begin_array(&m.j);
    s2f_json_int(&m.j, 1);
    s2f_json_end_array(&m.j);
    s2f_json_kv_string(&m.j, "never", NULL); /* NULL value: nothing, not even an error */
    s2f_json_end_array(&m.j);
    CHECK(s2f_json_finish(&m.j) == 0);
    CHECK(s2f_json_error(&m.j) == 0);
    CHECK_STR(mem_text(&m), "[\n  [\n    1\n  ]\n]\n");
    mem_close(&m);
}

TEST(key_value_helpers)
{
    mem m;
    mem_open(&m, 0);
    s2f_json_begin_object(&m.j);
    CHECK(s2f_json_kv_string(&m.j, "s", NULL) == 0);
    CHECK(s2f_json_kv_decimal(&m.j, "d", NULL) == 0);
    CHECK(s2f_json_kv_string(&m.j, "s", "v") == 0);
    CHECK(s2f_json_kv_string_n(&m.j, "n", "ab\0c", 4) == 0);
    CHECK(s2f_json_kv_int(&m.j, "i", -3) == 0);
    CHECK(s2f_json_kv_uint(&m.j, "u", 3) == 0);
    CHECK(s2f_json_kv_bool(&m.j, "b", 1) == 0);
    CHECK(s2f_json_kv_decimal(&m.j, "d", "+07.10") == 0);
    CHECK(s2f_json_kv_double(&m.j, "f", 0.5) == 0);
    CHECK(s2f_json_kv_begin_array(&m.j, "a") == 0);
    s2f_json_end_array(&m.j);
    CHECK(s2f_json_key(&m.j, "k\"\n") == 0); /* keys are escaped as well */
    s2f_json_null(&m.j);
    s2f_json_end_object(&m.j);
    CHECK(s2f_json_finish(&m.j) == 0);
    CHECK_STR(mem_text(&m), "{\"s\":\"v\",\"n\":\"ab\\u0000c\",\"i\":-3,\"u\":3,\"b\":true,"
                            "\"d\":7.10,\"f\":0.5,\"a\":[],\"k\\\"\\n\":null}");
    mem_close(&m);
}

TEST(kv_with_invalid_value_writes_no_key)
{
    mem m;
    mem_open(&m, 0);
    s2f_json_begin_object(&m.j);
    CHECK(s2f_json_kv_decimal(&m.j, "value", "NaN") == -1);
    CHECK(s2f_json_error(&m.j) == S2F_EFORMAT);
    CHECK_STR(mem_text(&m), "{");
    mem_close(&m);

    mem_open(&m, 0);
    s2f_json_begin_object(&m.j);
    CHECK(s2f_json_kv_double(&m.j, "value", NAN) == -1);
    CHECK(s2f_json_error(&m.j) == S2F_EFORMAT);
    CHECK_STR(mem_text(&m), "{");
    mem_close(&m);
}

/* ---- strings --------------------------------------------------------------------- */

TEST(escapes_every_control_character)
{
    char in[32];
    size_t replaced;
    for (int i = 0; i < 32; i++)
        in[i] = (char)i;
    char *out = one_string(in, sizeof in, &replaced);
    CHECK_STR(out, "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f"
                   "\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
                   "\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\"");
    CHECK(replaced == 0);
    free(out);
}

TEST(escapes_quote_and_backslash_only)
{
    size_t replaced;
    const char *in = "say \"hi\" C:\\dir/x \x7f~";
    char *out = one_string(in, strlen(in), &replaced);
    CHECK_STR(out, "\"say \\\"hi\\\" C:\\\\dir/x \x7f~\"");
    free(out);
    out = one_string("", 0, &replaced);
    CHECK_STR(out, "\"\"");
    free(out);
}

TEST(escapes_line_and_paragraph_separators)
{
    size_t replaced;
    /* U+2027, U+2028, U+2029, U+202A */
    const char *in = "a\xE2\x80\xA7" "b\xE2\x80\xA8" "c\xE2\x80\xA9" "d\xE2\x80\xAA";
    char *out = one_string(in, strlen(in), &replaced);
    CHECK_STR(out, "\"a\xE2\x80\xA7" "b\\u2028c\\u2029d\xE2\x80\xAA\"");
    CHECK(replaced == 0);
    free(out);
}

TEST(valid_multibyte_passes_through)
{
    size_t replaced;
    /* é, €, 😀, U+10FFFF, U+FFFF, U+E000, U+D7FF, U+0080, U+07FF, U+0800, U+10000 */
    const char *in = "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF\xEF\xBF\xBF\xEE\x80\x80"
                     "\xED\x9F\xBF\xC2\x80\xDF\xBF\xE0\xA0\x80\xF0\x90\x80\x80";
    char *out = one_string(in, strlen(in), &replaced);
    CHECK(out != NULL);
    CHECK(strlen(out) == strlen(in) + 2);
    CHECK(memcmp(out + 1, in, strlen(in)) == 0);
    CHECK(replaced == 0);
    free(out);
}

typedef struct bad_utf8 {
    const char *in, *out;
    size_t replaced;
} bad_utf8;

TEST(invalid_utf8_is_replaced_and_counted)
{
#define R "\xEF\xBF\xBD"
    static const bad_utf8 cases[] = {
        {"\xC0\xAF", "\"" R R "\"", 2},                 /* overlong '/' */
        {"\xE0\x80\xAF", "\"" R R R "\"", 3},           /* overlong, 3 bytes */
        {"\xF0\x80\x80\xAF", "\"" R R R R "\"", 4},     /* overlong, 4 bytes */
        {"x\xED\xA0\x80y", "\"x" R R R "y\"", 3},       /* high surrogate U+D800 */
        {"\xED\xBF\xBF", "\"" R R R "\"", 3},           /* low surrogate U+DFFF */
        {"\xF4\x90\x80\x80", "\"" R R R R "\"", 4},     /* above U+10FFFF */
        {"a\xE2\x82", "\"a" R "\"", 1},                 /* truncated at the end */
        {"\xE2\x82" "a", "\"" R "a\"", 1},              /* truncated before ASCII */
        {"\xF0\x9F\x98" "x", "\"" R "x\"", 1},          /* truncated 4-byte sequence */
        {"\xF0\x9F\x98\xE2\x82\xAC", "\"" R "\xE2\x82\xAC\"", 1}, /* truncated, then valid */
        {"\xFF", "\"" R "\"", 1},
        {"\xFE\xFF", "\"" R R "\"", 2},
        {"\x80", "\"" R "\"", 1},                       /* lone continuation byte */
        {"\xC3", "\"" R "\"", 1},
        {"\xF5\x80", "\"" R R "\"", 2},                 /* lead byte past U+10FFFF */
        {"\xC3\"", "\"" R "\\\"\"", 1},                 /* the quote still gets escaped */
    };
#undef R
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t replaced;
        char *out = one_string(cases[i].in, strlen(cases[i].in), &replaced);
        CHECK_STR(out, cases[i].out);
        CHECK(replaced == cases[i].replaced);
        free(out);
    }
}

TEST(replacements_accumulate_over_the_document)
{
    mem m;
    mem_open(&m, 0);
    s2f_json_begin_object(&m.j);
    s2f_json_kv_string(&m.j, "a\xFF", "\xC0\xAF");
    s2f_json_kv_string(&m.j, "b", "ok");
    s2f_json_end_object(&m.j);
    CHECK(s2f_json_replaced(&m.j) == 3);
    CHECK(s2f_json_error(&m.j) == 0);
    mem_close(&m);
}

TEST(long_string_crosses_the_sink_buffer)
{
    size_t n = 3 * S2F_SINK_BUFFER + 17, replaced;
    char *in = malloc(n), *want = malloc(2 * n + 3);
    CHECK(in && want);
    size_t k = 0;
    want[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        in[i] = i % 1000 == 999 ? '\n' : (char)('a' + i % 26);
        if (in[i] == '\n')
            want[k++] = '\\', want[k++] = 'n';
        else
            want[k++] = in[i];
    }
    want[k++] = '"';
    want[k] = 0;
    char *out = one_string(in, n, &replaced);
    CHECK(out && strcmp(out, want) == 0);
    free(out);
    free(in);
    free(want);
}

/* ---- numbers --------------------------------------------------------------------- */

TEST(decimal_forms_keep_their_digits)
{
    static const char *const cases[][2] = {
        {"+1.5", "1.5"},       {".5", "0.5"},          {"5.", "5"},
        {"1e3", "1e3"},        {"-0", "-0"},           {"007.50", "7.50"},
        {" 12 ", "12"},        {"0", "0"},             {"000", "0"},
        {"-000.000", "-0.000"}, {"-.5", "-0.5"},       {"+.5e-3", "0.5e-3"},
        {"1E+03", "1E+03"},    {"5.e2", "5e2"},        {"0.0", "0.0"},
        {"00.1", "0.1"},       {"1e-007", "1e-007"},   {"  -3.14159  ", "-3.14159"},
        {"12345678901234567890.123456789", "12345678901234567890.123456789"},
        {"+0.000000000000000000001", "0.000000000000000000001"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int error;
        CHECK(s2f_json_decimal_valid(cases[i][0], strlen(cases[i][0])));
        char *out = one_decimal(cases[i][0], &error);
        CHECK(error == 0);
        CHECK_STR(out, cases[i][1]);
        free(out);
    }
}

TEST(invalid_decimals_write_nothing)
{
    static const char *const cases[] = {
        "NaN", "nan", "Inf", "-Inf", "Infinity", "", "   ", "1.2.3", "--1", "+-1", ".",
        "-", "+", "e3", ".e3", "1e", "1e+", "1e+-3", "1 2", "0x10", "1,5", "1.5f", "\t1",
        "1e3.5", "١",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int error;
        CHECK(!s2f_json_decimal_valid(cases[i], strlen(cases[i])));
        char *out = one_decimal(cases[i], &error);
        CHECK(error == S2F_EFORMAT);
        CHECK_STR(out, "");
        free(out);
    }
    int error;
    char *out = one_decimal(NULL, &error);
    CHECK(error == S2F_EFORMAT);
    free(out);
    CHECK(!s2f_json_decimal_valid(NULL, 0));
    CHECK(s2f_json_decimal_valid("1.5xyz", 3)); /* only the first n bytes count */
}

TEST(invalid_decimal_is_sticky)
{
    mem m;
    mem_open(&m, 0);
    s2f_json_begin_array(&m.j);
    s2f_json_decimal(&m.j, "1");
    CHECK(s2f_json_decimal(&m.j, "1.2.3") == -1);
    CHECK(strstr(s2f_json_message(&m.j), "\"1.2.3\" is not a decimal") != NULL);
    CHECK(s2f_json_decimal(&m.j, "2") == -1);
    CHECK(s2f_json_end_array(&m.j) == -1);
    CHECK(s2f_json_finish(&m.j) == -1);
    CHECK(s2f_json_error(&m.j) == S2F_EFORMAT);
    CHECK_STR(mem_text(&m), "[1");
    mem_close(&m);
}

TEST(doubles_round_trip_shortest)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {1e300, "1e+300"},
        {-0.0, "-0"},
        {0.0, "0"},
        {1.0, "1"},
        {-2.5, "-2.5"},
        {123456789012345678.0, "1.2345678901234568e+17"},
        {1.0 / 3.0, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {1e-5, "1e-05"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int error;
        char *out = one_double(cases[i].v, &error);
        CHECK(error == 0);
        CHECK_STR(out, cases[i].text);
        free(out);
    }
}

TEST(non_finite_doubles_are_refused)
{
    const double bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < 3; i++) {
        int error;
        char *out = one_double(bad[i], &error);
        CHECK(error == S2F_EFORMAT);
        CHECK_STR(out, "");
        free(out);
    }
}

TEST(integer_extremes)
{
    mem m;
    mem_open(&m, 0);
    s2f_json_begin_array(&m.j);
    s2f_json_int(&m.j, INT64_MIN);
    s2f_json_int(&m.j, INT64_MAX);
    s2f_json_int(&m.j, 0);
    s2f_json_uint(&m.j, UINT64_MAX);
    s2f_json_uint(&m.j, 0);
    s2f_json_end_array(&m.j);
    CHECK(s2f_json_finish(&m.j) == 0);
    CHECK_STR(mem_text(&m),
              "[-9223372036854775808,9223372036854775807,0,18446744073709551615,0]");
    mem_close(&m);
}

/* ---- misuse ---------------------------------------------------------------------- */

typedef void (*misuse_fn)(s2f_json *j);

static void value_where_key_expected(s2f_json *j)
{
    s2f_json_begin_object(j);
    s2f_json_string(j, "v");
}
static void key_in_array(s2f_json *j)
{
    s2f_json_begin_array(j);
    s2f_json_key(j, "k");
}
static void key_at_top(s2f_json *j) { s2f_json_key(j, "k"); }
static void two_keys(s2f_json *j)
{
    s2f_json_begin_object(j);
    s2f_json_key(j, "a");
    s2f_json_key(j, "b");
}
static void end_object_in_array(s2f_json *j)
{
    s2f_json_begin_array(j);
    s2f_json_end_object(j);
}
static void end_array_at_top(s2f_json *j) { s2f_json_end_array(j); }
static void end_after_key(s2f_json *j)
{
    s2f_json_begin_object(j);
    s2f_json_key(j, "a");
    s2f_json_end_object(j);
}
static void second_top_value(s2f_json *j)
{
    s2f_json_int(j, 1);
    s2f_json_int(j, 2);
}
static void finish_open(s2f_json *j)
{
    s2f_json_begin_array(j);
    s2f_json_finish(j);
}
static void finish_empty(s2f_json *j) { s2f_json_finish(j); }
static void null_key(s2f_json *j)
{
    s2f_json_begin_object(j);
    s2f_json_key(j, NULL);
}
static void null_string(s2f_json *j)
{
    s2f_json_begin_array(j);
    s2f_json_string(j, NULL);
}

TEST(misuse_is_a_sticky_error)
{
    static const misuse_fn cases[] = {
        value_where_key_expected, key_in_array, key_at_top, two_keys, end_object_in_array,
        end_array_at_top, end_after_key, second_top_value, finish_open, finish_empty,
        null_key, null_string,
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mem m;
        mem_open(&m, 0);
        cases[i](&m.j);
        CHECK(s2f_json_error(&m.j) == S2F_EINTERNAL);
        CHECK(strncmp(s2f_json_message(&m.j), "JSON writer: ", 13) == 0);
        size_t before = strlen(mem_text(&m));
        /* every later call is a no-op returning -1 */
        CHECK(s2f_json_begin_array(&m.j) == -1);
        CHECK(s2f_json_int(&m.j, 1) == -1);
        CHECK(s2f_json_string(&m.j, "x") == -1);
        CHECK(s2f_json_key(&m.j, "x") == -1);
        CHECK(s2f_json_kv_string(&m.j, "x", NULL) == -1);
        CHECK(s2f_json_end_object(&m.j) == -1);
        CHECK(s2f_json_finish(&m.j) == -1);
        CHECK(strlen(mem_text(&m)) == before);
        CHECK(s2f_json_error(&m.j) == S2F_EINTERNAL);
        mem_close(&m);
    }
}

TEST(depth_overflow)
{
    mem m;
    mem_open(&m, 0);
    for (int i = 0; i < S2F_JSON_MAX_DEPTH; i++)
        CHECK(s2f_json_begin_array(&m.j) == 0);
    CHECK(s2f_json_begin_object(&m.j) == -1);
    CHECK(s2f_json_error(&m.j) == S2F_ELIMIT);
    CHECK(strstr(s2f_json_message(&m.j), "64") != NULL);
    const char *text = mem_text(&m);
    CHECK(strlen(text) == S2F_JSON_MAX_DEPTH && strspn(text, "[") == S2F_JSON_MAX_DEPTH);
    mem_close(&m);

    /* exactly the maximum depth is fine, in pretty mode too */
    mem_open(&m, 1);
    for (int i = 0; i < S2F_JSON_MAX_DEPTH; i++)
        s2f_json_begin_array(&m.j);
    for (int i = 0; i < S2F_JSON_MAX_DEPTH; i++)
        s2f_json_end_array(&m.j);
    CHECK(s2f_json_finish(&m.j) == 0);
    mem_close(&m);
}

/* ---- a large generated document read back by json-c ------------------------------- */

#define N_ENTRIES 10000

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next(rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

static size_t put_utf8(char *p, uint32_t cp)
{
    if (cp < 0x80) {
        p[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        p[0] = (char)(0xC0 | cp >> 6);
        p[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        p[0] = (char)(0xE0 | cp >> 12);
        p[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        p[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    p[0] = (char)(0xF0 | cp >> 18);
    p[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    p[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    p[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t random_code_point(rng *r)
{
    static const uint32_t specials[] = {0, '"', '\\', '\n', 0x1F, 0x7F, 0x2028, 0x2029, 0xFEFF,
                                        0xFFFD, 0xFFFF, 0x10FFFF};
    switch (next(r) % 5) {
    case 0: return specials[next(r) % (sizeof specials / sizeof specials[0])];
    case 1: return (uint32_t)(0x20 + next(r) % 95);
    case 2: return (uint32_t)(next(r) % 0x800);
    default: {
        uint32_t cp = (uint32_t)(next(r) % 0x110000);
        return cp >= 0xD800 && cp < 0xE000 ? cp - 0x800 : cp; /* no surrogates */
    }
    }
}

/* Half the strings are well-formed UTF-8 built from code points, half random bytes. */
static size_t random_string(rng *r, char *buf, int *well_formed)
{
    size_t len = next(r) % 40, n = 0;
    *well_formed = next(r) % 2;
    for (size_t i = 0; i < len; i++) {
        if (*well_formed)
            n += put_utf8(buf + n, random_code_point(r));
        else
            buf[n++] = (char)(next(r) % 4 ? next(r) % 256 : 'a' + next(r) % 26);
    }
    return n;
}

/* A Decimal String from random parts, and what the writer must make of it. */
static void random_decimal(rng *r, char *text, char *want)
{
    char sign[2] = {0}, zeros[4] = {0}, digits[16] = {0}, frac[8] = {0}, exp[8] = {0};
    int dot = 0;
    uint64_t pick = next(r);
    if (pick % 3 == 1)
        sign[0] = '-';
    else if (pick % 3 == 2)
        sign[0] = '+';
    memset(zeros, '0', next(r) % 3);
    size_t nd = next(r) % 12;
    for (size_t i = 0; i < nd; i++)
        digits[i] = (char)('0' + next(r) % 10);
    if (nd)
        digits[0] = (char)('1' + next(r) % 9);
    if (next(r) % 2) {
        dot = 1;
        size_t nf = next(r) % 7;
        for (size_t i = 0; i < nf; i++)
            frac[i] = (char)('0' + next(r) % 10);
    }
    if (!zeros[0] && !digits[0] && !frac[0])
        zeros[0] = '0';
    if (next(r) % 4 == 0)
        snprintf(exp, sizeof exp, "%s%d", next(r) % 2 ? "e" : "E-", (int)(next(r) % 300));
    snprintf(text, 64, "%s%s%s%s%s%s%s", next(r) % 4 ? "" : " ", sign, zeros, digits,
             dot ? "." : "", frac, exp);
    snprintf(want, 64, "%s%s%s%s%s", sign[0] == '-' ? "-" : "", digits[0] ? digits : "0",
             frac[0] ? "." : "", frac, exp);
}

static double random_double(rng *r)
{
    for (;;) {
        uint64_t bits = next(r);
        double d;
        memcpy(&d, &bits, sizeof d);
        if (isfinite(d))
            return next(r) % 3 ? d : (double)(int64_t)bits / 1e6;
    }
}

/* Independent UTF-8 check: glibc's iconv to UTF-16 refuses ill-formed input (to UTF-8
 * it would let code points above U+10FFFF through). */
static int utf8_ok(iconv_t cd, const char *p, size_t n)
{
    char out[4096], *in = (char *)p;
    size_t left = n;
    iconv(cd, NULL, NULL, NULL, NULL);
    while (left) {
        char *o = out;
        size_t room = sizeof out;
        if (iconv(cd, &in, &left, &o, &room) == (size_t)-1 && errno != E2BIG)
            return 0;
    }
    return 1;
}

typedef struct entry {
    char s[160];
    size_t s_len;
    int well_formed;
    int64_t i;
    uint64_t u;
    double d;
    char dec[64], dec_want[64];
} entry;

static void write_entries(s2f_json *j, const entry *e, size_t n)
{
    s2f_json_begin_array(j);
    for (size_t k = 0; k < n; k++) {
        s2f_json_begin_object(j);
        s2f_json_kv_string_n(j, "s", e[k].s, e[k].s_len);
        s2f_json_kv_int(j, "i", e[k].i);
        s2f_json_kv_uint(j, "u", e[k].u);
        s2f_json_kv_double(j, "d", e[k].d);
        s2f_json_kv_decimal(j, "n", e[k].dec);
        s2f_json_end_object(j);
    }
    s2f_json_end_array(j);
    s2f_json_finish(j);
}

static int same_string(json_object *v, const char *p, size_t n)
{
    return json_object_is_type(v, json_type_string) && (size_t)json_object_get_string_len(v) == n &&
           memcmp(json_object_get_string(v), p, n) == 0;
}

/* The decimal parsed by json-c: doubles keep their text; integers compare by value. */
static int same_decimal(json_object *v, const char *want)
{
    if (json_object_is_type(v, json_type_double))
        return strcmp(json_object_get_string(v), want) == 0;
    return json_object_is_type(v, json_type_int) && json_object_get_int64(v) == strtoll(want, NULL, 10);
}

static int same_double(json_object *v, double d)
{
    return (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)) &&
           json_object_get_double(v) == d;
}

static int check_entry(json_object *o, const entry *e, iconv_t cd)
{
    json_object *s, *i, *u, *d, *n;
    if (!json_object_object_get_ex(o, "s", &s) || !json_object_object_get_ex(o, "i", &i) ||
        !json_object_object_get_ex(o, "u", &u) || !json_object_object_get_ex(o, "d", &d) ||
        !json_object_object_get_ex(o, "n", &n))
        return 0;
    const char *text = json_object_get_string(s);
    size_t len = (size_t)json_object_get_string_len(s);
    if (!utf8_ok(cd, text, len))
        return 0;
    if (utf8_ok(cd, e->s, e->s_len) ? !same_string(s, e->s, e->s_len) : same_string(s, e->s, e->s_len))
        return 0;
    return json_object_get_int64(i) == e->i && json_object_get_uint64(u) == e->u &&
           same_double(d, e->d) && same_decimal(n, e->dec_want);
}

TEST(iconv_is_a_strict_oracle)
{
    iconv_t cd = iconv_open("UTF-16LE", "UTF-8");
    CHECK(cd != (iconv_t)-1);
    CHECK(utf8_ok(cd, "\xE2\x82\xAC\xF4\x8F\xBF\xBF", 7));
    CHECK(!utf8_ok(cd, "\xED\xA0\x80", 3));
    CHECK(!utf8_ok(cd, "\xC0\xAF", 2));
    CHECK(!utf8_ok(cd, "\xF4\x90\x80\x80", 4));
    CHECK(!utf8_ok(cd, "\xE2\x82", 2));
    iconv_close(cd);
}

TEST(generated_document_round_trips_through_json_c)
{
    entry *e = calloc(N_ENTRIES, sizeof *e);
    rng r = {0x9E3779B97F4A7C15ull};
    size_t ill_formed = 0;
    iconv_t cd = iconv_open("UTF-16LE", "UTF-8");
    CHECK(e && cd != (iconv_t)-1);
    for (size_t k = 0; k < N_ENTRIES; k++) {
        e[k].s_len = random_string(&r, e[k].s, &e[k].well_formed);
        ill_formed += !utf8_ok(cd, e[k].s, e[k].s_len);
        e[k].i = (int64_t)next(&r) >> (next(&r) % 64);
        e[k].u = next(&r) >> (next(&r) % 64);
        e[k].d = random_double(&r);
        random_decimal(&r, e[k].dec, e[k].dec_want);
    }
    CHECK(ill_formed > 1000);
    for (int pretty = 0; pretty < 2; pretty++) {
        mem m;
        mem_open(&m, pretty);
        write_entries(&m.j, e, N_ENTRIES);
        CHECK(s2f_json_error(&m.j) == 0);
        CHECK(s2f_json_replaced(&m.j) >= ill_formed);
        const char *text = mem_text(&m);
        CHECK(utf8_ok(cd, text, strlen(text)));

        json_tokener *tok = json_tokener_new();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        json_object *root = json_tokener_parse_ex(tok, text, (int)strlen(text));
        CHECK(root != NULL && json_tokener_get_error(tok) == json_tokener_success);
        CHECK(json_object_is_type(root, json_type_array));
        CHECK(json_object_array_length(root) == N_ENTRIES);
        for (size_t k = 0; k < N_ENTRIES; k++)
            if (!check_entry(json_object_array_get_idx(root, k), &e[k], cd)) {
                fprintf(stderr, "entry %zu differs (decimal \"%s\")\n", k, e[k].dec);
                CHECK(0);
            }
        json_object_put(root);
        json_tokener_free(tok);
        mem_close(&m);
    }
    iconv_close(cd);
    free(e);
}

TEST(raw_members_join_an_object_as_written_members)
{
    mem m;
    mem_open(&m, 0);
    s2f_json_begin_object(&m.j);
    s2f_json_kv_string(&m.j, "a", "1");
    CHECK(s2f_json_members_raw(&m.j, "\"b\":2,\"c\":[3]", 13) == 0);
    CHECK(s2f_json_members_raw(&m.j, "", 0) == 0);
    s2f_json_kv_int(&m.j, "d", 4);
    s2f_json_end_object(&m.j);
    CHECK(s2f_json_finish(&m.j) == 0);
    CHECK_STR(mem_text(&m), "{\"a\":\"1\",\"b\":2,\"c\":[3],\"d\":4}");
    mem_close(&m);
    /* misuse: in pretty mode, in an array, after a key */
    mem_open(&m, 1);
    s2f_json_begin_object(&m.j);
    CHECK(s2f_json_members_raw(&m.j, "\"b\":2", 5) == -1);
    mem_close(&m);
    mem_open(&m, 0);
    s2f_json_begin_array(&m.j);
    CHECK(s2f_json_members_raw(&m.j, "\"b\":2", 5) == -1);
    mem_close(&m);
    mem_open(&m, 0);
    s2f_json_begin_object(&m.j);
    s2f_json_key(&m.j, "x");
    CHECK(s2f_json_members_raw(&m.j, "\"b\":2", 5) == -1);
    mem_close(&m);
}

TEST(raw_values_stand_where_values_go)
{
    mem m;
    mem_open(&m, 0);
    s2f_json_begin_object(&m.j);
    s2f_json_kv_string(&m.j, "a", "1");
    s2f_json_key(&m.j, "b");
    CHECK(s2f_json_raw_value(&m.j, "{\"c\":[3]}", 9) == 0);
    s2f_json_kv_begin_array(&m.j, "d");
    CHECK(s2f_json_raw_value(&m.j, "4", 1) == 0);
    CHECK(s2f_json_raw_value(&m.j, "\"5\"", 3) == 0);
    s2f_json_end_array(&m.j);
    s2f_json_end_object(&m.j);
    CHECK(s2f_json_finish(&m.j) == 0);
    CHECK_STR(mem_text(&m), "{\"a\":\"1\",\"b\":{\"c\":[3]},\"d\":[4,\"5\"]}");
    mem_close(&m);
    /* misuse: in pretty mode, where a key is expected, empty */
    mem_open(&m, 1);
    s2f_json_begin_array(&m.j);
    CHECK(s2f_json_raw_value(&m.j, "1", 1) == -1);
    mem_close(&m);
    mem_open(&m, 0);
    s2f_json_begin_object(&m.j);
    CHECK(s2f_json_raw_value(&m.j, "1", 1) == -1);
    mem_close(&m);
    mem_open(&m, 0);
    s2f_json_begin_array(&m.j);
    CHECK(s2f_json_raw_value(&m.j, "", 0) == -1);
    mem_close(&m);
}

TEST(keyed_raw_values_and_objects_opened_with_members)
{
    mem m;
    mem_open(&m, 0);
    s2f_json_begin_array(&m.j);
    CHECK(s2f_json_begin_object_raw(&m.j, NULL, "\"a\":1", 5) == 0);
    CHECK(s2f_json_kv_raw(&m.j, "b", "{\"c\":[3]}", 9) == 0);
    CHECK(s2f_json_begin_object_raw(&m.j, "d", "\"e\":\"f\"", 7) == 0);
    s2f_json_kv_int(&m.j, "g", 7);
    s2f_json_end_object(&m.j);
    CHECK(s2f_json_begin_object_raw(&m.j, "h", "", 0) == 0);
    s2f_json_kv_int(&m.j, "i", 8);
    s2f_json_end_object(&m.j);
    CHECK(s2f_json_kv_raw(&m.j, "quote\"d", "1", 1) == 0); /* a key that needs escaping */
    s2f_json_end_object(&m.j);
    CHECK(s2f_json_begin_object_raw(&m.j, NULL, "", 0) == 0);
    s2f_json_end_object(&m.j);
    s2f_json_end_array(&m.j);
    CHECK(s2f_json_finish(&m.j) == 0);
    CHECK_STR(mem_text(&m), "[{\"a\":1,\"b\":{\"c\":[3]},\"d\":{\"e\":\"f\",\"g\":7},"
                            "\"h\":{\"i\":8},\"quote\\\"d\":1},{}]");
    mem_close(&m);
    /* misuse: pretty mode, a keyed object in an array, a key where a value is due */
    mem_open(&m, 1);
    s2f_json_begin_array(&m.j);
    CHECK(s2f_json_begin_object_raw(&m.j, NULL, "\"a\":1", 5) == -1);
    mem_close(&m);
    mem_open(&m, 0);
    s2f_json_begin_array(&m.j);
    CHECK(s2f_json_begin_object_raw(&m.j, "k", "\"a\":1", 5) == -1);
    mem_close(&m);
    mem_open(&m, 0);
    s2f_json_begin_object(&m.j);
    s2f_json_key(&m.j, "x");
    CHECK(s2f_json_kv_raw(&m.j, "y", "1", 1) == -1);
    mem_close(&m);
}

TEST(raw_open_and_close_of_nested_objects)
{
    mem m;
    mem_open(&m, 0);
    s2f_json_begin_array(&m.j);
    CHECK(s2f_json_open_raw(&m.j, "{\"a\":1,\"b\":{\"c\":2", 17, 2) == 0);
    s2f_json_kv_int(&m.j, "d", 3); /* members go into the inner object */
    CHECK(s2f_json_close_raw(&m.j, "},\"e\":4}", 8, 2) == 0);
    CHECK(s2f_json_open_raw(&m.j, "{\"f\":5", 6, 1) == 0); /* a second element: comma */
    CHECK(s2f_json_close_raw(&m.j, "}", 1, 1) == 0);
    s2f_json_end_array(&m.j);
    CHECK(s2f_json_finish(&m.j) == 0);
    CHECK_STR(mem_text(&m), "[{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"e\":4},{\"f\":5}]");
    mem_close(&m);
    /* misuse: pretty mode, closing an array, closing more than is open, a value due */
    mem_open(&m, 1);
    s2f_json_begin_array(&m.j);
    CHECK(s2f_json_open_raw(&m.j, "{\"a\":1", 6, 1) == -1);
    mem_close(&m);
    mem_open(&m, 0);
    s2f_json_begin_array(&m.j);
    CHECK(s2f_json_close_raw(&m.j, "]", 1, 1) == -1);
    mem_close(&m);
    mem_open(&m, 0);
    s2f_json_begin_object(&m.j);
    CHECK(s2f_json_close_raw(&m.j, "}}", 2, 2) == -1);
    mem_close(&m);
    mem_open(&m, 0);
    s2f_json_begin_object(&m.j);
    s2f_json_key(&m.j, "x");
    CHECK(s2f_json_close_raw(&m.j, "}", 1, 1) == -1);
    mem_close(&m);
}

TEST(literal_keys_write_as_keys)
{
    for (int pretty = 0; pretty <= 1; pretty++) {
        mem a, b;
        mem_open(&a, pretty);
        mem_open(&b, pretty);
        s2f_json_begin_object(&a.j);
        s2f_json_begin_object(&b.j);
        CHECK(s2f_json_lit_begin_array(&a.j, S2F_JSON_LIT("list")) == 0);
        s2f_json_kv_begin_array(&b.j, "list");
        s2f_json_int(&a.j, 1);
        s2f_json_int(&b.j, 1);
        s2f_json_end_array(&a.j);
        s2f_json_end_array(&b.j);
        CHECK(s2f_json_lit_begin_object(&a.j, S2F_JSON_LIT("obj")) == 0);
        s2f_json_kv_begin_object(&b.j, "obj");
        CHECK(s2f_json_lit_decimal(&a.j, S2F_JSON_LIT("d"), "+1.50") == 0);
        s2f_json_kv_decimal(&b.j, "d", "+1.50");
        CHECK(s2f_json_lit_decimal(&a.j, S2F_JSON_LIT("e"), "2.5E+01") == 0);
        s2f_json_kv_decimal(&b.j, "e", "2.5E+01");
        if (!pretty) {
            CHECK(s2f_json_lit_raw(&a.j, S2F_JSON_LIT("r"), "[1]", 3) == 0);
            s2f_json_kv_raw(&b.j, "r", "[1]", 3);
        }
        s2f_json_end_object(&a.j);
        s2f_json_end_object(&b.j);
        s2f_json_end_object(&a.j);
        s2f_json_end_object(&b.j);
        CHECK(s2f_json_finish(&a.j) == 0);
        CHECK(s2f_json_finish(&b.j) == 0);
        CHECK_STR(mem_text(&a), mem_text(&b));
        mem_close(&a);
        mem_close(&b);
    }
    /* misuse is reported as with other keys: a literal key in an array */
    mem m;
    mem_open(&m, 0);
    s2f_json_begin_array(&m.j);
    CHECK(s2f_json_lit_begin_object(&m.j, S2F_JSON_LIT("k")) == -1);
    CHECK(s2f_json_error(&m.j) == S2F_EINTERNAL);
    mem_close(&m);
}

/* kv_decimal copies a Decimal String that is already its JSON number and rewrites the
 * others: both give what s2f_json_decimal gives. */
TEST(keyed_decimals_equal_decimals)
{
    static const char *const cases[][2] = {
        {"1.378756E+00", "1.378756E+00"}, {"-12.50", "-12.50"}, {"0", "0"}, {"-0", "-0"},
        {"0.5", "0.5"}, {"7", "7"}, {"1e-007", "1e-007"}, {"+1.5", "1.5"}, {"007.50", "7.50"},
        {"5.", "5"}, {".5", "0.5"}, {" 12 ", "12"}, {"1.5 ", "1.5"}, {"01", "1"},
        {"-0.000", "-0.000"}, {"1E+", NULL}, {"1.", "1"}, {"-", NULL}, {"1.e5", "1e5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mem m;
        mem_open(&m, 0);
        s2f_json_begin_object(&m.j);
        int rc = s2f_json_kv_decimal(&m.j, "v", cases[i][0]);
        CHECK(rc == (cases[i][1] ? 0 : -1));
        CHECK(s2f_json_decimal_valid(cases[i][0], strlen(cases[i][0])) == (cases[i][1] != NULL));
        if (cases[i][1]) {
            char want[64];
            snprintf(want, sizeof want, "{\"v\":%s}", cases[i][1]);
            s2f_json_end_object(&m.j);
            CHECK(s2f_json_finish(&m.j) == 0);
            CHECK_STR(mem_text(&m), want);
        }
        mem_close(&m);
    }
}

TEST(memory_sink_keeps_its_bytes_and_refuses_more)
{
    static s2f_sink s; /* 64 KiB: not on the stack */
    s2f_sink_init(&s, NULL);
    s2f_sink_puts(&s, "abc");
    s2f_sink_putc(&s, 'd');
    CHECK(s2f_sink_finish(&s) == 0);
    CHECK(s.len == 4 && memcmp(s.buf, "abcd", 4) == 0);
    static char big[S2F_SINK_BUFFER];
    memset(big, 'x', sizeof big);
    s2f_sink_write(&s, big, sizeof big);
    CHECK(s2f_sink_finish(&s) == -1);
}

int main(void)
{
    RUN(raw_members_join_an_object_as_written_members);
    RUN(raw_values_stand_where_values_go);
    RUN(keyed_raw_values_and_objects_opened_with_members);
    RUN(keyed_decimals_equal_decimals);
    RUN(raw_open_and_close_of_nested_objects);
    RUN(literal_keys_write_as_keys);
    RUN(memory_sink_keeps_its_bytes_and_refuses_more);
    RUN(compact_nested);
    RUN(pretty_nested);
    RUN(pretty_empty_and_scalar_documents);
    RUN(key_value_helpers);
    RUN(kv_with_invalid_value_writes_no_key);
    RUN(escapes_every_control_character);
    RUN(escapes_quote_and_backslash_only);
    RUN(escapes_line_and_paragraph_separators);
    RUN(valid_multibyte_passes_through);
    RUN(invalid_utf8_is_replaced_and_counted);
    RUN(replacements_accumulate_over_the_document);
    RUN(long_string_crosses_the_sink_buffer);
    RUN(decimal_forms_keep_their_digits);
    RUN(invalid_decimals_write_nothing);
    RUN(invalid_decimal_is_sticky);
    RUN(doubles_round_trip_shortest);
    RUN(non_finite_doubles_are_refused);
    RUN(integer_extremes);
    RUN(misuse_is_a_sticky_error);
    RUN(depth_overflow);
    RUN(iconv_is_a_strict_oracle);
    RUN(generated_document_round_trips_through_json_c);
    CHECK_DONE();
}
