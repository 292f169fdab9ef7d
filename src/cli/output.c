/*
 * output.c - writing an output file safely (issue 9 defect 5): the content goes to a new
 * temporary file in the target's folder, created with O_CREAT|O_EXCL (mkstemp: an
 * unpredictable name, mode 0600, no symbolic link followed since O_EXCL refuses any
 * existing name), given the replaced file's mode (or the umask's default for a new file)
 * and renamed over the target only when everything was written. A failure removes the
 * temporary file and leaves the target as it was.
 *
 * A symbolic link is followed only when the user named it (-o LINK, also a dangling one:
 * its target is made by the rename); inside an output folder the entry itself is replaced.
 * An existing target that is not a regular file (/dev/null, a FIFO) is written in place.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

static s2f_code cannot(s2f_error *err, const char *what, const char *dest)
{
    return cli_fail(err, S2F_EIO, "cannot %s %s: %s", what, dest, strerror(errno));
}

/* The final target of dest, following symbolic links (at most 32) even to a name that does
 * not exist yet; 0 when a link cannot be read or the path grows too long. */
static int resolve_links(const char *dest, char *out, size_t cap)
{
    if (strlen(dest) >= cap)
        return errno = ENAMETOOLONG, 0;
    strcpy(out, dest);
    for (int hops = 0; hops < 32; hops++) {
        struct stat st;
        if (lstat(out, &st) != 0 || !S_ISLNK(st.st_mode))
            return 1;
        char link[PATH_MAX];
        ssize_t n = readlink(out, link, sizeof link - 1);
        if (n < 0)
            return 0;
        link[n] = 0;
        char *slash = strrchr(out, '/');
        size_t dir_len = link[0] == '/' || !slash ? 0 : (size_t)(slash - out) + 1;
        if (dir_len + (size_t)n >= cap)
            return errno = ENAMETOOLONG, 0;
        memmove(out + dir_len, link, (size_t)n + 1);
    }
    errno = ELOOP;
    return 0;
}

/* The mode a new file gets: 0666 less the umask (read without changing it for long: the
 * command is single-threaded). */
static mode_t default_mode(void)
{
    mode_t mask = umask(077);
    umask(mask);
    return 0666 & ~mask;
}

/* A temporary file beside target (same folder, so that rename is atomic). */
static int make_temp(cli_output *o, const char *target)
{
    const char *slash = strrchr(target, '/');
    size_t dir_len = slash ? (size_t)(slash - target) + 1 : 0;
    const char *name = target + dir_len;
    size_t cap = dir_len + strlen(name) + 16;
    if (!(o->tmp = malloc(cap)))
        return errno = ENOMEM, -1;
    /* ".NAME.XXXXXX": hidden, so a folder walk never takes it for an input; NAME cut so
     * that a 255-byte NAME still gives a valid file name */
    snprintf(o->tmp, cap, "%.*s.%.200s.XXXXXX", (int)dir_len, target, name);
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        free(o->tmp);
        o->tmp = NULL;
    }
    return fd;
}

s2f_code cli_output_open(cli_output *o, const char *dest, int follow, s2f_error *err)
{
    memset(o, 0, sizeof *o);
    char target[PATH_MAX];
    if (follow ? !resolve_links(dest, target, sizeof target) : strlen(dest) >= sizeof target)
        return cannot(err, "write", dest);
    if (!follow)
        strcpy(target, dest);
    struct stat st;
    int exists = lstat(target, &st) == 0;
    if (exists && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode) && !S_ISDIR(st.st_mode)) {
        if (!(o->f = fopen(target, "wb"))) /* a device or a FIFO: written in place */
            return cannot(err, "write", dest);
        return S2F_OK;
    }
    if (exists && S_ISDIR(st.st_mode))
        return errno = EISDIR, cannot(err, "write", dest);
    if (exists && S_ISREG(st.st_mode) && access(target, W_OK) != 0)
        return cannot(err, "write", dest); /* a read-only file is not replaced */
    int fd = make_temp(o, target);
    if (fd < 0)
        return cannot(err, "write in the folder of", dest);
    mode_t mode = exists && S_ISREG(st.st_mode) ? st.st_mode & 07777 : default_mode();
    if (fchmod(fd, mode) != 0 || !(o->f = fdopen(fd, "wb")) || !(o->path = strdup(target))) {
        s2f_code rc = cannot(err, "write", dest);
        if (!o->f)
            close(fd);
        cli_output_abort(o);
        return rc;
    }
    return S2F_OK;
}

s2f_code cli_output_commit(cli_output *o, const char *dest, s2f_error *err)
{
    s2f_code rc = S2F_OK;
    if (fflush(o->f) != 0 || ferror(o->f))
        rc = cannot(err, "write", dest);
    if (fclose(o->f) != 0 && !rc)
        rc = cannot(err, "write", dest);
    o->f = NULL;
    if (!rc && o->tmp && rename(o->tmp, o->path) != 0)
        rc = cannot(err, "write", dest);
    if (rc) {
        cli_output_abort(o);
        return rc;
    }
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
    return S2F_OK;
}

void cli_output_abort(cli_output *o)
{
    if (o->f)
        fclose(o->f);
    if (o->tmp)
        unlink(o->tmp);
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
}
