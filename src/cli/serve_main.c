/*
 * serve_main.c - the sr2fhir-serve program: `sr2fhir serve` runs it (a program of its own,
 * like sr2fhir-send, so that only it loads libmicrohttpd, GnuTLS and libcurl). The same
 * arguments work when it is run directly.
 */
#include "cli.h"

int main(int argc, char **argv)
{
    return cmd_serve(argc - 1, argv + 1);
}
