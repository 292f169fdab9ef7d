/*
 * test_content.c - unit tests of the SR stage (src/sr/): content tree, header, by-reference
 * resolution, positions and the dump lines, over small DICOM JSON documents.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sr/document.h"

#define CODE(v, s, m) "{\"00080100\":{\"vr\":\"SH\",\"Value\":[\"" v "\"]},"                \
                      "\"00080102\":{\"vr\":\"SH\",\"Value\":[\"" s "\"]},"                 \
                      "\"00080104\":{\"vr\":\"LO\",\"Value\":[\"" m "\"]}}"
#define CONCEPT(v, s, m) "\"0040A043\":{\"vr\":\"SQ\",\"Value\":[" CODE(v, s, m) "]}"
#define VT(t) "\"0040A040\":{\"vr\":\"CS\",\"Value\":[\"" t "\"]}"
#define REL(r) "\"0040A010\":{\"vr\":\"CS\",\"Value\":[\"" r "\"]}"
#define CONTENT(...) "\"0040A730\":{\"vr\":\"SQ\",\"Value\":[" __VA_ARGS__ "]}"

static const char report[] =
    "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.5.1.4.1.1.88.22\"]},"
    "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.4\"]},"
    "\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Doe^Jane\"}]},"
    "\"00100020\":{\"vr\":\"LO\",\"Value\":[\"PID-1\"]},"
    "\"0040A375\":{\"vr\":\"SQ\",\"Value\":[{\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"1.9\"]},"
    "  \"00081115\":{\"vr\":\"SQ\",\"Value\":[{\"0020000E\":{\"vr\":\"UI\",\"Value\":[\"1.9.1\"]},"
    "  \"00081199\":{\"vr\":\"SQ\",\"Value\":[{\"00081150\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.5.1.4.1.1.2\"]},"
    "  \"00081155\":{\"vr\":\"UI\",\"Value\":[\"1.9.1.1\"]}}]}}]}}]},"
    VT("CONTAINER") "," CONCEPT("126000", "DCM", "Imaging Measurement Report") ","
    "\"0040A050\":{\"vr\":\"CS\",\"Value\":[\"SEPARATE\"]},"
    "\"0040A504\":{\"vr\":\"SQ\",\"Value\":[{\"00080105\":{\"vr\":\"CS\",\"Value\":[\"DCMR\"]},"
    "  \"0040DB00\":{\"vr\":\"CS\",\"Value\":[\"1500\"]}}]},"
    CONTENT(
        "{" REL("HAS OBS CONTEXT") "," VT("PNAME") "," CONCEPT("121008", "DCM", "Person Observer Name") ","
        "\"0040A123\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Smith^John\"}]}},"
        "{" REL("CONTAINS") "," VT("NUM") "," CONCEPT("81827009", "SCT", "Diameter") ","
        "\"0040A171\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.4.5\"]},"
        "\"0040A300\":{\"vr\":\"SQ\",\"Value\":[{\"0040A30A\":{\"vr\":\"DS\",\"Value\":[0.000012345678901234]},"
        "  \"0040A161\":{\"vr\":\"FD\",\"Value\":[1.25]},"
        "  \"004008EA\":{\"vr\":\"SQ\",\"Value\":[" CODE("mm", "UCUM", "millimeter") "]}}]},"
        CONTENT("{" REL("INFERRED FROM") "," VT("SCOORD") ","
                "\"00700023\":{\"vr\":\"CS\",\"Value\":[\"POLYLINE\"]},"
                "\"00700022\":{\"vr\":\"FL\",\"Value\":[1.5,2,3,4.25]},"
                CONTENT("{" REL("SELECTED FROM") "," VT("IMAGE") ","
                        "\"00081199\":{\"vr\":\"SQ\",\"Value\":[{"
                        "\"00081150\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.5.1.4.1.1.2\"]},"
                        "\"00081155\":{\"vr\":\"UI\",\"Value\":[\"1.9.1.1\"]},"
                        "\"00081160\":{\"vr\":\"IS\",\"Value\":[1,3]}}]}}") "}") "},"
        "{" REL("CONTAINS") "," VT("NUM") "," CONCEPT("G-D7FE", "SRT", "Area") ","
        "\"0040A300\":{\"vr\":\"SQ\",\"Value\":[]},"
        "\"0040A301\":{\"vr\":\"SQ\",\"Value\":[" CODE("114000", "DCM", "Not a number") "]}},"
        "{" REL("CONTAINS") "," VT("SCOORD3D") ","
        "\"00700023\":{\"vr\":\"CS\",\"Value\":[\"POINT\"]},"
        "\"00700022\":{\"vr\":\"FL\",\"Value\":[1,2,3]},"
        "\"30060024\":{\"vr\":\"UI\",\"Value\":[\"1.2.5\"]}},"
        "{" REL("HAS PROPERTIES") ",\"0040DB73\":{\"vr\":\"UL\",\"Value\":[1,2,1]}},"
        "{" REL("HAS PROPERTIES") ",\"0040DB73\":{\"vr\":\"UL\",\"Value\":[1,9]}},"
        "{" REL("CONTAINS") "," VT("TEXT") "," CONCEPT("1", "99X", "Note") ","
        "\"0040A160\":{\"vr\":\"UT\",\"Value\":[\"a \\\"b\\\"\\nc\"]}},"
        "{" REL("CONTAINS") "," VT("TABLE") ",\"0040A802\":{\"vr\":\"UL\",\"Value\":[2]},"
        "\"0040A803\":{\"vr\":\"UL\",\"Value\":[3]},"
        "\"0040A808\":{\"vr\":\"SQ\",\"Value\":[{},{},{},{},{},{}]}}") "}";

static s2f_doc *read_report(const char *json, s2f_error *err)
{
    return s2f_doc_read(json, strlen(json), NULL, err);
}

static char *dump_to_string(const s2f_doc *doc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    s2f_error err;
    s2f_dump(doc, f, &err);
    fclose(f);
    return buf;
}

TEST(tree_shape_and_values)
{
    s2f_error err = {0};
    s2f_doc *doc = read_report(report, &err);
    CHECK(doc);
    const s2f_item *root = doc->tree.root;
    CHECK(root->vt == S2F_VT_CONTAINER && root->v.container.separate);
    CHECK_STR(root->concept->value, "126000");
    CHECK_STR(root->template_id, "1500");
    CHECK(root->n_children == 8);
    CHECK(doc->tree.n_items == 11);
    const s2f_item *pn = root->children[0];
    CHECK(pn->rel == S2F_REL_HAS_OBS_CONTEXT && pn->vt == S2F_VT_PNAME);
    CHECK_STR(pn->v.text, "Smith^John");
    const s2f_item *num = root->children[1];
    CHECK_STR(num->v.num.text, "0.000012345678901234");
    CHECK(num->v.num.has_float && num->v.num.fp == 1.25);
    CHECK_STR(num->v.num.units->value, "mm");
    CHECK_STR(num->observation_uid, "1.2.3.4.5");
    const s2f_item *img = num->children[0]->children[0];
    CHECK(img->rel == S2F_REL_SELECTED_FROM && img->vt == S2F_VT_IMAGE);
    CHECK(img->v.ref.n_frames == 2 && img->v.ref.frames[1] == 3);
    CHECK(num->children[0]->v.coord.n == 4 && num->children[0]->v.coord.data[3] == 4.25f);
    s2f_doc_free(doc);
}

TEST(numeric_value_qualifier_without_value)
{
    s2f_error err = {0};
    s2f_doc *doc = read_report(report, &err);
    CHECK(doc);
    const s2f_item *nan = doc->tree.root->children[2];
    CHECK(!nan->v.num.has_value && nan->v.num.text == NULL);
    CHECK_STR(nan->v.num.qualifier->value, "114000");
    s2f_doc_free(doc);
}

TEST(by_reference_resolves_or_warns)
{
    s2f_error err = {0};
    s2f_doc *doc = read_report(report, &err);
    CHECK(doc);
    const s2f_item *ok = doc->tree.root->children[4], *bad = doc->tree.root->children[5];
    CHECK(ok->by_reference && ok->ref_path_len == 3);
    CHECK(ok->ref_target == doc->tree.root->children[1]->children[0]);
    CHECK(bad->by_reference && bad->ref_target == NULL);
    size_t n;
    const s2f_warning *w = s2f_doc_warnings(doc, &n);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |= strstr(w[i].message, "1.6: by-reference relationship points at no") != NULL;
    CHECK(found);
    s2f_doc_free(doc);
}

TEST(header_and_evidence)
{
    s2f_error err = {0};
    s2f_doc *doc = read_report(report, &err);
    CHECK(doc);
    CHECK_STR(doc->header.patient_name, "Doe^Jane");
    CHECK_STR(doc->header.patient_id, "PID-1");
    CHECK(doc->header.n_evidence == 1);
    const s2f_evidence *ev = s2f_header_find_evidence(&doc->header, "1.9.1.1");
    CHECK(ev && !strcmp(ev->series_uid, "1.9.1") && !strcmp(ev->study_uid, "1.9"));
    s2f_doc_free(doc);
}

TEST(dump_lines)
{
    s2f_error err = {0};
    s2f_doc *doc = read_report(report, &err);
    CHECK(doc);
    char *out = dump_to_string(doc);
    CHECK(strstr(out, "\n1  CONTAINER (126000,DCM,\"Imaging Measurement Report\") = SEPARATE {template=DCMR/1500}\n"));
    CHECK(strstr(out, "\n1.2  CONTAINS NUM (81827009,SCT,\"Diameter\") = \"0.000012345678901234\" (mm,UCUM,\"millimeter\") fp=1.25 {uid=1.2.3.4.5}\n"));
    CHECK(strstr(out, "\n1.2.1  INFERRED FROM SCOORD = (POLYLINE,1.5/2,3/4.25)\n"));
    CHECK(strstr(out, "\n1.2.1.1  SELECTED FROM IMAGE = (1.2.840.10008.5.1.4.1.1.2,1.9.1.1) frames=1,3\n"));
    CHECK(strstr(out, "\n1.3  CONTAINS NUM (G-D7FE,SRT,\"Area\") = (no value) qualifier=(114000,DCM,\"Not a number\")\n"));
    CHECK(strstr(out, "\n1.4  CONTAINS SCOORD3D = (POINT,\"1.2.5\",1/2/3)\n"));
    CHECK(strstr(out, "\n1.5  HAS PROPERTIES -> 1.2.1\n"));
    CHECK(strstr(out, "\n1.7  CONTAINS TEXT (1,99X,\"Note\") = \"a \\\"b\\\"\\nc\"\n"));
    CHECK(strstr(out, "Patient Name: Doe^Jane\n"));
    CHECK(strstr(out, "\n1.8  CONTAINS TABLE = (2 x 3, 6 cells)\n"));
    CHECK(strstr(out, "Items: 11\n"));
    free(out);
    s2f_doc_free(doc);
}

TEST(root_must_be_a_container)
{
    const char *j = "{" VT("TEXT") ",\"0040A160\":{\"vr\":\"UT\",\"Value\":[\"x\"]}}";
    s2f_error err = {0};
    CHECK(read_report(j, &err) == NULL);
    CHECK(err.code == S2F_EUNSUPPORTED);
    CHECK(strstr(err.message, "root content item is TEXT"));
    CHECK(read_report("{\"00100020\":{\"vr\":\"LO\",\"Value\":[\"x\"]}}", &err) == NULL);
    CHECK(err.code == S2F_EUNSUPPORTED && strstr(err.message, "no Value Type"));
}

TEST(missing_relationship_and_unknown_value_type_are_warnings)
{
    const char *j = "{" VT("CONTAINER") "," CONTENT("{" VT("FOO") "},{" VT("TEXT") "}") "}";
    s2f_error err = {0};
    s2f_doc *doc = read_report(j, &err);
    CHECK(doc);
    CHECK(doc->tree.root->children[0]->vt == S2F_VT_UNKNOWN);
    size_t n;
    const s2f_warning *w = s2f_doc_warnings(doc, &n);
    int unknown = 0, norel = 0;
    for (size_t i = 0; i < n; i++) {
        unknown |= strstr(w[i].message, "content item 1.1: unknown Value Type") != NULL;
        norel |= strstr(w[i].message, "content item 1.2: no Relationship Type") != NULL;
    }
    CHECK(unknown && norel);
    s2f_doc_free(doc);
}

/* Streaming (content.h): a Part 10 report's content data sets are dropped as soon as
 * each item is built, so the document keeps about twice the file, not four times (plus
 * the file itself, which s2f_doc_read_file reads into the document's arena). */
