/*
 * writer.h - streaming JSON writer for the FHIR stage: writes a document token by token
 * into an s2f_sink, so a Bundle of hundreds of thousands of resources needs no DOM and
 * no allocation (the nesting stack is a fixed array in the struct).
 *
 * Output is deterministic byte for byte: compact (no whitespace at all), or pretty
 * (2-space indentation, one member or element per line, "key": value, empty containers
 * as {} and [], a final newline written by s2f_json_finish).
 *
 * Strings are UTF-8 and are validated (MAPPING M3): every ill-formed sequence is
 * replaced by U+FFFD (maximal subparts, as Unicode recommends) and counted, so the output
 * is always valid UTF-8. '"', '\\', U+0000..U+001F, U+2028 and U+2029 are escaped.
 *
 * Numbers: s2f_json_decimal keeps a DICOM Decimal String's digits and precision exactly
 * (MAPPING M20); s2f_json_double writes the shortest of %.15g/%.16g/%.17g that reads
 * back as the same double.
 *
 * Errors are sticky: the first misuse (a value where a key is expected, an unbalanced
 * end, nesting deeper than S2F_JSON_MAX_DEPTH, an invalid decimal, NaN or infinity) is
 * recorded with a message, nothing invalid is written, and every later call is a no-op
 * that returns -1. Write failures of the sink itself are reported by s2f_sink_finish.
 *
 * Ownership: the caller owns the writer (usually on the stack) and the sink.
 */
#ifndef S2F_JSON_WRITER_H
#define S2F_JSON_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "util/sink.h"

#define S2F_JSON_MAX_DEPTH 64

typedef struct s2f_json {
    s2f_sink *out;
    int pretty;
    int depth;                                /* open containers */
    unsigned char stack[S2F_JSON_MAX_DEPTH];  /* per open container: kind and "has items" */
    int after_key;                            /* a key was written, its value is due */
    int done;                                 /* the top-level value is complete */
    int error;                                /* 0 or an s2f_code (sticky) */
    size_t replaced;                          /* ill-formed UTF-8 sequences replaced */
    char message[160];
} s2f_json;

void s2f_json_init(s2f_json *j, s2f_sink *out, int pretty);

/* Structure. All return 0, or -1 once the writer is in error. */
int s2f_json_begin_object(s2f_json *j);
int s2f_json_end_object(s2f_json *j);
int s2f_json_begin_array(s2f_json *j);
int s2f_json_end_array(s2f_json *j);
int s2f_json_key(s2f_json *j, const char *key);

/* Values: in an array, after a key, or as the single top-level value. */
int s2f_json_string(s2f_json *j, const char *utf8);
int s2f_json_string_n(s2f_json *j, const char *p, size_t n);
int s2f_json_int(s2f_json *j, int64_t v);
int s2f_json_uint(s2f_json *j, uint64_t v);
int s2f_json_bool(s2f_json *j, int v);
int s2f_json_null(s2f_json *j);
/* A DICOM Decimal String ("+1.5", ".5", "5.", "1e3", " 12 ", "007.50") written as the
 * same JSON number with every digit kept; anything else is an error (nothing written). */
int s2f_json_decimal(s2f_json *j, const char *text);
int s2f_json_decimal_n(s2f_json *j, const char *p, size_t n);
/* Shortest round-tripping text; NaN and infinities are an error (nothing written). */
int s2f_json_double(s2f_json *j, double v);

/* Key and value in one call. kv_string and kv_decimal write nothing (not even the key)
 * when value is NULL. */
int s2f_json_kv_string(s2f_json *j, const char *key, const char *value);
int s2f_json_kv_string_n(s2f_json *j, const char *key, const char *p, size_t n);
int s2f_json_kv_int(s2f_json *j, const char *key, int64_t v);
int s2f_json_kv_uint(s2f_json *j, const char *key, uint64_t v);
int s2f_json_kv_bool(s2f_json *j, const char *key, int v);
int s2f_json_kv_decimal(s2f_json *j, const char *key, const char *value);
int s2f_json_kv_double(s2f_json *j, const char *key, double v);
int s2f_json_kv_begin_object(s2f_json *j, const char *key);
int s2f_json_kv_begin_array(s2f_json *j, const char *key);

/* Ends the document: an error unless exactly one complete top-level value was written.
 * Pretty mode appends a newline. Does not flush the sink (s2f_sink_finish does). */
int s2f_json_finish(s2f_json *j);

