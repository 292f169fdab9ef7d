/*
 * dimse.c - one DICOM association, acceptor side (dimse.h, issue 12): the Upper Layer
 * state machine of PS3.8 9.2 for the acceptor and the DIMSE services C-ECHO and C-STORE
 * (PS3.7 9.1.5, 9.1.1) on top of it. The PDU builders are in dul.c.
 *
 * One association, on the caller's thread:
 *   1. Sta2: the A-ASSOCIATE-RQ must arrive whole within ARTIM; it is parsed
 *      (s2f_dimse_parse_associate_rq), the handler accepts or rejects it and answers each
 *      presentation context; A-ASSOCIATE-AC or -RJ goes back.
 *   2. Sta6: P-DATA-TF PDUs are read whole (at most max_pdu bytes), their PDV items in
 *      turn: command fragments are collected (at most 64 KiB) and parsed when the last
 *      one came; a data set's fragments go to the handler as they come (never held). The
 *      C-STORE-RSP / C-ECHO-RSP goes out when the data set (or the command) is complete,
 *      in PDVs no larger than the peer's maximum length.
 *   3. A-RELEASE-RQ is answered with A-RELEASE-RP; A-ABORT ends at once; anything
 *      malformed or unexpected ends with our A-ABORT. After RJ, RP or our A-ABORT the peer
 *      has ARTIM to close the connection (what it sends meanwhile is read and dropped).
 * A store the handler began is ended exactly once: complete when its data set was, or
 * not (complete = 0) when the association ends first.
 */
#include "gateway/dimse.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gateway/dul.h"
#include "util/clock.h"
#include "util/error.h"

#define DEFAULT_MAX_PDU 262144u
#define DEFAULT_ARTIM_MS 30000
#define DEFAULT_IDLE_MS 60000
#define DEFAULT_WRITE_MS 30000
#define DEFAULT_MAX_DATASET (256ull << 20)
#define MAX_CONTEXTS 128          /* odd ids 1..255 */
#define OTHER_PDU_MAX 65536u      /* every PDU but P-DATA-TF */
#define COMMAND_MAX 65536u        /* one command set, all its fragments */
#define IN_BUF 65536u             /* the read buffer */
#define DRAIN_MAX (1u << 20)      /* bytes read and dropped while waiting for the close */

/* A-ABORT source and reasons (PS3.8 9.3.8) */
#define ABORT_PROVIDER 2
#define REASON_NOT_SPECIFIED 0
#define REASON_UNRECOGNIZED_PDU 1
#define REASON_UNEXPECTED_PDU 2
#define REASON_UNRECOGNIZED_PARAM 4
#define REASON_INVALID_PARAM 6

/* ---- pure parsers ---------------------------------------------------------------------- */

/* Copies a text value (AE title or UID) of n bytes into out (room for max + 1), without
 * leading and trailing spaces and trailing NULs. -1 when longer than max or holding a
 * byte that is not printable ASCII, or a backslash. */
static int copy_text(char *out, size_t max, const uint8_t *p, size_t n)
{
    while (n && (p[n - 1] == ' ' || p[n - 1] == 0))
        n--;
    while (n && p[0] == ' ') {
        p++;
        n--;
    }
    if (n > max)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7E || p[i] == '\\')
            return -1;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

typedef struct rq_extra {
    int app_context_ok;   /* the DICOM Application Context Name was proposed */
    int version_ok;       /* protocol version 1 is among those proposed */
    int reason;           /* A-ABORT reason for a failure: 4 unknown item, 6 otherwise */
} rq_extra;

static s2f_code parse_context(const uint8_t *b, size_t n, size_t at, s2f_dimse_context *c,
                              rq_extra *x, s2f_error *err)
{
    if (n < 4)
        return s2f_fail(err, S2F_EFORMAT,
                        "presentation context item at byte %zu: %zu bytes, at least 4 needed", at, n);
    memset(c, 0, sizeof *c);
    c->id = b[0];
    if ((c->id & 1) == 0)
        return s2f_fail(err, S2F_EFORMAT, "presentation context id %u at byte %zu is not odd",
                        c->id, at);
    int have_as = 0;
    for (size_t off = 4; off < n;) {
        size_t sat = at + 4 + off;
        if (n - off < 4)
            return s2f_fail(err, S2F_EFORMAT, "sub-item header truncated at byte %zu", sat);
        uint8_t type = b[off];
        size_t len = dul_be16(b + off + 2);
        const uint8_t *v = b + off + 4;
        if (len > n - off - 4)
            return s2f_fail(err, S2F_EFORMAT,
                            "sub-item 0x%02x at byte %zu: length %zu over the %zu bytes left",
                            type, sat, len, n - off - 4);
        if (type == DUL_ITEM_ABSTRACT_SYNTAX) {
            if (have_as)
                return s2f_fail(err, S2F_EFORMAT,
                                "second abstract syntax in presentation context %u", c->id);
            if (copy_text(c->abstract_syntax, S2F_DIMSE_UID_MAX, v, len) != 0 ||
                !c->abstract_syntax[0])
                return s2f_fail(err, S2F_EFORMAT, "abstract syntax at byte %zu is not a UID", sat);
            have_as = 1;
        } else if (type == DUL_ITEM_TRANSFER_SYNTAX) {
            char ts[S2F_DIMSE_UID_MAX + 1];
            if (copy_text(ts, S2F_DIMSE_UID_MAX, v, len) != 0 || !ts[0])
                return s2f_fail(err, S2F_EFORMAT, "transfer syntax at byte %zu is not a UID", sat);
            if (c->n_ts < S2F_DIMSE_TS_MAX)
                memcpy(c->ts[c->n_ts++], ts, sizeof ts);
        } else {
            x->reason = REASON_UNRECOGNIZED_PARAM;
            return s2f_fail(err, S2F_EFORMAT,
                            "unknown sub-item type 0x%02x at byte %zu in presentation context %u",
                            type, sat, c->id);
        }
        off += 4 + len;
    }
    if (!have_as)
        return s2f_fail(err, S2F_EFORMAT, "presentation context %u has no abstract syntax", c->id);
    return S2F_OK;
}

