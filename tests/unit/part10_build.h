/*
 * part10_build.h - byte builders for unit tests that need small DICOM objects: a growing
 * buffer, little-endian writers, Explicit VR LE UI elements and a minimal Part 10 file
 * (meta group, SOP Class, SOP Instance and Study Instance UIDs). Header-only, static.
 */
#ifndef S2F_TEST_PART10_BUILD_H
#define S2F_TEST_PART10_BUILD_H

#include <stdlib.h>
#include <string.h>

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static inline void put(buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static inline void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static inline void put16(buf *b, unsigned v)
{
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    put(b, x, 2);
}

static inline void put32(buf *b, unsigned long v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(b, x, 4);
}

/* An Explicit VR LE UI element, padded to even length with NUL. */
static inline void put_ui(buf *b, unsigned g, unsigned e, const char *uid)
{
    size_t n = strlen(uid), padded = n + (n & 1);
    put16(b, g);
    put16(b, e);
    put(b, "UI", 2);
    put16(b, (unsigned)padded);
    put(b, uid, n);
    if (n & 1)
        put(b, "", 1);
}

/* A minimal Part 10 file: meta group, SOP Class, SOP Instance, Study Instance UIDs. */
static inline buf part10(const char *sop_class, const char *sop_instance, const char *study)
{
    buf meta = {0}, b = {0};
    put16(&meta, 0x0002);
    put16(&meta, 0x0001);
    put(&meta, "OB\0\0", 4);
    put32(&meta, 2);
    put(&meta, "\0\1", 2);
    put_ui(&meta, 0x0002, 0x0002, sop_class);
    put_ui(&meta, 0x0002, 0x0003, sop_instance);
    put_ui(&meta, 0x0002, 0x0010, "1.2.840.10008.1.2.1");
    char pre[128] = {0};
    put(&b, pre, sizeof pre);
    put(&b, "DICM", 4);
    put16(&b, 0x0002);
    put16(&b, 0x0000);
    put(&b, "UL", 2);
    put16(&b, 4);
    put32(&b, (unsigned long)meta.n);
    put(&b, meta.p, meta.n);
    free(meta.p);
    put_ui(&b, 0x0008, 0x0016, sop_class);
    put_ui(&b, 0x0008, 0x0018, sop_instance);
    put_ui(&b, 0x0020, 0x000D, study);
    return b;
}

#endif
