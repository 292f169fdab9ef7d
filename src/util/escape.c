/*
 * escape.c - control characters of outside text escaped for messages (see escape.h).
 */
#include "escape.h"

#include <stdio.h>
#include <string.h>

/* Bytes that s[i] becomes in the message: its escape in esc (returns the length and how
 * many input bytes it takes in *used). */
static size_t escape_one(const unsigned char *s, size_t n, size_t i, char esc[8], size_t *used)
{
    unsigned char c = s[i];
    *used = 1;
    if (c < 0x20 || c == 0x7f)
        return (size_t)snprintf(esc, 8, "\\x%02X", c);
    if (c == '\\')
        return (size_t)snprintf(esc, 8, "\\\\");
    if (c == 0xC2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9F) {
        *used = 2;
        return (size_t)snprintf(esc, 8, "\\u%04X", s[i + 1]);
    }
    esc[0] = (char)c;
    return 1;
}

const char *s2f_escape_text(const char *s, size_t n, char *buf, size_t cap)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k = 0, i = 0;
    if (cap == 0)
        return buf;
    while (i < n) {
        char esc[8];
        size_t used, len = escape_one(u, n, i, esc, &used);
        if (k + len + 1 > cap) {
            size_t dots = cap > 4 ? 3 : 0;
            while (k + dots + 1 > cap && k > 0)
                k--;
            while (k > 0 && ((unsigned char)buf[k] & 0xC0) == 0x80)
                k--; /* not inside a UTF-8 sequence */
            memcpy(buf + k, "...", dots);
            k += dots;
            break;
        }
        memcpy(buf + k, esc, len);
        k += len;
        i += used;
    }
    buf[k] = '\0';
    return buf;
}
