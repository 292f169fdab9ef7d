/*
 * queue_fill.c - a test tool: builds a gateway queue database (src/gateway/queue.h) in any
 * state through the queue's own functions, so script tests (tests/e2e/test_queue_cli.py)
 * need not know its SQL schema. Usage: queue_fill DB OP...; each OP is a word and its
 * arguments; a time T is seconds since the epoch or "now":
 *   add UID PATH SOURCE T          enqueue (prints the job id)
 *   claim WORKER LEASE T           claim the oldest ready job (it becomes "the job")
 *   done T | dead CLASS REASON T | na REASON T | later NOT_BEFORE REASON
 *                                  finish the job claimed last
 * Exits 1 with a message on the first failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/queue.h"

static int64_t when(const char *t)
{
    return strcmp(t, "now") ? strtoll(t, NULL, 10) : (int64_t)time(NULL);
}

static int fail(const char *op, const char *msg)
{
    fprintf(stderr, "queue_fill: %s: %s\n", op, msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return fail("usage", "queue_fill DB OP...");
    s2f_queue *q = NULL;
    s2f_error err = {0};
    if (s2f_queue_open(argv[1], NULL, &q, &err))
        return fail("open", err.message);
    s2f_job job = {0};
    int status = 0;
    for (int i = 2; i < argc && !status; i++) {
        const char *op = argv[i];
        int need = !strcmp(op, "add") ? 4 : !strcmp(op, "claim") ? 3 : !strcmp(op, "done") ? 1
                 : !strcmp(op, "dead") ? 3 : !strcmp(op, "na") ? 2 : !strcmp(op, "later") ? 2
                                                                                       : -1;
        if (need < 0 || i + need >= argc) {
            status = fail(op, "unknown operation or missing arguments");
            break;
        }
        char **a = argv + i + 1;
        s2f_code rc = S2F_OK;
        if (!strcmp(op, "add")) {
            int64_t id = 0;
            rc = s2f_queue_enqueue(q, a[0], a[1], a[2], when(a[3]), &id, NULL, &err);
            if (!rc)
                printf("%lld\n", (long long)id);
        } else if (!strcmp(op, "claim")) {
            bool found = false;
            rc = s2f_queue_claim(q, a[0], atoi(a[1]), when(a[2]), &job, &found, &err);
            if (!rc && !found)
                status = fail(op, "no job ready");
        } else if (!strcmp(op, "done"))
            rc = s2f_queue_done(q, &job, when(a[0]), &err);
        else if (!strcmp(op, "dead"))
            rc = s2f_queue_dead(q, &job, a[0], a[1], when(a[2]), &err);
        else if (!strcmp(op, "na"))
            rc = s2f_queue_not_applicable(q, &job, a[0], when(a[1]), &err);
        else
            rc = s2f_queue_retry_later(q, &job, when(a[0]), a[1], &err);
        if (rc)
            status = fail(op, err.message);
        i += need;
    }
    s2f_queue_close(q);
    return status;
}
