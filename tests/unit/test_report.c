/*
 * test_report.c - unit tests of the TID 1500 report model (src/report): M2 refusals, the
 * three containers in both placements, groups (M17, M18), measurements (M20), evaluations
 * (M21, M15), derived measurements (M14), algorithms (M22), observer context inheritance
 * and override (M10, PS3.3 C.17.5), image references (M19) and the unmapped list (M26).
 * Documents are small DICOM JSON strings built with the macros below.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "report/report.h"

#include "sr_json.h"
#define CONTAINER(rel, v, s, m, ...)                                                        \
    "{" ITEM(rel, "CONTAINER") "," CONCEPT(v, s, m) ","                                     \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" KIDS(__VA_ARGS__) "}"
#define NUM(rel, v, s, m, value, ...)                                                       \
    "{" ITEM(rel, "NUM") "," CONCEPT(v, s, m) ",\"0040A300\":{\"vr\":\"SQ\",\"Value\":[{"    \
    "\"0040A30A\":{\"vr\":\"DS\",\"Value\":[\"" value "\"]},"                                \
    "\"004008EA\":{\"vr\":\"SQ\",\"Value\":[" CODE("mm", "UCUM", "millimeter") "]}}]}"       \
    __VA_ARGS__ "}"
#define IMAGE(rel, v, s, m, cls, inst)                                                      \
    "{" ITEM(rel, "IMAGE") "," CONCEPT(v, s, m) ",\"00081199\":{\"vr\":\"SQ\",\"Value\":[{"  \
    "\"00081150\":{\"vr\":\"UI\",\"Value\":[\"" cls "\"]},"                                  \
    "\"00081155\":{\"vr\":\"UI\",\"Value\":[\"" inst "\"]}}]}}"
#define SCOORD(rel, ...)                                                                    \
    "{" ITEM(rel, "SCOORD") "," CONCEPT("111030", "DCM", "Image Region") ","                \
    "\"00700023\":{\"vr\":\"CS\",\"Value\":[\"POINT\"]},"                                    \
    "\"00700022\":{\"vr\":\"FL\",\"Value\":[1,2]}" KIDS(__VA_ARGS__) "}"
#define DOC(cls, ...)                                                                       \
    "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"" cls "\"]},"                                 \
    "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"1.2.3\"]}," ITEM("x", "CONTAINER") ","          \
    CONCEPT("126000", "DCM", "Imaging Measurement Report") ","                               \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" KIDS(__VA_ARGS__) "}"

#define SITE(...) CODEITEM_KIDS("HAS CONCEPT MOD", "G-C0E3", "SRT", "Finding Site", \
                                CODE("39607008", "SCT", "Lung"), __VA_ARGS__)
#define ALGO(name) TEXTITEM("HAS CONCEPT MOD", "111001", "DCM", "Algorithm Name", name) "," \
                   TEXTITEM("HAS CONCEPT MOD", "111003", "DCM", "Algorithm Version", "1.0")

static const char full[] = DOC(ENHANCED,
    CODEITEM("HAS CONCEPT MOD", "121049", "DCM", "Language", CODE("en", "RFC5646", "English")) ","
    PNITEM("HAS OBS CONTEXT", "Root^Person") ","
    CODEITEM("HAS CONCEPT MOD", "121058", "DCM", "Procedure reported", CODE("1", "99X", "CT")) ","
    CONTAINER("CONTAINS", "111028", "DCM", "Image Library",
              IMAGE("CONTAINS", "1", "99X", "x", "1.2.840.10008.5.1.4.1.1.2", "9.9.9")) ","
    CONTAINER("CONTAINS", "126010", "DCM", "Imaging Measurements",
        CONTAINER("CONTAINS", "125007", "DCM", "Measurement Group",
            CODEITEM("HAS OBS CONTEXT", "121005", "DCM", "Observer Type", CODE("121007", "DCM", "Device")) ","
            UIDITEM("HAS OBS CONTEXT", "121012", "DCM", "Device Observer UID", "1.2.99") ","
            TEXTITEM("HAS OBS CONTEXT", "112039", "DCM", "Tracking Identifier", "Nodule 1") ","
            UIDITEM("HAS OBS CONTEXT", "112040", "DCM", "Tracking Unique Identifier", "1.2.100") ","
            CODEITEM("CONTAINS", "276214006", "SCT", "Finding category", CODE("49755003", "SCT", "Abnormal")) ","
            CODEITEM("CONTAINS", "121071", "DCM", "Finding", CODE("27925004", "SCT", "Nodule")) ","
            SITE(CODEITEM("HAS CONCEPT MOD", "272741003", "SCT", "Laterality", CODE("7771000", "SCT", "Left")) ","
                 CODEITEM("HAS CONCEPT MOD", "106233006", "SCT", "Topographical modifier", CODE("255549009", "SCT", "Anterior"))) ","
            CODEITEM("HAS CONCEPT MOD", "G-C036", "SRT", "Measurement Method", CODE("1", "99X", "Manual")) ","
            ALGO("GroupAlgo") ","
            SCOORD("CONTAINS", IMAGE("SELECTED FROM", "111040", "DCM", "Original Source", "1.2.840.10008.5.1.4.1.1.2", "9.9.9")) ","
            IMAGE("CONTAINS", "121191", "DCM", "Referenced Segment", "1.2.840.10008.5.1.4.1.1.66.4", "8.8") ","
            NUM("CONTAINS", "81827009", "SCT", "Diameter", "10.5",
                KIDS(ALGO("NumAlgo") ","
                     CODEITEM("HAS CONCEPT MOD", "121401", "DCM", "Derivation", CODE("255605001", "SCT", "Minimum")) ","
                     NUM("INFERRED FROM", "1", "99X", "Kernel", "2") ","
                     TEXTITEM("CONTAINS", "1", "99X", "Stray", "not a modifier"))) ","
            CODEITEM("CONTAINS", "371928007", "SCT", "Significance", CODE("1", "SCT", "Not significant")) ","
            TEXTITEM("CONTAINS", "1", "99X", "Comment", "looks benign")) ","
        CONTAINER("CONTAINS", "126011", "DCM", "Derived Imaging Measurements",
            CONTAINER("CONTAINS", "125007", "DCM", "Measurement Group",
                NUM("CONTAINS", "1", "99X", "Shared", "1")) ","
            NUM("CONTAINS", "2", "99X", "Sum", "3",
                KIDS(CONTAINER("INFERRED FROM", "125007", "DCM", "Measurement Group",
                               NUM("CONTAINS", "3", "99X", "Own", "2")))))) ","
    CONTAINER("CONTAINS", "C0034375", "UMLS", "Qualitative Evaluations",
        TEXTITEM("CONTAINS", "1", "99X", "Impression", "stable") ","
        CODEITEM("CONTAINS", "2", "99X", "Category", CODE("3", "99X", "B")))
);

static s2f_doc *doc;
static s2f_report rep;

static const s2f_group *group(size_t i) { return i < rep.n_groups ? rep.groups[i] : NULL; }

static int setup(const char *json)
{
    s2f_error err = {0};
    s2f_doc_free(doc);
    doc = s2f_doc_read(json, strlen(json), NULL, &err);
    if (!doc) {
        printf("    read failed: %s\n", err.message);
        return 0;
    }
    if (s2f_report_read(doc, &rep, &err) != S2F_OK) {
        printf("    report failed: %s\n", err.message);
        return 0;
    }
    return 1;
}

TEST(m2_refuses_other_reports)
{
    s2f_error err = {0};
    const char *dose = "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"" ENHANCED "\"]},"
                       ITEM("x", "CONTAINER") "," CONCEPT("113701", "DCM", "X-Ray Radiation Dose Report") "}";
    s2f_doc *d = s2f_doc_read(dose, strlen(dose), NULL, &err);
    CHECK(d);
    CHECK(s2f_report_read(d, &rep, &err) == S2F_ENOTTID1500);
    CHECK_STR(err.message, "not a TID 1500 Measurement Report: root concept is (113701, DCM, "
                           "\"X-Ray Radiation Dose Report\")");
    s2f_doc_free(d);
    const char *ct = "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.5.1.4.1.1.2\"]},"
                     ITEM("x", "CONTAINER") "," CONCEPT("126000", "DCM", "Imaging Measurement Report") "}";
    d = s2f_doc_read(ct, strlen(ct), NULL, &err);
    CHECK(d && s2f_report_read(d, &rep, &err) == S2F_ENOTTID1500);
    CHECK(strstr(err.message, "SOP Class 1.2.840.10008.5.1.4.1.1.2 is not"));
    s2f_doc_free(d);
}

TEST(m2_accepts_the_template_id)
{
    const char *j = "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.5.1.4.1.1.88.35\"]},"
                    ITEM("x", "CONTAINER") "," CONCEPT("1", "99X", "My report") ","
                    "\"0040A504\":{\"vr\":\"SQ\",\"Value\":[{\"00080105\":{\"vr\":\"CS\",\"Value\":[\"DCMR\"]},"
                    "\"0040DB00\":{\"vr\":\"CS\",\"Value\":[\"1500\"]}}]}}";
    CHECK(setup(j));
    CHECK(rep.n_groups == 0 && rep.n_unmapped == 0);
}

TEST(m16_root_context)
{
    CHECK(setup(full));
    CHECK_STR(rep.language->value, "en");
    CHECK_STR(rep.procedure_reported->meaning, "CT");
    CHECK(rep.ctx.n_observers == 1 && !rep.ctx.observers[0].is_device);
    CHECK_STR(rep.ctx.observers[0].person_name, "Root^Person");
}

TEST(m17_m18_group_attributes)
{
    CHECK(setup(full));
    CHECK(rep.n_groups == 3); /* one in Imaging Measurements, two under the derived container */
    const s2f_group *g = group(0);
    CHECK(g && !g->derived);
    CHECK_STR(g->tracking_id, "Nodule 1");
    CHECK_STR(g->tracking_uid, "1.2.100");
    CHECK_STR(g->finding->value, "27925004");
    CHECK_STR(g->finding_category->value, "49755003");
    CHECK_STR(g->method->meaning, "Manual");  /* SRT G-C036 = SCT 370129005 */
    CHECK_STR(g->site.site->value, "39607008");
    CHECK_STR(g->site.laterality->value, "7771000");
    CHECK_STR(g->site.modifier->value, "255549009");
}

