/*
 * test_dicomweb.c - the DICOMweb client's pure parts (issue 13): s2f_dw_parse_qido on good
 * QIDO-RS answers, empty ones, missing tags, and answers of the wrong shape (an object
 * instead of an array, Value not an array, numbers where strings belong, over-long or
 * foreign-character UIDs, deep nesting, a huge answer), plus s2f_dw_new's URL policy and
 * the search's argument checks (which need no server). Talking to servers is
 * tests/integration/test_dicomweb_hostile.py's job.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gateway/dicomweb.h"

#define STUDY "1.2.3.4"
#define SERIES "1.2.3.4.5"
#define SOP "1.2.3.4.5.6"
#define ENHANCED "1.2.840.10008.5.1.4.1.1.88.22"

typedef struct seen {
    size_t n;
    s2f_dw_instance last;
    size_t stop_at;              /* 0: never stop */
} seen;

static int on_each(void *ctx, const s2f_dw_instance *inst)
{
    seen *s = ctx;
    s->n++;
    s->last = *inst;
    return s->stop_at && s->n >= s->stop_at;
}

static s2f_code parse(const char *json, seen *s, size_t *count, s2f_error *err)
{
    memset(s, 0, sizeof *s);
    return s2f_dw_parse_qido(json, strlen(json), on_each, s, count, err);
}

/* One result as Orthanc writes them: other attributes around, a PN object, vr first. */
#define ONE_RESULT                                                                          \
    "{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 100\"]},"                             \
    "\"00080016\":{\"vr\":\"UI\",\"Value\":[\"" ENHANCED "\"]},"                            \
    "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"" SOP "\"]},"                                 \
    "\"00080020\":{\"vr\":\"DA\"},"                                                         \
    "\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Doe^J\"}]},"                  \
    "\"00081190\":{\"vr\":\"UR\",\"Value\":[\"http://x/studies/1\"]},"                      \
    "\"00200013\":{\"vr\":\"IS\",\"Value\":[1]},"                                           \
    "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"" STUDY "\"]},"                               \
    "\"0020000E\":{\"Value\":[\"" SERIES "\"],\"vr\":\"UI\"}}"

TEST(good_answer_gives_every_uid)
{
    seen s;
    size_t count = 99;
    s2f_error err = {0};
    CHECK(parse("[" ONE_RESULT "," ONE_RESULT "]", &s, &count, &err) == S2F_OK);
    CHECK(count == 2 && s.n == 2);
    CHECK_STR(s.last.study, STUDY);
    CHECK_STR(s.last.series, SERIES);
    CHECK_STR(s.last.sop_instance, SOP);
    CHECK_STR(s.last.sop_class, ENHANCED);
}

TEST(lower_case_tags_and_whitespace_are_read)
{
    seen s;
    size_t count;
    s2f_error err = {0};
    CHECK(parse(" [ {\n \"0020000d\" : { \"vr\" : \"UI\" , \"Value\" : [ \"1.2\" ] } } ]\n", &s,
                &count, &err) == S2F_OK);
    CHECK(count == 1);
    CHECK_STR(s.last.study, "1.2");
}

TEST(empty_answers_are_no_results)
{
    seen s;
    size_t count = 7;
    s2f_error err = {0};
    CHECK(parse("", &s, &count, &err) == S2F_OK && count == 0 && s.n == 0);
    CHECK(parse(" \r\n", &s, &count, &err) == S2F_OK && count == 0);
    CHECK(parse("[]", &s, &count, &err) == S2F_OK && count == 0 && s.n == 0);
    CHECK(s2f_dw_parse_qido(NULL, 0, on_each, &s, &count, &err) == S2F_OK && count == 0);
}

TEST(missing_tags_are_empty_strings)
{
    seen s;
    size_t count;
    s2f_error err = {0};
    CHECK(parse("[{}]", &s, &count, &err) == S2F_OK && count == 1);
    CHECK_STR(s.last.study, "");
    CHECK_STR(s.last.sop_instance, "");
    /* an attribute without Value, with an empty Value and with a null value */
    CHECK(parse("[{\"00080018\":{\"vr\":\"UI\"},\"0020000D\":{\"vr\":\"UI\",\"Value\":[]},"
                "\"0020000E\":{\"vr\":\"UI\",\"Value\":[null]}}]", &s, &count, &err) == S2F_OK);
    CHECK(count == 1);
    CHECK_STR(s.last.sop_instance, "");
    CHECK_STR(s.last.study, "");
    CHECK_STR(s.last.series, "");
}

TEST(the_callback_stops_the_parse)
{
    seen s;
    memset(&s, 0, sizeof s);
    s.stop_at = 2;
    size_t count;
    s2f_error err = {0};
    const char *j = "[{},{},{},{}]";
    CHECK(s2f_dw_parse_qido(j, strlen(j), on_each, &s, &count, &err) == S2F_OK);
    CHECK(s.n == 2 && count == 2);
}