static s2f_code parse_user_info(const uint8_t *b, size_t n, size_t at, s2f_dimse_request *rq,
                                s2f_error *err)
{
    for (size_t off = 0; off < n;) {
        size_t sat = at + 4 + off;
        if (n - off < 4)
            return s2f_fail(err, S2F_EFORMAT, "user information sub-item truncated at byte %zu",
                            sat);
        uint8_t type = b[off];
        size_t len = dul_be16(b + off + 2);
        const uint8_t *v = b + off + 4;
        if (len > n - off - 4)
            return s2f_fail(err, S2F_EFORMAT,
                            "user information sub-item 0x%02x at byte %zu: length %zu over the "
                            "%zu bytes left", type, sat, len, n - off - 4);
        if (type == DUL_SUB_MAX_LENGTH) {
            if (len != 4)
                return s2f_fail(err, S2F_EFORMAT,
                                "maximum length sub-item at byte %zu: length %zu, 4 expected", sat, len);
            rq->peer_max_pdu = dul_be32(v);
        } else if (type == DUL_SUB_IMPL_CLASS_UID) {
            if (copy_text(rq->impl_class_uid, S2F_DIMSE_UID_MAX, v, len) != 0)
                return s2f_fail(err, S2F_EFORMAT,
                                "implementation class UID at byte %zu is not a UID", sat);
        } else if (type == DUL_SUB_IMPL_VERSION) {
            if (copy_text(rq->impl_version, S2F_DIMSE_AET_MAX, v, len) != 0)
                return s2f_fail(err, S2F_EFORMAT,
                                "implementation version name at byte %zu is not valid", sat);
        }
        /* other sub-items (asynchronous operations, role selection, extended
         * negotiation, user identity: PS3.7 D.3.3) are not negotiated: skipped */
        off += 4 + len;
    }
    return S2F_OK;
}

/* One top-level item of the A-ASSOCIATE-RQ at byte `at` (offsets in messages count from
 * the PDU's first byte). */
static s2f_code parse_rq_item(uint8_t type, const uint8_t *v, size_t len, size_t at,
                              s2f_dimse_request *rq, s2f_dimse_context *ctx, size_t cap,
                              uint8_t *seen, int *have_app, rq_extra *x, s2f_error *err)
{
    if (type == DUL_ITEM_APP_CONTEXT) {
        char name[S2F_DIMSE_UID_MAX + 1];
        if (*have_app)
            return s2f_fail(err, S2F_EFORMAT, "second application context item at byte %zu", at);
        if (copy_text(name, S2F_DIMSE_UID_MAX, v, len) != 0)
            return s2f_fail(err, S2F_EFORMAT, "application context name at byte %zu is not a UID",
                            at);
        *have_app = 1;
        x->app_context_ok = strcmp(name, DUL_APP_CONTEXT_NAME) == 0;
        return S2F_OK;
    }
    if (type == DUL_ITEM_PC_RQ) {
        if (rq->n_contexts >= cap)
            return s2f_fail(err, S2F_ELIMIT, "more than %zu presentation contexts", cap);
        s2f_dimse_context *c = &ctx[rq->n_contexts];
        s2f_code rc = parse_context(v, len, at, c, x, err);
        if (rc != S2F_OK)
            return rc;
        if (seen[c->id])
            return s2f_fail(err, S2F_EFORMAT, "presentation context id %u proposed twice", c->id);
        seen[c->id] = 1;
        rq->n_contexts++;
        return S2F_OK;
    }
    if (type == DUL_ITEM_USER_INFO)
        return parse_user_info(v, len, at, rq, err);
    x->reason = REASON_UNRECOGNIZED_PARAM;
    return s2f_fail(err, S2F_EFORMAT, "unknown item type 0x%02x at byte %zu", type, at);
}

