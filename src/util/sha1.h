/*
 * sha1.h - SHA-1 (FIPS 180-4), streamed, for the name-based UUIDs of M24 (RFC 9562 v5).
 * Not for security: v5 UUIDs only need SHA-1's fixed, well-known output. Written here
 * rather than linked from a crypto library whose start-up cost every run would pay.
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
} s2f_sha1;

void s2f_sha1_init(s2f_sha1 *s);
void s2f_sha1_update(s2f_sha1 *s, const void *data, size_t n);
void s2f_sha1_final(s2f_sha1 *s, unsigned char digest[20]);

#endif
