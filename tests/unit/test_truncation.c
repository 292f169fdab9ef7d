/*
 * test_truncation.c - the whole reading pipeline (reader, character sets, header,
 * content tree, dump) over every prefix of every corpus file cut at each 97th byte, and
 * over single-byte corruptions: each result is either success or a documented error
 * code with a one-line message. Run under ASan/UBSan in CI, so any overread or undefined
 * behaviour fails the test. Skips when ../shared is absent.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sr2fhir.h"

static char corpus_dir[1024];

static int find_corpus(void)
{
    const char *shared = getenv("SHARED");
    snprintf(corpus_dir, sizeof corpus_dir, "%s/corpus/files", shared ? shared : "../shared");
    DIR *d = opendir(corpus_dir);
    if (!d)
        return 0;
    closedir(d);
    return 1;
}

static unsigned char *load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int documented(s2f_code c)
{
    return c == S2F_EFORMAT || c == S2F_EUNSUPPORTED || c == S2F_ELIMIT;
}

/* Reads one buffer through the whole pipeline; returns 0 when the outcome is acceptable. */
static int read_once(const unsigned char *data, size_t len, char *why, size_t why_size)
{
    s2f_error err = {0};
    /* A copy of exactly len bytes, so ASan sees any read past the cut. */
    unsigned char *copy = malloc(len ? len : 1);
    memcpy(copy, data, len);
    s2f_doc *doc = s2f_doc_read(copy, len, NULL, &err);
    int bad = 0;
    if (doc) {
        FILE *devnull = fopen("/dev/null", "w");
        s2f_dump(doc, devnull, &err);
        fclose(devnull);
        s2f_doc_free(doc);
    } else if (!documented(err.code) || !err.message[0] || strchr(err.message, '\n')) {
        snprintf(why, why_size, "code %d message '%.200s'", err.code, err.message);
        bad = 1;
    }
    free(copy);
    return bad;
}

static int for_each_corpus_file(int (*fn)(const char *name, const unsigned char *, size_t))
{
    DIR *d = opendir(corpus_dir);
    struct dirent *de;
    int failures = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", corpus_dir, de->d_name);
        size_t len;
        unsigned char *buf = load(path, &len);
        if (!buf)
            continue;
        failures += fn(de->d_name, buf, len);
        free(buf);
    }
    closedir(d);
    return failures;
}

static int prefixes(const char *name, const unsigned char *buf, size_t len)
{
    char why[300];
    for (size_t cut = 0; cut < len; cut += 97) {
        if (read_once(buf, cut, why, sizeof why)) {
            printf("    %s cut at %zu: %s\n", name, cut, why);
            return 1;
        }
    }
    return 0;
}

/* Flips bytes at a stride (value bytes, lengths, tags alike). */
static int corruptions(const char *name, const unsigned char *buf, size_t len)
{
    char why[300];
    unsigned char *m = malloc(len);
    size_t stride = len / 400 + 1;
    for (size_t at = 0; at < len; at += stride) {
        memcpy(m, buf, len);
        m[at] ^= 0xFF;
        if (read_once(m, len, why, sizeof why)) {
            printf("    %s byte %zu flipped: %s\n", name, at, why);
            free(m);
            return 1;
        }
    }
    free(m);
    return 0;
}

TEST(every_97th_prefix_of_every_corpus_file)
{
    if (!find_corpus())
        SKIP("../shared/corpus/files is absent (set SHARED or put shared/ beside the checkout)");
    CHECK(for_each_corpus_file(prefixes) == 0);
}

TEST(flipped_bytes_in_every_corpus_file)
{
    if (!find_corpus())
        SKIP("../shared/corpus/files is absent (set SHARED or put shared/ beside the checkout)");
    CHECK(for_each_corpus_file(corruptions) == 0);
}

int main(void)
{
    RUN(every_97th_prefix_of_every_corpus_file);
    RUN(flipped_bytes_in_every_corpus_file);
    CHECK_DONE();
}
