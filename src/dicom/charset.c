/*
 * charset.c - Specific Character Set (0008,0005) decoding to UTF-8 (see charset.h, M3).
 *
 * Three decoding engines:
 *   - ISO 2022: the default repertoire, the single-byte sets (ISO_IR 100 ... 203, 166, 13)
 *     with or without code extensions, and the ISO 2022 multi-byte sets (IR 87/159/149/58).
 *     Bytes are interpreted through the G0 (GL, 0x21-0x7E) and G1 (GR, 0xA0-0xFF)
 *     registers; escape sequences redesignate them and value delimiters reset them.
 *   - UTF-8 (ISO_IR 192, DICOM JSON): validated by hand.
 *   - GB18030 / GBK: whole values through iconv.
 * Fast paths avoid iconv and scratch buffers entirely for ASCII input, for valid UTF-8 and
 * for Latin-1. The other single-byte sets are decoded through 96-entry tables built once
 * per decoder with iconv; double-byte sets go through a cached iconv handle (EUC form).
 *
 * Decisions: JIS X 0201 romaji (ISO_IR 13 G0) is read as ASCII so that '\' and '^' stay
 * delimiters; C0 controls pass through; C1 bytes (0x80-0x9F) in single-byte sets and bytes
 * a set does not define become U+FFFD. Escape sequences are honoured in every ISO 2022
 * engine charset, declared or not; an unknown one becomes one U+FFFD and makes its register
 * undecodable until the next reset. GR bytes with no G1 designated are read with the first
 * G1 set that (0008,0005) declares (common in Korean and Chinese files).
 */
#include "dicom/charset.h"
#include "util/escape.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>

#define ESC 0x1B

enum mode { MODE_2022, MODE_UTF8, MODE_GB18030, MODE_GBK };

/* Code elements (graphic character sets) a G0/G1 register can hold. */
enum set {
    SET_NONE, SET_ASCII, SET_ROMAJI, SET_KATAKANA, SET_LATIN1, SET_LATIN2, SET_LATIN3,
    SET_LATIN4, SET_CYRILLIC, SET_ARABIC, SET_GREEK, SET_HEBREW, SET_LATIN5, SET_LATIN9,
    SET_THAI, SET_JIS0208, SET_JIS0212, SET_KSX1001, SET_GB2312, SET_UNKNOWN, SET_COUNT
};

enum set_kind { K_UNDECODABLE, K_ASCII, K_KATAKANA, K_LATIN1, K_TABLE, K_DOUBLE };

typedef struct set_info {
    unsigned char kind;
    unsigned char prefix;   /* byte before each EUC pair (0x8F: JIS X 0212 in EUC-JP) */
    const char *iconv_name; /* K_TABLE and K_DOUBLE */
} set_info;

static const set_info SETS[SET_COUNT] = {
    [SET_NONE] = {K_UNDECODABLE, 0, NULL},
    [SET_ASCII] = {K_ASCII, 0, NULL},
    [SET_ROMAJI] = {K_ASCII, 0, NULL},
    [SET_KATAKANA] = {K_KATAKANA, 0, NULL},
    [SET_LATIN1] = {K_LATIN1, 0, NULL},
    [SET_LATIN2] = {K_TABLE, 0, "ISO-8859-2"},
    [SET_LATIN3] = {K_TABLE, 0, "ISO-8859-3"},
    [SET_LATIN4] = {K_TABLE, 0, "ISO-8859-4"},
    [SET_CYRILLIC] = {K_TABLE, 0, "ISO-8859-5"},
    [SET_ARABIC] = {K_TABLE, 0, "ISO-8859-6"},
    [SET_GREEK] = {K_TABLE, 0, "ISO-8859-7"},
    [SET_HEBREW] = {K_TABLE, 0, "ISO-8859-8"},
    [SET_LATIN5] = {K_TABLE, 0, "ISO-8859-9"},
    [SET_LATIN9] = {K_TABLE, 0, "ISO-8859-15"},
    [SET_THAI] = {K_TABLE, 0, "TIS-620"},
    [SET_JIS0208] = {K_DOUBLE, 0, "EUC-JP"},
    [SET_JIS0212] = {K_DOUBLE, 0x8F, "EUC-JP"},
    [SET_KSX1001] = {K_DOUBLE, 0, "EUC-KR"},
    [SET_GB2312] = {K_DOUBLE, 0, "EUC-CN"},
    [SET_UNKNOWN] = {K_UNDECODABLE, 0, NULL},
};

