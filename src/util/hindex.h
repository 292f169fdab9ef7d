/*
 * hindex.h - an open-addressing hash index over entries its user keeps in the arena:
 * linear probing over a power-of-two table of (hash, entry) slots, grown at half full.
 * The memo tables of the reader (codes by their bytes, sr/item.c) and of the FHIR stage
 * (CodeableConcepts, units, shared resources written, fhir/) are each one of these.
 *
 * A lookup looks at no more than S2F_HINDEX_PROBES slots. Keys come from the input, and an
 * input can be made of many keys that share a hash (the hashes are not secret): without
 * the bound every lookup would compare them all, quadratic time; with it, such a key is
 * refused (NULL, and `crowded` set) and its user does without the index for it.
 *
 * Ownership: the slots live in the arena given to s2f_hindex_find; the entries are the
 * caller's. Zero-initialised means empty. Not thread-safe: one per conversion.
 */
#ifndef S2F_HINDEX_H
#define S2F_HINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

typedef struct s2f_hslot {
    uint64_t hash;
    void *entry;          /* NULL: a free slot */
} s2f_hslot;

typedef struct s2f_hindex {
    s2f_hslot *slots;
    size_t cap, n;
    int crowded;          /* 1 once a lookup was refused for want of a slot near its hash */
} s2f_hindex;

/* Far beyond what honest keys need at half load (a few), cheap enough to pay per key. */
#define S2F_HINDEX_PROBES 128

/* The slot of the entry with hash h that same(entry, key) accepts; when there is none,
 * the free slot where it belongs (entry NULL: fill it with s2f_hindex_put). NULL when the
 * index had to grow and the arena refused, or when the S2F_HINDEX_PROBES slots from h's
 * place hold other entries (x->crowded is then 1). */
s2f_hslot *s2f_hindex_find(s2f_hindex *x, s2f_arena *a, uint64_t h,
                           int (*same)(const void *entry, const void *key), const void *key);

/* Files entry under h in the free slot s2f_hindex_find returned. */
static inline void s2f_hindex_put(s2f_hindex *x, s2f_hslot *slot, uint64_t h, void *entry)
{
    slot->hash = h;
    slot->entry = entry;
    x->n++;
}

#endif
