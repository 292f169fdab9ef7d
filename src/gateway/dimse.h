/*
 * dimse.h - one DICOM association, acceptor side (issue 12): the Upper Layer protocol of
 * PS3.8 (A-ASSOCIATE-RQ/AC/RJ, P-DATA-TF with PDV fragments, A-RELEASE-RQ/RP, A-ABORT,
 * the ARTIM timer, maximum PDU length negotiation) and the DIMSE services C-ECHO and
 * C-STORE of PS3.7 (command sets in Implicit VR Little Endian), over one connected
 * transport (a socket, or TLS on it: s2f_dimse_io).
 *
 * s2f_dimse_serve runs a whole association on the caller's thread and returns when it is
 * over. It decides nothing itself: the handler accepts or rejects the association and
 * each presentation context, and receives each C-STORE's data set as a stream of bytes
 * (never held whole in memory), returning the status the C-STORE-RSP carries. No threads,
 * no global state, no printing: several associations run at once on several threads.
 * Hostile peers: every length is checked against what was announced and what is left,
 * a PDU larger than the limit or of an unknown type ends the association with A-ABORT,
 * every wait has a deadline. docs/decisions.md "Issue 12: ..." says why.
 */
#ifndef S2F_GATEWAY_DIMSE_H
#define S2F_GATEWAY_DIMSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sr2fhir.h"

/* What sr2fhir announces in A-ASSOCIATE-AC (PS3.7 D.3.3.2) and may write as the Part 10
 * meta header's ImplementationClassUID / ImplementationVersionName (PS3.10 7.1). */
#define S2F_DIMSE_IMPL_CLASS_UID "2.25.62991984592239206257125289712698180439"
#define S2F_DIMSE_IMPL_VERSION "SR2FHIR_" SR2FHIR_VERSION

/* ---- transport -------------------------------------------------------------------- */

/* Bytes in and out. read: up to n bytes within timeout_ms, returns the count (> 0),
 * 0 at end of stream, -1 on error, -2 when the time ran out. write: all n bytes within
 * timeout_ms, returns 0, -1 on error, -2 on time out. */
typedef struct s2f_dimse_io {
    void *ctx;
    ssize_t (*read)(void *ctx, void *buf, size_t n, int timeout_ms);
    int (*write)(void *ctx, const void *buf, size_t n, int timeout_ms);
} s2f_dimse_io;

/* The plain transport over a connected socket (poll + read/write; MSG_NOSIGNAL). `fd`
 * is stored in *ctx_storage, which must outlive `io`. */
void s2f_dimse_io_fd(s2f_dimse_io *io, int *ctx_storage, int fd);

/* ---- limits ----------------------------------------------------------------------- */

typedef struct s2f_dimse_limits {
    uint32_t max_pdu;        /* Maximum Length we announce and accept for P-DATA-TF PDUs
                                (bytes of the PDU's variable part); 0 = 262144. A PDU
                                longer than this (other PDUs: longer than 64 KiB) ends
                                the association: A-ABORT, source 2 (service provider),
                                reason 6 (invalid PDU parameter value); an unknown PDU
                                type: reason 1; one not expected now: reason 2 */
    int artim_ms;            /* ARTIM: for the A-ASSOCIATE-RQ after connecting, and for the
                                peer to close after A-RELEASE-RP or A-ABORT; 0 = 30000 */
    int idle_ms;             /* no byte from the peer for this long inside an established
                                association: A-ABORT; 0 = 60000 */
    int write_ms;            /* one write blocked this long: the association is dropped;
                                0 = 30000 */
    uint64_t max_dataset;    /* bytes of one C-STORE data set; more: the rest is read and
                                dropped, status A700; 0 = 256 MiB */
    size_t max_contexts;     /* presentation contexts in one request; 0 = 128 (PS3.8 allows
                                128: odd ids 1..255) */
} s2f_dimse_limits;

/* ---- what the peer asked ------------------------------------------------------------ */

#define S2F_DIMSE_UID_MAX 64
#define S2F_DIMSE_AET_MAX 16
#define S2F_DIMSE_TS_MAX 32     /* transfer syntaxes read per context; more are ignored */

