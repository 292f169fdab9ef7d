/*
 * content.c - builds the SR content tree from a data set (see content.h).
 *
 * One pass over the Content Sequence, recursively: each item is decoded by value type
 * (PS3.3 C.17.3 and Table C.18-*), problems become warnings naming the item's position,
 * then by-reference relationships are resolved against the finished tree. Recursion depth
 * is bounded by the reader's nesting limit (two data set levels per tree level) and
 * checked again here.
 */
#include "content.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tags.h"
#include "text.h"

typedef struct builder {
    s2f_arena *a;
    s2f_warnings *w;
    s2f_text text;
    unsigned max_depth;
    size_t n_items;
    uint32_t deepest;
    s2f_item **byref;        /* by-reference items, resolved at the end */
    size_t n_byref, cap_byref;
    s2f_error *err;
    s2f_code code;           /* first fatal failure */
} builder;

static const struct { const char *name; s2f_vt vt; } vt_names[] = {
    {"CONTAINER", S2F_VT_CONTAINER}, {"TEXT", S2F_VT_TEXT}, {"CODE", S2F_VT_CODE},
    {"NUM", S2F_VT_NUM}, {"DATETIME", S2F_VT_DATETIME}, {"DATE", S2F_VT_DATE},
    {"TIME", S2F_VT_TIME}, {"UIDREF", S2F_VT_UIDREF}, {"PNAME", S2F_VT_PNAME},
    {"COMPOSITE", S2F_VT_COMPOSITE}, {"IMAGE", S2F_VT_IMAGE}, {"WAVEFORM", S2F_VT_WAVEFORM},
    {"SCOORD", S2F_VT_SCOORD}, {"SCOORD3D", S2F_VT_SCOORD3D}, {"TCOORD", S2F_VT_TCOORD},
    {"TABLE", S2F_VT_TABLE},
};

static const struct { const char *name; s2f_rel rel; } rel_names[] = {
    {"CONTAINS", S2F_REL_CONTAINS}, {"HAS OBS CONTEXT", S2F_REL_HAS_OBS_CONTEXT},
    {"HAS ACQ CONTEXT", S2F_REL_HAS_ACQ_CONTEXT}, {"HAS CONCEPT MOD", S2F_REL_HAS_CONCEPT_MOD},
    {"HAS PROPERTIES", S2F_REL_HAS_PROPERTIES}, {"INFERRED FROM", S2F_REL_INFERRED_FROM},
    {"SELECTED FROM", S2F_REL_SELECTED_FROM},
};

const char *s2f_vt_name(s2f_vt vt)
{
    for (size_t i = 0; i < sizeof vt_names / sizeof vt_names[0]; i++)
        if (vt_names[i].vt == vt)
            return vt_names[i].name;
    return "UNKNOWN";
}

const char *s2f_rel_name(s2f_rel rel)
{
    for (size_t i = 0; i < sizeof rel_names / sizeof rel_names[0]; i++)
        if (rel_names[i].rel == rel)
            return rel_names[i].name;
    return rel == S2F_REL_NONE ? "" : "UNKNOWN";
}

/* The trimmed raw bytes of a string element, or 0 when absent or empty. */
static int raw_value(const s2f_ds *ds, uint32_t tag, const uint8_t **p, size_t *n)
{
    return s2f_elem_string_raw(s2f_ds_find(ds, tag), 0, p, n) && *n > 0;
}

/* Value Type by its defined term; the name is static, so a known term costs no copy. */
static s2f_vt vt_of(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < sizeof vt_names / sizeof vt_names[0]; i++)
        if (strlen(vt_names[i].name) == n && memcmp(vt_names[i].name, p, n) == 0)
            return vt_names[i].vt;
    return S2F_VT_UNKNOWN;
}

static s2f_rel rel_of(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < sizeof rel_names / sizeof rel_names[0]; i++)
        if (strlen(rel_names[i].name) == n && memcmp(rel_names[i].name, p, n) == 0)
            return rel_names[i].rel;
    return S2F_REL_UNKNOWN;
}

