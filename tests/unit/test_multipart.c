/*
 * test_multipart.c - the streaming multipart/related reader (src/gateway/multipart.c) and
 * s2f_media_type_parse: RFC 2046 boundaries, every chunking of a body giving the same
 * parts, linear work fed one byte at a time, limits, and one clear message per malformed
 * case.
 */
#include "check.h"
#include "gateway/multipart.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- a recorder */

/* Every callback appended to one text: "<i ct|cl>" data "</i>". */
typedef struct rec {
    char *log;
    size_t len, cap;
    size_t data_calls;
    int stop_at_begin; /* stop when part_begin of this index + 1 comes */
} rec;

static void put(rec *r, const void *p, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->len + n + 1) * 2;
        r->log = realloc(r->log, cap);
        if (!r->log)
            abort();
        r->cap = cap;
    }
    memcpy(r->log + r->len, p, n);
    r->len += n;
    r->log[r->len] = 0;
}

static int on_begin(void *ctx, size_t i, const char *ct, const char *cl)
{
    rec *r = ctx;
    char b[64];
    snprintf(b, sizeof b, "<%zu ", i);
    put(r, b, strlen(b));
    put(r, ct, strlen(ct));
    put(r, "|", 1);
    put(r, cl, strlen(cl));
    put(r, ">", 1);
    return r->stop_at_begin && (size_t)r->stop_at_begin == i + 1;
}

static int on_data(void *ctx, size_t i, const uint8_t *d, size_t n)
{
    rec *r = ctx;
    (void)i;
    r->data_calls++;
    put(r, d, n);
    return 0;
}

static int on_end(void *ctx, size_t i)
{
    rec *r = ctx;
    char b[32];
    snprintf(b, sizeof b, "</%zu>", i);
    put(r, b, strlen(b));
    return 0;
}

/* Reads body in chunks of the given sizes (cycled; NULL = one chunk); the log is in
 * r->log, the code returned, the message in *err. */
static s2f_code read_body(const char *boundary, const s2f_mp_limits *lim, const char *body,
                          size_t n, const size_t *sizes, size_t nsizes, rec *r, s2f_error *err)
{
    memset(r, 0, sizeof *r);
    put(r, "", 0);
    s2f_mp_callbacks cb = {on_begin, on_data, on_end, r};
    s2f_mp_reader *mp = s2f_mp_new(boundary, lim, &cb);
    if (!mp)
        abort();
    s2f_code rc = S2F_OK;
    size_t at = 0, k = 0;
    while (at < n && !rc) {
        size_t c = sizes ? sizes[k++ % nsizes] : n;
        if (c > n - at)
            c = n - at;
        rc = s2f_mp_feed(mp, (const uint8_t *)body + at, c, err);
        at += c;
    }
    if (!rc)
        rc = s2f_mp_finish(mp, err);
    s2f_mp_free(mp);
    return rc;
}

static s2f_code read1(const char *boundary, const char *body, rec *r, s2f_error *err)
{
    return read_body(boundary, NULL, body, strlen(body), NULL, 0, r, err);
}

/* A STOW-like body: preamble, padding, folded and case-varied headers, a part holding
 * boundary-like text and CRs, an empty part, an epilogue. */
static const char SAMPLE[] =
    "preamble, ignored\r\n"
    "--XyZ \t\r\n"
    "content-TYPE: application/dicom;\r\n"
    "\ttransfer-syntax=1.2.840.10008.1.2.1\r\n"
    "CONTENT-LOCATION:  a/b.dcm \r\n"
    "X-Other: y\r\n"
    "\r\n"
    "DICM\r\r\n\r\n--XyY--nope? no: \r\n--Xy\r\n-\r\n--X--XyZ\r\r"
    "\r\n--XyZ\r\n"
    "Content-Type: application/dicom+json\r\n"
    "\r\n"
    "[{}]\r\n"
    "\r\n--XyZ\r\n"
    "\r\n--XyZ\r\n"
    "\r\n"
    "\r\n"
    "\r\n--XyZ--\r\n"
    "epilogue --XyZ garbage\r\n";

static const char SAMPLE_LOG[] =
    "<0 application/dicom;\ttransfer-syntax=1.2.840.10008.1.2.1|a/b.dcm>"
    "DICM\r\r\n\r\n--XyY--nope? no: \r\n--Xy\r\n-\r\n--X--XyZ\r\r</0>"
    "<1 application/dicom+json|>[{}]\r\n</1>"
    "<2 |></2>"
    "<3 |>\r\n</3>";