/* Writes members already serialized in compact form ("a":1,"b":[2]) into the object being
 * written, as if written one by one: for fragments that repeat verbatim (the FHIR stage's
 * references every Observation shares). Compact mode only; the caller vouches that the
 * text is valid members. Empty text writes nothing. */
int s2f_json_members_raw(s2f_json *j, const char *members, size_t n);

/* Opens an object whose first members are already serialized in compact form, as
 * s2f_json_kv_begin_object (key NULL: s2f_json_begin_object) and s2f_json_members_raw
 * would, in one copy. Compact mode only; the caller vouches for the members. */
int s2f_json_begin_object_raw(s2f_json *j, const char *key, const char *members, size_t n);

/* Opens `levels` nested objects at once where a value may go: text holds their opening
 * braces and first members, compact ("{\"a\":1,\"b\":{\"c\":2" opens 2), each object with at
 * least one member. s2f_json_close_raw ends them the same way: text holds the closing
 * braces and any members written between them ("},\"d\":3}" closes 2). For text that
 * repeats but for a few bytes (the FHIR stage's Bundle entries). Compact mode only; the
 * caller vouches for the text. */
int s2f_json_open_raw(s2f_json *j, const char *text, size_t n, int levels);
int s2f_json_close_raw(s2f_json *j, const char *text, size_t n, int levels);

/* Writes a value already serialized in compact form where a value may go: for values
 * that repeat verbatim (the FHIR stage's CodeableConcepts). Compact mode only; the caller
 * vouches that the text is one valid JSON value. */
int s2f_json_raw_value(s2f_json *j, const char *text, size_t n);

/* "key": followed by a value already serialized in compact form (s2f_json_raw_value),
 * written in one copy when it can be. */
int s2f_json_kv_raw(s2f_json *j, const char *key, const char *text, size_t n);

/* A key as the program spells it: its name and its compact form ("name":), made at
 * compile time by S2F_JSON_LIT from a string literal of plain characters (printable ASCII
 * other than '"' and '\\'), so that it is neither measured nor checked when written. */
typedef struct s2f_json_lit {
    const char *name;
    const char *quoted;
    size_t quoted_len;
} s2f_json_lit;

#define S2F_JSON_LIT(lit) \
    ((s2f_json_lit){(lit), "\"" lit "\":", sizeof("\"" lit "\":") - 1})

/* s2f_json_kv_raw, s2f_json_kv_begin_object, s2f_json_kv_begin_array and
 * s2f_json_kv_decimal with a literal key. */
int s2f_json_lit_raw(s2f_json *j, s2f_json_lit key, const char *text, size_t n);
int s2f_json_lit_begin_object(s2f_json *j, s2f_json_lit key);
int s2f_json_lit_begin_array(s2f_json *j, s2f_json_lit key);
int s2f_json_lit_decimal(s2f_json *j, s2f_json_lit key, const char *value);

/* 0 while all is well, else the first error's s2f_code: S2F_EINTERNAL for misuse,
 * S2F_ELIMIT for nesting too deep, S2F_EFORMAT for an invalid decimal, NaN or infinity. */
int s2f_json_error(const s2f_json *j);
/* The first error's one-line message ("" while all is well). */
const char *s2f_json_message(const s2f_json *j);
/* Ill-formed UTF-8 sequences replaced by U+FFFD so far. */
size_t s2f_json_replaced(const s2f_json *j);

/* True when p[0..n) is a Decimal String that is already the JSON number s2f_json_decimal
 * writes for it (no spaces, '+', leading zeros or bare '.'), so it can be copied as is. */
int s2f_json_decimal_is_number(const char *p, size_t n);

/* True when p[0..n) is a DICOM Decimal String s2f_json_decimal accepts: optional
 * surrounding spaces, optional sign, digits with an optional '.', at least one digit,
 * optional exponent e/E with optional sign and at least one digit. */
int s2f_json_decimal_valid(const char *p, size_t n);

/* Runs fn(j, ctx) into a new compact document in a malloc'ed buffer (*out, *len; the caller
 * frees it), a final '\n' added when newline is 1 (a JSON Lines record). 0 on success; -1
 * (nothing to free) when memory ran out or fn misused the writer. For small documents:
 * answers and audit lines of the gateway. */
int s2f_json_to_buffer(void (*fn)(s2f_json *j, const void *ctx), const void *ctx, int newline,
                       char **out, size_t *len);

#endif
