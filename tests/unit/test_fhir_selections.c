/*
 * test_fhir_selections.c - unit tests of the ImagingSelections (src/fhir/selections.c,
 * MAPPING rules M12, M19, M25): each profile kind, coordinates, frame and segment subsets,
 * the evidence lookup of series and study, focus links, the source SR content item, written
 * once, and nothing in R4. Reports are small DICOM JSON strings converted with
 * s2f_report_read + s2f_fhir_write_bundle; the Bundle is read back with json-c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "check.h"
#include "fhir/fhir.h"
#include "report/report.h"

#include "sr_json.h"
#define OBSUID(uid) "\"0040A171\":{\"vr\":\"UI\",\"Value\":[\"" uid "\"]},"
#define CONTAINER(rel, v, s, m, extra, ...)                                                 \
    "{" ITEM(rel, "CONTAINER") "," extra CONCEPT(v, s, m) ","                               \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" KIDS(__VA_ARGS__) "}"
#define GROUP(extra, ...) CONTAINER("CONTAINS", "125007", "DCM", "Measurement Group", extra, __VA_ARGS__)
#define MEASUREMENTS(...) CONTAINER("CONTAINS", "126010", "DCM", "Imaging Measurements", "", __VA_ARGS__)
#define NUM(rel, v, s, m, value, ...)                                                       \
    "{" ITEM(rel, "NUM") "," CONCEPT(v, s, m) ",\"0040A300\":{\"vr\":\"SQ\",\"Value\":[{"    \
    "\"0040A30A\":{\"vr\":\"DS\",\"Value\":[\"" value "\"]},"                                \
    "\"004008EA\":{\"vr\":\"SQ\",\"Value\":[" CODE("mm", "UCUM", "millimeter") "]}}]}"       \
    __VA_ARGS__ "}"
/* IMAGE / COMPOSITE with extra Referenced SOP Sequence attributes (frames, segments) */
#define REFSOP(vt, rel, v, s, m, cls, inst, extra)                                          \
    "{" ITEM(rel, vt) "," CONCEPT(v, s, m) ",\"00081199\":{\"vr\":\"SQ\",\"Value\":[{"       \
    extra "\"00081150\":{\"vr\":\"UI\",\"Value\":[\"" cls "\"]},"                            \
    "\"00081155\":{\"vr\":\"UI\",\"Value\":[\"" inst "\"]}}]}}"
#define IMAGE(rel, v, s, m, cls, inst, extra) REFSOP("IMAGE", rel, v, s, m, cls, inst, extra)
#define FRAMES_1_3 "\"00081160\":{\"vr\":\"IS\",\"Value\":[\"1\",\"3\"]},"
#define SEGMENTS(...) "\"0062000B\":{\"vr\":\"US\",\"Value\":[" __VA_ARGS__ "]},"
#define SEGMENTS_2_5 "\"0062000B\":{\"vr\":\"US\",\"Value\":[2,5]},"
#define SCOORD(rel, type, data, ...)                                                        \
    "{" ITEM(rel, "SCOORD") "," CONCEPT("111030", "DCM", "Image Region") ","                \
    "\"00700023\":{\"vr\":\"CS\",\"Value\":[\"" type "\"]},"                                 \
    "\"00700022\":{\"vr\":\"FL\",\"Value\":[" data "]}" __VA_ARGS__ "}"
#define SCOORD3D(rel, v, m, type, data, frame)                                              \
    "{" ITEM(rel, "SCOORD3D") "," CONCEPT(v, "DCM", m) ","                                  \
    "\"00700023\":{\"vr\":\"CS\",\"Value\":[\"" type "\"]},"                                 \
    "\"30060024\":{\"vr\":\"UI\",\"Value\":[\"" frame "\"]},"                                \
    "\"00700022\":{\"vr\":\"FD\",\"Value\":[" data "]}}"

#define CT "1.2.840.10008.5.1.4.1.1.2"
#define SEG "1.2.840.10008.5.1.4.1.1.66.4"
#define RTSS "1.2.840.10008.5.1.4.1.1.481.3"
#define SR_UID "1.2.3.4"
#define STUDY "1.2.3.100"
#define OTHER_STUDY "1.2.3.200"

