/*
 * test_codes.c - unit tests of the code-system stage (src/fhir/codes.c, MAPPING rule M23):
 * designator -> system URI for every M23 scheme, SRT -> SCT translation checked against
 * DICOM's published values, private schemes declared with a URL / a UID / not at all, case
 * variants, URN and DICOM UID codes, versions, NULL safety, and every SRT code of the shared
 * corpus dumps ($SHARED/corpus/dumps or ../shared; skipped when absent).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fhir/codes.h"
#include "util/arena.h"

static s2f_codeval cv(const char *value, const char *scheme, const char *meaning)
{
    s2f_codeval c = {value, scheme, NULL, meaning, 0};
    return c;
}

TEST(tables_are_sorted)
{
    CHECK(s2f_codes_check_tables() == 0);
    CHECK(s2f_codes_srt_table_size() > 7000);
}

TEST(m23_designators)
{
    static const struct { const char *d, *uri; } want[] = {
        {"DCM", "http://dicom.nema.org/resources/ontology/DCM"},
        {"SCT", "http://snomed.info/sct"},
        {"LN", "http://loinc.org"},
        {"UCUM", "http://unitsofmeasure.org"},
        {"UMLS", "http://terminology.hl7.org/CodeSystem/umls"},
        {"NCIt", "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"},
        {"RADLEX", "http://radlex.org"},
        {"FMA", "http://purl.org/sig/ont/fma"},
        {"SRT", "http://snomed.info/srt"},
        {"I10", "http://hl7.org/fhir/sid/icd-10"},
        {"I10C", "http://hl7.org/fhir/sid/icd-10-cm"},
        {"I9C", "http://hl7.org/fhir/sid/icd-9-cm"},
        {"ICDO3", "http://terminology.hl7.org/CodeSystem/icd-o-3"},
        {"RFC5646", "urn:ietf:bcp:47"},
        {"RFC3066", "urn:ietf:bcp:47"},
        {"ISO3166_1", "urn:iso:std:iso:3166"},
        {"MSH", "https://www.nlm.nih.gov/mesh"},
        {"HGNC", "http://www.genenames.org"},
        {"UBERON", "http://purl.obolibrary.org/obo/uberon.owl"},
        {"RXNORM", "http://www.nlm.nih.gov/research/umls/rxnorm"},
        {"NDC", "http://hl7.org/fhir/sid/ndc"},
        {"C4", "http://www.ama-assn.org/go/cpt"},
        {"ATC", "http://www.whocc.no/atc"},
        {"MDC", "urn:iso:std:iso:11073:10101"},
        {"ACR", "urn:oid:2.16.840.1.113883.6.76"},
        {"SNM3", "urn:oid:2.16.840.1.113883.6.51"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK_STR(s2f_codes_system(want[i].d), want[i].uri);
    /* Case-sensitive, except the known real-world spellings. */
    CHECK_STR(s2f_codes_system("RadLex"), "http://radlex.org");
    CHECK_STR(s2f_codes_system("Radlex"), "http://radlex.org");
    CHECK_STR(s2f_codes_system("NCIT"), "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl");
    CHECK(s2f_codes_system("dcm") == NULL);
    CHECK(s2f_codes_system("99PMP") == NULL);
    CHECK(s2f_codes_system("") == NULL);
    CHECK(s2f_codes_system(NULL) == NULL);
    CHECK_STR(s2f_codes_system_by_oid("2.16.840.1.113883.6.96"), "http://snomed.info/sct");
    CHECK(s2f_codes_system_by_oid("1.2.3.4") == NULL);
    CHECK(s2f_codes_system_by_oid(NULL) == NULL);
}

