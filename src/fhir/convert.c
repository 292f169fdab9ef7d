/*
 * convert.c - the Bundle (M24): which resources a report makes, in which order, each once,
 * with deterministic identities (see fhir.h).
 *
 * Order: the equipment Device (M7), the observers (M10), the algorithms (M22), the
 * BodyStructures (M18), the ImagingSelections (M12, M19), then the Observations: each group
 * followed by its measurements and evaluations, the derived measurements, the
 * document-level evaluations. Shared resources are written the first time they are met
 * and referenced by their computed identity everywhere else.
 */
#include "fhir/fhir.h"

#include <string.h>

#include "util/hash.h"

/* ---- identities ------------------------------------------------------------------------ */

static void fail(s2f_fhir *f, s2f_code code, const char *what)
{
    if (!f->code)
        f->code = s2f_fail(f->err, code, "%s", what);
}

/* Identities are asked for again and again (every Observation names the equipment, its
 * group, its selections): a direct-mapped memo in front of the hashing. It starts small (a
 * short report pays for a few slots, not for a big zeroed table) and grows when keys keep
 * evicting each other, up to RID_MEMO_MAX slots. */
#define RID_MEMO_MIN 16
#define RID_MEMO_MAX 1024
struct s2f_rid_memo {
    const char *kind, *key;
    uint64_t hash;
    s2f_rid rid;
};

static void compute_rid(s2f_fhir *f, const char *type, const char *kind, const char *key,
                        s2f_rid *rid)
{
    s2f_uuid u;
    rid->type = type;
    s2f_uuid_scope_id(&f->ids, kind, key, &u);
    s2f_uuid_format(&u, rid->id);
    memcpy(rid->urn, "urn:uuid:", 9);
    memcpy(rid->urn + 9, rid->id, sizeof rid->id);
}

/* A memo of cap slots holding the entries of the old one that still fit; 0 when memory
 * ran out (the old one stays). */
static int rid_memo_resize(s2f_fhir *f, size_t cap)
{
    struct s2f_rid_memo *m = s2f_arena_calloc(f->arena, cap, sizeof *m);
    if (!m)
        return 0;
    for (size_t i = 0; i < f->rid_memo_cap; i++)
        if (f->rid_memo[i].key)
            m[f->rid_memo[i].hash & (cap - 1)] = f->rid_memo[i];
    f->rid_memo = m;
    f->rid_memo_cap = cap;
    f->rid_memo_evictions = 0;
    return 1;
}

void s2f_fhir_rid(s2f_fhir *f, const char *type, const char *kind, const char *key, s2f_rid *rid)
{
    if (!f->rid_memo && !rid_memo_resize(f, RID_MEMO_MIN)) {
        compute_rid(f, type, kind, key, rid);
        return;
    }
    uint64_t h = s2f_hash_text(s2f_hindex_key(f->sets), key, strlen(key)) ^ (uintptr_t)kind;
    struct s2f_rid_memo *m = &f->rid_memo[h & (f->rid_memo_cap - 1)];
    if (m->kind != kind || !m->key || strcmp(m->key, key)) {
        if (m->key && ++f->rid_memo_evictions > f->rid_memo_cap &&
            f->rid_memo_cap < RID_MEMO_MAX && rid_memo_resize(f, f->rid_memo_cap * 4))
            m = &f->rid_memo[h & (f->rid_memo_cap - 1)];
        /* keys are arena strings or literals: they outlive the conversion */
        compute_rid(f, type, kind, key, &m->rid);
        m->kind = kind;
        m->key = key;
        m->hash = h;
    }
    *rid = m->rid;
    rid->type = type;
}

/* M24 amended (issue 10 defect 7): the identity of a resource that outlives one report,
 * from its business identity, not from the SR (uuid.h). */
void s2f_fhir_identity_rid(s2f_fhir *f, const char *type, const char *kind, const char *key,
                           s2f_rid *rid)
{
    (void)f;
    s2f_uuid u;
    rid->type = type;
    s2f_uuid_identity(kind, key, &u);
    s2f_uuid_format(&u, rid->id);
    memcpy(rid->urn, "urn:uuid:", 9);
    memcpy(rid->urn + 9, rid->id, sizeof rid->id);
}