/* Defined terms of PS3.3 C.12.1.1.2 and the initial G0/G1 they designate. */
typedef struct term_def {
    const char *name;
    unsigned char mode, g0, g1;
} term_def;

static const term_def TERMS[] = {
    {"ISO_IR 6", MODE_2022, SET_ASCII, SET_NONE},
    {"ISO_IR 100", MODE_2022, SET_ASCII, SET_LATIN1},
    {"ISO_IR 101", MODE_2022, SET_ASCII, SET_LATIN2},
    {"ISO_IR 109", MODE_2022, SET_ASCII, SET_LATIN3},
    {"ISO_IR 110", MODE_2022, SET_ASCII, SET_LATIN4},
    {"ISO_IR 144", MODE_2022, SET_ASCII, SET_CYRILLIC},
    {"ISO_IR 127", MODE_2022, SET_ASCII, SET_ARABIC},
    {"ISO_IR 126", MODE_2022, SET_ASCII, SET_GREEK},
    {"ISO_IR 138", MODE_2022, SET_ASCII, SET_HEBREW},
    {"ISO_IR 148", MODE_2022, SET_ASCII, SET_LATIN5},
    {"ISO_IR 203", MODE_2022, SET_ASCII, SET_LATIN9},
    {"ISO_IR 166", MODE_2022, SET_ASCII, SET_THAI},
    {"ISO_IR 13", MODE_2022, SET_ROMAJI, SET_KATAKANA},
    {"ISO_IR 192", MODE_UTF8, SET_NONE, SET_NONE},
    {"GB18030", MODE_GB18030, SET_NONE, SET_NONE},
    {"GBK", MODE_GBK, SET_NONE, SET_NONE},
    {"ISO 2022 IR 6", MODE_2022, SET_ASCII, SET_NONE},
    {"ISO 2022 IR 100", MODE_2022, SET_ASCII, SET_LATIN1},
    {"ISO 2022 IR 101", MODE_2022, SET_ASCII, SET_LATIN2},
    {"ISO 2022 IR 109", MODE_2022, SET_ASCII, SET_LATIN3},
    {"ISO 2022 IR 110", MODE_2022, SET_ASCII, SET_LATIN4},
    {"ISO 2022 IR 144", MODE_2022, SET_ASCII, SET_CYRILLIC},
    {"ISO 2022 IR 127", MODE_2022, SET_ASCII, SET_ARABIC},
    {"ISO 2022 IR 126", MODE_2022, SET_ASCII, SET_GREEK},
    {"ISO 2022 IR 138", MODE_2022, SET_ASCII, SET_HEBREW},
    {"ISO 2022 IR 148", MODE_2022, SET_ASCII, SET_LATIN5},
    {"ISO 2022 IR 203", MODE_2022, SET_ASCII, SET_LATIN9},
    {"ISO 2022 IR 166", MODE_2022, SET_ASCII, SET_THAI},
    {"ISO 2022 IR 13", MODE_2022, SET_ROMAJI, SET_KATAKANA},
    /* Multi-byte sets: G0 ones are only ever reached by escape sequences. */
    {"ISO 2022 IR 87", MODE_2022, SET_NONE, SET_NONE},
    {"ISO 2022 IR 159", MODE_2022, SET_NONE, SET_NONE},
    {"ISO 2022 IR 149", MODE_2022, SET_NONE, SET_KSX1001},
    {"ISO 2022 IR 58", MODE_2022, SET_NONE, SET_GB2312},
};

/* Designating escape sequences (the bytes after ESC), PS3.3 Tables C.12-3 and C.12-4. */
typedef struct escape_def {
    char seq[4];
    unsigned char reg, set;
} escape_def;