static s2f_code parse_rq(const uint8_t *p, size_t n, s2f_dimse_request *rq,
                         s2f_dimse_context *ctx, size_t cap, uint32_t *max_pdu, rq_extra *x,
                         s2f_error *err)
{
    memset(rq, 0, sizeof *rq);
    memset(x, 0, sizeof *x);
    x->reason = REASON_INVALID_PARAM;
    if (max_pdu)
        *max_pdu = 0;
    rq->contexts = ctx;
    if (n < DUL_ASSOC_FIXED)
        return s2f_fail(err, S2F_EFORMAT, "A-ASSOCIATE-RQ of %zu bytes, at least %d needed", n,
                        DUL_ASSOC_FIXED);
    x->version_ok = (dul_be16(p) & 1) != 0;
    if (copy_text(rq->called_aet, S2F_DIMSE_AET_MAX, p + 4, 16) != 0)
        return s2f_fail(err, S2F_EFORMAT, "called AE title is not valid");
    if (copy_text(rq->calling_aet, S2F_DIMSE_AET_MAX, p + 20, 16) != 0)
        return s2f_fail(err, S2F_EFORMAT, "calling AE title is not valid");
    uint8_t seen[256] = {0};
    int have_app = 0, have_user = 0;
    for (size_t off = DUL_ASSOC_FIXED; off < n;) {
        size_t at = off + 6;
        if (n - off < 4)
            return s2f_fail(err, S2F_EFORMAT, "item header truncated at byte %zu", at);
        uint8_t type = p[off];
        size_t len = dul_be16(p + off + 2);
        if (len > n - off - 4)
            return s2f_fail(err, S2F_EFORMAT,
                            "item 0x%02x at byte %zu: length %zu over the %zu bytes left", type,
                            at, len, n - off - 4);
        if (type == DUL_ITEM_USER_INFO && have_user++)
            return s2f_fail(err, S2F_EFORMAT, "second user information item at byte %zu", at);
        s2f_code rc = parse_rq_item(type, p + off + 4, len, at, rq, ctx, cap, seen, &have_app, x,
                                    err);
        if (rc != S2F_OK)
            return rc;
        off += 4 + len;
    }
    if (!have_app)
        return s2f_fail(err, S2F_EFORMAT, "no application context item");
    if (rq->n_contexts == 0)
        return s2f_fail(err, S2F_EFORMAT, "no presentation context item");
    if (max_pdu)
        *max_pdu = rq->peer_max_pdu;
    return S2F_OK;
}

s2f_code s2f_dimse_parse_associate_rq(const uint8_t *p, size_t n, s2f_dimse_request *rq,
                                      s2f_dimse_context *ctx, size_t cap, uint32_t *max_pdu,
                                      s2f_error *err)
{
    rq_extra x;
    return parse_rq(p, n, rq, ctx, cap, max_pdu, &x, err);
}

static s2f_code command_us(const uint8_t *v, uint32_t len, uint16_t elem, size_t at,
                           uint16_t *out, s2f_error *err)
{
    if (len != 2)
        return s2f_fail(err, S2F_EFORMAT, "(0000,%04X) at byte %zu: length %u, 2 expected", elem,
                        at, len);
    *out = dul_le16(v);
    return S2F_OK;
}

static s2f_code command_text(const uint8_t *v, uint32_t len, uint16_t elem, size_t at,
                             char *out, size_t max, s2f_error *err)
{
    if (copy_text(out, max, v, len) != 0)
        return s2f_fail(err, S2F_EFORMAT, "(0000,%04X) at byte %zu: not a valid value of %zu "
                        "characters at most", elem, at, max);
    return S2F_OK;
}

static s2f_code command_elem(uint16_t elem, const uint8_t *v, uint32_t len, size_t at,
                             s2f_dimse_command *cmd, int *have, s2f_error *err)
{
    switch (elem) {
    case 0x0002:
        return command_text(v, len, elem, at, cmd->affected_sop_class, S2F_DIMSE_UID_MAX, err);
    case 0x0100:
        have[0] = 1;
        return command_us(v, len, elem, at, &cmd->command_field, err);
    case 0x0110:
        return command_us(v, len, elem, at, &cmd->message_id, err);
    case 0x0700:
        return command_us(v, len, elem, at, &cmd->priority, err);
    case 0x0800:
        have[1] = 1;
        return command_us(v, len, elem, at, &cmd->data_set_type, err);
    case 0x1000:
        return command_text(v, len, elem, at, cmd->affected_sop_instance, S2F_DIMSE_UID_MAX, err);
    case 0x1030:
        return command_text(v, len, elem, at, cmd->move_originator_aet, S2F_DIMSE_AET_MAX, err);
    default:
        return S2F_OK;   /* group length, Move Originator Message ID, ...: not needed */
    }
}

s2f_code s2f_dimse_parse_command(const uint8_t *p, size_t n, s2f_dimse_command *cmd,
                                 s2f_error *err)
{
    memset(cmd, 0, sizeof *cmd);
    int have[2] = {0, 0};
    for (size_t off = 0; off < n;) {
        if (n - off < 8)
            return s2f_fail(err, S2F_EFORMAT, "command element header truncated at byte %zu", off);
        uint16_t group = dul_le16(p + off), elem = dul_le16(p + off + 2);
        uint32_t len = dul_le32(p + off + 4);
        if (group != 0x0000)
            return s2f_fail(err, S2F_EFORMAT,
                            "element (%04X,%04X) at byte %zu is not of the command group 0000",
                            group, elem, off);
        if (len > n - off - 8)
            return s2f_fail(err, S2F_EFORMAT,
                            "(0000,%04X) at byte %zu: length %u over the %zu bytes left", elem,
                            off, len, n - off - 8);
        s2f_code rc = command_elem(elem, p + off + 8, len, off, cmd, have, err);
        if (rc != S2F_OK)
            return rc;
        off += 8 + (size_t)len;
    }
    if (!have[0])
        return s2f_fail(err, S2F_EFORMAT, "no Command Field (0000,0100)");
    if (!have[1])
        return s2f_fail(err, S2F_EFORMAT, "no Command Data Set Type (0000,0800)");
    return S2F_OK;
}

/* ---- the plain transport --------------------------------------------------------------- */

