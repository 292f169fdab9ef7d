/*
 * test_fhir_observations.c - unit tests of the four Observation kinds (src/fhir/
 * observations.c): measurement groups (M17, M18, M19, M12), measurements (M20), qualitative
 * evaluations (M21, M15), derived measurements (M14), devices (M22), performers (M10),
 * times (M9) and the R4 form (M25). Each test converts a small DICOM JSON report with
 * s2f_report_read + s2f_fhir_write_bundle into memory and checks the Bundle with json-c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "check.h"
#include "fhir/fhir.h"

/* ---- DICOM JSON builders (as in test_report.c) ------------------------------------------- */

#include "sr_json.h"
#define OBSUID(uid) ",\"0040A171\":{\"vr\":\"UI\",\"Value\":[\"" uid "\"]}"
#define CONTAINER(rel, v, s, m, ...)                                                        \
    "{" ITEM(rel, "CONTAINER") "," CONCEPT(v, s, m) ","                                     \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" KIDS(__VA_ARGS__) "}"
#define GROUP_UID(uid, ...)                                                                 \
    "{" ITEM("CONTAINS", "CONTAINER") "," CONCEPT("125007", "DCM", "Measurement Group") ","  \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" OBSUID(uid) KIDS(__VA_ARGS__) "}"
#define GROUP(...) CONTAINER("CONTAINS", "125007", "DCM", "Measurement Group", __VA_ARGS__)
#define DATEITEM(rel, vt, vr, tag, v, m, value) \
    "{" ITEM(rel, vt) "," CONCEPT(v, "99X", m) ",\"" tag "\":{\"vr\":\"" vr "\",\"Value\":[\"" value "\"]}}"
#define UNITS(v, s, m) "\"004008EA\":{\"vr\":\"SQ\",\"Value\":[" CODE(v, s, m) "]}"
/* A NUM with a Measured Value Sequence item made of `mv`, then `extra` (more members). */
#define NUMX(rel, v, s, m, mv, extra)                                                        \
    "{" ITEM(rel, "NUM") "," CONCEPT(v, s, m) ",\"0040A300\":{\"vr\":\"SQ\",\"Value\":[{"    \
    mv "}]}" extra "}"
#define DS(value) "\"0040A30A\":{\"vr\":\"DS\",\"Value\":[\"" value "\"]}"
#define MM UNITS("mm", "UCUM", "millimeter")
#define NUM(rel, v, s, m, value, ...) NUMX(rel, v, s, m, DS(value) "," MM, __VA_ARGS__)
/* A NUM without a value: only a Numeric Value Qualifier. */
#define NUMQ(v, m, q, qm)                                                                   \
    "{" ITEM("CONTAINS", "NUM") "," CONCEPT(v, "99X", m) ","                                 \
    "\"0040A301\":{\"vr\":\"SQ\",\"Value\":[" CODE(q, "DCM", qm) "]}}"
#define IMAGE(rel, v, s, m, cls, inst)                                                      \
    "{" ITEM(rel, "IMAGE") "," CONCEPT(v, s, m) ",\"00081199\":{\"vr\":\"SQ\",\"Value\":[{"  \
    "\"00081150\":{\"vr\":\"UI\",\"Value\":[\"" cls "\"]},"                                  \
    "\"00081155\":{\"vr\":\"UI\",\"Value\":[\"" inst "\"]}}]}}"
#define SCOORD(rel, ...)                                                                    \
    "{" ITEM(rel, "SCOORD") "," CONCEPT("111030", "DCM", "Image Region") ","                \
    "\"00700023\":{\"vr\":\"CS\",\"Value\":[\"POINT\"]},"                                    \
    "\"00700022\":{\"vr\":\"FL\",\"Value\":[1,2]}" KIDS(__VA_ARGS__) "}"
#define SRC_IMAGE IMAGE("SELECTED FROM", "111040", "DCM", "Original Source", \
                        "1.2.840.10008.5.1.4.1.1.2", "9.9.9")
#define SEGMENT IMAGE("CONTAINS", "121191", "DCM", "Referenced Segment", \
                      "1.2.840.10008.5.1.4.1.1.66.4", "8.8")
#define SITE_ALONE CODEITEM("HAS CONCEPT MOD", "363698007", "SCT", "Finding Site", \
                            CODE("39607008", "SCT", "Lung"))
#define SITE_LEFT CODEITEM_KIDS("HAS CONCEPT MOD", "363698007", "SCT", "Finding Site",   \
    CODE("39607008", "SCT", "Lung"),                                                      \
    CODEITEM("HAS CONCEPT MOD", "272741003", "SCT", "Laterality", CODE("7771000", "SCT", "Left")))
