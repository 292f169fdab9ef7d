/*
 * test_dimse.c - the DICOM Upper Layer acceptor and DIMSE C-ECHO/C-STORE
 * (src/gateway/dimse.c, issue 12). s2f_dimse_serve runs on a thread over one end of a
 * socketpair; the test is the requestor on the other end, building every PDU byte by byte
 * and checking every byte of what comes back: negotiation with mixed contexts (accepted,
 * rejected 3 and 4), C-ECHO, C-STORE with fragmented command and data set over several
 * PDVs and PDUs, the status store_end returns, release; A-ASSOCIATE-RJ; the peer's A-ABORT
 * and a dropped connection mid data set (store_end complete = 0 exactly once); malformed
 * and unexpected PDUs (our A-ABORT, reason checked); ARTIM and idle deadlines; a small peer
 * maximum length (every PDU we send fits); the pure parsers on good, broken and truncated
 * input; and DCMTK's echoscu and storescu against a listening socket (SKIP without DCMTK).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "gateway/dimse.h"
#include "part10_build.h"

#define VERIFICATION "1.2.840.10008.1.1"
#define SR_CLASS "1.2.840.10008.5.1.4.1.1.88.33"
#define CT_CLASS "1.2.840.10008.5.1.4.1.1.2"
#define IMPLICIT "1.2.840.10008.1.2"
#define EXPLICIT "1.2.840.10008.1.2.1"
#define BIG_ENDIAN_TS "1.2.840.10008.1.2.2"
#define OUR_AET "SR2FHIR"
#define INSTANCE "1.2.826.0.1.3680043.8.498.77"

/* ---- byte building ------------------------------------------------------------------- */

typedef struct bb {
    uint8_t b[70000];
    size_t n;
} bb;

static void u8(bb *o, unsigned v) { o->b[o->n++] = (uint8_t)v; }
static void be16(bb *o, unsigned v)
{
    u8(o, v >> 8);
    u8(o, v);
}
static void be32(bb *o, uint32_t v)
{
    be16(o, v >> 16);
    be16(o, v & 0xFFFF);
}
static void le16(bb *o, unsigned v)
{
    u8(o, v);
    u8(o, v >> 8);
}
static void le32(bb *o, uint32_t v)
{
    le16(o, v & 0xFFFF);
    le16(o, v >> 16);
}
static void bytes(bb *o, const void *p, size_t n)
{
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void pad16(bb *o, const char *s)
{
    char f[16];
    memset(f, ' ', sizeof f);
    memcpy(f, s, strlen(s));
    bytes(o, f, 16);
}
/* An item: type, reserved, 2-byte length filled by item_end. */
static size_t item_begin(bb *o, unsigned type)
{
    u8(o, type);
    u8(o, 0);
    be16(o, 0);
    return o->n;
}
static void item_end(bb *o, size_t start)
{
    size_t len = o->n - start;
    o->b[start - 2] = (uint8_t)(len >> 8);
    o->b[start - 1] = (uint8_t)len;
}
static void item_text(bb *o, unsigned type, const char *s)
{
    size_t at = item_begin(o, type);
    bytes(o, s, strlen(s));
    item_end(o, at);
}
/* A PDU header with its 4-byte length filled by pdu_end. */
static void pdu_begin(bb *o, unsigned type)
{
    o->n = 0;
    u8(o, type);
    u8(o, 0);
    be32(o, 0);
}
static void pdu_end(bb *o)
{
    uint32_t len = (uint32_t)(o->n - 6);
    o->b[2] = (uint8_t)(len >> 24);
    o->b[3] = (uint8_t)(len >> 16);
    o->b[4] = (uint8_t)(len >> 8);
    o->b[5] = (uint8_t)len;
}

typedef struct pctx {
    unsigned id;
    const char *as;
    const char *ts[3];
} pctx;

static void build_rq(bb *o, const char *called, const char *calling, const pctx *pc, size_t n,
                     uint32_t max_pdu)
{
    pdu_begin(o, 0x01);
    be16(o, 1);
    be16(o, 0);
    pad16(o, called);
    pad16(o, calling);
    for (int i = 0; i < 32; i++)
        u8(o, 0);
    item_text(o, 0x10, "1.2.840.10008.3.1.1.1");
    for (size_t i = 0; i < n; i++) {
        size_t at = item_begin(o, 0x20);
        u8(o, pc[i].id);
        u8(o, 0);
        u8(o, 0);
        u8(o, 0);
        item_text(o, 0x30, pc[i].as);
        for (int t = 0; t < 3 && pc[i].ts[t]; t++)
            item_text(o, 0x40, pc[i].ts[t]);
        item_end(o, at);
    }
    size_t ui = item_begin(o, 0x50);
    size_t ml = item_begin(o, 0x51);
    be32(o, max_pdu);
    item_end(o, ml);
    item_text(o, 0x52, "1.2.276.0.7230010.3.0.3.6.7");
    size_t roles = item_begin(o, 0x54);   /* SCP/SCU role selection: skipped */
    be16(o, strlen(VERIFICATION));
    bytes(o, VERIFICATION, strlen(VERIFICATION));
    u8(o, 1);
    u8(o, 0);
    item_end(o, roles);
    item_text(o, 0x55, "TESTSCU_1");
    item_end(o, ui);
    pdu_end(o);
}

/* Implicit VR LE command elements. */
static void cmd_elem(bb *o, unsigned elem, const void *v, size_t n)
{
    le16(o, 0);
    le16(o, elem);
    le32(o, (uint32_t)(n + (n & 1)));
    bytes(o, v, n);
    if (n & 1)
        u8(o, 0);
}
static void cmd_us(bb *o, unsigned elem, unsigned v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    cmd_elem(o, elem, x, 2);
}
/* A request command set with its group length. */
static void build_cmd(bb *o, unsigned field, const char *sop_class, const char *sop_instance,
                      unsigned msg_id, unsigned dst)
{
    bb body = {.n = 0};
    if (sop_class)
        cmd_elem(&body, 0x0002, sop_class, strlen(sop_class));
    cmd_us(&body, 0x0100, field);
    cmd_us(&body, 0x0110, msg_id);
    if (field == 0x0001)
        cmd_us(&body, 0x0700, 0);
    cmd_us(&body, 0x0800, dst);
    if (sop_instance)
        cmd_elem(&body, 0x1000, sop_instance, strlen(sop_instance));
    o->n = 0;
    uint8_t gl[4] = {(uint8_t)body.n, (uint8_t)(body.n >> 8), 0, 0};
    cmd_elem(o, 0x0000, gl, 4);
    bytes(o, body.b, body.n);
}
static void pdv(bb *o, unsigned pc, unsigned mch, const void *p, size_t n)
{
    be32(o, (uint32_t)(n + 2));
    u8(o, pc);
    u8(o, mch);
    bytes(o, p, n);
}

/* ---- the handler --------------------------------------------------------------------- */

typedef struct rec {
    uint16_t end_status;      /* store_end returns this (when no failure came in) */
    uint16_t begin_fail;      /* non-zero: store_begin refuses with it */
    size_t data_stop_at;      /* non-zero: store_data stops after this many bytes, A700 */
    int associates, contexts, begins, datas, ends, ends_complete;
    uint16_t end_status_in;
    s2f_dimse_store st;
    char calling[S2F_DIMSE_AET_MAX + 1], impl_version[S2F_DIMSE_AET_MAX + 1];
    uint32_t peer_max;
    uint8_t data[65536];
    size_t n;
    int token;
} rec;

static int on_associate(void *ctx, const s2f_dimse_request *rq, s2f_dimse_reject *rj)
{
    rec *r = ctx;
    r->associates++;
    memcpy(r->calling, rq->calling_aet, sizeof r->calling);
    memcpy(r->impl_version, rq->impl_version, sizeof r->impl_version);
    r->peer_max = rq->peer_max_pdu;
    if (strcmp(rq->called_aet, OUR_AET) != 0) {
        *rj = (s2f_dimse_reject){1, 1, 7};
        return 1;
    }
    return 0;
}

static int on_context(void *ctx, const s2f_dimse_context *pc, size_t *chosen)
{
    rec *r = ctx;
    r->contexts++;
    if (strcmp(pc->abstract_syntax, VERIFICATION) != 0 && strcmp(pc->abstract_syntax, SR_CLASS) != 0)
        return S2F_DIMSE_CTX_ABSTRACT_NOT_SUPPORTED;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < pc->n_ts; i++)
            if (strcmp(pc->ts[i], pass ? IMPLICIT : EXPLICIT) == 0) {
                *chosen = i;
                return S2F_DIMSE_CTX_ACCEPT;
            }
    return S2F_DIMSE_CTX_TS_NOT_SUPPORTED;
}

