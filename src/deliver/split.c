/*
 * split.c - a transaction Bundle too large for one transaction, as several (split.h).
 *
 * Servers cap transactions (Medplum: 50 updates, Azure: 500 entries), so a large report is
 * delivered in parts. Every resource has a deterministic id (M24), so a reference between
 * entries, "urn:uuid:ID", can be written as the literal "Type/ID" and still name the same
 * resource when its target travels in another transaction. Entries are ordered so that
 * whatever an entry references comes first (a server checking referential integrity
 * accepts every part), then cut into parts of at most max_entries. The JSON is parsed with
 * json-c, which keeps the text of numbers, so values stay exactly as converted (M20).
 */
#include "deliver/split.h"

#include <stdlib.h>
#include <string.h>

#include "deliver/fhirjson.h"
#include "util/error.h"

#define MAX_LEVEL 64   /* reference chains longer than this (or cycles) keep their order */

typedef struct edges {
    size_t *to;
    size_t n, cap;
} edges;

typedef struct splitter {
    json_object *bundle, *entries, *by_url;   /* by_url: fullUrl -> index (int) */
    size_t n;
    edges *deps;                              /* per entry: the entries it references */
    unsigned *level;                          /* 0: references nothing in the Bundle */
    int oom;
} splitter;

static void add_edge(splitter *s, size_t from, size_t to)
{
    edges *e = &s->deps[from];
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        size_t *p = realloc(e->to, cap * sizeof *p);
        if (!p) {
            s->oom = 1;
            return;
        }
        e->to = p;
        e->cap = cap;
    }
    e->to[e->n++] = to;
}

/* "Type/id" of entry i (malloc'd), NULL when it lacks either. */
static char *literal_of(splitter *s, size_t i)
{
    return s2f_fhirjson_literal(s2f_fhirjson_member(json_object_array_get_idx(s->entries, i), "resource"));
}

/* Rewrites every "reference" inside o that names an entry of the Bundle; records edges. */
static void rewrite_references(splitter *s, json_object *o, size_t from, int depth)
{
    if (depth > S2F_FHIRJSON_DEPTH || s->oom)
        return;
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            rewrite_references(s, json_object_array_get_idx(o, i), from, depth + 1);
        return;
    }
    if (!json_object_is_type(o, json_type_object))
        return;
    json_object_object_foreach(o, key, value) {
        json_object *target;
        if (!strcmp(key, "reference") && json_object_is_type(value, json_type_string) &&
            json_object_object_get_ex(s->by_url, json_object_get_string(value), &target)) {
            size_t to = (size_t)json_object_get_int64(target);
            char *ref = literal_of(s, to);
            if (!ref || json_object_set_string(value, ref) != 1)
                s->oom = 1;
            free(ref);
            add_edge(s, from, to);
        } else {
            rewrite_references(s, value, from, depth + 1);
        }
    }
}

/* level(i) = 1 + the highest level of what i references; relaxed until stable. */
static void compute_levels(splitter *s)
{
    for (int pass = 0, changed = 1; changed && pass < MAX_LEVEL; pass++) {
        changed = 0;
        for (size_t i = 0; i < s->n; i++)
            for (size_t k = 0; k < s->deps[i].n; k++) {
                unsigned want = s->level[s->deps[i].to[k]] + 1;
                if (want > s->level[i] && want <= MAX_LEVEL) {
                    s->level[i] = want;
                    changed = 1;
                }
            }
    }
}

/* Entry indexes by level, then Bundle order (a stable counting sort). */
static size_t *dependency_order(splitter *s)
{
    size_t *order = malloc((s->n ? s->n : 1) * sizeof *order), k = 0;
    for (unsigned lv = 0; order && lv <= MAX_LEVEL; lv++)
        for (size_t i = 0; i < s->n; i++)
            if (s->level[i] == lv)
                order[k++] = i;
    return order;
}