static int ms_left(long long end_ns)
{
    long long left = (end_ns - s2f_mono_ns()) / 1000000;
    return left <= 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static ssize_t fd_read(void *ctx, void *buf, size_t n, int timeout_ms)
{
    int fd = *(int *)ctx;
    long long end = s2f_mono_ns() + (long long)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, ms_left(end));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return -2;
        ssize_t k = read(fd, buf, n);
        if (k >= 0)
            return k;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
    }
}

static int fd_write(void *ctx, const void *buf, size_t n, int timeout_ms)
{
    int fd = *(int *)ctx;
    const uint8_t *p = buf;
    long long end = s2f_mono_ns() + (long long)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000;
    while (n) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int r = poll(&pfd, 1, ms_left(end));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return -2;
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == ENOTSOCK)
            k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

void s2f_dimse_io_fd(s2f_dimse_io *io, int *ctx_storage, int fd)
{
    *ctx_storage = fd;
    io->ctx = ctx_storage;
    io->read = fd_read;
    io->write = fd_write;
}

/* ---- the association ------------------------------------------------------------------- */

enum { M_IDLE, M_COMMAND, M_DATA };                 /* where the next PDV belongs */
enum { K_STORE, K_ECHO, K_OTHER, K_CANCEL };         /* what the current message is */

typedef struct assoc {
    const s2f_dimse_io *io;
    const s2f_dimse_handler *h;
    s2f_dimse_summary *sum;
    uint32_t max_pdu;
    int artim_ms, idle_ms, write_ms;
    uint64_t max_dataset;
    size_t max_contexts;
    uint32_t peer_max;
    int established;
    long long deadline_ns;       /* reads until then (Sta2); 0: idle_ms per read */
    uint8_t fixed[DUL_ASSOC_FIXED];
    /* accepted contexts: abstract and transfer syntax */
    uint8_t accepted[256];
    char as[256][S2F_DIMSE_UID_MAX + 1];
    char ts[256][S2F_DIMSE_UID_MAX + 1];
    /* the message being received */
    int mstate, kind;
    uint8_t msg_ctx;
    size_t cmd_len;
    s2f_dimse_command cmd;
    void *handle;                /* the handler's store, NULL when none is open */
    int taking;                  /* data set bytes still go to the handler */
    int over;                    /* max_dataset exceeded: never answer success */
    uint16_t status;
    uint64_t ds_bytes;
    /* buffers */
    uint8_t *pdu;
    size_t pdu_cap;
    size_t in_pos, in_len;
    uint8_t in[IN_BUF];
    uint8_t cmdbuf[COMMAND_MAX];
} assoc;

static void set_detail(assoc *a, s2f_dimse_outcome o, const char *fmt, va_list ap)
{
    a->sum->outcome = o;
    vsnprintf(a->sum->detail, sizeof a->sum->detail, fmt, ap);
}

