/*
 * hash.h - a fast non-cryptographic hash of byte strings for the memo tables of the
 * reader and the FHIR stage (never for identities: those are SHA-1, uuid.h).
 *
 * Eight bytes at a time, each word mixed by a multiply and a rotation; good enough to
 * spread short keys (codes, positions, canonical keys) over a power-of-two table.
 */
#ifndef S2F_HASH_H
#define S2F_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define S2F_HASH_SEED 0x9E3779B97F4A7C15ull

static inline uint64_t s2f_hash_word(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
}

/* Continues h over the n bytes at p (the length is mixed in too). */
static inline uint64_t s2f_hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    h = s2f_hash_word(h, n);
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = s2f_hash_word(h, w);
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, b, n);
        h = s2f_hash_word(h, w);
    }
    return h;
}

#endif
