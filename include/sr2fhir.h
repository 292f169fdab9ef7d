/*
 * sr2fhir.h - public interface of libsr2fhir.
 *
 * libsr2fhir reads DICOM Structured Reports (Part 10 files, bare data sets, DICOM JSON)
 * and turns TID 1500 Measurement Reports into FHIR resources. This header is the whole
 * public surface; everything under src/ is private.
 *
 * Threading: the library has no global mutable state. Every call works on objects the
 * caller passes in, so different threads may convert different inputs at the same time.
 * Errors: functions return an s2f_code and fill a caller-owned s2f_error with a one-line
 * message ("what is wrong, where"); the library never prints and never exits.
 * Memory: each document owns one arena with a byte budget (s2f_options.max_memory);
 * s2f_doc_free releases everything in one call.
 */
#ifndef SR2FHIR_H
#define SR2FHIR_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SR2FHIR_VERSION "0.1.0"

/* Result codes. The command-line tool uses the same numbers as exit codes. */
typedef enum s2f_code {
    S2F_OK = 0,
    S2F_EUSAGE = 2,        /* bad arguments or options */
    S2F_EIO = 3,           /* input cannot be opened or read, output cannot be written */
    S2F_EFORMAT = 4,       /* malformed DICOM or DICOM JSON (truncated, bad lengths, bad JSON) */
    S2F_EUNSUPPORTED = 5,  /* well-formed but not readable here: transfer syntax, not an SR */
    S2F_ENOTTID1500 = 6,   /* an SR, but not a TID 1500 Measurement Report (M2) */
    S2F_ELIMIT = 7,        /* a safety limit was hit: memory budget, nesting depth, inflation */
    S2F_ENOMEM = 8,        /* the system refused memory */
    S2F_EINTERNAL = 9,     /* a bug: please report it */
    S2F_EREJECTED = 10,    /* the FHIR server refused: 4xx (not 429), a failed transaction,
                              an answer that is not FHIR */
    S2F_EUNREACHABLE = 11, /* the FHIR server could not be reached or kept failing:
                              connection, TLS, timeout, 429/5xx after every retry */
    S2F_ELOOKUP = 12       /* a lookup on the server failed: several matches, or none when
                              existing resources are required */
} s2f_code;

#define S2F_ERROR_MAX 512

/* A caller-owned error: code plus one line of text without the program or file name. */
typedef struct s2f_error {
    s2f_code code;
    char message[S2F_ERROR_MAX];
} s2f_error;

/* A short fixed name for a code ("malformed input", ...). Never NULL. */
const char *s2f_code_name(s2f_code code);

/* Reading options. Zero-initialised means the documented defaults. */
typedef struct s2f_options {
    size_t max_memory;   /* arena budget per document; 0 = 64 x input size + 64 MiB */
    unsigned max_depth;  /* maximum sequence nesting; 0 = 128 */
    int strict;          /* 1: refuse the lenient cases instead of warning (M1) */
} s2f_options;

/* A warning collected while reading (lenient input, undecodable bytes, ...). */
typedef struct s2f_warning {
    const char *message;
} s2f_warning;

/* A read SR document: data set, header summary and content tree, all in one arena. */
typedef struct s2f_doc s2f_doc;

/*
 * Read an SR from memory. The format (Part 10, bare data set, DICOM JSON) is detected.
 * The buffer is not copied: it must stay valid and unchanged until s2f_doc_free.
 * Returns NULL and fills err on failure.
 */
s2f_doc *s2f_doc_read(const void *data, size_t len, const s2f_options *opt, s2f_error *err);

/* Read an SR from a file (the file is loaded into the document's arena). "-" is stdin. */
s2f_doc *s2f_doc_read_file(const char *path, const s2f_options *opt, s2f_error *err);

void s2f_doc_free(s2f_doc *doc);

/* Warnings gathered while reading; *count receives their number. */
const s2f_warning *s2f_doc_warnings(const s2f_doc *doc, size_t *count);

/* Number of content items in the SR tree. */
size_t s2f_doc_item_count(const s2f_doc *doc);

/*
 * Write the human-readable dump of `sr2fhir dump`: a header summary, a blank line, then
 * one line per content item ("1.4.2  contains NUM (...) = ..."). See docs/dump-format.md.
 */
s2f_code s2f_dump(const s2f_doc *doc, FILE *out, s2f_error *err);

