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
    S2F_EINTERNAL = 9      /* a bug: please report it */
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
} s2f_convert_options;

/* What a conversion made (for the summary and the conversion report). */
typedef struct s2f_convert_result {
    size_t observations, imaging_selections, body_structures, devices, practitioners;
    size_t unmapped;         /* content items no rule consumed (M26) */
    size_t fallback_codes;   /* codes of unknown, undeclared coding schemes (M23) */
    size_t replaced_chars;   /* undecodable characters replaced by U+FFFD (M3) */
    const char *const *unmapped_items; /* M26: one line per item no rule consumed,
                                          "1.4.2 CONTAINS TEXT (code,scheme,\"meaning\")",
                                          owned by the document */
} s2f_convert_result;

/*
 * Converts a read SR into one FHIR Bundle written to `out` (M24). Fails with
 * S2F_ENOTTID1500 when the document is not a TID 1500 Measurement Report (M2). `result`
 * may be NULL. Output is deterministic: the same input gives the same bytes.
 */
s2f_code s2f_convert(const s2f_doc *doc, const s2f_convert_options *opt, FILE *out,
                     s2f_convert_result *result, s2f_error *err);

#ifdef __cplusplus
}
#endif
#endif