/* Ends the association with outcome o (nothing sent). Returns 1 (the "ended" value). */
static int end_as(assoc *a, s2f_dimse_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int end_as(assoc *a, s2f_dimse_outcome o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_detail(a, o, fmt, ap);
    va_end(ap);
    return 1;
}

static int write_all(assoc *a, const void *p, size_t n)
{
    return a->io->write(a->io->ctx, p, n, a->write_ms) == 0 ? 0 : -1;
}

/* Reads and drops what the peer still sends until it closes, at most ARTIM and DRAIN_MAX
 * bytes (PS3.8 9.2: the acceptor waits for the transport to close). */
static void drain(assoc *a)
{
    long long end = s2f_mono_ns() + (long long)a->artim_ms * 1000000;
    size_t total = a->in_len - a->in_pos;
    a->in_pos = a->in_len = 0;
    while (total < DRAIN_MAX) {
        int t = ms_left(end);
        if (t <= 0)
            break;
        ssize_t r = a->io->read(a->io->ctx, a->in, IN_BUF, t);
        if (r <= 0 || (size_t)r > IN_BUF)
            break;
        total += (size_t)r;
    }
}

/* Sends A-ABORT (service provider, reason), ends with outcome o, waits for the close. */
static int abort_as(assoc *a, s2f_dimse_outcome o, uint8_t reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int abort_as(assoc *a, s2f_dimse_outcome o, uint8_t reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_detail(a, o, fmt, ap);
    va_end(ap);
    uint8_t pdu[10];
    dul_build_abort(pdu, ABORT_PROVIDER, reason);
    if (write_all(a, pdu, sizeof pdu) == 0)
        drain(a);
    return 1;
}

static int read_timeout(assoc *a)
{
    if (!a->deadline_ns)
        return a->idle_ms;
    return ms_left(a->deadline_ns);
}

/* Reads exactly n bytes: 1, or the transport's failure (0 end of stream, -1 error, -2 the
 * deadline passed). */
static int read_exact(assoc *a, uint8_t *dst, size_t n)
{
    while (n) {
        if (a->in_pos < a->in_len) {
            size_t k = a->in_len - a->in_pos;
            if (k > n)
                k = n;
            memcpy(dst, a->in + a->in_pos, k);
            a->in_pos += k;
            dst += k;
            n -= k;
            continue;
        }
        int t = read_timeout(a);
        if (t <= 0)
            return -2;
        int direct = n >= IN_BUF;
        size_t want = direct ? n : IN_BUF;
        ssize_t r = a->io->read(a->io->ctx, direct ? dst : a->in, want, t);
        if (r == 0 || r == -2)
            return (int)r;
        if (r < 0 || (size_t)r > want)
            return -1;
        if (direct) {
            dst += r;
            n -= (size_t)r;
        } else {
            a->in_pos = 0;
            a->in_len = (size_t)r;
        }
    }
    return 1;
}

/* The end after a failed read `r` while `what`. */
static int read_failed(assoc *a, int r, const char *what)
{
    if (r == -2 && a->established)
        return abort_as(a, S2F_DIMSE_TIMED_OUT, REASON_NOT_SPECIFIED,
                        "no data from the peer for %d ms %s", a->idle_ms, what);
    if (r == -2)
        return end_as(a, S2F_DIMSE_TIMED_OUT, "ARTIM expired (%d ms) %s", a->artim_ms, what);
    if (r == 0)
        return end_as(a, S2F_DIMSE_DROPPED, "the peer closed the connection %s", what);
    return end_as(a, S2F_DIMSE_DROPPED, "reading from the peer failed %s", what);
}

static const char *pdu_name(uint8_t type)
{
    static const char *const names[] = {"", "A-ASSOCIATE-RQ", "A-ASSOCIATE-AC", "A-ASSOCIATE-RJ",
                                        "P-DATA-TF", "A-RELEASE-RQ", "A-RELEASE-RP", "A-ABORT"};
    return type >= 1 && type <= 7 ? names[type] : "unknown";
}

/* Reads one PDU into a->pdu: 0 with *type and *len, or 1 when the association ended. */
static int read_pdu(assoc *a, uint8_t *type, size_t *len)
{
    uint8_t hdr[6];
    const char *what = a->established ? "between PDUs" : "waiting for the A-ASSOCIATE-RQ";
    int r = read_exact(a, hdr, sizeof hdr);
    if (r != 1)
        return read_failed(a, r, what);
    *type = hdr[0];
    uint32_t n = dul_be32(hdr + 2);
    if (*type < DUL_ASSOCIATE_RQ || *type > DUL_ABORT)
        return abort_as(a, S2F_DIMSE_ABORTED, REASON_UNRECOGNIZED_PDU,
                        "unknown PDU type 0x%02x", *type);
    uint32_t limit = *type == DUL_P_DATA_TF ? a->max_pdu : OTHER_PDU_MAX;
    if (n > limit)
        return abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM,
                        "%s PDU of %u bytes, over the limit of %u", pdu_name(*type), n, limit);
    if (n > a->pdu_cap) {
        uint8_t *p = realloc(a->pdu, n);
        if (!p)
            return abort_as(a, S2F_DIMSE_ABORTED, REASON_NOT_SPECIFIED,
                            "out of memory for a PDU of %u bytes", n);
        a->pdu = p;
        a->pdu_cap = n;
    }
    r = read_exact(a, a->pdu, n);
    if (r != 1)
        return read_failed(a, r, a->established ? "inside a PDU" : "inside the A-ASSOCIATE-RQ");
    *len = n;
    return 0;
}

/* ---- sending DIMSE messages ------------------------------------------------------------ */

/* A command set in P-DATA-TF PDUs of one PDV each, no larger than the peer allows. */
static int send_command(assoc *a, uint8_t pc, const uint8_t *cmd, size_t n)
{
    uint8_t pdu[12 + DUL_RSP_MAX];
    size_t frag = a->peer_max ? a->peer_max - 6 : n;
    if (frag > DUL_RSP_MAX)
        frag = DUL_RSP_MAX;
    for (size_t off = 0; off < n;) {
        size_t k = n - off < frag ? n - off : frag;
        int last = off + k == n;
        pdu[0] = DUL_P_DATA_TF;
        pdu[1] = 0;
        dul_put_be32(pdu + 2, (uint32_t)(6 + k));
        dul_put_be32(pdu + 6, (uint32_t)(2 + k));
        pdu[10] = pc;
        pdu[11] = (uint8_t)(0x01 | (last ? 0x02 : 0));   /* command, last fragment */
        memcpy(pdu + 12, cmd + off, k);
        if (write_all(a, pdu, 12 + k) != 0)
            return end_as(a, S2F_DIMSE_DROPPED, "writing a response to the peer failed");
        off += k;
    }
    return 0;
}

static int is_ok(uint16_t status) { return status == 0 || (status & 0xF000u) == 0xB000u; }

/* The response to the message just received (C-CANCEL has none). */
static int respond(assoc *a, uint16_t status)
{
    uint16_t field;
    if (a->kind == K_CANCEL)
        return 0;
    if (a->kind == K_STORE) {
        field = DIMSE_C_STORE_RSP;
        a->sum->stores++;
        a->sum->stores_ok += is_ok(status);
    } else if (a->kind == K_ECHO) {
        field = DIMSE_C_ECHO_RSP;
        a->sum->echoes++;
    } else {
        field = (uint16_t)(a->cmd.command_field | 0x8000u);
        status = DIMSE_UNRECOGNIZED_OPERATION;
    }
    uint8_t rsp[DUL_RSP_MAX];
    size_t n = dul_build_rsp(rsp, field, a->cmd.affected_sop_class, a->cmd.affected_sop_instance,
                             a->cmd.message_id, status);
    return send_command(a, a->msg_ctx, rsp, n);
}

/* ---- receiving DIMSE messages ---------------------------------------------------------- */

static void close_store(assoc *a, int complete)
{
    if (!a->handle)
        return;
    void *handle = a->handle;
    a->handle = NULL;
    uint16_t st = a->status;
    if (a->h->store_end)
        st = a->h->store_end(a->h->ctx, handle, complete, st);
    if (complete)
        a->status = a->over && st == 0 ? S2F_DIMSE_OUT_OF_RESOURCES : st;
}

/* A C-STORE-RQ's command was read: the handler's store begins (or the status is known). */
static void begin_store(assoc *a)
{
    s2f_dimse_store st;
    a->status = 0;
    if (!a->cmd.affected_sop_class[0] || !a->cmd.affected_sop_instance[0]) {
        a->status = S2F_DIMSE_CANNOT_UNDERSTAND;
        return;
    }
    if (strcmp(a->cmd.affected_sop_class, a->as[a->msg_ctx]) != 0 || !a->h->store_begin) {
        a->status = S2F_DIMSE_SOP_CLASS_NOT_SUPPORTED;   /* not the context's SOP Class */
        return;
    }
    memset(&st, 0, sizeof st);
    st.context_id = a->msg_ctx;
    memcpy(st.sop_class, a->cmd.affected_sop_class, sizeof st.sop_class);
    memcpy(st.sop_instance, a->cmd.affected_sop_instance, sizeof st.sop_instance);
    memcpy(st.transfer_syntax, a->ts[a->msg_ctx], sizeof st.transfer_syntax);
    st.message_id = a->cmd.message_id;
    memcpy(st.move_originator_aet, a->cmd.move_originator_aet, sizeof st.move_originator_aet);
    uint16_t status = 0;
    a->handle = a->h->store_begin(a->h->ctx, &st, &status);
    if (!a->handle)
        a->status = status;
    a->taking = a->handle != NULL;
}

static int on_command(assoc *a)
{
    s2f_error err;
    if (s2f_dimse_parse_command(a->cmdbuf, a->cmd_len, &a->cmd, &err) != S2F_OK)
        return abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM, "command set: %s",
                        err.message);
    uint16_t f = a->cmd.command_field;
    int has_data = a->cmd.data_set_type != DIMSE_NO_DATA_SET;
    if (f & 0x8000u)
        return abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM,
                        "unexpected response command 0x%04X from the peer", f);
    a->kind = f == DIMSE_C_STORE_RQ ? K_STORE : f == DIMSE_C_ECHO_RQ ? K_ECHO
            : f == DIMSE_C_CANCEL_RQ ? K_CANCEL : K_OTHER;
    a->status = 0;
    a->over = 0;
    a->ds_bytes = 0;
    a->taking = 0;
    if (a->kind == K_STORE && !has_data) {
        a->mstate = M_IDLE;
        return respond(a, S2F_DIMSE_CANNOT_UNDERSTAND);
    }
    if (a->kind == K_STORE)
        begin_store(a);
    if (has_data) {
        a->mstate = M_DATA;
        return 0;
    }
    a->mstate = M_IDLE;
    return respond(a, 0);
}