/* ---------------------------------------------------------------- tests */

TEST(sample_body_parts)
{
    rec r;
    s2f_error e = {0};
    CHECK(read1("XyZ", SAMPLE, &r, &e) == S2F_OK);
    CHECK_STR(r.log, SAMPLE_LOG);
    free(r.log);
}

TEST(sample_every_split_gives_the_same_parts)
{
    size_t n = sizeof SAMPLE - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        rec r;
        s2f_error e = {0};
        size_t sizes[2] = {cut ? cut : n, n};
        CHECK(read_body("XyZ", NULL, SAMPLE, n, sizes, 2, &r, &e) == S2F_OK);
        int same = !strcmp(r.log, SAMPLE_LOG);
        free(r.log);
        CHECK(same);
    }
}

TEST(sample_every_two_cuts_give_the_same_parts)
{
    size_t n = sizeof SAMPLE - 1;
    for (size_t a = 1; a < n; a++)
        for (size_t b = a + 1; b < n; b++) {
            s2f_error e = {0};
            rec r;
            memset(&r, 0, sizeof r);
            put(&r, "", 0);
            s2f_mp_callbacks cb = {on_begin, on_data, on_end, &r};
            s2f_mp_reader *mp = s2f_mp_new("XyZ", NULL, &cb);
            const uint8_t *p = (const uint8_t *)SAMPLE;
            int ok = s2f_mp_feed(mp, p, a, &e) == S2F_OK &&
                     s2f_mp_feed(mp, p + a, b - a, &e) == S2F_OK &&
                     s2f_mp_feed(mp, p + b, n - b, &e) == S2F_OK &&
                     s2f_mp_finish(mp, &e) == S2F_OK && !strcmp(r.log, SAMPLE_LOG);
            s2f_mp_free(mp);
            free(r.log);
            CHECK(ok);
        }
}

TEST(sample_one_byte_at_a_time)
{
    size_t one = 1;
    rec r;
    s2f_error e = {0};
    CHECK(read_body("XyZ", NULL, SAMPLE, sizeof SAMPLE - 1, &one, 1, &r, &e) == S2F_OK);
    CHECK_STR(r.log, SAMPLE_LOG);
    free(r.log);
}

TEST(empty_feeds_change_nothing)
{
    rec r;
    s2f_error e = {0};
    memset(&r, 0, sizeof r);
    put(&r, "", 0);
    s2f_mp_callbacks cb = {on_begin, on_data, on_end, &r};
    s2f_mp_reader *mp = s2f_mp_new("XyZ", NULL, &cb);
    const uint8_t *p = (const uint8_t *)SAMPLE;
    size_t n = sizeof SAMPLE - 1;
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++)
        ok = s2f_mp_feed(mp, p + i, 0, &e) == S2F_OK && s2f_mp_feed(mp, p + i, 1, &e) == S2F_OK;
    ok = ok && s2f_mp_finish(mp, &e) == S2F_OK && s2f_mp_parts(mp) == 4;
    s2f_mp_free(mp);
    int same = !strcmp(r.log, SAMPLE_LOG);
    free(r.log);
    CHECK(ok);
    CHECK(same);
}

/* Linear work: a body made of near-delimiters (the worst case of a naive rescanning
 * search), fed one byte at a time, costs a bounded number of steps per byte. */
static uint64_t work_of(const char *boundary, const char *unit, size_t reps, size_t chunk,
                        size_t *data_calls, uint64_t *bytes)
{
    size_t ul = strlen(unit);
    size_t bl = strlen(boundary);
    size_t n = 0, cap = ul * reps + 2 * bl + 64;
    char *body = malloc(cap);
    n += (size_t)sprintf(body + n, "--%s\r\n\r\n", boundary);
    for (size_t i = 0; i < reps; i++, n += ul)
        memcpy(body + n, unit, ul);
    n += (size_t)sprintf(body + n, "\r\n--%s--", boundary);
    rec r;
    s2f_error e = {0};
    s2f_mp_limits lim = {0, 0, (uint64_t)n, 0};
    memset(&r, 0, sizeof r);
    put(&r, "", 0);
    s2f_mp_callbacks cb = {on_begin, on_data, on_end, &r};
    s2f_mp_reader *mp = s2f_mp_new(boundary, &lim, &cb);
    s2f_code rc = S2F_OK;
    for (size_t at = 0; at < n && !rc; at += chunk)
        rc = s2f_mp_feed(mp, (const uint8_t *)body + at, at + chunk <= n ? chunk : n - at, &e);
    if (!rc)
        rc = s2f_mp_finish(mp, &e);
    uint64_t w = rc ? 0 : s2f_mp_work(mp);
    *data_calls = r.data_calls;
    *bytes = n;
    /* the part is the units, exactly */
    int ok = r.len == ul * reps + strlen("<0 |></0>");
    s2f_mp_free(mp);
    free(r.log);
    free(body);
    return ok ? w : 0;
}

