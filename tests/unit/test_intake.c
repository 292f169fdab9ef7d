/*
 * test_intake.c - the receivers' one way into the queue (src/gateway/intake.c, issues 11-13):
 * classification of received objects, commits (created, duplicates, failure removes the
 * files), back-pressure, readiness and the audit log's appends.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "gateway/intake.h"
#include "gateway/queue.h"
#include "part10_build.h"

#define SR_CLASS "1.2.840.10008.5.1.4.1.1.88.33"
#define CT_CLASS "1.2.840.10008.5.1.4.1.1.2"
#define STUDY "1.2.826.0.1.3680043.8.498.1"

typedef struct fixture {
    char dir[64], queue[PATH_MAX], audit[PATH_MAX];
    int audit_fd;
    atomic_int wakes;
    s2f_intake *in;
} fixture;

static void woke(void *ctx)
{
    atomic_fetch_add(&((fixture *)ctx)->wakes, 1);
}

static fixture *open_fixture(long long high_water, unsigned long long min_free)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/s2f-intake-XXXXXX");
    if (!mkdtemp(f->dir))
        return NULL;
    snprintf(f->queue, sizeof f->queue, "%s/queue.sqlite", f->dir);
    snprintf(f->audit, sizeof f->audit, "%s/audit.jsonl", f->dir);
    f->audit_fd = open(f->audit, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    s2f_intake_options o = {.data_dir = f->dir, .queue_path = f->queue,
                            .high_water = high_water, .min_free_bytes = min_free,
                            .audit_fd = f->audit_fd, .on_enqueued = woke, .on_enqueued_ctx = f};
    s2f_error err = {0};
    if (s2f_intake_new(&o, &f->in, &err) != S2F_OK) {
        fprintf(stderr, "intake: %s\n", err.message);
        return NULL;
    }
    return f;
}

static int count_files(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/incoming", dir);
    DIR *d = opendir(path);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void close_fixture(fixture *f)
{
    if (!f)
        return;
    s2f_intake_free(f->in);
    close(f->audit_fd);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
}

/* A sealed file of the store holding `b`. */
static int stored(fixture *f, buf b, s2f_store_file *file)
{
    s2f_error err = {0};
    s2f_store *st = s2f_intake_store(f->in);
    int ok = s2f_store_begin(st, ".dcm", file, &err) == S2F_OK &&
             s2f_store_write(file, b.p, b.n, &err) == S2F_OK &&
             s2f_store_seal(file, &err) == S2F_OK;
    free(b.p);
    return ok;
}

static s2f_queue_stats stats(fixture *f)
{
    s2f_queue_stats st = {{0}};
    s2f_queue *q = NULL;
    s2f_error err = {0};
    if (s2f_queue_open(f->queue, NULL, &q, &err) == S2F_OK)
        s2f_queue_stats_get(q, &st, &err);
    s2f_queue_close(q);
    return st;
}

TEST(intake_classify_sr_and_others)
{
    char why[256];
    s2f_intake_header h;
    buf sr = part10(SR_CLASS, "1.2.3.4", STUDY), ct = part10(CT_CLASS, "1.2.3.5", STUDY);
    buf nostudy = part10(SR_CLASS, "1.2.3.4", ""); /* an empty Study Instance UID */
    unsigned a = s2f_intake_classify((const uint8_t *)sr.p, sr.n, 0, &h, why, sizeof why);
    s2f_intake_header h_ok = h;
    unsigned b = s2f_intake_classify((const uint8_t *)ct.p, ct.n, 0, &h, why, sizeof why);
    char why_ct[256];
    snprintf(why_ct, sizeof why_ct, "%s", why);
    unsigned c = s2f_intake_classify((const uint8_t *)"garbage!", 8, 0, &h, why, sizeof why);
    unsigned d = s2f_intake_classify((const uint8_t *)"", 0, 0, &h, why, sizeof why);
    unsigned e = s2f_intake_classify((const uint8_t *)nostudy.p, nostudy.n, 0, &h, why,
                                     sizeof why);
    free(sr.p);
    free(ct.p);
    free(nostudy.p);
    CHECK(a == 0);
    CHECK_STR(h_ok.sop_class, SR_CLASS);
    CHECK_STR(h_ok.sop_instance, "1.2.3.4");
    CHECK_STR(h_ok.study, STUDY);
    CHECK(b == S2F_FR_SOP_CLASS_NOT_SUPPORTED);
    CHECK_STR(why_ct, "SOP Class " CT_CLASS " is not a Structured Report");
    CHECK(c == S2F_FR_CANNOT_UNDERSTAND);
    CHECK(d == S2F_FR_CANNOT_UNDERSTAND);
    CHECK(e == S2F_FR_CANNOT_UNDERSTAND);
    CHECK_STR(why, "no valid Study Instance UID");
}

