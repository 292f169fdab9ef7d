/*
 * document.h - the read SR document behind the public s2f_doc handle: input bytes, data
 * set, character set decoder, header and content tree, all owned by one arena.
 */
#ifndef S2F_DOCUMENT_H
#define S2F_DOCUMENT_H

#include "sr2fhir.h"
#include "sr/content.h"
#include "sr/header.h"

struct s2f_doc {
    s2f_arena *arena;
    uint8_t *input;            /* malloc'd copy when read from a pipe, else NULL (a
                                * regular file is read into the arena) */
    const uint8_t *data;       /* the bytes that were read */
    size_t len;
    const char *transfer_syntax; /* UID, or "DICOM-JSON" */
    s2f_ds *ds;
    s2f_charset *cs;
    s2f_header header;
    s2f_tree tree;
    s2f_warnings warnings;
};

/* Hard ceiling on any input: larger files are refused before they are read (S2F_ELIMIT). */
#define S2F_MAX_INPUT ((size_t)1 << 30)

#endif
