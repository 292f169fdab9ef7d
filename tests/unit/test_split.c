/*
 * test_split.c - unit tests of src/deliver/split.c: a transaction Bundle cut into parts of
 * at most N entries, references between entries made literal (M24 ids), what is
 * referenced first, the Bundle's own members and the exact number text (M20) kept.
 */
#include <json-c/json.h>
#include <stdlib.h>

#include "check.h"
#include "deliver/split.h"

#define ENTRY(type, id, body)                                                                  \
    "{\"fullUrl\":\"urn:uuid:" id "\",\"resource\":{\"resourceType\":\"" type "\",\"id\":\"" id \
    "\"" body "},\"request\":{\"method\":\"PUT\",\"url\":\"" type "/" id "\"}}"
#define REF(id) "{\"reference\":\"urn:uuid:" id "\"}"

/* A group (a) with two members (b, c); b is derived from a selection (d); e a device. */
static const char bundle[] =
    "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
    ENTRY("Observation", "a", ",\"hasMember\":[" REF("b") "," REF("c") "],"
          "\"subject\":{\"identifier\":{\"value\":\"PID\"}}") ","
    ENTRY("Observation", "b", ",\"derivedFrom\":[" REF("d") "],\"valueQuantity\":{\"value\":10.50}") ","
    ENTRY("Observation", "c", ",\"subject\":{\"reference\":\"Patient/p\"}") ","
    ENTRY("ImagingSelection", "d", "") ","
    ENTRY("Device", "e", "") "]}";

static json_object *parsed[8];
static size_t n_parsed;

static int split(size_t max)
{
    s2f_bundle_parts parts;
    s2f_error err = {0};
    for (size_t i = 0; i < n_parsed; i++)
        json_object_put(parsed[i]);
    n_parsed = 0;
    if (s2f_split_bundle(bundle, sizeof bundle - 1, max, &parts, &err) != S2F_OK) {
        printf("    split failed: %s\n", err.message);
        return 0;
    }
    for (size_t i = 0; i < parts.n && i < 8; i++)
        parsed[n_parsed++] = json_tokener_parse(parts.text[i]);
    int ok = strstr(parts.text[0], "10.50") || (parts.n > 1 && strstr(parts.text[1], "10.50"));
    s2f_split_parts_free(&parts);
    return ok;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *text(json_object *o) { return o ? json_object_get_string(o) : "(null)"; }

/* The ids of part p's resources, joined: "d,e". */
static const char *ids(size_t p)
{
    static char buf[64];
    buf[0] = '\0';
    json_object *entries = get(parsed[p], "entry");
    for (size_t i = 0; i < json_object_array_length(entries); i++) {
        if (i)
            strcat(buf, ",");
        strncat(buf, text(get(get(json_object_array_get_idx(entries, i), "resource"), "id")), 8);
    }
    return buf;
}

static json_object *resource(const char *id)
{
    for (size_t p = 0; p < n_parsed; p++) {
        json_object *entries = get(parsed[p], "entry");
        for (size_t i = 0; i < json_object_array_length(entries); i++) {
            json_object *r = get(json_object_array_get_idx(entries, i), "resource");
            if (!strcmp(text(get(r, "id")), id))
                return r;
        }
    }
    return NULL;
}

TEST(m24_parts_hold_at_most_n_entries_referenced_first)
{
    CHECK(split(2));
    CHECK(n_parsed == 3);
    CHECK_STR(ids(0), "c,d");   /* reference nothing in the Bundle: Bundle order */
    CHECK_STR(ids(1), "e,b");   /* b references d */
    CHECK_STR(ids(2), "a");     /* a references b and c */
    for (size_t p = 0; p < n_parsed; p++) {
        CHECK_STR(text(get(parsed[p], "resourceType")), "Bundle");
        CHECK_STR(text(get(parsed[p], "type")), "transaction");
    }
}

TEST(m24_references_between_entries_become_literal)
{
    CHECK(split(2));
    json_object *a = resource("a"), *b = resource("b"), *c = resource("c");
    CHECK(a && b && c);
    CHECK_STR(text(get(json_object_array_get_idx(get(a, "hasMember"), 0), "reference")), "Observation/b");
    CHECK_STR(text(get(json_object_array_get_idx(get(a, "hasMember"), 1), "reference")), "Observation/c");
    CHECK_STR(text(get(json_object_array_get_idx(get(b, "derivedFrom"), 0), "reference")),
              "ImagingSelection/d");
    /* what is not in the Bundle is left alone */
    CHECK_STR(text(get(get(c, "subject"), "reference")), "Patient/p");
    CHECK(!get(get(a, "subject"), "reference"));
    CHECK_STR(text(get(get(b, "valueQuantity"), "value")), "10.50");
}

TEST(one_part_when_the_limit_holds_everything)
{
    CHECK(split(5));
    CHECK(n_parsed == 1);
    CHECK_STR(ids(0), "c,d,e,b,a");
    CHECK(split(1000));
    CHECK(n_parsed == 1);
}

TEST(not_a_bundle_is_refused)
{
    s2f_bundle_parts parts;
    s2f_error err = {0};
    CHECK(s2f_split_bundle("{\"resourceType\":\"Bundle\"}", 25, 2, &parts, &err) == S2F_EINTERNAL);
    CHECK(s2f_split_bundle("{\"entry\":[", 10, 2, &parts, &err) == S2F_EINTERNAL);
    CHECK(s2f_split_bundle(bundle, sizeof bundle - 1, 0, &parts, &err) == S2F_EINTERNAL);
}

int main(void)
{
    RUN(m24_parts_hold_at_most_n_entries_referenced_first);
    RUN(m24_references_between_entries_become_literal);
    RUN(one_part_when_the_limit_holds_everything);
    RUN(not_a_bundle_is_refused);
    for (size_t i = 0; i < n_parsed; i++)
        json_object_put(parsed[i]);
    CHECK_DONE();
}