static const escape_def ESCAPES[] = {
    {"(B", 0, SET_ASCII},     {"(J", 0, SET_ROMAJI},     {"(I", 0, SET_KATAKANA},
    {")I", 1, SET_KATAKANA},  {"-A", 1, SET_LATIN1},     {"-B", 1, SET_LATIN2},
    {"-C", 1, SET_LATIN3},    {"-D", 1, SET_LATIN4},     {"-L", 1, SET_CYRILLIC},
    {"-G", 1, SET_ARABIC},    {"-F", 1, SET_GREEK},      {"-H", 1, SET_HEBREW},
    {"-M", 1, SET_LATIN5},    {"-b", 1, SET_LATIN9},     {"-T", 1, SET_THAI},
    {"$B", 0, SET_JIS0208},   {"$@", 0, SET_JIS0208},    {"$(B", 0, SET_JIS0208},
    {"$(D", 0, SET_JIS0212},  {"$)C", 1, SET_KSX1001},   {"$(C", 0, SET_KSX1001},
    {"$)A", 1, SET_GB2312},   {"$(A", 0, SET_GB2312},    {"$A", 0, SET_GB2312},
};

#define N_TERMS (sizeof TERMS / sizeof TERMS[0])
#define N_ESCAPES (sizeof ESCAPES / sizeof ESCAPES[0])
#define WHOLE_SLOT SET_COUNT /* iconv slot of the GB18030/GBK decoder */
#define N_SLOTS (SET_COUNT + 1)
#define ESC_MAX_INTERMEDIATES 3
#define PAIR_CHUNK 128 /* double-byte characters converted per iconv call */

enum slot_state { SLOT_UNTRIED, SLOT_OPEN, SLOT_FAILED };

struct s2f_charset {
    s2f_arena *arena;
    s2f_warnings *warn;
    const char *name;
    unsigned char mode, g0_init, g1_init, g1_fallback;
    iconv_t cd[N_SLOTS];
    unsigned char cd_state[N_SLOTS];
    uint16_t *table[SET_COUNT]; /* K_TABLE sets: code point of 0xA0 + i, 0 = undefined */
    uint8_t *scratch;
    size_t scratch_cap;
    int oom;
};

/* ---- output ---------------------------------------------------------------------- */

/* A bounded UTF-8 writer; `end` keeps one byte for the terminating NUL. */
typedef struct out {
    uint8_t *p, *end;
    unsigned replaced;
} out;

static void put_byte(out *o, uint8_t b)
{
    if (o->p < o->end)
        *o->p++ = b;
}

static void put_cp(out *o, uint32_t cp)
{
    if (o->end - o->p < 4)
        return; /* cannot happen: buffers are sized for the worst case */
    if (cp < 0x80) {
        *o->p++ = (uint8_t)cp;
    } else if (cp < 0x800) {
        *o->p++ = (uint8_t)(0xC0 | (cp >> 6));
        *o->p++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o->p++ = (uint8_t)(0xE0 | (cp >> 12));
        *o->p++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *o->p++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
        *o->p++ = (uint8_t)(0xF0 | (cp >> 18));
        *o->p++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        *o->p++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *o->p++ = (uint8_t)(0x80 | (cp & 0x3F));
    }
}

static void put_bad(out *o)
{
    put_cp(o, 0xFFFD);
    o->replaced++;
}

/* ---- iconv handles and tables ---------------------------------------------------- */

static const char *slot_iconv_name(const s2f_charset *cs, size_t slot)
{
    if (slot == WHOLE_SLOT)
        return cs->mode == MODE_GBK ? "GBK" : "GB18030";
    return SETS[slot].iconv_name;
}

/* The cached handle for a slot, opened on first use and reset; NULL if unavailable. */
static iconv_t *get_cd(s2f_charset *cs, size_t slot)
{
    if (cs->cd_state[slot] == SLOT_UNTRIED) {
        const char *name = slot_iconv_name(cs, slot);
        cs->cd[slot] = iconv_open("UTF-8", name);
        if (cs->cd[slot] == (iconv_t)-1) {
            cs->cd_state[slot] = SLOT_FAILED;
            s2f_warn(cs->warn, "character set %s is not available from iconv; its characters "
                               "are replaced by U+FFFD", name);
        } else {
            cs->cd_state[slot] = SLOT_OPEN;
        }
    }
    if (cs->cd_state[slot] != SLOT_OPEN)
        return NULL;
    iconv(cs->cd[slot], NULL, NULL, NULL, NULL);
    return &cs->cd[slot];
}

