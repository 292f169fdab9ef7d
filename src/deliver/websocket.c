/*
 * websocket.c - the blocking RFC 6455 client of websocket.h (the FHIRcast channel, issue
 * 15): URL parsing, TCP connect with a deadline, TLS (OpenSSL) for wss://, the opening
 * handshake (4.1), frames (5.2) parsed and built, masking (5.3), fragmentation (5.4),
 * ping/pong (5.5.2-3), the closing handshake (5.5.1, 7).
 */
#include "deliver/websocket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "deliver/http.h"
#include "util/error.h"
#include "util/escape.h"
#include "util/sha1.h"

#define MAX_HANDSHAKE 8192         /* bytes of the server's handshake answer */
#define DEFAULT_MAX_MESSAGE (16u << 20)
#define MAX_URL_HOST 256
#define MAX_URL_PATH 2048
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct s2f_ws {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    unsigned char *in;         /* bytes read and not yet parsed */
    size_t in_len, in_cap;
    size_t max_message;
    s2f_ws_message msg;
    int close_sent, close_received;
};

/* ---- frames -------------------------------------------------------------------------------- */

static int known_opcode(int op)
{
    return op == 0 || op == S2F_WS_TEXT || op == S2F_WS_BINARY || op == S2F_WS_CLOSE ||
           op == S2F_WS_PING || op == S2F_WS_PONG;
}

static int length_field(const unsigned char *b, size_t n, s2f_ws_frame *f, s2f_error *err)
{
    unsigned short7 = b[1] & 0x7f;
    size_t need = 2 + (short7 == 126 ? 2 : short7 == 127 ? 8 : 0);
    if (n < need)
        return 0;
    f->header = need;
    if (short7 < 126) {
        f->length = short7;
        return 1;
    }
    if (short7 == 126) {
        f->length = (uint64_t)b[2] << 8 | b[3];
        if (f->length < 126)
            return s2f_fail(err, S2F_EFORMAT, "websocket: a 16-bit length of %u is not minimal",
                            (unsigned)f->length), -1;
        return 1;
    }
    if (b[2] & 0x80)
        return s2f_fail(err, S2F_EFORMAT, "websocket: a 64-bit length with its top bit set"), -1;
    f->length = 0;
    for (int i = 2; i < 10; i++)
        f->length = f->length << 8 | b[i];
    if (f->length < 65536)
        return s2f_fail(err, S2F_EFORMAT, "websocket: a 64-bit length of %llu is not minimal",
                        (unsigned long long)f->length), -1;
    return 1;
}

int s2f_ws_frame_parse(const unsigned char *b, size_t n, size_t max_payload, s2f_ws_frame *f,
                       s2f_error *err)
{
    if (n < 2)
        return 0;
    s2f_ws_frame g = {.fin = b[0] >> 7, .opcode = b[0] & 0x0f, .masked = b[1] >> 7};
    if (b[0] & 0x70)
        return s2f_fail(err, S2F_EFORMAT, "websocket: reserved bits set (no extension was agreed)"), -1;
    if (!known_opcode(g.opcode))
        return s2f_fail(err, S2F_EFORMAT, "websocket: unknown opcode 0x%x", g.opcode), -1;
    if (g.masked)
        return s2f_fail(err, S2F_EFORMAT, "websocket: a masked frame from the server (RFC 6455 5.1)"), -1;
    int r = length_field(b, n, &g, err);
    if (r <= 0)
        return r;
    if (g.opcode >= 0x8 && (!g.fin || g.length > 125))
        return s2f_fail(err, S2F_EFORMAT, "websocket: a control frame fragmented or over 125 "
                        "bytes"), -1;
    if (g.length > max_payload)
        return s2f_fail(err, S2F_ELIMIT, "websocket: a frame of %llu bytes, over the %zu accepted",
                        (unsigned long long)g.length, max_payload), -1;
    if (n - g.header < g.length)
        return 0;
    *f = g;
    return 1;
}

