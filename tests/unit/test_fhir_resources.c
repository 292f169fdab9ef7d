/*
 * test_fhir_resources.c - unit tests of src/fhir/resources.c: the General Equipment Device
 * (M7), AlgorithmIdentification Devices (M22), observers as Practitioner / Device (M10),
 * finding-site BodyStructures (M18) and their R4 forms (M25). Each test reads a small
 * DICOM JSON report, writes the whole Bundle (s2f_fhir_write_bundle) and inspects the
 * resources with json-c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "check.h"
#include "fhir/fhir.h"
#include "report/report.h"

#include "fhir_bundle.h"
#include "sr_json.h"
#define CONTAINER(rel, v, s, m, ...)                                                        \
    "{" ITEM(rel, "CONTAINER") "," CONCEPT(v, s, m) ","                                     \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" KIDS(__VA_ARGS__) "}"
#define NUM(rel, v, s, m, value, ...)                                                       \
    "{" ITEM(rel, "NUM") "," CONCEPT(v, s, m) ",\"0040A300\":{\"vr\":\"SQ\",\"Value\":[{"    \
    "\"0040A30A\":{\"vr\":\"DS\",\"Value\":[\"" value "\"]},"                                \
    "\"004008EA\":{\"vr\":\"SQ\",\"Value\":[" CODE("mm", "UCUM", "millimeter") "]}}]}"       \
    __VA_ARGS__ "}"
#define EQUIPMENT_UID "1.2.840.99.7"
/* A report with a header carrying the General Equipment attributes (M7). */
#define DOC(...)                                                                            \
    "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"" ENHANCED "\"]},"                            \
    "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.4\"]},"                                   \
    "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.1\"]},"                                   \
    "\"0020000E\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.2\"]},"                                   \
    "\"00100020\":{\"vr\":\"LO\",\"Value\":[\"PAT-1\"]},"                                     \
    "\"00080070\":{\"vr\":\"LO\",\"Value\":[\"ACME Imaging\"]},"                              \
    "\"00081090\":{\"vr\":\"LO\",\"Value\":[\"Measurer 3000\"]},"                             \
    "\"00181002\":{\"vr\":\"UI\",\"Value\":[\"" EQUIPMENT_UID "\"]},"                         \
    "\"00181000\":{\"vr\":\"LO\",\"Value\":[\"SN-42\"]},"                                     \
    "\"00181020\":{\"vr\":\"LO\",\"Value\":[\"1.0.3\",\"lib 2.1\"]},"                         \
    "\"0018100A\":{\"vr\":\"SQ\",\"Value\":["                                                 \
    "{\"00181009\":{\"vr\":\"UT\",\"Value\":[\"(01)00844588003288(17)141120(10)7654321D\"]}},"  \
    "{\"00181009\":{\"vr\":\"UT\",\"Value\":[\"+H123PARTNO1234567890120/$$420020216LOT123456789012345/SXYZ4567890123/16D20130202C\"]}}]}," \
    ITEM("x", "CONTAINER") "," CONCEPT("126000", "DCM", "Imaging Measurement Report") ","    \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" KIDS(__VA_ARGS__) "}"
/* The same without any equipment attribute. */
#define BARE_DOC(...)                                                                       \
    "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"" ENHANCED "\"]},"                            \
    "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.4\"]},"                                   \
    ITEM("x", "CONTAINER") "," CONCEPT("126000", "DCM", "Imaging Measurement Report") ","    \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" KIDS(__VA_ARGS__) "}"

#define MEASUREMENTS(...) CONTAINER("CONTAINS", "126010", "DCM", "Imaging Measurements", __VA_ARGS__)
#define GROUP(...) CONTAINER("CONTAINS", "125007", "DCM", "Measurement Group", __VA_ARGS__)
#define ALGO(name, version) \
    TEXTITEM("HAS CONCEPT MOD", "111001", "DCM", "Algorithm Name", name) "," \
    TEXTITEM("HAS CONCEPT MOD", "111003", "DCM", "Algorithm Version", version)