/* The code point of one byte in a single-byte set via iconv, 0 when undefined. */
static uint16_t iconv_one_byte(iconv_t cd, uint8_t b)
{
    char in[1] = {(char)b}, outb[4];
    char *ip = in, *op = outb;
    size_t il = 1, ol = sizeof outb;
    iconv(cd, NULL, NULL, NULL, NULL);
    if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 || il != 0)
        return 0;
    size_t n = (size_t)(op - outb);
    const uint8_t *u = (const uint8_t *)outb;
    if (n == 2)
        return (uint16_t)(((u[0] & 0x1F) << 6) | (u[1] & 0x3F));
    if (n == 3)
        return (uint16_t)(((u[0] & 0x0F) << 12) | ((u[1] & 0x3F) << 6) | (u[2] & 0x3F));
    return 0; /* ASCII or non-BMP: not a G1 character of these sets */
}

/* The table of 0xA0..0xFF for a K_TABLE set, built on first use; NULL on arena exhaustion. */
static const uint16_t *get_table(s2f_charset *cs, unsigned set)
{
    if (cs->table[set])
        return cs->table[set];
    uint16_t *t = s2f_arena_calloc(cs->arena, 96, sizeof *t);
    if (!t) {
        cs->oom = 1;
        return NULL;
    }
    iconv_t *cd = get_cd(cs, set);
    for (unsigned i = 0; cd && i < 96; i++)
        t[i] = iconv_one_byte(*cd, (uint8_t)(0xA0 + i));
    if (cd) { /* the table is all we need: give the handle back now */
        iconv_close(*cd);
        cs->cd_state[set] = SLOT_FAILED;
    }
    cs->table[set] = t;
    return t;
}

/* ---- ISO 2022 engine ------------------------------------------------------------- */

typedef struct regs {
    unsigned char g0, g1;
} regs;

static int is_double(unsigned set) { return SETS[set].kind == K_DOUBLE; }

/* Whether byte b ends a value or component for this kind (PS3.5 6.1.2.5.3). */
static int is_delimiter(s2f_text_kind kind, uint8_t b)
{
    switch (kind) {
    case S2F_TEXT_MULTI: return b == '\\';
    case S2F_TEXT_PN: return b == '\\' || b == '^' || b == '=';
    case S2F_TEXT_LONG: return b == '\r' || b == '\n' || b == '\f' || b == '\t';
    case S2F_TEXT_PLAIN: break;
    }
    return 0;
}

/* One GR-form byte (0x80..0xFF) of a single-byte set. */
static void put_single(s2f_charset *cs, unsigned set, uint8_t b, out *o)
{
    const uint16_t *t;
    if (b < 0xA0) { /* C1 controls are not part of any DICOM repertoire */
        put_bad(o);
        return;
    }
    switch (SETS[set].kind) {
    case K_LATIN1:
        put_cp(o, b);
        return;
    case K_KATAKANA:
        if (b >= 0xA1 && b <= 0xDF)
            put_cp(o, 0xFF61u + (b - 0xA1u));
        else
            put_bad(o);
        return;
    case K_TABLE:
        t = get_table(cs, set);
        if (t && t[b - 0xA0])
            put_cp(o, t[b - 0xA0]);
        else
            put_bad(o);
        return;
    default:
        put_bad(o);
    }
}

/* Convert n bytes of whole EUC characters of `unit` bytes each, replacing unmapped ones. */
static void put_euc(s2f_charset *cs, unsigned set, char *buf, size_t n, size_t unit, out *o)
{
    iconv_t *cd = get_cd(cs, set);
    char *ip = buf;
    size_t il = n;
    while (il > 0) {
        if (!cd) {
            put_bad(o);
            il -= unit;
            continue;
        }
        char *op = (char *)o->p;
        size_t ol = (size_t)(o->end - o->p);
        size_t r = iconv(*cd, &ip, &il, &op, &ol);
        o->p = (uint8_t *)op;
        if (r != (size_t)-1 || errno == E2BIG)
            break; /* done (E2BIG cannot happen: the buffer holds the worst case) */
        put_bad(o);
        ip += unit;
        il -= unit;
        iconv(*cd, NULL, NULL, NULL, NULL);
    }
}

