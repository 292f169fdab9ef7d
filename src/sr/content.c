/*
 * content.c - assembles the SR content tree (see content.h).
 *
 * Content items arrive bottom-up, each as soon as its data set is complete (post-order):
 * s2f_tree_begin when an item of a Content Sequence starts, s2f_tree_end with its data set
 * when it is complete. Both readers (Part 10 and, since issue 9 defect 2, DICOM JSON) call
 * these while they read, so an item's data set can be thrown away right after (streaming,
 * bounded memory). Finished items wait on a stack until their parent ends and adopts them. s2f_tree_finish makes the root,
 * numbers and checks the tree, resolves by-reference relationships and reports the
 * problems found in items with their positions.
 */
#include "sr/content.h"

#include <stdio.h>
#include <string.h>

#include "sr/item.h"
#include "sr/tags.h"

struct s2f_tree_builder {
    s2f_item_reader reader;
    s2f_warnings *w;
    s2f_error *err;
    unsigned max_depth;
    s2f_item **pending;      /* finished items waiting for their parent */
    size_t n_pending, cap_pending;
    size_t *open;            /* n_pending when each open item began */
    size_t n_open, cap_open;
    size_t n_items;
};

const s2f_item *s2f_item_next(const s2f_item *it)
{
    if (it->n_children)
        return it->children[0];
    while (it->parent && it->index >= it->parent->n_children)
        it = it->parent;
    return it->parent ? it->parent->children[it->index] : NULL;
}