/* Current Requested Procedure Evidence: CT 9.9.1 in series 9.9 of the SR's study; SEG 8.8.1
 * in series 8.8 of another study (Pertinent Other Evidence). */
#define EVIDENCE                                                                            \
    "\"0040A375\":{\"vr\":\"SQ\",\"Value\":[{"                                               \
    "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"" STUDY "\"]},"                                \
    "\"00081115\":{\"vr\":\"SQ\",\"Value\":[{"                                               \
    "\"0020000E\":{\"vr\":\"UI\",\"Value\":[\"9.9\"]},"                                      \
    "\"00081199\":{\"vr\":\"SQ\",\"Value\":[{"                                               \
    "\"00081150\":{\"vr\":\"UI\",\"Value\":[\"" CT "\"]},"                                   \
    "\"00081155\":{\"vr\":\"UI\",\"Value\":[\"9.9.1\"]}}]}}]}}]},"                           \
    "\"0040A385\":{\"vr\":\"SQ\",\"Value\":[{"                                               \
    "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"" OTHER_STUDY "\"]},"                          \
    "\"00081115\":{\"vr\":\"SQ\",\"Value\":[{"                                               \
    "\"0020000E\":{\"vr\":\"UI\",\"Value\":[\"8.8\"]},"                                      \
    "\"00081199\":{\"vr\":\"SQ\",\"Value\":[{"                                               \
    "\"00081150\":{\"vr\":\"UI\",\"Value\":[\"" SEG "\"]},"                                  \
    "\"00081155\":{\"vr\":\"UI\",\"Value\":[\"8.8.1\"]}}]}}]}}]},"

#define DOC(...)                                                                            \
    "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"" ENHANCED "\"]},"                            \
    "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"" SR_UID "\"]},"                               \
    "\"00100020\":{\"vr\":\"LO\",\"Value\":[\"PID-1\"]},"                                    \
    "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"" STUDY "\"]},"                                \
    "\"0020000E\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.101\"]},"                                \
    EVIDENCE ITEM("x", "CONTAINER") ","                                                      \
    CONCEPT("126000", "DCM", "Imaging Measurement Report") ","                               \
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]}" KIDS(__VA_ARGS__) "}"

#define DIAMETER NUM("CONTAINS", "81827009", "SCT", "Diameter", "10.5")

/* Everything: 2D regions (POLYLINE with frames, MULTIPOINT), a 3D region, a segment with
 * its source image and series, a region in space, in a group with an Observation UID; a NUM
 * with its own INFERRED FROM region. */
static const char doc_all[] = DOC(MEASUREMENTS(
    GROUP(OBSUID("5.5.5"),
        SCOORD("CONTAINS", "POLYLINE", "0.25,0.25,0.75,0.25,0.1,0.75",
               KIDS(IMAGE("SELECTED FROM", "111040", "DCM", "Original Source", CT, "9.9.1",
                          FRAMES_1_3))) ","
        SCOORD("CONTAINS", "MULTIPOINT", "1,2,3,4",
               KIDS(IMAGE("SELECTED FROM", "111040", "DCM", "Original Source", CT, "7.7.7", ""))) ","
        SCOORD3D("CONTAINS", "111030", "Image Region", "ELLIPSOID",
                 "-50,-50,-50,50,50,50,25,-25,0,-25,25,0,1,1,1,2,2,2", "6.6.6") ","
        IMAGE("CONTAINS", "121191", "DCM", "Referenced Segment", SEG, "8.8.1", SEGMENTS("2")) ","
        IMAGE("CONTAINS", "121233", "DCM", "Source image for segmentation", CT, "7.7.8", "") ","
        UIDITEM("CONTAINS", "121232", "DCM", "Source series for segmentation", "4.4.4") ","
        REFSOP("COMPOSITE", "CONTAINS", "130488", "DCM", "Region In Space", RTSS, "3.3.3", "") ","
        DIAMETER ","
        NUM("CONTAINS", "81827009", "SCT", "Diameter", "3",
            KIDS(SCOORD("INFERRED FROM", "POINT", "5,6",
                        KIDS(IMAGE("SELECTED FROM", "111040", "DCM", "Original Source", CT,
                                   "9.9.1", ""))))))));

/* ---- harness ---------------------------------------------------------------------------- */

static s2f_doc *doc;
static s2f_report rep;
static json_object *bundle;
static s2f_fhir_stats stats;

