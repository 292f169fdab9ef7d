/*
 * escape.c - escaping outside text for a terminal (see escape.h; issue 9 defect 8).
 */
#include "util/escape.h"

#include <stdint.h>

/* Bytes that may start a plain run without a closer look: printable ASCII; '"' and '\'
 * only outside quotes. */
static int plain_ascii(unsigned char c, unsigned flags)
{
    if (c < 0x20 || c >= 0x7F)
        return 0;
    if (c == '\\')
        return !(flags & (S2F_ESC_QUOTED | S2F_ESC_BACKSLASH));
    return !(flags & S2F_ESC_QUOTED) || c != '"';
}

/* The code point of the valid UTF-8 sequence at p (length *len), or -1 when the bytes
 * are not valid UTF-8 (overlong, surrogate, beyond U+10FFFF, cut short). */
static int32_t utf8_at(const unsigned char *p, size_t n, size_t *len)
{
    unsigned char c = p[0];
    size_t k;
    int32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF)
        k = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        k = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        k = 4, cp = c & 0x07, min = 0x10000;
    else
        return -1;
    if (n < k)
        return -1;
    for (size_t i = 1; i < k; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *len = k;
    return cp;
}

int s2f_escape_utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0, len;
    while (i < n) {
        if (p[i] < 0x80)
            len = 1;
        else if (utf8_at(p + i, n - i, &len) < 0)
            return 0;
        i += len;
    }
    return 1;
}

/* C1 controls and the invisible characters that break lines or reorder text. */
static int hidden_code_point(int32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x200E || cp == 0x200F || cp == 0x2028 ||
           cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

size_t s2f_escape_plain(const char *s, size_t n, unsigned flags)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (plain_ascii(p[i], flags)) {
            i++;
            continue;
        }
        size_t len;
        int32_t cp = p[i] >= 0x80 ? utf8_at(p + i, n - i, &len) : -1;
        if (cp < 0 || hidden_code_point(cp))
            break;
        i += len;
    }
    return i;
}

size_t s2f_escape_one(const char *s, size_t n, unsigned flags, char *out, size_t *used)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;
    unsigned char c = p[0];
    *used = 1;
    out[0] = '\\';
    switch (flags & S2F_ESC_QUOTED ? c : 0) { /* C-style short escapes in quoted values */
    case '"': out[1] = '"'; return 2;
    case '\n': out[1] = 'n'; return 2;
    case '\r': out[1] = 'r'; return 2;
    case '\t': out[1] = 't'; return 2;
    default: break;
    }
    if (c == '\\') {
        out[1] = '\\';
        return 2;
    }
    size_t len;
    int32_t cp = c >= 0x80 ? utf8_at(p, n, &len) : -1;
    if (cp >= 0) { /* a hidden code point: \uXXXX */
        *used = len;
        out[1] = 'u';
        for (int i = 0; i < 4; i++)
            out[2 + i] = hex[(cp >> (12 - 4 * i)) & 15];
        return 6;
    }
    out[1] = 'x';
    out[2] = hex[c >> 4];
    out[3] = hex[c & 15];
    return 4;
}

void s2f_escape_to_sink(s2f_sink *s, const char *p, size_t n, unsigned flags)
{
    while (n) {
        size_t plain = s2f_escape_plain(p, n, flags), used;
        s2f_sink_write(s, p, plain);
        p += plain, n -= plain;
        if (!n)
            return;
        char esc[8];
        s2f_sink_write(s, esc, s2f_escape_one(p, n, flags, esc, &used));
        p += used, n -= used;
    }
}

int s2f_escape_to_file(FILE *f, const char *p, size_t n, unsigned flags)
{
    int ok = 1;
    while (n) {
        size_t plain = s2f_escape_plain(p, n, flags), used;
        ok &= fwrite(p, 1, plain, f) == plain;
        p += plain, n -= plain;
        if (!n)
            break;
        char esc[8];
        size_t k = s2f_escape_one(p, n, flags, esc, &used);
        ok &= fwrite(esc, 1, k, f) == k;
        p += used, n -= used;
    }
    return ok ? 0 : -1;
}

/* Escapes into buf while whole escapes and characters fit in cap - 1 bytes; terminates it;
 * returns how many input bytes were taken. */
static size_t escape_into(const char *p, size_t n, unsigned flags, char *buf, size_t cap)
{
    size_t k = 0, taken = 0;
    while (taken < n) {
        size_t plain = s2f_escape_plain(p + taken, n - taken, flags), used;
        if (plain > cap - 1 - k) { /* cut, never inside a UTF-8 sequence */
            plain = cap - 1 - k;
            while (plain && ((unsigned char)p[taken + plain] & 0xC0) == 0x80)
                plain--;
            memcpy(buf + k, p + taken, plain);
            k += plain, taken += plain;
            break;
        }
        memcpy(buf + k, p + taken, plain);
        k += plain, taken += plain;
        if (taken == n)
            break;
        char esc[8];
        size_t e = s2f_escape_one(p + taken, n - taken, flags, esc, &used);
        if (e > cap - 1 - k)
            break;
        memcpy(buf + k, esc, e);
        k += e, taken += used;
    }
    buf[k] = 0;
    return taken;
}

char *s2f_escape_to_buf(const char *p, size_t n, unsigned flags, char *buf, size_t cap)
{
    escape_into(p, n, flags, buf, cap);
    return buf;
}

const char *s2f_escape_text(const char *s, size_t n, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    if (escape_into(s, n, S2F_ESC_BACKSLASH, buf, cap) < n && cap > 4) {
        escape_into(s, n, S2F_ESC_BACKSLASH, buf, cap - 3);
        size_t k = strlen(buf);
        memcpy(buf + k, "...", 4);
    }
    return buf;
}
