/*
 * dicomjson.c - the DICOM JSON reader (PS3.18 Annex F, MAPPING rule M1).
 *
 * The text is parsed with json-c into a DOM, which is then walked to build the same
 * s2f_ds a Part 10 file gives (see dataset.h): elements sorted by tag, strings joined with
 * '\' as UTF-8, PN rebuilt as "Alphabetic=Ideographic=Phonetic", DS/IS numbers kept as the
 * text written in the JSON, binary numbers encoded little-endian, InlineBinary decoded.
 * Everything the data set holds is copied into the arena; the DOM is freed before return.
 *
 * json-c keeps the text of numbers with a fraction or exponent, but integers are stored as
 * int64/uint64: one outside that range is clamped and "-0" becomes "0". A pre-scan finds
 * such tokens; only when there are any, the text is copied with each of them turned into a
 * string that starts with the byte NUM_MARK, so the exact digits survive the parse. (In such
 * a document, a string value that is itself NUM_MARK + a lossy integer reads as a number.)
 *
 * Known limit: a JSON object with the same key twice is collapsed by json-c (the last value
 * wins) before this code sees it. Keys that name the same tag in different spellings
 * ("0008103e" / "0008103E") are detected: the first is kept, with a warning.
 */
#include "dataset.h"
#include "../util/escape.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/* First byte of a string made from a number token the pre-scan quoted. */
#define NUM_MARK '\x01'
#define MAX_CHUNK ((size_t)1 << 30) /* json-c takes an int length */

/* ---- JSON paths for messages: $["0040A730"].Value[2]["0040A043"] ---------------------- */

enum { P_TOP_ITEM, P_MEMBER, P_VALUE, P_FIELD };

typedef struct path {
    const struct path *up;
    int kind;
    uint32_t tag;     /* P_MEMBER */
    size_t index;     /* P_VALUE */
    const char *name; /* P_FIELD */
} path;

#define PATH_TEXT_MAX 240

/* Renders the path right to left so that, when it is too long, the leaf end is kept. */
static void path_render(const path *p, char *out, size_t cap)
{
    char buf[PATH_TEXT_MAX + 64];
    size_t start = sizeof buf - 1;
    buf[start] = 0;
    for (; p; p = p->up) {
        char piece[48];
        int n = 0;
        switch (p->kind) {
        case P_TOP_ITEM: n = snprintf(piece, sizeof piece, "[0]"); break;
        case P_MEMBER: n = snprintf(piece, sizeof piece, "[\"%08X\"]", (unsigned)p->tag); break;
        case P_VALUE: n = snprintf(piece, sizeof piece, ".Value[%zu]", p->index); break;
        default: n = snprintf(piece, sizeof piece, ".%s", p->name); break;
        }
        if (n < 0 || (size_t)n >= sizeof piece || (size_t)n + 4 > start ||
            sizeof buf - 1 - start + (size_t)n > PATH_TEXT_MAX) {
            memcpy(buf + start - 4, "$...", 4);
            start -= 4;
            snprintf(out, cap, "%s", buf + start);
            return;
        }
        start -= (size_t)n;
        memcpy(buf + start, piece, (size_t)n);
    }
    buf[--start] = '$';
    snprintf(out, cap, "%s", buf + start);
}

/* ---- reader state and message helpers ---------------------------------------------------- */

typedef struct reader {
    s2f_read_ctx *ctx;
    s2f_error *err;
    int marked_numbers; /* the pre-scan quoted lossy integers (NUM_MARK strings exist) */
} reader;

/* Input text echoed in a message: at most cap - 1 bytes, escaped the one way every message
 * is (src/util/escape.h, issue 9 defect 8), so that messages stay one line of valid UTF-8. */
static const char *printable(const char *s, size_t n, char *buf, size_t cap)
{
    return s2f_escape_to_buf(s, n, 0, buf, cap);
}

