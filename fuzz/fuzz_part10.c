/*
 * fuzz_part10.c - libFuzzer target for the binary DICOM reader (part10.c, M1).
 *
 * Each input is read as a Part 10 file or bare data set with a memory budget, a small
 * nesting limit and an inflation cap, so that the fuzzer looks for crashes, overreads and
 * unbounded growth rather than running out of memory. Built by `make fuzz` (clang).
 */
#include <stddef.h>
#include <stdint.h>

#include "dicom/dataset.h"
#include "util/arena.h"
#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s2f_arena *arena = s2f_arena_new(64 * size + ((size_t)16 << 20));
    if (!arena)
        return 0;
    s2f_warnings warnings = {0};
    warnings.arena = arena;
    s2f_read_ctx ctx = {0};
    ctx.arena = arena;
    ctx.warnings = &warnings;
    ctx.max_depth = 64;
    ctx.max_inflated = (size_t)8 << 20;
    s2f_ds *ds = NULL;
    s2f_error err;
    s2f_code rc = s2f_part10_read(data, size, &ctx, &ds, &err);
    if (rc == S2F_OK && ds) {
        /* touch the result so that bad pointers show up */
        volatile uint32_t sum = 0;
        for (uint32_t i = 0; i < ds->n; i++)
            sum += ds->elems[i].len ? ds->elems[i].val[0] : 0;
        (void)sum;
    }
    s2f_arena_free(arena);
    return 0;
}
