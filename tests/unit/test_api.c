/*
 * test_api.c - unit tests of the public API that can grow (issue 16, include/sr2fhir.h):
 * the version macros and s2f_version(), s2f_convert_write's callback against s2f_convert's
 * stream, struct_size (an option member beyond the caller's struct_size is not read, a
 * result member beyond it is not written, 0 = the 0.1.0 layout), and s2f_json_quote.
 * Only the public header is used, as a program would.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr2fhir.h"

#include "check.h"
#include "sr_json.h"

#define NUM(rel, v, s, m, value)                                                            \
    "{" ITEM(rel, "NUM") "," CONCEPT(v, s, m) ",\"0040A300\":{\"vr\":\"SQ\",\"Value\":[{"    \
    "\"0040A30A\":{\"vr\":\"DS\",\"Value\":[\"" value "\"]},"                                \
    "\"004008EA\":{\"vr\":\"SQ\",\"Value\":[" CODE("mm", "UCUM", "millimeter") "]}}]}}"
#define CONTAINER(rel, v, s, m, ...)                                                        \
    "{" ITEM(rel, "CONTAINER") "," CONCEPT(v, s, m) ","                                     \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" KIDS(__VA_ARGS__) "}"
/* A TID 1500 report: one group with one measurement and one TEXT item no rule maps. */
static const char report_json[] =
    "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"" ENHANCED "\"]},"
    "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.4\"]},"
    "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.1\"]},"
    "\"00100020\":{\"vr\":\"LO\",\"Value\":[\"PAT-1\"]},"
    ITEM("x", "CONTAINER") "," CONCEPT("126000", "DCM", "Imaging Measurement Report") ","
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}"
    KIDS(TEXTITEM("CONTAINS", "99001", "99X", "Remark", "nothing maps me") ","
         CONTAINER("CONTAINS", "126010", "DCM", "Imaging Measurements",
                   CONTAINER("CONTAINS", "125007", "DCM", "Measurement Group",
                             NUM("CONTAINS", "81827009", "SCT", "Diameter", "10.5")))) "}";

static s2f_doc *read_report(void)
{
    s2f_error err = {0};
    s2f_doc *doc = s2f_doc_read(report_json, strlen(report_json), NULL, &err);
    if (!doc)
        printf("    read failed: %s\n", err.message);
    return doc;
}

/* A write function collecting the bytes; fail_at > 0: the call with that number fails. */
typedef struct collected {
    char *buf;
    size_t len, cap;
    int calls, fail_at;
} collected;

