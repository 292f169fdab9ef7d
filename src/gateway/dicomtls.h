/*
 * dicomtls.h - DICOM TLS for the DICOM receiver (issue 12; PS3.15 Annex B, the BCP 195
 * profiles: TLS 1.2 or later): an OpenSSL server context made from PEM files, and per
 * accepted connection a handshake within a deadline and an s2f_dimse_io that reads and
 * writes through it (dimse.h's transport contract: every call bounded by its timeout).
 * The socket is switched to non-blocking; the context is shared by every connection
 * thread (OpenSSL's SSL_CTX is thread-safe), a connection belongs to one thread.
 */
#ifndef S2F_GATEWAY_DICOMTLS_H
#define S2F_GATEWAY_DICOMTLS_H

#include <stddef.h>

#include "sr2fhir.h"
#include "gateway/dimse.h"

typedef struct s2f_dtls s2f_dtls;
typedef struct s2f_dtls_conn s2f_dtls_conn;

/* The server context: certificate chain and private key (PEM files), and when client_ca
 * is not NULL the CA certificates (PEM) a client certificate is required to chain to.
 * S2F_EIO naming the file and OpenSSL's reason when one cannot be loaded. */
s2f_code s2f_dtls_new(const char *cert, const char *key, const char *client_ca,
                      s2f_dtls **out, s2f_error *err);
void s2f_dtls_free(s2f_dtls *t);

/* The TLS handshake on the connected socket fd within timeout_ms; on success *io reads and
 * writes through it and `subject` holds the client certificate's subject ("" when none).
 * On failure (S2F_EIO with the reason, or the time ran out) nothing is left to free. */
s2f_code s2f_dtls_accept(s2f_dtls *t, int fd, int timeout_ms, s2f_dtls_conn **out,
                         s2f_dimse_io *io, char *subject, size_t subject_cap, s2f_error *err);

/* Sends close_notify (without waiting for the peer's) and frees; the socket stays open. */
void s2f_dtls_close(s2f_dtls_conn *c);

#endif