typedef struct s2f_dimse_context {
    uint8_t id;                                   /* odd, 1..255 */
    char abstract_syntax[S2F_DIMSE_UID_MAX + 1];
    size_t n_ts;
    char ts[S2F_DIMSE_TS_MAX][S2F_DIMSE_UID_MAX + 1];
} s2f_dimse_context;

typedef struct s2f_dimse_request {
    char calling_aet[S2F_DIMSE_AET_MAX + 1];   /* leading and trailing spaces removed */
    char called_aet[S2F_DIMSE_AET_MAX + 1];
    char impl_class_uid[S2F_DIMSE_UID_MAX + 1];
    char impl_version[S2F_DIMSE_AET_MAX + 1];
    uint32_t peer_max_pdu;                     /* 0: unlimited */
    size_t n_contexts;
    const s2f_dimse_context *contexts;         /* valid during on_associate only */
} s2f_dimse_request;

/* A-ASSOCIATE-RJ fields (PS3.8 9.3.4): result 1 permanent, 2 transient; source 1 service
 * user (reason 1 no reason, 2 application context name not supported, 3 calling AE title
 * not recognized, 7 called AE title not recognized), 2 service provider ACSE (1 no reason,
 * 2 protocol version not supported), 3 service provider presentation (1 temporary
 * congestion, 2 local limit exceeded). */
typedef struct s2f_dimse_reject {
    uint8_t result, source, reason;
} s2f_dimse_reject;

/* Per-context answers (PS3.8 9.3.3.2): 0 acceptance, 1 user rejection, 2 no reason,
 * 3 abstract syntax not supported, 4 transfer syntaxes not supported. */
#define S2F_DIMSE_CTX_ACCEPT 0
#define S2F_DIMSE_CTX_USER_REJECT 1
#define S2F_DIMSE_CTX_NO_REASON 2
#define S2F_DIMSE_CTX_ABSTRACT_NOT_SUPPORTED 3
#define S2F_DIMSE_CTX_TS_NOT_SUPPORTED 4

/* One C-STORE-RQ's command (the data set follows through store_data). */
typedef struct s2f_dimse_store {
    uint8_t context_id;
    char sop_class[S2F_DIMSE_UID_MAX + 1];      /* Affected SOP Class UID */
    char sop_instance[S2F_DIMSE_UID_MAX + 1];   /* Affected SOP Instance UID */
    char transfer_syntax[S2F_DIMSE_UID_MAX + 1];/* of the context: the data set's encoding */
    uint16_t message_id;
    char move_originator_aet[S2F_DIMSE_AET_MAX + 1]; /* "" when absent */
} s2f_dimse_store;

/* C-STORE statuses (PS3.4 B.2.3) the handler returns. */
#define S2F_DIMSE_SUCCESS 0x0000u
#define S2F_DIMSE_OUT_OF_RESOURCES 0xA700u
#define S2F_DIMSE_DATASET_MISMATCH 0xA900u
#define S2F_DIMSE_CANNOT_UNDERSTAND 0xC000u
#define S2F_DIMSE_SOP_CLASS_NOT_SUPPORTED 0x0122u

typedef struct s2f_dimse_handler {
    void *ctx;
    /* The A-ASSOCIATE-RQ arrived (`remote` is the peer's address as the caller gave it):
     * return 0 to go on (contexts are then asked one by one), or fill *rj and return
     * non-zero: A-ASSOCIATE-RJ is sent. */
    int (*on_associate)(void *ctx, const s2f_dimse_request *rq, s2f_dimse_reject *rj);
    /* One proposed presentation context: return S2F_DIMSE_CTX_ACCEPT with *chosen the
     * index of the transfer syntax taken from ctx->ts, or a rejection reason. */
    int (*on_context)(void *ctx, const s2f_dimse_context *pc, size_t *chosen);
    /* A C-STORE-RQ: return a handle for its data set (non-NULL), or NULL with *status the
     * failure to answer (the data set is then read and dropped). */
    void *(*store_begin)(void *ctx, const s2f_dimse_store *st, uint16_t *status);
    /* Bytes of the data set in order; non-zero: stop taking it (the rest is read and
     * dropped) and *status (set by the handler) is answered at the end. */
    int (*store_data)(void *ctx, void *handle, const uint8_t *data, size_t len,
                      uint16_t *status);
    /* The data set is complete (complete = 1) and the C-STORE-RSP will carry the status
     * returned (take over a failure store_data set: *status holds it, else 0); or the
     * association ended before it was (complete = 0: discard everything, the return value
     * is ignored). Called exactly once per successful store_begin. */
    uint16_t (*store_end)(void *ctx, void *handle, int complete, uint16_t status);
} s2f_dimse_handler;