static void reset(void)
{
    json_object_put(bundle);
    bundle = NULL;
    s2f_doc_free(doc);
    doc = NULL;
}

/* Reads the report and converts it; 1 when all went well and the output parses. */
static int convert(const char *json, int r4)
{
    s2f_error err = {0};
    s2f_fhir_options opt = {.bundle_type = S2F_BUNDLE_TRANSACTION, .r4 = r4};
    char *buf = NULL;
    size_t len = 0;
    FILE *mem;
    s2f_sink sink;
    s2f_code code;
    reset();
    doc = s2f_doc_read(json, strlen(json), NULL, &err);
    if (!doc || s2f_report_read(doc, &rep, &err) != S2F_OK) {
        printf("    read failed: %s\n", err.message);
        return 0;
    }
    mem = open_memstream(&buf, &len);
    if (!mem)
        return 0;
    s2f_sink_init(&sink, mem);
    code = s2f_fhir_write_bundle(&rep, &opt, &sink, &stats, &err);
    s2f_sink_finish(&sink);
    fclose(mem);
    if (code != S2F_OK) {
        printf("    convert failed: %s\n", err.message);
        free(buf);
        return 0;
    }
    bundle = json_tokener_parse(buf);
    if (getenv("S2F_TEST_DUMP")) { /* the first Bundle (the full report), for the validator */
        static int dumped;
        FILE *out = dumped++ ? NULL : fopen(getenv("S2F_TEST_DUMP"), "w");
        if (out) {
            fputs(buf, out);
            fclose(out);
        }
    }
    free(buf);
    return bundle != NULL;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static json_object *at(json_object *a, size_t i)
{
    return a && json_object_is_type(a, json_type_array) && i < json_object_array_length(a)
               ? json_object_array_get_idx(a, i) : NULL;
}

static size_t len_of(json_object *a)
{
    return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static const char *str(json_object *o)
{
    return o && json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

static const char *profile_of(json_object *res)
{
    return str(at(get(get(res, "meta"), "profile"), 0));
}

/* The n-th (0-based) ImagingSelection with the given profile id and code, or NULL. */
static json_object *selection(const char *profile_id, const char *code, size_t n, const char **full_url)
{
    json_object *entries = get(bundle, "entry");
    char want[160];
    snprintf(want, sizeof want, S2F_PROFILE_BASE "%s", profile_id);
    for (size_t i = 0; i < len_of(entries); i++) {
        json_object *e = at(entries, i), *res = get(e, "resource");
        const char *type = str(get(res, "resourceType")), *p = profile_of(res);
        const char *c = str(get(at(get(get(res, "code"), "coding"), 0), "code"));
        if (!type || strcmp(type, "ImagingSelection") || !p || strcmp(p, want) || !c ||
            strcmp(c, code))
            continue;
        if (n-- == 0) {
            if (full_url)
                *full_url = str(get(e, "fullUrl"));
            return res;
        }
    }
    return NULL;
}

static size_t count_type(const char *type)
{
    json_object *entries = get(bundle, "entry");
    size_t n = 0;
    for (size_t i = 0; i < len_of(entries); i++) {
        const char *t = str(get(get(at(entries, i), "resource"), "resourceType"));
        if (t && !strcmp(t, type))
            n++;
    }
    return n;
}

/* Whether the array of References `a` holds one to `url`. */
static int refers_to(json_object *a, const char *url)
{
    for (size_t i = 0; i < len_of(a); i++) {
        const char *r = str(get(at(a, i), "reference"));
        if (r && url && !strcmp(r, url))
            return 1;
    }
    return 0;
}

/* The JSON text of a value (json-c's plain form). */
static const char *text(json_object *o)
{
    return o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
}

/* ---- tests ------------------------------------------------------------------------------ */

TEST(m19_region_2d_polyline_with_frames_and_evidence_series)
{
    json_object *s, *inst, *region;
    CHECK(convert(doc_all, 0));
    s = selection("image-region-2d", "111030", 0, NULL);
    CHECK(s);
    CHECK_STR(str(get(s, "status")), "available");
    CHECK_STR(str(get(get(get(s, "subject"), "identifier"), "value")), "PID-1");
    CHECK_STR(str(get(s, "studyUid")), STUDY);
    CHECK_STR(str(get(s, "seriesUid")), "9.9");   /* from the evidence */
    /* M5: derivedFrom = the ImagingStudy by identifier */
    CHECK_STR(str(get(get(at(get(s, "derivedFrom"), 0), "identifier"), "value")), "urn:oid:" STUDY);
    CHECK_STR(str(get(get(at(get(s, "derivedFrom"), 0), "identifier"), "system")), "urn:dicom:uid");
    inst = at(get(s, "instance"), 0);
    CHECK(len_of(get(s, "instance")) == 1);
    CHECK_STR(str(get(inst, "uid")), "9.9.1");
    /* M19 amended: the profiles' sopClass system and the bare UID (docs/decisions.md) */
    CHECK_STR(str(get(get(inst, "sopClass"), "system")), S2F_SYSTEM_SOP_CLASS);
    CHECK_STR(str(get(get(inst, "sopClass"), "code")), CT);
    CHECK_STR(str(get(get(inst, "sopClass"), "display")), "CT Image Storage");
    CHECK_STR(text(get(inst, "subset")), "[\"1\",\"3\"]");
    region = at(get(inst, "imageRegion2D"), 0);
    CHECK(len_of(get(inst, "imageRegion2D")) == 1);
    CHECK_STR(str(get(region, "regionType")), "polyline");
    /* FL values as the shortest decimal: 0.1f stays 0.1 */
    CHECK_STR(text(get(region, "coordinate")), "[0.25,0.25,0.75,0.25,0.1,0.75]");
    CHECK(!get(s, "imageRegion3D"));
    CHECK(!get(s, "frameOfReferenceUid"));
}

TEST(m19_region_2d_multipoint_is_one_point_region_per_point)
{
    /* R5 has no 2D multipoint and the profile allows one imageRegion2D per instance: one
     * instance element (same uid) per point */
    json_object *s, *inst;
    CHECK(convert(doc_all, 0));
    s = selection("image-region-2d", "111030", 1, NULL);
    CHECK(s);
    CHECK(!get(s, "seriesUid"));              /* not in the evidence */
    CHECK_STR(str(get(s, "studyUid")), STUDY); /* the SR's own study */
    CHECK(len_of(get(s, "instance")) == 2);
    for (size_t i = 0; i < 2; i++) {
        inst = at(get(s, "instance"), i);
        CHECK_STR(str(get(inst, "uid")), "7.7.7");
        CHECK_STR(str(get(get(inst, "sopClass"), "code")), CT);
        CHECK(!get(inst, "subset"));
        CHECK(len_of(get(inst, "imageRegion2D")) == 1);
        CHECK_STR(str(get(at(get(inst, "imageRegion2D"), 0), "regionType")), "point");
    }
    CHECK_STR(text(get(at(get(at(get(s, "instance"), 0), "imageRegion2D"), 0), "coordinate")), "[1,2]");
    CHECK_STR(text(get(at(get(at(get(s, "instance"), 1), "imageRegion2D"), 0), "coordinate")), "[3,4]");
}

TEST(m19_region_3d_frame_of_reference)
{
    /* R5 has imageRegion3D only inside an instance (uid 1..1), which a SCOORD3D does not
     * name: frameOfReferenceUid only, as the guide's example (FHIR-41429) */
    json_object *s;
    CHECK(convert(doc_all, 0));
    s = selection("image-region-3d", "111030", 0, NULL);
    CHECK(s);
    CHECK_STR(str(get(s, "frameOfReferenceUid")), "6.6.6");
    CHECK(!get(s, "instance"));
    CHECK(!get(s, "imageRegion3D"));
}

TEST(m19_referenced_segment_subset_evidence_and_focus)
{
    json_object *seg, *img, *ser, *inst;
    const char *img_url = NULL, *ser_url = NULL, *src_url = NULL;
    CHECK(convert(doc_all, 0));
    seg = selection("referenced-segment", "121191", 0, NULL);
    img = selection("source-image-for-segmentation", "121233", 0, &img_url);
    ser = selection("source-image-for-segmentation", "121232", 0, &ser_url);
    CHECK(seg && img && !ser); /* a source series is no selection of its own */
    CHECK(selection("source-sr-content-item", "111040", 0, &src_url));
    inst = at(get(seg, "instance"), 0);
    CHECK_STR(str(get(inst, "uid")), "8.8.1");
    CHECK_STR(str(get(get(inst, "sopClass"), "code")), SEG);
    CHECK_STR(str(get(get(inst, "sopClass"), "display")), "Segmentation Storage");
    CHECK_STR(text(get(inst, "subset")), "[\"2\"]");
    /* M19: study and series from Pertinent Other Evidence, derivedFrom that study */
    CHECK_STR(str(get(seg, "seriesUid")), "8.8");
    CHECK_STR(str(get(seg, "studyUid")), OTHER_STUDY);
    CHECK_STR(str(get(get(at(get(seg, "derivedFrom"), 0), "identifier"), "value")),
              "urn:oid:" OTHER_STUDY);
    /* focus: the source image (one: the profile's slice is 0..1), and the group's source
     * SR content item */
    CHECK(len_of(get(seg, "focus")) == 2);
    CHECK(refers_to(get(seg, "focus"), img_url));
    CHECK(refers_to(get(seg, "focus"), src_url));
    /* the source image: its series from the sibling source series (not in the evidence) */
    CHECK_STR(str(get(img, "seriesUid")), "4.4.4");
    CHECK_STR(str(get(at(get(img, "instance"), 0), "uid")), "7.7.8");
}

TEST(m19_region_in_space_correct_rt_structure_set_uid)
{
    json_object *s, *inst;
    CHECK(convert(doc_all, 0));
    s = selection("region-in-space", "130488", 0, NULL);
    CHECK(s);
    inst = at(get(s, "instance"), 0);
    CHECK_STR(str(get(inst, "uid")), "3.3.3");
    CHECK_STR(str(get(get(inst, "sopClass"), "code")), "1.2.840.10008.5.1.4.1.1.481.3");
    CHECK_STR(str(get(get(inst, "sopClass"), "display")), "RT Structure Set Storage");
}

TEST(m19_region_of_measurement_is_image_region_2d)
{
    json_object *s = NULL, *inst;
    CHECK(convert(doc_all, 0));
    /* the third image-region-2d: the NUM's INFERRED FROM point */
    s = selection("image-region-2d", "111030", 2, NULL);
    CHECK(s);
    inst = at(get(s, "instance"), 0);
    CHECK_STR(str(get(inst, "uid")), "9.9.1");
    CHECK_STR(text(get(at(get(inst, "imageRegion2D"), 0), "coordinate")), "[5,6]");
    CHECK_STR(str(get(at(get(inst, "imageRegion2D"), 0), "regionType")), "point");
}

TEST(m12_source_sr_content_item)
{
    json_object *s, *inst;
    CHECK(convert(doc_all, 0));
    s = selection("source-sr-content-item", "111040", 0, NULL);
    CHECK(s);
    CHECK(!selection("source-sr-content-item", "111040", 1, NULL)); /* one group with a UID */
    CHECK_STR(str(get(at(get(get(s, "code"), "coding"), 0), "display")), "Original Source");
    CHECK_STR(str(get(s, "status")), "available");
    CHECK_STR(str(get(s, "studyUid")), STUDY);
    CHECK_STR(str(get(s, "seriesUid")), "1.2.3.101");
    inst = at(get(s, "instance"), 0);
    CHECK_STR(str(get(inst, "uid")), SR_UID);
    CHECK_STR(str(get(get(inst, "sopClass"), "code")), ENHANCED);
    CHECK_STR(str(get(get(inst, "sopClass"), "display")), "Enhanced SR Storage");
    CHECK_STR(text(get(inst, "subset")), "[\"5.5.5\"]");
    CHECK_STR(str(get(get(at(get(s, "derivedFrom"), 0), "identifier"), "value")), "urn:oid:" STUDY);
}

TEST(m19_each_selection_once_and_counted)
{
    json_object *entries;
    CHECK(convert(doc_all, 0));
    /* 3 image-region-2d, 1 3d, segment, source image, region in space, source SR item
     * (the source series only gives the source image its series) */
    CHECK(count_type("ImagingSelection") == 8);
    CHECK(stats.imaging_selections == 8);
    entries = get(bundle, "entry");
    for (size_t i = 0; i < len_of(entries); i++)
        for (size_t k = i + 1; k < len_of(entries); k++)
            CHECK(strcmp(str(get(at(entries, i), "fullUrl")), str(get(at(entries, k), "fullUrl"))));
}

TEST(m19_selection_rid_is_deterministic_and_per_item)
{
    json_object *s;
    const char *url = NULL;
    char first[64];
    CHECK(convert(doc_all, 0));
    s = selection("referenced-segment", "121191", 0, &url);
    CHECK(s && url && strlen(url) < sizeof first);
    strcpy(first, url);
    CHECK(convert(doc_all, 0));
    CHECK(selection("referenced-segment", "121191", 0, &url));
    CHECK_STR(url, first);
}

TEST(m25_no_imaging_selection_in_r4)
{
    CHECK(convert(doc_all, 1));
    CHECK(count_type("ImagingSelection") == 0);
    CHECK(stats.imaging_selections == 0);
    CHECK(count_type("Observation") > 0);
}

TEST(m19_region_without_image_has_no_instance)
{
    static const char d[] = DOC(MEASUREMENTS(GROUP("",
        SCOORD("CONTAINS", "CIRCLE", "10,10,20,10") "," DIAMETER)));
    json_object *s;
    CHECK(convert(d, 0));
    s = selection("image-region-2d", "111030", 0, NULL);
    CHECK(s);
    CHECK(!get(s, "instance"));
    CHECK(!get(s, "focus"));   /* no source item: the group has no Observation UID */
    CHECK(count_type("ImagingSelection") == 1);
}

/* A group with a Referenced Segment and a Source series for segmentation `uid` alone. */
#define SERIES_ALONE_DOC(uid) DOC(MEASUREMENTS(GROUP("",                                    \
    IMAGE("CONTAINS", "121191", "DCM", "Referenced Segment", SEG, "8.8.1", SEGMENTS("1")) "," \
    UIDITEM("CONTAINS", "121232", "DCM", "Source series for segmentation", uid) ","          \
    DIAMETER)))

