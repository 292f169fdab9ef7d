/*
 * fuzz_doc.c - libFuzzer target for the whole reading pipeline: format detection, either
 * reader, character sets, header, content tree and the dump, as `sr2fhir dump` runs them.
 * Build with `make fuzz`; run e.g. build-fuzz/fuzz_doc -max_total_time=600 CORPUS_DIR.
 */
#include <stdint.h>
#include <stdio.h>

#include "sr2fhir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s2f_options opt = {.max_memory = (size_t)64 << 20};
    s2f_error err;
    s2f_doc *doc = s2f_doc_read(data, size, &opt, &err);
    if (doc) {
        FILE *devnull = fopen("/dev/null", "w");
        if (devnull) {
            s2f_dump(doc, devnull, &err);
            fclose(devnull);
        }
        s2f_doc_free(doc);
    }
    return 0;
}