static int is_pair_byte(uint8_t b, uint8_t high)
{
    b = (uint8_t)(b ^ high);
    return b >= 0x21 && b <= 0x7E;
}

/* Decode the run of double-byte characters of `set` starting at in[i] (GL form when
 * in[i] < 0x80, else GR form). Returns the index after the run. */
static size_t put_double_run(s2f_charset *cs, unsigned set, const uint8_t *in, size_t len,
                             size_t i, out *o)
{
    uint8_t high = in[i] & 0x80;
    uint8_t prefix = SETS[set].prefix;
    size_t unit = prefix ? 3 : 2;
    char buf[PAIR_CHUNK * 3];
    if (i + 1 >= len || !is_pair_byte(in[i], high) || !is_pair_byte(in[i + 1], high)) {
        put_bad(o); /* a lone byte: half a character */
        return i + 1;
    }
    while (i + 1 < len && is_pair_byte(in[i], high) && is_pair_byte(in[i + 1], high)) {
        size_t n = 0;
        while (n + unit <= sizeof buf && i + 1 < len && is_pair_byte(in[i], high) &&
               is_pair_byte(in[i + 1], high)) {
            if (prefix)
                buf[n++] = (char)prefix;
            buf[n++] = (char)(in[i] | 0x80);
            buf[n++] = (char)(in[i + 1] | 0x80);
            i += 2;
        }
        put_euc(cs, set, buf, n, unit, o);
    }
    return i;
}

/* Register an escape sequence of unknown meaning designates into, or -1. */
static int unknown_escape_register(const uint8_t *seq, size_t n)
{
    if (n < 2)
        return -1;
    uint8_t r = seq[0] == '$' && n >= 3 ? seq[1] : seq[0];
    if (r == '(' || (seq[0] == '$' && n == 2))
        return 0;
    if (r == ')' || r == '-')
        return 1;
    return -1; /* G2/G3 or a control function: no register we use */
}

/* Apply the escape sequence at in[i] (in[i] == ESC). Returns the index after it. */
static size_t apply_escape(const uint8_t *in, size_t len, size_t i, regs *r, out *o)
{
    size_t j = i + 1;
    while (j < len && in[j] >= 0x20 && in[j] <= 0x2F && j - i <= ESC_MAX_INTERMEDIATES)
        j++;
    if (j >= len) { /* truncated at the end of the value */
        put_bad(o);
        return len;
    }
    if (in[j] < 0x30 || in[j] > 0x7E) { /* not an escape sequence: a stray ESC */
        put_bad(o);
        return i + 1;
    }
    const uint8_t *seq = in + i + 1;
    size_t n = j - i; /* intermediates + final */
    for (size_t k = 0; k < N_ESCAPES; k++) {
        if (strlen(ESCAPES[k].seq) == n && memcmp(ESCAPES[k].seq, seq, n) == 0) {
            if (ESCAPES[k].reg == 0)
                r->g0 = ESCAPES[k].set;
            else
                r->g1 = ESCAPES[k].set;
            return j + 1;
        }
    }
    put_bad(o);
    int reg = unknown_escape_register(seq, n);
    if (reg == 0)
        r->g0 = SET_UNKNOWN;
    else if (reg == 1)
        r->g1 = SET_UNKNOWN;
    return j + 1;
}

/* A GL byte 0x21..0x7E while G0 holds a single-byte (or unknown) set. */
static void put_gl_single(s2f_charset *cs, unsigned g0, uint8_t b, out *o)
{
    unsigned kind = SETS[g0].kind;
    if (kind == K_ASCII)
        put_byte(o, b);
    else if (kind == K_UNDECODABLE)
        put_bad(o);
    else
        put_single(cs, g0, (uint8_t)(b | 0x80), o);
}

