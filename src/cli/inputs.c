/*
 * inputs.c - the input list of `convert` and `send`: command-line arguments with folders
 * expanded recursively (regular files, name order within each folder, hidden entries
 * skipped), "-" kept as standard input.
 *
 * Issue 9 defect 4: symbolic links are followed, but each folder (device + inode) is read
 * once: a link back to a folder already read (a loop, or a second way to the same folder)
 * is skipped with one warning line, so a self-link neither recurses without end nor
 * converts a file twice. Files found in folders are taken once by device + inode too: a
 * second link to a file already listed is skipped with a warning (files named on the
 * command line are taken as named). Depth and the number of folders are bounded (CLI_MAX_DEPTH,
 * CLI_MAX_FOLDERS), with a warning when a bound is reached.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

#define CLI_MAX_DEPTH 64
#define CLI_MAX_FOLDERS 1000000

/* The folders read and the files found so far, by device and inode: an open-addressing
 * set (a folder and a file never share an inode on one device). */
typedef struct folder_id {
    dev_t dev;
    ino_t ino;
    char *path; /* where it was first read (a copy) */
    int used;
} folder_id;

typedef struct walk {
    cli_inputs *in;
    folder_id *seen;
    size_t n_seen, cap_seen;
    int limit_warned;
} walk;

static size_t id_hash(dev_t dev, ino_t ino)
{
    uint64_t h = ((uint64_t)dev * 0x9E3779B97F4A7C15u) ^ ((uint64_t)ino * 0xC2B2AE3D27D4EB4Fu);
    return (size_t)(h ^ (h >> 29));
}

static folder_id *find_slot(folder_id *set, size_t cap, dev_t dev, ino_t ino)
{
    size_t i = id_hash(dev, ino) & (cap - 1);
    while (set[i].used && !(set[i].dev == dev && set[i].ino == ino))
        i = (i + 1) & (cap - 1);
    return &set[i];
}

static int grow_seen(walk *w)
{
    size_t cap = w->cap_seen ? w->cap_seen * 2 : 64;
    folder_id *set = calloc(cap, sizeof *set);
    if (!set)
        return -1;
    for (size_t i = 0; i < w->cap_seen; i++)
        if (w->seen[i].used)
            *find_slot(set, cap, w->seen[i].dev, w->seen[i].ino) = w->seen[i];
    free(w->seen);
    w->seen = set;
    w->cap_seen = cap;
    return 0;
}

/* Marks the folder read or the file listed; NULL when it is new, else where it was met
 * first. *oom on memory failure. */
static const char *visit(walk *w, const struct stat *st, const char *path, int *oom)
{
    if ((w->n_seen + 1) * 2 > w->cap_seen && grow_seen(w)) {
        *oom = 1;
        return NULL;
    }
    folder_id *slot = find_slot(w->seen, w->cap_seen, st->st_dev, st->st_ino);
    if (slot->used)
        return slot->path;
    char *copy = strdup(path);
    if (!copy) {
        *oom = 1;
        return NULL;
    }
    *slot = (folder_id){st->st_dev, st->st_ino, copy, 1};
    w->n_seen++;
    return NULL;
}

static int add_input(cli_inputs *in, const char *path, size_t root_len)
{
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 16;
        char **p = realloc(in->v, cap * sizeof *p);
        if (!p)
            return -1;
        in->v = p;
        size_t *r = realloc(in->root_len, cap * sizeof *r);
        if (!r)
            return -1;
        in->root_len = r;
        in->cap = cap;
    }
    if (!(in->v[in->n] = strdup(path)))
        return -1;
    in->root_len[in->n++] = root_len;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The visible entry names of dir, sorted; NULL with *n = 0 when it cannot be read (said). */
static char **read_names(const char *dir, size_t *n, int *oom)
{
    DIR *d = opendir(dir);
    *n = 0;
    if (!d) {
        cli_error(dir, S2F_EIO, "cannot open folder: %s", strerror(errno));
        return NULL;
    }
    char **names = NULL;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (*n == cap) {
            char **p = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof *p);
            if (!p)
                break;
            names = p;
        }
        if (!(names[*n] = strdup(de->d_name)))
            break;
        (*n)++;
    }
    if (de)
        *oom = 1;
    closedir(d);
    if (*n)
        qsort(names, *n, sizeof *names, by_name);
    return names;
}