#define ALGO_FULL(name, version)                                                               \
    ALGO(name, version) ","                                                                     \
    TEXTITEM("HAS CONCEPT MOD", "111002", "DCM", "Algorithm Parameters", "threshold=0.5") ","   \
    TEXTITEM("HAS CONCEPT MOD", "111002", "DCM", "Algorithm Parameters", "kernel=B30f") ","     \
    CODEITEM("HAS CONCEPT MOD", "111000", "DCM", "Algorithm Family", CODE("123456", "99X", "Deep learning"))
#define SITE(...) CODEITEM_KIDS("HAS CONCEPT MOD", "363698007", "SCT", "Finding Site", \
                                CODE("39607008", "SCT", "Lung"), __VA_ARGS__)
#define SITE_ALONE CODEITEM("HAS CONCEPT MOD", "363698007", "SCT", "Finding Site", \
                            CODE("39607008", "SCT", "Lung"))
#define LEFT CODEITEM("HAS CONCEPT MOD", "272741003", "SCT", "Laterality", CODE("7771000", "SCT", "Left"))
#define ANTERIOR CODEITEM("HAS CONCEPT MOD", "106233006", "SCT", "Topographical modifier", \
                          CODE("255549009", "SCT", "Anterior"))
#define TRACKING(id) TEXTITEM("HAS OBS CONTEXT", "112039", "DCM", "Tracking Identifier", id)
#define TRACKING_UID(uid) UIDITEM("HAS OBS CONTEXT", "112040", "DCM", "Tracking Unique Identifier", uid)
#define DIAMETER(...) NUM("CONTAINS", "81827009", "SCT", "Diameter", "10.5", __VA_ARGS__)
#define DEVICE_OBSERVER(uid)                                                                 \
    CODEITEM("HAS OBS CONTEXT", "121005", "DCM", "Observer Type", CODE("121007", "DCM", "Device")) "," \
    UIDITEM("HAS OBS CONTEXT", "121012", "DCM", "Device Observer UID", uid)

#define PROFILE_EQUIPMENT S2F_PROFILE_BASE "dicom-general-equipment"
#define PROFILE_ALGORITHM S2F_PROFILE_BASE "algorithm-identification"
#define PROFILE_PERSON S2F_PROFILE_BASE "dicom-participant-person"
#define PROFILE_DEVICE S2F_PROFILE_BASE "dicom-participant-device"
#define PROFILE_SITE S2F_PROFILE_BASE "dicom-sr-finding-site"

/* ---- conversion and inspection -------------------------------------------------------- */

/* Reads `json` as a report and writes its Bundle (R4 when r4) into `bundle`. */
static int convert(const char *json, int r4)
{
    return convert_with(json, (s2f_fhir_options){.bundle_type = S2F_BUNDLE_TRANSACTION, .r4 = r4});
}

static const char *profile_of(json_object *res)
{
    return json_object_get_string(at(get(get(res, "meta"), "profile"), 0));
}

/* The n-th resource (0-based) of this type (and profile, when not NULL); its entry in *entry. */
static json_object *find(const char *type, const char *profile, size_t n, json_object **entry)
{
    json_object *entries = get(bundle, "entry");
    for (size_t i = 0; i < len(entries); i++) {
        json_object *res = get(at(entries, i), "resource");
        const char *p = profile_of(res);
        if (strcmp(str(res, "resourceType"), type) != 0 || (profile && (!p || strcmp(p, profile))))
            continue;
        if (n-- == 0) {
            if (entry)
                *entry = at(entries, i);
            return res;
        }
    }
    return NULL;
}

static size_t count(const char *type, const char *profile)
{
    size_t n = 0;
    while (find(type, profile, n, NULL))
        n++;
    return n;
}

/* The coding (system, code) of a CodeableConcept's first coding. */
static int coding_is(json_object *cc, const char *system, const char *code)
{
    json_object *c = at(get(cc, "coding"), 0);
    return c && str(c, "system") && str(c, "code") && !strcmp(str(c, "system"), system) &&
           !strcmp(str(c, "code"), code);
}

/* ---- M7: the General Equipment Device --------------------------------------------------- */

