/*
 * text.h - reading attribute values of a data set as UTF-8 strings.
 *
 * The one place where the SR stages turn element bytes into C strings: values are trimmed
 * of padding, decoded by the data set's Specific Character Set (M3) when their VR can hold
 * non-ASCII text, and copied NUL-terminated into the arena. Replacements of undecodable
 * bytes are counted so the caller can report them once.
 */
#ifndef S2F_TEXT_H
#define S2F_TEXT_H

#include "dicom/dataset.h"
#include "dicom/charset.h"

typedef struct s2f_text {
    s2f_charset *cs;
    s2f_arena *arena;
    unsigned replaced;   /* U+FFFD substitutions so far */
    int oom;             /* an allocation failed */
} s2f_text;

/* The whole value of `tag` (all values, backslashes kept), trimmed and decoded.
 * NULL when the element is absent or empty. */
const char *s2f_text_value(s2f_text *t, const s2f_ds *ds, uint32_t tag);
/* Value number `index` (0-based) of a multi-valued element, or NULL. */
const char *s2f_text_value_at(s2f_text *t, const s2f_ds *ds, uint32_t tag, uint32_t index);
/* Same, from an element already found. */
const char *s2f_text_elem(s2f_text *t, const s2f_elem *e);

#endif
