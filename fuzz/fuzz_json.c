/*
 * fuzz_json.c - libFuzzer target for the DICOM JSON reader (src/dicom/dicomjson.c, M1).
 *
 * Each input is read once, in normal or strict mode (chosen by the input length), with a
 * small sequence depth limit and an arena budget like the library's default; the reader
 * must return a code without crashing, leaking or touching memory it does not own.
 */
#include "dicom/dataset.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s2f_arena *arena = s2f_arena_new(64 * size + ((size_t)1 << 20));
    if (!arena)
        return 0;
    s2f_warnings warnings = {arena, NULL, 0, 0, 0};
    s2f_error err = {S2F_OK, ""};
    s2f_read_ctx ctx = {.arena = arena, .warnings = &warnings, .max_depth = 16,
                        .strict = (int)(size & 1)};
    s2f_ds *ds = NULL;
    s2f_code rc = s2f_dicomjson_read(data, size, &ctx, &ds, &err);
    if (rc == S2F_OK && ds)
        (void)s2f_ds_find(ds, S2F_TAG(0x0008, 0x0018));
    (void)s2f_dicomjson_looks_like(data, size);
    s2f_arena_free(arena);
    return 0;
}
