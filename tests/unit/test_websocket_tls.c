/*
 * test_websocket_tls.c - wss:// of the websocket client (src/deliver/websocket.c, issue 15)
 * against a TLS server thread on a free loopback port, with a self-signed certificate for
 * IP 127.0.0.1 made here (OpenSSL): trusted through cacert, refused when untrusted (the
 * system's store) or for another host name (localhost: the certificate names only the
 * address), accepted with insecure; a message crosses and the close handshake ends it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "deliver/http.h"
#include "deliver/websocket.h"

typedef struct tls_server {
    int listen_fd, port;
    SSL_CTX *ctx;
    int handshake_ok;             /* the TLS handshake completed */
    int got_close;                /* the client's close frame arrived */
} tls_server;

static EVP_PKEY *key;
static X509 *cert;
static char cert_path[64];

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX c;
    X509V3_set_ctx_nodb(&c);
    X509V3_set_ctx(&c, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &c, nid, value);
    int ok = e && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok;
}

/* A self-signed certificate for IP 127.0.0.1, written to cert_path. */
static int make_cert(void)
{
    key = EVP_EC_gen("P-256");
    cert = X509_new();
    if (!key || !cert)
        return -1;
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME *n = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"sr2fhir test hub", -1, -1, 0);
    X509_set_issuer_name(cert, n);
    if (!add_ext(cert, NID_subject_alt_name, "IP:127.0.0.1") ||
        !add_ext(cert, NID_basic_constraints, "critical,CA:TRUE") || !X509_sign(cert, key, EVP_sha256()))
        return -1;
    snprintf(cert_path, sizeof cert_path, "/tmp/test_websocket_tls.XXXXXX");
    int fd = mkstemp(cert_path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    int ok = f && PEM_write_X509(f, cert) == 1;
    if (f)
        fclose(f);
    return ok ? 0 : -1;
}

static void serve_ws(tls_server *s, SSL *ssl)
{
    char req[4096] = "", key_b64[64] = "", accept[29], resp[512];
    size_t n = 0;
    while (n < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
        int r = SSL_read(ssl, req + n, (int)(sizeof req - 1 - n));
        if (r <= 0)
            return;
        n += (size_t)r;
        req[n] = 0;
    }
    const char *k = strstr(req, "Sec-WebSocket-Key: ");
    if (k)
        sscanf(k + 19, "%63[^\r]", key_b64);
    s2f_ws_accept_key(key_b64, accept);
    int len = snprintf(resp, sizeof resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n\x81\x02{}", accept);
    SSL_write(ssl, resp, len);
    unsigned char h[8];
    if (SSL_read(ssl, h, sizeof h) >= 2 && (h[0] & 0x0f) == S2F_WS_CLOSE) {
        s->got_close = 1;
        const unsigned char c[] = {0x88, 0x02, 0x03, 0xe8};
        SSL_write(ssl, c, sizeof c);
    }
}

static void *serve_tls(void *arg)
{
    tls_server *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(s->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        s->handshake_ok = 1;
        serve_ws(s, ssl);
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(fd);
    return NULL;
}

static int start(tls_server *s, pthread_t *t)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    s->ctx = SSL_CTX_new(TLS_server_method());
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (!s->ctx || SSL_CTX_use_certificate(s->ctx, cert) != 1 || SSL_CTX_use_PrivateKey(s->ctx, key) != 1 ||
        s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) ||
        listen(s->listen_fd, 1) || getsockname(s->listen_fd, (struct sockaddr *)&a, &al))
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(t, NULL, serve_tls, s);
}

static void finish(tls_server *s, pthread_t t)
{
    pthread_join(t, NULL);
    close(s->listen_fd);
    SSL_CTX_free(s->ctx);
}

/* Connects to wss://HOST:port/x with opt; S2F_OK and the first message "{}" when it works. */
static s2f_code try_connect(const char *host, s2f_ws_options *opt, tls_server *s, s2f_error *err)
{
    pthread_t t;
    if (start(s, &t))
        return S2F_EINTERNAL;
    char url[64];
    snprintf(url, sizeof url, "wss://%s:%d/x", host, s->port);
    opt->connect_timeout_ms = 5000;
    s2f_ws *ws = s2f_ws_connect(url, opt, err);
    s2f_code rc = ws ? S2F_OK : err->code;
    if (ws) {
        const char *m;
        size_t n;
        rc = s2f_ws_receive(ws, s2f_http_now() + 5, &m, &n, NULL, err);
        if (!rc && (n != 2 || memcmp(m, "{}", 2)))
            rc = S2F_EFORMAT;
    }
    s2f_ws_close(ws, 1000, 2000);
    finish(s, t);
    return rc;
}

TEST(wss_trusted_through_cacert)
{
    tls_server s = {0};
    s2f_ws_options o = {.cacert = cert_path};
    s2f_error err = {0};
    CHECK(try_connect("127.0.0.1", &o, &s, &err) == S2F_OK);
    CHECK(s.handshake_ok == 1 && s.got_close == 1);
}

TEST(wss_untrusted_refused)
{
    tls_server s = {0};
    s2f_ws_options o = {0}; /* the system's store: the test certificate is not in it */
    s2f_error err = {0};
    CHECK(try_connect("127.0.0.1", &o, &s, &err) == S2F_EUNREACHABLE);
    CHECK(strstr(err.message, "TLS") != NULL);
    CHECK(s.handshake_ok == 0);
}

TEST(wss_other_host_name_refused)
{
    tls_server s = {0};
    s2f_ws_options o = {.cacert = cert_path}; /* trusted, but it names 127.0.0.1 only */
    s2f_error err = {0};
    CHECK(try_connect("localhost", &o, &s, &err) == S2F_EUNREACHABLE);
    CHECK(strstr(err.message, "TLS") != NULL);
}

TEST(wss_insecure_accepts_it)
{
    tls_server s = {0};
    s2f_ws_options o = {.insecure = 1};
    s2f_error err = {0};
    CHECK(try_connect("127.0.0.1", &o, &s, &err) == S2F_OK);
}

int main(void)
{
    if (make_cert()) {
        printf("FAIL make_cert: could not make the test certificate\n");
        return 1;
    }
    RUN(wss_trusted_through_cacert);
    RUN(wss_untrusted_refused);
    RUN(wss_other_host_name_refused);
    RUN(wss_insecure_accepts_it);
    unlink(cert_path);
    X509_free(cert);
    EVP_PKEY_free(key);
    return check_failed_total != 0;
}