static s2f_code fail_at(reader *r, const path *p, s2f_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static s2f_code fail_at(reader *r, const path *p, s2f_code code, const char *fmt, ...)
{
    char where[PATH_TEXT_MAX + 8], what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    path_render(p, where, sizeof where);
    return s2f_fail(r->err, code, "at %s: %s", where, what);
}

static void warn_at(reader *r, const path *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn_at(reader *r, const path *p, const char *fmt, ...)
{
    char where[PATH_TEXT_MAX + 8], what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    path_render(p, where, sizeof where);
    s2f_warn(r->ctx->warnings, "at %s: %s", where, what);
}

/* A lenient case (M1): a warning normally, an error with ctx->strict. */
static s2f_code lenient_at(reader *r, const path *p, const char *what)
{
    if (r->ctx->strict)
        return fail_at(r, p, S2F_EFORMAT, "%s (refused in strict mode)", what);
    warn_at(r, p, "%s (M1)", what);
    return S2F_OK;
}

static s2f_code out_of_memory(reader *r)
{
    if (s2f_arena_over_limit(r->ctx->arena))
        return s2f_fail(r->err, S2F_ELIMIT, "memory limit exceeded while reading DICOM JSON");
    return s2f_fail(r->err, S2F_ENOMEM, "out of memory while reading DICOM JSON");
}

static const char *json_kind(const json_object *o)
{
    switch (json_object_get_type(o)) {
    case json_type_null: return "null";
    case json_type_boolean: return "true/false";
    case json_type_double:
    case json_type_int: return "a number";
    case json_type_object: return "an object";
    case json_type_array: return "an array";
    case json_type_string: return "a string";
    }
    return "something else";
}

static void vr_name(uint16_t vr, char out[3])
{
    out[0] = (char)(vr >> 8);
    out[1] = (char)(vr & 0xFF);
    out[2] = 0;
}

/* ---- parsing the text ---------------------------------------------------------------------- */

static int is_blank(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static size_t bom_length(const uint8_t *d, size_t n)
{
    return n >= 3 && d[0] == 0xEF && d[1] == 0xBB && d[2] == 0xBF ? 3 : 0;
}

int s2f_looks_like_json(const uint8_t *data, size_t len)
{
    if (!data)
        return 0;
    size_t i = bom_length(data, len);
    while (i < len && is_blank(data[i]))
        i++;
    return i < len && (data[i] == '{' || data[i] == '[');
}

/* 1 when json-c would not keep integer token t[0..n) exactly: "-0", or outside int64 (when
 * negative) / uint64 (otherwise). Only tokens of JSON integer grammar count. */
static int integer_token_is_lossy(const char *t, size_t n)
{
    int neg = n > 0 && t[0] == '-';
    const char *d = t + neg;
    size_t nd = n - (size_t)neg;
    if (nd == 0 || (nd > 1 && d[0] == '0'))
        return 0;
    for (size_t i = 0; i < nd; i++)
        if (d[i] < '0' || d[i] > '9')
            return 0;
    if (neg && nd == 1 && d[0] == '0')
        return 1;
    const char *lim = neg ? "9223372036854775808" : "18446744073709551615";
    size_t nl = strlen(lim);
    return nd > nl || (nd == nl && memcmp(d, lim, nl) > 0);
}

static int is_number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/*
 * The pre-scan. Copies in[0..n) to out (when out is not NULL), turning every lossy integer
 * token outside strings into "<NUM_MARK>token". Returns the output length. When orig is not
 * NULL, stops at output offset `stop` and stores the matching input offset in *orig (used
 * to turn json-c's offsets in the copy back into offsets in the input).
 */
typedef struct scan_stats {
    size_t objects, arrays, separators; /* '{', '[', and ',' or ':' outside strings */
} scan_stats;

static void count_structure(char c, scan_stats *st)
{
    st->objects += c == '{';
    st->arrays += c == '[';
    st->separators += c == ',' || c == ':';
}

static size_t quote_lossy_integers(const char *in, size_t n, char *out, size_t stop, size_t *orig,
                                   scan_stats *st)
{
    size_t o = 0;
    char quote = 0;
    for (size_t i = 0; i < n;) {
        if (orig && o >= stop) {
            *orig = i;
            return o;
        }
        char c = in[i];
        size_t tok = 1;
        int lossy = 0;
        if (quote) {
            if (c == '\\' && i + 1 < n)
                tok = 2;
            else if (c == quote)
                quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            while (i + tok < n && is_number_char(in[i + tok]))
                tok++;
            lossy = integer_token_is_lossy(in + i, tok);
        } else if (st) {
            count_structure(c, st);
        }
        if (lossy && out) {
            out[o] = '"';
            out[o + 1] = NUM_MARK;
            memcpy(out + o + 2, in + i, tok);
            out[o + 2 + tok] = '"';
        } else if (out) {
            memcpy(out + o, in + i, tok);
        }
        o += tok + (lossy ? 3 : 0);
        i += tok;
    }
    if (orig)
        *orig = n;
    return o;
}

typedef struct json_text {
    const char *s;   /* what json-c parses: the input, or the pre-scanned copy */
    size_t n;
    const char *in;  /* the input (after a BOM) */
    size_t in_n;
    size_t base;     /* bytes skipped before `in` (the BOM) */
    char *copy;      /* malloc'd pre-scanned copy, or NULL */
} json_text;

static size_t input_offset(const json_text *t, size_t off)
{
    size_t orig = off;
    if (t->copy)
        quote_lossy_integers(t->in, t->in_n, NULL, off, &orig, NULL);
    return t->base + orig;
}

/*
 * The json-c DOM lives outside the arena and costs far more than the text for some shapes
 * (an empty object "{}" takes about 800 bytes: json-c gives each object a 16-slot hash
 * table). Its size is estimated from the pre-scan counts and held to the library's default
 * budget formula, 64 x input + 64 MiB, so a small hostile file cannot take gigabytes.
 * Real DICOM JSON needs about 30-45 x its size. (The caller's own max_memory is not known
 * here: s2f_read_ctx does not carry it.)
 */
#define DOM_OBJECT_COST 800
#define DOM_ARRAY_COST 320
#define DOM_VALUE_COST 80

static s2f_code check_dom_size(const scan_stats *st, size_t len, s2f_error *err)
{
    double need = (double)st->objects * DOM_OBJECT_COST + (double)st->arrays * DOM_ARRAY_COST +
                  (double)st->separators * DOM_VALUE_COST + (double)len;
    double allowed = 64.0 * (double)len + 64.0 * 1024 * 1024;
    if (need <= allowed)
        return S2F_OK;
    return s2f_fail(err, S2F_ELIMIT, "JSON too dense to parse within the memory budget: "
                    "%zu objects and %zu arrays in %zu bytes would need about %.0f MiB",
                    st->objects, st->arrays, len, need / (1024.0 * 1024.0));
}

static s2f_code prepare_text(const uint8_t *data, size_t len, json_text *t, s2f_error *err)
{
    memset(t, 0, sizeof *t);
    t->base = bom_length(data, len);
    t->in = (const char *)data + t->base;
    t->in_n = len - t->base;
    t->s = t->in;
    t->n = t->in_n;
    scan_stats st = {0, 0, 0};
    size_t need = quote_lossy_integers(t->in, t->in_n, NULL, 0, NULL, &st);
    s2f_code rc = check_dom_size(&st, len, err);
    if (rc != S2F_OK || need == t->in_n)
        return rc;
    t->copy = malloc(need);
    if (!t->copy)
        return s2f_fail(err, S2F_ENOMEM, "out of memory while reading DICOM JSON");
    quote_lossy_integers(t->in, t->in_n, t->copy, 0, NULL, NULL);
    t->s = t->copy;
    t->n = need;
    return S2F_OK;
}

static s2f_code parse_failure(json_tokener *tok, const json_text *t, size_t at, int depth,
                              s2f_error *err)
{
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t off = input_offset(t, at);
    if (e == json_tokener_error_depth)
        return s2f_fail(err, S2F_ELIMIT, "JSON nested deeper than %d levels at byte %zu", depth,
                        off);
    return s2f_fail(err, S2F_EFORMAT, "invalid JSON: %s at byte %zu", json_tokener_error_desc(e),
                    off);
}

/* Feeds the text to json-c in chunks, then the final NUL json-c wants at the end of input. */
static s2f_code parse_text(json_tokener *tok, const json_text *t, int depth, json_object **root,
                           s2f_error *err)
{
    size_t pos = 0;
    json_object *o = NULL;
    while (!o) {
        size_t chunk = t->n - pos < MAX_CHUNK ? t->n - pos : MAX_CHUNK;
        int at_end = pos == t->n;
        o = json_tokener_parse_ex(tok, at_end ? "" : t->s + pos, at_end ? 1 : (int)chunk);
        enum json_tokener_error e = json_tokener_get_error(tok);
        if (e != json_tokener_success && e != json_tokener_continue)
            return parse_failure(tok, t, pos + json_tokener_get_parse_end(tok), depth, err);
        if (!o && at_end)
            return s2f_fail(err, S2F_EFORMAT, "invalid JSON: unexpected end of data at byte %zu",
                            input_offset(t, t->n));
        if (o)
            pos += at_end ? 0 : json_tokener_get_parse_end(tok);
        else
            pos += chunk;
    }
    *root = o;
    while (pos < t->n && is_blank((uint8_t)t->s[pos]))
        pos++;
    if (pos < t->n) {
        json_object_put(o);
        *root = NULL;
        return s2f_fail(err, S2F_EFORMAT, "invalid JSON: data after the JSON value at byte %zu",
                        input_offset(t, pos));
    }
    return S2F_OK;
}

static int json_depth_for(unsigned max_depth)
{
    /* Each sequence level is 4 JSON levels: data set, element, Value, item. */
    if (max_depth > (unsigned)(INT_MAX - 8) / 4)
        return INT_MAX;
    return (int)(4 * max_depth + 8);
}

/* ---- values ------------------------------------------------------------------------------- */

/* The entries of "Value": an array, or (lenient) one bare value. */
typedef struct value_list {
    json_object *array;
    json_object *single;
    size_t n;
} value_list;

static json_object *value_at(const value_list *v, size_t i)
{
    return v->array ? json_object_array_get_idx(v->array, i) : v->single;
}

static s2f_code value_list_of(reader *r, json_object *value, const path *p, value_list *out)
{
    memset(out, 0, sizeof *out);
    if (json_object_is_type(value, json_type_array)) {
        out->array = value;
        out->n = json_object_array_length(value);
        return S2F_OK;
    }
    char what[96];
    snprintf(what, sizeof what, "\"Value\" is %s, not an array: read as a one-element array",
             json_kind(value));
    out->single = value;
    out->n = 1;
    return lenient_at(r, p, what);
}

/* Text of a string, or of a quoted lossy integer (NUM_MARK removed, *was_number set). */
static const char *string_text(const reader *r, json_object *v, size_t *n, int *was_number)
{
    const char *s = json_object_get_string(v);
    *n = (size_t)json_object_get_string_len(v);
    *was_number = r->marked_numbers && *n > 0 && s[0] == NUM_MARK &&
                  integer_token_is_lossy(s + 1, *n - 1);
    if (*was_number) {
        s++;
        (*n)--;
    }
    return s;
}

/* One value of a string VR: its bytes, or an error naming what was wrong. */
static s2f_code string_value(reader *r, uint16_t vr, json_object *v, const path *p,
                             const char **s, size_t *n)
{
    int numeric_vr = vr == S2F_VR('D', 'S') || vr == S2F_VR('I', 'S'), was_number;
    char vrs[3];
    *s = "";
    *n = 0;
    switch (json_object_get_type(v)) {
    case json_type_null:
        return S2F_OK;
    case json_type_string:
        *s = string_text(r, v, n, &was_number);
        if (was_number && !numeric_vr) {
            vr_name(vr, vrs);
            return fail_at(r, p, S2F_EFORMAT, "expected a string for VR %s, got a number", vrs);
        }
        return S2F_OK;
    case json_type_int:
    case json_type_double:
        if (numeric_vr) {
            *s = json_object_get_string(v); /* the number's text as written (checked by tests) */
            *n = strlen(*s);
            return S2F_OK;
        }
        break;
    default:
        break;
    }
    vr_name(vr, vrs);
    return fail_at(r, p, S2F_EFORMAT, "expected a string for VR %s, got %s", vrs, json_kind(v));
}

static s2f_code check_len(reader *r, const path *p, size_t total)
{
    if (total > UINT32_MAX)
        return fail_at(r, p, S2F_ELIMIT, "value longer than 4 GiB");
    return S2F_OK;
}

/* Appends src to the joined value (buf == NULL: only counts). */
static void put_bytes(uint8_t *buf, size_t *at, const void *src, size_t n)
{
    if (buf && n)
        memcpy(buf + *at, src, n);
    *at += n;
}

/* PN value object -> "Alphabetic=Ideographic=Phonetic", trailing empty groups dropped. */
static s2f_code pn_value(reader *r, json_object *v, const path *p, uint8_t *buf, size_t *at)
{
    static const char *const groups[3] = {"Alphabetic", "Ideographic", "Phonetic"};
    const char *s[3] = {"", "", ""};
    size_t n[3] = {0, 0, 0};
    char text[41];
    json_object_object_foreach(v, key, g) {
        int k = 0;
        while (k < 3 && strcmp(key, groups[k]) != 0)
            k++;
        if (k == 3) {
            if (!buf)
                warn_at(r, p, "unknown person name group \"%s\" ignored",
                        printable(key, strlen(key), text, sizeof text));
            continue;
        }
        int was_number;
        if (json_object_is_type(g, json_type_null))
            continue;
        if (!json_object_is_type(g, json_type_string))
            return fail_at(r, p, S2F_EFORMAT, "\"%s\" is %s, expected a string", key,
                           json_kind(g));
        s[k] = string_text(r, g, &n[k], &was_number);
    }
    int last = 2;
    while (last >= 0 && n[last] == 0)
        last--;
    for (int k = 0; k <= last; k++) {
        if (k)
            put_bytes(buf, at, "=", 1);
        put_bytes(buf, at, s[k], n[k]);
    }
    return S2F_OK;
}

static s2f_code pn_entry(reader *r, json_object *v, const path *p, uint8_t *buf, size_t *at)
{
    if (json_object_is_type(v, json_type_object))
        return pn_value(r, v, p, buf, at);
    if (json_object_is_type(v, json_type_null))
        return S2F_OK;
    if (!json_object_is_type(v, json_type_string))
        return fail_at(r, p, S2F_EFORMAT, "expected a person name object, got %s",
                       json_kind(v));
    s2f_code rc = buf ? S2F_OK
                      : lenient_at(r, p, "person name is a bare string, not an object: "
                                         "read as the Alphabetic group");
    size_t n;
    int was_number;
    const char *s = string_text(r, v, &n, &was_number);
    put_bytes(buf, at, s, n);
    return rc;
}

/* LT ST UT UR: one value, a backslash is text. */
static int single_valued(uint16_t vr)
{
    return vr == S2F_VR('L', 'T') || vr == S2F_VR('S', 'T') || vr == S2F_VR('U', 'T') ||
           vr == S2F_VR('U', 'R');
}

/*
 * String VRs (M1): values joined with '\'. Two passes over the values: the first checks
 * them and measures the total (and gives the warnings), the second copies into the arena.
 */
static s2f_code read_strings(reader *r, s2f_elem *e, const value_list *vl, const path *p)
{
    int pn = e->vr == S2F_VR('P', 'N');
    uint8_t *buf = NULL;
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t at = 0;
        for (size_t i = 0; i < vl->n; i++) {
            path vp = {p, P_VALUE, 0, i, NULL};
            json_object *v = value_at(vl, i);
            if (i)
                put_bytes(buf, &at, "\\", 1);
            s2f_code rc;
            if (pn) {
                rc = pn_entry(r, v, &vp, buf, &at);
            } else {
                const char *s;
                size_t n;
                rc = string_value(r, e->vr, v, &vp, &s, &n);
                if (!buf && rc == S2F_OK && !single_valued(e->vr) && memchr(s, '\\', n))
                    warn_at(r, &vp, "value holds a backslash, which DICOM reads as a value "
                            "separator");
                put_bytes(buf, &at, s, n);
            }
            if (rc != S2F_OK)
                return rc;
        }
        if (pass == 0) {
            total = at;
            s2f_code rc = check_len(r, p, total);
            if (rc != S2F_OK || total == 0)
                return rc;
            buf = s2f_arena_alloc(r->ctx->arena, total);
            if (!buf)
                return out_of_memory(r);
        }
    }
    e->val = buf;
    e->len = (uint32_t)total;
    return S2F_OK;
}

/* A JSON number as an integer: sign and magnitude. 0 when it is not an integral number. */
typedef struct integer {
    int neg;
    uint64_t mag;
} integer;

static int integer_from_text(const char *s, size_t n, integer *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    out->neg = buf[0] == '-';
    char *end;
    errno = 0;
    out->mag = strtoull(buf + out->neg, &end, 10);
    return errno == 0 && *end == 0 && end != buf + out->neg;
}

static int integer_of(json_object *v, integer *out)
{
    if (json_object_is_type(v, json_type_int)) {
        int64_t i = json_object_get_int64(v);
        out->neg = i < 0;
        out->mag = i < 0 ? (uint64_t)(-(i + 1)) + 1u : json_object_get_uint64(v);
        return 1;
    }
    if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        if (!isfinite(d) || d < -9223372036854775808.0 || d >= 18446744073709551616.0)
            return 0;
        out->neg = d < 0;
        out->mag = d < 0 ? (uint64_t)(-d) : (uint64_t)d;
        return (out->neg ? -(double)out->mag : (double)out->mag) == d; /* integral */
    }
    return 0;
}

static void put_le(uint8_t *dst, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        dst[i] = (uint8_t)(v >> (8 * i));
}

/* Integer VRs: range-checks the value and writes it little-endian. */
static s2f_code encode_integer(reader *r, uint16_t vr, const integer *x, const path *p,
                               uint8_t *dst)
{
    unsigned size = s2f_vr_fixed_size(vr);
    int is_signed = vr == S2F_VR('S', 'S') || vr == S2F_VR('S', 'L') || vr == S2F_VR('S', 'V');
    unsigned bits = 8 * size;
    uint64_t max_pos = is_signed ? (UINT64_C(1) << (bits - 1)) - 1
                                 : (bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1);
    uint64_t max_neg = is_signed ? UINT64_C(1) << (bits - 1) : 0;
    if ((x->neg && x->mag > max_neg) || (!x->neg && x->mag > max_pos)) {
        char vrs[3];
        vr_name(vr, vrs);
        return fail_at(r, p, S2F_EFORMAT, "number %s%llu is out of range for VR %s",
                       x->neg ? "-" : "", (unsigned long long)x->mag, vrs);
    }
    uint64_t bitsval = x->neg ? (uint64_t)0 - x->mag : x->mag;
    put_le(dst, bitsval, size);
    return S2F_OK;
}

static int double_of(const reader *r, json_object *v, double *d)
{
    if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
        *d = json_object_get_double(v);
        return 1;
    }
    size_t n;
    int was_number;
    char buf[64];
    if (!json_object_is_type(v, json_type_string))
        return 0;
    const char *s = string_text(r, v, &n, &was_number);
    if (!was_number || n >= sizeof buf)
        return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    *d = strtod(buf, NULL);
    return 1;
}

