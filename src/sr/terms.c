/*
 * terms.c - the defined terms of Value Type (s2f_vt) and Relationship Type (s2f_rel): the
 * item reader turns bytes into them, the dump and the conversion report print their
 * names. Apart from content.c (the tree) so that the tree and the item reader do not
 * call each other in a circle (issue 14, scripts/check-calls.sh).
 */
#include "sr/content.h"

#include <string.h>

/* A name and its length, for the tables below. */
#define TERM(s) s, sizeof s - 1

static const struct { const char *name; size_t len; s2f_vt vt; } vt_names[] = {
    {TERM("CONTAINER"), S2F_VT_CONTAINER}, {TERM("TEXT"), S2F_VT_TEXT},
    {TERM("CODE"), S2F_VT_CODE}, {TERM("NUM"), S2F_VT_NUM},
    {TERM("DATETIME"), S2F_VT_DATETIME}, {TERM("DATE"), S2F_VT_DATE},
    {TERM("TIME"), S2F_VT_TIME}, {TERM("UIDREF"), S2F_VT_UIDREF},
    {TERM("PNAME"), S2F_VT_PNAME}, {TERM("COMPOSITE"), S2F_VT_COMPOSITE},
    {TERM("IMAGE"), S2F_VT_IMAGE}, {TERM("WAVEFORM"), S2F_VT_WAVEFORM},
    {TERM("SCOORD"), S2F_VT_SCOORD}, {TERM("SCOORD3D"), S2F_VT_SCOORD3D},
    {TERM("TCOORD"), S2F_VT_TCOORD}, {TERM("TABLE"), S2F_VT_TABLE},
};

static const struct { const char *name; size_t len; s2f_rel rel; } rel_names[] = {
    {TERM("CONTAINS"), S2F_REL_CONTAINS},
    {TERM("HAS OBS CONTEXT"), S2F_REL_HAS_OBS_CONTEXT},
    {TERM("HAS ACQ CONTEXT"), S2F_REL_HAS_ACQ_CONTEXT},
    {TERM("HAS CONCEPT MOD"), S2F_REL_HAS_CONCEPT_MOD},
    {TERM("HAS PROPERTIES"), S2F_REL_HAS_PROPERTIES},
    {TERM("INFERRED FROM"), S2F_REL_INFERRED_FROM},
    {TERM("SELECTED FROM"), S2F_REL_SELECTED_FROM},
};

/* The tables list the terms in the order of their enums, so a name is one look-up. */
#define N_VT (sizeof vt_names / sizeof vt_names[0])
#define N_REL (sizeof rel_names / sizeof rel_names[0])

const char *s2f_vt_name(s2f_vt vt)
{
    if (vt >= 1 && (size_t)vt <= N_VT && vt_names[vt - 1].vt == vt)
        return vt_names[vt - 1].name;
    for (size_t i = 0; i < sizeof vt_names / sizeof vt_names[0]; i++)
        if (vt_names[i].vt == vt)
            return vt_names[i].name;
    return "UNKNOWN";
}

const char *s2f_rel_name(s2f_rel rel)
{
    if (rel >= 1 && (size_t)rel <= N_REL && rel_names[rel - 1].rel == rel)
        return rel_names[rel - 1].name;
    for (size_t i = 0; i < sizeof rel_names / sizeof rel_names[0]; i++)
        if (rel_names[i].rel == rel)
            return rel_names[i].name;
    return rel == S2F_REL_NONE ? "" : "UNKNOWN";
}

/* 1 when term[0..n) spells the len bytes of name exactly (term may hold any bytes). */
static int is_term(const char *name, size_t len, const uint8_t *term, size_t n)
{
    return len == n && memcmp(name, term, n) == 0;
}

s2f_vt s2f_vt_from(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < sizeof vt_names / sizeof vt_names[0]; i++)
        if (is_term(vt_names[i].name, vt_names[i].len, p, n))
            return vt_names[i].vt;
    return S2F_VT_UNKNOWN;
}

s2f_rel s2f_rel_from(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < sizeof rel_names / sizeof rel_names[0]; i++)
        if (is_term(rel_names[i].name, rel_names[i].len, p, n))
            return rel_names[i].rel;
    return S2F_REL_UNKNOWN;
}
