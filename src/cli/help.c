/*
 * help.c - `sr2fhir help [COMMAND]`: the usage texts and every command's option table
 * (issue 14: the table that parses a command's options also prints its help, options.c),
 * kept in one place, linked into all three programs, so that `sr2fhir help send` and
 * `sr2fhir send --help` say the same thing. serve keeps its own table in serve.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

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
    "  serve            the gateway: receive SRs by DICOMweb STOW-RS or DICOM C-STORE,\n"
    "                   deliver them\n"
    "  pull             fetch SRs from a DICOMweb server (QIDO-RS, WADO-RS), deliver them\n"
    "  cast INPUT...    share the measurements with the report open on a FHIRcast hub\n"
    "  queue SUBCOMMAND inspect and operate the gateway's queue: stats, list, show,\n"
    "                   retry, purge (see 'sr2fhir help queue')\n"
    "  help [COMMAND]   show help for a command\n"
    "  version          print the version\n"
    "\n"
    "exit codes: 0 success, 2 usage, 3 I/O error, 4 malformed input, 5 unsupported input,\n"
    "6 not a TID 1500 report, 7 safety limit exceeded, 8 out of memory, 9 internal error,\n"
    "10 refused by the FHIR server, 11 FHIR server unreachable, 12 lookup failed.\n"
    "Errors are one line on stderr: 'sr2fhir: FILE: what is wrong, where'.\n";

static const cli_option dump_options[] = {
    {"--quiet", "-q", NULL, "do not print warnings (lenient input, replaced characters) on stderr",
     OPT_QUIET},
    {"--strict", NULL, NULL, "refuse input that is only readable leniently (M1)", OPT_STRICT},
    {0}};

static const cli_option *const dump_tables[] = {dump_options, NULL};

const cli_command cli_dump_command = {
    "dump",
    "usage: sr2fhir dump [-q] [--strict] FILE...\n"
    "\n"
    "Reads each FILE ('-' for standard input) and prints a header summary (one 'Key: value'\n"
    "line per attribute present, starting with 'File: NAME'), a blank line, then the SR\n"
    "content tree, one line per content item:\n"
    "\n"
    "  POSITION  RELATIONSHIP VALUE-TYPE (code,scheme,\"meaning\") = VALUE {annotations}\n"
    "  1.7.2.6  CONTAINS NUM (81827009,SCT,\"Diameter\") = \"10.0\" (mm,UCUM,\"mm\")\n"
    "\n"
    "The format is specified in docs/dump-format.md. Files are separated by a blank line.\n",
    dump_tables, 16,
    "Every file is attempted; the exit code is that of the first failure (see 'sr2fhir help').\n",
    1};

static const cli_option convert_options[] = {
    {"--output", "-o", "PATH",
     "one input: the Bundle file ('-' or absent: standard output);\n"
     "several inputs or a folder: a folder (one NAME.json per\n"
     "input, subfolders of an input folder mirrored) or\n"
     "FILE.ndjson (one Bundle per line)", OPT_OUTPUT},
    {"--bundle-type", NULL, "TYPE",
     "transaction (default: PUT to deterministic ids, so sending\n"
     "twice creates nothing twice) or collection", OPT_BUNDLE_TYPE},
    {"--fhir-version", NULL, "VERSION",
     "R5 (default) or R4 (the same Observations in R4 form)", OPT_FHIR_VERSION},
    {"--timezone", NULL, "+HHMM",
     "zone for times the SR gives without Timezone Offset From UTC\n"
     "(default +0000)", OPT_TIMEZONE},
    {"--report", NULL, "FILE",
     "write the conversion report (JSON): per input its status,\n"
     "resources, content items no rule consumed, warnings", OPT_REPORT},
    {"--diagnostic-report", NULL, NULL,
     "the Bundle also carries a DiagnosticReport for the SR\n"
     "(code DCM 126000, result: the group and document-level\n"
     "Observations; docs/mapping.md)", OPT_DIAGNOSTIC_REPORT},
    {"--pretty", NULL, NULL, "indent the JSON", OPT_PRETTY},
    {"--quiet", "-q", NULL, "no warnings, progress or summary on stderr", OPT_QUIET},
    {"--trace-consumed", NULL, NULL, NULL, OPT_TRACE_CONSUMED}, /* tests: "consumed" in --report */
    {0}};

