/*
 * bench/stow_load.c - the load generator of bench/stow.sh (not part of the build, not a
 * test): STOW-RS requests, one SR per request, over C keep-alive connections, and a
 * trivial HTTP sink to measure the generator's own ceiling.
 *
 *   stow_load send HOST PORT CONNS LISTFILE [PID EVERY]
 *       POSTs every file named in LISTFILE (one path a line) to
 *       http://HOST:PORT/dicom-web/studies as multipart/related; type="application/dicom"
 *       with a Content-Length, CONNS threads each on its own keep-alive connection taking
 *       the next file from a shared counter (a new connection when the server closes one).
 *       Each file is read when its request is made (page cache), so memory stays small.
 *       With PID and EVERY: after every EVERY acknowledged (200) requests, prints
 *       `sample ACKED rss_kib=R hwm_kib=H` from /proc/PID/status.
 *       Last line: `done ok=N failed=F seconds=S per_s=R` (S from the first connection to
 *       the last answer); exit 0 when every request got 200, 1 otherwise (the first few
 *       other answers are printed on stderr).
 *   stow_load sink PORT
 *       A thread-per-connection HTTP/1.1 server on 127.0.0.1:PORT (0 = any) answering every
 *       request 200 with a fixed small application/dicom+json body after reading its
 *       Content-Length body; prints `port P` once listening; runs until killed.
 *
 * Bounds: answer headers 64 KiB, answer bodies 16 MiB, request files 64 MiB; a receive or
 * send blocked for 60 s ends the run with an error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD (64 * 1024)
#define MAX_BODY (16L * 1024 * 1024)
#define MAX_FILE (64L * 1024 * 1024)
#define BOUNDARY "sr2fhir-bench-7f3a9c1e5b"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int set_timeouts(int fd)
{
    struct timeval tv = { 60, 0 };
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) |
           setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) |
           setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A connection's receive buffer: bytes [pos, len) not yet consumed. */
typedef struct conn {
    int fd;
    char *buf;
    size_t pos, len, cap;
} conn;

static int fill(conn *c)
{
    if (c->pos > 0) {
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    if (c->len == c->cap) return -1;
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c->len += (size_t)r;
        return 0;
    }
}

/* Reads one header block; *head points at it (NUL-terminated in place), *hlen its length. */
static int read_head(conn *c, char **head)
{
    for (;;) {
        char *e = memmem(c->buf + c->pos, c->len - c->pos, "\r\n\r\n", 4);
        if (e) {
            *e = '\0';
            *head = c->buf + c->pos;
            c->pos = (size_t)(e + 4 - c->buf);
            return 0;
        }
        if (c->len - c->pos >= MAX_HEAD || fill(c) != 0) return -1;
    }
}

/* The value of header `name` in a header block, or NULL (points into the block). */
static const char *header(const char *head, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    const char *p = strstr(head, "\r\n");
    while (p) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1, *end;
            while (*v == ' ' || *v == '\t') v++;
            end = strstr(v, "\r\n");
            *vlen = end ? (size_t)(end - v) : strlen(v);
            return v;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

/* Skips n body bytes. */
static int skip(conn *c, long n)
{
    while (n > 0) {
        if (c->pos == c->len && fill(c) != 0) return -1;
        size_t k = c->len - c->pos;
        if ((long)k > n) k = (size_t)n;
        c->pos += k;
        n -= (long)k;
    }
    return 0;
}

static int read_line(conn *c, char *out, size_t cap)
{
    for (;;) {
        char *e = memmem(c->buf + c->pos, c->len - c->pos, "\r\n", 2);
        if (e) {
            size_t n = (size_t)(e - (c->buf + c->pos));
            if (n >= cap) return -1;
            memcpy(out, c->buf + c->pos, n);
            out[n] = '\0';
            c->pos += n + 2;
            return 0;
        }
        if (c->len - c->pos >= 256 || fill(c) != 0) return -1;
    }
}

/* Reads the body of a message whose header block is `head`; *close set when the peer
 * ends the connection after it. */
static int read_body(conn *c, const char *head, int *close_after)
{
    size_t vl;
    const char *v = header(head, "Connection", &vl);
    *close_after = v && vl == 5 && strncasecmp(v, "close", 5) == 0;
    v = header(head, "Transfer-Encoding", &vl);
    if (v && vl >= 7 && strncasecmp(v, "chunked", 7) == 0) {
        long total = 0;
        char line[300];
        for (;;) {
            if (read_line(c, line, sizeof line) != 0) return -1;
            long n = strtol(line, NULL, 16);
            if (n < 0 || n > MAX_BODY - total) return -1;
            total += n;
            if (n == 0) break;
            if (skip(c, n + 2) != 0) return -1;
        }
        do {   /* trailers up to the empty line */
            if (read_line(c, line, sizeof line) != 0) return -1;
        } while (line[0] != '\0');
        return 0;
    }
    v = header(head, "Content-Length", &vl);
    if (!v) return *close_after ? 0 : -1;
    long n = strtol(v, NULL, 10);
    if (n < 0 || n > MAX_BODY) return -1;
    return skip(c, n);
}

/* ---- send ---------------------------------------------------------------------------- */

typedef struct run {
    struct sockaddr_in addr;
    char host[64];
    char **files;
    long nfiles;
    atomic_long next, ok, failed, errors_printed;
    long pid, every;
} run;

static int connect_to(const run *r)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (set_timeouts(fd) != 0 ||
        connect(fd, (const struct sockaddr *)&r->addr, sizeof r->addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void sample(const run *r, long acked)
{
    char path[64], line[256];
    long rss = -1, hwm = -1;
    snprintf(path, sizeof path, "/proc/%ld/status", r->pid);
    FILE *f = fopen(path, "r");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "VmRSS:", 6) == 0) rss = strtol(line + 6, NULL, 10);
            if (strncmp(line, "VmHWM:", 6) == 0) hwm = strtol(line + 6, NULL, 10);
        }
        fclose(f);
    }
    printf("sample %ld rss_kib=%ld hwm_kib=%ld\n", acked, rss, hwm);
    fflush(stdout);
}