static void *store_begin(void *ctx, const s2f_dimse_store *st, uint16_t *status)
{
    rec *r = ctx;
    r->begins++;
    r->st = *st;
    r->n = 0;
    if (r->begin_fail) {
        *status = r->begin_fail;
        return NULL;
    }
    return &r->token;
}

static int store_data(void *ctx, void *handle, const uint8_t *data, size_t len, uint16_t *status)
{
    rec *r = ctx;
    if (handle != &r->token)
        abort();
    r->datas++;
    if (r->n + len > sizeof r->data)
        abort();
    memcpy(r->data + r->n, data, len);
    r->n += len;
    if (r->data_stop_at && r->n >= r->data_stop_at) {
        *status = 0xA700;
        return 1;
    }
    return 0;
}

static uint16_t store_end(void *ctx, void *handle, int complete, uint16_t status)
{
    rec *r = ctx;
    if (handle != &r->token)
        abort();
    r->ends++;
    r->ends_complete += complete;
    r->end_status_in = status;
    return status ? status : r->end_status;
}

/* ---- the association on a thread ----------------------------------------------------- */

typedef struct srv {
    int fd;
    int reject_now;
    s2f_dimse_reject rj;
    s2f_dimse_limits lim;
    s2f_dimse_handler h;
    s2f_dimse_summary sum;
    rec r;
    pthread_t t;
} srv;

static void *srv_main(void *p)
{
    srv *s = p;
    s2f_dimse_io io;
    int ctx;
    s2f_dimse_io_fd(&io, &ctx, s->fd);
    if (s->reject_now)
        s2f_dimse_reject_now(&io, &s->lim, &s->rj, &s->sum);
    else
        s2f_dimse_serve(&io, &s->lim, &s->h, &s->sum);
    close(s->fd);
    return NULL;
}

/* Starts the association on a fresh socketpair; returns the requestor's end. */
static int srv_start(srv *s)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    s->fd = sv[1];
    s->h = (s2f_dimse_handler){&s->r, on_associate, on_context, store_begin, store_data,
                               store_end};
    if (!s->lim.artim_ms)
        s->lim.artim_ms = 2000;
    if (!s->lim.idle_ms)
        s->lim.idle_ms = 5000;
    pthread_create(&s->t, NULL, srv_main, s);
    return sv[0];
}

static srv *srv_new(void)
{
    srv *s = calloc(1, sizeof *s);
    return s;
}

/* Closes the requestor's end and waits for the association to end. */
static void srv_join(srv *s, int fd)
{
    if (fd >= 0)
        close(fd);
    pthread_join(s->t, NULL);
}

/* ---- the requestor ------------------------------------------------------------------- */

static int send_all(int fd, const void *p, size_t n)
{
    return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static int read_exact_fd(int fd, uint8_t *p, size_t n)
{
    while (n) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 10000) <= 0)
            return -1;
        ssize_t k = read(fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One whole PDU (header included) into o; -1 at end of stream or after 10 s. */
static int read_pdu_fd(int fd, bb *o)
{
    o->n = 0;
    if (read_exact_fd(fd, o->b, 6) != 0)
        return -1;
    uint32_t len = (uint32_t)o->b[2] << 24 | (uint32_t)o->b[3] << 16 | (uint32_t)o->b[4] << 8 |
                   o->b[5];
    if (len > sizeof o->b - 6 || read_exact_fd(fd, o->b + 6, len) != 0)
        return -1;
    o->n = 6 + len;
    return 0;
}

/* 1 when the peer closed the connection (EOF) without sending anything more. */
static int reads_eof(int fd)
{
    uint8_t x;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 10000) <= 0)
        return 0;
    return read(fd, &x, 1) == 0;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A response command set read from P-DATA-TF PDUs (command PDVs until the last one);
 * every PDU must fit max_len (its variable part) when max_len is non-zero. Returns the
 * number of PDUs, or -1. */
