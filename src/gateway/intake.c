/*
 * intake.c - the receivers' one way into the queue (intake.h): the data folder's store,
 * the classification of a received object's header, back-pressure, the committer thread
 * (group commit: one folder fsync and one transaction for the files of every receiver
 * thread waiting) and the audit log's appends.
 *
 * Ownership: an s2f_intake owns its store, two queue handles (the committer's, and one
 * behind stats_lock for the depth and readiness reads) and the committer thread. Files
 * handed to s2f_intake_commit belong to the caller until their job row is committed;
 * then to the job (the worker reads them, `queue purge` removes them).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "dicom/dataset.h"
#include "gateway/intake.h"
#include "gateway/queue.h"
#include "util/arena.h"
#include "util/clock.h"
#include "util/error.h"

#define HEADER_ARENA (64u << 20)      /* reading one object's header: at most this much */
#define STATS_REFRESH_NS 1000000000LL /* queue depth re-read at most once a second */
#define LOCK_WAIT_MS 30000            /* for a shared lock while another process starts */

/* One caller's rows, handed to the committer. */
typedef struct commit_batch {
    s2f_queue_item *items;
    size_t n;
    int done;
    s2f_code rc;
    s2f_error err;
    struct commit_batch *next;
} commit_batch;

struct s2f_intake {
    char *data_dir, *queue_path;
    s2f_intake_options opt;
    s2f_store *store;
    int lock_fd;                 /* DIR/intake.lock, flock()ed; -1 none */
    int sole, exclusive;         /* no other user at start; the lock is still exclusive */
    /* committer thread: its own queue handle */
    s2f_queue *commit_q;
    pthread_t committer;
    int committer_started;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    commit_batch *head, *tail;
    int stop;
    long long commits, batches;  /* group commits and the calls they took (committer) */
    /* back-pressure figures and readiness: a second handle, behind its own lock */
    pthread_mutex_t stats_lock;
    s2f_queue *stats_q;
    long long stats_depth;       /* pending + leased when last read */
    long long stats_read_ns;     /* monotonic time of that read, 0 = never */
    atomic_llong enqueued_since; /* jobs created since */
};

/* ---- what a received object is -------------------------------------------------------- */

int s2f_intake_uid_valid(const char *p, size_t n)
{
    if (n == 0 || n > S2F_INTAKE_UID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || p[i] == '.'))
            return 0;
    return 1;
}