TEST(intake_uid_and_class_checks)
{
    CHECK(s2f_intake_uid_valid("1.2.3", 5));
    CHECK(!s2f_intake_uid_valid("1.2.a", 5));
    CHECK(!s2f_intake_uid_valid("", 0));
    char long_uid[66];
    memset(long_uid, '1', 65);
    long_uid[65] = 0;
    CHECK(s2f_intake_uid_valid(long_uid, 64));
    CHECK(!s2f_intake_uid_valid(long_uid, 65));
    CHECK(s2f_intake_is_sr_class("1.2.840.10008.5.1.4.1.1.88.11"));
    CHECK(s2f_intake_is_sr_class(SR_CLASS));
    CHECK(!s2f_intake_is_sr_class("1.2.840.10008.5.1.4.1.1.88."));
    CHECK(!s2f_intake_is_sr_class("1.2.840.10008.5.1.4.1.1.88.3x"));
    CHECK(!s2f_intake_is_sr_class(CT_CLASS));
}

/* Two items of one UID in one commit: one job, the second file removed; a later commit
 * of the same UID while the job is pending: no new job either. Workers woken once. */
TEST(intake_commit_creates_and_deduplicates)
{
    fixture *f = open_fixture(1000, 0);
    CHECK(f);
    s2f_store_file a, b, c;
    int ok = stored(f, part10(SR_CLASS, "1.2.3.4", STUDY), &a) &&
             stored(f, part10(SR_CLASS, "1.2.3.4", STUDY), &b) &&
             stored(f, part10(SR_CLASS, "1.2.3.6", STUDY), &c);
    s2f_intake_item items[3] = {{&a, "1.2.3.4", 0, false}, {&b, "1.2.3.4", 0, false},
                                {&c, "1.2.3.6", 0, false}};
    s2f_error err = {0};
    s2f_code rc = s2f_intake_commit(f->in, items, 3, "TEST 127.0.0.1", &err);
    s2f_store_file d;
    ok = ok && stored(f, part10(SR_CLASS, "1.2.3.6", STUDY), &d);
    s2f_intake_item again = {&d, "1.2.3.6", 0, false};
    s2f_code rc2 = s2f_intake_commit(f->in, &again, 1, "TEST", &err);
    int files = count_files(f->dir), wakes = atomic_load(&f->wakes);
    s2f_queue_stats st = stats(f);
    close_fixture(f);
    CHECK(ok);
    CHECK(rc == S2F_OK && rc2 == S2F_OK);
    CHECK(items[0].created && !items[1].created && items[2].created);
    CHECK(items[1].job_id == items[0].job_id && items[2].job_id != items[0].job_id);
    CHECK(!again.created && again.job_id == items[2].job_id);
    CHECK(st.count[S2F_JOB_PENDING] == 2);
    CHECK(files == 2);
    CHECK(wakes == 1);
}

/* A queue that cannot be written: the commit fails and leaves no file behind. */
TEST(intake_commit_failure_removes_files)
{
    fixture *f = open_fixture(1000, 0);
    CHECK(f);
    s2f_store_file a;
    int ok = stored(f, part10(SR_CLASS, "1.2.3.4", STUDY), &a);
    sqlite3 *db = NULL;
    int locked = sqlite3_open(f->queue, &db) == SQLITE_OK &&
                 sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK;
    s2f_intake_item item = {&a, "1.2.3.4", 0, false};
    s2f_error err = {0};
    s2f_code rc = s2f_intake_commit(f->in, &item, 1, "TEST", &err); /* waits the busy timeout */
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    int files = count_files(f->dir);
    s2f_queue_stats st = stats(f);
    close_fixture(f);
    CHECK(ok && locked);
    CHECK(rc == S2F_EIO);
    CHECK(files == 0);
    CHECK(st.count[S2F_JOB_PENDING] == 0);
}

