/*
 * escape.h - text from outside (a FHIR server's ids, versions and OperationOutcomes) made
 * safe to put in a one-line message: control characters never reach a terminal or a log
 * raw (issue 9 defect 8: ANSI escapes, forged "sr2fhir:" lines).
 */
#ifndef S2F_ESCAPE_H
#define S2F_ESCAPE_H

#include <stddef.h>

/*
 * Copies s[0..n) into buf (cap >= 8 bytes, always NUL-terminated) with C0 controls and DEL
 * as \xNN, the C1 controls U+0080..U+009F (UTF-8 C2 80..C2 9F) as \u00NN and a backslash
 * as \\; other bytes are copied. Text that does not fit ends with "...". Returns buf.
 */
const char *s2f_escape_text(const char *s, size_t n, char *buf, size_t cap);

#endif