int s2f_intake_is_sr_class(const char *uid)
{
    static const char prefix[] = "1.2.840.10008.5.1.4.1.1.88.";
    size_t n = sizeof prefix - 1;
    if (strncmp(uid, prefix, n) != 0 || !uid[n])
        return 0;
    for (const char *p = uid + n; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

static s2f_code no_begin(void *user)
{
    (void)user;
    return S2F_OK;
}

static s2f_code no_end(void *user, const s2f_ds *item)
{
    (void)user;
    (void)item;
    return S2F_OK;
}

/* The string value of `tag` into out when it is a valid UID; 0 when absent or invalid. */
static int get_uid(const s2f_ds *ds, uint32_t tag, char out[S2F_INTAKE_UID_MAX + 1])
{
    const s2f_elem *e = s2f_ds_find(ds, tag);
    const uint8_t *p;
    size_t n;
    out[0] = 0;
    if (!e || e->is_seq || !s2f_elem_string_raw(e, 0, &p, &n) ||
        !s2f_intake_uid_valid((const char *)p, n))
        return 0;
    memcpy(out, p, n);
    out[n] = 0;
    return 1;
}

/* The data set of the object, read with bounded memory into `arena`. */
static s2f_code read_header(const uint8_t *data, size_t len, int json, s2f_arena *arena,
                            s2f_arena *scratch, s2f_ds **ds, s2f_error *err)
{
    s2f_warnings warnings = {.arena = arena};
    s2f_content_sink sink = {NULL, no_begin, no_end, scratch};
    s2f_read_ctx ctx = {
        .arena = arena,
        .warnings = &warnings,
        .max_depth = 2 * 128 + 8,
        .max_inflated = HEADER_ARENA / 2,
        .content = &sink,
    };
    return (json ? s2f_dicomjson_read : s2f_part10_read)(data, len, &ctx, ds, err);
}

static unsigned judge(const s2f_ds *ds, s2f_intake_header *h, char *why, size_t why_cap)
{
    int has_class = get_uid(ds, S2F_TAG(0x0008, 0x0016), h->sop_class);
    int has_inst = get_uid(ds, S2F_TAG(0x0008, 0x0018), h->sop_instance);
    int has_study = get_uid(ds, S2F_TAG(0x0020, 0x000D), h->study);
    if (!has_class || !has_inst) {
        snprintf(why, why_cap, "no valid %s", has_class ? "SOP Instance UID" : "SOP Class UID");
        return S2F_FR_CANNOT_UNDERSTAND;
    }
    if (!s2f_intake_is_sr_class(h->sop_class)) {
        snprintf(why, why_cap, "SOP Class %s is not a Structured Report", h->sop_class);
        return S2F_FR_SOP_CLASS_NOT_SUPPORTED;
    }
    if (!has_study) {
        snprintf(why, why_cap, "no valid Study Instance UID");
        return S2F_FR_CANNOT_UNDERSTAND;
    }
    return 0;
}

unsigned s2f_intake_classify(const uint8_t *data, size_t len, int json, s2f_intake_header *h,
                             char *why, size_t why_cap)
{
    memset(h, 0, sizeof *h);
    if (len == 0) {
        snprintf(why, why_cap, "empty object");
        return S2F_FR_CANNOT_UNDERSTAND;
    }
    s2f_arena *arena = s2f_arena_new(HEADER_ARENA), *scratch = s2f_arena_new(HEADER_ARENA);
    s2f_error err = {0};
    s2f_ds *ds = NULL;
    s2f_code rc = !arena || !scratch
                      ? s2f_fail(&err, S2F_ENOMEM, "out of memory")
                      : read_header(data, len, json, arena, scratch, &ds, &err);
    unsigned failure;
    if (rc) {
        snprintf(why, why_cap, "%s", err.message);
        failure = rc == S2F_ENOMEM ? S2F_FR_OUT_OF_RESOURCES : S2F_FR_CANNOT_UNDERSTAND;
    } else {
        failure = judge(ds, h, why, why_cap);
    }
    s2f_arena_free(scratch);
    s2f_arena_free(arena);
    return failure;
}

/* ---- committer (group commit) --------------------------------------------------------- */

static void settle_batches(s2f_intake *in, commit_batch *list, s2f_code rc,
                           const s2f_error *err)
{
    pthread_mutex_lock(&in->lock);
    for (commit_batch *b = list; b; b = b->next) {
        if (rc) {
            b->rc = rc;
            b->err = *err;
        }
        b->done = 1;
    }
    pthread_cond_broadcast(&in->done);
    pthread_mutex_unlock(&in->lock);
}

/* The rows of every batch in `list` in one transaction; their items get the results. */
static s2f_code enqueue_all(s2f_intake *in, commit_batch *list, size_t total, int64_t now,
                            s2f_error *err)
{
    s2f_queue_item *all = malloc(total * sizeof *all);
    if (!all)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    size_t k = 0;
    for (commit_batch *b = list; b; b = b->next)
        for (size_t i = 0; i < b->n; i++)
            all[k++] = b->items[i];
    s2f_code rc = s2f_queue_enqueue_batch(in->commit_q, all, total, now, err);
    if (!rc) {
        k = 0;
        for (commit_batch *b = list; b; b = b->next)
            for (size_t i = 0; i < b->n; i++)
                b->items[i] = all[k++];
    }
    free(all);
    return rc;
}

/* Makes the renames of every batch in `list` durable (one fsync of DIR/incoming), then
 * commits their rows in one transaction; when that fails, each batch alone, so one
 * caller's bad row cannot fail another's. */
static void commit_list(s2f_intake *in, commit_batch *list)
{
    size_t total = 0;
    for (commit_batch *b = list; b; b = b->next)
        total += b->n;
    s2f_error err = {0};
    if (s2f_store_sync(in->store, &err) != S2F_OK) {
        settle_batches(in, list, err.code, &err);
        return;
    }
    in->commits++; /* committer thread only; read after it is joined */
    for (commit_batch *b = list; b; b = b->next)
        in->batches++;
    int64_t now = (int64_t)time(NULL);
    s2f_code rc = total ? enqueue_all(in, list, total, now, &err) : S2F_OK;
    if (!rc || !list->next) {
        settle_batches(in, list, rc, &err);
        return;
    }
    for (commit_batch *b = list; b;) {
        commit_batch *next = b->next;
        b->next = NULL;
        rc = s2f_queue_enqueue_batch(in->commit_q, b->items, b->n, now, &err);
        settle_batches(in, b, rc, &err);
        b = next;
    }
}

static void *committer_main(void *arg)
{
    s2f_intake *in = arg;
    pthread_mutex_lock(&in->lock);
    for (;;) {
        while (!in->head && !in->stop)
            pthread_cond_wait(&in->wake, &in->lock);
        if (!in->head && in->stop)
            break;
        commit_batch *list = in->head;
        in->head = in->tail = NULL;
        pthread_mutex_unlock(&in->lock);
        commit_list(in, list);
        pthread_mutex_lock(&in->lock);
    }
    pthread_mutex_unlock(&in->lock);
    return NULL;
}

/* Hands the batch to the committer and waits until its rows are committed (or failed). */
static s2f_code commit_rows(s2f_intake *in, commit_batch *b, s2f_error *err)
{
    b->done = 0;
    b->rc = S2F_OK;
    b->next = NULL;
    pthread_mutex_lock(&in->lock);
    if (in->stop) {
        pthread_mutex_unlock(&in->lock);
        return s2f_fail(err, S2F_EIO, "the receiver is stopping");
    }
    if (in->tail)
        in->tail->next = b;
    else
        in->head = b;
    in->tail = b;
    pthread_cond_signal(&in->wake);
    while (!b->done)
        pthread_cond_wait(&in->done, &in->lock);
    pthread_mutex_unlock(&in->lock);
    if (b->rc)
        *err = b->err;
    return b->rc;
}

static void abort_all(s2f_intake *in, s2f_intake_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s2f_store_abort(in->store, items[i].file);
}

/* Final names, then the rows: the queue items (paths into `paths`) for commit_rows. */
static s2f_code rename_and_describe(s2f_intake *in, s2f_intake_item *items, size_t n,
                                    const char *source, s2f_queue_item *rows,
                                    char (*paths)[S2F_QUEUE_PATH_MAX + 1], s2f_error *err)
{
    for (size_t i = 0; i < n; i++) {
        s2f_code rc = s2f_store_commit(in->store, items[i].file, err);
        if (!rc)
            rc = s2f_store_path(in->store, items[i].file, paths[i], sizeof paths[i], err);
        if (rc)
            return rc;
        rows[i] = (s2f_queue_item){items[i].sop_instance_uid, paths[i], source, 0, false};
    }
    return S2F_OK;
}

s2f_code s2f_intake_commit(s2f_intake *in, s2f_intake_item *items, size_t n,
                           const char *source, s2f_error *err)
{
    if (n == 0)
        return S2F_OK;
    char (*paths)[S2F_QUEUE_PATH_MAX + 1] = malloc(n * sizeof *paths);
    s2f_queue_item *rows = calloc(n, sizeof *rows);
    s2f_code rc = !paths || !rows ? s2f_fail(err, S2F_ENOMEM, "out of memory") : S2F_OK;
    if (!rc)
        rc = rename_and_describe(in, items, n, source ? source : "-", rows, paths, err);
    if (!rc) {
        commit_batch b = {.items = rows, .n = n};
        rc = commit_rows(in, &b, err);
    }
    size_t created = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        items[i].job_id = rows[i].job_id;
        items[i].created = rows[i].created;
        if (rows[i].created)
            created++;
        else
            s2f_store_abort(in->store, items[i].file); /* the open job holds the bytes */
    }
    free(paths);
    free(rows);
    if (rc) {
        abort_all(in, items, n);
        s2f_gw_logf(in->opt.log, S2F_LOG_ERROR, "intake: cannot commit %zu jobs: %s", n,
                    err->message);
        return rc;
    }
    if (created) {
        atomic_fetch_add(&in->enqueued_since, (long long)created);
        if (in->opt.on_enqueued)
            in->opt.on_enqueued(in->opt.on_enqueued_ctx);
    }
    return S2F_OK;
}

/* ---- back-pressure and readiness ------------------------------------------------------ */

/* Pending + leased jobs: read from the database at most once a second, plus the jobs
 * created since. */
static s2f_code queue_depth(s2f_intake *in, long long *depth, s2f_error *err)
{
    s2f_code rc = S2F_OK;
    long long now = s2f_mono_ns();
    pthread_mutex_lock(&in->stats_lock);
    if (!in->stats_read_ns || now - in->stats_read_ns >= STATS_REFRESH_NS) {
        s2f_queue_stats st;
        long long since = atomic_load(&in->enqueued_since);
        rc = s2f_queue_stats_get(in->stats_q, &st, err);
        if (!rc) {
            in->stats_depth = st.count[S2F_JOB_PENDING] + st.count[S2F_JOB_LEASED];
            in->stats_read_ns = now;
            atomic_fetch_sub(&in->enqueued_since, since);
        }
    }
    *depth = in->stats_depth + atomic_load(&in->enqueued_since);
    pthread_mutex_unlock(&in->stats_lock);
    return rc;
}

const char *s2f_intake_busy(s2f_intake *in, char *buf, size_t cap)
{
    s2f_error err = {0};
    long long depth = 0;
    if (queue_depth(in, &depth, &err)) {
        snprintf(buf, cap, "queue unavailable: %s", err.message);
        return buf;
    }
    if (depth > in->opt.high_water) {
        snprintf(buf, cap, "queue above its high-water mark (%lld jobs waiting)", depth);
        return buf;
    }
    unsigned long long free_bytes = 0;
    if (s2f_store_free_bytes(in->store, &free_bytes, &err)) {
        snprintf(buf, cap, "%s", err.message);
        return buf;
    }
    if (free_bytes < in->opt.min_free_bytes) {
        snprintf(buf, cap, "free disk below the minimum (%llu MiB left)", free_bytes >> 20);
        return buf;
    }
    return NULL;
}

s2f_code s2f_intake_check(s2f_intake *in, s2f_error *err)
{
    pthread_mutex_lock(&in->stats_lock);
    s2f_code rc = s2f_queue_check_writable(in->stats_q, err);
    pthread_mutex_unlock(&in->stats_lock);
    unsigned long long free_bytes = 0;
    if (!rc)
        rc = s2f_store_free_bytes(in->store, &free_bytes, err);
    if (!rc && free_bytes < in->opt.min_free_bytes)
        rc = s2f_fail(err, S2F_EIO, "free disk of %s below the minimum (%llu MiB left)",
                      s2f_store_dir(in->store), free_bytes >> 20);
    return rc;
}

/* ---- audit, accessors ----------------------------------------------------------------- */

void s2f_intake_audit(s2f_intake *in, const char *line, size_t len)
{
    if (in->opt.audit_fd < 0 || !line)
        return;
    /* one write(2) on an O_APPEND descriptor: lines of threads never interleave */
    ssize_t w;
    do
        w = write(in->opt.audit_fd, line, len);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)len)
        s2f_gw_logf(in->opt.log, S2F_LOG_ERROR, "cannot append to the audit log: %s",
                    w < 0 ? strerror(errno) : "short write");
}