TEST(linear_work_one_byte_at_a_time)
{
    char boundary[71], u0[80], u1[80];
    memset(boundary, 'a', 69);
    memcpy(boundary + 69, "b", 2); /* 69 a's and a b: KMP falls back a long way */
    snprintf(u0, sizeof u0, "\r\n--%.69s", boundary);  /* the whole delimiter but its b */
    snprintf(u1, sizeof u1, "\r\n--%.69sa", boundary); /* an a instead of the b */
    const char *const units[] = {u0, u1, "\r\r\r\r\n\r\n-\r\n--\r\n--a", "\r"};
    for (size_t u = 0; u < sizeof units / sizeof *units; u++)
        for (size_t chunk = 1; chunk <= 4096; chunk *= 64) {
            size_t calls;
            uint64_t bytes;
            uint64_t w = work_of(boundary, units[u], 20000, chunk, &calls, &bytes);
            CHECK(w > 0);          /* read to the end, the part exact */
            CHECK(w <= 3 * bytes); /* a rescanning search takes ~70 x bytes here */
            CHECK(calls <= bytes);
        }
}

TEST(body_may_start_without_crlf_or_with_preamble)
{
    rec r;
    s2f_error e = {0};
    CHECK(read1("b", "--b\r\n\r\nx\r\n--b--", &r, &e) == S2F_OK);
    CHECK_STR(r.log, "<0 |>x</0>");
    free(r.log);
    CHECK(read1("b", "\r\n--b\r\n\r\nx\r\n--b--", &r, &e) == S2F_OK);
    CHECK_STR(r.log, "<0 |>x</0>");
    free(r.log);
    CHECK(read1("b", "x--b\r\n--b\r\n\r\ny\r\n--b--", &r, &e) == S2F_OK);
    CHECK_STR(r.log, "<0 |>y</0>");
    free(r.log);
}

TEST(empty_parts)
{
    rec r;
    s2f_error e = {0};
    /* no headers, no CRLF, no bytes (RFC 2046 grammar) */
    CHECK(read1("b", "--b\r\n\r\n--b--", &r, &e) == S2F_OK);
    CHECK_STR(r.log, "<0 |></0>");
    free(r.log);
    /* headers, then an empty body */
    CHECK(read1("b", "--b\r\nContent-Type: a/b\r\n\r\n--b\r\nContent-Type: c/d\r\n\r\n\r\n--b--",
                &r, &e) == S2F_OK);
    CHECK_STR(r.log, "<0 a/b|></0><1 c/d|></1>");
    free(r.log);
    /* a body of one CRLF */
    CHECK(read1("b", "--b\r\n\r\n\r\n\r\n--b--", &r, &e) == S2F_OK);
    CHECK_STR(r.log, "<0 |>\r\n</0>");
    free(r.log);
}

TEST(near_delimiters_inside_a_part_are_data)
{
    rec r;
    s2f_error e = {0};
    CHECK(read1("boundary", "--boundary\r\n\r\nA\r\n--boundarB\r\n--boundar\r\n-boundary"
                            "--boundary\n--boundary\r--boundary\r\n--boundary--",
                &r, &e) == S2F_OK);
    CHECK_STR(r.log, "<0 |>A\r\n--boundarB\r\n--boundar\r\n-boundary--boundary\n--boundary\r"
                     "--boundary</0>");
    free(r.log);
    /* data ending in an incomplete delimiter, then the body ends: truncated */
    CHECK(read1("boundary", "--boundary\r\n\r\nA\r\n--boundar", &r, &e) == S2F_EFORMAT);
    CHECK(strstr(e.message, "truncated") && strstr(e.message, "part 0"));
    CHECK_STR(r.log, "<0 |>A");
    free(r.log);
}