static const cli_option *const convert_tables[] = {convert_options, NULL};

const cli_command cli_convert_command = {
    "convert",
    "usage: sr2fhir convert [options] INPUT...\n"
    "\n"
    "Converts each TID 1500 Measurement Report (Part 10 file, bare data set or DICOM JSON; a\n"
    "folder is searched recursively; '-' reads standard input) into one FHIR Bundle.\n",
    convert_tables, 28,
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
    "skipped with a warning). With several inputs every input is attempted, a progress bar\n"
    "shows on a terminal, and a summary ends the run; the exit code is that of the first\n"
    "failure (see 'sr2fhir help'); 6 means the input is an SR but not a TID 1500\n"
    "Measurement Report.\n",
    0};

const cli_option cli_client_options[] = {
    {"--server", NULL, "URL",
     "the FHIR base URL (or SR2FHIR_SERVER); https, or http to a\n"
     "loopback host", OPT_CLIENT_VALUE},
    {"--fhir-version", NULL, "R5|R4",
     "what to send (default: what the server's /metadata says)", OPT_CLIENT_VALUE},
    {"--require-existing", NULL, NULL,
     "fail when the Patient, ServiceRequest or ImagingStudy is\n"
     "not on the server (default: keep the logical reference)", OPT_CLIENT_FLAG},
    {"--token-env", NULL, "NAME",
     "bearer token from environment variable NAME (default:\n"
     "SR2FHIR_TOKEN when set)", OPT_CLIENT_VALUE},
    {"--token-file", NULL, "FILE", "bearer token from the first line of FILE", OPT_CLIENT_VALUE},
    {"--user", NULL, "NAME",
     "HTTP basic; the password from SR2FHIR_PASSWORD or\n"
     "--password-file", OPT_CLIENT_VALUE},
    {"--password-file", NULL, "FILE", "the HTTP basic password: the first line of FILE",
     OPT_CLIENT_VALUE},
    {"--cert", NULL, "FILE", "client certificate (PEM)", OPT_CLIENT_VALUE},
    {"--key", NULL, "FILE", "the client certificate's key (PEM)", OPT_CLIENT_VALUE},
    {"--cacert", NULL, "FILE", "trust these CA certificates instead of the system's",
     OPT_CLIENT_VALUE},
    {"--insecure", NULL, NULL, "do not verify the server's certificate (testing only)",
     OPT_CLIENT_FLAG},
    {"--allow-http", NULL, NULL, "allow plain http to a host that is not loopback",
     OPT_CLIENT_FLAG},
    {"--connect-timeout", NULL, "SECONDS", "default 10", OPT_CLIENT_VALUE},
    {"--timeout", NULL, "SECONDS", "per request, default 120", OPT_CLIENT_VALUE},
    {"--retries", NULL, "N", "retries on connection errors, 408, 429 and 5xx (default 4)",
     OPT_CLIENT_VALUE},
    {"--retry-delay", NULL, "MS",
     "first backoff, doubling up to 30 s, with jitter (default 500);\n"
     "Retry-After is honoured", OPT_CLIENT_VALUE},
    {"--deadline", NULL, "SECONDS",
     "all requests of one SR, retries and waits included, end\n"
     "within this (default 300, 0: none); a Retry-After beyond it\n"
     "fails the SR at once", OPT_CLIENT_VALUE},
    {"--max-entries", NULL, "N",
     "most entries per transaction (default 50, 0: no limit); a\n"
     "larger report goes as several, each atomic (docs/send.md)", OPT_CLIENT_VALUE},
    {"--timezone", NULL, "+HHMM", "as for convert", OPT_CLIENT_VALUE},
    {"--diagnostic-report", NULL, NULL,
     "deliver a DiagnosticReport for each SR too (as convert\n"
     "--diagnostic-report)", OPT_CLIENT_FLAG},
    {"--token", NULL, NULL, NULL, OPT_SECRET},    /* refused: secrets never on the command */
    {"--password", NULL, NULL, NULL, OPT_SECRET}, /* line (other users see it) */
    {0}};