static int collect(void *ctx, const void *data, size_t len)
{
    collected *c = ctx;
    if (++c->calls == c->fail_at)
        return -1;
    if (c->len + len > c->cap) {
        size_t cap = (c->len + len) * 2;
        char *b = realloc(c->buf, cap);
        if (!b)
            return -1;
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    return 0;
}

/* The Bundle s2f_convert writes to a stream, malloc'd into *text. */
static s2f_code convert_stream(const s2f_doc *doc, const s2f_convert_options *opt, char **text,
                               size_t *len, s2f_convert_result *res)
{
    s2f_error err = {0};
    FILE *mem = open_memstream(text, len);
    if (!mem)
        return S2F_ENOMEM;
    s2f_code rc = s2f_convert(doc, opt, mem, res, &err);
    fclose(mem);
    return rc;
}

TEST(version_macros_and_run_time_agree)
{
    char text[32];
    snprintf(text, sizeof text, "%d.%d.%d", SR2FHIR_VERSION_MAJOR, SR2FHIR_VERSION_MINOR,
             SR2FHIR_VERSION_PATCH);
    CHECK_STR(text, SR2FHIR_VERSION);
    CHECK(SR2FHIR_VERSION_NUM == ((SR2FHIR_VERSION_MAJOR << 16) | (SR2FHIR_VERSION_MINOR << 8) |
                                  SR2FHIR_VERSION_PATCH));
    CHECK_STR(s2f_version(), SR2FHIR_VERSION);
    CHECK(s2f_version_num() == SR2FHIR_VERSION_NUM);
}

TEST(convert_write_gives_the_bytes_of_convert)
{
    s2f_doc *doc = read_report();
    CHECK(doc);
    s2f_convert_options opt;
    s2f_convert_options_init(&opt);
    opt.pretty = 1;
    char *text = NULL;
    size_t len = 0;
    s2f_code rc = convert_stream(doc, &opt, &text, &len, NULL);
    collected c = {0};
    s2f_error err = {0};
    s2f_convert_result res;
    s2f_convert_result_init(&res);
    s2f_code rc2 = s2f_convert_write(doc, &opt, collect, &c, &res, &err);
    int same = rc == S2F_OK && rc2 == S2F_OK && c.len == len && len > 100 &&
               memcmp(c.buf, text, len) == 0;
    free(text);
    free(c.buf);
    s2f_doc_free(doc);
    CHECK(same);
    CHECK(c.calls == 1); /* a small Bundle: one 64 KiB buffer, one call */
    CHECK(res.observations == 2 && res.devices == 1 && res.unmapped == 1);
}

TEST(convert_write_fails_when_the_callback_does)
{
    s2f_doc *doc = read_report();
    CHECK(doc);
    collected c = {.fail_at = 1};
    s2f_error err = {0};
    s2f_code rc = s2f_convert_write(doc, NULL, collect, &c, NULL, &err);
    s2f_code no_fn = s2f_convert_write(doc, NULL, NULL, NULL, NULL, &err);
    s2f_doc_free(doc);
    free(c.buf);
    CHECK(rc == S2F_EIO);
    CHECK(c.calls == 1 && c.len == 0);
    CHECK(no_fn == S2F_EUSAGE);
}

/* Enums: R4 and collection change the Bundle; AUTO is R5 for convert. */
TEST(enums_choose_version_and_bundle_type)
{
    s2f_doc *doc = read_report();
    CHECK(doc);
    s2f_convert_options opt;
    s2f_convert_options_init(&opt);
    char *r5 = NULL, *auto_ = NULL, *r4 = NULL, *coll = NULL;
    size_t n5 = 0, na = 0, n4 = 0, nc = 0;
    opt.fhir_version = S2F_FHIR_R5;
    convert_stream(doc, &opt, &r5, &n5, NULL);
    opt.fhir_version = S2F_FHIR_AUTO;
    convert_stream(doc, &opt, &auto_, &na, NULL);
    opt.fhir_version = S2F_FHIR_R4;
    convert_stream(doc, &opt, &r4, &n4, NULL);
    opt.fhir_version = S2F_FHIR_AUTO;
    opt.bundle_type = S2F_BUNDLE_COLLECTION;
    convert_stream(doc, &opt, &coll, &nc, NULL);
    int auto_is_r5 = r5 && auto_ && n5 == na && !memcmp(r5, auto_, n5);
    int r4_differs = r4 && (n4 != n5 || memcmp(r4, r5, n5)) && !strstr(r4, "StructureDefinition");
    int collection = coll && strstr(coll, "\"type\":\"collection\"") && r5 &&
                     strstr(r5, "\"type\":\"transaction\"");
    free(r5);
    free(auto_);
    free(r4);
    free(coll);
    s2f_doc_free(doc);
    CHECK(auto_is_r5);
    CHECK(r4_differs);
    CHECK(collection);
}

/* A caller compiled when s2f_convert_options ended before `pretty`: the library must not
 * read pretty (here 1, as garbage beyond an older caller's struct would be) and takes it as
 * its default, 0. Fails when the library reads sizeof(s2f_convert_options) regardless. */
TEST(option_members_beyond_struct_size_are_not_read)
{
    s2f_doc *doc = read_report();
    CHECK(doc);
    s2f_convert_options opt;
    s2f_convert_options_init(&opt);
    char *pretty = NULL, *compact = NULL;
    size_t np = 0, nc = 0;
    opt.pretty = 1;
    convert_stream(doc, &opt, &pretty, &np, NULL);
    opt.struct_size = offsetof(s2f_convert_options, pretty);
    convert_stream(doc, &opt, &compact, &nc, NULL);
    int ok = pretty && compact && strchr(pretty, '\n') && !strchr(compact, '\n');
    free(pretty);
    free(compact);
    /* struct_size 0: the whole 0.1.0 layout is read (pretty taken) */
    opt.struct_size = 0;
    char *zero = NULL;
    size_t nz = 0;
    convert_stream(doc, &opt, &zero, &nz, NULL);
    int zero_ok = zero && strchr(zero, '\n');
    free(zero);
    s2f_doc_free(doc);
    CHECK(ok);
    CHECK(zero_ok);
}

/* A result struct that ends before `unmapped`: members from there on keep the caller's
 * bytes (the library writes only struct_size bytes), and struct_size itself is kept. */
TEST(result_members_beyond_struct_size_are_not_written)
{
    s2f_doc *doc = read_report();
    CHECK(doc);
    s2f_convert_result res;
    memset(&res, 0xA5, sizeof res);
    res.struct_size = offsetof(s2f_convert_result, unmapped);
    char *text = NULL;
    size_t len = 0;
    s2f_code rc = convert_stream(doc, NULL, &text, &len, &res);
    free(text);
    s2f_doc_free(doc);
    unsigned char tail[sizeof res - offsetof(s2f_convert_result, unmapped)];
    memset(tail, 0xA5, sizeof tail);
    CHECK(rc == S2F_OK);
    CHECK(res.struct_size == offsetof(s2f_convert_result, unmapped));
    CHECK(res.observations == 2 && res.devices == 1 && res.imaging_selections == 0);
    CHECK(memcmp((char *)&res + offsetof(s2f_convert_result, unmapped), tail, sizeof tail) == 0);
}

TEST(reading_options_beyond_struct_size_are_defaults)
{
    s2f_options opt;
    s2f_options_init(&opt);
    CHECK(opt.struct_size == sizeof opt && opt.max_memory == 0 && opt.strict == 0);
    opt.max_memory = 1000; /* far too little: the read fails (no memory within it) */
    s2f_error err = {0};
    s2f_doc *doc = s2f_doc_read(report_json, strlen(report_json), &opt, &err);
    CHECK(!doc && err.code == S2F_ENOMEM);
    opt.struct_size = offsetof(s2f_options, max_memory); /* an older caller: not read */
    doc = s2f_doc_read(report_json, strlen(report_json), &opt, &err);
    CHECK(doc);
    s2f_doc_free(doc);
}

static s2f_code quote(const char *text, size_t len, collected *c)
{
    free(c->buf);
    memset(c, 0, sizeof *c);
    s2f_code rc = s2f_json_quote(text, len, collect, c);
    if (!rc && !collect(c, "", 1)) /* terminated */
        return rc;
    return rc ? rc : S2F_ENOMEM;
}

TEST(json_quote_escapes_as_the_library_does)
{
    collected c = {0};
    CHECK(quote("a\"b\\c\n\x01", 7, &c) == S2F_OK);
    CHECK_STR(c.buf, "\"a\\\"b\\\\c\\n\\u0001\"");
    CHECK(quote("x\xff y", 4, &c) == S2F_OK); /* not UTF-8: U+FFFD */
    CHECK_STR(c.buf, "\"x\xef\xbf\xbd y\"");
    CHECK(quote("\xe2\x80\xa8", 3, &c) == S2F_OK); /* U+2028 */
    CHECK_STR(c.buf, "\"\\u2028\"");
    CHECK(quote("", 0, &c) == S2F_OK);
    CHECK_STR(c.buf, "\"\"");
    free(c.buf);
    c = (collected){.fail_at = 1};
    CHECK(s2f_json_quote("abc", 3, collect, &c) == S2F_EIO);
    CHECK(s2f_json_quote(NULL, 3, collect, &c) == S2F_EUSAGE);
}

int main(void)
{
    RUN(version_macros_and_run_time_agree);
    RUN(convert_write_gives_the_bytes_of_convert);
    RUN(convert_write_fails_when_the_callback_does);
    RUN(enums_choose_version_and_bundle_type);
    RUN(option_members_beyond_struct_size_are_not_read);
    RUN(result_members_beyond_struct_size_are_not_written);
    RUN(reading_options_beyond_struct_size_are_defaults);
    RUN(json_quote_escapes_as_the_library_does);
    return check_failed_total != 0;
}