static s2f_code encode_float(reader *r, uint16_t vr, json_object *v, const path *p,
                             uint8_t *dst)
{
    double d;
    if (!double_of(r, v, &d))
        return fail_at(r, p, S2F_EFORMAT, "expected a number for VR %s, got %s",
                       vr == S2F_VR('F', 'L') ? "FL" : "FD", json_kind(v));
    uint64_t bits;
    if (vr == S2F_VR('F', 'L')) {
        if (isfinite(d) && (d > FLT_MAX || d < -FLT_MAX))
            return fail_at(r, p, S2F_EFORMAT, "number %s is out of range for VR FL",
                           json_object_get_string(v));
        float f = (float)d;
        uint32_t b32;
        memcpy(&b32, &f, sizeof b32);
        bits = b32;
    } else {
        memcpy(&bits, &d, sizeof bits);
    }
    put_le(dst, bits, s2f_vr_fixed_size(vr));
    return S2F_OK;
}

static s2f_code encode_number(reader *r, uint16_t vr, json_object *v, const path *p,
                              uint8_t *dst)
{
    if (vr == S2F_VR('F', 'L') || vr == S2F_VR('F', 'D'))
        return encode_float(r, vr, v, p, dst);
    integer x;
    size_t n;
    int was_number = 0;
    char vrs[3];
    vr_name(vr, vrs);
    int ok = integer_of(v, &x);
    if (!ok && json_object_is_type(v, json_type_string)) {
        const char *s = string_text(r, v, &n, &was_number);
        ok = was_number && integer_from_text(s, n, &x);
        if (was_number && !ok)
            return fail_at(r, p, S2F_EFORMAT, "number %.40s is out of range for VR %s", s, vrs);
    }
    if (!ok && (json_object_is_type(v, json_type_double)))
        return fail_at(r, p, S2F_EFORMAT, "number %s is not an integer (VR %s)",
                       json_object_get_string(v), vrs);
    if (!ok)
        return fail_at(r, p, S2F_EFORMAT, "expected a number for VR %s, got %s", vrs,
                       json_kind(v));
    return encode_integer(r, vr, &x, p, dst);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* "GGGGEEEE" -> tag; 0 when the text is not 8 hex digits. */
static int parse_tag(const char *s, size_t n, uint32_t *tag)
{
    uint32_t t = 0;
    if (n != 8)
        return 0;
    for (size_t i = 0; i < 8; i++) {
        int h = hex_value(s[i]);
        if (h < 0)
            return 0;
        t = (t << 4) | (uint32_t)h;
    }
    *tag = t;
    return 1;
}

static s2f_code encode_at(reader *r, json_object *v, const path *p, uint8_t *dst)
{
    uint32_t tag;
    char text[21];
    if (!json_object_is_type(v, json_type_string))
        return fail_at(r, p, S2F_EFORMAT, "expected a \"GGGGEEEE\" string for VR AT, got %s",
                       json_kind(v));
    if (!parse_tag(json_object_get_string(v), (size_t)json_object_get_string_len(v), &tag))
        return fail_at(r, p, S2F_EFORMAT, "AT value \"%s\" is not 8 hex digits",
                       printable(json_object_get_string(v),
                                 (size_t)json_object_get_string_len(v), text, sizeof text));
    put_le(dst, S2F_TAG_GROUP(tag), 2);
    put_le(dst + 2, S2F_TAG_ELEM(tag), 2);
    return S2F_OK;
}

/* US SS UL SL FL FD SV UV AT (M1): each value encoded little-endian with the VR's size. */
static s2f_code read_binary_numbers(reader *r, s2f_elem *e, const value_list *vl,
                                    const path *p)
{
    unsigned size = s2f_vr_fixed_size(e->vr);
    if (vl->n == 0)
        return S2F_OK;
    s2f_code rc = check_len(r, p, vl->n > SIZE_MAX / size ? SIZE_MAX : vl->n * size);
    if (rc != S2F_OK)
        return rc;
    uint8_t *buf = s2f_arena_alloc(r->ctx->arena, vl->n * size);
    if (!buf)
        return out_of_memory(r);
    for (size_t i = 0; i < vl->n && rc == S2F_OK; i++) {
        path vp = {p, P_VALUE, 0, i, NULL};
        json_object *v = value_at(vl, i);
        rc = e->vr == S2F_VR('A', 'T') ? encode_at(r, v, &vp, buf + i * size)
                                       : encode_number(r, e->vr, v, &vp, buf + i * size);
    }
    e->val = buf;
    e->len = (uint32_t)(vl->n * size);
    return rc;
}

/* ---- InlineBinary ---------------------------------------------------------------------------- */

static int base64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes base64 (RFC 4648; blanks skipped, padding optional) into out, which must hold
 * 3 * n / 4 + 3 bytes. Returns the byte count, or -1 - (index of the bad character). */
static long long base64_decode(const char *s, size_t n, uint8_t *out)
{
    size_t o = 0, quad = 0, pad = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (is_blank((uint8_t)c))
            continue;
        if (c == '=') {
            if (quad < 2 || ++pad > 2)
                return -1 - (long long)i;
            continue;
        }
        int v = base64_value(c);
        if (v < 0 || pad)
            return -1 - (long long)i;
        acc = (acc << 6) | (uint32_t)v;
        if (++quad == 4) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            quad = 0;
            acc = 0;
        }
    }
    if (quad == 1 || (pad && quad + pad != 4))
        return -1 - (long long)n;
    if (quad == 2) {
        out[o++] = (uint8_t)(acc >> 4);
    } else if (quad == 3) {
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    return (long long)o;
}

