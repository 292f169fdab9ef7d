/*
 * text.c - attribute values as trimmed UTF-8 strings (see text.h).
 */
#include "sr/text.h"

#include <string.h>

static s2f_text_kind kind_of(uint16_t vr)
{
    if (vr == S2F_VR('P', 'N'))
        return S2F_TEXT_PN;
    if (vr == S2F_VR('L', 'T') || vr == S2F_VR('S', 'T') || vr == S2F_VR('U', 'T'))
        return S2F_TEXT_LONG;
    return S2F_TEXT_MULTI;
}

static int is_long_text(uint16_t vr) { return kind_of(vr) == S2F_TEXT_LONG; }

static const char *decode(s2f_text *t, const s2f_elem *e, const uint8_t *p, size_t n)
{
    /* The decoder copies pure ASCII straight through; without one only ASCII is safe. */
    const char *s = t->cs ? s2f_charset_decode(t->cs, p, n, kind_of(e->vr), NULL, &t->replaced)
                          : s2f_arena_strndup(t->arena, (const char *)p, n);
    if (!s)
        t->oom = 1;
    return s;
}

const char *s2f_text_elem(s2f_text *t, const s2f_elem *e)
{
    if (!e || e->is_seq || e->len == 0)
        return NULL;
    if (!s2f_vr_is_string(e->vr) && e->vr != S2F_VR('U', 'N'))
        return NULL; /* binary VRs have no text form here */
    const uint8_t *p = e->val, *end = e->val + e->len;
    while (!is_long_text(e->vr) && p < end && *p == ' ')
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\0'))
        end--;
    if (end == p)
        return NULL;
    return decode(t, e, p, (size_t)(end - p));
}

const char *s2f_text_value(s2f_text *t, const s2f_ds *ds, uint32_t tag)
{
    return s2f_text_elem(t, s2f_ds_find(ds, tag));
}

const char *s2f_text_value_at(s2f_text *t, const s2f_ds *ds, uint32_t tag, uint32_t index)
{
    const s2f_elem *e = s2f_ds_find(ds, tag);
    const uint8_t *p;
    size_t n;
    if (!e || !s2f_elem_string_raw(e, index, &p, &n) || n == 0)
        return NULL;
    return decode(t, e, p, n);
}
