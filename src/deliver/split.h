/*
 * split.h - cutting a transaction Bundle into several transactions of at most N entries,
 * for servers that cap transaction size (docs/send.md, "Large reports"). References
 * between entries become literal ("Type/id", M24 ids), and every part comes after the
 * parts holding what it references.
 */
#ifndef S2F_SPLIT_H
#define S2F_SPLIT_H

#include <stddef.h>

#include "sr2fhir_send.h"

typedef struct s2f_bundle_parts {
    char **text;     /* each a transaction Bundle (malloc'd JSON) */
    size_t *len;
    size_t *entries; /* entries of each (the transaction-response must have as many) */
    size_t n;
} s2f_bundle_parts;

/* Splits bundle (JSON text) into parts of at most max_entries (>= 1) entries. */
s2f_code s2f_split_bundle(const char *bundle, size_t len, size_t max_entries,
                          s2f_bundle_parts *parts, s2f_error *err);
void s2f_split_parts_free(s2f_bundle_parts *parts);

#endif
