/*
 * test_charset.c - unit tests of Specific Character Set decoding (src/dicom/charset.c, M3).
 *
 * Every case asserts the exact UTF-8 bytes produced. Encoded inputs are hard-coded C
 * literals (computed once with Python's codecs); the PN examples follow PS3.5 Annexes H
 * (Japanese), I (Korean) and K (Chinese). Inputs are copied into exactly sized heap
 * blocks so that AddressSanitizer (make SAN=1 unit) catches any read beyond len.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dicom/charset.h"

static s2f_arena *arena;
static s2f_warnings warnings;
static size_t last_len;

static void reset(void)
{
    if (arena)
        s2f_arena_free(arena);
    arena = s2f_arena_new(0);
    memset(&warnings, 0, sizeof warnings);
    warnings.arena = arena;
}

static s2f_charset *open_cs(const char *spec)
{
    reset();
    return s2f_charset_open((const uint8_t *)spec, spec ? strlen(spec) : 0, arena, &warnings);
}

/* Decode bytes[0..len) from an exactly sized heap copy; *replaced accumulates. */
static const char *dec_n(s2f_charset *cs, const char *bytes, size_t len, s2f_text_kind kind,
                         unsigned *replaced)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (len)
        memcpy(copy, bytes, len);
    last_len = (size_t)-1;
    const char *s = s2f_charset_decode(cs, len ? copy : NULL, len, kind, &last_len, replaced);
    free(copy);
    if (s && last_len != strlen(s))
        return "(out_len mismatch)";
    return s;
}

#define DEC(cs, lit, kind, rep) dec_n((cs), (lit), sizeof(lit) - 1, (kind), (rep))

/* Decode with a one-term decoder and no replacement expected. */
static const char *dec_clean(const char *spec, const char *bytes, size_t len, unsigned *rep)
{
    s2f_charset *cs = open_cs(spec);
    *rep = 0;
    const char *s = dec_n(cs, bytes, len, S2F_TEXT_PN, rep);
    s2f_charset_close(cs);
    return s;
}

#define CLEAN(spec, lit, expect)                                                            \
    do {                                                                                    \
        unsigned rep_;                                                                      \
        CHECK_STR(dec_clean((spec), (lit), sizeof(lit) - 1, &rep_), (expect));              \
        CHECK(rep_ == 0);                                                                   \
        CHECK(warnings.n == 0);                                                             \
    } while (0)

TEST(ascii_any_charset)
{
    CLEAN(NULL, "Doe^John", "Doe^John");
    CLEAN("", "Doe^John", "Doe^John");
    CLEAN("ISO_IR 6", "Doe^John", "Doe^John");
    CLEAN("ISO_IR 100", "Doe^John", "Doe^John");
    CLEAN("ISO 2022 IR 6\\ISO 2022 IR 87", "Doe^John", "Doe^John");
    CLEAN("ISO_IR 192", "Doe^John", "Doe^John");
    CLEAN("GB18030", "Doe^John", "Doe^John");
    CHECK(last_len == 8);
}

TEST(latin1)
{
    CLEAN("ISO_IR 100", "Buc^J\xe9r\xf4me", "Buc^J\xc3\xa9r\xc3\xb4me");
    CHECK(last_len == 12);
    CLEAN("ISO 2022 IR 100", "Buc^J\xe9r\xf4me", "Buc^J\xc3\xa9r\xc3\xb4me");
    CLEAN("ISO_IR 100", "\xa0\xff", "\xc2\xa0\xc3\xbf");
}

TEST(latin1_c1_is_replaced)
{
    s2f_charset *cs = open_cs("ISO_IR 100");
    unsigned rep = 0;
    CHECK_STR(DEC(cs, "it\x92s \xe9", S2F_TEXT_PLAIN, &rep), "it\xef\xbf\xbds \xc3\xa9");
    CHECK(rep == 1);
    CHECK(last_len == 9);
    s2f_charset_close(cs);
}

TEST(cyrillic)
{
    CLEAN("ISO_IR 144", "\xbb\xee\xda" "ce\xdc\xd1yp\xd3",
          "\xd0\x9b\xd1\x8e\xd0\xba" "ce\xd0\xbc\xd0\xb1yp\xd0\xb3"); /* Люкceмбypг */
}

TEST(arabic)
{
    CLEAN("ISO_IR 127", "\xe2\xc8\xc7\xe6\xea^\xe4\xe6\xd2\xc7\xd1",
          "\xd9\x82\xd8\xa8\xd8\xa7\xd9\x86\xd9\x8a^\xd9\x84\xd9\x86\xd8\xb2\xd8\xa7\xd8\xb1");
}

