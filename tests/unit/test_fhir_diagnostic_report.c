/*
 * test_fhir_diagnostic_report.c - unit tests of src/fhir/diagnostic_report.c (issue 15):
 * the DiagnosticReport the Bundle carries with s2f_fhir_options.diagnostic_report: its
 * identity (M24), status from the SR flags (M8), subject (M4), basedOn (M6), study (M5; R4
 * imagingStudy, M25), effective/issued (M9), performer (M10: Person observers of the
 * document), result (the group, derived and document-level Observations) and that the rest
 * of the Bundle is unchanged. Each test reads a small DICOM JSON report, writes the whole
 * Bundle (s2f_fhir_write_bundle) and inspects it with json-c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "check.h"
#include "fhir/fhir.h"
#include "fhir/uuid.h"
#include "report/report.h"

#include "fhir_bundle.h"
#include "sr_json.h"
#define CONTAINER(rel, v, s, m, ...)                                                        \
    "{" ITEM(rel, "CONTAINER") "," CONCEPT(v, s, m) ","                                     \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" KIDS(__VA_ARGS__) "}"
#define NUM(rel, v, s, m, value)                                                            \
    "{" ITEM(rel, "NUM") "," CONCEPT(v, s, m) ",\"0040A300\":{\"vr\":\"SQ\",\"Value\":[{"    \
    "\"0040A30A\":{\"vr\":\"DS\",\"Value\":[\"" value "\"]},"                                \
    "\"004008EA\":{\"vr\":\"SQ\",\"Value\":[" CODE("mm", "UCUM", "millimeter") "]}}]}}"
#define SOP_UID "1.2.3.4"
#define STUDY_UID "1.2.3.1"
/* A report whose header holds `head` (members ending with ','), content `...`. */
#define DOC_WITH(head, ...)                                                                 \
    "{" head "\"00080016\":{\"vr\":\"UI\",\"Value\":[\"" ENHANCED "\"]},"                    \
    "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"" SOP_UID "\"]},"                               \
    "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"" STUDY_UID "\"]},"                             \
    "\"0020000E\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.2\"]},"                                   \
    "\"00100020\":{\"vr\":\"LO\",\"Value\":[\"PAT-1\"]},"                                     \
    "\"00080023\":{\"vr\":\"DA\",\"Value\":[\"20240724\"]},"                                  \
    "\"00080033\":{\"vr\":\"TM\",\"Value\":[\"082342\"]},"                                    \
    ITEM("x", "CONTAINER") "," CONCEPT("126000", "DCM", "Imaging Measurement Report") ","    \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" KIDS(__VA_ARGS__) "}"
#define DOC(...) DOC_WITH("", __VA_ARGS__)
#define FLAGS(completion, verification)                                                     \
    "\"0040A491\":{\"vr\":\"CS\",\"Value\":[\"" completion "\"]},"                           \
    "\"0040A493\":{\"vr\":\"CS\",\"Value\":[\"" verification "\"]},"
#define ACCESSION "\"00080050\":{\"vr\":\"SH\",\"Value\":[\"ACC-7\"]},"

#define MEASUREMENTS(...) CONTAINER("CONTAINS", "126010", "DCM", "Imaging Measurements", __VA_ARGS__)
#define GROUP(...) CONTAINER("CONTAINS", "125007", "DCM", "Measurement Group", __VA_ARGS__)
#define DERIVED(...) CONTAINER("CONTAINS", "126011", "DCM", "Derived Imaging Measurements", __VA_ARGS__)
#define EVALUATIONS(...) CONTAINER("CONTAINS", "C0034375", "UMLS", "Qualitative Evaluations", __VA_ARGS__)
#define DIAMETER NUM("CONTAINS", "81827009", "SCT", "Diameter", "10.5")
#define DEVICE_OBSERVER(uid)                                                                 \
    CODEITEM("HAS OBS CONTEXT", "121005", "DCM", "Observer Type", CODE("121007", "DCM", "Device")) "," \
    UIDITEM("HAS OBS CONTEXT", "121012", "DCM", "Device Observer UID", uid)

/* Two groups (one with a group-level evaluation), a derived measurement, a document-level
 * evaluation; the document observed by a person (named twice) and a device; a group with
 * an observer of its own. */