/* Each wrong shape: S2F_EFORMAT (or code) and a message naming it. */
static int refused(const char *json, s2f_code code, const char *needle)
{
    seen s;
    size_t count;
    s2f_error err = {0};
    s2f_code rc = parse(json, &s, &count, &err);
    if (rc != code || !strstr(err.message, needle)) {
        fprintf(stderr, "  %d %s\n", (int)rc, err.message);
        return 0;
    }
    return 1;
}

TEST(an_object_instead_of_an_array_is_refused)
{
    CHECK(refused(ONE_RESULT, S2F_EFORMAT, "an object instead of an array of results"));
    CHECK(refused("\"x\"", S2F_EFORMAT, "a string instead of an array"));
    CHECK(refused("42", S2F_EFORMAT, "a number instead of an array"));
    CHECK(refused("null", S2F_EFORMAT, "null instead of an array"));
}

TEST(results_that_are_not_objects_are_refused)
{
    CHECK(refused("[[]]", S2F_EFORMAT, "an array instead of a result object"));
    CHECK(refused("[1]", S2F_EFORMAT, "a number instead of a result object"));
    CHECK(refused("[{},\"x\"]", S2F_EFORMAT, "a string instead of a result object"));
    CHECK(refused("[{\"0020000D\":\"1.2\"}]", S2F_EFORMAT,
                  "a string instead of an attribute object, at result 1 (0020000D)"));
    CHECK(refused("[{\"0020000D\":[\"1.2\"]}]", S2F_EFORMAT, "an array instead of an attribute"));
}

TEST(value_not_an_array_is_refused)
{
    CHECK(refused("[{\"0020000D\":{\"vr\":\"UI\",\"Value\":\"1.2\"}}]", S2F_EFORMAT,
                  "Value is a string, not an array"));
    CHECK(refused("[{\"00080018\":{\"Value\":{\"a\":1}}}]", S2F_EFORMAT,
                  "Value is an object, not an array"));
    CHECK(refused("[{\"00080018\":{\"Value\":null}}]", S2F_EFORMAT, "Value is null, not an array"));
    /* the same in an attribute not read here is just as wrong */
    CHECK(refused("[{\"00100010\":{\"Value\":7}}]", S2F_EFORMAT, "Value is a number"));
}

TEST(numbers_where_strings_belong_are_refused)
{
    CHECK(refused("[{\"0020000D\":{\"vr\":\"UI\",\"Value\":[1.2]}}]", S2F_EFORMAT,
                  "a number where a string value belongs, at result 1 (0020000D)"));
    CHECK(refused("[{\"00080016\":{\"Value\":[true]}}]", S2F_EFORMAT, "a boolean where"));
    CHECK(refused("[{\"00080018\":{\"Value\":[{\"x\":\"1.2\"}]}}]", S2F_EFORMAT, "an object where"));
    CHECK(refused("[{\"00080018\":{\"Value\":[[\"1.2\"]]}}]", S2F_EFORMAT, "an array where"));
    /* a number in an attribute not read here (IS) is fine */
    seen s;
    size_t count;
    s2f_error err = {0};
    CHECK(parse("[{\"00200013\":{\"vr\":\"IS\",\"Value\":[3]}}]", &s, &count, &err) == S2F_OK);
}

TEST(bad_uids_are_refused)
{
    char json[512], uid[80];
    memset(uid, '1', 65);
    uid[65] = '\0';
    snprintf(json, sizeof json, "[{\"00080018\":{\"Value\":[\"%s\"]}}]", uid);
    CHECK(refused(json, S2F_EFORMAT, "SOP Instance UID is not a UID of 1-64 digits and dots"));
    uid[64] = '\0'; /* 64 is the most PS3.5 allows: taken */
    snprintf(json, sizeof json, "[{\"00080018\":{\"Value\":[\"%s\"]}}]", uid);
    seen s;
    size_t count;
    s2f_error err = {0};
    CHECK(parse(json, &s, &count, &err) == S2F_OK);
    CHECK_STR(s.last.sop_instance, uid);
    /* characters that would change a URL, and an empty UID */
    CHECK(refused("[{\"0020000E\":{\"Value\":[\"1.2/../x\"]}}]", S2F_EFORMAT, "Series Instance UID"));
    CHECK(refused("[{\"0020000D\":{\"Value\":[\"1.2?a=b\"]}}]", S2F_EFORMAT, "Study Instance UID"));
    CHECK(refused("[{\"0020000D\":{\"Value\":[\"\"]}}]", S2F_EFORMAT, "Study Instance UID"));
    CHECK(refused("[{\"0020000D\":{\"Value\":[\"1.2\\u0000\"]}}]", S2F_EFORMAT, "Study Instance UID"));
}