TEST(m10_observer_overridden_inside_a_group)
{
    CHECK(setup(full));
    const s2f_group *g = group(0);
    CHECK(g->ctx.n_observers == 1 && g->ctx.observers[0].is_device);
    CHECK_STR(g->ctx.observers[0].device_uid, "1.2.99");
    CHECK(g->measurements[0].ctx.observers == g->ctx.observers); /* inherited */
    CHECK(!group(1)->ctx.observers[0].is_device);                /* others keep the root's */
}

TEST(m22_algorithms_are_not_inherited)
{
    CHECK(setup(full));
    const s2f_group *g = group(0);
    CHECK_STR(g->algorithm->name, "GroupAlgo");
    CHECK_STR(g->algorithm->version, "1.0");
    CHECK_STR(g->measurements[0].algorithm->name, "NumAlgo");
    CHECK(g->evaluations[0].algorithm == NULL);
}

TEST(m19_image_references)
{
    CHECK(setup(full));
    const s2f_group *g = group(0);
    CHECK(g->n_refs == 2);
    CHECK(g->refs[0].kind == S2F_REF_REGION_2D);
    CHECK(g->refs[0].image && !strcmp(g->refs[0].image->v.ref.sop_instance, "9.9.9"));
    CHECK(g->refs[1].kind == S2F_REF_SEGMENT);
}