void s2f_item_position(const s2f_item *it, char *buf, size_t size)
{
    char tmp[4096];
    size_t at = sizeof tmp - 1;
    tmp[at] = '\0';
    for (const s2f_item *p = it; p; p = p->parent) {
        char num[12];
        size_t n = (size_t)snprintf(num, sizeof num, "%u", p->index);
        if (n + 1 + 3 > at) { /* deeper than the buffer: keep the innermost part */
            memcpy(tmp + (at -= 3), "...", 3);
            break;
        }
        memcpy(tmp + (at -= n), num, n);
        if (p->parent)
            tmp[--at] = '.';
    }
    snprintf(buf, size, "%s", tmp + at);
}

static void warn_at(builder *b, const s2f_item *it, const char *what)
{
    char pos[256];
    s2f_item_position(it, pos, sizeof pos);
    s2f_warn(b->w, "content item %s: %s", pos, what);
}

/* Reads the Code Sequence Macro from one item (ds may be NULL), in one pass over its few
 * elements. Every string of *c is set ("" when absent); returns 0 when the item has
 * neither a code value nor a meaning. */
static int read_code_into(builder *b, const s2f_ds *ds, s2f_codeval *c)
{
    const s2f_elem *value = NULL, *long_value = NULL, *urn = NULL, *scheme = NULL,
                   *version = NULL, *meaning = NULL;
    for (uint32_t i = 0; ds && i < ds->n; i++) {
        const s2f_elem *e = &ds->elems[i];
        switch (e->tag) {
        case T_CodeValue: value = e; break;
        case T_LongCodeValue: long_value = e; break;
        case T_URNCodeValue: urn = e; break;
        case T_CodingSchemeDesignator: scheme = e; break;
        case T_CodingSchemeVersion: version = e; break;
        case T_CodeMeaning: meaning = e; break;
        default: break;
        }
    }
    memset(c, 0, sizeof *c);
    c->value = s2f_text_elem(&b->text, value);
    if (!c->value && (c->value = s2f_text_elem(&b->text, long_value)))
        c->value_kind = 1;
    if (!c->value && (c->value = s2f_text_elem(&b->text, urn)))
        c->value_kind = 2;
    c->scheme = s2f_text_elem(&b->text, scheme);
    c->version = s2f_text_elem(&b->text, version);
    c->meaning = s2f_text_elem(&b->text, meaning);
    if (!c->scheme)
        c->scheme = "";
    if (!c->meaning)
        c->meaning = "";
    if (!c->value)
        c->value = "";
    return value || long_value || urn || meaning;
}

static const s2f_codeval *read_code_seq(builder *b, const s2f_ds *ds, uint32_t tag)
{
    const s2f_ds *item = s2f_ds_item(ds, tag, 0);
    if (!item)
        return NULL;
    s2f_codeval *c = s2f_arena_alloc(b->a, sizeof *c);
    if (!c) {
        b->text.oom = 1;
        return NULL;
    }
    if (!read_code_into(b, item, c))
        return NULL;
    return c;
}

static void read_num(builder *b, s2f_item *it, const s2f_ds *ds)
{
    const s2f_ds *mv = s2f_ds_item(ds, T_MeasuredValueSequence, 0);
    it->v.num.qualifier = read_code_seq(b, ds, T_NumericValueQualifierCodeSequence);
    if (!mv) {
        if (!it->v.num.qualifier)
            warn_at(b, it, "NUM without Measured Value Sequence item or Numeric Value Qualifier");
        return;
    }
    it->v.num.has_value = 1;
    it->v.num.text = s2f_text_value(&b->text, mv, T_NumericValue);
    if (it->v.num.text) {
        char *end;
        it->v.num.value = strtod(it->v.num.text, &end);
        if (*end)
            warn_at(b, it, "Numeric Value is not a decimal string");
    } else {
        warn_at(b, it, "Measured Value Sequence item without Numeric Value");
    }
    it->v.num.has_float = s2f_elem_f64(s2f_ds_find(mv, T_FloatingPointValue), 0, &it->v.num.fp);
    int32_t num;
    uint32_t den;
    if (s2f_elem_i32(s2f_ds_find(mv, T_RationalNumeratorValue), 0, &num) &&
        s2f_elem_u32(s2f_ds_find(mv, T_RationalDenominatorValue), 0, &den))
        it->v.num.rational = s2f_arena_printf(b->a, "%d/%u", num, den);
    it->v.num.units = read_code_seq(b, mv, T_MeasurementUnitsCodeSequence);
    if (!it->v.num.units)
        warn_at(b, it, "NUM without Measurement Units Code Sequence");
}

