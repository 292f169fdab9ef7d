/*
 * cli.h - what the sr2fhir subcommands share: the error line, the help texts, the
 * input list.
 */
#ifndef S2F_CLI_H
#define S2F_CLI_H

#include "sr2fhir_send.h"

#include <stddef.h>

#include <stdio.h>

/* Prints "sr2fhir: WHERE: MESSAGE" on stderr (WHERE may be NULL) and returns code. WHERE
 * and the formatted MESSAGE are escaped (cli_put_escaped). */
int cli_error(const char *where, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Issue 9 defect 8: the one escaping of text from outside (file names, values, a server's
 * answers) before it reaches a terminal; src/util/escape.h says what is escaped (control
 * characters, bytes that are not UTF-8, invisible direction marks) and how (\n, \xHH,
 * \uXXXX). Every message goes through it:
 * cli_line prints the formatted text escaped plus a newline; cli_put_escaped writes one
 * string escaped; cli_escaped escapes into buf (cap bytes, cut when longer) for a %s. */
void cli_line(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_put_escaped(FILE *f, const char *text);
const char *cli_escaped(const char *text, char *buf, size_t cap);

/* Fills err (one line, formatted) and returns code: s2f_fail's counterpart for the
 * program's own failures (message.c). */
s2f_code cli_fail(s2f_error *err, s2f_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Pretty JSON written by the program (jsonout.c, the conversion report of M26): open
 * and close a container ('{' '}' or '[' ']'); key NULL for an element of an array or the
 * top value. The closing of the top value ends the line. failed: a string could not be
 * written or the nesting was wrong (stdio errors show in ferror(f)). */
#define CLI_JSON_MAX_DEPTH 8
typedef struct cli_json {
    FILE *f;
    int depth, failed;
    unsigned char has_items[CLI_JSON_MAX_DEPTH];
} cli_json;

void cli_json_open(cli_json *j, const char *key, char open);
void cli_json_close(cli_json *j, char close);
void cli_json_string(cli_json *j, const char *key, const char *value);
void cli_json_uint(cli_json *j, const char *key, unsigned long long value);
void cli_json_int(cli_json *j, const char *key, long long value);

/* 1 when z is a --timezone value: +HHMM or -HHMM, at most +-14:59 (M9). */
int cli_valid_zone(const char *z);

/* The inputs of a command (inputs.c): files, and folders expanded recursively, each folder
 * read once (issue 9 #4). root_len[i] is 0 for a file named on the command line, else the
 * length of the folder argument's prefix of v[i] up to and with its '/': v[i] + root_len[i]
 * is the path inside that folder (issue 9 #3: outputs mirror it). */
typedef struct cli_inputs {
    char **v;
    size_t *root_len;
    size_t n, cap;
} cli_inputs;

/* Appends args (folders expanded; *any_folder set when one was); 0, or -1 when memory ran
 * out. */
int cli_inputs_collect(cli_inputs *in, char **args, int n, int *any_folder);
void cli_inputs_free(cli_inputs *in);
int cli_is_folder(const char *path);
/* Creates the data folder `path` of serve and pull (0700, with its missing parents) when
 * absent: 0, or the exit code after one error line. */
int cli_make_folder(const char *path);

/* An output file written safely (output.c, issue 9 #5): to a temporary file beside the
 * target, renamed over it by cli_output_commit, removed by cli_output_abort. follow: the
 * user named dest, so a symbolic link there is followed to its target. Errors are S2F_EIO
 * with a message naming dest. */
typedef struct cli_output {
    FILE *f;
    char *path; /* the target the temporary file replaces; NULL when written in place */
    char *tmp;
} cli_output;

s2f_code cli_output_open(cli_output *o, const char *dest, int follow, s2f_error *err);
s2f_code cli_output_commit(cli_output *o, const char *dest, s2f_error *err);
void cli_output_abort(cli_output *o);

/* The output names of inputs written into folder `out` (outnames.c, issue 9 #3): path is
 * the Bundle's file, or NULL when refused; then clash is the index of the input that
 * already takes that name (or whose own file it is). 0, or -1 when memory ran out. */
typedef struct cli_outname {
    char *path;
    size_t clash;
} cli_outname;

int cli_outnames_plan(const cli_inputs *in, const char *out, cli_outname **names);
void cli_outnames_free(cli_outname *names, size_t n);

/* The FHIR client options `send` and `serve` share (client_opts.c): the server, the
 * s2f_client_options, and where the secrets come from. Strings point into argv (or the
 * caller's config values); token and password are owned (cli_client_forget_secrets). */
typedef struct cli_client_opts {
    const char *server;
    s2f_client_options opt;
    const char *token_env, *token_file, *password_file;
    char *token, *password;
} cli_client_opts;

/* A whole number in [lo, hi] into *out: 1, else 0 (*out untouched). */
int cli_number_in(const char *v, long lo, long hi, long *out);
/* 1 when `name` (e.g. "--timeout") is a client option taking a value. */
int cli_client_takes_value(const char *name);
/* A client option with its value: 1 taken, 0 not a client option, -1 after a usage
 * message "CMD: ... (try 'sr2fhir help CMD')". */
int cli_client_value_option(cli_client_opts *c, const char *cmd, const char *name,
                            const char *value);
/* --require-existing, --insecure, --allow-http: 1 taken, 0 not one of them. */
int cli_client_flag_option(cli_client_opts *c, const char *name);
/* --token and --password: refused everywhere (secrets never on the command line). */
int cli_client_is_secret_option(const char *name);
/* Bearer token (--token-file, --token-env NAME, else SR2FHIR_TOKEN) and basic password
 * (--password-file, else SR2FHIR_PASSWORD) into c->opt. 1, or 0 after a message. */
int cli_client_load_secrets(cli_client_opts *c, const char *cmd);
void cli_client_forget_secrets(cli_client_opts *c);

int cmd_dump(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_queue(int argc, char **argv);     /* queue.c: stats, list, show, retry, purge */
int cmd_send(int argc, char **argv);      /* in the sr2fhir-send program (send.c) */
int cmd_serve(int argc, char **argv);     /* in the sr2fhir-serve program (serve.c) */
int cmd_pull(int argc, char **argv);      /* in the sr2fhir-pull program (pull.c) */
int cmd_cast(int argc, char **argv);      /* in the sr2fhir-cast program (cast.c) */

/* Help text of a command, or NULL when there is no such command. */
const char *cli_help_text(const char *command);

/* One option of a command's table (options.c, issue 14): the table parses the command
 * line and prints the help. name is the long spelling ("--output"), alias the short one
 * ("-o") or NULL; value names the value in the help ("PATH"), NULL for a flag; help is its
 * text ('\n' between lines), NULL for an option not shown (test-only, refused secrets);
 * id tells the command which option it is. A table ends with an entry whose name is NULL. */
typedef struct cli_option {
    const char *name, *alias, *value, *help;
    int id;
} cli_option;

/* A command: its usage text (up to "options:"), its option tables (NULL-terminated),
 * the column where option texts start, the text after the options; options_first: an
 * input ends the options (dump). */
typedef struct cli_command {
    const char *name;
    const char *usage;
    const cli_option *const *tables;
    int column;
    const char *after;
    int options_first;
} cli_command;

/* What a command does with one option found (value NULL for a flag): 0, or the exit code
 * after its own message. */
typedef int (*cli_take_fn)(void *ctx, const cli_option *o, const char *value);

#define CLI_HELP_SHOWN (-1)
/* Parses argv against cmd's tables, calling take per option; inputs are moved to
 * argv[0..*n). Messages begin "WHO: " (WHO NULL: the command's name). Returns 0,
 * CLI_HELP_SHOWN after printing the help (-h, --help), or the exit code after a message. */
int cli_parse(const cli_command *cmd, const char *who, int argc, char **argv, int *n,
              cli_take_fn take, void *ctx);
void cli_command_help(const cli_command *cmd, FILE *f);
const cli_option *cli_option_find(const cli_command *cmd, const char *arg);

/* The option ids of the tables in help.c. */
enum {
    OPT_OUTPUT = 1, OPT_BUNDLE_TYPE, OPT_FHIR_VERSION, OPT_TIMEZONE, OPT_REPORT, OPT_PRETTY,
    OPT_TRACE_CONSUMED, OPT_QUIET, OPT_STRICT, OPT_DIAGNOSTIC_REPORT,  /* convert, dump */
    OPT_CLIENT_VALUE, OPT_CLIENT_FLAG, OPT_SECRET, OPT_AUDIT_LOG, OPT_JOBS, /* send */
    OPT_DATA, OPT_STATE, OPT_LIMIT, OPT_AFTER, OPT_OLDER_THAN, OPT_ALL_DEAD, OPT_DEAD /* queue */
};

/* The commands' tables (help.c); cli_client_options: the FHIR client options of send and
 * serve (client_opts.c takes them). */
extern const cli_option cli_client_options[];
extern const cli_command cli_convert_command, cli_dump_command, cli_send_command,
    cli_queue_command;

#endif