TEST(part10_content_is_streamed_in_bounded_memory)
{
    const char *shared = getenv("SHARED");
    char path[1024];
    snprintf(path, sizeof path, "%s/corpus/files/tid1500__dcmqi__rsna2018_ds3_848792.dcm",
             shared ? shared : "../shared");
    FILE *f = fopen(path, "rb");
    if (!f)
        SKIP("../shared/corpus is absent (set SHARED or put shared/ beside the checkout)");
    fseek(f, 0, SEEK_END);
    size_t size = (size_t)ftell(f);
    fclose(f);
    s2f_error err = {0};
    s2f_doc *doc = s2f_doc_read_file(path, NULL, &err);
    CHECK(doc);
    CHECK(doc->tree.n_items == 4603);
    CHECK(s2f_arena_in_use(doc->arena) < size + 2 * size);
    const s2f_elem *content = s2f_ds_find(doc->ds, S2F_TAG(0x0040, 0xA730));
    CHECK(content && content->is_seq && content->n_items == 0); /* went to the tree */
    s2f_doc_free(doc);
}

int main(void)
{
    RUN(tree_shape_and_values);
    RUN(numeric_value_qualifier_without_value);
    RUN(by_reference_resolves_or_warns);
    RUN(header_and_evidence);
    RUN(dump_lines);
    RUN(root_must_be_a_container);
    RUN(missing_relationship_and_unknown_value_type_are_warnings);
    RUN(part10_content_is_streamed_in_bounded_memory);
    CHECK_DONE();
}