static int read_command(int fd, bb *cmd, uint32_t max_len, uint8_t *pc_out)
{
    bb pdu;
    int pdus = 0;
    cmd->n = 0;
    for (;;) {
        if (read_pdu_fd(fd, &pdu) != 0 || pdu.b[0] != 0x04)
            return -1;
        if (max_len && pdu.n - 6 > max_len)
            return -1;
        pdus++;
        for (size_t off = 6; off < pdu.n;) {
            uint32_t len = get_be32(pdu.b + off);
            uint8_t mch = pdu.b[off + 5];
            *pc_out = pdu.b[off + 4];
            if (!(mch & 1) || len < 2 || len > pdu.n - off - 4)
                return -1;
            bytes(cmd, pdu.b + off + 6, len - 2);
            off += 4 + len;
            if (mch & 2)
                return off == pdu.n ? pdus : -1;
        }
    }
}

/* An element's value in an Implicit VR LE command set; NULL when absent. */
static const uint8_t *find_elem(const bb *c, unsigned elem, uint32_t *len)
{
    for (size_t off = 0; off + 8 <= c->n;) {
        unsigned e = c->b[off + 2] | c->b[off + 3] << 8;
        uint32_t l = c->b[off + 4] | c->b[off + 5] << 8 | (uint32_t)c->b[off + 6] << 16 |
                     (uint32_t)c->b[off + 7] << 24;
        if (e == elem) {
            *len = l;
            return c->b + off + 8;
        }
        off += 8 + l;
    }
    return NULL;
}
static int us_of(const bb *c, unsigned elem)
{
    uint32_t len;
    const uint8_t *v = find_elem(c, elem, &len);
    return v && len == 2 ? v[0] | v[1] << 8 : -1;
}
static int ui_is(const bb *c, unsigned elem, const char *uid)
{
    uint32_t len;
    const uint8_t *v = find_elem(c, elem, &len);
    size_t n = strlen(uid);
    return v && len == n + (n & 1) && memcmp(v, uid, n) == 0 && (!(n & 1) || v[n] == 0);
}
/* The group length (0000,0000) is the number of bytes after it. */
static int group_length_ok(const bb *c)
{
    uint32_t len;
    const uint8_t *v = find_elem(c, 0x0000, &len);
    return v && len == 4 && (size_t)(v[0] | v[1] << 8) == c->n - 12 && c->b[2] == 0 && c->b[3] == 0;
}

static const uint8_t ABORT_6[10] = {7, 0, 0, 0, 0, 4, 0, 0, 2, 6};

/* Sends the usual RQ and reads the A-ASSOCIATE-AC. */
static const pctx USUAL[] = {
    {1, VERIFICATION, {IMPLICIT}},
    {3, SR_CLASS, {IMPLICIT, EXPLICIT}},
    {5, CT_CLASS, {EXPLICIT}},
    {7, SR_CLASS, {BIG_ENDIAN_TS}},
};
static int associate(int fd, uint32_t max_pdu, bb *ac)
{
    bb rq;
    build_rq(&rq, OUR_AET, "TESTSCU", USUAL, 4, max_pdu);
    if (send_all(fd, rq.b, rq.n) != 0 || read_pdu_fd(fd, ac) != 0)
        return -1;
    return ac->b[0] == 0x02 ? 0 : -1;
}

/* ---- pure parsers -------------------------------------------------------------------- */

static s2f_dimse_context ctxs[128];

TEST(parse_rq_fields)
{
    bb rq;
    build_rq(&rq, OUR_AET, "  TESTSCU", USUAL, 4, 16384);
    s2f_dimse_request r;
    uint32_t max = 0;
    s2f_error err = {0};
    CHECK(s2f_dimse_parse_associate_rq(rq.b + 6, rq.n - 6, &r, ctxs, 128, &max, &err) == S2F_OK);
    CHECK_STR(r.called_aet, OUR_AET);
    CHECK_STR(r.calling_aet, "TESTSCU");
    CHECK_STR(r.impl_class_uid, "1.2.276.0.7230010.3.0.3.6.7");
    CHECK_STR(r.impl_version, "TESTSCU_1");
    CHECK(max == 16384 && r.peer_max_pdu == 16384);
    CHECK(r.n_contexts == 4 && r.contexts == ctxs);
    CHECK(ctxs[1].id == 3 && ctxs[1].n_ts == 2);
    CHECK_STR(ctxs[1].abstract_syntax, SR_CLASS);
    CHECK_STR(ctxs[1].ts[0], IMPLICIT);
    CHECK_STR(ctxs[1].ts[1], EXPLICIT);
    CHECK_STR(ctxs[3].ts[0], BIG_ENDIAN_TS);
}

TEST(parse_rq_truncated)
{
    bb rq;
    build_rq(&rq, OUR_AET, "TESTSCU", USUAL, 2, 16384);
    const uint8_t *p = rq.b + 6;
    size_t n = rq.n - 6;
    s2f_dimse_request r;
    s2f_error err;
    /* every prefix: no crash; those ending inside an item (all but the item boundaries
     * after the first context) fail */
    size_t ok = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *copy = malloc(k ? k : 1);   /* exact size: ASan sees any overread */
        memcpy(copy, p, k);
        s2f_code rc = s2f_dimse_parse_associate_rq(copy, k, &r, ctxs, 128, NULL, &err);
        free(copy);
        CHECK(rc == S2F_OK || rc == S2F_EFORMAT);
        ok += rc == S2F_OK;
    }
    CHECK(ok == 2);   /* after the first and after the second context */
    CHECK(s2f_dimse_parse_associate_rq(p, 60, &r, ctxs, 128, NULL, &err) == S2F_EFORMAT);
    CHECK(strstr(err.message, "A-ASSOCIATE-RQ of 60 bytes") != NULL);
}

