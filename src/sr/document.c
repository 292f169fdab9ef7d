/*
 * document.c - the public entry points that read an SR into an s2f_doc: format
 * detection, reading, character set set-up, header and content tree (stages 1 and 2).
 */
#include "sr/document.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sr/tags.h"
#include "util/sized.h"

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

/* Content items go to the tree builder while the input is read (streaming). */
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

/* Part 10 and (issue 9 defect 2) DICOM JSON: both readers stream the content items. */
static s2f_code build_streamed(s2f_doc *doc, int json, const s2f_options *opt, s2f_error *err)
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
        rc = (json ? s2f_dicomjson_read : s2f_part10_read)(doc->data, doc->len, &ctx,
                                                           &doc->ds, err);
    s2f_arena_free(scratch);
    doc->transfer_syntax = ctx.transfer_syntax;
    if (!rc && !doc->cs) /* JSON is UTF-8 whatever (0008,0005) says (as before) */
        rc = open_charset(doc, json ? NULL : s2f_ds_find(doc->ds, T_SpecificCharacterSet), err);
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
    return build_streamed(doc, s2f_dicomjson_looks_like(doc->data, doc->len), opt, err);
}

/* An empty document whose arena is sized for a report from `len` input bytes, plus
 * `input` bytes for the input itself when it is to be read into the arena: the input
 * then shares the arena's first (huge-page) chunk and does not count against the
 * budget. */
static s2f_doc *doc_alloc(size_t len, size_t input, const s2f_options *opt, s2f_error *err)
{
    s2f_doc *doc = calloc(1, sizeof *doc);
    if (doc)
        doc->arena = s2f_arena_new(memory_budget(opt, len) + input);
    if (!doc || !doc->arena) {
        free(doc);
        s2f_fail(err, S2F_ENOMEM, "out of memory");
        return NULL;
    }
    /* about what a report needs: the content tree is ~2x a Part 10 file (its data sets
     * are streamed and dropped), a JSON data set read whole about as much */
    s2f_arena_expect(doc->arena, len * 2 + input);
    doc->warnings.arena = doc->arena;
    return doc;
}

/* Reads the document over data[0..len) into doc; frees doc on failure. */
static s2f_doc *doc_build(s2f_doc *doc, const uint8_t *data, size_t len, const s2f_options *opt,
                          s2f_error *err)
{
    doc->data = data;
    doc->len = len;
    if (build(doc, opt, err)) {
        s2f_doc_free(doc);
        return NULL;
    }
    return doc;
}

/* A new document over data; it takes ownership of `owned` (malloc'd) when given. */
static s2f_doc *doc_new(const uint8_t *data, size_t len, uint8_t *owned, const s2f_options *opt,
                        s2f_error *err)
{
    s2f_doc *doc = doc_alloc(len, 0, opt, err);
    if (!doc) {
        free(owned);
        return NULL;
    }
    doc->input = owned;
    return doc_build(doc, data, len, opt, err);
}

s2f_doc *s2f_doc_read(const void *data, size_t len, const s2f_options *options, s2f_error *err)
{
    s2f_options opt; /* as far as the caller's struct reaches (issue 16) */
    s2f_sized_read(&opt, sizeof opt, options, S2F_V01_OPTIONS_SIZE);
    if (!data && len)
        return s2f_fail(err, S2F_EUSAGE, "no input buffer"), NULL;
    return doc_new(data, len, NULL, &opt, err);
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

/* Reads up to `size` bytes of fd into buf with read(2), through short reads and EINTR;
 * stops early at end of file. Returns the bytes read, or (size_t)-1 with errno set. */
static size_t read_fully(int fd, uint8_t *buf, size_t size)
{
    size_t n = 0;
    while (n < size) {
        size_t want = size - n > ((size_t)1 << 30) ? (size_t)1 << 30 : size - n;
        ssize_t got = read(fd, buf + n, want);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return (size_t)-1;
        if (got == 0)
            break;
        n += (size_t)got;
    }
    return n;
}

/* A regular file of `size` bytes, read with read(2) into the new document's arena: fresh
 * memory there is one huge-page fault per 2 MiB, where a mapping of the file costs a
 * fault per 4 KiB page on the first touch. */
static s2f_doc *read_regular(FILE *f, size_t size, const s2f_options *opt, s2f_error *err)
{
    s2f_doc *doc = doc_alloc(size, size, opt, err);
    if (!doc)
        return NULL;
    uint8_t *buf = s2f_arena_alloc(doc->arena, size);
    size_t len = buf ? read_fully(fileno(f), buf, size) : 0;
    if (!buf || len == (size_t)-1) {
        if (!buf)
            s2f_fail(err, S2F_ENOMEM, "out of memory while reading the input");
        else
            s2f_fail(err, S2F_EIO, "read error: %s", strerror(errno));
        s2f_doc_free(doc);
        return NULL;
    }
    return doc_build(doc, buf, len, opt, err);
}

s2f_doc *s2f_doc_read_file(const char *path, const s2f_options *options, s2f_error *err)
{
    s2f_options full; /* as far as the caller's struct reaches (issue 16) */
    s2f_sized_read(&full, sizeof full, options, S2F_V01_OPTIONS_SIZE);
    const s2f_options *opt = &full;
    if (!path)
        return s2f_fail(err, S2F_EUSAGE, "no input path"), NULL;
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
    if (!rc && regular && size) {
        s2f_doc *doc = read_regular(f, size, opt, err);
        if (!is_stdin)
            fclose(f);
        return doc;
    }
    uint8_t *buf = NULL;
    size_t len = size;
    if (!rc)
        buf = slurp(f, size, &len, err);
    if (!is_stdin)
        fclose(f);
    if (rc || !buf)
        return NULL;
    return doc_new(buf, len, buf, opt, err);
}

const s2f_warning *s2f_doc_warnings(const s2f_doc *doc, size_t *count)
{
    *count = doc->warnings.n;
    return doc->warnings.list;
}

size_t s2f_doc_item_count(const s2f_doc *doc) { return doc->tree.n_items; }