size_t s2f_ws_frame_build(int opcode, const unsigned char *payload, size_t len,
                          const unsigned char mask[4], unsigned char *out, size_t cap)
{
    size_t head = 2 + (len < 126 ? 0 : len < 65536 ? 2 : 8) + 4;
    if (cap < head || cap - head < len)
        return 0;
    out[0] = (unsigned char)(0x80 | (opcode & 0x0f));
    size_t p = 2;
    if (len < 126) {
        out[1] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        out[1] = 0x80 | 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        p = 4;
    } else {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        p = 10;
    }
    memcpy(out + p, mask, 4);
    p += 4;
    for (size_t i = 0; i < len; i++)
        out[p + i] = payload[i] ^ mask[i & 3];
    return p + len;
}

static int grow_message(s2f_ws_message *m, size_t need, s2f_error *err)
{
    if (need + 1 <= m->cap)
        return 0;
    size_t cap = m->cap ? m->cap : 4096;
    while (cap < need + 1)
        cap *= 2;
    unsigned char *d = realloc(m->data, cap);
    if (!d)
        return s2f_fail(err, S2F_ENOMEM, "out of memory"), -1;
    m->data = d;
    m->cap = cap;
    return 0;
}

int s2f_ws_message_add(s2f_ws_message *m, const s2f_ws_frame *f, const unsigned char *payload,
                       s2f_error *err)
{
    if (m->complete)
        m->complete = 0, m->opcode = 0, m->len = 0;
    if (f->opcode == 0 && !m->opcode)
        return s2f_fail(err, S2F_EFORMAT, "websocket: a continuation frame with no message"), -1;
    if (f->opcode != 0 && m->opcode)
        return s2f_fail(err, S2F_EFORMAT, "websocket: a new message inside a fragmented one"), -1;
    if (f->opcode != 0)
        m->opcode = f->opcode;
    if (f->length > m->max || m->len > m->max - f->length)
        return s2f_fail(err, S2F_ELIMIT, "websocket: a message over the %zu bytes accepted", m->max), -1;
    if (grow_message(m, m->len + (size_t)f->length, err))
        return -1;
    if (f->length)
        memcpy(m->data + m->len, payload, (size_t)f->length);
    m->len += (size_t)f->length;
    m->data[m->len] = '\0';
    if (!f->fin)
        return 0;
    if (m->opcode == S2F_WS_TEXT && !s2f_escape_utf8_valid(m->data, m->len))
        return s2f_fail(err, S2F_EFORMAT, "websocket: a text message that is not UTF-8"), -1;
    m->complete = 1;
    return 1;
}

