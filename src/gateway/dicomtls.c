/*
 * dicomtls.c - DICOM TLS (PS3.15 Annex B) for the DICOM receiver with OpenSSL (dicomtls.h):
 * TLS 1.2 or later, OpenSSL's default cipher list (the BCP 195 suites), optional required
 * client certificates; every read, write and the handshake on a non-blocking socket with
 * poll(2) and a deadline, so a silent or slow peer cannot hold a thread beyond it.
 */
#include "gateway/dicomtls.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "util/clock.h"
#include "util/error.h"

struct s2f_dtls {
    SSL_CTX *ctx;
};

struct s2f_dtls_conn {
    SSL *ssl;
    int fd;
};

/* OpenSSL's first queued reason as text (the queue emptied). */
static const char *ssl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (!e)
        snprintf(buf, cap, "%s", errno ? strerror(errno) : "unknown reason");
    else
        ERR_error_string_n(e, buf, cap);
    ERR_clear_error();
    return buf;
}

s2f_code s2f_dtls_new(const char *cert, const char *key, const char *client_ca,
                      s2f_dtls **out, s2f_error *err)
{
    char why[256];
    *out = NULL;
    s2f_dtls *t = calloc(1, sizeof *t);
    if (!t || !(t->ctx = SSL_CTX_new(TLS_server_method()))) {
        free(t);
        return s2f_fail(err, S2F_ENOMEM, "cannot create a TLS context");
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    const char *bad = NULL, *what = NULL;
    if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1)
        bad = cert, what = "certificate";
    else if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1)
        bad = key, what = "private key";
    else if (SSL_CTX_check_private_key(t->ctx) != 1)
        bad = key, what = "private key (it does not match the certificate)";
    else if (client_ca && SSL_CTX_load_verify_locations(t->ctx, client_ca, NULL) != 1)
        bad = client_ca, what = "client CA file";
    if (bad) {
        s2f_fail(err, S2F_EIO, "%s: cannot load the DICOM TLS %s: %s", bad, what,
                 ssl_reason(why, sizeof why));
        s2f_dtls_free(t);
        return err->code;
    }
    if (client_ca) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (names)
            SSL_CTX_set_client_CA_list(t->ctx, names);
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    *out = t;
    return S2F_OK;
}

void s2f_dtls_free(s2f_dtls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

/* Waits until fd is readable (want_write 0) or writable until deadline_ns: 1 ready, 0
 * time out, -1 error. */
static int wait_fd(int fd, int want_write, long long deadline_ns)
{
    for (;;) {
        long long left = (deadline_ns - s2f_mono_ns()) / 1000000;
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, (short)(want_write ? POLLOUT : POLLIN), 0};
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static long long deadline_of(int timeout_ms)
{
    return s2f_mono_ns() + (long long)(timeout_ms > 0 ? timeout_ms : 0) * 1000000LL;
}

static ssize_t tls_read(void *ctx, void *buf, size_t n, int timeout_ms)
{
    s2f_dtls_conn *c = ctx;
    long long deadline = deadline_of(timeout_ms);
    int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_read(c->ssl, buf, chunk);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
            return 0; /* close_notify, or the end of the stream without one */
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return -1;
        int w = wait_fd(c->fd, e == SSL_ERROR_WANT_WRITE, deadline);
        if (w <= 0)
            return w == 0 ? -2 : -1;
    }
}

static int tls_write(void *ctx, const void *buf, size_t n, int timeout_ms)
{
    s2f_dtls_conn *c = ctx;
    long long deadline = deadline_of(timeout_ms);
    const char *p = buf;
    while (n) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        ERR_clear_error();
        int r = SSL_write(c->ssl, p, chunk);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return -1;
        int w = wait_fd(c->fd, e == SSL_ERROR_WANT_WRITE, deadline);
        if (w <= 0)
            return w == 0 ? -2 : -1;
    }
    return 0;
}

static void peer_subject(SSL *ssl, char *buf, size_t cap)
{
    buf[0] = '\0';
    X509 *x = SSL_get1_peer_certificate(ssl);
    if (!x)
        return;
    X509_NAME_oneline(X509_get_subject_name(x), buf, (int)(cap > 1024 ? 1024 : cap));
    X509_free(x);
}

s2f_code s2f_dtls_accept(s2f_dtls *t, int fd, int timeout_ms, s2f_dtls_conn **out,
                         s2f_dimse_io *io, char *subject, size_t subject_cap, s2f_error *err)
{
    char why[256];
    *out = NULL;
    if (subject_cap)
        subject[0] = '\0';
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return s2f_fail(err, S2F_EIO, "TLS: cannot make the socket non-blocking: %s",
                        strerror(errno));
    s2f_dtls_conn *c = calloc(1, sizeof *c);
    if (!c || !(c->ssl = SSL_new(t->ctx)) || SSL_set_fd(c->ssl, fd) != 1) {
        if (c)
            SSL_free(c->ssl);
        free(c);
        return s2f_fail(err, S2F_ENOMEM, "TLS: cannot create a connection");
    }
    c->fd = fd;
    long long deadline = deadline_of(timeout_ms);
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_accept(c->ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(c->ssl, r);
        int w = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE
                    ? wait_fd(fd, e == SSL_ERROR_WANT_WRITE, deadline)
                    : -1;
        if (w <= 0) {
            if (w == 0)
                s2f_fail(err, S2F_EIO, "TLS handshake: no answer within %d ms", timeout_ms);
            else
                s2f_fail(err, S2F_EIO, "TLS handshake failed: %s",
                         e == SSL_ERROR_SYSCALL && !ERR_peek_error() && errno == 0
                             ? "the peer closed the connection"
                             : ssl_reason(why, sizeof why));
            SSL_free(c->ssl);
            free(c);
            return err->code;
        }
    }
    if (subject_cap)
        peer_subject(c->ssl, subject, subject_cap);
    io->ctx = c;
    io->read = tls_read;
    io->write = tls_write;
    *out = c;
    return S2F_OK;
}

void s2f_dtls_close(s2f_dtls_conn *c)
{
    if (!c)
        return;
    ERR_clear_error();
    SSL_shutdown(c->ssl); /* close_notify once; the socket is closed by the caller */
    ERR_clear_error();
    SSL_free(c->ssl);
    free(c);
}
