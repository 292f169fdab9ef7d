/*
 * help.c - `sr2fhir help [COMMAND]`: the usage texts, kept in one place so that the
 * README and `--help` say the same thing.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char general[] =
    "usage: sr2fhir COMMAND [OPTIONS] ARGS...\n"
    "\n"
    "Reads DICOM Structured Reports (Part 10, bare data sets, DICOM JSON) and maps TID 1500\n"
    "Measurement Reports to FHIR.\n"
    "\n"
    "commands:\n"
    "  convert INPUT... convert TID 1500 reports to FHIR Bundles\n"
    "  dump FILE...     print the header summary and the SR content tree\n"
    "  help [COMMAND]   show help for a command\n"
    "  version          print the version\n"
    "\n"
    "exit codes: 0 success, 2 usage, 3 I/O error, 4 malformed input, 5 unsupported input,\n"
    "6 not a TID 1500 report, 7 safety limit exceeded, 8 out of memory, 9 internal error.\n"
    "Errors are one line on stderr: 'sr2fhir: FILE: what is wrong, where'.\n";

static const char dump_help[] =
    "usage: sr2fhir dump [-q] [--strict] FILE...\n"
    "\n"
    "Reads each FILE ('-' for standard input) and prints a header summary (one 'Key: value'\n"
    "line per attribute present, starting with 'File: NAME'), a blank line, then the SR\n"
    "content tree, one line per content item:\n"
    "\n"
    "  POSITION  RELATIONSHIP VALUE-TYPE (code,scheme,\"meaning\") = VALUE {annotations}\n"
    "  1.7.2.6  CONTAINS NUM (81827009,SCT,\"Diameter\") = \"10.0\" (mm,UCUM,\"mm\")\n"
    "\n"
    "The format is specified in docs/dump-format.md. Files are separated by a blank line.\n"
    "\n"
    "options:\n"
    "  -q, --quiet   do not print warnings (lenient input, replaced characters) on stderr\n"
    "  --strict      refuse input that is only readable leniently (M1)\n"
    "\n"
    "Every file is attempted; the exit code is that of the first failure (see 'sr2fhir help').\n";

static const char convert_help[] =
    "usage: sr2fhir convert [options] INPUT...\n"
    "\n"
    "Converts each TID 1500 Measurement Report (Part 10 file, bare data set or DICOM JSON; a\n"
    "folder is searched recursively; '-' reads standard input) into one FHIR Bundle.\n"
    "\n"
    "options:\n"
    "  -o, --output PATH         one input: the Bundle file ('-' or absent: standard output);\n"
    "                            several inputs or a folder: a folder (one NAME.json per\n"
    "                            input) or FILE.ndjson (one Bundle per line)\n"
    "  --bundle-type TYPE        transaction (default: PUT to deterministic ids, so sending\n"
    "                            twice creates nothing twice) or collection\n"
    "  --fhir-version VERSION    R5 (default) or R4 (the same Observations in R4 form)\n"
    "  --timezone +HHMM          zone for times the SR gives without Timezone Offset From UTC\n"
    "                            (default +0000)\n"
    "  --report FILE             write the conversion report (JSON): per input its status,\n"
    "                            resources, content items no rule consumed, warnings\n"
    "  --pretty                  indent the JSON\n"
    "  -q, --quiet               no warnings, progress or summary on stderr\n"
    "\n"
    "Output is deterministic: the same input gives the same bytes. A Bundle file is written\n"
    "under a temporary name and renamed when complete. With several inputs every input is\n"
    "attempted, a progress bar shows on a terminal, and a summary ends the run; the exit\n"
    "code is that of the first failure (see 'sr2fhir help'); 6 means the input is an SR but\n"
    "not a TID 1500 Measurement Report.\n";

const char *cli_help_text(const char *command)
{
    if (!command)
        return general;
    if (!strcmp(command, "convert"))
        return convert_help;
    if (!strcmp(command, "dump"))
        return dump_help;
    return NULL;
}

int cmd_help(int argc, char **argv)
{
    const char *text = cli_help_text(argc > 0 ? argv[0] : NULL);
    if (!text)
        return cli_error(NULL, S2F_EUSAGE, "no help for '%s' (try 'sr2fhir help')", argv[0]);
    fputs(text, stdout);
    return 0;
}