/* Digits of v written backwards, ending at `end`; returns where they start. */
static char *decimal_before(char *end, uint32_t v)
{
    do
        *--end = (char)('0' + v % 10);
    while (v /= 10);
    return end;
}

/* s2f_item_position(it, pos, S2F_POSITION_MAX), from its parent's position kept from the
 * last call: siblings come one after another, and the walk up the tree is done once per
 * parent. Items whose parent's position is too long to keep are asked of the tree each
 * time. */
static void item_position(s2f_fhir *f, const s2f_item *it, char pos[S2F_POSITION_MAX])
{
    if (it->parent && it->parent != f->pos_parent) {
        s2f_item_position(it->parent, pos, S2F_POSITION_MAX); /* pos as scratch */
        size_t n = strlen(pos);
        f->pos_len = n < sizeof f->pos ? n : SIZE_MAX; /* SIZE_MAX: not kept */
        if (n < sizeof f->pos)
            memcpy(f->pos, pos, n);
        f->pos_parent = it->parent;
    }
    if (!it->parent || f->pos_len == SIZE_MAX) {
        s2f_item_position(it, pos, S2F_POSITION_MAX);
        return;
    }
    char num[12];
    char *digits = decimal_before(num + sizeof num, it->index);
    size_t n = (size_t)(num + sizeof num - digits);
    memcpy(pos, f->pos, f->pos_len);
    pos[f->pos_len] = '.';
    memcpy(pos + f->pos_len + 1, digits, n);
    pos[f->pos_len + 1 + n] = '\0';
}

const char *s2f_fhir_item_key(s2f_fhir *f, const s2f_item *it)
{
    if (!f->item_keys)
        f->item_keys = s2f_arena_calloc(f->arena, f->doc->tree.n_items, sizeof *f->item_keys);
    if (f->item_keys && f->item_keys[it->seq])
        return f->item_keys[it->seq];
    char pos[S2F_POSITION_MAX];
    item_position(f, it, pos);
    const char *s = s2f_arena_strdup(f->arena, pos);
    if (!s) {
        fail(f, S2F_ELIMIT, "out of memory while writing FHIR");
        return "";
    }
    if (f->item_keys)
        f->item_keys[it->seq] = s;
    return s;
}

/* Every Observation's identity is asked for at least twice (its group's hasMember lists it
 * before it is written), more often than the memo above can hold: kept per item. */
void s2f_fhir_observation_rid(s2f_fhir *f, const s2f_item *it, s2f_rid *rid)
{
    if (!f->observation_rids)
        f->observation_rids =
            s2f_arena_calloc(f->arena, f->doc->tree.n_items, sizeof *f->observation_rids);
    s2f_rid **slot = f->observation_rids ? &f->observation_rids[it->seq] : NULL;
    if (slot && *slot) {
        *rid = **slot;
        return;
    }
    /* the key is hashed once here: kept only when something else made it already */
    const char *key = f->item_keys ? f->item_keys[it->seq] : NULL;
    char pos[S2F_POSITION_MAX];
    if (!key) {
        item_position(f, it, pos);
        key = pos;
    }
    compute_rid(f, "Observation", S2F_KIND_OBSERVATION, key, rid);
    if (slot && (*slot = s2f_arena_alloc(f->arena, sizeof **slot)))
        **slot = *rid;
}

/* ---- the set of shared resources written ------------------------------------------------- */

/* (set, key) pairs in a hash index. Sets and keys are literals or arena strings: they
 * outlive the conversion. */
struct set_entry {
    const char *set, *key;
};

static int same_pair(const void *entry, const void *pair)
{
    const struct set_entry *a = entry, *b = pair;
    return !strcmp(a->set, b->set) && !strcmp(a->key, b->key);
}

