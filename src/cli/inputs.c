/*
 * inputs.c - the input list of `convert` and `send`: command-line arguments with folders
 * expanded recursively (regular files, name order within each folder, hidden entries
 * skipped), "-" kept as standard input.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static int add_input(cli_inputs *in, const char *path)
{
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 16;
        char **p = realloc(in->v, cap * sizeof *p);
        if (!p)
            return 0;
        in->v = p;
        in->cap = cap;
    }
    if (!(in->v[in->n] = strdup(path)))
        return 0;
    in->n++;
    return 1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the regular files under dir, recursively, in name order; 0 when memory ran out. */
static int add_folder(cli_inputs *in, const char *dir, int depth)
{
    if (depth > 64)
        return 1;
    DIR *d = opendir(dir);
    if (!d) {
        cli_error(dir, S2F_EIO, "cannot open folder: %s", strerror(errno));
        return 1;
    }
    size_t first = in->n;
    struct dirent *de;
    int ok = 1;
    while (ok && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            ok = add_folder(in, path, depth + 1);
        else if (S_ISREG(st.st_mode))
            ok = add_input(in, path);
    }
    closedir(d);
    qsort(in->v + first, in->n - first, sizeof *in->v, by_name);
    return ok;
}

int cli_is_folder(const char *path)
{
    struct stat st;
    return strcmp(path, "-") && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cli_inputs_collect(cli_inputs *in, char **args, int n, int *any_folder)
{
    for (int i = 0; i < n; i++) {
        int folder = cli_is_folder(args[i]);
        if (any_folder)
            *any_folder |= folder;
        if (!(folder ? add_folder(in, args[i], 0) : add_input(in, args[i])))
            return 0;
    }
    return 1;
}

void cli_inputs_free(cli_inputs *in)
{
    for (size_t i = 0; i < in->n; i++)
        free(in->v[i]);
    free(in->v);
    memset(in, 0, sizeof *in);
}
