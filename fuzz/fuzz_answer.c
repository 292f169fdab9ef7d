/*
 * fuzz_answer.c - libFuzzer target for the readers of a FHIR server's answers
 * (src/deliver/client.c): CapabilityStatement (M25), searchsets (M4-M6),
 * transaction-responses (M24) and OperationOutcome text. A server is untrusted input too
 * (issue 9 #6, #8): every reader must return a code without crashing or leaking, within
 * its memory bound, whatever it is sent, and its message must hold no control character.
 */
#include "deliver/client.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Messages carry server text escaped: a raw control character is a finding. */
static void check_message(const char *m)
{
    for (const unsigned char *p = (const unsigned char *)m; *p; p++)
        if (*p < 0x20 || *p == 0x7f || (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F))
            abort();
}

/* How many entries the answer seems to answer: transaction-responses of the seeds match the
 * request, so the success path is explored too. */
static size_t responses_in(const char *body, size_t size)
{
    size_t n = 0;
    static const char key[] = "\"response\"";
    for (size_t i = 0; i + sizeof key - 1 <= size; i++)
        if (!memcmp(body + i, key, sizeof key - 1))
            n++;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    s2f_error err = {S2F_OK, ""};
    s2f_fhir_version v = S2F_FHIR_AUTO;
    if (s2f_client_answer_version(body, size, &v, &err))
        check_message(err.message);

    static const char *const types[] = {"Patient", "ServiceRequest", "ImagingStudy"};
    char *ref = NULL;
    if (s2f_client_answer_search(body, size, types[size % 3], "Patient with identifier x", (int)(size & 1),
                          &ref, &err))
        check_message(err.message);
    free(ref);

    size_t counts[2] = {responses_in(body, size), size % 7};
    for (int i = 0; i < 2; i++) {
        s2f_send_result res = {0};
        if (s2f_client_answer_transaction(body, size, counts[i], &res, &err))
            check_message(err.message);
        s2f_send_result_free(&res);
    }

    char text[400];
    s2f_client_answer_text(body, size, text, sizeof text);
    check_message(text);
    return 0;
}