static int vr_takes_binary(uint16_t vr)
{
    switch (vr) {
    case S2F_VR('O', 'B'): case S2F_VR('O', 'D'): case S2F_VR('O', 'F'):
    case S2F_VR('O', 'L'): case S2F_VR('O', 'V'): case S2F_VR('O', 'W'):
    case S2F_VR('U', 'N'):
        return 1;
    default:
        return 0;
    }
}

static s2f_code read_inline_binary(reader *r, s2f_elem *e, json_object *v, const path *p)
{
    path fp = {p, P_FIELD, 0, 0, "InlineBinary"};
    if (!json_object_is_type(v, json_type_string))
        return fail_at(r, &fp, S2F_EFORMAT, "expected a base64 string, got %s", json_kind(v));
    size_t n = (size_t)json_object_get_string_len(v);
    if (n == 0)
        return S2F_OK;
    uint8_t *buf = s2f_arena_alloc(r->ctx->arena, n / 4 * 3 + 3);
    if (!buf)
        return out_of_memory(r);
    long long got = base64_decode(json_object_get_string(v), n, buf);
    if (got < 0)
        return fail_at(r, &fp, S2F_EFORMAT, "not valid base64 at character %lld", -got - 1);
    s2f_code rc = check_len(r, p, (size_t)got);
    if (rc != S2F_OK)
        return rc;
    e->val = got ? buf : NULL;
    e->len = (uint32_t)got;
    return S2F_OK;
}

