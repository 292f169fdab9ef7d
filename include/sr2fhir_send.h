/*
 * sr2fhir_send.h - public interface of libsr2fhir-send: delivery of converted SRs to a
 * FHIR server (`sr2fhir send`, docs/send.md) over libcurl. Link with
 * `pkg-config --libs sr2fhir-send`; everything of sr2fhir.h applies (threading, errors,
 * struct_size and the init functions).
 */
#ifndef SR2FHIR_SEND_H
#define SR2FHIR_SEND_H

#include "sr2fhir.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- delivery to a FHIR server (`sr2fhir send`, docs/send.md) ----------------------- */

/* Client options: s2f_client_options_init, then set what differs from the defaults.
 * Strings are copied by s2f_client_new. */
typedef struct s2f_client_options {
    size_t struct_size;      /* sizeof(s2f_client_options) as the caller knows it */
    s2f_fhir_version version; /* AUTO: ask the server (GET [base]/metadata, once) */
    int require_existing;    /* 1: fail (S2F_ELOOKUP) when the Patient, ServiceRequest or
                                ImagingStudy is not on the server; 0: logical reference */
    const char *timezone;    /* as s2f_convert_options.timezone */
    /* credentials: never printed, logged nor put in an error message */
    const char *bearer_token;
    const char *user, *password;       /* HTTP basic */
    const char *cert, *key;            /* client certificate and key, PEM files */
    const char *cacert;                /* CA bundle to trust instead of the system's */
    int insecure;            /* 1: no certificate verification (testing only) */
    int allow_http;          /* 1: plain http:// to a host that is not loopback */
    long connect_timeout;    /* seconds; 0 = 10 */
    long timeout;            /* seconds per request; 0 = 120 */
    int retries;             /* tries after the first; 0 = 4, negative = none */
    long retry_delay_ms;     /* first backoff; 0 = 500 (doubles up to 30 s, 50-100 % jitter) */
    long max_entries;        /* entries per transaction; a larger Bundle is delivered as
                                several (docs/send.md); 0 = 50, negative = no limit */
    long deadline;           /* seconds for all the requests of one SR, retries and waits
                                included; 0 = S2F_DEFAULT_DEADLINE, negative = none */
    int diagnostic_report;   /* 1: each SR's Bundle also carries its DiagnosticReport
                                (issue 15, as s2f_convert_options.diagnostic_report; after
                                0.1.0: read only with struct_size set) */
} s2f_client_options;

static inline void s2f_client_options_init(s2f_client_options *opt)
{
    static const s2f_client_options zero;
    *opt = zero;
    opt->struct_size = sizeof *opt;
}

#define S2F_DEFAULT_DEADLINE 300L

/* A connection to one FHIR server. Not shareable between threads: one client per thread
 * (several clients may run at once). */
typedef struct s2f_client s2f_client;

/* base: the server's base URL, http(s)://host[:port]/path. NULL and err on refusal. */
s2f_client *s2f_client_new(const char *base, const s2f_client_options *opt, s2f_error *err);
void s2f_client_free(s2f_client *c);

/* The FHIR version the client sends: the option, or what the server's CapabilityStatement
 * says (asked once). */
s2f_code s2f_client_version(s2f_client *c, s2f_fhir_version *version, s2f_error *err);

/* What one delivery did; owned by the caller (s2f_send_result_init before s2f_send),
 * released with s2f_send_result_free. */
typedef struct s2f_send_result {
    size_t struct_size;         /* sizeof(s2f_send_result) as the caller knows it */
    s2f_fhir_version version;   /* what was sent (0 when it failed before deciding) */
    long http_status;           /* the server's last answer, 0 when none came */
    unsigned attempts;          /* tries of the transaction, or of the request that failed */
    unsigned parts, parts_stored; /* transactions the Bundle took, and those the server took */
    double seconds;             /* wall time of the whole delivery */
    /* "Patient/123" when the lookup found exactly one, else NULL (logical reference) */
    char *patient_ref, *service_request_ref, *imaging_study_ref;
    char **created, **updated;  /* "Type/id" the server answered 201 / 200 for */
    size_t n_created, n_updated;
    /* what the conversion made (unmapped_items: not kept), NULL when it did not run;
     * owned by the result (a pointer, so that s2f_convert_result can grow too) */
    const s2f_convert_result *convert;
    long retry_after;           /* seconds the server's last answer asked to wait before
                                   trying again (its Retry-After header), -1 when it gave
                                   none (the gateway's workers honour it) */
} s2f_send_result;

static inline void s2f_send_result_init(s2f_send_result *res)
{
    static const s2f_send_result zero;
    *res = zero;
    res->struct_size = sizeof *res;
}

void s2f_send_result_free(s2f_send_result *res);

/*
 * Delivers one TID 1500 SR: looks up the Patient, ServiceRequest and ImagingStudy by
 * identifier (M4-M6), converts with literal references to what it found, and POSTs the
 * Bundle as one transaction of PUTs on deterministic ids (M24: sending again updates, never
 * duplicates); a Bundle larger than max_entries goes as several (docs/send.md). On failure
 * err holds one line, with the server's OperationOutcome text when it gave one. `res` is
 * filled in both cases (struct_size kept; free it either way).
 */
s2f_code s2f_send(s2f_client *c, const s2f_doc *doc, s2f_send_result *res, s2f_error *err);

/*
 * The audit record of one delivery: one JSON line ("\n"-terminated) appended to fd with a
 * single write, so that concurrent writers (threads, processes) never interleave
 * (docs/send.md). file: the input's name; rc/err: the outcome of s2f_send.
 */
s2f_code s2f_audit_append(int fd, const char *file, const s2f_doc *doc, const s2f_client *c,
                          const s2f_send_result *res, s2f_code rc, const s2f_error *err,
                          s2f_error *werr);

#ifdef __cplusplus
}
#endif
#endif