int s2f_fhir_first_time(s2f_fhir *f, const char *set, const char *key)
{
    struct set_entry pair = {set, key}, *e;
    s2f_sip sip;
    s2f_sip_init(&sip, s2f_hindex_key(f->sets));
    s2f_sip_text(&sip, set, strlen(set));
    s2f_sip_text(&sip, key, strlen(key));
    uint64_t h = s2f_sip_final(&sip);
    s2f_hslot *slot = s2f_hindex_find(f->sets, f->arena, h, same_pair, &pair);
    if (slot && slot->entry)
        return 0;
    if (!slot && f->sets->crowded) {
        fail(f, S2F_EINTERNAL, "distinct resource keys share a 64-bit keyed hash");
        return 0;
    }
    if (!slot || !(e = s2f_arena_alloc(f->arena, sizeof *e))) {
        fail(f, S2F_ELIMIT, "out of memory while writing FHIR");
        return 0;
    }
    *e = pair;
    s2f_hindex_put(f->sets, slot, h, e);
    return 1;
}

/* ---- entries ---------------------------------------------------------------------------- */

/* Compact output writes the fixed members of an entry as pieces of raw text: types, ids,
 * URNs and profiles are the code's own ASCII (letters, digits, ":/.-") and need no
 * escaping, so they are joined without the writer's checks. */
typedef struct piece {
    char text[384];
    size_t n;            /* text is NUL-terminated */
} piece;

static void start(piece *p)
{
    p->n = 0;
    p->text[0] = '\0';
}

static void add_n(piece *p, const char *s, size_t n)
{
    if (n > sizeof p->text - 1 - p->n)
        n = sizeof p->text - 1 - p->n; /* cannot happen: short literals and ids */
    memcpy(p->text + p->n, s, n);
    p->n += n;
    p->text[p->n] = '\0';
}

static void add(piece *p, const char *s) { add_n(p, s, strlen(s)); }

/* A string literal with its length known at compile time. */
#define ADD_LITERAL(p, lit) add_n((p), (lit), sizeof(lit) - 1)

static void begin_entry_compact(s2f_fhir *f, const s2f_rid *rid, const char *profile)
{
    s2f_json *j = f->json;
    piece p;
    start(&p);
    ADD_LITERAL(&p, "\"fullUrl\":\"");
    add_n(&p, rid->urn, S2F_UUID_URN_SIZE - 1); /* compute_rid fills all of it */
    ADD_LITERAL(&p, "\"");
    s2f_json_begin_object_raw(j, NULL, p.text, p.n);
    start(&p);
    ADD_LITERAL(&p, "\"resourceType\":\"");
    add(&p, rid->type);
    ADD_LITERAL(&p, "\",\"id\":\"");
    add_n(&p, rid->id, S2F_UUID_STR_SIZE - 1);
    ADD_LITERAL(&p, "\"");
    if (profile && !f->opt.r4) { /* M25: no R5 profiles in R4 output */
        ADD_LITERAL(&p, ",\"meta\":{\"profile\":[\"");
        add(&p, profile);
        ADD_LITERAL(&p, "\"]}");
    }
    s2f_json_begin_object_raw(j, "resource", p.text, p.n);
}

/* Entry forms: the compact text that opens an entry (fullUrl, resourceType, id, profile)
 * and closes it (request), the same for all resources of one type and profile but for the
 * id, made once with room for it and copied with the id put in its places. */
typedef struct s2f_entry_form entry_form;

#define ID_ROOM "------------------------------------" /* S2F_UUID_STR_SIZE - 1 bytes */

/* The form of (type, profile) in the arena, its texts taking only their length; NULL when
 * it does not fit the piece (long names: the entry is then written piece by piece) or
 * memory ran out. */