/* Copies all values of an IS element into an int array. */
static uint32_t read_is_list(builder *b, const s2f_ds *ds, uint32_t tag, int32_t **out)
{
    const s2f_elem *e = s2f_ds_find(ds, tag);
    uint32_t n = s2f_elem_string_count(e);
    *out = NULL;
    if (!n)
        return 0;
    int32_t *v = s2f_arena_alloc(b->a, n * sizeof *v);
    if (!v)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p;
        size_t len;
        char tmp[32] = "";
        if (s2f_elem_string_raw(e, i, &p, &len) && len < sizeof tmp)
            memcpy(tmp, p, len), tmp[len] = 0;
        v[i] = (int32_t)strtol(tmp, NULL, 10);
    }
    *out = v;
    return n;
}

static uint32_t read_u16_list(builder *b, const s2f_ds *ds, uint32_t tag, uint16_t **out)
{
    const s2f_elem *e = s2f_ds_find(ds, tag);
    uint32_t n = s2f_elem_binary_count(e);
    *out = NULL;
    if (!n || s2f_vr_fixed_size(e->vr) != 2)
        return 0;
    uint16_t *v = s2f_arena_alloc(b->a, n * sizeof *v);
    if (!v)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        s2f_elem_u16(e, i, &v[i]);
    *out = v;
    return n;
}

static uint32_t read_u32_list(builder *b, const s2f_ds *ds, uint32_t tag, uint32_t **out)
{
    const s2f_elem *e = s2f_ds_find(ds, tag);
    uint32_t n = s2f_elem_binary_count(e);
    *out = NULL;
    if (!n)
        return 0;
    uint32_t *v = s2f_arena_alloc(b->a, n * sizeof *v);
    if (!v)
        return 0;
    unsigned size = s2f_vr_fixed_size(e->vr);
    for (uint32_t i = 0; i < n; i++) {
        uint16_t s;
        if (size == 4)
            s2f_elem_u32(e, i, &v[i]);
        else if (size == 2 && s2f_elem_u16(e, i, &s))
            v[i] = s;
        else
            v[i] = 0;
    }
    *out = v;
    return n;
}

static void read_sopref(builder *b, s2f_item *it, const s2f_ds *ds)
{
    const s2f_ds *ref = s2f_ds_item(ds, T_ReferencedSOPSequence, 0);
    s2f_sopref *r = &it->v.ref;
    if (!ref) {
        warn_at(b, it, "reference without Referenced SOP Sequence item");
        return;
    }
    r->sop_class = s2f_text_value(&b->text, ref, T_ReferencedSOPClassUID);
    r->sop_instance = s2f_text_value(&b->text, ref, T_ReferencedSOPInstanceUID);
    r->n_frames = read_is_list(b, ref, T_ReferencedFrameNumber, &r->frames);
    r->n_segments = read_u32_list(b, ref, T_ReferencedSegmentNumber, &r->segments);
    r->n_channels = read_u16_list(b, ref, T_ReferencedWaveformChannels, &r->channels);
    const s2f_ds *ps = s2f_ds_item(ref, T_ReferencedSOPSequence, 0);
    if (ps) {
        r->pstate_class = s2f_text_value(&b->text, ps, T_ReferencedSOPClassUID);
        r->pstate_instance = s2f_text_value(&b->text, ps, T_ReferencedSOPInstanceUID);
    }
    if (!r->sop_class || !r->sop_instance)
        warn_at(b, it, "reference without SOP Class or SOP Instance UID");
}

