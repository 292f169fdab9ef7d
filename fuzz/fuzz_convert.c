/*
 * fuzz_convert.c - libFuzzer target for the conversion pipeline as `sr2fhir convert` and
 * `sr2fhir send --max-entries` run it (issue 9 defect 12): read (Part 10 or DICOM JSON,
 * told apart by the reader), convert to a transaction Bundle, then split that Bundle
 * into transactions of a few entries (src/deliver/split.h). The first input byte picks
 * the options (R4/R5, pretty, collection, split size, the DiagnosticReport of issue 15 with
 * bit 2) so that one corpus reaches them all;
 * the rest is the file. Build with `make fuzz`; fuzz/run.sh runs it on the fixtures.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sr2fhir.h"
#include "deliver/split.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Splits the transaction Bundle text into parts of max_entries (every part is well-formed
 * JSON the splitter made, so a failure here is a finding only under the sanitizers). */
static void split(const char *bundle, size_t len, size_t max_entries)
{
    s2f_bundle_parts parts = {0};
    s2f_error err;
    if (s2f_split_bundle(bundle, len, max_entries, &parts, &err) == S2F_OK)
        s2f_split_parts_free(&parts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Inputs whose first byte is a Part 10 preamble byte or '[' / '{' are taken whole
     * with default options, so the seeds (real files) are converted as they are. */
    unsigned mode = 0;
    if (size > 1 && data[0] >= 0xF0) {
        mode = data[0] & 0x0F;
        data++;
        size--;
    }
    s2f_options opt = {.max_memory = (size_t)64 << 20};
    s2f_error err;
    s2f_doc *doc = s2f_doc_read(data, size, &opt, &err);
    if (!doc)
        return 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (out) {
        s2f_convert_options copt;
        s2f_convert_options_init(&copt);
        copt.fhir_version = mode & 1 ? S2F_FHIR_R4 : S2F_FHIR_AUTO;
        copt.pretty = (mode >> 1) & 1;
        copt.bundle_type = (mode >> 2) & 1 && (mode & 8) ? S2F_BUNDLE_COLLECTION
                                                         : S2F_BUNDLE_TRANSACTION;
        copt.timezone = (mode & 8) ? "-0530" : NULL;
        copt.diagnostic_report = (mode >> 2) & 1; /* issue 15 */
        s2f_convert_result res;
        s2f_convert_result_init(&res);
        s2f_code rc = s2f_convert(doc, &copt, out, &res, &err);
        if (fclose(out) == 0 && rc == S2F_OK && copt.bundle_type == S2F_BUNDLE_TRANSACTION)
            split(buf, len, 1 + (mode >> 2));
        free(buf);
    }
    s2f_doc_free(doc);
    return 0;
}