/* ---- data sets ------------------------------------------------------------------------------- */

static s2f_code read_dataset(reader *r, json_object *obj, const s2f_ds *parent, unsigned depth,
                             const path *p, s2f_ds **out);

/* SQ (M1): "Value" entries are items, each a data set whose parent is `ds`. */
static s2f_code read_items(reader *r, s2f_elem *e, const value_list *vl, const s2f_ds *ds,
                           unsigned depth, const path *p)
{
    e->is_seq = 1;
    if (vl->n == 0)
        return S2F_OK;
    if (vl->n > UINT32_MAX)
        return fail_at(r, p, S2F_ELIMIT, "more than 2^32 sequence items");
    e->items = s2f_arena_calloc(r->ctx->arena, vl->n, sizeof *e->items);
    if (!e->items)
        return out_of_memory(r);
    for (size_t i = 0; i < vl->n; i++) {
        path vp = {p, P_VALUE, 0, i, NULL};
        json_object *item = value_at(vl, i);
        if (!json_object_is_type(item, json_type_object))
            return fail_at(r, &vp, S2F_EFORMAT, "expected a sequence item object, got %s",
                           json_kind(item));
        s2f_code rc = read_dataset(r, item, ds, depth + 1, &vp, &e->items[i]);
        if (rc != S2F_OK)
            return rc;
        e->n_items = (uint32_t)(i + 1);
    }
    return S2F_OK;
}