#define TRACKING TEXTITEM("HAS OBS CONTEXT", "112039", "DCM", "Tracking Identifier", "Nodule 1") "," \
                 UIDITEM("HAS OBS CONTEXT", "112040", "DCM", "Tracking Unique Identifier", "1.2.100")
#define ALGO(name) TEXTITEM("HAS CONCEPT MOD", "111001", "DCM", "Algorithm Name", name) "," \
                   TEXTITEM("HAS CONCEPT MOD", "111003", "DCM", "Algorithm Version", "1.0")
#define DOC(...)                                                                            \
    "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.5.1.4.1.1.88.22\"]},"           \
    "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"1.2.3\"]},"                                    \
    "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"1.2.4\"]},"                                    \
    "\"0020000E\":{\"vr\":\"UI\",\"Value\":[\"1.2.5\"]},"                                    \
    "\"00100020\":{\"vr\":\"LO\",\"Value\":[\"PID1\"]},"                                     \
    "\"00080023\":{\"vr\":\"DA\",\"Value\":[\"20240724\"]},"                                 \
    "\"00080033\":{\"vr\":\"TM\",\"Value\":[\"082342\"]},"                                   \
    "\"00080201\":{\"vr\":\"SH\",\"Value\":[\"+0100\"]},"                                    \
    ITEM("x", "CONTAINER") "," CONCEPT("126000", "DCM", "Imaging Measurement Report") ","    \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" KIDS(__VA_ARGS__) "}"
#define MEASUREMENTS(...) CONTAINER("CONTAINS", "126010", "DCM", "Imaging Measurements", __VA_ARGS__)

/* ---- conversion and inspection ------------------------------------------------------------ */

static s2f_doc *doc;
static json_object *bundle;
static char *raw;
static size_t raw_n;
static s2f_fhir_stats stats;
static const char *literal_refs[3]; /* Patient, ServiceRequest, ImagingStudy found (delivery) */

static void release(void)
{
    if (bundle)
        json_object_put(bundle);
    bundle = NULL;
    free(raw);
    raw = NULL;
    s2f_doc_free(doc);
    doc = NULL;
}

static int convert(const char *json, int r4)
{
    s2f_error err = {0};
    s2f_report rep;
    release();
    doc = s2f_doc_read(json, strlen(json), NULL, &err);
    if (!doc || s2f_report_read(doc, &rep, &err) != S2F_OK) {
        printf("    read failed: %s\n", err.message);
        return 0;
    }
    FILE *mem = open_memstream(&raw, &raw_n);
    if (!mem)
        return 0;
    s2f_sink sink;
    s2f_sink_init(&sink, mem);
    s2f_fhir_options opt = {0};
    opt.r4 = r4;
    opt.patient_ref = literal_refs[0];
    opt.service_request_ref = literal_refs[1];
    opt.imaging_study_ref = literal_refs[2];
    s2f_code rc = s2f_fhir_write_bundle(&rep, &opt, &sink, &stats, &err);
    s2f_sink_finish(&sink);
    fclose(mem);
    if (rc != S2F_OK) {
        printf("    bundle failed: %s\n", err.message);
        return 0;
    }
    bundle = json_tokener_parse(raw);
    if (!bundle)
        printf("    not JSON: %.200s\n", raw);
    return bundle != NULL;
}

/* The value at a dotted path ("code.coding.0.code"; numbers index arrays), or NULL. */
static json_object *at(json_object *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *p = strtok_r(buf, ".", &save); p && o; p = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array)) {
            char *end;
            long i = strtol(p, &end, 10);
            o = *end || i < 0 ? NULL : json_object_array_get_idx(o, (size_t)i);
        } else if (json_object_is_type(o, json_type_object)) {
            json_object *v = NULL;
            o = json_object_object_get_ex(o, p, &v) ? v : NULL;
        } else {
            o = NULL;
        }
    }
    return o;
}