static entry_form *make_form(s2f_fhir *f, const char *type, const char *profile)
{
    piece o, c;
    size_t open_id[2], close_id = 0;
    start(&o);
    ADD_LITERAL(&o, "{\"fullUrl\":\"urn:uuid:");
    open_id[0] = o.n;
    ADD_LITERAL(&o, ID_ROOM);
    ADD_LITERAL(&o, "\",\"resource\":{\"resourceType\":\"");
    add(&o, type);
    ADD_LITERAL(&o, "\",\"id\":\"");
    open_id[1] = o.n;
    ADD_LITERAL(&o, ID_ROOM);
    ADD_LITERAL(&o, "\"");
    if (profile && !f->opt.r4) { /* M25: no R5 profiles in R4 output */
        ADD_LITERAL(&o, ",\"meta\":{\"profile\":[\"");
        add(&o, profile);
        ADD_LITERAL(&o, "\"]}");
    }
    start(&c);
    ADD_LITERAL(&c, "}"); /* resource */
    if (f->opt.bundle_type == S2F_BUNDLE_TRANSACTION) { /* M24: PUT, see end_entry */
        ADD_LITERAL(&c, ",\"request\":{\"method\":\"PUT\",\"url\":\"");
        add(&c, type);
        ADD_LITERAL(&c, "/");
        close_id = c.n;
        ADD_LITERAL(&c, ID_ROOM);
        ADD_LITERAL(&c, "\"}");
    }
    ADD_LITERAL(&c, "}"); /* entry */
    if (o.n >= sizeof o.text - 1 || c.n >= sizeof c.text - 1)
        return NULL;
    entry_form *e = s2f_arena_alloc(f->arena, sizeof *e + o.n + c.n);
    if (!e)
        return NULL;
    e->type = type;
    e->profile = profile;
    e->open_len = o.n;
    e->close_len = c.n;
    e->open_id[0] = open_id[0];
    e->open_id[1] = open_id[1];
    e->close_id = close_id;
    e->open = e->text;
    e->close = e->text + o.n;
    memcpy(e->text, o.text, o.n);
    memcpy(e->text + o.n, c.text, c.n);
    return e;
}

/* The form of (type, profile), made the first time; NULL when it cannot be made. Types
 * and profiles are the code's literals: their addresses tell them apart (two copies of
 * one literal only cost a second form). */
static const entry_form *form_of(s2f_fhir *f, const char *type, const char *profile)
{
    size_t i = 0;
    for (; i < S2F_ENTRY_FORMS && f->entry_forms[i]; i++) {
        const entry_form *e = f->entry_forms[i];
        if (e->type == type && e->profile == profile)
            return e;
    }
    if (i == S2F_ENTRY_FORMS)
        return NULL;
    return f->entry_forms[i] = make_form(f, type, profile);
}

/* Copies the form's text with the id in its places and writes it. */
static void write_form(s2f_fhir *f, const char *form, size_t n, const size_t *at, size_t n_at,
                       const char *id, int open)
{
    char text[sizeof ((piece *)0)->text];
    memcpy(text, form, n);
    for (size_t i = 0; i < n_at; i++)
        memcpy(text + at[i], id, S2F_UUID_STR_SIZE - 1);
    if (open)
        s2f_json_open_raw(f->json, text, n, 2);
    else
        s2f_json_close_raw(f->json, text, n, 2);
}

void s2f_fhir_begin_entry(s2f_fhir *f, const s2f_rid *rid, const char *profile)
{
    s2f_json *j = f->json;
    if (!f->opt.pretty) {
        const entry_form *e = f->entry_form && f->entry_form->type == rid->type &&
                                      f->entry_form->profile == profile
                                  ? f->entry_form
                                  : form_of(f, rid->type, profile);
        f->entry_form = e;
        if (e)
            write_form(f, e->open, e->open_len, e->open_id, 2, rid->id, 1);
        else
            begin_entry_compact(f, rid, profile);
        return;
    }
    s2f_json_begin_object(j);
    s2f_json_kv_string(j, "fullUrl", rid->urn);
    s2f_json_lit_begin_object(j, S2F_JSON_LIT("resource"));
    s2f_json_kv_string(j, "resourceType", rid->type);
    s2f_json_kv_string(j, "id", rid->id);
    if (profile && !f->opt.r4) { /* M25: no R5 profiles in R4 output */
        s2f_json_lit_begin_object(j, S2F_JSON_LIT("meta"));
        s2f_json_lit_begin_array(j, S2F_JSON_LIT("profile"));
        s2f_json_string(j, profile);
        s2f_json_end_array(j);
        s2f_json_end_object(j);
    }
}