TEST(parse_rq_errors)
{
    bb rq;
    s2f_dimse_request r;
    s2f_error err;
    /* an unknown item type after the contexts */
    build_rq(&rq, OUR_AET, "TESTSCU", USUAL, 1, 0);
    size_t at = item_begin(&rq, 0x99);
    u8(&rq, 1);
    item_end(&rq, at);
    pdu_end(&rq);
    CHECK(s2f_dimse_parse_associate_rq(rq.b + 6, rq.n - 6, &r, ctxs, 128, NULL, &err) ==
          S2F_EFORMAT);
    CHECK(strstr(err.message, "unknown item type 0x99") != NULL);
    /* an item longer than what is left */
    build_rq(&rq, OUR_AET, "TESTSCU", USUAL, 1, 0);
    rq.b[6 + 68 + 3] += 200;   /* the application context item's length */
    CHECK(s2f_dimse_parse_associate_rq(rq.b + 6, rq.n - 6, &r, ctxs, 128, NULL, &err) ==
          S2F_EFORMAT);
    CHECK(strstr(err.message, "over the") != NULL);
    /* an even context id; a context proposed twice; too many for the capacity */
    pctx even[] = {{2, SR_CLASS, {EXPLICIT}}};
    build_rq(&rq, OUR_AET, "TESTSCU", even, 1, 0);
    CHECK(s2f_dimse_parse_associate_rq(rq.b + 6, rq.n - 6, &r, ctxs, 128, NULL, &err) ==
          S2F_EFORMAT);
    pctx twice[] = {{3, SR_CLASS, {EXPLICIT}}, {3, VERIFICATION, {IMPLICIT}}};
    build_rq(&rq, OUR_AET, "TESTSCU", twice, 2, 0);
    CHECK(s2f_dimse_parse_associate_rq(rq.b + 6, rq.n - 6, &r, ctxs, 128, NULL, &err) ==
          S2F_EFORMAT);
    build_rq(&rq, OUR_AET, "TESTSCU", USUAL, 4, 0);
    CHECK(s2f_dimse_parse_associate_rq(rq.b + 6, rq.n - 6, &r, ctxs, 3, NULL, &err) == S2F_ELIMIT);
    CHECK(s2f_dimse_parse_associate_rq(rq.b + 6, rq.n - 6, &r, ctxs, 4, NULL, &err) == S2F_OK);
    /* a context without abstract syntax; an AE title with a control character */
    pctx none[] = {{1, "", {IMPLICIT}}};
    build_rq(&rq, OUR_AET, "TESTSCU", none, 1, 0);
    CHECK(s2f_dimse_parse_associate_rq(rq.b + 6, rq.n - 6, &r, ctxs, 128, NULL, &err) ==
          S2F_EFORMAT);
    build_rq(&rq, OUR_AET, "TEST\nSCU", USUAL, 1, 0);
    CHECK(s2f_dimse_parse_associate_rq(rq.b + 6, rq.n - 6, &r, ctxs, 128, NULL, &err) ==
          S2F_EFORMAT);
}

TEST(parse_command_fields_and_truncation)
{
    bb c;
    build_cmd(&c, 0x0001, SR_CLASS, INSTANCE, 42, 0x0000);
    s2f_dimse_command cmd;
    s2f_error err;
    CHECK(s2f_dimse_parse_command(c.b, c.n, &cmd, &err) == S2F_OK);
    CHECK(cmd.command_field == 1 && cmd.message_id == 42 && cmd.data_set_type == 0);
    CHECK_STR(cmd.affected_sop_class, SR_CLASS);
    CHECK_STR(cmd.affected_sop_instance, INSTANCE);
    CHECK_STR(cmd.move_originator_aet, "");
    size_t ok = 0;
    for (size_t k = 0; k < c.n; k++) {
        uint8_t *copy = malloc(k ? k : 1);
        memcpy(copy, c.b, k);
        s2f_code rc = s2f_dimse_parse_command(copy, k, &cmd, &err);
        free(copy);
        CHECK(rc == S2F_OK || rc == S2F_EFORMAT);
        ok += rc == S2F_OK;
    }
    /* only the prefix that ends right after (0000,0800) holds both required elements */
    CHECK(ok == 1);
    /* an element outside group 0000; a US of 4 bytes; no command field */
    bb bad = c;
    bad.b[12] = 0x08;
    CHECK(s2f_dimse_parse_command(bad.b, bad.n, &cmd, &err) == S2F_EFORMAT);
    CHECK(strstr(err.message, "not of the command group") != NULL);
    bb us4 = {.n = 0};
    uint8_t four[4] = {1, 0, 0, 0};
    cmd_elem(&us4, 0x0100, four, 4);
    CHECK(s2f_dimse_parse_command(us4.b, us4.n, &cmd, &err) == S2F_EFORMAT);
    bb nofield = {.n = 0};
    cmd_us(&nofield, 0x0800, 0x0101);
    CHECK(s2f_dimse_parse_command(nofield.b, nofield.n, &cmd, &err) == S2F_EFORMAT);
    CHECK(strstr(err.message, "(0000,0100)") != NULL);
}

/* ---- whole associations -------------------------------------------------------------- */

/* The A-ASSOCIATE-AC's presentation context items: result and transfer syntax of id. */
static int ac_context(const bb *ac, unsigned id, unsigned *result, char *ts)
{
    for (size_t off = 6 + 68; off + 4 <= ac->n;) {
        unsigned type = ac->b[off], len = ac->b[off + 2] << 8 | ac->b[off + 3];
        if (type == 0x21 && ac->b[off + 4] == id) {
            *result = ac->b[off + 6];
            const uint8_t *s = ac->b + off + 8;
            unsigned tl = s[2] << 8 | s[3];
            if (s[0] != 0x40 || tl + 4 + 4 != len)
                return -1;
            memcpy(ts, s + 4, tl);
            ts[tl] = 0;
            return 0;
        }
        off += 4 + len;
    }
    return -1;
}

static int ac_user_max(const bb *ac, uint32_t *max, char *impl)
{
    for (size_t off = 6 + 68; off + 4 <= ac->n;) {
        unsigned type = ac->b[off], len = ac->b[off + 2] << 8 | ac->b[off + 3];
        if (type == 0x50) {
            int found = 0;
            for (size_t s = off + 4; s + 4 <= off + 4 + len;) {
                unsigned st = ac->b[s], sl = ac->b[s + 2] << 8 | ac->b[s + 3];
                if (st == 0x51 && sl == 4) {
                    *max = get_be32(ac->b + s + 4);
                    found |= 1;
                }
                if (st == 0x52) {
                    memcpy(impl, ac->b + s + 4, sl);
                    impl[sl] = 0;
                    found |= 2;
                }
                s += 4 + sl;
            }
            return found == 3 ? 0 : -1;
        }
        off += 4 + len;
    }
    return -1;
}

