/*
 * dicomweb.h - the gateway's DICOMweb client for pulling SRs (issue 13): QIDO-RS search
 * for SR instances (PS3.18 10.6; paged with limit/offset) and WADO-RS retrieve of one
 * instance (PS3.18 10.4, multipart/related; type="application/dicom") streamed into a
 * file of the data folder (store.h), never held whole in memory. TLS and credentials as
 * `send` (s2f_client_options). It knows nothing of FHIR nor of the queue: pull.c and the
 * serve's polling source decide what to do with what it finds.
 *
 * Hostile servers: every answer has a size bound (a 10 GB Content-Length is refused
 * before reading), QIDO JSON of the wrong shape and malformed multipart end with one
 * clear error. One s2f_dw per thread.
 */
#ifndef S2F_GATEWAY_DICOMWEB_H
#define S2F_GATEWAY_DICOMWEB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sr2fhir_send.h"
#include "gateway/store.h"

#define S2F_DW_UID_MAX 64

typedef struct s2f_dw s2f_dw;

typedef struct s2f_dw_options {
    s2f_client_options client;     /* TLS, credentials, timeouts, retries as `send` */
    unsigned page_size;            /* QIDO limit per request; 0 = 200 */
    unsigned long long max_qido;   /* bytes of one QIDO answer; 0 = 64 MiB */
    unsigned long long max_instance; /* bytes of one retrieved instance; 0 = 256 MiB */
    unsigned long long max_results;  /* instances one search may return; 0 = 10,000,000 */
} s2f_dw_options;

/* What to search for. Dates are DICOM DA (YYYYMMDD) or DT (YYYYMMDDHHMMSS); NULL: no
 * bound. study: one Study Instance UID, NULL: every study. */
typedef struct s2f_dw_query {
    const char *study;
    const char *since, *until;
} s2f_dw_query;

/* One instance QIDO-RS found (its attributes, "" when absent). */
typedef struct s2f_dw_instance {
    char study[S2F_DW_UID_MAX + 1];
    char series[S2F_DW_UID_MAX + 1];
    char sop_instance[S2F_DW_UID_MAX + 1];
    char sop_class[S2F_DW_UID_MAX + 1];
} s2f_dw_instance;

/* base: the DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web. */
s2f_code s2f_dw_new(const char *base, const s2f_dw_options *opt, s2f_dw **out,
                    s2f_error *err);
void s2f_dw_free(s2f_dw *dw);

/* While *flag (may be NULL: never) is non-zero, requests stop at once (no retry, no wait)
 * and fail with S2F_EUNREACHABLE: the serve's polling source sets it when stopping. The
 * flag must outlive dw. (Additive, issue 13.) */
void s2f_dw_set_cancel(s2f_dw *dw, const atomic_int *flag);

/* Every SR instance the query selects (series of Modality SR, then their instances; SOP
 * Class UID filters where the server takes them), page after page, each passed to `each`
 * (which returns non-zero to stop; S2F_OK is still returned). Instances that are not of an
 * SR Storage SOP Class are not passed. S2F_EUNREACHABLE (no answer, after retries),
 * S2F_EREJECTED (an HTTP error answer), S2F_EFORMAT (an answer of the wrong shape),
 * S2F_ELIMIT (an answer or result count over its bound), with where in err. */
s2f_code s2f_dw_search(s2f_dw *dw, const s2f_dw_query *q,
                       int (*each)(void *ctx, const s2f_dw_instance *inst), void *ctx,
                       s2f_error *err);

/* WADO-RS retrieve of one instance into a new sealed file of `st` (s2f_store_begin,
 * write, seal): on S2F_OK *f holds it (the caller commits or aborts it); on failure
 * nothing is left behind. */
s2f_code s2f_dw_retrieve(s2f_dw *dw, const s2f_dw_instance *inst, s2f_store *st,
                         s2f_store_file *f, s2f_error *err);

/* ---- pure parsers (unit tests, fuzz/fuzz_qido.c) ---------------------------------------- */

/* Reads a QIDO-RS answer (application/dicom+json: an array of objects keyed by tag) and
 * calls `each` with every object's UIDs. An empty body is an empty array. S2F_EFORMAT with
 * where on a wrong shape. */
s2f_code s2f_dw_parse_qido(const char *json, size_t len,
                           int (*each)(void *ctx, const s2f_dw_instance *inst), void *ctx,
                           size_t *count, s2f_error *err);

#endif