TEST(m20_measurement_components)
{
    CHECK(setup(full));
    const s2f_measurement *m = &group(0)->measurements[0];
    CHECK(group(0)->n_measurements == 1);
    CHECK_STR(m->item->v.num.text, "10.5");
    CHECK(m->n_components == 2); /* Derivation, and the NUM it was INFERRED FROM */
    CHECK_STR(m->components[0]->concept->value, "121401");
    CHECK_STR(m->components[1]->concept->meaning, "Kernel");
}

TEST(m21_qualitative_evaluations_in_a_group)
{
    CHECK(setup(full));
    const s2f_group *g = group(0);
    CHECK(g->n_evaluations == 2);
    CHECK_STR(g->evaluations[0].item->concept->meaning, "Significance");
    CHECK(g->evaluations[1].item->vt == S2F_VT_TEXT);
}

TEST(m14_derived_measurements_and_their_groups)
{
    CHECK(setup(full));
    CHECK(rep.n_derived == 1);
    const s2f_measurement *d = &rep.derived[0];
    CHECK_STR(d->item->concept->meaning, "Sum");
    CHECK(d->n_groups == 2);
    CHECK(d->groups[0]->derived && d->groups[1]->derived);
    CHECK_STR(d->groups[0]->measurements[0].item->concept->meaning, "Own");
    CHECK_STR(d->groups[1]->measurements[0].item->concept->meaning, "Shared");
}

