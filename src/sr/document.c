/*
 * document.c - the public entry points that read an SR into an s2f_doc: format
 * detection, reading, character set set-up, header and content tree (stages 1 and 2).
 */
#define _DEFAULT_SOURCE 1 /* MAP_POPULATE */
#include "document.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "tags.h"

#define DEFAULT_DEPTH 128u
#define DEPTH_CEILING 1024u

static size_t memory_budget(const s2f_options *opt, size_t len)
{
    if (opt && opt->max_memory)
        return opt->max_memory;
    return len * 64 + ((size_t)64 << 20);
}

static unsigned depth_limit(const s2f_options *opt)
{
    unsigned d = opt && opt->max_depth ? opt->max_depth : DEFAULT_DEPTH;
    return d > DEPTH_CEILING ? DEPTH_CEILING : d;
}

void s2f_doc_free(s2f_doc *doc)
{
    if (!doc)
        return;
    s2f_charset_close(doc->cs);
    free(doc->input);
    if (doc->mapped)
        munmap(doc->mapped, doc->mapped_len);
    s2f_arena_free(doc->arena);
    free(doc);
}

static s2f_read_ctx read_ctx(s2f_doc *doc, const s2f_options *opt)
{
    s2f_read_ctx ctx = {
        .arena = doc->arena,
        .warnings = &doc->warnings,
        /* each tree level is two data set levels (item + Content Sequence), plus codes */
        .max_depth = 2 * depth_limit(opt) + 8,
        .max_inflated = memory_budget(opt, doc->len) / 2,
        .strict = opt ? opt->strict : 0,
    };
    return ctx;
}

static s2f_code open_charset(s2f_doc *doc, const s2f_elem *spec, s2f_error *err)
{
    doc->cs = doc->ds && doc->ds->utf8
                  ? s2f_charset_open_utf8(doc->arena)
                  : s2f_charset_open(spec ? spec->val : NULL, spec ? spec->len : 0, doc->arena,
                                     &doc->warnings);
    if (!doc->cs)
        return s2f_fail(err, S2F_ELIMIT, "out of memory while setting up the character set");
    return S2F_OK;
}

static s2f_code read_header(s2f_doc *doc, s2f_error *err)
{
    s2f_text t = {.cs = doc->cs, .arena = doc->arena};
    return s2f_header_read(doc->ds, &t, &doc->header, err);
}

/* DICOM JSON: the data set is read whole, then the tree is built from it. */
static s2f_code build_from_json(s2f_doc *doc, const s2f_options *opt, s2f_error *err)
{
    s2f_read_ctx ctx = read_ctx(doc, opt);
    s2f_code rc = s2f_dicomjson_read(doc->data, doc->len, &ctx, &doc->ds, err);
    doc->transfer_syntax = ctx.transfer_syntax;
    if (!rc)
        rc = open_charset(doc, NULL, err);
    if (!rc)
        rc = read_header(doc, err);
    if (!rc)
        rc = s2f_tree_build(doc->ds, doc->cs, doc->arena, &doc->warnings, depth_limit(opt),
                            &doc->tree, err);
    return rc;
}

/* Part 10: content items go to the tree builder while the file is read (streaming). */
typedef struct streaming {
    s2f_doc *doc;
    s2f_tree_builder *tree;
    s2f_read_ctx *ctx;
    s2f_error *err;
} streaming;

static s2f_code stream_begin(void *user)
{
    return s2f_tree_begin(((streaming *)user)->tree);
}

static s2f_code stream_end(void *user, const s2f_ds *item)
{
    streaming *s = user;
    if (!s->doc->cs) { /* first item: the top-level (0008,0005) has been read by now */
        s2f_code rc = open_charset(s->doc, s->ctx->has_top_charset ? &s->ctx->top_charset : NULL,
                                   s->err);
        if (rc)
            return rc;
        s2f_tree_set_charset(s->tree, s->doc->cs);
    }
    return s2f_tree_end(s->tree, item);
}

static s2f_code build_from_part10(s2f_doc *doc, const s2f_options *opt, s2f_error *err)
{
    s2f_read_ctx ctx = read_ctx(doc, opt);
    streaming st = {doc, s2f_tree_builder_new(doc->arena, &doc->warnings, depth_limit(opt), err),
                    &ctx, err};
    s2f_arena *scratch = s2f_arena_new(memory_budget(opt, doc->len) / 2);
    s2f_content_sink sink = {&st, stream_begin, stream_end, scratch};
    s2f_code rc = S2F_OK;
    if (!st.tree || !scratch)
        rc = s2f_fail(err, S2F_ENOMEM, "out of memory");
    ctx.content = &sink;
    if (!rc)
        rc = s2f_part10_read(doc->data, doc->len, &ctx, &doc->ds, err);
    s2f_arena_free(scratch);
    doc->transfer_syntax = ctx.transfer_syntax;
    if (!rc && !doc->cs)
        rc = open_charset(doc, s2f_ds_find(doc->ds, T_SpecificCharacterSet), err);
    if (!rc)
        rc = read_header(doc, err);
    if (!rc) {
        s2f_tree_set_charset(st.tree, doc->cs);
        rc = s2f_tree_finish(st.tree, doc->ds, &doc->tree);
    }
    return rc;
}

