/*
 * scp.h - the gateway's DICOM receiver (issue 12): a TCP listener (and DICOM TLS, PS3.15
 * Annex B, when configured) that runs each association on its own thread through
 * dimse.h, accepts the SR Storage SOP Classes and Verification with the transfer syntaxes
 * the reader supports, writes each received data set as a Part 10 file (meta header from
 * the command and the context: PS3.10 7.1) into the data folder, and answers C-STORE
 * success only after s2f_intake_commit (intake.h) made it durable. A data set that is not
 * an SR is refused; an SR that is not TID 1500 is stored (the worker finishes it as not
 * applicable). Calling AE titles may be restricted (with source addresses); associations
 * over the limit are rejected as transient, local limit exceeded. The audit log gets one
 * line per association and per instance. It knows nothing of FHIR.
 */
#ifndef S2F_GATEWAY_SCP_H
#define S2F_GATEWAY_SCP_H

#include "sr2fhir.h"
#include "gateway/dimse.h"
#include "gateway/intake.h"

typedef struct s2f_scp s2f_scp;

/* One allowed peer: a calling AE title, and (address non-empty) the source address it
 * must come from ("AET" or "AET@ADDRESS" in the configuration). */
typedef struct s2f_scp_peer {
    char aet[S2F_DIMSE_AET_MAX + 1];
    char address[64];
} s2f_scp_peer;

typedef struct s2f_scp_options {
    const char *bind;              /* "HOST:PORT"; port 0 = any (s2f_scp_port tells) */
    const char *aet;               /* our AE title: the called AE title must be it */
    const s2f_scp_peer *peers;     /* allowed calling AE titles; n_peers = 0: any */
    size_t n_peers;
    int max_associations;          /* at once; more are rejected transient; 0 = 16 */
    s2f_dimse_limits limits;
    /* DICOM TLS (optional; NULL = plain TCP): server certificate and key (PEM), and the
     * CA that client certificates must chain to (NULL: none asked) */
    const char *tls_cert, *tls_key, *tls_client_ca;
    s2f_intake *intake;            /* where received SRs go */
    s2f_gw_log *log;               /* may be NULL */
    s2f_gw_metrics *metrics;       /* may be NULL */
} s2f_scp_options;

/* Binds and listens (S2F_EIO with the address and reason when it cannot), starts the
 * accepting thread. Strings and peers are copied. */
s2f_code s2f_scp_start(const s2f_scp_options *opt, s2f_scp **out, s2f_error *err);

/* The port listened on. */
int s2f_scp_port(const s2f_scp *scp);

/* Stops accepting, lets running associations end within grace_seconds, then aborts them
 * (A-ABORT; an unfinished C-STORE is not acknowledged and its file removed), joins every
 * thread and frees. */
void s2f_scp_stop(s2f_scp *scp, int grace_seconds);

#endif