static void decode_2022(s2f_charset *cs, const uint8_t *in, size_t len, s2f_text_kind kind,
                        out *o)
{
    const regs initial = {cs->g0_init, cs->g1_init};
    regs r = initial;
    size_t i = 0;
    while (i < len) {
        uint8_t b = in[i];
        if (b == ESC) {
            i = apply_escape(in, len, i, &r, o);
        } else if (b <= 0x20 || b == 0x7F) { /* controls and SPACE: the same in every set */
            put_byte(o, b);
            if (is_delimiter(kind, b))
                r = initial;
            i++;
        } else if (b < 0x80 && !is_double(r.g0)) {
            if (is_delimiter(kind, b)) { /* a delimiter even while G0 is unknown */
                put_byte(o, b);
                r = initial;
            } else {
                put_gl_single(cs, r.g0, b, o);
            }
            i++;
        } else if (b < 0x80) {
            i = put_double_run(cs, r.g0, in, len, i, o);
        } else {
            unsigned g1 = r.g1 != SET_NONE ? r.g1 : cs->g1_fallback;
            if (is_double(g1) && b >= 0xA0) {
                i = put_double_run(cs, g1, in, len, i, o);
            } else {
                put_single(cs, g1, b, o);
                i++;
            }
        }
    }
}

/* ---- UTF-8 and GB engines -------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 when ill-formed; then *skip
 * receives the length of its maximal ill-formed subpart (one U+FFFD each). */
static size_t utf8_sequence(const uint8_t *s, size_t n, size_t *skip)
{
    uint8_t b = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF) {
        need = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        lo = b == 0xE0 ? 0xA0 : 0x80;
        hi = b == 0xED ? 0x9F : 0xBF;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        lo = b == 0xF0 ? 0x90 : 0x80;
        hi = b == 0xF4 ? 0x8F : 0xBF;
    } else {
        *skip = 1;
        return 0;
    }
    size_t k = 1;
    while (k < need && k < n && s[k] >= lo && s[k] <= hi) {
        lo = 0x80;
        hi = 0xBF;
        k++;
    }
    if (k == need)
        return need;
    *skip = k;
    return 0;
}

static int utf8_is_valid(const uint8_t *in, size_t len)
{
    size_t i = 0, skip;
    while (i < len) {
        size_t n = utf8_sequence(in + i, len - i, &skip);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}

static void decode_utf8(const uint8_t *in, size_t len, out *o)
{
    size_t i = 0, skip = 0;
    while (i < len) {
        size_t n = utf8_sequence(in + i, len - i, &skip);
        if (n) {
            for (size_t k = 0; k < n; k++)
                put_byte(o, in[i + k]);
            i += n;
        } else {
            put_bad(o);
            i += skip;
        }
    }
}

/* GB18030 / GBK: the whole value through iconv; each undecodable byte becomes U+FFFD. */
static void decode_whole(s2f_charset *cs, const uint8_t *in, size_t len, out *o)
{
    iconv_t *cd = get_cd(cs, WHOLE_SLOT);
    char *ip = (char *)(uintptr_t)in;
    size_t il = len;
    while (il > 0) {
        if (!cd) {
            if ((uint8_t)*ip < 0x80)
                put_byte(o, (uint8_t)*ip);
            else
                put_bad(o);
            ip++;
            il--;
            continue;
        }
        char *op = (char *)o->p;
        size_t ol = (size_t)(o->end - o->p);
        size_t r = iconv(*cd, &ip, &il, &op, &ol);
        o->p = (uint8_t *)op;
        if (r != (size_t)-1 || errno == E2BIG)
            break;
        put_bad(o); /* EILSEQ or EINVAL (truncated at the end) */
        ip++;
        il--;
        iconv(*cd, NULL, NULL, NULL, NULL);
    }
}

/* ---- decoding entry points ------------------------------------------------------- */

/* Index of the first byte that is not plain ASCII for this decoder (ESC counts as
 * non-ASCII in the ISO 2022 engine), or len. */
/* 1 when any byte of w is >= 0x80, or (esc) equals ESC: eight bytes per step. */
static int word_leaves_ascii(uint64_t w, int esc)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    if (w & highs)
        return 1;
    uint64_t x = w ^ (ones * ESC);
    return esc && ((x - ones) & ~x & highs) != 0;
}