static void on_data(assoc *a, const uint8_t *p, size_t n)
{
    a->ds_bytes += n;
    if (!a->taking)
        return;
    if (a->ds_bytes > a->max_dataset) {
        a->taking = 0;
        a->over = 1;
        a->status = S2F_DIMSE_OUT_OF_RESOURCES;
        return;
    }
    uint16_t st = 0;
    if (n && a->h->store_data && a->h->store_data(a->h->ctx, a->handle, p, n, &st) != 0) {
        a->taking = 0;
        a->status = st;
    }
}

static int on_data_end(assoc *a)
{
    a->mstate = M_IDLE;
    if (a->kind == K_STORE)
        close_store(a, 1);
    return respond(a, a->status);
}

static int on_pdv(assoc *a, uint8_t pc, uint8_t mch, const uint8_t *p, size_t n)
{
    int is_command = mch & 0x01, last = mch & 0x02;
    if (!a->accepted[pc])
        return abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM,
                        "PDV on presentation context %u, which is not accepted", pc);
    if (a->mstate == M_IDLE) {
        if (!is_command)
            return abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM,
                            "data set fragment on context %u without a command", pc);
        a->mstate = M_COMMAND;
        a->msg_ctx = pc;
        a->cmd_len = 0;
    }
    if (pc != a->msg_ctx)
        return abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM,
                        "PDV on context %u inside a message on context %u", pc, a->msg_ctx);
    if (a->mstate == M_COMMAND) {
        if (!is_command)
            return abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM,
                            "data set fragment before the command's last fragment");
        if (n > COMMAND_MAX - a->cmd_len)
            return abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM,
                            "command set over %u bytes", COMMAND_MAX);
        memcpy(a->cmdbuf + a->cmd_len, p, n);
        a->cmd_len += n;
        return last ? on_command(a) : 0;
    }
    if (is_command)
        return abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM,
                        "command fragment inside a data set");
    on_data(a, p, n);
    return last ? on_data_end(a) : 0;
}

static int on_p_data(assoc *a, const uint8_t *p, size_t n)
{
    if (n == 0)
        return abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM, "P-DATA-TF without a PDV");
    for (size_t off = 0; off < n;) {
        if (n - off < 6)
            return abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM,
                            "PDV item truncated at byte %zu of a P-DATA-TF", off + 6);
        uint32_t len = dul_be32(p + off);
        if (len < 2 || len > n - off - 4)
            return abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM,
                            "PDV item length %u at byte %zu of a P-DATA-TF (%zu bytes left)",
                            len, off + 6, n - off - 4);
        if (on_pdv(a, p[off + 4], p[off + 5], p + off + 6, len - 2))
            return 1;
        off += 4 + (size_t)len;
    }
    return 0;
}