void s2f_ws_message_free(s2f_ws_message *m)
{
    free(m->data);
    m->data = NULL;
    m->len = m->cap = 0;
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

void s2f_ws_accept_key(const char *key, char out[29])
{
    s2f_sha1 s;
    unsigned char d[20];
    s2f_sha1_init(&s);
    s2f_sha1_update(&s, key, strlen(key));
    s2f_sha1_update(&s, WS_GUID, sizeof WS_GUID - 1);
    s2f_sha1_final(&s, d);
    base64(d, sizeof d, out);
}

/* ---- transport ----------------------------------------------------------------------------- */

static int random_bytes(unsigned char *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(b + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static long ms_left(double deadline)
{
    double left = (deadline - s2f_http_now()) * 1000.0;
    return left <= 0 ? 0 : left > 3600000.0 ? 3600000L : (long)left + 1;
}

/* Waits until fd is readable (events POLLIN) or writable (POLLOUT) before deadline: 1
 * ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        long ms = ms_left(deadline);
        int r = poll(&p, 1, (int)ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        return r;
    }
}

/* Reads some bytes: >0 read, 0 the peer closed, -1 error, -2 timed out. */
static long read_some(s2f_ws *ws, unsigned char *b, size_t cap, double deadline)
{
    for (;;) {
        if (ws->ssl && SSL_pending(ws->ssl) > 0) {
            /* decrypted bytes are waiting: no poll */
        } else {
            int w = wait_fd(ws->fd, POLLIN, deadline);
            if (w <= 0)
                return w == 0 ? -2 : -1;
        }
        if (!ws->ssl) {
            ssize_t r = recv(ws->fd, b, cap, 0);
            if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
                continue;
            return r < 0 ? -1 : (long)r;
        }
        int r = SSL_read(ws->ssl, b, cap > 1 << 30 ? 1 << 30 : (int)cap);
        if (r > 0)
            return r;
        int e = SSL_get_error(ws->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            continue;
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
}

/* Writes all of b before deadline: 0, or -1. */
static int write_all(s2f_ws *ws, const unsigned char *b, size_t n, double deadline)
{
    size_t done = 0;
    while (done < n) {
        int w = wait_fd(ws->fd, POLLOUT, deadline);
        if (w <= 0)
            return -1;
        if (!ws->ssl) {
            ssize_t r = send(ws->fd, b + done, n - done, MSG_NOSIGNAL);
            if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
                continue;
            if (r <= 0)
                return -1;
            done += (size_t)r;
            continue;
        }
        size_t chunk = n - done > 1 << 30 ? 1 << 30 : n - done;
        int r = SSL_write(ws->ssl, b + done, (int)chunk);
        if (r > 0) {
            done += (size_t)r;
            continue;
        }
        int e = SSL_get_error(ws->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return -1;
    }
    return 0;
}

/* ---- URL ----------------------------------------------------------------------------------- */

typedef struct ws_url {
    int tls;
    char host[MAX_URL_HOST];
    char port[8];
    char path[MAX_URL_PATH];
} ws_url;

static s2f_code parse_url(const char *url, ws_url *u, s2f_error *err)
{
    const char *p;
    memset(u, 0, sizeof *u);
    if (!strncasecmp(url, "ws://", 5))
        p = url + 5;
    else if (!strncasecmp(url, "wss://", 6))
        p = url + 6, u->tls = 1;
    else
        return s2f_fail(err, S2F_EUSAGE, "websocket: the endpoint is not a ws:// or wss:// URL");
    size_t hlen = strcspn(p, "/?#");
    const char *auth = p, *rest = p + hlen, *port = NULL, *hend = rest;
    if (memchr(auth, '@', hlen))
        return s2f_fail(err, S2F_EUSAGE, "websocket: credentials in the endpoint URL are refused");
    if (*auth == '[') {
        const char *close = memchr(auth, ']', hlen);
        if (!close)
            return s2f_fail(err, S2F_EUSAGE, "websocket: a bad IPv6 address in the endpoint URL");
        if (close + 1 < rest && close[1] == ':')
            port = close + 2;
        auth++;
        hend = close;
    } else {
        const char *colon = memchr(auth, ':', hlen);
        if (colon)
            port = colon + 1, hend = colon;
    }
    size_t host_len = (size_t)(hend - auth), port_len = port ? (size_t)(rest - port) : 0;
    if (!host_len || host_len >= sizeof u->host || port_len >= sizeof u->port || (port && !port_len) ||
        strlen(rest) + 2 > sizeof u->path || strchr(rest, '#'))
        return s2f_fail(err, S2F_EUSAGE, "websocket: a bad or too long endpoint URL");
    memcpy(u->host, auth, host_len);
    if (port) {
        memcpy(u->port, port, port_len);
        if (strspn(u->port, "0123456789") != port_len)
            return s2f_fail(err, S2F_EUSAGE, "websocket: a bad port in the endpoint URL");
    } else
        strcpy(u->port, u->tls ? "443" : "80");
    snprintf(u->path, sizeof u->path, "%s%s", *rest == '/' ? "" : "/", rest);
    for (const char *c = u->path; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return s2f_fail(err, S2F_EUSAGE, "websocket: a control character or space in the endpoint URL");
    return S2F_OK;
}

/* ---- connecting ---------------------------------------------------------------------------- */

static int connect_one(const struct addrinfo *a, double deadline)
{
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
        return fd;
    if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 1) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
            return fd;
        errno = soerr;
    } else if (errno == EINPROGRESS)
        errno = ETIMEDOUT;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

static s2f_code connect_tcp(s2f_ws *ws, const ws_url *u, double deadline, s2f_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc)
        return s2f_fail(err, S2F_EUNREACHABLE, "websocket: cannot resolve the hub's host: %s",
                        gai_strerror(rc));
    int last = 0;
    for (struct addrinfo *a = res; a && ws->fd < 0; a = a->ai_next) {
        ws->fd = connect_one(a, deadline);
        last = errno;
    }
    freeaddrinfo(res);
    if (ws->fd < 0)
        return s2f_fail(err, S2F_EUNREACHABLE, "websocket: cannot connect to port %s: %s", u->port,
                        strerror(last));
    return S2F_OK;
}

static s2f_code tls_fail(s2f_error *err, const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return s2f_fail(err, S2F_EUNREACHABLE, "websocket: TLS: %s%s%s", what, e ? ": " : "", e ? buf : "");
}

static s2f_code setup_tls_ctx(s2f_ws *ws, const s2f_ws_options *opt, s2f_error *err)
{
    if (!(ws->ctx = SSL_CTX_new(TLS_client_method())))
        return tls_fail(err, "no context");
    SSL_CTX_set_min_proto_version(ws->ctx, TLS1_2_VERSION);
    if (opt->insecure)
        SSL_CTX_set_verify(ws->ctx, SSL_VERIFY_NONE, NULL);
    else {
        SSL_CTX_set_verify(ws->ctx, SSL_VERIFY_PEER, NULL);
        if ((opt->cacert ? SSL_CTX_load_verify_locations(ws->ctx, opt->cacert, NULL)
                         : SSL_CTX_set_default_verify_paths(ws->ctx)) != 1)
            return tls_fail(err, "cannot load the trusted certificates");
    }
    if (opt->cert && SSL_CTX_use_certificate_chain_file(ws->ctx, opt->cert) != 1)
        return tls_fail(err, "cannot load the client certificate");
    if (opt->key && SSL_CTX_use_PrivateKey_file(ws->ctx, opt->key, SSL_FILETYPE_PEM) != 1)
        return tls_fail(err, "cannot load the client key");
    return S2F_OK;
}

static s2f_code start_tls(s2f_ws *ws, const ws_url *u, const s2f_ws_options *opt, double deadline,
                          s2f_error *err)
{
    if (setup_tls_ctx(ws, opt, err))
        return err->code;
    if (!(ws->ssl = SSL_new(ws->ctx)) || SSL_set_fd(ws->ssl, ws->fd) != 1)
        return tls_fail(err, "no session");
    /* an address is checked against the certificate's IP addresses and gets no SNI (RFC
     * 6066 3); a name against its DNS names */
    unsigned char addr[16];
    int ip = inet_pton(AF_INET, u->host, addr) == 1 || inet_pton(AF_INET6, u->host, addr) == 1;
    if (!ip)
        SSL_set_tlsext_host_name(ws->ssl, u->host);
    if (!opt->insecure && (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ws->ssl), u->host)
                              : SSL_set1_host(ws->ssl, u->host)) != 1)
        return tls_fail(err, "cannot set the host name to verify");
    for (;;) {
        int r = SSL_connect(ws->ssl);
        if (r == 1)
            return S2F_OK;
        int e = SSL_get_error(ws->ssl, r);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev)
            return tls_fail(err, "handshake failed");
        if (wait_fd(ws->fd, ev, deadline) != 1)
            return s2f_fail(err, S2F_EUNREACHABLE, "websocket: TLS: the handshake timed out");
    }
}

/* ---- the opening handshake (RFC 6455 4.1) ---------------------------------------------------- */

/* The value of header `name` in the answer's header lines (head, NUL-terminated), copied
 * into out; 1 found, 0 not. */
static int header_value(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, nl) || l[nl] != ':')
            continue;
        const char *v = l + nl + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t n = strcspn(v, "\r");
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        if (n >= cap)
            n = cap - 1;
        memcpy(out, v, n);
        out[n] = '\0';
        return 1;
    }
    return 0;
}

