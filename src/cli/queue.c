/*
 * queue.c - `sr2fhir queue stats|list|show|retry|purge --data DIR`: the operator's view of
 * the gateway's durable queue (issue 11 Build #5), on DIR/queue.sqlite (src/gateway/queue.h).
 *
 * The database is opened existing-only: these commands never create a queue (a mistyped
 * --data is an error, exit 3, not a new empty queue). They work while `sr2fhir serve` runs
 * (SQLite WAL: readers do not block it; retry and purge are short write transactions).
 * Every text from the database (UIDs, paths, sources, reasons) is printed escaped.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "gateway/queue.h"

#define QUEUE_FILE "queue.sqlite"
#define LIST_DEFAULT 100
#define LIST_MAX 100000
#define RETRY_PAGE 500
#define MAX_AGE (100LL * 366 * 86400) /* --older-than above a century is a mistake */

typedef struct queue_args {
    const char *data;
    const char *state;
    const char *limit, *after, *older_than;
    int all_dead, dead;
    char **ids; /* the positional arguments */
    int n_ids;
} queue_args;

/* The one line of a usage error (exit 2); cli_error escapes the arguments in it. */
static int usage(const char *sub, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage(const char *sub, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return cli_error(NULL, S2F_EUSAGE, "queue %s: %s (try 'sr2fhir help queue')", sub, buf);
}

/* One option of the table (help.c's cli_queue_command). */
static int take_option(void *ctx, const cli_option *o, const char *v)
{
    queue_args *a = ctx;
    switch (o->id) {
    case OPT_DATA: a->data = v; break;
    case OPT_STATE: a->state = v; break;
    case OPT_LIMIT: a->limit = v; break;
    case OPT_AFTER: a->after = v; break;
    case OPT_OLDER_THAN: a->older_than = v; break;
    case OPT_ALL_DEAD: a->all_dead = 1; break;
    case OPT_DEAD: a->dead = 1; break;
    default: return cli_error(NULL, S2F_EINTERNAL, "queue: option %s has no handler", o->name);
    }
    return 0;
}

/* Options of every subcommand (which ones a subcommand accepts is checked by the caller);
 * the other arguments are the ids. 0, or the exit code after a message. */
static int parse_args(const char *sub, int argc, char **argv, queue_args *a)
{
    char who[64];
    memset(a, 0, sizeof *a);
    a->ids = calloc((size_t)argc + 1, sizeof *a->ids);
    if (!a->ids)
        return cli_error(NULL, S2F_ENOMEM, "queue: out of memory");
    snprintf(who, sizeof who, "queue %s", sub);
    int rc = cli_parse(&cli_queue_command, who, argc, argv, &a->n_ids, take_option, a);
    if (rc)
        return rc == CLI_HELP_SHOWN ? CLI_HELP_SHOWN : rc;
    for (int i = 0; i < a->n_ids; i++)
        a->ids[i] = argv[i];
    if (!a->data)
        return usage(sub, "--data DIR is required");
    return 0;
}

/* A whole decimal number in [min, max]; 0 when it is not one. */
static int parse_int(const char *s, long long min, long long max, long long *v)
{
    char *end;
    errno = 0;
    long long n = s && *s >= '0' && *s <= '9' ? strtoll(s, &end, 10) : -1;
    if (n < 0 || errno || *end || n < min || n > max)
        return 0;
    *v = n;
    return 1;
}

/* ---- the database ----------------------------------------------------------------- */

/* The library's message without its "queue database PATH: " lead (the line names PATH). */
static const char *without_lead(const char *msg, const char *path)
{
    static const char lead[] = "queue database ";
    size_t n = strlen(lead), p = strlen(path);
    if (!strncmp(msg, lead, n) && !strncmp(msg + n, path, p) && !strncmp(msg + n + p, ": ", 2))
        return msg + n + p + 2;
    return msg;
}

static int open_queue(const char *data, char *path, size_t size, s2f_queue **q)
{
    *q = NULL;
    if ((size_t)snprintf(path, size, "%s/%s", data, QUEUE_FILE) >= size)
        return cli_error(data, S2F_EUSAGE, "data folder name too long");
    struct stat st;
    if (stat(path, &st) != 0)
        return cli_error(path, S2F_EIO, "no queue database here (%s)", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cli_error(path, S2F_EIO, "not a regular file");
    s2f_queue_options opt = {.existing_only = true};
    s2f_error err = {0};
    s2f_code rc = s2f_queue_open(path, &opt, q, &err);
    return rc ? cli_error(path, rc, "%s", without_lead(err.message, path)) : 0;
}

static int db_error(const char *path, s2f_code rc, const s2f_error *err)
{
    return cli_error(path, rc, "%s", without_lead(err->message, path));
}

/* ---- printing ------------------------------------------------------------------------ */

/* A time as 2026-12-04T18:56:59Z, "-" when not set (-1). */
static const char *utc(int64_t t, char *buf, size_t size)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t < 0 || !gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, size, "-");
    return buf;
}

