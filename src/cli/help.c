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
    "  send INPUT...    deliver TID 1500 reports to a FHIR server (R5 or R4)\n"
    "  serve            the gateway: receive SRs by DICOMweb STOW-RS, deliver them\n"
    "  queue SUBCOMMAND inspect and operate the gateway's queue: stats, list, show,\n"
    "                   retry, purge (see 'sr2fhir help queue')\n"
    "  help [COMMAND]   show help for a command\n"
    "  version          print the version\n"
    "\n"
    "exit codes: 0 success, 2 usage, 3 I/O error, 4 malformed input, 5 unsupported input,\n"
    "6 not a TID 1500 report, 7 safety limit exceeded, 8 out of memory, 9 internal error,\n"
    "10 refused by the FHIR server, 11 FHIR server unreachable, 12 lookup failed.\n"
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
    "                            input, subfolders of an input folder mirrored) or\n"
    "                            FILE.ndjson (one Bundle per line)\n"
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
    "Output is deterministic: the same input gives the same bytes. Every output file\n"
    "(Bundle, NDJSON, report) is written to a new temporary file beside it and renamed when\n"
    "complete, keeping the mode of the file it replaces; a failure leaves the old file as it\n"
    "was (an NDJSON file is replaced only when a Bundle was converted). An existing output\n"
    "that is not a regular file, such as /dev/null or a FIFO, is written in place; a symbolic\n"
    "link named by -o keeps pointing at its file; one inside an output folder is replaced,\n"
    "never followed. Into a folder, IN/a/x.dcm becomes OUT/a/x.json; inputs that would share\n"
    "a name keep their whole names (x.dcm.json, x.json.json), and a name still shared, or an\n"
    "input's own file, is refused (exit 3): nothing is overwritten. In input folders each\n"
    "folder and each file is read once (a symbolic link loop or a second link to a file is\n"
    "skipped with a warning).\n"
    "With several inputs every input is\n"
    "attempted, a progress bar shows on a terminal, and a summary ends the run; the exit\n"
    "code is that of the first failure (see 'sr2fhir help'); 6 means the input is an SR but\n"
    "not a TID 1500 Measurement Report.\n";

static const char send_help[] =
    "usage: sr2fhir send --server URL [options] INPUT...\n"
    "\n"
    "Delivers each TID 1500 Measurement Report (file, folder searched recursively, '-' for\n"
    "standard input) to a FHIR server: looks up its Patient (by identifier), ServiceRequest\n"
    "(by accession number) and ImagingStudy (by Study Instance UID), links to them when\n"
    "exactly one matches, and POSTs the Bundle as one transaction of PUTs on deterministic\n"
    "ids, so sending the same SR again creates nothing new. BodyStructures, Devices,\n"
    "Practitioners and Specimens take their ids from what they are (patient + Tracking\n"
    "UID, Device UID, algorithm, observer, fetus Subject UID/ID, Specimen UID), so a\n"
    "follow-up SR updates them. See docs/send.md.\n"
    "\n"
    "options:\n"
    "  --server URL              the FHIR base URL (or SR2FHIR_SERVER); https, or http to a\n"
    "                            loopback host\n"
    "  --fhir-version R5|R4      what to send (default: what the server's /metadata says)\n"
    "  --require-existing        fail when the Patient, ServiceRequest or ImagingStudy is\n"
    "                            not on the server (default: keep the logical reference)\n"
    "  --token-env NAME          bearer token from environment variable NAME (default:\n"
    "                            SR2FHIR_TOKEN when set)\n"
    "  --token-file FILE         bearer token from the first line of FILE\n"
    "  --user NAME               HTTP basic; the password from SR2FHIR_PASSWORD or\n"
    "  --password-file FILE      the first line of FILE\n"
    "  --cert FILE, --key FILE   client certificate and key (PEM)\n"
    "  --cacert FILE             trust these CA certificates instead of the system's\n"
    "  --insecure                do not verify the server's certificate (testing only)\n"
    "  --allow-http              allow plain http to a host that is not loopback\n"
    "  --connect-timeout SECONDS default 10\n"
    "  --timeout SECONDS         per request, default 120\n"
    "  --retries N               retries on connection errors, 408, 429 and 5xx (default 4)\n"
    "  --retry-delay MS          first backoff, doubling up to 30 s, with jitter (default 500);\n"
    "                            Retry-After is honoured\n"
    "  --deadline SECONDS        all requests of one SR, retries and waits included, end\n"
    "                            within this (default 300, 0: none); a Retry-After beyond it\n"
    "                            fails the SR at once\n"
    "  --max-entries N           most entries per transaction (default 50, 0: no limit); a\n"
    "                            larger report goes as several, each atomic (docs/send.md)\n"
    "  --audit-log FILE          append one JSON line per SR (default sr2fhir-audit.log)\n"
    "  -j, --jobs N              deliver N reports at once (default 1)\n"
    "  --timezone +HHMM          as for convert\n"
    "  -q, --quiet               no result lines or summary\n"
    "\n"
    "Secrets are never taken on the command line, printed or logged. After the server proves\n"
    "unreachable no further input is attempted. The exit code is that of the first failure\n"
    "in input order: 10 the server refused (its OperationOutcome is shown), 11 unreachable or\n"
    "kept failing after the retries, 12 a lookup found several matches, or none with\n"
    "--require-existing; 2-9 as for convert.\n";

