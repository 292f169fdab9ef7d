/*
 * check.h - the minimal unit-test harness every tests/unit/test_*.c uses.
 *
 * Each TEST(name) is a function; RUN(name) runs it and prints one line, "PASS name" or
 * "FAIL name: file:line: what failed", or "SKIP name: reason" when the test called
 * SKIP(). tests/run.sh collects these lines from every test program and prints the final
 * "N passed, N failed, N skipped". main() returns non-zero when any test failed.
 */
#ifndef S2F_CHECK_H
#define S2F_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failed_total, check_cur_failed, check_cur_skipped;
static char check_msg[512];

#define TEST(name) static void name(void)
#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            if (!check_cur_failed)                                                          \
                snprintf(check_msg, sizeof check_msg, "%.100s:%d: CHECK(%.300s)", __FILE__, __LINE__, \
                         #cond);                                                            \
            check_cur_failed = 1;                                                           \
            return;                                                                         \
        }                                                                                   \
    } while (0)
#define CHECK_STR(a, b)                                                                     \
    do {                                                                                    \
        const char *check_a_ = (a), *check_b_ = (b);                                        \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                     \
            if (!check_cur_failed)                                                          \
                snprintf(check_msg, sizeof check_msg, "%s:%d: \"%.200s\" != \"%.200s\"", __FILE__,   \
                         __LINE__, check_a_ ? check_a_ : "(null)",                          \
                         check_b_ ? check_b_ : "(null)");                                   \
            check_cur_failed = 1;                                                           \
            return;                                                                         \
        }                                                                                   \
    } while (0)
#define SKIP(reason)                                                                        \
    do {                                                                                    \
        snprintf(check_msg, sizeof check_msg, "%s", reason);                               \
        check_cur_skipped = 1;                                                              \
        return;                                                                             \
    } while (0)
#define RUN(name)                                                                           \
    do {                                                                                    \
        check_cur_failed = check_cur_skipped = 0;                                           \
        check_msg[0] = 0;                                                                   \
        name();                                                                             \
        if (check_cur_failed) {                                                             \
            printf("FAIL %s: %s\n", #name, check_msg);                                      \
            check_failed_total++;                                                           \
        } else if (check_cur_skipped)                                                       \
            printf("SKIP %s: %s\n", #name, check_msg);                                      \
        else                                                                                \
            printf("PASS %s\n", #name);                                                     \
        fflush(stdout);                                                                     \
    } while (0)
#define CHECK_DONE() return check_failed_total ? 1 : 0

#endif