static s2f_code read_value(reader *r, s2f_elem *e, json_object *value, const s2f_ds *ds,
                           unsigned depth, const path *p)
{
    value_list vl;
    char vrs[3];
    s2f_code rc = value_list_of(r, value, p, &vl);
    if (rc != S2F_OK)
        return rc;
    if (e->vr == S2F_VR('S', 'Q'))
        return read_items(r, e, &vl, ds, depth, p);
    if (s2f_vr_is_string(e->vr))
        return read_strings(r, e, &vl, p);
    if (!vr_takes_binary(e->vr))
        return read_binary_numbers(r, e, &vl, p);
    vr_name(e->vr, vrs);
    return fail_at(r, p, S2F_EFORMAT, "VR %s takes \"InlineBinary\" or \"BulkDataURI\", not "
                   "\"Value\"", vrs);
}

static s2f_code read_vr(reader *r, json_object *el, const path *p, uint16_t *vr)
{
    json_object *v;
    char text[9];
    if (!json_object_object_get_ex(el, "vr", &v))
        return fail_at(r, p, S2F_EFORMAT, "\"vr\" missing");
    if (!json_object_is_type(v, json_type_string))
        return fail_at(r, p, S2F_EFORMAT, "\"vr\" is %s, expected a string such as \"CS\"",
                       json_kind(v));
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (n != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' ||
        !s2f_vr_is_known(S2F_VR(s[0], s[1])))
        return fail_at(r, p, S2F_EFORMAT, "\"vr\" \"%s\" is not a DICOM VR",
                       printable(s, n, text, sizeof text));
    *vr = S2F_VR(s[0], s[1]);
    return S2F_OK;
}