static void *sender(void *arg)
{
    run *r = arg;
    conn c = { -1, malloc(MAX_HEAD + 4096), 0, 0, MAX_HEAD + 4096 };
    size_t fcap = 1 << 20;
    char *fbuf = malloc(fcap);
    if (!c.buf || !fbuf) { fprintf(stderr, "stow_load: out of memory\n"); exit(2); }
    for (;;) {
        long i = atomic_fetch_add(&r->next, 1);
        if (i >= r->nfiles) break;
        int fd = open(r->files[i], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size > MAX_FILE) {
            fprintf(stderr, "stow_load: cannot read %s\n", r->files[i]);
            exit(2);
        }
        if ((size_t)st.st_size > fcap) {
            fcap = (size_t)st.st_size;
            fbuf = realloc(fbuf, fcap);
            if (!fbuf) { fprintf(stderr, "stow_load: out of memory\n"); exit(2); }
        }
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t k = read(fd, fbuf + got, (size_t)st.st_size - got);
            if (k <= 0) { fprintf(stderr, "stow_load: cannot read %s\n", r->files[i]); exit(2); }
            got += (size_t)k;
        }
        close(fd);
        static const char part_head[] = "--" BOUNDARY "\r\nContent-Type: application/dicom\r\n\r\n";
        static const char part_tail[] = "\r\n--" BOUNDARY "--\r\n";
        char head[512];
        int hn = snprintf(head, sizeof head,
            "POST /dicom-web/studies HTTP/1.1\r\nHost: %s\r\n"
            "Content-Type: multipart/related; type=\"application/dicom\"; boundary=" BOUNDARY "\r\n"
            "Accept: application/dicom+json\r\nContent-Length: %zu\r\n\r\n",
            r->host, sizeof part_head - 1 + got + sizeof part_tail - 1);
        for (int attempt = 0;; attempt++) {
            if (c.fd < 0) {
                c.fd = connect_to(r);
                c.pos = c.len = 0;
                if (c.fd < 0) { fprintf(stderr, "stow_load: connect: %s\n", strerror(errno)); exit(2); }
            }
            struct iovec iov[4] = { { head, (size_t)hn }, { (void *)part_head, sizeof part_head - 1 },
                                    { fbuf, got }, { (void *)part_tail, sizeof part_tail - 1 } };
            size_t total = (size_t)hn + sizeof part_head - 1 + got + sizeof part_tail - 1, sent = 0;
            int bad = 0;
            while (sent < total) {   /* writev, then the rest piece by piece */
                ssize_t w = writev(c.fd, iov, 4);
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) { bad = 1; break; }
                sent += (size_t)w;
                size_t skipn = (size_t)w;
                for (int k = 0; k < 4; k++) {
                    size_t t = skipn < iov[k].iov_len ? skipn : iov[k].iov_len;
                    iov[k].iov_base = (char *)iov[k].iov_base + t;
                    iov[k].iov_len -= t;
                    skipn -= t;
                }
            }
            char *ans;
            int close_after = 0;
            if (!bad && read_head(&c, &ans) == 0 && read_body(&c, ans, &close_after) == 0) {
                int status = 0;
                sscanf(ans, "HTTP/1.%*d %d", &status);
                if (status == 200) {
                    long acked = atomic_fetch_add(&r->ok, 1) + 1;
                    if (r->every > 0 && acked % r->every == 0) sample(r, acked);
                } else {
                    atomic_fetch_add(&r->failed, 1);
                    if (atomic_fetch_add(&r->errors_printed, 1) < 5)
                        fprintf(stderr, "stow_load: %s: HTTP %d\n", r->files[i], status);
                }
                if (close_after) { close(c.fd); c.fd = -1; }
                break;
            }
            /* the server closed a kept-alive connection before answering: once more */
            close(c.fd);
            c.fd = -1;
            if (attempt == 1) {
                atomic_fetch_add(&r->failed, 1);
                fprintf(stderr, "stow_load: %s: no answer\n", r->files[i]);
                break;
            }
        }
    }
    if (c.fd >= 0) close(c.fd);
    free(c.buf);
    free(fbuf);
    return NULL;
}