/* How the association ended (for the audit log). */
typedef enum s2f_dimse_outcome {
    S2F_DIMSE_RELEASED,       /* A-RELEASE-RQ answered */
    S2F_DIMSE_REJECTED,       /* A-ASSOCIATE-RJ sent */
    S2F_DIMSE_ABORTED_BY_PEER,/* A-ABORT received */
    S2F_DIMSE_ABORTED,        /* we sent A-ABORT: a malformed or unexpected PDU, a limit */
    S2F_DIMSE_TIMED_OUT,      /* ARTIM or idle deadline (A-ABORT sent when established) */
    S2F_DIMSE_DROPPED         /* the connection closed or failed outside a release */
} s2f_dimse_outcome;

typedef struct s2f_dimse_summary {
    s2f_dimse_outcome outcome;
    char calling_aet[S2F_DIMSE_AET_MAX + 1];  /* "" when no request was read */
    char called_aet[S2F_DIMSE_AET_MAX + 1];
    unsigned echoes, stores, stores_ok;       /* C-ECHO and C-STORE requests answered */
    char detail[S2F_ERROR_MAX];               /* why it ended, "" when released */
} s2f_dimse_summary;

/* Runs one association on `io` to its end. Never fails as a function: how it ended is in
 * *sum. Does not close the transport. */
void s2f_dimse_serve(const s2f_dimse_io *io, const s2f_dimse_limits *lim,
                     const s2f_dimse_handler *h, s2f_dimse_summary *sum);

/* Rejects without reading anything (a connection over the association limit): sends
 * A-ASSOCIATE-RJ with `rj` after reading the A-ASSOCIATE-RQ within artim_ms (or at once
 * when none comes), then waits at most artim_ms for the peer to close. */
void s2f_dimse_reject_now(const s2f_dimse_io *io, const s2f_dimse_limits *lim,
                          const s2f_dimse_reject *rj, s2f_dimse_summary *sum);

/* ---- pure parsers (unit tests, fuzz/fuzz_dimse.c) ------------------------------------ */

/* Parses the variable part of an A-ASSOCIATE-RQ PDU (after the 6-byte PDU header) into
 * *rq with contexts into `ctx` (capacity cap). S2F_EFORMAT with where/why on anything
 * malformed. */
s2f_code s2f_dimse_parse_associate_rq(const uint8_t *p, size_t n, s2f_dimse_request *rq,
                                      s2f_dimse_context *ctx, size_t cap, uint32_t *max_pdu,
                                      s2f_error *err);

/* A command set (Implicit VR Little Endian group 0000 elements) as read. */
typedef struct s2f_dimse_command {
    uint16_t command_field;        /* 0x0001 C-STORE-RQ, 0x0030 C-ECHO-RQ, ... */
    uint16_t message_id;
    uint16_t data_set_type;        /* 0x0101: no data set follows */
    uint16_t priority;
    char affected_sop_class[S2F_DIMSE_UID_MAX + 1];
    char affected_sop_instance[S2F_DIMSE_UID_MAX + 1];
    char move_originator_aet[S2F_DIMSE_AET_MAX + 1];
} s2f_dimse_command;

s2f_code s2f_dimse_parse_command(const uint8_t *p, size_t n, s2f_dimse_command *cmd,
                                 s2f_error *err);

#endif