/* ---- association establishment --------------------------------------------------------- */

static int send_reject(assoc *a, const s2f_dimse_reject *rj, const char *why)
{
    uint8_t pdu[10];
    dul_build_rj(pdu, rj);
    if (write_all(a, pdu, sizeof pdu) != 0)
        return end_as(a, S2F_DIMSE_DROPPED, "writing A-ASSOCIATE-RJ failed (%s)", why);
    end_as(a, S2F_DIMSE_REJECTED, "%s: A-ASSOCIATE-RJ result %u source %u reason %u", why,
           rj->result, rj->source, rj->reason);
    drain(a);
    return 1;
}

/* Asks the handler about one context: its result, and the accepted one remembered. */
static uint8_t decide_context(assoc *a, const s2f_dimse_context *c, const char **ts)
{
    size_t chosen = 0;
    int res = a->h->on_context ? a->h->on_context(a->h->ctx, c, &chosen)
                               : S2F_DIMSE_CTX_ABSTRACT_NOT_SUPPORTED;
    if (res < S2F_DIMSE_CTX_ACCEPT || res > S2F_DIMSE_CTX_TS_NOT_SUPPORTED)
        res = S2F_DIMSE_CTX_NO_REASON;
    if (res == S2F_DIMSE_CTX_ACCEPT && chosen >= c->n_ts)
        res = S2F_DIMSE_CTX_TS_NOT_SUPPORTED;
    *ts = c->n_ts ? c->ts[0] : DUL_IMPLICIT_LE;
    if (res != S2F_DIMSE_CTX_ACCEPT)
        return (uint8_t)res;
    *ts = c->ts[chosen];
    a->accepted[c->id] = 1;
    memcpy(a->as[c->id], c->abstract_syntax, sizeof a->as[c->id]);
    memcpy(a->ts[c->id], c->ts[chosen], sizeof a->ts[c->id]);
    return S2F_DIMSE_CTX_ACCEPT;
}

static int send_accept(assoc *a, const s2f_dimse_request *rq)
{
    dul_ac_context *ac = calloc(rq->n_contexts, sizeof *ac);
    size_t cap = dul_ac_size_max(rq->n_contexts);
    uint8_t *pdu = malloc(cap);
    int ended = 0;
    if (!ac || !pdu) {
        ended = abort_as(a, S2F_DIMSE_ABORTED, REASON_NOT_SPECIFIED, "out of memory");
    } else {
        for (size_t i = 0; i < rq->n_contexts; i++) {
            ac[i].id = rq->contexts[i].id;
            ac[i].result = decide_context(a, &rq->contexts[i], &ac[i].ts);
        }
        size_t n = dul_build_ac(pdu, cap, a->fixed, ac, rq->n_contexts, a->max_pdu);
        if (n == 0 || write_all(a, pdu, n) != 0)
            ended = end_as(a, S2F_DIMSE_DROPPED, "writing A-ASSOCIATE-AC failed");
    }
    free(ac);
    free(pdu);
    return ended;
}

static int negotiate(assoc *a, const uint8_t *p, size_t n)
{
    s2f_dimse_context *ctx = calloc(a->max_contexts, sizeof *ctx);
    if (!ctx)
        return abort_as(a, S2F_DIMSE_ABORTED, REASON_NOT_SPECIFIED, "out of memory");
    s2f_dimse_request rq;
    rq_extra x;
    s2f_error err;
    int ended = 0;
    s2f_code rc = parse_rq(p, n, &rq, ctx, a->max_contexts, NULL, &x, &err);
    memcpy(a->sum->calling_aet, rq.calling_aet, sizeof rq.calling_aet);
    memcpy(a->sum->called_aet, rq.called_aet, sizeof rq.called_aet);
    if (n >= DUL_ASSOC_FIXED)
        memcpy(a->fixed, p, DUL_ASSOC_FIXED);
    s2f_dimse_reject rj = {1, 1, 1};
    if (rc != S2F_OK) {
        ended = abort_as(a, S2F_DIMSE_ABORTED, (uint8_t)x.reason, "A-ASSOCIATE-RQ: %s",
                         err.message);
    } else if (!x.version_ok) {
        rj = (s2f_dimse_reject){1, 2, 2};
        ended = send_reject(a, &rj, "protocol version not supported");
    } else if (!x.app_context_ok) {
        rj = (s2f_dimse_reject){1, 1, 2};
        ended = send_reject(a, &rj, "application context name not supported");
    } else if (rq.peer_max_pdu && rq.peer_max_pdu < 7) {
        ended = abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM,
                         "A-ASSOCIATE-RQ: maximum length %u leaves no room for a PDV",
                         rq.peer_max_pdu);
    } else if (a->h->on_associate && a->h->on_associate(a->h->ctx, &rq, &rj) != 0) {
        ended = send_reject(a, &rj, "rejected");
    } else {
        a->peer_max = rq.peer_max_pdu;
        ended = send_accept(a, &rq);
    }
    free(ctx);
    return ended;
}

/* ---- the association's life ------------------------------------------------------------ */