/* The resource counts of the stats, by type (the first letter tells which to compare). */
static void count_resource(s2f_fhir_stats *stats, const char *type)
{
    switch (type[0]) {
    case 'O': stats->observations += !strcmp(type, "Observation"); break;
    case 'I': stats->imaging_selections += !strcmp(type, "ImagingSelection"); break;
    case 'B': stats->body_structures += !strcmp(type, "BodyStructure"); break;
    case 'D': stats->devices += !strcmp(type, "Device"); break;
    case 'P': stats->practitioners += !strcmp(type, "Practitioner"); break;
    default: break;
    }
}

void s2f_fhir_end_entry(s2f_fhir *f, const s2f_rid *rid)
{
    s2f_json *j = f->json;
    const entry_form *e = f->entry_form; /* the entry's own: entries do not nest */
    if (!f->opt.pretty && e && e->type == rid->type) {
        write_form(f, e->close, e->close_len, &e->close_id, e->close_id ? 1 : 0, rid->id, 0);
        count_resource(f->stats, rid->type);
        return;
    }
    s2f_json_end_object(j); /* resource */
    if (f->opt.bundle_type == S2F_BUNDLE_TRANSACTION) {
        /* M24: PUT to the deterministic id, so sending the same SR twice creates nothing
         * twice (docs/decisions.md) */
        piece p;
        start(&p);
        if (!f->opt.pretty)
            ADD_LITERAL(&p, "\"request\":{\"method\":\"PUT\",\"url\":\"");
        size_t url = p.n; /* Type/id */
        add(&p, rid->type);
        ADD_LITERAL(&p, "/");
        add_n(&p, rid->id, S2F_UUID_STR_SIZE - 1);
        if (f->opt.pretty) {
            s2f_json_lit_begin_object(j, S2F_JSON_LIT("request"));
            s2f_json_kv_string(j, "method", "PUT");
            s2f_json_kv_string(j, "url", p.text + url);
            s2f_json_end_object(j);
        } else {
            ADD_LITERAL(&p, "\"}");
            s2f_json_members_raw(j, p.text, p.n);
        }
    }
    s2f_json_end_object(j); /* entry */
    count_resource(f->stats, rid->type);
}

/* ---- what each observation needs written first ----------------------------------------- */

/* Contexts are inherited: most items share their container's list of observers, whose
 * resources are written with the first of them. */
static void write_context(s2f_fhir *f, const s2f_context *ctx)
{
    s2f_fhir_write_subject(f, ctx->subject); /* issue 10 #4: once per Bundle */
    if (ctx->observers == f->observers_written && ctx->n_observers == f->n_observers_written)
        return;
    for (size_t i = 0; i < ctx->n_observers; i++)
        s2f_fhir_write_observer(f, &ctx->observers[i]);
    f->observers_written = ctx->observers;
    f->n_observers_written = ctx->n_observers;
}

static void write_refs(s2f_fhir *f, const s2f_image_ref *refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s2f_fhir_write_selection(f, &refs[i]);
}

static void write_site(s2f_fhir *f, const s2f_site *site, const char *tracking_id,
                       const char *tracking_uid)
{
    if (s2f_fhir_has_body_structure(site, tracking_id, tracking_uid))
        s2f_fhir_write_body_structure(f, site, tracking_id, tracking_uid);
}

static void write_measurement_dependencies(s2f_fhir *f, const s2f_measurement *m,
                                           const s2f_group *g)
{
    write_context(f, &m->ctx);
    if (m->algorithm)
        s2f_fhir_write_algorithm(f, m->algorithm);
    const char *tid, *tuid;
    const s2f_site *site = s2f_fhir_measurement_site(m, g, &tid, &tuid); /* 10#7 */
    if (site)
        write_site(f, site, tid, tuid);
    write_refs(f, m->refs, m->n_refs);
}

static void write_evaluation_dependencies(s2f_fhir *f, const s2f_evaluation *e)
{
    write_context(f, &e->ctx);
    if (e->algorithm)
        s2f_fhir_write_algorithm(f, e->algorithm);
}