#define FULL_CONTENT                                                                        \
    PNITEM("HAS OBS CONTEXT", "Doe^Jane") "," DEVICE_OBSERVER("1.2.99") ","                  \
    PNITEM("HAS OBS CONTEXT", "Doe^Jane") ","                                               \
    MEASUREMENTS(GROUP(DIAMETER "," TEXTITEM("CONTAINS", "8", "99X", "Note", "benign")) ","  \
                 GROUP(PNITEM("HAS OBS CONTEXT", "Roe^Rick") "," DIAMETER)) ","             \
    DERIVED(NUM("CONTAINS", "2", "99X", "Sum", "21")) ","                                    \
    EVALUATIONS(TEXTITEM("CONTAINS", "9", "99X", "Impression", "stable"))

/* ---- conversion and inspection -------------------------------------------------------- */

/* Reads `json` as a report and writes its Bundle into `bundle` (and bundle_text). */
static int convert(const char *json, int r4, int diagnostic_report, int pretty)
{
    return convert_with(json, (s2f_fhir_options){.bundle_type = S2F_BUNDLE_TRANSACTION,
                                                  .r4 = r4, .pretty = pretty,
                                                  .diagnostic_report = diagnostic_report});
}

/* The resources of a type, in Bundle order: the i-th one's entry. */
static json_object *nth_entry(const char *type, const char *profile_tail, size_t n)
{
    json_object *entries = get(bundle, "entry");
    for (size_t i = 0; i < len(entries); i++) {
        json_object *res = get(at(entries, i), "resource");
        const char *p = json_object_get_string(at(get(get(res, "meta"), "profile"), 0));
        if (strcmp(str(res, "resourceType"), type) != 0)
            continue;
        if (profile_tail && (!p || strlen(p) < strlen(profile_tail) ||
                             strcmp(p + strlen(p) - strlen(profile_tail), profile_tail)))
            continue;
        if (n-- == 0)
            return at(entries, i);
    }
    return NULL;
}

static size_t count(const char *type)
{
    size_t n = 0;
    while (nth_entry(type, NULL, n))
        n++;
    return n;
}

static const char *ref_at(json_object *array, size_t i)
{
    return str(at(array, i), "reference");
}

/* ---- tests ----------------------------------------------------------------------------- */

TEST(issue15_no_diagnostic_report_without_the_option)
{
    CHECK(convert(DOC(FULL_CONTENT), 0, 0, 0));
    CHECK(count("DiagnosticReport") == 0);
    CHECK(stats.diagnostic_reports == 0);
    CHECK(convert(DOC(FULL_CONTENT), 0, 1, 0));
    CHECK(count("DiagnosticReport") == 1);
    CHECK(stats.diagnostic_reports == 1);
}

/* The Bundle with the option is the Bundle without it plus one last entry: everything
 * else byte-identical (compact and pretty, R5 and R4). */
TEST(issue15_the_rest_of_the_bundle_is_unchanged)
{
    for (int form = 0; form < 4; form++) {
        int r4 = form & 1, pretty = form >> 1;
        CHECK(convert(DOC(FULL_CONTENT), r4, 0, pretty));
        char *without = bundle_text;
        size_t without_len = bundle_len;
        bundle_text = NULL;
        int ok = convert(DOC(FULL_CONTENT), r4, 1, pretty);
        /* without ends with the entry array's "]" and the Bundle's "}" (and white space) */
        size_t keep = without_len;
        while (keep > 0 && strchr(" \n]}", without[keep - 1]))
            keep--;
        int prefix = ok && bundle_len > without_len && !memcmp(without, bundle_text, keep);
        json_object *last = at(get(bundle, "entry"), len(get(bundle, "entry")) - 1);
        free(without);
        CHECK(prefix);
        CHECK_STR(str(get(last, "resource"), "resourceType"), "DiagnosticReport");
    }
}