TEST(greek)
{
    CLEAN("ISO_IR 126", "\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2",
          "\xce\x94\xce\xb9\xce\xbf\xce\xbd\xcf\x85\xcf\x83\xce\xb9\xce\xbf\xcf\x82");
}

TEST(hebrew)
{
    CLEAN("ISO_IR 138", "\xf9\xf8\xe5\xef^\xe3\xe1\xe5\xf8\xe4",
          "\xd7\xa9\xd7\xa8\xd7\x95\xd7\x9f^\xd7\x93\xd7\x91\xd7\x95\xd7\xa8\xd7\x94");
}

TEST(other_single_byte_sets)
{
    CLEAN("ISO_IR 101", "\xa3\xf3" "d\xbc", "\xc5\x81\xc3\xb3" "d\xc5\xba");  /* Łódź */
    CLEAN("ISO_IR 148", "\xdei\xfeli", "\xc5\x9ei\xc5\x9fli");                /* Şişli */
    CLEAN("ISO_IR 203", "\xa4uro", "\xe2\x82\xacuro");                         /* €uro */
    CLEAN("ISO_IR 166", "\xc0\xd2\xc9\xd2\xe4\xb7\xc2",
          "\xe0\xb8\xa0\xe0\xb8\xb2\xe0\xb8\xa9\xe0\xb8\xb2\xe0\xb9\x84\xe0\xb8\x97\xe0\xb8\xa2");
}

TEST(undefined_byte_in_set_is_replaced)
{
    s2f_charset *cs = open_cs("ISO_IR 127"); /* 0xA1 is not defined in ISO 8859-6 */
    unsigned rep = 0;
    CHECK_STR(DEC(cs, "a\xa1" "b", S2F_TEXT_PLAIN, &rep), "a\xef\xbf\xbd" "b");
    CHECK(rep == 1);
    s2f_charset_close(cs);
}

TEST(utf8_pass_through)
{
    CLEAN("ISO_IR 192", "Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe4\xb8\x9c=\xf0\xa0\x80\x80",
          "Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe4\xb8\x9c=\xf0\xa0\x80\x80");
}

