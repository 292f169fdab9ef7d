/*
 * hello.c - the smallest program built against the INSTALLED library (issue 16): compiled
 * with `pkg-config --cflags --libs sr2fhir` by scripts/package-check.sh (Debian packages)
 * and tests/e2e/test_install.sh (make install DESTDIR=...). Without arguments it prints
 * the header's version and a code name; with FILE it reads the SR and writes its FHIR
 * Bundle to standard output, the item count to standard error.
 */
#include <stdio.h>

#include <sr2fhir.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("hello: sr2fhir %s, code 4 is '%s'\n", SR2FHIR_VERSION, s2f_code_name(S2F_EFORMAT));
        return 0;
    }
    s2f_error err;
    s2f_doc *doc = s2f_doc_read_file(argv[1], NULL, &err);
    if (!doc) {
        fprintf(stderr, "hello: %s: %s\n", argv[1], err.message);
        return err.code;
    }
    s2f_code rc = s2f_convert(doc, NULL, stdout, NULL, &err);
    if (rc == S2F_OK)
        fprintf(stderr, "hello: %zu items\n", s2f_doc_item_count(doc));
    else
        fprintf(stderr, "hello: %s: %s\n", argv[1], err.message);
    s2f_doc_free(doc);
    return rc;
}