static const char queue_help[] =
    "usage: sr2fhir queue stats --data DIR\n"
    "       sr2fhir queue list  --data DIR [--state STATE] [--limit N] [--after ID]\n"
    "       sr2fhir queue show  --data DIR ID\n"
    "       sr2fhir queue retry --data DIR ID... | --all-dead\n"
    "       sr2fhir queue purge --data DIR --older-than SECONDS [--dead]\n"
    "\n"
    "Operates the durable queue of 'sr2fhir serve' in DIR/queue.sqlite, also while the\n"
    "service runs. The database must exist: these commands never create one. Job states:\n"
    "pending, leased, done, dead (a permanent failure, kept until retried or purged),\n"
    "not_applicable (an SR that is not a TID 1500 report). Times are UTC.\n"
    "\n"
    "  stats   one 'STATE COUNT' line per state, all five in this order: pending, leased,\n"
    "          done, dead, not_applicable\n"
    "  list    a header line, then one tab-separated line per job in id order: ID STATE\n"
    "          ATTEMPTS ENQUEUED TIME SOP_INSTANCE_UID SOURCE CLASS REASON ('-' when\n"
    "          empty); TIME is when a pending job may run, when a leased job's lease ends,\n"
    "          when a finished job finished. --state picks one state; --limit N (default\n"
    "          100, at most 100000) jobs after id --after ID (default 0); when more follow,\n"
    "          a line on stderr says which --after shows them\n"
    "  show    every field of job ID, one 'key: value' line each\n"
    "  retry   makes the dead jobs ID... (or every dead job: --all-dead) pending again, to be\n"
    "          delivered after the cause is fixed; a job that is not dead is refused\n"
    "  purge   removes done and not_applicable jobs (with --dead: dead ones too) finished\n"
    "          more than SECONDS ago, and their received files in DIR/incoming\n"
    "\n"
    "Text from the database is printed escaped. Exit codes: 0 success, 2 usage (also: a\n"
    "job of the same SOP Instance UID is waiting, so a dead one is not retried), 3 the\n"
    "database is missing or cannot be read or written, 5 a queue of another schema\n"
    "version, 12 no such job, or the job is not dead (retry). With several IDs every one\n"
    "is attempted; the exit code is that of the first failure.\n";

