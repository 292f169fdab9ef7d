/*
 * test_escape.c - the one escaping of outside text (src/util/escape.c, issue 9 defect 8):
 * what is escaped and how, in bare text, quoted dump values and the delivery's bounded
 * form, and cutting at whole characters.
 */
#include "check.h"

#include "util/escape.h"

static char buf[256];

static const char *bare(const char *s, size_t n) { return s2f_escape_to_buf(s, n, 0, buf, sizeof buf); }

TEST(issue9_8_controls_and_del_as_hex)
{
    CHECK_STR(bare("a\x1b[2J\nb\r\t\x7f", 10), "a\\x1B[2J\\x0Ab\\x0D\\x09\\x7F");
    CHECK_STR(bare("nul\0x", 5), "nul\\x00x");
}

TEST(issue9_8_utf8_kept_invalid_bytes_escaped)
{
    CHECK_STR(bare("caf\xc3\xa9 \xe4\xb8\xad", 9), "caf\xc3\xa9 \xe4\xb8\xad");
    CHECK_STR(bare("x\xff" "y", 3), "x\\xFFy");
    CHECK_STR(bare("\xc0\xaf", 2), "\\xC0\\xAF");             /* overlong */
    CHECK_STR(bare("\xed\xa0\x80", 3), "\\xED\\xA0\\x80");     /* a surrogate */
    CHECK_STR(bare("\xe4\xb8", 2), "\\xE4\\xB8");             /* cut short */
}

TEST(issue9_8_c1_and_direction_marks_as_u)
{
    CHECK_STR(bare("\xc2\x9b" "31m", 5), "\\u009B31m");
    CHECK_STR(bare("a\xe2\x80\xae" "b", 5), "a\\u202Eb");
    CHECK_STR(bare("\xe2\x80\xa8", 3), "\\u2028");
}

TEST(issue9_8_quoted_and_backslash)
{
    CHECK_STR(bare("a\\b\"c", 5), "a\\b\"c"); /* bare: a backslash stays */
    CHECK_STR(s2f_escape_to_buf("a\\b\"c\n", 6, S2F_ESC_QUOTED, buf, sizeof buf),
              "a\\\\b\\\"c\\n");
    CHECK_STR(s2f_escape_to_buf("a\\b", 3, S2F_ESC_BACKSLASH, buf, sizeof buf), "a\\\\b");
}

TEST(issue9_8_cut_at_whole_characters)
{
    char small[5];
    CHECK_STR(s2f_escape_to_buf("ab\x1b" "cd", 5, 0, small, sizeof small), "ab");
    CHECK_STR(s2f_escape_to_buf("abc\xc3\xa9", 5, 0, small, sizeof small), "abc");
    CHECK_STR(s2f_escape_text("abcdefghij", 10, buf, 8), "abcd...");
    CHECK_STR(s2f_escape_text("a\x1b", 2, buf, 8), "a\\x1B");
}

TEST(issue9_8_sink_and_buffer_agree)
{
    static s2f_sink s;
    const char text[] = "x\x1b\xff\xc2\x85\xe2\x81\xa6\"\\y\xc3\xa9";
    s2f_sink_init(&s, NULL);
    s2f_escape_to_sink(&s, text, sizeof text - 1, S2F_ESC_QUOTED);
    s2f_escape_to_buf(text, sizeof text - 1, S2F_ESC_QUOTED, buf, sizeof buf);
    CHECK(s.len == strlen(buf) && !memcmp(s.buf, buf, s.len));
    CHECK_STR(buf, "x\\x1B\\xFF\\u0085\\u2066\\\"\\\\y\xc3\xa9");
}

int main(void)
{
    RUN(issue9_8_controls_and_del_as_hex);
    RUN(issue9_8_utf8_kept_invalid_bytes_escaped);
    RUN(issue9_8_c1_and_direction_marks_as_u);
    RUN(issue9_8_quoted_and_backslash);
    RUN(issue9_8_cut_at_whole_characters);
    RUN(issue9_8_sink_and_buffer_agree);
    CHECK_DONE();
}