TEST(m15_document_level_evaluations)
{
    CHECK(setup(full));
    CHECK(rep.n_evaluations == 2);
    CHECK_STR(rep.evaluations[0].item->v.text, "stable");
    CHECK_STR(rep.evaluations[1].item->v.code.meaning, "B");
}

TEST(m26_unmapped_items_are_listed)
{
    CHECK(setup(full));
    CHECK(rep.n_unmapped == 1);
    CHECK_STR(rep.unmapped[0]->concept->meaning, "Stray");
}

/* issue 10 #5 (M26): a severity under the Finding, a second Tracking Identifier and an
 * Activity Session are consumed by no rule, so listed; the Finding itself is M17's. */
TEST(m26_children_of_a_finding_and_group_context_are_listed)
{
    const char *j = DOC(ENHANCED,
        CONTAINER("CONTAINS", "126010", "DCM", "Imaging Measurements",
                  CONTAINER("CONTAINS", "125007", "DCM", "Measurement Group",
                            TEXTITEM("HAS OBS CONTEXT", "112039", "DCM", "Tracking Identifier", "L1") ","
                            TEXTITEM("HAS OBS CONTEXT", "112039", "DCM", "Tracking Identifier", "L2") ","
                            TEXTITEM("HAS OBS CONTEXT", "C67447", "NCIt", "Activity Session", "1") ","
                            CODEITEM_KIDS("CONTAINS", "121071", "DCM", "Finding", CODE("N", "99X", "N"),
                                          CODEITEM("HAS CONCEPT MOD", "246112005", "SCT",
                                                   "Severity", CODE("S", "99X", "S"))))));
    CHECK(setup(j));
    CHECK(rep.n_groups == 1 && rep.n_unmapped == 3);
    CHECK_STR(rep.unmapped[0]->v.text, "L2");
    CHECK_STR(rep.unmapped[1]->concept->meaning, "Activity Session");
    CHECK_STR(rep.unmapped[2]->concept->meaning, "Severity");
    CHECK_STR(rep.groups[0]->tracking_id, "L1");
    CHECK_STR(rep.rule_of[rep.groups[0]->item->children[3]->seq], S2F_RULE_GROUP);
}

TEST(containers_under_the_root_and_inside_imaging_measurements_agree)
{
    /* the derived container under the root instead of inside Imaging Measurements */
    const char *j = DOC(ENHANCED,
        CONTAINER("CONTAINS", "126010", "DCM", "Imaging Measurements",
                  CONTAINER("CONTAINS", "125007", "DCM", "Measurement Group",
                            NUM("CONTAINS", "1", "99X", "A", "1"))) ","
        CONTAINER("CONTAINS", "126011", "DCM", "Derived Imaging Measurements",
                  NUM("CONTAINS", "2", "99X", "B", "2")));
    CHECK(setup(j));
    CHECK(rep.n_groups == 1 && rep.n_derived == 1 && rep.n_unmapped == 0);
}

