/*
 * hash.c - the random keys of the memo tables and the byte-string form of SipHash
 * (see hash.h).
 */
#include "util/hash.h"

#include <errno.h>
#include <sys/random.h>
#include <time.h>

void s2f_hash_key_random(s2f_hash_key *key)
{
    uint64_t k[2] = {0, 0};
    unsigned char *p = (unsigned char *)k;
    size_t got = 0;
    while (got < sizeof k) {
        ssize_t n = getrandom(p + got, sizeof k - got, GRND_NONBLOCK);
        if (n > 0)
            got += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            break;
    }
    if (got < sizeof k) { /* no entropy yet (early boot) or no getrandom: mix what varies */
        struct timespec t = {0, 0};
        clock_gettime(CLOCK_MONOTONIC, &t);
        s2f_hash_key mix = {(uint64_t)(uintptr_t)key, (uint64_t)(uintptr_t)&t};
        uint64_t clock_bits[2] = {(uint64_t)t.tv_sec, (uint64_t)t.tv_nsec};
        k[0] ^= s2f_siphash(&mix, clock_bits, sizeof clock_bits, 2, 4);
        k[1] ^= s2f_siphash(&mix, k, sizeof k, 2, 4);
    }
    key->k0 = k[0];
    key->k1 = k[1];
}

uint64_t s2f_siphash(const s2f_hash_key *key, const void *p, size_t n, unsigned c, unsigned d)
{
    const unsigned char *b = p;
    s2f_sip s;
    s2f_sip_init(&s, key);
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        s2f_sip_compress(&s, w, c);
        s.len += 8;
    }
    uint64_t tail = 0;
    for (size_t i = 0; i < n; i++)
        tail |= (uint64_t)b[i] << (8 * i);
    s.len += n;
    return s2f_sip_finish(&s, tail, c, d);
}
