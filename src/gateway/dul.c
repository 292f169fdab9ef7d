/*
 * dul.c - the PDU builders of the DICOM Upper Layer acceptor and the DIMSE response
 * command sets (dul.h; PS3.8 9.3, PS3.7 9.3 and Annex E). Every PDU field is big endian
 * (PS3.8 9.3.1); command sets are Implicit VR Little Endian (PS3.7 6.3.1).
 */
#include "gateway/dul.h"

#include <string.h>

uint16_t dul_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
uint32_t dul_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
uint16_t dul_le16(const uint8_t *p) { return (uint16_t)(p[1] << 8 | p[0]); }
uint32_t dul_le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
void dul_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
void dul_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put_le32(uint8_t *p, uint32_t v)
{
    put_le16(p, (uint16_t)v);
    put_le16(p + 2, (uint16_t)(v >> 16));
}

/* An item or sub-item: type, reserved, 2-byte length, value. Returns the bytes written. */
static size_t put_item(uint8_t *out, uint8_t type, const void *value, size_t n)
{
    out[0] = type;
    out[1] = 0;
    dul_put_be16(out + 2, (uint16_t)n);
    memcpy(out + 4, value, n);
    return 4 + n;
}

static size_t uid_len(const char *s)
{
    size_t n = strlen(s);
    return n > S2F_DIMSE_UID_MAX ? S2F_DIMSE_UID_MAX : n;
}

size_t dul_ac_size_max(size_t n)
{
    /* header, fixed part, application context, n contexts (4 + 4 + TS sub-item), user
     * information (max length, implementation class UID, version name) */
    return 6 + DUL_ASSOC_FIXED + 4 + sizeof DUL_APP_CONTEXT_NAME +
           n * (8 + 4 + S2F_DIMSE_UID_MAX) + 4 + 8 + 4 + S2F_DIMSE_UID_MAX + 4 +
           S2F_DIMSE_AET_MAX;
}

static size_t put_context(uint8_t *out, const dul_ac_context *c)
{
    const char *ts = c->ts && *c->ts ? c->ts : DUL_IMPLICIT_LE;
    size_t tn = uid_len(ts);
    out[0] = DUL_ITEM_PC_AC;
    out[1] = 0;
    dul_put_be16(out + 2, (uint16_t)(4 + 4 + tn));
    out[4] = c->id;
    out[5] = 0;
    out[6] = c->result;
    out[7] = 0;
    return 8 + put_item(out + 8, DUL_ITEM_TRANSFER_SYNTAX, ts, tn);
}

static size_t put_user_info(uint8_t *out, uint32_t max_pdu)
{
    uint8_t len[4];
    size_t n = 4;
    dul_put_be32(len, max_pdu);
    n += put_item(out + n, DUL_SUB_MAX_LENGTH, len, 4);
    n += put_item(out + n, DUL_SUB_IMPL_CLASS_UID, S2F_DIMSE_IMPL_CLASS_UID,
                  strlen(S2F_DIMSE_IMPL_CLASS_UID));
    n += put_item(out + n, DUL_SUB_IMPL_VERSION, S2F_DIMSE_IMPL_VERSION,
                  strlen(S2F_DIMSE_IMPL_VERSION));
    out[0] = DUL_ITEM_USER_INFO;
    out[1] = 0;
    dul_put_be16(out + 2, (uint16_t)(n - 4));
    return n;
}

size_t dul_build_ac(uint8_t *out, size_t cap, const uint8_t fixed[DUL_ASSOC_FIXED],
                    const dul_ac_context *ctx, size_t n, uint32_t max_pdu)
{
    if (cap < dul_ac_size_max(n))
        return 0;
    size_t off = 6;
    memcpy(out + off, fixed, DUL_ASSOC_FIXED);
    out[off] = 0x00;           /* protocol version 1 (PS3.8 9.3.3) */
    out[off + 1] = 0x01;
    out[off + 2] = out[off + 3] = 0;
    off += DUL_ASSOC_FIXED;
    off += put_item(out + off, DUL_ITEM_APP_CONTEXT, DUL_APP_CONTEXT_NAME,
                    strlen(DUL_APP_CONTEXT_NAME));
    for (size_t i = 0; i < n; i++)
        off += put_context(out + off, &ctx[i]);
    off += put_user_info(out + off, max_pdu);
    out[0] = DUL_ASSOCIATE_AC;
    out[1] = 0;
    dul_put_be32(out + 2, (uint32_t)(off - 6));
    return off;
}

static void build_short(uint8_t out[10], uint8_t type, uint8_t b7, uint8_t b8, uint8_t b9)
{
    out[0] = type;
    out[1] = 0;
    dul_put_be32(out + 2, 4);
    out[6] = 0;
    out[7] = b7;
    out[8] = b8;
    out[9] = b9;
}

void dul_build_rj(uint8_t out[10], const s2f_dimse_reject *rj)
{
    build_short(out, DUL_ASSOCIATE_RJ, rj->result, rj->source, rj->reason);
}

void dul_build_abort(uint8_t out[10], uint8_t source, uint8_t reason)
{
    build_short(out, DUL_ABORT, 0, source, reason);
}

void dul_build_release_rp(uint8_t out[10]) { build_short(out, DUL_RELEASE_RP, 0, 0, 0); }

/* One Implicit VR LE element of group 0000; values padded to even length with NUL (UI). */
static size_t put_elem(uint8_t *out, uint16_t elem, const void *v, size_t n)
{
    size_t padded = n + (n & 1);
    put_le16(out, 0x0000);
    put_le16(out + 2, elem);
    put_le32(out + 4, (uint32_t)padded);
    memcpy(out + 8, v, n);
    if (padded != n)
        out[8 + n] = 0;
    return 8 + padded;
}

static size_t put_us(uint8_t *out, uint16_t elem, uint16_t v)
{
    uint8_t b[2];
    put_le16(b, v);
    return put_elem(out, elem, b, 2);
}

size_t dul_build_rsp(uint8_t out[DUL_RSP_MAX], uint16_t field, const char *sop_class,
                     const char *sop_instance, uint16_t message_id, uint16_t status)
{
    size_t off = 12;   /* (0000,0000) CommandGroupLength, filled last */
    if (sop_class && *sop_class)
        off += put_elem(out + off, 0x0002, sop_class, uid_len(sop_class));
    off += put_us(out + off, 0x0100, field);
    off += put_us(out + off, 0x0120, message_id);
    off += put_us(out + off, 0x0800, DIMSE_NO_DATA_SET);
    off += put_us(out + off, 0x0900, status);
    if (sop_instance && *sop_instance)
        off += put_elem(out + off, 0x1000, sop_instance, uid_len(sop_instance));
    uint8_t len[4];
    put_le32(len, (uint32_t)(off - 12));
    put_elem(out, 0x0000, len, 4);
    return off;
}