TEST(issue15_identity_code_subject_study_r5)
{
    CHECK(convert(DOC(FULL_CONTENT), 0, 1, 0));
    json_object *e = nth_entry("DiagnosticReport", NULL, 0), *dr = get(e, "resource");
    CHECK(dr);
    char id[S2F_UUID_STR_SIZE], url[80];
    CHECK(s2f_resource_id(SOP_UID, "diagnostic-report", "", id) == S2F_OK);
    CHECK_STR(str(dr, "id"), id);
    snprintf(url, sizeof url, "urn:uuid:%s", id);
    CHECK_STR(str(e, "fullUrl"), url);
    snprintf(url, sizeof url, "DiagnosticReport/%s", id);
    CHECK_STR(str(get(e, "request"), "method"), "PUT");
    CHECK_STR(str(get(e, "request"), "url"), url);
    CHECK(!get(dr, "meta")); /* the guide gives no profile */
    CHECK(len(get(dr, "identifier")) == 1);
    CHECK_STR(str(at(get(dr, "identifier"), 0), "system"), "urn:dicom:uid");
    CHECK_STR(str(at(get(dr, "identifier"), 0), "value"), "urn:oid:" SOP_UID);
    json_object *coding = at(get(get(dr, "code"), "coding"), 0);
    CHECK(len(get(get(dr, "code"), "coding")) == 1);
    CHECK_STR(str(coding, "system"), "http://dicom.nema.org/resources/ontology/DCM");
    CHECK_STR(str(coding, "code"), "126000");
    CHECK_STR(str(coding, "display"), "Imaging Measurement Report");
    CHECK_STR(str(get(dr, "subject"), "type"), "Patient");
    CHECK_STR(str(get(get(dr, "subject"), "identifier"), "value"), "PAT-1");
    CHECK(len(get(dr, "study")) == 1);
    json_object *study = at(get(dr, "study"), 0);
    CHECK_STR(str(study, "type"), "ImagingStudy");
    CHECK_STR(str(get(study, "identifier"), "value"), "urn:oid:" STUDY_UID);
    CHECK(!get(dr, "imagingStudy"));
    CHECK(!get(dr, "basedOn")); /* M6: no accession number */
    CHECK_STR(str(dr, "effectiveDateTime"), "2024-07-24T08:23:42+00:00");
    CHECK_STR(str(dr, "issued"), "2024-07-24T08:23:42+00:00");
}

/* result: both groups, the derived measurement, the document-level evaluation, in that
 * order; not the measurements nor the group-level evaluation (the groups' hasMember). */
TEST(issue15_result_is_the_group_derived_and_document_observations)
{
    CHECK(convert(DOC(FULL_CONTENT), 0, 1, 0));
    json_object *dr = get(nth_entry("DiagnosticReport", NULL, 0), "resource");
    json_object *result = get(dr, "result");
    CHECK(len(result) == 4);
    CHECK_STR(ref_at(result, 0), str(nth_entry("Observation", "imaging-measurement-group", 0), "fullUrl"));
    CHECK_STR(ref_at(result, 1), str(nth_entry("Observation", "imaging-measurement-group", 1), "fullUrl"));
    CHECK_STR(ref_at(result, 2), str(nth_entry("Observation", "derived-imaging-measurement", 0), "fullUrl"));
    /* the evaluations: the group's first, the document's second */
    CHECK(nth_entry("Observation", "imaging-qualitative-evaluation", 1));
    CHECK_STR(ref_at(result, 3), str(nth_entry("Observation", "imaging-qualitative-evaluation", 1), "fullUrl"));
    CHECK(count("Observation") == 7); /* 2 groups, 2 diameters, 2 evaluations, 1 derived */
}

/* performer: the document's Person observer once; not its device observer, not a group's
 * own observer. */
TEST(issue15_performer_is_the_documents_person_observer)
{
    CHECK(convert(DOC(FULL_CONTENT), 0, 1, 0));
    json_object *dr = get(nth_entry("DiagnosticReport", NULL, 0), "resource");
    CHECK(count("Practitioner") == 2);
    json_object *jane = NULL;
    for (size_t i = 0; i < 2; i++) {
        json_object *p = nth_entry("Practitioner", NULL, i);
        if (!strcmp(str(at(get(get(p, "resource"), "name"), 0), "family"), "Doe"))
            jane = p;
    }
    CHECK(jane);
    CHECK(len(get(dr, "performer")) == 1);
    CHECK_STR(ref_at(get(dr, "performer"), 0), str(jane, "fullUrl"));
    /* no person observer at all: no performer */
    CHECK(convert(DOC(DEVICE_OBSERVER("1.2.99") "," MEASUREMENTS(GROUP(DIAMETER))), 0, 1, 0));
    dr = get(nth_entry("DiagnosticReport", NULL, 0), "resource");
    CHECK(dr && !get(dr, "performer"));
}

