/*
 * dul.h - the PDU codec of the DICOM Upper Layer (PS3.8 9.3), internal to dimse.c: byte
 * order helpers, the fixed PDU and item type numbers, and the builders of the PDUs the
 * acceptor sends (A-ASSOCIATE-AC/RJ, P-DATA-TF with one PDV, A-RELEASE-RP, A-ABORT) and of
 * the DIMSE response command sets (PS3.7 9.3.1.2, 9.3.5.2, Implicit VR Little Endian).
 * Pure functions over caller buffers: no I/O, no allocation.
 */
#ifndef S2F_GATEWAY_DUL_H
#define S2F_GATEWAY_DUL_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/dimse.h"

/* PDU types (PS3.8 9.3.1) */
#define DUL_ASSOCIATE_RQ 0x01
#define DUL_ASSOCIATE_AC 0x02
#define DUL_ASSOCIATE_RJ 0x03
#define DUL_P_DATA_TF 0x04
#define DUL_RELEASE_RQ 0x05
#define DUL_RELEASE_RP 0x06
#define DUL_ABORT 0x07

/* Item types (PS3.8 9.3.2, 9.3.3, Annex D) */
#define DUL_ITEM_APP_CONTEXT 0x10
#define DUL_ITEM_PC_RQ 0x20
#define DUL_ITEM_PC_AC 0x21
#define DUL_ITEM_ABSTRACT_SYNTAX 0x30
#define DUL_ITEM_TRANSFER_SYNTAX 0x40
#define DUL_ITEM_USER_INFO 0x50
#define DUL_SUB_MAX_LENGTH 0x51
#define DUL_SUB_IMPL_CLASS_UID 0x52
#define DUL_SUB_IMPL_VERSION 0x55

/* The DICOM Application Context Name (PS3.7 Annex A.2.1) */
#define DUL_APP_CONTEXT_NAME "1.2.840.10008.3.1.1.1"
#define DUL_IMPLICIT_LE "1.2.840.10008.1.2"

/* Bytes of the fixed part of an A-ASSOCIATE-RQ/AC variable field: protocol version (2),
 * reserved (2), called AE (16), calling AE (16), reserved (32). */
#define DUL_ASSOC_FIXED 68

/* DIMSE command fields (PS3.7 E.1) */
#define DIMSE_C_STORE_RQ 0x0001u
#define DIMSE_C_STORE_RSP 0x8001u
#define DIMSE_C_ECHO_RQ 0x0030u
#define DIMSE_C_ECHO_RSP 0x8030u
#define DIMSE_C_CANCEL_RQ 0x0FFFu
#define DIMSE_NO_DATA_SET 0x0101u
#define DIMSE_UNRECOGNIZED_OPERATION 0x0211u

uint16_t dul_be16(const uint8_t *p);
uint32_t dul_be32(const uint8_t *p);
uint16_t dul_le16(const uint8_t *p);
uint32_t dul_le32(const uint8_t *p);
void dul_put_be16(uint8_t *p, uint16_t v);
void dul_put_be32(uint8_t *p, uint32_t v);

/* One context's answer for the A-ASSOCIATE-AC. */
typedef struct dul_ac_context {
    uint8_t id, result;
    const char *ts;   /* the chosen transfer syntax (any one when rejected) */
} dul_ac_context;

/* Upper bound of the A-ASSOCIATE-AC's size for n contexts. */
size_t dul_ac_size_max(size_t n);

/* The A-ASSOCIATE-AC: `fixed` is the RQ's 68-byte fixed part (AE titles and reserved
 * bytes are echoed as received, PS3.8 9.3.3). Returns the bytes written (<= cap), or 0. */
size_t dul_build_ac(uint8_t *out, size_t cap, const uint8_t fixed[DUL_ASSOC_FIXED],
                    const dul_ac_context *ctx, size_t n, uint32_t max_pdu);

/* The 10-byte PDUs. */
void dul_build_rj(uint8_t out[10], const s2f_dimse_reject *rj);
void dul_build_abort(uint8_t out[10], uint8_t source, uint8_t reason);
void dul_build_release_rp(uint8_t out[10]);

/* A DIMSE response command set (C-STORE-RSP, C-ECHO-RSP, ...): Affected SOP Class UID
 * and Affected SOP Instance UID (when non-empty), Command Field, Message ID Being
 * Responded To, Command Data Set Type 0101 (no data set), Status. Returns its size (at
 * most DUL_RSP_MAX). */
#define DUL_RSP_MAX 256
size_t dul_build_rsp(uint8_t out[DUL_RSP_MAX], uint16_t field, const char *sop_class,
                     const char *sop_instance, uint16_t message_id, uint16_t status);

#endif