static const char one_group[] = DOC(MEASUREMENTS(GROUP(DIAMETER())));

TEST(m7_equipment_device)
{
    CHECK(convert(one_group, 0));
    CHECK(count("Device", PROFILE_EQUIPMENT) == 1);
    json_object *entry = NULL, *d = find("Device", PROFILE_EQUIPMENT, 0, &entry);
    CHECK(d);
    CHECK_STR(str(d, "manufacturer"), "ACME Imaging");
    CHECK_STR(str(d, "displayName"), "Measurer 3000");
    CHECK_STR(str(d, "serialNumber"), "SN-42");
    json_object *id = get(d, "identifier");
    CHECK(len(id) == 1);
    CHECK_STR(str(at(id, 0), "system"), "urn:dicom:uid");
    CHECK_STR(str(at(id, 0), "value"), "urn:oid:" EQUIPMENT_UID); /* M7: urn:oid: form */
    json_object *v = get(d, "version");
    CHECK(len(v) == 2); /* one entry per value of Software Versions */
    CHECK_STR(str(at(v, 0), "value"), "1.0.3");
    CHECK_STR(str(at(v, 1), "value"), "lib 2.1");
    json_object *udi = get(d, "udiCarrier");
    CHECK(len(udi) == 2);
    /* GS1: the DI of AI 01, issuer GS1, the whole UDI as carrierHRF */
    CHECK_STR(str(at(udi, 0), "deviceIdentifier"), "00844588003288");
    CHECK_STR(str(at(udi, 0), "issuer"), "http://hl7.org/fhir/NamingSystem/gs1-di");
    CHECK_STR(str(at(udi, 0), "carrierHRF"), "(01)00844588003288(17)141120(10)7654321D");
    /* HIBCC: the whole UDI, issuer HIBCC */
    CHECK_STR(str(at(udi, 1), "issuer"), "http://hl7.org/fhir/NamingSystem/hibcc-diI");
    CHECK(str(at(udi, 1), "deviceIdentifier") && str(at(udi, 1), "deviceIdentifier")[0] == '+');
    /* transaction: PUT to the deterministic id (M24) */
    char url[80];
    snprintf(url, sizeof url, "Device/%s", str(d, "id"));
    CHECK_STR(str(get(entry, "request"), "url"), url);
    CHECK(stats.devices == 1 && stats.practitioners == 0 && stats.body_structures == 0);
}

TEST(m7_equipment_without_attributes_is_still_created)
{
    CHECK(convert(BARE_DOC(MEASUREMENTS(GROUP(DIAMETER()))), 0));
    json_object *d = find("Device", PROFILE_EQUIPMENT, 0, NULL);
    CHECK(d);
    /* members only when they have content */
    CHECK(!get(d, "identifier") && !get(d, "manufacturer") && !get(d, "displayName") &&
          !get(d, "version") && !get(d, "udiCarrier") && !get(d, "serialNumber"));
}

TEST(m25_equipment_r4)
{
    CHECK(convert(one_group, 1));
    CHECK(count("Device", NULL) == 1);
    json_object *d = find("Device", NULL, 0, NULL);
    CHECK(!get(d, "meta"));        /* no R5 profiles */
    CHECK(!get(d, "displayName")); /* not an R4 element */
    json_object *names = get(d, "deviceName");
    CHECK(len(names) == 1);
    CHECK_STR(str(at(names, 0), "name"), "Measurer 3000");
    CHECK_STR(str(at(names, 0), "type"), "model-name");
    CHECK(len(get(d, "version")) == 2);
    CHECK_STR(str(at(get(d, "udiCarrier"), 1), "issuer"), "http://hl7.org/fhir/NamingSystem/hibcc-dI");
}

/* ---- M22: algorithms ------------------------------------------------------------------- */