static int token_in_list(const char *list, const char *token)
{
    size_t tl = strlen(token);
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, " \t,");
        if (n == tl && !strncasecmp(p, token, n))
            return 1;
        p += n;
    }
    return 0;
}

static s2f_code check_answer(const char *head, const char *key, s2f_error *err)
{
    char v[256], expect[29], line[128];
    int status = 0;
    if (sscanf(head, "HTTP/1.1 %3d", &status) != 1 || status != 101) {
        size_t n = strcspn(head, "\r\n");
        s2f_escape_text(head, n > 80 ? 80 : n, line, sizeof line);
        return s2f_fail(err, S2F_EREJECTED, "websocket: the server refused the upgrade: %s", line);
    }
    if (!header_value(head, "Upgrade", v, sizeof v) || strcasecmp(v, "websocket"))
        return s2f_fail(err, S2F_EFORMAT, "websocket: the answer lacks 'Upgrade: websocket'");
    if (!header_value(head, "Connection", v, sizeof v) || !token_in_list(v, "upgrade"))
        return s2f_fail(err, S2F_EFORMAT, "websocket: the answer lacks 'Connection: Upgrade'");
    s2f_ws_accept_key(key, expect);
    if (!header_value(head, "Sec-WebSocket-Accept", v, sizeof v) || strcmp(v, expect))
        return s2f_fail(err, S2F_EFORMAT, "websocket: a wrong or missing Sec-WebSocket-Accept");
    if (header_value(head, "Sec-WebSocket-Extensions", v, sizeof v) ||
        header_value(head, "Sec-WebSocket-Protocol", v, sizeof v))
        return s2f_fail(err, S2F_EFORMAT, "websocket: the server chose an extension or protocol "
                        "that was not offered");
    return S2F_OK;
}

