/*
 * pull_main.c - the sr2fhir-pull program: `sr2fhir pull` runs it (a program of its own,
 * like sr2fhir-send, so that only it loads libcurl and GnuTLS). The same arguments work
 * when it is run directly.
 */
#include "cli.h"

int main(int argc, char **argv)
{
    return cmd_pull(argc - 1, argv + 1);
}