static int add_folder(walk *w, const char *dir, size_t root_len, int depth);

/* A file found in a folder: added unless a link to it was listed already. */
static int add_file(walk *w, const struct stat *st, const char *path, size_t root_len)
{
    int oom = 0;
    const char *first = visit(w, st, path, &oom);
    if (oom)
        return -1;
    if (first) {
        cli_error(path, 0, "warning: the same file as %s (a second link to it): skipped", first);
        return 0;
    }
    return add_input(w->in, path, root_len);
}

/* One entry of a folder: a file is added, a folder read, unless met already. */
static int add_entry(walk *w, const char *path, size_t root_len, int depth)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0; /* a dangling link, or gone since the listing */
    if (S_ISREG(st.st_mode))
        return add_file(w, &st, path, root_len);
    if (!S_ISDIR(st.st_mode))
        return 0;
    int oom = 0;
    const char *first = visit(w, &st, path, &oom);
    if (oom)
        return -1;
    if (first) {
        cli_error(path, 0, "warning: the folder %s was read already (a symbolic link loop, or a "
                  "second link to it): skipped", first);
        return 0;
    }
    if (depth >= CLI_MAX_DEPTH || w->n_seen > CLI_MAX_FOLDERS) {
        if (!w->limit_warned++)
            cli_error(path, 0, "warning: more than %d folders deep or %d folders: not read",
                      CLI_MAX_DEPTH, CLI_MAX_FOLDERS);
        return 0;
    }
    return add_folder(w, path, root_len, depth + 1);
}

/* Adds the regular files under dir, recursively, in name order; 0, or -1 when memory ran
 * out. */
static int add_folder(walk *w, const char *dir, size_t root_len, int depth)
{
    size_t n;
    int oom = 0;
    char **names = read_names(dir, &n, &oom);
    int rc = oom ? -1 : 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        int len = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!rc && len > 0 && (size_t)len < sizeof path)
            rc = add_entry(w, path, root_len, depth);
        else if (!rc)
            cli_error(dir, 0, "warning: a name in this folder makes a path of over %zu bytes: "
                      "skipped", sizeof path - 1);
        free(names[i]);
    }
    free(names);
    return rc;
}

int cli_is_folder(const char *path)
{
    struct stat st;
    return strcmp(path, "-") && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cli_make_folder(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return cli_error(path, S2F_EIO, "cannot create the data folder: path too long");
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return cli_error(path, S2F_EIO, "cannot create the data folder: %s",
                             strerror(errno));
        buf[i] = c;
    }
    return 0;
}

/* A folder named on the command line: read unless it was read already. */
static int add_root(walk *w, const char *dir)
{
    struct stat st;
    int oom = 0;
    const char *first = stat(dir, &st) == 0 ? visit(w, &st, dir, &oom) : NULL;
    if (oom)
        return -1;
    if (first) {
        cli_error(dir, 0, "warning: the folder %s was read already: skipped", first);
        return 0;
    }
    size_t root_len = strlen(dir);
    while (root_len > 1 && dir[root_len - 1] == '/')
        root_len--;
    return add_folder(w, dir, root_len + 1, 0);
}

int cli_inputs_collect(cli_inputs *in, char **args, int n, int *any_folder)
{
    walk w = {.in = in};
    int rc = 0;
    for (int i = 0; !rc && i < n; i++) {
        int folder = cli_is_folder(args[i]);
        if (any_folder)
            *any_folder |= folder;
        rc = folder ? add_root(&w, args[i]) : add_input(in, args[i], 0);
    }
    for (size_t i = 0; i < w.cap_seen; i++)
        free(w.seen[i].path);
    free(w.seen);
    return rc;
}

void cli_inputs_free(cli_inputs *in)
{
    for (size_t i = 0; i < in->n; i++)
        free(in->v[i]);
    free(in->v);
    free(in->root_len);
    memset(in, 0, sizeof *in);
}
