/*
 * test_sha1.c - SHA-1 (src/util/sha1.c) against the FIPS 180 / RFC 3174 test vectors,
 * in one piece and streamed in uneven chunks; the portable compression and the one with
 * the x86 SHA extensions (used where the CPU has them) give the same digests.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "util/sha1.h"

static void hex(const unsigned char d[20], char out[41])
{
    for (int i = 0; i < 20; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static int force_portable; /* 1: compress without the SHA extensions even where present */

static const char *digest_of(const char *msg, size_t n, size_t chunk)
{
    static char out[41];
    unsigned char d[20];
    s2f_sha1 s;
    s2f_sha1_init(&s);
    if (force_portable)
        s.sha_ni = 0;
    for (size_t i = 0; i < n; i += chunk)
        s2f_sha1_update(&s, msg + i, n - i < chunk ? n - i : chunk);
    s2f_sha1_final(&s, d);
    hex(d, out);
    return out;
}

TEST(fips_vectors)
{
    CHECK_STR(digest_of("abc", 3, 3), "a9993e364706816aba3e25717850c26c9cd0d89d");
    CHECK_STR(digest_of("", 0, 1), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK_STR(digest_of(m, strlen(m), strlen(m)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    CHECK_STR(digest_of(m, strlen(m), 7), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

TEST(million_a_streamed)
{
    static char a[1000000];
    memset(a, 'a', sizeof a);
    CHECK_STR(digest_of(a, sizeof a, 4099), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST(block_boundaries)
{
    /* 55, 56, 63, 64, 65 bytes: padding in the same block or the next */
    static const char *want[] = {
        "c1c8bbdc22796e28c0e15163d20899b65621d65a", "c2db330f6083854c99d4b5bfb6e8f29f201be699",
        "03f09f5b158a7a8cdad920bddc29b81c18a551f5", "0098ba824b5c16427bd7a1122a5a442a25ec644d",
        "11655326c708d70319be2610e8a57d9a5b959d3b",
    };
    static const size_t len[] = {55, 56, 63, 64, 65};
    static char a[65];
    memset(a, 'a', sizeof a);
    for (int i = 0; i < 5; i++)
        CHECK_STR(digest_of(a, len[i], 10), want[i]);
}

TEST(portable_and_extension_paths_agree)
{
    static char buf[3000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)(i * 131 + 7);
    for (size_t n = 0; n <= sizeof buf; n += 97) {
        char native[41];
        force_portable = 0;
        strcpy(native, digest_of(buf, n, 61));
        force_portable = 1;
        CHECK_STR(digest_of(buf, n, 61), native);
    }
    force_portable = 1; /* the vectors once more, on the portable path */
    CHECK_STR(digest_of("abc", 3, 3), "a9993e364706816aba3e25717850c26c9cd0d89d");
    force_portable = 0;
}

int main(void)
{
    RUN(fips_vectors);
    RUN(million_a_streamed);
    RUN(block_boundaries);
    RUN(portable_and_extension_paths_agree);
    CHECK_DONE();
}