/* Which of "Value", "InlineBinary", "BulkDataURI" the element has; warns on other members. */
static s2f_code element_members(reader *r, json_object *el, const path *p, json_object **value,
                                json_object **inline_bin, json_object **bulk)
{
    int count = 0;
    char text[41];
    *value = *inline_bin = *bulk = NULL;
    json_object_object_foreach(el, key, v) {
        json_object **slot = strcmp(key, "Value") == 0          ? value
                             : strcmp(key, "InlineBinary") == 0 ? inline_bin
                             : strcmp(key, "BulkDataURI") == 0  ? bulk
                                                                : NULL;
        if (slot) {
            *slot = v;
            count++;
        } else if (strcmp(key, "vr") != 0) {
            warn_at(r, p, "unknown member \"%s\" ignored",
                    printable(key, strlen(key), text, sizeof text));
        }
    }
    if (count > 1)
        return fail_at(r, p, S2F_EFORMAT,
                       "more than one of \"Value\", \"InlineBinary\", \"BulkDataURI\"");
    return S2F_OK;
}

static s2f_code read_element(reader *r, json_object *el, s2f_elem *e, const s2f_ds *ds,
                             unsigned depth, const path *p)
{
    json_object *value, *inline_bin, *bulk;
    char vrs[3], text[121];
    if (!json_object_is_type(el, json_type_object))
        return fail_at(r, p, S2F_EFORMAT, "expected an object with \"vr\", got %s",
                       json_kind(el));
    s2f_code rc = read_vr(r, el, p, &e->vr);
    if (rc == S2F_OK)
        rc = element_members(r, el, p, &value, &inline_bin, &bulk);
    if (rc != S2F_OK)
        return rc;
    vr_name(e->vr, vrs);
    e->is_seq = e->vr == S2F_VR('S', 'Q');
    if (value)
        return read_value(r, e, value, ds, depth, p);
    if (inline_bin && !vr_takes_binary(e->vr))
        return fail_at(r, p, S2F_EFORMAT, "\"InlineBinary\" is not allowed for VR %s", vrs);
    if (inline_bin)
        return read_inline_binary(r, e, inline_bin, p);
    if (bulk && (e->is_seq || !json_object_is_type(bulk, json_type_string)))
        return fail_at(r, p, S2F_EFORMAT, "\"BulkDataURI\" must be a string on a non-SQ "
                       "element");
    if (bulk)
        warn_at(r, p, "bulk data at \"%s\" not fetched; the element is read as empty",
                printable(json_object_get_string(bulk),
                          (size_t)json_object_get_string_len(bulk), text, sizeof text));
    return S2F_OK;
}