TEST(m10_participant_sequence_joins_the_root_observers)
{
    /* a person and a device participant (0040,A07A) next to the tree's person observer */
    static const char doc_json[] =
        "{\"0040A07A\":{\"vr\":\"SQ\",\"Value\":["
        "{\"0040A080\":{\"vr\":\"CS\",\"Value\":[\"ATTEST\"]},"
        "\"0040A084\":{\"vr\":\"CS\",\"Value\":[\"PSN\"]},"
        "\"0040A123\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Attending^Ann\"}]}},"
        "{\"0040A080\":{\"vr\":\"CS\",\"Value\":[\"SOURCE\"]},"
        "\"0040A084\":{\"vr\":\"CS\",\"Value\":[\"DEV\"]},"
        "\"00080070\":{\"vr\":\"LO\",\"Value\":[\"ACME\"]},"
        "\"00181002\":{\"vr\":\"UI\",\"Value\":[\"1.2.77\"]}}]},"
        "\"00080016\":{\"vr\":\"UI\",\"Value\":[\"" ENHANCED "\"]},"
        ITEM("x", "CONTAINER") "," CONCEPT("126000", "DCM", "Imaging Measurement Report") ","
        "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}"
        KIDS(PNITEM("HAS OBS CONTEXT", "Tree^Tom")) "}";
    CHECK(setup(doc_json));
    CHECK(rep.ctx.n_observers == 3);
    CHECK_STR(rep.ctx.observers[0].person_name, "Tree^Tom");
    CHECK(!rep.ctx.observers[1].is_device);
    CHECK_STR(rep.ctx.observers[1].person_name, "Attending^Ann");
    CHECK(rep.ctx.observers[2].is_device);
    CHECK_STR(rep.ctx.observers[2].device_uid, "1.2.77");
    CHECK_STR(rep.ctx.observers[2].device_manufacturer, "ACME");
}

/* Issue 14 (M20/M18, issue 10 #7): the site and tracking ids that apply to a measurement,
 * worked out once when the model is read: none of its own -> the group's with the group's
 * ids; its own equal to the group's -> the group's with the group's ids; its own other
 * site -> its own without ids; its own site with its own tracking id -> both its own; a
 * derived measurement without a site -> none. */
#define LEFT CODEITEM("HAS CONCEPT MOD", "272741003", "SCT", "Laterality", CODE("7771000", "SCT", "Left"))
#define LIVER CODEITEM("HAS CONCEPT MOD", "G-C0E3", "SRT", "Finding Site", CODE("10200004", "SCT", "Liver"))
TEST(issue14_site_that_applies_to_a_measurement)
{
    const char *j = DOC(ENHANCED,
        CONTAINER("CONTAINS", "126010", "DCM", "Imaging Measurements",
            CONTAINER("CONTAINS", "125007", "DCM", "Measurement Group",
                TEXTITEM("HAS OBS CONTEXT", "112039", "DCM", "Tracking Identifier", "G1") ","
                SITE(LEFT) ","
                NUM("CONTAINS", "1", "99X", "A", "1") ","
                NUM("CONTAINS", "2", "99X", "B", "2", KIDS(SITE(LEFT))) ","
                NUM("CONTAINS", "3", "99X", "C", "3", KIDS(LIVER)) ","
                NUM("CONTAINS", "4", "99X", "D", "4",
                    KIDS(LIVER "," TEXTITEM("HAS OBS CONTEXT", "112039", "DCM", "Tracking Identifier", "N4"))))) ","
        CONTAINER("CONTAINS", "126011", "DCM", "Derived Imaging Measurements",
                  NUM("CONTAINS", "5", "99X", "E", "5")));
    CHECK(setup(j));
    const s2f_group *g = group(0);
    CHECK(g && g->n_measurements == 4 && rep.n_derived == 1);
    if (!g || g->n_measurements != 4 || rep.n_derived != 1)
        return;
    const s2f_measurement *m = g->measurements;
    CHECK(m[0].applied_site == &g->site);
    CHECK_STR(m[0].applied_tracking_id, "G1");
    CHECK(m[1].applied_site == &g->site);
    CHECK_STR(m[1].applied_tracking_id, "G1");
    CHECK(m[2].applied_site == &m[2].site && !m[2].applied_tracking_id);
    CHECK_STR(m[2].applied_site->site->value, "10200004");
    CHECK(m[3].applied_site == &m[3].site);
    CHECK_STR(m[3].applied_tracking_id, "N4");
    CHECK(!rep.derived[0].applied_site && !rep.derived[0].applied_tracking_id);
    CHECK(s2f_report_has_body_structure(&g->site, NULL, NULL));          /* laterality */
    CHECK(!s2f_report_has_body_structure(&m[2].site, NULL, NULL));       /* a plain code */
    CHECK(s2f_report_has_body_structure(&m[2].site, "N4", NULL));        /* tracked */
}