TEST(issue10_2_m19_source_series_alone_is_a_plain_selection)
{
    /* issue 10 defect 2: a series the evidence lists no instance of: a plain
     * ImagingSelection (no profile: the source-image profile needs instances) with the
     * item's code 121232 and the seriesUid, which the segment's selection focuses on */
    static const char d[] = SERIES_ALONE_DOC("4.4.4");
    json_object *seg, *ser = NULL, *entries;
    const char *ser_url = NULL;
    CHECK(convert(d, 0));
    seg = selection("referenced-segment", "121191", 0, NULL);
    entries = get(bundle, "entry");
    for (size_t i = 0; i < len_of(entries); i++) {
        json_object *r = get(at(entries, i), "resource");
        if (!strcmp(str(get(r, "resourceType")), "ImagingSelection") && !get(r, "meta")) {
            ser = r;
            ser_url = str(get(at(entries, i), "fullUrl"));
        }
    }
    CHECK(seg && ser);
    CHECK_STR(str(get(at(get(get(ser, "code"), "coding"), 0), "code")), "121232");
    CHECK_STR(str(get(ser, "seriesUid")), "4.4.4");
    CHECK_STR(str(get(ser, "studyUid")), STUDY);
    CHECK(!get(ser, "instance"));
    CHECK(len_of(get(seg, "focus")) == 1);
    CHECK(refers_to(get(seg, "focus"), ser_url));
    CHECK(stats.unmapped == 0);
    CHECK(count_type("ImagingSelection") == 2);
}

