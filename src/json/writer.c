/*
 * writer.c - streaming JSON writer (see writer.h): structure and separators, string
 * escaping with UTF-8 validation, DICOM decimal strings and doubles as JSON numbers.
 */
#include "json/writer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr2fhir.h"

/* Bits of a nesting stack entry. */
#define KIND_ARRAY 1u
#define HAS_ITEMS 2u

void s2f_json_init(s2f_json *j, s2f_sink *out, int pretty)
{
    memset(j, 0, sizeof *j);
    j->out = out;
    j->pretty = pretty != 0;
}

int s2f_json_error(const s2f_json *j) { return j->error; }
const char *s2f_json_message(const s2f_json *j) { return j->message; }
size_t s2f_json_replaced(const s2f_json *j) { return j->replaced; }

static int fail(s2f_json *j, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first error only; always returns -1 so call sites can `return fail(...)`. */
static int fail(s2f_json *j, int code, const char *fmt, ...)
{
    if (j->error)
        return -1;
    j->error = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->message, sizeof j->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- layout ---------------------------------------------------------------------- */

static void newline(s2f_json *j, int depth)
{
    static const char spaces[2 * S2F_JSON_MAX_DEPTH + 1] =
        "                                                                "
        "                                                                ";
    s2f_sink_putc(j->out, '\n');
    s2f_sink_write(j->out, spaces, (size_t)depth * 2);
}

/* Writes the comma (and the pretty line break) before a new member or element. */
static void separate(s2f_json *j)
{
    unsigned char *top = &j->stack[j->depth - 1];
    if (*top & HAS_ITEMS)
        s2f_sink_putc(j->out, ',');
    *top |= HAS_ITEMS;
    if (j->pretty)
        newline(j, j->depth);
}

/* Compact output written in one copy: the comma a new member or element of the open
 * container needs (the count of bytes put at o: 0 or 1) ... */
static size_t put_separator(s2f_json *j, char *o)
{
    unsigned char *top = &j->stack[j->depth - 1];
    size_t k = (*top & HAS_ITEMS) != 0;
    if (k)
        o[0] = ',';
    *top |= HAS_ITEMS;
    return k;
}

/* ... and a key that needs no escaping, "key": (kn + 3 bytes). */
static size_t put_key(char *o, const char *key, size_t kn)
{
    o[0] = '"';
    memcpy(o + 1, key, kn);
    o[kn + 1] = '"';
    o[kn + 2] = ':';
    return kn + 3;
}

static int top_is_array(const s2f_json *j) { return (j->stack[j->depth - 1] & KIND_ARRAY) != 0; }

/* Checks that a value may come here and writes what precedes it. Writes nothing on error. */
static int before_value(s2f_json *j)
{
    if (j->error)
        return -1;
    if (j->depth == 0) {
        if (j->done)
            return fail(j, S2F_EINTERNAL, "JSON writer: a second top-level value");
        return 0;
    }
    if (top_is_array(j)) {
        separate(j);
        return 0;
    }
    if (!j->after_key)
        return fail(j, S2F_EINTERNAL, "JSON writer: a value where a key is expected");
    j->after_key = 0;
    return 0;
}

static int after_value(s2f_json *j)
{
    if (j->depth == 0)
        j->done = 1;
    return 0;
}

static int begin(s2f_json *j, unsigned kind, char open)
{
    if (j->error)
        return -1;
    if (j->depth == S2F_JSON_MAX_DEPTH)
        return fail(j, S2F_ELIMIT, "JSON writer: nesting deeper than %d levels", S2F_JSON_MAX_DEPTH);
    if (before_value(j))
        return -1;
    j->stack[j->depth++] = (unsigned char)kind;
    s2f_sink_putc(j->out, open);
    return 0;
}

static int end(s2f_json *j, unsigned kind, char close)
{
    const char *what = kind ? "end_array" : "end_object";
    if (j->error)
        return -1;
    if (j->depth == 0 || (j->stack[j->depth - 1] & KIND_ARRAY) != kind)
        return fail(j, S2F_EINTERNAL, "JSON writer: unbalanced %s", what);
    if (j->after_key)
        return fail(j, S2F_EINTERNAL, "JSON writer: %s after a key without its value", what);
    int had_items = (j->stack[j->depth - 1] & HAS_ITEMS) != 0;
    j->depth--;
    if (j->pretty && had_items)
        newline(j, j->depth);
    s2f_sink_putc(j->out, close);
    return after_value(j);
}

int s2f_json_members_raw(s2f_json *j, const char *members, size_t n)
{
    if (j->error)
        return -1;
    if (j->pretty)
        return fail(j, S2F_EINTERNAL, "JSON writer: raw members in pretty mode");
    if (j->depth == 0 || top_is_array(j) || j->after_key)
        return fail(j, S2F_EINTERNAL, "JSON writer: raw members outside an object");
    if (!n)
        return 0;
    separate(j);
    s2f_sink_write(j->out, members, n);
    return 0;
}

int s2f_json_raw_value(s2f_json *j, const char *text, size_t n)
{
    if (j->error)
        return -1;
    if (j->pretty)
        return fail(j, S2F_EINTERNAL, "JSON writer: a raw value in pretty mode");
    if (!n)
        return fail(j, S2F_EINTERNAL, "JSON writer: an empty raw value");
    if (before_value(j))
        return -1;
    s2f_sink_write(j->out, text, n);
    return after_value(j);
}

int s2f_json_begin_object(s2f_json *j) { return begin(j, 0, '{'); }
int s2f_json_end_object(s2f_json *j) { return end(j, 0, '}'); }
int s2f_json_begin_array(s2f_json *j) { return begin(j, KIND_ARRAY, '['); }
int s2f_json_end_array(s2f_json *j) { return end(j, KIND_ARRAY, ']'); }

int s2f_json_finish(s2f_json *j)
{
    if (j->error)
        return -1;
    if (j->depth)
        return fail(j, S2F_EINTERNAL, "JSON writer: %d container(s) left open", j->depth);
    if (!j->done)
        return fail(j, S2F_EINTERNAL, "JSON writer: no value written");
    if (j->done == 1 && j->pretty)
        s2f_sink_putc(j->out, '\n');
    j->done = 2;
    return 0;
}

/* ---- strings --------------------------------------------------------------------- */

/* Byte classes: 0 copied as is, 1 escaped (control, '"', '\\'), 2 starts a multi-byte
 * sequence or is ill-formed (checked by utf8_sequence). */
static const unsigned char byte_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/*
 * Length of the UTF-8 sequence at p (n >= 1 bytes available), following the well-formed
 * byte sequences of Unicode Table 3-7. *ok = 0 for an ill-formed sequence, whose length
 * is then its maximal subpart (at least 1): the bytes one U+FFFD replaces.
 */
static size_t utf8_sequence(const unsigned char *p, size_t n, int *ok)
{
    unsigned char b = p[0], lo = 0x80, hi = 0xBF;
    size_t need;
    *ok = 0;
    if (b < 0x80) {
        *ok = 1;
        return 1;
    }
    if (b < 0xC2 || b > 0xF4)
        return 1;
    if (b < 0xE0) {
        need = 1;
    } else if (b < 0xF0) {
        need = 2;
        lo = b == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
        hi = b == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else {
        need = 3;
        lo = b == 0xF0 ? 0x90 : 0x80; /* no overlong forms */
        hi = b == 0xF4 ? 0x8F : 0xBF; /* nothing above U+10FFFF */
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || p[i] < lo || p[i] > hi)
            return i;
        lo = 0x80;
        hi = 0xBF;
    }
    *ok = 1;
    return need + 1;
}

static void write_escape(s2f_sink *out, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    switch (c) {
    case '"': s2f_sink_write(out, "\\\"", 2); return;
    case '\\': s2f_sink_write(out, "\\\\", 2); return;
    case '\b': s2f_sink_write(out, "\\b", 2); return;
    case '\f': s2f_sink_write(out, "\\f", 2); return;
    case '\n': s2f_sink_write(out, "\\n", 2); return;
    case '\r': s2f_sink_write(out, "\\r", 2); return;
    case '\t': s2f_sink_write(out, "\\t", 2); return;
    default: s2f_sink_write(out, esc, sizeof esc); return;
    }
}

/* U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR (E2 80 A8/A9): valid JSON, but
 * escaped so that the output is also safe to embed in JavaScript. */
static int is_line_separator(const unsigned char *p, size_t len)
{
    return len == 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9);
}

/* Writes what replaces a sequence that cannot be copied: the escaped line separator,
 * or U+FFFD for an ill-formed sequence (counted). */
static void write_special(s2f_json *j, const unsigned char *p, int ok)
{
    if (ok) {
        s2f_sink_write(j->out, p[2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
        return;
    }
    s2f_sink_write(j->out, "\xEF\xBF\xBD", 3);
    j->replaced++;
}

/* Writes a quoted string; runs of bytes that need no change (ASCII and well-formed
 * multi-byte sequences) go out in one write. */
static uint64_t load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* 1 when none of the 8 bytes of w needs attention (all of class 0: printable ASCII other
 * than '"' and backslash), tested together: FHIR text is mostly such runs. The tests are
 * the exact "has a byte below n" / "has a zero byte" word tricks. */
static int plain_word(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t quote = w ^ (ones * '"'), slash = w ^ (ones * '\\');
    uint64_t control = (w - ones * 0x20) & ~w;
    uint64_t is_quote = (quote - ones) & ~quote;
    uint64_t is_slash = (slash - ones) & ~slash;
    return ((w | control | is_quote | is_slash) & highs) == 0;
}

/* 1 when all n bytes at p are plain (see plain_word): whole words, then the last bytes
 * one by one (copying a short tail into a word would cost more). */
static int all_plain(const unsigned char *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        if (!plain_word(load64(p + i)))
            return 0;
    for (; i < n; i++)
        if (byte_class[p[i]])
            return 0;
    return 1;
}

static void write_string(s2f_json *j, const char *text, size_t n)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t run = 0, i = 0;
    s2f_sink_putc(j->out, '"');
    if (all_plain(p, n)) /* the common case: nothing to escape or check */
        i = n;
    while (i < n) {
        unsigned char cls = byte_class[p[i]];
        if (cls == 0) {
            i++;
            while (i + 8 <= n && plain_word(load64(p + i)))
                i += 8;
            continue;
        }
        if (cls == 2) {
            int ok;
            size_t len = utf8_sequence(p + i, n - i, &ok);
            if (ok && !is_line_separator(p + i, len)) {
                i += len;
                continue;
            }
            s2f_sink_write(j->out, p + run, i - run);
            write_special(j, p + i, ok);
            i += len;
        } else {
            s2f_sink_write(j->out, p + run, i - run);
            write_escape(j->out, p[i]);
            i++;
        }
        run = i;
    }
    s2f_sink_write(j->out, p + run, i - run);
    s2f_sink_putc(j->out, '"');
}

/* ---- compact members in one copy ------------------------------------------------ */

/* 1 when a key may be written now (the general path reports why not). */
static int key_allowed(const s2f_json *j)
{
    return !j->error && j->depth > 0 && !top_is_array(j) && !j->after_key;
}

/* Compact output of a member whose key and string value (value NULL: a key alone) need
 * no escaping, the common case, written with one copy into the sink rather than token
 * by token. 0 when the general path must write it. */
static int fast_member(s2f_json *j, const char *key, size_t kn, const char *value, size_t vn)
{
    if (j->pretty || !key_allowed(j) || !all_plain((const unsigned char *)key, kn) ||
        (value && !all_plain((const unsigned char *)value, vn)))
        return 0;
    char *o = s2f_sink_room(j->out, kn + vn + 6); /* ,"key":"value" */
    if (!o)
        return 0;
    size_t k = put_separator(j, o);
    k += put_key(o + k, key, kn);
    if (value) {
        o[k++] = '"';
        memcpy(o + k, value, vn);
        k += vn;
        o[k++] = '"';
    } else {
        j->after_key = 1;
    }
    s2f_sink_commit(j->out, k);
    return 1;
}

/* Compact output of "key": followed by the opening of a container, in one copy; 0 when
 * the general path must write it (which also reports the errors). */
static int fast_open(s2f_json *j, const char *key, unsigned kind, char open)
{
    if (j->pretty || !key || !key_allowed(j) || j->depth == S2F_JSON_MAX_DEPTH)
        return 0;
    size_t kn = strlen(key);
    if (!all_plain((const unsigned char *)key, kn))
        return 0;
    char *o = s2f_sink_room(j->out, kn + 5); /* ,"key":{ */
    if (!o)
        return 0;
    size_t k = put_separator(j, o);
    k += put_key(o + k, key, kn);
    o[k++] = open;
    s2f_sink_commit(j->out, k);
    j->stack[j->depth++] = (unsigned char)kind;
    return 1;
}

int s2f_json_key(s2f_json *j, const char *key)
{
    if (key && fast_member(j, key, strlen(key), NULL, 0))
        return 0;
    if (j->error)
        return -1;
    if (j->depth == 0 || top_is_array(j))
        return fail(j, S2F_EINTERNAL, "JSON writer: a key outside an object");
    if (j->after_key)
        return fail(j, S2F_EINTERNAL, "JSON writer: a key where a value is expected");
    if (!key)
        return fail(j, S2F_EINTERNAL, "JSON writer: a NULL key");
    separate(j);
    write_string(j, key, strlen(key));
    if (j->pretty)
        s2f_sink_write(j->out, ": ", 2);
    else
        s2f_sink_putc(j->out, ':');
    j->after_key = 1;
    return 0;
}

int s2f_json_kv_raw(s2f_json *j, const char *key, const char *text, size_t n)
{
    if (!j->pretty && n && key && key_allowed(j)) {
        size_t kn = strlen(key);
        char *o = all_plain((const unsigned char *)key, kn) ? s2f_sink_room(j->out, kn + n + 4)
                                                            : NULL; /* ,"key":value */
        if (o) {
            size_t k = put_separator(j, o);
            k += put_key(o + k, key, kn);
            memcpy(o + k, text, n);
            s2f_sink_commit(j->out, k + n);
            return 0;
        }
    }
    return s2f_json_key(j, key) ? -1 : s2f_json_raw_value(j, text, n);
}

int s2f_json_lit_raw(s2f_json *j, s2f_json_lit key, const char *text, size_t n)
{
    char *o;
    if (j->pretty || !n || !key_allowed(j) ||
        !(o = s2f_sink_room(j->out, key.quoted_len + n + 1))) /* ,"key":value */
        return s2f_json_kv_raw(j, key.name, text, n);
    size_t k = put_separator(j, o);
    memcpy(o + k, key.quoted, key.quoted_len);
    memcpy(o + k + key.quoted_len, text, n);
    s2f_sink_commit(j->out, k + key.quoted_len + n);
    return 0;
}

/* ,"key":{ or ,"key":[ in one copy (compact); the general path otherwise. */
static int lit_open(s2f_json *j, s2f_json_lit key, unsigned kind, char open)
{
    char *o;
    if (j->pretty || !key_allowed(j) || j->depth == S2F_JSON_MAX_DEPTH ||
        !(o = s2f_sink_room(j->out, key.quoted_len + 2))) {
        if (s2f_json_key(j, key.name))
            return -1;
        return kind ? s2f_json_begin_array(j) : s2f_json_begin_object(j);
    }
    size_t k = put_separator(j, o);
    memcpy(o + k, key.quoted, key.quoted_len);
    k += key.quoted_len;
    o[k++] = open;
    s2f_sink_commit(j->out, k);
    j->stack[j->depth++] = (unsigned char)kind;
    return 0;
}

int s2f_json_lit_begin_object(s2f_json *j, s2f_json_lit key) { return lit_open(j, key, 0, '{'); }

int s2f_json_lit_begin_array(s2f_json *j, s2f_json_lit key)
{
    return lit_open(j, key, KIND_ARRAY, '[');
}

int s2f_json_open_raw(s2f_json *j, const char *text, size_t n, int levels)
{
    if (j->error)
        return -1;
    if (j->pretty)
        return fail(j, S2F_EINTERNAL, "JSON writer: raw members in pretty mode");
    if (levels < 1 || levels > S2F_JSON_MAX_DEPTH - j->depth)
        return fail(j, S2F_ELIMIT, "JSON writer: nesting deeper than %d levels",
                    S2F_JSON_MAX_DEPTH);
    if (before_value(j))
        return -1;
    s2f_sink_write(j->out, text, n);
    while (levels--)
        j->stack[j->depth++] = HAS_ITEMS;
    return 0;
}

int s2f_json_close_raw(s2f_json *j, const char *text, size_t n, int levels)
{
    if (j->error)
        return -1;
    if (j->pretty)
        return fail(j, S2F_EINTERNAL, "JSON writer: raw members in pretty mode");
    if (j->after_key)
        return fail(j, S2F_EINTERNAL, "JSON writer: end_object after a key without its value");
    if (levels < 1 || levels > j->depth)
        return fail(j, S2F_EINTERNAL, "JSON writer: unbalanced end_object");
    for (int i = 1; i <= levels; i++)
        if (j->stack[j->depth - i] & KIND_ARRAY)
            return fail(j, S2F_EINTERNAL, "JSON writer: unbalanced end_object");
    j->depth -= levels;
    s2f_sink_write(j->out, text, n);
    return after_value(j);
}

int s2f_json_begin_object_raw(s2f_json *j, const char *key, const char *members, size_t n)
{
    if (j->error)
        return -1;
    if (j->pretty)
        return fail(j, S2F_EINTERNAL, "JSON writer: raw members in pretty mode");
    size_t kn = key ? strlen(key) : 0;
    if (key && (!key_allowed(j) || !all_plain((const unsigned char *)key, kn)))
        return s2f_json_kv_begin_object(j, key) ? -1 : s2f_json_members_raw(j, members, n);
    if (j->depth == S2F_JSON_MAX_DEPTH)
        return fail(j, S2F_ELIMIT, "JSON writer: nesting deeper than %d levels",
                    S2F_JSON_MAX_DEPTH);
    if (!key && before_value(j))
        return -1;
    char *o = s2f_sink_room(j->out, kn + n + 5); /* ,"key":{members */
    if (!o) {
        if (key ? s2f_json_kv_begin_object(j, key) : begin(j, 0, '{'))
            return -1;
        return s2f_json_members_raw(j, members, n);
    }
    size_t k = 0;
    if (key) {
        k = put_separator(j, o);
        k += put_key(o + k, key, kn);
    }
    o[k++] = '{';
    memcpy(o + k, members, n);
    s2f_sink_commit(j->out, k + n);
    j->stack[j->depth++] = (unsigned char)(n ? HAS_ITEMS : 0);
    return 0;
}

int s2f_json_string_n(s2f_json *j, const char *p, size_t n)
{
    if (!p && n)
        return fail(j, S2F_EINTERNAL, "JSON writer: a NULL string");
    if (before_value(j))
        return -1;
    write_string(j, p ? p : "", n);
    return after_value(j);
}

s2f_code s2f_json_quote(const char *text, size_t len, s2f_write_fn write_fn, void *ctx)
{
    if (!write_fn || (!text && len))
        return S2F_EUSAGE;
    s2f_sink *sink = malloc(sizeof *sink); /* 64 KiB: not on a thread's stack */
    if (!sink)
        return S2F_ENOMEM;
    s2f_sink_init_fn(sink, write_fn, ctx);
    s2f_json j;
    s2f_json_init(&j, sink, 0);
    s2f_json_string_n(&j, text, len);
    int failed = s2f_sink_finish(sink);
    free(sink);
    return failed ? S2F_EIO : S2F_OK;
}

int s2f_json_string(s2f_json *j, const char *utf8)
{
    if (!utf8)
        return fail(j, S2F_EINTERNAL, "JSON writer: a NULL string");
    return s2f_json_string_n(j, utf8, strlen(utf8));
}

/* ---- literals and integers ------------------------------------------------------- */

static int write_literal(s2f_json *j, const char *text)
{
    if (before_value(j))
        return -1;
    s2f_sink_puts(j->out, text);
    return after_value(j);
}

int s2f_json_bool(s2f_json *j, int v) { return write_literal(j, v ? "true" : "false"); }
int s2f_json_null(s2f_json *j) { return write_literal(j, "null"); }

int s2f_json_int(s2f_json *j, int64_t v)
{
    if (before_value(j))
        return -1;
    s2f_sink_i64(j->out, v);
    return after_value(j);
}

int s2f_json_uint(s2f_json *j, uint64_t v)
{
    if (before_value(j))
        return -1;
    s2f_sink_u64(j->out, v);
    return after_value(j);
}

/* ---- decimal strings --------------------------------------------------------------- */

/* The pieces of a Decimal String, each a span of the input. */
typedef struct decimal_parts {
    int negative;
    const char *int_p, *frac_p, *exp_p; /* exp_p: from the 'e' to the last digit */
    size_t int_n, frac_n, exp_n;
} decimal_parts;

static size_t count_digits(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    return i;
}

static size_t parse_exponent(const char *p, size_t n)
{
    size_t i = 1; /* the 'e' */
    if (i < n && (p[i] == '+' || p[i] == '-'))
        i++;
    size_t digits = count_digits(p + i, n - i);
    return digits ? i + digits : 0;
}

/* Splits p[0..n) into its parts; returns 0 when it is not a Decimal String. */
static int parse_decimal(const char *p, size_t n, decimal_parts *d)
{
    memset(d, 0, sizeof *d);
    while (n && p[n - 1] == ' ')
        n--;
    while (n && *p == ' ')
        p++, n--;
    size_t i = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        d->negative = p[i++] == '-';
    d->int_p = p + i;
    d->int_n = count_digits(p + i, n - i);
    i += d->int_n;
    if (i < n && p[i] == '.') {
        i++;
        d->frac_p = p + i;
        d->frac_n = count_digits(p + i, n - i);
        i += d->frac_n;
    }
    if (d->int_n + d->frac_n == 0)
        return 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        d->exp_p = p + i;
        d->exp_n = parse_exponent(p + i, n - i);
        if (!d->exp_n)
            return 0;
        i += d->exp_n;
    }
    return i == n;
}

/* 1 when p[0..n) is already the JSON number its Decimal String gives: no spaces, no '+'
 * before the digits, no leading zeros, no bare or trailing '.' ("-12.50", "0.5", "7",
 * "1.5E+00"). Most values are so, and are written as they are. */
static int canonical_decimal(const char *p, size_t n)
{
    size_t i = 0;
    if (i < n && p[i] == '-')
        i++;
    if (i < n && p[i] == '0')
        i++;
    else if (i < n && p[i] >= '1' && p[i] <= '9')
        i += count_digits(p + i, n - i);
    else
        return 0;
    if (i < n && p[i] == '.') {
        size_t frac = count_digits(p + i + 1, n - i - 1);
        if (!frac)
            return 0;
        i += 1 + frac;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        size_t exp = parse_exponent(p + i, n - i);
        if (!exp)
            return 0;
        i += exp;
    }
    return i == n;
}

int s2f_json_decimal_is_number(const char *p, size_t n) { return p && canonical_decimal(p, n); }

int s2f_json_decimal_valid(const char *p, size_t n)
{
    decimal_parts d;
    return p && (canonical_decimal(p, n) || parse_decimal(p, n, &d));
}

/* "-007.50e+3" -> "-7.50e+3": no '+', no leading zeros, "0" before a bare '.', no
 * trailing '.'; every other digit and the exponent stay as written. */
static void write_decimal_parts(s2f_sink *out, const decimal_parts *d)
{
    const char *ip = d->int_p;
    size_t in = d->int_n;
    while (in > 1 && *ip == '0')
        ip++, in--;
    if (d->negative)
        s2f_sink_putc(out, '-');
    if (in)
        s2f_sink_write(out, ip, in);
    else
        s2f_sink_putc(out, '0');
    if (d->frac_n) {
        s2f_sink_putc(out, '.');
        s2f_sink_write(out, d->frac_p, d->frac_n);
    }
    if (d->exp_n)
        s2f_sink_write(out, d->exp_p, d->exp_n);
}

/* Copies up to 40 bytes of text for a message, printable ASCII only. */
static void quote_for_message(const char *p, size_t n, char *buf, size_t size)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < size && i < 40; i++)
        buf[k++] = (p[i] >= 0x20 && p[i] < 0x7F) ? p[i] : '?';
    buf[k] = 0;
}

