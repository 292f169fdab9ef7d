/*
 * item.h - decoding one content item from its data set (see item.c). Used by the tree
 * builder in content.c, which owns the reader and assembles items into the tree.
 */
#ifndef S2F_ITEM_H
#define S2F_ITEM_H

#include "sr/content.h"
#include "sr/text.h"

/* A problem found in an item, reported as "content item POSITION: what" later. */
typedef struct s2f_item_note {
    const s2f_item *item;
    const char *what;          /* a static string */
} s2f_item_note;

typedef struct s2f_item_reader {
    s2f_arena *arena;          /* where items, codes and strings go */
    s2f_text text;             /* values as UTF-8 (text.cs may be set late, before use) */
    s2f_item_note *notes;      /* problems, at most S2F_WARN_MAX kept */
    size_t n_notes, cap_notes, dropped_notes;
    s2f_item **byref;          /* by-reference items, resolved once the tree is whole */
    size_t n_byref, cap_byref;
    struct s2f_code_memo *codes; /* item.c: the codes read so far, by their bytes */
} s2f_item_reader;

/* Fills `it` (not parent, children, index or depth) from its data set. The root has no
 * relationship. Returns 0, or -1 when memory ran out. */
int s2f_item_read(s2f_item_reader *r, s2f_item *it, const s2f_ds *ds, int is_root);

/* The work of the code memo's lookups so far (zero before the first code). */
s2f_hindex_work s2f_item_memo_work(const s2f_item_reader *r);

#endif
