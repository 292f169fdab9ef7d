/*
 * sr2fhir_cast.h - the FHIRcast STU3 client of sr2fhir (issue 15, docs/fhircast.md): shares
 * the measurements of a TID 1500 SR with the DiagnosticReport a reporting application has
 * open on a FHIRcast hub, as a DiagnosticReport-update whose `updates` Bundle PUTs the
 * converted Observations and the ImagingSelections, BodyStructures and Devices they
 * reference.
 *
 * A session subscribes to the topic over the websocket channel (STU3 has no webhooks),
 * answers every notification, and for each SR reads the current context (Get Current
 * Context): when it is a DiagnosticReport context whose Patient and ImagingStudy (as the
 * -open event gave them) match the SR, it publishes the update with the context's
 * versionId; on a stale version (409 or a SyncError) it reads the context again and retries
 * once per new version; 5xx and 429 are retried with backoff within the deadline. Not
 * shareable between threads.
 */
#ifndef SR2FHIR_CAST_H
#define SR2FHIR_CAST_H

#include "sr2fhir_send.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options: s2f_cast_options_init, then set what differs from the defaults. Strings are
 * copied by s2f_cast_open. */
typedef struct s2f_cast_options {
    size_t struct_size;      /* sizeof(s2f_cast_options) as the caller knows it */
    const char *hub;         /* hub.url, http(s)://... (http only to loopback unless
                                client.allow_http) */
    const char *topic;       /* hub.topic */
    /* bearer_token (never printed), cacert, cert, key, insecure, allow_http,
     * connect_timeout, timeout, retries, retry_delay_ms, deadline (seconds per SR, 0 =
     * S2F_DEFAULT_DEADLINE), timezone; version R4 converts in R4 form. NULL: the
     * defaults. A pointer, not an embedded struct, so that s2f_client_options can grow
     * without moving the members after it (issue 16, docs/abi.md); set up with
     * s2f_client_options_init, read by s2f_cast_open only. */
    const s2f_client_options *client;
    long wait;               /* seconds to wait for a matching context to open; 0: none */
    const char *subscriber_name; /* subscriber.name; NULL = "sr2fhir" */
} s2f_cast_options;

static inline void s2f_cast_options_init(s2f_cast_options *opt)
{
    static const s2f_cast_options zero;
    *opt = zero;
    opt->struct_size = sizeof *opt;
}

/* What sharing one SR did: s2f_cast_result_init before s2f_cast_share. */
typedef struct s2f_cast_result {
    size_t struct_size;      /* sizeof(s2f_cast_result) as the caller knows it */
    char report[128];        /* "DiagnosticReport/id" of the context, "" when none */
    char patient[128];       /* "Patient/id" of the context, "" when none */
    char version[128];       /* the context's versionId after the update */
    char prior_version[128]; /* the versionId the update was sent with */
    char event_id[64];       /* the id of the DiagnosticReport-update event */
    size_t resources;        /* resources PUT (Observations, ImagingSelections, ...) */
    unsigned stale;          /* updates refused for a stale version, then retried */
    long http_status;        /* the hub's last answer to the update, 0 when none */
} s2f_cast_result;

static inline void s2f_cast_result_init(s2f_cast_result *res)
{
    static const s2f_cast_result zero;
    *res = zero;
    res->struct_size = sizeof *res;
}

typedef struct s2f_cast s2f_cast;

/* Subscribes to the topic and opens the websocket channel. NULL and err: S2F_EUSAGE (bad
 * options), S2F_EUNREACHABLE, S2F_EREJECTED (the hub refused the subscription). */
s2f_cast *s2f_cast_open(const s2f_cast_options *opt, s2f_error *err);

/*
 * Shares one SR (see above). S2F_ELOOKUP: no DiagnosticReport context matching the SR's
 * patient and study is open (after waiting opt.wait seconds), nothing was published;
 * S2F_EREJECTED: the hub refused the update (its OperationOutcome in err);
 * S2F_EUNREACHABLE: no answer within the deadline; conversion errors as s2f_convert.
 * res is filled in every case.
 */
s2f_code s2f_cast_share(s2f_cast *c, const s2f_doc *doc, s2f_cast_result *res, s2f_error *err);

/* Unsubscribes, closes the channel and frees. NULL is a no-op. */
void s2f_cast_close(s2f_cast *c);

#ifdef __cplusplus
}
#endif
#endif