/* The time that matters in the job's state: pending: not before; leased: lease end;
 * finished: when. */
static int64_t state_time(const s2f_job_info *j)
{
    return j->state == S2F_JOB_PENDING ? j->not_before
           : j->state == S2F_JOB_LEASED ? j->lease_until
                                        : j->finished_at;
}

/* Escaped text, "-" when empty, so that every column has a value. */
static const char *col(const char *text, char *buf, size_t cap)
{
    return *text ? cli_escaped(text, buf, cap) : "-";
}

typedef struct list_ctx {
    int64_t printed, limit, last_id;
    int more;
} list_ctx;

static int print_row(void *ctx, const s2f_job_info *j)
{
    list_ctx *c = ctx;
    if (c->printed == c->limit) {
        c->more = 1;
        return 1;
    }
    char t1[32], t2[32], uid[300], src[1100], cls[140], reason[400];
    printf("%lld\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", (long long)j->id,
           s2f_job_state_name(j->state), j->attempts, utc(j->enqueued_at, t1, sizeof t1),
           utc(state_time(j), t2, sizeof t2), col(j->sop_instance_uid, uid, sizeof uid),
           col(j->source, src, sizeof src), col(j->failure_class, cls, sizeof cls),
           col(j->reason, reason, sizeof reason));
    c->printed++;
    c->last_id = j->id;
    return 0;
}

static int state_by_name(const char *name, s2f_job_state *state)
{
    for (int s = 0; s < S2F_JOB_NSTATES; s++)
        if (!strcmp(name, s2f_job_state_name((s2f_job_state)s))) {
            *state = (s2f_job_state)s;
            return 1;
        }
    return 0;
}

static int flushed(void)
{
    return fflush(stdout) == 0 ? 0 : cli_error(NULL, S2F_EIO, "cannot write to standard output");
}

/* ---- subcommands --------------------------------------------------------------------- */

/* Each checks its arguments (exit 2 on a usage error) and returns 0 when q is NULL (before
 * the database is opened), else does its work. */

static int q_stats(s2f_queue *q, const char *path, const queue_args *a)
{
    if (a->n_ids || a->state || a->limit || a->after || a->older_than || a->all_dead || a->dead)
        return usage("stats", "takes only --data DIR");
    if (!q)
        return 0;
    s2f_queue_stats stats;
    s2f_error err = {0};
    s2f_code rc = s2f_queue_stats_get(q, &stats, &err);
    if (rc)
        return db_error(path, rc, &err);
    for (int s = 0; s < S2F_JOB_NSTATES; s++)
        printf("%s %lld\n", s2f_job_state_name((s2f_job_state)s), (long long)stats.count[s]);
    return flushed();
}

static int q_list(s2f_queue *q, const char *path, const queue_args *a)
{
    s2f_queue_filter f = {S2F_JOB_NSTATES, 0, LIST_DEFAULT + 1};
    long long n;
    if (a->n_ids || a->older_than || a->all_dead || a->dead)
        return usage("list", "takes --data DIR [--state STATE] [--limit N] [--after ID]");
    if (a->state && !state_by_name(a->state, &f.state))
        return usage("list", "unknown state '%s' (pending, leased, done, dead, not_applicable)",
                     a->state);
    if (a->limit) {
        if (!parse_int(a->limit, 1, LIST_MAX, &n))
            return usage("list", "--limit '%s': a number from 1 to 100000", a->limit);
        f.limit = n + 1; /* one more tells whether there are more */
    }
    if (a->after) {
        if (!parse_int(a->after, 0, INT64_MAX, &n))
            return usage("list", "--after '%s': a job id", a->after);
        f.after_id = n;
    }
    if (!q)
        return 0;
    list_ctx c = {0, f.limit - 1, 0, 0};
    printf("ID\tSTATE\tATTEMPTS\tENQUEUED\tTIME\tSOP_INSTANCE_UID\tSOURCE\tCLASS\tREASON\n");
    s2f_error err = {0};
    s2f_code rc = s2f_queue_list(q, &f, print_row, &c, &err);
    if (rc)
        return db_error(path, rc, &err);
    int w = flushed();
    if (!w && c.more)
        cli_error(NULL, 0, "queue list: %lld jobs shown, more follow (--after %lld)",
                  (long long)c.printed, (long long)c.last_id);
    return w;
}

