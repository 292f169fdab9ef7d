/*
 * fuzz_answer.c - libFuzzer target for the readers of a FHIR server's answers
 * (src/deliver/client.c): CapabilityStatement (M25), searchsets (M4-M6),
 * transaction-responses (M24) and OperationOutcome text. A server is untrusted input too:
 * every reader must return a code without crashing or leaking, whatever it is sent.
 */
#include "deliver/client.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    s2f_error err = {S2F_OK, ""};
    s2f_fhir_version v = S2F_FHIR_AUTO;
    (void)s2f_answer_version(body, size, &v, &err);

    char *ref = NULL;
    (void)s2f_answer_search(body, size, "Patient", "Patient with identifier x", (int)(size & 1), &ref, &err);
    free(ref);

    s2f_send_result res = {0};
    (void)s2f_answer_transaction(body, size, size % 7, &res, &err);
    s2f_send_result_free(&res);

    char text[400];
    s2f_answer_text(body, size, text, sizeof text);
    return 0;
}