static const cli_option send_options[] = {
    {"--audit-log", NULL, "FILE", "append one JSON line per SR (default sr2fhir-audit.log)",
     OPT_AUDIT_LOG},
    {"--jobs", "-j", "N", "deliver N reports at once (default 1)", OPT_JOBS},
    {"--quiet", "-q", NULL, "no result lines or summary", OPT_QUIET},
    {0}};

static const cli_option *const send_tables[] = {cli_client_options, send_options, NULL};

const cli_command cli_send_command = {
    "send",
    "usage: sr2fhir send --server URL [options] INPUT...\n"
    "\n"
    "Delivers each TID 1500 Measurement Report (file, folder searched recursively, '-' for\n"
    "standard input) to a FHIR server: looks up its Patient (by identifier), ServiceRequest\n"
    "(by accession number) and ImagingStudy (by Study Instance UID), links to them when\n"
    "exactly one matches, and POSTs the Bundle as one transaction of PUTs on deterministic\n"
    "ids, so sending the same SR again creates nothing new. BodyStructures, Devices,\n"
    "Practitioners and Specimens take their ids from what they are (patient + Tracking\n"
    "UID, Device UID, algorithm, observer, fetus Subject UID/ID, Specimen UID), so a\n"
    "follow-up SR updates them. See docs/send.md.\n",
    send_tables, 28,
    "Secrets are never taken on the command line, printed or logged. After the server proves\n"
    "unreachable no further input is attempted. The exit code is that of the first failure\n"
    "in input order: 10 the server refused (its OperationOutcome is shown), 11 unreachable or\n"
    "kept failing after the retries, 12 a lookup found several matches, or none with\n"
    "--require-existing; 2-9 as for convert.\n",
    0};

static const cli_option queue_options[] = {
    {"--data", NULL, "DIR", "(every subcommand) the data folder of 'sr2fhir serve'", OPT_DATA},
    {"--state", NULL, "STATE", "list: jobs in this state only", OPT_STATE},
    {"--limit", NULL, "N", "list: at most N jobs (default 100, at most 100000)", OPT_LIMIT},
    {"--after", NULL, "ID", "list: jobs after this id (default 0)", OPT_AFTER},
    {"--all-dead", NULL, NULL, "retry: every dead job", OPT_ALL_DEAD},
    {"--older-than", NULL, "SECONDS", "purge: jobs finished more than SECONDS ago",
     OPT_OLDER_THAN},
    {"--dead", NULL, NULL, "purge: dead jobs too", OPT_DEAD},
    {0}};

static const cli_option *const queue_tables[] = {queue_options, NULL};

const cli_command cli_queue_command = {
    "queue",
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
,
    queue_tables, 28,
    "Text from the database is printed escaped. Exit codes: 0 success, 2 usage (also: a\n"
    "job of the same SOP Instance UID is waiting, so a dead one is not retried), 3 the\n"
    "database is missing or cannot be read or written, 5 a queue of another schema\n"
    "version, 12 no such job, or the job is not dead (retry). With several IDs every one\n"
    "is attempted; the exit code is that of the first failure.\n",
    0};

