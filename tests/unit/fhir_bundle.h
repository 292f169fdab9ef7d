/*
 * fhir_bundle.h - what the FHIR stage's unit tests share: reading a report given as DICOM
 * JSON (sr_json.h), writing its Bundle with s2f_fhir_write_bundle, parsing it with json-c,
 * and the json-c lookups the cases make (get, str, at, len). One test program includes it:
 * the last Bundle is kept in file-level state (bundle, bundle_text, bundle_len, stats).
 */
#ifndef S2F_TEST_FHIR_BUNDLE_H
#define S2F_TEST_FHIR_BUNDLE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fhir/fhir.h"
#include "report/report.h"

static json_object *bundle;      /* the last Bundle written */
static s2f_fhir_stats stats;
static char *bundle_text;
static size_t bundle_len;

/* Reads `json` as a report and writes its Bundle with `opt` into `bundle` (and
 * bundle_text); 0 (with a line saying why) when a stage failed. */
static inline int convert_with(const char *json, s2f_fhir_options opt)
{
    s2f_error err = {0};
    json_object_put(bundle);
    bundle = NULL;
    free(bundle_text);
    bundle_text = NULL;
    s2f_doc *doc = s2f_doc_read(json, strlen(json), NULL, &err);
    if (!doc) {
        printf("    read failed: %s\n", err.message);
        return 0;
    }
    s2f_report rep;
    if (s2f_report_read(doc, &rep, &err) != S2F_OK) {
        printf("    report failed: %s\n", err.message);
        s2f_doc_free(doc);
        return 0;
    }
    FILE *mem = open_memstream(&bundle_text, &bundle_len);
    static s2f_sink sink;
    s2f_sink_init(&sink, mem);
    s2f_code rc = s2f_fhir_write_bundle(&rep, &opt, &sink, &stats, &err);
    s2f_sink_finish(&sink);
    fclose(mem);
    s2f_doc_free(doc);
    if (rc != S2F_OK) {
        printf("    bundle failed: %s\n", err.message);
        return 0;
    }
    bundle = json_tokener_parse(bundle_text);
    if (!bundle)
        printf("    output is not JSON: %.200s\n", bundle_text);
    return bundle != NULL;
}

static inline json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static inline const char *str(json_object *o, const char *key)
{
    json_object *v = get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static inline json_object *at(json_object *array, size_t i)
{
    return array && json_object_is_type(array, json_type_array) &&
                   i < json_object_array_length(array)
               ? json_object_array_get_idx(array, i)
               : NULL;
}

static inline size_t len(json_object *array)
{
    return array && json_object_is_type(array, json_type_array) ? json_object_array_length(array) : 0;
}

#endif