static int q_show(s2f_queue *q, const char *path, const queue_args *a)
{
    long long id;
    if (a->n_ids != 1 || a->state || a->limit || a->after || a->older_than || a->all_dead ||
        a->dead)
        return usage("show", "takes --data DIR and one job ID");
    if (!parse_int(a->ids[0], 1, INT64_MAX, &id))
        return usage("show", "'%s' is not a job id", a->ids[0]);
    if (!q)
        return 0;
    s2f_job_info *j = malloc(sizeof *j);
    if (!j)
        return cli_error(NULL, S2F_ENOMEM, "queue: out of memory");
    s2f_error err = {0};
    s2f_code rc = s2f_queue_get(q, id, j, &err);
    if (rc) {
        free(j);
        return rc == S2F_ELOOKUP ? cli_error(path, rc, "no job %lld", id) : db_error(path, rc, &err);
    }
    char t[5][32];
    printf("id: %lld\nstate: %s\nattempts: %d\n", (long long)j->id, s2f_job_state_name(j->state),
           j->attempts);
    cli_line(stdout, "sop_instance_uid: %s", j->sop_instance_uid);
    cli_line(stdout, "path: %s", j->path);
    cli_line(stdout, "source: %s", j->source);
    printf("enqueued_at: %s\nnot_before: %s\nlease_until: %s\n",
           utc(j->enqueued_at, t[0], sizeof t[0]), utc(j->not_before, t[1], sizeof t[1]),
           utc(j->lease_until, t[2], sizeof t[2]));
    cli_line(stdout, "worker: %s", *j->worker ? j->worker : "-");
    printf("finished_at: %s\n", utc(j->finished_at, t[3], sizeof t[3]));
    cli_line(stdout, "failure_class: %s", *j->failure_class ? j->failure_class : "-");
    cli_line(stdout, "reason: %s", *j->reason ? j->reason : "-");
    free(j);
    return flushed();
}

/* Retries one dead job; 0 or the exit code of its one error line. */
static int retry_one(s2f_queue *q, const char *path, int64_t id, int64_t now)
{
    s2f_error err = {0};
    s2f_code rc = s2f_queue_retry_dead(q, id, now, &err);
    if (!rc) {
        printf("job %lld: pending again\n", (long long)id);
        return 0;
    }
    if (rc == S2F_EUSAGE)
        return cli_error(path, rc, "job %lld: not retried: another job of its SOP Instance UID"
                         " is waiting already and will deliver it", (long long)id);
    if (rc != S2F_ELOOKUP)
        return db_error(path, rc, &err);
    s2f_job_state state;
    if (s2f_queue_job_state(q, id, &state, NULL, 0, NULL, 0, &err) != S2F_OK)
        return cli_error(path, S2F_ELOOKUP, "no job %lld", (long long)id);
    return cli_error(path, S2F_ELOOKUP, "job %lld is %s, not dead: only a dead job is retried",
                     (long long)id, s2f_job_state_name(state));
}

typedef struct id_page {
    int64_t ids[RETRY_PAGE];
    int n;
} id_page;

static int collect_id(void *ctx, const s2f_job_info *j)
{
    id_page *p = ctx;
    p->ids[p->n++] = j->id;
    return p->n == RETRY_PAGE;
}

/* Every dead job, a page of ids at a time (memory stays bounded). */
static int retry_all_dead(s2f_queue *q, const char *path, int64_t now)
{
    id_page *page = malloc(sizeof *page);
    if (!page)
        return cli_error(NULL, S2F_ENOMEM, "queue: out of memory");
    s2f_queue_filter f = {S2F_JOB_DEAD, 0, RETRY_PAGE};
    int status = 0;
    long long retried = 0, failed = 0;
    do {
        page->n = 0;
        s2f_error err = {0};
        s2f_code rc = s2f_queue_list(q, &f, collect_id, page, &err);
        if (rc) {
            status = status ? status : db_error(path, rc, &err);
            break;
        }
        for (int i = 0; i < page->n; i++) {
            int r = retry_one(q, path, page->ids[i], now);
            retried += r == 0;
            failed += r != 0;
            status = status ? status : r;
        }
        if (page->n)
            f.after_id = page->ids[page->n - 1];
    } while (page->n == RETRY_PAGE);
    free(page);
    printf("%lld dead jobs pending again, %lld not retried\n", retried, failed);
    int w = flushed();
    return status ? status : w;
}

static int q_retry(s2f_queue *q, const char *path, const queue_args *a)
{
    if (a->state || a->limit || a->after || a->older_than || a->dead ||
        (a->all_dead ? a->n_ids != 0 : a->n_ids == 0))
        return usage("retry", "takes --data DIR and job IDs, or --all-dead");
    long long id = 0;
    for (int i = 0; i < a->n_ids; i++)
        if (!parse_int(a->ids[i], 1, INT64_MAX, &id))
            return usage("retry", "'%s' is not a job id", a->ids[i]);
    if (!q)
        return 0;
    int64_t now = (int64_t)time(NULL);
    if (a->all_dead)
        return retry_all_dead(q, path, now);
    int status = 0;
    for (int i = 0; i < a->n_ids; i++) {
        parse_int(a->ids[i], 1, INT64_MAX, &id);
        int r = retry_one(q, path, id, now);
        status = status ? status : r;
    }
    int w = flushed();
    return status ? status : w;
}