/* The length of the answer's head up to and with its blank line, 0 when not all in. */
static size_t header_end(const char *b, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if (!memcmp(b + i, "\r\n\r\n", 4))
            return i + 4;
    return 0;
}

/* Reads the handshake answer up to its blank line; the bytes after it stay in ws->in. */
static s2f_code read_answer(s2f_ws *ws, const char *key, double deadline, s2f_error *err)
{
    char head[MAX_HANDSHAKE + 1];
    size_t n = 0;
    for (;;) {
        long r = read_some(ws, (unsigned char *)head + n, MAX_HANDSHAKE - n, deadline);
        if (r == -2)
            return s2f_fail(err, S2F_EUNREACHABLE, "websocket: the handshake timed out");
        if (r <= 0)
            return s2f_fail(err, S2F_EUNREACHABLE, "websocket: the connection closed during the handshake");
        n += (size_t)r;
        head[n] = '\0';
        size_t end = header_end(head, n);
        if (end) {
            if (memchr(head, '\0', end))
                return s2f_fail(err, S2F_EFORMAT, "websocket: a NUL byte in the handshake answer");
            memcpy(ws->in, head + end, n - end); /* frames sent with the answer */
            ws->in_len = n - end;
            head[end - 2] = '\0';
            return check_answer(head, key, err);
        }
        if (n == MAX_HANDSHAKE)
            return s2f_fail(err, S2F_ELIMIT, "websocket: a handshake answer over %d bytes", MAX_HANDSHAKE);
    }
}

static s2f_code handshake(s2f_ws *ws, const ws_url *u, double deadline, s2f_error *err)
{
    unsigned char nonce[16];
    char key[25], req[MAX_URL_PATH + MAX_URL_HOST + 256];
    if (random_bytes(nonce, sizeof nonce))
        return s2f_fail(err, S2F_EINTERNAL, "websocket: no random bytes: %s", strerror(errno));
    base64(nonce, sizeof nonce, key);
    int ipv6 = strchr(u->host, ':') != NULL;
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     u->path, ipv6 ? "[" : "", u->host, ipv6 ? "]" : "", u->port, key);
    if (n < 0 || (size_t)n >= sizeof req)
        return s2f_fail(err, S2F_EUSAGE, "websocket: the endpoint URL is too long");
    if (write_all(ws, (const unsigned char *)req, (size_t)n, deadline))
        return s2f_fail(err, S2F_EUNREACHABLE, "websocket: cannot send the handshake");
    return read_answer(ws, key, deadline, err);
}

static void ws_free(s2f_ws *ws)
{
    if (!ws)
        return;
    if (ws->ssl)
        SSL_free(ws->ssl);
    if (ws->ctx)
        SSL_CTX_free(ws->ctx);
    if (ws->fd >= 0)
        close(ws->fd);
    s2f_ws_message_free(&ws->msg);
    free(ws->in);
    free(ws);
}

