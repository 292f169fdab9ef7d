/*
 * fuzz_qido.c - libFuzzer target for the QIDO-RS answer parser of the DICOMweb pull client
 * (s2f_dw_parse_qido, src/gateway/dicomweb.c, issue 13): a DICOMweb server is untrusted
 * input. The input is the answer itself. Aborts when: a reported UID is not "" or 1-64
 * digits and dots (they go into WADO-RS URLs); the count differs from the callbacks made;
 * a failure has a code other than malformed, limit or memory, or a message with a control
 * character; a second parse that stops after the first result disagrees with the first
 * (it must report the same first result, or fail the same way when nothing was found).
 */
#include "gateway/dicomweb.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    size_t n, stop_at;
    s2f_dw_instance first;
} seen;

static void check_uid(const char *u)
{
    size_t n = strlen(u);
    if (n > S2F_DW_UID_MAX)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!((u[i] >= '0' && u[i] <= '9') || u[i] == '.'))
            abort();
}

static int on_each(void *ctx, const s2f_dw_instance *inst)
{
    seen *s = ctx;
    check_uid(inst->study);
    check_uid(inst->series);
    check_uid(inst->sop_instance);
    check_uid(inst->sop_class);
    if (s->n++ == 0)
        s->first = *inst;
    return s->stop_at && s->n >= s->stop_at;
}

static void check_error(s2f_code rc, const s2f_error *err)
{
    if (rc == S2F_OK)
        return;
    if (rc != S2F_EFORMAT && rc != S2F_ELIMIT && rc != S2F_ENOMEM)
        abort();
    for (const char *c = err->message; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    seen all = {0}, one = {.stop_at = 1};
    size_t count = 0, count1 = 0;
    s2f_error err = {0}, err1 = {0};
    s2f_code rc = s2f_dw_parse_qido((const char *)data, size, on_each, &all, &count, &err);
    check_error(rc, &err);
    if (count != all.n)
        abort();
    s2f_code rc1 = s2f_dw_parse_qido((const char *)data, size, on_each, &one, &count1, &err1);
    check_error(rc1, &err1);
    if (one.n != count1 || one.n > 1)
        abort();
    if (all.n > 0 && (rc1 != S2F_OK || one.n != 1 || memcmp(&all.first, &one.first, sizeof one.first)))
        abort();
    if (all.n == 0 && (rc1 != rc || strcmp(err.message, err1.message)))
        abort();
    return 0;
}