TEST(two_values_or_two_keys_are_refused)
{
    CHECK(refused("[{\"00080018\":{\"Value\":[\"1.2\",\"1.3\"]}}]", S2F_EFORMAT,
                  "SOP Instance UID has more than one value"));
    CHECK(refused("[{\"00080018\":{\"Value\":[\"1.2\"]},\"00080018\":{\"Value\":[\"1.3\"]}}]",
                  S2F_EFORMAT, "SOP Instance UID given twice"));
    CHECK(refused("[{\"nottag!!\":{}}]", S2F_EFORMAT, "key \"nottag!!\" is not a tag"));
    CHECK(refused("[{\"0020000\":{}}]", S2F_EFORMAT, "is not a tag"));
}

TEST(broken_json_is_refused)
{
    CHECK(refused("[{}", S2F_EFORMAT, "not valid JSON"));
    CHECK(refused("[{}]]", S2F_EFORMAT, "not valid JSON"));
    CHECK(refused("[{}] [{}]", S2F_EFORMAT, "not valid JSON"));
    CHECK(refused("[{\"0020000D\":{\"Value\":[\"1.2\xff\"]}}]", S2F_EFORMAT, "not valid JSON"));
    CHECK(refused("<html>", S2F_EFORMAT, "not valid JSON"));
}

TEST(deep_nesting_is_refused_at_its_bound)
{
    /* nesting inside an attribute not read here: the answer's array, the result, the
     * attribute and 29 arrays from Value on = 32 levels are taken, 33 are not */
    char json[4096];
    for (int depth = 29; depth <= 30; depth++) {
        size_t n = (size_t)snprintf(json, sizeof json, "[{\"00100010\":{\"Value\":");
        for (int i = 0; i < depth; i++)
            json[n++] = '[';
        for (int i = 0; i < depth; i++)
            json[n++] = ']';
        n += (size_t)snprintf(json + n, sizeof json - n, "}}]");
        seen s;
        size_t count;
        s2f_error err = {0};
        s2f_code rc = parse(json, &s, &count, &err);
        if (depth == 29)
            CHECK(rc == S2F_OK && count == 1);
        else
            CHECK(rc == S2F_ELIMIT && strstr(err.message, "nested deeper than 32"));
    }
    /* 100,000 levels: refused at level 33, not after reading them all */
    size_t big = 100000;
    char *deep = malloc(2 * big + 1);
    CHECK(deep);
    memset(deep, '[', big);
    memset(deep + big, ']', big);
    deep[2 * big] = '\0';
    seen s;
    size_t count;
    s2f_error err = {0};
    s2f_code rc = parse(deep, &s, &count, &err);
    free(deep);
    CHECK(rc == S2F_EFORMAT && strstr(err.message, "an array instead of a result object"));
}

TEST(a_huge_answer_is_read_in_bounded_steps)
{
    /* 200,000 results (about 27 MB): every one read, none kept */
    const char *item = "{\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"1.2.3\"]},"
                       "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.4\"]}}";
    size_t n = 200000, il = strlen(item);
    char *json = malloc(n * (il + 1) + 2);
    CHECK(json);
    size_t at = 0;
    json[at++] = '[';
    for (size_t i = 0; i < n; i++) {
        memcpy(json + at, item, il);
        at += il;
        json[at++] = i + 1 < n ? ',' : ']';
    }
    seen s;
    memset(&s, 0, sizeof s);
    size_t count;
    s2f_error err = {0};
    s2f_code rc = s2f_dw_parse_qido(json, at, on_each, &s, &count, &err);
    /* a huge string value where a UID belongs is refused by its length, not copied */
    char *str = NULL;
    if (rc == S2F_OK) {
        size_t sl = 10u << 20;
        str = malloc(sl + 64);
        if (str) {
            int h = snprintf(str, 64, "[{\"0020000D\":{\"Value\":[\"");
            memset(str + h, '1', sl);
            memcpy(str + h + sl, "\"]}}]", 6);
        }
    }
    free(json);
    CHECK(rc == S2F_OK && count == n && s.n == n);
    CHECK_STR(s.last.sop_instance, "1.2.3.4");
    CHECK(str);
    rc = s2f_dw_parse_qido(str, strlen(str), on_each, &s, &count, &err);
    free(str);
    CHECK(rc == S2F_EFORMAT && strstr(err.message, "Study Instance UID is not a UID"));
}