static const char serve_help[] =
    "usage: sr2fhir serve --data DIR --server URL --http HOST:PORT | --https HOST:PORT\n"
    "                     [options]\n"
    "\n"
    "The gateway service (docs/gateway.md): receives SRs by DICOMweb STOW-RS at\n"
    "/dicom-web/studies, acknowledges each only after it is durably queued in DIR, and\n"
    "delivers them to the FHIR server as 'send' does, retrying until the server takes them.\n"
    "It prints one line per listener when it listens, e.g.\n"
    "  sr2fhir: serving STOW-RS at http://127.0.0.1:8080/dicom-web/studies\n"
    "and stops cleanly on SIGTERM or SIGINT (exit 0). GET /healthz, /readyz, /metrics.\n"
    "\n"
    "listening:\n"
    "  --http HOST:PORT          plain HTTP (PORT 0: any free port); only on a loopback\n"
    "                            address unless --allow-http\n"
    "  --https HOST:PORT         TLS; needs --tls-cert FILE and --tls-key FILE (PEM)\n"
    "  --tls-client-ca FILE      require client certificates signed by these CAs\n"
    "  --tokens FILE             senders' bearer tokens, lines 'NAME TOKEN' ('#' comments);\n"
    "                            STOW-RS without a listed token gets 401\n"
    "  --max-body BYTES          largest STOW-RS request (default 536870912 = 512 MiB)\n"
    "  --max-part BYTES          largest part (default 268435456 = 256 MiB)\n"
    "  --max-connections N       per listener (default 64)\n"
    "  --connection-timeout S    idle connections are closed after S seconds (default 30)\n"
    "  --http-threads N          HTTP threads per listener (default 8)\n"
    "queue and delivery:\n"
    "  --data DIR                (required) the queue (DIR/queue.sqlite) and received files\n"
    "  --server URL              (required) the FHIR base URL (or SR2FHIR_SERVER)\n"
    "  --workers N               delivery threads (default 4)\n"
    "  --retry-total SECONDS     how long transient failures are retried (default 86400)\n"
    "  --auth-probe SECONDS      while paused by 401/403, try again this often (default 60)\n"
    "  --lease SECONDS           a job claimed by a worker comes back after this when its\n"
    "                            worker died (default 600; --deadline is kept below it)\n"
    "  --backoff-min MS          first wait before a transient failure is retried, doubling\n"
    "                            with jitter (default 1000) up to --backoff-max MS (300000)\n"
    "  --high-water N            pending jobs above which STOW-RS gets 503 (default 100000)\n"
    "  --min-free-mb N           free disk in DIR below which STOW-RS gets 503 (default 256)\n"
    "  --keep-done SECONDS       delivered jobs kept for audit (default 604800 = 7 days)\n"
    "  and send's FHIR client options: --fhir-version, --timezone, --token-env,\n"
    "  --token-file, --user, --password-file, --cert, --key, --cacert, --insecure,\n"
    "  --allow-http, --require-existing, --connect-timeout, --timeout, --retries,\n"
    "  --retry-delay, --max-entries, --deadline (see 'sr2fhir help send')\n"
    "operating:\n"
    "  --audit-log FILE          default DIR/audit.jsonl\n"
    "  --log FILE                default standard error; SIGHUP reopens it\n"
    "  --log-level LEVEL         error, warn, info (default) or debug\n"
    "  --stop-grace SECONDS      on SIGTERM, wait this long for requests in flight and\n"
    "                            for workers (default 10)\n"
    "  --config FILE             'key = value' lines with the options' names without '--'\n"
    "                            ('#' comments; flags take yes or no); the command line wins\n"
    "\n"
    "Exit codes: 0 stopped by a signal, 2 usage, 3 I/O (data folder, files, cannot listen).\n";

const char *cli_help_text(const char *command)
{
    if (!command)
        return general;
    if (!strcmp(command, "convert"))
        return convert_help;
    if (!strcmp(command, "dump"))
        return dump_help;
    if (!strcmp(command, "send"))
        return send_help;
    if (!strcmp(command, "serve"))
        return serve_help;
    if (!strcmp(command, "queue"))
        return queue_help;
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