/* Writes v in decimal so that it ends just before `end`; returns where it starts. */
static char *decimal_before(char *end, uint32_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

void s2f_item_position(const s2f_item *it, char *buf, size_t size)
{
    char tmp[4096];
    size_t at = sizeof tmp - 1;
    tmp[at] = '\0';
    for (const s2f_item *p = it; p; p = p->parent) {
        char num[12];
        char *digits = decimal_before(num + sizeof num, p->index);
        size_t n = (size_t)(num + sizeof num - digits);
        if (n + 1 + 3 > at) { /* deeper than the buffer: keep the innermost part */
            memcpy(tmp + (at -= 3), "...", 3);
            break;
        }
        memcpy(tmp + (at -= n), digits, n);
        if (p->parent)
            tmp[--at] = '.';
    }
    if (!size)
        return;
    size_t len = sizeof tmp - 1 - at;
    if (len >= size)
        len = size - 1;
    memcpy(buf, tmp + at, len);
    buf[len] = '\0';
}

static s2f_code oom(s2f_tree_builder *b)
{
    s2f_arena *a = b->reader.arena;
    return s2f_fail(b->err, s2f_arena_over_limit(a) ? S2F_ELIMIT : S2F_ENOMEM,
                    "out of memory while building the content tree");
}

/* Grows an arena array of `size`-byte entries so that one more fits. */
static int make_room(s2f_arena *a, void **list, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 1;
    size_t new_cap = *cap ? *cap * 2 : 64;
    void *l = s2f_arena_realloc(a, *list, *cap * size, new_cap * size);
    if (!l)
        return 0;
    *list = l;
    *cap = new_cap;
    return 1;
}

s2f_tree_builder *s2f_tree_builder_new(s2f_arena *a, s2f_warnings *w, unsigned max_depth,
                                       s2f_error *err)
{
    s2f_tree_builder *b = s2f_arena_calloc(a, 1, sizeof *b);
    if (!b) {
        s2f_fail(err, s2f_arena_over_limit(a) ? S2F_ELIMIT : S2F_ENOMEM, "out of memory");
        return NULL;
    }
    b->reader.arena = a;
    b->reader.text.arena = a;
    b->w = w;
    b->err = err;
    b->max_depth = max_depth ? max_depth : 128;
    return b;
}

void s2f_tree_set_charset(s2f_tree_builder *b, s2f_charset *cs) { b->reader.text.cs = cs; }

s2f_code s2f_tree_begin(s2f_tree_builder *b)
{
    if (!make_room(b->reader.arena, (void **)&b->open, &b->cap_open, b->n_open, sizeof *b->open))
        return oom(b);
    b->open[b->n_open++] = b->n_pending;
    return S2F_OK;
}

/* Gives `it` the items pending since `first` as its children. */
static int adopt(s2f_tree_builder *b, s2f_item *it, size_t first)
{
    size_t n = b->n_pending - first;
    b->n_pending = first;
    if (!n)
        return 1;
    it->children = s2f_arena_alloc(b->reader.arena, n * sizeof *it->children);
    if (!it->children)
        return 0;
    memcpy(it->children, b->pending + first, n * sizeof *it->children);
    it->n_children = (uint32_t)n;
    for (uint32_t i = 0; i < it->n_children; i++) {
        it->children[i]->parent = it;
        it->children[i]->index = i + 1;
    }
    return 1;
}

s2f_code s2f_tree_end(s2f_tree_builder *b, const s2f_ds *ds)
{
    if (!b->n_open)
        return s2f_fail(b->err, S2F_EINTERNAL, "content item ended that never began");
    s2f_item *it = s2f_arena_calloc(b->reader.arena, 1, sizeof *it);
    if (!it || s2f_item_read(&b->reader, it, ds, 0) != 0 || !adopt(b, it, b->open[--b->n_open]))
        return oom(b);
    if (!make_room(b->reader.arena, (void **)&b->pending, &b->cap_pending, b->n_pending,
                   sizeof *b->pending))
        return oom(b);
    b->pending[b->n_pending++] = it;
    b->n_items++;
    return S2F_OK;
}

/* Sets depth and document order on every item without recursion; fails past the depth
 * limit. */
static s2f_code number_items(s2f_tree_builder *b, s2f_item *root, s2f_tree *out)
{
    s2f_item *it = root;
    uint32_t seq = 0;
    out->depth = 0;
    while (it) {
        it->depth = it->parent ? it->parent->depth + 1 : 0;
        it->seq = seq++;
        if (it->depth > b->max_depth) {
            char pos[256];
            s2f_item_position(it, pos, sizeof pos);
            return s2f_fail(b->err, S2F_ELIMIT, "content tree deeper than %u levels at item %s",
                            b->max_depth, pos);
        }
        if (it->depth > out->depth)
            out->depth = it->depth;
        it = (s2f_item *)s2f_item_next(it); /* the builder owns the items it numbers */
    }
    return S2F_OK;
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

static void resolve_references(s2f_tree_builder *b, s2f_item *root)
{
    char pos[256];
    for (size_t i = 0; i < b->reader.n_byref; i++) {
        s2f_item *it = b->reader.byref[i];
        it->ref_target = resolve_path(root, it->ref_path, it->ref_path_len);
        if (!it->ref_target && it->ref_path_len) {
            s2f_item_position(it, pos, sizeof pos);
            s2f_warn(b->w, "content item %s: by-reference relationship points at no content item",
                     pos);
        }
    }
}

static void report_notes(s2f_tree_builder *b)
{
    char pos[256];
    for (size_t i = 0; i < b->reader.n_notes; i++) {
        s2f_item_position(b->reader.notes[i].item, pos, sizeof pos);
        s2f_warn(b->w, "content item %s: %s", pos, b->reader.notes[i].what);
    }
    if (b->reader.dropped_notes)
        s2f_warn(b->w, "%zu more problems in content items not listed", b->reader.dropped_notes);
    if (b->reader.text.replaced)
        s2f_warn(b->w, "%u undecodable character(s) replaced by U+FFFD", b->reader.text.replaced);
}

s2f_code s2f_tree_finish(s2f_tree_builder *b, const s2f_ds *top, s2f_tree *out)
{
    memset(out, 0, sizeof *out);
    if (!s2f_ds_find(top, T_ValueType))
        return s2f_fail(b->err, S2F_EUNSUPPORTED,
                        "not a Structured Report: no Value Type (0040,A040) at the top level");
    if (b->n_open)
        return s2f_fail(b->err, S2F_EINTERNAL, "content items began that never ended");
    s2f_item *root = s2f_arena_calloc(b->reader.arena, 1, sizeof *root);
    if (!root || s2f_item_read(&b->reader, root, top, 1) != 0 || !adopt(b, root, 0))
        return oom(b);
    root->index = 1;
    if (root->vt != S2F_VT_CONTAINER)
        return s2f_fail(b->err, S2F_EUNSUPPORTED,
                        "not a Structured Report: root content item is %s, not CONTAINER",
                        root->vt_text ? root->vt_text : "without a Value Type");
    s2f_code rc = number_items(b, root, out);
    if (rc)
        return rc;
    resolve_references(b, root);
    report_notes(b);
    out->root = root;
    out->n_items = b->n_items + 1;
    out->code_memo_work = s2f_item_memo_work(&b->reader);
    return S2F_OK;
}
