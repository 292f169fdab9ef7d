/*
 * test_arena.c - unit tests of the per-conversion arena (src/util/arena.c) and of the
 * warning list (src/util/error.c).
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "util/arena.h"
#include "util/error.h"

TEST(alloc_is_aligned_and_distinct)
{
    s2f_arena *a = s2f_arena_new(0);
    char *p = s2f_arena_alloc(a, 3), *q = s2f_arena_alloc(a, 5);
    CHECK(p && q && p != q);
    CHECK(((uintptr_t)q % 8) == 0);
    memset(p, 1, 3);
    memset(q, 2, 5);
    CHECK(p[2] == 1 && q[0] == 2);
    s2f_arena_free(a);
}

TEST(big_blocks_get_their_own_chunk)
{
    s2f_arena *a = s2f_arena_new(0);
    char *small = s2f_arena_alloc(a, 16);
    char *big = s2f_arena_alloc(a, 1 << 20);
    char *small2 = s2f_arena_alloc(a, 16);
    CHECK(small && big && small2);
    memset(big, 7, 1 << 20);
    CHECK(small2 == small + 16 || small2 > small); /* the small chunk is still in use */
    s2f_arena_free(a);
}

TEST(budget_is_enforced)
{
    s2f_arena *a = s2f_arena_new(100000);
    CHECK(s2f_arena_alloc(a, 50000) != NULL);
    CHECK(s2f_arena_alloc(a, 60000) == NULL);
    CHECK(s2f_arena_over_limit(a));
    CHECK(s2f_arena_used(a) <= 100000);
    s2f_arena_free(a);
}

TEST(huge_requests_fail_cleanly)
{
    s2f_arena *a = s2f_arena_new(0);
    CHECK(s2f_arena_alloc(a, SIZE_MAX) == NULL);
    CHECK(s2f_arena_calloc(a, SIZE_MAX / 2, 4) == NULL);
    s2f_arena_free(a);
}

TEST(realloc_keeps_contents)
{
    s2f_arena *a = s2f_arena_new(0);
    int *v = NULL;
    size_t cap = 0;
    for (int i = 0; i < 100000; i++) {
        if ((size_t)i == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            v = s2f_arena_realloc(a, v, cap * sizeof *v, ncap * sizeof *v);
            CHECK(v);
            cap = ncap;
        }
        v[i] = i;
    }
    for (int i = 0; i < 100000; i++)
        CHECK(v[i] == i);
    s2f_arena_free(a);
}

TEST(expected_size_gives_one_large_chunk_within_budget)
{
    s2f_arena *a = s2f_arena_new((size_t)64 << 20);
    s2f_arena_expect(a, (size_t)5 << 20);
    char *p = s2f_arena_alloc(a, 100);
    CHECK(p);
    size_t first = s2f_arena_used(a);
    CHECK(first >= ((size_t)5 << 20)); /* one chunk for the whole document */
    for (int i = 0; i < 1000; i++)
        CHECK(s2f_arena_alloc(a, 4096));  /* 4 MB more: no new chunk */
    CHECK(s2f_arena_used(a) == first);
    memset(p, 1, 100);
    s2f_arena_free(a);
    s2f_arena *small = s2f_arena_new(1 << 20);
    s2f_arena_expect(small, (size_t)100 << 20); /* capped at half the budget */
    CHECK(s2f_arena_alloc(small, 10));
    CHECK(s2f_arena_used(small) <= (1 << 20)); /* exact size: a huge page would not fit */
    s2f_arena_free(small);
    s2f_arena *mid = s2f_arena_new(0);
    s2f_arena_expect(mid, (size_t)600 << 10); /* a 0.6 MB chunk becomes one huge page */
    CHECK(s2f_arena_alloc(mid, 10));
    CHECK(s2f_arena_used(mid) == ((size_t)2 << 20));
    s2f_arena_free(mid);
}

TEST(release_returns_to_the_mark)
{
    s2f_arena *a = s2f_arena_new(0);
    char *keep = s2f_arena_strdup(a, "keep");
    size_t before = s2f_arena_used(a), steady = 0;
    for (int round = 0; round < 100; round++) {
        s2f_arena_mark m = s2f_arena_get_mark(a);
        for (int i = 0; i < 50; i++)
            CHECK(s2f_arena_alloc(a, 3000));   /* new chunks */
        CHECK(s2f_arena_alloc(a, 100000));     /* a dedicated big chunk */
        s2f_arena_release(a, m);
        if (round == 0)
            steady = s2f_arena_used(a);        /* what is kept: one spare chunk */
        CHECK(s2f_arena_used(a) == steady);    /* nothing accumulates */
    }
    CHECK(steady - before <= ((size_t)2 << 20) + 4096);
    CHECK_STR(keep, "keep");
    char *next = s2f_arena_alloc(a, 8);
    CHECK(next == keep + 8);                   /* the head chunk is reused from the mark */
    s2f_arena_mark empty = s2f_arena_get_mark(a);
    s2f_arena_release(a, empty);
    s2f_arena_free(a);
}

TEST(strings_and_printf)
{
    s2f_arena *a = s2f_arena_new(0);
    CHECK_STR(s2f_arena_strndup(a, "abcdef", 3), "abc");
    CHECK_STR(s2f_arena_printf(a, "%d-%s", 42, "x"), "42-x");
    s2f_arena_free(a);
}

TEST(warnings_are_capped)
{
    s2f_arena *a = s2f_arena_new(0);
    s2f_warnings w = {.arena = a};
    for (int i = 0; i < S2F_WARN_MAX + 50; i++)
        s2f_warn(&w, "warning %d", i);
    CHECK(w.n == S2F_WARN_MAX);
    CHECK(w.dropped == 50);
    CHECK_STR(w.list[0].message, "warning 0");
    s2f_arena_free(a);
}

TEST(fail_formats_one_line)
{
    s2f_error err = {0};
    CHECK(s2f_fail(&err, S2F_EFORMAT, "bad %s at offset %d", "length", 12) == S2F_EFORMAT);
    CHECK(err.code == S2F_EFORMAT);
    CHECK_STR(err.message, "bad length at offset 12");
    CHECK_STR(s2f_code_name(S2F_ELIMIT), "safety limit exceeded");
}

int main(void)
{
    RUN(alloc_is_aligned_and_distinct);
    RUN(big_blocks_get_their_own_chunk);
    RUN(budget_is_enforced);
    RUN(huge_requests_fail_cleanly);
    RUN(realloc_keeps_contents);
    RUN(expected_size_gives_one_large_chunk_within_budget);
    RUN(release_returns_to_the_mark);
    RUN(strings_and_printf);
    RUN(warnings_are_capped);
    RUN(fail_formats_one_line);
    CHECK_DONE();
}
