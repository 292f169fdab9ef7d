/*
 * sr2fhir.h - public interface of libsr2fhir (reading, dump, conversion).
 *
 * libsr2fhir reads DICOM Structured Reports (Part 10 files, bare data sets, DICOM JSON)
 * and turns TID 1500 Measurement Reports into FHIR resources. This header and
 * sr2fhir_send.h (delivery to a FHIR server, libsr2fhir-send) are the whole public
 * surface; everything under src/ is private.
 *
 * Threading: the library has no global mutable state. Every call works on objects the
 * caller passes in, so different threads may convert different inputs at the same time.
 * Errors: functions return an s2f_code and fill a caller-owned s2f_error with a one-line
 * message ("what is wrong, where"); the library never prints and never exits.
 * Memory: each document owns one arena with a byte budget (s2f_options.max_memory);
 * s2f_doc_free releases everything in one call.
 *
 * Growing without breaking (docs/abi.md, issue 16): every option and result struct the
 * caller allocates begins with `size_t struct_size`, which its init function
 * (s2f_options_init, ...; static inline, so sizeof is the caller's) sets to the size the
 * caller was compiled with. The library reads (options) or writes (results) only that
 * many bytes and takes the members the caller does not know as zero, i.e. their
 * defaults; new members are only ever appended. struct_size == 0 (a struct zeroed by
 * hand, as before 0.1.0's init functions) means the 0.1.0 layout: members added later
 * are then ignored, so set struct_size (call the init function) to use them. A program
 * built against an older header keeps working with a newer library of the same soname.
 */
#ifndef SR2FHIR_H
#define SR2FHIR_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version this header belongs to: 0xMMmmpp (major, minor, patch), as curl's
 * LIBCURL_VERSION_NUM; compare with s2f_version_num() for the library met at run time. */
#define SR2FHIR_VERSION_MAJOR 0
#define SR2FHIR_VERSION_MINOR 2
#define SR2FHIR_VERSION_PATCH 0
#define SR2FHIR_VERSION "0.2.0"
#define SR2FHIR_VERSION_NUM 0x000200

/* The library's own version at run time, e.g. "0.2.0" and 0x000200. 0.2.0 appended
 * diagnostic_report to s2f_convert_options and s2f_client_options and diagnostic_reports
 * to s2f_convert_result, and added sr2fhir_cast.h. */
const char *s2f_version(void);
unsigned long s2f_version_num(void);

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

/* Reading options: s2f_options_init, then set what differs from the defaults. */
typedef struct s2f_options {
    size_t struct_size;  /* sizeof(s2f_options) as the caller knows it (see the top) */
    size_t max_memory;   /* arena budget per document; 0 = 64 x input size + 64 MiB */
    unsigned max_depth;  /* maximum sequence nesting; 0 = 128 */
    int strict;          /* 1: refuse the lenient cases instead of warning (M1) */
} s2f_options;

/* Zeroes *opt (every member its default) and sets struct_size. */
static inline void s2f_options_init(s2f_options *opt)
{
    static const s2f_options zero;
    *opt = zero;
    opt->struct_size = sizeof *opt;
}

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

/* Bundle.type of the conversion (M24). */
typedef enum s2f_bundle_type {
    S2F_BUNDLE_TRANSACTION = 0,  /* PUTs on deterministic ids: what a server takes */
    S2F_BUNDLE_COLLECTION = 1
} s2f_bundle_type;

/* The FHIR version written (M25), by s2f_convert and by delivery (sr2fhir_send.h). */
typedef enum s2f_fhir_version {
    S2F_FHIR_AUTO = 0,  /* convert: R5; delivery: ask the server (GET [base]/metadata,
                           once per client) */
    S2F_FHIR_R4 = 4,
    S2F_FHIR_R5 = 5
} s2f_fhir_version;

/* Conversion options: s2f_convert_options_init, then set what differs. */
typedef struct s2f_convert_options {
    size_t struct_size;      /* sizeof(s2f_convert_options) as the caller knows it */
    s2f_bundle_type bundle_type;      /* default transaction (M24) */
    s2f_fhir_version fhir_version;    /* R4 form (M25), or R5 (the default, AUTO) */
    const char *timezone;    /* "+HHMM"/"-HHMM" for times the SR gives without a zone (M9);
                                NULL: the SR's Timezone Offset From UTC, else +0000 */
    int pretty;              /* 1: indented JSON */
    /* Literal references to resources that exist on the destination server, "Type/id"
     * (what `sr2fhir send` found by identifier, M4-M6). NULL: the logical reference by
     * identifier alone. A literal reference keeps its type and identifier. */
    const char *patient_ref, *service_request_ref, *imaging_study_ref;
    int trace_consumed;      /* 1: fill s2f_convert_result.consumed_items (tests, M26) */
    int diagnostic_report;   /* 1: the Bundle also carries a DiagnosticReport for the SR
                                (issue 15, docs/mapping.md "DiagnosticReport"; after
                                0.1.0: read only with struct_size set) */
} s2f_convert_options;

static inline void s2f_convert_options_init(s2f_convert_options *opt)
{
    static const s2f_convert_options zero;
    *opt = zero;
    opt->struct_size = sizeof *opt;
}

/* What a conversion made (for the summary and the conversion report). The library reads
 * its struct_size: call s2f_convert_result_init before passing one. */
typedef struct s2f_convert_result {
    size_t struct_size;      /* sizeof(s2f_convert_result) as the caller knows it */
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
    size_t diagnostic_reports; /* 1 with s2f_convert_options.diagnostic_report, else 0
                                  (after 0.1.0: written only with struct_size set) */
} s2f_convert_result;

static inline void s2f_convert_result_init(s2f_convert_result *res)
{
    static const s2f_convert_result zero;
    *res = zero;
    res->struct_size = sizeof *res;
}

/* Where s2f_convert_write puts the output: called with the next len > 0 bytes; returns 0,
 * or non-zero to stop the conversion (which then fails with S2F_EIO). */
typedef int (*s2f_write_fn)(void *ctx, const void *data, size_t len);

/*
 * Converts a read SR into one FHIR Bundle (M24), handed to write_fn(ctx, ...) in pieces of up
 * to 64 KiB. Fails with S2F_ENOTTID1500 when the document is not a TID 1500 Measurement
 * Report (M2). opt NULL: the defaults. `result` may be NULL; it is filled once the report
 * is read, also when writing fails (struct_size kept). Output is deterministic: the same
 * input gives the same bytes. A failed conversion may have written part of a Bundle.
 */
s2f_code s2f_convert_write(const s2f_doc *doc, const s2f_convert_options *opt,
                           s2f_write_fn write_fn, void *ctx, s2f_convert_result *result,
                           s2f_error *err);

/* s2f_convert_write to a stdio stream. */
s2f_code s2f_convert(const s2f_doc *doc, const s2f_convert_options *opt, FILE *out,
                     s2f_convert_result *result, s2f_error *err);

/*
 * Writes text[0..len) as one JSON string, quotes included, exactly as the library's own
 * JSON does (the Bundle, the conversion report of `sr2fhir convert --report`): '"', '\\',
 * U+0000..U+001F, U+2028 and U+2029 escaped, every ill-formed UTF-8 sequence replaced by
 * U+FFFD (M3). For JSON made around the library's results (file names, unmapped_items,
 * warnings). Returns S2F_OK, S2F_EIO when write_fn failed, S2F_ENOMEM.
 */
s2f_code s2f_json_quote(const char *text, size_t len, s2f_write_fn write_fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