TEST(serve_echo_store_release)
{
    srv *s = srv_new();
    s->lim.max_pdu = 32768;
    s->r.end_status = 0x0000;
    int fd = srv_start(s);
    bb ac, c, pdu, rsp;
    uint8_t pc = 0;
    unsigned res;
    char ts[80], impl[80];
    uint32_t max = 0;
    CHECK(associate(fd, 16384, &ac) == 0);
    /* the AC echoes the AE titles, answers every context, announces our maximum */
    CHECK(ac.b[6] == 0 && ac.b[7] == 1 && memcmp(ac.b + 10, "SR2FHIR         ", 16) == 0);
    CHECK(memcmp(ac.b + 26, "TESTSCU         ", 16) == 0);
    CHECK(ac_context(&ac, 1, &res, ts) == 0 && res == 0);
    CHECK_STR(ts, IMPLICIT);
    CHECK(ac_context(&ac, 3, &res, ts) == 0 && res == 0);
    CHECK_STR(ts, EXPLICIT);
    CHECK(ac_context(&ac, 5, &res, ts) == 0 && res == 3);
    CHECK(ac_context(&ac, 7, &res, ts) == 0 && res == 4);
    CHECK(ac_user_max(&ac, &max, impl) == 0 && max == 32768);
    CHECK_STR(impl, S2F_DIMSE_IMPL_CLASS_UID);
    CHECK(s->r.associates == 1 && s->r.contexts == 4 && s->r.peer_max == 16384);
    CHECK_STR(s->r.impl_version, "TESTSCU_1");

    /* C-ECHO */
    build_cmd(&c, 0x0030, VERIFICATION, NULL, 7, 0x0101);
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 1, 0x03, c.b, c.n);
    pdu_end(&pdu);
    CHECK(send_all(fd, pdu.b, pdu.n) == 0);
    CHECK(read_command(fd, &rsp, 16384, &pc) == 1 && pc == 1);
    CHECK(group_length_ok(&rsp));
    CHECK(us_of(&rsp, 0x0100) == 0x8030 && us_of(&rsp, 0x0120) == 7);
    CHECK(us_of(&rsp, 0x0800) == 0x0101 && us_of(&rsp, 0x0900) == 0);
    CHECK(ui_is(&rsp, 0x0002, VERIFICATION));

    /* C-STORE: the command in two PDVs of one PDU, the data set in three PDVs over two PDUs */
    uint8_t ds[3000];
    for (size_t i = 0; i < sizeof ds; i++)
        ds[i] = (uint8_t)(i * 7);
    build_cmd(&c, 0x0001, SR_CLASS, INSTANCE, 8, 0x0000);
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 3, 0x01, c.b, 10);
    pdv(&pdu, 3, 0x03, c.b + 10, c.n - 10);
    pdv(&pdu, 3, 0x00, ds, 1000);
    pdu_end(&pdu);
    CHECK(send_all(fd, pdu.b, pdu.n) == 0);
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 3, 0x00, ds + 1000, 1500);
    pdv(&pdu, 3, 0x02, ds + 2500, 500);
    pdu_end(&pdu);
    CHECK(send_all(fd, pdu.b, pdu.n) == 0);
    CHECK(read_command(fd, &rsp, 16384, &pc) == 1 && pc == 3);
    CHECK(group_length_ok(&rsp));
    CHECK(us_of(&rsp, 0x0100) == 0x8001 && us_of(&rsp, 0x0120) == 8);
    CHECK(us_of(&rsp, 0x0800) == 0x0101 && us_of(&rsp, 0x0900) == 0);
    CHECK(ui_is(&rsp, 0x0002, SR_CLASS) && ui_is(&rsp, 0x1000, INSTANCE));
    CHECK(s->r.begins == 1 && s->r.ends == 1 && s->r.ends_complete == 1 && s->r.datas == 3);
    CHECK(s->r.n == sizeof ds && memcmp(s->r.data, ds, sizeof ds) == 0);
    CHECK(s->r.st.context_id == 3 && s->r.st.message_id == 8);
    CHECK_STR(s->r.st.transfer_syntax, EXPLICIT);
    CHECK_STR(s->r.st.sop_class, SR_CLASS);
    CHECK_STR(s->r.st.sop_instance, INSTANCE);

    /* a second store: the status store_end returns is what the response carries */
    s->r.end_status = 0xA700;
    build_cmd(&c, 0x0001, SR_CLASS, INSTANCE, 9, 0x0000);
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 3, 0x03, c.b, c.n);
    pdv(&pdu, 3, 0x02, ds, 10);
    pdu_end(&pdu);
    CHECK(send_all(fd, pdu.b, pdu.n) == 0);
    CHECK(read_command(fd, &rsp, 16384, &pc) == 1);
    CHECK(us_of(&rsp, 0x0900) == 0xA700 && us_of(&rsp, 0x0120) == 9);

    /* release */
    static const uint8_t release_rq[10] = {5, 0, 0, 0, 0, 4, 0, 0, 0, 0};
    static const uint8_t release_rp[10] = {6, 0, 0, 0, 0, 4, 0, 0, 0, 0};
    CHECK(send_all(fd, release_rq, 10) == 0);
    CHECK(read_pdu_fd(fd, &pdu) == 0 && pdu.n == 10 && memcmp(pdu.b, release_rp, 10) == 0);
    srv_join(s, fd);
    CHECK(s->sum.outcome == S2F_DIMSE_RELEASED);
    CHECK(s->sum.echoes == 1 && s->sum.stores == 2 && s->sum.stores_ok == 1);
    CHECK_STR(s->sum.calling_aet, "TESTSCU");
    CHECK_STR(s->sum.called_aet, OUR_AET);
    CHECK_STR(s->sum.detail, "");
    free(s);
}

TEST(serve_small_peer_max_fragments_responses)
{
    srv *s = srv_new();
    int fd = srv_start(s);
    bb ac, c, pdu, rsp;
    uint8_t pc;
    CHECK(associate(fd, 40, &ac) == 0);
    build_cmd(&c, 0x0001, SR_CLASS, INSTANCE, 1, 0x0000);
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 3, 0x03, c.b, c.n);
    pdv(&pdu, 3, 0x02, "ab", 2);
    pdu_end(&pdu);
    CHECK(send_all(fd, pdu.b, pdu.n) == 0);
    int pdus = read_command(fd, &rsp, 40, &pc);
    CHECK(pdus == 4);   /* 126 bytes in 34-byte fragments, each PDU within 40 bytes */
    CHECK(group_length_ok(&rsp) && us_of(&rsp, 0x0900) == 0 && ui_is(&rsp, 0x1000, INSTANCE));
    srv_join(s, fd);
    CHECK(s->sum.outcome == S2F_DIMSE_DROPPED && s->r.ends == 1);
    free(s);
}

