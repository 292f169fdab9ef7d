/*
 * sha1.h - SHA-1 (FIPS 180-4), streamed, for the name-based UUIDs of M24 (RFC 9562 v5).
 * Not for security: v5 UUIDs only need SHA-1's fixed, well-known output. Written here
 * rather than linked from a crypto library whose start-up cost every run would pay.
 *
 * On x86-64 processors with the SHA extensions (glibc tells which, with no CPUID of our
 * own) the blocks are compressed by those instructions, about five times fewer
 * instructions than the portable code; both give the same digest.
 */
#ifndef S2F_SHA1_H
#define S2F_SHA1_H

#include <stddef.h>
#include <stdint.h>

typedef struct s2f_sha1 {
    uint32_t h[5];
    uint64_t length;        /* bytes hashed so far */
    unsigned char block[64];
    size_t used;            /* bytes waiting in block */
    int sha_ni;             /* compress with the x86 SHA extensions (set by init) */
} s2f_sha1;

void s2f_sha1_init(s2f_sha1 *s);
void s2f_sha1_update(s2f_sha1 *s, const void *data, size_t n);
void s2f_sha1_final(s2f_sha1 *s, unsigned char digest[20]);

#endif