static void read_coord(builder *b, s2f_item *it, const s2f_ds *ds, unsigned dims)
{
    const s2f_elem *e = s2f_ds_find(ds, T_GraphicData);
    it->v.coord.graphic_type = s2f_text_value(&b->text, ds, T_GraphicType);
    uint32_t n = s2f_elem_binary_count(e);
    unsigned size = e ? s2f_vr_fixed_size(e->vr) : 0;
    if (n && (size == 4 || size == 8)) {
        float *v = s2f_arena_alloc(b->a, n * sizeof *v);
        if (v) {
            for (uint32_t i = 0; i < n; i++) {
                double d;
                if (size == 4)
                    s2f_elem_f32(e, i, &v[i]);
                else if (s2f_elem_f64(e, i, &d))
                    v[i] = (float)d;
            }
            it->v.coord.data = v;
            it->v.coord.n = n;
        }
    }
    if (!it->v.coord.n || it->v.coord.n % dims)
        warn_at(b, it, dims == 2 ? "SCOORD Graphic Data is not a list of (column,row) pairs"
                                 : "SCOORD3D Graphic Data is not a list of (x,y,z) triplets");
    if (dims == 3) {
        it->v.coord.frame_of_reference =
            s2f_text_value(&b->text, ds, T_ReferencedFrameOfReferenceUID);
        if (!it->v.coord.frame_of_reference)
            warn_at(b, it, "SCOORD3D without Referenced Frame of Reference UID");
    }
    it->v.coord.fiducial = s2f_ds_find(ds, T_FiducialUID) != NULL;
}

static void read_tcoord(builder *b, s2f_item *it, const s2f_ds *ds)
{
    it->v.tcoord.range_type = s2f_text_value(&b->text, ds, T_TemporalRangeType);
    it->v.tcoord.n_samples = read_u32_list(b, ds, T_ReferencedSamplePositions,
                                           &it->v.tcoord.samples);
    const s2f_elem *off = s2f_ds_find(ds, T_ReferencedTimeOffsets);
    uint32_t n = s2f_elem_string_count(off);
    if (n && (it->v.tcoord.offsets = s2f_arena_alloc(b->a, n * sizeof(double)))) {
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *p;
            size_t len;
            char tmp[40] = "";
            if (s2f_elem_string_raw(off, i, &p, &len) && len < sizeof tmp)
                memcpy(tmp, p, len), tmp[len] = 0;
            it->v.tcoord.offsets[i] = strtod(tmp, NULL);
        }
        it->v.tcoord.n_offsets = n;
    }
    const s2f_elem *dt = s2f_ds_find(ds, T_ReferencedDateTime);
    n = s2f_elem_string_count(dt);
    if (n && (it->v.tcoord.datetimes = s2f_arena_alloc(b->a, n * sizeof(char *)))) {
        for (uint32_t i = 0; i < n; i++)
            it->v.tcoord.datetimes[i] = s2f_text_value_at(&b->text, ds, T_ReferencedDateTime, i);
        it->v.tcoord.n_datetimes = n;
    }
}

static void read_value(builder *b, s2f_item *it, const s2f_ds *ds)
{
    switch (it->vt) {
    case S2F_VT_CONTAINER: {
        const char *c = s2f_text_value(&b->text, ds, T_ContinuityOfContent);
        it->v.container.separate = c && strcmp(c, "SEPARATE") == 0;
        if (!c)
            warn_at(b, it, "CONTAINER without Continuity Of Content");
        break;
    }
    case S2F_VT_TEXT: it->v.text = s2f_text_value(&b->text, ds, T_TextValue); break;
    case S2F_VT_DATETIME: it->v.text = s2f_text_value(&b->text, ds, T_DateTime); break;
    case S2F_VT_DATE: it->v.text = s2f_text_value(&b->text, ds, T_Date); break;
    case S2F_VT_TIME: it->v.text = s2f_text_value(&b->text, ds, T_Time); break;
    case S2F_VT_UIDREF: it->v.text = s2f_text_value(&b->text, ds, T_UID); break;
    case S2F_VT_PNAME: it->v.text = s2f_text_value(&b->text, ds, T_PersonName); break;
    case S2F_VT_CODE: {
        const s2f_ds *c = s2f_ds_item(ds, T_ConceptCodeSequence, 0);
        if (!read_code_into(b, c, &it->v.code))
            warn_at(b, it, "CODE without Concept Code Sequence item");
        break;
    }
    case S2F_VT_NUM: read_num(b, it, ds); break;
    case S2F_VT_COMPOSITE: case S2F_VT_IMAGE: case S2F_VT_WAVEFORM:
        read_sopref(b, it, ds);
        break;
    case S2F_VT_SCOORD: read_coord(b, it, ds, 2); break;
    case S2F_VT_SCOORD3D: read_coord(b, it, ds, 3); break;
    case S2F_VT_TCOORD: read_tcoord(b, it, ds); break;
    case S2F_VT_TABLE: case S2F_VT_UNKNOWN: break;
    }
}

