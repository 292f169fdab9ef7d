/*
 * orphans.c - the start-up sweep of orphan files in DIR/incoming (orphans.h; issue 11
 * gap 4): the names every job's path ends in, sorted, then each final-named file of the
 * folder looked up among them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/orphans.h"
#include "gateway/store.h"
#include "util/error.h"

#define FINAL_HEX 32          /* store.c: 32 random hex digits, then the suffix */
#define FINAL_SUFFIX_MAX 8
#define LIST_PAGE 100000

typedef char name_t[S2F_STORE_NAME_MAX + 1];

typedef struct names {
    name_t *v;
    size_t n, cap;
    int64_t last_id;
    size_t page;              /* jobs seen in this page */
    int oom;
} names;

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* A name store.c gives a committed file: 32 lower-case hex digits and ".xxx" (or none). */
static int is_final_name(const char *name)
{
    for (int i = 0; i < FINAL_HEX; i++)
        if (!is_hex(name[i]))
            return 0;
    const char *suffix = name + FINAL_HEX;
    size_t len = strlen(suffix);
    if (len == 0)
        return 1;
    if (suffix[0] != '.' || len > FINAL_SUFFIX_MAX)
        return 0;
    for (size_t i = 1; i < len; i++)
        if (suffix[i] == '/' || suffix[i] == '.')
            return 0;
    return 1;
}

/* s2f_queue_list's callback: keeps the last component of each job's path. */
static int collect(void *ctx, const s2f_job_info *info)
{
    names *ns = ctx;
    ns->last_id = info->id;
    ns->page++;
    const char *slash = strrchr(info->path, '/');
    const char *base = slash ? slash + 1 : info->path;
    if (strlen(base) > S2F_STORE_NAME_MAX || !is_final_name(base))
        return 0; /* cannot name a file the sweep would remove */
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 1024;
        name_t *v = realloc(ns->v, cap * sizeof *v);
        if (!v) {
            ns->oom = 1;
            return 1;
        }
        ns->v = v;
        ns->cap = cap;
    }
    memcpy(ns->v[ns->n++], base, strlen(base) + 1);
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Every job's name, sorted; S2F_OK only when all jobs were read. */
static s2f_code job_names(s2f_queue *q, names *ns, s2f_error *err)
{
    s2f_queue_filter f = {.state = S2F_JOB_NSTATES, .after_id = 0, .limit = LIST_PAGE};
    do {
        ns->page = 0;
        f.after_id = ns->last_id;
        s2f_code rc = s2f_queue_list(q, &f, collect, ns, err);
        if (rc)
            return rc;
        if (ns->oom)
            return s2f_fail(err, S2F_ENOMEM, "out of memory reading the jobs' file names");
    } while (ns->page == LIST_PAGE);
    if (ns->n)
        qsort(ns->v, ns->n, sizeof *ns->v, compare_names);
    return S2F_OK;
}

/* Removes the final-named regular files of the open folder `dirfd` not in `ns`. */
static s2f_code remove_unnamed(int dirfd, const char *dir, const names *ns, int64_t *removed,
                               s2f_error *err)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return s2f_fail(err, S2F_EIO, "cannot list %s: %s", dir, strerror(errno));
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (strlen(e->d_name) > S2F_STORE_NAME_MAX || !is_final_name(e->d_name) ||
            fstatat(dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (ns->n && bsearch(e->d_name, ns->v, ns->n, sizeof *ns->v, compare_names))
            continue;
        if (unlinkat(dirfd, e->d_name, 0) == 0)
            (*removed)++;
    }
    closedir(d);
    if (*removed && fsync(dirfd) != 0)
        return s2f_fail(err, S2F_EIO, "cannot sync %s: %s", dir, strerror(errno));
    return S2F_OK;
}

s2f_code s2f_orphans_sweep(const char *data_dir, s2f_queue *q, int64_t *removed,
                           s2f_error *err)
{
    int64_t n = 0;
    if (removed)
        *removed = 0;
    s2f_store *st = NULL;
    s2f_code rc = s2f_store_open(data_dir, &st, err);
    if (rc)
        return rc;
    names ns = {0};
    rc = job_names(q, &ns, err);
    if (!rc) {
        const char *dir = s2f_store_dir(st);
        int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dirfd < 0)
            rc = s2f_fail(err, S2F_EIO, "cannot open the folder %s: %s", dir, strerror(errno));
        else {
            rc = remove_unnamed(dirfd, dir, &ns, &n, err);
            close(dirfd);
        }
    }
    free(ns.v);
    s2f_store_close(st);
    if (removed)
        *removed = n;
    return rc;
}