/* One part: the Bundle's own members, and entries order[first .. first+count). */
static char *part_text(splitter *s, const size_t *order, size_t first, size_t count, size_t *len)
{
    json_object *part = json_object_new_object(), *list = json_object_new_array();
    char *text = NULL;
    if (part && list) {
        json_object_object_foreach(s->bundle, key, value) {
            if (strcmp(key, "entry"))
                json_object_object_add(part, key, json_object_get(value));
        }
        for (size_t i = 0; i < count; i++)
            json_object_array_add(list, json_object_get(json_object_array_get_idx(s->entries, order[first + i])));
        json_object_object_add(part, "entry", list);
        list = NULL;
        size_t n;
        const char *t = json_object_to_json_string_length(part, JSON_C_TO_STRING_PLAIN |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE, &n);
        if (t && (text = malloc(n + 1))) {
            memcpy(text, t, n + 1);
            *len = n;
        }
    }
    json_object_put(list);
    json_object_put(part);
    return text;
}

static s2f_code index_entries(splitter *s, s2f_error *err)
{
    for (size_t i = 0; i < s->n; i++) {
        const char *url = json_object_get_string(s2f_fhirjson_member(json_object_array_get_idx(s->entries, i), "fullUrl"));
        if (url && json_object_object_add(s->by_url, url, json_object_new_int64((int64_t)i)))
            return s2f_fail(err, S2F_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->n && !s->oom; i++)
        rewrite_references(s, s2f_fhirjson_member(json_object_array_get_idx(s->entries, i), "resource"), i, 0);
    return s->oom ? s2f_fail(err, S2F_ENOMEM, "out of memory") : S2F_OK;
}

static s2f_code cut(splitter *s, size_t max_entries, s2f_bundle_parts *parts, s2f_error *err)
{
    size_t *order = dependency_order(s);
    size_t n_parts = (s->n + max_entries - 1) / max_entries;
    parts->text = calloc(n_parts ? n_parts : 1, sizeof *parts->text);
    parts->len = calloc(n_parts ? n_parts : 1, sizeof *parts->len);
    parts->entries = calloc(n_parts ? n_parts : 1, sizeof *parts->entries);
    s2f_code rc = order && parts->text && parts->len && parts->entries ? S2F_OK : s2f_fail(err, S2F_ENOMEM, "out of memory");
    for (size_t p = 0; !rc && p < n_parts; p++) {
        size_t first = p * max_entries, count = s->n - first < max_entries ? s->n - first : max_entries;
        parts->entries[p] = count;
        if (!(parts->text[p] = part_text(s, order, first, count, &parts->len[p])))
            rc = s2f_fail(err, S2F_ENOMEM, "out of memory");
        else
            parts->n++;
    }
    free(order);
    return rc;
}

s2f_code s2f_split_bundle(const char *bundle, size_t len, size_t max_entries,
                          s2f_bundle_parts *parts, s2f_error *err)
{
    splitter s = {0};
    memset(parts, 0, sizeof *parts);
    if (max_entries == 0)
        return s2f_fail(err, S2F_EINTERNAL, "a part must hold at least one entry");
    s.bundle = s2f_fhirjson_parse(bundle, len);
    s.entries = s2f_fhirjson_member(s.bundle, "entry");
    s2f_code rc = S2F_OK;
    if (!json_object_is_type(s.entries, json_type_array))
        rc = s2f_fail(err, S2F_EINTERNAL, "the Bundle to split is not a Bundle with entries");
    if (!rc) {
        s.n = json_object_array_length(s.entries);
        s.by_url = json_object_new_object();
        s.deps = calloc(s.n ? s.n : 1, sizeof *s.deps);
        s.level = calloc(s.n ? s.n : 1, sizeof *s.level);
        if (!s.by_url || !s.deps || !s.level)
            rc = s2f_fail(err, S2F_ENOMEM, "out of memory");
    }
    if (!rc && !(rc = index_entries(&s, err))) {
        compute_levels(&s);
        rc = cut(&s, max_entries, parts, err);
    }
    for (size_t i = 0; s.deps && i < s.n; i++)
        free(s.deps[i].to);
    free(s.deps);
    free(s.level);
    json_object_put(s.by_url);
    json_object_put(s.bundle);
    if (rc)
        s2f_split_parts_free(parts);
    return rc;
}

void s2f_split_parts_free(s2f_bundle_parts *parts)
{
    for (size_t i = 0; parts->text && i < parts->n; i++)
        free(parts->text[i]);
    free(parts->text);
    free(parts->len);
    free(parts->entries);
    memset(parts, 0, sizeof *parts);
}