static void read_template(builder *b, s2f_item *it, const s2f_ds *ds)
{
    const s2f_ds *t = s2f_ds_item(ds, T_ContentTemplateSequence, 0);
    if (!t)
        return;
    it->template_id = s2f_text_value(&b->text, t, T_TemplateIdentifier);
    it->template_resource = s2f_text_value(&b->text, t, T_MappingResource);
}

static int remember_byref(builder *b, s2f_item *it)
{
    if (b->n_byref == b->cap_byref) {
        size_t cap = b->cap_byref ? b->cap_byref * 2 : 16;
        s2f_item **l = s2f_arena_realloc(b->a, b->byref, b->cap_byref * sizeof *l, cap * sizeof *l);
        if (!l)
            return 0;
        b->byref = l;
        b->cap_byref = cap;
    }
    b->byref[b->n_byref++] = it;
    return 1;
}

static int read_reference(builder *b, s2f_item *it, const s2f_ds *ds)
{
    const s2f_elem *e = s2f_ds_find(ds, T_ReferencedContentItemIdentifier);
    it->by_reference = 1;
    it->ref_path_len = read_u32_list(b, ds, T_ReferencedContentItemIdentifier, &it->ref_path);
    if (!it->ref_path_len || s2f_vr_fixed_size(e->vr) != 4)
        warn_at(b, it, "Referenced Content Item Identifier is empty or not UL");
    return remember_byref(b, it);
}

static s2f_code oom(builder *b)
{
    return b->code = s2f_fail(b->err, s2f_arena_over_limit(b->a) ? S2F_ELIMIT : S2F_ENOMEM,
                              "out of memory while building the content tree");
}

static s2f_code build_item(builder *b, s2f_item *it, const s2f_ds *ds, s2f_item *parent,
                           uint32_t index);

static s2f_code build_children(builder *b, s2f_item *it, const s2f_ds *ds)
{
    const s2f_elem *seq = s2f_ds_find(ds, T_ContentSequence);
    if (!seq || !seq->is_seq || seq->n_items == 0)
        return S2F_OK;
    if (it->depth + 1 > b->max_depth) {
        char pos[256];
        s2f_item_position(it, pos, sizeof pos);
        return b->code = s2f_fail(b->err, S2F_ELIMIT,
                                  "content tree deeper than %u levels at item %s", b->max_depth, pos);
    }
    s2f_item *kids = s2f_arena_calloc(b->a, seq->n_items, sizeof *kids);
    it->children = s2f_arena_alloc(b->a, seq->n_items * sizeof *it->children);
    if (!kids || !it->children)
        return oom(b);
    it->n_children = seq->n_items;
    for (uint32_t i = 0; i < seq->n_items; i++) {
        it->children[i] = &kids[i];
        s2f_code rc = build_item(b, &kids[i], seq->items[i], it, i + 1);
        if (rc)
            return rc;
    }
    return S2F_OK;
}

