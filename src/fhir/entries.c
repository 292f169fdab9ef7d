/*
 * entries.c - the Bundle's entries, in one file (M24, see fhir.h): which shared resources
 * were written already (s2f_fhir_first_time), and the text that opens and closes an entry
 * (fullUrl, resourceType, id, meta.profile; request for transactions), in compact output
 * from per-kind forms made once. Its caches are its own: struct s2f_fhir_entries.
 */
#include <string.h>

#include "fhir/fhir.h"
#include "util/hash.h"

#define ENTRY_FORMS 12 /* Observation kinds, shared resources */

/* The compact text of the entries of one (type, profile), the same for all but for the
 * id. */
typedef struct entry_form {
    const char *type, *profile;
    size_t open_len, close_len, open_id[2], close_id; /* where the id goes */
    const char *open, *close; /* in text */
    char text[];
} entry_form;

/* The entries' state and caches (one per conversion). */
struct s2f_fhir_entries {
    s2f_hindex sets;                 /* shared resources already written */
    entry_form *forms[ENTRY_FORMS];  /* (arena) the text of entries of one kind; */
    const entry_form *form;          /* the last one used */
};

static void fail(s2f_fhir *f, s2f_code code, const char *what)
{
    if (!f->code)
        f->code = s2f_fail(f->err, code, "%s", what);
}

s2f_fhir_entries *s2f_fhir_entries_new(s2f_arena *a)
{
    return s2f_arena_calloc(a, 1, sizeof(s2f_fhir_entries));
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
    s2f_sip_init(&sip, s2f_hindex_key(&f->entries->sets));
    s2f_sip_text(&sip, set, strlen(set));
    s2f_sip_text(&sip, key, strlen(key));
    uint64_t h = s2f_sip_final(&sip);
    s2f_hslot *slot = s2f_hindex_find(&f->entries->sets, f->arena, h, same_pair, &pair);
    if (slot && slot->entry)
        return 0;
    if (!slot && f->entries->sets.crowded) {
        fail(f, S2F_EINTERNAL, "distinct resource keys share a 64-bit keyed hash");
        return 0;
    }
    if (!slot || !(e = s2f_arena_alloc(f->arena, sizeof *e))) {
        fail(f, S2F_ELIMIT, "out of memory while writing FHIR");
        return 0;
    }
    *e = pair;
    s2f_hindex_put(&f->entries->sets, slot, h, e);
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
    for (; i < ENTRY_FORMS && f->entries->forms[i]; i++) {
        const entry_form *e = f->entries->forms[i];
        if (e->type == type && e->profile == profile)
            return e;
    }
    if (i == ENTRY_FORMS)
        return NULL;
    return f->entries->forms[i] = make_form(f, type, profile);
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
        const entry_form *e = f->entries->form && f->entries->form->type == rid->type &&
                                      f->entries->form->profile == profile
                                  ? f->entries->form
                                  : form_of(f, rid->type, profile);
        f->entries->form = e;
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
    case 'D':
        stats->devices += !strcmp(type, "Device");
        stats->diagnostic_reports += !strcmp(type, "DiagnosticReport"); /* issue 15 */
        break;
    case 'P': stats->practitioners += !strcmp(type, "Practitioner"); break;
    default: break;
    }
}

void s2f_fhir_end_entry(s2f_fhir *f, const s2f_rid *rid)
{
    s2f_json *j = f->json;
    const entry_form *e = f->entries->form; /* the entry's own: entries do not nest */
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
