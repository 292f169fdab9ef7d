/*
 * arena.h - per-conversion bump allocator.
 *
 * Every object made while reading and converting one SR lives in one arena and is
 * freed with it in one call: no individual frees, no leaks on error paths. The arena
 * enforces a byte budget so that no input can make a conversion allocate without bound
 * (callers treat a NULL return as S2F_ELIMIT / "memory limit exceeded").
 *
 * Ownership: the arena owns every block it hands out. Not thread-safe: one arena per
 * conversion, one conversion per thread.
 */
#ifndef S2F_ARENA_H
#define S2F_ARENA_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct s2f_arena s2f_arena;

/* limit: maximum bytes the arena may obtain from malloc (0 = no limit). */
s2f_arena *s2f_arena_new(size_t limit);
void s2f_arena_free(s2f_arena *a);

/* Sizes the next chunk for about `bytes` of allocations to come (capped at half the
 * limit), so that a large document gets one large chunk instead of many doublings. */
void s2f_arena_expect(s2f_arena *a, size_t bytes);

/* The free space of the current chunk: the first member of struct s2f_arena, so that the
 * inline fast path below reaches it without knowing the rest. `end` is rounded down to 8
 * bytes and `next` is always 8-aligned, so a request that fits fits once aligned too. */
typedef struct s2f_arena_cursor {
    char *next;
    char *end;
} s2f_arena_cursor;

/* The out-of-line path: a new chunk, the budget, odd sizes (n == 0, overflow). */
void *s2f_arena_alloc_slow(s2f_arena *a, size_t n);

/* Aligned to 8 bytes (pointers, 64-bit integers, doubles; not long double). Returns NULL
 * when the budget or malloc is exhausted. Inline: the readers call it per data set. */
static inline void *s2f_arena_alloc(s2f_arena *a, size_t n)
{
    s2f_arena_cursor *c = (s2f_arena_cursor *)(void *)a;
    if (n - 1 < (size_t)(c->end - c->next)) { /* 1 <= n <= room */
        void *p = c->next;
        c->next += (n + 7) & ~(size_t)7;
        return p;
    }
    return s2f_arena_alloc_slow(a, n);
}
/* Zeroed; inline so that a constant size (one struct) is cleared without a call. */
static inline void *s2f_arena_calloc(s2f_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = s2f_arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}
/* Grows the most recent or any block by copying; old contents are kept. */
void *s2f_arena_realloc(s2f_arena *a, void *old, size_t old_n, size_t new_n);
char *s2f_arena_strndup(s2f_arena *a, const char *s, size_t n);
char *s2f_arena_strdup(s2f_arena *a, const char *s);
/* a then b, as one new string. */
char *s2f_arena_concat(s2f_arena *a, const char *x, const char *y);
char *s2f_arena_printf(s2f_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Stack-like reuse: s2f_arena_release frees everything allocated after the mark was
 * taken (blocks and chunks alike), so a loop can use the arena as scratch space that
 * stays the size of one iteration (one freed chunk is kept for the next iteration, so a
 * loop does not churn malloc). Marks must be released in reverse order of taking.
 */
typedef struct s2f_arena_mark {
    size_t n_chunks;  /* chunks that existed */
    size_t used;      /* bytes used in the head chunk */
    size_t next_size; /* size of the next chunk */
} s2f_arena_mark;
s2f_arena_mark s2f_arena_get_mark(const s2f_arena *a);
void s2f_arena_release(s2f_arena *a, s2f_arena_mark m);

/* Bytes obtained from malloc and mmap and not yet given back (tests, benchmarks). */
size_t s2f_arena_used(const s2f_arena *a);
/* Bytes handed out by the allocation calls and still held (for tests and benchmarks). */
size_t s2f_arena_in_use(const s2f_arena *a);
/* True once an allocation has failed because of the budget. */
int s2f_arena_over_limit(const s2f_arena *a);

#endif
