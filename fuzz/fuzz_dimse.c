/*
 * fuzz_dimse.c - libFuzzer target for the DICOM Upper Layer acceptor and DIMSE
 * (src/gateway/dimse.c, issue 12): the A-ASSOCIATE-RQ and command-set parsers, and a
 * whole association (s2f_dimse_serve) whose peer is the input.
 *
 * Input: [flags] then the bytes the peer sends. flags bits 0-3: the transport hands out
 * reads of at most 1 + 37 * bits bytes (0: as many as asked), bit 4: the end of the input
 * reads as a time-out instead of the end of the stream, bit 5: max_pdu 256 (else 16384),
 * bit 6: max_dataset 100 bytes, bit 7: the handler rejects the association. Writes are
 * checked and dropped. The target aborts when: a write is not exactly one well-formed PDU
 * (type 2, 3, 4, 6 or 7, its length field matching), a P-DATA-TF PDU we send exceeds the
 * peer's maximum length, an A-ASSOCIATE-AC is sent after the handler rejected, store_end is
 * not called exactly once per store begun (or data comes for a store that ended), or the
 * summary's counters disagree with what the handler saw.
 */
#include "gateway/dimse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct peer {
    const uint8_t *p;
    size_t n, pos, chunk;
    int timeout_at_end;
    /* what the handler and the writes saw */
    int rejecting, rejected_sent, accepted_sent;
    uint32_t peer_max;
    int open;            /* a store is begun and not ended */
    unsigned begins, ends, datas, pdata_pdus;
    int token;
} peer;

static ssize_t mem_read(void *ctx, void *buf, size_t n, int timeout_ms)
{
    peer *s = ctx;
    (void)timeout_ms;
    if (s->pos >= s->n)
        return s->timeout_at_end ? -2 : 0;
    size_t k = s->n - s->pos;
    if (k > n)
        k = n;
    if (s->chunk && k > s->chunk)
        k = s->chunk;
    memcpy(buf, s->p + s->pos, k);
    s->pos += k;
    return (ssize_t)k;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int mem_write(void *ctx, const void *buf, size_t n, int timeout_ms)
{
    peer *s = ctx;
    const uint8_t *p = buf;
    (void)timeout_ms;
    if (n < 6 || be32(p + 2) != n - 6)
        abort();
    switch (p[0]) {
    case 0x02:
        if (s->rejecting || s->accepted_sent++)
            abort();
        break;
    case 0x03:
        if (n != 10 || s->accepted_sent)
            abort();
        s->rejected_sent = 1;
        break;
    case 0x04:
        if (!s->accepted_sent || (s->peer_max && n - 6 > s->peer_max))
            abort();
        /* one PDV filling the PDU, a command fragment */
        if (n < 12 || be32(p + 6) != n - 10 || !(p[11] & 1))
            abort();
        s->pdata_pdus++;
        break;
    case 0x06:
    case 0x07:
        if (n != 10)
            abort();
        break;
    default:
        abort();
    }
    return 0;
}

static int on_associate(void *ctx, const s2f_dimse_request *rq, s2f_dimse_reject *rj)
{
    peer *s = ctx;
    if (rq->n_contexts == 0 || strlen(rq->calling_aet) > S2F_DIMSE_AET_MAX)
        abort();
    s->peer_max = rq->peer_max_pdu;
    if (s->rejecting) {
        *rj = (s2f_dimse_reject){1, 1, 7};
        return 1;
    }
    return 0;
}

static int on_context(void *ctx, const s2f_dimse_context *pc, size_t *chosen)
{
    (void)ctx;
    if (!(pc->id & 1) || pc->n_ts > S2F_DIMSE_TS_MAX || !pc->abstract_syntax[0])
        abort();
    if (pc->abstract_syntax[strlen(pc->abstract_syntax) - 1] == '9')
        return S2F_DIMSE_CTX_ABSTRACT_NOT_SUPPORTED;
    *chosen = pc->n_ts ? pc->n_ts - 1 : 0;
    return S2F_DIMSE_CTX_ACCEPT;
}

static void *store_begin(void *ctx, const s2f_dimse_store *st, uint16_t *status)
{
    peer *s = ctx;
    if (s->open || !st->sop_class[0] || !st->sop_instance[0] || !st->transfer_syntax[0])
        abort();
    if (st->sop_instance[0] == '9') {   /* refused at once, as a busy queue would */
        *status = S2F_DIMSE_OUT_OF_RESOURCES;
        return NULL;
    }
    s->open = 1;
    s->begins++;
    return &s->token;
}

static int store_data(void *ctx, void *handle, const uint8_t *d, size_t len, uint16_t *status)
{
    peer *s = ctx;
    if (handle != &s->token || !s->open || len == 0)
        abort();
    s->datas++;
    if (d[0] == 0xEE) {   /* the handler stops taking it */
        *status = S2F_DIMSE_CANNOT_UNDERSTAND;
        return 1;
    }
    return 0;
}

static uint16_t store_end(void *ctx, void *handle, int complete, uint16_t status)
{
    peer *s = ctx;
    if (handle != &s->token || !s->open)
        abort();
    s->open = 0;
    s->ends++;
    (void)complete;
    return status;
}

static void parsers(const uint8_t *p, size_t n)
{
    static s2f_dimse_context ctx[8];
    s2f_dimse_request rq;
    s2f_dimse_command cmd;
    s2f_error err;
    uint32_t max;
    err.message[0] = 0;
    if (n >= 6 && s2f_dimse_parse_associate_rq(p + 6, n - 6, &rq, ctx, 8, &max, &err) == S2F_OK &&
        (rq.n_contexts == 0 || rq.n_contexts > 8 || max != rq.peer_max_pdu))
        abort();
    if (s2f_dimse_parse_command(p, n, &cmd, &err) == S2F_OK &&
        (strlen(cmd.affected_sop_class) > S2F_DIMSE_UID_MAX ||
         strlen(cmd.move_originator_aet) > S2F_DIMSE_AET_MAX))
        abort();
    for (const char *m = err.message; n && *m; m++)
        if ((unsigned char)*m < 0x20)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    parsers(data + 1, size - 1);
    peer s = {.p = data + 1, .n = size - 1};
    s.chunk = (flags & 15) ? 1 + 37 * (size_t)(flags & 15) : 0;
    s.timeout_at_end = (flags & 16) != 0;
    s.rejecting = (flags & 128) != 0;
    s2f_dimse_io io = {&s, mem_read, mem_write};
    s2f_dimse_limits lim = {
        .max_pdu = (flags & 32) ? 256 : 16384,
        .artim_ms = 1000, .idle_ms = 1000, .write_ms = 1000,
        .max_dataset = (flags & 64) ? 100 : 0,
    };
    s2f_dimse_handler h = {&s, on_associate, on_context, store_begin, store_data, store_end};
    s2f_dimse_summary sum;
    s2f_dimse_serve(&io, &lim, &h, &sum);
    if (s.open || s.begins != s.ends || sum.stores_ok > sum.stores ||
        sum.echoes + sum.stores > s.pdata_pdus ||
        (sum.outcome == S2F_DIMSE_REJECTED && !s.rejected_sent) ||
        (sum.outcome == S2F_DIMSE_RELEASED && sum.detail[0]) ||
        strlen(sum.detail) >= sizeof sum.detail)
        abort();
    return 0;
}
