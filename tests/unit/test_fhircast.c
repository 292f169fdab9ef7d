/*
 * test_fhircast.c - the pure steps of the FHIRcast client (src/deliver/fhircast.c, issue
 * 15): reading a Get Current Context answer (also hostile ones), reading the SR's patient
 * and study from its Bundle, matching them (patient identifier with and without system,
 * study UID in both forms, a context without a study), and the updates Bundle (the
 * Observations and what they reference of the shared types, references rewritten).
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "deliver/fhircast.h"
#include "deliver/fhirjson.h"

static const char open_ctx[] =
    "{\"context.type\":\"DiagnosticReport\",\"context.versionId\":\"v1\",\"context\":["
    "{\"key\":\"report\",\"resource\":{\"resourceType\":\"DiagnosticReport\",\"id\":\"r1\"}},"
    "{\"key\":\"patient\",\"resource\":{\"resourceType\":\"Patient\",\"id\":\"p1\",\"identifier\":["
    "{\"system\":\"urn:oid:9.9\",\"value\":\"MRN-7\"},{\"value\":\"PID-1\"}]}},"
    "{\"key\":\"study\",\"resource\":{\"resourceType\":\"ImagingStudy\",\"id\":\"s1\",\"identifier\":["
    "{\"system\":\"urn:dicom:uid\",\"value\":\"urn:oid:1.2.3\"},{\"system\":\"urn:dicom:uid\",\"value\":\"1.2.4\"}]}}]}";

TEST(reads_the_open_context)
{
    s2f_cast_context ctx;
    s2f_error err = {0};
    CHECK(s2f_cast_context_read(open_ctx, strlen(open_ctx), &ctx, &err) == S2F_OK);
    CHECK_STR(ctx.type, "DiagnosticReport");
    CHECK_STR(ctx.version, "v1");
    CHECK_STR(ctx.report_id, "r1");
    CHECK_STR(ctx.patient_id, "p1");
    CHECK_STR(ctx.study_id, "s1");
    CHECK(ctx.n_patient == 2 && ctx.n_study == 2);
    CHECK_STR(ctx.patient_system[0], "urn:oid:9.9");
    CHECK_STR(ctx.patient_value[1], "PID-1");
    CHECK_STR(ctx.study_uid[0], "1.2.3");
    CHECK_STR(ctx.study_uid[1], "1.2.4");
}

TEST(hostile_contexts)
{
    const char *bad[] = {"", "[]", "{\"context\":{}}", "{\"context\":[", "nul", "{\"context.type\":3}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s2f_cast_context ctx;
        s2f_error err = {0};
        CHECK(s2f_cast_context_read(bad[i], strlen(bad[i]), &ctx, &err) == S2F_EFORMAT);
    }
    /* wrong shapes inside an array: read as absent */
    const char *odd = "{\"context.type\":\"DiagnosticReport\",\"context\":[1,{\"key\":2},"
                      "{\"key\":\"patient\",\"resource\":{\"resourceType\":\"Patient\",\"identifier\":{}}}]}";
    s2f_cast_context ctx;
    s2f_error err = {0};
    CHECK(s2f_cast_context_read(odd, strlen(odd), &ctx, &err) == S2F_OK);
    CHECK(ctx.n_patient == 0 && ctx.report_id[0] == 0 && ctx.version[0] == 0);
}

TEST(matching_rules)
{
    s2f_cast_context ctx;
    s2f_error err = {0};
    char why[400];
    CHECK(s2f_cast_context_read(open_ctx, strlen(open_ctx), &ctx, &err) == S2F_OK);
    s2f_cast_subject sub = {.patient_value = "PID-1", .study_uid = "1.2.3"};
    CHECK(s2f_cast_matches(&ctx, &sub, why, sizeof why) == 1);          /* no system: value */
    strcpy(sub.study_uid, "1.2.4");
    CHECK(s2f_cast_matches(&ctx, &sub, why, sizeof why) == 1);          /* bare UID form */
    s2f_cast_subject sys = {.patient_system = "urn:oid:9.9", .patient_value = "MRN-7", .study_uid = "1.2.3"};
    CHECK(s2f_cast_matches(&ctx, &sys, why, sizeof why) == 1);
    strcpy(sys.patient_system, "urn:oid:8.8");                          /* other issuer */
    CHECK(s2f_cast_matches(&ctx, &sys, why, sizeof why) == 0);
    CHECK(strstr(why, "another patient") != NULL);
    s2f_cast_subject other_study = {.patient_value = "PID-1", .study_uid = "1.2.5"};
    CHECK(s2f_cast_matches(&ctx, &other_study, why, sizeof why) == 0);
    CHECK(strstr(why, "another study") != NULL);
    ctx.n_study = 0;                                                    /* no study: no match */
    CHECK(s2f_cast_matches(&ctx, &sub, why, sizeof why) == 0);
    CHECK(strstr(why, "names no ImagingStudy") != NULL);
    strcpy(ctx.type, "Patient");
    CHECK(s2f_cast_matches(&ctx, &sub, why, sizeof why) == 0);
    CHECK(strstr(why, "no DiagnosticReport context") != NULL);
}