TEST(new_refuses_bad_urls)
{
    s2f_dw *dw = NULL;
    s2f_error err = {0};
    s2f_dw_options opt;
    memset(&opt, 0, sizeof opt);
    CHECK(s2f_dw_new("ftp://127.0.0.1/dicom-web", &opt, &dw, &err) == S2F_EUSAGE && !dw);
    CHECK(strstr(err.message, "only http and https"));
    CHECK(s2f_dw_new("http://u:p@127.0.0.1/dicom-web", &opt, &dw, &err) == S2F_EUSAGE);
    CHECK(strstr(err.message, "credentials in the URL"));
    CHECK(s2f_dw_new("http://pacs.example.org/dicom-web", &opt, &dw, &err) == S2F_EUSAGE);
    CHECK(strstr(err.message, "plain http to pacs.example.org"));
    /* send's policy (http.c s2f_http_judge_url): 127/8 as an address, not a name */
    CHECK(s2f_dw_new("http://127.example.org/dicom-web", &opt, &dw, &err) == S2F_EUSAGE);
    CHECK(strstr(err.message, "plain http to 127.example.org"));
    CHECK(s2f_dw_new("http://127.1.2.3:8042/dicom-web", &opt, &dw, &err) == S2F_OK && dw);
    s2f_dw_free(dw);
    dw = NULL;
    CHECK(s2f_dw_new("http://[::1]:8042/dicom-web", &opt, &dw, &err) == S2F_OK && dw);
    s2f_dw_free(dw);
    dw = NULL;
    CHECK(s2f_dw_new("http://127.0.0.1/dicom-web?x=1", &opt, &dw, &err) == S2F_EUSAGE);
    CHECK(s2f_dw_new("http://127.0.0.1/dicom web", &opt, &dw, &err) == S2F_EUSAGE);
    CHECK(s2f_dw_new("", &opt, &dw, &err) == S2F_EUSAGE);
    opt.client.allow_http = 1;
    CHECK(s2f_dw_new("http://pacs.example.org/dicom-web/", &opt, &dw, &err) == S2F_OK && dw);
    s2f_dw_free(dw);
    CHECK(s2f_dw_new("https://pacs.example.org/dicom-web", NULL, &dw, &err) == S2F_OK && dw);
    s2f_dw_free(dw);
}

static int never(void *ctx, const s2f_dw_instance *inst)
{
    (void)ctx, (void)inst;
    return 1;
}

TEST(search_refuses_bad_arguments_before_any_request)
{
    s2f_dw *dw = NULL;
    s2f_error err = {0};
    /* port 9 (discard) on loopback: any request would fail as unreachable, not usage */
    CHECK(s2f_dw_new("http://127.0.0.1:9/dicom-web", NULL, &dw, &err) == S2F_OK);
    s2f_dw_query q = {.study = "1.2.3/../4"};
    CHECK(s2f_dw_search(dw, &q, never, NULL, &err) == S2F_EUSAGE && strstr(err.message, "--study"));
    q = (s2f_dw_query){.since = "2024-01-01"};
    CHECK(s2f_dw_search(dw, &q, never, NULL, &err) == S2F_EUSAGE && strstr(err.message, "--since"));
    q = (s2f_dw_query){.until = "202401011"};
    CHECK(s2f_dw_search(dw, &q, never, NULL, &err) == S2F_EUSAGE && strstr(err.message, "--until"));
    s2f_dw_instance inst = {.study = "1.2", .series = "1.3", .sop_instance = "1.4&x"};
    s2f_store_file f;
    CHECK(s2f_dw_retrieve(dw, &inst, NULL, &f, &err) == S2F_EUSAGE);
    s2f_dw_free(dw);
}

TEST(a_cancelled_client_makes_no_request)
{
    s2f_dw *dw = NULL;
    s2f_error err = {0};
    atomic_int stop = 1;
    CHECK(s2f_dw_new("http://127.0.0.1:9/dicom-web", NULL, &dw, &err) == S2F_OK);
    s2f_dw_set_cancel(dw, &stop);
    s2f_code rc = s2f_dw_search(dw, NULL, never, NULL, &err);
    s2f_dw_free(dw);
    CHECK(rc == S2F_EUNREACHABLE && strstr(err.message, "cancelled"));
}

int main(void)
{
    RUN(good_answer_gives_every_uid);
    RUN(lower_case_tags_and_whitespace_are_read);
    RUN(empty_answers_are_no_results);
    RUN(missing_tags_are_empty_strings);
    RUN(the_callback_stops_the_parse);
    RUN(an_object_instead_of_an_array_is_refused);
    RUN(results_that_are_not_objects_are_refused);
    RUN(value_not_an_array_is_refused);
    RUN(numbers_where_strings_belong_are_refused);
    RUN(bad_uids_are_refused);
    RUN(two_values_or_two_keys_are_refused);
    RUN(broken_json_is_refused);
    RUN(deep_nesting_is_refused_at_its_bound);
    RUN(a_huge_answer_is_read_in_bounded_steps);
    RUN(new_refuses_bad_urls);
    RUN(search_refuses_bad_arguments_before_any_request);
    RUN(a_cancelled_client_makes_no_request);
    CHECK_DONE();
}
