/*
 * error.h - filling an s2f_error and collecting warnings.
 *
 * s2f_fail() is the single way library code reports a failure: it formats the one-line
 * message into the caller's s2f_error and returns the code, so call sites read
 * `return s2f_fail(err, S2F_EFORMAT, "... at offset %zu", off);`.
 */
#ifndef S2F_ERROR_H
#define S2F_ERROR_H

#include "sr2fhir.h"
#include "util/arena.h"

s2f_code s2f_fail(s2f_error *err, s2f_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A growable list of warnings allocated in an arena. At most S2F_WARN_MAX are kept;
 * later ones are counted in `dropped` only, so a hostile file cannot flood memory. */
#define S2F_WARN_MAX 1000
typedef struct s2f_warnings {
    s2f_arena *arena;
    s2f_warning *list;
    size_t n, cap, dropped;
} s2f_warnings;

void s2f_warn(s2f_warnings *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