static int invalid_decimal(s2f_json *j, const char *p, size_t n)
{
    char shown[48];
    quote_for_message(p ? p : "", p ? n : 0, shown, sizeof shown);
    return fail(j, S2F_EFORMAT, "JSON writer: \"%s\" is not a decimal number", shown);
}

int s2f_json_decimal_n(s2f_json *j, const char *p, size_t n)
{
    decimal_parts d;
    if (j->error)
        return -1;
    if (!p || !parse_decimal(p, n, &d))
        return invalid_decimal(j, p, n);
    if (before_value(j))
        return -1;
    write_decimal_parts(j->out, &d);
    return after_value(j);
}

int s2f_json_decimal(s2f_json *j, const char *text)
{
    return s2f_json_decimal_n(j, text, text ? strlen(text) : 0);
}

/* ---- doubles ----------------------------------------------------------------------- */

/* Replaces a locale's decimal separator (one or more bytes) by '.'; %g otherwise only
 * writes digits, '-', '+' and 'e'. Returns the new length. */
static size_t use_decimal_point(char *s)
{
    size_t k = 0;
    for (size_t i = 0; s[i]; i++) {
        int numeric = (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '+' || s[i] == 'e';
        if (numeric)
            s[k++] = s[i];
        else if (k == 0 || s[k - 1] != '.')
            s[k++] = '.';
    }
    s[k] = 0;
    return k;
}

/* The shortest of %.15g, %.16g, %.17g that reads back as v (%.17g always does). */
static size_t format_double(double v, char *buf, size_t size)
{
    for (int prec = 15; prec < 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return use_decimal_point(buf);
    }
    snprintf(buf, size, "%.17g", v);
    return use_decimal_point(buf);
}

int s2f_json_double(s2f_json *j, double v)
{
    char buf[40];
    if (j->error)
        return -1;
    if (!isfinite(v))
        return fail(j, S2F_EFORMAT, "JSON writer: %s is not a JSON number",
                    isnan(v) ? "NaN" : "an infinity");
    if (before_value(j))
        return -1;
    size_t n = format_double(v, buf, sizeof buf);
    s2f_sink_write(j->out, buf, n);
    return after_value(j);
}

/* ---- key and value together -------------------------------------------------------- */

int s2f_json_kv_string(s2f_json *j, const char *key, const char *value)
{
    if (!value)
        return j->error ? -1 : 0;
    return s2f_json_kv_string_n(j, key, value, strlen(value));
}

int s2f_json_kv_string_n(s2f_json *j, const char *key, const char *p, size_t n)
{
    if (!p)
        return j->error ? -1 : 0;
    if (key && fast_member(j, key, strlen(key), p, n))
        return 0;
    return s2f_json_key(j, key) ? -1 : s2f_json_string_n(j, p, n);
}

int s2f_json_kv_int(s2f_json *j, const char *key, int64_t v)
{
    return s2f_json_key(j, key) ? -1 : s2f_json_int(j, v);
}

int s2f_json_kv_uint(s2f_json *j, const char *key, uint64_t v)
{
    return s2f_json_key(j, key) ? -1 : s2f_json_uint(j, v);
}

int s2f_json_kv_bool(s2f_json *j, const char *key, int v)
{
    return s2f_json_key(j, key) ? -1 : s2f_json_bool(j, v);
}

/* Checks the value before writing the key, so an error never leaves a dangling key. */
int s2f_json_kv_decimal(s2f_json *j, const char *key, const char *value)
{
    if (!value)
        return j->error ? -1 : 0;
    if (j->error)
        return -1;
    size_t n = strlen(value);
    if (!j->pretty && canonical_decimal(value, n))
        return s2f_json_kv_raw(j, key, value, n);
    decimal_parts d;
    if (!parse_decimal(value, n, &d))
        return invalid_decimal(j, value, n);
    if (s2f_json_key(j, key) || before_value(j))
        return -1;
    write_decimal_parts(j->out, &d);
    return after_value(j);
}

int s2f_json_lit_decimal(s2f_json *j, s2f_json_lit key, const char *value)
{
    if (value && !j->error && !j->pretty) {
        size_t n = strlen(value);
        if (canonical_decimal(value, n))
            return s2f_json_lit_raw(j, key, value, n);
    }
    return s2f_json_kv_decimal(j, key.name, value);
}

int s2f_json_kv_double(s2f_json *j, const char *key, double v)
{
    if (j->error)
        return -1;
    if (!isfinite(v))
        return s2f_json_double(j, v); /* records the error, writes nothing */
    return s2f_json_key(j, key) ? -1 : s2f_json_double(j, v);
}

int s2f_json_kv_begin_object(s2f_json *j, const char *key)
{
    if (fast_open(j, key, 0, '{'))
        return 0;
    return s2f_json_key(j, key) ? -1 : s2f_json_begin_object(j);
}

int s2f_json_kv_begin_array(s2f_json *j, const char *key)
{
    if (fast_open(j, key, KIND_ARRAY, '['))
        return 0;
    return s2f_json_key(j, key) ? -1 : s2f_json_begin_array(j);
}

int s2f_json_to_buffer(void (*fn)(s2f_json *j, const void *ctx), const void *ctx, int newline,
                       char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *mem = open_memstream(out, len);
    s2f_sink *sink = malloc(sizeof *sink);
    int bad = !mem || !sink;
    if (!bad) {
        s2f_json j;
        s2f_sink_init(sink, mem);
        s2f_json_init(&j, sink, 0);
        fn(&j, ctx);
        s2f_json_finish(&j);
        if (newline)
            s2f_sink_putc(sink, '\n');
        bad = s2f_json_error(&j) || s2f_sink_finish(sink) != 0;
    }
    if (mem && fclose(mem) != 0)
        bad = 1;
    free(sink);
    if (bad) {
        free(*out);
        *out = NULL;
        *len = 0;
        return -1;
    }
    return 0;
}