/* Issue 14 (M17/M20, M22): the method and the Device that apply to an item, worked out
 * once when the model is read. Method: its own, else its group's, else none (a derived
 * measurement has no group). Device: its own algorithm (never the group's), else the first
 * device observer of its observer context, else the equipment. */
#define METHOD(v) CODEITEM("HAS CONCEPT MOD", "G-C036", "SRT", "Measurement Method", CODE(v, "99X", v))
#define DEVICE_OBSERVER(uid)                                                                 \
    CODEITEM("HAS OBS CONTEXT", "121005", "DCM", "Observer Type", CODE("121007", "DCM", "Device")) "," \
    UIDITEM("HAS OBS CONTEXT", "121012", "DCM", "Device Observer UID", uid)
TEST(issue14_method_and_device_that_apply)
{
    const char *j = DOC(ENHANCED,
        CONTAINER("CONTAINS", "126010", "DCM", "Imaging Measurements",
            CONTAINER("CONTAINS", "125007", "DCM", "Measurement Group",
                PNITEM("HAS OBS CONTEXT", "Person^One") ","
                DEVICE_OBSERVER("1.2.7") ","
                METHOD("GM") "," ALGO("GroupAlgo") ","
                NUM("CONTAINS", "1", "99X", "A", "1", KIDS(METHOD("AM") "," ALGO("NumAlgo"))) ","
                NUM("CONTAINS", "2", "99X", "B", "2") ","
                TEXTITEM("CONTAINS", "3", "99X", "Comment", "c")) ","
            CONTAINER("CONTAINS", "125007", "DCM", "Measurement Group",
                NUM("CONTAINS", "4", "99X", "C", "4"))) ","
        CONTAINER("CONTAINS", "126011", "DCM", "Derived Imaging Measurements",
                  NUM("CONTAINS", "5", "99X", "D", "5", KIDS(METHOD("DM"))) ","
                  NUM("CONTAINS", "6", "99X", "E", "6")) ","
        CONTAINER("CONTAINS", "C0034375", "UMLS", "Qualitative Evaluations",
                  TEXTITEM("CONTAINS", "7", "99X", "Impression", "stable")));
    CHECK(setup(j));
    const s2f_group *g = group(0), *h = group(1);
    CHECK(g && h && g->n_measurements == 2 && g->n_evaluations == 1 && h->n_measurements == 1);
    CHECK(rep.n_derived == 2 && rep.n_evaluations == 1);
    if (!g || !h || g->n_measurements != 2 || g->n_evaluations != 1 || h->n_measurements != 1 ||
        rep.n_derived != 2 || rep.n_evaluations != 1)
        return;
    const s2f_measurement *a = &g->measurements[0], *b = &g->measurements[1];
    const s2f_measurement *c = &h->measurements[0], *d = &rep.derived[0], *e = &rep.derived[1];
    /* methods: own, the group's, none */
    CHECK(g->applied_method == g->method && g->method);
    CHECK_STR(g->applied_method->value, "GM");
    CHECK(a->applied_method == a->method && a->method);
    CHECK_STR(a->applied_method->value, "AM");
    CHECK(b->applied_method == g->method);
    CHECK(!h->applied_method && !c->applied_method);
    CHECK(d->applied_method == d->method && d->method);
    CHECK_STR(d->applied_method->value, "DM");
    CHECK(!e->applied_method);
    /* devices: own algorithm, the context's device observer (not the group's algorithm),
     * the equipment */
    CHECK(g->applied_device.kind == S2F_DEVICE_ALGORITHM && g->applied_device.algorithm &&
          g->applied_device.algorithm == g->algorithm && !g->applied_device.observer);
    CHECK(a->applied_device.kind == S2F_DEVICE_ALGORITHM && a->algorithm &&
          a->applied_device.algorithm == a->algorithm);
    CHECK_STR(a->applied_device.algorithm->name, "NumAlgo");
    CHECK(!b->algorithm && b->applied_device.kind == S2F_DEVICE_OBSERVER &&
          !b->applied_device.algorithm);
    CHECK(b->applied_device.observer == &b->ctx.observers[1] &&
          b->applied_device.observer->is_device);
    CHECK_STR(b->applied_device.observer->device_uid, "1.2.7");
    const s2f_evaluation *ev = &g->evaluations[0];
    CHECK(ev->applied_device.kind == S2F_DEVICE_OBSERVER);
    CHECK(ev->applied_device.observer && ev->applied_device.observer == b->applied_device.observer);
    CHECK(h->applied_device.kind == S2F_DEVICE_EQUIPMENT && !h->applied_device.algorithm &&
          !h->applied_device.observer);
    CHECK(c->applied_device.kind == S2F_DEVICE_EQUIPMENT);
    CHECK(e->applied_device.kind == S2F_DEVICE_EQUIPMENT);
    CHECK(rep.evaluations[0].applied_device.kind == S2F_DEVICE_EQUIPMENT);
}