static s2f_code build_item(builder *b, s2f_item *it, const s2f_ds *ds, s2f_item *parent,
                           uint32_t index)
{
    it->parent = parent;
    it->index = index;
    it->depth = parent ? parent->depth + 1 : 0;
    it->offset = ds->offset;
    b->n_items++;
    if (it->depth > b->deepest)
        b->deepest = it->depth;
    const uint8_t *p;
    size_t n;
    if (parent) {
        int has_rel = raw_value(ds, T_RelationshipType, &p, &n);
        it->rel = has_rel ? rel_of(p, n) : S2F_REL_UNKNOWN;
        it->rel_text = it->rel != S2F_REL_UNKNOWN ? s2f_rel_name(it->rel)
                                                   : s2f_text_value(&b->text, ds, T_RelationshipType);
        if (!has_rel)
            warn_at(b, it, "no Relationship Type");
        if (s2f_ds_find(ds, T_ReferencedContentItemIdentifier) && !s2f_ds_find(ds, T_ValueType))
            return read_reference(b, it, ds) ? S2F_OK : oom(b);
    }
    int has_vt = raw_value(ds, T_ValueType, &p, &n);
    it->vt = has_vt ? vt_of(p, n) : S2F_VT_UNKNOWN;
    it->vt_text = it->vt != S2F_VT_UNKNOWN ? s2f_vt_name(it->vt)
                                           : s2f_text_value(&b->text, ds, T_ValueType);
    if (it->vt == S2F_VT_UNKNOWN)
        warn_at(b, it, has_vt ? "unknown Value Type" : "no Value Type");
    it->concept = read_code_seq(b, ds, T_ConceptNameCodeSequence);
    it->observation_uid = s2f_text_value(&b->text, ds, T_ObservationUID);
    it->observation_dt = s2f_text_value(&b->text, ds, T_ObservationDateTime);
    read_template(b, it, ds);
    read_value(b, it, ds);
    if (b->text.oom)
        return oom(b);
    return build_children(b, it, ds);
}

static const s2f_item *resolve_path(const s2f_item *root, const uint32_t *path, uint32_t n)
{
    if (!n || path[0] != 1)
        return NULL;
    const s2f_item *it = root;
    for (uint32_t i = 1; i < n; i++) {
        if (path[i] < 1 || path[i] > it->n_children)
            return NULL;
        it = it->children[path[i] - 1];
    }
    return it;
}

static void resolve_references(builder *b, s2f_item *root)
{
    for (size_t i = 0; i < b->n_byref; i++) {
        s2f_item *it = b->byref[i];
        it->ref_target = resolve_path(root, it->ref_path, it->ref_path_len);
        if (!it->ref_target && it->ref_path_len)
            warn_at(b, it, "by-reference relationship points at no content item");
    }
}

s2f_code s2f_tree_build(const s2f_ds *top, s2f_charset *cs, s2f_arena *a, s2f_warnings *w,
                        unsigned max_depth, s2f_tree *out, s2f_error *err)
{
    builder b = {.a = a, .w = w, .max_depth = max_depth ? max_depth : 128, .err = err};
    b.text.cs = cs;
    b.text.arena = a;
    memset(out, 0, sizeof *out);
    const s2f_elem *vt = s2f_ds_find(top, T_ValueType);
    if (!vt)
        return s2f_fail(err, S2F_EUNSUPPORTED,
                        "not a Structured Report: no Value Type (0040,A040) at the top level");
    s2f_item *root = s2f_arena_calloc(a, 1, sizeof *root);
    if (!root)
        return oom(&b);
    s2f_code rc = build_item(&b, root, top, NULL, 1);
    if (rc)
        return rc;
    if (root->vt != S2F_VT_CONTAINER)
        return s2f_fail(err, S2F_EUNSUPPORTED,
                        "not a Structured Report: root content item is %s, not CONTAINER",
                        root->vt_text ? root->vt_text : "without a Value Type");
    resolve_references(&b, root);
    if (b.text.replaced)
        s2f_warn(w, "%u undecodable character(s) replaced by U+FFFD", b.text.replaced);
    out->root = root;
    out->n_items = b.n_items;
    out->depth = b.deepest;
    return S2F_OK;
}
