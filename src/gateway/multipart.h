/*
 * multipart.h - a streaming reader of multipart/related bodies (RFC 2046, RFC 2387), the
 * envelope of a DICOMweb STOW-RS request (PS3.18 8.6.1.2). It knows nothing of DICOM or
 * HTTP: the receiver feeds it the body in pieces as they arrive and gets each part's
 * headers and bytes through callbacks, so a request is never held whole in memory.
 *
 * Every limit is explicit (part count, header size, part size); a body that breaks one, or
 * that is not a well-formed multipart body (no opening boundary, a part without its
 * closing delimiter, garbage header lines), is reported as S2F_EFORMAT (malformed) or
 * S2F_ELIMIT with a one-line message naming where. One reader per request; no global
 * state.
 */
#ifndef S2F_GATEWAY_MULTIPART_H
#define S2F_GATEWAY_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#include "sr2fhir.h"

/* RFC 2046 5.1.1 allows 70 characters; Orthanc's DICOMweb plugin (1.7) sends 73 (two UUIDs
 * joined by '-'), so longer ones are taken, up to this bound. */
#define S2F_MP_BOUNDARY_MAX 200

/* The media type of a Content-Type header value, lower-cased, without parameters, and its
 * boundary, type and transfer-syntax parameters (quoted or not, quotes and backslash
 * escapes removed; parameter names case-insensitive; others checked and ignored). Returns
 * S2F_EFORMAT when the value cannot be parsed (no type/subtype, a character outside a
 * token, an unterminated quote, a parameter without '=', a parameter given twice, a value
 * too long for its field, a boundary RFC 2046 refuses, control characters), S2F_OK
 * otherwise (absent parameters are ""). */
typedef struct s2f_media_type {
    char type[128];                          /* "multipart/related" */
    char boundary[S2F_MP_BOUNDARY_MAX + 1];  /* boundary="..." */
    char param_type[128];                    /* type="application/dicom", lower-cased */
    char transfer_syntax[65];                /* transfer-syntax=... when given */
} s2f_media_type;

s2f_code s2f_media_type_parse(const char *value, s2f_media_type *mt, s2f_error *err);

typedef struct s2f_mp_limits {
    size_t max_parts;        /* 0 = 10000 */
    size_t max_header_bytes; /* all header lines of one part; 0 = 16 KiB */
    uint64_t max_part_bytes; /* 0 = 256 MiB */
    size_t max_preamble_bytes; /* before the first delimiter, and transport padding after
                                  any delimiter; 0 = 16 KiB (a boundary that never appears is
                                  refused early, not after the whole body) */
} s2f_mp_limits;

/* Callbacks. Each returns 0 to go on, non-zero to stop the reader (s2f_mp_feed then
 * returns S2F_EUSAGE with "stopped by the caller"). `index` counts parts from 0.
 * part_begin: the part's headers are read; content_type is its Content-Type value ("" when
 * absent), content_location its Content-Location ("" when absent).
 * part_data: the next bytes of the part's body (several calls per part).
 * part_end: the part's body ended (its closing delimiter was seen). */
typedef struct s2f_mp_callbacks {
    int (*part_begin)(void *ctx, size_t index, const char *content_type,
                      const char *content_location);
    int (*part_data)(void *ctx, size_t index, const uint8_t *data, size_t len);
    int (*part_end)(void *ctx, size_t index);
    void *ctx;
} s2f_mp_callbacks;

typedef struct s2f_mp_reader s2f_mp_reader;

/* NULL when memory runs out. `limits` may be NULL (defaults). `boundary` is copied; one
 * that breaks RFC 2046 (1-S2F_MP_BOUNDARY_MAX characters of bchars, not ending in a space)
 * gives a reader whose first feed/finish fails with S2F_EFORMAT (s2f_media_type_parse
 * refuses it too). */
s2f_mp_reader *s2f_mp_new(const char *boundary, const s2f_mp_limits *limits,
                          const s2f_mp_callbacks *cb);
void s2f_mp_free(s2f_mp_reader *r);

/* Feeds the next `len` bytes of the body. After an error every later call returns it
 * again. */
s2f_code s2f_mp_feed(s2f_mp_reader *r, const uint8_t *data, size_t len, s2f_error *err);

/* The body ended: S2F_OK when the close delimiter ("--boundary--") was seen, else
 * S2F_EFORMAT ("truncated: ..."). */
s2f_code s2f_mp_finish(s2f_mp_reader *r, s2f_error *err);

/* Parts whose part_end was called so far. */
size_t s2f_mp_parts(const s2f_mp_reader *r);

/* Steps the reader has taken so far (each byte looked at, each fallback of the delimiter
 * match): tests check that it stays linear in the bytes fed, whatever the chunking. */
uint64_t s2f_mp_work(const s2f_mp_reader *r);

#endif