TEST(m22_identical_algorithms_share_one_device)
{
    const char *j = DOC(MEASUREMENTS(
        GROUP(ALGO_FULL("Seg", "1.0") ","
              DIAMETER(KIDS(ALGO_FULL("Seg", "1.0"))) ","
              DIAMETER(KIDS(ALGO_FULL("Seg", "1.0"))) ","
              DIAMETER(KIDS(ALGO("Seg", "2.0"))))));
    CHECK(convert(j, 0));
    CHECK(count("Device", PROFILE_ALGORITHM) == 2); /* Seg 1.0 (x3) and Seg 2.0 */
    CHECK(stats.devices == 3);
    json_object *eq_entry = NULL, *a = find("Device", PROFILE_ALGORITHM, 0, NULL);
    CHECK(find("Device", PROFILE_EQUIPMENT, 0, &eq_entry));
    CHECK_STR(str(a, "displayName"), "Seg");
    CHECK_STR(str(at(get(a, "version"), 0), "value"), "1.0");
    CHECK(len(get(a, "type")) == 1);
    CHECK_STR(str(at(get(at(get(a, "type"), 0), "coding"), 0), "code"), "123456");
    json_object *prop = get(a, "property");
    CHECK(len(prop) == 2);
    CHECK(coding_is(get(at(prop, 0), "type"), S2F_SYSTEM_DCM, "111002"));
    CHECK_STR(str(at(prop, 0), "valueString"), "threshold=0.5");
    CHECK_STR(str(at(prop, 1), "valueString"), "kernel=B30f");
    /* parent = the M7 device */
    CHECK_STR(str(get(a, "parent"), "reference"), str(eq_entry, "fullUrl"));
    json_object *b = find("Device", PROFILE_ALGORITHM, 1, NULL);
    CHECK_STR(str(at(get(b, "version"), 0), "value"), "2.0");
    CHECK(!get(b, "property") && !get(b, "type"));
    CHECK(strcmp(str(a, "id"), str(b, "id")) != 0);
}

TEST(m22_algorithm_keys_are_unambiguous)
{
    /* "a|b" + "c" and "a" + "b|c" must not be one Device */
    const char *j = DOC(MEASUREMENTS(
        GROUP(DIAMETER(KIDS(ALGO("a|b", "c"))) "," DIAMETER(KIDS(ALGO("a", "b|c"))))));
    CHECK(convert(j, 0));
    CHECK(count("Device", PROFILE_ALGORITHM) == 2);
}

TEST(m25_algorithm_r4)
{
    const char *j = DOC(MEASUREMENTS(GROUP(DIAMETER(KIDS(ALGO_FULL("Seg", "1.0"))))));
    CHECK(convert(j, 1));
    CHECK(count("Device", NULL) == 2);
    json_object *a = find("Device", NULL, 1, NULL);
    CHECK(!get(a, "displayName") && !get(a, "meta"));
    CHECK_STR(str(at(get(a, "deviceName"), 0), "name"), "Seg");
    /* R4 Device.type is one CodeableConcept */
    CHECK(json_object_is_type(get(a, "type"), json_type_object));
    CHECK(coding_is(get(a, "type"), "urn:sr2fhir:coding-scheme:99X", "123456"));
    /* R4 property has no valueString: valueCode[].text */
    json_object *p0 = at(get(a, "property"), 0);
    CHECK(!get(p0, "valueString"));
    CHECK_STR(str(at(get(p0, "valueCode"), 0), "text"), "threshold=0.5");
    CHECK(get(a, "parent"));
}

/* ---- M10: observers --------------------------------------------------------------------- */

TEST(m10_person_name_is_split)
{
    const char *j = DOC(PNITEM("HAS OBS CONTEXT", "Doe^John^Q^Dr^Jr") ","
                        MEASUREMENTS(GROUP(DIAMETER())));
    CHECK(convert(j, 0));
    CHECK(count("Practitioner", PROFILE_PERSON) == 1);
    CHECK(stats.practitioners == 1);
    json_object *p = find("Practitioner", PROFILE_PERSON, 0, NULL);
    json_object *names = get(p, "name");
    CHECK(len(names) == 1);
    json_object *n = at(names, 0);
    CHECK_STR(str(n, "family"), "Doe");
    CHECK(len(get(n, "given")) == 2);
    CHECK_STR(json_object_get_string(at(get(n, "given"), 0)), "John");
    CHECK_STR(json_object_get_string(at(get(n, "given"), 1)), "Q");
    CHECK_STR(json_object_get_string(at(get(n, "prefix"), 0)), "Dr");
    CHECK_STR(json_object_get_string(at(get(n, "suffix"), 0)), "Jr");
}