TEST(serve_rejects_association)
{
    srv *s = srv_new();
    int fd = srv_start(s);
    bb rq, pdu;
    build_rq(&rq, "SOMEONE", "TESTSCU", USUAL, 1, 0);
    CHECK(send_all(fd, rq.b, rq.n) == 0);
    static const uint8_t rj[10] = {3, 0, 0, 0, 0, 4, 0, 1, 1, 7};
    CHECK(read_pdu_fd(fd, &pdu) == 0 && pdu.n == 10 && memcmp(pdu.b, rj, 10) == 0);
    srv_join(s, fd);
    CHECK(s->sum.outcome == S2F_DIMSE_REJECTED && s->r.contexts == 0);
    CHECK_STR(s->sum.called_aet, "SOMEONE");
    /* a wrong application context name: 1/1/2 without asking the handler */
    srv *t = srv_new();
    fd = srv_start(t);
    build_rq(&rq, OUR_AET, "TESTSCU", USUAL, 1, 0);
    rq.b[6 + 68 + 4 + 20] = '2';   /* 1.2.840.10008.3.1.1.2 */
    CHECK(send_all(fd, rq.b, rq.n) == 0);
    static const uint8_t rj2[10] = {3, 0, 0, 0, 0, 4, 0, 1, 1, 2};
    CHECK(read_pdu_fd(fd, &pdu) == 0 && memcmp(pdu.b, rj2, 10) == 0);
    srv_join(t, fd);
    CHECK(t->sum.outcome == S2F_DIMSE_REJECTED && t->r.associates == 0);
    free(s);
    free(t);
}

TEST(reject_now_reads_then_rejects)
{
    srv *s = srv_new();
    s->reject_now = 1;
    s->rj = (s2f_dimse_reject){2, 3, 2};
    int fd = srv_start(s);
    bb rq, pdu;
    build_rq(&rq, OUR_AET, "BUSYSCU", USUAL, 2, 0);
    CHECK(send_all(fd, rq.b, rq.n) == 0);
    static const uint8_t rj[10] = {3, 0, 0, 0, 0, 4, 0, 2, 3, 2};
    CHECK(read_pdu_fd(fd, &pdu) == 0 && pdu.n == 10 && memcmp(pdu.b, rj, 10) == 0);
    srv_join(s, fd);
    CHECK(s->sum.outcome == S2F_DIMSE_REJECTED);
    CHECK_STR(s->sum.calling_aet, "BUSYSCU");
    free(s);
}

/* A store begun, part of its data set sent, then `how`: 0 the peer's A-ABORT, 1 close. */
static void store_interrupted(int how, s2f_dimse_summary *sum, rec *r)
{
    srv *s = srv_new();
    int fd = srv_start(s);
    bb ac, c, pdu;
    if (associate(fd, 0, &ac) == 0) {
        build_cmd(&c, 0x0001, SR_CLASS, INSTANCE, 3, 0x0000);
        pdu_begin(&pdu, 0x04);
        pdv(&pdu, 3, 0x03, c.b, c.n);
        pdv(&pdu, 3, 0x00, "half", 4);
        pdu_end(&pdu);
        send_all(fd, pdu.b, pdu.n);
        if (how == 0) {
            static const uint8_t abort_rq[10] = {7, 0, 0, 0, 0, 4, 0, 0, 0, 0};
            send_all(fd, abort_rq, 10);
            reads_eof(fd);
        }
    }
    srv_join(s, fd);
    *sum = s->sum;
    *r = s->r;
    free(s);
}

TEST(serve_peer_abort_mid_dataset)
{
    s2f_dimse_summary sum;
    static rec r;
    store_interrupted(0, &sum, &r);
    CHECK(sum.outcome == S2F_DIMSE_ABORTED_BY_PEER);
    CHECK(r.begins == 1 && r.ends == 1 && r.ends_complete == 0 && r.n == 4);
    CHECK(sum.stores == 0);
    store_interrupted(1, &sum, &r);
    CHECK(sum.outcome == S2F_DIMSE_DROPPED);
    CHECK(r.begins == 1 && r.ends == 1 && r.ends_complete == 0);
}

/* Associates, sends `bad` (len bytes), expects exactly our A-ABORT with reason. */
static int aborts_on(const void *bad, size_t len, uint8_t reason, uint32_t max_pdu,
                     s2f_dimse_summary *sum)
{
    srv *s = srv_new();
    s->lim.max_pdu = max_pdu;
    int fd = srv_start(s);
    bb ac, pdu;
    int ok = associate(fd, 0, &ac) == 0 && send_all(fd, bad, len) == 0 &&
             read_pdu_fd(fd, &pdu) == 0 && pdu.n == 10 && memcmp(pdu.b, ABORT_6, 8) == 0 &&
             pdu.b[9] == reason;
    srv_join(s, fd);
    *sum = s->sum;
    free(s);
    return ok;
}

TEST(serve_malformed_pdus_abort)
{
    s2f_dimse_summary sum;
    static const uint8_t unknown[10] = {0x09, 0, 0, 0, 0, 4, 0, 0, 0, 0};
    CHECK(aborts_on(unknown, 10, 1, 0, &sum) && sum.outcome == S2F_DIMSE_ABORTED);
    CHECK(strstr(sum.detail, "unknown PDU type 0x09") != NULL);
    /* a P-DATA-TF over the limit (only its header is sent) */
    static const uint8_t big[6] = {0x04, 0, 0, 0, 0x04, 0x01};
    CHECK(aborts_on(big, 6, 6, 1024, &sum) && strstr(sum.detail, "1025 bytes") != NULL);
    /* a PDV item longer than its PDU */
    bb pdu;
    pdu_begin(&pdu, 0x04);
    be32(&pdu, 50);
    u8(&pdu, 1);
    u8(&pdu, 3);
    bytes(&pdu, "0123456789", 10);
    pdu_end(&pdu);
    CHECK(aborts_on(pdu.b, pdu.n, 6, 0, &sum) && strstr(sum.detail, "PDV item length 50") != NULL);
    /* a PDV on a rejected context */
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 5, 0x03, "xx", 2);
    pdu_end(&pdu);
    CHECK(aborts_on(pdu.b, pdu.n, 6, 0, &sum));
    /* a data set fragment with no command before it */
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 3, 0x02, "xx", 2);
    pdu_end(&pdu);
    CHECK(aborts_on(pdu.b, pdu.n, 6, 0, &sum));
    /* a command set that does not parse */
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 1, 0x03, "\x00\x00\x00\x01\x02\x00", 6);
    pdu_end(&pdu);
    CHECK(aborts_on(pdu.b, pdu.n, 6, 0, &sum) && strstr(sum.detail, "command set:") != NULL);
    /* A-RELEASE-RQ of a wrong length, a second A-ASSOCIATE-RQ */
    static const uint8_t release6[12] = {5, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0};
    CHECK(aborts_on(release6, 12, 6, 0, &sum));
    bb rq;
    build_rq(&rq, OUR_AET, "TESTSCU", USUAL, 1, 0);
    CHECK(aborts_on(rq.b, rq.n, 2, 0, &sum) && strstr(sum.detail, "unexpected A-ASSOCIATE-RQ"));
}