TEST(transport_padding_and_epilogue)
{
    rec r;
    s2f_error e = {0};
    CHECK(read1("b", "--b \t \r\n\r\nx\r\n--b\t\r\n\r\ny\r\n--b-- trailing\r\n--b\r\nstuff",
                &r, &e) == S2F_OK);
    CHECK_STR(r.log, "<0 |>x</0><1 |>y</1>");
    free(r.log);
}

TEST(folded_and_case_insensitive_headers)
{
    rec r;
    s2f_error e = {0};
    CHECK(read1("b", "--b\r\ncOnTeNt-tYpE:application/dicom;\r\n  type=x\r\n"
                     "content-location:\r\n\thttp://h/x \r\n\r\nz\r\n--b--",
                &r, &e) == S2F_OK);
    CHECK_STR(r.log, "<0 application/dicom;  type=x|http://h/x>z</0>");
    free(r.log);
}

TEST(missing_or_invalid_boundary)
{
    rec r;
    s2f_error e = {0};
    CHECK(read1(NULL, "--b\r\n\r\nx\r\n--b--", &r, &e) == S2F_EFORMAT);
    CHECK(strstr(e.message, "boundary"));
    free(r.log);
    CHECK(read1("", "--\r\n\r\nx\r\n----", &r, &e) == S2F_EFORMAT);
    free(r.log);
    CHECK(read1("a\rb", "--a\rb\r\n\r\nx\r\n--a\rb--", &r, &e) == S2F_EFORMAT);
    free(r.log);
    CHECK(read1("trailing ", "--trailing \r\n\r\nx\r\n--trailing --", &r, &e) == S2F_EFORMAT);
    free(r.log);
    char longb[S2F_MP_BOUNDARY_MAX + 2];
    memset(longb, 'a', S2F_MP_BOUNDARY_MAX + 1);
    longb[S2F_MP_BOUNDARY_MAX + 1] = 0;
    CHECK(read1(longb, "x", &r, &e) == S2F_EFORMAT);
    free(r.log);
    longb[S2F_MP_BOUNDARY_MAX] = 0; /* the longest allowed (RFC 2046: 70; Orthanc sends 73) */
    char body[2 * S2F_MP_BOUNDARY_MAX + 32];
    snprintf(body, sizeof body, "--%s\r\n\r\nx\r\n--%s--", longb, longb);
    CHECK(read1(longb, body, &r, &e) == S2F_OK);
    CHECK_STR(r.log, "<0 |>x</0>");
    free(r.log);
}

TEST(boundary_that_never_appears)
{
    rec r;
    s2f_error e = {0};
    CHECK(read1("other", "--b\r\n\r\nx\r\n--b--", &r, &e) == S2F_EFORMAT);
    CHECK(strstr(e.message, "no delimiter \"--other\""));
    CHECK_STR(r.log, "");
    free(r.log);
    /* refused early, at the preamble limit, not at the end of the body */
    static char big[70000];
    memset(big, 'q', sizeof big - 1);
    s2f_mp_limits lim = {0, 0, 0, 1000};
    CHECK(read_body("other", &lim, big, sizeof big - 1, NULL, 0, &r, &e) == S2F_EFORMAT);
    /* the first 1000 bytes, and 9 for a delimiter "\r\n--other" that would end there */
    CHECK(strstr(e.message, "in the first 1000 bytes (byte offset 1009)"));
    free(r.log);
    size_t one = 1;
    CHECK(read_body("other", &lim, big, sizeof big - 1, &one, 1, &r, &e) == S2F_EFORMAT);
    CHECK(strstr(e.message, "(byte offset 1009)"));
    free(r.log);
}