TEST(m10_partial_person_names)
{
    const char *j = DOC(PNITEM("HAS OBS CONTEXT", "Smith") ","
                        MEASUREMENTS(GROUP(PNITEM("HAS OBS CONTEXT", "^Anna^^^") "," DIAMETER()) ","
                                     GROUP(PNITEM("HAS OBS CONTEXT", "=Yamada^Taro") "," DIAMETER()) ","
                                     GROUP(PNITEM("HAS OBS CONTEXT", "Smith") "," DIAMETER())));
    CHECK(convert(j, 0));
    CHECK(count("Practitioner", NULL) == 3); /* "Smith" twice is one Practitioner */
    json_object *a = at(get(find("Practitioner", NULL, 0, NULL), "name"), 0);
    CHECK_STR(str(a, "family"), "Smith");
    CHECK(!get(a, "given") && !get(a, "prefix") && !get(a, "suffix"));
    json_object *b = at(get(find("Practitioner", NULL, 1, NULL), "name"), 0);
    CHECK(!get(b, "family") && len(get(b, "given")) == 1 && !get(b, "prefix"));
    CHECK_STR(json_object_get_string(at(get(b, "given"), 0)), "Anna");
    /* an empty Alphabetic group: the next group is used */
    json_object *c = at(get(find("Practitioner", NULL, 2, NULL), "name"), 0);
    CHECK_STR(str(c, "family"), "Yamada");
}

TEST(m10_device_observer)
{
    const char *j = DOC(MEASUREMENTS(GROUP(
        DEVICE_OBSERVER("1.2.99") ","
        TEXTITEM("HAS OBS CONTEXT", "121013", "DCM", "Device Observer Name", "CAD-1") ","
        TEXTITEM("HAS OBS CONTEXT", "121014", "DCM", "Device Observer Manufacturer", "Vendor X") ","
        TEXTITEM("HAS OBS CONTEXT", "121015", "DCM", "Device Observer Model Name", "Model Y") ","
        TEXTITEM("HAS OBS CONTEXT", "121016", "DCM", "Device Observer Serial Number", "S-7") ","
        DIAMETER())));
    CHECK(convert(j, 0));
    CHECK(count("Device", PROFILE_DEVICE) == 1);
    json_object *d = find("Device", PROFILE_DEVICE, 0, NULL);
    CHECK_STR(str(at(get(d, "identifier"), 0), "system"), "urn:dicom:uid");
    CHECK_STR(str(at(get(d, "identifier"), 0), "value"), "urn:oid:1.2.99");
    CHECK_STR(str(d, "displayName"), "CAD-1");
    CHECK_STR(str(d, "manufacturer"), "Vendor X");
    CHECK_STR(str(d, "modelNumber"), "Model Y");
    CHECK_STR(str(d, "serialNumber"), "S-7");
    CHECK(convert(j, 1));
    d = find("Device", NULL, 1, NULL);
    CHECK(d && !get(d, "displayName") && !get(d, "modelNumber"));
    json_object *names = get(d, "deviceName");
    CHECK(len(names) == 2);
    CHECK_STR(str(at(names, 0), "type"), "user-friendly-name");
    CHECK_STR(str(at(names, 1), "name"), "Model Y");
    CHECK_STR(str(at(names, 1), "type"), "model-name");
}

TEST(m10_device_observer_equal_to_the_equipment_is_not_created_twice)
{
    const char *j = DOC(MEASUREMENTS(GROUP(DEVICE_OBSERVER(EQUIPMENT_UID) "," DIAMETER()) ","
                                     GROUP(DEVICE_OBSERVER("1.2.98") "," DIAMETER()) ","
                                     GROUP(DEVICE_OBSERVER("1.2.98") "," DIAMETER())));
    CHECK(convert(j, 0));
    CHECK(count("Device", PROFILE_EQUIPMENT) == 1);
    CHECK(count("Device", PROFILE_DEVICE) == 1); /* 1.2.98, once */
    CHECK(stats.devices == 2);
}

