/*
 * escape.h - the one escaping of outside text for a terminal (issue 9 defect 8): every
 * message sr2fhir prints (src/cli/message.c) and every dump field (src/sr/dump.c) goes
 * through it, and so do the delivery's messages with a FHIR server's ids, versions and
 * OperationOutcomes (src/deliver, s2f_escape_text), so a file name, a UID, a Relationship
 * Type or a server's answer can neither split a line, move the cursor, forge a "sr2fhir:"
 * line nor reorder text.
 *
 * Escaped: C0 controls and DEL as \xHH (inside quotes \n \r \t as such); a byte that is
 * not part of valid UTF-8 as \xHH; the C1 controls (U+0080..U+009F) and the invisible direction and line-breaking
 * characters (U+2028/2029, U+200E/200F, U+202A..U+202E, U+2066..U+2069) as \uXXXX. With
 * S2F_ESC_QUOTED (a quoted dump value) '"' and '\' become \" and \\ as well; with
 * S2F_ESC_BACKSLASH '\' alone does. Everything else, valid UTF-8 included, is copied.
 */
#ifndef S2F_ESCAPE_H
#define S2F_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

#include "util/sink.h"

#define S2F_ESC_QUOTED 1u
#define S2F_ESC_BACKSLASH 2u

/* 1 when p[0..n) is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF): the
 * test the escaping applies to each character, for a whole text (a websocket text message,
 * RFC 6455 8.1). */
int s2f_escape_utf8_valid(const unsigned char *p, size_t n);

/* Length of the prefix of p[0..n) that is copied as is. */
size_t s2f_escape_plain(const char *p, size_t n, unsigned flags);

/* The escape of the character at p (n > 0 bytes left, p[0] not plain): writes it to
 * out (at least 8 bytes, not terminated), returns its length; *used = bytes consumed. */
size_t s2f_escape_one(const char *p, size_t n, unsigned flags, char *out, size_t *used);

/* Writes p[0..n) escaped to a sink, to a FILE* (0, or -1 when a write failed), or into
 * buf (cap > 0 bytes, always terminated, cut before an escape that does not fit). */
void s2f_escape_to_sink(s2f_sink *s, const char *p, size_t n, unsigned flags);
int s2f_escape_to_file(FILE *f, const char *p, size_t n, unsigned flags);
char *s2f_escape_to_buf(const char *p, size_t n, unsigned flags, char *buf, size_t cap);

/* s[0..n) with S2F_ESC_BACKSLASH into buf (cap >= 8 bytes, always terminated); text that
 * does not fit ends with "..." (cut before a whole character or escape). Returns buf. */
const char *s2f_escape_text(const char *s, size_t n, char *buf, size_t cap);

#endif