static void write_group_dependencies(s2f_fhir *f, const s2f_group *g)
{
    write_context(f, &g->ctx);
    if (g->algorithm)
        s2f_fhir_write_algorithm(f, g->algorithm);
    write_site(f, &g->site, g->tracking_id, g->tracking_uid);
    write_refs(f, g->refs, g->n_refs);
    if (g->item->observation_uid)
        s2f_fhir_write_source_item(f, g->item);
    for (size_t i = 0; i < g->n_measurements; i++)
        write_measurement_dependencies(f, &g->measurements[i], g);
    for (size_t i = 0; i < g->n_evaluations; i++)
        write_evaluation_dependencies(f, &g->evaluations[i]);
}

static void write_group(s2f_fhir *f, const s2f_group *g)
{
    s2f_fhir_write_group(f, g);
    for (size_t i = 0; i < g->n_measurements; i++)
        s2f_fhir_write_measurement(f, &g->measurements[i], g);
    for (size_t i = 0; i < g->n_evaluations; i++)
        s2f_fhir_write_evaluation(f, &g->evaluations[i], g);
}

static void write_entries(s2f_fhir *f)
{
    const s2f_report *r = f->rep;
    s2f_fhir_write_equipment(f);
    write_context(f, &r->ctx);
    for (size_t i = 0; i < r->n_groups; i++)
        write_group_dependencies(f, r->groups[i]);
    for (size_t i = 0; i < r->n_derived; i++) {
        write_measurement_dependencies(f, &r->derived[i], NULL);
        if (r->derived[i].item->observation_uid)
            s2f_fhir_write_source_item(f, r->derived[i].item);
    }
    for (size_t i = 0; i < r->n_evaluations; i++)
        write_evaluation_dependencies(f, &r->evaluations[i]);
    for (size_t i = 0; i < r->n_groups; i++)
        write_group(f, r->groups[i]);
    for (size_t i = 0; i < r->n_derived; i++)
        s2f_fhir_write_derived(f, &r->derived[i]);
    for (size_t i = 0; i < r->n_evaluations; i++)
        s2f_fhir_write_evaluation(f, &r->evaluations[i], NULL);
}

s2f_code s2f_fhir_write_bundle(const s2f_report *rep, const s2f_fhir_options *opt,
                               s2f_sink *out, s2f_fhir_stats *stats, s2f_error *err)
{
    s2f_json json;
    s2f_hindex sets = {0};
    s2f_fhir f = {
        .rep = rep,
        .doc = rep->doc,
        .h = &rep->doc->header,
        .arena = rep->doc->arena,
        .json = &json,
        .stats = stats,
        .err = err,
        .sop_uid = rep->doc->header.sop_instance ? rep->doc->header.sop_instance : "",
        .sets = &sets,
    };
    if (opt)
        f.opt = *opt;
    s2f_uuid_scope_init(&f.ids, f.sop_uid);
    memset(stats, 0, sizeof *stats);
    stats->unmapped = rep->n_unmapped;
    s2f_json_init(&json, out, f.opt.pretty);
    s2f_rid bundle;
    s2f_fhir_rid(&f, "Bundle", "bundle", "", &bundle);
    s2f_json_begin_object(&json);
    s2f_json_kv_string(&json, "resourceType", "Bundle");
    s2f_json_kv_string(&json, "id", bundle.id);
    s2f_json_kv_string(&json, "type",
                       f.opt.bundle_type == S2F_BUNDLE_COLLECTION ? "collection" : "transaction");
    s2f_json_lit_begin_array(&json, S2F_JSON_LIT("entry"));
    write_entries(&f);
    s2f_json_end_array(&json);
    s2f_json_end_object(&json);
    s2f_json_finish(&json);
    stats->replaced_chars += s2f_json_replaced(&json);
    if (f.code)
        return f.code;
    if (s2f_json_error(&json))
        return s2f_fail(err, S2F_EINTERNAL, "%s", s2f_json_message(&json));
    return S2F_OK;
}
