/*
 * sr_json.h - macros the unit tests use to write small DICOM JSON SR documents as C string
 * literals: a code, a concept name, a content item's relationship and value type, its
 * children, and the common value items. Each test file adds the few it needs on top.
 */
#ifndef S2F_TEST_SR_JSON_H
#define S2F_TEST_SR_JSON_H

#define CODE(v, s, m) "{\"00080100\":{\"vr\":\"SH\",\"Value\":[\"" v "\"]},"                \
                      "\"00080102\":{\"vr\":\"SH\",\"Value\":[\"" s "\"]},"                 \
                      "\"00080104\":{\"vr\":\"LO\",\"Value\":[\"" m "\"]}}"
#define CONCEPT(v, s, m) "\"0040A043\":{\"vr\":\"SQ\",\"Value\":[" CODE(v, s, m) "]}"
#define ITEM(rel, vt) "\"0040A010\":{\"vr\":\"CS\",\"Value\":[\"" rel "\"]},"                \
                      "\"0040A040\":{\"vr\":\"CS\",\"Value\":[\"" vt "\"]}"
#define KIDS(...) ",\"0040A730\":{\"vr\":\"SQ\",\"Value\":[" __VA_ARGS__ "]}"
#define CODEITEM(rel, v, s, m, value) \
    "{" ITEM(rel, "CODE") "," CONCEPT(v, s, m) ",\"0040A168\":{\"vr\":\"SQ\",\"Value\":[" value "]}}"
#define CODEITEM_KIDS(rel, v, s, m, value, ...)                                              \
    "{" ITEM(rel, "CODE") "," CONCEPT(v, s, m) ",\"0040A168\":{\"vr\":\"SQ\",\"Value\":[" value \
    "]}" KIDS(__VA_ARGS__) "}"
#define TEXTITEM(rel, v, s, m, text) \
    "{" ITEM(rel, "TEXT") "," CONCEPT(v, s, m) ",\"0040A160\":{\"vr\":\"UT\",\"Value\":[\"" text "\"]}}"
#define UIDITEM(rel, v, s, m, uid) \
    "{" ITEM(rel, "UIDREF") "," CONCEPT(v, s, m) ",\"0040A124\":{\"vr\":\"UI\",\"Value\":[\"" uid "\"]}}"
#define PNITEM(rel, name) "{" ITEM(rel, "PNAME") "," CONCEPT("121008", "DCM", "Person Observer Name") \
    ",\"0040A123\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"" name "\"}]}}"
#define ENHANCED "1.2.840.10008.5.1.4.1.1.88.22"

#endif