/* ---- conversion to FHIR (MAPPING M2, M4-M26) ------------------------------------------ */

typedef struct s2f_convert_options {
    int collection;          /* 1: Bundle.type "collection"; 0: "transaction" (M24) */
    int r4;                  /* 1: FHIR R4 form (M25); 0: R5 */
    const char *timezone;    /* "+HHMM"/"-HHMM" for times the SR gives without a zone (M9);
                                NULL: the SR's Timezone Offset From UTC, else +0000 */
    int pretty;              /* 1: indented JSON */
    /* Literal references to resources that exist on the destination server, "Type/id"
     * (what `sr2fhir send` found by identifier, M4-M6). NULL: the logical reference by
     * identifier alone. A literal reference keeps its type and identifier. */
    const char *patient_ref, *service_request_ref, *imaging_study_ref;
    int trace_consumed;      /* 1: fill s2f_convert_result.consumed_items (tests, M26) */
} s2f_convert_options;

/* What a conversion made (for the summary and the conversion report). */
typedef struct s2f_convert_result {
    size_t observations, imaging_selections, body_structures, devices, practitioners;
    size_t unmapped;         /* content items no rule consumed (M26) */
    size_t fallback_codes;   /* codes of unknown, undeclared coding schemes (M23) */
    size_t replaced_chars;   /* undecodable characters replaced by U+FFFD (M3) */
    const char *const *unmapped_items; /* M26: one line per item no rule consumed,
                                          "1.4.2 CONTAINS TEXT (code,scheme,\"meaning\")",
                                          owned by the document; an item a rule maps
                                          only in part ends ": why" (issue 10 #5) */
    const char *const *consumed_items; /* with trace_consumed: one line per item a rule
                                          maps, "1.4.2 M20 measurement", owned by the
                                          document; with unmapped_items, every content item
                                          exactly once (M26) */
} s2f_convert_result;

/*
 * Converts a read SR into one FHIR Bundle written to `out` (M24). Fails with
 * S2F_ENOTTID1500 when the document is not a TID 1500 Measurement Report (M2). `result`
 * may be NULL. Output is deterministic: the same input gives the same bytes.
 */
s2f_code s2f_convert(const s2f_doc *doc, const s2f_convert_options *opt, FILE *out,
                     s2f_convert_result *result, s2f_error *err);

/* ---- delivery to a FHIR server (`sr2fhir send`, docs/send.md) ----------------------- */

typedef enum s2f_fhir_version {
    S2F_FHIR_AUTO = 0,       /* ask the server (GET [base]/metadata, once per client) */
    S2F_FHIR_R4 = 4,
    S2F_FHIR_R5 = 5
} s2f_fhir_version;

/* Zero-initialised means the documented defaults. Strings are copied by s2f_client_new. */
typedef struct s2f_client_options {
    s2f_fhir_version version;
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
} s2f_client_options;

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

/* What one delivery did; owned by the caller, released with s2f_send_result_free. */
typedef struct s2f_send_result {
    s2f_fhir_version version;   /* what was sent (0 when it failed before deciding) */
    long http_status;           /* the server's last answer, 0 when none came */
    unsigned attempts;          /* tries of the transaction, or of the request that failed */
    unsigned parts, parts_stored; /* transactions the Bundle took, and those the server took */
    double seconds;             /* wall time of the whole delivery */
    /* "Patient/123" when the lookup found exactly one, else NULL (logical reference) */
    char *patient_ref, *service_request_ref, *imaging_study_ref;
    char **created, **updated;  /* "Type/id" the server answered 201 / 200 for */
    size_t n_created, n_updated;
    s2f_convert_result convert; /* what the conversion made (unmapped_items: not kept) */
    long retry_after;           /* seconds the server's last answer asked to wait before
                                   trying again (its Retry-After header), -1 when it gave
                                   none (the gateway's workers honour it) */
} s2f_send_result;

void s2f_send_result_free(s2f_send_result *res);

/*
 * Delivers one TID 1500 SR: looks up the Patient, ServiceRequest and ImagingStudy by
 * identifier (M4-M6), converts with literal references to what it found, and POSTs the
 * Bundle as one transaction of PUTs on deterministic ids (M24: sending again updates, never
 * duplicates); a Bundle larger than max_entries goes as several (docs/send.md). On failure err holds one line, with the server's OperationOutcome text when
 * it gave one. `res` is filled in both cases (free it either way).
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
