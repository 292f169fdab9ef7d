/*
 * sha1.c - SHA-1 as FIPS 180-4 section 6.1 specifies it (see sha1.h).
 */
#include "sha1.h"

#include <string.h>

static uint32_t rol(uint32_t x, unsigned n) { return (x << n) | (x >> (32 - n)); }

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The round functions and constants of FIPS 180-4 4.1.1 and 4.2.1. */
#define CH(b, c, d) (((c ^ d) & b) ^ d)
#define PARITY(b, c, d) (b ^ c ^ d)
#define MAJ(b, c, d) ((b & c) | ((b | c) & d))
#define K1 0x5A827999u
#define K2 0x6ED9EBA1u
#define K3 0x8F1BBCDCu
#define K4 0xCA62C1D6u

/* Word t of the message schedule; w holds the last 16 words (a ring), word t >= 16 is
 * computed in place from the four it depends on. */
#define WORD(t) ((t) < 16 ? w[t] : (w[(t) & 15] = rol(w[((t) + 13) & 15] ^ w[((t) + 8) & 15] ^ \
                                                        w[((t) + 2) & 15] ^ w[(t) & 15], 1)))

/* Round t: rather than moving a..e along, the caller rotates their names, which leaves
 * e holding the new a and b holding rol(b, 30). */
#define ROUND(a, b, c, d, e, f, k, t)                  \
    do {                                               \
        e += rol(a, 5) + f(b, c, d) + (k) + WORD(t);   \
        b = rol(b, 30);                                \
    } while (0)

/* Five rounds, after which the names are back in place. */
#define FIVE_ROUNDS(f, k, t)                      \
    do {                                          \
        ROUND(a, b, c, d, e, f, k, (t));          \
        ROUND(e, a, b, c, d, f, k, (t) + 1);      \
        ROUND(d, e, a, b, c, f, k, (t) + 2);      \
        ROUND(c, d, e, a, b, f, k, (t) + 3);      \
        ROUND(b, c, d, e, a, f, k, (t) + 4);      \
    } while (0)

/* One 512-bit block (FIPS 180-4 6.1.2). */
static void compress(uint32_t h[5], const unsigned char *block)
{
    uint32_t w[16];
    for (int t = 0; t < 16; t++)
        w[t] = be32(block + 4 * t);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    /* unrolled, the word indexes become constants */
#pragma GCC unroll 4
    for (int t = 0; t < 20; t += 5)
        FIVE_ROUNDS(CH, K1, t);
#pragma GCC unroll 4
    for (int t = 20; t < 40; t += 5)
        FIVE_ROUNDS(PARITY, K2, t);
#pragma GCC unroll 4
    for (int t = 40; t < 60; t += 5)
        FIVE_ROUNDS(MAJ, K3, t);
#pragma GCC unroll 4
    for (int t = 60; t < 80; t += 5)
        FIVE_ROUNDS(PARITY, K4, t);
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void s2f_sha1_init(s2f_sha1 *s)
{
    static const uint32_t iv[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    memcpy(s->h, iv, sizeof iv);
    s->length = 0;
    s->used = 0;
}

void s2f_sha1_update(s2f_sha1 *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    s->length += n;
    while (n) {
        size_t take = sizeof s->block - s->used;
        if (take > n)
            take = n;
        memcpy(s->block + s->used, p, take);
        s->used += take;
        p += take;
        n -= take;
        if (s->used == sizeof s->block) {
            compress(s->h, s->block);
            s->used = 0;
        }
    }
}

void s2f_sha1_final(s2f_sha1 *s, unsigned char digest[20])
{
    uint64_t bits = s->length * 8;
    unsigned char pad[72] = {0x80};
    size_t padlen = (s->used < 56 ? 56 : 120) - s->used;
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(bits >> (56 - 8 * i));
    s2f_sha1_update(s, pad, padlen);
    s2f_sha1_update(s, len, sizeof len);
    for (int i = 0; i < 5; i++) {
        digest[4 * i] = (unsigned char)(s->h[i] >> 24);
        digest[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        digest[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        digest[4 * i + 3] = (unsigned char)s->h[i];
    }
}
