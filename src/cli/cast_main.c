/*
 * cast_main.c - the sr2fhir-cast program: `sr2fhir cast` runs it (a program of its own,
 * like sr2fhir-send, so that only it loads libcurl and OpenSSL). The same arguments work
 * when it is run directly.
 */
#include "cli.h"

int main(int argc, char **argv)
{
    return cmd_cast(argc - 1, argv + 1);
}