static const char serve_help[] =
    "usage: sr2fhir serve --data DIR --server URL --http HOST:PORT | --https HOST:PORT\n"
    "                     [--dicom HOST:PORT --aet AET] [options]\n"
    "\n"
    "The gateway service (docs/gateway.md): receives SRs by DICOMweb STOW-RS at\n"
    "/dicom-web/studies and, with --dicom, by DICOM C-STORE (C-ECHO too), acknowledges\n"
    "each only after it is durably queued in DIR, and\n"
    "delivers them to the FHIR server as 'send' does, retrying until the server takes them.\n"
    "It prints one line per listener when it listens, e.g.\n"
    "  sr2fhir: serving STOW-RS at http://127.0.0.1:8080/dicom-web/studies\n"
    "  sr2fhir: serving DICOM (C-STORE, C-ECHO) as SR2FHIR at 127.0.0.1:11112\n"
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
    "  --max-part BYTES          largest part, and largest C-STORE data set (default\n"
    "                            268435456 = 256 MiB)\n"
    "  --max-connections N       per listener (default 64)\n"
    "  --connection-timeout S    idle connections are closed after S seconds (default 30)\n"
    "  --http-threads N          HTTP threads per listener (default 8)\n"
    "DICOM (C-STORE of the SR Storage SOP Classes, C-ECHO):\n"
    "  --dicom HOST:PORT         listen for DICOM associations (PORT 0: any free port)\n"
    "  --aet AET                 (required with --dicom) our AE title: the called AE title\n"
    "                            must be it (else A-ASSOCIATE-RJ 'called AE title not\n"
    "                            recognized')\n"
    "  --dicom-peer AET[@ADDR]   a calling AE title allowed (from numeric address ADDR\n"
    "                            only, when given); repeatable; none given: any\n"
    "  --dicom-max-associations N  at once (default 16); more are rejected transient,\n"
    "                            'local limit exceeded'\n"
    "  --dicom-max-pdu BYTES     largest P-DATA PDU taken (default 262144)\n"
    "  --dicom-timeout SECONDS   silence inside an association before A-ABORT (default 60)\n"
    "  --dicom-artim SECONDS     wait for the A-ASSOCIATE-RQ after connecting and for the\n"
    "                            peer to close after a release or abort (default 30)\n"
    "  --dicom-tls-cert FILE     DICOM TLS (PS3.15 Annex B) on --dicom: the server\n"
    "                            certificate, with --dicom-tls-key FILE (PEM)\n"
    "  --dicom-tls-client-ca FILE  require client certificates signed by these CAs\n"
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
    "  --high-water N            pending jobs above which STOW-RS gets 503 and C-STORE\n"
    "                            A700 (default 100000)\n"
    "  --min-free-mb N           free disk in DIR below which STOW-RS gets 503 and C-STORE\n"
    "                            A700 (default 256)\n"
    "  --keep-done SECONDS       delivered jobs kept for audit (default 604800 = 7 days)\n"
    "  and send's FHIR client options: --fhir-version, --timezone, --token-env,\n"
    "  --token-file, --user, --password-file, --cert, --key, --cacert, --insecure,\n"
    "  --allow-http, --require-existing, --connect-timeout, --timeout, --retries,\n"
    "  --retry-delay, --max-entries, --deadline, --diagnostic-report (see 'sr2fhir\n"
    "  help send')\n"
    "pulling (docs/pull.md):\n"
    "  --pull URL                also poll this DICOMweb server for new SRs\n"
    "  --pull-interval SECONDS   between polls (default 60)\n"
    "  --pull-lookback SECONDS   only studies of StudyDate within this before the last\n"
    "                            completed poll (default 0: every SR, each poll)\n"
    "  --pull-jobs N             parallel retrievals (default 2)\n"
    "  --pull-token-file FILE, --pull-cacert FILE  the DICOMweb server's token and CA\n"
    "FHIRcast (docs/fhircast.md):\n"
    "  --fhircast-hub URL, --fhircast-topic TOPIC  also share each delivered SR with the\n"
    "                            report open on this hub for its patient and study\n"
    "  --fhircast-token-file FILE  the hub's bearer token\n"
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

static const cli_command *const commands[] = {
    &cli_convert_command, &cli_dump_command, &cli_send_command, &cli_queue_command,
};

