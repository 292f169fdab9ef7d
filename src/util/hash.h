/*
 * hash.h - SipHash-1-3, a keyed hash of byte strings, for the memo tables of the reader
 * and the FHIR stage (never for identities: those are SHA-1, uuid.h).
 *
 * Keys of those tables come from the input. A fixed, public hash lets an input choose
 * keys that share a hash, which made large honest reports look crafted (issue 9 defect
 * 1). With a key drawn at random for each table (s2f_hash_key_random), an input cannot
 * know which keys collide. Written from the SipHash paper (Aumasson and Bernstein, 2012):
 * c = 1 compression round per 8-byte word, d = 3 finalisation rounds, as Rust's and
 * Python's hash tables use. The output only places entries in a table: the bytes
 * sr2fhir writes never depend on it.
 *
 * Streaming form: s2f_sip_init, then words (s2f_sip_word, each 8 message bytes, little-
 * endian) and texts (s2f_sip_text: its length, then its bytes padded to whole words),
 * then s2f_sip_final. Over words only it is SipHash-1-3 of their bytes.
 */
#ifndef S2F_HASH_H
#define S2F_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct s2f_hash_key {
    uint64_t k0, k1;
} s2f_hash_key;

typedef struct s2f_sip {
    uint64_t v0, v1, v2, v3;
    uint64_t len;            /* message bytes so far */
} s2f_sip;

/* A key from getrandom(2); when the kernel has none to give, from addresses (ASLR) and
 * the clock: unpredictable enough for a table of one conversion. */
void s2f_hash_key_random(s2f_hash_key *key);

/* SipHash-c-d of n bytes at p (the paper's function; c = 1, d = 3 is s2f_siphash13). */
uint64_t s2f_siphash(const s2f_hash_key *key, const void *p, size_t n, unsigned c, unsigned d);

static inline uint64_t s2f_rotl64(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static inline void s2f_sip_round(s2f_sip *s)
{
    s->v0 += s->v1;
    s->v1 = s2f_rotl64(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = s2f_rotl64(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = s2f_rotl64(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = s2f_rotl64(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = s2f_rotl64(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = s2f_rotl64(s->v2, 32);
}

static inline void s2f_sip_init(s2f_sip *s, const s2f_hash_key *key)
{
    s->v0 = key->k0 ^ 0x736f6d6570736575ull; /* "somepseudorandomlygeneratedbytes" */
    s->v1 = key->k1 ^ 0x646f72616e646f6dull;
    s->v2 = key->k0 ^ 0x6c7967656e657261ull;
    s->v3 = key->k1 ^ 0x7465646279746573ull;
    s->len = 0;
}

/* Compresses one message word m with c rounds. */
static inline void s2f_sip_compress(s2f_sip *s, uint64_t m, unsigned c)
{
    s->v3 ^= m;
    for (unsigned i = 0; i < c; i++)
        s2f_sip_round(s);
    s->v0 ^= m;
}

/* The last word (the message's length mod 256 in its top byte, over `tail`, its last
 * bytes), then d rounds. */
static inline uint64_t s2f_sip_finish(s2f_sip *s, uint64_t tail, unsigned c, unsigned d)
{
    s2f_sip_compress(s, tail | (s->len & 0xff) << 56, c);
    s->v2 ^= 0xff;
    for (unsigned i = 0; i < d; i++)
        s2f_sip_round(s);
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

static inline void s2f_sip_word(s2f_sip *s, uint64_t m)
{
    s2f_sip_compress(s, m, 1);
    s->len += 8;
}

/* The length n, then the n bytes at p in whole words (the last one padded with zeros):
 * texts of different lengths or bytes make different word sequences. */
static inline void s2f_sip_text(s2f_sip *s, const void *p, size_t n)
{
    const unsigned char *b = p;
    s2f_sip_word(s, n);
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        s2f_sip_word(s, w);
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, b, n);
        s2f_sip_word(s, w);
    }
}

static inline uint64_t s2f_sip_final(s2f_sip *s)
{
    return s2f_sip_finish(s, 0, 1, 3);
}

/* SipHash-1-3 of one text with its length (s2f_sip_text), the common case. */
static inline uint64_t s2f_hash_text(const s2f_hash_key *key, const void *p, size_t n)
{
    s2f_sip s;
    s2f_sip_init(&s, key);
    s2f_sip_text(&s, p, n);
    return s2f_sip_final(&s);
}

#endif