TEST(issue15_status_from_the_sr_flags_m8)
{
    CHECK(convert(DOC_WITH(FLAGS("COMPLETE", "VERIFIED"), MEASUREMENTS(GROUP(DIAMETER))), 0, 1, 0));
    CHECK_STR(str(get(nth_entry("DiagnosticReport", NULL, 0), "resource"), "status"), "final");
    CHECK_STR(str(get(nth_entry("Observation", NULL, 0), "resource"), "status"), "final");
    CHECK(convert(DOC_WITH(FLAGS("COMPLETE", "UNVERIFIED"), MEASUREMENTS(GROUP(DIAMETER))), 0, 1, 0));
    CHECK_STR(str(get(nth_entry("DiagnosticReport", NULL, 0), "resource"), "status"), "preliminary");
    CHECK(convert(DOC_WITH("\"0040A496\":{\"vr\":\"CS\",\"Value\":[\"PRELIMINARY\"]},"
                           FLAGS("COMPLETE", "VERIFIED"), MEASUREMENTS(GROUP(DIAMETER))), 0, 1, 0));
    CHECK_STR(str(get(nth_entry("DiagnosticReport", NULL, 0), "resource"), "status"), "preliminary");
}

TEST(issue15_based_on_the_accession_m6)
{
    CHECK(convert(DOC_WITH(ACCESSION, MEASUREMENTS(GROUP(DIAMETER))), 0, 1, 0));
    json_object *dr = get(nth_entry("DiagnosticReport", NULL, 0), "resource");
    CHECK(len(get(dr, "basedOn")) == 1);
    json_object *b = at(get(dr, "basedOn"), 0);
    CHECK_STR(str(b, "type"), "ServiceRequest");
    CHECK_STR(str(get(b, "identifier"), "value"), "ACC-7");
}

TEST(issue15_r4_form_m25)
{
    CHECK(convert(DOC(FULL_CONTENT), 1, 1, 0));
    json_object *dr = get(nth_entry("DiagnosticReport", NULL, 0), "resource");
    CHECK(dr);
    CHECK(!get(dr, "study"));
    CHECK(len(get(dr, "imagingStudy")) == 1);
    CHECK_STR(str(get(at(get(dr, "imagingStudy"), 0), "identifier"), "value"), "urn:oid:" STUDY_UID);
    CHECK(len(get(dr, "result")) == 4);
    CHECK(!get(dr, "meta"));
}

/* Every reference of the DiagnosticReport names an entry written before it. */
TEST(issue15_references_resolve_to_earlier_entries)
{
    CHECK(convert(DOC_WITH(ACCESSION, FULL_CONTENT), 0, 1, 0));
    json_object *entries = get(bundle, "entry");
    size_t n = len(entries);
    json_object *dr = get(at(entries, n - 1), "resource");
    CHECK_STR(str(dr, "resourceType"), "DiagnosticReport");
    const char *lists[] = {"result", "performer"};
    for (size_t l = 0; l < 2; l++) {
        json_object *a = get(dr, lists[l]);
        CHECK(len(a) > 0);
        for (size_t i = 0; i < len(a); i++) {
            int found = 0;
            for (size_t k = 0; k + 1 < n && !found; k++)
                found = !strcmp(str(at(entries, k), "fullUrl"), ref_at(a, i));
            CHECK(found);
        }
    }
}

int main(void)
{
    RUN(issue15_no_diagnostic_report_without_the_option);
    RUN(issue15_the_rest_of_the_bundle_is_unchanged);
    RUN(issue15_identity_code_subject_study_r5);
    RUN(issue15_result_is_the_group_derived_and_document_observations);
    RUN(issue15_performer_is_the_documents_person_observer);
    RUN(issue15_status_from_the_sr_flags_m8);
    RUN(issue15_based_on_the_accession_m6);
    RUN(issue15_r4_form_m25);
    RUN(issue15_references_resolve_to_earlier_entries);
    json_object_put(bundle);
    free(bundle_text);
    CHECK_DONE();
}
