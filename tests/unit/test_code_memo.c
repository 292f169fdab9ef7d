/*
 * test_code_memo.c - the reader's memo of codes (src/sr/item.c) stays linear for codes an
 * input makes alike (issue 9 defect 11). The old test timed 10,000 against 40,000 such
 * codes and failed on a busy machine; here the work is counted instead: the memo's lookups,
 * the slots they looked at and the equality calls (util/hindex.h `work`), read from the
 * tree (s2f_tree.code_memo_work). Codes whose meanings differ only in their middle bytes
 * all shared one hash under the old reader, which hashed only the ends of each text.
 */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "sr2fhir.h"
#include "sr/document.h"
#include "sr_json.h"

/* A DICOM JSON SR whose root has n TEXT children with concept codes that differ only in
 * the middle of their meanings, plus `repeats` more children reusing the first code. */
static char *alike_codes_report(int n, int repeats)
{
    size_t cap = (size_t)(n + repeats) * 400 + 1024, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    len += (size_t)snprintf(s + len, cap - len,
                            "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"" ENHANCED "\"]},"
                            "\"0040A040\":{\"vr\":\"CS\",\"Value\":[\"CONTAINER\"]},"
                            CONCEPT("126000", "DCM", "Imaging Measurement Report")
                            ",\"0040A730\":{\"vr\":\"SQ\",\"Value\":[");
    for (int i = 0; i < n + repeats; i++) {
        char meaning[64];
        snprintf(meaning, sizeof meaning, "Mean AAAAAAAA %08d ZZZZZZZZ", i < n ? i : 0);
        len += (size_t)snprintf(s + len, cap - len,
                                "%s{" ITEM("CONTAINS", "TEXT") ",\"0040A043\":{\"vr\":\"SQ\",\"Value\":["
                                "{\"00080100\":{\"vr\":\"SH\",\"Value\":[\"126001\"]},"
                                "\"00080102\":{\"vr\":\"SH\",\"Value\":[\"DCM\"]},"
                                "\"00080104\":{\"vr\":\"LO\",\"Value\":[\"%s\"]}}]},"
                                "\"0040A160\":{\"vr\":\"UT\",\"Value\":[\"x\"]}}",
                                i ? "," : "", meaning);
    }
    snprintf(s + len, cap - len, "]}}");
    return s;
}

TEST(alike_codes_cost_a_few_probes_and_no_scan_each)
{
    enum { N = 40000, REPEATS = 1000 };
    char *json = alike_codes_report(N, REPEATS);
    CHECK(json);
    s2f_error err;
    s2f_doc *doc = s2f_doc_read(json, strlen(json), NULL, &err);
    free(json);
    CHECK(doc);
    s2f_hindex_work w = doc->tree.code_memo_work;
    /* every code item is looked up once: N + REPEATS children and the root's concept */
    CHECK(w.lookups >= (size_t)(N + REPEATS) && w.lookups <= (size_t)(N + REPEATS) + 4);
    /* equality is called only on equal 64-bit keyed hashes: the repeats (and a few
     * other repeated codes), never the alike ones. Old reader: every alike code compared
     * with up to 128 others, about 5 million calls. */
    CHECK(w.compares <= (size_t)REPEATS + 4);
    /* linear probing at most half full: about 2.5 slots a lookup expected; quadratic
     * would be N / 2 a lookup */
    CHECK(w.probes <= 4 * w.lookups);
    s2f_doc_free(doc);
}

int main(void)
{
    RUN(alike_codes_cost_a_few_probes_and_no_scan_each);
    CHECK_DONE();
}
