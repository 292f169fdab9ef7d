/*
 * charset.h - Specific Character Set (0008,0005) decoding to UTF-8 (M3).
 *
 * A decoder is made once per data set from the value of (0008,0005) and turns string
 * values into NUL-terminated UTF-8 in the arena. Supported: the default repertoire
 * (ISO_IR 6), ISO_IR 100/101/109/110/144/127/126/138/148/166/13/203, ISO_IR 192 (UTF-8),
 * GB18030, GBK, and ISO 2022 code extensions (ISO 2022 IR 6/100/.../87/159/149/58/13/166),
 * where escape sequences switch the G0/G1 sets inside a value. For ISO 2022 the state is
 * reset to the initial set at each value delimiter: backslash for multi-valued VRs, '^'
 * and '=' inside PN, and CR LF FF TAB in LT/ST/UT (PS3.5 6.1.2.5.3).
 *
 * Bytes that cannot be decoded become U+FFFD and are counted in *replaced: the output is
 * always valid UTF-8. Uses glibc iconv for the multi-byte sets; a decoder caches its iconv
 * handles, so it must be closed with s2f_charset_close. Not thread-safe per decoder; one
 * decoder per document.
 */
#ifndef S2F_CHARSET_H
#define S2F_CHARSET_H

#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/error.h"

typedef struct s2f_charset s2f_charset;

/* How the value's delimiters reset the ISO 2022 state. */
typedef enum s2f_text_kind {
    S2F_TEXT_PLAIN = 0,  /* one value, no delimiter handling (e.g. a single SH value) */
    S2F_TEXT_MULTI = 1,  /* backslash separates values (SH LO CS UC ...) */
    S2F_TEXT_PN = 2,     /* person name: '^' '=' and backslash are delimiters */
    S2F_TEXT_LONG = 3    /* LT ST UT: CR LF FF TAB are delimiters, backslash is text */
} s2f_text_kind;

/*
 * Make a decoder for the value of (0008,0005) (raw bytes, backslash multi-valued, may be
 * empty or NULL = default repertoire). Unknown terms are reported through `w` and decoded
 * as the default repertoire with replacement of non-ASCII bytes. Returns NULL only when the
 * arena is exhausted.
 */
s2f_charset *s2f_charset_open(const uint8_t *spec, size_t spec_len, s2f_arena *a,
                              s2f_warnings *w);
/* A decoder for already-UTF-8 text (DICOM JSON): validates and replaces bad sequences. */
s2f_charset *s2f_charset_open_utf8(s2f_arena *a);
void s2f_charset_close(s2f_charset *cs);

/* Decode in[0..len) to UTF-8, NUL-terminated, in the decoder's arena. *out_len (if not
 * NULL) receives the length without the NUL; *replaced (if not NULL) is increased by the
 * number of U+FFFD substitutions. Returns NULL only when the arena is exhausted. */
char *s2f_charset_decode(s2f_charset *cs, const uint8_t *in, size_t len, s2f_text_kind kind,
                         size_t *out_len, unsigned *replaced);

/* The canonical name of the first (default) term, e.g. "ISO_IR 100", "" for default. */
const char *s2f_charset_name(const s2f_charset *cs);

#endif