static int elem_order(const void *a, const void *b)
{
    const s2f_elem *x = a, *y = b;
    if (x->tag != y->tag)
        return x->tag < y->tag ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Ascending tag order; of elements with the same tag, the first in the text is kept. */
static void sort_elements(reader *r, s2f_ds *ds, const path *p)
{
    int sorted = 1;
    for (uint32_t i = 1; i < ds->n && sorted; i++)
        sorted = ds->elems[i - 1].tag < ds->elems[i].tag;
    if (sorted)
        return;
    for (uint32_t i = 0; i < ds->n; i++)
        ds->elems[i].offset = i; /* tie-break: text order (offset is 0 in JSON anyway) */
    qsort(ds->elems, ds->n, sizeof *ds->elems, elem_order);
    uint32_t w = 0;
    for (uint32_t i = 0; i < ds->n; i++) {
        ds->elems[i].offset = 0;
        if (w > 0 && ds->elems[w - 1].tag == ds->elems[i].tag) {
            path mp = {p, P_MEMBER, ds->elems[i].tag, 0, NULL};
            warn_at(r, &mp, "tag appears twice in the data set; the first is kept");
            continue;
        }
        ds->elems[w++] = ds->elems[i];
    }
    ds->n = w;
}

static s2f_code read_dataset(reader *r, json_object *obj, const s2f_ds *parent, unsigned depth,
                             const path *p, s2f_ds **out)
{
    if (depth > r->ctx->max_depth)
        return fail_at(r, p, S2F_ELIMIT, "sequences nested deeper than %u levels",
                       r->ctx->max_depth);
    size_t count = (size_t)json_object_object_length(obj);
    char text[41];
    s2f_ds *ds = s2f_arena_calloc(r->ctx->arena, 1, sizeof *ds);
    s2f_elem *elems = count ? s2f_arena_calloc(r->ctx->arena, count, sizeof *elems) : NULL;
    if (!ds || (count && !elems))
        return out_of_memory(r);
    ds->parent = parent;
    ds->utf8 = 1;
    ds->elems = elems;
    json_object_object_foreach(obj, key, el) {
        s2f_elem *e = &ds->elems[ds->n];
        if (!parse_tag(key, strlen(key), &e->tag))
            return fail_at(r, p, S2F_EFORMAT, "member key \"%s\" is not a tag "
                           "(8 hex digits)", printable(key, strlen(key), text, sizeof text));
        path mp = {p, P_MEMBER, e->tag, 0, NULL};
        s2f_code rc = read_element(r, el, e, ds, depth, &mp);
        if (rc != S2F_OK)
            return rc;
        ds->n++;
    }
    sort_elements(r, ds, p);
    *out = ds;
    return S2F_OK;
}

/* M1: one data set object, or an array holding exactly one. */
static s2f_code read_top(reader *r, json_object *root, s2f_ds **out)
{
    if (json_object_is_type(root, json_type_object))
        return read_dataset(r, root, NULL, 0, NULL, out);
    if (!json_object_is_type(root, json_type_array))
        return s2f_fail(r->err, S2F_EFORMAT, "DICOM JSON must be an object (a data set) or an "
                        "array holding one, not %s", json_kind(root));
    size_t n = json_object_array_length(root);
    if (n == 0)
        return s2f_fail(r->err, S2F_EFORMAT, "JSON array holds no data set");
    if (n > 1)
        return s2f_fail(r->err, S2F_EUNSUPPORTED,
                        "JSON array holds %zu data sets; one SR per input is read", n);
    path top = {NULL, P_TOP_ITEM, 0, 0, NULL};
    json_object *obj = json_object_array_get_idx(root, 0);
    if (!json_object_is_type(obj, json_type_object))
        return fail_at(r, &top, S2F_EFORMAT, "expected a data set object, got %s",
                       json_kind(obj));
    return read_dataset(r, obj, NULL, 0, &top, out);
}

s2f_code s2f_dicomjson_read(const uint8_t *data, size_t len, s2f_read_ctx *ctx, s2f_ds **out,
                            s2f_error *err)
{
    reader r = {ctx, err, 0};
    json_text text;
    json_object *root = NULL;
    *out = NULL;
    ctx->transfer_syntax = "DICOM-JSON";
    if (!data) {
        data = (const uint8_t *)"";
        len = 0;
    }
    s2f_code rc = prepare_text(data, len, &text, err);
    if (rc != S2F_OK)
        return rc;
    int depth = json_depth_for(ctx->max_depth);
    json_tokener *tok = json_tokener_new_ex(depth);
    if (!tok) {
        free(text.copy);
        return s2f_fail(err, S2F_ENOMEM, "out of memory while reading DICOM JSON");
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    rc = parse_text(tok, &text, depth, &root, err);
    json_tokener_free(tok);
    r.marked_numbers = text.copy != NULL;
    free(text.copy);
    if (rc == S2F_OK)
        rc = read_top(&r, root, out);
    json_object_put(root);
    if (rc != S2F_OK)
        *out = NULL;
    return rc;
}