static const char bundle[] =
    "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
    "{\"fullUrl\":\"urn:uuid:d1\",\"resource\":{\"resourceType\":\"Device\",\"id\":\"d1\"}},"
    "{\"fullUrl\":\"urn:uuid:d2\",\"resource\":{\"resourceType\":\"Device\",\"id\":\"d2\"}},"
    "{\"fullUrl\":\"urn:uuid:pr\",\"resource\":{\"resourceType\":\"Practitioner\",\"id\":\"pr\"}},"
    "{\"fullUrl\":\"urn:uuid:is\",\"resource\":{\"resourceType\":\"ImagingSelection\",\"id\":\"is\","
    "\"derivedFrom\":[{\"reference\":\"urn:uuid:d2\"}]}},"
    "{\"fullUrl\":\"urn:uuid:o1\",\"resource\":{\"resourceType\":\"Observation\",\"id\":\"o1\","
    "\"subject\":{\"type\":\"Patient\",\"identifier\":{\"value\":\"PID-1\"}},"
    "\"partOf\":[{\"type\":\"ImagingStudy\",\"identifier\":{\"system\":\"urn:dicom:uid\",\"value\":\"urn:oid:1.2.3\"}}],"
    "\"performer\":[{\"reference\":\"urn:uuid:pr\"}],\"derivedFrom\":[{\"reference\":\"urn:uuid:is\"}],"
    "\"hasMember\":[{\"reference\":\"urn:uuid:o2\"}]}},"
    "{\"fullUrl\":\"urn:uuid:o2\",\"resource\":{\"resourceType\":\"Observation\",\"id\":\"o2\"}}]}";

TEST(reads_the_srs_subject)
{
    json_object *b = s2f_fhirjson_parse(bundle, strlen(bundle));
    s2f_cast_subject sub;
    s2f_error err = {0};
    s2f_code rc = s2f_cast_subject_read(b, &sub, &err);
    json_object_put(b);
    CHECK(rc == S2F_OK);
    CHECK_STR(sub.patient_value, "PID-1");
    CHECK_STR(sub.patient_system, "");
    CHECK_STR(sub.study_uid, "1.2.3");
    json_object *empty = s2f_fhirjson_parse("{\"entry\":[]}", 12);
    CHECK(s2f_cast_subject_read(empty, &sub, &err) == S2F_ELOOKUP);
    json_object_put(empty);
}

TEST(updates_take_observations_and_what_they_reference)
{
    json_object *b = s2f_fhirjson_parse(bundle, strlen(bundle));
    size_t n = 0;
    json_object *u = s2f_cast_updates(b, "B1", &n);
    json_object_put(b);
    CHECK(u != NULL);
    /* o1, is (referenced by o1), d2 (referenced by is: transitively), o2; not d1, not pr */
    const char *want[] = {"Device/d2", "ImagingSelection/is", "Observation/o1", "Observation/o2"};
    json_object *entries = s2f_fhirjson_member(u, "entry");
    int ok = n == 4 && json_object_array_length(entries) == 4;
    for (size_t i = 0; ok && i < 4; i++) {
        json_object *req = s2f_fhirjson_member(json_object_array_get_idx(entries, i), "request");
        ok = !strcmp(s2f_fhirjson_string(req, "method"), "PUT") &&
             !strcmp(s2f_fhirjson_string(req, "url"), want[i]);
    }
    const char *text = json_object_to_json_string_ext(u, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    int rewritten = strstr(text, "urn:uuid") == NULL && strstr(text, "\"reference\":\"Practitioner/pr\"") &&
                    strstr(text, "\"reference\":\"ImagingSelection/is\"") && strstr(text, "\"id\":\"B1\"") &&
                    strstr(text, "\"type\":\"transaction\"");
    json_object_put(u);
    CHECK(ok);
    CHECK(rewritten);
}

int main(void)
{
    RUN(reads_the_open_context);
    RUN(hostile_contexts);
    RUN(matching_rules);
    RUN(reads_the_srs_subject);
    RUN(updates_take_observations_and_what_they_reference);
    return check_failed_total != 0;
}