static size_t ascii_prefix(const s2f_charset *cs, const uint8_t *in, size_t len)
{
    int esc = cs->mode == MODE_2022;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, in + i, 8);
        if (word_leaves_ascii(w, esc))
            break;
    }
    while (i < len && in[i] < 0x80 && !(esc && in[i] == ESC))
        i++;
    return i;
}

static char *finish(char *s, size_t n, size_t *out_len)
{
    if (s && out_len)
        *out_len = n;
    return s;
}

/* Latin-1 without escape sequences, straight into an exactly sized block; NULL when the
 * input has an ESC (or on arena exhaustion, with cs->oom set). */
static char *decode_latin1(s2f_charset *cs, const uint8_t *in, size_t len, size_t *out_len,
                           unsigned *replaced, int *not_latin1)
{
    size_t n = len;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == ESC) {
            *not_latin1 = 1;
            return NULL;
        }
        n += in[i] >= 0xA0 ? 1 : in[i] >= 0x80 ? 2 : 0;
    }
    uint8_t *s = s2f_arena_alloc(cs->arena, n + 1);
    if (!s) {
        cs->oom = 1;
        return NULL;
    }
    uint8_t *p = s;
    unsigned bad = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = in[i];
        if (b < 0x80) {
            *p++ = b;
        } else if (b < 0xA0) { /* C1: U+FFFD */
            *p++ = 0xEF;
            *p++ = 0xBF;
            *p++ = 0xBD;
            bad++;
        } else {
            *p++ = (uint8_t)(0xC0 | (b >> 6));
            *p++ = (uint8_t)(0x80 | (b & 0x3F));
        }
    }
    *p = 0;
    if (replaced)
        *replaced += bad;
    return finish((char *)s, n, out_len);
}

/* A scratch buffer of at least n bytes, reused across calls. */
static uint8_t *get_scratch(s2f_charset *cs, size_t n)
{
    if (cs->scratch_cap >= n)
        return cs->scratch;
    size_t cap = cs->scratch_cap ? cs->scratch_cap : 256;
    while (cap < n)
        cap = cap > SIZE_MAX / 2 ? n : cap * 2;
    uint8_t *p = s2f_arena_alloc(cs->arena, cap);
    if (!p)
        return NULL;
    cs->scratch = p;
    cs->scratch_cap = cap;
    return p;
}

/* The general path: decode into the scratch buffer, then copy out exactly. */
static char *decode_general(s2f_charset *cs, const uint8_t *in, size_t len, s2f_text_kind kind,
                            size_t *out_len, unsigned *replaced)
{
    if (len > (SIZE_MAX - 8) / 4)
        return NULL;
    uint8_t *buf = get_scratch(cs, 4 * len + 8); /* at most 3 bytes out per byte in */
    if (!buf)
        return NULL;
    out o = {buf, buf + 4 * len + 7, 0};
    if (cs->mode == MODE_UTF8)
        decode_utf8(in, len, &o);
    else if (cs->mode == MODE_2022)
        decode_2022(cs, in, len, kind, &o);
    else
        decode_whole(cs, in, len, &o);
    if (cs->oom)
        return NULL;
    size_t n = (size_t)(o.p - buf);
    char *s = s2f_arena_strndup(cs->arena, (const char *)buf, n);
    if (s && replaced)
        *replaced += o.replaced;
    return finish(s, n, out_len);
}

char *s2f_charset_decode(s2f_charset *cs, const uint8_t *in, size_t len, s2f_text_kind kind,
                         size_t *out_len, unsigned *replaced)
{
    if (!cs)
        return NULL;
    if (!in)
        len = 0;
    size_t ascii = ascii_prefix(cs, in, len);
    if (ascii == len || (cs->mode == MODE_UTF8 && utf8_is_valid(in + ascii, len - ascii)))
        return finish(s2f_arena_strndup(cs->arena, len ? (const char *)in : "", len), len,
                      out_len);
    if (cs->mode == MODE_2022 && cs->g0_init == SET_ASCII && cs->g1_init == SET_LATIN1) {
        int has_escape = 0;
        char *s = decode_latin1(cs, in, len, out_len, replaced, &has_escape);
        if (s || !has_escape)
            return s;
    }
    return decode_general(cs, in, len, kind, out_len, replaced);
}

/* ---- opening --------------------------------------------------------------------- */

