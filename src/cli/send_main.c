/*
 * send_main.c - the sr2fhir-send program: `sr2fhir send` runs it (main.c says why it is a
 * program of its own). The same arguments work when it is run directly.
 */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return cmd_send(argc - 1, argv + 1);
}
