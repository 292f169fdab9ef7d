/*
 * stow.h - the gateway's STOW-RS receiver (issue 11 Build #2; PS3.18 10.5): one request
 * to POST /dicom-web/studies[/{StudyInstanceUID}] handled through libmicrohttpd's access
 * handler calls, the body streamed part by part (multipart.h) into files of the data
 * folder, each SR's header read for its UIDs, and every stored part durably committed
 * through intake.h (file fsync, rename, folder fsync, job row committed) before the answer: 200 all stored, 202 some refused, 409 none stored, 400 malformed,
 * 413 too large, 415 unsupported media type, 503 busy (back-pressure), each with an
 * application/dicom+json body (PS3.18 Annex I). docs/gateway.md "STOW-RS" says what a
 * sender sees; docs/decisions.md "Issue 11: STOW-RS receiver" why.
 *
 * One s2f_stow serves every request of the service and may be called from several MHD
 * threads at once; it holds no state of its own between requests (intake.h commits the
 * job rows of concurrent requests in one transaction).
 */
#ifndef S2F_GATEWAY_STOW_H
#define S2F_GATEWAY_STOW_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdint.h>
#include <microhttpd.h>

#include "sr2fhir.h"
#include "gateway/intake.h"
#include "gateway/log.h"
#include "gateway/metrics.h"

typedef struct s2f_stow s2f_stow;

typedef struct s2f_stow_options {
    s2f_intake *intake;             /* store, back-pressure, commits, audit (intake.h) */
    unsigned long long max_body, max_part;
    s2f_gw_metrics *metrics; s2f_gw_log *log;
} s2f_stow_options;

/* The receiver over `opt->intake`, which must outlive it (as metrics and log). */
s2f_code s2f_stow_new(const s2f_stow_options *opt, s2f_stow **out, s2f_error *err);

/* Frees the receiver. Call after the HTTP daemon stopped. */
void s2f_stow_free(s2f_stow *s);

/* Called by httpd's access handler for every call of a request under /dicom-web/studies
   (the MHD_AccessHandlerCallback arguments; `who` names the sender for the audit: token
   name, TLS client subject, or "-"; `remote` the peer address). */
enum MHD_Result s2f_stow_handle(s2f_stow *s, struct MHD_Connection *c, const char *url,
    const char *method, const char *upload_data, size_t *upload_data_size, void **req_cls,
    const char *who, const char *remote);

/* httpd's MHD_OPTION_NOTIFY_COMPLETED calls this for requests stow started (frees them,
   removes files not committed). */
void s2f_stow_completed(s2f_stow *s, void **req_cls);

/* For /readyz: the receiver's database handle works. */
s2f_code s2f_stow_check(s2f_stow *s, s2f_error *err);

#endif