/* Values from DICOM PS3.16's SNOMED mapping (Annex O) as pydicom ships it. */
TEST(srt_translations)
{
    CHECK_STR(s2f_codes_srt_to_sct("T-28000"), "39607008");   /* Lung */
    CHECK_STR(s2f_codes_srt_to_sct("T-62000"), "10200004");   /* Liver */
    CHECK_STR(s2f_codes_srt_to_sct("G-D7FE"), "410668003");   /* Length */
    CHECK_STR(s2f_codes_srt_to_sct("P0-0099A"), "363679005"); /* Imaging procedure */
    CHECK_STR(s2f_codes_srt_to_sct("R-00317"), "373098007");  /* Mean */
    CHECK_STR(s2f_codes_srt_to_sct("M-80006"), "14799000");   /* Neoplasm, metastatic */
    CHECK_STR(s2f_codes_srt_to_sct("R-10242"), "399162004");  /* cranio-caudal */
    CHECK(s2f_codes_srt_to_sct("T-53131") == NULL);           /* base of tongue: no mapping */
    CHECK(s2f_codes_srt_to_sct("t-28000") == NULL);
    CHECK(s2f_codes_srt_to_sct("") == NULL);
    CHECK(s2f_codes_srt_to_sct(NULL) == NULL);

    s2f_arena *a = s2f_arena_new(0);
    s2f_coding o;
    s2f_codeval c = cv("T-28000", "SRT", "Lung");
    c.version = "1.1";
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK_STR(o.system, "http://snomed.info/sct");
    CHECK_STR(o.code, "39607008");
    CHECK_STR(o.display, "Lung");
    CHECK_STR(o.designator, "SRT");
    CHECK(o.version == NULL && o.translated == 1 && o.fallback == 0);

    c = cv("T-53131", "SRT", "base of tongue");
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK_STR(o.system, "http://snomed.info/srt");
    CHECK_STR(o.code, "T-53131");
    CHECK(o.translated == 0 && o.fallback == 0);

    c = cv("R-10242", "SNM3", "cranio-caudal");
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK_STR(o.system, "http://snomed.info/sct");
    CHECK_STR(o.code, "399162004");
    CHECK(o.translated == 1);

    /* SCT passes through; an SRT-style id written under SCT is translated. */
    c = cv("39607008", "SCT", "Lung");
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK_STR(o.system, "http://snomed.info/sct");
    CHECK_STR(o.code, "39607008");
    CHECK(o.translated == 0);
    c = cv("T-62000", "SCT", "Liver");
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK_STR(o.code, "10200004");
    CHECK(o.translated == 1);
    s2f_arena_free(a);
}

TEST(private_schemes)
{
    s2f_arena *a = s2f_arena_new(0);
    s2f_scheme_decl decl[3] = {
        {.designator = "99PMP", .uid = "1.2.3.4.5", .url = "http://example.org/pmp"},
        {.designator = "99LIDC", .uid = "1.2.840.99.1"},
        {.designator = "99SNO", .uid = "2.16.840.1.113883.6.96"},
    };
    s2f_coding o;
    s2f_codeval c = cv("A1", "99PMP", "Thing");
    CHECK(s2f_codes_coding_from_dicom(&c, decl, 3, a, &o) == S2F_OK);
    CHECK_STR(o.system, "http://example.org/pmp"); /* URL wins over UID */
    CHECK(o.declared == 1 && o.fallback == 0);

    c = cv("105", "99LIDC", "5 out of 5");
    CHECK(s2f_codes_coding_from_dicom(&c, decl, 3, a, &o) == S2F_OK);
    CHECK_STR(o.system, "urn:oid:1.2.840.99.1");
    CHECK(o.declared == 1 && o.fallback == 0);

    /* A private designator declared with a known scheme's OID gets that scheme's URI. */
    c = cv("39607008", "99SNO", "Lung");
    CHECK(s2f_codes_coding_from_dicom(&c, decl, 3, a, &o) == S2F_OK);
    CHECK_STR(o.system, "http://snomed.info/sct");

    /* Undeclared: the documented fallback, flagged. */
    c = cv("x", "99PYRADIOMICS", "Feature");
    CHECK(s2f_codes_coding_from_dicom(&c, decl, 3, a, &o) == S2F_OK);
    CHECK_STR(o.system, S2F_CODING_FALLBACK_PREFIX "99PYRADIOMICS");
    CHECK(o.fallback == 1 && o.declared == 0);
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK(o.fallback == 1);

    /* Characters outside RFC 3986 unreserved are percent-encoded. */
    c = cv("x", "99 MY/CS", "Feature");
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK_STR(o.system, S2F_CODING_FALLBACK_PREFIX "99%20MY%2FCS");

    /* Declared but with neither URL nor UID: fallback as well. */
    s2f_scheme_decl bare = {.designator = "99BARE", .name = "Bare"};
    c = cv("1", "99BARE", "One");
    CHECK(s2f_codes_coding_from_dicom(&c, &bare, 1, a, &o) == S2F_OK);
    CHECK(o.fallback == 1);

    /* A standard designator keeps its standard URI whatever the document declares. */
    s2f_scheme_decl dcm = {.designator = "DCM", .url = "http://example.org/not-dcm"};
    c = cv("126000", "DCM", "Imaging Measurement Report");
    CHECK(s2f_codes_coding_from_dicom(&c, &dcm, 1, a, &o) == S2F_OK);
    CHECK_STR(o.system, "http://dicom.nema.org/resources/ontology/DCM");
    CHECK(o.declared == 0);
    s2f_arena_free(a);
}