/* ---- M18: BodyStructure ---------------------------------------------------------------- */

TEST(m18_site_alone_makes_no_body_structure)
{
    CHECK(convert(DOC(MEASUREMENTS(GROUP(SITE_ALONE "," DIAMETER()))), 0));
    CHECK(count("BodyStructure", NULL) == 0);
    CHECK(stats.body_structures == 0);
}

TEST(m18_site_with_laterality_and_modifier)
{
    CHECK(convert(DOC(MEASUREMENTS(GROUP(SITE(LEFT "," ANTERIOR) "," DIAMETER()))), 0));
    CHECK(count("BodyStructure", PROFILE_SITE) == 1);
    json_object *b = find("BodyStructure", PROFILE_SITE, 0, NULL);
    json_object *inc = at(get(b, "includedStructure"), 0);
    CHECK(len(get(b, "includedStructure")) == 1);
    CHECK(coding_is(get(inc, "structure"), S2F_SYSTEM_SCT, "39607008"));
    CHECK(coding_is(get(inc, "laterality"), S2F_SYSTEM_SCT, "7771000"));
    CHECK(len(get(inc, "qualifier")) == 1);
    CHECK(coding_is(at(get(inc, "qualifier"), 0), S2F_SYSTEM_SCT, "255549009"));
    CHECK(!get(b, "identifier"));
    CHECK_STR(str(get(b, "patient"), "type"), "Patient");
    CHECK_STR(str(get(get(b, "patient"), "identifier"), "value"), "PAT-1");
}

TEST(m18_tracking_ids)
{
    const char *j = DOC(MEASUREMENTS(
        GROUP(TRACKING("Nodule 1") "," TRACKING_UID("1.2.100") "," SITE(LEFT) "," DIAMETER()) ","
        GROUP(TRACKING("Nodule 2") "," SITE(LEFT) "," DIAMETER()) ","
        GROUP(TRACKING("Nodule 2") "," SITE(LEFT) "," DIAMETER()) ","
        GROUP(TRACKING("Nodule 3") "," SITE_ALONE "," DIAMETER()) ","
        GROUP(SITE(LEFT) "," DIAMETER())));
    CHECK(convert(j, 0));
    /* Nodule 1, Nodule 2 (twice: one), Nodule 3 (site + tracking id), Left lung alone */
    CHECK(count("BodyStructure", PROFILE_SITE) == 4);
    CHECK(stats.body_structures == 4);
    json_object *b = find("BodyStructure", PROFILE_SITE, 0, NULL);
    json_object *ids = get(b, "identifier");
    CHECK(len(ids) == 2);
    CHECK(coding_is(get(at(ids, 0), "type"), S2F_SYSTEM_DCM, "112039"));
    CHECK_STR(str(at(ids, 0), "value"), "Nodule 1");
    CHECK(coding_is(get(at(ids, 1), "type"), S2F_SYSTEM_DCM, "112040"));
    CHECK_STR(str(at(ids, 1), "system"), "urn:dicom:uid");
    CHECK_STR(str(at(ids, 1), "value"), "urn:oid:1.2.100");
    json_object *c = find("BodyStructure", PROFILE_SITE, 2, NULL);
    CHECK_STR(str(at(get(c, "identifier"), 0), "value"), "Nodule 3");
    CHECK(!get(at(get(c, "includedStructure"), 0), "laterality"));
    json_object *d = find("BodyStructure", PROFILE_SITE, 3, NULL);
    CHECK(!get(d, "identifier"));
}

TEST(m18_same_site_in_two_code_forms_is_one_body_structure)
{
    /* SRT T-28000 translates to SCT 39607008 (M23): the same site */
    const char *j = DOC(MEASUREMENTS(
        GROUP(SITE(LEFT) "," DIAMETER()) ","
        GROUP(CODEITEM_KIDS("HAS CONCEPT MOD", "G-C0E3", "SRT", "Finding Site",
                            CODE("T-28000", "SRT", "Lung"), LEFT) "," DIAMETER())));
    CHECK(convert(j, 0));
    CHECK(count("BodyStructure", PROFILE_SITE) == 1);
}

