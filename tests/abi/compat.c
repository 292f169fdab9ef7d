/*
 * compat.c - a program as built against an OLDER libsr2fhir (issue 16, "Must show": a
 * program compiled against the previous header still runs after a field was added to an
 * options struct). tests/e2e/test_abi_compat.sh compiles it with -Itests/abi/v0_1 (the
 * 0.1.0 header, a copy of include/sr2fhir.h as committed at 218e4c5, before any member was
 * appended) and runs it against the CURRENT build/libsr2fhir.so.0.
 *
 *   compat SR [--zeroed | --unsized]
 *
 * Reads SR and writes its Bundle (R5 transaction, compact: the defaults) to stdout. Each
 * struct it passes sits in a box whose bytes after the struct are not zero, as the stack
 * or heap of a real program would be: 0xFF after the options (a library reading a member
 * appended after 0.1.0 would see "on"), 0xA5 after the result (a library writing such a
 * member would overwrite them). Modes:
 *   (none)     the init functions of the 0.1.0 header set struct_size (the normal case)
 *   --zeroed   the structs zeroed by hand, struct_size 0: "the 0.1.0 layout"
 *   --unsized  struct_size = the whole box: what a library that ignored struct_size and
 *              used its own, larger sizeof would do (the failure mode the test proves)
 * stderr: one line "compat: header VERSION, library VERSION, result tail intact|overwritten".
 * Exit: 0 converted with the result's tail intact, 1 tail overwritten, else the s2f_code.
 */
#include <stdio.h>
#include <string.h>

#include "sr2fhir.h"

#define TAIL 256

int main(int argc, char **argv)
{
    const char *mode = argc > 2 ? argv[2] : "";
    if (argc < 2 || (*mode && strcmp(mode, "--zeroed") && strcmp(mode, "--unsized"))) {
        fprintf(stderr, "usage: compat SR [--zeroed | --unsized]\n");
        return 2;
    }
    struct {
        s2f_options opt;
        unsigned char tail[TAIL];
    } rbox;
    struct {
        s2f_convert_options opt;
        unsigned char tail[TAIL];
    } cbox;
    struct {
        s2f_convert_result res;
        unsigned char tail[TAIL];
    } res_box;
    memset(&rbox, 0xFF, sizeof rbox);
    memset(&cbox, 0xFF, sizeof cbox);
    memset(&res_box, 0xA5, sizeof res_box);
    if (!strcmp(mode, "--zeroed")) {
        memset(&rbox.opt, 0, sizeof rbox.opt);
        memset(&cbox.opt, 0, sizeof cbox.opt);
        memset(&res_box.res, 0, sizeof res_box.res);
    } else {
        s2f_options_init(&rbox.opt);
        s2f_convert_options_init(&cbox.opt);
        s2f_convert_result_init(&res_box.res);
    }
    if (!strcmp(mode, "--unsized")) {
        rbox.opt.struct_size = sizeof rbox;
        cbox.opt.struct_size = sizeof cbox;
        res_box.res.struct_size = sizeof res_box;
    }
    s2f_error err = {0};
    s2f_doc *doc = s2f_doc_read_file(argv[1], &rbox.opt, &err);
    if (!doc) {
        fprintf(stderr, "compat: %s: %s\n", argv[1], err.message);
        return err.code;
    }
    s2f_code rc = s2f_convert(doc, &cbox.opt, stdout, &res_box.res, &err);
    s2f_doc_free(doc);
    if (rc) {
        fprintf(stderr, "compat: %s: %s\n", argv[1], err.message);
        return rc;
    }
    int intact = 1;
    for (size_t i = 0; i < TAIL; i++)
        intact &= res_box.tail[i] == 0xA5;
    fprintf(stderr, "compat: header %s, library %s, %zu observations, result tail %s\n",
            SR2FHIR_VERSION, s2f_version(), res_box.res.observations,
            intact ? "intact" : "overwritten");
    return intact ? 0 : 1;
}