/* Real files: the counts of ../shared/corpus/INVENTORY.tsv (n_meas_groups, qualitative
 * CODE/TEXT), and nothing unmapped except what no rule names. */
TEST(corpus_reports_read)
{
    static const struct { const char *file; size_t groups, evaluations, unmapped; } cases[] = {
        /* dcmqi and Iowa2DICOM name the source series for segmentation without source
         * images: a selection of its own since issue 10 defect 2 (M19), not listed */
        {"tid1500__dcmqi__rsna2018_ds3_848792.dcm", 1, 0, 0},
        /* issue 10 #5: each group's Activity Session and Time Point (no rule maps them) */
        {"tid1500__iowa2dicom__rsna2018_ds2_Measurements_User2_SemiAuto_Trial2.dcm", 11, 0, 22},
        {"tid1500__highdicom__sr_document_with_multiple_groups.dcm", 4, 2, 1}, /* SCT "Source" */
        /* its source series UID has 66 characters: no seriesUid holds it (issue 10 #2) */
        {"tid1500__hl7-handwritten__Example-MeasurementReport.json", 1, 2, 2}, /* + Session */
        {"tid1500__dcmjs__structured_report.dcm", 6, 0, 0},
    };
    const char *shared = getenv("SHARED");
    char path[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/corpus/files/%s", shared ? shared : "../shared",
                 cases[i].file);
        s2f_error err = {0};
        s2f_doc_free(doc);
        doc = s2f_doc_read_file(path, NULL, &err);
        if (!doc && err.code == S2F_EIO)
            SKIP("../shared/corpus is absent (set SHARED or put shared/ beside the checkout)");
        CHECK(doc);
        CHECK(s2f_report_read(doc, &rep, &err) == S2F_OK);
        size_t evaluations = 0;
        for (size_t g = 0; g < rep.n_groups; g++)
            evaluations += rep.groups[g]->n_evaluations;
        CHECK(rep.n_groups == cases[i].groups);
        CHECK(evaluations == cases[i].evaluations);
        CHECK(rep.n_unmapped == cases[i].unmapped);
    }
}

int main(void)
{
    RUN(m2_refuses_other_reports);
    RUN(issue14_site_that_applies_to_a_measurement);
    RUN(issue14_method_and_device_that_apply);
    RUN(m2_accepts_the_template_id);
    RUN(m16_root_context);
    RUN(m17_m18_group_attributes);
    RUN(m10_observer_overridden_inside_a_group);
    RUN(m22_algorithms_are_not_inherited);
    RUN(m19_image_references);
    RUN(m20_measurement_components);
    RUN(m21_qualitative_evaluations_in_a_group);
    RUN(m14_derived_measurements_and_their_groups);
    RUN(m15_document_level_evaluations);
    RUN(m26_unmapped_items_are_listed);
    RUN(m26_children_of_a_finding_and_group_context_are_listed);
    RUN(containers_under_the_root_and_inside_imaging_measurements_agree);
    RUN(m10_participant_sequence_joins_the_root_observers);
    RUN(corpus_reports_read);
    s2f_doc_free(doc);
    CHECK_DONE();
}