TEST(m18_has_body_structure_rule)
{
    s2f_codeval site = {"39607008", "SCT", NULL, "Lung", 0};
    s2f_codeval left = {"7771000", "SCT", NULL, "Left", 0};
    s2f_site s = {&site, NULL, NULL, NULL};
    CHECK(!s2f_report_has_body_structure(&s, NULL, NULL));
    CHECK(!s2f_report_has_body_structure(&s, "", ""));
    CHECK(s2f_report_has_body_structure(&s, "T1", NULL));
    CHECK(s2f_report_has_body_structure(&s, NULL, "1.2"));
    s.laterality = &left;
    CHECK(s2f_report_has_body_structure(&s, NULL, NULL));
    s2f_site none = {NULL, &left, NULL, NULL};
    CHECK(!s2f_report_has_body_structure(&none, "T1", "1.2"));
    CHECK(!s2f_report_has_body_structure(NULL, "T1", NULL));
}

TEST(m25_no_body_structure_in_r4)
{
    CHECK(convert(DOC(MEASUREMENTS(GROUP(TRACKING("N") "," SITE(LEFT) "," DIAMETER()))), 1));
    CHECK(count("BodyStructure", NULL) == 0);
    CHECK(stats.body_structures == 0);
}

/* ---- identity (M24) --------------------------------------------------------------------- */

TEST(m24_ids_are_deterministic)
{
    const char *j = DOC(PNITEM("HAS OBS CONTEXT", "Doe^John") ","
                        MEASUREMENTS(GROUP(TRACKING("N") "," SITE(LEFT) "," ALGO("A", "1") "," DIAMETER())));
    CHECK(convert(j, 0));
    char *first = strdup(bundle_text);
    CHECK(convert(j, 0));
    int same = strcmp(first, bundle_text) == 0;
    free(first);
    CHECK(same);
}

/* ---- issue 10 defect 7: identity across reports (M24 amended) ------------------------------ */

/* `json` with its SOP Instance UID 1.2.3.4 replaced by 1.2.3.5 (malloc'd): a follow-up report. */
static char *other_report(const char *json)
{
    static const char from[] = "[\"1.2.3.4\"]", to[] = "[\"1.2.3.5\"]";
    char *s = strdup(json);
    char *p = s ? strstr(s, from) : NULL;
    if (p)
        memcpy(p, to, sizeof to - 1);
    return s;
}

/* The ids of the resources of type/profile, joined (malloc'd). */
static char *ids_of(const char *type, const char *profile)
{
    size_t cap = 1024, n = 0;
    char *s = calloc(1, cap);
    json_object *r;
    for (size_t i = 0; s && (r = find(type, profile, i, NULL)); i++)
        n += (size_t)snprintf(s + n, n < cap ? cap - n : 0, "%s;", str(r, "id"));
    return s;
}

#define LESION_REPORT(...)                                                                   \
    DOC(PNITEM("HAS OBS CONTEXT", "Doe^John") ","                                            \
        MEASUREMENTS(GROUP(TRACKING("Lesion 1") "," TRACKING_UID("1.2.100") "," SITE(LEFT) "," \
                           ALGO("Seg", "2") "," DIAMETER()) ","                               \
                     GROUP(TRACKING("Label only") "," SITE(ANTERIOR) "," DIAMETER())))

