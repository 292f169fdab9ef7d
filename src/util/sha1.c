/*
 * sha1.c - SHA-1 as FIPS 180-4 section 6.1 specifies it (see sha1.h): the portable
 * compression function, and the same with the x86 SHA extensions where present.
 */
#include "util/sha1.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_include)
#if __has_include(<sys/platform/x86.h>)
#define S2F_SHA_NI 1
#include <immintrin.h>
#include <sys/platform/x86.h>
#endif
#endif

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

#ifdef S2F_SHA_NI
/* Four rounds (4i .. 4i+3, i >= 3) with the SHA extensions: the state's E for them is
 * derived from the previous ABCD (ex, saved in ey before), while the schedule makes words
 * 4(i+1).. final (m1), and advances those of i+2 (m2) and i+3 (m3), all from words 4i.. (m0). */
#define QUAD(ex, ey, m0, m1, m2, m3, fn)              \
    do {                                              \
        ex = _mm_sha1nexte_epu32(ex, m0);             \
        ey = abcd;                                    \
        m1 = _mm_sha1msg2_epu32(m1, m0);              \
        abcd = _mm_sha1rnds4_epu32(abcd, ex, fn);     \
        m3 = _mm_sha1msg1_epu32(m3, m0);              \
        m2 = _mm_xor_si128(m2, m0);                   \
    } while (0)

/* One 512-bit block: ABCD in one register (A in the top lane), E in the top lane of
 * another; the block's bytes reversed put W0 big-endian in the top lane too. */
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_ni(uint32_t h[5],
                                                                   const unsigned char *block)
{
    const __m128i reverse = _mm_set_epi64x(0x0001020304050607ll, 0x08090a0b0c0d0e0fll);
    __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0x1B);
    __m128i e0 = _mm_set_epi32((int)h[4], 0, 0, 0), e1;
    const __m128i abcd_in = abcd, e_in = e0;
    __m128i m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)block), reverse);
    __m128i m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16)), reverse);
    __m128i m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 32)), reverse);
    __m128i m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 48)), reverse);

    e0 = _mm_add_epi32(e0, m0); /* rounds 0-3 */
    e1 = abcd;
    abcd = _mm_sha1rnds4_epu32(abcd, e0, 0);
    e1 = _mm_sha1nexte_epu32(e1, m1); /* rounds 4-7 */
    e0 = abcd;
    abcd = _mm_sha1rnds4_epu32(abcd, e1, 0);
    m0 = _mm_sha1msg1_epu32(m0, m1);
    e0 = _mm_sha1nexte_epu32(e0, m2); /* rounds 8-11 */
    e1 = abcd;
    abcd = _mm_sha1rnds4_epu32(abcd, e0, 0);
    m1 = _mm_sha1msg1_epu32(m1, m2);
    m0 = _mm_xor_si128(m0, m2);
    QUAD(e1, e0, m3, m0, m1, m2, 0); /* rounds 12-15 */
    QUAD(e0, e1, m0, m1, m2, m3, 0);
    QUAD(e1, e0, m1, m2, m3, m0, 1); /* rounds 20-23 */
    QUAD(e0, e1, m2, m3, m0, m1, 1);
    QUAD(e1, e0, m3, m0, m1, m2, 1);
    QUAD(e0, e1, m0, m1, m2, m3, 1);
    QUAD(e1, e0, m1, m2, m3, m0, 1);
    QUAD(e0, e1, m2, m3, m0, m1, 2); /* rounds 40-43 */
    QUAD(e1, e0, m3, m0, m1, m2, 2);
    QUAD(e0, e1, m0, m1, m2, m3, 2);
    QUAD(e1, e0, m1, m2, m3, m0, 2);
    QUAD(e0, e1, m2, m3, m0, m1, 2);
    QUAD(e1, e0, m3, m0, m1, m2, 3); /* rounds 60-63 */
    QUAD(e0, e1, m0, m1, m2, m3, 3);
    e1 = _mm_sha1nexte_epu32(e1, m1); /* rounds 68-71: the schedule's last words */
    e0 = abcd;
    m2 = _mm_sha1msg2_epu32(m2, m1);
    abcd = _mm_sha1rnds4_epu32(abcd, e1, 3);
    m3 = _mm_xor_si128(m3, m1);
    e0 = _mm_sha1nexte_epu32(e0, m2); /* rounds 72-75 */
    e1 = abcd;
    m3 = _mm_sha1msg2_epu32(m3, m2);
    abcd = _mm_sha1rnds4_epu32(abcd, e0, 3);
    e1 = _mm_sha1nexte_epu32(e1, m3); /* rounds 76-79 */
    e0 = abcd;
    abcd = _mm_sha1rnds4_epu32(abcd, e1, 3);

    e0 = _mm_sha1nexte_epu32(e0, e_in);
    abcd = _mm_add_epi32(abcd, abcd_in);
    _mm_storeu_si128((__m128i *)h, _mm_shuffle_epi32(abcd, 0x1B));
    h[4] = (uint32_t)_mm_extract_epi32(e0, 3);
}

static int have_sha_ni(void)
{
    return CPU_FEATURE_ACTIVE(SHA) && CPU_FEATURE_ACTIVE(SSE4_1) && CPU_FEATURE_ACTIVE(SSSE3);
}
#endif

static void compress_block(s2f_sha1 *s)
{
#ifdef S2F_SHA_NI
    if (s->sha_ni) {
        compress_ni(s->h, s->block);
        return;
    }
#endif
    compress(s->h, s->block);
}

void s2f_sha1_init(s2f_sha1 *s)
{
    static const uint32_t iv[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    memcpy(s->h, iv, sizeof iv);
    s->length = 0;
    s->used = 0;
#ifdef S2F_SHA_NI
    s->sha_ni = have_sha_ni();
#else
    s->sha_ni = 0;
#endif
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
            compress_block(s);
            s->used = 0;
        }
    }
}

/* The padding (FIPS 180-4 5.1.1) written into the block: 0x80, zeros, and the message
 * length in bits, big-endian, in the last 8 bytes of the last block. */
void s2f_sha1_final(s2f_sha1 *s, unsigned char digest[20])
{
    uint64_t bits = s->length * 8;
    s->block[s->used++] = 0x80;
    if (s->used > 56) {
        memset(s->block + s->used, 0, sizeof s->block - s->used);
        compress_block(s);
        s->used = 0;
    }
    memset(s->block + s->used, 0, 56 - s->used);
    for (int i = 0; i < 8; i++)
        s->block[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    compress_block(s);
    s->used = 0;
    for (int i = 0; i < 5; i++) {
        digest[4 * i] = (unsigned char)(s->h[i] >> 24);
        digest[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        digest[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        digest[4 * i + 3] = (unsigned char)s->h[i];
    }
}