TEST(truncated_bodies)
{
    static const struct {
        const char *body, *what;
    } cases[] = {
        {"", "no delimiter"},
        {"--b", "truncated: no close delimiter"},
        {"--b\r\n", "inside the header block of part 0"},
        {"--b\r\nContent-Type: a/b\r\n", "inside the header block of part 0"},
        {"--b\r\n\r\nxyz", "part 0 has no closing delimiter"},
        {"--b\r\n\r\nxyz\r\n--b", "truncated: no close delimiter"},
        {"--b\r\n\r\nxyz\r\n--b-", "truncated: no close delimiter"},
        {"--b\r\n\r\nxyz\r\n--b\r\n\r\n", "part 1 has no closing delimiter"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rec r;
        s2f_error e = {0};
        s2f_code rc = read1("b", cases[i].body, &r, &e);
        free(r.log);
        CHECK(rc == S2F_EFORMAT);
        CHECK(strstr(e.message, cases[i].what));
        CHECK(!strncmp(e.message, "multipart: ", 11));
    }
}

TEST(garbage_after_a_delimiter)
{
    static const struct {
        const char *body, *what;
    } cases[] = {
        {"--bX\r\n\r\nx\r\n--b--", "followed by 0x58"},
        {"--b\r\n\r\nx\r\n--b-x", "\"-\" and 0x78"},
        {"--b \r\n\r\nx\r\n--b x\r\n", "0x78 in the padding"},
        {"--b\rX\r\n\r\nx\r\n--b--", "CR without LF"},
        {"--b--", "close delimiter comes before any part"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rec r;
        s2f_error e = {0};
        s2f_code rc = read1("b", cases[i].body, &r, &e);
        free(r.log);
        CHECK(rc == S2F_EFORMAT);
        CHECK(strstr(e.message, cases[i].what));
        CHECK(strstr(e.message, "byte offset"));
    }
    /* too much padding */
    char body[3000];
    size_t n = (size_t)snprintf(body, sizeof body, "--b");
    memset(body + n, ' ', 2000);
    snprintf(body + n + 2000, sizeof body - n - 2000, "\r\n\r\nx\r\n--b--");
    s2f_mp_limits lim = {0, 0, 0, 1000};
    rec r;
    s2f_error e = {0};
    CHECK(read_body("b", &lim, body, strlen(body), NULL, 0, &r, &e) == S2F_EFORMAT);
    CHECK(strstr(e.message, "padding"));
    free(r.log);
}

TEST(garbage_header_lines)
{
    static const struct {
        const char *body, *what;
    } cases[] = {
        {"--b\r\ngarbage\r\n\r\nx\r\n--b--", "header line 1 is not"},
        {"--b\r\nA: b\r\n: novalue\r\n\r\nx\r\n--b--", "header line 2 is not"},
        {"--b\r\n folded-first: x\r\n\r\nx\r\n--b--", "header line 1 is not"},
        {"--b\r\nBad Name: x\r\n\r\nx\r\n--b--", "header line 1 is not"},
        {"--b\r\nA: b\nC: d\r\n\r\nx\r\n--b--", "an LF without CR"},
        {"--b\r\nA: b\rC: d\r\n\r\nx\r\n--b--", "a CR without LF"},
        {"--b\r\nA: b\x01\r\n\r\nx\r\n--b--", "a control character"},
        {"--b\r\nContent-Type: a/b\r\ncontent-type: c/d\r\n\r\nx\r\n--b--",
         "Content-Type given twice"},
        {"--b\r\nContent-Location: a\r\nContent-location: b\r\n\r\nx\r\n--b--",
         "Content-Location given twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rec r;
        s2f_error e = {0};
        s2f_code rc = read1("b", cases[i].body, &r, &e);
        int nothing = !strcmp(r.log, "");
        free(r.log);
        CHECK(rc == S2F_EFORMAT);
        CHECK(strstr(e.message, cases[i].what));
        CHECK(strstr(e.message, "part 0"));
        CHECK(strstr(e.message, "byte offset "));
        CHECK(nothing);
    }
    /* the second part's garbage names part 1 and its offset; the line is escaped */
    rec r;
    s2f_error e = {0};
    CHECK(read1("b", "--b\r\n\r\nx\r\n--b\r\n\x1b[31mred\r\n\r\n--b--", &r, &e) == S2F_EFORMAT);
    CHECK(strstr(e.message, "part 1") && strstr(e.message, "byte offset 15"));
    free(r.log);
    CHECK(read1("b", "--b\r\n\r\nx\r\n--b\r\nno colon \xff\r\n\r\n--b--", &r, &e) == S2F_EFORMAT);
    CHECK(strstr(e.message, "\"no colon \\xFF\"") || strstr(e.message, "\"no colon \\xff\""));
    free(r.log);
}

TEST(header_too_long)
{
    char body[2000];
    size_t n = (size_t)snprintf(body, sizeof body, "--b\r\nX-Long: ");
    memset(body + n, 'v', 1000);
    snprintf(body + n + 1000, sizeof body - n - 1000, "\r\n\r\nx\r\n--b--");
    s2f_mp_limits lim = {0, 1000, 0, 0};
    rec r;
    s2f_error e = {0};
    size_t one = 1;
    CHECK(read_body("b", &lim, body, strlen(body), &one, 1, &r, &e) == S2F_ELIMIT);
    CHECK(strstr(e.message, "part 0: header block longer than 1000 bytes"));
    free(r.log);
    lim.max_header_bytes = 1000 + 12; /* "X-Long: " + 1000 + CRLF CRLF = 1012 */
    CHECK(read_body("b", &lim, body, strlen(body), &one, 1, &r, &e) == S2F_OK);
    free(r.log);
    lim.max_header_bytes = 1011;
    CHECK(read_body("b", &lim, body, strlen(body), NULL, 0, &r, &e) == S2F_ELIMIT);
    free(r.log);
}

TEST(part_too_large)
{
    const char *body = "--b\r\n\r\n0123456789\r\n--b\r\n\r\n0123456789A\r\n--b--";
    s2f_mp_limits lim = {0, 0, 10, 0};
    rec r;
    s2f_error e = {0};
    CHECK(read_body("b", &lim, body, strlen(body), NULL, 0, &r, &e) == S2F_ELIMIT);
    CHECK(strstr(e.message, "part 1 is larger than 10 bytes"));
    CHECK(strstr(e.message, "byte offset 36"));
    /* the data seen stops at the limit, whatever the chunking */
    CHECK_STR(r.log, "<0 |>0123456789</0><1 |>0123456789");
    free(r.log);
    for (size_t c = 1; c < 20; c++) {
        CHECK(read_body("b", &lim, body, strlen(body), &c, 1, &r, &e) == S2F_ELIMIT);
        int same = !strcmp(r.log, "<0 |>0123456789</0><1 |>0123456789");
        free(r.log);
        CHECK(same);
        CHECK(strstr(e.message, "byte offset 36"));
    }
    /* the limit counts held-back near-delimiters too */
    const char *held = "--b\r\n\r\n01234567\r\n-X\r\n--b--";
    CHECK(read_body("b", &lim, held, strlen(held), NULL, 0, &r, &e) == S2F_ELIMIT);
    free(r.log);
}

TEST(too_many_parts)
{
    const char *body = "--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b\r\n\r\n3\r\n--b--";
    s2f_mp_limits lim = {2, 0, 0, 0};
    rec r;
    s2f_error e = {0};
    CHECK(read_body("b", &lim, body, strlen(body), NULL, 0, &r, &e) == S2F_ELIMIT);
    CHECK(strstr(e.message, "more than 2 parts (part 2 at byte offset 25)"));
    CHECK_STR(r.log, "<0 |>1</0><1 |>2</1>");
    free(r.log);
    lim.max_parts = 3;
    CHECK(read_body("b", &lim, body, strlen(body), NULL, 0, &r, &e) == S2F_OK);
    free(r.log);
}

static int stop_data(void *ctx, size_t i, const uint8_t *d, size_t n)
{
    (void)ctx, (void)i, (void)d, (void)n;
    return 1;
}

TEST(caller_stops_and_errors_are_sticky)
{
    rec r;
    s2f_error e = {0};
    memset(&r, 0, sizeof r);
    put(&r, "", 0);
    r.stop_at_begin = 2;
    s2f_mp_callbacks cb = {on_begin, on_data, on_end, &r};
    s2f_mp_reader *mp = s2f_mp_new("b", NULL, &cb);
    const char *body = "--b\r\n\r\nx\r\n--b\r\n\r\ny\r\n--b--";
    CHECK(s2f_mp_feed(mp, (const uint8_t *)body, strlen(body), &e) == S2F_EUSAGE);
    CHECK(strstr(e.message, "stopped by the caller (part_begin of part 1)"));
    e.code = S2F_OK;
    CHECK(s2f_mp_feed(mp, (const uint8_t *)"x", 1, &e) == S2F_EUSAGE);
    CHECK(e.code == S2F_EUSAGE);
    CHECK(s2f_mp_finish(mp, &e) == S2F_EUSAGE);
    CHECK(s2f_mp_parts(mp) == 1);
    s2f_mp_free(mp);
    CHECK_STR(r.log, "<0 |>x</0><1 |>");
    free(r.log);
    s2f_mp_callbacks cb2 = {NULL, stop_data, NULL, NULL};
    mp = s2f_mp_new("b", NULL, &cb2);
    CHECK(s2f_mp_feed(mp, (const uint8_t *)body, strlen(body), &e) == S2F_EUSAGE);
    CHECK(strstr(e.message, "part_data of part 0"));
    s2f_mp_free(mp);
}

TEST(media_type_parse_accepts)
{
    s2f_media_type mt;
    s2f_error e = {0};
    CHECK(s2f_media_type_parse("Multipart/Related; type=\"application/DICOM\"; "
                               "boundary=\"a b:c\"",
                               &mt, &e) == S2F_OK);
    CHECK_STR(mt.type, "multipart/related");
    CHECK_STR(mt.param_type, "application/dicom");
    CHECK_STR(mt.boundary, "a b:c");
    CHECK_STR(mt.transfer_syntax, "");
    CHECK(s2f_media_type_parse(" multipart/related ;BOUNDARY=xyz;TYPE=application/dicom+json ;",
                               &mt, &e) == S2F_OK);
    CHECK_STR(mt.boundary, "xyz");
    CHECK_STR(mt.param_type, "application/dicom+json");
    CHECK(s2f_media_type_parse("application/dicom; Transfer-Syntax=1.2.840.10008.1.2.1; x=\"q\\\"\"",
                               &mt, &e) == S2F_OK);
    CHECK_STR(mt.type, "application/dicom");
    CHECK_STR(mt.transfer_syntax, "1.2.840.10008.1.2.1");
    CHECK_STR(mt.boundary, "");
    CHECK(s2f_media_type_parse("multipart/related; boundary = \"x\\yz\"", &mt, &e) == S2F_OK);
    CHECK_STR(mt.boundary, "xyz");
}

TEST(media_type_parse_refuses_garbage)
{
    static const char *const bad[] = {
        "",
        "   ",
        "multipart",
        "multipart/",
        "/related",
        "multipart related",
        "multipart/related boundary=x",
        "multipart/related; boundary",
        "multipart/related; boundary=",
        "multipart/related; boundary=\"abc",
        "multipart/related; boundary=\"abc\\",
        "multipart/related; boundary=a; BOUNDARY=b",
        "multipart/related; type=a; type=b",
        "multipart/related; boundary=\"a@b\"",
        "multipart/related; boundary=\"ends \"",
        ("multipart/related; boundary="
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaa"), /* 201 > S2F_MP_BOUNDARY_MAX */
        "multipart/related; boundary=\"a\rb\"",
        "multipart/related; =x",
        "multipart/related; boundary=x y",
        "multipart/related;; boundary=x",
        "multi\x01part/related",
        ("multipart/related; transfer-syntax="
         "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s2f_media_type mt;
        s2f_error e = {0};
        CHECK(s2f_media_type_parse(bad[i], &mt, &e) == S2F_EFORMAT);
        CHECK(!strncmp(e.message, "media type", 10));
        for (const char *p = e.message; *p; p++)
            CHECK((unsigned char)*p >= 32);
    }
    s2f_media_type mt;
    s2f_error e = {0};
    CHECK(s2f_media_type_parse(NULL, &mt, &e) == S2F_EFORMAT);
}

int main(void)
{
    RUN(sample_body_parts);
    RUN(sample_every_split_gives_the_same_parts);
    RUN(sample_every_two_cuts_give_the_same_parts);
    RUN(sample_one_byte_at_a_time);
    RUN(empty_feeds_change_nothing);
    RUN(linear_work_one_byte_at_a_time);
    RUN(body_may_start_without_crlf_or_with_preamble);
    RUN(empty_parts);
    RUN(near_delimiters_inside_a_part_are_data);
    RUN(transport_padding_and_epilogue);
    RUN(folded_and_case_insensitive_headers);
    RUN(missing_or_invalid_boundary);
    RUN(boundary_that_never_appears);
    RUN(truncated_bodies);
    RUN(garbage_after_a_delimiter);
    RUN(garbage_header_lines);
    RUN(header_too_long);
    RUN(part_too_large);
    RUN(too_many_parts);
    RUN(caller_stops_and_errors_are_sticky);
    RUN(media_type_parse_accepts);
    RUN(media_type_parse_refuses_garbage);
    CHECK_DONE();
}