TEST(serve_malformed_rq_aborts)
{
    /* an unknown item type in the A-ASSOCIATE-RQ: reason 4; a P-DATA-TF first: reason 2 */
    bb rq, pdu;
    build_rq(&rq, OUR_AET, "TESTSCU", USUAL, 1, 0);
    size_t at = item_begin(&rq, 0x77);
    item_end(&rq, at);
    pdu_end(&rq);
    srv *s = srv_new();
    int fd = srv_start(s);
    CHECK(send_all(fd, rq.b, rq.n) == 0);
    CHECK(read_pdu_fd(fd, &pdu) == 0 && pdu.n == 10 && memcmp(pdu.b, ABORT_6, 8) == 0 &&
          pdu.b[9] == 4);
    srv_join(s, fd);
    CHECK(s->sum.outcome == S2F_DIMSE_ABORTED && s->r.associates == 0);
    free(s);
    s = srv_new();
    fd = srv_start(s);
    pdu_begin(&rq, 0x04);
    pdv(&rq, 1, 3, "xx", 2);
    pdu_end(&rq);
    CHECK(send_all(fd, rq.b, rq.n) == 0);
    CHECK(read_pdu_fd(fd, &pdu) == 0 && memcmp(pdu.b, ABORT_6, 8) == 0 && pdu.b[9] == 2);
    srv_join(s, fd);
    free(s);
}

TEST(serve_artim_and_idle)
{
    /* nothing after connecting: ARTIM ends it, nothing is sent */
    srv *s = srv_new();
    s->lim.artim_ms = 100;
    int fd = srv_start(s);
    CHECK(reads_eof(fd));
    srv_join(s, fd);
    CHECK(s->sum.outcome == S2F_DIMSE_TIMED_OUT && strstr(s->sum.detail, "ARTIM") != NULL);
    free(s);
    /* half an A-ASSOCIATE-RQ: ARTIM too */
    s = srv_new();
    s->lim.artim_ms = 100;
    fd = srv_start(s);
    bb rq, ac, pdu;
    build_rq(&rq, OUR_AET, "TESTSCU", USUAL, 1, 0);
    CHECK(send_all(fd, rq.b, rq.n / 2) == 0);
    CHECK(reads_eof(fd));
    srv_join(s, fd);
    CHECK(s->sum.outcome == S2F_DIMSE_TIMED_OUT);
    free(s);
    /* established, then silence: A-ABORT after idle_ms; mid data set: store_end(0) */
    s = srv_new();
    s->lim.idle_ms = 100;
    s->lim.artim_ms = 100;
    fd = srv_start(s);
    CHECK(associate(fd, 0, &ac) == 0);
    bb c;
    build_cmd(&c, 0x0001, SR_CLASS, INSTANCE, 3, 0x0000);
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 3, 0x03, c.b, c.n);
    pdu_end(&pdu);
    CHECK(send_all(fd, pdu.b, pdu.n) == 0);
    static const uint8_t abort0[10] = {7, 0, 0, 0, 0, 4, 0, 0, 2, 0};
    CHECK(read_pdu_fd(fd, &pdu) == 0 && pdu.n == 10 && memcmp(pdu.b, abort0, 10) == 0);
    CHECK(reads_eof(fd));   /* after ARTIM the association ends without us closing */
    srv_join(s, fd);
    CHECK(s->sum.outcome == S2F_DIMSE_TIMED_OUT && s->r.ends == 1 && s->r.ends_complete == 0);
    free(s);
}

TEST(serve_store_statuses)
{
    srv *s = srv_new();
    s->lim.max_dataset = 10;
    int fd = srv_start(s);
    bb ac, c, pdu, rsp;
    uint8_t pc;
    CHECK(associate(fd, 0, &ac) == 0);
    /* over max_dataset: the rest dropped, A700 even though store_end would say 0 */
    build_cmd(&c, 0x0001, SR_CLASS, INSTANCE, 1, 0x0000);
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 3, 0x03, c.b, c.n);
    pdv(&pdu, 3, 0x00, "0123456789", 10);
    pdv(&pdu, 3, 0x02, "abcdef", 6);
    pdu_end(&pdu);
    CHECK(send_all(fd, pdu.b, pdu.n) == 0);
    CHECK(read_command(fd, &rsp, 0, &pc) == 1 && us_of(&rsp, 0x0900) == 0xA700);
    CHECK(s->r.n == 10 && s->r.ends_complete == 1 && s->r.end_status_in == 0xA700);
    /* store_begin refuses: its status, no store_end */
    s->r.begin_fail = 0xA900;
    build_cmd(&c, 0x0001, SR_CLASS, INSTANCE, 2, 0x0000);
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 3, 0x03, c.b, c.n);
    pdv(&pdu, 3, 0x02, "ab", 2);
    pdu_end(&pdu);
    CHECK(send_all(fd, pdu.b, pdu.n) == 0);
    CHECK(read_command(fd, &rsp, 0, &pc) == 1 && us_of(&rsp, 0x0900) == 0xA900);
    CHECK(s->r.begins == 2 && s->r.ends == 1);
    /* store_data stops: its status is handed to store_end and answered */
    s->r.begin_fail = 0;
    s->r.data_stop_at = 2;
    build_cmd(&c, 0x0001, SR_CLASS, INSTANCE, 3, 0x0000);
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 3, 0x03, c.b, c.n);
    pdv(&pdu, 3, 0x00, "ab", 2);
    pdv(&pdu, 3, 0x02, "cd", 2);
    pdu_end(&pdu);
    CHECK(send_all(fd, pdu.b, pdu.n) == 0);
    CHECK(read_command(fd, &rsp, 0, &pc) == 1 && us_of(&rsp, 0x0900) == 0xA700);
    CHECK(s->r.datas == 2 && s->r.ends == 2 && s->r.end_status_in == 0xA700);
    /* the command's SOP Class is not the context's: 0122, handler not asked */
    build_cmd(&c, 0x0001, CT_CLASS, INSTANCE, 4, 0x0000);
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 3, 0x03, c.b, c.n);
    pdv(&pdu, 3, 0x02, "ab", 2);
    pdu_end(&pdu);
    CHECK(send_all(fd, pdu.b, pdu.n) == 0);
    CHECK(read_command(fd, &rsp, 0, &pc) == 1 && us_of(&rsp, 0x0900) == 0x0122);
    CHECK(s->r.begins == 3);
    /* an unknown request: 0211 in its response */
    build_cmd(&c, 0x0020, SR_CLASS, NULL, 5, 0x0101);
    pdu_begin(&pdu, 0x04);
    pdv(&pdu, 3, 0x03, c.b, c.n);
    pdu_end(&pdu);
    CHECK(send_all(fd, pdu.b, pdu.n) == 0);
    CHECK(read_command(fd, &rsp, 0, &pc) == 1 && us_of(&rsp, 0x0100) == 0x8020 &&
          us_of(&rsp, 0x0900) == 0x0211 && us_of(&rsp, 0x0120) == 5);
    srv_join(s, fd);
    CHECK(s->sum.stores == 4 && s->sum.stores_ok == 0);
    free(s);
}