/* Busy above the high-water mark (counting jobs created since the last read) and below
 * the free-disk minimum; readiness fails below the minimum too. */
TEST(intake_busy_and_check)
{
    fixture *f = open_fixture(0, 0);
    CHECK(f);
    char buf_[256];
    const char *before = s2f_intake_busy(f->in, buf_, sizeof buf_);
    s2f_store_file a;
    int ok = stored(f, part10(SR_CLASS, "1.2.3.4", STUDY), &a);
    s2f_intake_item item = {&a, "1.2.3.4", 0, false};
    s2f_error err = {0};
    s2f_code rc = s2f_intake_commit(f->in, &item, 1, "TEST", &err);
    const char *after = s2f_intake_busy(f->in, buf_, sizeof buf_);
    char why[256];
    snprintf(why, sizeof why, "%s", after ? after : "");
    s2f_code ready = s2f_intake_check(f->in, &err);
    close_fixture(f);
    fixture *g = open_fixture(1000, ~0ull);
    CHECK(g);
    const char *full = s2f_intake_busy(g->in, buf_, sizeof buf_);
    s2f_code ready_full = s2f_intake_check(g->in, &err);
    close_fixture(g);
    CHECK(ok && rc == S2F_OK);
    CHECK(before == NULL);
    CHECK_STR(why, "queue above its high-water mark (1 jobs waiting)");
    CHECK(ready == S2F_OK);
    CHECK(full != NULL && strstr(full, "free disk below the minimum"));
    CHECK(ready_full == S2F_EIO);
}

TEST(intake_audit_appends_whole_lines)
{
    fixture *f = open_fixture(1000, 0);
    CHECK(f);
    s2f_intake_audit(f->in, "{\"a\":1}\n", 8);
    s2f_intake_audit(f->in, "{\"b\":2}\n", 8);
    char text[64] = {0};
    FILE *in = fopen(f->audit, "r");
    size_t n = in ? fread(text, 1, sizeof text - 1, in) : 0;
    if (in)
        fclose(in);
    close_fixture(f);
    CHECK(n == 16);
    CHECK_STR(text, "{\"a\":1}\n{\"b\":2}\n");
}

static s2f_intake *second_intake(const fixture *f)
{
    s2f_intake_options o = {.data_dir = f->dir, .queue_path = f->queue, .high_water = 1000,
                            .audit_fd = -1};
    s2f_intake *in = NULL;
    s2f_error err = {0};
    if (s2f_intake_new(&o, &in, &err) != S2F_OK)
        fprintf(stderr, "intake: %s\n", err.message);
    return in;
}

/* Two intakes on one data folder (`serve` and `pull --data`): the second is not the sole
 * user and leaves the first's file being written alone; once both closed, the next one is
 * sole again and removes what is left of it (a crash's leftover). */
TEST(intake_shared_folder_spares_others_files)
{
    fixture *f = open_fixture(1000, 0);
    CHECK(f);
    s2f_store_file writing;
    s2f_error err = {0};
    s2f_code begun = s2f_store_begin(s2f_intake_store(f->in), ".dcm", &writing, &err);
    int first_sole = s2f_intake_sole(f->in);
    s2f_intake *second = second_intake(f);
    int second_sole = second ? s2f_intake_sole(second) : -1;
    int files_while_shared = count_files(f->dir);
    s2f_intake_free(second);
    if (writing.fd >= 0)
        close(writing.fd); /* the file stays as a crash would leave it */
    s2f_intake_free(f->in);
    f->in = second_intake(f);
    int third_sole = f->in ? s2f_intake_sole(f->in) : -1;
    int files_after = count_files(f->dir);
    close_fixture(f);
    CHECK(begun == S2F_OK);
    CHECK(first_sole == 1 && second_sole == 0 && third_sole == 1);
    CHECK(files_while_shared == 1);
    CHECK(files_after == 0);
}

int main(void)
{
    RUN(intake_classify_sr_and_others);
    RUN(intake_uid_and_class_checks);
    RUN(intake_commit_creates_and_deduplicates);
    RUN(intake_commit_failure_removes_files);
    RUN(intake_busy_and_check);
    RUN(intake_audit_appends_whole_lines);
    RUN(intake_shared_folder_spares_others_files);
    return check_failed_total != 0;
}
