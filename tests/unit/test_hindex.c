/*
 * test_hindex.c - unit tests of src/util/hindex.c, the hash index behind the memo tables:
 * found again after growing, collisions told apart by the caller's equality, a free slot
 * when absent, a refusal when the arena's budget is spent, and lookups bounded when an
 * input makes its keys share one hash.
 */
#include "check.h"
#include "util/hindex.h"

static int same_int(const void *entry, const void *key)
{
    return *(const int *)entry == *(const int *)key;
}

TEST(finds_every_entry_after_growing)
{
    s2f_arena *a = s2f_arena_new(0);
    s2f_hindex x = {0};
    static int values[5000];
    CHECK(a);
    for (int i = 0; i < 5000; i++) {
        values[i] = i;
        s2f_hslot *slot = s2f_hindex_find(&x, a, (uint64_t)i * 0x9E3779B97F4A7C15ull, same_int, &values[i]);
        CHECK(slot && !slot->entry);
        s2f_hindex_put(&x, slot, (uint64_t)i * 0x9E3779B97F4A7C15ull, &values[i]);
    }
    CHECK(x.n == 5000 && x.cap >= 10000);
    for (int i = 0; i < 5000; i++) {
        int key = i;
        s2f_hslot *slot = s2f_hindex_find(&x, a, (uint64_t)i * 0x9E3779B97F4A7C15ull, same_int, &key);
        CHECK(slot && slot->entry == &values[i]);
    }
    s2f_arena_free(a);
}

TEST(equal_hashes_are_told_apart_by_equality)
{
    s2f_arena *a = s2f_arena_new(0);
    s2f_hindex x = {0};
    static int one = 1, two = 2, three = 3;
    CHECK(a);
    s2f_hindex_put(&x, s2f_hindex_find(&x, a, 42, same_int, &one), 42, &one);
    s2f_hindex_put(&x, s2f_hindex_find(&x, a, 42, same_int, &two), 42, &two);
    CHECK(s2f_hindex_find(&x, a, 42, same_int, &one)->entry == &one);
    CHECK(s2f_hindex_find(&x, a, 42, same_int, &two)->entry == &two);
    CHECK(s2f_hindex_find(&x, a, 42, same_int, &three)->entry == NULL);
    CHECK(x.n == 2);
    s2f_arena_free(a);
}

TEST(refused_when_the_budget_is_spent)
{
    s2f_arena *a = s2f_arena_new(1024); /* less than the first table */
    s2f_hindex x = {0};
    int key = 7;
    CHECK(a);
    CHECK(s2f_hindex_find(&x, a, 7, same_int, &key) == NULL);
    s2f_arena_free(a);
}

static long compared;

static int same_int_counted(const void *entry, const void *key)
{
    compared++;
    return same_int(entry, key);
}

TEST(keys_sharing_one_hash_cost_a_bounded_lookup_each)
{
    s2f_arena *a = s2f_arena_new(0);
    s2f_hindex x = {0};
    static int values[20000];
    int stored = 0, refused = 0;
    CHECK(a);
    compared = 0;
    for (int i = 0; i < 20000; i++) {
        values[i] = i;
        s2f_hslot *slot = s2f_hindex_find(&x, a, 99, same_int_counted, &values[i]);
        if (!slot) {
            refused++;
            continue;
        }
        CHECK(!slot->entry);
        s2f_hindex_put(&x, slot, 99, &values[i]);
        stored++;
    }
    CHECK(stored == S2F_HINDEX_PROBES && refused == 20000 - S2F_HINDEX_PROBES);
    CHECK(x.crowded == 1);
    /* quadratic would be 2e8 comparisons; bounded is at most S2F_HINDEX_PROBES a lookup */
    CHECK(compared <= 20000L * S2F_HINDEX_PROBES);
    int key = 5; /* those stored are still found */
    s2f_hslot *slot = s2f_hindex_find(&x, a, 99, same_int, &key);
    CHECK(slot && slot->entry == &values[5]);
    s2f_arena_free(a);
}

int main(void)
{
    RUN(finds_every_entry_after_growing);
    RUN(equal_hashes_are_told_apart_by_equality);
    RUN(refused_when_the_budget_is_spent);
    RUN(keys_sharing_one_hash_cost_a_bounded_lookup_each);
    CHECK_DONE();
}