static s2f_code build(s2f_doc *doc, const s2f_options *opt, s2f_error *err)
{
    return s2f_looks_like_json(doc->data, doc->len) ? build_from_json(doc, opt, err)
                                                    : build_from_part10(doc, opt, err);
}

/* A new document over data; it takes ownership of `owned` (malloc'd) or `mapped`. */
static s2f_doc *doc_new(const uint8_t *data, size_t len, uint8_t *owned, void *mapped,
                        const s2f_options *opt, s2f_error *err)
{
    s2f_doc *doc = calloc(1, sizeof *doc);
    if (doc)
        doc->arena = s2f_arena_new(memory_budget(opt, len));
    if (!doc || !doc->arena) {
        free(owned);
        if (mapped)
            munmap(mapped, len);
        free(doc);
        s2f_fail(err, S2F_ENOMEM, "out of memory");
        return NULL;
    }
    /* about what a report needs: the content tree is ~2x a Part 10 file (its data sets
     * are streamed and dropped), a JSON data set read whole about as much */
    s2f_arena_expect(doc->arena, len * 2);
    doc->input = owned;
    doc->mapped = mapped;
    doc->mapped_len = len;
    doc->data = data;
    doc->len = len;
    doc->warnings.arena = doc->arena;
    if (build(doc, opt, err)) {
        s2f_doc_free(doc);
        return NULL;
    }
    return doc;
}

s2f_doc *s2f_doc_read(const void *data, size_t len, const s2f_options *opt, s2f_error *err)
{
    if (!data && len)
        return s2f_fail(err, S2F_EUSAGE, "no input buffer"), NULL;
    return doc_new(data, len, NULL, NULL, opt, err);
}

/* Reads the whole stream into a malloc'd buffer, refusing more than S2F_MAX_INPUT bytes. */
static uint8_t *slurp(FILE *f, size_t hint, size_t *len, s2f_error *err)
{
    size_t cap = hint ? hint + 1 : 65536, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap >= S2F_MAX_INPUT) {
            free(buf);
            s2f_fail(err, S2F_ELIMIT, "input is larger than %zu bytes", S2F_MAX_INPUT);
            return NULL;
        }
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb)
            free(buf);
        buf = nb;
        cap *= 2;
    }
    if (!buf) {
        s2f_fail(err, S2F_ENOMEM, "out of memory while reading the input");
        return NULL;
    }
    if (ferror(f)) {
        s2f_fail(err, S2F_EIO, "read error: %s", strerror(errno));
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Maps a regular file read-only and pre-faulted: no copy, one system call for all pages. */
static void *map_file(FILE *f, size_t len)
{
    void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fileno(f), 0);
    return p == MAP_FAILED ? NULL : p;
}

s2f_doc *s2f_doc_read_file(const char *path, const s2f_options *opt, s2f_error *err)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return s2f_fail(err, S2F_EIO, "cannot open: %s", strerror(errno)), NULL;
    struct stat st;
    size_t size = 0;
    int regular = 0;
    s2f_code rc = S2F_OK;
    if (fstat(fileno(f), &st) == 0) {
        if (S_ISDIR(st.st_mode))
            rc = s2f_fail(err, S2F_EIO, "is a directory");
        else if (S_ISREG(st.st_mode) && (unsigned long long)st.st_size > S2F_MAX_INPUT)
            rc = s2f_fail(err, S2F_ELIMIT, "input is larger than %zu bytes", S2F_MAX_INPUT);
        regular = S_ISREG(st.st_mode);
        size = regular ? (size_t)st.st_size : 0;
    }
    void *mapped = !rc && regular && size ? map_file(f, size) : NULL;
    uint8_t *buf = NULL;
    size_t len = size;
    if (!rc && !mapped)
        buf = slurp(f, size, &len, err);
    if (!is_stdin)
        fclose(f);
    if (rc || (!mapped && !buf))
        return NULL;
    return doc_new(mapped ? mapped : buf, len, buf, mapped, opt, err);
}

const s2f_warning *s2f_doc_warnings(const s2f_doc *doc, size_t *count)
{
    *count = doc->warnings.n;
    return doc->warnings.list;
}

size_t s2f_doc_item_count(const s2f_doc *doc) { return doc->tree.n_items; }