TEST(utf8_invalid_replaced)
{
    s2f_charset *cs = open_cs("ISO_IR 192");
    unsigned rep = 0;
    /* lone 0xFF; truncated 3-byte sequence (one U+FFFD); surrogate ED A0 80 (three). */
    CHECK_STR(DEC(cs, "a\xff" "b\xe4\xb8 c\xed\xa0\x80", S2F_TEXT_PLAIN, &rep),
              "a\xef\xbf\xbd" "b\xef\xbf\xbd c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    CHECK(rep == 5);
    rep = 0;
    CHECK_STR(DEC(cs, "\xc0\xaf\xe4\xb8", S2F_TEXT_PLAIN, &rep),
              "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* overlong; truncated at the end */
    CHECK(rep == 3);
    s2f_charset_close(cs);
}

TEST(json_utf8_decoder)
{
    reset();
    s2f_charset *cs = s2f_charset_open_utf8(arena);
    unsigned rep = 0;
    CHECK_STR(s2f_charset_name(cs), "ISO_IR 192");
    CHECK_STR(DEC(cs, "J\xc3\xa9r\xc3\xb4me", S2F_TEXT_PN, &rep), "J\xc3\xa9r\xc3\xb4me");
    CHECK_STR(DEC(cs, "x\x80y", S2F_TEXT_PN, &rep), "x\xef\xbf\xbdy");
    CHECK(rep == 1);
    s2f_charset_close(cs);
}

TEST(gb18030)
{
    CLEAN("GB18030", "Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab=",
          "Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe4\xb8\x9c="); /* 王^小东 */
    /* a four-byte sequence (U+20000) and the euro sign */
    CLEAN("GB18030", "\xa2\xe3\x95" "2\x82" "6", "\xe2\x82\xac\xf0\xa0\x80\x80");
}

TEST(gbk)
{
    CLEAN("GBK", "Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab=",
          "Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe4\xb8\x9c=");
    s2f_charset *cs = open_cs("GBK");
    unsigned rep = 0;
    CHECK_STR(DEC(cs, "\xcd\xf5\xcd", S2F_TEXT_PLAIN, &rep), "\xe7\x8e\x8b\xef\xbf\xbd");
    CHECK(rep == 1);
    s2f_charset_close(cs);
}

/* PS3.5 H.3.1: Yamada^Tarou=山田^太郎=やまだ^たろう */
static const char JP_H31[] = "Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B="
                             "\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B";
static const char JP_H31_UTF8[] =
    "Yamada^Tarou=\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e="
    "\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81\x86";

TEST(japanese_ir87)
{
    CLEAN("\\ISO 2022 IR 87", JP_H31, JP_H31_UTF8);
    CLEAN("ISO 2022 IR 6\\ISO 2022 IR 87", JP_H31, JP_H31_UTF8);
    CHECK_STR(s2f_charset_name(open_cs("\\ISO 2022 IR 87")), "");
}

TEST(japanese_ir13_ir87)
{
    /* PS3.5 H.3.2: ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう, G0 back to romaji with ESC ( J */
    CLEAN("ISO 2022 IR 13\\ISO 2022 IR 87",
          "\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J="
          "\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b(J",
          "\xef\xbe\x94\xef\xbe\x8f\xef\xbe\x80\xef\xbe\x9e^\xef\xbe\x80\xef\xbe\x9b\xef\xbd\xb3="
          "\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e="
          "\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81\x86");
}

TEST(katakana_ir13)
{
    CLEAN("ISO_IR 13", "\xd4\xcf\xc0\xde^\xc0\xdb\xb3",
          "\xef\xbe\x94\xef\xbe\x8f\xef\xbe\x80\xef\xbe\x9e^\xef\xbe\x80\xef\xbe\x9b\xef\xbd\xb3");
    s2f_charset *cs = open_cs("ISO_IR 13");
    unsigned rep = 0;
    CHECK_STR(DEC(cs, "\xe0", S2F_TEXT_PN, &rep), "\xef\xbf\xbd"); /* outside 0xA1-0xDF */
    CHECK(rep == 1);
}

TEST(jis_x0212_ir159)
{
    /* 丂 (U+4E02) is JIS X 0212 0x3021 */
    CLEAN("\\ISO 2022 IR 87\\ISO 2022 IR 159", "A\x1b$(D0!\x1b(B" "B", "A\xe4\xb8\x82" "B");
}

TEST(korean_ir149)
{
    /* PS3.5 I.2: Hong^Gildong=洪^吉洞=홍^길동 */
    CLEAN("\\ISO 2022 IR 149",
          "Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^"
          "\x1b$)C\xb1\xe6\xb5\xbf",
          "Hong^Gildong=\xe6\xb4\xaa^\xe5\x90\x89\xe6\xb4\x9e=\xed\x99\x8d^"
          "\xea\xb8\xb8\xeb\x8f\x99");
    /* GR bytes without a designation are read with the declared G1 set */
    CLEAN("\\ISO 2022 IR 149", "\xc8\xab", "\xed\x99\x8d");
}

TEST(chinese_ir58)
{
    /* PS3.5 K.2: Zhang^XiaoDong=章^小东= */
    CLEAN("\\ISO 2022 IR 58", "Zhang^XiaoDong=\x1b$)A\xd5\xc2^\x1b$)A\xd0\xa1\xb6\xab=",
          "Zhang^XiaoDong=\xe7\xab\xa0^\xe5\xb0\x8f\xe4\xb8\x9c=");
}

TEST(undeclared_escape_still_decoded)
{
    CLEAN("ISO_IR 100", "\x1b$B;3ED\x1b(B", "\xe5\xb1\xb1\xe7\x94\xb0");
}

TEST(reset_at_delimiters)
{
    /* G1 switched to Cyrillic (ESC - L); 0xBB is Л in Cyrillic, » in Latin-1. */
    static const char v[] = "\x1b-L\xbb^\xbb\\\xbb\r\xbb";
    s2f_charset *cs = open_cs("ISO 2022 IR 100\\ISO 2022 IR 144");
    unsigned rep = 0;
    CHECK_STR(s2f_charset_name(cs), "ISO 2022 IR 100");
    CHECK_STR(DEC(cs, v, S2F_TEXT_PN, &rep),
              "\xd0\x9b^\xc2\xbb\\\xc2\xbb\r\xc2\xbb");
    CHECK_STR(DEC(cs, v, S2F_TEXT_MULTI, &rep),
              "\xd0\x9b^\xd0\x9b\\\xc2\xbb\r\xc2\xbb");
    CHECK_STR(DEC(cs, v, S2F_TEXT_LONG, &rep),
              "\xd0\x9b^\xd0\x9b\\\xd0\x9b\r\xc2\xbb");
    CHECK_STR(DEC(cs, v, S2F_TEXT_PLAIN, &rep),
              "\xd0\x9b^\xd0\x9b\\\xd0\x9b\r\xd0\x9b");
    CHECK(rep == 0);
    s2f_charset_close(cs);
}

TEST(double_byte_bytes_are_not_delimiters)
{
    /* ま is JIS 0x245E: its second byte is '^' and must not split the name */
    CLEAN("\\ISO 2022 IR 87", "\x1b$B$^\x1b(B", "\xe3\x81\xbe");
}

TEST(unknown_term)
{
    s2f_charset *cs = open_cs("ISO_IR 999");
    unsigned rep = 0;
    CHECK(warnings.n == 1);
    CHECK(strstr(warnings.list[0].message, "ISO_IR 999") != NULL);
    CHECK_STR(s2f_charset_name(cs), "");
    CHECK_STR(DEC(cs, "J\xe9r\xf4me", S2F_TEXT_PN, &rep), "J\xef\xbf\xbdr\xef\xbf\xbdme");
    CHECK(rep == 2);
    s2f_charset_close(cs);
}

TEST(term_spelling_variant)
{
    s2f_charset *cs = open_cs("ISO-IR 100 ");
    unsigned rep = 0;
    CHECK(warnings.n == 1);
    CHECK_STR(s2f_charset_name(cs), "ISO_IR 100");
    CHECK_STR(DEC(cs, "\xe9", S2F_TEXT_PN, &rep), "\xc3\xa9");
    s2f_charset_close(cs);
}

TEST(unknown_escape_sequence)
{
    s2f_charset *cs = open_cs("ISO 2022 IR 6");
    unsigned rep = 0;
    /* ESC ( K designates an unknown G0 set: replaced until the next delimiter */
    CHECK_STR(DEC(cs, "a\x1b(Kbc^d", S2F_TEXT_PN, &rep),
              "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd^d");
    CHECK(rep == 3);
    s2f_charset_close(cs);
}

TEST(truncated_escape)
{
    s2f_charset *cs = open_cs("\\ISO 2022 IR 87");
    unsigned rep = 0;
    CHECK_STR(DEC(cs, "abc\x1b", S2F_TEXT_PN, &rep), "abc\xef\xbf\xbd");
    CHECK_STR(DEC(cs, "abc\x1b$", S2F_TEXT_PN, &rep), "abc\xef\xbf\xbd");
    CHECK_STR(DEC(cs, "abc\x1b$(", S2F_TEXT_PN, &rep), "abc\xef\xbf\xbd");
    CHECK(rep == 3);
    rep = 0;
    /* half a double-byte character at the end */
    CHECK_STR(DEC(cs, "\x1b$B;3E", S2F_TEXT_PN, &rep), "\xe5\xb1\xb1\xef\xbf\xbd");
    CHECK(rep == 1);
    s2f_charset_close(cs);
}

TEST(empty_input)
{
    s2f_charset *cs = open_cs("\\ISO 2022 IR 87");
    unsigned rep = 0;
    CHECK_STR(dec_n(cs, "", 0, S2F_TEXT_PN, &rep), "");
    CHECK(last_len == 0);
    CHECK(rep == 0);
    s2f_charset_close(cs);
    cs = open_cs("ISO_IR 192");
    CHECK_STR(dec_n(cs, "", 0, S2F_TEXT_PN, NULL), "");
    s2f_charset_close(cs);
}

TEST(handles_are_reused)
{
    s2f_charset *cs = open_cs("\\ISO 2022 IR 87");
    unsigned rep = 0;
    for (int i = 0; i < 100; i++)
        CHECK_STR(DEC(cs, JP_H31, S2F_TEXT_PN, &rep), JP_H31_UTF8);
    CHECK(rep == 0);
    s2f_charset_close(cs);
}

int main(void)
{
    RUN(ascii_any_charset);
    RUN(latin1);
    RUN(latin1_c1_is_replaced);
    RUN(cyrillic);
    RUN(arabic);
    RUN(greek);
    RUN(hebrew);
    RUN(other_single_byte_sets);
    RUN(undefined_byte_in_set_is_replaced);
    RUN(utf8_pass_through);
    RUN(utf8_invalid_replaced);
    RUN(json_utf8_decoder);
    RUN(gb18030);
    RUN(gbk);
    RUN(japanese_ir87);
    RUN(japanese_ir13_ir87);
    RUN(katakana_ir13);
    RUN(jis_x0212_ir159);
    RUN(korean_ir149);
    RUN(chinese_ir58);
    RUN(undeclared_escape_still_decoded);
    RUN(reset_at_delimiters);
    RUN(double_byte_bytes_are_not_delimiters);
    RUN(unknown_term);
    RUN(term_spelling_variant);
    RUN(unknown_escape_sequence);
    RUN(truncated_escape);
    RUN(empty_input);
    RUN(handles_are_reused);
    s2f_arena_free(arena);
    CHECK_DONE();
}