/* Uppercase without ' ', '_' and '-', so "ISO-IR 100" and "iso_ir100" match "ISO_IR 100".
 * Returns 0 when the term is too long to be a defined term. */
static int normalize_term(const char *t, size_t n, char *buf, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == ' ' || c == '_' || c == '-')
            continue;
        if (k + 1 >= cap)
            return 0;
        buf[k++] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
    buf[k] = 0;
    return 1;
}

/* The defined term t[0..n) names; *exact is 0 when only a spelling variant matched. */
static const term_def *find_term(const char *t, size_t n, int *exact)
{
    char want[40], have[40];
    for (size_t k = 0; k < N_TERMS; k++) {
        if (strlen(TERMS[k].name) == n && memcmp(TERMS[k].name, t, n) == 0) {
            *exact = 1;
            return &TERMS[k];
        }
    }
    *exact = 0;
    if (!normalize_term(t, n, want, sizeof want))
        return NULL;
    for (size_t k = 0; k < N_TERMS; k++) {
        normalize_term(TERMS[k].name, strlen(TERMS[k].name), have, sizeof have);
        if (strcmp(want, have) == 0)
            return &TERMS[k];
    }
    return NULL;
}

static s2f_charset *new_decoder(s2f_arena *a, s2f_warnings *w, unsigned mode)
{
    s2f_charset *cs = s2f_arena_calloc(a, 1, sizeof *cs);
    if (!cs)
        return NULL;
    cs->arena = a;
    cs->warn = w;
    cs->name = "";
    cs->mode = (unsigned char)mode;
    cs->g0_init = SET_ASCII;
    cs->g1_init = SET_NONE;
    cs->g1_fallback = SET_NONE;
    return cs;
}

/* Take value number `index` of (0008,0005) into the decoder. */
static void add_term(s2f_charset *cs, const char *t, size_t n, size_t index)
{
    int exact;
    char shown[65];
    while (n && (t[0] == ' ' || t[0] == '\0'))
        t++, n--;
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\0'))
        n--;
    if (n == 0)
        return; /* an empty value 1 means the default repertoire */
    const term_def *d = find_term(t, n, &exact);
    s2f_escape_to_buf(t, n, 0, shown, sizeof shown); /* issue 9 #8: the one escaping */
    if (!d) {
        s2f_warn(cs->warn, "unknown Specific Character Set term \"%s\": read as the default "
                           "repertoire", shown);
        return;
    }
    if (!exact)
        s2f_warn(cs->warn, "Specific Character Set term \"%s\" read as \"%s\"", shown, d->name);
    if (index == 0) {
        cs->name = d->name;
        cs->mode = d->mode;
        cs->g0_init = d->g0 != SET_NONE ? d->g0 : SET_ASCII;
        cs->g1_init = d->g1;
    } else if (cs->g1_fallback == SET_NONE && d->mode == MODE_2022) {
        cs->g1_fallback = d->g1;
    }
}

s2f_charset *s2f_charset_open(const uint8_t *spec, size_t spec_len, s2f_arena *a,
                              s2f_warnings *w)
{
    s2f_charset *cs = new_decoder(a, w, MODE_2022);
    if (!cs || !spec)
        return cs;
    const char *s = (const char *)spec;
    size_t start = 0, index = 0;
    for (size_t i = 0; i <= spec_len; i++) {
        if (i == spec_len || s[i] == '\\') {
            add_term(cs, s + start, i - start, index++);
            start = i + 1;
        }
    }
    return cs;
}

s2f_charset *s2f_charset_open_utf8(s2f_arena *a)
{
    s2f_charset *cs = new_decoder(a, NULL, MODE_UTF8);
    if (cs)
        cs->name = "ISO_IR 192";
    return cs;
}

void s2f_charset_close(s2f_charset *cs)
{
    if (!cs)
        return;
    for (size_t k = 0; k < N_SLOTS; k++) {
        if (cs->cd_state[k] == SLOT_OPEN)
            iconv_close(cs->cd[k]);
        cs->cd_state[k] = SLOT_FAILED;
    }
}

const char *s2f_charset_name(const s2f_charset *cs) { return cs ? cs->name : ""; }