s2f_store *s2f_intake_store(s2f_intake *in)
{
    return in->store;
}

s2f_gw_log *s2f_intake_log(s2f_intake *in)
{
    return in->opt.log;
}

/* ---- the data folder's lock ---------------------------------------------------------- */

/* DIR/intake.lock: exclusive when no other process holds it (this intake is the sole user),
 * else shared, waited for at most LOCK_WAIT_MS. */
static s2f_code lock_folder(s2f_intake *in, s2f_error *err)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/intake.lock", in->data_dir) >= sizeof path)
        return s2f_fail(err, S2F_EUSAGE, "data folder path too long: %s", in->data_dir);
    in->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (in->lock_fd < 0)
        return s2f_fail(err, S2F_EIO, "cannot open %s: %s", path, strerror(errno));
    if (flock(in->lock_fd, LOCK_EX | LOCK_NB) == 0) {
        in->sole = in->exclusive = 1;
        return S2F_OK;
    }
    for (long long waited = 0; waited < LOCK_WAIT_MS; waited += 50) {
        if (flock(in->lock_fd, LOCK_SH | LOCK_NB) == 0)
            return S2F_OK;
        if (errno != EWOULDBLOCK && errno != EINTR)
            break;
        nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
    }
    return s2f_fail(err, S2F_EIO, "cannot lock %s: another process keeps it exclusive (%s)",
                    path, strerror(errno));
}

