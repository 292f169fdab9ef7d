/*
 * arena.c - per-conversion bump allocator (see arena.h).
 *
 * Blocks are carved from chunks that double in size up to 2 MiB (or start at the size
 * s2f_arena_expect names); a request larger than a quarter of the chunk size gets a chunk
 * of its own, so big buffers (an inflated data set, a long value) do not waste the tail of
 * a shared chunk. Chunks are numbered so that s2f_arena_release can free exactly those
 * made after a mark.
 */
#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS, MADV_HUGEPAGE */
#include "util/arena.h"

#include <sys/mman.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 8 bytes suit every object the stages store (pointers, 64-bit integers, doubles) and
 * waste less than max_align_t's 16 on the many small strings. */
#define ALIGN ((size_t)8)
#define FIRST_CHUNK ((size_t)8192)
#define MAX_CHUNK ((size_t)2 << 20)

typedef struct chunk {
    struct chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used; /* of the head chunk: as of the last sync (the cursor has the truth) */
    size_t mapped; /* bytes mapped with mmap (huge-page chunks), 0 when from malloc */
    size_t seq;    /* creation number, for s2f_arena_release */
} chunk;

/* Chunks of 2 MiB and more are mapped on 2 MiB boundaries and offered to transparent
 * huge pages: one page fault per 2 MiB instead of 512, which dominates the cost of
 * fresh memory in virtual machines. A chunk of HUGE_FROM bytes or more is rounded up to
 * that: in this VM one huge-page fault (0.15 ms) costs what 55 small ones do, and a
 * 0.2 MB report's first chunk took 140 of them. */
#define HUGE ((size_t)2 << 20)
#define HUGE_FROM (HUGE / 4)

struct s2f_arena {
    s2f_arena_cursor cur; /* first: the head chunk's free space (arena.h's fast path) */
    chunk *head;
    chunk *spare;        /* a chunk s2f_arena_release kept for the next round */
    size_t n_chunks;     /* chunks ever made: the next one gets this number */
    size_t next_size;
    size_t limit;
    size_t total;
    int over_limit;
};

static size_t header_size(void) { return (sizeof(chunk) + ALIGN - 1) & ~(ALIGN - 1); }

static char *base_of(const chunk *c) { return (char *)c + header_size(); }

/* Bytes used in the head chunk, from the cursor. */
static size_t head_used(const s2f_arena *a)
{
    return a->head ? (size_t)(a->cur.next - base_of(a->head)) : 0;
}

/* The cursor's word back into the head chunk, before the head changes or is read. */
static void sync_head(s2f_arena *a)
{
    if (a->head)
        a->head->used = head_used(a);
}

/* The cursor from the (new) head chunk. */
static void load_head(s2f_arena *a)
{
    if (!a->head) { /* no room; not NULL: C leaves NULL - NULL undefined */
        a->cur.next = a->cur.end = (char *)a;
        return;
    }
    a->cur.next = base_of(a->head) + a->head->used;
    a->cur.end = base_of(a->head) + (a->head->size & ~(ALIGN - 1));
}

s2f_arena *s2f_arena_new(size_t limit)
{
    s2f_arena *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->next_size = FIRST_CHUNK;
    a->limit = limit;
    load_head(a);
    return a;
}

static void free_chunk(s2f_arena *a, chunk *c)
{
    a->total -= c->mapped ? c->mapped : header_size() + c->size;
    if (c->mapped)
        munmap(c, c->mapped);
    else
        free(c);
}

void s2f_arena_free(s2f_arena *a)
{
    if (!a)
        return;
    chunk *c = a->head;
    while (c) {
        chunk *next = c->next;
        free_chunk(a, c);
        c = next;
    }
    if (a->spare)
        free_chunk(a, a->spare);
    free(a);
}

s2f_arena_mark s2f_arena_get_mark(const s2f_arena *a)
{
    s2f_arena_mark m = {a->n_chunks, head_used(a), a->next_size};
    return m;
}

/* Keeps the larger of c and the current spare for reuse, frees the other. */
static void keep_spare(s2f_arena *a, chunk *c)
{
    if (c->size > 2 * MAX_CHUNK) { /* big ones go back to the system; a huge page of a
                                      * scratch arena stays, not mapped per content item */
        free_chunk(a, c);
        return;
    }
    if (a->spare && a->spare->size >= c->size) {
        free_chunk(a, c);
        return;
    }
    if (a->spare)
        free_chunk(a, a->spare);
    a->spare = c;
}

void s2f_arena_release(s2f_arena *a, s2f_arena_mark m)
{
    /* Chunks made after the mark may sit in front of the mark's head or right behind it;
     * once they are gone the mark's head is in front again (or the list is empty). */
    for (chunk **link = &a->head; *link;) {
        chunk *c = *link;
        if (c->seq >= m.n_chunks) {
            *link = c->next;
            keep_spare(a, c);
        } else {
            link = &c->next;
        }
    }
    if (a->head)
        a->head->used = m.used;
    load_head(a);
    a->next_size = m.next_size; /* or every round would start with a bigger chunk */
}