s2f_ws *s2f_ws_connect(const char *url, const s2f_ws_options *opt, s2f_error *err)
{
    static const s2f_ws_options none = {0};
    ws_url u;
    opt = opt ? opt : &none;
    if (parse_url(url, &u, err))
        return NULL;
    s2f_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return s2f_fail(err, S2F_ENOMEM, "out of memory"), NULL;
    ws->fd = -1;
    ws->max_message = opt->max_message ? opt->max_message : DEFAULT_MAX_MESSAGE;
    ws->msg.max = ws->max_message;
    ws->in_cap = ws->max_message + 14 > 65536 + 14 ? 65536 + 14 : ws->max_message + 14;
    if (ws->in_cap < MAX_HANDSHAKE)
        ws->in_cap = MAX_HANDSHAKE;
    if (!(ws->in = malloc(ws->in_cap))) {
        ws_free(ws);
        return s2f_fail(err, S2F_ENOMEM, "out of memory"), NULL;
    }
    double deadline = s2f_http_now() + (opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms : 10000) / 1000.0;
    if (connect_tcp(ws, &u, deadline, err) || (u.tls && start_tls(ws, &u, opt, deadline, err)) ||
        handshake(ws, &u, deadline, err)) {
        ws_free(ws);
        return NULL;
    }
    return ws;
}

/* ---- messages ------------------------------------------------------------------------------ */

static s2f_code send_frame(s2f_ws *ws, int opcode, const unsigned char *payload, size_t len,
                           s2f_error *err)
{
    unsigned char mask[4], small[256], *out = small;
    size_t cap = len + 14;
    if (len > ws->max_message)
        return s2f_fail(err, S2F_ELIMIT, "websocket: a message over %zu bytes", ws->max_message);
    if (random_bytes(mask, sizeof mask))
        return s2f_fail(err, S2F_EINTERNAL, "websocket: no random bytes for the mask");
    if (cap > sizeof small && !(out = malloc(cap)))
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    size_t n = s2f_ws_frame_build(opcode, payload, len, mask, out, cap);
    int w = n ? write_all(ws, out, n, s2f_http_now() + 30.0) : -1;
    if (out != small)
        free(out);
    if (w)
        return s2f_fail(err, S2F_EUNREACHABLE, "websocket: cannot send (the connection broke or stalled)");
    return S2F_OK;
}

s2f_code s2f_ws_send_text(s2f_ws *ws, const char *text, size_t len, s2f_error *err)
{
    if (ws->close_sent || ws->close_received)
        return s2f_fail(err, S2F_EUNREACHABLE, "websocket: the connection is closed");
    return send_frame(ws, S2F_WS_TEXT, (const unsigned char *)text, len, err);
}

/* Fails the connection (RFC 6455 7.1.7) with close code 1002 or 1009. */
static s2f_code fail_connection(s2f_ws *ws, s2f_code code)
{
    unsigned char c[2] = {0x03, code == S2F_ELIMIT ? 0xf1 : 0xea};
    s2f_error ignored = {0};
    if (!ws->close_sent)
        send_frame(ws, S2F_WS_CLOSE, c, sizeof c, &ignored);
    ws->close_sent = ws->close_received = 1; /* nothing more is read */
    return code;
}

/* A close frame from the server: answered, and reported in err. */
static s2f_code closed_by_server(s2f_ws *ws, const unsigned char *p, size_t n, s2f_error *err)
{
    char reason[128] = "";
    unsigned code = n >= 2 ? (unsigned)p[0] << 8 | p[1] : 1005;
    if (n > 2)
        s2f_escape_text((const char *)p + 2, n - 2, reason, sizeof reason);
    if (!ws->close_sent) {
        s2f_error ignored = {0};
        send_frame(ws, S2F_WS_CLOSE, p, n >= 2 ? 2 : 0, &ignored);
        ws->close_sent = 1;
    }
    ws->close_received = 1;
    return s2f_fail(err, S2F_EUNREACHABLE, "websocket: the hub closed the connection (%u%s%s)", code,
                    reason[0] ? " " : "", reason);
}

