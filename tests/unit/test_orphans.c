/*
 * test_orphans.c - unit tests of the start-up sweep of orphan files (src/gateway/orphans.c,
 * issue 11 gap 4): a final-named file no job names is removed; files named by a job of any
 * state (also under another folder: the data folder was moved), temporary files, other
 * names, folders and symbolic links stay; the count is exact.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "gateway/orphans.h"

#define HEX_A "0123456789abcdef0123456789abcdef"
#define HEX_B "fedcba9876543210fedcba9876543210"
#define HEX_C "00000000000000000000000000000001"
#define HEX_D "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_E "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

typedef struct fixture {
    char dir[64];
    char inc[128];
    char db[128];
    s2f_queue *q;
} fixture;

static int touch(const fixture *f, const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", f->inc, name);
    FILE *out = fopen(p, "w");
    if (!out)
        return 0;
    fputs("x", out);
    return fclose(out) == 0;
}

static int present(const fixture *f, const char *name)
{
    char p[256];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", f->inc, name);
    return lstat(p, &sb) == 0;
}

static int job(fixture *f, const char *uid, const char *path)
{
    int64_t id = 0;
    bool created = false;
    s2f_error err = {0};
    return s2f_queue_enqueue(f->q, uid, path, "test", 100, &id, &created, &err) == S2F_OK &&
           created;
}

static int fixture_open(fixture *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/s2f-orphans-XXXXXX");
    if (!mkdtemp(f->dir))
        return 0;
    snprintf(f->inc, sizeof f->inc, "%s/incoming", f->dir);
    snprintf(f->db, sizeof f->db, "%s/queue.sqlite", f->dir);
    s2f_error err = {0};
    return mkdir(f->inc, 0700) == 0 && s2f_queue_open(f->db, NULL, &f->q, &err) == S2F_OK;
}

static void fixture_close(fixture *f)
{
    s2f_queue_close(f->q);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        printf("    could not remove %s\n", f->dir);
}

TEST(orphans_removed_named_kept)
{
    fixture f;
    int ok = fixture_open(&f);
    char path[256], moved[256];
    snprintf(path, sizeof path, "%s/" HEX_A ".dcm", f.inc);
    snprintf(moved, sizeof moved, "/old/data/incoming/" HEX_C ".json");
    ok = ok && touch(&f, HEX_A ".dcm") && touch(&f, HEX_B ".dcm") && touch(&f, HEX_C ".json") &&
         touch(&f, HEX_D) && touch(&f, HEX_E ".dcm") && touch(&f, "tmp-" HEX_B ".dcm") &&
         touch(&f, "notes.txt") && touch(&f, HEX_B ".toolongsuffix");
    char sub[256], link[256];
    snprintf(sub, sizeof sub, "%s/" HEX_D ".dcm", f.inc);
    snprintf(link, sizeof link, "%s/" HEX_E ".json", f.inc);
    ok = ok && mkdir(sub, 0700) == 0 && symlink("/etc/hostname", link) == 0;
    /* named: A (pending, its path as the store gives it), C (dead, in a moved folder),
     * E (done) */
    ok = ok && job(&f, "1.2.3.1", path) && job(&f, "1.2.3.2", moved);
    char e_path[256];
    snprintf(e_path, sizeof e_path, "%s/" HEX_E ".dcm", f.inc);
    ok = ok && job(&f, "1.2.3.3", e_path);
    s2f_job claimed;
    bool found = false;
    s2f_error err = {0};
    ok = ok && s2f_queue_claim(f.q, "w", 60, 100, &claimed, &found, &err) == S2F_OK && found;
    ok = ok && s2f_queue_claim(f.q, "w", 60, 100, &claimed, &found, &err) == S2F_OK && found &&
         s2f_queue_dead(f.q, &claimed, "permanent", "test", 101, &err) == S2F_OK;
    int64_t removed = -1;
    s2f_code rc = ok ? s2f_orphans_sweep(f.dir, f.q, &removed, &err) : S2F_EINTERNAL;
    if (rc)
        printf("    sweep: %s\n", err.message);
    int kept_named = present(&f, HEX_A ".dcm") && present(&f, HEX_C ".json") &&
                     present(&f, HEX_E ".dcm");
    int orphans_gone = !present(&f, HEX_B ".dcm") && !present(&f, HEX_D);
    int others_kept = present(&f, "tmp-" HEX_B ".dcm") && present(&f, "notes.txt") &&
                      present(&f, HEX_B ".toolongsuffix") && present(&f, HEX_D ".dcm") &&
                      present(&f, HEX_E ".json");
    /* a second sweep finds nothing */
    int64_t again = -1;
    s2f_code rc2 = s2f_orphans_sweep(f.dir, f.q, &again, &err);
    fixture_close(&f);
    CHECK(ok);
    CHECK(rc == S2F_OK);
    CHECK(removed == 2);
    CHECK(kept_named);
    CHECK(orphans_gone);
    CHECK(others_kept);
    CHECK(rc2 == S2F_OK && again == 0);
}

/* An empty folder and an empty queue: nothing to do. */
TEST(orphans_none)
{
    fixture f;
    int ok = fixture_open(&f);
    int64_t removed = -1;
    s2f_error err = {0};
    s2f_code rc = ok ? s2f_orphans_sweep(f.dir, f.q, &removed, &err) : S2F_EINTERNAL;
    fixture_close(&f);
    CHECK(ok && rc == S2F_OK && removed == 0);
}

int main(void)
{
    RUN(orphans_removed_named_kept);
    RUN(orphans_none);
    CHECK_DONE();
}