TEST(m24_issue10_7_same_lesion_algorithm_observer_same_ids_in_a_follow_up)
{
    static const char *kinds[][2] = {{"Practitioner", NULL},
                                     {"Device", PROFILE_ALGORITHM},
                                     {"Device", PROFILE_EQUIPMENT},
                                     {"Observation", NULL}};
    char *follow = other_report(LESION_REPORT());
    char *a[4], *b[4];
    CHECK(follow && convert(LESION_REPORT(), 0));
    for (int i = 0; i < 4; i++)
        a[i] = ids_of(kinds[i][0], kinds[i][1]);
    json_object *lesion_a = find("BodyStructure", NULL, 0, NULL);
    json_object *label_a = find("BodyStructure", NULL, 1, NULL);
    char *lesion_id = strdup(str(lesion_a, "id")), *label_id = strdup(str(label_a, "id"));
    CHECK(count("BodyStructure", NULL) == 2);
    CHECK(convert(follow, 0));
    for (int i = 0; i < 4; i++)
        b[i] = ids_of(kinds[i][0], kinds[i][1]);
    for (int i = 0; i < 3; i++)
        CHECK_STR(b[i], a[i]); /* Practitioner, algorithm, equipment: the same */
    CHECK(strcmp(a[3], b[3]) != 0); /* the Observations are the report's own */
    /* the lesion (patient + Tracking UID) is the same; a tracking label alone is the SR's */
    CHECK_STR(str(find("BodyStructure", NULL, 0, NULL), "id"), lesion_id);
    CHECK(strcmp(str(find("BodyStructure", NULL, 1, NULL), "id"), label_id) != 0);
    for (int i = 0; i < 4; i++) {
        free(a[i]);
        free(b[i]);
    }
    free(lesion_id);
    free(label_id);
    free(follow);
}

TEST(m24_issue10_7_without_patient_id_a_lesion_is_the_reports_own)
{
    static const char j[] = BARE_DOC(MEASUREMENTS(GROUP(TRACKING_UID("1.2.100") "," SITE(LEFT) "," DIAMETER())));
    char *follow = other_report(j);
    CHECK(follow && convert(j, 0));
    char *first = strdup(str(find("BodyStructure", NULL, 0, NULL), "id"));
    CHECK(convert(follow, 0));
    CHECK(strcmp(str(find("BodyStructure", NULL, 0, NULL), "id"), first) != 0);
    free(first);
    free(follow);
}

/* A NUM's own finding site other than its group's is not the tracked lesion: its
 * BodyStructure carries no tracking identifier; one equal to the group's is the group's. */
TEST(m18_issue10_7_num_site_does_not_copy_the_groups_tracking_ids)
{
    static const char j[] = DOC(MEASUREMENTS(GROUP(
        TRACKING("Lesion 1") "," TRACKING_UID("1.2.100") "," SITE(LEFT) ","
        DIAMETER(KIDS(CODEITEM_KIDS("HAS CONCEPT MOD", "363698007", "SCT", "Finding Site",
                                        CODE("10200004", "SCT", "Liver"), ANTERIOR))) ","
        DIAMETER(KIDS(SITE(LEFT))))));
    CHECK(convert(j, 0));
    CHECK(count("BodyStructure", NULL) == 2);
    size_t with_ids = 0;
    for (size_t i = 0; i < 2; i++)
        with_ids += len(get(find("BodyStructure", NULL, i, NULL), "identifier")) != 0;
    CHECK(with_ids == 1);
}

int main(void)
{
    RUN(m7_equipment_device);
    RUN(m7_equipment_without_attributes_is_still_created);
    RUN(m25_equipment_r4);
    RUN(m22_identical_algorithms_share_one_device);
    RUN(m22_algorithm_keys_are_unambiguous);
    RUN(m25_algorithm_r4);
    RUN(m10_person_name_is_split);
    RUN(m10_partial_person_names);
    RUN(m10_device_observer);
    RUN(m10_device_observer_equal_to_the_equipment_is_not_created_twice);
    RUN(m18_site_alone_makes_no_body_structure);
    RUN(m18_site_with_laterality_and_modifier);
    RUN(m18_tracking_ids);
    RUN(m18_same_site_in_two_code_forms_is_one_body_structure);
    RUN(m18_has_body_structure_rule);
    RUN(m25_no_body_structure_in_r4);
    RUN(m24_ids_are_deterministic);
    RUN(m24_issue10_7_same_lesion_algorithm_observer_same_ids_in_a_follow_up);
    RUN(m24_issue10_7_without_patient_id_a_lesion_is_the_reports_own);
    RUN(m18_issue10_7_num_site_does_not_copy_the_groups_tracking_ids);
    json_object_put(bundle);
    free(bundle_text);
    CHECK_DONE();
}