/* purge: the received files of purged jobs go too, but only files in DIR/incoming (the
 * receiver's folder): a path elsewhere (a database edited by hand) is kept and counted. */
typedef struct purge_ctx {
    char incoming[PATH_MAX]; /* realpath of DIR/incoming, "" when there is none */
    long long files, kept, failed;
} purge_ctx;

static void remove_file(void *ctx, int64_t id, const char *file)
{
    purge_ctx *c = ctx;
    char dir[PATH_MAX], real[PATH_MAX], target[PATH_MAX + 2];
    const char *slash = strrchr(file, '/');
    const char *base = slash ? slash + 1 : file;
    size_t dlen = slash ? (size_t)(slash - file) : 0;
    int inside = 0;
    if (*c->incoming && *base && strcmp(base, ".") && strcmp(base, "..") && dlen < sizeof dir) {
        if (!slash)
            strcpy(dir, ".");
        else if (dlen == 0)
            strcpy(dir, "/");
        else {
            memcpy(dir, file, dlen);
            dir[dlen] = '\0';
        }
        inside = realpath(dir, real) && !strcmp(real, c->incoming);
    }
    if (!inside) {
        c->kept++;
        return;
    }
    snprintf(target, sizeof target, "%s/%s", c->incoming, base);
    if (unlink(target) == 0)
        c->files++;
    else if (errno != ENOENT) {
        c->failed++;
        cli_error(target, 0, "warning: job %lld: cannot remove its file: %s", (long long)id,
                  strerror(errno));
    }
}

static int q_purge(s2f_queue *q, const char *path, const queue_args *a)
{
    long long age;
    if (a->n_ids || a->state || a->limit || a->after || a->all_dead || !a->older_than)
        return usage("purge", "takes --data DIR --older-than SECONDS [--dead]");
    if (!parse_int(a->older_than, 0, MAX_AGE, &age))
        return usage("purge", "--older-than '%s': seconds, a whole number", a->older_than);
    if (!q)
        return 0;
    purge_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return cli_error(NULL, S2F_ENOMEM, "queue: out of memory");
    char inc[PATH_MAX];
    if ((size_t)snprintf(inc, sizeof inc, "%s/incoming", a->data) >= sizeof inc ||
        !realpath(inc, c->incoming))
        c->incoming[0] = '\0';
    unsigned states = S2F_JOB_BIT(S2F_JOB_DONE) | S2F_JOB_BIT(S2F_JOB_NOT_APPLICABLE) |
                      (a->dead ? S2F_JOB_BIT(S2F_JOB_DEAD) : 0);
    int64_t removed = 0;
    s2f_error err = {0};
    s2f_code rc = s2f_queue_purge(q, states, (int64_t)time(NULL) - age, remove_file, c,
                                  &removed, &err);
    printf("%lld jobs purged (%s finished more than %lld seconds ago), %lld files removed\n",
           (long long)removed, a->dead ? "done, not_applicable, dead" : "done, not_applicable",
           age, c->files);
    if (c->kept)
        cli_error(path, 0, "warning: %lld purged jobs' files are not in %s/incoming: kept",
                  c->kept, a->data);
    int status = rc ? db_error(path, rc, &err) : c->failed ? S2F_EIO : 0;
    free(c);
    int w = flushed();
    return status ? status : w;
}

int cmd_queue(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(s2f_queue *, const char *, const queue_args *);
    } subs[] = {
        {"stats", q_stats}, {"list", q_list}, {"show", q_show},
        {"retry", q_retry}, {"purge", q_purge},
    };
    if (argc < 1)
        return cli_error(NULL, S2F_EUSAGE, "queue: which? stats, list, show, retry or purge"
                                           " (try 'sr2fhir help queue')");
    if (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))
        return cli_command_help(&cli_queue_command, stdout), 0;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[0], subs[i].name))
            continue;
        queue_args a;
        int rc = parse_args(subs[i].name, argc - 1, argv + 1, &a);
        if (rc == CLI_HELP_SHOWN) {
            free(a.ids);
            return 0;
        }
        char path[PATH_MAX];
        s2f_queue *q = NULL;
        if (!rc)
            rc = subs[i].run(NULL, NULL, &a); /* the arguments are checked first: exit 2 */
        if (!rc)
            rc = open_queue(a.data, path, sizeof path, &q);
        if (!rc)
            rc = subs[i].run(q, path, &a);
        s2f_queue_close(q);
        free(a.ids);
        return rc;
    }
    return usage(argv[0], "unknown subcommand (stats, list, show, retry, purge)");
}
