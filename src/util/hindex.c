/*
 * hindex.c - the open-addressing hash index (see hindex.h).
 */
#include "util/hindex.h"

/* The first table is small: most indexes of a short report hold a few entries, and a
 * bigger one would be a fresh page of zeros each. */
#define FIRST_CAP 16

static int grow(s2f_hindex *x, s2f_arena *a)
{
    size_t cap = x->cap ? x->cap * 2 : FIRST_CAP;
    s2f_hslot *slots = s2f_arena_calloc(a, cap, sizeof *slots);
    if (!slots)
        return 0;
    for (size_t i = 0; i < x->cap; i++) {
        if (!x->slots[i].entry)
            continue;
        size_t k = x->slots[i].hash & (cap - 1);
        while (slots[k].entry)
            k = (k + 1) & (cap - 1);
        slots[k] = x->slots[i];
    }
    x->slots = slots;
    x->cap = cap;
    return 1;
}

s2f_hslot *s2f_hindex_find(s2f_hindex *x, s2f_arena *a, uint64_t h,
                           int (*same)(const void *entry, const void *key), const void *key)
{
    if (x->n * 2 >= x->cap && !grow(x, a))
        return NULL;
    x->work.lookups++;
    size_t k = h & (x->cap - 1);
    for (unsigned collisions = 0; x->slots[k].entry; k = (k + 1) & (x->cap - 1)) {
        x->work.probes++;
        if (x->slots[k].hash != h)
            continue;
        x->work.compares++;
        if (same(x->slots[k].entry, key))
            break;
        if (++collisions > S2F_HINDEX_COLLISIONS) {
            x->crowded = 1;
            return NULL;
        }
    }
    return &x->slots[k];
}
