/*
 * store.c - received files of the gateway, written durably (store.h).
 */
#define _DEFAULT_SOURCE 1 /* realpath */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "gateway/store.h"
#include "util/error.h"

struct s2f_store {
    int dirfd;      /* DIR/incoming, O_DIRECTORY */
    char *dir;      /* its absolute path */
};

static const char tmp_prefix[] = "tmp-";

/* Creates `path` (0700) when absent; a symbolic link or a non-folder is refused. */
static s2f_code make_dir(const char *path, s2f_error *err)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return s2f_fail(err, S2F_EIO, "cannot create the folder %s: %s", path, strerror(errno));
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return s2f_fail(err, S2F_EIO, "cannot read the folder %s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return s2f_fail(err, S2F_EIO, "%s is not a folder", path);
    return S2F_OK;
}

s2f_code s2f_store_open(const char *data_dir, s2f_store **out, s2f_error *err)
{
    *out = NULL;
    if (!data_dir || !*data_dir)
        return s2f_fail(err, S2F_EUSAGE, "store: no data folder");
    s2f_code rc = make_dir(data_dir, err);
    if (rc)
        return rc;
    char abs[PATH_MAX], inc[PATH_MAX + 16];
    if (!realpath(data_dir, abs))
        return s2f_fail(err, S2F_EIO, "cannot resolve the data folder %s: %s", data_dir,
                        strerror(errno));
    snprintf(inc, sizeof inc, "%s/incoming", abs);
    rc = make_dir(inc, err);
    if (rc)
        return rc;
    s2f_store *st = calloc(1, sizeof *st);
    if (!st || !(st->dir = strdup(inc))) {
        free(st);
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    }
    st->dirfd = open(inc, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (st->dirfd < 0) {
        rc = s2f_fail(err, S2F_EIO, "cannot open the folder %s: %s", inc, strerror(errno));
        free(st->dir);
        free(st);
        return rc;
    }
    *out = st;
    return S2F_OK;
}

void s2f_store_close(s2f_store *st)
{
    if (!st)
        return;
    close(st->dirfd);
    free(st->dir);
    free(st);
}

const char *s2f_store_dir(const s2f_store *st)
{
    return st->dir;
}

s2f_code s2f_store_sweep(s2f_store *st, int *removed, s2f_error *err)
{
    int n = 0, fd = dup(st->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return s2f_fail(err, S2F_EIO, "cannot list %s: %s", st->dir, strerror(errno));
    }
    rewinddir(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, tmp_prefix, sizeof tmp_prefix - 1) == 0 &&
            unlinkat(st->dirfd, e->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    if (removed)
        *removed = n;
    return S2F_OK;
}

/* 32 hex digits from the kernel's random source. */
static s2f_code random_hex(char out[33], s2f_error *err)
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t r = getrandom(b + got, sizeof b - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return s2f_fail(err, S2F_EIO, "no random bytes for a file name: %s", strerror(errno));
        }
        got += (size_t)r;
    }
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return S2F_OK;
}

s2f_code s2f_store_begin(s2f_store *st, const char *suffix, s2f_store_file *f, s2f_error *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    char hex[33];
    s2f_code rc = random_hex(hex, err);
    if (rc)
        return rc;
    if (!suffix || strlen(suffix) > 8)
        suffix = "";
    snprintf(f->tmp_name, sizeof f->tmp_name, "%s%s", tmp_prefix, hex);
    snprintf(f->final_name, sizeof f->final_name, "%s%s", hex, suffix);
    f->fd = openat(st->dirfd, f->tmp_name,
                   O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f->fd < 0) {
        rc = s2f_fail(err, S2F_EIO, "cannot create a file in %s: %s", st->dir, strerror(errno));
        f->tmp_name[0] = 0;
        return rc;
    }
    return S2F_OK;
}

s2f_code s2f_store_write(s2f_store_file *f, const void *data, size_t len, s2f_error *err)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(f->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return s2f_fail(err, S2F_EIO, "cannot write a received file: %s", strerror(errno));
        }
        p += w;
        len -= (size_t)w;
        f->size += (uint64_t)w;
    }
    return S2F_OK;
}

s2f_code s2f_store_map(s2f_store_file *f, const uint8_t **data, s2f_error *err)
{
    *data = NULL;
    if (f->size == 0)
        return S2F_OK;
    if (f->size > SIZE_MAX)
        return s2f_fail(err, S2F_ELIMIT, "received file too large to map");
    void *m = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, f->fd, 0);
    if (m == MAP_FAILED)
        return s2f_fail(err, S2F_EIO, "cannot map a received file: %s", strerror(errno));
    *data = m;
    return S2F_OK;
}

void s2f_store_unmap(s2f_store_file *f, const uint8_t *data)
{
    if (data)
        munmap((void *)data, (size_t)f->size);
}

s2f_code s2f_store_seal(s2f_store_file *f, s2f_error *err)
{
    if (f->fd < 0)
        return s2f_fail(err, S2F_EINTERNAL, "store: sealing a closed file");
    int rc = fsync(f->fd);
    int e = errno;
    close(f->fd);
    f->fd = -1;
    if (rc != 0)
        return s2f_fail(err, S2F_EIO, "cannot fsync a received file: %s", strerror(e));
    return S2F_OK;
}

s2f_code s2f_store_commit(s2f_store *st, s2f_store_file *f, s2f_error *err)
{
    if (f->fd >= 0 || !f->tmp_name[0] || f->committed)
        return s2f_fail(err, S2F_EINTERNAL, "store: committing a file that is not sealed");
    if (renameat(st->dirfd, f->tmp_name, st->dirfd, f->final_name) != 0)
        return s2f_fail(err, S2F_EIO, "cannot rename a received file in %s: %s", st->dir,
                        strerror(errno));
    f->committed = 1;
    return S2F_OK;
}

s2f_code s2f_store_sync(s2f_store *st, s2f_error *err)
{
    if (fsync(st->dirfd) != 0)
        return s2f_fail(err, S2F_EIO, "cannot fsync the folder %s: %s", st->dir, strerror(errno));
    return S2F_OK;
}

s2f_code s2f_store_path(const s2f_store *st, const s2f_store_file *f, char *buf, size_t cap,
                        s2f_error *err)
{
    int n = snprintf(buf, cap, "%s/%s", st->dir, f->committed ? f->final_name : f->tmp_name);
    if (n < 0 || (size_t)n >= cap)
        return s2f_fail(err, S2F_ELIMIT, "store: path too long");
    return S2F_OK;
}

void s2f_store_abort(s2f_store *st, s2f_store_file *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    if (f->tmp_name[0])
        unlinkat(st->dirfd, f->committed ? f->final_name : f->tmp_name, 0);
    f->tmp_name[0] = 0;
    f->committed = 0;
}

s2f_code s2f_store_free_bytes(s2f_store *st, unsigned long long *bytes, s2f_error *err)
{
    struct statvfs sv;
    if (fstatvfs(st->dirfd, &sv) != 0)
        return s2f_fail(err, S2F_EIO, "cannot read the free space of %s: %s", st->dir,
                        strerror(errno));
    *bytes = (unsigned long long)sv.f_bavail * (unsigned long long)sv.f_frsize;
    return S2F_OK;
}