/* ---- DCMTK as the requestor ---------------------------------------------------------- */

typedef struct listener {
    int lfd, port, n;           /* serve n associations one after the other */
    srv *s;
    pthread_t t;
} listener;

static void *listen_main(void *p)
{
    listener *l = p;
    for (int i = 0; i < l->n; i++) {
        struct pollfd pfd = {.fd = l->lfd, .events = POLLIN};
        if (poll(&pfd, 1, 20000) <= 0)
            return NULL;
        int fd = accept(l->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        s2f_dimse_io io;
        int ctx;
        s2f_dimse_io_fd(&io, &ctx, fd);
        l->s->h = (s2f_dimse_handler){&l->s->r, on_associate, on_context, store_begin, store_data,
                                      store_end};
        s2f_dimse_serve(&io, &l->s->lim, &l->s->h, &l->s->sum);
        close(fd);
    }
    return NULL;
}

static int listen_start(listener *l)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (l->lfd < 0 || bind(l->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(l->lfd, 4) != 0 || getsockname(l->lfd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    l->port = ntohs(a.sin_port);
    return pthread_create(&l->t, NULL, listen_main, l);
}

static int have_tool(const char *name)
{
    char path[256];
    const char *dirs[] = {"/usr/bin", "/usr/local/bin", "/bin"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        if (access(path, X_OK) == 0)
            return 1;
    }
    return 0;
}

/* Runs argv (output to log), at most 30 s; its exit status or -1. */
static int run_tool(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    for (int i = 0; i < 3000; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

TEST(dcmtk_echoscu_and_storescu)
{
    if (!have_tool("echoscu") || !have_tool("storescu"))
        SKIP("DCMTK echoscu/storescu not installed");
    char dir[] = "/tmp/test_dimse_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char file[300], log[300], port[16];
    snprintf(file, sizeof file, "%s/sr.dcm", dir);
    snprintf(log, sizeof log, "%s/tool.log", dir);
    buf f = part10(SR_CLASS, INSTANCE, "1.2.826.0.1.3680043.8.498.1");
    /* (0040,A160) Text Value, UT of 40,000 bytes: the data set spans several PDUs of at
     * most our 16,384 bytes (DCMTK must respect the maximum we announce) */
    put16(&f, 0x0040);
    put16(&f, 0xA160);
    put(&f, "UT\0\0", 4);
    put32(&f, 40000);
    for (int i = 0; i < 40000; i++)
        put(&f, &"abcdefghij"[i % 10], 1);
    FILE *fp = fopen(file, "wb");
    CHECK(fp && fwrite(f.p, 1, f.n, fp) == f.n && fclose(fp) == 0);
    listener l = {.n = 2};
    l.s = srv_new();
    l.s->lim.max_pdu = 16384;
    CHECK(listen_start(&l) == 0);
    snprintf(port, sizeof port, "%d", l.port);
    char *echo[] = {"echoscu", "-aet", "ECHOSCU", "-aec", OUR_AET, "127.0.0.1", port, NULL};
    int echo_rc = run_tool(echo, log);
    char *store[] = {"storescu", "-aet", "STORESCU", "-aec", OUR_AET, "-R", "127.0.0.1", port,
                     file, NULL};
    int store_rc = echo_rc == 0 ? run_tool(store, log) : -1;
    pthread_join(l.t, NULL);
    close(l.lfd);
    srv *s = l.s;
    unlink(file);
    unlink(log);
    rmdir(dir);
    CHECK(echo_rc == 0 && store_rc == 0);
    CHECK(s->sum.outcome == S2F_DIMSE_RELEASED && s->sum.stores == 1 && s->sum.stores_ok == 1);
    CHECK_STR(s->sum.calling_aet, "STORESCU");
    CHECK(s->r.begins == 1 && s->r.ends_complete == 1 && s->r.datas >= 3);
    CHECK_STR(s->r.st.sop_instance, INSTANCE);
    /* the data set as the file holds it after its meta group (Explicit VR LE accepted) */
    size_t meta_end = 128 + 4 + 12 + (size_t)(f.p[140] & 0xFF) + ((size_t)(f.p[141] & 0xFF) << 8);
    CHECK_STR(s->r.st.transfer_syntax, EXPLICIT);
    CHECK(s->r.n == f.n - meta_end && memcmp(s->r.data, f.p + meta_end, s->r.n) == 0);
    free(f.p);
    free(s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(parse_rq_fields);
    RUN(parse_rq_truncated);
    RUN(parse_rq_errors);
    RUN(parse_command_fields_and_truncation);
    RUN(serve_echo_store_release);
    RUN(serve_small_peer_max_fragments_responses);
    RUN(serve_rejects_association);
    RUN(reject_now_reads_then_rejects);
    RUN(serve_peer_abort_mid_dataset);
    RUN(serve_malformed_pdus_abort);
    RUN(serve_malformed_rq_aborts);
    RUN(serve_artim_and_idle);
    RUN(serve_store_statuses);
    RUN(dcmtk_echoscu_and_storescu);
    CHECK_DONE();
}