TEST(issue10_2_m19_source_series_with_evidence_is_source_image_selection)
{
    /* the evidence lists CT 9.9.1 in series 9.9: a source-image-for-segmentation selection
     * (code 121233) with that instance */
    static const char d[] = SERIES_ALONE_DOC("9.9");
    json_object *seg, *ser, *inst;
    const char *ser_url = NULL;
    CHECK(convert(d, 0));
    seg = selection("referenced-segment", "121191", 0, NULL);
    ser = selection("source-image-for-segmentation", "121233", 0, &ser_url);
    CHECK(seg && ser);
    CHECK_STR(str(get(ser, "seriesUid")), "9.9");
    CHECK_STR(str(get(ser, "studyUid")), STUDY);
    CHECK(len_of(get(ser, "instance")) == 1);
    inst = at(get(ser, "instance"), 0);
    CHECK_STR(str(get(inst, "uid")), "9.9.1");
    CHECK_STR(str(get(get(inst, "sopClass"), "code")), CT);
    CHECK(refers_to(get(seg, "focus"), ser_url));
    CHECK(stats.unmapped == 0);
}

TEST(issue10_2_m26_source_series_invalid_uid_stays_unmapped)
{
    /* 65 characters: no seriesUid can hold it (the guide's example has such a UID) */
    static const char d[] =
        SERIES_ALONE_DOC("1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25");
    json_object *seg;
    CHECK(convert(d, 0));
    seg = selection("referenced-segment", "121191", 0, NULL);
    CHECK(seg && !get(seg, "focus"));
    CHECK(count_type("ImagingSelection") == 1);
    CHECK(stats.unmapped == 1);
}

