/*
 * hindex.h - an open-addressing hash index over entries its user keeps in the arena:
 * linear probing over a power-of-two table of (hash, entry) slots, grown at half full.
 * The memo tables of the reader (codes by their bytes, sr/item.c) and of the FHIR stage
 * (CodeableConcepts, units, shared resources written, fhir/) are each one of these.
 *
 * Keys come from the input, so their hashes must not be predictable from it: each index
 * has its own random key (s2f_hindex_key), which its user hashes with (util/hash.h,
 * SipHash-1-3). Runs of occupied slots then stay short for any input, and a lookup needs
 * no bound on how many slots it looks at (a bound on that refused honest large reports,
 * issue 9 defect 1). What stays bounded is true collisions: entries with the lookup's
 * full 64-bit hash that its user's equality rejects. More than S2F_HINDEX_COLLISIONS of
 * them means the user's hash reads too little of its keys; the key is refused (NULL,
 * `crowded` set) and the user does without the index for it.
 *
 * `work` counts what lookups cost (slots looked at, equality calls): a statistic the
 * tests read to show that lookups stay cheap (issue 9 defect 11), never a timing.
 *
 * Ownership: the slots live in the arena given to s2f_hindex_find; the entries are the
 * caller's. Zero-initialised means empty (and not yet keyed). Not thread-safe: one per
 * conversion.
 */
#ifndef S2F_HINDEX_H
#define S2F_HINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/hash.h"

typedef struct s2f_hslot {
    uint64_t hash;
    void *entry;          /* NULL: a free slot */
} s2f_hslot;

typedef struct s2f_hindex_work {
    size_t lookups;       /* s2f_hindex_find calls that reached the table */
    size_t probes;        /* occupied slots they looked at */
    size_t compares;      /* calls of the user's equality (equal full hashes only) */
} s2f_hindex_work;

typedef struct s2f_hindex {
    s2f_hslot *slots;
    size_t cap, n;
    s2f_hash_key key;     /* the hash key of this index, drawn by s2f_hindex_key */
    int keyed;
    int crowded;          /* 1 once a lookup was refused for too many true collisions */
    s2f_hindex_work work;
} s2f_hindex;

/* Honest keys of a hash that reads all their bytes never share a 64-bit keyed hash. */
#define S2F_HINDEX_COLLISIONS 8

/* The key to hash this index's keys with; drawn at random on the first call. */
static inline const s2f_hash_key *s2f_hindex_key(s2f_hindex *x)
{
    if (!x->keyed) {
        s2f_hash_key_random(&x->key);
        x->keyed = 1;
    }
    return &x->key;
}

/* The slot of the entry with hash h that same(entry, key) accepts; when there is none,
 * the free slot where it belongs (entry NULL: fill it with s2f_hindex_put). NULL when the
 * index had to grow and the arena refused, or when more than S2F_HINDEX_COLLISIONS other
 * entries have hash h (x->crowded is then 1). */
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