static int cmd_send(int argc, char **argv)
{
    static run r;
    if (argc != 6 && argc != 8) return -1;
    memset(&r.addr, 0, sizeof r.addr);
    r.addr.sin_family = AF_INET;
    r.addr.sin_port = htons((unsigned short)atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &r.addr.sin_addr) != 1) return -1;
    snprintf(r.host, sizeof r.host, "%s:%s", argv[2], argv[3]);
    int conns = atoi(argv[4]);
    if (conns < 1 || conns > 256) return -1;
    if (argc == 8) { r.pid = atol(argv[6]); r.every = atol(argv[7]); }
    FILE *f = fopen(argv[5], "r");
    if (!f) { fprintf(stderr, "stow_load: cannot open %s\n", argv[5]); return 2; }
    char line[4096];
    long cap = 1024;
    r.files = malloc((size_t)cap * sizeof *r.files);
    while (r.files && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!line[0]) continue;
        if (r.nfiles == cap) r.files = realloc(r.files, (size_t)(cap *= 2) * sizeof *r.files);
        if (!r.files || !(r.files[r.nfiles++] = strdup(line))) break;
    }
    fclose(f);
    if (!r.files) { fprintf(stderr, "stow_load: out of memory\n"); return 2; }
    pthread_t th[256];
    double t0 = now_s();
    for (int i = 0; i < conns; i++)
        if (pthread_create(&th[i], NULL, sender, &r) != 0) { fprintf(stderr, "stow_load: thread\n"); return 2; }
    for (int i = 0; i < conns; i++) pthread_join(th[i], NULL);
    double s = now_s() - t0;
    long ok = atomic_load(&r.ok), failed = atomic_load(&r.failed);
    printf("done ok=%ld failed=%ld seconds=%.3f per_s=%.1f\n", ok, failed, s, (double)ok / s);
    return failed == 0 && ok == r.nfiles ? 0 : 1;
}

/* ---- sink ---------------------------------------------------------------------------- */

static void *sink_conn(void *arg)
{
    conn c = { (int)(long)arg, malloc(MAX_HEAD + 65536), 0, 0, MAX_HEAD + 65536 };
    static const char answer[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\nContent-Length: 2\r\n\r\n{}";
    char *head;
    set_timeouts(c.fd);
    while (c.buf && read_head(&c, &head) == 0) {
        size_t vl;
        const char *v = header(head, "Content-Length", &vl);
        if (!v || skip(&c, strtol(v, NULL, 10)) != 0) break;
        if (write_all(c.fd, answer, sizeof answer - 1) != 0) break;
    }
    close(c.fd);
    free(c.buf);
    return NULL;
}

static int cmd_sink(int argc, char **argv)
{
    if (argc != 3) return -1;
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])) };
    socklen_t al = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 128) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) != 0) {
        fprintf(stderr, "stow_load: sink: %s\n", strerror(errno));
        return 2;
    }
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) continue;
        pthread_t t;
        if (pthread_create(&t, NULL, sink_conn, (void *)(long)fd) != 0) { close(fd); continue; }
        pthread_detach(t);
    }
}

int main(int argc, char **argv)
{
    int rc = -1;
    if (argc >= 2 && strcmp(argv[1], "send") == 0) rc = cmd_send(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "sink") == 0) rc = cmd_sink(argc, argv);
    if (rc < 0) {
        fprintf(stderr, "usage: stow_load send HOST PORT CONNS LISTFILE [PID EVERY]\n"
                        "       stow_load sink PORT\n");
        return 2;
    }
    return rc;
}