/* The spare chunk when it has room for `size` bytes, unlinked; else NULL. */
static chunk *reuse_spare(s2f_arena *a, size_t size)
{
    chunk *c = a->spare;
    if (!c || c->size < size)
        return NULL;
    a->spare = NULL;
    c->used = 0;
    return c;
}

/* A 2 MiB-aligned anonymous mapping of n bytes (a multiple of 2 MiB), or NULL. */
static chunk *map_huge(size_t n)
{
    char *p = mmap(NULL, n + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    size_t lead = (HUGE - ((uintptr_t)p & (HUGE - 1))) & (HUGE - 1);
    if (lead)
        munmap(p, lead);
    munmap(p + lead + n, HUGE - lead);
    madvise(p + lead, n, MADV_HUGEPAGE);
    return (chunk *)(p + lead);
}

static void link_chunk(s2f_arena *a, chunk *c, int front)
{
    if (front || !a->head) {
        c->next = a->head;
        a->head = c;
    } else { /* a dedicated big chunk goes behind the current one */
        c->next = a->head->next;
        a->head->next = c;
    }
}

static int within_limit(const s2f_arena *a, size_t bytes)
{
    return !a->limit || (a->total <= a->limit && bytes <= a->limit - a->total);
}

static chunk *add_chunk(s2f_arena *a, size_t need, int front)
{
    size_t size = need > a->next_size ? need : a->next_size;
    if (size > SIZE_MAX / 2)
        return NULL;
    chunk *c = reuse_spare(a, size);
    if (c) {
        c->seq = a->n_chunks++;
        link_chunk(a, c, front);
        return c;
    }
    size_t bytes = header_size() + size;
    size_t rounded = (bytes + HUGE - 1) & ~(HUGE - 1);
    int huge = bytes >= HUGE_FROM && within_limit(a, rounded); /* else exact, from malloc */
    if (huge)
        bytes = rounded;
    if (!within_limit(a, bytes)) {
        a->over_limit = 1;
        return NULL;
    }
    c = huge ? map_huge(bytes) : malloc(bytes);
    if (!c)
        return NULL;
    c->mapped = huge ? bytes : 0;
    c->seq = a->n_chunks++;
    c->size = bytes - header_size();
    c->used = 0;
    a->total += bytes;
    link_chunk(a, c, front);
    if (size >= a->next_size && a->next_size < MAX_CHUNK)
        a->next_size = a->next_size * 2 < MAX_CHUNK ? a->next_size * 2 : MAX_CHUNK;
    return c;
}

void s2f_arena_expect(s2f_arena *a, size_t bytes)
{
    if (a->limit && bytes > a->limit / 2)
        bytes = a->limit / 2;
    if (bytes > a->next_size)
        a->next_size = bytes;
}

void *s2f_arena_alloc_slow(s2f_arena *a, size_t n)
{
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - ALIGN)
        return NULL;
    n = (n + ALIGN - 1) & ~(ALIGN - 1);
    if (n <= (size_t)(a->cur.end - a->cur.next)) { /* n was 0 */
        void *p = a->cur.next;
        a->cur.next += n;
        return p;
    }
    int big = n > a->next_size / 4;
    sync_head(a);
    chunk *c = add_chunk(a, n, !big);
    if (!c)
        return NULL;
    void *p = base_of(c) + c->used;
    c->used += n;
    load_head(a); /* c when it went in front, else the same head as before */
    return p;
}

void *s2f_arena_realloc(s2f_arena *a, void *old, size_t old_n, size_t new_n)
{
    if (new_n <= old_n && old)
        return old;
    /* Extend in place when old is the last block of the head chunk. */
    if (old && a->head) {
        size_t old_al = (old_n + ALIGN - 1) & ~(ALIGN - 1);
        if ((char *)old + old_al == a->cur.next && (char *)old >= base_of(a->head) &&
            new_n <= (size_t)(a->cur.end - (char *)old)) {
            a->cur.next = (char *)old + ((new_n + ALIGN - 1) & ~(ALIGN - 1));
            return old;
        }
    }
    void *p = s2f_arena_alloc(a, new_n);
    if (p && old && old_n)
        memcpy(p, old, old_n);
    return p;
}

char *s2f_arena_strndup(s2f_arena *a, const char *s, size_t n)
{
    char *p = s2f_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *s2f_arena_strdup(s2f_arena *a, const char *s) { return s2f_arena_strndup(a, s, strlen(s)); }

char *s2f_arena_concat(s2f_arena *a, const char *x, const char *y)
{
    size_t nx = strlen(x), ny = strlen(y);
    char *p = s2f_arena_alloc(a, nx + ny + 1);
    if (!p)
        return NULL;
    memcpy(p, x, nx);
    memcpy(p + nx, y, ny + 1);
    return p;
}

char *s2f_arena_printf(s2f_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = s2f_arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

size_t s2f_arena_used(const s2f_arena *a) { return a->total; }

size_t s2f_arena_in_use(const s2f_arena *a)
{
    size_t n = head_used(a);
    for (const chunk *c = a->head ? a->head->next : NULL; c; c = c->next)
        n += c->used;
    return n;
}
int s2f_arena_over_limit(const s2f_arena *a) { return a->over_limit; }