TEST(m19_invalid_uid_left_out)
{
    /* 65 characters: not a FHIR id (nor a DICOM UID) */
    static const char d[] = DOC(MEASUREMENTS(GROUP("",
        IMAGE("CONTAINS", "121191", "DCM", "Referenced Segment", SEG,
              "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25", SEGMENTS("1")) ","
        DIAMETER)));
    json_object *s;
    CHECK(convert(d, 0));
    s = selection("referenced-segment", "121191", 0, NULL);
    CHECK(s);
    CHECK(!get(s, "instance"));
}

TEST(issue10_8_m19_several_frames_or_segments_one_instance_each)
{
    /* issue 10 defect 8: the referenced-segmentation-frame and referenced-segment profiles
     * allow one subset value per instance: frames 1 and 3, segments 2 and 5 give two
     * instance elements each (same uid and sopClass), never subset ["1","3"] */
    static const char d[] = DOC(MEASUREMENTS(GROUP("",
        IMAGE("CONTAINS", "121214", "DCM", "Referenced Segmentation Frame", SEG, "8.8.1",
              FRAMES_1_3) ","
        IMAGE("CONTAINS", "121191", "DCM", "Referenced Segment", SEG, "8.8.1",
              SEGMENTS_2_5) ","
        DIAMETER)));
    json_object *fr, *sg;
    CHECK(convert(d, 0));
    fr = selection("referenced-segmentation-frame", "121214", 0, NULL);
    sg = selection("referenced-segment", "121191", 0, NULL);
    CHECK(fr && sg);
    CHECK(len_of(get(fr, "instance")) == 2);
    CHECK(len_of(get(sg, "instance")) == 2);
    CHECK_STR(text(get(at(get(fr, "instance"), 0), "subset")), "[\"1\"]");
    CHECK_STR(text(get(at(get(fr, "instance"), 1), "subset")), "[\"3\"]");
    CHECK_STR(text(get(at(get(sg, "instance"), 0), "subset")), "[\"2\"]");
    CHECK_STR(text(get(at(get(sg, "instance"), 1), "subset")), "[\"5\"]");
    for (size_t i = 0; i < 2; i++) {
        CHECK_STR(str(get(at(get(fr, "instance"), i), "uid")), "8.8.1");
        CHECK_STR(str(get(get(at(get(sg, "instance"), i), "sopClass"), "code")), SEG);
    }
}

int main(void)
{
    RUN(m19_region_2d_polyline_with_frames_and_evidence_series);
    RUN(m19_region_2d_multipoint_is_one_point_region_per_point);
    RUN(m19_region_3d_frame_of_reference);
    RUN(m19_referenced_segment_subset_evidence_and_focus);
    RUN(m19_region_in_space_correct_rt_structure_set_uid);
    RUN(m19_region_of_measurement_is_image_region_2d);
    RUN(m12_source_sr_content_item);
    RUN(m19_each_selection_once_and_counted);
    RUN(m19_selection_rid_is_deterministic_and_per_item);
    RUN(m25_no_imaging_selection_in_r4);
    RUN(m19_region_without_image_has_no_instance);
    RUN(issue10_2_m19_source_series_alone_is_a_plain_selection);
    RUN(issue10_2_m19_source_series_with_evidence_is_source_image_selection);
    RUN(issue10_2_m26_source_series_invalid_uid_stays_unmapped);
    RUN(m19_invalid_uid_left_out);
    RUN(issue10_8_m19_several_frames_or_segments_one_instance_each);
    reset();
    return check_failed_total ? 1 : 0;
}
