/*
 * websocket.h - a small blocking WebSocket client (RFC 6455) for the FHIRcast channel
 * (issue 15): ws:// and wss:// (OpenSSL), the opening handshake, masked frames sent,
 * fragmented messages reassembled, ping answered with pong, the close handshake.
 *
 * Everything from the server is hostile: every read has a deadline, a message is bounded
 * (max_message), frames that break RFC 6455 5.2 (masked, reserved bits, unknown opcodes,
 * long or fragmented control frames, non-minimal lengths, text that is not UTF-8) fail
 * the connection. The frame parser and the message assembly are separate, pure functions
 * (fuzz/fuzz_websocket.c).
 */
#ifndef S2F_WEBSOCKET_H
#define S2F_WEBSOCKET_H

#include <stddef.h>
#include <stdint.h>

#include "sr2fhir.h"

#define S2F_WS_TEXT 0x1
#define S2F_WS_BINARY 0x2
#define S2F_WS_CLOSE 0x8
#define S2F_WS_PING 0x9
#define S2F_WS_PONG 0xA

/* ---- frames (pure) -------------------------------------------------------------------- */

/* One frame's header as read. */
typedef struct s2f_ws_frame {
    int fin, opcode, masked;
    unsigned char mask[4];
    uint64_t length;       /* payload bytes */
    size_t header;         /* header bytes before the payload */
} s2f_ws_frame;

/*
 * Parses the frame at the start of b[0..n) as a client reads it (from a server: never
 * masked). 1: a whole frame (header and payload) is in b; 0: more bytes are needed (f is
 * not filled); -1: a protocol error or a frame over max_payload, with the reason in err
 * (S2F_EFORMAT, S2F_ELIMIT).
 */
int s2f_ws_frame_parse(const unsigned char *b, size_t n, size_t max_payload, s2f_ws_frame *f,
                       s2f_error *err);

/* Writes a client frame (fin set, masked with mask) of opcode and payload into out (cap
 * bytes, at least len + 14); returns its length, or 0 when out is too small. */
size_t s2f_ws_frame_build(int opcode, const unsigned char *payload, size_t len,
                          const unsigned char mask[4], unsigned char *out, size_t cap);

/* Reassembly of data frames into messages, at most max bytes (caller sets max; zero the
 * rest). */
typedef struct s2f_ws_message {
    unsigned char *data;   /* the message, NUL-terminated once complete */
    size_t len, cap, max;
    int opcode;            /* of the message in progress or complete; 0 none */
    int complete;
} s2f_ws_message;

/* Adds a data frame (opcode 0, 1 or 2) and its payload. 1: the message is complete (m->data,
 * m->len; a text message is valid UTF-8); 0: more fragments to come; -1: a protocol error
 * (a continuation with no message, a new message inside one, bad UTF-8) or over m->max. A
 * complete message is dropped by the next call. */
int s2f_ws_message_add(s2f_ws_message *m, const s2f_ws_frame *f, const unsigned char *payload,
                       s2f_error *err);
void s2f_ws_message_free(s2f_ws_message *m);

/* The Sec-WebSocket-Accept value for key (RFC 6455 4.2.2): base64(SHA-1(key + GUID)),
 * 28 characters and a NUL into out. */
void s2f_ws_accept_key(const char *key, char out[29]);

/* ---- the client ----------------------------------------------------------------------- */

typedef struct s2f_ws_options {
    long connect_timeout_ms;  /* TCP, TLS and the handshake; 0 = 10000 */
    size_t max_message;       /* bytes of one message; 0 = 16 MiB */
    const char *cacert;       /* wss://: CA bundle instead of the system's */
    const char *cert, *key;   /* wss://: client certificate and key (PEM) */
    int insecure;             /* wss://: no certificate verification (testing only) */
} s2f_ws_options;

typedef struct s2f_ws s2f_ws;

/* Connects to url (ws://host[:port]/path or wss://...) and completes the opening
 * handshake. NULL and err (S2F_EUNREACHABLE: no connection; S2F_EREJECTED: the server
 * refused the upgrade; S2F_EUSAGE: a bad URL). */
s2f_ws *s2f_ws_connect(const char *url, const s2f_ws_options *opt, s2f_error *err);

/* Sends one text message. */
s2f_code s2f_ws_send_text(s2f_ws *ws, const char *text, size_t len, s2f_error *err);

/*
 * Waits until deadline (s2f_http_now() seconds; the monotonic clock) for the next
 * message; answers pings meanwhile. S2F_OK: *msg (NUL-terminated, owned by ws until the
 * next call) and *len. S2F_EUNREACHABLE: the deadline passed (err says "timed out"; the
 * connection stays usable: *timed_out = 1), the server closed (code and reason in err) or
 * the connection broke. S2F_EFORMAT / S2F_ELIMIT: the server broke the protocol (the
 * connection is failed with close code 1002 / 1009).
 */
s2f_code s2f_ws_receive(s2f_ws *ws, double deadline, const char **msg, size_t *len,
                        int *timed_out, s2f_error *err);

/* The close handshake (code, e.g. 1000), waiting at most timeout_ms for the server's
 * close, then frees. NULL is a no-op. */
void s2f_ws_close(s2f_ws *ws, int code, long timeout_ms);

#endif
