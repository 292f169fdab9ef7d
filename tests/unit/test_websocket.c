/*
 * test_websocket.c - the RFC 6455 client (src/deliver/websocket.c, issue 15): frame
 * parsing and building, message assembly, UTF-8, the accept key, and a whole connection
 * against a small server thread on a free loopback port (handshake, a fragmented message
 * with a ping between the fragments answered by a pong, masking, the close handshake, a
 * bad accept key refused, a read deadline).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "deliver/http.h"
#include "deliver/websocket.h"
#include "util/escape.h"

TEST(accept_key_rfc_example)
{
    char out[29];
    s2f_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out); /* RFC 6455 1.3 */
    CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(parse_small_text_frame)
{
    const unsigned char b[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    s2f_ws_frame f;
    s2f_error err = {0};
    CHECK(s2f_ws_frame_parse(b, sizeof b, 100, &f, &err) == 1);
    CHECK(f.fin == 1 && f.opcode == 1 && f.length == 5 && f.header == 2);
    CHECK(s2f_ws_frame_parse(b, sizeof b - 1, 100, &f, &err) == 0); /* payload incomplete */
    CHECK(s2f_ws_frame_parse(b, 1, 100, &f, &err) == 0);
}

TEST(parse_lengths_16_and_64)
{
    unsigned char b[10 + 70000] = {0x82, 126, 0x01, 0x00};
    s2f_ws_frame f;
    s2f_error err = {0};
    CHECK(s2f_ws_frame_parse(b, 4 + 256, 1000, &f, &err) == 1);
    CHECK(f.length == 256 && f.header == 4);
    unsigned char c[] = {0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70};
    memcpy(b, c, sizeof c);
    CHECK(s2f_ws_frame_parse(b, 10 + 70000, 100000, &f, &err) == 1);
    CHECK(f.length == 70000 && f.header == 10);
    CHECK(s2f_ws_frame_parse(b, 10 + 70000, 69999, &f, &err) == -1);
    CHECK(err.code == S2F_ELIMIT);
}

TEST(parse_refuses_protocol_errors)
{
    struct {
        unsigned char b[10];
        size_t n;
        const char *why;
    } bad[] = {
        {{0x81, 0x85, 1, 2, 3, 4}, 6, "masked"},
        {{0xC1, 0x00}, 2, "reserved"},
        {{0x83, 0x00}, 2, "opcode"},
        {{0x09, 0x00}, 2, "control frame"},          /* fragmented ping */
        {{0x89, 126, 0, 126}, 4, "control frame"},   /* ping over 125 */
        {{0x81, 126, 0, 5}, 4, "not minimal"},
        {{0x81, 127, 0, 0, 0, 0, 0, 0, 0, 5}, 10, "not minimal"},
        {{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10, "top bit"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s2f_ws_frame f;
        s2f_error err = {0};
        CHECK(s2f_ws_frame_parse(bad[i].b, bad[i].n, 1 << 20, &f, &err) == -1);
        CHECK(err.code == S2F_EFORMAT);
        CHECK(strstr(err.message, bad[i].why) != NULL);
    }
}

TEST(build_masks_and_parses_back)
{
    const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d}, hello[] = "Hello";
    unsigned char out[64];
    size_t n = s2f_ws_frame_build(S2F_WS_TEXT, hello, 5, mask, out, sizeof out);
    /* RFC 6455 5.7: a single-frame masked text message "Hello" */
    const unsigned char expect[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    CHECK(n == sizeof expect && !memcmp(out, expect, n));
    CHECK(s2f_ws_frame_build(S2F_WS_TEXT, hello, 5, mask, out, 10) == 0); /* too small */
    unsigned char big[70000 + 14];
    unsigned char *payload = calloc(1, 70000);
    CHECK(payload);
    n = s2f_ws_frame_build(S2F_WS_BINARY, payload, 70000, mask, big, sizeof big);
    free(payload);
    CHECK(n == 70000 + 14 && big[1] == (0x80 | 127) && big[8] == 0x11 && big[9] == 0x70);
}

TEST(assembles_fragments_and_bounds_them)
{
    s2f_ws_message m = {.max = 8};
    s2f_error err = {0};
    s2f_ws_frame a = {.fin = 0, .opcode = S2F_WS_TEXT, .length = 3};
    s2f_ws_frame b = {.fin = 1, .opcode = 0, .length = 2};
    CHECK(s2f_ws_message_add(&m, &a, (const unsigned char *)"abc", &err) == 0);
    CHECK(s2f_ws_message_add(&m, &a, (const unsigned char *)"abc", &err) == -1); /* new inside */
    s2f_ws_message_free(&m);
    m = (s2f_ws_message){.max = 8};
    CHECK(s2f_ws_message_add(&m, &a, (const unsigned char *)"abc", &err) == 0);
    CHECK(s2f_ws_message_add(&m, &b, (const unsigned char *)"de", &err) == 1);
    CHECK(m.len == 5 && !strcmp((const char *)m.data, "abcde"));
    CHECK(s2f_ws_message_add(&m, &b, (const unsigned char *)"de", &err) == -1); /* continuation, none open */
    s2f_ws_frame big = {.fin = 1, .opcode = S2F_WS_TEXT, .length = 9};
    m.opcode = 0, m.complete = 0;
    CHECK(s2f_ws_message_add(&m, &big, (const unsigned char *)"123456789", &err) == -1);
    CHECK(err.code == S2F_ELIMIT);
    s2f_ws_frame bad = {.fin = 1, .opcode = S2F_WS_TEXT, .length = 2};
    m.opcode = 0, m.complete = 0, m.len = 0;
    CHECK(s2f_ws_message_add(&m, &bad, (const unsigned char *)"\xc3\x28", &err) == -1);
    CHECK(err.code == S2F_EFORMAT);
    s2f_ws_message_free(&m);
}

TEST(utf8_validation)
{
    CHECK(s2f_escape_utf8_valid((const unsigned char *)"caf\xc3\xa9 \xf0\x9f\x98\x80", 10));
    CHECK(!s2f_escape_utf8_valid((const unsigned char *)"\xc0\xaf", 2));          /* overlong */
    CHECK(!s2f_escape_utf8_valid((const unsigned char *)"\xed\xa0\x80", 3));      /* surrogate */
    CHECK(!s2f_escape_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4));  /* > U+10FFFF */
    CHECK(!s2f_escape_utf8_valid((const unsigned char *)"\xe2\x82", 2));          /* cut */
}

/* ---- a loopback server thread ------------------------------------------------------------- */

typedef struct server {
    int listen_fd, port;
    int bad_accept;               /* answer with a wrong Sec-WebSocket-Accept */
    int silent;                   /* send nothing after the handshake (deadline case) */
    char got_text[128];           /* the client's message, unmasked */
    int got_pong, got_close_code, masked_ok;
} server;

static int read_exact(int fd, unsigned char *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, b + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Reads one client frame (masked, payload <= 125): opcode and unmasked payload. */
static int read_client_frame(server *s, int fd, unsigned char *payload, size_t *len)
{
    unsigned char h[6];
    if (read_exact(fd, h, 2) || !(h[1] & 0x80) || (h[1] & 0x7f) > 125 || read_exact(fd, h + 2, 4))
        return -1;
    *len = h[1] & 0x7f;
    if (read_exact(fd, payload, *len))
        return -1;
    for (size_t i = 0; i < *len; i++)
        payload[i] ^= h[2 + (i & 3)];
    s->masked_ok = 1;
    return h[0] & 0x0f;
}

static void answer_handshake(server *s, int fd)
{
    char req[4096] = "", key[64] = "", accept[29], resp[512];
    size_t n = 0;
    while (n < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
        ssize_t r = recv(fd, req + n, sizeof req - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        req[n] = 0;
    }
    const char *k = strstr(req, "Sec-WebSocket-Key: ");
    if (k)
        sscanf(k + 19, "%63[^\r]", key);
    s2f_ws_accept_key(s->bad_accept ? "wrong" : key, accept);
    /* the first frames come in the same write as the answer: they must not be lost (an
     * empty ping: a NUL byte after the head is no NUL in the head) */
    int len = snprintf(resp, sizeof resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
    static const unsigned char first[] = {0x89, 0x00, 0x01, 0x03, '{', '"', 'a'};
    if (!s->silent) {
        memcpy(resp + len, first, sizeof first);
        len += (int)sizeof first;
    }
    send(fd, resp, (size_t)len, 0);
}

static void *serve_one(void *arg)
{
    server *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    answer_handshake(s, fd);
    if (!s->bad_accept && !s->silent) {
        /* ping between fragments, then the last fragment */
        const unsigned char rest[] = {0x89, 0x02, 'p', '1', 0x80, 0x04, '"', ':', '1', '}'};
        send(fd, rest, sizeof rest, 0);
    }
    unsigned char p[128];
    size_t n;
    int op;
    while ((op = read_client_frame(s, fd, p, &n)) >= 0) {
        if (op == S2F_WS_PONG && n == 2 && !memcmp(p, "p1", 2))
            s->got_pong = 1;
        else if (op == S2F_WS_TEXT && n < sizeof s->got_text)
            memcpy(s->got_text, p, n);
        else if (op == S2F_WS_CLOSE) {
            s->got_close_code = n >= 2 ? p[0] << 8 | p[1] : 1005;
            const unsigned char c[] = {0x88, 0x02, 0x03, 0xe8};
            send(fd, c, sizeof c, 0);
            break;
        }
    }
    close(fd);
    return NULL;
}

static int start_server(server *s, pthread_t *t)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) ||
        listen(s->listen_fd, 1) || getsockname(s->listen_fd, (struct sockaddr *)&a, &al))
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(t, NULL, serve_one, s);
}

TEST(connection_fragments_ping_close)
{
    server s = {0};
    pthread_t t;
    CHECK(start_server(&s, &t) == 0);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/abc-123", s.port);
    s2f_error err = {0};
    s2f_ws *ws = s2f_ws_connect(url, NULL, &err);
    if (!ws) {
        shutdown(s.listen_fd, SHUT_RDWR);
        pthread_join(t, NULL);
        close(s.listen_fd);
    }
    CHECK(ws != NULL);
    const char *m = NULL;
    size_t n = 0;
    int timed_out = -1;
    s2f_code rc = s2f_ws_receive(ws, s2f_http_now() + 10, &m, &n, &timed_out, &err);
    char got[32] = "";
    if (rc == S2F_OK && n < sizeof got)
        memcpy(got, m, n + 1); /* m is the connection's until the next call */
    s2f_code sent = s2f_ws_send_text(ws, "{\"id\":\"x\"}", 10, &err);
    s2f_ws_close(ws, 1000, 5000);
    pthread_join(t, NULL);
    close(s.listen_fd);
    CHECK(rc == S2F_OK && timed_out == 0);
    CHECK(n == 7);
    CHECK_STR(got, "{\"a\":1}");
    CHECK(sent == S2F_OK);
    CHECK(s.got_pong == 1 && s.masked_ok == 1);
    CHECK_STR(s.got_text, "{\"id\":\"x\"}");
    CHECK(s.got_close_code == 1000);
}

TEST(connection_refuses_a_wrong_accept_key)
{
    server s = {.bad_accept = 1};
    pthread_t t;
    CHECK(start_server(&s, &t) == 0);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/x", s.port);
    s2f_error err = {0};
    s2f_ws *ws = s2f_ws_connect(url, NULL, &err);
    pthread_join(t, NULL);
    close(s.listen_fd);
    s2f_ws_close(ws, 1000, 100);
    CHECK(ws == NULL && err.code == S2F_EFORMAT);
    CHECK(strstr(err.message, "Sec-WebSocket-Accept") != NULL);
}

TEST(receive_has_a_deadline)
{
    server s = {.silent = 1};
    pthread_t t;
    CHECK(start_server(&s, &t) == 0);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/x", s.port);
    s2f_error err = {0};
    s2f_ws *ws = s2f_ws_connect(url, NULL, &err);
    const char *m;
    size_t n;
    int timed_out = 0;
    s2f_code rc = ws ? s2f_ws_receive(ws, s2f_http_now() + 0.2, &m, &n, &timed_out, &err) : S2F_OK;
    s2f_ws_close(ws, 1000, 2000);
    pthread_join(t, NULL);
    close(s.listen_fd);
    CHECK(ws != NULL);
    CHECK(rc == S2F_EUNREACHABLE && timed_out == 1);
    CHECK(s.got_close_code == 1000);
}

TEST(bad_urls_refused)
{
    const char *bad[] = {"http://x/", "ws://", "ws://u:p@host/", "ws://h:12x/", "ws://h/a b",
                         "ws://[::1/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s2f_error err = {0};
        CHECK(s2f_ws_connect(bad[i], NULL, &err) == NULL);
        CHECK(err.code == S2F_EUSAGE);
    }
}

int main(void)
{
    RUN(accept_key_rfc_example);
    RUN(parse_small_text_frame);
    RUN(parse_lengths_16_and_64);
    RUN(parse_refuses_protocol_errors);
    RUN(build_masks_and_parses_back);
    RUN(assembles_fragments_and_bounds_them);
    RUN(utf8_validation);
    RUN(connection_fragments_ping_close);
    RUN(connection_refuses_a_wrong_accept_key);
    RUN(receive_has_a_deadline);
    RUN(bad_urls_refused);
    return check_failed_total != 0;
}