/* Handles the whole frame at ws->in: 1 a message is complete, 0 go on, or -(s2f_code). */
static int take_frame(s2f_ws *ws, const s2f_ws_frame *f, s2f_error *err)
{
    const unsigned char *p = ws->in + f->header;
    size_t n = (size_t)f->length;
    if (f->opcode == S2F_WS_PING) {
        s2f_code rc = send_frame(ws, S2F_WS_PONG, p, n, err);
        return rc ? -(int)rc : 0;
    }
    if (f->opcode == S2F_WS_PONG)
        return 0;
    if (f->opcode == S2F_WS_CLOSE) {
        if (n == 1 || (n > 2 && !s2f_escape_utf8_valid(p + 2, n - 2)))
            return -(int)fail_connection(ws, s2f_fail(err, S2F_EFORMAT, "websocket: a malformed close frame"));
        return -(int)closed_by_server(ws, p, n, err);
    }
    int r = s2f_ws_message_add(&ws->msg, f, p, err);
    return r < 0 ? -(int)fail_connection(ws, err->code) : r;
}

static void consume(s2f_ws *ws, size_t n)
{
    memmove(ws->in, ws->in + n, ws->in_len - n);
    ws->in_len -= n;
}

/* Room for a frame of max payload in ws->in. */
static s2f_code make_room(s2f_ws *ws, s2f_error *err)
{
    if (ws->in_len < ws->in_cap)
        return S2F_OK;
    size_t cap = ws->in_cap * 2, most = ws->max_message + 14;
    if (ws->in_cap >= most)
        return s2f_fail(err, S2F_EINTERNAL, "websocket: the read buffer is full");
    cap = cap > most ? most : cap;
    unsigned char *in = realloc(ws->in, cap);
    if (!in)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    ws->in = in;
    ws->in_cap = cap;
    return S2F_OK;
}

s2f_code s2f_ws_receive(s2f_ws *ws, double deadline, const char **msg, size_t *len,
                        int *timed_out, s2f_error *err)
{
    if (timed_out)
        *timed_out = 0;
    if (ws->close_received)
        return s2f_fail(err, S2F_EUNREACHABLE, "websocket: the connection is closed");
    for (;;) {
        s2f_ws_frame f;
        int r = s2f_ws_frame_parse(ws->in, ws->in_len, ws->max_message, &f, err);
        if (r < 0)
            return fail_connection(ws, err->code);
        if (r == 1) {
            int t = take_frame(ws, &f, err);
            consume(ws, f.header + (size_t)f.length);
            if (t < 0)
                return (s2f_code)-t;
            if (t == 1) {
                *msg = (const char *)ws->msg.data;
                *len = ws->msg.len;
                return S2F_OK;
            }
            continue;
        }
        if (make_room(ws, err))
            return fail_connection(ws, err->code);
        long got = read_some(ws, ws->in + ws->in_len, ws->in_cap - ws->in_len, deadline);
        if (got == -2) {
            if (timed_out)
                *timed_out = 1;
            return s2f_fail(err, S2F_EUNREACHABLE, "websocket: timed out waiting for a message");
        }
        if (got <= 0) {
            ws->close_received = ws->close_sent = 1;
            return s2f_fail(err, S2F_EUNREACHABLE, "websocket: the connection broke%s",
                            got == 0 ? " (closed without a close frame)" : "");
        }
        ws->in_len += (size_t)got;
    }
}

void s2f_ws_close(s2f_ws *ws, int code, long timeout_ms)
{
    if (!ws)
        return;
    s2f_error ignored = {0};
    if (!ws->close_sent && !ws->close_received) {
        unsigned char c[2] = {(unsigned char)(code >> 8), (unsigned char)code};
        if (send_frame(ws, S2F_WS_CLOSE, c, sizeof c, &ignored) == S2F_OK) {
            ws->close_sent = 1;
            /* the server's close frame ends it (or the deadline, or the end of the stream) */
            double deadline = s2f_http_now() + (double)timeout_ms / 1000.0;
            const char *m;
            size_t n;
            while (s2f_ws_receive(ws, deadline, &m, &n, NULL, &ignored) == S2F_OK)
                ;
        }
    }
    if (ws->ssl && ws->close_received)
        SSL_shutdown(ws->ssl);
    ws_free(ws);
}