static const char *str(json_object *o, const char *path)
{
    json_object *v = at(o, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static size_t len(json_object *o, const char *path)
{
    json_object *v = at(o, path);
    return v && json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
}

static size_t n_entries(void)
{
    return len(bundle, "entry");
}

/* The first Observation whose code.coding[0].code (or code.text) is `code`. */
static json_object *observation(const char *code)
{
    for (size_t i = 0; i < n_entries(); i++) {
        json_object *r = at(json_object_array_get_idx(at(bundle, "entry"), i), "resource");
        const char *type = str(r, "resourceType");
        if (!type || strcmp(type, "Observation"))
            continue;
        const char *c = str(r, "code.coding.0.code");
        if (!c)
            c = str(r, "code.text");
        if (c && !strcmp(c, code))
            return r;
    }
    return NULL;
}

/* The resource a Reference object points at (by fullUrl), or NULL. */
static json_object *resolve(json_object *ref)
{
    const char *urn = str(ref, "reference");
    for (size_t i = 0; urn && i < n_entries(); i++) {
        json_object *e = json_object_array_get_idx(at(bundle, "entry"), i);
        const char *full = str(e, "fullUrl");
        if (full && !strcmp(full, urn))
            return at(e, "resource");
    }
    return NULL;
}

static const char *url_of(json_object *resource)
{
    for (size_t i = 0; i < n_entries(); i++) {
        json_object *e = json_object_array_get_idx(at(bundle, "entry"), i);
        if (at(e, "resource") == resource)
            return str(e, "fullUrl");
    }
    return NULL;
}

/* The profile of the resource a Reference points at ("" when none). */
static const char *profile_of(json_object *ref)
{
    const char *p = str(resolve(ref), "meta.profile.0");
    const char *base = S2F_PROFILE_BASE;
    if (!p)
        return "";
    return strncmp(p, base, strlen(base)) ? p : p + strlen(base);
}

/* Number of elements of array `path` of r whose reference resolves to `profile`. */
static size_t count_refs(json_object *r, const char *path, const char *profile)
{
    size_t n = 0;
    for (size_t i = 0; i < len(r, path); i++)
        if (!strcmp(profile_of(json_object_array_get_idx(at(r, path), i)), profile))
            n++;
    return n;
}

/* ---- groups (M17, M18) -------------------------------------------------------------------- */

static const char group_doc[] = DOC(
    PNITEM("HAS OBS CONTEXT", "Root^Person") ","
    MEASUREMENTS(
        GROUP(CODEITEM("CONTAINS", "276214006", "SCT", "Finding category", CODE("49755003", "SCT", "Abnormal")) ","
              CODEITEM("CONTAINS", "121071", "DCM", "Finding", CODE("27925004", "SCT", "Nodule")) ","
              CODEITEM("HAS CONCEPT MOD", "370129005", "SCT", "Measurement Method", CODE("1", "99X", "Manual")) ","
              ALGO("GroupAlgo") ","
              NUM("CONTAINS", "81827009", "SCT", "Diameter", "10.5", "") ","
              CODEITEM("CONTAINS", "371928007", "SCT", "Significance", CODE("1", "SCT", "Not significant")) ","
              NUM("CONTAINS", "118565006", "SCT", "Volume", "0.000012345678901234", "") ","
              TEXTITEM("CONTAINS", "2", "99X", "Comment", "looks benign")) ","
        GROUP(NUM("CONTAINS", "3", "99X", "Plain", "1", ""))));

TEST(m17_group_code_category_value_method)
{
    CHECK(convert(group_doc, 0));
    json_object *g = observation("49755003");
    CHECK(g);
    CHECK_STR(str(g, "meta.profile.0"), S2F_PROFILE_BASE "imaging-measurement-group");
    CHECK_STR(str(g, "code.coding.0.system"), "http://snomed.info/sct");
    CHECK(len(g, "category") == 1);
    CHECK_STR(str(g, "category.0.coding.0.code"), "125007");
    CHECK_STR(str(g, "category.0.coding.0.system"), S2F_SYSTEM_DCM);
    CHECK_STR(str(g, "valueCodeableConcept.coding.0.code"), "27925004");
    CHECK_STR(str(g, "method.coding.0.code"), "1");
    CHECK_STR(str(g, "status"), "preliminary");
    CHECK_STR(str(g, "subject.identifier.value"), "PID1");
    CHECK_STR(str(g, "partOf.0.identifier.value"), "urn:oid:1.2.4");
    CHECK(!at(g, "identifier"));
}

TEST(m17_has_member_in_document_order)
{
    CHECK(convert(group_doc, 0));
    json_object *g = observation("49755003");
    CHECK(g && len(g, "hasMember") == 4);
    const char *order[] = {"81827009", "371928007", "118565006", "2"};
    for (size_t i = 0; i < 4; i++) {
        json_object *member = resolve(at(g, "hasMember") ? json_object_array_get_idx(at(g, "hasMember"), i) : NULL);
        CHECK(member);
        CHECK(member == observation(order[i]));
    }
    CHECK(count_refs(g, "hasMember", "imaging-measurement") == 2);
    CHECK(count_refs(g, "hasMember", "imaging-qualitative-evaluation") == 2);
}

TEST(m17_no_category_when_code_is_measurement_group)
{
    /* the guide's invariant measurement-group-category: code DCM#125007 -> no category */
    CHECK(convert(group_doc, 0));
    size_t groups = 0;
    for (size_t i = 0; i < n_entries(); i++) {
        json_object *r = at(json_object_array_get_idx(at(bundle, "entry"), i), "resource");
        const char *p = str(r, "meta.profile.0");
        if (!p || strcmp(p, S2F_PROFILE_BASE "imaging-measurement-group"))
            continue;
        groups++;
        const char *code = str(r, "code.coding.0.code");
        CHECK(code);
        if (!strcmp(code, "125007")) {
            CHECK_STR(str(r, "code.coding.0.system"), S2F_SYSTEM_DCM);
            CHECK_STR(str(r, "code.coding.0.display"), "Measurement Group");
            CHECK(!at(r, "category"));
            CHECK(!at(r, "valueCodeableConcept"));
            CHECK(len(r, "hasMember") == 1);
        }
    }
    CHECK(groups == 2);
}

TEST(m9_m10_times_and_performers)
{
    CHECK(convert(group_doc, 0));
    json_object *g = observation("49755003");
    CHECK(g);
    CHECK_STR(str(g, "issued"), "2024-07-24T08:23:42+01:00");
    CHECK_STR(str(g, "effectiveDateTime"), str(g, "issued"));
    CHECK(len(g, "performer") == 1);
    json_object *p = resolve(at(g, "performer.0"));
    CHECK(p);
    CHECK_STR(str(p, "resourceType"), "Practitioner");
    json_object *m = observation("81827009");
    CHECK(m && len(m, "performer") == 1);
    CHECK_STR(str(m, "issued"), "2024-07-24T08:23:42+01:00");
}

/* M10, M22 (issue 10 defect 6): a device observer is no performer, but the device of the
 * Observations in its context that name no algorithm of their own. */
TEST(m10_m22_device_observer_is_the_device_not_a_performer)
{
    static const char j[] = DOC(MEASUREMENTS(GROUP(
        CODEITEM("HAS OBS CONTEXT", "121005", "DCM", "Observer Type", CODE("121007", "DCM", "Device")) ","
        UIDITEM("HAS OBS CONTEXT", "121012", "DCM", "Device Observer UID", "1.2.99") ","
        NUM("CONTAINS", "5", "99X", "X", "1", ""))));
    CHECK(convert(j, 0));
    json_object *g = observation("125007");
    CHECK(g && !at(g, "performer"));
    CHECK_STR(profile_of(at(g, "device")), "dicom-participant-device");
    json_object *m = observation("5");
    CHECK(m && !at(m, "performer"));
    CHECK_STR(profile_of(at(m, "device")), "dicom-participant-device");
}

TEST(m18_tracking_ids_without_site_are_identifiers)
{
    static const char j[] = DOC(MEASUREMENTS(GROUP_UID("1.2.77", TRACKING "," NUM("CONTAINS", "5", "99X", "X", "1", ""))));
    CHECK(convert(j, 0));
    json_object *g = observation("125007");
    CHECK(g && len(g, "identifier") == 3);
    CHECK_STR(str(g, "identifier.0.type.coding.0.code"), "observation-uid");
    CHECK_STR(str(g, "identifier.0.value"), "urn:oid:1.2.77");
    CHECK_STR(str(g, "identifier.1.type.coding.0.code"), "112039");
    CHECK_STR(str(g, "identifier.1.type.coding.0.system"), S2F_SYSTEM_DCM);
    CHECK_STR(str(g, "identifier.1.value"), "Nodule 1");
    CHECK_STR(str(g, "identifier.2.type.coding.0.code"), "112040");
    CHECK_STR(str(g, "identifier.2.system"), "urn:dicom:uid");
    CHECK_STR(str(g, "identifier.2.value"), "urn:oid:1.2.100");
    CHECK(!at(g, "bodySite") && !at(g, "bodyStructure"));
    /* M12: the group has an Observation UID: its source SR content item */
    CHECK(len(g, "derivedFrom") == 1);
    CHECK_STR(profile_of(at(g, "derivedFrom.0")), "source-sr-content-item");
}

TEST(m18_site_alone_is_body_site)
{
    static const char j[] = DOC(MEASUREMENTS(GROUP(SITE_ALONE "," NUM("CONTAINS", "5", "99X", "X", "1", ""))));
    CHECK(convert(j, 0));
    json_object *g = observation("125007");
    CHECK(g);
    CHECK_STR(str(g, "bodySite.coding.0.code"), "39607008");
    CHECK(!at(g, "bodyStructure"));
    /* M20: the measurement takes the group's site */
    CHECK_STR(str(observation("5"), "bodySite.coding.0.code"), "39607008");
}

TEST(m18_site_with_tracking_ids_is_a_body_structure)
{
    static const char j[] = DOC(MEASUREMENTS(GROUP(TRACKING "," SITE_LEFT "," NUM("CONTAINS", "5", "99X", "X", "1", ""))));
    CHECK(convert(j, 0));
    json_object *g = observation("125007");
    CHECK(g && !at(g, "bodySite") && !at(g, "identifier"));
    json_object *bs = resolve(at(g, "bodyStructure"));
    CHECK(bs);
    CHECK_STR(str(bs, "resourceType"), "BodyStructure");
    json_object *m = observation("5");
    CHECK(m && resolve(at(m, "bodyStructure")) == bs);
    CHECK(!at(m, "identifier"));
}

TEST(m20_own_site_method_and_tracking_ids)
{
    static const char j[] = DOC(MEASUREMENTS(GROUP(
        SITE_ALONE ","
        CODEITEM("HAS CONCEPT MOD", "370129005", "SCT", "Measurement Method", CODE("1", "99X", "Manual")) ","
        NUM("CONTAINS", "5", "99X", "X", "1",
            KIDS(SITE_LEFT "," CODEITEM("HAS CONCEPT MOD", "370129005", "SCT", "Measurement Method", CODE("2", "99X", "Auto")))) ","
        NUM("CONTAINS", "6", "99X", "Y", "1",
            KIDS(TEXTITEM("HAS OBS CONTEXT", "112039", "DCM", "Tracking Identifier", "T6"))))));
    CHECK(convert(j, 0));
    json_object *x = observation("5"), *y = observation("6");
    CHECK(x && y);
    CHECK_STR(str(x, "method.coding.0.code"), "2");
    CHECK(resolve(at(x, "bodyStructure")));
    CHECK(!at(x, "bodySite"));
    CHECK_STR(str(y, "method.coding.0.code"), "1");
    CHECK_STR(str(y, "bodySite.coding.0.code"), "39607008");
    /* its own tracking id, no BodyStructure of its own to carry it: an identifier */
    CHECK(len(y, "identifier") == 1);
    CHECK_STR(str(y, "identifier.0.type.coding.0.code"), "112039");
    CHECK_STR(str(y, "identifier.0.value"), "T6");
}

/* ---- measurements (M20) ------------------------------------------------------------------- */

TEST(m20_value_text_is_kept_exactly)
{
    CHECK(convert(group_doc, 0));
    json_object *m = observation("118565006");
    CHECK(m);
    CHECK_STR(str(m, "meta.profile.0"), S2F_PROFILE_BASE "imaging-measurement");
    CHECK(!at(m, "category"));
    CHECK(strstr(raw, "\"value\":0.000012345678901234,"));
    CHECK_STR(str(m, "valueQuantity.unit"), "millimeter");
    CHECK_STR(str(m, "valueQuantity.system"), "http://unitsofmeasure.org");
    CHECK_STR(str(m, "valueQuantity.code"), "mm");
    CHECK(!at(m, "valueQuantity.extension"));
    CHECK(!at(m, "hasMember"));
}

TEST(m20_floating_point_value_first)
{
    static const char j[] = DOC(MEASUREMENTS(GROUP(
        NUMX("CONTAINS", "5", "99X", "X", DS("1.50000") ",\"0040A161\":{\"vr\":\"FD\",\"Value\":[1.25]}," MM, ""))));
    CHECK(convert(j, 0));
    json_object *m = observation("5");
    CHECK(m);
    CHECK(json_object_get_double(at(m, "valueQuantity.value")) == 1.25);
    CHECK(strstr(raw, "\"value\":1.25,"));
}

TEST(m20_qualifiers_give_data_absent_reasons)
{
    static const char j[] = DOC(MEASUREMENTS(GROUP(
        NUMQ("a", "A", "114000", "Not a number") ","
        NUMQ("b", "B", "114001", "Negative Infinity") ","
        NUMQ("c", "C", "114002", "Positive Infinity") ","
        NUMQ("d", "D", "114003", "Divide by zero") ","
        NUMQ("e", "E", "114006", "Measurement failure") ","
        NUMQ("f", "F", "114009", "Value out of range") ","
        NUMQ("g", "G", "114010", "Value unknown") ","
        NUMQ("h", "H", "114011", "Value indeterminate") ","
        NUMQ("i", "I", "999999", "Something else") ","
        NUMX("CONTAINS", "j", "99X", "J", DS("abc") "," MM, "") ","
        NUMX("CONTAINS", "k", "99X", "K", MM, ""))));
    static const struct { const char *code, *reason; } cases[] = {
        {"a", "not-a-number"}, {"b", "negative-infinity"}, {"c", "positive-infinity"},
        {"d", "error"}, {"e", "error"}, {"f", "error"}, {"g", "unknown"}, {"h", "unknown"},
        {"i", "unknown"}, {"j", "error"}, {"k", "unknown"},
    };
    CHECK(convert(j, 0));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *m = observation(cases[i].code);
        CHECK(m);
        CHECK(at(m, "valueQuantity"));
        CHECK(!at(m, "valueQuantity.value"));
        CHECK(len(m, "valueQuantity.extension") == 1);
        CHECK_STR(str(m, "valueQuantity.extension.0.url"),
                  "http://hl7.org/fhir/StructureDefinition/data-absent-reason");
        CHECK_STR(str(m, "valueQuantity.extension.0.valueCode"), cases[i].reason);
    }
    /* the unit is kept when there is one */
    CHECK_STR(str(observation("j"), "valueQuantity.unit"), "millimeter");
    CHECK_STR(str(observation("k"), "valueQuantity.code"), "mm");
    CHECK(!strstr(raw, "NaN") && !strstr(raw, "Infinity"));
}

TEST(m20_components)
{
    static const char j[] = DOC(MEASUREMENTS(GROUP(
        NUM("CONTAINS", "5", "99X", "X", "10",
            KIDS(CODEITEM("HAS CONCEPT MOD", "121401", "DCM", "Derivation", CODE("255605001", "SCT", "Minimum")) ","
                 NUM("INFERRED FROM", "k1", "99X", "Kernel", "2", "") ","
                 TEXTITEM("HAS PROPERTIES", "t1", "99X", "Note", "sharp") ","
                 DATEITEM("HAS PROPERTIES", "DATE", "DA", "0040A121", "d1", "Day", "20240102") ","
                 DATEITEM("HAS PROPERTIES", "TIME", "TM", "0040A122", "t2", "Time", "0830") ","
                 DATEITEM("HAS PROPERTIES", "DATETIME", "DT", "0040A120", "d2", "When", "20240102083000.5-0500") ","
                 DATEITEM("HAS PROPERTIES", "DATETIME", "DT", "0040A120", "d3", "Month", "202401"))))));
    CHECK(convert(j, 0));
    json_object *m = observation("5");
    CHECK(m && len(m, "component") == 7);
    CHECK_STR(str(m, "component.0.code.coding.0.code"), "121401");
    CHECK_STR(str(m, "component.0.valueCodeableConcept.coding.0.code"), "255605001");
    CHECK_STR(str(m, "component.1.code.coding.0.code"), "k1");
    CHECK(json_object_get_int(at(m, "component.1.valueQuantity.value")) == 2);
    CHECK_STR(str(m, "component.1.valueQuantity.code"), "mm");
    CHECK_STR(str(m, "component.2.valueString"), "sharp");
    CHECK_STR(str(m, "component.3.valueDateTime"), "2024-01-02");
    CHECK_STR(str(m, "component.4.valueTime"), "08:30:00");
    CHECK_STR(str(m, "component.5.valueDateTime"), "2024-01-02T08:30:00.5-05:00");
    CHECK_STR(str(m, "component.6.valueDateTime"), "2024-01");
}

/* ---- image references (M19, M12), devices (M22) -------------------------------------------- */

static const char refs_doc[] = DOC(MEASUREMENTS(
    GROUP_UID("1.2.77",
        ALGO("GroupAlgo") ","
        SCOORD("CONTAINS", SRC_IMAGE) ","
        SEGMENT ","
        NUMX("CONTAINS", "5", "99X", "X", DS("1") "," MM,
             KIDS(SCOORD("INFERRED FROM", SRC_IMAGE))) ","
        NUMX("CONTAINS", "6", "99X", "Y", DS("2") "," MM, KIDS(ALGO("NumAlgo"))) ","
        CODEITEM("CONTAINS", "7", "99X", "Eval", CODE("1", "99X", "yes")))));

TEST(m19_m12_derived_from)
{
    CHECK(convert(refs_doc, 0));
    json_object *g = observation("125007");
    CHECK(g && len(g, "derivedFrom") == 3);
    CHECK(count_refs(g, "derivedFrom", "image-region-2d") == 1);
    CHECK(count_refs(g, "derivedFrom", "referenced-segment") == 1);
    CHECK(count_refs(g, "derivedFrom", "source-sr-content-item") == 1);
    json_object *x = observation("5"), *y = observation("6"), *e = observation("7");
    CHECK(x && y && e);
    CHECK(len(x, "derivedFrom") == 3); /* its own region + the group's two */
    CHECK(count_refs(x, "derivedFrom", "image-region-2d") == 2);
    CHECK(count_refs(x, "derivedFrom", "source-sr-content-item") == 0);
    CHECK(len(y, "derivedFrom") == 2);
    CHECK(len(e, "derivedFrom") == 2);
    for (size_t i = 0; i < 3; i++)
        CHECK(resolve(json_object_array_get_idx(at(x, "derivedFrom"), i)));
}

TEST(m22_device_is_own_algorithm_else_equipment)
{
    CHECK(convert(refs_doc, 0));
    json_object *g = observation("125007"), *x = observation("5"), *y = observation("6"),
                *e = observation("7");
    CHECK(g && x && y && e);
    CHECK_STR(profile_of(at(g, "device")), "algorithm-identification");
    CHECK_STR(profile_of(at(x, "device")), "dicom-general-equipment"); /* not the group's */
    CHECK_STR(profile_of(at(y, "device")), "algorithm-identification");
    CHECK(resolve(at(y, "device")) != resolve(at(g, "device")));
    CHECK_STR(profile_of(at(e, "device")), "dicom-general-equipment");
}

/* ---- evaluations (M21, M15) --------------------------------------------------------------- */

TEST(m21_evaluations)
{
    static const char j[] = DOC(
        MEASUREMENTS(GROUP(SEGMENT "," CODEITEM("CONTAINS", "7", "99X", "Eval", CODE("1", "99X", "yes")) ","
                           TEXTITEM("CONTAINS", "8", "99X", "Note", "benign"))) ","
        CONTAINER("CONTAINS", "C0034375", "UMLS", "Qualitative Evaluations",
                  TEXTITEM("CONTAINS", "9", "99X", "Impression", "stable")));
    CHECK(convert(j, 0));
    json_object *c = observation("7"), *t = observation("8"), *d = observation("9");
    CHECK(c && t && d);
    CHECK_STR(str(c, "meta.profile.0"), S2F_PROFILE_BASE "imaging-qualitative-evaluation");
    CHECK(len(c, "category") == 1);
    CHECK_STR(str(c, "category.0.coding.0.system"), "http://terminology.hl7.org/CodeSystem/umls");
    CHECK_STR(str(c, "category.0.coding.0.code"), "C0034375");
    CHECK_STR(str(c, "category.0.coding.0.display"), "Qualitative Evaluations");
    CHECK_STR(str(c, "valueCodeableConcept.coding.0.code"), "1");
    CHECK_STR(str(t, "valueCodeableConcept.text"), "benign");
    CHECK(!at(t, "valueCodeableConcept.coding"));
    CHECK_STR(str(d, "valueCodeableConcept.text"), "stable");
    CHECK(len(c, "derivedFrom") == 1 && len(t, "derivedFrom") == 1);
    CHECK(!at(d, "derivedFrom"));
    CHECK_STR(profile_of(at(d, "device")), "dicom-general-equipment");
    CHECK_STR(str(d, "issued"), "2024-07-24T08:23:42+01:00");
}

/* ---- derived measurements (M14) ----------------------------------------------------------- */

TEST(m14_derived_measurements)
{
    static const char j[] = DOC(MEASUREMENTS(
        CONTAINER("CONTAINS", "126011", "DCM", "Derived Imaging Measurements",
            GROUP(NUM("CONTAINS", "1", "99X", "Shared", "1", "")) ","
            NUMX("CONTAINS", "2", "99X", "Sum", DS("3") "," MM,
                 OBSUID("1.2.88")
                 KIDS(CONTAINER("INFERRED FROM", "125007", "DCM", "Measurement Group",
                                NUM("CONTAINS", "3", "99X", "Own", "2", "")))))));
    CHECK(convert(j, 0));
    json_object *d = observation("2");
    CHECK(d);
    CHECK_STR(str(d, "meta.profile.0"), S2F_PROFILE_BASE "derived-imaging-measurement");
    CHECK(len(d, "category") == 1);
    CHECK_STR(str(d, "category.0.coding.0.code"), "126011");
    CHECK_STR(str(d, "category.0.coding.0.display"), "Derived Imaging Measurements");
    CHECK(json_object_get_int(at(d, "valueQuantity.value")) == 3);
    CHECK(len(d, "derivedFrom") == 3);
    CHECK(count_refs(d, "derivedFrom", "imaging-measurement-group") == 2);
    CHECK(count_refs(d, "derivedFrom", "source-sr-content-item") == 1);
    CHECK_STR(str(d, "identifier.0.value"), "urn:oid:1.2.88");
    CHECK_STR(profile_of(at(d, "device")), "dicom-general-equipment");
    /* the groups' members are ordinary measurements */
    CHECK_STR(str(observation("3"), "meta.profile.0"), S2F_PROFILE_BASE "imaging-measurement");
}

/* ---- R4 (M25) ----------------------------------------------------------------------------- */

TEST(m25_r4_form)
{
    static const char j[] = DOC(MEASUREMENTS(GROUP_UID("1.2.77",
        TRACKING "," SITE_LEFT "," SCOORD("CONTAINS", SRC_IMAGE) ","
        NUM("CONTAINS", "5", "99X", "X", "1", ""))));
    CHECK(convert(j, 1));
    json_object *g = observation("125007"), *m = observation("5");
    CHECK(g && m);
    CHECK(!at(g, "meta") && !at(m, "meta"));
    CHECK(!at(g, "bodyStructure") && !at(m, "bodyStructure"));
    CHECK_STR(str(g, "bodySite.coding.0.code"), "39607008");
    CHECK_STR(str(m, "bodySite.coding.0.code"), "39607008");
    /* no BodyStructure in R4: the tracking ids stay as identifiers */
    CHECK(len(g, "identifier") == 3);
    CHECK(!at(g, "derivedFrom") && !at(m, "derivedFrom"));
    CHECK_STR(str(g, "partOf.0.identifier.value"), "urn:oid:1.2.4");
    CHECK(len(g, "hasMember") == 1);
    CHECK_STR(str(g, "hasMember.0.reference"), url_of(m));
}

TEST(m4_m5_m6_literal_references_keep_identifiers)
{
    static const char body[] = DOC(MEASUREMENTS(GROUP(NUM("CONTAINS", "5", "99X", "X", "1", ""))));
    char j[sizeof body + 64];
    snprintf(j, sizeof j, "{\"00080050\":{\"vr\":\"SH\",\"Value\":[\"ACC9\"]},%s", body + 1);
    literal_refs[0] = "Patient/p1";
    literal_refs[1] = "ServiceRequest/s1";
    literal_refs[2] = "ImagingStudy/i1";
    int ok = convert(j, 0);
    literal_refs[0] = literal_refs[1] = literal_refs[2] = NULL;
    CHECK(ok);
    json_object *m = observation("5");
    CHECK(m);
    CHECK_STR(str(m, "subject.reference"), "Patient/p1");
    CHECK_STR(str(m, "subject.identifier.value"), "PID1");
    CHECK_STR(str(m, "basedOn.0.reference"), "ServiceRequest/s1");
    CHECK_STR(str(m, "basedOn.0.identifier.value"), "ACC9");
    CHECK_STR(str(m, "partOf.0.reference"), "ImagingStudy/i1");
    CHECK_STR(str(m, "partOf.0.identifier.value"), "urn:oid:1.2.4");
    /* without them: the logical references alone */
    CHECK(convert(j, 0));
    m = observation("5");
    CHECK(m && !at(m, "subject.reference") && !at(m, "basedOn.0.reference") && !at(m, "partOf.0.reference"));
    CHECK_STR(str(m, "basedOn.0.identifier.value"), "ACC9");
}

TEST(observations_are_counted)
{
    CHECK(convert(group_doc, 0));
    CHECK(stats.observations == 7);
}

int main(void)
{
    RUN(m17_group_code_category_value_method);
    RUN(m17_has_member_in_document_order);
    RUN(m17_no_category_when_code_is_measurement_group);
    RUN(m9_m10_times_and_performers);
    RUN(m10_m22_device_observer_is_the_device_not_a_performer);
    RUN(m18_tracking_ids_without_site_are_identifiers);
    RUN(m18_site_alone_is_body_site);
    RUN(m18_site_with_tracking_ids_is_a_body_structure);
    RUN(m20_own_site_method_and_tracking_ids);
    RUN(m20_value_text_is_kept_exactly);
    RUN(m20_floating_point_value_first);
    RUN(m20_qualifiers_give_data_absent_reasons);
    RUN(m20_components);
    RUN(m19_m12_derived_from);
    RUN(m22_device_is_own_algorithm_else_equipment);
    RUN(m21_evaluations);
    RUN(m14_derived_measurements);
    RUN(m25_r4_form);
    RUN(m4_m5_m6_literal_references_keep_identifiers);
    RUN(observations_are_counted);
    release();
    CHECK_DONE();
}