TEST(radlex_spelling_version_units)
{
    s2f_arena *a = s2f_arena_new(0);
    s2f_coding o;
    s2f_codeval c = cv("RID36042", "RadLex", "Malignancy");
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK_STR(o.system, "http://radlex.org");
    CHECK_STR(o.code, "RID36042");
    CHECK_STR(o.designator, "RadLex");
    CHECK(o.fallback == 0);

    c = cv("126000", "DCM", "Imaging Measurement Report");
    c.version = "01";
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK_STR(o.version, "01");

    c = cv("mm", "UCUM", "mm");
    c.version = "1.4";
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK_STR(o.system, "http://unitsofmeasure.org");
    CHECK_STR(o.code, "mm");
    CHECK_STR(o.version, "1.4");

    c = cv("mm", "UCUM", "");
    c.version = "";
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK(o.display == NULL && o.version == NULL);
    s2f_arena_free(a);
}

TEST(long_urn_and_uid_codes)
{
    s2f_arena *a = s2f_arena_new(0);
    s2f_coding o;
    s2f_codeval c = cv("a-very-long-code-value-longer-than-sixteen-chars", "99X", "Long");
    c.value_kind = 1;
    s2f_scheme_decl d = {.designator = "99X", .uid = "1.2.3"};
    CHECK(s2f_codes_coding_from_dicom(&c, &d, 1, a, &o) == S2F_OK);
    CHECK_STR(o.code, "a-very-long-code-value-longer-than-sixteen-chars");
    CHECK_STR(o.system, "urn:oid:1.2.3");

    c = cv("http://example.org/concepts/42", "", "Forty-two");
    c.value_kind = 2;
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK_STR(o.system, "urn:ietf:rfc:3986");
    CHECK_STR(o.code, "http://example.org/concepts/42");
    CHECK(o.fallback == 0);

    c = cv("urn:oid:1.2.3.4", NULL, "x");
    c.value_kind = 2;
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK_STR(o.system, "urn:ietf:rfc:3986");
    CHECK_STR(o.designator, "");

    /* URN Code Value with a designator: the designator's system. */
    c = cv("urn:example:1", "LN", "x");
    c.value_kind = 2;
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK_STR(o.system, "http://loinc.org");

    /* Empty designator and not a URN: no system, flagged. */
    c = cv("123", "", "x");
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK(o.system == NULL && o.fallback == 1);
    CHECK_STR(o.code, "123");

    c = cv("1.2.840.10008.5.1.4.1.1.88.33", "DCMUID", "Comprehensive SR");
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    CHECK_STR(o.system, "urn:ietf:rfc:3986");
    CHECK_STR(o.code, "urn:oid:1.2.840.10008.5.1.4.1.1.88.33");
    s2f_arena_free(a);
}