static const char pull_help[] =
    "usage: sr2fhir pull --dicomweb URL [--server URL] [--data DIR]\n"
    "                    [--study UID | --since DATE [--until DATE]] [OPTIONS]\n"
    "\n"
    "Finds the SR instances of a DICOMweb server (QIDO-RS at URL, e.g.\n"
    "http://pacs:8042/dicom-web), retrieves the new ones (WADO-RS) into the queue of a\n"
    "gateway data folder and, with --server, delivers them as 'send' does, until every\n"
    "one is finished. Without --data a private temporary folder is used (and removed).\n"
    "Instances recorded as pulled before (same SOP Instance UID) whose job is not a dead\n"
    "letter are skipped without retrieving them. Prints one line:\n"
    "  pull: found N, new N, skipped N, queued N, delivered N, not_applicable N, failed N\n"
    "\n"
    "  --dicomweb URL            the DICOMweb root (required)\n"
    "  --server URL              FHIR base URL: deliver in-process (or SR2FHIR_SERVER)\n"
    "  --data DIR                the gateway's data folder (may be in use by 'serve')\n"
    "  --study UID               only this study\n"
    "  --since DATE, --until DATE  StudyDate range: YYYYMMDD or YYYYMMDDHH[MM[SS]]\n"
    "  --recheck                 retrieve known instances too; queue those whose bytes\n"
    "                            (SHA-256) changed\n"
    "  -j, --jobs N              parallel retrievals (default 4, at most 32)\n"
    "  --page-size N             QIDO-RS results per request (default 200)\n"
    "  --workers N               delivery threads (default 4)\n"
    "  --retry-total SECONDS     transient delivery failures retried this long (300)\n"
    "  --audit-log FILE          default DIR/audit.jsonl with --data, else none\n"
    "  -v, --verbose             log what happens on stderr\n"
    "  DICOMweb server: --dicomweb-token-file F, --dicomweb-token-env NAME (default\n"
    "  SR2FHIR_DICOMWEB_TOKEN), --dicomweb-user U (SR2FHIR_DICOMWEB_PASSWORD or\n"
    "  --dicomweb-password-file F), --dicomweb-cacert, --dicomweb-cert, --dicomweb-key,\n"
    "  --dicomweb-insecure, --dicomweb-connect-timeout, --dicomweb-timeout,\n"
    "  --dicomweb-retries, --dicomweb-retry-delay\n"
    "  FHIR server: send's client options (see 'sr2fhir help send'); --allow-http is\n"
    "  for both servers\n"
    "\n"
    "Exit codes: 0 all fine, 2 usage, 3 I/O, 4 malformed answers, 10 refused (DICOMweb or\n"
    "FHIR server), 11 unreachable or deadline. docs/pull.md has the details.\n";

static const char cast_help[] =
    "usage: sr2fhir cast --hub URL --topic TOPIC [--token-file F] [--wait SECONDS]\n"
    "                    [OPTIONS] INPUT...\n"
    "\n"
    "Shares the measurements of each TID 1500 SR with the report a reporting application\n"
    "has open on a FHIRcast STU3 hub: subscribes to TOPIC over a websocket, reads the\n"
    "current context, and when it is a DiagnosticReport context whose Patient (an\n"
    "identifier equal to the SR's Patient ID) and ImagingStudy (the SR's Study Instance\n"
    "UID) match, publishes a DiagnosticReport-update whose Bundle PUTs the converted\n"
    "Observations and the ImagingSelections, BodyStructures and Devices they reference.\n"
    "A stale version (409 or SyncError) is retried once per new version. One line per SR:\n"
    "  FILE: shared N resources with DiagnosticReport/ID (Patient/ID) on topic T: version A -> B\n"
    "\n"
    "  --hub URL                 the hub (hub.url); https, or http to a loopback host\n"
    "  --topic TOPIC             hub.topic\n"
    "  --wait SECONDS            wait this long for a matching context to open (default 0)\n"
    "  --subscriber-name NAME    subscriber.name (default sr2fhir)\n"
    "  --token-file F, --token-env NAME  bearer token (default SR2FHIR_TOKEN); never printed\n"
    "  --fhir-version R5|R4      the form of the shared resources (default R5)\n"
    "  --cacert, --cert, --key, --insecure, --allow-http, --connect-timeout, --timeout,\n"
    "  --retries, --retry-delay, --deadline, --timezone: as for send\n"
    "  -q, --quiet               no result lines\n"
    "\n"
    "Exit codes: 0 all shared, 2 usage, 3-9 as for convert, 10 the hub refused, 11 the hub\n"
    "is unreachable or kept failing, 12 no matching DiagnosticReport context is open.\n"
    "docs/fhircast.md has the details.\n";

const char *cli_help_text(const char *command)
{
    if (!command)
        return general;
    if (!strcmp(command, "serve"))
        return serve_help;
    if (!strcmp(command, "pull"))
        return pull_help;
    if (!strcmp(command, "cast"))
        return cast_help;
    return NULL;
}

int cmd_help(int argc, char **argv)
{
    const char *name = argc > 0 ? argv[0] : NULL;
    for (size_t i = 0; name && i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i]->name))
            return cli_command_help(commands[i], stdout), 0;
    const char *text = cli_help_text(name);
    if (!text)
        return cli_error(NULL, S2F_EUSAGE, "no help for '%s' (try 'sr2fhir help')", argv[0]);
    fputs(text, stdout);
    return 0;
}
