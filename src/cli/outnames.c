/*
 * outnames.c - the names of the Bundles `convert` writes into a folder (issue 9 defect 3).
 *
 * An input found in a folder keeps its place: IN/a/report.dcm -> OUT/a/report.json (the
 * subfolders are mirrored); a file named on the command line goes to OUT/NAME.json. When
 * two inputs would get the same name (report.dcm and report.json beside each other), each
 * of them keeps its whole file name instead: report.dcm.json, report.json.json. A name
 * still shared after that (two inputs named alike in different arguments) is refused for
 * all but the first input, as is a name that is one of the inputs themselves: nothing is
 * overwritten silently, and "N converted" is N files written.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

typedef struct entry {
    const char *key;
    size_t index;
} entry;

static int by_key(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* The input's path below its folder argument, or its file name. */
static const char *relative_name(const cli_inputs *in, size_t i)
{
    if (in->root_len[i])
        return in->v[i] + in->root_len[i];
    const char *s = strrchr(in->v[i], '/');
    return s ? s + 1 : in->v[i];
}

/* OUT/rel.json, with rel's extension left out when whole is 0. */
static char *name_for(const char *out, size_t out_len, const char *rel, int whole)
{
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    const char *dot = strrchr(base, '.');
    size_t n = !whole && dot && dot != base ? (size_t)(dot - rel) : strlen(rel);
    char *p = malloc(out_len + n + 7);
    if (p) {
        memcpy(p, out, out_len);
        p[out_len] = '/';
        memcpy(p + out_len + 1, rel, n);
        memcpy(p + out_len + 1 + n, ".json", 6);
    }
    return p;
}

/* Sorts the names; calls mark(e, i) for every entry i that shares its name with the one
 * before it (the first of each run, in input order, is left alone). */
static void sort_runs(entry *e, size_t n, cli_outname *names, int shared_whole)
{
    qsort(e, n, sizeof *e, by_key);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(e[i].key, e[i - 1].key))
            continue;
        if (shared_whole) { /* both ends of the run keep their whole names */
            names[e[i - 1].index].clash = 1;
            names[e[i].index].clash = 1;
        } else {
            size_t first = i - 1;
            while (first && !strcmp(e[first - 1].key, e[i].key))
                first--;
            names[e[i].index].clash = e[first].index + 2; /* refused below */
        }
    }
}

typedef struct file_id {
    dev_t dev;
    ino_t ino;
    size_t index;
} file_id;

static int by_id(const void *a, const void *b)
{
    const file_id *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Refuses a name that is one of the inputs (by device and inode). */
static int refuse_inputs(const cli_inputs *in, cli_outname *names)
{
    file_id *ids = malloc((in->n + 1) * sizeof *ids);
    size_t n = 0;
    struct stat st;
    if (!ids)
        return -1;
    for (size_t i = 0; i < in->n; i++)
        if (strcmp(in->v[i], "-") && stat(in->v[i], &st) == 0)
            ids[n++] = (file_id){st.st_dev, st.st_ino, i};
    qsort(ids, n, sizeof *ids, by_id);
    for (size_t i = 0; i < in->n; i++) {
        if (!names[i].path || lstat(names[i].path, &st) != 0)
            continue;
        file_id key = {st.st_dev, st.st_ino, 0};
        const file_id *hit = n ? bsearch(&key, ids, n, sizeof *ids, by_id) : NULL;
        if (hit) {
            free(names[i].path);
            names[i].path = NULL;
            names[i].clash = hit->index;
        }
    }
    free(ids);
    return 0;
}

int cli_outnames_plan(const cli_inputs *in, const char *out, cli_outname **result)
{
    size_t out_len = strlen(out), n = in->n;
    while (out_len > 1 && out[out_len - 1] == '/')
        out_len--;
    cli_outname *names = calloc(n + 1, sizeof *names);
    entry *e = calloc(n + 1, sizeof *e);
    int ok = names && e;
    for (size_t i = 0; ok && i < n; i++)
        ok = (names[i].path = name_for(out, out_len, relative_name(in, i), 0)) != NULL;
    for (size_t i = 0; ok && i < n; i++)
        e[i] = (entry){names[i].path, i};
    if (ok) /* pass 1: names shared -> whole names (clash = 1 marks them) */
        sort_runs(e, n, names, 1);
    for (size_t i = 0; ok && i < n; i++) {
        if (names[i].clash != 1)
            continue;
        free(names[i].path);
        names[i].clash = 0;
        ok = (names[i].path = name_for(out, out_len, relative_name(in, i), 1)) != NULL;
    }
    for (size_t i = 0; ok && i < n; i++)
        e[i] = (entry){names[i].path, i};
    if (ok) /* pass 2: a name still shared is refused (clash = first index + 2) */
        sort_runs(e, n, names, 0);
    for (size_t i = 0; ok && i < n; i++) {
        if (names[i].clash >= 2) {
            free(names[i].path);
            names[i].path = NULL;
            names[i].clash -= 2;
        }
    }
    ok = ok && refuse_inputs(in, names) == 0;
    free(e);
    if (!ok) {
        cli_outnames_free(names, n);
        return -1;
    }
    *result = names;
    return 0;
}

void cli_outnames_free(cli_outname *names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i].path);
    free(names);
}