TEST(null_safety_and_memory_limit)
{
    s2f_arena *a = s2f_arena_new(0);
    s2f_coding o;
    CHECK(s2f_codes_coding_from_dicom(NULL, NULL, 0, a, &o) == S2F_EUSAGE);
    CHECK(o.system == NULL && o.code && !*o.code);
    s2f_codeval c = {0};
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, NULL) == S2F_EUSAGE);
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 5, a, &o) == S2F_OK); /* all fields NULL */
    CHECK_STR(o.code, "");
    CHECK_STR(o.designator, "");
    CHECK(o.display == NULL && o.version == NULL && o.fallback == 1);
    s2f_scheme_decl d[2] = {{.designator = NULL}, {.designator = "99Z", .url = ""}};
    c = cv("1", "99Z", "z");
    CHECK(s2f_codes_coding_from_dicom(&c, d, 2, a, &o) == S2F_OK);
    CHECK(o.fallback == 1); /* an empty URL is no URL */
    s2f_arena_free(a);

    /* A table scheme needs no memory; a built system fails cleanly when the arena is full. */
    a = s2f_arena_new(1);
    while (s2f_arena_alloc(a, 8))
        ;
    c = cv("126000", "DCM", "x");
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
    c = cv("1", "99FULL", "x");
    CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_ELIMIT);
    CHECK(o.system == NULL && o.code && !*o.code);
    s2f_arena_free(a);
}

/* Every SRT code in the corpus dumps ("(code,SRT,"meaning")") is translated or reported. */
TEST(corpus_srt_codes)
{
    const char *shared = getenv("SHARED");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/corpus/dumps", shared ? shared : "../shared");
    DIR *d = opendir(dir);
    if (!d)
        SKIP("../shared/corpus/dumps is absent (set SHARED or put shared/ beside the checkout)");
    enum { MAXC = 4096 };
    static char codes[MAXC][32];
    size_t n = 0, translated = 0;
    struct dirent *de;
    static char line[65536];
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 4, ".txt") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f)) {
            for (char *p = strstr(line, ",SRT,"); p; p = strstr(p + 1, ",SRT,")) {
                char *open = p;
                while (open > line && open[-1] != '(')
                    open--;
                size_t clen = (size_t)(p - open);
                if (open == line || clen == 0 || clen >= 32)
                    continue;
                char code[32];
                memcpy(code, open, clen);
                code[clen] = 0;
                size_t k;
                for (k = 0; k < n && strcmp(codes[k], code) != 0; k++)
                    ;
                if (k == n && n < MAXC)
                    memcpy(codes[n++], code, clen + 1);
            }
        }
        fclose(f);
    }
    closedir(d);
    CHECK(n > 0);
    s2f_arena *a = s2f_arena_new(0);
    char untranslated[2048] = "";
    for (size_t i = 0; i < n; i++) {
        s2f_codeval c = cv(codes[i], "SRT", "");
        s2f_coding o;
        CHECK(s2f_codes_coding_from_dicom(&c, NULL, 0, a, &o) == S2F_OK);
        if (o.translated) {
            CHECK_STR(o.system, "http://snomed.info/sct");
            translated++;
        } else {
            CHECK_STR(o.system, "http://snomed.info/srt");
            CHECK_STR(o.code, codes[i]);
            size_t ul = strlen(untranslated);
            snprintf(untranslated + ul, sizeof untranslated - ul, " %s", codes[i]);
        }
    }
    s2f_arena_free(a);
    printf("info corpus_srt_codes: %zu distinct SRT codes, %zu translated to SCT, %zu kept under "
           "snomed.info/srt:%s\n", n, translated, n - translated, untranslated);
    CHECK(translated > n / 2);
}

int main(void)
{
    RUN(tables_are_sorted);
    RUN(m23_designators);
    RUN(srt_translations);
    RUN(private_schemes);
    RUN(radlex_spelling_version_units);
    RUN(long_urn_and_uid_codes);
    RUN(null_safety_and_memory_limit);
    RUN(corpus_srt_codes);
    CHECK_DONE();
}