int s2f_intake_sole(const s2f_intake *in)
{
    return in->sole;
}

s2f_code s2f_intake_share(s2f_intake *in, s2f_error *err)
{
    if (!in->exclusive)
        return S2F_OK;
    if (flock(in->lock_fd, LOCK_SH) != 0)
        return s2f_fail(err, S2F_EIO, "cannot share the lock of %s: %s", in->data_dir,
                        strerror(errno));
    in->exclusive = 0;
    return S2F_OK;
}

/* ---- life cycle ----------------------------------------------------------------------- */

static s2f_code start_committer(s2f_intake *in, s2f_error *err)
{
    int e = pthread_create(&in->committer, NULL, committer_main, in);
    if (e)
        return s2f_fail(err, S2F_ENOMEM, "cannot start the committer thread: %s", strerror(e));
    in->committer_started = 1;
    return S2F_OK;
}

s2f_code s2f_intake_new(const s2f_intake_options *opt, s2f_intake **out, s2f_error *err)
{
    *out = NULL;
    if (!opt || !opt->data_dir || !opt->queue_path)
        return s2f_fail(err, S2F_EUSAGE, "intake: data folder and queue path required");
    s2f_intake *in = calloc(1, sizeof *in);
    if (!in)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    in->opt = *opt;
    in->data_dir = strdup(opt->data_dir);
    in->queue_path = strdup(opt->queue_path);
    in->opt.data_dir = in->data_dir;
    in->opt.queue_path = in->queue_path;
    in->lock_fd = -1;
    pthread_mutex_init(&in->lock, NULL);
    pthread_mutex_init(&in->stats_lock, NULL);
    pthread_cond_init(&in->wake, NULL);
    pthread_cond_init(&in->done, NULL);
    s2f_code rc = !in->data_dir || !in->queue_path ? s2f_fail(err, S2F_ENOMEM, "out of memory")
                                                   : S2F_OK;
    int swept = 0;
    /* reads never wait in WAL mode; only the readiness probe's write lock does, briefly */
    s2f_queue_options stats_opt = {.busy_timeout_ms = 1000};
    if (!rc)
        rc = s2f_store_open(in->data_dir, &in->store, err); /* creates DIR when absent */
    if (!rc)
        rc = lock_folder(in, err);
    if (!rc && in->sole) /* another process's temporary files are files it is writing */
        rc = s2f_store_sweep(in->store, &swept, err);
    if (!rc && !opt->keep_exclusive)
        rc = s2f_intake_share(in, err);
    if (!rc)
        rc = s2f_queue_open(in->queue_path, NULL, &in->commit_q, err);
    if (!rc)
        rc = s2f_queue_open(in->queue_path, &stats_opt, &in->stats_q, err);
    if (!rc)
        rc = start_committer(in, err);
    if (rc) {
        s2f_intake_free(in);
        return rc;
    }
    if (swept)
        s2f_gw_logf(in->opt.log, S2F_LOG_INFO, "intake: removed %d unfinished files of %s",
                    swept, s2f_store_dir(in->store));
    *out = in;
    return S2F_OK;
}

void s2f_intake_free(s2f_intake *in)
{
    if (!in)
        return;
    if (in->committer_started) {
        pthread_mutex_lock(&in->lock);
        in->stop = 1;
        pthread_cond_broadcast(&in->wake);
        pthread_mutex_unlock(&in->lock);
        pthread_join(in->committer, NULL);
        if (in->commits)
            s2f_gw_logf(in->opt.log, S2F_LOG_INFO,
                        "intake: %lld receivers' commits made in %lld transactions",
                        in->batches, in->commits);
    }
    s2f_queue_close(in->commit_q);
    s2f_queue_close(in->stats_q);
    s2f_store_close(in->store);
    if (in->lock_fd >= 0)
        close(in->lock_fd); /* releases the lock */
    pthread_cond_destroy(&in->wake);
    pthread_cond_destroy(&in->done);
    pthread_mutex_destroy(&in->lock);
    pthread_mutex_destroy(&in->stats_lock);
    free(in->data_dir);
    free(in->queue_path);
    free(in);
}