static int on_release(assoc *a, size_t len)
{
    if (len != 4)
        return abort_as(a, S2F_DIMSE_ABORTED, REASON_INVALID_PARAM,
                        "A-RELEASE-RQ of %zu bytes, 4 expected", len);
    close_store(a, 0);
    uint8_t pdu[10];
    dul_build_release_rp(pdu);
    if (write_all(a, pdu, sizeof pdu) != 0)
        return end_as(a, S2F_DIMSE_DROPPED, "writing A-RELEASE-RP failed");
    a->sum->outcome = S2F_DIMSE_RELEASED;
    a->sum->detail[0] = 0;
    drain(a);
    return 1;
}

static int on_peer_abort(assoc *a, size_t len)
{
    if (len >= 4)
        return end_as(a, S2F_DIMSE_ABORTED_BY_PEER, "A-ABORT from the peer (source %u, reason %u)",
                      a->pdu[2], a->pdu[3]);
    return end_as(a, S2F_DIMSE_ABORTED_BY_PEER, "A-ABORT from the peer");
}

static void run(assoc *a)
{
    uint8_t type;
    size_t len;
    if (read_pdu(a, &type, &len))
        return;
    if (type == DUL_ABORT) {
        on_peer_abort(a, len);
        return;
    }
    if (type != DUL_ASSOCIATE_RQ) {
        abort_as(a, S2F_DIMSE_ABORTED, REASON_UNEXPECTED_PDU, "%s PDU instead of A-ASSOCIATE-RQ",
                 pdu_name(type));
        return;
    }
    if (negotiate(a, a->pdu, len))
        return;
    a->established = 1;
    a->deadline_ns = 0;
    for (;;) {
        if (read_pdu(a, &type, &len))
            return;
        int ended;
        if (type == DUL_P_DATA_TF)
            ended = on_p_data(a, a->pdu, len);
        else if (type == DUL_RELEASE_RQ)
            ended = on_release(a, len);
        else if (type == DUL_ABORT)
            ended = on_peer_abort(a, len);
        else
            ended = abort_as(a, S2F_DIMSE_ABORTED, REASON_UNEXPECTED_PDU,
                             "unexpected %s PDU in an established association", pdu_name(type));
        if (ended)
            return;
    }
}

static assoc *assoc_new(const s2f_dimse_io *io, const s2f_dimse_limits *lim,
                        const s2f_dimse_handler *h, s2f_dimse_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    assoc *a = calloc(1, sizeof *a);
    if (!a) {
        sum->outcome = S2F_DIMSE_DROPPED;
        snprintf(sum->detail, sizeof sum->detail, "out of memory for an association");
        return NULL;
    }
    s2f_dimse_limits none = {0};
    if (!lim)
        lim = &none;
    a->io = io;
    a->h = h;
    a->sum = sum;
    a->max_pdu = lim->max_pdu ? lim->max_pdu : DEFAULT_MAX_PDU;
    a->artim_ms = lim->artim_ms > 0 ? lim->artim_ms : DEFAULT_ARTIM_MS;
    a->idle_ms = lim->idle_ms > 0 ? lim->idle_ms : DEFAULT_IDLE_MS;
    a->write_ms = lim->write_ms > 0 ? lim->write_ms : DEFAULT_WRITE_MS;
    a->max_dataset = lim->max_dataset ? lim->max_dataset : DEFAULT_MAX_DATASET;
    a->max_contexts = lim->max_contexts && lim->max_contexts < MAX_CONTEXTS ? lim->max_contexts
                                                                            : MAX_CONTEXTS;
    a->deadline_ns = s2f_mono_ns() + (long long)a->artim_ms * 1000000;
    return a;
}

void s2f_dimse_serve(const s2f_dimse_io *io, const s2f_dimse_limits *lim,
                     const s2f_dimse_handler *h, s2f_dimse_summary *sum)
{
    assoc *a = assoc_new(io, lim, h, sum);
    if (!a)
        return;
    run(a);
    close_store(a, 0);
    free(a->pdu);
    free(a);
}

/* Calling and called AE titles of an A-ASSOCIATE-RQ read whole, for the summary. */
static void note_titles(assoc *a, const uint8_t *p, size_t n)
{
    if (n < DUL_ASSOC_FIXED)
        return;
    if (copy_text(a->sum->called_aet, S2F_DIMSE_AET_MAX, p + 4, 16) != 0)
        a->sum->called_aet[0] = 0;
    if (copy_text(a->sum->calling_aet, S2F_DIMSE_AET_MAX, p + 20, 16) != 0)
        a->sum->calling_aet[0] = 0;
}

void s2f_dimse_reject_now(const s2f_dimse_io *io, const s2f_dimse_limits *lim,
                          const s2f_dimse_reject *rj, s2f_dimse_summary *sum)
{
    static const s2f_dimse_handler none = {0};
    assoc *a = assoc_new(io, lim, &none, sum);
    if (!a)
        return;
    uint8_t hdr[6];
    if (read_exact(a, hdr, sizeof hdr) == 1 && hdr[0] == DUL_ASSOCIATE_RQ) {
        uint32_t n = dul_be32(hdr + 2);
        if (n <= OTHER_PDU_MAX && (a->pdu = malloc(n ? n : 1)) != NULL &&
            read_exact(a, a->pdu, n) == 1)
            note_titles(a, a->pdu, n);
    }
    send_reject(a, rj, "rejected at once");
    free(a->pdu);
    free(a);
}
